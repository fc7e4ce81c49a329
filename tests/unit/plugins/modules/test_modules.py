# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules end to end, in-process: arguments in, JSON result out, a real SQLite file
in tmp_path underneath. What a playbook relies on: result shape, idempotence, check mode,
diff, state absent, failures that name object/field/rule and write nothing, field
ownership (left-out options keep their value), secrets never leaving the directory,
*_info output that feeds back unchanged, the schema module and the directory option."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import sqlite3
from collections import namedtuple

import pytest

from module_helpers import NO_LOG_MARK, Pbx
from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.schema import LATEST_VERSION

DOMAIN = 'acme.voxplane.example'
PASSWORD = 'Sommer-2024!'
NEW_PASSWORD = 'Winter-2025?'
PIN = '864209'
NEW_PIN = '97531'
HQ = dict(name='hq', street='Hauptstraße 1', postal_code='10115', city='Berlin')
BRANCH = dict(name='hamburg', street='Jungfernstieg 7', postal_code='20354', city='Hamburg')

MEDIA_SERVER = 'sip:media.acme.voxplane.example:5060'

TENANT = dict(name='acme', display_name='ACME GmbH', sip_domain=DOMAIN, locations=[HQ, BRANCH],
              licences=dict(seats=dict(smart=5, best=1), addons=dict(client_complete=1)), media_server=MEDIA_SERVER)
EXTENSION = dict(tenant='acme', internal_number='10', name='Max Mustermann', email='max@acme.example',
                 sip_accounts=[dict(username='max.muster', password=PASSWORD),
                               dict(username='max.app', kind='softclient', password=PASSWORD)],
                 voicemail=dict(enabled=True, pin=PIN), mobile='0171 1234567', location='hq')
NUMBER = dict(tenant='acme', number='030 1234', ddi_range='00-99', target='10', description='Berlin office')
DEVICE = dict(tenant='acme', mac='00-15-65-AB-CD-EF', model='yealink-t46u', name='Empfang', lines=['max.muster'],
              location='hq')
GROUP = dict(tenant='acme', internal_number='50', name='Zentrale', members=['10'], ring_time=25, fallback='10')

# A second object of each child kind (for "all objects" reads), needing nothing beyond the first ones.
SECOND = {
    'number': dict(tenant='acme', number='+4930999001', description='Fax'),
    'extension': dict(tenant='acme', internal_number='11', name='Erika Musterfrau',
                      sip_accounts=[dict(username='erika.m', password=PASSWORD)]),
    'device': dict(tenant='acme', mac='805ec0123456', model='yealink-t31p'),
    'group': dict(tenant='acme', internal_number='51', name='Vertrieb'),
}

# kind -> how one object of it is created and changed.
#   needs: module tasks that must run first; key_arg/key: the key option and its stored form;
#   update: (field, new value, stored value); bad: (options, field, rule); clear: optional text field.
Spec = namedtuple('Spec', 'kind args needs key_arg key describe update bad clear')
SPECS = dict((s.kind, s) for s in (
    Spec('tenant', TENANT, [], 'name', 'acme', 'tenant acme',
         ('display_name', 'ACME Holding GmbH', 'ACME Holding GmbH'), (dict(sip_domain='acme'), 'sip_domain', 'hostname'),
         'display_name'),
    Spec('number', NUMBER, [('tenant', TENANT), ('extension', EXTENSION)], 'number', '+49301234',
         'number +49301234 (tenant acme)',
         ('description', 'Berlin HQ', 'Berlin HQ'), (dict(ddi_range='0-99'), 'ddi_range', 'ddi_range'), 'description'),
    Spec('extension', EXTENSION, [('tenant', TENANT)], 'internal_number', '10', 'extension 10 (tenant acme)',
         ('ring_time', 30, 30), (dict(email='max.example'), 'email', 'email'), 'email'),
    Spec('device', DEVICE, [('tenant', TENANT), ('extension', EXTENSION)], 'mac', '00:15:65:ab:cd:ef',
         'device 00:15:65:ab:cd:ef (tenant acme)',
         ('location', 'hamburg', 'hamburg'), (dict(timezone='Mars/Olympus'), 'timezone', 'timezone'), 'name'),
    Spec('group', GROUP, [('tenant', TENANT), ('extension', EXTENSION)], 'internal_number', '50',
         'group 50 (tenant acme)',
         ('strategy', 'sequential', 'sequential'), (dict(ring_time=2), 'ring_time', 'range'), 'name'),
))
KINDS = sorted(SPECS)
# The value the update field of SPECS takes when the create task leaves it out.
DEFAULT_ON_CREATE = dict(extension=20, group='parallel')
CHILD_KINDS = [k for k in KINDS if k != 'tenant']
PLURAL = dict(number='numbers', extension='extensions', device='devices', group='groups')

VOICEMAIL_SETTINGS = {'locked': False, 'email': None, 'attach': True, 'delete_after_email': False}


def args_of(spec, **extra):
    args = copy.deepcopy(spec.args)
    args.update(extra)
    return args


def key_args(spec, **extra):
    """Just the options that name the object."""
    args = dict((k, v) for k, v in spec.args.items() if k in ('tenant', spec.key_arg))
    args.update(extra)
    return args


def prepare(pbx, spec):
    for name, args in spec.needs:
        pbx.ok(name, **copy.deepcopy(args))


def create(pbx, spec):
    prepare(pbx, spec)
    return pbx.ok(spec.kind, **args_of(spec))


def secrets(pbx=None):
    """Every form a secret of these tests takes: given values, derived HA1s and PIN hashes,
    and whatever the database holds."""
    found = {PASSWORD, NEW_PASSWORD, PIN, NEW_PIN}
    for user in ('max.muster', 'max.app', 'erika.m'):
        for password in (PASSWORD, NEW_PASSWORD):
            found.add(rules.ha1(user, DOMAIN, password))
    for pin in (PIN, NEW_PIN):
        found.add(rules.pin_hash('acme', '10', pin))
    if pbx is not None and pbx.exists():
        try:
            found.update(r[0] for r in pbx.query('SELECT ha1 FROM sip_accounts'))
            for (doc,) in pbx.query('SELECT doc FROM extensions'):
                pin_hash = json.loads(doc)['voicemail'].get('pin_hash')
                if pin_hash:
                    found.add(pin_hash)
        except sqlite3.OperationalError:
            pass  # no schema yet
    return found


def assert_no_secrets(result, pbx=None, extra=()):
    """No secret in the result or its diff (Ansible's ``invocation`` echo of the arguments
    aside, which Ansible masks itself), and nothing Ansible had to mask either."""
    text = result.public_raw
    for secret in set(secrets(pbx)) | set(extra):
        assert secret not in text, 'secret %r in the result: %s' % (secret, text)
    assert NO_LOG_MARK not in text, 'Ansible had to mask a no_log value in the result: %s' % text
    assert '"ha1"' not in text and 'pin_hash' not in text, text


def differing_keys(diff):
    before, after = diff['before'], diff['after']
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def assert_fails_on(result, spec, field, rule):
    assert result.failed and result.rc == 1
    msg = result['msg']
    for part in (spec.describe, field, rule):
        assert part in msg, '%r not in %r' % (part, msg)
    assert isinstance(result.get('violations'), list) and result['violations'], result
    assert any((v['object'], v['field'], v['rule']) == (spec.describe, field, rule) for v in result['violations']), \
        result['violations']
    for v in result['violations']:
        assert set(v) == {'object', 'field', 'rule', 'message'} and all(v.values()), v


# Create, idempotence ------------------------------------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
def test_create_reports_the_object_changes_and_diff(pbx, kind):
    spec = SPECS[kind]
    prepare(pbx, spec)
    generation = pbx.generation() if pbx.exists() else 0
    result = pbx.run(kind, diff=True, **args_of(spec))
    assert not result.failed, result.get('msg')
    assert result['changed'] is True
    obj = result[kind]
    assert obj[spec.key_arg] == spec.key
    if kind != 'tenant':
        assert obj['tenant'] == 'acme'
    field = spec.update[0]
    assert obj[field] == spec.args.get(field, DEFAULT_ON_CREATE.get(kind))
    assert result['changes'] == ['create %s' % spec.describe]
    diff = result['diff']
    assert diff['before'] == {} and diff['after'][spec.key_arg] == spec.key
    assert diff['before_header'] == '%s (absent)' % spec.describe and diff['after_header'] == spec.describe
    assert pbx.generation() == generation + 1
    assert_no_secrets(result, pbx)


@pytest.mark.parametrize('kind', KINDS)
def test_same_arguments_again_change_nothing(pbx, kind):
    spec = SPECS[kind]
    first = create(pbx, spec)
    generation, snapshot = pbx.generation(), pbx.snapshot()
    again = pbx.ok(kind, diff=True, **args_of(spec))
    assert again['changed'] is False
    assert again['changes'] == [] and again['diff'] == []
    assert again[kind] == first[kind]
    assert pbx.generation() == generation
    assert pbx.snapshot() == snapshot
    assert_no_secrets(again, pbx)


@pytest.mark.parametrize('kind', KINDS)
def test_returned_object_fed_back_changes_nothing(pbx, kind):
    spec = SPECS[kind]
    obj = create(pbx, spec)[kind]
    generation = pbx.generation()
    again = pbx.ok(kind, **obj)
    assert again['changed'] is False and again[kind] == obj
    assert pbx.generation() == generation


def test_tenant_alias_slug_and_extension_alias(pbx):
    pbx.ok('tenant', **TENANT)
    assert pbx.ok('tenant', slug='acme', display_name='ACME GmbH')['changed'] is False
    args = dict(EXTENSION)
    args['extension'] = args.pop('internal_number')
    created = pbx.ok('extension', **args)
    assert created['changed'] is True and created['extension']['internal_number'] == '10'
    assert pbx.ok('extension', **args)['changed'] is False


# Check mode ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
def test_check_mode_reports_an_update_and_writes_nothing(pbx, kind):
    spec = SPECS[kind]
    before = create(pbx, spec)[kind]
    generation, snapshot = pbx.generation(), pbx.snapshot()
    field, value, stored = spec.update
    result = pbx.ok(kind, check=True, diff=True, **args_of(spec, **{field: value}))
    assert result['changed'] is True
    assert result['changes'] == ['update %s' % spec.describe]
    assert differing_keys(result['diff']) == [field]
    assert result['diff']['before'][field] == before[field] and result['diff']['after'][field] == stored
    assert result[kind][field] == stored  # the object as it would be
    assert pbx.generation() == generation
    assert pbx.snapshot() == snapshot
    assert_no_secrets(result, pbx)
    # and the real run afterwards does what check mode announced
    real = pbx.ok(kind, diff=True, **args_of(spec, **{field: value}))
    assert real['changed'] is True and real['diff'] == result['diff'] and real[kind] == result[kind]
    assert pbx.generation() == generation + 1


@pytest.mark.parametrize('kind', KINDS)
def test_check_mode_on_a_missing_directory_creates_no_file(tmp_path, kind):
    spec = SPECS[kind]
    pbx = Pbx(tmp_path / 'not-yet' / 'directory.db')
    result = pbx.run(kind, check=True, diff=True, create_parents=True, **args_of(spec))
    if kind == 'tenant':
        assert not result.failed and result['changed'] is True
        assert result['tenant']['name'] == 'acme' and result['changes'] == ['create tenant acme']
    else:
        # an empty directory has no tenant acme: the child cannot be created, even in check mode
        assert result.failed and 'tenant acme does not exist' in result['msg']
    assert not (tmp_path / 'not-yet').exists()


def test_check_mode_create_in_an_existing_directory_writes_nothing(pbx):
    pbx.ok('tenant', **TENANT)
    snapshot = pbx.snapshot()
    result = pbx.ok('extension', check=True, **copy.deepcopy(EXTENSION))
    assert result['changed'] is True and result['extension']['internal_number'] == '10'
    assert_no_secrets(result, pbx)
    assert pbx.snapshot() == snapshot


def test_check_mode_remove_writes_nothing(pbx):
    create(pbx, SPECS['group'])
    snapshot = pbx.snapshot()
    result = pbx.ok('group', check=True, **key_args(SPECS['group'], state='absent'))
    assert result['changed'] is True and result['group'] == {}
    assert pbx.snapshot() == snapshot


# Diff ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
def test_diff_of_an_update_shows_only_the_changed_field(pbx, kind):
    spec = SPECS[kind]
    create(pbx, spec)
    field, value, stored = spec.update
    result = pbx.ok(kind, diff=True, **key_args(spec, **{field: value}))
    assert result['changed'] is True
    assert result['changes'] == ['update %s' % spec.describe]
    diff = result['diff']
    assert diff['before_header'] == diff['after_header'] == spec.describe
    assert differing_keys(diff) == [field]
    assert diff['after'][field] == stored
    assert_no_secrets(result, pbx)


def test_diff_of_a_new_password_and_pin_marks_them_changed_never_their_value(pbx):
    create(pbx, SPECS['extension'])
    accounts = [dict(username='max.muster', password=NEW_PASSWORD), dict(username='max.app')]
    result = pbx.ok('extension', diff=True, tenant='acme', internal_number='10', sip_accounts=accounts,
                    voicemail=dict(pin=NEW_PIN))
    assert result['changed'] is True
    assert result['changes'] == ['update extension 10 (tenant acme)']
    diff = result['diff']
    assert diff['after']['sip_accounts'] == [
        dict(username='max.muster', kind='desk_phone', password='******** (changed)'),
        dict(username='max.app', kind='softclient', password='********'),
    ]
    assert diff['after']['voicemail'] == dict(VOICEMAIL_SETTINGS, enabled=True, pin='******** (changed)')
    assert result['extension']['sip_accounts'] == [dict(username='max.muster', kind='desk_phone'),
                                                   dict(username='max.app', kind='softclient')]
    assert result['extension']['voicemail'] == dict(VOICEMAIL_SETTINGS, enabled=True)
    assert_no_secrets(result, pbx)
    assert pbx.ha1('max.muster') == rules.ha1('max.muster', DOMAIN, NEW_PASSWORD)


def test_diff_of_a_new_password_and_pin_shows_a_difference(pbx):
    create(pbx, SPECS['extension'])
    accounts = [dict(username='max.muster', password=NEW_PASSWORD), dict(username='max.app')]
    result = pbx.ok('extension', diff=True, tenant='acme', internal_number='10', sip_accounts=accounts,
                    voicemail=dict(pin=NEW_PIN))
    assert result['changed'] is True
    diff = result['diff']
    # the unified diff Ansible prints must show the lines that change, and only those
    assert differing_keys(diff) == ['sip_accounts', 'voicemail']
    assert [a['password'] for a in diff['before']['sip_accounts']] == ['********', '********']
    assert diff['before']['voicemail'] == dict(VOICEMAIL_SETTINGS, enabled=True, pin='********')
    assert_no_secrets(result, pbx)


# State absent -------------------------------------------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
def test_absent_removes_then_changes_nothing(pbx, kind):
    spec = SPECS[kind]
    created = create(pbx, spec)[kind]
    generation = pbx.generation()
    removed = pbx.ok(kind, diff=True, **key_args(spec, state='absent'))
    assert removed['changed'] is True and removed[kind] == {}
    assert removed['changes'] == ['delete %s' % spec.describe]
    assert removed['diff']['after'] == {} and removed['diff']['after_header'] == '%s (absent)' % spec.describe
    assert removed['diff']['before'][spec.key_arg] == created[spec.key_arg]
    assert pbx.generation() == generation + 1
    assert_no_secrets(removed, pbx, extra=secrets())
    again = pbx.ok(kind, **key_args(spec, state='absent'))
    assert again['changed'] is False and again[kind] == {} and again['changes'] == []
    assert pbx.generation() == generation + 1


@pytest.mark.parametrize('kind', KINDS)
def test_absent_against_a_missing_directory_changes_nothing_and_creates_no_file(tmp_path, kind):
    spec = SPECS[kind]
    pbx = Pbx(tmp_path / 'not-yet' / 'directory.db')
    result = pbx.ok(kind, **key_args(spec, state='absent'))
    assert result['changed'] is False and result[kind] == {} and result['changes'] == []
    assert not (tmp_path / 'not-yet').exists()


@pytest.mark.parametrize('kind', CHILD_KINDS)
def test_absent_from_a_tenant_that_does_not_exist_changes_nothing(pbx, kind):
    spec = SPECS[kind]
    pbx.ok('tenant', **TENANT)
    snapshot = pbx.snapshot()
    result = pbx.ok(kind, **key_args(spec, tenant='nobody', state='absent'))
    assert result['changed'] is False and result[kind] == {}
    assert pbx.snapshot() == snapshot


@pytest.mark.parametrize('check', [False, True])
def test_a_tenant_with_objects_cannot_be_removed(pbx, check):
    create(pbx, SPECS['device'])
    snapshot = pbx.snapshot()
    result = pbx.run('tenant', check=check, name='acme', state='absent')
    assert_fails_on(result, SPECS['tenant'], 'state', 'tenant_not_empty')
    assert pbx.snapshot() == snapshot


# Bad input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
def test_bad_input_fails_naming_object_field_and_rule_and_writes_nothing(pbx, kind):
    spec = SPECS[kind]
    create(pbx, spec)
    snapshot = pbx.snapshot()
    options, field, rule = spec.bad
    result = pbx.run(kind, **args_of(spec, **options))
    assert_fails_on(result, spec, field, rule)
    assert pbx.snapshot() == snapshot
    assert_no_secrets(result, pbx)


@pytest.mark.parametrize('kind', KINDS)
def test_bad_input_on_creation_writes_nothing(pbx, kind):
    spec = SPECS[kind]
    prepare(pbx, spec)
    snapshot = pbx.snapshot()
    options, field, rule = spec.bad
    result = pbx.run(kind, **args_of(spec, **options))
    assert_fails_on(result, spec, field, rule)
    assert pbx.snapshot() == snapshot  # None for the tenant: a failed first task leaves no file


def test_every_broken_rule_is_reported_at_once(pbx):
    pbx.ok('tenant', **TENANT)
    snapshot = pbx.snapshot()
    result = pbx.run('extension', tenant='acme', internal_number='10', email='nope', ring_time=1,
                     sip_accounts=[dict(username='Max', password='short')])
    assert result.failed
    found = sorted((v['field'], v['rule']) for v in result['violations'])
    assert found == [('email', 'email'), ('ring_time', 'range'), ('sip_accounts[0].password', 'password_length'),
                     ('sip_accounts[0].username', 'username_length')]
    assert result['msg'].startswith('4 rule violations')
    assert pbx.snapshot() == snapshot


def test_a_weak_password_fails_without_echoing_it(pbx):
    pbx.ok('tenant', **TENANT)
    result = pbx.run('extension', tenant='acme', internal_number='10',
                     sip_accounts=[dict(username='max.muster', password='k9#x')])
    assert_fails_on(result, SPECS['extension'], 'sip_accounts[0].password', 'password_length')
    assert 'k9#x' not in result.public_raw and NO_LOG_MARK not in result.public_raw


def test_child_of_a_missing_tenant_fails_and_writes_nothing(pbx):
    pbx.ok('tenant', **TENANT)
    snapshot = pbx.snapshot()
    result = pbx.run('extension', **dict(EXTENSION, tenant='beta'))
    assert result.failed
    assert result['violations'] == [dict(object='tenant beta', field='tenant', rule='reference',
                                         message='tenant beta does not exist; create it first')]
    assert pbx.snapshot() == snapshot


@pytest.mark.parametrize('kind, options', [
    ('tenant', dict(name='ACME!', sip_domain=DOMAIN)),
    ('extension', dict(tenant='Acme GmbH', internal_number='10')),
])
def test_a_bad_tenant_name_is_reported_as_a_violation(pbx, kind, options):
    pbx.ok('tenant', **TENANT)
    snapshot = pbx.snapshot()
    result = pbx.run(kind, **options)
    assert result.failed and 'slug' in result['msg']
    assert pbx.snapshot() == snapshot
    assert [v['rule'] for v in result.get('violations', [])] == ['slug']


# Field ownership: left out keeps, empty string clears ------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
def test_left_out_options_keep_their_stored_values(pbx, kind):
    spec = SPECS[kind]
    before = create(pbx, spec)[kind]
    field, value, stored = spec.update
    after = pbx.ok(kind, **key_args(spec, **{field: value}))[kind]
    assert after == dict(before, **{field: stored})


@pytest.mark.parametrize('kind', KINDS)
def test_empty_string_clears_an_optional_text_field(pbx, kind):
    spec = SPECS[kind]
    before = create(pbx, spec)[kind]
    assert before[spec.clear]
    result = pbx.ok(kind, diff=True, **key_args(spec, **{spec.clear: ''}))
    assert result['changed'] is True and result[kind][spec.clear] is None
    assert differing_keys(result['diff']) == [spec.clear]
    assert pbx.ok(kind, **key_args(spec, **{spec.clear: ''}))['changed'] is False


@pytest.mark.parametrize('field, value', [
    ('outbound_caller_id', '+4930123410'), ('mobile', '0171 1234567'), ('name', 'Max'), ('location', 'hq'),
])
def test_extension_empty_string_clears(pbx, field, value):
    create(pbx, SPECS['number'])  # the block gives extension 10 the number +4930123410
    assert pbx.ok('extension', tenant='acme', internal_number='10', **{field: value})['extension'][field]
    result = pbx.ok('extension', tenant='acme', internal_number='10', **{field: ''})
    assert result['extension'][field] is None


def test_number_empty_strings_clear_target_and_ddi_range(pbx):
    create(pbx, SPECS['number'])
    result = pbx.ok('number', tenant='acme', number='+49301234', target='', ddi_range='')
    assert result['number']['target'] is None and result['number']['ddi_range'] is None
    assert pbx.query('SELECT e164 FROM number_claims') == [('+49301234',)]


def test_dnd_set_once_survives_tasks_that_leave_it_out(pbx):
    create(pbx, SPECS['extension'])
    assert pbx.ok('extension', tenant='acme', internal_number='10', dnd=True)['extension']['dnd'] is True
    result = pbx.ok('extension', **args_of(SPECS['extension']))
    assert result['changed'] is False and result['extension']['dnd'] is True
    result = pbx.ok('extension', **args_of(SPECS['extension'], name='Max M.'))
    assert result['extension']['dnd'] is True and result['extension']['name'] == 'Max M.'
    assert pbx.ok('extension', tenant='acme', internal_number='10', dnd=False)['extension']['dnd'] is False


def test_sip_account_given_without_password_keeps_its_ha1(pbx):
    create(pbx, SPECS['extension'])
    ha1 = pbx.ha1('max.muster')
    assert ha1 == rules.ha1('max.muster', DOMAIN, PASSWORD)
    result = pbx.ok('extension', tenant='acme', internal_number='10',
                    sip_accounts=[dict(username='max.muster'), dict(username='max.app', kind='softclient')])
    assert result['changed'] is False
    assert pbx.ha1('max.muster') == ha1
    # dropping one account and keeping the other without a password keeps that one's HA1
    result = pbx.ok('extension', tenant='acme', internal_number='10', sip_accounts=[dict(username='max.muster')])
    assert result['changed'] is True
    assert result['extension']['sip_accounts'] == [dict(username='max.muster', kind='desk_phone')]
    assert pbx.ha1('max.muster') == ha1 and pbx.ha1('max.app') is None


def test_voicemail_given_without_pin_keeps_the_pin(pbx):
    create(pbx, SPECS['extension'])
    doc = json.loads(pbx.query("SELECT doc FROM extensions WHERE internal_number = '10'")[0][0])
    assert doc['voicemail']['pin_hash'] == rules.pin_hash('acme', '10', PIN)
    result = pbx.ok('extension', tenant='acme', internal_number='10', voicemail=dict(enabled=False))
    assert result['changed'] is True and result['extension']['voicemail'] == dict(VOICEMAIL_SETTINGS, enabled=False)
    doc = json.loads(pbx.query("SELECT doc FROM extensions WHERE internal_number = '10'")[0][0])
    assert doc['voicemail'] == dict(VOICEMAIL_SETTINGS, enabled=False, pin_hash=rules.pin_hash('acme', '10', PIN))


# Numbers the tenant names before they exist --------------------------------------------------------
# A playbook creates the tenant with its main number and locations first and its numbers afterwards.

NORDWIND = dict(name='nordwind', sip_domain='nordwind.voxplane.example', main_number='040 555010',
                locations=[dict(HQ, emergency_caller_id='+494055501099')])
NORDWIND_BLOCK = dict(tenant='nordwind', number='+4940555010', ddi_range='00-99')


def warnings_of(result):
    """The task's warnings as text (ansible-core 2.19 returns each as a summary with the message)."""
    return [w['event']['msg'] if isinstance(w, dict) else w for w in result.get('warnings', [])]


@pytest.mark.parametrize('check', [False, True])
def test_a_tenant_names_numbers_it_does_not_hold_yet_with_a_warning(pbx, check):
    result = pbx.ok('tenant', check=check, **copy.deepcopy(NORDWIND))
    assert result['changed'] is True
    assert result['tenant']['main_number'] == '+4940555010'
    assert sorted(warnings_of(result)) == [
        'tenant nordwind: locations[0].emergency_caller_id: location hq: +494055501099 is not a number of tenant '
        'nordwind yet (no tenant holds it): accepted; emergency calls from hq present it once it is a number of this '
        'tenant, until then the tenant\'s main number (or the caller\'s own number, or the trunk\'s default number) '
        '[own_number]',
        'tenant nordwind: main_number: +4940555010 is not a number of tenant nordwind yet (no tenant holds it): '
        'accepted; calls present it once it is a number of this tenant, until then as if the tenant had no main '
        'number [reference]']
    if check:
        assert not pbx.exists()
        return
    # The numbers follow; then the whole playbook again changes nothing and says nothing.
    assert pbx.ok('number', **copy.deepcopy(NORDWIND_BLOCK))['changed'] is True
    for module, args in (('tenant', NORDWIND), ('number', NORDWIND_BLOCK)):
        again = pbx.ok(module, **copy.deepcopy(args))
        assert again['changed'] is False and warnings_of(again) == [], (module, again)


def test_a_tenant_cannot_name_another_tenants_number(pbx):
    pbx.ok('tenant', name='other', sip_domain='other.voxplane.example')
    pbx.ok('number', tenant='other', number='+4940555010', ddi_range='00-99')
    snapshot = pbx.snapshot()
    result = pbx.run('tenant', **copy.deepcopy(NORDWIND))
    assert result.failed and sorted((v['field'], v['rule']) for v in result['violations']) == [
        ('locations[0].emergency_caller_id', 'own_number'), ('main_number', 'reference')]
    assert 'tenant nordwind: main_number: +4940555010 is not a number of tenant nordwind (it belongs to tenant ' \
        'other); the main number is one of the tenant\'s own numbers [reference]' in result['msg']
    assert pbx.snapshot() == snapshot


def test_tenant_config_refuses_a_document_that_does_not_hold_its_numbers(pbx):
    document = {'tenant': copy.deepcopy(NORDWIND)}
    result = pbx.run('tenant_config', config=document)
    assert result.failed and sorted((v['field'], v['rule']) for v in result['violations']) == [
        ('locations[0].emergency_caller_id', 'own_number'), ('main_number', 'reference')]
    assert 'is not a number of tenant nordwind; the main number is one of the tenant\'s own numbers' in result['msg']
    assert not pbx.exists() or pbx.snapshot().get('tenants') == []
    document['numbers'] = [dict((k, v) for k, v in NORDWIND_BLOCK.items() if k != 'tenant')]
    result = pbx.ok('tenant_config', config=document)
    assert result['changed'] is True and warnings_of(result) == []


# Call features: media server, single number reach, international destinations ----------------------

def test_tenant_media_server_is_returned_canonical_and_kept_when_left_out(pbx):
    created = pbx.ok('tenant', **dict(TENANT, media_server='192.0.2.50'))
    assert created['tenant']['media_server'] == 'sip:192.0.2.50:5060'
    generation = pbx.generation()
    for spelling in ('sip:192.0.2.50:5060', 'SIP:192.0.2.50'):
        assert pbx.ok('tenant', name='acme', media_server=spelling)['changed'] is False
    result = pbx.ok('tenant', name='acme', display_name='ACME AG')
    assert result['tenant']['media_server'] == 'sip:192.0.2.50:5060'
    v6 = pbx.ok('tenant', name='acme', diff=True, media_server='sip:[2001:db8::5]:5080')
    assert v6['tenant']['media_server'] == 'sip:[2001:db8::5]:5080'
    assert differing_keys(v6['diff']) == ['media_server']
    cleared = pbx.ok('tenant', name='acme', media_server='')
    assert cleared['changed'] is True and cleared['tenant']['media_server'] is None
    assert pbx.generation() == generation + 3


@pytest.mark.parametrize('bad', ['sip:voicemail@192.0.2.50', 'sip:2001:db8::5', 'sip:192.0.2.50:0', 'sips:media.example'])
def test_a_bad_media_server_fails_naming_field_and_rule_and_writes_nothing(pbx, bad):
    pbx.ok('tenant', **TENANT)
    snapshot = pbx.snapshot()
    result = pbx.run('tenant', name='acme', media_server=bad)
    assert_fails_on(result, SPECS['tenant'], 'media_server', 'sip_server')
    assert pbx.snapshot() == snapshot


def test_voicemail_settings_are_set_kept_and_cleared(pbx):
    """The box's e-mail settings and its lock: set, kept when left out, cleared; a bad address is
    refused naming the field and the rule; no tenant media server is needed."""
    pbx.ok('tenant', **dict(TENANT, media_server=''))
    voicemail = dict(enabled=True, email='anna@acme.example', attach=False, delete_after_email=True)
    pbx.ok('extension', **args_of(SPECS['extension'], voicemail=voicemail))
    vm = pbx.ok('extension', tenant='acme', internal_number='10', voicemail=dict(locked=True))['extension']['voicemail']
    assert vm == dict(enabled=True, email='anna@acme.example', attach=False, delete_after_email=True, locked=True)
    snapshot = pbx.snapshot()
    result = pbx.run('extension', tenant='acme', internal_number='10', voicemail=dict(email='not an address'))
    assert_fails_on(result, SPECS['extension'], 'voicemail.email', 'email')
    assert pbx.snapshot() == snapshot
    vm = pbx.ok('extension', tenant='acme', internal_number='10', voicemail=dict(email='', locked=False))['extension']['voicemail']
    assert vm['email'] is None and vm['locked'] is False and vm['attach'] is False


def test_single_number_reach_is_off_by_default_and_kept_when_left_out(pbx):
    created = create(pbx, SPECS['extension'])['extension']
    assert created['single_number_reach'] is False
    result = pbx.ok('extension', diff=True, tenant='acme', internal_number='10', single_number_reach=True)
    assert result['changed'] is True and result['extension']['single_number_reach'] is True
    assert differing_keys(result['diff']) == ['single_number_reach']
    again = pbx.ok('extension', **args_of(SPECS['extension']))      # the playbook does not mention it
    assert again['changed'] is False and again['extension']['single_number_reach'] is True
    off = pbx.ok('extension', tenant='acme', internal_number='10', single_number_reach=False)
    assert off['extension'] == dict(created)


def test_single_number_reach_needs_a_mobile(pbx):
    pbx.ok('tenant', **TENANT)
    snapshot = pbx.snapshot()
    result = pbx.run('extension', **args_of(SPECS['extension'], mobile='', single_number_reach=True))
    assert_fails_on(result, SPECS['extension'], 'single_number_reach', 'mobile_required')
    assert pbx.snapshot() == snapshot
    pbx.ok('extension', **args_of(SPECS['extension'], single_number_reach=True))
    snapshot = pbx.snapshot()
    result = pbx.run('extension', tenant='acme', internal_number='10', mobile='')
    assert_fails_on(result, SPECS['extension'], 'single_number_reach', 'mobile_required')
    assert pbx.snapshot() == snapshot


@pytest.mark.parametrize('options, field', [
    (dict(forwarding=dict(no_answer='+43 1 5550100')), 'forwarding.no_answer'),
    (dict(mobile='+43 664 1234567', single_number_reach=True), 'mobile'),
])
def test_an_international_destination_needs_the_permission(pbx, options, field):
    pbx.ok('tenant', **TENANT)
    snapshot = pbx.snapshot()
    result = pbx.run('extension', **args_of(SPECS['extension'], **options))
    assert_fails_on(result, SPECS['extension'], field, 'international_calls')
    assert pbx.snapshot() == snapshot
    pbx.ok('extension', **args_of(SPECS['extension'], international_calls=True, **options))
    snapshot = pbx.snapshot()
    result = pbx.run('tenant', name='acme', international_calls=False)
    assert_fails_on(result, SPECS['extension'], field, 'international_calls')
    assert pbx.snapshot() == snapshot


# Outside calls: limits and call class permissions ------------------------------------------------------

def test_outside_call_options_default_to_no_limit_and_no_premium_or_satellite(pbx):
    tenant = pbx.ok('tenant', **TENANT)['tenant']
    extension = pbx.ok('extension', **copy.deepcopy(EXTENSION))['extension']
    for obj in (tenant, extension):
        assert (obj['max_outside_calls'], obj['max_outside_calls_per_minute']) == (None, None)
        assert (obj['premium_calls'], obj['satellite_calls']) == (False, False)
    assert extension['emergency_only'] is False


def test_outside_call_limits_are_set_cleared_and_fed_back(pbx):
    pbx.ok('tenant', **TENANT)
    result = pbx.ok('tenant', name='acme', max_outside_calls=20, max_outside_calls_per_minute='30', premium_calls=True)
    assert result['changed'] is True and result['diff']['after']['max_outside_calls'] == 20
    assert (result['tenant']['max_outside_calls'], result['tenant']['max_outside_calls_per_minute']) == (20, 30)
    ext = pbx.ok('extension', max_outside_calls=2, emergency_only=True, **copy.deepcopy(EXTENSION))['extension']
    assert ext['max_outside_calls'] == 2 and ext['emergency_only'] is True
    # fed back, nothing changes; left out, nothing changes
    assert pbx.ok('tenant', **result['tenant'])['changed'] is False
    assert pbx.ok('extension', **ext)['changed'] is False
    assert pbx.ok('tenant', name='acme', display_name='ACME GmbH')['changed'] is False
    # an empty string removes a limit
    cleared = pbx.ok('tenant', name='acme', max_outside_calls_per_minute='')
    assert cleared['changed'] is True and cleared['tenant']['max_outside_calls_per_minute'] is None
    assert cleared['tenant']['max_outside_calls'] == 20


@pytest.mark.parametrize('kind', ['tenant', 'extension'])
@pytest.mark.parametrize('value, rule', [(0, 'range'), ('none', 'type'), (1.5, 'type')])
def test_a_bad_outside_call_limit_fails_naming_field_and_rule_and_writes_nothing(pbx, kind, value, rule):
    create(pbx, SPECS[kind])
    snapshot = pbx.snapshot()
    result = pbx.run(kind, **key_args(SPECS[kind], max_outside_calls=value))
    assert_fails_on(result, SPECS[kind], 'max_outside_calls', rule)
    assert pbx.snapshot() == snapshot


@pytest.mark.parametrize('options, field, rule', [
    (dict(forwarding=dict(busy='0900 123456')), 'forwarding.busy', 'premium_calls'),
    (dict(premium_calls=True, forwarding=dict(busy='0900 123456')), 'forwarding.busy', 'premium_calls'),
    (dict(forwarding=dict(no_answer='+881 6123456')), 'forwarding.no_answer', 'satellite_calls'),
    (dict(emergency_only=True), 'mobile', 'emergency_only'),
    (dict(emergency_only=True, single_number_reach=False, forwarding=dict(unregistered='030 555123')),
     'forwarding.unregistered', 'emergency_only'),
])
def test_an_outside_destination_the_extension_may_not_call_fails(pbx, options, field, rule):
    pbx.ok('tenant', **TENANT)
    pbx.ok('extension', single_number_reach=True, **copy.deepcopy(EXTENSION))
    snapshot = pbx.snapshot()
    result = pbx.run('extension', **key_args(SPECS['extension'], **options))
    assert_fails_on(result, SPECS['extension'], field, rule)
    assert pbx.snapshot() == snapshot


def test_forwards_set_by_phone_survive_tasks_that_leave_them_out(pbx):
    create(pbx, SPECS['extension'])
    pbx.ok('extension', **copy.deepcopy(SECOND['extension']))
    # what *72 / *90 write: just the forward
    pbx.ok('extension', tenant='acme', internal_number='10', forwarding=dict(unconditional='11', busy='voicemail'))
    result = pbx.ok('extension', **args_of(SPECS['extension']))
    assert result['changed'] is False
    assert result['extension']['forwarding'] == dict(unconditional='11', busy='voicemail', no_answer=None, unregistered=None)
    # a task that sets one forward changes that one only: the last writer wins
    result = pbx.ok('extension', tenant='acme', internal_number='10', forwarding=dict(unconditional=''))
    assert result['extension']['forwarding'] == dict(unconditional=None, busy='voicemail', no_answer=None, unregistered=None)


def test_ha1_given_directly_is_stored_and_never_returned(pbx):
    pbx.ok('tenant', **TENANT)
    ha1 = rules.ha1('max.muster', DOMAIN, 'from-the-vault-1')
    result = pbx.ok('extension', diff=True, tenant='acme', internal_number='10',
                    sip_accounts=[dict(username='max.muster', ha1=ha1.upper())])
    assert result['changed'] is True
    assert pbx.ha1('max.muster') == ha1  # normalised to lowercase
    assert_no_secrets(result, pbx, extra=[ha1, ha1.upper()])
    again = pbx.ok('extension', tenant='acme', internal_number='10', sip_accounts=[dict(username='max.muster', ha1=ha1)])
    assert again['changed'] is False


def test_new_sip_account_without_password_fails(pbx):
    pbx.ok('tenant', **TENANT)
    result = pbx.run('extension', tenant='acme', internal_number='10', sip_accounts=[dict(username='max.muster')])
    assert_fails_on(result, SPECS['extension'], 'sip_accounts[0].password', 'required')
    assert pbx.query('SELECT COUNT(*) FROM extensions') == [(0,)]


# Secrets across every output -------------------------------------------------------------------------

def test_no_secret_in_any_output(pbx):
    results = [create(pbx, SPECS['device'])]
    results.append(pbx.ok('extension', diff=True, **args_of(SPECS['extension'], sip_accounts=[
        dict(username='max.muster', password=NEW_PASSWORD), dict(username='max.app', kind='softclient')],
        voicemail=dict(enabled=True, pin=NEW_PIN))))
    results.append(pbx.ok('extension', check=True, diff=True, **args_of(SPECS['extension'])))
    results.append(pbx.ok('extension_info', tenant='acme'))
    results.append(pbx.ok('tenant_info', tenant='acme'))
    results.append(pbx.ok('device', **key_args(SPECS['device'], state='absent')))
    results.append(pbx.ok('extension', diff=True, **key_args(SPECS['extension'], state='absent')))
    for result in results:
        assert_no_secrets(result, pbx, extra=secrets())


# *_info ---------------------------------------------------------------------------------------------

@pytest.fixture
def full(pbx):
    """Tenant acme with two objects of every kind, created through the modules."""
    create(pbx, SPECS['number'])
    pbx.ok('device', **copy.deepcopy(DEVICE))
    pbx.ok('group', **copy.deepcopy(GROUP))
    for kind in ('extension', 'number', 'device', 'group'):
        pbx.ok(kind, **copy.deepcopy(SECOND[kind]))
    pbx.ok('tenant', name='acme', main_number='+4930999001')
    return pbx


# An un-normalised spelling of each first object's key, as a user might write it.
SPELLING = dict(number='0301234', extension='10', device='00:15:65:AB:CD:EF', group='50')


@pytest.mark.parametrize('kind', CHILD_KINDS)
def test_info_reads_one_object_by_key(full, kind):
    spec = SPECS[kind]
    expected = full.ok(kind, **key_args(spec))[kind]  # the module's own view, nothing changed
    result = full.ok('%s_info' % kind, tenant='acme', **{spec.key_arg: SPELLING[kind]})
    assert result['changed'] is False and result['exists'] is True
    assert result[PLURAL[kind]] == [expected]
    assert_no_secrets(result, full)


@pytest.mark.parametrize('kind', CHILD_KINDS)
def test_info_reads_all_objects_sorted(full, kind):
    spec = SPECS[kind]
    result = full.ok('%s_info' % kind, tenant='acme')
    assert result['exists'] is True
    keys = [o[spec.key_arg] for o in result[PLURAL[kind]]]
    assert len(keys) == 2 and keys == sorted(keys) and spec.key in keys
    assert_no_secrets(result, full)


@pytest.mark.parametrize('kind', CHILD_KINDS)
def test_info_of_an_unknown_key_or_tenant_does_not_exist(full, kind):
    spec = SPECS[kind]
    unknown = dict(number='+4940555000', extension='99', device='00:00:5e:00:53:01', group='99')[kind]
    snapshot = full.snapshot()
    result = full.ok('%s_info' % kind, tenant='acme', **{spec.key_arg: unknown})
    assert result['exists'] is False and result[PLURAL[kind]] == []
    result = full.ok('%s_info' % kind, tenant='nobody')
    assert result['exists'] is False and result[PLURAL[kind]] == [] and result['changed'] is False
    assert full.snapshot() == snapshot


@pytest.mark.parametrize('kind', CHILD_KINDS)
def test_info_on_a_missing_directory_creates_no_file(tmp_path, kind):
    pbx = Pbx(tmp_path / 'not-yet' / 'directory.db')
    result = pbx.ok('%s_info' % kind, tenant='acme')
    assert result['exists'] is False and result['changed'] is False
    assert not (tmp_path / 'not-yet').exists()


def test_tenant_info_on_a_missing_directory_fails_naming_it_and_creates_no_file(tmp_path):
    pbx = Pbx(tmp_path / 'not-yet' / 'directory.db')
    result = pbx.run('tenant_info', tenant='acme')
    assert result.failed and result['msg'] == (
        'directory %s: does not exist: no module has written a directory there (check the path, or the directory of '
        'module_defaults)' % pbx.path)
    assert not (tmp_path / 'not-yet').exists()


@pytest.mark.parametrize('kind', CHILD_KINDS)
def test_info_output_fed_back_changes_nothing(full, kind):
    generation, snapshot = full.generation(), full.snapshot()
    for obj in full.ok('%s_info' % kind, tenant='acme')[PLURAL[kind]]:
        result = full.ok(kind, **obj)
        assert result['changed'] is False, (obj, result['diff'])
    assert full.generation() == generation and full.snapshot() == snapshot


def test_tenant_info_returns_the_whole_tenant(full):
    result = full.ok('tenant_info', tenant='acme')
    assert result['exists'] is True and result['changed'] is False
    assert result['generation'] == full.generation()
    assert result['tenant'] == full.ok('tenant', name='acme')['tenant']
    for kind in CHILD_KINDS:
        assert result[PLURAL[kind]] == full.ok('%s_info' % kind, tenant='acme')[PLURAL[kind]]
    plan = result['number_plan']
    assert plan['+49301234'] == dict(number='+49301234', target='10', status='active')
    assert plan['+4930123411'] == dict(number='+49301234', target='11', status='active')
    assert plan['+4930123455'] == dict(number='+49301234', target=None, status='active')
    assert_no_secrets(result, full)


def test_tenant_info_of_an_unknown_tenant(full):
    result = full.ok('tenant_info', name='nobody')
    assert result['exists'] is False and result['tenant'] == {}
    assert all(result[PLURAL[k]] == [] for k in CHILD_KINDS) and result['number_plan'] == {}


def test_tenant_info_fed_back_into_every_module_changes_nothing(full):
    info = full.ok('tenant_info', tenant='acme')
    generation, snapshot = full.generation(), full.snapshot()
    fed = [('tenant', info['tenant'])]
    for kind in ('number', 'extension', 'device', 'group'):
        fed.extend((kind, obj) for obj in info[PLURAL[kind]])
    assert len(fed) == 9
    for kind, obj in fed:
        result = full.ok(kind, diff=True, **copy.deepcopy(obj))
        assert result['changed'] is False, (kind, obj, result['diff'])
        assert result[kind] == obj
    assert full.generation() == generation
    assert full.snapshot() == snapshot


def test_info_modules_on_a_newer_schema_fail_clearly(full):
    full.query('SELECT 1')  # the file exists
    conn = sqlite3.connect(full.path)
    conn.execute("INSERT INTO voxplane_schema (version, description, applied_at) VALUES (99, 'future', 'x')")
    conn.commit()
    conn.close()
    for name in ('tenant_info', 'extension_info', 'number_info', 'device_info', 'group_info'):
        result = full.run(name, tenant='acme')
        assert result.failed and result['msg'] == (
            'directory %s: schema version 99 is newer than this collection understands (%d); upgrade the '
            'voxplane.pbx collection' % (full.path, LATEST_VERSION)), (name, result)


# directory_schema -------------------------------------------------------------------------------------

def test_directory_schema_creates_then_changes_nothing(pbx):
    result = pbx.ok('directory_schema')
    assert result['changed'] is True
    assert (result['migrated_from'], result['schema_version'], result['generation']) == (0, LATEST_VERSION, 0)
    assert pbx.query('SELECT version FROM voxplane_schema') == [(v,) for v in range(1, LATEST_VERSION + 1)]
    snapshot = pbx.snapshot()
    again = pbx.ok('directory_schema')
    assert again['changed'] is False
    assert (again['migrated_from'], again['schema_version'], again['generation']) == (LATEST_VERSION, LATEST_VERSION, 0)
    assert pbx.snapshot() == snapshot


def test_directory_schema_reports_the_generation_of_a_used_directory(pbx):
    pbx.ok('tenant', **TENANT)
    result = pbx.ok('directory_schema')
    assert result['changed'] is False and result['generation'] == 1 and result['migrated_from'] == LATEST_VERSION


def test_directory_schema_check_mode_on_a_new_path_creates_no_file(tmp_path):
    pbx = Pbx(tmp_path / 'not-yet' / 'directory.db')
    result = pbx.ok('directory_schema', check=True, create_parents=True)
    assert result['changed'] is True and result['migrated_from'] == 0 and result['schema_version'] == LATEST_VERSION
    assert not (tmp_path / 'not-yet').exists()


def test_directory_schema_creates_the_folder_when_asked(tmp_path):
    pbx = Pbx(tmp_path / 'var' / 'lib' / 'voxplane' / 'directory.db')
    assert pbx.ok('directory_schema', create_parents=True)['changed'] is True and pbx.exists()


@pytest.mark.parametrize('check', [False, True])
@pytest.mark.parametrize('name, args', [
    ('directory_schema', {}), ('tenant', TENANT),
])
def test_a_missing_folder_is_refused_unless_create_parents(tmp_path, name, args, check):
    path = tmp_path / 'var' / 'lib' / 'voxplane' / 'directory.db'
    result = Pbx(path).run(name, check=check, **copy.deepcopy(args))
    assert result.failed and result['msg'] == (
        'directory %s: the folder %s does not exist (No such file or directory); create it first or set create_parents'
        % (path, path.parent))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('name, args', [
    ('extension_info', dict(tenant='acme')), ('tenant', dict(name='acme', state='absent')),
])
def test_readers_and_removals_on_a_missing_folder_find_nothing_and_create_nothing(tmp_path, name, args):
    result = Pbx(tmp_path / 'var' / 'directory.db').ok(name, **args)
    assert result['changed'] is False and result.get('exists', False) is False
    assert list(tmp_path.iterdir()) == []


def test_a_failed_first_task_removes_the_folders_it_created(tmp_path):
    pbx = Pbx(tmp_path / 'var' / 'lib' / 'directory.db')
    args = copy.deepcopy(TENANT)
    args.update(sip_domain='acme', create_parents=True)    # a bad domain: the task fails after creating the file
    result = pbx.run('tenant', **args)
    assert result.failed and '[hostname]' in result['msg']
    assert list(tmp_path.iterdir()) == []


def test_a_newer_schema_fails_every_writer_clearly_and_is_left_alone(pbx):
    pbx.ok('tenant', **TENANT)
    conn = sqlite3.connect(pbx.path)
    conn.execute("INSERT INTO voxplane_schema (version, description, applied_at) VALUES (99, 'future', 'x')")
    conn.commit()
    conn.close()
    snapshot = pbx.snapshot()
    result = pbx.run('directory_schema')
    assert result.failed and result.rc == 1
    message = ('directory %s: schema version 99 is newer than this collection understands (%d); '
               'upgrade the voxplane.pbx collection' % (pbx.path, LATEST_VERSION))
    assert result['msg'] == message
    for kind in KINDS:
        result = pbx.run(kind, **key_args(SPECS[kind], display_name='x') if kind == 'tenant' else key_args(SPECS[kind]))
        assert result.failed and result['msg'] == message, (kind, result)
    assert pbx.snapshot() == snapshot


def test_directory_schema_migrates_an_existing_empty_file(pbx):
    open(pbx.path, 'w').close()
    result = pbx.run('tenant_info', tenant='acme')  # readers never migrate
    assert result.failed and result['msg'] == ('directory %s: schema version 0 needs migrating to %d; '
                                               'run a module or the directory role first' % (pbx.path, LATEST_VERSION))
    assert pbx.snapshot() == {}
    result = pbx.ok('directory_schema', check=True)
    assert result['changed'] is True and result['migrated_from'] == 0
    assert pbx.snapshot() == {}
    result = pbx.ok('directory_schema')
    assert result['changed'] is True and result['migrated_from'] == 0 and result['schema_version'] == LATEST_VERSION
    assert pbx.query('SELECT version FROM voxplane_schema') == [(v,) for v in range(1, LATEST_VERSION + 1)]


# The directory option ---------------------------------------------------------------------------------

def test_directory_falls_back_to_the_environment(tmp_path, monkeypatch):
    path = tmp_path / 'env' / 'directory.db'
    monkeypatch.setenv('VOXPLANE_DIRECTORY', str(path))
    env = Pbx(path)
    assert env.ok('directory_schema', directory=None, create_parents=True)['changed'] is True
    assert env.exists()
    created = env.ok('tenant', directory=None, **TENANT)
    assert created['changed'] is True
    assert env.query('SELECT name FROM tenants') == [('acme',)]
    info = env.ok('tenant_info', directory=None, tenant='acme')
    assert info['exists'] is True and info['tenant'] == created['tenant']
    assert env.ok('extension', directory=None, **copy.deepcopy(EXTENSION))['changed'] is True
    assert env.ok('extension_info', directory=None, tenant='acme', internal_number='10')['exists'] is True
    # an explicit directory wins over the environment
    other = Pbx(tmp_path / 'explicit.db')
    assert other.ok('tenant', **TENANT)['changed'] is True
    assert other.exists() and env.query('SELECT COUNT(*) FROM tenants') == [(1,)]


def test_environment_directory_missing_means_nothing_exists(tmp_path, monkeypatch):
    path = tmp_path / 'env' / 'directory.db'
    monkeypatch.setenv('VOXPLANE_DIRECTORY', str(path))
    env = Pbx(path)
    assert env.ok('extension_info', directory=None, tenant='acme')['exists'] is False
    assert env.run('tenant_info', directory=None, tenant='acme')['msg'].startswith('directory %s: does not exist' % path)
    assert env.ok('tenant', directory=None, name='acme', state='absent')['changed'] is False
    assert not (tmp_path / 'env').exists()


@pytest.mark.parametrize('name, args', [
    ('tenant', TENANT), ('tenant_info', dict(tenant='acme')), ('extension_info', dict(tenant='acme')),
    ('directory_schema', {}),
])
def test_a_directory_that_is_a_folder_fails_cleanly(tmp_path, name, args):
    result = Pbx(tmp_path).run(name, **copy.deepcopy(args))
    assert result.failed and result['msg'] == 'directory %s: is a folder, not a file' % tmp_path
    assert list(tmp_path.iterdir()) == []


def _foreign_database(path):
    conn = sqlite3.connect(str(path))
    conn.execute('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)')
    conn.execute('CREATE TABLE orders (id INTEGER PRIMARY KEY)')
    conn.commit()
    conn.close()


@pytest.mark.parametrize('check', [False, True])
@pytest.mark.parametrize('name, args', [
    ('tenant', TENANT), ('tenant', dict(name='acme', state='absent')), ('tenant_info', dict(tenant='acme')),
    ('extension_info', dict(tenant='acme')), ('directory_schema', {}),
])
def test_another_applications_database_is_refused_by_every_module(tmp_path, name, args, check):
    path = tmp_path / 'app.db'
    _foreign_database(path)
    before = dict((p.name, p.read_bytes()) for p in tmp_path.iterdir())
    result = Pbx(path).run(name, check=check, **copy.deepcopy(args))
    assert result.failed and result['msg'] == (
        'directory %s: is a SQLite database of another application (tables: orders, users), not a voxplane directory'
        % path)
    assert dict((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize('name, args', [('tenant', TENANT), ('tenant_info', dict(tenant='acme'))])
def test_a_file_that_is_not_a_database_is_refused(tmp_path, name, args):
    path = tmp_path / 'directory.db'
    path.write_text('not a database\n')
    result = Pbx(path).run(name, **copy.deepcopy(args))
    assert result.failed and result['msg'] == (
        'directory %s: is not a SQLite database (it does not start with the SQLite header), so not a voxplane directory'
        % path)
    assert path.read_text() == 'not a database\n'


def test_a_path_under_a_regular_file_names_it(tmp_path):
    (tmp_path / 'lib').write_text('x')
    path = tmp_path / 'lib' / 'directory.db'
    for name, args in (('tenant', TENANT), ('directory_schema', dict(create_parents=True))):
        result = Pbx(path).run(name, **copy.deepcopy(args))
        assert result.failed and result['msg'] == (
            'directory %s: %s is a file, not a folder (Not a directory)' % (path, tmp_path / 'lib'))


# Ansible's own argument errors name the object like every rule violation ---------------------------

@pytest.mark.parametrize('check', [False, True])
def test_an_argument_of_the_wrong_type_names_the_object_field_and_rule(pbx, check):
    create(pbx, SPECS['extension'])
    snapshot = pbx.snapshot()
    result = pbx.run('extension', check=check, **key_args(SPECS['extension'], ring_time='twenty'))
    assert_fails_on(result, SPECS['extension'], 'ring_time', 'type')
    assert result['msg'].startswith("extension 10 (tenant acme): ring_time: argument 'ring_time' is of type str ")
    assert result['msg'].endswith(' cannot be converted to an int [type]')
    assert result['violations'] == [{'object': 'extension 10 (tenant acme)', 'field': 'ring_time', 'rule': 'type',
                                     'message': result['msg'][len('extension 10 (tenant acme): ring_time: '):-len(' [type]')]}]
    assert pbx.snapshot() == snapshot


def test_every_argument_error_is_reported_at_once(pbx):
    result = pbx.run('extension', **key_args(SPECS['extension'], ring_time='twenty', state='gone', colour='red'))
    assert result.failed and result['msg'].startswith('3 rule violations:\n- extension 10 (tenant acme): ring_time: ')
    assert [(v['object'], v['field'], v['rule']) for v in result['violations']] == [
        ('extension 10 (tenant acme)', 'ring_time', 'type'), ('extension 10 (tenant acme)', 'state', 'choices'),
        ('extension 10 (tenant acme)', 'colour', 'unsupported')]
    assert 'value of state must be one of: present, absent, got: gone' in result['msg']
    assert not pbx.exists()


@pytest.mark.parametrize('module, args, obj, field, rule', [
    ('tenant', dict(name='acme', trunks=[dict(name='carrier', addresses=['192.0.2.1'], port='sip')]),
     'tenant acme', 'trunks.port', 'type'),
    ('tenant', dict(slug='acme', locations=[dict(name='hq')]), 'tenant acme', 'locations.street', 'required'),
    ('tenant', dict(sip_domain=DOMAIN), 'tenant', 'name', 'required'),
    ('number', dict(tenant='acme', number='030 1234', status='sold'), 'number 030 1234 (tenant acme)', 'status', 'choices'),
    ('extension', dict(tenant='acme', internal_number=10, sip_accounts=[dict(username='max.muster', kind='fax')]),
     'extension 10 (tenant acme)', 'sip_accounts.kind', 'choices'),
    ('extension', dict(tenant='acme', ring_time=20), 'extension (tenant acme)', 'internal_number', 'required'),
    ('device', dict(tenant='acme', mac='00:15:65:ab:cd:ef', lines={'line': 1}),
     'device 00:15:65:ab:cd:ef (tenant acme)', 'lines', 'type'),
    ('group', dict(tenant='acme', internal_number='50', strategy='random'), 'group 50 (tenant acme)', 'strategy', 'choices'),
    ('extension_info', dict(tenant='acme', internal_number='10', create_parents='perhaps'),
     'extension 10 (tenant acme)', 'create_parents', 'type'),
    ('tenant_info', dict(tenant='acme', colour='red'), 'tenant acme', 'colour', 'unsupported'),
    ('directory_schema', dict(create_parents='perhaps'), None, 'create_parents', 'type'),
])
def test_argument_errors_of_every_module_name_the_object(pbx, module, args, obj, field, rule):
    obj = obj or 'directory %s' % pbx.path
    result = pbx.run(module, **args)
    assert result.failed and result.rc == 1
    assert '%s: %s: ' % (obj, field) in result['msg'] and '[%s]' % rule in result['msg'], result['msg']
    assert {'object': obj, 'field': field, 'rule': rule} in [
        dict((k, v[k]) for k in ('object', 'field', 'rule')) for v in result['violations']], result['violations']
    assert not pbx.exists()
