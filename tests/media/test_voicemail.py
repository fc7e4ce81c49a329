# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Voicemail with real audio both ways: a caller leaves a message of known tones, the stored
WAV holds those tones (by frequency), the owner hears 'one new message' and the same tones back,
deletes it; greetings, the language, and requests the service must refuse."""

import os

from lab import audio
from lab.net import neighbour_address, wait_for
from lab.phone import Phone, poll
from media_suite import ACME, BETA, SILENCE_S, dial, leave_message, prompt


def wait_message(media, tenant, mailbox, count=1, timeout=10):
    return wait_for(lambda: len(media.messages(tenant, mailbox)) >= count and media.messages(tenant, mailbox), timeout)


def test_a_message_is_left_stored_heard_back_and_deleted(media, phone, tmp_path):
    call = leave_message(phone, media, tmp_path, mailbox='10')
    assert call.wait_heard(prompt(media, 'message_kept'), timeout=10), media.log_tail(15)
    assert call.wait_ended(10) == (200, 'Normal call clearing')  # the service hung up (BYE)
    # The caller heard the generated greeting's sentence and the tone before the recording.
    assert call.wait_heard(prompt(media, 'after_the_tone'), timeout=1)

    [message] = wait_message(media, 'acme', '10')
    assert message['folder'] == 'new' and message['doc']['reason'] == 'user-busy'
    assert message['doc']['caller'] == 'kamailio'
    sent = audio.duration_ms(media.tones)
    assert sent - 600 <= message['duration_ms'] <= sent + 1500, message
    found, segments = audio.has_sequence(message['path'])
    assert found, segments
    assert message['path'].startswith(os.path.join(media.storage_dir, 'voicemail', 'acme', '10') + os.sep)

    owner = dial(phone, media, '*86', 'mailbox;mailbox=10;pin=no', tmp_path / 'owner.wav')
    assert owner.wait_answered(5)
    counted = owner.wait_heard(prompt(media, 'new_message_one'), timeout=10)
    assert counted, 'the owner did not hear "one new message"'
    menu = owner.wait_heard(prompt(media, 'main_menu'), timeout=15, after_ms=counted)
    assert menu, media.log_tail(15)
    owner.dtmf('1')
    end_of_message = owner.wait_heard(prompt(media, 'message_menu'), timeout=20, after_ms=menu)
    assert end_of_message, media.log_tail(15)
    found, segments = audio.has_sequence(tmp_path / 'owner.wav')
    assert found, segments  # the same tones, back through G.711 both ways
    owner.dtmf('7')
    deleted = owner.wait_heard(prompt(media, 'message_deleted'), timeout=10, after_ms=end_of_message)
    assert deleted
    owner.dtmf('#')
    owner.hangup()
    owner.wait_ended(10)
    assert media.messages('acme', '10') == []
    assert not os.path.exists(message['path'])


def test_a_caller_who_hangs_up_after_the_tones_leaves_the_message(media, phone, tmp_path):
    call = leave_message(phone, media, tmp_path, mailbox='12', hang_up=True, reason='no-answer')
    call.wait_ended(5)
    [message] = wait_message(media, 'acme', '12')
    assert message['doc']['reason'] == 'no-answer'
    assert audio.has_sequence(message['path'])[0]
    media.clear_messages('acme', '12')


def test_a_message_ends_after_silence_and_the_silence_is_cut_off(media, phone, tmp_path):
    media.clear_messages('acme', '12')
    call = dial(phone, media, '12', 'voicemail;mailbox=12;reason=no-answer', tmp_path / 'silent.wav')
    try:
        assert call.wait_answered(5)
        assert call.wait_heard(prompt(media, 'beep'), timeout=30)
        call.play(media.tones, loop=False)
        # After the tones the phone sends silence: the service ends the recording by itself. (The
        # margin is for a loaded machine: the phone's own recording of what it hears lags then.)
        assert call.wait_heard(prompt(media, 'message_kept'),
                               timeout=audio.duration_ms(media.tones) / 1000.0 + SILENCE_S + 15), media.log_tail(15)
        [message] = wait_message(media, 'acme', '12')
        assert message['duration_ms'] <= audio.duration_ms(media.tones) + 1000, message  # no 3 s of silence kept
        assert audio.has_sequence(message['path'])[0]
        call.wait_ended(10)
    finally:
        call.hangup()
        call.wait_ended(5)
        poll(1.5)  # a recording the hang-up ended is stored just after it
        media.clear_messages('acme', '12')  # whatever this test left: the next ones count from none


def test_a_recording_under_one_second_is_no_message(media, phone, tmp_path):
    media.clear_messages('acme', '12')
    call = dial(phone, media, '12', 'voicemail;mailbox=12;reason=no-answer', tmp_path / 'short.wav')
    assert call.wait_answered(5)
    assert call.wait_heard(prompt(media, 'beep'), timeout=30)
    poll(0.3)
    call.hangup()
    call.wait_ended(5)
    poll(1.0)
    assert media.messages('acme', '12') == []
    folder = os.path.join(media.storage_dir, 'voicemail', 'acme', '12')
    assert not os.path.isdir(folder) or not os.listdir(folder)


def test_the_owner_records_a_greeting_that_callers_then_hear(media, phone, tmp_path):
    owner = dial(phone, media, '*86', 'mailbox;mailbox=11;pin=no', tmp_path / 'greeting-owner.wav')
    assert owner.wait_answered(5)
    assert owner.wait_heard(prompt(media, 'main_menu'), timeout=15)
    owner.dtmf('0')
    assert owner.wait_heard(prompt(media, 'options_menu'), timeout=15)
    owner.dtmf('2')  # the greeting for when the owner is on the phone
    beep = owner.wait_heard(prompt(media, 'beep'), timeout=20)
    assert beep
    owner.play(media.tones, loop=False)
    poll(audio.duration_ms(media.tones) / 1000.0 + 0.2)
    owner.dtmf('#')
    assert owner.wait_heard(prompt(media, 'greeting_menu'), timeout=20, after_ms=beep)
    owner.dtmf('1')
    assert owner.wait_heard(prompt(media, 'greeting_saved'), timeout=10, after_ms=beep)
    owner.hangup()
    owner.wait_ended(5)

    caller = dial(phone, media, '11', 'voicemail;mailbox=11;reason=user-busy', tmp_path / 'greeted.wav')
    assert caller.wait_answered(5)
    assert caller.wait_heard(prompt(media, 'after_the_tone'), timeout=20)
    caller.hangup()
    caller.wait_ended(5)
    assert audio.has_sequence(tmp_path / 'greeted.wav')[0], 'the recorded busy greeting was not played'
    # The unavailable greeting is still the generated one.
    caller = dial(phone, media, '11', 'voicemail;mailbox=11;reason=no-answer', tmp_path / 'generated.wav')
    assert caller.wait_answered(5)
    assert caller.wait_heard(prompt(media, 'after_the_tone'), timeout=20)
    caller.hangup()
    caller.wait_ended(5)
    assert not audio.has_sequence(tmp_path / 'generated.wav')[0]


def test_prompts_are_in_the_tenants_language(media, phone, tmp_path):
    call = dial(phone, media, '+494099999999', 'mailbox;pin=yes', tmp_path / 'beta.wav', domain=BETA)
    assert call.wait_answered(5)
    assert call.wait_heard(prompt(media, 'enter_mailbox', 'de'), timeout=10)
    call.hangup()
    call.wait_ended(5)


def test_requests_the_service_must_refuse(media, phone, tmp_path):
    def final(user, service, domain=ACME):
        call = dial(phone, media, user, service, None, domain=domain)
        return call.wait_ended(5)[0]

    assert final('13', 'voicemail;mailbox=13;reason=user-busy') == 404        # voicemail off
    assert final('10', 'voicemail;mailbox=10;reason=user-busy', 'nowhere.media.test') == 404
    assert final('10', 'fax;mailbox=10') == 400
    assert final('10', 'voicemail;reason=user-busy') == 400
    call = phone.dial('sip:10@%s' % ACME, media.target)                         # no header
    assert call.wait_ended(5)[0] == 400


def test_an_invite_from_an_address_that_is_no_kamailio_node_is_forbidden(media, tmp_path):
    stranger = Phone(neighbour_address(media.caller), user='stranger')
    offset = media.log_size()
    call = dial(stranger, media, '10', 'voicemail;mailbox=10;reason=user-busy', None)
    assert call.wait_ended(5)[0] == 403
    assert 'not one of the Kamailio nodes' in media.log_since(offset)
    stranger.close()
