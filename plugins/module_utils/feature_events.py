# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Feature-key synchronisation: Broadsoft's ``as-feature-event`` package (Device Feature Key
Synchronization), spoken by Yealink, Poly and Cisco phones.

A phone SUBSCRIBEs to its own address of record with ``Event: as-feature-event``; the server
answers with NOTIFYs (``application/x-as-feature-event+xml``) carrying the extension's DND
state and its forwards (``DoNotDisturbEvent``, ``ForwardingEvent`` per forwarding type), and
again whenever they change, whoever changed them (a playbook, tenant_config, a feature code, the
phone itself). A SUBSCRIBE with a ``SetDoNotDisturb`` or ``SetForwarding`` body is a phone's key
pressed: it becomes the same extension-module request as the feature codes (``routing.
PhoneSetting``), written through ``phone_settings.apply``, the router's one write path.

Pure (standard library only): parsing and building the XML bodies. The subscription itself (its
record, lifetime and NOTIFY headers) is the same for every package: ``subscriptions.py``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from ansible_collections.voxplane.pbx.plugins.module_utils.routing import PhoneSetting

EVENT = 'as-feature-event'
CONTENT_TYPE = 'application/x-as-feature-event+xml'
_NS = 'http://www.ecma-international.org/standards/ecma-323/csta/ed3'
# The package's forwarding types and the extension's forwarding fields.
FORWARDING_TYPES = (('forwardImmediate', 'unconditional'), ('forwardBusy', 'busy'), ('forwardNoAns', 'no_answer'))
_FIELD_OF_TYPE = dict(FORWARDING_TYPES)


class BadRequest(ValueError):
    """A body this package does not understand: answered 400 with the reason."""


def _local(tag):
    return tag.rsplit('}', 1)[-1]


def _child(root, name):
    for element in root:
        if _local(element.tag) == name:
            return (element.text or '').strip()
    return None


def _boolean(text, what):
    if text is None:
        raise BadRequest('%s is missing' % what)
    if text.lower() not in ('true', 'false'):
        raise BadRequest('%s is %r, not true or false' % (what, text))
    return text.lower() == 'true'


def setting_of(body, tenant, extension):
    """The PhoneSetting a SUBSCRIBE body asks for, or None for a body-less SUBSCRIBE (a plain
    subscription or a refresh). BadRequest for XML this package does not define."""
    if not body or not body.strip():
        return None
    try:
        root = ET.fromstring(body.strip().encode('utf-8') if isinstance(body, str) else body)
    except ET.ParseError as exc:
        raise BadRequest('the body is not well-formed XML (%s)' % exc)
    kind = _local(root.tag)
    if kind == 'SetDoNotDisturb':
        on = _boolean(_child(root, 'doNotDisturbOn'), 'doNotDisturbOn')
        return PhoneSetting(tenant, extension, {'dnd': on}, 'Do Not Disturb %s' % ('On' if on else 'Off'))
    if kind == 'SetForwarding':
        forwarding_type = _child(root, 'forwardingType')
        field = _FIELD_OF_TYPE.get(forwarding_type)
        if field is None:
            raise BadRequest('forwardingType %r is none of %s' % (forwarding_type, ', '.join(_FIELD_OF_TYPE)))
        on = _boolean(_child(root, 'activateForward'), 'activateForward')
        target = _child(root, 'forwardDN') or ''
        if on and not target:
            raise BadRequest('activateForward true needs a forwardDN')
        return PhoneSetting(tenant, extension, {'forwarding': {field: target if on else ''}},
                            '%s %s' % (forwarding_type, 'to %s' % target if on else 'off'))
    raise BadRequest('%s is not a request of the as-feature-event package' % kind)


def state_of(extension):
    """What the phone is told: DND and each forward of the extension (a dict of plain values)."""
    forwarding = extension.get('forwarding') or {}
    return dict(dnd=bool(extension.get('dnd')),
                forwards=[[name, forwarding.get(field)] for name, field in FORWARDING_TYPES])


def bodies(device, state):
    """The NOTIFY bodies for a state: DND first, then one ForwardingEvent per forwarding type."""
    device = escape(device)
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<DoNotDisturbEvent xmlns="%s"><device>%s</device>'
           '<doNotDisturbOn>%s</doNotDisturbOn></DoNotDisturbEvent>' % (_NS, device, 'true' if state['dnd'] else 'false')]
    for name, target in state['forwards']:
        out.append('<?xml version="1.0" encoding="UTF-8"?>\n<ForwardingEvent xmlns="%s"><device>%s</device>'
                   '<forwardingType>%s</forwardingType><forwardStatus>%s</forwardStatus>'
                   '<forwardTo>%s</forwardTo></ForwardingEvent>'
                   % (_NS, device, name, 'true' if target else 'false', escape(target or '')))
    return out
