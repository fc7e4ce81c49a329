# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cross-object rules (integrity.py), run through the reconcile engine against a real SQLite
directory. Every rejection is also checked to have written nothing (Harness.reject) and to
name the object, the field and the rule (Violation.obj / .field / .rule)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from directory_helpers import (
    BETA_DOMAIN, BLOCK, BRANCH, DOMAIN, HQ, INTERIM, MEDIA_SERVER, PASSWORD, SINGLE, account, block, expect, extension,
    only, tenant_request,
)
from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.model import DEVICE, EXTENSION, GROUP, NUMBER
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import ABSENT

MAC = '00:15:65:ab:cd:ef'       # Yealink OUI
ACME = 'tenant acme'


def ext(key, tenant='acme'):
    return 'extension %s (tenant %s)' % (key, tenant)


def num(key, tenant='acme'):
    return 'number %s (tenant %s)' % (key, tenant)


def dev(mac=MAC, tenant='acme'):
    return 'device %s (tenant %s)' % (mac, tenant)


def grp(key, tenant='acme'):
    return 'group %s (tenant %s)' % (key, tenant)


# A number belongs to one tenant (CompanyFlex: an assigned number cannot be assigned again) -------

def test_two_tenants_cannot_hold_the_same_number(acme):
    acme.apply('acme', None, {NUMBER: {SINGLE: {}}})
    violations = acme.reject('beta', tenant_request(domain=BETA_DOMAIN), {NUMBER: {'030 999001': {}}})
    only(violations, num(SINGLE, 'beta'), 'number', 'number_one_tenant', SINGLE, 'tenant acme')


def test_a_number_inside_another_tenants_block_is_taken(acme):
    violations = acme.reject('beta', tenant_request(domain=BETA_DOMAIN), {NUMBER: {'+4930123455': {}}})
    only(violations, num('+4930123455', 'beta'), 'number', 'number_one_tenant', '+4930123455', 'tenant acme')
    # the block's head number is taken too
    violations = acme.reject('beta', tenant_request(domain=BETA_DOMAIN), {NUMBER: {BLOCK: {}}})
    only(violations, num(BLOCK, 'beta'), 'number', 'number_one_tenant')


def test_overlapping_blocks_of_two_tenants(acme):
    # acme holds +49 30 1234 00-99; beta asks for +49 30 123 000-999, which contains 400-499
    violations = acme.reject('beta', tenant_request(domain=BETA_DOMAIN), {NUMBER: {'+4930123': block('000-999')}})
    # one violation naming the block and the tenant that holds the numbers, not one per DDI
    v = only(violations, num('+4930123', 'beta'), 'number', 'number_one_tenant')
    assert v.message == '100 of its 1001 numbers (+4930123400 to +4930123499) already belong to tenant acme'


def test_a_block_overlapping_another_block_of_the_tenant_is_one_violation(acme):
    violations = acme.reject('acme', None, {NUMBER: {'+4930123': block('000-999')}})
    v = only(violations, num('+4930123'), 'number', 'number_unique')
    assert v.message == '100 of its 1001 numbers (+4930123400 to +4930123499) are already part of number %s' % BLOCK


def test_a_block_that_swallows_another_tenants_single_number(pbx):
    pbx.apply('beta', tenant_request(domain=BETA_DOMAIN), {NUMBER: {'+4930123455': {}}})
    violations = pbx.reject('acme', tenant_request(), {NUMBER: {BLOCK: block()}})
    only(violations, num(BLOCK), 'number', 'number_one_tenant', '+4930123455', 'tenant beta')


def test_widening_a_block_into_another_tenants_number(acme):
    acme.apply('beta', tenant_request(domain=BETA_DOMAIN), {NUMBER: {'+4930123': block('0-3')}})
    violations = acme.reject('beta', None, {NUMBER: {'+4930123': block('0-4')}})
    only(violations, num('+4930123', 'beta'), 'number', 'number_one_tenant', BLOCK, 'tenant acme')


def test_a_released_number_can_be_taken_by_another_tenant(acme):
    acme.apply('acme', None, {NUMBER: {SINGLE: {}}})
    acme.apply('acme', None, {NUMBER: {SINGLE: ABSENT}})
    result = acme.apply('beta', tenant_request(domain=BETA_DOMAIN), {NUMBER: {SINGLE: {}}})
    assert result.changed


def test_two_number_objects_of_one_tenant_overlap(acme):
    violations = acme.reject('acme', None, {NUMBER: {'+4930123455': {}}})
    only(violations, num('+4930123455'), 'number', 'number_unique', '+4930123455', BLOCK)


# A number has one target -------------------------------------------------------------------------

def test_two_extensions_with_the_same_ddi_in_a_block(acme):
    # extension 10 gets +49 30 1234 10 by "assign all external numbers"; 20 asks for DDI 10 as well
    violations = acme.reject('acme', None, {EXTENSION: {'20': extension(ddi='10')}})
    only(violations, num(BLOCK), 'target', 'number_one_target', '+4930123410', '10 and 20')


def test_explicit_external_numbers_collide(acme):
    acme.apply('acme', None, {NUMBER: {SINGLE: {}}, EXTENSION: {'10': {'external_numbers': [SINGLE]}}})
    violations = acme.reject('acme', None, {EXTENSION: {'11': extension(external_numbers=['030 999001'])}})
    only(violations, num(SINGLE), 'target', 'number_one_target', SINGLE, '10 and 11')


def test_number_target_and_external_number_collide(acme):
    acme.apply('acme', None, {NUMBER: {SINGLE: {'target': '10'}}})
    violations = acme.reject('acme', None, {EXTENSION: {'11': extension(external_numbers=[SINGLE])}})
    only(violations, num(SINGLE), 'target', 'number_one_target', '10 and 11')
    # the target naming the same extension again is no conflict
    acme.apply('acme', None, {EXTENSION: {'10': {'external_numbers': [SINGLE]}}})


def test_distinct_ddis_and_opting_out_of_assign_all(acme):
    acme.apply('acme', None, {EXTENSION: {'11': extension(), '12': extension(ddi='10', assign_all_external_numbers=False)}})
    plan = acme.load('acme').number_plan()
    assert plan[1] == []
    assert plan[0]['+4930123410']['target'] == '10' and plan[0]['+4930123411']['target'] == '11'


@pytest.mark.parametrize('kind, first, second, fields', [
    (NUMBER, '+4930999001', '030 999001', {}),
    (DEVICE, '00:15:65:ab:cd:ef', '001565ABCDEF', {'model': 'yealink-t46u'}),
    (EXTENSION, '11', 11, {}),
])
def test_one_object_requested_twice_in_two_spellings(acme, kind, first, second, fields):
    acme.reject('acme', None, {kind: {first: dict(fields), second: dict(fields)}})


# MAC unique across tenants, SIP username unique in the domain, SIP domain unique ------------------------

def test_mac_is_unique_across_tenants(acme):
    acme.apply('acme', None, {DEVICE: {MAC: {'model': 'yealink-t46u'}}})
    violations = acme.reject('beta', tenant_request(domain=BETA_DOMAIN), {DEVICE: {'00-15-65-AB-CD-EF': {'model': 'snom-d785'}}})
    only(violations, dev(MAC, 'beta'), 'mac', 'mac_unique', MAC, 'tenant acme')


def test_mac_spellings_name_the_same_device(acme):
    acme.apply('acme', None, {DEVICE: {'00-15-65-AB-CD-EF': {'model': 'yealink-t46u'}}})
    assert not acme.apply('acme', None, {DEVICE: {'001565abcdef': {'model': 'yealink-t46u'}}}).changed
    assert list(acme.load('acme').objects(DEVICE)) == [MAC]


def test_sip_username_is_unique_in_the_domain(acme):
    violations = acme.reject('acme', None, {EXTENSION: {'11': extension(account('max.muster'))}})
    only(violations, ext('11'), 'sip_accounts', 'username_unique', 'max.muster', 'extension 10', DOMAIN)


def test_sip_username_listed_twice_on_one_extension(acme):
    violations = acme.reject('acme', None, {EXTENSION: {'11': extension(account('erika.m'), account('erika.m'))}})
    expect(violations, ext('11'), 'sip_accounts', 'username_unique', 'erika.m')


def test_same_sip_username_in_two_domains_is_fine(acme):
    acme.apply('beta', tenant_request(domain=BETA_DOMAIN), {EXTENSION: {'10': extension(account('max.muster'))}})


def test_a_sip_account_can_move_between_extensions_in_one_change(acme):
    acme.apply('acme', None, {EXTENSION: {'10': {'sip_accounts': []}, '11': extension(account('max.muster'))}})
    state = acme.load('acme')
    assert state.sip_accounts()['max.muster'][0] == '11'


def test_sip_domain_is_unique(acme):
    violations = acme.reject('beta', tenant_request(domain='ACME.voxplane.example.'))
    only(violations, 'tenant beta', 'sip_domain', 'domain_unique', DOMAIN, 'tenant acme')


# Seats and softclient licences (ecotel) ----------------------------------------------------------------

def test_one_more_extension_than_seats_fails_naming_the_package(pbx):
    pbx.apply('acme', tenant_request(smart=2, best=0), {EXTENSION: {'10': extension(), '11': extension()}})
    violations = pbx.reject('acme', None, {EXTENSION: {'12': extension()}})
    v = only(violations, ext('12'), 'seat', 'seats')     # the extension that got no seat is named
    assert v.message == "no smart seat is left for it: the tenant's 2 are taken (licences.seats.smart)"
    violations = pbx.reject('acme', None, {EXTENSION: {'12': extension(seat='best')}})
    only(violations, ext('12'), 'seat', 'seats', 'best', '0')
    # several at once: the tenant's licence names them
    violations = pbx.reject('acme', None, {EXTENSION: {'12': extension(), '13': extension()}})
    v = only(violations, ACME, 'licences.seats.smart', 'seats')
    assert v.message == '4 extensions take a smart seat but the tenant has 2; none is left for extensions 12, 13'


def test_reducing_seats_below_use_fails(acme):
    violations = acme.reject('acme', {'licences': {'seats': {'smart': 0, 'best': 1}}})
    only(violations, ACME, 'licences.seats.smart', 'seats', 'smart', 'none is left for extension')


def test_softclient_needs_best_or_the_client_complete_addon(acme):
    app = account('max.app', kind='softclient')
    violations = acme.reject('acme', None, {EXTENSION: {'10': {'sip_accounts': [{'username': 'max.muster'}, app]}}})
    only(violations, ext('10'), 'sip_accounts', 'softclient_licence', 'client_complete', 'best')
    # a webphone is a client as well
    violations = acme.reject('acme', None, {EXTENSION: {'11': extension(account('erika.web', kind='webphone'))}})
    only(violations, ext('11'), 'sip_accounts', 'softclient_licence')
    # the best package includes the clients
    acme.apply('acme', None, {EXTENSION: {'10': {'seat': 'best', 'sip_accounts': [{'username': 'max.muster'}, app]}}})


def test_client_complete_addons_are_counted(pbx):
    pbx.apply('acme', tenant_request(client_complete=1), {
        EXTENSION: {'10': extension(account('max.app', kind='softclient'))}})
    violations = pbx.reject('acme', None, {EXTENSION: {'11': extension(account('erika.app', kind='softclient'))}})
    only(violations, ext('11'), 'sip_accounts', 'softclient_licence', "the tenant's 1 are taken")
    pbx.apply('acme', {'licences': {'seats': {'smart': 5}, 'addons': {'client_complete': 2}}},
              {EXTENSION: {'11': extension(account('erika.app', kind='softclient'))}})


# References must exist ---------------------------------------------------------------------------------

def test_number_target_must_exist(acme):
    violations = acme.reject('acme', None, {NUMBER: {SINGLE: {'target': '99'}}})
    only(violations, num(SINGLE), 'target', 'reference', '99', 'does not exist')
    acme.apply('acme', None, {GROUP: {'50': {'members': ['10']}}, NUMBER: {SINGLE: {'target': '50'}}})


def test_group_members_must_exist(acme):
    violations = acme.reject('acme', None, {GROUP: {'50': {'members': ['10', '99']}}})
    only(violations, grp('50'), 'members', 'reference', 'extension 99')
    violations = acme.reject('acme', None, {GROUP: {'50': {'members': ['10', '10']}}})
    only(violations, grp('50'), 'members', 'unique')


def test_group_fallback_must_exist_and_not_loop(acme):
    only(acme.reject('acme', None, {GROUP: {'50': {'members': ['10'], 'fallback': '99'}}}),
         grp('50'), 'fallback', 'reference', '99')
    only(acme.reject('acme', None, {GROUP: {'50': {'members': ['10'], 'fallback': '50'}}}),
         grp('50'), 'fallback', 'forward_loop')
    only(acme.reject('acme', None, {GROUP: {'50': {'members': ['10'], 'fallback': 'voicemail'}}}),
         grp('50'), 'fallback', 'voicemail_group')
    acme.apply('acme', None, {GROUP: {'50': {'members': ['10'], 'fallback': '0171 1234567'}}})


def test_device_lines_must_exist_and_be_desk_phone_accounts(acme):
    only(acme.reject('acme', None, {DEVICE: {MAC: {'model': 'yealink-t46u', 'lines': ['erika.m']}}}),
         dev(), 'lines', 'reference', 'erika.m')
    acme.apply('acme', None, {EXTENSION: {'10': {'seat': 'best', 'sip_accounts': [
        {'username': 'max.muster'}, account('max.app', kind='softclient')]}}})
    only(acme.reject('acme', None, {DEVICE: {MAC: {'model': 'yealink-t46u', 'lines': ['max.app']}}}),
         dev(), 'lines', 'line_kind', 'softclient')
    acme.apply('acme', None, {DEVICE: {MAC: {'model': 'yealink-t46u', 'lines': ['max.muster']}}})
    violations = acme.reject('acme', None, {DEVICE: {'00:15:65:ff:00:01': {'model': 'yealink-t46u', 'lines': ['max.muster']}}})
    only(violations, dev('00:15:65:ff:00:01'), 'lines', 'line_unique', 'max.muster', MAC)


@pytest.mark.parametrize('case', ['device line', 'sip username'])
def test_a_duplicate_is_reported_on_the_object_the_change_adds(acme, case):
    if case == 'device line':
        acme.apply('acme', None, {DEVICE: {MAC: {'model': 'yealink-t46u', 'lines': ['max.muster']}}})
        violations = acme.reject('acme', None, {DEVICE: {'00:15:65:00:00:01': {'model': 'yealink-t46u',
                                                                               'lines': ['max.muster']}}})
        only(violations, dev('00:15:65:00:00:01'), 'lines', 'line_unique', 'max.muster', MAC)
    else:
        acme.apply('acme', None, {EXTENSION: {'20': extension(account('erika.m'))}})
        violations = acme.reject('acme', None, {EXTENSION: {'11': extension(account('erika.m'))}})
        only(violations, ext('11'), 'sip_accounts', 'username_unique', 'erika.m', 'extension 20')


def test_device_line_count_follows_the_model(acme):
    acme.apply('acme', None, {EXTENSION: {'10': {'sip_accounts': [
        {'username': 'max.muster'}, account('max.lager'), account('max.empfang')]}}})
    # a Yealink T31P has 2 lines, an AVM FRITZ!Fon C6 one
    acme.apply('acme', None, {DEVICE: {MAC: {'model': 'yealink-t31p', 'lines': ['max.muster', 'max.lager']}}})
    only(acme.reject('acme', None, {DEVICE: {MAC: {'lines': ['max.muster', 'max.lager', 'max.empfang']}}}),
         dev(), 'lines', 'line_count', 'T31P', '2 lines, 3 given')
    only(acme.reject('acme', None, {DEVICE: {MAC: {'model': 'avm-fritzfon-c6'}}}),
         dev(), 'lines', 'line_count', '1 lines, 2 given')


def test_locations_must_exist(acme):
    only(acme.reject('acme', None, {EXTENSION: {'10': {'location': 'hamburg'}}}),
         ext('10'), 'location', 'reference', 'hamburg')
    only(acme.reject('acme', None, {DEVICE: {MAC: {'model': 'yealink-t46u', 'location': 'hamburg'}}}),
         dev(), 'location', 'reference', 'hamburg')
    acme.apply('acme', None, {EXTENSION: {'10': {'location': 'hq'}}})


def test_preferred_trunk_must_be_a_trunk_and_is_required_with_several(acme):
    trunks = [{'name': 'telekom', 'addresses': ['192.0.2.10']}, {'name': 'ecotel', 'addresses': ['198.51.100.7']}]
    only(acme.reject('acme', {'trunks': trunks}), ACME, 'preferred_trunk', 'preferred_trunk_required')   # O2
    only(acme.reject('acme', {'trunks': trunks, 'preferred_trunk': 'vodafone'}),
         ACME, 'preferred_trunk', 'reference', 'vodafone')
    only(acme.reject('acme', {'trunks': trunks + [dict(trunks[0])], 'preferred_trunk': 'telekom'}),
         ACME, 'trunks', 'unique')
    acme.apply('acme', {'trunks': trunks, 'preferred_trunk': 'telekom'})
    acme.apply('acme', {'trunks': trunks[:1], 'preferred_trunk': ''})   # one trunk needs no preference


# The tenant's main number and a location's emergency_caller_id name one of the tenant's own numbers.
# One object at a time (the modules), a number that no tenant holds yet is accepted with a warning, so
# that a playbook may create the numbers after the tenant; a whole tenant document names its own.

TENANT_NUMBERS = [
    ('main_number', {'main_number': '030 999001'}, 'main_number', 'reference', ()),
    ('emergency_caller_id', {'locations': [dict(HQ, emergency_caller_id='030 999001')]},
     'locations[0].emergency_caller_id', 'own_number', ('location hq',)),
]


@pytest.mark.parametrize('name, request_, field, rule, fragments', TENANT_NUMBERS)
def test_a_tenant_may_name_a_number_no_tenant_holds_yet_with_a_warning(acme, name, request_, field, rule, fragments):
    result = acme.apply('acme', request_)
    assert result.changed
    only(result.warnings, ACME, field, rule, SINGLE, 'not a number of tenant acme yet (no tenant holds it): accepted',
         *fragments)
    stored = acme.load('acme').tenant
    assert (stored['main_number'] if name == 'main_number' else stored['locations'][0]['emergency_caller_id']) == SINGLE
    # Changes that do not set it say nothing more, nor does the same request again.
    assert acme.apply('acme', None, {EXTENSION: {'10': {'ring_time': 25}}}).warnings == []
    again = acme.apply('acme', request_)
    assert not again.changed and again.warnings == []
    # The number is created later: nothing to say.
    assert acme.apply('acme', None, {NUMBER: {SINGLE: {}}}).warnings == []
    # ... and now it cannot be removed while the tenant names it.
    expect(acme.reject('acme', None, {NUMBER: {SINGLE: ABSENT}}), num(SINGLE), 'state', 'still_referenced', field)


@pytest.mark.parametrize('name, request_, field, rule, fragments', TENANT_NUMBERS)
def test_a_whole_tenant_document_must_hold_the_numbers_it_names(acme, name, request_, field, rule, fragments):
    only(acme.reject('acme', request_, whole_tenant=True), ACME, field, rule, SINGLE, 'not a number of tenant acme;',
         *fragments)
    # created together with the number in one change
    result = acme.apply('acme', request_, {NUMBER: {SINGLE: {}}}, whole_tenant=True)
    assert result.changed and result.warnings == []
    # a DDI of a block is a number of the tenant as well
    acme.apply('acme', {'main_number': '+4930123400', 'locations': [dict(HQ, emergency_caller_id='+4930123400')]},
               whole_tenant=True)


@pytest.mark.parametrize('whole_tenant', [False, True])
@pytest.mark.parametrize('name, request_, field, rule, fragments', TENANT_NUMBERS)
def test_a_tenant_cannot_name_another_tenants_number(acme, name, request_, field, rule, fragments, whole_tenant):
    acme.apply('acme', None, {NUMBER: {SINGLE: {}}})
    beta = tenant_request(domain=BETA_DOMAIN, **request_)
    only(acme.reject('beta', beta, whole_tenant=whole_tenant), 'tenant beta', field, rule, SINGLE,
         'not a number of tenant beta (it belongs to tenant acme)', *fragments)
    # nor can an existing tenant switch to it
    acme.apply('beta', tenant_request(domain=BETA_DOMAIN))
    only(acme.reject('beta', request_, whole_tenant=whole_tenant), 'tenant beta', field, rule,
         'belongs to tenant acme')


def test_emergency_caller_id_cannot_be_another_tenants_number(acme):
    beta = tenant_request(domain=BETA_DOMAIN, locations=[dict(HQ), dict(BRANCH, emergency_caller_id='+4930123455')])
    violations = acme.reject('beta', beta)
    only(violations, 'tenant beta', 'locations[1].emergency_caller_id', 'own_number',
         'location hamburg', '+4930123455', 'not a number of tenant beta', 'belongs to tenant acme')


def test_the_number_an_emergency_caller_id_names_cannot_be_removed(acme):
    acme.apply('acme', {'locations': [dict(HQ, emergency_caller_id=SINGLE)]}, {NUMBER: {SINGLE: {}}})
    only(acme.reject('acme', None, {NUMBER: {SINGLE: ABSENT}}), num(SINGLE), 'state', 'still_referenced',
         'tenant acme (locations[0].emergency_caller_id)')
    # clearing it first frees the number
    acme.apply('acme', {'locations': [dict(HQ)]}, {NUMBER: {SINGLE: ABSENT}})


def test_forwarding_targets_must_exist(acme):
    only(acme.reject('acme', None, {EXTENSION: {'10': {'forwarding': {'busy': '99'}}}}),
         ext('10'), 'forwarding.busy', 'reference', '99')
    only(acme.reject('acme', None, {EXTENSION: {'10': {'forwarding': {'no_answer': 'voicemail'}}}}),
         ext('10'), 'forwarding.no_answer', 'voicemail_disabled')
    only(acme.reject('acme', None, {EXTENSION: {'10': {'forwarding': {'unconditional': '10'}}}}),
         ext('10'), 'forwarding.unconditional', 'forward_loop')
    acme.apply('acme', {'media_server': MEDIA_SERVER}, {
        EXTENSION: {'10': {'forwarding': {'unregistered': '0171 1234567', 'busy': '11', 'no_answer': 'voicemail'},
                           'voicemail': {'enabled': True, 'pin': '4711'}},
                    '11': extension()}})


def test_external_numbers_must_be_numbers_of_the_tenant(acme):
    only(acme.reject('acme', None, {EXTENSION: {'10': {'external_numbers': [SINGLE]}}}),
         ext('10'), 'external_numbers', 'reference', SINGLE)


def test_children_need_their_tenant(pbx):
    only(pbx.reject('acme', None, {EXTENSION: {'10': extension()}}), ACME, 'tenant', 'reference', 'create it first')


def test_internal_numbers_of_extensions_and_groups_are_distinct_and_in_range(acme):
    only(acme.reject('acme', None, {GROUP: {'10': {'members': ['10']}}}), grp('10'), 'internal_number', 'internal_unique')
    violations = acme.reject('acme', {'internal_ranges': ['100-199', '50-59']}, {GROUP: {'500': {}}})
    expect(violations, ext('10'), 'internal_number', 'internal_range', '100-199')
    expect(violations, grp('500'), 'internal_number', 'internal_range')
    only(acme.reject('acme', {'internal_ranges': ['10-19', '15-29']}), ACME, 'internal_ranges', 'overlap')
    acme.apply('acme', {'internal_ranges': ['10-49', '100-199']}, {GROUP: {'150': {'members': ['10']}}})


def test_internal_number_keys_follow_the_seed_rules(acme):
    for key, rule in (('110', 'internal_forbidden_prefix'), ('7700', 'internal_forbidden_prefix'),
                      ('11833', 'internal_118'), ('0100', 'internal_prefix_0')):
        only(acme.reject('acme', None, {EXTENSION: {key: extension()}}), ext(key), 'internal_number', rule)
    acme.apply('acme', None, {EXTENSION: {'1180': extension()}})


def test_duplicate_locations(acme):
    only(acme.reject('acme', {'locations': [dict(HQ), dict(HQ)]}), ACME, 'locations', 'unique', 'hq')


# Deleting what is still referenced -------------------------------------------------------------------------

def test_deleting_an_extension_that_is_a_group_member(acme):
    acme.apply('acme', None, {GROUP: {'50': {'members': ['10']}}})
    only(acme.reject('acme', None, {EXTENSION: {'10': ABSENT}}),
         ext('10'), 'state', 'still_referenced', 'group 50', 'members')


def test_deleting_an_extension_that_a_number_targets(acme):
    acme.apply('acme', None, {NUMBER: {SINGLE: {'target': '10'}}})
    only(acme.reject('acme', None, {EXTENSION: {'10': ABSENT}}),
         ext('10'), 'state', 'still_referenced', 'number ' + SINGLE, 'target')


def test_deleting_a_group_that_a_number_targets(acme):
    acme.apply('acme', None, {GROUP: {'50': {'members': ['10']}}, NUMBER: {SINGLE: {'target': '50'}}})
    only(acme.reject('acme', None, {GROUP: {'50': ABSENT}}), grp('50'), 'state', 'still_referenced', 'number ' + SINGLE)


def test_deleting_a_forwarding_target(acme):
    acme.apply('acme', None, {EXTENSION: {'11': extension(forwarding={'busy': '10'})}})
    only(acme.reject('acme', None, {EXTENSION: {'10': ABSENT}}),
         ext('10'), 'state', 'still_referenced', 'extension 11', 'forwarding.busy')


def test_purge_reports_what_still_references_the_purged(acme):
    acme.apply('acme', None, {GROUP: {'50': {'members': ['10']}}})
    violations = acme.reject('acme', None, {EXTENSION: {}}, purge=(EXTENSION,))
    only(violations, ext('10'), 'state', 'still_referenced', 'group 50')


def test_deleting_an_extension_whose_sip_account_is_a_device_line(acme):
    acme.apply('acme', None, {DEVICE: {MAC: {'model': 'yealink-t46u', 'lines': ['max.muster']}}})
    only(acme.reject('acme', None, {EXTENSION: {'10': ABSENT}}),
         ext('10'), 'sip_accounts', 'still_referenced', 'max.muster', 'device ' + MAC)
    # dropping or renaming the account is blocked the same way
    only(acme.reject('acme', None, {EXTENSION: {'10': {'sip_accounts': [account('max.mustermann')]}}}),
         ext('10'), 'sip_accounts', 'still_referenced', 'max.muster', MAC)
    # together with the device it goes
    acme.apply('acme', None, {EXTENSION: {'10': ABSENT}, DEVICE: {MAC: ABSENT}})


def test_removing_a_location_in_use(acme):
    acme.apply('acme', {'locations': [dict(HQ), dict(BRANCH)]},
               {EXTENSION: {'10': {'location': 'hamburg'}}, DEVICE: {MAC: {'model': 'yealink-t46u', 'location': 'hamburg'}}})
    violations = acme.reject('acme', {'locations': [dict(HQ)]})
    expect(violations, ACME, 'locations', 'still_referenced', 'location hamburg', 'extension 10', 'location')
    expect(violations, ACME, 'locations', 'still_referenced', 'location hamburg', 'device ' + MAC)
    assert len(violations) == 2


def test_removing_a_tenant_that_still_has_objects(acme):
    only(acme.reject('acme', ABSENT), ACME, 'state', 'tenant_not_empty', '1 extensions', '1 numbers')
    acme.apply('acme', ABSENT, {EXTENSION: {}, NUMBER: {}}, purge=(EXTENSION, NUMBER, GROUP, DEVICE))
    assert acme.load('acme').tenant is None
    # its numbers and domain are free again
    acme.apply('beta', tenant_request(domain=DOMAIN), {NUMBER: {BLOCK: block()}})


def test_deleting_the_main_number(acme):
    acme.apply('acme', {'main_number': SINGLE}, {NUMBER: {SINGLE: {}}})
    only(acme.reject('acme', None, {NUMBER: {SINGLE: ABSENT}}), num(SINGLE), 'state', 'still_referenced', 'main_number')


def test_deleting_a_number_an_extension_lists(acme):
    acme.apply('acme', None, {NUMBER: {SINGLE: {}}, EXTENSION: {'10': {'external_numbers': [SINGLE]}}})
    only(acme.reject('acme', None, {NUMBER: {SINGLE: ABSENT}}),
         num(SINGLE), 'state', 'still_referenced', 'extension 10', 'external_numbers')


# Numbers: porting, interim ------------------------------------------------------------------------------

def test_porting_without_date_fails(acme):
    only(acme.reject('acme', None, {NUMBER: {SINGLE: {'status': 'porting'}}}),
         num(SINGLE), 'porting_date', 'porting_date_required')
    acme.apply('acme', None, {NUMBER: {SINGLE: {'status': 'porting', 'porting_date': '2099-04-01'}}})


def test_future_porting_date_needs_status_porting(acme):
    only(acme.reject('acme', None, {NUMBER: {SINGLE: {'porting_date': '2099-04-01'}}}),
         num(SINGLE), 'status', 'porting_status')
    only(acme.reject('acme', None, {NUMBER: {SINGLE: {'status': 'inactive', 'porting_date': '2099-04-01'}}}),
         num(SINGLE), 'status', 'porting_status')
    # a porting day in the past: the number is active by itself, either status is fine
    acme.apply('acme', None, {NUMBER: {SINGLE: {'porting_date': '2001-04-02'}, '+4930999002': {
        'status': 'porting', 'porting_date': '2001-04-02'}}})


def test_interim_numbers_are_active_at_once(acme):
    only(acme.reject('acme', None, {NUMBER: {INTERIM: {'interim': True, 'status': 'inactive'}}}),
         num(INTERIM), 'interim', 'interim_active')
    only(acme.reject('acme', None, {NUMBER: {INTERIM: {'interim': True, 'status': 'porting', 'porting_date': '2099-01-02'}}}),
         num(INTERIM), 'interim', 'interim_active')
    acme.apply('acme', None, {NUMBER: {'03221 1234567': {'interim': True}}})


def test_block_members_keep_the_german_length_limit(acme):
    # +49 30 123456789 has 11 national digits: a 0-9 block reaches 12 (fine), 00-99 would reach 13
    acme.apply('acme', None, {NUMBER: {'+4930123456789': block('0-9')}})
    only(acme.reject('acme', None, {NUMBER: {'+4930123456789': block('00-99')}}),
         num('+4930123456789'), 'ddi_range', 'e164_length_de', '12 national digits')


def test_block_members_keep_the_e164_length_limit(acme):
    acme.apply('acme', None, {NUMBER: {'+4412345678901': block('00-99')}})            # 15 digits
    only(acme.reject('acme', None, {NUMBER: {'+44123456789012': block('00-99')}}),     # 16 digits
         num('+44123456789012'), 'ddi_range', 'e164_length', '15 digits')


def test_number_keys_follow_the_e164_rules(acme):
    only(acme.reject('acme', None, {NUMBER: {'+49 030 999001': {}}}), num('+49 030 999001'), 'number', 'e164')
    only(acme.reject('acme', None, {NUMBER: {'0' + '3012345678901': {}}}),
         num('03012345678901'), 'number', 'e164_length_de')
    only(acme.reject('acme', None, {DEVICE: {'00:15:65:ab:cd': {'model': 'yealink-t46u'}}}),
         dev('00:15:65:ab:cd'), 'mac', 'mac')


# Caller ID ------------------------------------------------------------------------------------------------

def test_outbound_caller_id_is_one_of_its_numbers_or_main_or_anonymous(acme):
    acme.apply('acme', None, {NUMBER: {SINGLE: {'target': '11'}}, EXTENSION: {'11': extension()}})
    acme.apply('acme', None, {EXTENSION: {'10': {'outbound_caller_id': '030 1234 10'}}})
    acme.apply('acme', None, {EXTENSION: {'10': {'outbound_caller_id': 'anonymous'}}})
    only(acme.reject('acme', None, {EXTENSION: {'10': {'outbound_caller_id': '+4930123411'}}}),
         ext('10'), 'outbound_caller_id', 'own_number', '+4930123411', '+4930123410')
    only(acme.reject('acme', None, {EXTENSION: {'10': {'outbound_caller_id': SINGLE}}}),
         ext('10'), 'outbound_caller_id', 'own_number', SINGLE)
    only(acme.reject('acme', None, {EXTENSION: {'10': {'outbound_caller_id': 'main'}}}),
         ext('10'), 'outbound_caller_id', 'main_number_required')
    acme.apply('acme', {'main_number': BLOCK}, {EXTENSION: {'10': {'outbound_caller_id': 'main'}}})
    only(acme.reject('acme', None, {EXTENSION: {'11': {'outbound_caller_id': '+4930123410'}}}),
         ext('11'), 'outbound_caller_id', 'own_number')


# Call features: voicemail needs the media server, single number reach the mobile, calls abroad the permission --

VIENNA = '+4315550100'        # an international (Austrian) number for a German tenant


def test_voicemail_needs_no_media_server_of_the_tenants_own(acme):
    """The PBX's media service answers voicemail calls; a tenant's own media_server only takes them over."""
    acme.apply('acme', None, {EXTENSION: {'10': {'voicemail': {'enabled': True, 'pin': '4711'}}}})
    acme.apply('acme', {'media_server': 'sip:192.0.2.50'})
    assert acme.load('acme').tenant['media_server'] == 'sip:192.0.2.50:5060'
    acme.apply('acme', {'media_server': ''})
    assert acme.load('acme').tenant['media_server'] is None
    assert acme.load('acme').objects(EXTENSION)['10']['voicemail']['enabled'] is True


def test_single_number_reach_needs_a_mobile(acme):
    only(acme.reject('acme', None, {EXTENSION: {'10': {'single_number_reach': True}}}),
         ext('10'), 'single_number_reach', 'mobile_required', 'mobile')
    acme.apply('acme', None, {EXTENSION: {'10': {'single_number_reach': True, 'mobile': '0171 1234567'}}})
    # the mobile cannot be cleared while single number reach rings it
    only(acme.reject('acme', None, {EXTENSION: {'10': {'mobile': ''}}}),
         ext('10'), 'single_number_reach', 'mobile_required')
    acme.apply('acme', None, {EXTENSION: {'10': {'mobile': '', 'single_number_reach': False}}})
    # a mobile without single number reach is fine
    acme.apply('acme', None, {EXTENSION: {'10': {'mobile': '0171 1234567'}}})


@pytest.mark.parametrize('kind', ['unconditional', 'busy', 'no_answer', 'unregistered'])
def test_an_international_forward_needs_the_permission_of_extension_and_tenant(acme, kind):
    field = 'forwarding.%s' % kind
    only(acme.reject('acme', None, {EXTENSION: {'10': {'forwarding': {kind: '0043 1 5550100'}}}}),
         ext('10'), field, 'international_calls', VIENNA)
    # national and mobile numbers need no permission
    acme.apply('acme', None, {EXTENSION: {'10': {'forwarding': {kind: '0171 1234567'}}}})
    # with the extension's permission (the tenant's is on by default) it is fine
    acme.apply('acme', None, {EXTENSION: {'10': {'international_calls': True, 'forwarding': {kind: VIENNA}}}})
    # the tenant cannot withdraw its permission while the forward is set: the extension is named
    only(acme.reject('acme', {'international_calls': False}), ext('10'), field, 'international_calls', VIENNA)
    # nor can the extension lose its own
    only(acme.reject('acme', None, {EXTENSION: {'10': {'international_calls': False}}}),
         ext('10'), field, 'international_calls')
    acme.apply('acme', {'international_calls': False}, {EXTENSION: {'10': {'forwarding': {kind: ''}}}})


def test_an_international_mobile_needs_the_permission_only_with_single_number_reach(acme):
    # a foreign mobile that nothing rings is just a number
    acme.apply('acme', None, {EXTENSION: {'10': {'mobile': VIENNA}}})
    only(acme.reject('acme', None, {EXTENSION: {'10': {'single_number_reach': True}}}),
         ext('10'), 'mobile', 'international_calls', VIENNA)
    acme.apply('acme', None, {EXTENSION: {'10': {'single_number_reach': True, 'international_calls': True}}})
    only(acme.reject('acme', {'international_calls': False}), ext('10'), 'mobile', 'international_calls', VIENNA)
    # a German mobile needs no permission
    acme.apply('acme', {'international_calls': False},
               {EXTENSION: {'10': {'mobile': '0171 1234567', 'international_calls': False}}})


# Premium-rate and satellite destinations need the permission of tenant and extension, like international ones.

PREMIUM = '+49900123456'      # German premium-rate (0)900
PREMIUM_ABROAD = '+979123456789'   # ITU-T international premium rate service
SATELLITE = '+8816123456'     # ITU-T global mobile satellite system


@pytest.mark.parametrize('dest, permission', [(PREMIUM, 'premium_calls'), ('0137 123456', 'premium_calls'),
                                              (PREMIUM_ABROAD, 'premium_calls'), (SATELLITE, 'satellite_calls')])
@pytest.mark.parametrize('kind', ['unconditional', 'no_answer'])
def test_a_premium_or_satellite_forward_needs_the_permission_of_extension_and_tenant(acme, dest, permission, kind):
    field = 'forwarding.%s' % kind
    e164 = rules.e164(dest, 'x', '49')
    violation = only(acme.reject('acme', None, {EXTENSION: {'10': {'forwarding': {kind: dest}}}}),
                     ext('10'), field, permission, e164, 'neither the tenant nor this extension may call')
    assert ('premium-rate' if permission == 'premium_calls' else 'satellite network') in violation.message
    # the extension's permission alone is not enough: the tenant's is off by default
    only(acme.reject('acme', None, {EXTENSION: {'10': {permission: True, 'forwarding': {kind: dest}}}}),
         ext('10'), field, permission, 'the tenant may not call', '(%s)' % permission)
    # both: fine, and the international permission is not needed on top (the class is premium or satellite)
    acme.apply('acme', {permission: True, 'international_calls': False},
               {EXTENSION: {'10': {permission: True, 'forwarding': {kind: dest}}}})
    # neither side can withdraw its permission while the forward is set
    only(acme.reject('acme', {permission: False}), ext('10'), field, permission, 'the tenant may not call')
    only(acme.reject('acme', None, {EXTENSION: {'10': {permission: False}}}), ext('10'), field, permission,
         'this extension may not call')
    acme.apply('acme', {permission: False}, {EXTENSION: {'10': {permission: False, 'forwarding': {kind: ''}}}})


def test_a_premium_or_satellite_mobile_needs_the_permission_only_with_single_number_reach(acme):
    acme.apply('acme', None, {EXTENSION: {'10': {'mobile': SATELLITE}}})
    only(acme.reject('acme', None, {EXTENSION: {'10': {'single_number_reach': True}}}),
         ext('10'), 'mobile', 'satellite_calls', SATELLITE)
    acme.apply('acme', {'satellite_calls': True}, {EXTENSION: {'10': {'single_number_reach': True, 'satellite_calls': True}}})


def test_an_emergency_only_extension_calls_nothing_outside(acme):
    acme.apply('acme', {'premium_calls': True, 'media_server': MEDIA_SERVER}, {EXTENSION: {'10': {
        'international_calls': True, 'premium_calls': True, 'forwarding': {'busy': '0171 1234567'},
        'mobile': '0171 1234567', 'single_number_reach': True}}})
    violations = acme.reject('acme', None, {EXTENSION: {'10': {'emergency_only': True}}})
    assert sorted((v.field, v.rule) for v in violations) == [('forwarding.busy', 'emergency_only'), ('mobile', 'emergency_only')]
    expect(violations, ext('10'), 'forwarding.busy', 'emergency_only', '+491711234567',
           'only internal numbers and the emergency numbers 110 and 112')
    # internal destinations and the voicemail are fine
    acme.apply('acme', None, {EXTENSION: {
        '11': extension(account('erika.m')),
        '10': {'emergency_only': True, 'single_number_reach': False, 'voicemail': {'enabled': True},
               'forwarding': {'busy': '11', 'no_answer': 'voicemail'}}}})
    only(acme.reject('acme', None, {EXTENSION: {'10': {'forwarding': {'unregistered': PREMIUM}}}}),
         ext('10'), 'forwarding.unregistered', 'emergency_only')


def test_call_feature_violations_are_reported_together(acme):
    violations = acme.reject('acme', None, {EXTENSION: {'10': {
        'voicemail': {'enabled': True}, 'single_number_reach': True, 'forwarding': {'busy': VIENNA}}}})
    assert sorted((v.obj, v.field, v.rule) for v in violations) == [
        (ext('10'), 'forwarding.busy', 'international_calls'),
        (ext('10'), 'single_number_reach', 'mobile_required'),
    ]


# Changing the SIP domain (the digest realm of every stored HA1) ---------------------------------------------

def test_changing_the_sip_domain_needs_new_passwords(acme):
    acme.apply('acme', None, {EXTENSION: {'11': extension(account('erika.m'))}})
    only(acme.reject('acme', {'sip_domain': 'acme-neu.voxplane.example'}),
         ACME, 'sip_domain', 'realm_change', 'max.muster', 'erika.m')
    # with a new password for only one of them, the other one is named
    v = only(acme.reject('acme', {'sip_domain': 'acme-neu.voxplane.example'},
                         {EXTENSION: {'10': {'sip_accounts': [account('max.muster')]}}}),
             ACME, 'sip_domain', 'realm_change', 'erika.m')
    assert 'max.muster' not in v.message
    acme.apply('acme', {'sip_domain': 'acme-neu.voxplane.example'}, {EXTENSION: {
        '10': {'sip_accounts': [account('max.muster', password='Neu-2025-max')]},
        '11': {'sip_accounts': [account('erika.m', password='Neu-2025-erika')]}}})
    accounts = acme.load('acme').sip_accounts()
    assert accounts['max.muster'][1]['ha1'] == rules.ha1('max.muster', 'acme-neu.voxplane.example', 'Neu-2025-max')
    assert accounts['erika.m'][1]['ha1'] == rules.ha1('erika.m', 'acme-neu.voxplane.example', 'Neu-2025-erika')


def test_changing_the_sip_domain_without_sip_accounts_is_fine(pbx):
    pbx.apply('acme', tenant_request(), {EXTENSION: {'10': extension()}})
    pbx.apply('acme', {'sip_domain': 'acme-neu.voxplane.example'})
    assert pbx.load('acme').tenant['sip_domain'] == 'acme-neu.voxplane.example'


# Messages ---------------------------------------------------------------------------------------------------

def test_all_violations_of_one_request_are_reported_together(acme):
    with pytest.raises(ValidationFailed) as info:
        acme.apply('acme', None, {EXTENSION: {'11': extension(account('max.muster'), seat='best'),
                                              '12': extension(account('anna.app', kind='softclient'), seat='best')},
                                  NUMBER: {SINGLE: {'status': 'porting'}}})
    found = set((v.obj, v.field, v.rule) for v in info.value.violations)
    assert found == {(ext('11'), 'sip_accounts', 'username_unique'), (ext('12'), 'seat', 'seats'),
                     (num(SINGLE), 'porting_date', 'porting_date_required')}
    text = str(info.value)
    assert text.startswith('3 rule violations')
    assert 'extension 11 (tenant acme): sip_accounts:' in text and '[username_unique]' in text
    assert PASSWORD not in text
    assert info.value.violations[0].as_dict().keys() == {'object', 'field', 'rule', 'message'}
