# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media role refuses a directory location it cannot use before it touches the host, naming
the variables and the rule (no service is deployed: the role stops at its first checks)."""

import pytest

from lab.playbook import run_playbook

PLAYBOOK = """---
- name: The media role alone
  hosts: all
  gather_facts: false
  roles:
    - role: voxplane.pbx.media
"""
SECRET = 'not-for-a-sqlite-file'


def deploy(tmp_path, **variables):
    playbook = tmp_path / 'media.yml'
    playbook.write_text(PLAYBOOK)
    settings = {'media_kamailio_addresses': ['127.0.0.1'], 'media_install_packages': False,
                'media_manage_service': False, 'media_config_dir': str(tmp_path / 'etc')}
    settings.update(variables)
    return run_playbook(str(playbook), settings, cwd=str(tmp_path))


@pytest.mark.parametrize('variables, rule', [
    ({'media_directory_path': '/var/lib/voxplane/directory.db', 'media_directory_password': SECRET},
     'media_directory_password is only for a PostgreSQL directory (a SQLite file has no password)'),
    ({'media_directory_path': ''}, 'media_directory_path must name the directory'),
], ids=['password-for-sqlite', 'empty-location'])
def test_a_directory_location_the_service_cannot_use_is_refused_by_name(tmp_path, variables, rule):
    run = deploy(tmp_path, **variables)
    assert run.rc != 0, run
    assert rule in ' '.join(run.stdout.split()), run.stdout
    assert SECRET not in run.stdout
    assert not (tmp_path / 'etc').exists()  # nothing was made on the host
