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


def test_three_wrong_pins_are_refused_and_the_caller_is_hung_up(media, phone, tmp_path):
    offset = media.log_size()
    call = dial(phone, media, '650', 'conference;number=650', tmp_path / 'wrong.wav')
    assert call.wait_answered(5), call.final
    after = 0
    for attempt, pin in enumerate(('1111', '2222', '38190')):
        asked = enter(call, media, 'conference_pin', pin + '#', after=after)
        refused = call.wait_heard(prompt(media, 'invalid_pin'), timeout=10, after_ms=asked, share=0.6)
        assert refused, (attempt, media.log_tail(10))
        after = refused
    assert call.wait_heard(prompt(media, 'goodbye'), timeout=10, after_ms=after, share=0.6), media.log_tail(10)
    assert call.wait_ended(10) == (200, 'Normal call clearing'), media.log_tail(10)   # the service's BYE
    assert call.wait_heard(prompt(media, 'conference_pin'), timeout=0, after_ms=after) is None  # not asked a fourth time
    assert 'joined room' not in media.log_since(offset)


def test_a_participant_muted_on_entry_hears_the_others_and_nobody_hears_them(media, phone, tmp_path):
    # Room 653 mutes participants on entry, not its moderator.
    offset = media.log_size()
    first = enter_room(phone, media, '653', '3819', tmp_path / 'muted1.wav')
    assert in_room(media, offset, 1), media.log_tail(10)
    second = enter_room(phone, media, '653', '3819', tmp_path / 'muted2.wav')
    assert in_room(media, offset, 2), media.log_tail(10)
    moderator = enter_room(phone, media, '653', '7264', tmp_path / 'moderator.wav')
    assert in_room(media, offset, 3), media.log_tail(10)
    assert media.log_since(offset).count('participant, muted') == 2, media.log_tail(10)
    calls = [first, second, moderator]
    for index, call in enumerate(calls):
        call.play(audio.write_tones(str(tmp_path / ('tone%d.wav' % index)), [(TONES[index], TONE_MS)]))
        poll(TONE_MS / 1000.0 + 0.6)
    for call in calls:
        call.hangup()
    for call in calls:
        call.wait_ended(5)
    poll(0.3)
    found = [heard(call.record_file) for call in calls]
    print('muted on entry: participant 1 heard %s, participant 2 %s, the moderator %s' % tuple(sorted(f) for f in found))
    assert found == [{TONES[2]}, {TONES[2]}, set()], [audio.tone_segments(c.record_file, list(TONES)) for c in calls]


ANNOUNCE = (880, 1320)   # media_prompts.TONES: 'joined' rises 880 -> 1320 Hz, 'left' falls 1320 -> 880 Hz


def announcements(path):
    """The join ('joined') and leave ('left') tones a recording holds, in order."""
    segments = [s for s in audio.tone_segments(path, list(ANNOUNCE)) if s[2] >= 60]
    found = []
    for (f1, at1, ms1), (f2, at2, _ms2) in zip(segments, segments[1:]):
        if at2 - (at1 + ms1) <= 60 and f1 != f2:
            found.append('joined' if f1 == ANNOUNCE[0] else 'left')
    return found


def test_the_others_hear_a_tone_when_someone_joins_and_when_someone_leaves(media, phone, tmp_path):
    # Room 652 announces joins and leaves with a tone to the others (never to the one who comes or goes).
    offset = media.log_size()
    calls = []
    for index in range(3):
        calls.append(enter_room(phone, media, '652', '3819', tmp_path / ('p%d.wav' % index)))
        assert in_room(media, offset, index + 1), media.log_tail(10)
        poll(1.0)
    calls[2].hangup()
    calls[2].wait_ended(5)
    assert wait(lambda: '2 in it' in media.log_since(offset).split('left room', 1)[-1], 10), media.log_tail(10)
    poll(1.0)
    for call in calls[:2]:
        call.hangup()
    for call in calls[:2]:
        call.wait_ended(5)
    poll(0.3)
    found = [announcements(call.record_file) for call in calls]
    print('announce join/leave: the first heard %s, the second %s, the third %s' % tuple(found))
    assert found == [['joined', 'joined', 'left'], ['joined', 'left'], []], \
        [audio.tone_segments(c.record_file, list(ANNOUNCE)) for c in calls]
