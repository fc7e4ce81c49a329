# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SIP event subscriptions the router serves (SUBSCRIBE/NOTIFY, RFC 6665), whatever the
package: the record kept per subscription, its key, a SUBSCRIBE's lifetime and the headers of
a NOTIFY in the subscription's dialog.

The packages are ``feature_events`` (``as-feature-event``: DND and forwarding keys) and
``message_summary`` (``message-summary``, RFC 3842: the message-waiting lamp). ``PACKAGES``
names them; the KEMI side (kemi/voxplane_subscriptions.py) keeps every subscription of both in
one Kamailio htable (persisted in the usrloc database, so that a restart keeps them) and
NOTIFYs them from one rtimer tick.

Pure (standard library only).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.voxplane.pbx.plugins.module_utils import feature_events, message_summary

# Event package -> its Content-Type. Any other package is answered 489 with Allow-Events.
PACKAGES = {feature_events.EVENT: feature_events.CONTENT_TYPE,
            message_summary.EVENT: message_summary.CONTENT_TYPE}
ALLOW_EVENTS = ', '.join(sorted(PACKAGES))

DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60

# Keys of the subscription table: one per subscription (package and Call-ID), and the router's
# own entries under another prefix (the voicemail serial last told: message_summary).
_KEY_PREFIX = 'sub:'


def event_of(header):
    """The package an Event header names (lower case, without parameters); '' for none."""
    return (header or '').split(';', 1)[0].strip().lower()


def key(event, call_id):
    return '%s%s:%s' % (_KEY_PREFIX, event, call_id)


def is_subscription_key(name):
    return (name or '').startswith(_KEY_PREFIX)


def expires_of(header):
    """The subscription's lifetime from the SUBSCRIBE's Expires (default 3600, at least 60; 0 ends it)."""
    try:
        value = int(str(header).strip())
    except (TypeError, ValueError):
        return DEFAULT_EXPIRES
    if value <= 0:
        return 0
    return max(MIN_EXPIRES, min(value, DEFAULT_EXPIRES))


def subscription(event, tenant, domain, extension, username, call_id, phone_tag, our_tag, contact, next_hop, socket,
                 expires_at, resource=None, cseq=1, sent=None):
    """The record kept per subscription (JSON in the htable). ``resource`` is the URI the phone
    subscribed to (the SUBSCRIBE's To URI: its account, or its mailbox for message-summary), the
    From of every NOTIFY; ``sent`` the state the phone was last told (None: tell it now)."""
    return dict(event=event, tenant=tenant, domain=domain, extension=extension, username=username, call_id=call_id,
                phone_tag=phone_tag, our_tag=our_tag, contact=contact, next_hop=next_hop, socket=socket,
                expires_at=expires_at, resource=resource or 'sip:%s@%s' % (username, domain), cseq=cseq, sent=sent)


def dumps(record):
    return json.dumps(record, sort_keys=True, separators=(',', ':'))


def loads(text):
    """A stored record, or None for text that is none (a damaged row of the persisted table)."""
    try:
        record = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(record, dict) or not all(k in record for k in ('event', 'tenant', 'username', 'call_id')):
        return None
    return record


def notify_headers(record, state_expires):
    """The headers of one NOTIFY in the subscription's dialog (tm.t_uac_send takes From/To tags,
    Call-ID and CSeq from them), CSeq the record's current one."""
    subscription_state = 'active;expires=%d' % state_expires if state_expires > 0 else 'terminated;reason=timeout'
    return ('From: <%s>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d NOTIFY\r\nEvent: %s\r\n'
            'Subscription-State: %s\r\nContact: <sip:%s>\r\nContent-Type: %s\r\n'
            % (record['resource'], record['our_tag'], record['username'], record['domain'], record['phone_tag'],
               record['call_id'], record['cseq'], record['event'], subscription_state, record['domain'],
               PACKAGES[record['event']]))
