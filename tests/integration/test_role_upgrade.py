# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An inventory written for 0.1.0 (role variables voxplane_kamailio_*, voxplane_directory_*)
against the renamed roles: site.yml fails before it changes anything, naming each old variable
with its new name, instead of deploying a second PBX with default paths beside the first."""

import os
import sys

import pytest

from conftest import REPO, run_playbook

SITE = os.path.join(REPO, 'playbooks', 'site.yml')

# Where the roles would deploy with their defaults if they ignored the old names.
DEFAULT_PATHS = ('/etc/kamailio/voxplane', '/run/voxplane-kamailio', '/var/lib/voxplane/directory.db',
                 '/var/lib/voxplane/kamailio', '/etc/systemd/system/voxplane-kamailio.service')


def fingerprint(paths):
    """What can change at each path: (exists, mtime, mode, and a folder's entries)."""
    seen = {}
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            seen[path] = None
            continue
        seen[path] = (st.st_mtime_ns, st.st_mode, sorted(os.listdir(path)) if os.path.isdir(path) else None)
    return seen


@pytest.fixture
def old_inventory(tmp_path):
    root = tmp_path / 'own'
    group_vars = tmp_path / 'inventory' / 'group_vars'
    group_vars.mkdir(parents=True)
    (tmp_path / 'inventory' / 'hosts.yml').write_text(
        'pbx:\n  hosts:\n    localhost:\n      ansible_connection: local\n'
        '      ansible_python_interpreter: %s\n' % sys.executable)
    (group_vars / 'pbx.yml').write_text(
        '# as written for voxplane.pbx 0.1.0\n'
        'voxplane_kamailio_install_packages: false\n'
        'voxplane_kamailio_config_dir: %(root)s/etc/kamailio/own\n'
        'voxplane_kamailio_runtime_dir: %(root)s/run/own\n'
        'voxplane_kamailio_listen:\n  - {proto: udp, address: 127.0.0.250, port: 5999}\n'
        'voxplane_directory_path: %(root)s/var/lib/own/directory.db\n'
        'kamailio_service_mode: daemon\n' % {'root': root})
    return tmp_path / 'inventory', root


OLD_TO_NEW = (('voxplane_directory_path', 'directory_path'),
              ('voxplane_kamailio_config_dir', 'kamailio_config_dir'),
              ('voxplane_kamailio_install_packages', 'kamailio_install_packages'),
              ('voxplane_kamailio_listen', 'kamailio_listen'),
              ('voxplane_kamailio_runtime_dir', 'kamailio_runtime_dir'))


@pytest.mark.parametrize('options', [{}, {'check': True}], ids=['run', 'check-mode'])
def test_old_variable_names_fail_before_any_change(old_inventory, options):
    inventory, root = old_inventory
    before = fingerprint(DEFAULT_PATHS)
    result = run_playbook(SITE, inventory=str(inventory), **options)
    assert result.rc != 0, result
    assert result.changed == 0 and result.failed == 1, result
    for old, new in OLD_TO_NEW:
        assert '%s is now %s' % (old, new) in result.stdout, result
    assert 'nothing was changed on the host' in result.stdout, result
    # Neither the inventory's paths nor the defaults were touched.
    assert not root.exists(), result
    assert fingerprint(DEFAULT_PATHS) == before


def test_old_variable_names_fail_with_a_tag_too(old_inventory):
    """A run limited to one part of a role (its tags) is checked as well."""
    inventory, root = old_inventory
    result = run_playbook(SITE, inventory=str(inventory), env={'ANSIBLE_RUN_TAGS': 'voxplane_kamailio_configure'})
    assert result.rc != 0 and 'voxplane_kamailio_config_dir is now kamailio_config_dir' in result.stdout, result
    assert not root.exists(), result


def test_each_role_refuses_old_names_on_its_own(old_inventory, tmp_path):
    """A play with only the rtpengine role (which never had old names) still refuses them: the
    first voxplane role of a play stops it before the others would deploy."""
    inventory, root = old_inventory
    play = tmp_path / 'relay.yml'
    play.write_text('- hosts: pbx\n  gather_facts: false\n  roles:\n    - role: voxplane.pbx.rtpengine\n'
                    '      vars: {rtpengine_install_packages: false, rtpengine_config_dir: %s/relay}\n' % root)
    result = run_playbook(str(play), inventory=str(inventory))
    assert result.rc != 0 and 'voxplane_kamailio_listen is now kamailio_listen' in result.stdout, result
    assert not root.exists(), result
