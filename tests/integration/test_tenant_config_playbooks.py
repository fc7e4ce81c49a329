# -*- coding: utf-8 -*-
"""Whole tenants through real ansible-playbook runs: export, re-import, restore, override, CSV, lint, scale."""

import json
import os
import sys

from conftest import REPO, db_fingerprint, run_playbook, sql, write_play
from lab import documents as tenant_documents


def ok(run, changed=None):
    assert run.rc == 0 and run.failed == 0, run
    if changed is not None:
        assert run.changed == changed, run
    return run


def table_rows(location):
    """The directory's content without row ids and generation: equal iff two directories hold the same."""
    return dict((table, sorted(sql(location, statement))) for table, statement in (
        ('tenants', 'SELECT name, sip_domain, doc FROM tenants'),
        ('extensions', 'SELECT internal_number, doc FROM extensions'),
        ('sip_accounts', 'SELECT e.internal_number, a.position, a.username, a.kind, a.ha1 FROM sip_accounts a '
                         'JOIN extensions e ON e.id = a.extension_id'),
        ('numbers', 'SELECT number, doc FROM numbers'),
        ('number_claims', 'SELECT c.e164, n.number FROM number_claims c JOIN numbers n ON n.id = c.number_id'),
        ('devices', 'SELECT mac, doc FROM devices'),
        ('call_groups', 'SELECT internal_number, doc FROM call_groups'),
        ('phonebook_entries', 'SELECT name, doc FROM phonebook_entries')))


EXPORT = """
- name: Export the tenant as YAML, JSON and CSV
  voxplane.pbx.tenant_info:
    tenant: acme
    format: "{{ item.format }}"
    dest: "{{ item.dest }}"
  loop:
    - {format: yaml, dest: "{{ out }}/acme.yml"}
    - {format: json, dest: "{{ out }}/acme.json"}
    - {format: csv, dest: "{{ out }}/csv"}
- name: Read it and keep it as a user would (to_nice_yaml of the registered result)
  voxplane.pbx.tenant_info:
    tenant: acme
  register: acme
- name: Save the registered result
  ansible.builtin.copy:
    content: "{{ acme | to_nice_yaml }}"
    dest: "{{ out }}/registered.yml"
    mode: "0644"
"""

REIMPORT = """
- name: Re-import every export
  voxplane.pbx.tenant_config:
    src: "{{ item.src }}"
    tenant: acme
    state: "{{ item.state }}"
  loop:
    - {src: "{{ out }}/acme.yml", state: overridden}
    - {src: "{{ out }}/acme.json", state: replaced}
    - {src: "{{ out }}/registered.yml", state: overridden}
    - {src: "{{ out }}/csv/extensions.csv", state: merged}
    - {src: "{{ out }}/csv/phonebook.csv", state: merged}
    - {src: "{{ out }}/csv/speed_dials.csv", state: merged}
"""


def test_exports_reimport_with_no_change(acme_directory, tmp_path):
    path = acme_directory[0]
    out = str(tmp_path)
    ok(run_playbook(write_play(tmp_path, 'export', EXPORT), {'directory': path, 'out': out}))
    before = db_fingerprint(path)
    ok(run_playbook(write_play(tmp_path, 'reimport', REIMPORT), {'directory': path, 'out': out}), changed=0)
    assert db_fingerprint(path) == before
    header = open(os.path.join(out, 'csv', 'extensions.csv'), encoding='utf-8').readline()
    assert header.startswith('internal_number;name;email;role;seat;ddi;')


def test_an_export_with_secrets_restores_into_an_empty_directory(acme_directory, empty_directory, tmp_path):
    path = acme_directory[0]
    backup = str(tmp_path / 'backup.json')
    tasks = """
    - name: Back up the tenant with its secrets
      voxplane.pbx.tenant_info:
        tenant: acme
        secrets: true
        format: json
        dest: "{{ backup }}"
    """
    ok(run_playbook(write_play(tmp_path, 'backup', tasks), {'directory': path, 'backup': backup}))
    assert os.stat(backup).st_mode & 0o777 == 0o600
    text = open(backup).read()
    assert 'secret' not in text and '"ha1"' in text
    restored = empty_directory
    restore = """
    - name: Restore into an empty directory
      voxplane.pbx.tenant_config:
        src: "{{ backup }}"
        create_parents: true
    """
    run = ok(run_playbook(write_play(tmp_path, 'restore', restore), {'directory': restored, 'backup': backup}), changed=1)
    assert table_rows(restored) == table_rows(path)
    ok(run_playbook(write_play(tmp_path, 'restore', restore), {'directory': restored, 'backup': backup}), changed=0)
    assert run.stdout.count('VALUE_SPECIFIED_IN_NO_LOG_PARAMETER') == 0


def test_the_registered_result_with_secrets_needs_no_log(acme_directory, tmp_path):
    tasks = """
    - name: Secrets into the result
      voxplane.pbx.tenant_info:
        tenant: acme
        secrets: true
      register: acme
    """
    run = run_playbook(write_play(tmp_path, 'nolog', tasks), {'directory': acme_directory[0]})
    assert run.rc != 0 and 'set no_log: true on the task' in run.stdout and '[no_log]' in run.stdout


OVERRIDE = """
- name: The tenant without extension 219
  voxplane.pbx.tenant_config:
    src: "{{ src }}"
    state: overridden
  register: result
- name: Show the counts
  ansible.builtin.debug:
    var: result.counts.extensions
"""


def test_overridden_without_one_extension_removes_exactly_it_and_check_mode_shows_that(acme_copy, tmp_path):
    path = acme_copy
    exported = str(tmp_path / 'acme.json')
    ok(run_playbook(write_play(tmp_path, 'export', """
    - name: Export
      voxplane.pbx.tenant_info:
        tenant: acme
        format: json
        dest: "{{ dest }}"
    """), {'directory': path, 'dest': exported}))
    doc = json.load(open(exported))
    accounts = [a['username'] for e in doc['extensions'] if e['internal_number'] == '219' for a in e['sip_accounts']]
    doc['extensions'] = [e for e in doc['extensions'] if e['internal_number'] != '219']
    doc['devices'] = [dict(d, lines=[line for line in d['lines'] if line not in accounts]) for d in doc['devices']]
    src = str(tmp_path / 'without-219.json')
    json.dump(doc, open(src, 'w'))
    before = db_fingerprint(path)
    rows = table_rows(path)
    check = ok(run_playbook(write_play(tmp_path, 'override', OVERRIDE), {'directory': path, 'src': src}, check=True, diff=True), changed=1)
    assert db_fingerprint(path) == before
    assert 'extensions: 0 added, 0 changed, 1 removed' in check.stdout
    assert '- extension 219 (tenant acme)' in check.stdout
    assert 'devices:    0 added, 1 changed, 0 removed' in check.stdout
    run = ok(run_playbook(write_play(tmp_path, 'override', OVERRIDE), {'directory': path, 'src': src}, diff=True), changed=1)
    after = table_rows(path)
    assert [e for e in rows['extensions'] if e not in after['extensions']] == [e for e in rows['extensions'] if e[0] == '219']
    assert [a for a in rows['sip_accounts'] if a not in after['sip_accounts']] == [a for a in rows['sip_accounts'] if a[0] == '219']
    changed_devices = [d for d in rows['devices'] if d not in after['devices']]
    assert len(changed_devices) == 1 and accounts[0] in changed_devices[0][1]
    for table in ('tenants', 'numbers', 'number_claims', 'call_groups'):
        assert after[table] == rows[table], table
    assert run.stdout.count('removed: 1') == 1


def test_deleted_waits_for_a_porting_number_unless_forced(acme_copy, tmp_path):
    path = acme_copy
    delete = """
    - name: Remove the tenant
      voxplane.pbx.tenant_config:
        tenant: acme
        state: deleted
        force: "{{ force }}"
    """
    before = db_fingerprint(path)
    run = run_playbook(write_play(tmp_path, 'delete', delete), {'directory': path, 'force': False})
    assert run.rc != 0 and 'is still porting' in run.stdout and '[porting]' in run.stdout, run
    assert db_fingerprint(path) == before
    ok(run_playbook(write_play(tmp_path, 'delete', delete), {'directory': path, 'force': True}), changed=1)
    assert table_rows(path)['tenants'] == [] and table_rows(path)['sip_accounts'] == []


BAD_CSV = (
    'internal_number;name;seat;ddi;account1_username;account1_password\n'
    '230;Jörg Weiß;smart;30;joerg.desk;Sommer-2024!\n'
    '780;Falsche Nummer;smart;;falsch.desk;Sommer-2024!\n'
    '231;Zoë Ärmel;gold;31;zoe.desk;Sommer-2024!\n'
    '232;Kurzer Name;smart;32;abc;Sommer-2024!\n'
)


def test_a_csv_with_three_bad_rows_fails_with_three_messages_and_changes_nothing(acme_copy, tmp_path):
    path = acme_copy
    src = tmp_path / 'extensions.csv'
    src.write_text(BAD_CSV, encoding='utf-8')
    tasks = """
    - name: Import extensions from CSV
      voxplane.pbx.tenant_config:
        tenant: acme
        src: "{{ src }}"
    """
    # Room for the new extensions: acme's 15 smart seats are all taken, and the whole document is
    # judged (with no free seat the import would also fail on the seats, a fourth violation).
    seats = """
    - name: More smart seats
      voxplane.pbx.tenant:
        name: acme
        licences: {seats: {smart: 20, best: 5}, addons: {client_complete: 2}}
    """
    ok(run_playbook(write_play(tmp_path, 'seats', seats), {'directory': path}), changed=1)
    before = db_fingerprint(path)
    run = run_playbook(write_play(tmp_path, 'csv', tasks), {'directory': path, 'src': str(src)})
    assert run.rc != 0 and run.failed == 1, run
    assert '3 rule violations' in run.stdout, run.stdout
    assert "extensions.csv row 3 (extension 780 (tenant acme)): internal_number:" in run.stdout
    assert "extensions.csv row 4 (extension 231 (tenant acme)): seat: 'gold' is not one of smart, best [choice]" in run.stdout
    assert "extensions.csv row 5 (extension 232 (tenant acme)): account1_username: 'abc'" in run.stdout
    assert db_fingerprint(path) == before
    src.write_text('internal_number,name\n219,Jörg Weiß\n', encoding='utf-8')
    ok(run_playbook(write_play(tmp_path, 'csv', tasks), {'directory': path, 'src': str(src)}), changed=1)
    assert [r for r in table_rows(path)['extensions'] if r[0] == '219' and 'J\\u00f6rg Wei\\u00df' in r[1]]


def test_the_offline_lint_of_tenant_files(tmp_path):
    good = str(tmp_path / 'good.json')
    tenant_documents.write(tenant_documents.big_tenant(5, groups=1), good)
    bad_doc = tenant_documents.big_tenant(5, groups=1)
    bad_doc['devices'][0]['mac'] = '00:15:65:zz:00:00'
    bad = str(tmp_path / 'bad.yml')
    tenant_documents.write(bad_doc, bad)
    import subprocess
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, 'build', 'collections'), ANSIBLE_NOCOLOR='1',
               VOXPLANE_PYTHON=sys.executable)
    lint = os.path.join(REPO, 'tools', 'validate-tenant')
    proc = subprocess.run([lint, good], capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([lint, good, bad], capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr    # as docs/tenant-documents.md says
    assert 'device 00:15:65:zz:00:00 (tenant big): mac:' in proc.stdout, proc.stdout
    assert 'ok: [localhost] => (item=%s)' % good in proc.stdout and 'changed: [localhost]' not in proc.stdout
    assert sorted(os.listdir(str(tmp_path))) == ['bad.yml', 'good.json']


def test_the_linter_passes_the_plain_export_the_readme_keeps_in_git(acme_directory, tmp_path):
    """tenant_info's export without secrets, linted by the collection's playbook (as an installed user runs it)
    and by tools/validate-tenant, with relative file names from the current folder; nothing else is written."""
    tasks = """
    - name: Export the tenant as the file the repository keeps (no secrets)
      voxplane.pbx.tenant_info: {tenant: acme, format: json, dest: "{{ out }}/tenants/acme.json"}
    """
    ok(run_playbook(write_play(tmp_path, 'export', tasks), {'directory': acme_directory[0], 'out': str(tmp_path)}))
    assert 'ha1' not in (tmp_path / 'tenants' / 'acme.json').read_text()
    import subprocess
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, 'build', 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), VOXPLANE_PYTHON=sys.executable)
    before = sorted(os.listdir(str(tmp_path)))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), 'voxplane.pbx.validate_tenant',
                           '-e', 'tenant_file=tenants/acme.json'],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'ok: [localhost] => (item=tenants/acme.json)' in proc.stdout, proc.stdout
    proc = subprocess.run([os.path.join(REPO, 'tools', 'validate-tenant'), 'tenants/acme.json'],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(os.listdir(str(tmp_path))) == before


def test_a_tenant_of_300_extensions_in_one_task(tmp_path):
    """The bounded version of bench/tenant_scale.py: correctness only, no timing."""
    path = str(tmp_path / 'directory.db')
    doc = tenant_documents.big_tenant(300, groups=5)
    src = tenant_documents.write(doc, str(tmp_path / 'big.json'))
    tasks = """
    - name: The whole tenant
      voxplane.pbx.tenant_config:
        src: "{{ src }}"
        state: overridden
        create_parents: true
      register: result
    - name: Counts
      ansible.builtin.copy:
        content: "{{ result.counts | to_json }}"
        dest: "{{ counts }}"
        mode: "0644"
    """
    counts = str(tmp_path / 'counts.json')
    book = write_play(tmp_path, 'big', tasks)
    ok(run_playbook(book, {'directory': path, 'src': src, 'counts': counts}))
    assert json.load(open(counts))['extensions'] == {'added': 300, 'changed': 0, 'removed': 0}
    rows = table_rows(path)
    assert (len(rows['extensions']), len(rows['sip_accounts']), len(rows['devices']), len(rows['call_groups'])) == (300, 600, 300, 5)
    ok(run_playbook(book, {'directory': path, 'src': src, 'counts': counts}), changed=1)   # only the counts file
    assert json.load(open(counts))['extensions'] == {'added': 0, 'changed': 0, 'removed': 0}
    doc['extensions'][150]['name'] = 'Renamed'
    tenant_documents.write(doc, src)
    ok(run_playbook(book, {'directory': path, 'src': src, 'counts': counts}))
    assert json.load(open(counts))['extensions'] == {'added': 0, 'changed': 1, 'removed': 0}
    yml = tenant_documents.write(doc, str(tmp_path / 'document.yml'))
    ok(run_playbook(book, {'directory': path, 'src': yml, 'counts': counts}), changed=0 + 1)
    assert json.load(open(counts))['extensions'] == {'added': 0, 'changed': 0, 'removed': 0}
