# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Voicemail: the mailbox's rules and its call flows, as the media service runs them.

The rules: which greeting a Diversion reason gets, which recording is kept as a message, how
PINs are checked, when wrong PINs lock a mailbox. The flows are generators of steps
(media_steps): ``leave_message`` (a caller reaches a mailbox), ``mailbox_menu`` (the owner, with
or without PIN) and ``access_menu`` (any phone through the tenant's voicemail access number:
mailbox number, then PIN).

A flow works on a mailbox through a port the service gives it (media/voxplane_media_store.py;
the unit tests give a fake of their own):

  tenant, number, name, language, pin_hash, locked
  greeting(kind) -> StoredAudio or None          a recorded greeting ('unavailable', 'busy')
  counts() -> (new, saved)
  messages() -> [{'id', 'folder', 'path', ...}]  new ones first, each folder oldest first
  begin_message(caller, reason) -> path          where a new message is recorded
  keep_message(path, duration_ms) / discard_message(path)
  mark_read(message) / save(message) / delete(message)
  greeting_path(kind) -> path; keep_greeting(kind, path, duration_ms) / discard_greeting(path)
  pin_failures() -> [epoch seconds]; set_pin_failures(times); lock()
  change_pin(pin) -> None, or why the PIN was refused
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hmac

from ansible_collections.voxplane.pbx.plugins.module_utils import media_prompts, rules
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import (
    ALL_DIGITS, Answer, CollectDigits, Hangup, Language, Play, Prompt, Record, Recording, Speech,
)

# A recording shorter than this is no message (a caller who hung up at the tone).
MIN_MESSAGE_MS = 1000
# Wrong PINs: this many in one call end it; this many within the window lock the mailbox
# until an administrator unlocks it (the extension module, voicemail.locked: false).
PIN_TRIES_PER_CALL = 3
PIN_FAILURES_TO_LOCK = 10
PIN_FAILURE_WINDOW_S = 3600
# A PIN is collected up to the hash key; one digit more than the longest PIN, so that a PIN of
# the longest length still ends with the hash key (which would otherwise skip the next prompt).
_PIN_DIGITS = rules.PIN_LENGTH[1] + 1
# Menus: a menu asked this many times without an answer ends the call.
MENU_TIMEOUTS = 3
GREETING_KINDS = ('unavailable', 'busy')
# Diversion reasons (docs/media.md) that get the 'busy' greeting; every other one 'unavailable'.
_BUSY_REASONS = ('user-busy', 'do-not-disturb')


class Settings(object):
    """The service's limits for voicemail (the media role's variables)."""

    def __init__(self, max_message_ms=180000, silence_ms=5000, max_messages=100, max_greeting_ms=60000,
                 menu_timeout_ms=6000):
        self.max_message_ms = max_message_ms
        self.silence_ms = silence_ms
        self.max_messages = max_messages
        self.max_greeting_ms = max_greeting_ms
        self.menu_timeout_ms = menu_timeout_ms


class Caller(object):
    """Who calls: a number (None when anonymous) and a display name (or None)."""

    __slots__ = ('number', 'name')

    def __init__(self, number=None, name=None):
        self.number = number
        self.name = name

    def __eq__(self, other):
        return isinstance(other, Caller) and (other.number, other.name) == (self.number, self.name)

    def __hash__(self):
        return hash((self.number, self.name))

    def __repr__(self):
        return 'Caller(%r, %r)' % (self.number, self.name)


# ---------------------------------------------------------------------------- rules
def greeting_kind(reason):
    """The greeting a caller diverted for ``reason`` hears: 'busy' or 'unavailable'."""
    return 'busy' if reason in _BUSY_REASONS else 'unavailable'


def keeps_message(duration_ms):
    """Whether a recording is long enough to be a message."""
    return duration_ms >= MIN_MESSAGE_MS


def pin_matches(tenant, extension, pin, pin_hash):
    """Whether ``pin`` is the mailbox's PIN (stored as rules.pin_hash; compared in constant time)."""
    if not pin or not pin_hash:
        return False
    return hmac.compare_digest(rules.pin_hash(tenant, extension, pin), pin_hash)


def after_pin_failure(failures, now):
    """A wrong PIN at ``now`` (epoch seconds) after the mailbox's earlier ``failures``: (the
    failures to keep, whether the mailbox locks now). Failures older than the window are
    forgotten; a lock starts the count afresh, so that an unlocked mailbox is not locked again
    by the failures that locked it."""
    recent = [t for t in failures if now - t < PIN_FAILURE_WINDOW_S] + [now]
    if len(recent) >= PIN_FAILURES_TO_LOCK:
        return [], True
    return recent, False


def generated_greeting(box, kind):
    """The greeting of a mailbox without a recorded one: its name (else its number, digit by
    digit) spoken into the sentence of ``kind``; the catalogue's neutral sentence when the text
    cannot be spoken."""
    language = box.language
    who = box.name or media_prompts.template('extension_number', language,
                                             digits=media_prompts.spelled_digits(box.number))
    text = media_prompts.template('greeting_%s_named' % kind, language, who=who)
    return Speech(text, fallback=Prompt('greeting_%s' % kind))


def greeting(box, reason):
    """What a caller diverted for ``reason`` hears before the tone: the mailbox's recorded
    greeting of that kind, else a generated one."""
    kind = greeting_kind(reason)
    return box.greeting(kind) or generated_greeting(box, kind)


# ---------------------------------------------------------------------------- flows
def leave_message(box, caller, reason, settings):
    """A caller leaves a message: greeting (the hash key skips it), tone, record until the hash
    key, silence, the maximum length or hang-up; kept when it is long enough."""
    yield Answer()
    if sum(box.counts()) >= settings.max_messages:
        yield Play(['mailbox_full', 'goodbye'])
        yield Hangup()
        return
    yield Play([greeting(box, reason), 'after_the_tone'], barge_in='#')
    yield Play(['beep'], flush=True)
    path = box.begin_message(caller, reason)
    recorded = yield Record(path, settings.max_message_ms, settings.silence_ms, stop_digits='#')
    kept = keeps_message(recorded.duration_ms)
    if kept:
        box.keep_message(path, recorded.duration_ms)
    else:
        box.discard_message(path)
    if recorded.hung_up:
        return
    yield Play((['message_kept'] if kept else []) + ['goodbye'])
    yield Hangup()


def mailbox_menu(box, pin, settings, clock):
    """The owner's menu (feature code *86 from one of the extension's own accounts): the PIN
    first when ``pin``, then the counts and the main menu."""
    yield Answer()
    if pin:
        if not (yield from _login(box, clock)):
            return
    elif box.locked:
        yield from _goodbye(['mailbox_locked'])
        return
    yield from _main_menu(box, settings)


def access_menu(find_mailbox, settings, clock):
    """The voicemail access number: mailbox number, then its PIN (always), then the mailbox's
    menu. ``find_mailbox(number)`` is the tenant's mailbox of that number with voicemail on, or
    None. An unknown mailbox is answered as a wrong PIN, so that nobody learns which exist."""
    yield Answer()
    for _attempt in range(PIN_TRIES_PER_CALL):
        yield Play(['enter_mailbox'], barge_in=ALL_DIGITS)
        number = yield CollectDigits(max_digits=12, first_timeout_ms=settings.menu_timeout_ms)
        box = find_mailbox(number.digits) if number.digits else None
        yield Play(['enter_pin'], barge_in=ALL_DIGITS)
        pin = yield CollectDigits(max_digits=_PIN_DIGITS, first_timeout_ms=settings.menu_timeout_ms)
        if box is not None and pin_matches(box.tenant, box.number, pin.digits, box.pin_hash):
            if box.locked:
                yield from _goodbye(['mailbox_locked'])
                return
            yield Language(box.language)
            yield from _main_menu(box, settings)
            return
        if box is not None and pin.digits and not box.locked and _count_failure(box, clock):
            yield from _goodbye(['mailbox_locked'])
            return
        yield Play(['invalid_pin'], flush=True)
    yield from _goodbye([])


def _goodbye(keys):
    yield Play(list(keys) + ['goodbye'])
    yield Hangup()


def _count_failure(box, clock):
    """Record a wrong PIN; lock the mailbox (True) at the limit."""
    failures, lock = after_pin_failure(box.pin_failures(), clock())
    box.set_pin_failures(failures)
    if lock:
        box.lock()
    return lock


def _login(box, clock):
    """Ask for the PIN, at most PIN_TRIES_PER_CALL times: True when it was given."""
    if not box.pin_hash:
        yield from _goodbye(['no_pin'])
        return False
    for attempt in range(PIN_TRIES_PER_CALL):
        yield Play(['enter_pin'], barge_in=ALL_DIGITS, flush=attempt > 0)
        pin = yield CollectDigits(max_digits=_PIN_DIGITS)
        if pin.hung_up:
            return False
        if pin_matches(box.tenant, box.number, pin.digits, box.pin_hash):
            if box.locked:
                yield from _goodbye(['mailbox_locked'])
                return False
            return True
        if pin.digits and not box.locked and _count_failure(box, clock):
            yield from _goodbye(['mailbox_locked'])
            return False
        yield Play(['invalid_pin'])
    yield from _goodbye([])
    return False


def _choice(settings):
    """One key of a menu (the hash key is a choice too, so it ends nothing)."""
    return CollectDigits(max_digits=1, terminator='', first_timeout_ms=settings.menu_timeout_ms)


def _menu(keys, settings):
    """Ask a menu until a key comes: the key, or None after MENU_TIMEOUTS silent askings."""
    for _asked in range(MENU_TIMEOUTS):
        yield Play(keys, barge_in=ALL_DIGITS)
        choice = yield _choice(settings)
        if choice.digits:
            return choice.digits
    return None


def _main_menu(box, settings):
    new, saved = box.counts()
    yield Play(media_prompts.message_counts(new, saved), barge_in=ALL_DIGITS)
    while True:
        key = yield from _menu(['main_menu'], settings)
        if key == '1':
            yield from _listen(box, settings)
        elif key == '0':
            yield from _options(box, settings)
        elif key in ('#', None):
            yield from _goodbye([])
            return
        else:
            yield Play(['invalid_choice'], flush=True)


def _message_prompts(message, position):
    heading = 'new_message' if message['folder'] == 'new' else 'saved_message'
    return [heading] + media_prompts.number(position) + [Recording(message['path'])]


def _listen(box, settings):
    """The messages one after the other, new ones first; after each, its menu."""
    messages = box.messages()
    if not messages:
        yield Play(['no_messages'], barge_in=ALL_DIGITS)
        return
    index, play = 0, True
    while True:
        message = messages[index]
        if play:
            played = yield Play(_message_prompts(message, index + 1), barge_in=ALL_DIGITS)
            if played.hung_up:  # a message the caller hung up on stays new
                return
            if message['folder'] == 'new':
                box.mark_read(message)
                message = messages[index] = dict(message, folder='saved')
        play = True
        key = yield from _menu(['message_menu'], settings)
        if key == '5':
            continue
        if key == '6':
            if index + 1 < len(messages):
                index += 1
            else:
                yield Play(['no_more_messages'], flush=True)
                play = False
        elif key == '4':
            if index > 0:
                index -= 1
            else:
                yield Play(['first_message'], flush=True)
                play = False
        elif key == '7':
            box.delete(message)
            del messages[index]
            yield Play(['message_deleted'], flush=True)
            if not messages:
                yield Play(['no_more_messages'])
                return
            index = min(index, len(messages) - 1)
        elif key == '9':
            box.save(message)
            yield Play(['message_saved'], flush=True)
            if index + 1 < len(messages):
                index += 1
            else:
                yield Play(['no_more_messages'])
                play = False
        elif key in ('*', None):
            return
        else:
            yield Play(['invalid_choice'], flush=True)
            play = False


def _options(box, settings):
    while True:
        key = yield from _menu(['options_menu'], settings)
        if key == '1':
            yield from _record_greeting(box, 'unavailable', settings)
        elif key == '2':
            yield from _record_greeting(box, 'busy', settings)
        elif key == '4':
            yield from _change_pin(box, settings)
        elif key in ('*', None):
            return
        else:
            yield Play(['invalid_choice'], flush=True)


def _record_greeting(box, kind, settings):
    while True:
        yield Play(['record_greeting'], barge_in='#')
        yield Play(['beep'], flush=True)
        path = box.greeting_path(kind)
        recorded = yield Record(path, settings.max_greeting_ms, settings.silence_ms, stop_digits='#')
        if recorded.hung_up or not keeps_message(recorded.duration_ms):
            box.discard_greeting(path)
            if recorded.hung_up:
                return
            yield Play(['invalid_choice'])
            continue
        yield Play([Recording(path)], barge_in=ALL_DIGITS)
        key = yield from _menu(['greeting_menu'], settings)
        if key == '1':
            box.keep_greeting(kind, path, recorded.duration_ms)
            yield Play(['greeting_saved'], flush=True)
            return
        box.discard_greeting(path)
        if key != '2':
            return


def _change_pin(box, settings):
    yield Play(['enter_new_pin'], barge_in=ALL_DIGITS, flush=True)
    first = yield CollectDigits(max_digits=_PIN_DIGITS, first_timeout_ms=settings.menu_timeout_ms)
    yield Play(['repeat_new_pin'], barge_in=ALL_DIGITS)
    second = yield CollectDigits(max_digits=_PIN_DIGITS, first_timeout_ms=settings.menu_timeout_ms)
    if first.digits != second.digits:
        yield Play(['pins_differ'], flush=True)
        return
    refused = box.change_pin(first.digits)
    yield Play(['pin_refused' if refused else 'pin_changed'], flush=True)
