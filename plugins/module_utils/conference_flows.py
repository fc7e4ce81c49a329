# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Conference rooms on the media service (docs/media.md, "Conference rooms"), without PJSIP.

Two parts: ``enter`` is a caller's flow (answer, the PIN, then the Conference step, which lasts
while the caller is in the room), and ``RoomState`` the room's rules, which the engine asks what
to do whenever someone joins or leaves: who hears whom (``links``), who hears music (``music``),
whether the room ends (``leave``). The engine only connects the ports it is told to.

Rules: a room with a PIN (or only a moderator PIN) asks for one; the PIN is hashed once with
rules.conference_pin_hash and compared with both stored hashes (the moderator PIN makes a
moderator); three wrong entries end the call; in a room with only a moderator PIN an empty entry
joins as a participant. ``max_participants`` callers at most (one more is told the room is full).
A caller alone in the room hears music; with ``wait_for_moderator`` the participants hear music
until a moderator is in the room and nobody hears anybody meanwhile; ``mute_on_entry`` joins participants (not moderators) muted:
they hear, nobody hears them; ``announce_join_leave`` plays a tone to the others when someone
joins or leaves; ``end_with_moderator`` ends the room for everyone when its last moderator leaves.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hmac

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import (
    ALL_DIGITS, Answer, CollectDigits, Conference, Hangup, Play,
)

PIN_TRIES = 3
MAX_PIN_DIGITS = 8


class RoomSpec(object):
    """A conference room as the flow and the engine need it (the store builds it from the
    directory's ``conference`` object). ``key`` names the room among all tenants' rooms;
    ``music`` is an audio reference (None: the built-in music)."""

    __slots__ = ('key', 'tenant', 'number', 'pin_hash', 'moderator_pin_hash', 'max_participants', 'wait_for_moderator',
                 'announce_join_leave', 'mute_on_entry', 'end_with_moderator', 'music')

    def __init__(self, tenant, number, pin_hash=None, moderator_pin_hash=None, max_participants=10,
                 wait_for_moderator=False, announce_join_leave=False, mute_on_entry=False, end_with_moderator=False,
                 music=None):
        self.key = '%s/%s' % (tenant, number)
        self.tenant = tenant
        self.number = number
        self.pin_hash = pin_hash or None
        self.moderator_pin_hash = moderator_pin_hash or None
        self.max_participants = max_participants
        self.wait_for_moderator = wait_for_moderator
        self.announce_join_leave = announce_join_leave
        self.mute_on_entry = mute_on_entry
        self.end_with_moderator = end_with_moderator
        self.music = music


def role_of(spec, digits):
    """'moderator', 'participant' or None (a wrong PIN) for what a caller entered."""
    entered = rules.conference_pin_hash(spec.tenant, spec.number, digits) if digits else None
    if entered and spec.moderator_pin_hash and hmac.compare_digest(entered, spec.moderator_pin_hash):
        return 'moderator'
    if spec.pin_hash is None:
        return 'participant' if not digits else None
    if entered and hmac.compare_digest(entered, spec.pin_hash):
        return 'participant'
    return None


def enter(spec):
    """A caller's flow into the room ``spec`` (a RoomSpec)."""
    yield Answer()
    role = 'participant'
    if spec.pin_hash or spec.moderator_pin_hash:
        for attempt in range(PIN_TRIES):
            result = yield Play(['conference_pin'], barge_in=ALL_DIGITS)
            if result.hung_up:
                return
            result = yield CollectDigits(MAX_PIN_DIGITS, terminator='#')
            if result.hung_up:
                return
            role = role_of(spec, result.digits) if result.end != 'timeout' or result.digits else None
            if role is not None:
                break
            result = yield Play(['invalid_pin'] + (['goodbye'] if attempt == PIN_TRIES - 1 else []), flush=True)
            if result.hung_up:
                return
        if role is None:
            yield Hangup()
            return
    moderator = role == 'moderator'
    result = yield Conference(spec, moderator=moderator, muted=spec.mute_on_entry and not moderator)
    if result.hung_up:
        return
    if result.end == 'full':
        yield Play(['conference_full', 'goodbye'])
    elif result.end == 'ended':
        yield Play(['conference_ended', 'goodbye'])
    yield Hangup()


class RoomState(object):
    """Who is in one room and what each hears. Members are any hashable ids (the engine's calls)."""

    def __init__(self, spec):
        self.spec = spec
        self.members = []      # ids, in the order they joined
        self.moderators = set()
        self.muted = set()
        self.ended = False

    def join(self, member, moderator=False, muted=False):
        """Let ``member`` in: False when the room is full (or has ended)."""
        if self.ended or len(self.members) >= self.spec.max_participants:
            return False
        self.members.append(member)
        if moderator:
            self.moderators.add(member)
        if muted:
            self.muted.add(member)
        return True

    def leave(self, member):
        """``member`` is gone: the members the room ends for (everyone left when its last moderator
        left a room that ends with its moderator), else []."""
        if member not in self.members:
            return []
        self.members.remove(member)
        was_moderator = member in self.moderators
        self.moderators.discard(member)
        self.muted.discard(member)
        if was_moderator and not self.moderators and self.spec.end_with_moderator and self.members:
            self.ended = True
            return list(self.members)
        return []

    def open(self):
        """Whether the members talk (not waiting for a moderator)."""
        return bool(self.moderators) or not self.spec.wait_for_moderator

    def sources(self):
        """The members everybody else hears: the unmuted ones, none while the room waits for a
        moderator."""
        if not self.open():
            return set()
        return set(m for m in self.members if m not in self.muted)

    def links(self):
        """(source, sink) pairs of members: who is heard by whom. Nobody hears itself; a muted
        member is heard by nobody; while the room waits for a moderator, nobody by anybody."""
        sources = self.sources()
        return set((a, b) for a in sources for b in self.members if a != b)

    def music(self):
        """The members who hear the room's music: everybody while the room waits for its moderator,
        a caller alone in the room."""
        if not self.open() or len(self.members) == 1:
            return set(self.members)
        return set()

    def announce_to(self, member):
        """Who hears the tone when ``member`` joins or leaves (the others, when the room says so)."""
        if not self.spec.announce_join_leave:
            return set()
        return set(m for m in self.members if m != member)


# The rules of a room a joining call brings along (the directory may have changed them since the
# room's first call: the latest win).
RULES = ('max_participants', 'wait_for_moderator', 'announce_join_leave', 'mute_on_entry', 'end_with_moderator')


class Rooms(object):
    """Every room of a media service, across its worker processes (the service's front keeps it).

    A call is a member id (unique in the service) on a worker (its SIP port) with a bus address
    (where that worker takes the audio of the members of other workers). ``handle(message)`` takes
    a worker's message and returns the messages for the workers, as (worker, message) pairs:

      {'t': 'join', 'key', 'tenant', 'number', 'member', 'worker', 'bus': [host, port],
       'moderator', 'muted', 'rules': {RULES}}        -> 'joined' to that worker (ok, count), then
                                                          a 'room' table to every worker in it
      {'t': 'leave', 'key', 'member'}                  -> a 'room' table to every worker in it

    A 'room' table: 'members' [[member, worker, bus, moderator, muted], ...] in the order they
    joined, 'sources' (whom everybody else hears), 'music' (who hears the room's music), 'ended'
    (the members the room ended for: their calls end), 'tone' [key, [members]] (who hears the
    join or leave tone) or None. A worker connects its own members by it: each hears the sources
    but itself, those of other workers through its bus."""

    def __init__(self):
        self.rooms = {}      # key -> RoomState (members are member ids)
        self.where = {}      # member id -> (worker, bus)

    def handle(self, message):
        kind = message.get('t')
        if kind == 'join':
            return self.join(message)
        if kind == 'leave':
            return self.leave(message.get('key'), message.get('member'))
        return []

    def join(self, message):
        key, member, worker = message['key'], message['member'], message['worker']
        rules = dict((name, value) for name, value in (message.get('rules') or {}).items() if name in RULES)
        spec = RoomSpec(message['tenant'], message['number'], **rules)
        state = self.rooms.get(key)
        if state is None:
            state = self.rooms[key] = RoomState(spec)
        else:
            state.spec = spec
        if member in self.where or not state.join(member, bool(message.get('moderator')), bool(message.get('muted'))):
            if not state.members:
                del self.rooms[key]
            return [(worker, {'t': 'joined', 'key': key, 'member': member, 'ok': False, 'count': len(state.members)})]
        self.where[member] = (worker, list(message.get('bus') or []))
        replies = [(worker, {'t': 'joined', 'key': key, 'member': member, 'ok': True, 'count': len(state.members)})]
        return replies + self._tables(key, state, tone=('joined', state.announce_to(member)))

    def leave(self, key, member):
        state = self.rooms.get(key)
        if state is None or member not in state.members:
            return []
        announce = state.announce_to(member)
        ended = state.leave(member)
        for other in ended:
            state.leave(other)
        told = set([self.where.pop(member)[0]] + [self.where.pop(m)[0] for m in ended if m in self.where])
        messages = self._tables(key, state, tone=None if ended else ('left', announce), ended=ended, also=told)
        if not state.members:
            del self.rooms[key]
        return messages

    def worker_gone(self, worker):
        """A worker ended: its members leave their rooms (messages for the other workers)."""
        messages = []
        for key, state in list(self.rooms.items()):
            for member in [m for m in state.members if self.where.get(m, (None,))[0] == worker]:
                messages.extend((w, m) for w, m in self.leave(key, member) if w != worker)
        return messages

    def _tables(self, key, state, tone=None, ended=(), also=()):
        table = [[m, self.where[m][0], self.where[m][1], m in state.moderators, m in state.muted] for m in state.members]
        body = {'t': 'room', 'key': key, 'members': table, 'sources': sorted(state.sources()),
                'music': sorted(state.music()), 'ended': list(ended),
                'tone': [tone[0], sorted(tone[1])] if tone and tone[1] else None}
        workers = sorted(set(row[1] for row in table) | set(also))
        return [(worker, body) for worker in workers]
