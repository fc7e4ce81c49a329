# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host whose Python lacks what the modules need gets told so, with what to install.

Real ansible-playbook runs of the modules with the module's environment changed the way such
hosts are: no tz data (PYTHONTZPATH empty, and this venv has no tzdata package), and a Python
without SQLite (the stdlib sqlite3 package cannot import its _sqlite3 extension, as in a Python
built without the SQLite headers). The task fails with that cause, not with a wrong-value
message or a traceback, and nothing is written.
"""

import os

import yaml

from conftest import db_fingerprint, run_playbook


def run_tasks(tmp_path, tasks, environment):
    playbook = tmp_path / 'playbook.yml'
    playbook.write_text(yaml.safe_dump([{'hosts': 'localhost', 'gather_facts': False, 'environment': environment,
                                         'tasks': tasks}]))
    return run_playbook(str(playbook))


def tenant_task(directory, **options):
    return {'name': 'Tenant', 'voxplane.pbx.tenant': dict(
        {'directory': directory, 'name': 'acme', 'sip_domain': 'acme.pbx.test', 'create_parents': True}, **options)}


def test_missing_tz_data_is_named_with_what_to_install(tmp_path):
    directory = str(tmp_path / 'directory.db')
    assert run_tasks(tmp_path, [tenant_task(directory)], {}).rc == 0
    before = db_fingerprint(directory)

    run = run_tasks(tmp_path, [tenant_task(directory, timezone='Europe/Berlin')], {'PYTHONTZPATH': ''})

    assert run.rc != 0 and run.failed == 1, run
    assert 'IANA time zone data is missing on this host' in run.stdout, run
    assert 'apt-get install tzdata' in run.stdout and 'pip install tzdata' in run.stdout, run
    assert 'is not an IANA time zone' not in run.stdout, run
    assert db_fingerprint(directory) == before


def test_a_python_without_sqlite3_is_named_with_what_to_install(tmp_path):
    # Shadows the _sqlite3 extension that the standard library's sqlite3 package imports.
    shadow = tmp_path / 'no-sqlite'
    shadow.mkdir()
    (shadow / '_sqlite3.py').write_text("raise ImportError(\"No module named '_sqlite3'\")\n")
    directory = str(tmp_path / 'directory.db')

    run = run_tasks(tmp_path, [tenant_task(directory)], {'PYTHONPATH': str(shadow)})

    assert run.rc != 0 and run.failed == 1, run
    assert 'the sqlite3 module is missing on this host' in run.stdout, run
    assert "No module named '_sqlite3'" in run.stdout and 'libsqlite3-dev' in run.stdout, run
    assert 'Traceback' not in run.stdout + run.stderr, run
    assert not os.path.exists(directory)
