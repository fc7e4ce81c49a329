# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IVR menus, queues, conference rooms and schedules in the directory core (issue 22): their canonical
shape (model.py), the rules across objects (integrity.py: one internal number one object, references
with the path of the field, removals refused while referenced, add-on licences, PINs) and the store
(migration 6's tables). A real SQLite directory written through reconcile."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from directory_helpers import account, expect, extension, only, tenant_request  # pytest.ini pythonpath
from ansible_collections.voxplane.pbx.plugins.module_utils import model, rules
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    ANNOUNCEMENT, CONFERENCE, EXTENSION, GROUP, IVR, NUMBER, QUEUE, SCHEDULE, TENANT,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import ABSENT

AUDIO = b'RIFF....WAVEfmt '  # any bytes: integrity only asks whether the tenant has them


def obj(kind, key, tenant='acme'):
    return model.describe(kind, key, tenant)


def licensed(pbx, ivr=2, conference=1, **extra):
    """Tenant acme with add-on licences for menus and rooms, extensions 10-12, an announcement and group 20."""
    request = tenant_request(trunks=[{'name': 'carrier', 'addresses': ['192.0.2.10']}], **extra)
    request['licences']['addons'].update(ivr=ivr, conference=conference)
    pbx.apply('acme', request)
    with pbx.directory.transaction() as txn:
        digest = txn.put_audio('acme', AUDIO, 1200)
    pbx.apply('acme', None, {
        EXTENSION: {'10': extension(account('max.muster'), voicemail={'enabled': True}),
                    '11': extension(account('erika.desk'), name='Erika'), '12': extension(account('otto.desk'), name='Otto')},
        ANNOUNCEMENT: {'welcome': {'audio': digest, 'duration_ms': 1200}, 'closed': {'audio': digest, 'duration_ms': 1200}},
        GROUP: {'20': {'name': 'Vertrieb', 'members': ['11', '12']}},
    })
    return pbx


@pytest.fixture
def acme(pbx):
    return licensed(pbx)


@pytest.fixture
def zentrale(acme):
    """The seeds' call flow: "Zentrale: 1 Vertrieb, 2 Support, 0 Empfang", business hours on the head number."""
    acme.apply('acme', None, {
        QUEUE: {'600': {'name': 'Support', 'members': [{'extension': '11'}, {'extension': '12', 'penalty': 1}],
                        'overflow': 'voicemail:10', 'max_wait': 120}},
        CONFERENCE: {'650': {'name': 'Team', 'pin': '4711', 'moderator_pin': '9876', 'wait_for_moderator': True}},
        IVR: {'700': {'name': 'Zentrale', 'greeting': 'welcome', 'keys': {1: '20', '2': '600', '0': '10'},
                      'invalid': '10', 'no_input': 'voicemail:10'}},
        SCHEDULE: {'hours': {'hours': [{'days': ['mon', 'tue', 'wed', 'thu', 'fri'], 'from': '08:00', 'to': '18:00'}],
                             'holidays': ['2026-12-25'], 'open': '700', 'closed': 'announcement:closed'}},
        NUMBER: {'+49301234500': {'target': 'schedule:hours'}},
    })
    return acme


# The canonical shapes -----------------------------------------------------------------------------------------

def test_the_objects_are_stored_in_their_canonical_shape(zentrale):
    state = zentrale.load('acme')
    menu = state.get(IVR, '700')
    assert menu['keys'] == {'1': '20', '2': '600', '0': '10'}
    assert (menu['timeout'], menu['max_tries'], menu['menu'], menu['direct_dial']) == (5, 3, None, False)
    queue = state.get(QUEUE, '600')
    assert queue['members'] == [{'extension': '11', 'penalty': 0, 'logged_in': True},
                                {'extension': '12', 'penalty': 1, 'logged_in': True}]
    assert (queue['strategy'], queue['member_ring_time'], queue['max_callers'], queue['music']) == ('ring_all', 15, 10, None)
    room = state.get(CONFERENCE, '650')
    assert room['pin_hash'] == rules.conference_pin_hash('acme', '650', '4711')
    assert room['moderator_pin_hash'] == rules.conference_pin_hash('acme', '650', '9876')
    schedule = state.get(SCHEDULE, 'hours')
    assert schedule['hours'] == [{'days': ['mon', 'tue', 'wed', 'thu', 'fri'], 'from': '08:00', 'to': '18:00'}]
    assert schedule['timezone'] is None and schedule['holidays'] == ['2026-12-25']
    assert state.get(NUMBER, '+49301234500')['target'] == 'schedule:hours'
    # one row per object, in the tables of migration 6
    rows = zentrale.snapshot()
    assert [len(rows[t]) for t in ('ivr_menus', 'call_queues', 'conference_rooms', 'schedules')] == [1, 1, 1, 1]


def test_a_rooms_pins_are_never_shown_and_the_diff_says_whether_they_change():
    room = dict(model.with_defaults(CONFERENCE, {}), internal_number='650', tenant='acme',
                pin_hash='a' * 64, moderator_pin_hash=None)
    assert 'pin_hash' not in model.public(CONFERENCE, room) and 'pin' not in model.public(CONFERENCE, room)
    assert model.with_secrets(CONFERENCE, room)['pin_hash'] == 'a' * 64
    assert 'moderator_pin_hash' not in model.with_secrets(CONFERENCE, room)
    changed = dict(room, pin_hash='b' * 64)
    assert model.diff_view(CONFERENCE, changed, room)['pin'] == '******** (changed)'
    assert model.diff_view(CONFERENCE, room, room)['pin'] == '********'
    assert 'moderator_pin' not in model.diff_view(CONFERENCE, room)
    assert set(('pin', 'moderator_pin', 'pin_hash', 'moderator_pin_hash')) <= set(model.SECRET_FIELDS)


def test_a_replacement_keeps_a_rooms_pins_unless_it_names_them():
    assert 'pin_hash' not in model.replacement(CONFERENCE, {'name': 'Team'})
    assert model.replacement(CONFERENCE, {})['music'] == ''
    assert 'open' not in model.replacement(SCHEDULE, {})   # required: a document names it


def test_a_pin_is_cleared_with_an_empty_string_and_kept_when_left_out(zentrale):
    zentrale.apply('acme', None, {CONFERENCE: {'650': {'name': 'Team room'}}})
    assert zentrale.load('acme').get(CONFERENCE, '650')['pin_hash']
    zentrale.apply('acme', None, {CONFERENCE: {'650': {'pin': ''}}})
    assert zentrale.load('acme').get(CONFERENCE, '650')['pin_hash'] is None


def test_a_queue_member_keeps_its_login_state_and_penalty_when_given_without_them(zentrale):
    zentrale.apply('acme', None, {QUEUE: {'600': {'members': [{'extension': '12', 'logged_in': False},
                                                              {'extension': '11'}]}}})
    zentrale.apply('acme', None, {QUEUE: {'600': {'members': [{'extension': '11'}, {'extension': '12'},
                                                              {'extension': '10', 'penalty': 5}]}}})
    assert zentrale.load('acme').get(QUEUE, '600')['members'] == [
        {'extension': '11', 'penalty': 0, 'logged_in': True}, {'extension': '12', 'penalty': 1, 'logged_in': False},
        {'extension': '10', 'penalty': 5, 'logged_in': True}]


@pytest.mark.parametrize('kind, key, ask, field, rule', [
    (IVR, '701', {'keys': {'5': 'voicemail'}}, 'keys.5', 'destination'),
    (IVR, '701', {'keys': {'12': '20'}}, 'keys', 'menu_key'),
    (IVR, '701', {'keys': {'1': 'Empfang'}}, 'keys.1', 'e164'),
    (IVR, '701', {'timeout': 0}, 'timeout', 'range'),
    (IVR, '701', {'max_tries': 11}, 'max_tries', 'range'),
    (IVR, '701', {'greeting': 'Welcome!'}, 'greeting', 'object_name'),
    (IVR, '701', {'keys': ['20']}, 'keys', 'type'),
    (QUEUE, '601', {'strategy': 'random'}, 'strategy', 'choice'),
    (QUEUE, '601', {'members': [{'extension': '11'}, {'extension': '11'}]}, 'members[1].extension', 'unique'),
    (QUEUE, '601', {'members': [{'extension': 'anna'}]}, 'members[0].extension', 'internal_digits'),
    (QUEUE, '601', {'members': [{'extension': '11', 'penalty': 101}]}, 'members[0].penalty', 'range'),
    (QUEUE, '601', {'members': [{'extension': '11', 'logged_in': 'yes'}]}, 'members[0].logged_in', 'boolean'),
    (QUEUE, '601', {'members': ['11']}, 'members[0]', 'type'),
    (QUEUE, '601', {'member_ring_time': 2}, 'member_ring_time', 'range'),
    (QUEUE, '601', {'announce_position': 5}, 'announce_position', 'range'),
    (QUEUE, '601', {'overflow': 'voicemail'}, 'overflow', 'destination'),
    (CONFERENCE, '651', {'pin': '12'}, 'pin', 'pin'),
    (CONFERENCE, '651', {'moderator_pin': 'abcd'}, 'moderator_pin', 'pin'),
    (CONFERENCE, '651', {'max_participants': 1}, 'max_participants', 'range'),
    (CONFERENCE, '651', {'pin_hash': 'xyz'}, 'pin_hash', 'pin_hash'),
    (SCHEDULE, 'nights', {'open': '10', 'closed': '10', 'timezone': 'Mars/Olympus'}, 'timezone', 'timezone'),
    (SCHEDULE, 'nights', {'open': '10', 'closed': '10', 'holidays': ['25.12.2026']}, 'holidays[0]', 'date'),
    (SCHEDULE, 'nights', {'open': '10', 'closed': '10', 'hours': [{'days': ['mon'], 'from': '20:00', 'to': '06:00'}]},
     'hours[0].to', 'opening_hours'),
    (SCHEDULE, 'nights', {'open': '10'}, 'closed', 'required'),
    (SCHEDULE, 'Nights', {'open': '10', 'closed': '10'}, 'name', 'object_name'),
    (GROUP, '21', {'fallback': 'schedule:No Way'}, 'fallback', 'object_name'),
])
def test_each_field_rule_names_the_field_and_the_rule(acme, kind, key, ask, field, rule):
    violations = acme.reject('acme', None, {kind: {key: ask}})
    expect(violations, obj(kind, key), field, rule)


# One internal number, one object; ranges ---------------------------------------------------------------------

@pytest.mark.parametrize('kind, other, other_kind', [
    (IVR, '10', 'extension'), (QUEUE, '20', 'group'), (CONFERENCE, '700', 'IVR menu'), (IVR, '600', 'queue'),
])
def test_an_internal_number_is_one_objects(zentrale, kind, other, other_kind):
    message = '%s is already the number of %s %s' % (other, other_kind, other)
    expect(zentrale.reject('acme', None, {kind: {other: {'name': 'Twin'}}}), obj(kind, other), 'internal_number',
           'internal_unique', message)


def test_an_extension_on_a_menus_number_is_blamed_on_the_extension(zentrale):
    only(zentrale.reject('acme', None, {EXTENSION: {'700': extension(account('twin.desk'))}}),
         obj(EXTENSION, '700'), 'internal_number', 'internal_unique', 'is already the number of IVR menu 700')


def test_menus_queues_and_rooms_keep_to_the_internal_ranges(zentrale):
    zentrale.apply('acme', {'internal_ranges': ['10-99', '600-799']})
    only(zentrale.reject('acme', None, {QUEUE: {'800': {}}}), obj(QUEUE, '800'), 'internal_number', 'internal_range',
         'outside the tenant\'s internal ranges 10-99, 600-799')


# References: each destination field, with the path of the field ---------------------------------------------

@pytest.mark.parametrize('kind, key, ask, field, message', [
    (IVR, '701', {'keys': {'3': '99'}}, 'keys.3', 'target 99 does not exist in tenant acme'),
    (IVR, '701', {'keys': {'#': 'schedule:nights'}}, 'keys.#', 'schedule nights does not exist'),
    (IVR, '701', {'invalid': 'voicemail:11'}, 'invalid', 'extension 11 has no voicemail enabled'),
    (IVR, '701', {'no_input': 'announcement:gone'}, 'no_input', 'announcement gone does not exist'),
    (IVR, '701', {'menu': 'gone'}, 'menu', 'announcement gone does not exist'),
    (QUEUE, '601', {'members': [{'extension': '20'}]}, 'members[0].extension', 'extension 20 does not exist'),
    (QUEUE, '601', {'overflow': '98'}, 'overflow', 'target 98 does not exist'),
    (QUEUE, '601', {'no_members': 'voicemail:98'}, 'no_members', 'extension 98 does not exist'),
    (QUEUE, '601', {'music': 'gone'}, 'music', 'announcement gone does not exist'),
    (CONFERENCE, '651', {'music': 'gone'}, 'music', 'announcement gone does not exist'),
    (SCHEDULE, 'nights', {'open': '10', 'closed': '97'}, 'closed', 'target 97 does not exist'),
    (EXTENSION, '10', {'forwarding': {'no_answer': 'schedule:nights'}}, 'forwarding.no_answer', 'schedule nights does not'),
    (NUMBER, '+49301234501', {'target': 'schedule:nights'}, 'target', 'schedule nights does not exist'),
])
def test_every_destination_must_exist(zentrale, kind, key, ask, field, message):
    rule = 'voicemail_disabled' if 'no voicemail' in message else 'reference'
    expect(zentrale.reject('acme', None, {kind: {key: ask}}), obj(kind, key), field, rule, message)


@pytest.mark.parametrize('kind, key, referrer, field', [
    (GROUP, '20', 'ivr 700', 'keys.1'),
    (QUEUE, '600', 'ivr 700', 'keys.2'),
    (IVR, '700', 'schedule hours', 'open'),
    (SCHEDULE, 'hours', 'number +49301234500', 'target'),
    (EXTENSION, '12', 'group 20', 'members'),
    (ANNOUNCEMENT, 'welcome', 'ivr 700', 'greeting'),
    (ANNOUNCEMENT, 'closed', 'schedule hours', 'closed'),
])
def test_removing_what_something_references_is_refused_naming_the_referrer_and_the_field(
        zentrale, kind, key, referrer, field):
    violations = zentrale.reject('acme', None, {kind: {key: ABSENT}})
    expect(violations, obj(kind, key), 'state', 'still_referenced', 'still referenced by %s (%s)' % (referrer, field))


def test_a_queue_member_cannot_be_removed_while_it_is_a_member(zentrale):
    zentrale.apply('acme', None, {GROUP: {'20': {'members': ['11']}}})
    expect(zentrale.reject('acme', None, {EXTENSION: {'12': ABSENT}}), obj(EXTENSION, '12'), 'state', 'still_referenced',
           'still referenced by queue 600 (members[1].extension)')


def test_new_destinations_everywhere_a_destination_is_taken(zentrale):
    zentrale.apply('acme', None, {
        EXTENSION: {'11': {'forwarding': {'busy': '600', 'no_answer': 'schedule:hours', 'unregistered': '650'},
                           'speed_dials': [{'code': '1', 'number': '700'}]}},
        GROUP: {'20': {'fallback': 'schedule:hours'}},
        NUMBER: {'+49301234501': {'target': '650'}, '+49301234502': {'target': '600'}},
    })
    zentrale.apply('acme', None, {ANNOUNCEMENT: {'closed': {'then': '600'}}})
    assert zentrale.load('acme').get(ANNOUNCEMENT, 'closed')['then'] == '600'


# Loops and outside destinations --------------------------------------------------------------------------------

def test_a_menu_key_may_lead_to_its_own_menu_but_nothing_else_loops(zentrale):
    zentrale.apply('acme', None, {IVR: {'700': {'keys': {'9': '700', '1': '20'}}}})
    expect(zentrale.reject('acme', None, {IVR: {'700': {'invalid': '700'}}}), obj(IVR, '700'), 'invalid', 'forward_loop',
           'an IVR menu cannot lead to itself')
    expect(zentrale.reject('acme', None, {QUEUE: {'600': {'overflow': '600'}}}), obj(QUEUE, '600'), 'overflow',
           'forward_loop')
    expect(zentrale.reject('acme', None, {SCHEDULE: {'hours': {'closed': 'schedule:hours'}}}), obj(SCHEDULE, 'hours'),
           'closed', 'forward_loop', 'a schedule cannot lead to itself')


def test_an_outside_destination_needs_the_tenants_permission(zentrale):
    zentrale.apply('acme', None, {QUEUE: {'600': {'overflow': '+41441234567'}}})  # acme may call abroad
    expect(zentrale.reject('acme', None, {IVR: {'700': {'keys': {'4': '0900 1234567'}}}}), obj(IVR, '700'), 'keys.4',
           'premium_calls', '+499001234567 is a premium-rate number and the tenant may not call premium-rate numbers')
    expect(zentrale.reject('acme', {'international_calls': False}), obj(QUEUE, '600'), 'overflow', 'international_calls')


# Add-on licences, like seats ----------------------------------------------------------------------------------

def test_each_menu_takes_an_ivr_add_on(zentrale):
    zentrale.apply('acme', None, {IVR: {'701': {'name': 'Support'}}})             # the second of two
    only(zentrale.reject('acme', None, {IVR: {'702': {}}}), obj(IVR, '702'), 'internal_number', 'ivr_licence',
         'no ivr add-on is left for it: the tenant\'s 2 are taken (licences.addons.ivr)')
    fewer = {'seats': {'smart': 5, 'best': 1}, 'addons': {'ivr': 1, 'conference': 1}}
    violations = zentrale.reject('acme', {'licences': fewer})
    only(violations, 'tenant acme', 'licences.addons.ivr', 'ivr_licence',
         '2 IVR menus take an ivr add-on but the tenant has 1; none is left for IVR menu 701')


def test_each_room_takes_a_conference_add_on(zentrale):
    only(zentrale.reject('acme', None, {CONFERENCE: {'651': {}}}), obj(CONFERENCE, '651'), 'internal_number',
         'conference_licence', 'no conference add-on is left for it: the tenant\'s 1 are taken (licences.addons.conference)')


def test_a_tenant_without_add_ons_has_no_menus(pbx):
    licensed(pbx, ivr=0, conference=0)
    only(pbx.reject('acme', None, {IVR: {'700': {}}}), obj(IVR, '700'), 'internal_number', 'ivr_licence')
    pbx.apply('acme', None, {QUEUE: {'600': {}}, SCHEDULE: {'hours': {'open': '10', 'closed': '600'}}})  # no licence


# Conference rooms ---------------------------------------------------------------------------------------------

def test_waiting_for_a_moderator_needs_a_moderator_pin(acme):
    violations = acme.reject('acme', None, {CONFERENCE: {'651': {'end_with_moderator': True, 'wait_for_moderator': True}}})
    expect(violations, obj(CONFERENCE, '651'), 'wait_for_moderator', 'moderator_pin_required', 'set moderator_pin')
    expect(violations, obj(CONFERENCE, '651'), 'end_with_moderator', 'moderator_pin_required')


def test_the_moderator_pin_differs_from_the_pin(acme):
    only(acme.reject('acme', None, {CONFERENCE: {'651': {'pin': '1234', 'moderator_pin': '1234'}}}),
         obj(CONFERENCE, '651'), 'moderator_pin', 'pin_distinct', 'must differ from the PIN')


def test_a_removed_tenant_object_frees_its_number(zentrale):
    zentrale.apply('acme', None, {NUMBER: {'+49301234500': {'target': '10'}}, SCHEDULE: {'hours': ABSENT}})
    zentrale.apply('acme', None, {IVR: {'700': ABSENT}})
    zentrale.apply('acme', None, {EXTENSION: {'700': extension(account('seven.desk'))}})
    assert zentrale.load('acme').get(TENANT, 'acme') is not None and '700' in zentrale.load('acme').objects(EXTENSION)
