# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain model (model.py): merge of requests into canonical objects, keys, public and diff views."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from directory_helpers import DOMAIN, PASSWORD, account, tenant_request
from ansible_collections.voxplane.pbx.plugins.module_utils import model, rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError, ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.model import DEVICE, EXTENSION, GROUP, NUMBER, TENANT

PIN = '4711'


@pytest.fixture
def tenant():
    return model.merge(TENANT, 'acme', 'acme', None, tenant_request(), None)


VOICEMAIL_SETTINGS = {'locked': False, 'email': None, 'attach': True, 'delete_after_email': False}


def merge(kind, key, request, tenant, current=None):
    return model.merge(kind, 'acme', key, current, request, tenant)


def failing(kind, key, request, tenant, current=None):
    with pytest.raises(ValidationFailed) as info:
        merge(kind, key, request, tenant, current)
    return info.value.violations


def rule_set(violations):
    return set((v.obj, v.field, v.rule) for v in violations)


# Tenants ---------------------------------------------------------------------------------------

def test_tenant_defaults_follow_the_german_dial_plan(tenant):
    assert tenant['sip_domain'] == DOMAIN
    assert (tenant['country_code'], tenant['national_prefix'], tenant['international_prefix']) == ('49', '0', '00')
    assert tenant['timezone'] == 'Europe/Berlin'
    assert tenant['locations'][0] == {'name': 'hq', 'street': 'Hauptstraße 1', 'postal_code': '10115',
                                      'city': 'Berlin', 'country': 'DE', 'emergency_caller_id': None}
    assert tenant['licences'] == {'seats': {'smart': 5, 'best': 1}, 'addons': {'client_complete': 0}}
    assert model.dial_plan(tenant) == {'country_code': '49', 'national_prefix': '0', 'international_prefix': '00'}


def test_tenant_needs_a_sip_domain_on_creation():
    with pytest.raises(ValidationFailed) as info:
        model.merge(TENANT, 'acme', 'acme', None, {'display_name': 'ACME'}, None)
    assert rule_set(info.value.violations) == {('tenant acme', 'sip_domain', 'required')}


def test_tenant_reports_every_broken_rule_at_once():
    request = tenant_request(domain='acme', timezone='Mars/Olympus', country_code='+49', main_number='0301234',
                             locations=[{'name': 'hq', 'street': 'Hauptstraße 1', 'city': 'Berlin'}],
                             licences={'seats': {'premium': 3, 'smart': -1}},
                             trunks=[{'name': 'carrier', 'addresses': []}],
                             internal_ranges=['100-99'])
    with pytest.raises(ValidationFailed) as info:
        model.merge(TENANT, 'acme', 'acme', None, request, None)
    found = rule_set(info.value.violations)
    assert {('tenant acme', 'sip_domain', 'hostname'), ('tenant acme', 'timezone', 'timezone'),
            ('tenant acme', 'country_code', 'digits'),
            ('tenant acme', 'locations[0].postal_code', 'emergency_address'),
            ('tenant acme', 'licences.seats', 'choice'), ('tenant acme', 'licences.seats.smart', 'range'),
            ('tenant acme', 'trunks[0].addresses', 'required'),
            ('tenant acme', 'internal_ranges', 'internal_range')} <= found
    assert 'rule violations' in str(info.value)


def test_tenant_location_emergency_address_and_caller_id():
    loc = {'name': 'hq', 'street': 'Hauptstraße 1', 'postal_code': '10115', 'city': 'Berlin',
           'emergency_caller_id': '030 1234 00'}
    t = model.merge(TENANT, 'acme', 'acme', None, tenant_request(locations=[loc]), None)
    assert t['locations'][0]['emergency_caller_id'] == '+4930123400'
    with pytest.raises(ValidationFailed) as info:
        model.merge(TENANT, 'acme', 'acme', None, tenant_request(locations=[{'street': 'x'}]), None)
    assert rule_set(info.value.violations) == {('tenant acme', 'locations[0].name', 'required'),
                                               ('tenant acme', 'locations[0].postal_code', 'emergency_address'),
                                               ('tenant acme', 'locations[0].city', 'emergency_address')}


def test_tenant_trunks_and_main_number_are_normalised():
    t = model.merge(TENANT, 'acme', 'acme', None, tenant_request(
        trunks=[{'name': 'telekom', 'addresses': ['192.0.2.10', 'SIP.Carrier.Example']}],
        main_number='030 1234 00'), None)
    assert t['trunks'] == [{'name': 'telekom', 'addresses': ['192.0.2.10', 'sip.carrier.example'], 'port': 5060}]
    assert t['main_number'] == '+4930123400'


def test_left_out_tenant_fields_keep_their_value(tenant):
    after = model.merge(TENANT, 'acme', 'acme', tenant, {'display_name': 'ACME AG'}, None)
    assert after == dict(tenant, display_name='ACME AG')
    assert model.merge(TENANT, 'acme', 'acme', tenant, {}, None) == tenant
    # an empty string clears optional free text
    assert model.merge(TENANT, 'acme', 'acme', tenant, {'display_name': ''}, None)['display_name'] is None


def test_tenant_media_server_is_stored_canonical_kept_when_left_out_and_cleared_by_an_empty_string(tenant):
    assert tenant['media_server'] is None                          # none on creation
    t = model.merge(TENANT, 'acme', 'acme', tenant, {'media_server': 'SIP:Media.ACME.Example'}, None)
    assert t['media_server'] == 'sip:media.acme.example:5060'
    assert t == dict(tenant, media_server='sip:media.acme.example:5060')
    # left out keeps it, with or without other changes
    assert model.merge(TENANT, 'acme', 'acme', t, {}, None) == t
    assert model.merge(TENANT, 'acme', 'acme', t, {'display_name': 'ACME AG'}, None)['media_server'] == t['media_server']
    # another spelling of the same server is the same value
    assert model.merge(TENANT, 'acme', 'acme', t, {'media_server': 'media.acme.example:5060'}, None) == t
    v6 = model.merge(TENANT, 'acme', 'acme', t, {'media_server': 'sip:[2001:DB8::5]:5080'}, None)
    assert v6['media_server'] == 'sip:[2001:db8::5]:5080'
    # an empty string (also one of blanks) clears it
    assert model.merge(TENANT, 'acme', 'acme', t, {'media_server': ''}, None)['media_server'] is None
    assert model.merge(TENANT, 'acme', 'acme', t, {'media_server': '  '}, None)['media_server'] is None


def test_tenant_media_server_rule():
    for bad in ('sip:voicemail@media.acme.example', 'sip:2001:db8::5', 'sip:media.acme.example:70000'):
        with pytest.raises(ValidationFailed) as info:
            model.merge(TENANT, 'acme', 'acme', None, tenant_request(media_server=bad), None)
        assert rule_set(info.value.violations) == {('tenant acme', 'media_server', 'sip_server')}, bad


# Numbers ------------------------------------------------------------------------------------------

def test_number_defaults_and_normalisation(tenant):
    n = merge(NUMBER, '+49301234', {'ddi_range': '00-99', 'target': 10}, tenant)
    assert n == {'number': '+49301234', 'tenant': 'acme', 'ddi_range': '00-99', 'status': 'active',
                 'porting_date': None, 'interim': False, 'target': '10', 'description': None}
    n = merge(NUMBER, '+4930999001', {'status': 'porting', 'porting_date': '2030-04-01'}, tenant)
    assert (n['status'], n['porting_date']) == ('porting', '2030-04-01')


def test_number_field_rules(tenant):
    violations = failing(NUMBER, '+4930999001', {'ddi_range': '0-99', 'status': 'ported', 'porting_date': '01.04.2030',
                                                 'target': '110'}, tenant)
    obj = 'number +4930999001 (tenant acme)'
    assert rule_set(violations) == {(obj, 'ddi_range', 'ddi_range'), (obj, 'status', 'choice'),
                                    (obj, 'porting_date', 'date'), (obj, 'target', 'internal_forbidden_prefix')}


# Extensions ----------------------------------------------------------------------------------------

def test_extension_defaults_assign_all_external_numbers(tenant):
    ext = merge(EXTENSION, '10', {}, tenant)
    assert ext['assign_all_external_numbers'] is True      # ecotel default
    assert (ext['seat'], ext['role'], ext['dnd'], ext['sip_accounts']) == ('smart', 'end_user', False, [])


def test_extension_normalises_numbers_in_the_tenant_dial_plan(tenant):
    ext = merge(EXTENSION, '10', {
        'external_numbers': ['030 1234 10', '+4930123410', '0049 30 999001'],
        'outbound_caller_id': '030 999001', 'mobile': '0171 1234567',
        'forwarding': {'unregistered': '0171 1234567', 'busy': 'voicemail', 'no_answer': '11'},
    }, tenant)
    assert ext['external_numbers'] == ['+4930123410', '+4930999001']   # deduplicated and sorted
    assert ext['outbound_caller_id'] == '+4930999001'
    assert ext['mobile'] == '+491711234567'
    assert ext['forwarding'] == {'unconditional': None, 'busy': 'voicemail', 'no_answer': '11',
                                 'unregistered': '+491711234567'}
    for cid in ('main', 'anonymous'):
        assert merge(EXTENSION, '10', {'outbound_caller_id': cid}, tenant)['outbound_caller_id'] == cid


def test_extension_field_rules(tenant):
    violations = failing(EXTENSION, '10', {
        'email': 'max.muster', 'role': 'superuser', 'seat': 'premium', 'ddi': '1a',
        'external_numbers': ['+49 030 1234'], 'ring_time': 3, 'voicemail': {'pin': '12'},
        'forwarding': {'busy': '1100'},
        'sip_accounts': [{'username': 'müller', 'password': PASSWORD}, {'username': 'max.muster', 'password': 'kurz'},
                         {'username': 'erika.muster'}, {'username': 'anna.muster', 'kind': 'fax', 'password': PASSWORD},
                         {'username': 'otto.muster', 'ha1': 'nothex'}],
    }, tenant)
    obj = 'extension 10 (tenant acme)'
    assert rule_set(violations) == {
        (obj, 'email', 'email'), (obj, 'role', 'choice'), (obj, 'seat', 'choice'), (obj, 'ddi', 'digits'),
        (obj, 'external_numbers', 'e164'), (obj, 'ring_time', 'range'), (obj, 'voicemail.pin', 'pin'),
        (obj, 'forwarding.busy', 'internal_forbidden_prefix'),
        (obj, 'sip_accounts[0].username', 'username_charset'),
        (obj, 'sip_accounts[1].password', 'password_length'),
        (obj, 'sip_accounts[2].password', 'required'),
        (obj, 'sip_accounts[3].kind', 'choice'),
        (obj, 'sip_accounts[4].ha1', 'ha1'),
    }
    assert 'kurz' not in ' '.join(v.message for v in violations)


def test_sip_account_password_becomes_ha1_with_the_sip_domain_as_realm(tenant):
    ext = merge(EXTENSION, '10', {'sip_accounts': [account('max.muster'), account('max.app', kind='softclient')]}, tenant)
    assert ext['sip_accounts'] == [
        {'username': 'max.muster', 'kind': 'desk_phone', 'ha1': rules.ha1('max.muster', DOMAIN, PASSWORD)},
        {'username': 'max.app', 'kind': 'softclient', 'ha1': rules.ha1('max.app', DOMAIN, PASSWORD)},
    ]
    ha1 = rules.ha1('max.muster', DOMAIN, 'anderes-passwort')
    given = merge(EXTENSION, '10', {'sip_accounts': [{'username': 'max.muster', 'ha1': ha1.upper()}]}, tenant)
    assert given['sip_accounts'][0]['ha1'] == ha1


def test_sip_account_without_password_keeps_its_credential_and_kind(tenant):
    current = merge(EXTENSION, '10', {'sip_accounts': [account('max.app', kind='softclient')]}, tenant)
    after = merge(EXTENSION, '10', {'sip_accounts': [{'username': 'max.app'}, account('max.muster')]}, tenant, current)
    assert after['sip_accounts'][0] == current['sip_accounts'][0]
    # the requested list replaces the current one
    after = merge(EXTENSION, '10', {'sip_accounts': [account('max.muster')]}, tenant, current)
    assert [a['username'] for a in after['sip_accounts']] == ['max.muster']


def test_left_out_extension_fields_keep_runtime_state(tenant):
    current = merge(EXTENSION, '10', {'name': 'Max', 'dnd': True, 'forwarding': {'unconditional': '0171 1234567'},
                                      'voicemail': {'enabled': True, 'pin': PIN}}, tenant)
    after = merge(EXTENSION, '10', {'name': 'Max Mustermann', 'forwarding': {'busy': 'voicemail'}}, tenant, current)
    assert after['dnd'] is True                                   # toggled by *78, not mentioned by the playbook
    assert after['forwarding']['unconditional'] == '+491711234567'
    assert after['forwarding']['busy'] == 'voicemail'
    assert after['voicemail'] == current['voicemail']
    cleared = merge(EXTENSION, '10', {'forwarding': {'unconditional': ''}, 'name': ''}, tenant, after)
    assert cleared['forwarding']['unconditional'] is None and cleared['name'] is None


def test_single_number_reach_is_off_on_creation_and_kept_when_left_out(tenant):
    assert merge(EXTENSION, '10', {}, tenant)['single_number_reach'] is False
    current = merge(EXTENSION, '10', {'mobile': '0171 1234567', 'single_number_reach': True}, tenant)
    assert (current['single_number_reach'], current['mobile']) == (True, '+491711234567')
    after = merge(EXTENSION, '10', {'name': 'Max', 'dnd': True}, tenant, current)
    assert after == dict(current, name='Max', dnd=True)
    assert merge(EXTENSION, '10', {}, tenant, current) == current
    off = merge(EXTENSION, '10', {'single_number_reach': False}, tenant, current)
    assert off == dict(current, single_number_reach=False)
    # turning it off keeps the mobile; clearing the mobile leaves the switch alone (integrity objects to that)
    assert merge(EXTENSION, '10', {'mobile': ''}, tenant, current)['single_number_reach'] is True


def test_voicemail_pin_is_stored_hashed(tenant):
    ext = merge(EXTENSION, '10', {'voicemail': {'enabled': True, 'pin': PIN}}, tenant)
    assert ext['voicemail'] == dict(VOICEMAIL_SETTINGS, enabled=True, pin_hash=rules.pin_hash('acme', '10', PIN))
    assert PIN not in json.dumps(ext)


# Devices and groups ------------------------------------------------------------------------------------

def test_device_needs_a_known_model_on_creation(tenant):
    assert rule_set(failing(DEVICE, '00:15:65:ab:cd:ef', {'name': 'Empfang'}, tenant)) == {
        ('device 00:15:65:ab:cd:ef (tenant acme)', 'model', 'required')}
    assert rule_set(failing(DEVICE, '00:15:65:ab:cd:ef', {'model': 'yealink-t99'}, tenant)) == {
        ('device 00:15:65:ab:cd:ef (tenant acme)', 'model', 'choice')}
    d = merge(DEVICE, '00:15:65:ab:cd:ef', {'model': 'yealink-t46u', 'lines': ['max.muster'], 'timezone': 'Europe/Berlin'},
              tenant)
    assert (d['model'], d['lines'], d['timezone']) == ('yealink-t46u', ['max.muster'], 'Europe/Berlin')
    assert rule_set(failing(DEVICE, '00:15:65:ab:cd:ef', {'model': 'snom-d785', 'lines': ['Max.Muster'], 'timezone': 'CEST+2'},
                            tenant)) == {('device 00:15:65:ab:cd:ef (tenant acme)', 'lines', 'username_charset'),
                                         ('device 00:15:65:ab:cd:ef (tenant acme)', 'timezone', 'timezone')}


def test_group_fields(tenant):
    g = merge(GROUP, '50', {'members': [10, '11'], 'strategy': 'sequential', 'fallback': '030 999001'}, tenant)
    assert (g['members'], g['strategy'], g['fallback']) == (['10', '11'], 'sequential', '+4930999001')
    obj = 'group 50 (tenant acme)'
    assert rule_set(failing(GROUP, '50', {'members': ['78'], 'strategy': 'random', 'ring_time': 601}, tenant)) == {
        (obj, 'members', 'internal_forbidden_prefix'), (obj, 'strategy', 'choice'), (obj, 'ring_time', 'range')}


# Keys ---------------------------------------------------------------------------------------------------

def test_normalise_key(tenant):
    assert model.normalise_key(DEVICE, '00-15-65-AB-CD-EF') == '00:15:65:ab:cd:ef'
    assert model.normalise_key(NUMBER, '030 1234', tenant) == '+49301234'
    assert model.normalise_key(NUMBER, '+49 30 1234') == '+49301234'
    assert model.normalise_key(EXTENSION, 10) == '10'
    assert model.normalise_key(GROUP, '50') == '50'
    assert model.normalise_key(TENANT, 'acme') == 'acme'
    for kind, key in ((DEVICE, '00:15:65:ab:cd'), (NUMBER, '030 1234'), (EXTENSION, '110'), (GROUP, '11800'),
                      (TENANT, 'ACME')):
        with pytest.raises(RuleError):
            model.normalise_key(kind, key)


def test_describe_names_the_object_and_its_tenant():
    assert model.describe(EXTENSION, '10', 'acme') == 'extension 10 (tenant acme)'
    assert model.describe(TENANT, 'acme', 'acme') == 'tenant acme'


@pytest.mark.parametrize('kind, key', [(EXTENSION, '10'), (DEVICE, '00:15:65:12:34:56'), ('phonebook_entry', 'Müller (Büro)'),
                                       (NUMBER, '+49301234')])
def test_parse_described_is_the_inverse_of_describe(kind, key):
    assert model.parse_described(model.describe(kind, key, 'acme')) == (kind, key)
    assert model.parse_described(model.describe(TENANT, 'acme')) is None
    assert model.parse_described('extensions.csv row 3') is None


# Secrets: never in public() or diff_view() ------------------------------------------------------------------

def _secret_free(view, *secrets):
    text = json.dumps(view, sort_keys=True)
    for secret in secrets:
        assert secret not in text
    assert 'ha1' not in text and 'pin_hash' not in text


def test_public_view_has_no_secrets(tenant):
    ext = merge(EXTENSION, '10', {'sip_accounts': [account('max.muster')], 'voicemail': {'enabled': True, 'pin': PIN}},
                tenant)
    view = model.public(EXTENSION, ext)
    assert view['sip_accounts'] == [{'username': 'max.muster', 'kind': 'desk_phone'}]
    assert view['voicemail'] == dict(VOICEMAIL_SETTINGS, enabled=True)
    _secret_free(view, PASSWORD, ext['sip_accounts'][0]['ha1'], ext['voicemail']['pin_hash'])
    assert ext['sip_accounts'][0]['ha1']          # the canonical object itself is untouched
    assert model.public(EXTENSION, None) is None
    assert model.public(TENANT, tenant) == tenant


def test_diff_view_marks_secrets_as_set_or_changed(tenant):
    before = merge(EXTENSION, '10', {'sip_accounts': [account('max.muster'), account('max.app', kind='softclient')],
                                     'voicemail': {'enabled': True, 'pin': PIN}}, tenant)
    unchanged = model.diff_view(EXTENSION, before, before)
    assert [a['password'] for a in unchanged['sip_accounts']] == ['********', '********']
    assert unchanged['voicemail'] == dict(VOICEMAIL_SETTINGS, enabled=True, pin='********')
    _secret_free(unchanged, PASSWORD, PIN, before['sip_accounts'][0]['ha1'])

    after = merge(EXTENSION, '10', {'sip_accounts': [account('max.muster', password='Winter-2025!'), {'username': 'max.app'}],
                                    'voicemail': {'pin': '0815'}}, tenant, before)
    # The before side of a diff shows the secrets as set; the after side marks what changes.
    for view, expected in ((model.diff_view(EXTENSION, after, before), '******** (changed)'),
                           (model.diff_view(EXTENSION, before), '********')):
        assert [a['password'] for a in view['sip_accounts']] == [expected, '********']
        assert view['voicemail']['pin'] == expected
        _secret_free(view, PASSWORD, 'Winter-2025!', PIN, '0815', before['sip_accounts'][0]['ha1'],
                     after['sip_accounts'][0]['ha1'])

    created = model.diff_view(EXTENSION, before, None)
    assert [a['password'] for a in created['sip_accounts']] == ['********', '********']
    assert model.diff_view(EXTENSION, None, before) is None


def test_diff_view_of_an_extension_without_secrets(tenant):
    ext = merge(EXTENSION, '10', {}, tenant)
    view = model.diff_view(EXTENSION, ext, None)
    assert view['sip_accounts'] == [] and 'pin' not in view['voicemail']


# What a tenant or an extension may call outside, and how much -----------------------------------------

CALL_FIELDS = {'max_outside_calls': None, 'max_outside_calls_per_minute': None, 'premium_calls': False,
               'satellite_calls': False}


def test_outside_call_fields_default_to_no_limit_and_no_premium_or_satellite(tenant):
    assert dict((k, tenant[k]) for k in CALL_FIELDS) == CALL_FIELDS
    assert tenant['international_calls'] is True
    ext = merge(EXTENSION, '10', {}, tenant)
    assert dict((k, ext[k]) for k in CALL_FIELDS) == CALL_FIELDS
    assert ext['international_calls'] is False and ext['emergency_only'] is False


@pytest.mark.parametrize('kind', [TENANT, EXTENSION])
def test_outside_call_fields_are_set_kept_and_cleared(tenant, kind):
    def apply(current, request):
        if kind == TENANT:
            return model.merge(TENANT, 'acme', 'acme', current, request, None)
        return merge(EXTENSION, '10', request, tenant, current)
    start = tenant if kind == TENANT else merge(EXTENSION, '10', {}, tenant)
    flags = {'premium_calls': True, 'satellite_calls': 'yes'}
    if kind == EXTENSION:
        flags['emergency_only'] = 1
    obj = apply(start, dict(flags, max_outside_calls=10, max_outside_calls_per_minute='30'))
    assert (obj['max_outside_calls'], obj['max_outside_calls_per_minute']) == (10, 30)
    assert obj['premium_calls'] is True and obj['satellite_calls'] is True
    assert kind == TENANT or obj['emergency_only'] is True
    # left out: kept; an empty string: no limit
    assert apply(obj, {}) == obj
    cleared = apply(obj, {'max_outside_calls': '', 'premium_calls': False})
    assert cleared == dict(obj, max_outside_calls=None, premium_calls=False)


@pytest.mark.parametrize('kind', [TENANT, EXTENSION])
def test_outside_call_limits_are_whole_numbers_of_at_least_one(tenant, kind):
    request = {'max_outside_calls': 0, 'max_outside_calls_per_minute': 'lots'}
    if kind == TENANT:
        with pytest.raises(ValidationFailed) as info:
            model.merge(TENANT, 'acme', 'acme', tenant, request, None)
        violations, obj = info.value.violations, 'tenant acme'
    else:
        violations, obj = failing(EXTENSION, '10', request, tenant), 'extension 10 (tenant acme)'
    assert rule_set(violations) == {(obj, 'max_outside_calls', 'range'), (obj, 'max_outside_calls_per_minute', 'type')}


# Documents written before a field existed -------------------------------------------------------------

def test_with_defaults_completes_a_document_written_before_the_new_fields(tenant):
    newer = ('media_server',) + tuple(CALL_FIELDS)
    old_tenant = dict((k, v) for k, v in tenant.items() if k not in newer)
    assert model.with_defaults(TENANT, old_tenant) == dict(tenant, media_server=None)
    ext = merge(EXTENSION, '10', {'mobile': '0171 1234567', 'dnd': True}, tenant)
    old_ext = dict((k, v) for k, v in ext.items() if k not in ('single_number_reach', 'emergency_only') + tuple(CALL_FIELDS))
    assert model.with_defaults(EXTENSION, old_ext) == ext
    # stored values win over the defaults, and the stored document is not changed
    assert model.with_defaults(EXTENSION, dict(old_ext, single_number_reach=True))['single_number_reach'] is True
    assert 'single_number_reach' not in old_ext
