# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IVR menus with real audio and RFC 4733 keys: the caller hears the menu, presses a key, and the
service places the call through "Kamailio" (the test phone, which answers it as the destination)
with the contract's headers, then bridges the two: each side hears the other's tones."""

import re

from lab import audio
from lab.phone import wait
from media_suite import ACME, dial, prompt


def header(request, name):
    match = re.search(r'^%s:\s*(.*?)\s*$' % re.escape(name), request, re.MULTILINE | re.IGNORECASE)
    return match.group(1) if match else None


def heard_sequence(path, tones, timeout):
    """Wait (polling PJSIP) until the recording at ``path`` holds ``tones``."""
    def found():
        try:
            return audio.has_sequence(path, tones)[0]
        except (OSError, ValueError):
            return False
    return wait(found, timeout)


def test_a_key_reaches_its_destination_through_kamailio_and_both_hear_each_other(media, phone, tmp_path):
    phone.answer_calls(play=media.other_tones, record_dir=tmp_path)
    call = dial(phone, media, '700', 'ivr;number=700', tmp_path / 'caller.wav')
    assert call.wait_answered(5), call.final
    menu = call.wait_heard(prompt(media, 'menu_choose'), timeout=20)
    assert menu, media.log_tail(15)
    call.dtmf('2')
    leg = phone.wait_incoming(1, timeout=10)
    assert leg is not None, media.log_tail(15)
    assert leg.request.startswith('INVITE sip:11@%s ' % ACME), leg.request
    assert header(leg.request, 'X-Voxplane-Origin') == 'ivr;number=700;to=target'
    assert header(leg.request, 'X-Voxplane-Call') == call.pj_call.getInfo().callIdString
    assert 'sip:kamailio@' in header(leg.request, 'P-Asserted-Identity')
    assert leg.wait_answered(5) and leg.wait_media(5)
    call.play(media.tones)
    assert heard_sequence(leg.record_file, audio.SEQUENCE, audio.duration_ms(media.tones) / 1000.0 + 5), \
        audio.has_sequence(leg.record_file)[1]
    assert heard_sequence(call.record_file, audio.OTHER_SEQUENCE, 10), \
        audio.has_sequence(call.record_file, audio.OTHER_SEQUENCE)[1]
    assert not audio.has_sequence(call.record_file)[0]  # the caller does not hear itself
    leg.hangup()
    assert call.wait_ended(5) == (200, 'Normal call clearing'), media.log_tail(10)


def test_a_wrong_key_then_no_key_use_up_the_tries_and_the_caller_hears_goodbye(media, phone, tmp_path):
    phone.answer_calls(play=media.other_tones, record_dir=tmp_path)
    call = dial(phone, media, '700', 'ivr;number=700', tmp_path / 'caller.wav')
    assert call.wait_answered(5), call.final
    menu = call.wait_heard(prompt(media, 'menu_choose'), timeout=20)
    assert menu, media.log_tail(15)
    call.dtmf('5')  # no key of the menu, and no extension begins with it
    # A short prompt (about a second, a few 200 ms pieces): one piece a loaded machine's jitter buffer spoilt
    # must not hide it.
    invalid = call.wait_heard(prompt(media, 'invalid_choice'), timeout=10, after_ms=menu, share=0.6)
    assert invalid, media.log_tail(15)
    again = call.wait_heard(prompt(media, 'menu_choose'), timeout=20, after_ms=invalid)
    assert again, media.log_tail(15)
    # No key: after the menu's timeout (3 s) its last try is used up and it has no destination.
    assert call.wait_heard(prompt(media, 'goodbye'), timeout=15, after_ms=again), media.log_tail(15)
    assert call.wait_ended(10) == (200, 'Normal call clearing')
    assert phone.incoming == []
