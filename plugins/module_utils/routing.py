# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The routing core: what to do with a SIP request, decided from a Snapshot.

Pure functions, no Kamailio: the KEMI adapter (kemi/voxplane_kemi.py) turns
SIP messages into these calls and the returned plans into KSR calls; the
route simulator and the unit tests call the very same functions. Decision
order and response codes are documented in docs/routing.md.

A plan is one of:
  Reject(code, reason)          reply and stop
  Ring(...)                     fork to every registered contact of the AORs in parallel (plus
                                the mobile through the trunk for single number reach); on
                                failure ask ``after_failure`` with the context
  Relay(uri, ...)               send to a trunk (outbound, emergency, outside forwards) or to
                                the media service (voicemail, the mailbox menus, announcements;
                                docs/media.md)
  PhoneSetting(...)             a feature code: change the caller's own settings (or its login in
                                queues) through phone_settings.apply(), then answer

Three entry points decide a new call: ``route_from_account`` (an authenticated SIP account),
``route_inbound`` (a trusted trunk) and ``route_from_media`` (a call the PBX's media service places
for an IVR menu or a queue, X-Voxplane-Origin; docs/media.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from urllib.parse import unquote

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION, GROUP, IVR, MEDIA_KINDS, QUEUE

# Forwarding chains stop after this many hops (and never revisit a target).
MAX_FORWARD_HOPS = 5
# Seconds a forward target that is no extension rings: an outside number the call is forwarded
# to, and the media server (voicemail). The transaction's INVITE timer is set per leg, so the
# forwarding extension's shorter ring time never cuts this leg off (docs/routing.md).
OUTSIDE_RING_TIME = 30
ANONYMOUS_URI = 'sip:anonymous@anonymous.invalid'
# The original caller (Leg.origin) of a call from the trunk: its calling number as received, known
# per call only (``calling_number``), while the decision is shared by every call to that number.
CALLING_NUMBER = 'calling-number'

# The feature code with which an extension reaches its own voicemail box (docs/media.md).
VOICEMAIL_CODE = '*86'
# The header that tells the media service what to do with a call (docs/media.md). The router sets
# it on every leg to the media service; whatever a caller sent under that name is dropped.
MEDIA_HEADER = 'X-Voxplane-Media'
# The headers of a call the media service places through the router for a menu or a queue (docs/media.md):
# what it is for (honoured only from the media service's addresses; removed from anyone else's request), and
# the Call-ID of the caller's call it belongs to.
ORIGIN_HEADER = 'X-Voxplane-Origin'
CALL_HEADER = 'X-Voxplane-Call'
# X-Voxplane-Origin: <service>;number=<internal number>;to=<what>
ORIGIN_SERVICES = (IVR, QUEUE)
ORIGIN_TARGETS = ('target', 'member', 'voicemail', 'voicemail-menu', 'announcement', 'schedule')
# The context of a queue member's ring (route_from_media, to=member): the member's phones only; its
# final answer goes back to the media service as it is (after_reply answers None).
MEMBER_MARK = 'member:'

# Feature codes a phone dials to change its extension's settings (docs/routing.md):
# code -> (option of the extension module, value, what the phone is told). A value of
# TAKES_NUMBER means the code is followed by the destination (*72<number>); '' clears.
TAKES_NUMBER = object()
# A speed dial of the caller's extension (Kurzwahl, O2 seed): ** and its code (1-3 digits).
SPEED_DIAL_PREFIX = '**'

# A queue member logs in to (out of) the queue whose number follows, or without a number every queue it
# is a member of (docs/routing.md). Written to the queues, not to the caller's extension.
QUEUE_LOGIN = '*44'
QUEUE_LOGOUT = '*45'

FEATURE_CODES = {
    '*78': ('dnd', True, 'Do Not Disturb On'),
    '*79': ('dnd', False, 'Do Not Disturb Off'),
    '*72': ('forwarding.unconditional', TAKES_NUMBER, 'Forward All Calls To %s'),
    '*73': ('forwarding.unconditional', '', 'Forward All Calls Off'),
    '*90': ('forwarding.busy', TAKES_NUMBER, 'Forward When Busy To %s'),
    '*91': ('forwarding.busy', '', 'Forward When Busy Off'),
    '*92': ('forwarding.no_answer', TAKES_NUMBER, 'Forward On No Answer To %s'),
    '*93': ('forwarding.no_answer', '', 'Forward On No Answer Off'),
}


class Reject(object):
    __slots__ = ('code', 'reason')

    def __init__(self, code, reason):
        self.code = code
        self.reason = reason

    def __repr__(self):
        return 'Reject(%d %s)' % (self.code, self.reason)


class Ring(object):
    """Ring the AORs (user@domain) in parallel for ring_time seconds. ``origin``: the call's
    original caller, set on the first plan of a call (see Leg)."""

    __slots__ = ('aors', 'uris', 'ring_time', 'context', 'identity', 'privacy', 'diversion', 'mobile', 'origin', 'notes')

    def __init__(self, aors, ring_time, context, identity=None, privacy=False, diversion=(), mobile=None):
        self.aors = tuple(aors)
        self.uris = tuple('sip:' + aor for aor in self.aors)  # what the registrar looks up
        self.ring_time = ring_time
        self.context = context
        self.identity = identity
        self.privacy = privacy
        self.diversion = tuple(diversion)
        # Single number reach: a Relay to the mobile through the trunk, one more parallel branch
        # with its own identity and diversion (the adapter puts them on that branch only).
        self.mobile = mobile
        self.origin = None
        # The schedules the decision passed on its way here (ScheduleNote), for the route simulator and the
        # call-flow pictures; the adapter never reads them.
        self.notes = ()

    def __repr__(self):
        return 'Ring(%s%s, %ss, %s)' % (', '.join(self.aors), ' + %s' % self.mobile.uri if self.mobile else '',
                                        self.ring_time, self.context)


class Relay(object):
    """Send the call to ``uri`` presenting ``identity`` (P-Asserted-Identity; None keeps the
    identity the call already has). ``destination`` (a SIP URI) is where the request is sent
    when that is not the host of ``uri``: the media server, for a mailbox URI in the tenant's
    domain. ``ring_time``: seconds this leg may ring (the adapter sets it as the transaction's
    INVITE timer before relaying); None: until the far end answers or rejects, within tm's
    cfg-wide ``fr_inv_timer`` and the call's maximum setup time (a call the caller dialled).
    ``forwarded_by``: the SIP domain of the tenant that forwards the call out through its trunk (an
    outside forward, a group's outside fallback, the mobile of single number reach): ``identity``
    is then that tenant's number and the From shows the call's original caller
    (``original_caller``); None for every other leg, whose From shows ``identity``. ``origin``:
    the call's original caller, set on the first plan of a call (see Leg)."""

    __slots__ = ('uri', 'identity', 'privacy', 'headers', 'diversion', 'destination', 'charge', 'ring_time',
                 'forwarded_by', 'origin', 'context', 'notes')

    def __init__(self, uri, identity, privacy=False, headers=None, diversion=(), destination=None, charge=None,
                 ring_time=None):
        self.uri = uri
        self.identity = identity
        self.privacy = privacy
        self.headers = headers or {}
        self.diversion = tuple(diversion)
        self.destination = destination
        # (tenant, internal number or None) an outside call through the trunk counts against
        # (outside-call limits, ``outside_call_limits``); None: not an outside call, or an
        # emergency call, which no limit may stop.
        self.charge = charge
        self.ring_time = ring_time
        self.forwarded_by = None
        self.origin = None
        # A leg after which the call goes on when it fails (an announcement that leads somewhere):
        # the Context for after_failure, as a Ring carries it; None: its final answer is the caller's.
        self.context = None
        self.notes = ()  # as a Ring's

    def __repr__(self):
        return 'Relay(%s%s as %s%s%s)' % (self.uri, ' via %s' % self.destination if self.destination else '',
                                          self.identity, ' privacy' if self.privacy else '',
                                          ', %ss' % self.ring_time if self.ring_time else '')


class PhoneSetting(object):
    """A feature code dialled by a phone: apply ``request`` (the options of the extension
    module, e.g. {'dnd': True}) to the caller's extension, then tell the phone ``done``.
    ``kind`` QUEUE: the caller's login in the queues ``keys`` ({'logged_in': bool}), written to those
    queues' members (phone_settings.apply)."""

    __slots__ = ('tenant', 'extension', 'request', 'done', 'kind', 'keys')

    def __init__(self, tenant, extension, request, done, kind=EXTENSION, keys=None):
        self.tenant = tenant
        self.extension = extension
        self.request = request
        self.done = done
        self.kind = kind
        self.keys = tuple(keys) if keys is not None else (extension,)

    def __repr__(self):
        if self.kind != EXTENSION:
            return 'PhoneSetting(%s/%s %r in %s %s)' % (self.tenant, self.extension, self.request, self.kind,
                                                        ', '.join(self.keys))
        return 'PhoneSetting(%s/%s %r)' % (self.tenant, self.extension, self.request)


class ScheduleNote(object):
    """A schedule a decision passed (plan.notes): which one, whether it was open, the destination it led to,
    and what ``schedule_choice`` needs to follow its other destination (the call-flow pictures draw both)."""

    __slots__ = ('tenant', 'name', 'open', 'destination', 'context', 'identity')

    def __init__(self, tenant, name, is_open, destination, context, identity):
        self.tenant = tenant
        self.name = name
        self.open = is_open
        self.destination = destination
        self.context = context
        self.identity = identity

    def __repr__(self):
        return 'ScheduleNote(%s/%s %s -> %s)' % (self.tenant, self.name, 'open' if self.open else 'closed',
                                                 self.destination)


class Context(object):
    """Where a ringing call stands, carried through the transaction as one string.
    ``visited`` holds every target the call has reached, as tenant/number. ``rung`` is what the
    members of a group did so far (``GROUP_OUTCOMES``): '' while none of them could ring,
    'busy' while every member that rang was busy or declined, 'no_answer' once one rang and
    did not answer; after_failure picks the fallback's diversion reason and the final answer
    from it, not from the last step alone."""

    __slots__ = ('tenant', 'target', 'hops', 'step', 'visited', 'rung')

    def __init__(self, tenant, target, hops=0, step=0, visited=(), rung=''):
        self.tenant = tenant
        self.target = target
        self.hops = hops
        self.step = step
        self.visited = tuple(visited) or ('%s/%s' % (tenant, target),)
        self.rung = rung

    def forwarded_to(self, tenant, target):
        """The context one forwarding hop further, or None where it would loop or run too long."""
        mark = '%s/%s' % (tenant, target)
        if mark in self.visited or self.hops >= MAX_FORWARD_HOPS:
            return None
        return Context(tenant, target, self.hops + 1, 0, self.visited + (mark,))

    def encode(self):
        return '%s|%s|%d|%d|%s|%s' % (self.tenant, self.target, self.hops, self.step, ','.join(self.visited), self.rung)

    @classmethod
    def decode(cls, text):
        """The context of ``encode``; also the five fields of contexts written before ``rung``
        existed (a transaction that outlives an app_python.reload): nobody rang yet."""
        fields = text.split('|')
        if len(fields) == 5:
            fields.append('')
        tenant, target, hops, step, visited, rung = fields
        if rung not in GROUP_OUTCOMES:
            raise ValueError('unknown group outcome %r in context %r' % (rung, text))
        return cls(tenant, target, int(hops), int(step), visited.split(','), rung)

    def __repr__(self):
        return 'Context(%s)' % self.encode()


# What a group's members did (Context.rung) -> (the diversion reason of the fallback, the final
# answer without one): nobody could ring / every member that rang was busy or declined / a
# member rang and nobody answered.
GROUP_OUTCOMES = {
    '': ('unavailable', (480, 'Temporarily Unavailable')),
    'busy': ('user-busy', (486, 'Busy Here')),
    'no_answer': ('no-answer', (480, 'Temporarily Unavailable')),
}


def group_rung(rung, outcome):
    """What a group's members did so far (``rung``, Context.rung) after one more ring step
    ended with ``outcome`` (after_failure's outcomes): a step where nobody could ring changes
    nothing; a busy step counts as busy only while no member rang unanswered before; a member
    that rang without answering (the ring time elapsed, 408/480/487, or any other rejection)
    makes it 'no_answer' for good."""
    if outcome == 'unregistered':
        return rung
    if outcome == 'busy':
        return rung or 'busy'
    return 'no_answer'


# Registration ----------------------------------------------------------------

def registrar_credentials(snap, domain, username):
    """(realm, ha1, transport refusal) for a REGISTER or authenticated call, or a Reject for an
    unknown domain.

    The realm is the tenant's domain; the account is looked up only inside
    that tenant, so an account of tenant A never authenticates in B's domain.
    An unknown account gives (realm, None, None): the caller is challenged again exactly as
    for a wrong password, so that the reply does not tell which accounts exist.
    The refusal (None for most accounts) is what an authenticated request of an account that
    requires TLS gets when it came over another transport (``secure_transport``).
    """
    tenant = snap.by_domain.get(domain)
    if tenant is None:
        return Reject(403, 'Unknown domain')
    account = tenant.accounts.get(username)
    if account is None:
        return tenant.domain, None, None
    return tenant.domain, account.ha1, TLS_REQUIRED if account.require_tls else None


# Transports that are encrypted to the phone: TLS, and WebSocket over TLS.
SECURE_TRANSPORTS = ('tls', 'wss')
TLS_REQUIRED = Reject(403, 'TLS required for this account')


def secure_transport(proto):
    """Whether a request arrived encrypted (Kamailio's $pr: udp, tcp, tls, ws, wss, sctp)."""
    return (proto or '').lower() in SECURE_TRANSPORTS


def digest_uri_matches(digest_uri, request_uri, is_myself):
    """Whether the digest response was computed for this request's Request-URI (RFC 2617
    3.2.2.5): a response captured from a call to one number must not authorise another.
    Scheme and host compare case-insensitively, the user part exactly. A uri that names
    this server itself without a user (``sip:<server address>:<port>``, what some clients
    and test tools put there) binds nothing to a number but is accepted: the nonce count
    still stops its replay. ``is_myself(uri)`` is Kamailio's own test."""
    if not digest_uri or not request_uri:
        return False
    if digest_uri == request_uri or _uri_key(digest_uri) == _uri_key(request_uri):
        return True
    return '@' not in digest_uri and is_myself(digest_uri)


def _uri_key(uri):
    scheme, sep, rest = uri.partition(':')
    user, at, hostport = rest.rpartition('@')
    return scheme.lower(), user, at, hostport.lower()


def split_uris(header_values):
    """The URIs of a Contact (or similar) header value list: ``<uri>``, ``"name" <uri>;p`` or
    a bare ``uri;p``, several per value separated by commas outside quotes and brackets."""
    uris = []
    for value in header_values:
        if ',' not in value:  # one contact, the usual case: no scan character by character
            uri = _uri_of(value)
            if uri:
                uris.append(uri)
            continue
        part, depth, quoted = [], 0, False
        for ch in value + ',':
            if ch == '"':
                quoted = not quoted
            elif not quoted and ch == '<':
                depth += 1
            elif not quoted and ch == '>':
                depth -= 1
            elif ch == ',' and not quoted and depth <= 0:
                uri = _uri_of(''.join(part))
                if uri:
                    uris.append(uri)
                part = []
                continue
            part.append(ch)
    return uris


def _uri_of(name_addr):
    text = name_addr.strip()
    if '<' in text and '>' in text:
        return text[text.index('<') + 1:text.index('>', text.index('<'))].strip()
    return text.split(';', 1)[0].strip()


def uri_host(uri):
    """The host of a SIP URI ('sip:u@[::1]:5060;x' -> '::1'), lower case, or ''."""
    rest = uri.split(':', 1)[1] if ':' in uri else uri
    hostport = rest.split(';', 1)[0].split('?', 1)[0].rpartition('@')[2]
    if hostport.startswith('['):
        return hostport[1:hostport.find(']')].lower() if ']' in hostport else ''
    return hostport.split(':', 1)[0].lower()


def uri_port(uri):
    """The port of a SIP URI, or its scheme's default (5060, 5061 for sips)."""
    rest = uri.split(':', 1)[1] if ':' in uri else uri
    hostport = rest.split(';', 1)[0].split('?', 1)[0].rpartition('@')[2]
    port = hostport.rsplit(']', 1)[1] if hostport.startswith('[') else hostport
    if ':' in port and port.rsplit(':', 1)[1].isdigit():
        return int(port.rsplit(':', 1)[1])
    return 5061 if uri[:5].lower() == 'sips:' else 5060


def remember(table, key, answer, limit):
    """Keep ``answer`` under ``key`` in a table of at most ``limit`` answers and return it. A full
    table starts afresh: a scan sending ever new values cannot make it grow, and what phones send
    again and again is soon back in it."""
    if len(table) >= limit:
        table.clear()
    table[key] = answer
    return answer


class ServerAddresses(object):
    """What names this server: ``host:port`` of each listen address and advertised address, and
    aliases (``host`` alone for every port). ``names(uri)`` is Kamailio's is_myself() for SIP
    URIs, answered from memory instead of a call into Kamailio per URI."""

    def __init__(self, addresses):
        self.hostports = set()
        self.hosts = set()
        self._known = {}  # uri -> answer: phones send the same URIs again and again
        for address in addresses:
            address = str(address).strip().lower()
            if address.startswith('['):
                host, _sep, port = address[1:].partition(']')
                port = port.lstrip(':')
            elif address.count(':') == 1:
                host, port = address.split(':')
            else:
                host, port = address, ''
            if port.isdigit():
                self.hostports.add((host, int(port)))
            elif host:
                self.hosts.add(host)

    def names(self, uri):
        known = self._known.get(uri)
        if known is None:
            host = uri_host(uri)
            known = remember(self._known, uri, host in self.hosts or (host, uri_port(uri)) in self.hostports, 10000)
        return known


def contact_refusal(snap, contacts, is_myself):
    """A Reject when a REGISTER would bind a contact that points at a trusted trunk address
    (calls to the extension would leave through the carrier without any permission check)
    or at this server (calls would loop); None when every contact is acceptable.
    ``is_myself(uri)`` tells whether a URI names this server (Kamailio's own test)."""
    for uri in contacts:
        if uri == '*':
            continue
        if snap.is_trusted(uri_host(uri)):
            return Reject(403, 'Contact points at a trunk')
        if is_myself(uri):
            return Reject(403, 'Contact points at this server')
    return None


def from_header(identity):
    """(display name, URI) for the From of a leg presenting ``identity`` (a name-addr as in
    P-Asserted-Identity): the public identity replaces the caller's SIP account in From, and
    an anonymous caller is "Anonymous" <sip:anonymous@anonymous.invalid> (RFC 3323)."""
    if identity == ANONYMOUS_URI:
        return '"Anonymous"', ANONYMOUS_URI
    display, bracket, rest = identity.rpartition('<')
    if not bracket:
        return '', identity.strip()
    return display.strip(), rest.rstrip('>').strip()


def register_target(snap, domain, to_user, auth_user):
    """The AOR an authenticated REGISTER may bind, or a Reject: an account binds
    only its own address of record."""
    tenant = snap.by_domain.get(domain)
    if tenant is None:
        return Reject(403, 'Unknown domain')
    if to_user != auth_user:
        return Reject(403, 'Account may only register itself')
    if to_user not in tenant.accounts:
        return Reject(403, 'Unknown account')
    return '%s@%s' % (to_user, domain)


# Calls -----------------------------------------------------------------------

# An RFC 3261 escape is '%' and two hex digits; any other '%' in a user part is malformed.
_ESCAPES_RE = re.compile(r'^(?:[^%]|%[0-9A-Fa-f]{2})*$')


def request_user(user):
    """The Request-URI user as the caller dialled it: RFC 3261 escapes undone once (``%23`` is
    ``#``, ``%2B`` is ``+``; urllib.parse.unquote semantics, the bytes read as UTF-8), or a
    Reject 400 for a malformed escape, bytes that are not UTF-8, or a character that is not
    printable (NUL, other control characters). Both entry points, route_from_account and
    route_inbound, call it on the raw user part (Kamailio's $rU), so nothing after them sees an
    escape and nothing unescapes twice."""
    user = user or ''
    if '%' not in user:
        return user if user.isprintable() else Reject(400, 'Bad Request: control character in the Request-URI user')
    if not _ESCAPES_RE.match(user):
        return Reject(400, 'Bad Request: malformed escape in the Request-URI user')
    try:
        text = unquote(user, errors='strict')
    except UnicodeDecodeError:
        return Reject(400, 'Bad Request: Request-URI user is not UTF-8')
    if not text.isprintable():
        return Reject(400, 'Bad Request: control character in the Request-URI user')
    return text


def route_from_account(snap, domain, username, dialled, now):
    """A new call from an authenticated SIP account of the tenant of ``domain``; ``dialled`` is
    the Request-URI user as it arrived (escaped, see ``request_user``)."""
    tenant = snap.by_domain.get(domain)
    account = tenant.accounts.get(username) if tenant else None
    if account is None:
        return Reject(403, 'Unknown account')
    caller = account.extension
    dialled = request_user(dialled)
    if isinstance(dialled, Reject):
        return dialled
    dialled = dialled.strip()
    if dialled.startswith(SPEED_DIAL_PREFIX):
        dialled = _speed_dial(caller, dialled)
        if isinstance(dialled, Reject):
            return dialled
    if dialled == VOICEMAIL_CODE:
        return _with_origin(_own_mailbox(snap, tenant, caller), _outside_identity(tenant, caller))
    if dialled.startswith('*'):
        return phone_setting(tenant, caller, dialled)
    if dialled in rules.EMERGENCY_NUMBERS:
        return _emergency(tenant, caller, dialled)
    target = tenant.targets.get(dialled)
    if target is not None:
        identity = _internal_identity(tenant, caller)
        plan = _reach(snap, tenant, target, Context(tenant.name, target.number), now, identity) or \
            Reject(480, 'Temporarily Unavailable')
    else:
        e164 = rules.normalise_dialled(dialled, tenant.dial_plan)
        if e164 is None:
            return Reject(404, 'No such extension or number')
        plan = _outside(snap, tenant, caller, e164, now)
    return _with_origin(plan, _outside_identity(tenant, caller))


def _with_origin(plan, origin):
    """The first plan of a call, knowing the call's original caller (Leg.origin)."""
    if plan.__class__ is Ring or plan.__class__ is Relay:
        plan.origin = origin
    return plan


def _speed_dial(caller, dialled):
    """``**<code>``: the number the caller's speed dial [Kurzwahl] with that code calls, dialled
    from then on as if the caller had dialled it (same permissions, identity and limits)."""
    code = dialled[len(SPEED_DIAL_PREFIX):].rstrip('#')
    number = caller.speed_dials.get(code) if caller.speed_dials else None
    if number is None:
        return Reject(404, 'No speed dial %s' % code if code else 'Address Incomplete: dial %s and the code' % SPEED_DIAL_PREFIX)
    return number


def phone_setting(tenant, caller, dialled):
    """A feature code (``FEATURE_CODES``) as a PhoneSetting for the caller's extension, or a
    Reject for an unknown code or a missing or surplus number. The destination is checked
    by the directory's own rules when the setting is applied."""
    code, argument = dialled[:3], dialled[3:].rstrip('#')
    if code in (QUEUE_LOGIN, QUEUE_LOGOUT):
        return _queue_login(tenant, caller, code == QUEUE_LOGIN, argument)
    feature = FEATURE_CODES.get(code)
    if feature is None:
        return Reject(404, 'Unknown feature code %s' % code)
    option, value, done = feature
    if value is TAKES_NUMBER:
        if not argument:
            return Reject(484, 'Address Incomplete: dial %s and the number' % code)
        value, done = argument, done % argument
    elif argument:
        return Reject(484, 'Address Incomplete: %s takes no number' % code)
    if option.startswith('forwarding.'):
        request = {'forwarding': {option.split('.', 1)[1]: value}}
    else:
        request = {option: value}
    return PhoneSetting(tenant.name, caller.number, request, done)


def _queue_login(tenant, caller, login, argument):
    """``*44<queue>`` / ``*45<queue>``: the caller logs in to (out of) that queue; without a number, every
    queue it is a member of. A PhoneSetting on the queues, or a Reject: 404 for a queue that does not exist
    (or none the caller is a member of), 403 for a queue the caller is no member of."""
    if argument:
        queue = tenant.targets.get(argument)
        if queue is None or queue.kind != QUEUE:
            return Reject(404, 'No queue %s' % argument)
        if caller.number not in queue.member_numbers:
            return Reject(403, 'Not a member of queue %s' % argument)
        keys = (queue.number,)
    else:
        keys = tenant.queues_of.get(caller.number, ())
        if not keys:
            return Reject(404, 'Not a member of any queue')
    done = '%s %s %s' % ('Logged In To' if login else 'Logged Out Of', 'Queue' if len(keys) == 1 else 'Queues',
                         ', '.join(keys))
    return PhoneSetting(tenant.name, caller.number, {'logged_in': login}, done, kind=QUEUE, keys=keys)


def route_inbound(snap, dialled, source, now):
    """A new call from a trusted trunk address to one of the directory's numbers; ``dialled`` is
    the Request-URI user as it arrived (escaped, see ``request_user``)."""
    dialled = request_user(dialled)
    if isinstance(dialled, Reject):
        return dialled
    e164 = _inbound_e164(snap, dialled, source)
    entry = snap.numbers.get(e164) if e164 else None
    if entry is None:
        return Reject(404, 'Number not assigned')
    return _with_origin(_to_number(snap, entry, now, identity=None), CALLING_NUMBER)


# Calls the media service places (X-Voxplane-Origin) ---------------------------------------------------------

def parse_origin(value):
    """(service, internal number, to) of an X-Voxplane-Origin value (``ivr;number=700;to=target``), or None
    when it is not one."""
    service, _sep, rest = (value or '').partition(';')
    params = {}
    for item in rest.split(';'):
        name, equals, text = item.partition('=')
        if equals:
            params[name.strip().lower()] = text.strip()
    service, number, to = service.strip().lower(), params.get('number'), params.get('to')
    if service not in ORIGIN_SERVICES or not number or to not in ORIGIN_TARGETS:
        return None
    return service, number, to


def origin_request(destination):
    """(to, Request-URI user) with which the media service places a call to ``destination`` (a destination as
    the directory keeps it: a menu's key, a queue's overflow) through the router (docs/media.md): an internal
    or outside number is a ``target``, the PBX's own services say what they are."""
    service = rules.service_destination(destination)
    if service is None:
        return 'target', destination
    prefix, name = service
    if prefix == rules.VOICEMAIL_MENU:
        return 'voicemail-menu', rules.VOICEMAIL_MENU
    return prefix, name  # voicemail (a mailbox), announcement, schedule


def origin_header(service, number, to):
    """The X-Voxplane-Origin value of a call the media service places (parse_origin's inverse)."""
    return '%s;number=%s;to=%s' % (service, number, to)


def media_caller(snap, domain, identity, privacy=None):
    """The original caller of a call the media service places (its Leg.origin), from the identity it presents
    (its P-Asserted-Identity, else From: the caller of the menu or queue) and its Privacy header: shown on a
    leg forwarded out through the trunk as on any forwarded leg, an outside caller by its number in E.164, an
    extension of the tenant by its outside identity, anything else (and a Privacy header that hides the
    identity) anonymous; never an internal number or account."""
    if not identity or (privacy and _HIDDEN.search(privacy)):
        return ANONYMOUS_URI
    user = request_user(_uri_of(identity).split(':', 1)[-1].split('@', 1)[0].split(';', 1)[0])
    tenant = snap.by_domain.get(domain)
    if isinstance(user, Reject) or not user or tenant is None or user == 'anonymous':
        return ANONYMOUS_URI
    ext = tenant.targets.get(user)
    if ext is not None:
        return _outside_identity(tenant, ext) if ext.kind == EXTENSION else ANONYMOUS_URI
    e164 = rules.normalise_dialled(user, tenant.dial_plan)
    return '<sip:%s@%s>' % (e164, tenant.domain) if e164 else ANONYMOUS_URI


def route_from_media(snap, domain, user, origin, caller, now):
    """A new call the PBX's media service places for an IVR menu or a queue (docs/media.md). ``origin``: its
    X-Voxplane-Origin (what the call is for), ``domain``: the Request-URI's (the tenant's SIP domain), ``user``:
    the Request-URI user as it arrived (escaped, see ``request_user``), ``caller``: the call's original caller
    (``media_caller``). The adapter asks this only for a request from the media service's own address.

    ``to=target``: routed as a forward of the menu or queue would go (no Diversion of its own): an extension's
    DND, forwards and voicemail apply, a group rings by its strategy, an outside number needs the tenant's
    permission and counts against the tenant's outside-call limits. ``member``: the queue member's phones
    alone, for the queue's member ring time; their final answer goes back to the media service. ``voicemail``,
    ``voicemail-menu``, ``announcement``, ``schedule``: as those destinations."""
    tenant = snap.by_domain.get(domain)
    if tenant is None:
        return Reject(404, 'Unknown domain')
    parsed = parse_origin(origin)
    if parsed is None:
        return Reject(400, 'Bad Request: %s is not <ivr|queue>;number=<internal number>;to=<%s>'
                      % (ORIGIN_HEADER, '|'.join(ORIGIN_TARGETS)))
    service, number, to = parsed
    source = tenant.targets.get(number)
    if source is None or source.kind != service:
        return Reject(404, 'No %s %s' % (service, number))
    dialled = request_user(user)
    if isinstance(dialled, Reject):
        return dialled
    plan = _ORIGIN_ROUTES[to](snap, tenant, source, Context(tenant.name, source.number), dialled.strip(), now)
    return _with_origin(plan, caller)


def _origin_target(snap, tenant, source, ctx, dialled, now):
    """to=target: an internal number of the tenant or a number, as a forward of ``source`` goes."""
    dest = dialled if dialled in tenant.targets else rules.normalise_dialled(dialled, tenant.dial_plan)
    if dest is None:
        return Reject(404, 'No such extension or number')
    if dest.startswith('+'):
        entry = snap.numbers.get(dest)
        if entry is None or entry.status_at(now) not in ('active', 'inactive'):  # leaves through the trunk
            refusal = _dial_refusal(tenant, None, dest)
            if refusal:
                return Reject(403, refusal)
            if tenant.trunk is None:
                return Reject(503, 'No trunk for outside calls')
    plan = _forward(snap, tenant, ctx, dest, now, None)
    if plan is None:
        return Reject(482, 'Loop Detected') if '%s/%s' % (tenant.name, dest) in ctx.visited else \
            Reject(480, 'Temporarily Unavailable')
    return plan


def _origin_member(snap, tenant, source, ctx, dialled, now):
    """to=member: a queue member's SIP accounts, nothing else."""
    if source.kind != QUEUE:
        return Reject(403, 'Only a queue rings its members')
    ext = tenant.targets.get(dialled)
    if ext is None or ext.kind != EXTENSION:
        return Reject(404, 'No such extension')
    if ext.number not in source.member_numbers:
        return Reject(403, 'Not a member of queue %s' % source.number)
    if ext.dnd:
        return Reject(486, 'Do Not Disturb')
    if not ext.available or not ext.accounts:
        return Reject(480, 'Temporarily Unavailable')
    return Ring(_aors(tenant, ext.number), source.member_ring_time, Context(tenant.name, MEMBER_MARK + ext.number).encode())


def _origin_voicemail(snap, tenant, source, ctx, dialled, now):
    ext = tenant.targets.get(dialled)
    if ext is None or ext.kind != EXTENSION or not ext.voicemail:
        return Reject(404, 'No voicemail box %s' % dialled)
    return _voicemail(snap, tenant, ext, 'unconditional') or Reject(480, 'Voicemail not available')


def _origin_voicemail_menu(snap, tenant, source, ctx, dialled, now):
    if dialled != rules.VOICEMAIL_MENU:
        return Reject(404, 'No such service %s' % dialled)
    return _service(snap, tenant, ctx, (rules.VOICEMAIL_MENU, None), now, 'unconditional', None) or \
        Reject(480, 'Voicemail not available')


def _origin_announcement(snap, tenant, source, ctx, dialled, now):
    if dialled not in tenant.announcements:
        return Reject(404, 'No announcement %s' % dialled)
    return _service(snap, tenant, ctx, ('announcement', dialled), now, 'unconditional', None) or \
        Reject(480, 'Temporarily Unavailable')


def _origin_schedule(snap, tenant, source, ctx, dialled, now):
    if dialled not in tenant.schedules:
        return Reject(404, 'No schedule %s' % dialled)
    return _service(snap, tenant, ctx, ('schedule', dialled), now, 'unconditional', None) or \
        Reject(480, 'Temporarily Unavailable')


_ORIGIN_ROUTES = {'target': _origin_target, 'member': _origin_member, 'voicemail': _origin_voicemail,
                  'voicemail-menu': _origin_voicemail_menu, 'announcement': _origin_announcement,
                  'schedule': _origin_schedule}


def after_failure(snap, context_text, outcome, now):
    """The next step after a Ring failed: outcome is 'unregistered' (no contact),
    'busy' (486/600/603: every device busy or declining), 'no_answer' (ring time elapsed,
    480, 408) or 'rejected' (other 4xx-6xx). Returns a plan or a Reject with the final
    answer for the caller. A group's fallback and final answer follow what all its members
    did (``group_rung``), an extension's forward what its devices did."""
    ctx = Context.decode(context_text)
    if ctx.target.startswith(MEMBER_MARK):
        return Reject(480, 'Temporarily Unavailable')  # a queue member's phones: nothing follows (after_reply)
    tenant = snap.tenants.get(ctx.tenant)
    service = rules.service_destination(ctx.target) if tenant else None
    if service is not None and service[0] == 'announcement':
        # The announcement was played (as early media): the call goes where it leads, as dialled there.
        then = tenant.announcements.get(service[1])
        return _forward(snap, tenant, ctx, then, now, None) or Reject(480, 'Temporarily Unavailable')
    target = tenant.targets.get(ctx.target) if tenant else None
    if target is None or target.kind in MEDIA_KINDS:
        return Reject(480, 'Temporarily Unavailable')
    if target.kind == GROUP:
        # The whole group's outcome decides, not the last step alone: a member that rang
        # unanswered before an unregistered last member still makes it 'no-answer'.
        rung = group_rung(ctx.rung, outcome)
        members = _group_members(tenant, target)
        if target.strategy == 'sequential' and ctx.step + 1 < len(members):
            nxt = Context(ctx.tenant, ctx.target, ctx.hops, ctx.step + 1, ctx.visited, rung)
            return Ring(_aors(tenant, members[ctx.step + 1]), target.ring_time, nxt.encode())
        reason, final = GROUP_OUTCOMES[rung]
        return _forward(snap, tenant, ctx, target.fallback, now, reason) or Reject(*final)
    if target.dnd:
        # DND switched on while the call rang: busy treatment, no forwards, as at call time.
        return _voicemail(snap, tenant, target, 'do-not-disturb') or Reject(486, 'Do Not Disturb')
    if outcome not in _FORWARD_ON:
        return _final(outcome)
    kind, reason = _FORWARD_ON[outcome]
    dest = target.forwarding[kind]
    plan = _forward(snap, tenant, ctx, dest, now, reason) if dest != rules.OWN_VOICEMAIL else None
    return plan or _voicemail(snap, tenant, target, reason) or _final(outcome)


# The forward that applies to a failed ring, and the diversion reason it records (RFC 5806).
_FORWARD_ON = {'unregistered': ('unregistered', 'unavailable'), 'busy': ('busy', 'user-busy'),
               'no_answer': ('no_answer', 'no-answer')}


def _final(outcome):
    if outcome == 'busy':
        return Reject(486, 'Busy Here')
    if outcome == 'rejected':
        return Reject(603, 'Decline')
    return Reject(480, 'Temporarily Unavailable')


def _to_number(snap, entry, now, identity):
    status = entry.status_at(now)
    if status == 'porting':
        return Reject(404, 'Number not yet ported')
    if status != 'active':
        return Reject(480, 'Number inactive')
    tenant = entry.tenant
    service = rules.service_destination(entry.target) if entry.target else None
    if service is not None:
        plan = _service(snap, tenant, Context(tenant.name, entry.target), service, now, 'unconditional', identity)
        return plan or Reject(480, 'Temporarily Unavailable')
    target = tenant.targets.get(entry.target) if entry.target else None
    if target is None:
        return Reject(404, 'Number has no target')
    return _reach(snap, tenant, target, Context(tenant.name, target.number), now, identity) or \
        Reject(480, 'Temporarily Unavailable')


def _reach(snap, tenant, target, ctx, now, identity):
    """Ring an extension or group: DND, then the unconditional forward, then the devices. An IVR menu, a
    queue or a conference room: the leg to the PBX's media service (None without one)."""
    if target.kind in MEDIA_KINDS:
        return _media(snap, tenant, target.number, target.kind, (('number', target.number),), identity,
                      own_server=False)
    if target.kind == EXTENSION:
        if target.dnd:
            # Busy treatment without forwarding (Voys: DND also suppresses the forwards).
            return _voicemail(snap, tenant, target, 'do-not-disturb', identity) or Reject(486, 'Do Not Disturb')
        unconditional = target.forwarding['unconditional']
        if unconditional == rules.OWN_VOICEMAIL:
            plan = _voicemail(snap, tenant, target, 'unconditional', identity)
        else:
            plan = _forward(snap, tenant, ctx, unconditional, now, 'unconditional', identity)
        if plan is not None:
            return plan
        mobile = _mobile_branch(tenant, target, identity)
        if not target.accounts and mobile is None:
            return after_failure(snap, ctx.encode(), 'unregistered', now)
        return Ring(_aors(tenant, target.number), target.ring_time, ctx.encode(), identity, identity == ANONYMOUS_URI,
                    mobile=mobile)
    members = _group_members(tenant, target)
    if not members:
        reason, final = GROUP_OUTCOMES['']  # nobody can ring
        return _forward(snap, tenant, ctx, target.fallback, now, reason, identity) or Reject(*final)
    if target.strategy == 'sequential':
        return Ring(_aors(tenant, members[0]), target.ring_time, ctx.encode(), identity, identity == ANONYMOUS_URI)
    aors = []
    for member in members:
        aors.extend(_aors(tenant, member))
    return Ring(aors, target.ring_time, ctx.encode(), identity, identity == ANONYMOUS_URI)


def _media(snap, tenant, user, service, params, identity, diversion=(), own_server=True):
    """A leg to the media service (docs/media.md): the request URI sip:<user>@<tenant domain>,
    the service and its parameters (name, value pairs) in MEDIA_HEADER, the caller's identity as
    the call presents it (None: as an earlier leg set it). The tenant's own media_server takes
    it where ``own_server`` (voicemail), else the PBX's media service; None when there is none."""
    destination = (tenant.media_server if own_server else None) or snap.media_service
    if destination is None:
        return None
    header = ';'.join([service] + ['%s=%s' % pair for pair in params])
    return Relay('sip:%s@%s' % (user, tenant.domain), identity, identity == ANONYMOUS_URI, headers={MEDIA_HEADER: header},
                 destination=destination, diversion=diversion, ring_time=OUTSIDE_RING_TIME)


def media_request(plan):
    """(service, {parameter: value}) of a leg to the media service (its MEDIA_HEADER), or None
    for any other leg; what the media service reads off the INVITE (docs/media.md)."""
    value = plan.headers.get(MEDIA_HEADER) if plan.__class__ is Relay else None
    if not value:
        return None
    service, _sep, rest = value.partition(';')
    params = dict(item.split('=', 1) for item in rest.split(';') if '=' in item)
    return service.strip(), params


def _voicemail(snap, tenant, ext, reason, identity=None):
    """The call to the extension's mailbox: the request URI names the mailbox
    (sip:<internal number>@<tenant domain>), the Diversion and the media header why it came.
    None when voicemail is off or there is no media service."""
    if not ext.voicemail:
        return None
    return _media(snap, tenant, ext.number, 'voicemail', (('mailbox', ext.number), ('reason', reason)), identity,
                  diversion=(_diversion(tenant, ext.number, reason),))


def _own_mailbox(snap, tenant, caller):
    """``*86``: the caller's own box, its owner's menu; the PIN is asked when the tenant wants it
    asked from the owner's own phones too (voicemail_pin_always)."""
    if not caller.voicemail:
        return Reject(404, 'No voicemail box')
    pin = 'yes' if tenant.voicemail_pin_always else 'no'
    plan = _media(snap, tenant, VOICEMAIL_CODE, 'mailbox', (('mailbox', caller.number), ('pin', pin)),
                  _internal_identity(tenant, caller))
    return plan or Reject(480, 'Voicemail not available')


def _service(snap, tenant, ctx, service, now, reason, identity):
    """A destination the PBX answers itself (rules.service_destination): another extension's box,
    the voicemail access menu (mailbox, then PIN, always), an announcement (played and hung up,
    or, when it leads somewhere, played as early media with the call going on from there: the
    leg carries a Context, ``after_failure``). None where it does not apply (a box that is off,
    an announcement that is gone or already played on this call, no media service)."""
    prefix, name = service
    if prefix == 'voicemail':
        ext = tenant.targets.get(name)
        return _voicemail(snap, tenant, ext, reason, identity) if ext is not None and ext.kind == EXTENSION else None
    if prefix == rules.VOICEMAIL_MENU:
        return _media(snap, tenant, rules.VOICEMAIL_MENU, 'mailbox', (('pin', 'yes'),), identity)
    if prefix == 'schedule':
        return _schedule(snap, tenant, ctx, name, now, identity)
    if name not in tenant.announcements:
        return None
    then = tenant.announcements[name]
    nxt = ctx.forwarded_to(tenant.name, 'announcement:%s' % name) if ctx.target != 'announcement:%s' % name else ctx
    if nxt is None:
        return None
    plan = _media(snap, tenant, name, 'announcement', (('name', name), ('then', 'yes' if then else 'no')), identity,
                  own_server=False)
    if plan is not None and then:
        plan.context = nxt.encode()
    return plan


def _schedule(snap, tenant, ctx, name, now, identity):
    """A schedule (business hours): its open or closed destination by the clock, followed as a forward
    without a Diversion of its own (one more hop: loops and long chains end as forwards do). The plan notes
    the schedule (plan.notes). None where it leads nowhere (no such schedule, a loop, a destination that
    cannot be followed)."""
    schedule = tenant.schedules.get(name)
    mark = 'schedule:%s' % name
    nxt = ctx.forwarded_to(tenant.name, mark) if ctx.target != mark else ctx
    if schedule is None or nxt is None:
        return None
    is_open, dest = schedule.destination(now)
    plan = _forward(snap, tenant, nxt, dest, now, None, identity)
    if isinstance(plan, (Ring, Relay)):
        plan.notes = (ScheduleNote(tenant.name, name, is_open, dest, nxt.encode(), identity),) + plan.notes
    return plan


def schedule_choice(snap, note, is_open, now):
    """The plan of a schedule's open (``is_open``) or closed destination, from where the decision noted in
    ``note`` (a ScheduleNote) stood: what the call-flow pictures draw for the way not taken."""
    tenant = snap.tenants.get(note.tenant)
    schedule = tenant.schedules.get(note.name) if tenant is not None else None
    if schedule is None:
        return Reject(480, 'Temporarily Unavailable')
    dest = schedule.open if is_open else schedule.closed
    plan = _forward(snap, tenant, Context.decode(note.context), dest, now, None, note.identity)
    return plan or Reject(480, 'Temporarily Unavailable')


def _mobile_branch(tenant, ext, identity):
    """Single number reach: the mobile as one more branch through the tenant's trunk, when
    enabled and the extension may call that number; the call keeps the caller's anonymity."""
    if not ext.single_number_reach or not ext.mobile or _dial_refusal(tenant, ext, ext.mobile):
        return None
    plan = _trunk(tenant, ext.mobile, _tenant_identity(tenant), identity == ANONYMOUS_URI, charge=ext.number)
    if not isinstance(plan, Relay):
        return None
    plan.diversion = (_diversion(tenant, ext.number, 'follow-me'),)
    plan.ring_time = ext.ring_time  # a branch of the Ring: rings as long as the phones
    plan.forwarded_by = tenant.domain  # From: the original caller (original_caller)
    return plan


def _diversion(tenant, number, reason):
    return '<sip:%s@%s>;reason=%s' % (number, tenant.domain, reason)


def _group_members(tenant, group):
    """Members that can ring now: unavailable or DND members are skipped."""
    members = []
    for number in group.members:
        ext = tenant.targets.get(number)
        if ext is not None and ext.kind == EXTENSION and ext.available and not ext.dnd and ext.accounts:
            members.append(number)
    return members


def _aors(tenant, number):
    return ['%s@%s' % (user, tenant.domain) for user in tenant.targets[number].accounts]


def _forward(snap, tenant, ctx, dest, now, reason, identity=None):
    """Follow a forward of ctx.target to ``dest`` (internal number, E.164, or a destination the PBX
    answers itself); None if it does not apply: no destination, a loop, too many hops, or an
    outside destination the forwarding party may not dial. The plan carries the diversion
    history, newest first; ``reason`` None (after an announcement) adds no diversion."""
    if not dest:
        return None
    service = rules.service_destination(dest)
    target = tenant.targets.get(dest)
    if service is not None:
        plan = _service(snap, tenant, ctx, service, now, reason or 'unconditional', identity)
    elif target is not None:
        nxt = ctx.forwarded_to(tenant.name, dest)
        plan = nxt and _reach(snap, tenant, target, nxt, now, identity)
    elif dest.startswith('+'):
        number = snap.numbers.get(dest)
        status = number.status_at(now) if number is not None else None
        if status in ('active', 'inactive'):
            # A number of the directory: on-net if it leads somewhere, else no forward.
            owner = number.tenant
            leads_to = number.target if status == 'active' else None
            inner = owner.targets.get(leads_to) if leads_to else None
            # Another tenant sees the forwarding tenant's number, never an internal identity.
            presented = identity if owner is tenant else _tenant_identity(tenant)
            inner_service = rules.service_destination(leads_to) if leads_to and inner is None else None
            if inner_service is not None:
                nxt = ctx.forwarded_to(owner.name, leads_to)
                plan = nxt and _service(snap, owner, nxt, inner_service, now, reason or 'unconditional', presented)
            else:
                nxt = inner and ctx.forwarded_to(owner.name, leads_to)
                plan = nxt and _reach(snap, owner, inner, nxt, now, presented)
        elif ctx.hops < MAX_FORWARD_HOPS and not _dial_refusal(tenant, tenant.targets.get(ctx.target), dest):
            # The forwarding party pays for the outside leg: its tenant's trunk, permissions
            # and outside-call limits; a party that is no extension or group (a menu, a queue, a
            # schedule) the tenant alone.
            party = tenant.targets.get(ctx.target)
            charged = ctx.target if party is not None and party.kind in (EXTENSION, GROUP) else _TENANT_ONLY
            plan = _trunk(tenant, dest, _tenant_identity(tenant), False, charge=charged)
            if isinstance(plan, Relay):
                plan.ring_time = OUTSIDE_RING_TIME  # its own ringing, not the forwarding party's
                plan.forwarded_by = tenant.domain  # From: the original caller (original_caller)
        else:
            plan = None
    else:
        return None
    if isinstance(plan, (Ring, Relay)):
        if reason is not None:
            plan.diversion = plan.diversion + (_diversion(tenant, ctx.target, reason),)
        # An anonymous caller's privacy holds on every later leg, whoever's identity it presents
        # (the tenant's main number to an outside or another tenant's number), as in the adapter.
        plan.privacy = plan.privacy or identity == ANONYMOUS_URI
    return plan


_CLASS_REFUSALS = {'international': 'International calls not permitted',
                   'premium': 'Premium-rate calls not permitted',
                   'satellite': 'Satellite calls not permitted'}


def _dial_refusal(tenant, party, e164):
    """Why ``party`` (an extension, or a group: tenant rules only) may not call ``e164`` out,
    or None. Every class but national needs its permission on the tenant and on the extension
    (rules.CALL_CLASS_PERMISSION); an emergency-only extension calls nothing outside. This is
    the one check of every outside leg: a call, a forward, the mobile of single number reach."""
    extension = party if party is not None and party.kind == EXTENSION else None
    if extension is not None and extension.emergency_only:
        return 'Outside calls not permitted'
    call_class = rules.call_class(e164, tenant.dial_plan['country_code'])
    permission = rules.CALL_CLASS_PERMISSION[call_class]
    if permission is None:
        return None
    if not tenant.permissions[permission] or (extension is not None and not extension.permissions[permission]):
        return _CLASS_REFUSALS[call_class]
    return None


def _outside(snap, tenant, caller, e164, now):
    """A call to an outside number: on-net when a tenant holds it active, else the trunk."""
    entry = snap.numbers.get(e164)
    identity = _outside_identity(tenant, caller)
    if entry is not None and entry.status_at(now) == 'active':
        if caller.emergency_only and entry.tenant is not tenant:
            return Reject(403, 'Outside calls not permitted')
        return _to_number(snap, entry, now, identity)
    refusal = _dial_refusal(tenant, caller, e164)
    if refusal:
        return Reject(403, refusal)
    return _trunk(tenant, e164, identity, identity == ANONYMOUS_URI, charge=caller.number)


def _outside_identity(tenant, caller):
    """What an extension presents outside its tenant: its outbound caller ID (its own first
    number, the tenant's main number, a chosen number of its own), or anonymous."""
    if caller.caller_id == 'anonymous' or not caller.caller_id:
        return ANONYMOUS_URI
    return '<sip:%s@%s>' % (caller.caller_id, tenant.domain)


# Outside-call limits: dialog profiles count the calls up now, htable counters the calls of a minute.
TENANT_PROFILE = 'vx_out_tenant'
EXTENSION_PROFILE = 'vx_out_ext'


class Limit(object):
    """One outside-call limit a call counts against: the dialog profile and its value (the
    key), the most calls at once and the most calls a minute (None: no limit)."""

    __slots__ = ('profile', 'key', 'concurrent', 'per_minute', 'holder')

    def __init__(self, profile, key, concurrent, per_minute, holder):
        self.profile = profile
        self.key = key
        self.concurrent = concurrent
        self.per_minute = per_minute
        self.holder = holder

    def refusal(self, calls_now, calls_this_minute):
        """A Reject when one more call would pass this limit, else None."""
        if self.concurrent is not None and calls_now >= self.concurrent:
            return Reject(403, 'Outside call limit reached: %d calls at once for %s' % (self.concurrent, self.holder))
        if self.per_minute is not None and calls_this_minute >= self.per_minute:
            return Reject(403, 'Outside call limit reached: %d calls a minute for %s' % (self.per_minute, self.holder))
        return None


def forces_media_relay(snap, caller_domain, plan):
    """Whether a tenant of this call has every call's media relayed (tenant ``media_relay:
    always``): the tenant of the calling account (``caller_domain``; None for a call from the
    trunk), the tenant whose phones ``plan`` rings, or whose outside call it is."""
    caller = snap.by_domain.get(caller_domain) if caller_domain else None
    if caller is not None and caller.relay_media:
        return True
    if plan.__class__ is Ring:
        tenant = snap.tenants.get(plan.context.split('|', 1)[0])
    elif plan.__class__ is Relay and plan.charge is not None:
        tenant = snap.tenants.get(plan.charge[0])
    else:
        return False
    return tenant is not None and tenant.relay_media


def outside_call_limits(snap, charge):
    """The limits an outside call charged to ``charge`` ((tenant, internal number or None))
    counts against: the tenant's and, for an extension, its own; only those that are set."""
    tenant = snap.tenants.get(charge[0])
    if tenant is None:
        return []
    limits = []
    if tenant.max_outside_calls is not None or tenant.max_outside_calls_per_minute is not None:
        limits.append(Limit(TENANT_PROFILE, tenant.name, tenant.max_outside_calls, tenant.max_outside_calls_per_minute,
                            'tenant %s' % tenant.name))
    party = tenant.targets.get(charge[1]) if charge[1] else None
    if party is not None and party.kind == EXTENSION and \
            (party.max_outside_calls is not None or party.max_outside_calls_per_minute is not None):
        limits.append(Limit(EXTENSION_PROFILE, '%s/%s' % (tenant.name, party.number), party.max_outside_calls,
                            party.max_outside_calls_per_minute, 'extension %s' % party.number))
    return limits


def _emergency(tenant, caller, dialled):
    """110/112 always go out, presenting the location's number and carrying its address."""
    location = tenant.locations.get(caller.location) if caller.location else None
    if location is None and len(tenant.locations) == 1:
        location = next(iter(tenant.locations.values()))
    number = (location or {}).get('emergency_caller_id') or tenant.main_number or (caller.numbers[0] if caller.numbers else None)
    headers = {}
    if location:
        headers['X-Emergency-Location'] = '%s; %s; %s %s; %s' % (
            location['name'], location['street'], location['postal_code'], location['city'], location['country'])
    identity = '<sip:%s@%s>' % (number, tenant.domain) if number else ANONYMOUS_URI
    plan = _trunk(tenant, dialled, identity, False)
    if isinstance(plan, Relay):
        plan.headers.update(headers)
    return plan


# The charge of an outside leg that counts against the tenant's limits alone: (tenant, None).
_TENANT_ONLY = object()


def _trunk(tenant, user, identity, privacy, charge=None):
    """The Relay through the tenant's trunk; ``charge``: the internal number of the party the
    outside call counts against, _TENANT_ONLY for the tenant alone (None for an emergency call: never
    limited)."""
    if tenant.trunk is None:
        return Reject(503, 'No trunk for outside calls')
    address = tenant.trunk['addresses'][0]
    host = '[%s]' % address if ':' in address else address
    return Relay('sip:%s@%s:%d' % (user, host, tenant.trunk['port']), identity, privacy,
                 charge=None if charge is None else (tenant.name, None if charge is _TENANT_ONLY else charge))


def _internal_identity(tenant, caller):
    name = (caller.name or '').replace('"', '')
    return '"%s" <sip:%s@%s>' % (name, caller.number, tenant.domain) if name else '<sip:%s@%s>' % (caller.number, tenant.domain)


def _tenant_identity(tenant):
    return '<sip:%s@%s>' % (tenant.main_number, tenant.domain) if tenant.main_number else ANONYMOUS_URI


def _inbound_e164(snap, dialled, source):
    """The called number as E.164: +CC..., or in the dial plan of the tenant that owns the trunk."""
    if not dialled:
        return None
    if dialled in snap.numbers:
        return dialled  # already a known E.164 number: the common case, one lookup
    if dialled.startswith('+'):
        return rules.normalise_dialled(dialled, {'country_code': '', 'national_prefix': '', 'international_prefix': ''})
    for tenant in snap.trunk_sources.get(source, ()):
        e164 = rules.normalise_dialled(dialled, tenant.dial_plan)
        if e164 is not None:
            return e164
    if dialled.isdigit():
        return '+' + dialled
    return None


# Carrying out a decision ------------------------------------------------------
# The adapter (kemi/voxplane_kemi.py) and the route simulator (callflow.py) both walk a plan
# through these, so that they take the same steps for the same call.

# Replies of a failed ring that mean "busy" (busy or declining) / "nobody answered".
BUSY_CODES = (486, 600, 603)
NO_ANSWER_CODES = (408, 480, 487)
# The core bounds forwarding chains; this bounds the steps through unregistered members of a
# sequential group, which need one step each.
MAX_UNREGISTERED_STEPS = 64


class Leg(object):
    """One plan as it is carried out, with what its branches carry: the caller identity, the
    privacy wish and the diversion history (newest first), inherited from the legs before, and
    the call's original caller (``origin``), which a leg forwarded out through a trunk presents
    in From (``original_caller``): an account's outside identity (``_outside_identity``), or
    CALLING_NUMBER for a call from the trunk; None where it is not known (a transaction that
    began before the router knew origins)."""

    __slots__ = ('plan', 'identity', 'privacy', 'diversion', 'origin')

    def __init__(self, plan, identity, privacy, diversion, origin=None):
        self.plan = plan
        self.identity = identity
        self.privacy = privacy
        self.diversion = diversion
        self.origin = origin

    def __repr__(self):
        return 'Leg(%r as %s, diversion %s, from %s)' % (self.plan, self.identity, list(self.diversion), self.origin)


def legs(snap, plan, now, before=None):
    """The legs one decision becomes, in order. ``before``: what the previous branch carried
    ({'identity', 'privacy', 'diversion', 'origin'}; in a failure route), else None. A Reject or
    a Relay is the last leg; after a Ring the caller goes on only when none of its AORs has a
    registered contact (and it has no mobile): the next leg is then what its 'unregistered'
    failure leads to. The identity the first plan chose stays when a later one names none; a
    wish for privacy holds on every later leg; each leg's diversions go before the history; the
    original caller is the first plan's."""
    before = before or {}
    identity = getattr(plan, 'identity', None) or before.get('identity')
    privacy = getattr(plan, 'privacy', False) or before.get('privacy', False)
    origin = getattr(plan, 'origin', None) or before.get('origin')
    history = tuple(before.get('diversion', ()))
    for dummy in range(MAX_UNREGISTERED_STEPS):
        if isinstance(plan, Reject):
            yield Leg(plan, identity, privacy, history, origin)
            return
        history = plan.diversion + history
        yield Leg(plan, plan.identity or identity, plan.privacy or privacy, history, origin)
        if not isinstance(plan, Ring):
            return
        plan = after_failure(snap, plan.context, 'unregistered', now)
    yield Leg(Reject(480, 'Temporarily Unavailable'), identity, privacy, history, origin)


def original_caller(relay, origin, calling_number):
    """The From of the branch of ``relay`` (a Relay leg, or the mobile of a Ring) where it is not
    the leg's identity: the call's original caller (``origin``, Leg.origin) on a leg forwarded out
    through a trunk (``relay.forwarded_by``), which carries the forwarding tenant's number as
    P-Asserted-Identity; None for every other leg (From shows the identity). For a call from the
    trunk it is ``<sip:+E164@forwarding tenant's domain>`` of ``calling_number()`` (the calling
    number as E.164, or None for an anonymous caller: see ``calling_number``), asked only here:
    the decision is shared by every call to that number. An anonymous original caller is
    ANONYMOUS_URI, and its leg carries ``Privacy: id`` (``forwarded_privacy``)."""
    domain = relay.forwarded_by
    if domain is None or origin is None:
        return None
    if origin == CALLING_NUMBER:
        e164 = calling_number()
        return '<sip:%s@%s>' % (e164, domain) if e164 else ANONYMOUS_URI
    return origin


def forwarded_privacy(privacy, caller):
    """Whether a branch carries ``Privacy: id``: its leg's privacy, or an anonymous original caller
    in its From (``original_caller``)."""
    return bool(privacy) or caller == ANONYMOUS_URI


# Privacy header values that ask to hide the caller's identity (RFC 3323, RFC 3325).
_HIDDEN = re.compile(r'(?:^|;)\s*(?:id|user|header)\s*(?:;|$)', re.IGNORECASE)
_E164_ONLY = {'country_code': '', 'national_prefix': '', 'international_prefix': ''}


def calling_number(snap, user, source, privacy=None):
    """The calling number of a call from the trunk as E.164: the From user as received (escapes
    undone, ``request_user``), normalised like the called number (+CC..., or the dial plan of the
    tenant that owns the trunk ``source``, or international without '+'); None when the caller is
    anonymous: a From that is no phone number (``anonymous``, ``unknown``), or a ``Privacy``
    header (``privacy``) asking to hide the identity."""
    if privacy and _HIDDEN.search(privacy):
        return None
    user = request_user(user)
    if isinstance(user, Reject):
        return None
    e164 = _inbound_e164(snap, user.strip(), source)
    return rules.normalise_dialled(e164, _E164_ONLY) if e164 else None


def failure_outcome(code, timed_out):
    """after_failure's outcome for the reply a failed ring ended with (tm's pick of its
    branches' replies), or for its ring time running out."""
    if timed_out or code in NO_ANSWER_CODES:
        return 'no_answer'
    if code in BUSY_CODES:
        return 'busy'
    return 'rejected'


def after_reply(snap, context_text, outcome, now):
    """after_failure, or None where the callee's own final answer goes back to the caller as
    it is: a rejection the core has nothing to add to."""
    if is_member_ring(context_text):
        return None  # a queue member's phones: their answer goes back to the media service as it is
    plan = after_failure(snap, context_text, outcome, now)
    if isinstance(plan, Reject) and outcome == 'rejected':
        return None
    return plan


def is_member_ring(context_text):
    """Whether a Ring's context is a queue member's ring (route_from_media, to=member)."""
    fields = (context_text or '').split('|', 2)
    return len(fields) > 1 and fields[1].startswith(MEMBER_MARK)


class Decisions(object):
    """The request route's decisions, remembered by their inputs: the legs a new call takes
    (``legs``) from the trunk to a dialled number, or from an account to a dialled string.

    The core is a pure function of the snapshot, the call and the clock, and the clock only
    matters when a porting number becomes active (Snapshot.stable_period). So for one snapshot
    and one such stretch of time the same call always takes the same legs: a phone calling the
    same colleague, or a carrier sending calls to the same DIDs, has them worked out once.
    Leg and plan objects are shared by every call that remembers them: never to be changed.
    Bounded: a scan of ever new numbers only makes the table start afresh."""

    LIMIT = 8192  # about 700 bytes a call: at most some 6 MB per worker

    def __init__(self):
        self.snap = None
        self.start = self.end = 0.0
        self.known = {}
        self.accounts_in, self.accounts = None, {}  # the snapshot they were read from; credentials

    def _for(self, snap, now):
        if snap is not self.snap or not self.start <= now < self.end:
            self.snap = snap
            self.start, self.end = snap.stable_period(now)
            self.known = {}
        return self.known

    def _remember(self, key, snap, plan, now):
        """Keep what a call decided (its legs; a feature code's PhoneSetting as it is)."""
        answer = plan if isinstance(plan, PhoneSetting) else tuple(legs(snap, plan, now))
        return remember(self.known, key, answer, self.LIMIT)

    def inbound(self, snap, dialled, source, now):
        """route_inbound's legs."""
        key = (dialled, source)
        answer = self._for(snap, now).get(key)
        if answer is None:
            answer = self._remember(key, snap, route_inbound(snap, dialled, source, now), now)
        return answer

    def credentials(self, snap, domain, username):
        """registrar_credentials for this snapshot (they do not depend on the clock): a phone
        re-registering, or calling, asks for the same account again and again."""
        if snap is not self.accounts_in:
            self.accounts_in, self.accounts = snap, {}
        answer = self.accounts.get((domain, username))
        if answer is None:
            answer = remember(self.accounts, (domain, username), registrar_credentials(snap, domain, username),
                              self.LIMIT)
        return answer

    def from_account(self, snap, domain, username, dialled, now):
        """route_from_account's legs, or the PhoneSetting of a feature code (written by the caller
        every time: only the decision is remembered)."""
        key = (domain, username, dialled)
        answer = self._for(snap, now).get(key)
        if answer is None:
            answer = self._remember(key, snap, route_from_account(snap, domain, username, dialled, now), now)
        return answer
