# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""route_info's prediction of menus, queues, conference rooms and schedules (callflow.py): the steps come from
the routing core's own decisions, and where the media service places a call (a menu's choice, a queue's member
or overflow) the simulator asks route_from_media exactly what the media service's INVITE would ask the router.
The directory is the routing tests' "Zentrale: 1 Vertrieb, 2 Support, 0 Empfang" behind business hours."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from test_routing_menus import CHRISTMAS, HEAD, MENU, MONDAY_10, MONDAY_20, SUPPORT, TEAM, build
from ansible_collections.voxplane.pbx.plugins.module_utils import callflow
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import ValidationFailed


@pytest.fixture(scope='module')
def states(tmp_path_factory):
    harness = build(tmp_path_factory.mktemp('callflow-menus') / 'directory.db')
    with harness.directory.transaction(write=False) as txn:
        return txn.load_all()


@pytest.fixture(scope='module')
def snap(states):
    return callflow.build_snapshot(states, 1)


def simulate(snap, dialled, digits=None, at=MONDAY_10, answer=(), registered=None, **caller):
    who = callflow.resolve_caller(snap, 'acme', **(caller or {'trunk': True, 'calling_number': '+4989111222'}))
    return callflow.simulate(snap, who, dialled, at, callflow.Circumstances(registered, answer), digits=digits)


def actions(flow):
    return [step['action'] for step in flow['steps']]


def test_without_digits_the_caller_hears_the_menu(snap):
    flow = simulate(snap, HEAD)
    assert actions(flow) == ['schedule', 'ivr']
    schedule, menu = flow['steps']
    assert (schedule['name'], schedule['open'], schedule['destination'], schedule['timezone']) == (
        'hours', True, '700', 'Europe/Berlin')
    assert menu['keys'] == {'1': '20', '2': '600', '0': '10'} and menu['choice'] is None and menu['pressed'] == []
    assert menu['headers'] == {'X-Voxplane-Media': 'ivr;number=700'}
    assert flow['final'] == {'code': 200, 'reason': 'OK', 'by': 'ivr 700'}
    assert flow['summary'] == [
        '0s: schedule hours (Europe/Berlin): open -> IVR menu 700 Zentrale',
        '0s: IVR menu 700 Zentrale: 1 -> group 20 Vertrieb, 2 -> queue 600 Support, 0 -> extension 10 Empfang; '
        'waits for a key',
        'final: 200 OK']


def test_a_key_leads_where_the_menu_says_and_the_flow_goes_on_there(snap):
    flow = simulate(snap, HEAD, digits=['1'], answer=['anna.desk'])
    assert actions(flow) == ['schedule', 'ivr', 'ring']
    menu, ring = flow['steps'][1:]
    assert (menu['choice'], menu['key'], menu['chosen'], menu['chosen_words']) == ('key', '1', '20', 'group 20 Vertrieb')
    assert ring['target'] == '20' and ring['extensions'] == ['11'] and ring['diversion_history'] == []
    assert flow['final'] == {'code': 200, 'reason': 'OK', 'by': 'anna.desk'}
    assert flow['summary'][1] == '0s: IVR menu 700 Zentrale: key 1 -> group 20 Vertrieb'


def test_a_queue_overflows_after_its_max_wait(snap):
    flow = simulate(snap, HEAD, digits=['2'])
    assert actions(flow) == ['schedule', 'ivr', 'queue', 'voicemail']
    queue, box = flow['steps'][2:]
    assert queue['outcome'] == 'overflow' and queue['logged_in'] == ['11', '12'] and queue['ready'] == ['11']
    assert queue['members'][2] == {'extension': '13', 'penalty': 0, 'logged_in': False}
    assert box['at'] == 120 and box['mailbox'] == '10'
    assert flow['summary'][2] == ('0s: queue 600 Support (ring_all: 11, 12; max wait 120s): nobody answers, overflow '
                                  'after 120s to voicemail of 10')
    assert flow['final'] == {'code': 200, 'reason': 'OK', 'by': 'voicemail'}


def test_a_member_named_in_answer_takes_the_queues_call(snap):
    flow = simulate(snap, SUPPORT, answer=['11'])
    assert actions(flow) == ['queue', 'ring']
    queue, ring = flow['steps']
    assert queue['outcome'] == 'answered' and queue['answered_by'] == '11'
    assert ring['queue_member'] is True and ring['target'] == '11' and ring['ring_time'] == 12
    assert ring['ringing'] == ['anna.desk', 'anna.app'] and flow['final']['by'] == 'anna.desk'
    assert flow['summary'][1] == '0s: ring extension 11 Anna (queue member): anna.desk, anna.app for 12s: answered by anna.desk'
    # a member that is logged out, or on DND, does not take it: the queue overflows
    assert simulate(snap, SUPPORT, answer=['13'])['steps'][0]['outcome'] == 'overflow'
    assert simulate(snap, SUPPORT, answer=['12'])['steps'][0]['outcome'] == 'overflow'
    assert simulate(snap, SUPPORT, answer=['11'], registered=[])['steps'][0]['outcome'] == 'overflow'


@pytest.mark.parametrize('digits, choice, chosen, at', [
    (['5', '6', '7'], 'invalid', '10', 0),                              # three wrong keys: invalid
    (['timeout', 'timeout', 'timeout'], 'no_input', 'voicemail:10', 15),  # three times nothing: no_input
    (['timeout', '9', '0'], 'key', '10', 5),                            # tries left: a good key counts
    (['11'], 'invalid', None, None),                                    # no direct dial: a wrong key (and more tries)
])
def test_wrong_keys_and_timeouts_count_as_tries(snap, digits, choice, chosen, at):
    flow = simulate(snap, MENU, digits=digits)
    menu = flow['steps'][0]
    if chosen is None:  # the digits ran out at the menu
        assert menu['choice'] is None and flow['final'] == {'code': 200, 'reason': 'OK', 'by': 'ivr 700'}
        return
    assert (menu['choice'], menu['chosen'], menu['pressed']) == (choice, chosen, digits)
    assert flow['steps'][1]['at'] == at


def test_a_menu_with_direct_dial_and_a_key_that_repeats_it(states, tmp_path):
    harness = build(tmp_path / 'directory.db')
    harness.apply('acme', None, {'ivr': {'700': {'direct_dial': True, 'keys': {'1': '20', '*': '700'}}}})
    with harness.directory.transaction(write=False) as txn:
        snap = callflow.build_snapshot(txn.load_all(), 2)
    flow = simulate(snap, MENU, digits=['*', '*', '11'], answer=['anna.desk'])
    menu = flow['steps'][0]
    assert (menu['choice'], menu['key'], menu['chosen']) == ('direct_dial', '11', '11')
    assert flow['summary'][0] == '0s: IVR menu 700 Zentrale: dialled 11 directly -> extension 11 Anna'
    assert flow['final']['by'] == 'anna.desk'
    # a group's number is no extension: not dialled directly
    assert simulate(snap, MENU, digits=['20'])['steps'][0]['pressed'] == ['20']


def test_out_of_hours_the_closed_destination(snap):
    for moment in (MONDAY_20, CHRISTMAS):
        flow = simulate(snap, HEAD, at=moment)
        assert actions(flow) == ['schedule', 'announcement', 'voicemail']
        assert flow['steps'][0]['open'] is False and flow['summary'][0] == \
            '0s: schedule hours (Europe/Berlin): closed -> announcement closed'


def test_a_conference_room_is_answered_by_the_media_service(snap):
    flow = simulate(snap, TEAM)
    assert actions(flow) == ['conference'] and flow['steps'][0]['max_participants'] == 10
    assert flow['final'] == {'code': 200, 'reason': 'OK', 'by': 'conference 650'}
    assert flow['summary'][0] == '0s: conference room 650 Team: answered by the media service'


def test_an_internal_caller_reaches_the_queue_and_its_overflow_shows_who_called(snap):
    flow = simulate(snap, '600', account='empfang.desk')
    queue, box = flow['steps']
    assert queue['identity'] == '"Empfang" <sip:10@zentrale.voxplane.example>'
    assert box['identity'] == queue['identity']            # the media service presents the caller


def test_a_queue_code_is_predicted_with_its_answer(states, snap):
    who = callflow.resolve_caller(snap, 'acme', account='anna.desk')
    flow = callflow.simulate(snap, who, '*44600', MONDAY_10, callflow.Circumstances(),
                             setting_outcome=lambda setting: callflow.try_setting(states['acme'], setting))
    assert flow['steps'] == [{'action': 'feature_code', 'at': 0, 'tenant': 'acme', 'extension': '11',
                              'setting': {'logged_in': True}, 'queues': ['600']}]
    assert flow['final'] == {'code': 603, 'reason': 'Logged In To Queue 600', 'by': None}
    assert flow['summary'][0] == '0s: feature code for extension 11: log in to queue 600'


def test_digits_that_are_no_keys_are_refused_naming_the_field(snap):
    with pytest.raises(ValidationFailed) as info:
        simulate(snap, MENU, digits=['1', 'press one'])
    violation, = info.value.violations
    assert (violation.field, violation.rule) == ('digits[1]', 'menu_key')
