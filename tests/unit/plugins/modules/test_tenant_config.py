# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tenant_config and tenant_info's export, run in-process against a real SQLite directory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from module_helpers import Pbx

PASSWORD = 'Sommer-2024!'


def config():
    return {
        'tenant': {'name': 'acme', 'sip_domain': 'acme.voxplane.example', 'licences': {'seats': {'smart': 5}}},
        'numbers': [{'number': '+49301234', 'ddi_range': '00-99'}],
        'extensions': [
            {'internal_number': '10', 'ddi': '10', 'name': 'Jürgen', 'sip_accounts': [{'username': 'juergen.desk', 'password': PASSWORD}],
             'speed_dials': [{'code': '1', 'number': '030 1234567'}]},
            {'internal_number': '11', 'name': 'Anna', 'sip_accounts': [{'username': 'anna.desk', 'password': PASSWORD}]},
        ],
        'devices': [{'mac': '00:15:65:aa:bb:01', 'model': 'yealink-t46u', 'lines': ['juergen.desk']}],
        'phonebook': [{'name': 'Müller', 'number': '089 123456'}],
    }


@pytest.fixture
def pbx(tmp_path):
    pbx = Pbx(tmp_path / 'directory.db')
    result = pbx.ok('tenant_config', config=config())
    assert result['changed'] and result['counts']['extensions'] == {'added': 2, 'changed': 0, 'removed': 0}
    return pbx


def test_the_password_never_leaves_the_module(pbx, tmp_path):
    result = Pbx(tmp_path / 'other.db').run('tenant_config', check=True, diff=True, config=config())
    assert PASSWORD not in result.raw
    assert 'not echoed' in result['invocation']['module_args']['config']
    assert '********' in result['diff']['prepared']


def test_check_mode_writes_nothing_and_shows_the_plan(pbx):
    snapshot = pbx.snapshot()
    doc = config()
    doc['extensions'] = doc['extensions'][:1]
    result = pbx.ok('tenant_config', check=True, diff=True, config=doc, state='overridden')
    assert result['changed'] and result['changes'] == ['delete extension 11 (tenant acme)']
    assert result['counts']['extensions'] == {'added': 0, 'changed': 0, 'removed': 1}
    assert '- extension 11 (tenant acme)' in result['diff']['prepared']
    assert pbx.snapshot() == snapshot


def test_an_unchanged_document_changes_nothing_and_has_no_diff(pbx):
    generation = pbx.generation()
    result = pbx.ok('tenant_config', config=config(), diff=True)
    assert result['changed'] is False and result['changes'] == [] and result['diff'] == {}
    assert pbx.generation() == generation


def test_bad_input_fails_with_every_violation_and_writes_nothing(pbx):
    snapshot = pbx.snapshot()
    doc = config()
    doc['extensions'][0]['seat'] = 'gold'
    doc['extensions'][1]['sip_accounts'][0]['username'] = 'Änna.desk'
    result = pbx.run('tenant_config', config=doc)
    assert result.failed and len(result['violations']) == 2
    assert [v['rule'] for v in result['violations']] == ['choice', 'username_charset']
    assert result['violations'][0]['object'] == 'extension 10 (tenant acme)'
    assert pbx.snapshot() == snapshot


def test_config_and_src_exclude_each_other_and_one_is_needed(pbx, tmp_path):
    result = pbx.run('tenant_config', config=config(), src=str(tmp_path / 'x.json'))
    assert result.failed and result['violations'][0]['rule'] == 'mutually_exclusive'
    result = pbx.run('tenant_config', tenant='acme')
    assert result.failed and result['violations'][0]['rule'] == 'required'


def test_a_csv_is_applied_merged_only(pbx, tmp_path):
    src = tmp_path / 'phonebook.csv'
    src.write_text('name;number\nSchulze;030 5551234\n', encoding='utf-8')
    result = pbx.run('tenant_config', tenant='acme', src=str(src), state='overridden')
    assert result.failed and result['violations'][0]['rule'] == 'csv_merged'
    assert pbx.ok('tenant_config', tenant='acme', src=str(src))['counts']['phonebook']['added'] == 1


def test_deleted_removes_the_tenant_and_is_quiet_without_a_directory(pbx, tmp_path):
    result = pbx.ok('tenant_config', tenant='acme', state='deleted')
    assert result['changed'] and result['counts']['extensions']['removed'] == 2
    assert pbx.query('SELECT COUNT(*) FROM tenants') == [(0,)]
    missing = Pbx(tmp_path / 'none' / 'directory.db')
    assert missing.ok('tenant_config', tenant='acme', state='deleted')['changed'] is False
    assert not os.path.exists(str(tmp_path / 'none'))


def test_offline_validation_against_an_in_memory_directory(tmp_path):
    offline = Pbx(':memory:')
    assert offline.ok('tenant_config', check=True, config=config())['changed'] is True
    doc = config()
    doc['devices'][0]['lines'] = ['nobody.desk']
    result = offline.run('tenant_config', check=True, config=doc)
    assert result.failed and result['violations'][0]['rule'] == 'reference'
    assert not os.path.exists(':memory:')


def test_validated_passes_a_plain_export_without_any_directory(pbx, tmp_path):
    """The lint of the file a repository keeps: tenant_info's export without secrets passes, nothing is read
    or written, no directory is needed."""
    dest = tmp_path / 'tenants' / 'acme.json'
    assert pbx.ok('tenant_info', tenant='acme', format='json', dest=str(dest))['changed'] is True
    assert 'ha1' not in dest.read_text()
    nowhere = Pbx(tmp_path / 'no' / 'such' / 'directory.db')
    result = nowhere.ok('tenant_config', src=str(dest), state='validated')
    assert result['changed'] is False and result['changes'] == [] and result['tenant'] == 'acme'
    assert result['counts']['extensions'] == {'added': 2, 'changed': 0, 'removed': 0}
    assert result['msg'] == ('tenant acme: the document passes every field rule and integrity check '
                             '(numbers: 1, extensions: 2, devices: 1, phonebook: 1)')
    assert not (tmp_path / 'no').exists()
    # in check mode too, and the directory option is not even looked at
    assert Pbx(tmp_path / 'directory.db').ok('tenant_config', src=str(dest), state='validated', check=True)['changed'] is False


def test_validated_lists_every_violation_and_writes_nothing(pbx, tmp_path):
    snapshot = pbx.snapshot()
    doc = config()
    doc['extensions'][1]['internal_number'] = '780'
    doc['devices'][0]['lines'] = ['nobody.desk']
    doc['tenant']['licences'] = {'seats': {'smart': 0}}
    result = pbx.run('tenant_config', config=doc, state='validated')
    assert result.failed
    assert sorted(v['rule'] for v in result['violations']) == ['internal_forbidden_prefix', 'reference', 'seats']
    assert pbx.snapshot() == snapshot


def test_validated_judges_a_csv_by_its_field_rules(tmp_path):
    src = tmp_path / 'extensions.csv'
    src.write_text('internal_number;name;seat;account1_username;device_mac\n'
                   '210;Anna;smart;anna.desk;00:15:65:12:34:56\n211;Ben;gold;abc;\n', encoding='utf-8')
    nowhere = Pbx(tmp_path / 'missing.db')
    result = nowhere.run('tenant_config', tenant='acme', src=str(src), state='validated')
    assert [(v['object'], v['field'], v['rule']) for v in result['violations']] == [
        ('extensions.csv row 3 (extension 211 (tenant acme))', 'seat', 'choice'),
        ('extensions.csv row 3 (extension 211 (tenant acme))', 'account1_username', 'username_length')]
    src.write_text('internal_number;name;seat;account1_username;device_mac\n210;Anna;smart;anna.desk;00:15:65:12:34:56\n',
                   encoding='utf-8')
    result = nowhere.ok('tenant_config', tenant='acme', src=str(src), state='validated')
    assert 'it has no tenant section' in result['msg'] and not nowhere.exists()


def test_a_plain_export_restored_into_an_empty_directory_asks_for_secrets(pbx, tmp_path):
    dest = tmp_path / 'acme.json'
    pbx.ok('tenant_info', tenant='acme', format='json', dest=str(dest))
    assert pbx.ok('tenant_config', src=str(dest), state='overridden')['changed'] is False   # the same directory: fine
    empty = Pbx(tmp_path / 'empty.db')
    result = empty.run('tenant_config', src=str(dest), state='overridden', create_parents=True)
    assert result.failed and not empty.exists()
    assert result['msg'].startswith('2 rule violations')
    assert ('extension 10 (tenant acme): sip_accounts[0].password: new SIP account juergen.desk needs a password (or ha1); '
            'this directory does not hold the account yet and the document has no secret for it (export with secrets: '
            'true for a backup) [required]') in result['msg']


def test_tenant_info_returns_secrets_only_with_no_log(pbx):
    result = pbx.run('tenant_info', tenant='acme', secrets=True)
    assert result.failed and result['violations'][0]['rule'] == 'no_log'
    result = pbx.ok('tenant_info', tenant='acme', secrets=True, _ansible_no_log=True)
    accounts = result['extensions'][0]['sip_accounts']
    assert accounts[0]['ha1'] == pbx.ha1('juergen.desk') and PASSWORD not in result.raw
    assert result['phonebook'] == [{'name': 'Müller', 'number': '+4989123456', 'mobile': None, 'company': None, 'tenant': 'acme'}]
    plain = pbx.ok('tenant_info', tenant='acme')
    assert 'ha1' not in json.dumps(plain['extensions'])


def test_tenant_info_export_restores_into_an_empty_directory(pbx, tmp_path):
    backup = str(tmp_path / 'backup' / 'acme.json')
    result = pbx.ok('tenant_info', tenant='acme', secrets=True, format='json', dest=backup)
    assert result['changed'] and result['files'] == [backup] and 'ha1' not in result.public_raw
    assert 'extensions' not in result and 'number_plan' not in result
    assert os.stat(backup).st_mode & 0o777 == 0o600
    assert pbx.ok('tenant_info', tenant='acme', secrets=True, format='json', dest=backup)['changed'] is False
    restored = Pbx(tmp_path / 'restored.db')
    restored.ok('tenant_config', src=backup)
    assert restored.ha1('anna.desk') == pbx.ha1('anna.desk')
    assert restored.ok('tenant_config', src=backup)['changed'] is False
    for fmt, name in (('yaml', 'acme.yml'), ('json', 'acme.json')):
        path = str(tmp_path / name)
        pbx.ok('tenant_info', tenant='acme', format=fmt, dest=path)
        assert pbx.ok('tenant_config', src=path, state='overridden')['changed'] is False


def test_tenant_info_csv_export_round_trips(pbx, tmp_path):
    folder = str(tmp_path / 'csv')
    result = pbx.ok('tenant_info', tenant='acme', format='csv', dest=folder, check=True)
    assert result['changed'] and not os.path.exists(folder)
    result = pbx.ok('tenant_info', tenant='acme', format='csv', dest=folder)
    assert sorted(os.listdir(folder)) == ['extensions.csv', 'phonebook.csv', 'queue_members.csv', 'speed_dials.csv'] and \
        result['csv_skipped'] == []
    with open(os.path.join(folder, 'extensions.csv'), encoding='utf-8') as handle:
        assert handle.readline().startswith('internal_number;name;')
    for name in sorted(os.listdir(folder)):
        assert pbx.ok('tenant_config', tenant='acme', src=os.path.join(folder, name))['changed'] is False, name
