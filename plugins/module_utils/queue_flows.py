# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call queues on the media service (docs/media.md, "Call queues"), without PJSIP.

``wait_in_queue`` is a caller's flow: answer, wait with music (the Hold step, which keeps the
music running from one step to the next), hear its position now and then, and be offered to the
members: the call to a member is placed through the router (``X-Voxplane-Origin:
queue;number=<queue>;to=member``, the Bridge step) and bridged once the member answers. After
``max_wait`` (or at once when ``max_callers`` wait) the caller goes to ``overflow``; with no member
logged in, at once to ``no_members``; without a destination, goodbye.

``QueueState`` is what the callers of one queue share (in one worker: the front sends a queue's
calls to one worker): the callers in order, the members on a call of the queue or in their
wrap-up, who took the last call and when each member's last call ended. Only the caller at the
head is offered to a member; members are tried by penalty (lowest first), then by the queue's
strategy: ``sequential`` in the queue's order, ``round_robin`` starting after the member who took
the last call, ``longest_idle`` the one whose last queue call ended longest ago, one at a time;
``ring_all`` rings every free member of the lowest penalty at once (one Bridge with ``also``), the
first to answer takes the call. A member who does not answer, is busy or on DND (the router
answers 486/480) is skipped for the rest of that round.

The members who take calls (logged in, not on DND, available) are the directory's, read again while a
caller waits (``current``, at most every REFRESH_S): a member who logs in with ``*44`` is offered the
callers already waiting, one who logs out or turns DND on is no longer rung for them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import ivr_flows, media_prompts, routing
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import Answer, Bridge, Hangup, Hold, Play, Talk

ORIGIN = 'queue'
# How long a caller who is not offered to anybody waits before the queue is looked at again.
IDLE_MS = 1000
# Waits remembered for the estimated wait.
KEPT_WAITS = 10
# How often a waiting caller's flow reads the queue again (members logging in or out, DND).
REFRESH_S = 1.0


class QueueSpec(object):
    """A queue as the flow needs it (the store builds it from the directory's ``queue`` object):
    ``members`` the (extension, penalty) of the members who take calls now (logged in, not on DND,
    available), in the queue's order; ``logged_in`` whether any member is logged in at all."""

    __slots__ = ('key', 'number', 'strategy', 'members', 'logged_in', 'member_ring_ms', 'wrapup_ms', 'max_callers',
                 'max_wait_ms', 'overflow', 'no_members', 'music', 'announce_ms')

    def __init__(self, tenant, number, members, strategy='ring_all', logged_in=None, member_ring_ms=15000,
                 wrapup_ms=10000, max_callers=10, max_wait_ms=300000, overflow=None, no_members=None, music=None,
                 announce_ms=0):
        self.key = '%s/%s' % (tenant, number)
        self.number = number
        self.strategy = strategy
        self.members = list(members)
        self.logged_in = bool(self.members) if logged_in is None else logged_in
        self.member_ring_ms = member_ring_ms
        self.wrapup_ms = wrapup_ms
        self.max_callers = max_callers
        self.max_wait_ms = max_wait_ms
        self.overflow = overflow or None
        self.no_members = no_members or None
        self.music = music
        self.announce_ms = announce_ms


class QueueState(object):
    """What the callers of one queue share. Times are seconds of the flows' clock."""

    def __init__(self):
        self.callers = []
        self.busy = set()
        self.wrapup_until = {}
        self.idle_since = {}
        self.last_taken = None
        self.waits = []

    def enter(self, caller, max_callers):
        if len(self.callers) >= max_callers:
            return False
        self.callers.append(caller)
        return True

    def leave(self, caller):
        if caller in self.callers:
            self.callers.remove(caller)

    def position(self, caller):
        return self.callers.index(caller) + 1

    def free(self, spec, now, tried=()):
        """The members the head of the queue may be offered to now, in the order to try them."""
        members = [(ext, penalty) for ext, penalty in spec.members
                   if ext not in self.busy and ext not in tried and self.wrapup_until.get(ext, 0) <= now]
        order = [ext for ext, _p in spec.members]
        if spec.strategy == 'round_robin' and self.last_taken in order:
            start = order.index(self.last_taken) + 1
            rank = dict((ext, (i - start) % len(order)) for i, ext in enumerate(order))
        elif spec.strategy == 'longest_idle':
            rank = dict((ext, (self.idle_since.get(ext, float('-inf')), i)) for i, ext in enumerate(order))
        else:
            rank = dict((ext, i) for i, ext in enumerate(order))
        return [ext for ext, _p in sorted(members, key=lambda m: (m[1], rank[m[0]]))]

    def offer(self, caller, spec, now, tried=()):
        """The members to ring for ``caller`` now (``ring_all``: every free one of the lowest penalty;
        else one), or [] (not at the head, or nobody free)."""
        if not self.callers or self.callers[0] != caller:
            return []
        free = self.free(spec, now, tried)
        if spec.strategy != 'ring_all' or not free:
            return free[:1]
        penalty = dict(spec.members)
        return [ext for ext in free if penalty[ext] == penalty[free[0]]]

    def answered(self, member, waited):
        self.last_taken = member
        self.waits = (self.waits + [waited])[-KEPT_WAITS:]

    def call_ended(self, member, now, wrapup_s):
        self.busy.discard(member)
        self.idle_since[member] = now
        self.wrapup_until[member] = now + wrapup_s

    def estimated_wait(self, caller):
        """Seconds a caller at its position may still wait (from the recent waits), or None."""
        if not self.waits:
            return None
        return self.position(caller) * sum(self.waits) / len(self.waits)


def position_prompts(state, caller):
    keys = ['queue_position'] + media_prompts.number(state.position(caller))
    wait = state.estimated_wait(caller)
    if wait is not None:
        keys += ['queue_wait'] + media_prompts.number(max(1, int(round(wait / 60.0)))) + ['minutes']
    return keys


def wait_in_queue(spec, state, clock, caller=None, current=None):
    """The flow of a caller of the queue ``spec``; ``state`` the queue's QueueState, ``clock`` seconds.
    ``current()``: the queue's QueueSpec as the directory has it now (None when it cannot say: the
    caller goes on with what it has), asked at most every REFRESH_S while the caller waits."""
    caller = caller if caller is not None else object()
    music = [spec.music if spec.music is not None else 'music']
    yield Answer()
    if not spec.logged_in and spec.no_members:
        yield from _go_on(spec, spec.no_members)
        return
    if not state.enter(caller, spec.max_callers):
        yield from _go_on(spec, spec.overflow)
        return
    try:
        start = read_at = clock()
        announce_at = start if spec.announce_ms else None
        tried = set()
        while True:
            now = clock()
            if current is not None and now - read_at >= REFRESH_S:
                read_at = now
                spec = current() or spec
            left_ms = int((start + spec.max_wait_ms / 1000.0 - now) * 1000)
            if left_ms <= 0:
                break
            if announce_at is not None and now >= announce_at:
                announce_at = now + spec.announce_ms / 1000.0
                result = yield Play(position_prompts(state, caller))
                if result.hung_up:
                    return
                continue
            members = state.offer(caller, spec, now, tried)
            if not members:
                if tried and not state.free(spec, now, tried):
                    tried = set()  # everybody free was tried: a new round after this wait
                result = yield Hold(music, min(IDLE_MS, left_ms))
                if result.hung_up:
                    return
                continue
            state.busy.update(members)
            result = yield Bridge(members[0], routing.origin_header(ORIGIN, spec.number, 'member'),
                                  min(spec.member_ring_ms, left_ms), hold=music, also=members[1:], until_answer=True)
            state.busy.difference_update(members)
            if result.code == 200:
                member = result.user or members[0]
                state.answered(member, clock() - start)
                state.busy.add(member)   # on the queue's call: the others are free again
                state.leave(caller)      # the next caller is at the head now
                try:
                    if not result.hung_up:
                        result = yield Talk()
                finally:
                    state.call_ended(member, clock(), spec.wrapup_ms / 1000.0)
                if not result.hung_up:
                    yield Hangup()
                return
            if result.hung_up:
                return
            tried.update(members)
    finally:
        state.leave(caller)
    yield from _go_on(spec, spec.overflow)


def _go_on(spec, destination):
    if destination is not None:
        result = yield Bridge(*_request(spec, destination), hold=['ringback'])
        if result.hung_up or result.end == 'ended':
            yield Hangup()
            return
    yield Play(['goodbye'])
    yield Hangup()


def _request(spec, destination):
    to, user = routing.origin_request(destination)
    return user, routing.origin_header(ORIGIN, spec.number, to), ivr_flows.RING_MS
