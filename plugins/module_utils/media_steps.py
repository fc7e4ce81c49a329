# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps a call of the media service is made of, and what each step returns.

A flow (voicemail, the mailbox menu, an announcement, an IVR menu, a conference room, a queue)
is a generator: it yields a step, the engine carries it out on the call and sends back a
``StepResult``; the flow decides the next step from it. Flows compose with ``yield from``.
Nothing here knows PJSIP: the engine (media/voxplane_media_engine.py) carries the steps out
and decides nothing, and the unit tests drive the flows with results of their own.

After the caller hangs up, the engine still sends the result of the step that was running
(``hung_up`` set: a recording keeps what it got); when the flow then yields another step that
needs the call, the engine closes the flow. A flow that ends without ``Hangup`` is hung up.

Prompts a step plays are references the engine resolves to audio files:
  Prompt(key)            a built-in prompt of the catalogue (media_prompts), in the call's language
  Speech(text, fallback) text spoken by the text-to-speech engine at first use (then cached)
  StoredAudio(hash)      the tenant's own audio (announcements, recorded greetings) by SHA-256
  Recording(path)        a file of the service's storage (a voicemail message)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Every key of a phone's keypad: a menu stops its prompt on any of them.
ALL_DIGITS = '0123456789*#'


class Prompt(object):
    __slots__ = ('key',)

    def __init__(self, key):
        self.key = key

    def __eq__(self, other):
        return isinstance(other, Prompt) and other.key == self.key

    def __hash__(self):
        return hash(('prompt', self.key))

    def __repr__(self):
        return 'Prompt(%r)' % self.key


class Speech(object):
    """Text spoken at first use; ``fallback`` (a Prompt) is played when it cannot be spoken."""

    __slots__ = ('text', 'fallback')

    def __init__(self, text, fallback=None):
        self.text = text
        self.fallback = fallback

    def __eq__(self, other):
        return isinstance(other, Speech) and (other.text, other.fallback) == (self.text, self.fallback)

    def __hash__(self):
        return hash(('speech', self.text))

    def __repr__(self):
        return 'Speech(%r)' % self.text


class StoredAudio(object):
    __slots__ = ('hash',)

    def __init__(self, digest):
        self.hash = digest

    def __eq__(self, other):
        return isinstance(other, StoredAudio) and other.hash == self.hash

    def __hash__(self):
        return hash(('audio', self.hash))

    def __repr__(self):
        return 'StoredAudio(%s)' % self.hash[:12]


class Recording(object):
    __slots__ = ('path',)

    def __init__(self, path):
        self.path = path

    def __eq__(self, other):
        return isinstance(other, Recording) and other.path == self.path

    def __hash__(self):
        return hash(('recording', self.path))

    def __repr__(self):
        return 'Recording(%r)' % self.path


def prompts(*keys):
    """Prompt references from keys (a reference that is one already is kept)."""
    return [key if isinstance(key, (Prompt, Speech, StoredAudio, Recording)) else Prompt(key) for key in keys]


# ---------------------------------------------------------------------------- steps
class Step(object):
    """A step needs the call (its media or its signalling)."""

    __slots__ = ()

    def __eq__(self, other):
        return type(self) is type(other) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __hash__(self):
        return hash((type(self).__name__,) + tuple(repr(getattr(self, s)) for s in self.__slots__))

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, ', '.join('%s=%r' % (s, getattr(self, s)) for s in self.__slots__))


class Answer(Step):
    """Answer the call (200 with SDP): media flows both ways from here on."""

    __slots__ = ()


class EarlyMedia(Step):
    """Answer provisionally with media (183 Session Progress with SDP): the caller hears what
    is played, the call is not answered (no charge), and a final answer can still follow."""

    __slots__ = ()


class Play(Step):
    """Play the prompts one after the other. A digit of ``barge_in`` stops it (the digit stays
    typed for the next CollectDigits; ``digits`` of the result names it); one typed before the
    step starts skips it. ``flush`` forgets what was typed before."""

    __slots__ = ('prompts', 'barge_in', 'flush')

    def __init__(self, items, barge_in='', flush=False):
        self.prompts = tuple(prompts(*items))
        self.barge_in = barge_in
        self.flush = flush


class Record(Step):
    """Record what the caller says into ``path`` (WAV, 8 kHz, 16 bit, mono). It ends on a digit
    of ``stop_digits`` (end 'digit'), after ``silence_ms`` of silence (end 'silence'; the silent
    tail is cut off), at ``max_ms`` (end 'max'), when the caller hangs up (end 'hangup') or the
    service stops (end 'shutdown'). The result's ``duration_ms`` is what the file holds."""

    __slots__ = ('path', 'max_ms', 'silence_ms', 'stop_digits')

    def __init__(self, path, max_ms, silence_ms, stop_digits='#'):
        self.path = path
        self.max_ms = max_ms
        self.silence_ms = silence_ms
        self.stop_digits = stop_digits


class CollectDigits(Step):
    """Collect up to ``max_digits`` digits (typed ahead ones first). It ends on ``terminator``
    (end 'terminator', not part of the digits), at ``max_digits`` (end 'max'), when no digit comes
    within ``first_timeout_ms`` or ``next_timeout_ms`` after the last one (end 'timeout'), or when
    the caller hangs up."""

    __slots__ = ('max_digits', 'terminator', 'first_timeout_ms', 'next_timeout_ms')

    def __init__(self, max_digits, terminator='#', first_timeout_ms=6000, next_timeout_ms=4000):
        self.max_digits = max_digits
        self.terminator = terminator
        self.first_timeout_ms = first_timeout_ms
        self.next_timeout_ms = next_timeout_ms


class Bridge(Step):
    """Place a call through the router (Kamailio) to ``sip:<user>@<the tenant's domain>`` with
    ``X-Voxplane-Origin: <origin>`` (docs/media.md, "Calls the media service places"), the caller's
    identity and the caller's Call-ID, and bridge the caller to it once it is answered. While it
    rings the caller hears ``hold`` (prompts, looped; none: silence). It ends when the other side
    hangs up after answering (end 'ended', ``code`` 200), when it is refused (end 'failed',
    ``code`` its final answer), after ``ring_ms`` without an answer (end 'timeout'; the call is
    cancelled), or when the caller hangs up (``code`` 200 when they were talking). With ``also``
    (more users) all are called at once: the first to answer is bridged (the result's ``user``),
    the others are cancelled; it fails when the last of them fails. With ``until_answer`` it ends
    once the calls are connected (end 'answered', ``code`` 200, ``user``) and a Talk step follows."""

    __slots__ = ('user', 'origin', 'ring_ms', 'hold', 'also', 'until_answer')

    def __init__(self, user, origin, ring_ms, hold=(), also=(), until_answer=False):
        self.user = user
        self.origin = origin
        self.ring_ms = ring_ms
        self.hold = tuple(prompts(*hold))
        self.also = tuple(also)
        self.until_answer = until_answer


class Talk(Step):
    """The caller and the call a Bridge (``until_answer``) connected talk until one hangs up: end
    'ended' (the other side, ``code`` 200) or the caller hung up."""

    __slots__ = ()


class Hold(Step):
    """The caller hears ``prompts`` looped (music on hold) for ``ms``. The music goes on, without
    starting again, into a following Hold or Bridge with the same prompts."""

    __slots__ = ('prompts', 'ms')

    def __init__(self, items, ms):
        self.prompts = tuple(prompts(*items))
        self.ms = ms


class Conference(Step):
    """Be in the conference room ``room`` (a conference_flows.RoomSpec) as a moderator or not,
    ``muted`` or not; the room's rules (conference_flows.RoomState) say whom the caller hears.
    It ends when the caller hangs up, at once with end 'full' when the room is full, or with end
    'ended' when the room ends (its last moderator left)."""

    __slots__ = ('room', 'moderator', 'muted')

    def __init__(self, room, moderator=False, muted=False):
        self.room = room
        self.moderator = moderator
        self.muted = muted


class Hangup(Step):
    """End the call: a BYE once it was answered; before that, the final answer ``code`` with
    ``reason`` and extra ``headers`` ((name, value) pairs). The flow ends here."""

    __slots__ = ('code', 'reason', 'headers')

    def __init__(self, code=480, reason='Temporarily Unavailable', headers=()):
        self.code = code
        self.reason = reason
        self.headers = tuple(headers)


class Language(object):
    """Play the prompts from here on in ``language`` (the access menu, once it knows whose
    mailbox it is). Needs no call; its result is DONE."""

    __slots__ = ('language',)

    def __init__(self, language):
        self.language = language

    def __eq__(self, other):
        return isinstance(other, Language) and other.language == self.language

    def __hash__(self):
        return hash(('language', self.language))

    def __repr__(self):
        return 'Language(%r)' % self.language


class StepResult(object):
    """What a step came to. ``end`` says how it ended (the steps name their ends); ``digits``: the
    digits collected, or the one that stopped a Play or a Record; ``duration_ms``: the length
    of a recording; ``hung_up``: the caller is gone; ``code``: the final answer of a call a
    Bridge placed (200 once it was answered), ``user`` the one of its users who answered."""

    __slots__ = ('end', 'digits', 'duration_ms', 'hung_up', 'code', 'user')

    def __init__(self, end='done', digits='', duration_ms=0, hung_up=False, code=0, user=''):
        self.end = end
        self.digits = digits
        self.duration_ms = duration_ms
        self.hung_up = hung_up
        self.code = code
        self.user = user

    def __eq__(self, other):
        return isinstance(other, StepResult) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __hash__(self):
        return hash(tuple(getattr(self, s) for s in self.__slots__))

    def __repr__(self):
        return 'StepResult(%s)' % ', '.join('%s=%r' % (s, getattr(self, s)) for s in self.__slots__)


DONE = StepResult()
HUNG_UP = StepResult(end='hangup', hung_up=True)
