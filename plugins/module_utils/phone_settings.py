# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router's one write path: settings a phone changes with a feature code.

The routing core turns a dialled feature code into a ``routing.PhoneSetting`` (the
options of the extension module for the caller's own extension, or the caller's login in
queues: ``*44``/``*45``, written to those queues); ``apply()`` writes it
through the same reconcile engine, rules and integrity checks as the modules, in one
write transaction, which bumps the directory generation. So a DND set by phone is
what ``tenant_info`` reports, and a playbook that leaves ``dnd`` out keeps it (a field a
request leaves out keeps its stored value; whoever sets it last wins).

Everything else in the router only reads the in-memory snapshot.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sqlite3

from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError, ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.model import QUEUE
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile

# Why a setting was refused -> the SIP answer to the feature-code call.
_ANSWER_FOR_RULE = {
    'reference': 404,            # forward to an internal number that does not exist
    'international_calls': 403,  # forward abroad without the permission
    'forward_loop': 482,         # forward to oneself
    'voicemail_disabled': 403,
}
_MALFORMED = 484  # not an internal number nor a phone number of the dial plan


class Outcome(object):
    """What the phone is told (code, reason) and the generation the change committed."""

    __slots__ = ('code', 'reason', 'generation', 'changed')

    def __init__(self, code, reason, generation=None, changed=False):
        self.code = code
        self.reason = reason
        self.generation = generation
        self.changed = changed

    def __repr__(self):
        return 'Outcome(%d %s, generation %s)' % (self.code, self.reason, self.generation)


def apply(directory, setting):
    """Write ``setting`` (a routing.PhoneSetting) to ``directory`` (store.Directory).

    Success is answered ``603 <what is now set>``: the feature code needs no conversation,
    and a final non-2xx answer ends the call attempt without a session. A refused setting
    changes nothing and is answered with the field and rule in the reason phrase."""
    try:
        with directory.transaction(write=True, create=False) as txn:
            if setting.kind == QUEUE:
                requests = _queue_logins(txn, setting)
                if isinstance(requests, Outcome):
                    return requests
            else:
                requests = {setting.extension: setting.request}
            # create=False: an extension removed since this worker's snapshot is not re-created.
            result = reconcile(txn, setting.tenant, None, {setting.kind: requests}, create=False)
        return Outcome(603, setting.done, txn.committed_generation, result.changed)
    except ValidationFailed as failed:
        first = failed.violations[0]
        code = _ANSWER_FOR_RULE.get(first.rule, _MALFORMED)
        return Outcome(code, '%s: %s [%s]' % (first.field, _reason_phrase(first.message), first.rule))
    except (DirectoryError, sqlite3.Error) as exc:  # sqlite3: e.g. a playbook held the write lock too long
        # The phone hears why, not where: StorageError.reason is the text after the path.
        return Outcome(503, _reason_phrase('Directory unavailable: %s' % getattr(exc, 'reason', exc)))


def _queue_logins(txn, setting):
    """The requests that log the caller in to (out of) the queues of a QUEUE setting (*44, *45): each queue's
    members as stored, the caller's ``logged_in`` changed (the members list replaces the stored one, so it is
    read in the write transaction: a playbook's change since the router's snapshot is kept). An Outcome when a
    queue is gone or the caller no longer one of its members."""
    state = txn.load_tenant(setting.tenant)
    requests = {}
    for key in setting.keys:
        queue = state.get(QUEUE, key)
        if queue is None:
            return Outcome(404, 'No queue %s' % key)
        if not any(m['extension'] == setting.extension for m in queue['members']):
            return Outcome(403, 'Not a member of queue %s' % key)
        requests[key] = {'members': [dict(m, logged_in=setting.request['logged_in']) if m['extension'] == setting.extension
                                     else dict(m) for m in queue['members']]}
    return requests


def _reason_phrase(text, limit=80):
    """Text for a SIP reason phrase: one line of printable text, short enough for a phone's display."""
    text = ''.join(c if c.isprintable() else ' ' for c in text)
    return text if len(text) <= limit else text[:limit - 3] + '...'
