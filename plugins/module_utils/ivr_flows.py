# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IVR menus on the media service (docs/media.md, "IVR menus"): the flow of a menu as a generator
of the steps of media_steps, without PJSIP.

The caller hears the menu's greeting once, then its menu prompt, and presses a key. A key (or,
with direct dial, an extension's internal number) is handed on the way the contract says: the
service places a call through the router with ``X-Voxplane-Origin: ivr;number=<menu>;to=<what>``
(routing.origin_request, routing.origin_header) and bridges the caller to it (the Bridge step).
A key that leads to this menu plays it again; a wrong key and no key are tries; after
``max_tries`` the call goes to ``invalid`` (the last try was a wrong key) or ``no_input`` (it was
none), or, without one, hears goodbye. A destination that cannot be reached (busy, refused, not
answered) is announced and the menu is offered again, as a try.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import routing
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import (
    ALL_DIGITS, Answer, Bridge, CollectDigits, Hangup, Play,
)

# How long the service lets a destination ring before it gives up on it (the router's own ring
# times, a group's fallback, end sooner: this only bounds a call nobody ends).
RING_MS = 180000
ORIGIN = 'ivr'


class MenuSpec(object):
    """An IVR menu as the flow needs it (the store builds it from the directory's ``ivr`` object):
    ``greeting``/``menu`` are audio references (media_steps) or None (``menu`` None: the built-in
    prompt), ``keys`` key -> destination, ``timeout_ms``, ``max_tries``, ``invalid``/``no_input``
    destinations or None, ``direct_dial`` the internal numbers a caller may dial (empty: none)."""

    __slots__ = ('number', 'greeting', 'menu', 'keys', 'timeout_ms', 'max_tries', 'invalid', 'no_input', 'direct_dial')

    def __init__(self, number, keys, greeting=None, menu=None, timeout_ms=5000, max_tries=3, invalid=None,
                 no_input=None, direct_dial=()):
        self.number = number
        self.keys = dict(keys)
        self.greeting = greeting
        self.menu = menu
        self.timeout_ms = timeout_ms
        self.max_tries = max_tries
        self.invalid = invalid or None
        self.no_input = no_input or None
        self.direct_dial = frozenset(direct_dial)


def choose(spec):
    """Collect the caller's choice (a sub-flow): ('key', destination), ('dial', internal number),
    ('invalid', digits), ('timeout', '') or ('hangup', digits). Without direct dial one key is the
    choice. With it, digits are collected while an internal number could still follow (waiting
    ``timeout_ms`` after each): an internal number dialled in full is a target, a key that no
    number continues (or that the caller lets stand for ``timeout_ms``) is the key."""
    digits = ''
    while True:
        result = yield CollectDigits(1, terminator='', first_timeout_ms=spec.timeout_ms, next_timeout_ms=spec.timeout_ms)
        if result.hung_up:
            return 'hangup', digits
        if result.end == 'timeout' or not result.digits:
            if not digits:
                return 'timeout', ''
            break
        digits += result.digits
        if not any(number != digits and number.startswith(digits) for number in spec.direct_dial):
            break
    if len(digits) == 1 and digits in spec.keys:
        return 'key', spec.keys[digits]
    if digits in spec.direct_dial:
        return 'dial', digits
    return 'invalid', digits


def hand_on(spec, destination):
    """Place the call to ``destination`` (a destination as the directory keeps it) through the
    router and bridge the caller to it (a sub-flow); the Bridge's result."""
    to, user = routing.origin_request(destination)
    result = yield Bridge(user, routing.origin_header(ORIGIN, spec.number, to), RING_MS, hold=['ringback'])
    return result


def menu(spec):
    """The flow of the menu ``spec`` (a MenuSpec)."""
    yield Answer()
    if spec.greeting is not None:
        result = yield Play([spec.greeting], barge_in=ALL_DIGITS)
        if result.hung_up:
            return
    tries, last = 0, 'timeout'
    while tries < spec.max_tries:
        result = yield Play([spec.menu if spec.menu is not None else 'menu_choose'], barge_in=ALL_DIGITS)
        if result.hung_up:
            return
        kind, value = yield from choose(spec)
        if kind == 'hangup':
            return
        if kind == 'key' and value == spec.number:
            continue  # a key to this menu: the menu again, no try
        tries += 1
        if kind in ('invalid', 'timeout'):
            last = kind
            if kind == 'invalid' and tries < spec.max_tries:
                result = yield Play(['invalid_choice'], flush=True)
                if result.hung_up:
                    return
            continue
        result = yield from hand_on(spec, value)
        if result.hung_up:
            return
        if result.end == 'ended':
            yield Hangup()
            return
        last = 'unreached'
        result = yield Play(['not_reached'], flush=True)
        if result.hung_up:
            return
    destination = spec.invalid if last == 'invalid' else spec.no_input if last == 'timeout' else None
    if destination is not None:
        result = yield from hand_on(spec, destination)
        if result.hung_up or result.end == 'ended':
            yield Hangup()
            return
    yield Play(['goodbye'])
    yield Hangup()
