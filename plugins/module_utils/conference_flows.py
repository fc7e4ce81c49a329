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

    def links(self):
        """(source, sink) pairs of members: who is heard by whom. Nobody hears itself; a muted
        member is heard by nobody; while the room waits for a moderator, nobody by anybody."""
        if not self.open():
            return set()
        return set((a, b) for a in self.members for b in self.members if a != b and a not in self.muted)

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
