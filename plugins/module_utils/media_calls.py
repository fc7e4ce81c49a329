# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the media service does with an INVITE (docs/media.md, "How a call reaches it").

``read_invite`` takes the INVITE as it came off the wire and returns a ``MediaRequest``: the
request URI's user and domain, the service and parameters of ``X-Voxplane-Media``, and the
caller (P-Asserted-Identity, else From). ``choose_flow`` turns a request and the tenant its
domain names into the flow that answers it (media_steps), or refuses it with a ``Refusal``
(the SIP answer, before anything is answered). The announcement flow lives here; voicemail's
in voicemail_flows.py.

A tenant, as the flows see it, is a port of the service (media/voxplane_media_store.py):
  name, language
  mailbox(number) -> a mailbox (voicemail_flows.py) of an extension with voicemail on, or None
  announcement(name) -> None when the tenant has no such announcement, else its audio
                        (a StoredAudio, or False when it has none to play)
  menu(number) -> the ivr_flows.MenuSpec of the tenant's IVR menu, or None
  room(number) -> the conference_flows.RoomSpec of the tenant's conference room, or None
  queue(number) -> (queue_flows.QueueSpec, the queue's shared queue_flows.QueueState), or None
  reload() -> the same tenant's port as the directory has it now (a waiting queue caller asks for its
              queue again), or None when it cannot be read
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from urllib.parse import unquote

from ansible_collections.voxplane.pbx.plugins.module_utils import conference_flows, ivr_flows, queue_flows, voicemail_flows
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import Answer, EarlyMedia, Hangup, Play

MEDIA_HEADER = 'X-Voxplane-Media'
SERVICES = ('voicemail', 'mailbox', 'announcement', 'ivr', 'conference', 'queue')
DIVERSION_REASONS = ('unavailable', 'user-busy', 'no-answer', 'unconditional', 'do-not-disturb')
# An announcement with a destination after it: played as early media, then this answer tells the
# router to go on with the destination (it reads the Reason header's text).
ANNOUNCEMENT_PLAYED = (480, 'Temporarily Unavailable', (('Reason', 'SIP;cause=480;text="announcement played"'),))
# Compact header names (RFC 3261 7.3.3) of the headers read here.
_COMPACT = {'f': 'from', 'i': 'call-id'}
_NAME_ADDR = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>')


class Refusal(Exception):
    """The final answer to an INVITE the service will not take (code, reason phrase)."""

    def __init__(self, code, reason):
        super(Refusal, self).__init__('%d %s' % (code, reason))
        self.code = code
        self.reason = reason


class MediaRequest(object):
    """An INVITE as the service reads it."""

    __slots__ = ('user', 'domain', 'service', 'params', 'caller', 'call_id')

    def __init__(self, user, domain, service, params, caller, call_id=''):
        self.user = user
        self.domain = domain
        self.service = service
        self.params = params
        self.caller = caller
        self.call_id = call_id

    def __repr__(self):
        return 'MediaRequest(%s %s@%s %r from %r)' % (self.service, self.user, self.domain, self.params, self.caller)

    def label(self):
        """How the service's log names the call."""
        return 'call %s (%s %s@%s%s, from %s)' % (
            self.call_id, self.service, self.user, self.domain,
            ''.join(';%s=%s' % item for item in sorted(self.params.items())), self.caller.number or 'anonymous')


def _headers(text):
    """(request line, {lower-case header name: [values]}) of a SIP message's text."""
    head = re.split(r'\r?\n\r?\n', text, 1)[0]
    lines = re.split(r'\r?\n', head)
    unfolded = []
    for line in lines[1:]:
        if line[:1] in (' ', '\t') and unfolded:
            unfolded[-1] += ' ' + line.strip()
        elif line:
            unfolded.append(line)
    headers = {}
    for line in unfolded:
        name, sep, value = line.partition(':')
        if sep:
            name = name.strip().lower()
            headers.setdefault(_COMPACT.get(name, name), []).append(value.strip())
    return lines[0], headers


def split_uri(uri):
    """(user, host) of a sip:/sips:/tel: URI (user percent-decoded, host lower-case)."""
    uri = uri.strip()
    scheme, sep, rest = uri.partition(':')
    if not sep or scheme.lower() not in ('sip', 'sips', 'tel'):
        raise ValueError('not a SIP URI: %r' % uri)
    rest = rest.split(';', 1)[0].split('?', 1)[0]
    if scheme.lower() == 'tel':
        return unquote(rest), ''
    user, at, host = rest.rpartition('@')
    if not at:
        user, host = '', rest
    host = host.lower()
    if host.startswith('['):
        host = host[:host.index(']') + 1]
    else:
        host = host.split(':', 1)[0]
    return unquote(user), host


def name_addr(value):
    """(display name or None, URI) of a From/P-Asserted-Identity value (its first entry)."""
    match = _NAME_ADDR.match(value)
    if match:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        name = re.sub(r'\\(.)', r'\1', name).strip() or None
        return name, match.group(3)
    return None, value.split(',', 1)[0].split(';', 1)[0].strip()


def caller_of(headers):
    """The caller: who P-Asserted-Identity names, else From; anonymous stays anonymous."""
    for header in ('p-asserted-identity', 'from'):
        for value in headers.get(header, ()):
            try:
                name, uri = name_addr(value)
                user, host = split_uri(uri)
            except ValueError:
                continue
            if user.lower() == 'anonymous' or host == 'anonymous.invalid':
                return voicemail_flows.Caller()
            if name and name.lower() == 'anonymous':
                name = None
            return voicemail_flows.Caller(user or None, name)
    return voicemail_flows.Caller()


def media_header(value):
    """(service, {parameter: value}) of an X-Voxplane-Media value; Refusal 400 when it is none."""
    parts = [p.strip() for p in value.split(';')]
    service = parts[0].lower()
    if service not in SERVICES:
        raise Refusal(400, 'Unknown Media Service')
    params = {}
    for part in parts[1:]:
        if part:
            name, _sep, val = part.partition('=')
            params[name.strip().lower()] = unquote(val.strip())
    return service, params


def read_invite(text):
    """The MediaRequest of an INVITE's text; Refusal 400 when it is not one the service takes."""
    request_line, headers = _headers(text)
    parts = request_line.split()
    if len(parts) != 3 or parts[0] != 'INVITE':
        raise Refusal(400, 'Bad Request Line')
    try:
        user, domain = split_uri(parts[1])
    except ValueError:
        raise Refusal(416, 'Unsupported URI Scheme')
    values = headers.get(MEDIA_HEADER.lower())
    if not values:
        raise Refusal(400, 'Missing %s' % MEDIA_HEADER)
    if len(values) > 1:
        raise Refusal(400, 'More Than One %s' % MEDIA_HEADER)
    service, params = media_header(values[0])
    return MediaRequest(user, domain, service, params, caller_of(headers), (headers.get('call-id') or [''])[0])


def identity_headers(text):
    """The headers that carry the caller's identity on a call the service places for this INVITE
    (docs/media.md: P-Asserted-Identity as received, else the From as one; Privacy as received)."""
    _line, headers = _headers(text)
    identity = (headers.get('p-asserted-identity') or headers.get('from') or [None])[0]
    found = []
    if identity:
        # A From's tag is the dialog's, not the identity's.
        if '<' in identity:
            identity = identity[:identity.index('>', identity.index('<')) + 1] if '>' in identity else identity
        else:
            identity = re.sub(r';\s*tag=[^;]*', '', identity)
        found.append(('P-Asserted-Identity', identity))
    for value in headers.get('privacy', ()):
        found.append(('Privacy', value))
    return found


def _flag(params, name, default):
    value = params.get(name, default)
    if value not in ('yes', 'no'):
        raise Refusal(400, 'Bad Parameter %s' % name)
    return value == 'yes'


def _queue_now(tenant, number):
    """The callable that reads the queue ``number`` of ``tenant`` again: its QueueSpec now, or None."""
    def current():
        now = tenant.reload()
        found = now.queue(number) if now is not None else None
        return found[0] if found is not None else None
    return current


def choose_flow(request, tenant, settings, clock):
    """(flow, language) that answers ``request`` for ``tenant`` (the tenant port of the request
    URI's domain, None when no tenant has it); Refusal when there is nothing to answer (404 for
    a domain, mailbox or announcement the tenant does not have: no tenant reaches another's,
    whatever it dials)."""
    if tenant is None:
        raise Refusal(404, 'No Such Domain')
    params = request.params
    if request.service == 'voicemail':
        reason = params.get('reason', 'unavailable')
        if reason not in DIVERSION_REASONS:
            raise Refusal(400, 'Bad Parameter reason')
        box = _mailbox(tenant, params.get('mailbox'))
        return voicemail_flows.leave_message(box, request.caller, reason, settings), box.language
    if request.service == 'mailbox':
        if 'mailbox' not in params:
            if not _flag(params, 'pin', 'yes'):
                raise Refusal(400, 'Bad Parameter pin')
            return voicemail_flows.access_menu(tenant.mailbox, settings, clock), tenant.language
        box = _mailbox(tenant, params['mailbox'])
        return voicemail_flows.mailbox_menu(box, _flag(params, 'pin', 'yes'), settings, clock), box.language
    if request.service in ('ivr', 'conference', 'queue'):
        number = params.get('number')
        if not number:
            raise Refusal(400, 'Missing Parameter number')
        if request.service == 'ivr':
            spec = tenant.menu(number)
            flow = ivr_flows.menu(spec) if spec is not None else None
        elif request.service == 'conference':
            spec = tenant.room(number)
            flow = conference_flows.enter(spec) if spec is not None else None
        else:
            found = tenant.queue(number)
            flow = queue_flows.wait_in_queue(found[0], found[1], clock, current=_queue_now(tenant, number)) if found is not None else None
        if flow is None:
            raise Refusal(404, 'No Such %s' % {'ivr': 'Menu', 'conference': 'Room', 'queue': 'Queue'}[request.service])
        return flow, tenant.language
    name = params.get('name')
    if not name:
        raise Refusal(400, 'Missing Parameter name')
    audio = tenant.announcement(name)
    if audio is None:
        raise Refusal(404, 'No Such Announcement')
    return announcement(audio or None, _flag(params, 'then', 'no')), tenant.language


def _mailbox(tenant, number):
    if not number:
        raise Refusal(400, 'Missing Parameter mailbox')
    box = tenant.mailbox(number)
    if box is None:
        raise Refusal(404, 'No Such Mailbox')
    return box


def announcement(audio, then):
    """Play an announcement. ``then``: as early media, and answer ANNOUNCEMENT_PLAYED after it so
    that the router goes on with the announcement's next destination; else answer, play, hang up."""
    yield EarlyMedia() if then else Answer()
    if audio is not None:
        yield Play([audio])
    if then:
        yield Hangup(*ANNOUNCEMENT_PLAYED)
    else:
        yield Hangup()
