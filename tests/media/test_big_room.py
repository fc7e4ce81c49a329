# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A room bigger than one worker's calls: six participants (the service's workers take 4 calls
each), from two phone processes; each sends a tone of its own in turn and hears the five others
and not itself (by frequency): the members of other workers are heard over the room bus."""

from lab import audio
from lab.participants import Participants
from media_suite import ACME, prompt

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
