# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Conference rooms with real audio: three participants, each sending a tone of its own in turn,
each hears the two others and not itself (by frequency); a wrong PIN is refused; a room that waits
for its moderator plays music until the moderator joins and ends when the moderator leaves."""

from lab import audio
from lab.phone import poll, wait
from media_suite import dial, enter, prompt

TONES = (400, 1300, 1900)   # away from the built-in music (523-1047 Hz)
TONE_MS = 600


def enter_room(phone, media, number, pin, record):
    call = dial(phone, media, number, 'conference;number=%s' % number, record)
    assert call.wait_answered(5), call.final
    enter(call, media, 'conference_pin', pin + '#')
    return call


def in_room(media, offset, count):
    """Wait until the service's log says the room has ``count`` callers (after ``offset``)."""
    return wait(lambda: '%d in it' % count in media.log_since(offset), 15)


def heard(path):
    """The test tones a recording holds (stretches of at least half a tone)."""
    return set(f for f, _at, ms in audio.tone_segments(path, list(TONES)) if ms >= TONE_MS // 2)


def test_three_participants_each_hear_the_two_others_and_not_themselves(media, phone, tmp_path):
    offset = media.log_size()
    wrong = dial(phone, media, '650', 'conference;number=650', tmp_path / 'wrong.wav')
    assert wrong.wait_answered(5)
    enter(wrong, media, 'conference_pin', '1111#')
    assert wrong.wait_heard(prompt(media, 'invalid_pin'), timeout=10)
    wrong.hangup()
    wrong.wait_ended(5)
    assert 'joined room' not in media.log_since(offset)

    calls = []
    for index in range(3):
        calls.append(enter_room(phone, media, '650', '3819', tmp_path / ('p%d.wav' % index)))
        assert in_room(media, offset, index + 1), media.log_tail(10)
    for index, call in enumerate(calls):
        call.play(audio.write_tones(str(tmp_path / ('tone%d.wav' % index)), [(TONES[index], TONE_MS)]))
        poll(TONE_MS / 1000.0 + 0.6)
    for call in calls:
        call.hangup()
    for call in calls:
        call.wait_ended(5)
    poll(0.3)
    for index, call in enumerate(calls):
        others = set(TONES) - {TONES[index]}
        assert heard(call.record_file) == others, (index, audio.tone_segments(call.record_file, list(TONES)))


def test_music_until_the_moderator_joins_and_the_end_with_the_moderator(media, phone, tmp_path):
    offset = media.log_size()
    participant = enter_room(phone, media, '651', '3819', tmp_path / 'participant.wav')
    assert participant.wait_heard(prompt(media, 'music'), timeout=10), media.log_tail(10)
    moderator = enter_room(phone, media, '651', '7264', tmp_path / 'moderator.wav')
    assert in_room(media, offset, 2)
    moderator.play(audio.write_tones(str(tmp_path / 'moderator-tone.wav'), [(TONES[1], TONE_MS)]))
    poll(TONE_MS / 1000.0 + 0.6)
    moderator.hangup()
    assert participant.wait_heard(prompt(media, 'conference_ended'), timeout=10), media.log_tail(10)
    assert participant.wait_ended(10) == (200, 'Normal call clearing')
    assert heard(participant.record_file) == {TONES[1]}
    moderator.wait_ended(5)
