# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service stopped while a caller records: a stop (SIGTERM) closes the recording and keeps
the message up to where it was; a crash (SIGKILL of every process) leaves a cut-off file that the
next start repairs and keeps; a worker that crashes alone is started again by the front, which
keeps what it was recording; every time the next call works."""

import os
import re

from lab import audio
from lab.net import wait_for
from lab.phone import poll
from media_suite import dial, leave_message, prompt

# The tones of the test sequence that are sent before the service goes away (ms after they start).
STOP_AFTER_MS = 1400


def record_until_stopped(media, phone, tmp_path, stop, name, crash=False):
    """A caller records the test tones; ``stop()`` ends the service in the middle of them. A
    stopped service ends the call; after a crash the caller hangs up (nobody answers any more)."""
    media.clear_messages('acme', '11')
    call = dial(phone, media, '11', 'voicemail;mailbox=11;reason=no-answer', tmp_path / ('%s.wav' % name))
    assert call.wait_answered(5)
    assert call.wait_heard(prompt(media, 'beep'), timeout=30), media.log_tail(10)
    call.play(media.tones, loop=False)
    poll(STOP_AFTER_MS / 1000.0)
    stop()
    if crash:
        poll(1.0)
        call.hangup()
        poll(0.5)
    else:
        assert call.wait_ended(20), 'the call did not end with the service'
    return call


def first_tones(path):
    """The tones of the sequence found in a file, in order."""
    return [f for f, _start, length in audio.tone_segments(path, [500, 1100, 1700, 800]) if length >= 200]


def next_call_works(media, phone, tmp_path):
    call = leave_message(phone, media, tmp_path, mailbox='12', name='after-restart')
    assert call.wait_heard(prompt(media, 'message_kept'), timeout=10), media.log_tail(10)
    call.wait_ended(10)
    assert len(media.messages('acme', '12')) == 1
    media.clear_messages('acme', '12')


def test_a_stop_during_a_recording_keeps_the_message_and_the_next_call_works(media, phone, tmp_path):
    offset = media.log_size()
    record_until_stopped(media, phone, tmp_path, lambda: media.control('stop'), 'stopped')
    assert media.pid() is None
    [message] = media.messages('acme', '11')
    log = media.log_since(offset)
    assert 'message %s kept in mailbox 11' % message['id'] in log and 'stopped' in log, log[-1500:]
    # Kept up to where it was: the first tones, not the last.
    tones = first_tones(message['path'])
    assert tones[:2] == [500, 1100] and 800 not in tones, tones
    assert 500 <= message['duration_ms'] <= STOP_AFTER_MS + 1000, message

    assert media.control('start').returncode == 0, media.log_tail(10)
    next_call_works(media, phone, tmp_path)
    media.clear_messages('acme', '11')


def test_a_crash_during_a_recording_leaves_a_message_that_the_next_start_keeps(media, phone, tmp_path):
    offset = media.log_size()
    record_until_stopped(media, phone, tmp_path, media.kill, 'crashed', crash=True)
    assert media.messages('acme', '11') == []  # nothing was kept: the process just vanished
    folder = os.path.join(media.storage_dir, 'voicemail', 'acme', '11')
    assert [n for n in os.listdir(folder) if n.endswith('.wav.json')], os.listdir(folder)

    assert media.control('start').returncode == 0, media.log_tail(10)
    [message] = wait_for(lambda: media.messages('acme', '11'), 10)
    log = media.log_since(offset)
    assert 'was cut off by a stop of the service: kept' in log, log[-1500:]
    assert [n for n in os.listdir(folder) if n.endswith('.wav.json')] == []
    # The header says what the file holds, and the tones sent before the crash are in it (the
    # writer's last buffer, a quarter of a second, is lost with the process).
    assert message['duration_ms'] == audio.duration_ms(message['path'])
    tones = first_tones(message['path'])
    assert tones[:1] == [500] and 800 not in tones, tones
    assert message['doc']['reason'] == 'no-answer' and message['doc']['caller'] == 'kamailio'

    next_call_works(media, phone, tmp_path)
    media.clear_messages('acme', '11')


def test_a_worker_that_crashes_is_started_again_and_its_recording_kept(media, phone, tmp_path):
    offset = media.log_size()
    workers_before = media.workers_pids()

    def kill_the_recording_worker():
        started = re.search(r'voxplane-media\[(\d+)\] worker \d+ INFO call \S+ \(voicemail 11@',
                            media.log_since(offset))
        assert started, media.log_since(offset)[-1500:]
        media.kill([int(started.group(1))])

    record_until_stopped(media, phone, tmp_path, kill_the_recording_worker, 'worker-crashed', crash=True)
    [message] = wait_for(lambda: media.messages('acme', '11'), 15)
    log = media.log_since(offset)
    assert re.search(r'worker \d+ \(pid \d+\) ended with -9: starting it again', log), log[-1500:]
    assert first_tones(message['path'])[:1] == [500]
    assert wait_for(lambda: len(media.workers_pids()) == len(workers_before), 10)
    assert media.workers_pids() != workers_before
    poll(1.0)  # the new worker reports to the front
    next_call_works(media, phone, tmp_path)
    media.clear_messages('acme', '11')
