# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call queues with real audio: the caller waits with music while the service rings the logged-in
member through "Kamailio" (the test phone, which lets it ring, then answers as the member), then
caller and member hear each other; a queue whose member does not take the call overflows to its
destination after max wait."""

import re

from lab import audio
from lab.phone import wait
from media_suite import ACME, dial, prompt


def origin(request):
    match = re.search(r'^X-Voxplane-Origin:\s*(.*?)\s*$', request, re.MULTILINE | re.IGNORECASE)
    return match.group(1) if match else None


def heard_sequence(path, tones, timeout):
    def found():
        try:
            return audio.has_sequence(path, tones)[0]
        except (OSError, ValueError):
            return False
    return wait(found, timeout)


def test_the_caller_hears_music_then_the_member_who_answers(media, phone, tmp_path):
    phone.answer_calls(play=media.other_tones, record_dir=tmp_path, answer=lambda request: (200, 3))
    call = dial(phone, media, '600', 'queue;number=600', tmp_path / 'caller.wav')
    assert call.wait_answered(5), call.final
    member = phone.wait_incoming(1, timeout=10)
    assert member is not None, media.log_tail(15)
    assert member.request.startswith('INVITE sip:10@%s ' % ACME), member.request
    assert origin(member.request) == 'queue;number=600;to=member'
    assert call.wait_heard(prompt(media, 'music'), timeout=5), media.log_tail(10)  # while the member rings
    assert member.wait_answered(5) and member.wait_media(5)
    call.play(media.tones)
    assert heard_sequence(member.record_file, audio.SEQUENCE, audio.duration_ms(media.tones) / 1000.0 + 5), \
        audio.has_sequence(member.record_file)[1]
    assert heard_sequence(call.record_file, audio.OTHER_SEQUENCE, 10), \
        audio.has_sequence(call.record_file, audio.OTHER_SEQUENCE)[1]
    member.hangup()
    assert call.wait_ended(5) == (200, 'Normal call clearing'), media.log_tail(10)


def test_after_max_wait_the_caller_goes_to_the_overflow(media, phone, tmp_path):
    phone.answer_calls(play=media.other_tones, record_dir=tmp_path,
                       answer=lambda request: (486, 0) if origin(request).endswith('to=member') else (200, 0))
    call = dial(phone, media, '600', 'queue;number=600', tmp_path / 'caller.wav')
    assert call.wait_answered(5), call.final
    assert call.wait_heard(prompt(media, 'music'), timeout=5)
    overflow = wait(lambda: [c for c in phone.incoming if origin(c.request).endswith('to=voicemail')], 20)
    assert overflow, [origin(c.request) for c in phone.incoming]
    [leg] = overflow
    assert leg.request.startswith('INVITE sip:12@%s ' % ACME)
    members = [c for c in phone.incoming if c is not leg]
    assert members and all(origin(c.request) == 'queue;number=600;to=member' for c in members)
    assert heard_sequence(call.record_file, audio.OTHER_SEQUENCE, 10)
    call.hangup()
    leg.wait_ended(5)


def test_the_position_is_announced_and_a_logged_out_member_is_not_rung(media, phone, tmp_path):
    phone.answer_calls(play=media.other_tones, record_dir=tmp_path)
    call = dial(phone, media, '601', 'queue;number=601', tmp_path / 'caller.wav')
    assert call.wait_answered(5), call.final
    position = call.wait_heard(prompt(media, 'queue_position'), timeout=10)
    assert position, media.log_tail(10)
    first = call.wait_heard(prompt(media, 'number/1'), timeout=5, after_ms=position)
    assert first, media.log_tail(10)
    assert call.wait_heard(prompt(media, 'music'), timeout=5, after_ms=first)
    call.hangup()
    call.wait_ended(5)
    assert phone.incoming == []
