# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IVR menus on the media service (ivr_flows.py), driven by a scripted caller without PJSIP."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from media_helpers import Caller, run
from ansible_collections.voxplane.pbx.plugins.module_utils import ivr_flows, media_calls
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import (
    ALL_DIGITS, Answer, Bridge, Hangup, Play, StoredAudio,
)

GREETING = StoredAudio('a' * 64)
MENU = StoredAudio('b' * 64)


def spec(**overrides):
    values = dict(number='700', keys={'1': '201', '2': '600', '0': '100', '9': '700', '*': 'voicemail:100',
                                      '#': 'announcement:closed'},
                  greeting=GREETING, menu=MENU, timeout_ms=5000, max_tries=3)
    values.update(overrides)
    return ivr_flows.MenuSpec(**values)


def origin(to):
    return 'ivr;number=700;to=%s' % to


def test_a_key_places_the_call_to_its_destination_and_bridges_the_caller():
    caller = run(ivr_flows.menu(spec()), Caller(keys=['2'], bridges=[('ended', 200)]))
    assert caller.steps[0] == Answer()
    assert caller.steps[1] == Play([GREETING], barge_in=ALL_DIGITS)
    assert caller.steps[2] == Play([MENU], barge_in=ALL_DIGITS)
    assert caller.bridged() == [('600', origin('target'))]
    bridge = [s for s in caller.steps if isinstance(s, Bridge)][0]
    assert bridge.hold and bridge.ring_ms == ivr_flows.RING_MS
    assert caller.hangup() == Hangup() and isinstance(caller.steps[-2], Bridge)


def test_the_built_in_prompt_without_a_menu_announcement_and_no_greeting():
    caller = run(ivr_flows.menu(spec(greeting=None, menu=None)), Caller(keys=['1']))
    assert caller.played()[0] == 'menu_choose' and GREETING not in caller.played()


def test_services_are_reached_by_what_they_are():
    for key, expected in (('*', ('100', origin('voicemail'))), ('#', ('closed', origin('announcement'))),
                          ('0', ('100', origin('target')))):
        assert run(ivr_flows.menu(spec()), Caller(keys=[key])).bridged() == [expected]


def test_a_key_to_the_menu_itself_plays_it_again_without_a_call_or_a_try():
    caller = run(ivr_flows.menu(spec(max_tries=1)), Caller(keys=['9', '9', '1']))
    assert caller.played().count(MENU) == 3 and caller.bridged() == [('201', origin('target'))]


def test_a_wrong_key_is_a_try_announced_as_invalid():
    caller = run(ivr_flows.menu(spec()), Caller(keys=['5', '1']))
    assert caller.played() == [GREETING, MENU, 'invalid_choice', MENU]
    assert caller.bridged() == [('201', origin('target'))]


def test_after_max_tries_of_wrong_keys_the_invalid_destination():
    caller = run(ivr_flows.menu(spec(invalid='100', no_input='voicemail:100')), Caller(keys=['5', 'timeout', '7']))
    assert caller.played().count(MENU) == 3
    assert caller.bridged() == [('100', origin('target'))]  # the last try was a wrong key


def test_after_max_tries_without_a_key_the_no_input_destination():
    caller = run(ivr_flows.menu(spec(invalid='100', no_input='voicemail:100')), Caller(keys=['5', 'timeout', 'timeout']))
    assert caller.bridged() == [('100', origin('voicemail'))]


def test_without_a_destination_after_the_last_try_goodbye_and_hang_up():
    caller = run(ivr_flows.menu(spec(max_tries=2)), Caller(keys=['timeout', 'timeout']))
    assert caller.played()[-1] == 'goodbye' and caller.bridged() == [] and caller.hangup() == Hangup()


def test_a_destination_that_is_not_reached_is_announced_and_the_menu_offered_again():
    caller = run(ivr_flows.menu(spec(max_tries=2)), Caller(keys=['1', '2'], bridges=[('failed', 486), ('timeout', 0)]))
    assert caller.bridged() == [('201', origin('target')), ('600', origin('target'))]
    assert caller.played() == [GREETING, MENU, 'not_reached', MENU, 'not_reached', 'goodbye']


def test_a_caller_who_hangs_up_while_bridged_ends_the_flow():
    caller = run(ivr_flows.menu(spec()), Caller(keys=['1'], bridges=[('hangup', 200)]))
    assert caller.hangup() is None and isinstance(caller.steps[-1], Bridge)


def test_a_caller_who_hangs_up_during_the_menu_places_no_call():
    caller = run(ivr_flows.menu(spec()), Caller(keys=[]))
    assert caller.bridged() == []


def test_direct_dial_of_an_internal_number():
    menu = spec(direct_dial=['10', '11', '2000'])
    assert run(ivr_flows.menu(menu), Caller(keys=['1', '1'])).bridged() == [('11', origin('target'))]
    # '2' could begin 2000: after the timeout the key stands.
    assert run(ivr_flows.menu(menu), Caller(keys=['2', 'timeout'])).bridged() == [('600', origin('target'))]
    assert run(ivr_flows.menu(menu), Caller(keys=list('2000'))).bridged() == [('2000', origin('target'))]
    # '0' begins no number: the key at once.
    assert run(ivr_flows.menu(menu), Caller(keys=['0'])).bridged() == [('100', origin('target'))]
    # A number that is no extension is a wrong entry.
    caller = run(ivr_flows.menu(menu), Caller(keys=['1', '5', '0']))
    assert caller.played()[2] == 'invalid_choice' and caller.bridged() == [('100', origin('target'))]


def test_without_direct_dial_digits_of_an_extension_are_one_key():
    caller = run(ivr_flows.menu(spec()), Caller(keys=['3', 'timeout', 'timeout']))
    assert caller.played().count('invalid_choice') == 1 and caller.bridged() == []


class _Tenant(object):
    name = 'acme'
    language = 'en'

    def menu(self, number):
        return spec() if number == '700' else None


def test_choose_flow_answers_a_menu_and_refuses_one_the_tenant_does_not_have():
    request = media_calls.read_invite('INVITE sip:700@acme.test SIP/2.0\r\nX-Voxplane-Media: ivr;number=700\r\n'
                                      'From: <sip:+4930123@acme.test>;tag=1\r\nCall-ID: c1\r\n\r\n')
    flow, language = media_calls.choose_flow(request, _Tenant(), None, None)
    assert next(flow) == Answer() and language == 'en'
    request.params['number'] = '701'
    try:
        media_calls.choose_flow(request, _Tenant(), None, None)
    except media_calls.Refusal as refusal:
        assert refusal.code == 404
    else:
        raise AssertionError('an unknown menu was answered')


def test_the_caller_identity_is_carried_on_as_received():
    text = ('INVITE sip:700@acme.test SIP/2.0\r\nFrom: "Max" <sip:+4930123@acme.test>;tag=77\r\n'
            'Privacy: id\r\nCall-ID: c1\r\n\r\n')
    assert media_calls.identity_headers(text) == [('P-Asserted-Identity', '"Max" <sip:+4930123@acme.test>'),
                                                  ('Privacy', 'id')]
    text = 'INVITE sip:700@acme.test SIP/2.0\r\nP-Asserted-Identity: <sip:10@acme.test>\r\nFrom: sip:x@y;tag=1\r\n\r\n'
    assert media_calls.identity_headers(text) == [('P-Asserted-Identity', '<sip:10@acme.test>')]
