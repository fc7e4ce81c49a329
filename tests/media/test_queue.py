# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call queues with real audio: the caller waits with music while the service rings the logged-in
member through "Kamailio" (the test phone, which lets it ring, then answers as the member), then
caller and member hear each other; a queue whose member does not take the call overflows to its
destination after max wait.

The strategies with successive callers (which member's phone rings first, and whose tone the caller
then hears): round robin, sequential, longest idle; the wrap-up time (timed); a busy member and one
on DND skipped; three callers waiting at once hear the music and their positions, which move up.
Within the wheel's 4 calls a worker: at most 2 callers and 2 member legs, or 3 callers, at once.
Login and logout by feature code through the real router: test_through_kamailio.py."""

import re
import time

from lab import audio
from lab.directories import use_collection
from lab.phone import poll, wait
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


# The strategy tests: each member's leg plays a tone of its own, so that the caller's recording says
# whom it was connected to, not only whose phone rang.
MEMBER_TONES = {'10': 600, '11': 1450, '12': 1900}
MUSIC = (523, 659, 784, 1047)   # media_prompts.TONES['music']


def member_of(request):
    """The extension a member leg rings (its request URI user)."""
    return re.match(r'INVITE sip:([^@]+)@', request).group(1)


def hears(call, frequency, timeout, ms=300):
    """Wait until the call's recording holds ``frequency`` for at least ``ms``."""
    def found():
        try:
            return any(f == frequency and length >= ms for f, _at, length in audio.tone_segments(call.record_file, [frequency]))
        except (OSError, ValueError):
            return False
    return wait(found, timeout)


def members_phone(phone, media, tmp_path, answers=None):
    """The phone answers the member legs: ``answers`` {extension: final code} (default 200), each
    member playing its own tone; the calls it got are ``phone.incoming``."""
    tones = dict((ext, audio.write_tones(str(tmp_path / ('member-%s.wav' % ext)), [(f, 1000)]))
                 for ext, f in MEMBER_TONES.items())
    answers = answers or {}

    def answer(request):
        return answers.get(member_of(request), 200), 0
    phone.answer_calls(record_dir=tmp_path, answer=answer)
    return tones


def answered_by(phone, media, tmp_path, queue, name, tones, hang_up=True):
    """A caller dials ``queue``; the member leg the phone answered (after any it refused), once the
    caller hears that member's tone. ``hang_up``: the member then hangs up and the caller's call ends."""
    before = len(phone.incoming)
    call = dial(phone, media, queue, 'queue;number=%s' % queue, tmp_path / ('%s.wav' % name))
    assert call.wait_answered(5), call.final
    legs = wait(lambda: [c for c in phone.incoming[before:] if c.answered()], 15)
    assert legs, ([c.request.splitlines()[0] for c in phone.incoming[before:]], media.log_tail(15))
    [leg] = legs
    assert origin(leg.request) == 'queue;number=%s;to=member' % queue, leg.request
    member = member_of(leg.request)
    assert leg.wait_media(5)
    leg.play(tones[member], loop=True)
    assert hears(call, MEMBER_TONES[member], 10), (member, audio.tone_segments(call.record_file, list(MEMBER_TONES.values())))
    leg.caller = call
    if hang_up:
        leg.hangup()
        assert call.wait_ended(5) == (200, 'Normal call clearing'), media.log_tail(10)
    return leg


def rung(phone, since=0):
    """The members the phone was rung as, in order, from its ``since``-th incoming call on."""
    return [member_of(c.request) for c in phone.incoming[since:]]


def test_round_robin_starts_after_the_member_who_took_the_last_call(media, phone, tmp_path):
    tones = members_phone(phone, media, tmp_path)
    order = ['10', '11', '12']
    taken = [member_of(answered_by(phone, media, tmp_path, '602', 'caller%d' % i, tones).request) for i in range(4)]
    print('round robin: callers answered by %s' % taken)
    # Wherever the rotation stood (the queue's state lives on in the worker), each caller goes to the
    # member after the one who took the call before, and each rings that member first (one at a time).
    start = order.index(taken[0])
    assert taken == [order[(start + i) % 3] for i in range(4)], taken
    assert rung(phone) == taken


def test_sequential_rings_the_first_member_first_for_every_caller_and_skips_a_busy_one(media, phone, tmp_path):
    tones = members_phone(phone, media, tmp_path)
    first = answered_by(phone, media, tmp_path, '603', 'caller0', tones)
    assert rung(phone) == ['10'], rung(phone)
    phone.answer_rule = lambda request: (486, 0) if member_of(request) == '10' else (200, 0)  # Anna is busy now
    second = answered_by(phone, media, tmp_path, '603', 'caller1', tones)
    assert rung(phone, 1) == ['10', '11'], rung(phone, 1)
    assert phone.incoming[1].final[0] == 486
    phone.answer_rule = lambda request: (200, 0)
    third = answered_by(phone, media, tmp_path, '603', 'caller2', tones)
    print('sequential: rung %s, answered by %s' % (rung(phone), [member_of(c.request) for c in (first, second, third)]))
    assert rung(phone, 3) == ["10"], rung(phone)   # Bert took the last call: sequential starts with Anna again


def test_longest_idle_offers_the_member_whose_last_call_ended_first(media, phone, tmp_path):
    tones = members_phone(phone, media, tmp_path)
    # Two callers talk at once (4 calls: the worker's limit), the second one ends first.
    one = answered_by(phone, media, tmp_path, '604', 'caller0', tones, hang_up=False)
    two = answered_by(phone, media, tmp_path, '604', 'caller1', tones, hang_up=False)
    assert member_of(one.request) != member_of(two.request)
    two.hangup()
    assert two.caller.wait_ended(5)
    poll(0.5)
    one.hangup()
    assert one.caller.wait_ended(5)
    third = answered_by(phone, media, tmp_path, '604', 'caller2', tones)
    print('longest idle: %s ended first, the next caller rang %s' % (member_of(two.request), rung(phone, 2)))
    # Round robin would ring the member after the last one who took a call (the first caller's); longest
    # idle rings the member whose call ended longest ago: the second caller's.
    assert rung(phone, 2) == [member_of(two.request)], rung(phone)
    assert member_of(third.request) == member_of(two.request)


def test_a_member_is_not_rung_again_before_the_wrapup_time_ends(media, phone, tmp_path):
    # Queue 605: sequential, Anna then Bert, wrap-up 4 s; Bert is busy (his phone answers 486).
    tones = members_phone(phone, media, tmp_path, answers={'11': 486})
    first = answered_by(phone, media, tmp_path, '605', 'caller0', tones, hang_up=False)
    assert member_of(first.request) == '10'
    first.hangup()
    ended = time.monotonic()
    assert first.caller.wait_ended(5)
    call = dial(phone, media, '605', 'queue;number=605', tmp_path / 'caller1.wav')
    assert call.wait_answered(5), call.final
    # The second caller's legs (the first caller may have rung Bert too, when an earlier test's call
    # left Anna in her wrap-up).
    anna = wait(lambda: [c for c in phone.incoming if c.arrived > ended and member_of(c.request) == '10'], 12)
    assert anna, (rung(phone), media.log_tail(15))
    again = anna[0].arrived - ended
    bert = [c for c in phone.incoming if ended < c.arrived < anna[0].arrived]
    print('wrap-up 4 s: Anna rung again %.2f s after her call ended; meanwhile Bert (busy) rung %d times' % (again, len(bert)))
    assert 3.8 <= again <= 7.0, again
    assert bert and all(member_of(c.request) == '11' and c.final and c.final[0] == 486 for c in bert), rung(phone)
    assert hears(call, MUSIC[0], 1, ms=200)   # the caller waited with the music meanwhile
    assert anna[0].wait_answered(5) and anna[0].wait_media(5)
    anna[0].play(tones['10'], loop=True)
    assert hears(call, MEMBER_TONES['10'], 10)
    anna[0].hangup()
    assert call.wait_ended(5)


def test_a_member_on_dnd_is_not_rung(media, phone, tmp_path):
    use_collection()
    from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile  # pylint: disable=import-outside-toplevel

    def dnd(on):
        with media.directory().transaction() as txn:
            reconcile(txn, 'acme', None, {'extension': {'10': {'dnd': on}}}, create=False)
    tones = members_phone(phone, media, tmp_path)
    dnd(True)
    try:
        leg = answered_by(phone, media, tmp_path, '603', 'caller0', tones)
        assert rung(phone) == ['11'], rung(phone)     # sequential: Anna first, but she is on DND
        assert member_of(leg.request) == '11'
    finally:
        dnd(False)
    answered_by(phone, media, tmp_path, '603', 'caller1', tones)
    assert rung(phone, 1) == ['10'], rung(phone)      # DND off: Anna first again


def test_three_waiting_callers_hear_the_music_and_their_positions(media, phone, tmp_path):
    # Queue 606: nobody logged in (no destination for that: the callers wait), the position every 15 s.
    phone.answer_calls(record_dir=tmp_path)
    offset = media.log_size()

    def announced():
        return [line.split(': ', 1)[-1][:120] for line in media.log_since(offset).splitlines() if "Prompt('queue_position')" in line]
    calls, positions = [], []
    for index in range(3):
        call = dial(phone, media, '606', 'queue;number=606', tmp_path / ('waiting%d.wav' % index))
        assert call.wait_answered(5), call.final
        heard = call.wait_heard(prompt(media, 'queue_position'), timeout=10)
        assert heard, announced()
        # A number is one short word: 60 % of its pieces, as for the menu's short prompts (test_ivr.py).
        number = call.wait_heard(prompt(media, 'number/%d' % (index + 1)), timeout=5, after_ms=heard, share=0.6)
        assert number, (index, announced())
        calls.append(call)
        positions.append(number)
    for index, call in enumerate(calls):
        assert hears(call, MUSIC[0], 10, ms=200) and hears(call, MUSIC[2], 5, ms=200), \
            (index, audio.tone_segments(call.record_file, list(MUSIC)))
    # The first caller gives up: at their next announcement the others have moved up.
    calls[0].hangup()
    for index, call in ((1, calls[1]), (2, calls[2])):
        again = call.wait_heard(prompt(media, 'queue_position'), timeout=20, after_ms=positions[index])
        assert again, (index, announced())
        assert call.wait_heard(prompt(media, 'number/%d' % index), timeout=5, after_ms=again, share=0.6), (index, announced())
    for call in calls:
        call.hangup()
    for call in calls:
        call.wait_ended(5)
    assert phone.incoming == []
