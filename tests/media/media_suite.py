# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the media tests: the prompts the service plays, calls with the contract's header,
leaving a message."""

import os

from lab import audio
from lab.phone import poll

ACME = 'acme.media.test'
BETA = 'beta.media.test'
HEADER = 'X-Voxplane-Media'
# The service's voicemail limits in these tests (the role's variables).
SILENCE_S = 3
MAIL_RETRY_S = 2


def prompt(media, key, language='en'):
    return os.path.join(media.prompts_dir, language, key + '.wav')


def dial(phone, media, user, service, record, domain=ACME, play=None):
    """Call sip:<user>@<domain> at the service with ``X-Voxplane-Media: <service>``."""
    return phone.dial('sip:%s@%s' % (user, domain), media.target, headers={HEADER: service}, record=record, play=play)


def leave_message(phone, media, tmp_path, mailbox='10', domain=ACME, reason='user-busy', name='deposit', hang_up=False):
    """A caller reaches the mailbox, waits for the tone, plays the test tones and ends with the
    hash key (or hangs up). The call."""
    call = dial(phone, media, mailbox, 'voicemail;mailbox=%s;reason=%s' % (mailbox, reason), tmp_path / ('%s.wav' % name),
                domain=domain)
    assert call.wait_answered(5), call.final
    beep = call.wait_heard(prompt(media, 'beep', 'en'), timeout=30)
    assert beep, 'no tone before the recording (%s)' % call.final
    call.play(media.tones, loop=False)
    poll(audio.duration_ms(media.tones) / 1000.0 + 0.3)
    if hang_up:
        call.hangup()
    else:
        call.dtmf('#')
    return call


def access_call(phone, media, record, domain=ACME, user='+4930555000'):
    """A call to the tenant's voicemail access number (no mailbox: it asks for one, then the PIN)."""
    call = dial(phone, media, user, 'mailbox;pin=yes', record, domain=domain)
    assert call.wait_answered(5), call.final
    return call


def enter(call, media, key, digits, after=0, language='en', timeout=20):
    """Wait until the prompt ``key`` has been heard to its end, then type ``digits``; where it ended."""
    heard = call.wait_heard(prompt(media, key, language), timeout=timeout, after_ms=after)
    assert heard, 'did not hear %s after %d ms\n%s' % (key, after, media.log_tail(12))
    call.dtmf(digits, gap=0.15)
    return heard
