# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desk phones as they are now: registration status read from the running Kamailio, and the
remote actions (resync, restart) sent to a device's registered contacts.

Standard library only; Kamailio is asked through ``kamailio_rpc`` (any object with
``call(method, *params)``). The directory says which SIP accounts to look at; Kamailio's
usrloc says which of them are registered, from where, with which phone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import catalogue
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError
from ansible_collections.voxplane.pbx.plugins.module_utils.kamailio_rpc import registration, send_notify
from ansible_collections.voxplane.pbx.plugins.module_utils.model import DEVICE


def registrations(state, kind, keys, rpc):
    """One entry per SIP account of the given devices (their lines, in order) or extensions
    (their accounts): the object's key, the account, registered or not and the contacts."""
    domain = state.tenant['sip_domain']
    key_name = 'mac' if kind == DEVICE else 'internal_number'
    report = []
    for key in keys:
        obj = state.get(kind, key)
        usernames = obj['lines'] if kind == DEVICE else [a['username'] for a in obj['sip_accounts']]
        for username in usernames:
            entry = {key_name: key}
            entry.update(registration(rpc, username, domain))
            report.append(entry)
    return report


def remote_event(device, action):
    """The Event header value of ``action`` for this device's vendor; RuleError when the vendor
    has no remote control."""
    vendor = catalogue.DEVICE_MODELS[device['model']]['vendor']
    events = catalogue.REMOTE_EVENTS.get(vendor)
    if not events:
        raise RuleError('action', 'remote_control', '%s phones (%s) cannot be controlled remotely; vendors that can: %s'
                        % (vendor, device['model'], ', '.join(sorted(catalogue.REMOTE_EVENTS))))
    return events[action]


def device_action(state, mac, action, rpc, send=True):
    """Send ``action`` (resync, restart) to every registered contact of the device's lines.
    Returns (event, contacts): one dict per contact with the line, the contact and, when sent,
    the phone's reply (code, reason, acknowledged). With send=False nothing is sent."""
    device = state.get(DEVICE, mac)
    event = remote_event(device, action)
    domain = state.tenant['sip_domain']
    targets = []
    seen = set()
    for line in registrations(state, DEVICE, [mac], rpc):
        for contact in line['contacts']:
            # A phone registers each line from the same address: one NOTIFY per contact URI.
            if contact['contact'] in seen:
                continue
            seen.add(contact['contact'])
            target = dict(username=line['username'], contact=contact['contact'], source=contact['source'],
                          sent=False, code=None, reason=None, acknowledged=False)
            if send:
                code, reason = send_notify(rpc, contact, 'sip:provisioning@%s' % domain,
                                           'sip:%s@%s' % (line['username'], domain), event)
                target.update(sent=True, code=code, reason=reason, acknowledged=code is not None and 200 <= code < 300)
            targets.append(target)
    return event, targets
