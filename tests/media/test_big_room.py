# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rooms and queues bigger than one worker's calls (the service's workers take 4 calls each):
six participants from two phone processes, each sending a tone of its own in turn, each hear the
five others and not themselves (by frequency): the members of other workers are heard over the
room bus; five callers of one queue wait on two workers, the member answers the head of the
queue, and after that call the next caller, whichever worker it is on."""

import os

from lab import audio
from lab.participants import Participants
from lab.phone import wait
from media_suite import ACME, prompt

HERE = os.path.dirname(os.path.abspath(__file__))

# Away from the built-in music (523-1047 Hz) and from each other.
TONES = (400, 1300, 1600, 1900, 2200, 2500)
TONE_MS = 600


def test_six_participants_on_two_workers_each_hear_the_five_others_and_not_themselves(media, tmp_path):
    offset = media.log_size()
    tones = [audio.write_tones(str(tmp_path / ('tone%d.wav' % i)), [(f, TONE_MS)]) for i, f in enumerate(TONES)]
    room = Participants(media.target, media.caller, len(TONES), '650', ACME, '3819#', prompt(media, 'conference_pin'),
                        tmp_path, per_process=3)
    try:
        assert room.join(timeout=20) == len(TONES), media.log_tail(20)
        assert '%d in it' % len(TONES) in media.log_since(offset), media.log_tail(20)
        room.speak(tones, gap=TONE_MS / 1000.0 + 0.6)
        results = room.finish()
    finally:
        room.close()
    log = media.log_since(offset)
    workers = set(line.split(' worker ')[1].split()[0] for line in log.splitlines() if 'joined room acme' in line and ' worker ' in line)
    assert len(workers) >= 2, log
    for index, frequency in enumerate(TONES):
        segments = audio.tone_segments(results[index]['record'], list(TONES))
        heard = set(f for f, _at, ms in segments if f and ms >= TONE_MS // 2)
        assert heard == set(TONES) - {frequency}, (index, segments)


def workers_of(log, what):
    return set(line.split(' worker ')[1].split()[0] for line in log.splitlines() if what in line and ' worker ' in line)


def test_five_callers_of_one_queue_on_two_workers_are_answered_in_turn(media, phone, tmp_path):
    run = media.playbook(os.path.join(HERE, 'big_queue.yml'), {'directory': media.directory_path})
    assert run.rc == 0, run
    offset = media.log_size()
    # The member lets each call of the queue ring 2 s, answers and talks (other tones) until hung up.
    phone.answer_calls(play=media.other_tones, record_dir=tmp_path, answer=lambda request: (200, 2))
    callers = Participants(media.target, media.caller, 5, '610', ACME, '', None, tmp_path, header='queue;number=%s',
                           per_process=3)
    try:
        assert callers.join(timeout=20) == 5, media.log_tail(20)
        first = phone.wait_incoming(1, timeout=10)
        assert first is not None and first.wait_answered(10), media.log_tail(20)
        callers.speak([None] * 5, gap=0.0, hold=audio.duration_ms(media.other_tones) / 1000.0 + 2)
        first.hangup()
        second = phone.wait_incoming(2, timeout=10)
        assert second is not None and second.wait_answered(10), media.log_tail(20)
        callers.speak([None] * 5, gap=0.0, hold=audio.duration_ms(media.other_tones) / 1000.0 + 2)
        assert len(phone.incoming) == 2   # one caller at a time: ring_all of one member
        second.hangup()
        wait(lambda: False, 1.0)
        heard = callers.finish()
    finally:
        callers.close()
    log = media.log_since(offset)
    assert len(workers_of(log, 'Hotline') | workers_of(log, 'queue;number=610') | workers_of(log, 'started')) >= 2, log
    talked = [i for i, r in heard.items() if audio.has_sequence(r['record'], audio.OTHER_SEQUENCE)[0]]
    assert len(talked) == 2, [(i, audio.has_sequence(r['record'], audio.OTHER_SEQUENCE)[1]) for i, r in heard.items()]
    waited = [i for i in heard if i not in talked]
    for index in waited:
        _end, share = audio.heard(prompt(media, 'music'), heard[index]['record'])
        assert share >= 0.8, (index, share)
