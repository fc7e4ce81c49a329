# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole-tenant documents: states, round trips, every violation at once, diffs, CSV, offline validation."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

import pytest

from directory_helpers import harness  # pytest.ini pythonpath

from ansible_collections.voxplane.pbx.plugins.module_utils import tenant_csv
from ansible_collections.voxplane.pbx.plugins.module_utils import tenant_document as td
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

DOMAIN = 'acme.voxplane.example'


def document():
    """A tenant with every kind the document holds, umlauts included."""
    return {
        'tenant': {'name': 'acme', 'sip_domain': DOMAIN, 'licences': {'seats': {'smart': 5, 'best': 2}},
                   'media_server': 'sip:media.acme.voxplane.example:5060',
                   'locations': [{'name': 'hq', 'street': 'Hauptstraße 1', 'postal_code': '10115', 'city': 'Berlin'}]},
        'numbers': [{'number': '+49301234', 'ddi_range': '00-99'},
                    {'number': '+4930999001', 'status': 'porting', 'porting_date': '2999-01-04', 'target': '10'}],
        'extensions': [
            {'internal_number': '10', 'ddi': '10', 'name': 'Jürgen Weiß', 'location': 'hq',
             'sip_accounts': [{'username': 'juergen.desk', 'password': 'Sommer-2024!'},
                              {'username': 'juergen.app', 'kind': 'softclient', 'password': 'Sommer-2024!'}],
             'voicemail': {'enabled': True, 'pin': '4711'}, 'seat': 'best',
             'speed_dials': [{'code': '1', 'number': '11', 'name': 'Büro'}, {'code': '2', 'number': '089 123456'}]},
            {'internal_number': '11', 'ddi': '11', 'name': 'Anna Schmidt',
             'sip_accounts': [{'username': 'anna.desk', 'password': 'Winter-2024!'}]},
            {'internal_number': '12', 'name': 'Bert', 'sip_accounts': [{'username': 'bert.desk', 'password': 'Herbst-2024!'}]},
        ],
        'devices': [{'mac': '00-15-65-aa-bb-01', 'model': 'yealink-t46u', 'lines': ['juergen.desk']},
                    {'mac': '00:15:65:aa:bb:02', 'model': 'snom-d735', 'lines': ['anna.desk', 'bert.desk']}],
        'groups': [{'internal_number': '50', 'name': 'Empfang', 'members': ['10', '11']}],
        'phonebook': [{'name': 'Müller & Söhne', 'number': '089 7654321', 'company': 'Müller GmbH'}],
    }


def apply(path, doc, state='merged', **kwargs):
    with Directory(path).transaction(create_parents=True) as txn:
        return td.apply_document(txn, doc, state, **kwargs)


def export(path, secrets=False, tenant='acme'):
    with Directory(path).transaction(write=False, create=False) as txn:
        return td.export_document(txn.load_tenant(tenant), secrets)


def rejected(path, doc, state='merged'):
    """Apply a document that must fail; prove nothing was written; return the violation lines."""
    before = export(path, True) if Directory(path).exists() else None
    with pytest.raises(ValidationFailed) as info:
        apply(path, doc, state)
    assert (export(path, True) if Directory(path).exists() else None) == before
    return [str(v) for v in info.value.violations]


@pytest.fixture
def db(request, tmp_path, backend):
    """The document's tenant in a directory of each backend (conftest's ``backend``); its location."""
    path = harness(request, tmp_path, backend).path
    apply(path, document())
    return path


def test_an_export_applies_with_no_change_in_every_state(db):
    exported = export(db)
    for state in ('merged', 'replaced', 'overridden'):
        assert apply(db, copy.deepcopy(exported), state).changes == [], state
    # JSON text, as a file in git holds it
    assert apply(db, json.loads(json.dumps(exported)), 'overridden').changes == []


def test_an_export_with_secrets_restores_the_same_directory_content(db, tmp_path):
    backup = export(db, secrets=True)
    assert 'password' not in json.dumps(backup) and 'Sommer' not in json.dumps(backup)
    assert all('ha1' in a for e in backup['extensions'] for a in e['sip_accounts'])
    assert backup['extensions'][0]['voicemail']['pin_hash']
    empty = str(tmp_path / 'restored.db')
    apply(empty, copy.deepcopy(backup), 'overridden')
    assert export(empty, secrets=True) == backup


def test_merged_leaves_unlisted_objects_and_fields(db):
    result = apply(db, {'tenant': {'name': 'acme'}, 'extensions': [{'internal_number': '11', 'ring_time': 40}]})
    assert [c.summary('acme') for c in result.changes] == ['update extension 11 (tenant acme)']
    ext = {e['internal_number']: e for e in export(db)['extensions']}
    assert ext['11']['ring_time'] == 40 and ext['11']['name'] == 'Anna Schmidt' and len(ext) == 3


def test_replaced_makes_a_listed_object_exactly_as_written_and_keeps_its_secrets(db):
    apply(db, {'tenant': {'name': 'acme'}, 'extensions': [{'internal_number': '11', 'dnd': True, 'mobile': '0171 1234567'}]})
    before = export(db, secrets=True)
    # No tenant section: the tenant object is not listed, so it stays (named by the task instead).
    result = apply(db, td.parse_document({'extensions': [
        {'internal_number': '11', 'name': 'Anna Schmidt', 'sip_accounts': [{'username': 'anna.desk'}]}]}, 'acme'), 'replaced')
    assert [c.summary('acme') for c in result.changes] == ['update extension 11 (tenant acme)']
    after = dict((e['internal_number'], e) for e in export(db, secrets=True)['extensions'])
    assert after['11']['dnd'] is False and after['11']['mobile'] is None and after['11']['ddi'] is None
    assert after['11']['sip_accounts'] == [a for e in before['extensions'] if e['internal_number'] == '11' for a in e['sip_accounts']]
    assert len(after) == 3


def test_overridden_removes_exactly_the_extension_left_out_with_its_accounts_and_device_line(db):
    doc = export(db)
    doc['extensions'] = [e for e in doc['extensions'] if e['internal_number'] != '12']
    doc['devices'][1]['lines'] = ['anna.desk']
    with Directory(db).transaction() as txn:           # check mode: the same run, rolled back
        planned = [c.summary('acme') for c in td.apply_document(txn, copy.deepcopy(doc), 'overridden').changes]
        txn.rollback_at_exit()
    assert sorted(planned) == ['delete extension 12 (tenant acme)', 'update device 00:15:65:aa:bb:02 (tenant acme)']
    assert len(export(db)['extensions']) == 3
    result = apply(db, doc, 'overridden')
    assert sorted(c.summary('acme') for c in result.changes) == sorted(planned)
    assert td.counts(result)['extensions'] == {'added': 0, 'changed': 0, 'removed': 1}
    with Directory(db).transaction(write=False, create=False) as txn:
        users = [r[0] for r in txn.conn.execute('SELECT username FROM sip_accounts ORDER BY username')]
    assert users == ['anna.desk', 'juergen.app', 'juergen.desk']


def test_overridden_refuses_to_drop_an_extension_whose_account_is_still_a_device_line(db):
    doc = export(db)
    doc['extensions'] = [e for e in doc['extensions'] if e['internal_number'] != '12']
    lines = rejected(db, doc, 'overridden')
    assert lines == ['extension 12 (tenant acme): sip_accounts: cannot remove SIP account bert.desk: it is a line of '
                     'device 00:15:65:aa:bb:02 [still_referenced]']


def test_every_violation_of_a_bad_document_at_once(db):
    doc = export(db)
    doc['extensions'][0]['seat'] = 'gold'                       # a field rule
    doc['extensions'][1]['ring_time'] = 'long'                  # a type
    doc['extensions'][2]['colour'] = 'blue'                     # an unknown field
    doc['devices'][0]['mac'] = '00:15:65:zz:bb:01'              # a bad key
    doc['groups'][0]['members'] = ['10', '99']                  # a dangling reference (integrity)
    doc['phonebook'].append({'name': 'Ohne Nummer'})            # a required field
    lines = rejected(db, doc, 'overridden')
    text = '\n'.join(lines)
    assert "extension 10 (tenant acme): seat: 'gold' is not one of smart, best [choice]" in text
    assert "extension 11 (tenant acme): ring_time: must be a whole number, got str 'long' [type]" in text
    assert 'extension 12 (tenant acme): colour: is not a field of a extension' in text
    assert 'device 00:15:65:zz:bb:01 (tenant acme): mac:' in text and '[mac' in text
    assert 'phonebook_entry Ohne Nummer (tenant acme): number: is required when the phonebook_entry is created [required]' in text
    assert len(lines) >= 5


def test_integrity_violations_come_all_together(db):
    doc = export(db)
    doc['groups'][0]['members'] = ['10', '99']
    doc['extensions'][1]['speed_dials'] = [{'code': '7', 'number': '98'}]
    doc['tenant']['licences'] = {'seats': {'smart': 1, 'best': 1}}
    lines = rejected(db, doc)
    assert any('group 50 (tenant acme): members: extension 99 does not exist' in l for l in lines)
    assert any('extension 11 (tenant acme): speed_dials[0].number: target 98 does not exist' in l for l in lines)
    assert any('licences.seats.smart' in l and '[seats]' in l for l in lines)


def test_field_rules_and_integrity_are_reported_together(db):
    """A well-formed document whose fields break rules is still judged whole: the field rules and the
    integrity checks come in one answer, without echoes of the objects that are wrong themselves."""
    doc = export(db)
    doc['extensions'][0]['seat'] = 'gold'                              # a field rule
    doc['extensions'].append({'internal_number': '13', 'ring_time': 3,   # a field rule on a new extension ...
                              'sip_accounts': [{'username': 'neu.desk', 'password': 'Frühling-2024!'}]})
    doc['groups'][0]['members'] = ['10', '99']                         # a dangling reference (integrity)
    doc['groups'].append({'internal_number': '51', 'members': ['13']})  # ... not echoed as "does not exist"
    doc['devices'].append({'mac': '00:15:65:aa:bb:03', 'model': 'yealink-t46u', 'lines': ['neu.desk']})
    doc['tenant']['licences'] = {'seats': {'smart': 1, 'best': 2}}    # seats (integrity)
    lines = rejected(db, doc)
    assert sorted(l.rsplit('[', 1)[1] for l in lines) == ['choice]', 'range]', 'reference]', 'seats]']
    assert any(l.startswith('extension 10 (tenant acme): seat:') for l in lines)
    assert any(l.startswith('extension 13 (tenant acme): ring_time:') for l in lines)
    assert any('group 50 (tenant acme): members: extension 99 does not exist' in l for l in lines)


def test_a_new_tenant_with_a_bad_setting_still_has_its_objects_judged(tmp_path):
    doc = document()
    doc['tenant']['timezone'] = 'Europe/Atlantis'
    doc['groups'][0]['members'] = ['10', '99']
    lines = rejected(str(tmp_path / 'directory.db'), doc)
    assert len(lines) == 2 and lines[0].startswith('tenant acme: timezone:'), lines
    assert 'group 50 (tenant acme): members: extension 99 does not exist' in lines[1]


def test_a_document_names_its_tenant_once(db):
    assert rejected(db, {'tenant': {'sip_domain': DOMAIN}}) == [
        'document config: tenant.name: name the tenant: in the document (tenant.name) or with the tenant option [required]']
    doc = td.parse_document({'tenant': {'name': 'acme'}}, 'beta')
    assert [v.rule for v in doc.violations] == ['tenant_mismatch']
    doc = td.parse_document({'tenant': {'name': 'acme'}, 'extensions': [{'internal_number': '10', 'tenant': 'beta'}]})
    assert [str(v) for v in doc.violations] == [
        'extension 10 (tenant acme): tenant: belongs to tenant beta, the document is tenant acme [tenant_mismatch]']


def test_a_key_listed_twice_and_unknown_sections_are_reported(db):
    doc = td.parse_document({'tenant': {'name': 'acme'}, 'extensions': [{'internal_number': '10'}, {'internal_number': '10'}],
                             'parking_lots': [], 'number_plan': {}, 'exists': True})
    assert sorted(v.rule for v in doc.violations) == ['requested_twice', 'unsupported']


def test_speed_dial_rules(db):
    doc = {'tenant': {'name': 'acme'}, 'extensions': [{'internal_number': '11', 'speed_dials': [
        {'code': '1', 'number': '12'}, {'code': '1', 'number': '10'}, {'code': '1234', 'number': '10'},
        {'code': '5', 'number': 'voicemail'}]}]}
    lines = rejected(db, doc)
    assert [l.split(': ', 2)[1] for l in lines] == ['speed_dials[1].code', 'speed_dials[2].code', 'speed_dials[3].number']


def test_deleted_is_refused_while_a_number_is_porting_unless_forced(db):
    assert rejected(db, {'tenant': {'name': 'acme'}}, 'deleted') == [
        'number +4930999001 (tenant acme): status: cannot remove tenant acme while +4930999001 is still porting '
        '(porting day 2999-01-04); wait for the porting day, or set force [porting]']
    result = apply(db, {'tenant': {'name': 'acme'}}, 'deleted', force=True)
    assert td.counts(result)['extensions']['removed'] == 3 and td.counts(result)['tenant']['removed'] == 1
    assert export(db)['tenant'] == {}
    with Directory(db).transaction(write=False, create=False) as txn:
        assert [txn.conn.execute('SELECT COUNT(*) FROM %s' % t).fetchone()[0]
                for t in ('tenants', 'extensions', 'sip_accounts', 'devices', 'numbers', 'number_claims',
                          'call_groups', 'phonebook_entries')] == [0] * 8


def test_the_diff_is_bounded_readable_and_never_shows_a_secret(tmp_path):
    with Directory(':memory:').transaction() as txn:
        result = td.apply_document(txn, document())
    text = td.diff_text(result, limit=2)
    assert text.splitlines()[:7] == [
        'tenant acme: 10 changes',
        '  tenant:     1 added, 0 changed, 0 removed',
        '  numbers:    2 added, 0 changed, 0 removed',
        '  extensions: 3 added, 0 changed, 0 removed',
        '  devices:    2 added, 0 changed, 0 removed',
        '  groups:     1 added, 0 changed, 0 removed',
        '  phonebook:  1 added, 0 changed, 0 removed',
    ]
    assert text.rstrip().endswith('... and 8 more changes not shown (diff_limit 2)')
    full = td.diff_text(result, limit=100)
    assert 'Sommer' not in full and '4711' not in full and '"password": "********"' in full
    assert 'speed_dials: [{"code": "1", "name": "Büro", "number": "11"}' in full


def test_an_update_diff_names_each_changed_field_and_a_changed_secret(db):
    accounts = [{'username': 'anna.desk', 'password': 'Neu-2025!!'}]
    doc = {'tenant': {'name': 'acme'}, 'extensions': [{'internal_number': '11', 'ring_time': 45, 'sip_accounts': accounts}]}
    text = td.diff_text(apply(db, doc))
    assert '~ extension 11 (tenant acme)\n    ring_time: 20 -> 45\n' \
        '    sip_accounts[0].password: "********" -> "******** (changed)"\n' in text
    assert 'Neu-2025' not in text


def test_a_diff_names_fields_by_their_path_as_the_object_modules_do(db):
    doc = {'tenant': {'name': 'acme', 'licences': {'seats': {'smart': 6, 'best': 2}}},
           'extensions': [{'internal_number': '11', 'forwarding': {'no_answer': '10'}, 'voicemail': {'enabled': True}},
                          {'internal_number': '13', 'name': 'Neu', 'forwarding': {'busy': '10'},
                           'sip_accounts': [{'username': 'neu.desk', 'password': 'Sommer-2024!'}]}]}
    text = td.diff_text(apply(db, doc))
    assert '~ tenant acme\n    licences.seats.smart: 5 -> 6\n' in text
    assert '~ extension 11 (tenant acme)\n    forwarding.no_answer: null -> "10"\n    voicemail.enabled: false -> true\n' in text
    assert '+ extension 13 (tenant acme)\n    forwarding.busy: "10"\n    name: "Neu"\n' in text
    assert 'forwarding: {' not in text and '"busy": null' not in text


def test_offline_validation_in_an_empty_in_memory_directory():
    """The lint of a tenant file: every rule and integrity check inside the document, no file anywhere."""
    doc = document()
    doc['tenant']['licences'] = {'seats': {'smart': 1}}
    doc['extensions'][2]['internal_number'] = '780'
    with pytest.raises(ValidationFailed) as info:
        with Directory(':memory:').transaction() as txn:
            td.apply_document(txn, doc)
    rules = sorted(v.rule for v in info.value.violations)
    assert 'internal_forbidden_prefix' in rules
    with Directory(':memory:').transaction() as txn:
        assert td.apply_document(txn, document()).changed


def test_secret_values_are_found_for_masking():
    assert td.secret_values(document()) == {'Sommer-2024!', 'Winter-2024!', 'Herbst-2024!', '4711'}


# CSV ---------------------------------------------------------------------------------------------

EXTENSIONS_CSV = (
    'internal_number;name;email;seat;ddi;account1_username;account1_kind;account1_password;'
    'account2_username;account2_kind;account2_password;device_mac;device_model\n'
    '20;Jörg Übermuth;joerg@acme.example;smart;20;joerg.desk;desk_phone;Sommer-2024!;;;;00-15-65-aa-cc-20;yealink-t46u\n'
    '21;Zoë Ärmel;;best;21;zoe.desk;;Sommer-2024!;zoe.app;softclient;Sommer-2024!;;\n'
)


def write(tmp_path, name, text, encoding='utf-8'):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_csv_extensions_with_umlauts_apply_and_export_round_trips(db, tmp_path):
    src = write(tmp_path, 'extensions.csv', EXTENSIONS_CSV, 'utf-8-sig')   # Excel writes a byte order mark
    result = apply(db, td.read_document(src, 'acme'))
    assert sorted(c.summary('acme') for c in result.changes) == [
        'create device 00:15:65:aa:cc:20 (tenant acme)', 'create extension 20 (tenant acme)', 'create extension 21 (tenant acme)']
    ext = dict((e['internal_number'], e) for e in export(db)['extensions'])
    assert ext['20']['name'] == 'Jörg Übermuth' and ext['21']['sip_accounts'][1] == {'username': 'zoe.app', 'kind': 'softclient'}
    for delimiter in (';', ','):
        texts, skipped = tenant_csv.render(export(db), delimiter)
        assert skipped == ['device 00:15:65:aa:bb:02: its lines are not the accounts of one extension']
        for kind, text in texts.items():
            path = write(tmp_path, '%s-%s.csv' % (kind, delimiter == ';'), text)
            assert apply(db, td.read_document(path, 'acme')).changes == [], (kind, text)


def test_csv_with_three_bad_rows_names_file_row_and_column_and_changes_nothing(db, tmp_path):
    text = EXTENSIONS_CSV + (
        '780;Falsch;;smart;;x780.desk;;Sommer-2024!;;;;;\n'
        '22;Gold;;gold;;gold.desk;;Sommer-2024!;;;;;\n'
        '23;Kurz;;smart;;abc;;Sommer-2024!;;;;zz-15-65-aa-cc-23;yealink-t46u\n'
    )
    src = write(tmp_path, 'extensions.csv', text)
    lines = rejected(db, td.read_document(src, 'acme'))
    assert len(lines) == 5, lines
    assert lines[0].startswith("extensions.csv row 4 (extension 780 (tenant acme)): internal_number: '780'")
    assert lines[1] == "extensions.csv row 5 (extension 22 (tenant acme)): seat: 'gold' is not one of smart, best [choice]"
    assert any(l.startswith("extensions.csv row 6 (extension 23 (tenant acme)): account1_username: 'abc'") for l in lines)
    assert any(l.startswith('extensions.csv row 6 (device zz-15-65-aa-cc-23 (tenant acme)): device_mac:') for l in lines)
    # the device's other fields are judged too, although its MAC is wrong: no second round
    assert "extensions.csv row 6 (device zz-15-65-aa-cc-23 (tenant acme)): device_lines: 'abc': usernames have at least " \
        "5 characters [username_length]" in lines


def test_csv_cell_and_header_errors_name_row_and_column(db, tmp_path):
    src = write(tmp_path, 'x.csv', 'internal_number,ring_time,international_calls,colour\n'
                                   '10,lang,vielleicht,rot\n11,30,ja,\n')
    lines = rejected(db, td.read_document(src, 'acme'))
    assert lines == [
        'x.csv row 1: colour: is not a column of this layout (known: internal_number, name, email, role, seat, ddi, '
        'assign_all_external_numbers, external_numbers, outbound_caller_id, mobile, location, ring_time, international_calls, language, '
        'voicemail_enabled, voicemail_pin, voicemail_pin_hash, voicemail_locked, voicemail_email, voicemail_attach, '
        'voicemail_delete_after_email, device_mac, device_model, device_name, device_lines, '
        'account<N>_username, account<N>_kind, account<N>_password, account<N>_ha1, account<N>_require_tls) [unsupported]',
        "x.csv row 2 (extension 10): ring_time: 'lang' is not a whole number [type]",
        "x.csv row 2 (extension 10): international_calls: 'vielleicht' is not true or false (also accepted: yes/no, ja/nein, "
        "1/0) [type]",
    ]


def test_csv_not_utf8_is_refused_naming_the_row(db, tmp_path):
    src = write(tmp_path, 'phonebook.csv', 'name;number\nMüller;089 1\n', 'latin-1')
    lines = rejected(db, td.read_document(src, 'acme'))
    assert len(lines) == 1 and lines[0].startswith('phonebook.csv row 2: file: is not UTF-8')


def test_csv_phonebook_and_speed_dials(db, tmp_path):
    book = write(tmp_path, 'book.csv', 'name,number,company\n"Schulze, Jürgen",030 555 1234,Schulze KG\nÄrztehaus,+49 89 123456,\n')
    result = apply(db, td.read_document(book, 'acme'))
    assert td.counts(result)['phonebook'] == {'added': 2, 'changed': 0, 'removed': 0}
    entries = dict((e['name'], e) for e in export(db)['phonebook'])
    assert entries['Schulze, Jürgen']['number'] == '+49305551234'
    dials = write(tmp_path, 'dials.csv', 'extension;code;number;name\n11;1;10;Jürgen\n11;2;0301234;Zentrale\n12;1;bad;\n')
    lines = rejected(db, td.read_document(dials, 'acme'))
    assert len(lines) == 1 and lines[0].startswith('dials.csv row 4 (extension 12 (tenant acme)): number:')
    dials = write(tmp_path, 'dials.csv', 'extension;code;number;name\n11;1;10;Jürgen\n11;2;0301234;Zentrale\n')
    apply(db, td.read_document(dials, 'acme'))
    ext = dict((e['internal_number'], e) for e in export(db)['extensions'])
    assert ext['11']['speed_dials'] == [
        {'code': '1', 'number': '10', 'name': 'Jürgen'}, {'code': '2', 'number': '+49301234', 'name': 'Zentrale'}]
    assert ext['10']['speed_dials'][0]['name'] == 'Büro'     # extensions the file does not list keep theirs


def test_csv_export_says_what_it_cannot_hold(db):
    texts, skipped = tenant_csv.render(export(db))
    assert skipped == ['device 00:15:65:aa:bb:02: its lines are not the accounts of one extension']
    assert texts['extensions'].splitlines()[0].startswith('internal_number;name;email;role;seat;ddi;')


def test_the_unchanged_shortcut_never_hides_a_change(db):
    """An exported object applied again takes the shortcut; any real difference still changes it."""
    from ansible_collections.voxplane.pbx.plugins.module_utils import model
    with Directory(db).transaction(write=False, create=False) as txn:
        state = txn.load_tenant('acme')
    ext = state.get('extension', '10')
    exported = dict((e['internal_number'], e) for e in export(db, secrets=True)['extensions'])['10']
    assert model.unchanged_by('extension', ext, exported)
    assert model.unchanged_by('extension', ext, model.replacement('extension', exported))
    for field, value in (('name', 'Jürgen W.'), ('ring_time', 25), ('forwarding', {'busy': '11'}), ('speed_dials', []),
                         ('voicemail', {'pin': '4711'}), ('ddi', 10),
                         ('sip_accounts', [{'username': 'juergen.desk', 'password': 'Sommer-2024!'}])):
        assert not model.unchanged_by('extension', ext, dict(exported, **{field: value})), field
    accounts = [dict(a) for a in exported['sip_accounts']]
    accounts[0]['ha1'] = '0' * 32
    assert not model.unchanged_by('extension', ext, dict(exported, sip_accounts=accounts))
    tenant_like = {'licences': {'seats': {'smart': 5, 'best': 2}, 'addons': {}}}
    assert not model._same_value({'seats': {}}, tenant_like['licences'])
    doc = export(db)
    doc['tenant']['licences'] = {'seats': {'smart': 5}}
    assert [str(v) for v in pytest.raises(ValidationFailed, apply, db, doc).value.violations] == [
        'tenant acme: licences.seats.best: 1 extension takes a best seat but the tenant has 0; none is left for '
        'extension 10 [seats]']


@pytest.mark.parametrize('field, value', [
    ('forwarding', {'busy': True}), ('name', ['a']), ('sip_accounts', [{'username': 'anna.desk', 'kind': True}]),
    ('voicemail', {'enabled': 'yes'}), ('external_numbers', [None]), ('speed_dials', ['1']), ('dnd', 'no'),
])
def test_a_value_of_the_wrong_type_is_a_violation_never_a_crash(db, field, value):
    doc = {'tenant': {'name': 'acme'}, 'extensions': [{'internal_number': '11', field: value}]}
    lines = rejected(db, doc)
    assert len(lines) == 1 and lines[0].startswith('extension 11 (tenant acme): %s' % field) and '[type]' in lines[0], lines


def test_numbers_and_dates_where_text_belongs_are_read_as_text(db):
    import datetime
    apply(db, {'tenant': {'name': 'acme'}, 'extensions': [{'internal_number': 11, 'name': 1234, 'ddi': 11}],
               'phonebook': [{'name': 4711, 'number': '030 1234567', 'company': datetime.date(2024, 1, 2)}]})
    doc = export(db)
    assert [e['name'] for e in doc['extensions'] if e['internal_number'] == '11'] == ['1234']
    assert [(e['name'], e['company']) for e in doc['phonebook'] if e['name'] == '4711'] == [('4711', '2024-01-02')]


def test_a_broken_object_is_not_reported_again_as_a_missing_reference(db):
    """An extension with a shape error is left out of the engine's pass: the group that names it and the
    overridden state do not add 'does not exist' or 'cannot remove' for it."""
    doc = export(db)
    doc['extensions'].append({'internal_number': '13', 'name': 'Neu', 'colour': 'rot',
                              'sip_accounts': [{'username': 'neu.desk', 'password': 'Sommer-2024!'}]})
    doc['groups'][0]['members'] = ['10', '11', '13']
    doc['extensions'][0]['seat'] = 'gold'
    lines = rejected(db, doc, 'overridden')
    assert len(lines) == 2, lines
    assert lines[0].startswith('extension 13 (tenant acme): colour: is not a field') and '[choice]' in lines[1]
