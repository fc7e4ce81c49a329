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

``QueueState`` is what the callers of one queue share, whichever worker process they are on: the
service's front keeps every queue's state (``QueueKeeper``) and a worker's flows reach it through
a ``RemoteQueueState`` with the same methods (one loopback round trip each); the callers in order, the members on a call of the queue or in their
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

import uuid

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
        self.holders = {}      # a busy member -> the caller whose call rings or holds it
        self.talking = set()   # the members on a call of the queue
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

    def ring(self, caller, members):
        """``caller``'s call rings ``members``: busy until rang()."""
        self.busy.update(members)
        for member in members:
            self.holders[member] = caller

    def rang(self, caller, members):
        for member in members:
            self.busy.discard(member)
            if self.holders.get(member) == caller:
                del self.holders[member]

    def taken(self, caller, member):
        """``member`` answered ``caller``: busy while they talk (until call_ended)."""
        self.busy.add(member)
        self.holders[member] = caller
        self.talking.add(member)

    def gone(self, caller, now, wrapup_s):
        """``caller`` is gone without its flow saying so (its worker ended): out of the queue, the
        members it rang free, the one it talked to in its wrap-up."""
        self.leave(caller)
        for member in [m for m, c in self.holders.items() if c == caller]:
            if member in self.talking:
                self.call_ended(member, now, wrapup_s)
            else:
                self.rang(caller, [member])

    def answered(self, member, waited):
        self.last_taken = member
        self.waits = (self.waits + [waited])[-KEPT_WAITS:]

    def call_ended(self, member, now, wrapup_s):
        self.busy.discard(member)
        self.talking.discard(member)
        self.holders.pop(member, None)
        self.idle_since[member] = now
        self.wrapup_until[member] = now + wrapup_s

    def estimated_wait(self, caller):
        """Seconds a caller at its position may still wait (from the recent waits), or None."""
        if not self.waits:
            return None
        return self.position(caller) * sum(self.waits) / len(self.waits)


class _Members(object):
    """What QueueState.free needs of a QueueSpec (a spec as a message carries it)."""

    def __init__(self, members, strategy):
        self.members = [(m[0], m[1]) for m in members]
        self.strategy = strategy


# The QueueState methods a worker may call on the front's state (a spec travels as its members
# and strategy, a set of members as a sorted list); those whose answer a flow needs.
REMOTE = ('enter', 'leave', 'position', 'free', 'offer', 'ring', 'rang', 'taken', 'answered', 'call_ended',
          'estimated_wait')
ASKING = ('enter', 'position', 'free', 'offer', 'estimated_wait')


class RemoteQueueState(object):
    """A worker's view of a queue's state kept by the front: each method is one round trip
    (``call(message)`` returns the front's value)."""

    def __init__(self, call, key):
        self._call = call
        self._key = key

    def __getattr__(self, name):
        if name not in REMOTE:
            raise AttributeError(name)

        def remote(*args):
            try:
                return self._call({'t': 'queue', 'key': self._key, 'op': name, 'args': [_plain(a) for a in args]})
            except Exception:  # pylint: disable=broad-except
                # A flow that is being closed (the caller hung up) must get past its last word to
                # the queue; only a question whose answer the flow needs fails it.
                if name in ASKING:
                    raise
                return None
        return remote


def _plain(value):
    if isinstance(value, QueueSpec):
        return {'members': value.members, 'strategy': value.strategy}
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value


class QueueKeeper(object):
    """Every queue's state in the service's front, for the workers' RemoteQueueStates. A caller is
    remembered with its worker, so that a worker that ended leaves no caller and no busy member."""

    def __init__(self):
        self.states = {}
        self.callers = {}   # caller -> (queue key, worker) while it waits or holds a member

    def handle(self, message):
        """The value of one remote call ({'t': 'queue', 'key', 'op', 'args', 'worker'})."""
        key, op, args = message['key'], message['op'], list(message.get('args') or ())
        if op not in REMOTE:
            raise ValueError('no queue operation %r' % op)
        state = self.states.setdefault(key, QueueState())
        if op in ('free', 'offer'):
            index = 0 if op == 'free' else 1
            args[index] = _Members(args[index]['members'], args[index]['strategy'])
            args[index + 2:index + 3] = [set(a) for a in args[index + 2:index + 3]]
        holder = state.holders.get(args[0]) if op == 'call_ended' and args else None
        value = getattr(state, op)(*args)
        if op == 'enter' and value:
            self.callers[args[0]] = (key, message.get('worker'))
        elif op == 'leave' and args[0] not in state.holders.values():
            self.callers.pop(args[0], None)
        elif op == 'call_ended' and holder is not None and holder not in state.callers:
            self.callers.pop(holder, None)
        return value

    def worker_gone(self, worker, now):
        """A worker ended: its callers leave their queues, the members they held are free."""
        for caller, (key, owner) in list(self.callers.items()):
            if owner == worker:
                self.states[key].gone(caller, now, 0)
                del self.callers[caller]


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
    caller = caller if caller is not None else uuid.uuid4().hex
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
            state.ring(caller, members)
            result = yield Bridge(members[0], routing.origin_header(ORIGIN, spec.number, 'member'),
                                  min(spec.member_ring_ms, left_ms), hold=music, also=members[1:], until_answer=True)
            state.rang(caller, members)
            if result.code == 200:
                member = result.user or members[0]
                state.answered(member, clock() - start)
                state.taken(caller, member)   # on the queue's call: the others are free again
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
