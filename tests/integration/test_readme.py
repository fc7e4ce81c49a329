# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's "Try the modules without a PBX", followed as a new user would: the tour and the calls
playbook, copied from the README as they are written, run with ansible-playbook from the repository
(no root needed), twice, in check mode with a diff, then route_info, the export and its lint."""

import os
import re
import subprocess

import yaml

from conftest import REPO, db_fingerprint, readme_block, readme_tour, run_playbook

NO_PBX = 'Try the modules without a PBX'


def test_the_tour_and_the_calls_of_the_readme_write_under_tmp_only():
    tour = yaml.safe_load(readme_block('A short tour'))
    calls = yaml.safe_load(readme_block(NO_PBX))
    for play in tour + calls:
        directory = play['module_defaults']['group/voxplane.pbx.directory']['directory']
        assert directory == '/tmp/voxplane-tour/directory.db', directory
    text = open(os.path.join(REPO, 'README.md'), encoding='utf-8').read()
    section = text.split('## %s' % NO_PBX, 1)[1].split('\n## ', 1)[0]
    assert 'make try' in section and '/tmp/voxplane-tour/tour.yml' in section and '--check --diff' in section


def test_make_try_needs_no_root_and_no_system_package():
    plan = subprocess.run(['make', '-n', 'try'], cwd=REPO, capture_output=True, text=True, check=True).stdout
    # No Debian package, no root, not the deps target (collection-deps.sh only unpacks the
    # collections this one depends on, from PyPI, into build/).
    assert 'apt' not in plan and 'sudo' not in plan and 'kamailio' not in plan.lower()
    assert not re.search(r'(^|[\s;&|])(make\s+\S*\s*)?deps($|[\s;&|])', plan, re.M), plan
    assert re.search(r'^try: venv collection$', open(os.path.join(REPO, 'Makefile')).read(), re.M)


def test_the_tour_twice_then_check_mode_with_a_diff(tmp_path):
    directory = str(tmp_path / 'voxplane-tour' / 'directory.db')
    os.makedirs(os.path.dirname(directory))
    first = readme_tour(directory)
    assert first.rc == 0 and first.changed == 3, first
    again = readme_tour(directory)
    assert again.rc == 0 and again.changed == 0, again
    # edit one field: --check --diff shows exactly that change, and nothing is written
    book = os.path.join(os.path.dirname(directory), 'tour.yml')
    text = open(book).read().replace('name: Anna Schmidt', 'name: Anna Weber')
    open(book, 'w').write(text)
    before = db_fingerprint(directory)
    run = run_playbook(book, {'vault_anna_desk': 'Tour-secret-anna-1'}, check=True, diff=True)
    assert run.rc == 0 and run.changed == 1, run
    assert '-    name: Anna Schmidt\n+    name: Anna Weber\n' in run.stdout, run.stdout
    assert len(re.findall(r'^[-+] ', run.stdout, re.M)) == 2, run.stdout
    assert db_fingerprint(directory) == before


def test_the_calls_playbook_asks_the_router_then_exports_and_lints(tmp_path):
    folder = tmp_path / 'voxplane-tour'
    folder.mkdir()
    directory = str(folder / 'directory.db')
    assert readme_tour(directory).rc == 0
    plays = yaml.safe_load(readme_block(NO_PBX))
    plays[0]['module_defaults']['group/voxplane.pbx.directory']['directory'] = directory
    plays[0]['tasks'].append({'name': 'The summary', 'ansible.builtin.copy': {
        'content': '{{ call.summary | to_json }}', 'dest': str(tmp_path / 'summary.json'), 'mode': '0644'}})
    book = folder / 'calls.yml'
    book.write_text(yaml.safe_dump(plays, sort_keys=False))
    run = run_playbook(str(book))
    assert run.rc == 0 and run.failed == 0, run
    assert yaml.safe_load((tmp_path / 'summary.json').read_text()) == [
        '0s: ring extension 210 Anna Schmidt: anna.desk for 20s: no answer', 'final: 480 Temporarily Unavailable']
    # the relative dest is the playbook's folder, as the README says
    export = folder / 'tenants' / 'acme.json'
    assert export.exists() and 'ha1' not in export.read_text()
    assert 'TASK [voxplane.pbx.tenant_config]' in run.stdout
    lint = run.stdout.split('TASK [voxplane.pbx.tenant_config]', 1)[1].split('TASK [', 1)[0]
    assert 'ok: [localhost]' in lint and 'changed' not in lint
