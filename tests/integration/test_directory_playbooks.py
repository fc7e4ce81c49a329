"""Acceptance of the directory modules with real ansible-playbook runs against localhost."""

import json
import os
import re
import shutil
import sqlite3

import pytest

from conftest import acme_on, db_fingerprint, new_location, run_playbook, sql, write_play


def test_apply_reports_changed_then_nothing(acme_directory):
    path, first = acme_directory
    assert first.changed > 0
    again = run_playbook('acme_tenant.yml', {'directory': path})
    assert again.rc == 0 and again.changed == 0, again


def test_acme_content(acme_directory):
    path = acme_directory[0]
    counts = dict((t, sql(path, 'SELECT COUNT(*) FROM %s' % t)[0][0])
                  for t in ('tenants', 'extensions', 'sip_accounts', 'devices', 'call_groups', 'numbers', 'number_claims'))
    # 20 desk accounts + 7 apps; a 100-block (+ its head number) and the porting number.
    assert counts == {'tenants': 1, 'extensions': 20, 'sip_accounts': 27, 'devices': 20, 'call_groups': 2,
                      'numbers': 2, 'number_claims': 102}
    ha1s = [r[0] for r in sql(path, 'SELECT ha1 FROM sip_accounts')]
    assert all(len(h) == 32 for h in ha1s)
    assert not sql(path, "SELECT COUNT(*) FROM extensions WHERE doc LIKE '%secret%'")[0][0]


def test_check_mode_shows_exactly_the_modification(acme_directory, tmp_path):
    path = acme_directory[0]
    before = db_fingerprint(path)
    run = run_playbook('acme_tenant.yml', {'directory': path, 'ring_time_of_215': 45}, check=True, diff=True)
    assert run.rc == 0 and run.changed == 1, run
    assert db_fingerprint(path) == before
    diff_lines = [line for line in run.stdout.splitlines()
                  if line.startswith(('+', '-')) and not line.startswith(('+++', '---'))]
    assert diff_lines == ['-    ring_time: 20', '+    ring_time: 45'], run.stdout
    assert 'extension 215 (tenant acme)' in run.stdout


def test_check_mode_on_a_new_directory_creates_no_file(tmp_path):
    path = str(tmp_path / 'never.db')
    run = run_playbook('acme_tenant.yml', {'directory': path}, check=True)
    # Later tasks depend on earlier ones, which check mode did not keep: the first task must succeed and report a change.
    assert 'changed: [localhost]' in run.stdout.split('TASK [A block')[0], run
    assert not os.path.exists(path)


def test_tenant_info_round_trip_changes_nothing(acme_directory, tmp_path):
    path = acme_directory[0]
    before = db_fingerprint(path)
    output = str(tmp_path / 'acme.json')
    run = run_playbook('roundtrip.yml', {'directory': path, 'output': output})
    assert run.rc == 0, run
    assert run.changed == 1, run  # only the copy of the output file
    assert db_fingerprint(path) == before
    acme = json.load(open(output))
    assert len(acme['extensions']) == 20 and len(acme['devices']) == 20 and len(acme['groups']) == 2
    assert acme['number_plan']['+4930123456010']['target'] == '200'
    assert acme['number_plan']['+494012345600']['status'] == 'porting'
    assert acme['tenant']['media_server'] == 'sip:127.0.0.21:5060'
    assert (acme['tenant']['max_outside_calls'], acme['tenant']['max_outside_calls_per_minute']) == (30, None)
    assert acme['tenant']['premium_calls'] is False and acme['tenant']['locations'][1]['emergency_caller_id'] == '+494012345600'
    extensions = dict((e['internal_number'], e) for e in acme['extensions'])
    assert sorted(k for k, e in extensions.items() if e['voicemail']['enabled']) == ['200', '201', '202']
    assert sorted(k for k, e in extensions.items() if e['single_number_reach']) == ['203']
    assert extensions['203']['mobile'] == '+491715550203'
    assert 'secret' not in json.dumps(acme) and 'ha1' not in json.dumps(acme)


SETUP_OTHER = """
- name: A second tenant
  voxplane.pbx.tenant:
    name: other
    sip_domain: other.pbx.test
    licences: {seats: {smart: 2}}
"""

BAD_INPUTS = [
    ('mac_hex', """
     - voxplane.pbx.device: {tenant: acme, mac: "00:15:65:zz:00:01", model: yealink-t31p}
     """, 'device 00:15:65:zz:00:01 (tenant acme): mac:', '[mac]'),
    ('mac_unique_across_tenants', """
     - voxplane.pbx.device: {tenant: other, mac: "00-15-65-00-00-00", model: yealink-t31p}
     """, 'device 00:15:65:00:00:00 (tenant other): mac:', '[mac_unique]'),
    ('username_umlaut', """
     - voxplane.pbx.extension:
         tenant: acme
         internal_number: "250"
         sip_accounts: [{username: "müller", password: "long-enough"}]
     """, 'extension 250 (tenant acme): sip_accounts[0].username:', '[username_charset]'),
    ('username_unique', """
     - voxplane.pbx.extension:
         tenant: acme
         internal_number: "250"
         sip_accounts: [{username: desk200, password: "long-enough"}]
     """, 'extension 250 (tenant acme): sip_accounts:', '[username_unique]'),
    ('internal_78', """
     - voxplane.pbx.extension: {tenant: other, internal_number: "7801"}
     """, 'extension 7801 (tenant other): internal_number:', '[internal_forbidden_prefix]'),
    ('internal_118', """
     - voxplane.pbx.extension: {tenant: other, internal_number: "11833"}
     """, 'extension 11833 (tenant other): internal_number:', '[internal_118]'),
    ('internal_range', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "300"}
     """, 'extension 300 (tenant acme): internal_number:', '[internal_range]'),
    ('german_number_length', """
     - voxplane.pbx.number: {tenant: other, number: "+491234567890123"}
     """, 'number +491234567890123 (tenant other): number:', '[e164_length_de]'),
    ('number_one_tenant', """
     - voxplane.pbx.number: {tenant: other, number: "+4930123456042"}
     """, 'number +4930123456042 (tenant other): number:', '[number_one_tenant]'),
    ('number_one_target', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "201", external_numbers: ["+4930123456010"]}
     """, 'number +49301234560 (tenant acme): target:', '[number_one_target]'),
    ('seats_counted', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "250"}
     """, 'extension 250 (tenant acme): seat: no smart seat is left for it:', '[seats]'),
    ('softclient_licence', """
     - voxplane.pbx.extension:
         tenant: acme
         internal_number: "207"
         sip_accounts: [{username: desk207}, {username: app207, password: "long-enough", kind: softclient}]
     """, 'extension 207 (tenant acme): sip_accounts: its softclient or webphone account needs', '[softclient_licence]'),
    ('reference_member', """
     - voxplane.pbx.group: {tenant: acme, internal_number: "602", members: ["200", "299"]}
     """, 'group 602 (tenant acme): members:', '[reference]'),
    ('delete_referenced_extension', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "200", state: absent}
     """, 'extension 200 (tenant acme): state: cannot remove it: still referenced by group 600 (members)',
     '[still_referenced]'),
    ('delete_referenced_location', """
     - voxplane.pbx.tenant:
         name: acme
         locations: [{name: berlin, street: Friedrichstr. 1, postal_code: "10117", city: Berlin}]
     """, 'cannot remove location hamburg: still referenced by', '[still_referenced]'),
    ('porting_needs_date', """
     - voxplane.pbx.number: {tenant: acme, number: "+49301111111", status: porting}
     """, 'number +49301111111 (tenant acme): porting_date:', '[porting_date_required]'),
    ('caller_id_own_number', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "200", outbound_caller_id: "+4930123456011"}
     """, 'extension 200 (tenant acme): outbound_caller_id:', '[own_number]'),
    ('short_password', """
     - voxplane.pbx.extension:
         tenant: acme
         internal_number: "200"
         sip_accounts: [{username: desk200, password: short}]
     """, 'extension 200 (tenant acme): sip_accounts[0].password:', '[password_length]'),
    ('device_line_count', """
     - voxplane.pbx.device: {tenant: acme, mac: "001565000000", model: avm-fritzfon-c6, lines: [desk200, desk201]}
     """, 'device 00:15:65:00:00:00 (tenant acme): lines:', '[line_count]'),
    ('media_server_syntax', """
     - voxplane.pbx.tenant: {name: other, media_server: "sip:voicemail@127.0.0.21"}
     """, 'tenant other: media_server:', '[sip_server]'),
    ('voicemail_box_disabled', """
     - voxplane.pbx.number: {tenant: acme, number: "+49301111111", target: "voicemail:204"}
     """, 'number +49301111111 (tenant acme): target: voicemail:204: extension 204 has no voicemail enabled',
     '[voicemail_disabled]'),
    ('announcement_missing', """
     - voxplane.pbx.group: {tenant: acme, internal_number: "600", fallback: "announcement:closed"}
     """, 'group 600 (tenant acme): fallback: announcement closed does not exist in tenant acme', '[reference]'),
    ('single_number_reach_needs_mobile', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "203", mobile: ""}
     """, 'extension 203 (tenant acme): single_number_reach:', '[mobile_required]'),
    ('international_forward', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "204", forwarding: {busy: "+43 1 5550100"}}
     """, 'extension 204 (tenant acme): forwarding.busy:', '[international_calls]'),
    ('emergency_caller_id_of_another_tenant', """
     - voxplane.pbx.tenant:
         name: other
         locations: [{name: hq, street: Hauptstr. 1, postal_code: "10115", city: Berlin,
                      emergency_caller_id: "+4930123456042"}]
     """,
     'tenant other: locations[0].emergency_caller_id: location hq: +4930123456042 is not a number of tenant other '
     '(it belongs to tenant acme)', '[own_number]'),
    ('main_number_of_another_tenant', """
     - voxplane.pbx.tenant: {name: other, main_number: "+4930123456042"}
     """,
     'tenant other: main_number: +4930123456042 is not a number of tenant other (it belongs to tenant acme)',
     '[reference]'),
    ('premium_forward', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "204", forwarding: {busy: "0900 1234567"}}
     """, 'extension 204 (tenant acme): forwarding.busy: +499001234567 is a premium-rate number', '[premium_calls]'),
    ('emergency_only_forward', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "205", emergency_only: true, forwarding: {busy: "030 5550100"}}
     """, 'extension 205 (tenant acme): forwarding.busy:', '[emergency_only]'),
    ('outside_call_limit', """
     - voxplane.pbx.tenant: {name: acme, max_outside_calls: 0}
     """, 'tenant acme: max_outside_calls:', '[range]'),
    ('argument_type', """
     - voxplane.pbx.extension: {tenant: acme, internal_number: "204", ring_time: soon}
     """, "extension 204 (tenant acme): ring_time: argument 'ring_time' is of type str", '[type]'),
    ('argument_choices', """
     - voxplane.pbx.group: {tenant: acme, internal_number: "600", strategy: random}
     """, 'group 600 (tenant acme): strategy: value of strategy must be one of: parallel, sequential, got: random',
     '[choices]'),
]


@pytest.fixture(scope='module')
def bad_input_directory(request, backend, acme_directory, tmp_path_factory):
    copy = new_location(request, backend, tmp_path_factory.mktemp('bad'))
    if backend == 'sqlite':
        shutil.copy(acme_directory[0], copy)
    else:
        acme_on(copy)
    setup = write_play(tmp_path_factory.mktemp('setup'), 'setup', SETUP_OTHER)
    run = run_playbook(setup, {'directory': copy})
    assert run.rc == 0, run
    return copy


@pytest.mark.parametrize('name,tasks,where,rule', BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_fails_clearly_and_changes_nothing(bad_input_directory, tmp_path, name, tasks, where, rule):
    before = db_fingerprint(bad_input_directory)
    run = run_playbook(write_play(tmp_path, name, tasks), {'directory': bad_input_directory})
    assert run.rc != 0 and run.failed == 1, run
    assert where in run.stdout and rule in run.stdout, run
    assert 'Traceback' not in run.stdout + run.stderr
    assert db_fingerprint(bad_input_directory) == before


# A tenant's main number and a location's emergency caller ID name numbers of the tenant. Users write the
# tenant first and its numbers afterwards; the older order sets them in a second tenant task.
NORDWIND_TENANT = """
- name: The tenant
  voxplane.pbx.tenant:
    name: nordwind
    sip_domain: nordwind.pbx.test
    licences: {seats: {smart: 2}}
"""
NORDWIND_REFERENCES = """
    main_number: "040 555010"
    locations:
      - {name: hq, street: Speicherstadt 1, postal_code: "20457", city: Hamburg, emergency_caller_id: "+494055501099"}
"""
NORDWIND_BLOCK = """
- name: Its numbers
  voxplane.pbx.number: {tenant: nordwind, number: "+4940555010", ddi_range: "00-99"}
"""
ORDERS = {
    # the tenant with everything first (it warns: the numbers do not exist yet), then the numbers
    'numbers_after_the_tenant': NORDWIND_TENANT.rstrip('\n') + NORDWIND_REFERENCES + NORDWIND_BLOCK,
    # the tenant, its numbers, then a second tenant task that sets what names them
    'numbers_before_the_references': NORDWIND_TENANT + NORDWIND_BLOCK + """
- name: Its main number and locations
  voxplane.pbx.tenant:
    name: nordwind""" + NORDWIND_REFERENCES,
}
WARNINGS = ['tenant nordwind: main_number: +4940555010 is not a number of tenant nordwind yet (no tenant holds it): '
            'accepted;',
            'tenant nordwind: locations[0].emergency_caller_id: location hq: +494055501099 is not a number of tenant '
            'nordwind yet (no tenant holds it): accepted;']


def _warnings(run):
    """The warnings ansible-playbook printed, each on one line."""
    text = re.sub(r'\s+', ' ', run.stdout + run.stderr)
    return [w for w in WARNINGS if w in text]


@pytest.mark.parametrize('order', sorted(ORDERS))
def test_a_tenant_and_the_numbers_it_names_in_either_order(tmp_path, order):
    path = str(tmp_path / 'directory.db')
    play = write_play(tmp_path, order, ORDERS[order])
    first = run_playbook(play, {'directory': path})
    assert first.rc == 0 and first.failed == 0 and first.changed == (2 if order == 'numbers_after_the_tenant' else 3), first
    assert _warnings(first) == (WARNINGS if order == 'numbers_after_the_tenant' else []), first
    again = run_playbook(play, {'directory': path})
    assert again.rc == 0 and again.changed == 0 and _warnings(again) == [], again
    conn = sqlite3.connect(path)
    doc = json.loads(conn.execute("SELECT doc FROM tenants WHERE name = 'nordwind'").fetchone()[0])
    conn.close()
    assert doc['main_number'] == '+4940555010' and doc['locations'][0]['emergency_caller_id'] == '+494055501099'


ROLE_PLAY = """\
- hosts: localhost
  gather_facts: false
  roles:
    - role: voxplane.pbx.directory
      vars:
        directory_path: "{{ path }}"
        directory_group: voxplane-no-such-group
"""


def test_the_directory_role_creates_its_folder_and_predicts_it_in_check_mode(tmp_path):
    play = tmp_path / 'role.yml'
    play.write_text(ROLE_PLAY)
    path = tmp_path / 'srv' / 'voxplane' / 'directory.db'
    check = run_playbook(str(play), {'path': str(path)}, check=True)
    assert check.rc == 0 and check.failed == 0, check
    assert not (tmp_path / 'srv').exists()
    run = run_playbook(str(play), {'path': str(path)})
    assert run.rc == 0 and run.failed == 0 and run.changed > 0, run
    assert path.exists() and db_fingerprint(str(path))[1] == 0
    again = run_playbook(str(play), {'path': str(path)})
    assert again.rc == 0 and again.changed == 0, again


def test_a_module_refuses_a_missing_folder_unless_create_parents(tmp_path):
    path = tmp_path / 'srv' / 'voxplane' / 'directory.db'
    play = write_play(tmp_path, 'folder', """
        - voxplane.pbx.tenant: {name: acme, sip_domain: acme.pbx.test}
        """)
    run = run_playbook(play, {'directory': str(path)})
    assert run.rc != 0 and run.failed == 1, run
    assert 'the folder %s does not exist' % path.parent in run.stdout and 'create_parents' in run.stdout, run
    assert not (tmp_path / 'srv').exists()
    play = write_play(tmp_path, 'parents', """
        - voxplane.pbx.tenant: {name: acme, sip_domain: acme.pbx.test, create_parents: true}
        """)
    run = run_playbook(play, {'directory': str(path)})
    assert run.rc == 0 and run.changed == 1, run
    assert path.exists()


def test_another_applications_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / 'app.db'
    conn = sqlite3.connect(str(path))
    conn.execute('CREATE TABLE users (id INTEGER PRIMARY KEY)')
    conn.execute('CREATE TABLE orders (id INTEGER PRIMARY KEY)')
    conn.commit()
    conn.close()
    before = path.read_bytes()
    play = write_play(tmp_path, 'foreign', """
        - voxplane.pbx.tenant: {name: acme, sip_domain: acme.pbx.test}
        """)
    run = run_playbook(play, {'directory': str(path)})
    assert run.rc != 0 and run.failed == 1, run
    assert ('directory %s: is a SQLite database of another application (tables: orders, users), '
            'not a voxplane directory' % path) in run.stdout, run
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ['app.db', 'foreign.yml']
