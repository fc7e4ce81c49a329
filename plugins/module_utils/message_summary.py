# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The message-waiting lamp: the ``message-summary`` event package (RFC 3842).

A phone SUBSCRIBEs with ``Event: message-summary`` to its own account (``sip:<username>@<domain>``)
or to its mailbox, the voicemail feature code (``sip:*86@<domain>``, what Snom and Yealink's
"subscribe to the voicemail number" send); either way the box is its own extension's. The server
answers with NOTIFYs of ``application/simple-message-summary``::

    Messages-Waiting: yes
    Message-Account: sip:*86@acme.example
    Voice-Message: 1/0 (0/0)

(new/old messages, then urgent new/old, which the PBX does not have) at once and whenever the
box's counts change. A phone whose provisioned file does not subscribe but waits for the server
(``catalogue.MWI``: the vendor families whose files set unsolicited MWI) gets the same body in an
out-of-dialog NOTIFY, at every registered contact of its account, when its box changes.

Pure (standard library only). The counts come from the directory (``store.Transaction
.mailboxes_changed``, ``mailbox_counts``: folders ``new`` and ``saved``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import catalogue
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import VOICEMAIL_CODE

EVENT = 'message-summary'
CONTENT_TYPE = 'application/simple-message-summary'


def account_uri(domain):
    """Where the phone calls its messages (Message-Account): the voicemail feature code."""
    return 'sip:%s@%s' % (VOICEMAIL_CODE, domain)


def may_subscribe(uri_user, username):
    """Whether an account may subscribe to this Request-URI/To user (already unescaped): its own
    account or its own mailbox (the voicemail feature code); nobody else's."""
    return uri_user in (username, VOICEMAIL_CODE)


def state_of(counts):
    """What the phone is told, from a mailbox's counts ({'new': n, 'saved': n}; None: empty)."""
    counts = counts or {}
    return dict(new=int(counts.get('new') or 0), old=int(counts.get('saved') or 0))


def body(state, domain):
    """The application/simple-message-summary body of a state."""
    return ('Messages-Waiting: %s\r\nMessage-Account: %s\r\nVoice-Message: %d/%d (0/0)\r\n'
            % ('yes' if state['new'] else 'no', account_uri(domain), state['new'], state['old']))


def parse(text):
    """{'waiting': bool, 'account': uri, 'new': n, 'old': n} of a body (a phone's reading of it);
    ValueError when it is none."""
    fields = {}
    for line in (text or '').replace('\r\n', '\n').split('\n'):
        name, sep, value = line.partition(':')
        if sep:
            fields[name.strip().lower()] = value.strip()
    if fields.get('messages-waiting') not in ('yes', 'no'):
        raise ValueError('Messages-Waiting is %r' % fields.get('messages-waiting'))
    new, old = 0, 0
    if 'voice-message' in fields:
        counts = fields['voice-message'].split('(', 1)[0].strip()
        new, _sep, old = counts.partition('/')
        new, old = int(new), int(old)
    return dict(waiting=fields['messages-waiting'] == 'yes', account=fields.get('message-account'), new=new, old=old)


def unsolicited_accounts(state):
    """{internal number: [usernames]} of the tenant's SIP accounts that are a line of a device
    whose vendor family's provisioned file asks for unsolicited MWI (catalogue.MWI), by the
    extension that owns the account (its mailbox)."""
    accounts = state.sip_accounts()
    wanted = {}
    for device in state.objects('device').values():
        model = catalogue.DEVICE_MODELS.get(device.get('model')) or {}
        if catalogue.MWI.get(model.get('vendor')) != catalogue.MWI_UNSOLICITED:
            continue
        for username in device.get('lines') or ():
            owner = accounts.get(username)
            if owner is not None and username not in wanted.setdefault(owner[0], []):
                wanted[owner[0]].append(username)
    return dict((extension, sorted(users)) for extension, users in wanted.items())


def unsolicited_headers(username, domain, from_tag, call_id):
    """The headers of an out-of-dialog NOTIFY to an account's registered contact: from the
    mailbox to the account, a dialog of its own (new Call-ID and From tag, CSeq 1)."""
    return ('From: <%s>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 NOTIFY\r\nEvent: %s\r\n'
            'Subscription-State: active\r\nContact: <sip:%s>\r\nContent-Type: %s\r\n'
            % (account_uri(domain), from_tag, username, domain, call_id, EVENT, domain, CONTENT_TYPE))
