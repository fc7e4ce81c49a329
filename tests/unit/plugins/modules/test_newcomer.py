# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a new user tries first, module by module, in-process (issue 26): every field's violations in
one answer, messages that say which object and field, and what the modules return."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from module_helpers import Pbx

DOMAIN = 'acme.pbx.example.com'
PASSWORD = 'Sommer-2024!'
TENANT = dict(name='acme', sip_domain=DOMAIN, licences=dict(seats=dict(smart=10, best=2)),
              trunks=[dict(name='carrier', addresses=['192.0.2.10'])],
              locations=[dict(name='berlin', street='Friedrichstr. 1', postal_code='10117', city='Berlin')])


@pytest.fixture
def acme(tmp_path):
    pbx = Pbx(tmp_path / 'directory.db')
    pbx.ok('tenant', **TENANT)
    pbx.ok('number', tenant='acme', number='+49301234560', ddi_range='00-99')
    pbx.ok('extension', tenant='acme', internal_number='210', ddi='10', name='Anna Schmidt',
           sip_accounts=[dict(username='anna.desk', password=PASSWORD)])
    return pbx


def found(result):
    return sorted((v['object'], v['field'], v['rule']) for v in result['violations'])


# Every field's violations in one answer ---------------------------------------------------------------

def test_a_username_and_a_password_both_too_short_are_one_answer(acme):
    snapshot = acme.snapshot()
    result = acme.run('extension', tenant='acme', internal_number='219',
                      sip_accounts=[dict(username='abc', password='xyz')])
    assert result.failed
    assert found(result) == [('extension 219 (tenant acme)', 'sip_accounts[0].password', 'password_length'),
                             ('extension 219 (tenant acme)', 'sip_accounts[0].username', 'username_length')]
    assert acme.snapshot() == snapshot


def test_a_wrong_internal_number_does_not_hide_the_other_fields(acme):
    result = acme.run('extension', tenant='acme', internal_number='780', sip_accounts=[dict(username='abc', password=PASSWORD)],
                      email='nope')
    assert found(result) == [('extension 780 (tenant acme)', 'email', 'email'),
                             ('extension 780 (tenant acme)', 'internal_number', 'internal_forbidden_prefix'),
                             ('extension 780 (tenant acme)', 'sip_accounts[0].username', 'username_length')]


def test_a_wrong_tenant_name_does_not_hide_the_tenants_other_fields(tmp_path):
    result = Pbx(tmp_path / 'directory.db').run('tenant', name='ACME!', sip_domain='acme')
    assert found(result) == [('tenant ACME!', 'name', 'slug'), ('tenant ACME!', 'sip_domain', 'hostname')]


def test_an_option_ansible_refuses_does_not_hide_the_rules_of_the_others(acme):
    snapshot = acme.snapshot()
    result = acme.run('extension', tenant='acme', internal_number='780', ring_time='twenty',
                      sip_accounts=[dict(username='abc', password=PASSWORD)])
    assert found(result) == [('extension 780 (tenant acme)', 'internal_number', 'internal_forbidden_prefix'),
                             ('extension 780 (tenant acme)', 'ring_time', 'type'),
                             ('extension 780 (tenant acme)', 'sip_accounts[0].username', 'username_length')]
    assert acme.snapshot() == snapshot


# One violation per overlapping block ------------------------------------------------------------------

def test_a_block_another_tenant_holds_is_one_violation_naming_the_block_and_that_tenant(acme):
    acme.ok('tenant', name='beta', sip_domain='beta.pbx.example.com')
    snapshot = acme.snapshot()
    result = acme.run('number', tenant='beta', number='+49301234560', ddi_range='00-99')
    assert result['msg'] == ('number +49301234560 (tenant beta): number: 101 of its 101 numbers (+49301234560 to '
                             '+4930123456099) already belong to tenant acme [number_one_tenant]')
    assert len(result['violations']) == 1 and acme.snapshot() == snapshot
    result = acme.run('number', tenant='beta', number='+4930123456042')
    assert result['msg'] == 'number +4930123456042 (tenant beta): number: +4930123456042 already belongs to tenant acme [number_one_tenant]'


# tenant_info is not silent about typos -------------------------------------------------------------

def test_tenant_info_fails_for_a_directory_that_does_not_exist(tmp_path):
    typo = Pbx(tmp_path / 'voxplane-tuor' / 'directory.db')
    result = typo.run('tenant_info', tenant='acme', format='json', dest=str(tmp_path / 'acme.json'))
    assert result.failed and result['msg'].startswith('directory %s: does not exist' % typo.path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_tenant_info_with_dest_fails_for_a_tenant_that_does_not_exist(acme, tmp_path):
    dest = tmp_path / 'tenants' / 'acmee.json'
    result = acme.run('tenant_info', tenant='acmee', format='json', dest=str(dest))
    assert result.failed and not dest.parent.exists()
    assert result['msg'] == ('tenant acmee: tenant: tenant acmee does not exist in directory %s (did you mean acme?); '
                             'nothing was written to %s [reference]' % (acme.path, dest))
    # without dest, the answer to "does it exist?", with a word when it looks like a typo
    result = acme.ok('tenant_info', tenant='acmee')
    assert result['exists'] is False and result['changed'] is False
    assert [w['event']['msg'] for w in result['warnings']] == [
        'tenant acmee does not exist in directory %s (did you mean acme?)' % acme.path]
    assert 'warnings' not in acme.ok('tenant_info', tenant='zeta')


# tenant_info with dest returns a summary -------------------------------------------------------------

def test_tenant_info_with_dest_returns_a_summary_not_the_document(acme, tmp_path):
    dest = tmp_path / 'tenants' / 'acme.json'
    result = acme.ok('tenant_info', tenant='acme', format='json', dest=str(dest))
    assert set(result) - {'invocation'} == {'changed', 'exists', 'generation', 'files', 'summary'}
    assert result['summary'] == dict(tenant='acme', secrets=False, numbers=1, extensions=1, devices=0, groups=0, phonebook=0,
                                     announcements=0, schedules=0, ivrs=0, queues=0, conferences=0, audio=0)
    assert result['files'] == [str(dest)] and result['changed'] is True
    # a relative dest: the result says where it went
    here = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        result = acme.ok('tenant_info', tenant='acme', format='json', dest='relative/acme.json')
    finally:
        os.chdir(here)
    assert result['files'] == [str(tmp_path / 'relative' / 'acme.json')]
    assert len(result.raw) < 2000   # not the 101 entries of the block's number plan
    # without dest, the document and its number plan, as before
    assert len(acme.ok('tenant_info', tenant='acme')['number_plan']) == 101


# One option name for the CSV delimiter ----------------------------------------------------------------

def test_tenant_info_takes_csv_delimiter_like_tenant_config(acme, tmp_path):
    folder = tmp_path / 'csv'
    result = acme.ok('tenant_info', tenant='acme', format='csv', dest=str(folder), csv={'delimiter': ','})
    assert 'deprecations' not in result
    assert (folder / 'extensions.csv').read_text(encoding='utf-8').startswith('internal_number,name,')
    assert acme.ok('tenant_config', tenant='acme', src=str(folder / 'extensions.csv'), csv={'delimiter': ','})['changed'] is False


def test_the_old_name_csv_delimiter_still_works_with_a_deprecation_warning(acme, tmp_path):
    folder = tmp_path / 'csv'
    result = acme.ok('tenant_info', tenant='acme', format='csv', dest=str(folder), csv_delimiter=',')
    assert (folder / 'extensions.csv').read_text(encoding='utf-8').startswith('internal_number,name,')
    assert [(d['event']['msg'], d['version'], d['deprecator']['resolved_name']) for d in result['deprecations']] == [
        ("Param 'csv_delimiter' is deprecated. See the module docs for more information", '1.0.0', 'voxplane.pbx')]
    result = acme.run('tenant_info', tenant='acme', format='csv', dest=str(folder), csv_delimiter=',', csv={'delimiter': ';'})
    assert result.failed and result['violations'][0]['rule'] == 'mutually_exclusive'


# Messages ---------------------------------------------------------------------------------------------

def test_one_extension_too_many_names_the_extension_that_got_no_seat(acme):
    for number in range(211, 220):
        acme.ok('extension', tenant='acme', internal_number=str(number))
    result = acme.run('extension', tenant='acme', internal_number='220')
    assert result['msg'] == ("extension 220 (tenant acme): seat: no smart seat is left for it: the tenant's 10 are taken "
                             "(licences.seats.smart) [seats]")


@pytest.mark.parametrize('field, value, rule, message', [
    ('sip_accounts', [dict(username='anna.extension', password='e')], 'password_length', 'SIP passwords have at least 8 characters'),
    ('voicemail', dict(enabled=False, pin='1'), 'pin', 'a voicemail PIN has 4 to 8 digits'),
    ('sip_accounts', [dict(username='anna.extension', ha1='a')], 'ha1', 'an HA1 is 32 hex digits (MD5 of username:realm:password)'),
])
def test_a_too_short_secret_is_refused_without_garbling_the_messages(acme, field, value, rule, message):
    """Ansible masks each occurrence of a no_log value: a one-letter password would turn every 'e' of every
    message into '********'. A secret too short for its rule is refused without being echoed or masked."""
    snapshot = acme.snapshot()
    result = acme.run('extension', tenant='acme', internal_number='219', **{field: value})
    assert result.failed and '********' not in result.raw
    assert result['msg'].startswith('extension 219 (tenant acme): ') and result['msg'].endswith('%s [%s]' % (message, rule))
    secret = (value[0] if isinstance(value, list) else value).get('password') or \
        (value[0] if isinstance(value, list) else value).get('pin') or value[0].get('ha1')
    assert '"%s"' % secret not in result.raw and "'%s'" % secret not in result.raw
    assert acme.snapshot() == snapshot


def test_a_too_short_secret_in_a_document_garbles_nothing(acme):
    doc = {'tenant': {'name': 'acme'}, 'extensions': [
        {'internal_number': '219', 'sip_accounts': [{'username': 'anna.extension', 'password': 'e'}]}]}
    result = acme.run('tenant_config', config=doc)
    assert result['msg'] == ('extension 219 (tenant acme): sip_accounts[0].password: SIP passwords have at least 8 '
                             'characters [password_length]')
    # a real one is masked as ever
    doc['extensions'][0]['sip_accounts'][0]['password'] = 'Sommer-2024!'
    doc['extensions'][0]['internal_number'] = '780'
    result = acme.run('tenant_config', config=doc)
    assert result.failed and 'Sommer-2024!' not in result.raw


def test_a_wrong_tenant_name_and_an_option_ansible_refuses_are_one_answer(tmp_path):
    result = Pbx(tmp_path / 'directory.db').run('tenant', name='ACME!', sip_domain='acme',
                                                trunks=[dict(name='carrier', addresses=['192.0.2.1'], port='sip')])
    assert found(result) == [('tenant ACME!', 'name', 'slug'), ('tenant ACME!', 'sip_domain', 'hostname'),
                             ('tenant ACME!', 'trunks.port', 'type')]
