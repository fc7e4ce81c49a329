# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drive the media service's flows without PJSIP: a scripted caller that answers each step the
way the engine would (keys it presses, how its recordings end, when it hangs up), and a mailbox
and tenant held in memory (the ports of voicemail.py and media_calls.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import (
    DONE, HUNG_UP, Answer, Bridge, CollectDigits, EarlyMedia, Hangup, Language, Play, Prompt, Record, StepResult,
)

TENANT = 'acme'


class Caller(object):
    """Answers the steps of a flow like a caller on the phone: ``keys`` are the entries it types,
    one per CollectDigits (a string of digits, 'timeout' for none); ``recordings`` the (end,
    duration_ms) of each Record; ``bridges`` how each call a Bridge places ends ((end, code):
    ('ended', 200) answered and then hung up by the other side, ('failed', 486), ('timeout', 0),
    ('hangup', 200) the caller hangs up while they talk); it hangs up when it runs out of keys (or at
    ``hang_up_at``, the number of steps after which it is gone)."""

    def __init__(self, keys=(), recordings=(), barge=None, hang_up_at=None, bridges=()):
        self.keys = list(keys)
        self.recordings = list(recordings)
        self.bridges = list(bridges)
        self.barge = dict(barge or {})
        self.hang_up_at = hang_up_at
        self.steps = []
        self.gone = False

    def answer(self, step):
        self.steps.append(step)
        if self.hang_up_at is not None and len(self.steps) > self.hang_up_at:
            self.gone = True
        if self.gone:
            return HUNG_UP
        if isinstance(step, (Answer, EarlyMedia, Language, Hangup)):
            return DONE
        if isinstance(step, Play):
            return DONE
        if isinstance(step, Record):
            end, duration = self.recordings.pop(0)
            if end == 'hangup':
                self.gone = True
            return StepResult(end=end, duration_ms=duration, hung_up=end == 'hangup')
        if isinstance(step, Bridge):
            end, code = self.bridges.pop(0) if self.bridges else ('ended', 200)
            if end == 'hangup':
                self.gone = True
            return StepResult(end=end, code=code, hung_up=end == 'hangup')
        if isinstance(step, CollectDigits):
            if not self.keys:
                self.gone = True
                return StepResult(end='hangup', hung_up=True)
            entry = self.keys.pop(0)
            if entry == 'timeout':
                return StepResult(end='timeout')
            return StepResult(end='terminator' if step.terminator else 'max', digits=entry)
        raise AssertionError('unexpected step %r' % (step,))

    def played(self):
        """Every prompt key the caller heard, in order (references other than Prompt as they are)."""
        keys = []
        for step in self.steps:
            if isinstance(step, Play):
                keys.extend(p.key if isinstance(p, Prompt) else p for p in step.prompts)
        return keys

    def bridged(self):
        """(Request-URI user, X-Voxplane-Origin) of every call a Bridge placed, in order."""
        return [(s.user, s.origin) for s in self.steps if isinstance(s, Bridge)]

    def hangup(self):
        hangups = [s for s in self.steps if isinstance(s, Hangup)]
        return hangups[-1] if hangups else None


def run(flow, caller):
    """Run ``flow`` against ``caller`` as the engine would: a step after a hang-up closes it."""
    result = None
    try:
        step = next(flow)
        while True:
            if caller.gone and not isinstance(step, Language):
                flow.close()
                caller.steps.append(step)
                return caller
            result = caller.answer(step)
            if isinstance(step, Hangup):
                flow.close()
                return caller
            step = flow.send(result)
    except StopIteration:
        return caller


class Mailbox(object):
    """voicemail.py's mailbox port, in memory."""

    def __init__(self, number='10', name='Anna Schmidt', language='en', pin='4711', locked=False, messages=()):
        self.tenant = TENANT
        self.number = number
        self.name = name
        self.language = language
        self.pin_hash = rules.pin_hash(TENANT, number, pin) if pin else None
        self.locked = locked
        self.greetings = {}
        self.messages_ = [dict(m) for m in messages]
        self.failures = []
        self.log = []
        self.recordings = 0

    def greeting(self, kind):
        return self.greetings.get(kind)

    def counts(self):
        return (sum(1 for m in self.messages_ if m['folder'] == 'new'),
                sum(1 for m in self.messages_ if m['folder'] == 'saved'))

    def messages(self):
        return ([dict(m) for m in self.messages_ if m['folder'] == 'new']
                + [dict(m) for m in self.messages_ if m['folder'] == 'saved'])

    def begin_message(self, caller, reason):
        self.recordings += 1
        self.log.append(('begin', caller, reason))
        return '/msg/%d.wav' % self.recordings

    def keep_message(self, path, duration_ms):
        self.log.append(('keep', path, duration_ms))
        self.messages_.append({'id': len(self.messages_) + 1, 'folder': 'new', 'path': path})

    def discard_message(self, path):
        self.log.append(('discard', path))

    def _find(self, message):
        return [m for m in self.messages_ if m['id'] == message['id']][0]

    def mark_read(self, message):
        self.log.append(('read', message['id']))
        self._find(message)['folder'] = 'saved'

    def save(self, message):
        self.log.append(('save', message['id']))
        self._find(message)['folder'] = 'saved'

    def delete(self, message):
        self.log.append(('delete', message['id']))
        self.messages_.remove(self._find(message))

    def greeting_path(self, kind):
        return '/greeting/%s.wav' % kind

    def keep_greeting(self, kind, path, duration_ms):
        self.log.append(('greeting', kind, path, duration_ms))
        self.greetings[kind] = path

    def discard_greeting(self, path):
        self.log.append(('discard greeting', path))

    def pin_failures(self):
        return list(self.failures)

    def set_pin_failures(self, times):
        self.failures = list(times)

    def lock(self):
        self.log.append(('lock',))
        self.locked = True

    def change_pin(self, pin):
        try:
            rules.voicemail_pin(pin)
        except RuleError as e:
            return e.message
        self.pin_hash = rules.pin_hash(TENANT, self.number, pin)
        self.log.append(('pin',))
        return None


class Tenant(object):
    """media_calls.py's tenant port, in memory."""

    def __init__(self, mailboxes=(), announcements=None, language='de'):
        self.name = TENANT
        self.language = language
        self.mailboxes = dict((box.number, box) for box in mailboxes)
        self.announcements = dict(announcements or {})

    def mailbox(self, number):
        return self.mailboxes.get(number)

    def announcement(self, name):
        return self.announcements.get(name)


def message(id_, folder='new'):
    return {'id': id_, 'folder': folder, 'path': '/msg/old-%d.wav' % id_}
