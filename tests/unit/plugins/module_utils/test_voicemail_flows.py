# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Voicemail's rules and flows (voicemail_flows.py), driven by a scripted caller without PJSIP."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from media_helpers import Caller, Mailbox, message, run
from ansible_collections.voxplane.pbx.plugins.module_utils import rules, voicemail_flows
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import (
    Answer, CollectDigits, Hangup, Language, Play, Prompt, Record, Recording, Speech, StoredAudio,
)

SETTINGS = voicemail_flows.Settings()
NOW = 1700000000.0


def clock():
    return NOW


# ---------------------------------------------------------------------------- rules
@pytest.mark.parametrize('reason, kind', [
    ('user-busy', 'busy'), ('do-not-disturb', 'busy'), ('unavailable', 'unavailable'), ('no-answer', 'unavailable'),
    ('unconditional', 'unavailable'),
])
def test_the_diversion_reason_picks_the_greeting(reason, kind):
    assert voicemail_flows.greeting_kind(reason) == kind


def test_a_recording_under_one_second_is_no_message():
    assert not voicemail_flows.keeps_message(999)
    assert voicemail_flows.keeps_message(1000)


def test_pin_matches_the_stored_hash_of_its_mailbox_only():
    stored = rules.pin_hash('acme', '10', '4711')
    assert voicemail_flows.pin_matches('acme', '10', '4711', stored)
    assert not voicemail_flows.pin_matches('acme', '10', '4712', stored)
    assert not voicemail_flows.pin_matches('acme', '11', '4711', stored)
    assert not voicemail_flows.pin_matches('beta', '10', '4711', stored)
    assert not voicemail_flows.pin_matches('acme', '10', '', stored)
    assert not voicemail_flows.pin_matches('acme', '10', '4711', None)


def test_the_tenth_wrong_pin_within_an_hour_locks_and_starts_the_count_afresh():
    failures = []
    for i in range(9):
        failures, lock = voicemail_flows.after_pin_failure(failures, NOW + i)
        assert not lock
    assert len(failures) == 9
    failures, lock = voicemail_flows.after_pin_failure(failures, NOW + 9)
    assert lock and failures == []


def test_wrong_pins_older_than_an_hour_are_forgotten():
    failures = [NOW - 3600 - 1] * 5 + [NOW - 10] * 8
    failures, lock = voicemail_flows.after_pin_failure(failures, NOW)
    assert not lock and len(failures) == 9


def test_the_generated_greeting_says_the_name_else_the_number_digit_by_digit():
    assert voicemail_flows.greeting(Mailbox(name='Anna Schmidt'), 'user-busy') == Speech(
        'Anna Schmidt is on the phone.', fallback=Prompt('greeting_busy'))
    assert voicemail_flows.greeting(Mailbox(number='210', name=None, language='de'), 'no-answer') == Speech(
        'Nebenstelle 2 1 0 ist zurzeit nicht erreichbar.', fallback=Prompt('greeting_unavailable'))


def test_a_recorded_greeting_wins_for_its_kind():
    box = Mailbox()
    box.greetings['busy'] = StoredAudio('ab' * 32)
    assert voicemail_flows.greeting(box, 'user-busy') == StoredAudio('ab' * 32)
    assert isinstance(voicemail_flows.greeting(box, 'unavailable'), Speech)


# ---------------------------------------------------------------------------- leaving a message
def test_a_caller_leaves_a_message_ended_by_the_hash_key():
    box = Mailbox()
    caller = run(voicemail_flows.leave_message(box, voicemail_flows.Caller('11', 'Bert'), 'user-busy', SETTINGS),
                 Caller(recordings=[('digit', 4200)]))
    steps = caller.steps
    assert steps[0] == Answer()
    assert steps[1] == Play([voicemail_flows.greeting(box, 'user-busy'), 'after_the_tone'], barge_in='#')
    assert steps[2] == Play(['beep'], flush=True)
    assert steps[3] == Record('/msg/1.wav', SETTINGS.max_message_ms, SETTINGS.silence_ms, stop_digits='#')
    assert box.log == [('begin', voicemail_flows.Caller('11', 'Bert'), 'user-busy'), ('keep', '/msg/1.wav', 4200)]
    assert caller.played()[-2:] == ['message_kept', 'goodbye']
    assert steps[-1] == Hangup()


@pytest.mark.parametrize('end', ['silence', 'max', 'shutdown'])
def test_every_end_of_a_recording_keeps_the_message(end):
    box = Mailbox()
    run(voicemail_flows.leave_message(box, voicemail_flows.Caller(), 'no-answer', SETTINGS), Caller(recordings=[(end, 2000)]))
    assert ('keep', '/msg/1.wav', 2000) in box.log


def test_a_caller_who_hangs_up_while_recording_leaves_the_message_and_hears_nothing_more():
    box = Mailbox()
    caller = run(voicemail_flows.leave_message(box, voicemail_flows.Caller(), 'no-answer', SETTINGS),
                 Caller(recordings=[('hangup', 3000)]))
    assert box.log[-1] == ('keep', '/msg/1.wav', 3000)
    assert isinstance(caller.steps[-1], Record)


def test_a_recording_under_one_second_is_dropped():
    box = Mailbox()
    caller = run(voicemail_flows.leave_message(box, voicemail_flows.Caller(), 'no-answer', SETTINGS),
                 Caller(recordings=[('digit', 600)]))
    assert box.log[-1] == ('discard', '/msg/1.wav')
    assert box.counts() == (0, 0)
    assert 'message_kept' not in caller.played()


def test_a_full_mailbox_takes_no_message():
    box = Mailbox(messages=[message(i) for i in range(3)])
    caller = run(voicemail_flows.leave_message(box, voicemail_flows.Caller(), 'no-answer', voicemail_flows.Settings(max_messages=3)),
                 Caller())
    assert caller.played() == ['mailbox_full', 'goodbye']
    assert not [s for s in caller.steps if isinstance(s, Record)]


# ---------------------------------------------------------------------------- the owner's menu
def test_the_owner_without_pin_hears_the_counts_then_the_menu():
    box = Mailbox(messages=[message(1), message(2, 'saved'), message(3, 'saved')])
    caller = run(voicemail_flows.mailbox_menu(box, False, SETTINGS, clock), Caller(keys=['#']))
    assert caller.played() == ['you_have', 'new_message_one', 'and', 'number/2', 'saved_messages', 'main_menu',
                               'goodbye']
    assert caller.steps[-1] == Hangup()


def test_the_owner_listens_message_by_message_new_ones_first():
    box = Mailbox(messages=[message(1, 'saved'), message(2), message(3)])
    # 1: listen; after message 2 (new): 6 next; after message 3: 9 save, which goes on to the saved
    # message 1; 6: there is no next one; * back; # end
    caller = run(voicemail_flows.mailbox_menu(box, False, SETTINGS, clock), Caller(keys=['1', '6', '9', '6', '*', '#']))
    plays = [s for s in caller.steps if isinstance(s, Play)]
    heard = [p.prompts for p in plays if any(isinstance(x, Recording) for x in p.prompts)]
    assert [h[-1].path for h in heard] == ['/msg/old-2.wav', '/msg/old-3.wav', '/msg/old-1.wav']
    assert [h[0].key for h in heard] == ['new_message', 'new_message', 'saved_message']
    assert [h[1].key for h in heard] == ['number/1', 'number/2', 'number/3']
    assert ('read', 2) in box.log and ('read', 3) in box.log and ('save', 3) in box.log
    assert box.counts() == (0, 3)
    assert caller.played().count('no_more_messages') == 1


def test_repeat_previous_and_delete():
    box = Mailbox(messages=[message(1), message(2)])
    # listen: message 1; 4 (first: says so); 5 repeat; 7 delete -> message 2 plays; 7 delete -> none left
    caller = run(voicemail_flows.mailbox_menu(box, False, SETTINGS, clock), Caller(keys=['1', '4', '5', '7', '7', '#']))
    heard = [s.prompts[-1].path for s in caller.steps
             if isinstance(s, Play) and isinstance(s.prompts[-1], Recording)]
    assert heard == ['/msg/old-1.wav', '/msg/old-1.wav', '/msg/old-2.wav']
    assert 'first_message' in caller.played()
    assert ('delete', 1) in box.log and ('delete', 2) in box.log
    assert box.counts() == (0, 0)
    assert caller.played()[-4:] == ['message_deleted', 'no_more_messages', 'main_menu', 'goodbye']
    assert caller.steps[-1] == Hangup()


def test_a_message_is_read_once_it_was_played_not_when_the_caller_hung_up_on_it():
    box = Mailbox(messages=[message(1)])
    run(voicemail_flows.mailbox_menu(box, False, SETTINGS, clock), Caller(keys=['1', '*', '#']))
    assert box.counts() == (0, 1)
    box = Mailbox(messages=[message(1)])
    # Steps: Answer, counts, main menu, its key, then the message: gone while it plays.
    run(voicemail_flows.mailbox_menu(box, False, SETTINGS, clock), Caller(keys=['1'], hang_up_at=4))
    assert box.counts() == (1, 0)


def test_a_menu_without_an_answer_ends_the_call_after_three_askings():
    caller = run(voicemail_flows.mailbox_menu(Mailbox(), False, SETTINGS, clock),
                 Caller(keys=['timeout', 'timeout', 'timeout']))
    assert caller.played() == ['no_messages', 'main_menu', 'main_menu', 'main_menu', 'goodbye']
    assert caller.steps[-1] == Hangup()


def test_recording_a_new_greeting():
    box = Mailbox()
    caller = run(voicemail_flows.mailbox_menu(box, False, SETTINGS, clock),
                 Caller(keys=['0', '2', '1', '*', '#'], recordings=[('digit', 3000)]))
    record = [s for s in caller.steps if isinstance(s, Record)][0]
    assert record.path == '/greeting/busy.wav' and record.max_ms == SETTINGS.max_greeting_ms
    assert Play([Recording('/greeting/busy.wav')], barge_in='0123456789*#') in caller.steps
    assert ('greeting', 'busy', '/greeting/busy.wav', 3000) in box.log
    assert 'greeting_saved' in caller.played()


def test_a_greeting_recorded_again_and_one_cancelled_are_discarded():
    box = Mailbox()
    run(voicemail_flows.mailbox_menu(box, False, SETTINGS, clock),
        Caller(keys=['0', '1', '2', '*', '*', '#'], recordings=[('digit', 3000), ('digit', 2000)]))
    assert [e for e in box.log if e[0].startswith('discard')] == [('discard greeting', '/greeting/unavailable.wav')] * 2
    assert box.greetings == {}


def test_changing_the_pin_goes_through_the_pin_rules():
    box = Mailbox()
    caller = run(voicemail_flows.mailbox_menu(box, False, SETTINGS, clock),
                 Caller(keys=['0', '4', '12', '12', '4', '2468', '2469', '4', '13579', '13579', '*', '#']))
    assert [k for k in caller.played() if k.startswith('pin') or k == 'pins_differ'] == [
        'pin_refused', 'pins_differ', 'pin_changed']
    assert voicemail_flows.pin_matches('acme', '10', '13579', box.pin_hash)


# ---------------------------------------------------------------------------- PINs
def test_the_right_pin_opens_the_mailbox():
    caller = run(voicemail_flows.mailbox_menu(Mailbox(), True, SETTINGS, clock), Caller(keys=['4711', '#']))
    assert caller.played() == ['enter_pin', 'no_messages', 'main_menu', 'goodbye']


def test_three_wrong_pins_end_the_call_and_count_against_the_hour():
    box = Mailbox()
    caller = run(voicemail_flows.mailbox_menu(box, True, SETTINGS, clock), Caller(keys=['1111', '2222', '3333', '4711']))
    assert caller.played() == ['enter_pin', 'invalid_pin'] * 3 + ['goodbye']
    assert caller.steps[-1] == Hangup()
    assert box.failures == [NOW] * 3 and not box.locked


def test_a_pin_entry_left_empty_is_no_guess():
    box = Mailbox()
    run(voicemail_flows.mailbox_menu(box, True, SETTINGS, clock), Caller(keys=['timeout', '', '4711', '#']))
    assert box.failures == []


def test_the_tenth_wrong_pin_within_the_hour_locks_the_mailbox():
    box = Mailbox()
    box.failures = [NOW - 60] * 9
    caller = run(voicemail_flows.mailbox_menu(box, True, SETTINGS, clock), Caller(keys=['1111', '4711']))
    assert box.locked and ('lock',) in box.log and box.failures == []
    assert caller.played() == ['enter_pin', 'mailbox_locked', 'goodbye']


def test_a_locked_mailbox_opens_to_nobody_not_even_with_the_right_pin():
    box = Mailbox(locked=True)
    caller = run(voicemail_flows.mailbox_menu(box, True, SETTINGS, clock), Caller(keys=['4711']))
    assert caller.played() == ['enter_pin', 'mailbox_locked', 'goodbye']
    caller = run(voicemail_flows.mailbox_menu(box, False, SETTINGS, clock), Caller())
    assert caller.played() == ['mailbox_locked', 'goodbye']
    # Wrong PINs at a locked mailbox are not counted: it is locked already.
    run(voicemail_flows.mailbox_menu(box, True, SETTINGS, clock), Caller(keys=['1111']))
    assert box.failures == []


def test_a_mailbox_without_pin_cannot_be_opened_with_one():
    caller = run(voicemail_flows.mailbox_menu(Mailbox(pin=None), True, SETTINGS, clock), Caller(keys=['4711']))
    assert caller.played() == ['no_pin', 'goodbye']


def test_hanging_up_during_the_pin_counts_nothing():
    box = Mailbox()
    run(voicemail_flows.mailbox_menu(box, True, SETTINGS, clock), Caller(keys=[]))
    assert box.failures == []


# ---------------------------------------------------------------------------- the access number
def test_the_access_number_asks_for_the_mailbox_then_its_pin_then_speaks_its_language():
    boxes = {'10': Mailbox(language='en')}
    caller = run(voicemail_flows.access_menu(boxes.get, SETTINGS, clock), Caller(keys=['10', '4711', '#']))
    assert caller.played()[:2] == ['enter_mailbox', 'enter_pin']
    assert Language('en') in caller.steps
    assert caller.played()[-3:] == ['no_messages', 'main_menu', 'goodbye']


def test_an_unknown_mailbox_sounds_like_a_wrong_pin():
    boxes = {'10': Mailbox()}
    caller = run(voicemail_flows.access_menu(boxes.get, SETTINGS, clock), Caller(keys=['99', '4711'] * 3))
    assert caller.played() == ['enter_mailbox', 'enter_pin', 'invalid_pin'] * 3 + ['goodbye']
    assert boxes['10'].failures == []


def test_wrong_pins_at_the_access_number_count_and_lock():
    box = Mailbox()
    box.failures = [NOW - 5] * 8
    caller = run(voicemail_flows.access_menu({'10': box}.get, SETTINGS, clock),
                 Caller(keys=['10', '0000', '10', '0001']))
    assert box.locked
    assert caller.played()[-2:] == ['mailbox_locked', 'goodbye']


def test_collect_digits_of_a_pin_ends_with_the_hash_key_after_the_longest_pin():
    step = [s for s in run(voicemail_flows.mailbox_menu(Mailbox(), True, SETTINGS, clock), Caller(keys=['4711', '#'])).steps
            if isinstance(s, CollectDigits)][0]
    assert step.terminator == '#' and step.max_digits == rules.PIN_LENGTH[1] + 1
