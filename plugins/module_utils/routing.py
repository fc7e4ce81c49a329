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
  Ring(...)                     fork to every registered contact of the AORs in parallel;
                                on failure ask ``after_failure`` with the context
  Relay(uri, ...)               send to a trunk (outbound, emergency)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION, GROUP

# Forwarding chains stop after this many hops (and never revisit a target).
MAX_FORWARD_HOPS = 5
ANONYMOUS_URI = 'sip:anonymous@anonymous.invalid'


class Reject(object):
    __slots__ = ('code', 'reason')

    def __init__(self, code, reason):
        self.code = code
        self.reason = reason

    def __repr__(self):
        return 'Reject(%d %s)' % (self.code, self.reason)


class Ring(object):
    """Ring the AORs (user@domain) in parallel for ring_time seconds."""

    __slots__ = ('aors', 'ring_time', 'context', 'identity', 'privacy', 'diversion')

    def __init__(self, aors, ring_time, context, identity=None, privacy=False, diversion=()):
        self.aors = tuple(aors)
        self.ring_time = ring_time
        self.context = context
        self.identity = identity
        self.privacy = privacy
        self.diversion = tuple(diversion)

    def __repr__(self):
        return 'Ring(%s, %ss, %s)' % (', '.join(self.aors), self.ring_time, self.context)


class Relay(object):
    """Send the call to ``uri`` (a trunk), presenting ``identity`` (P-Asserted-Identity)."""

    __slots__ = ('uri', 'identity', 'privacy', 'headers', 'diversion')

    def __init__(self, uri, identity, privacy=False, headers=None, diversion=()):
        self.uri = uri
        self.identity = identity
        self.privacy = privacy
        self.headers = headers or {}
        self.diversion = tuple(diversion)

    def __repr__(self):
        return 'Relay(%s as %s%s)' % (self.uri, self.identity, ' privacy' if self.privacy else '')


class Context(object):
    """Where a ringing call stands, carried through the transaction as one string.
    ``visited`` holds every target the call has reached, as tenant/number."""

    __slots__ = ('tenant', 'target', 'hops', 'step', 'visited')

    def __init__(self, tenant, target, hops=0, step=0, visited=()):
        self.tenant = tenant
        self.target = target
        self.hops = hops
        self.step = step
        self.visited = tuple(visited) or ('%s/%s' % (tenant, target),)

    def forwarded_to(self, tenant, target):
        """The context one forwarding hop further, or None where it would loop or run too long."""
        mark = '%s/%s' % (tenant, target)
        if mark in self.visited or self.hops >= MAX_FORWARD_HOPS:
            return None
        return Context(tenant, target, self.hops + 1, 0, self.visited + (mark,))

    def encode(self):
        return '%s|%s|%d|%d|%s' % (self.tenant, self.target, self.hops, self.step, ','.join(self.visited))

    @classmethod
    def decode(cls, text):
        tenant, target, hops, step, visited = text.split('|')
        return cls(tenant, target, int(hops), int(step), visited.split(','))

    def __repr__(self):
        return 'Context(%s)' % self.encode()


# Registration ----------------------------------------------------------------

def registrar_credentials(snap, domain, username):
    """(realm, ha1) for a REGISTER or authenticated call, or a Reject.

    The realm is the tenant's domain; the account is looked up only inside
    that tenant, so an account of tenant A never authenticates in B's domain.
    """
    tenant = snap.by_domain.get(domain)
    if tenant is None:
        return Reject(403, 'Unknown domain')
    account = tenant.accounts.get(username)
    if account is None:
        return Reject(403, 'Unknown account')
    return tenant.domain, account.ha1


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

def route_from_account(snap, domain, username, dialled, now):
    """A new call from an authenticated SIP account of the tenant of ``domain``."""
    tenant = snap.by_domain.get(domain)
    account = tenant.accounts.get(username) if tenant else None
    if account is None:
        return Reject(403, 'Unknown account')
    caller = account.extension
    dialled = (dialled or '').strip()
    if dialled in rules.EMERGENCY_NUMBERS:
        return _emergency(tenant, caller, dialled)
    target = tenant.targets.get(dialled)
    if target is not None:
        identity = _internal_identity(tenant, caller)
        return _reach(snap, tenant, target, Context(tenant.name, target.number), now, identity)
    e164 = rules.normalise_dialled(dialled, tenant.dial_plan)
    if e164 is None:
        return Reject(404, 'No such extension or number')
    return _outside(snap, tenant, caller, e164, now)


def route_inbound(snap, dialled, source, now):
    """A new call from a trusted trunk address to one of the directory's numbers."""
    e164 = _inbound_e164(snap, dialled, source)
    entry = snap.numbers.get(e164) if e164 else None
    if entry is None:
        return Reject(404, 'Number not assigned')
    return _to_number(snap, entry, now, identity=None)


def after_failure(snap, context_text, outcome, now):
    """The next step after a Ring failed: outcome is 'unregistered' (no contact),
    'busy' (486/600), 'no_answer' (timeout, 480, 408) or 'rejected' (other 4xx-6xx).
    Returns a plan or a Reject with the final answer for the caller."""
    ctx = Context.decode(context_text)
    tenant = snap.tenants.get(ctx.tenant)
    target = tenant.targets.get(ctx.target) if tenant else None
    if target is None:
        return Reject(480, 'Temporarily Unavailable')
    if target.kind == GROUP:
        members = _group_members(tenant, target)
        if target.strategy == 'sequential' and ctx.step + 1 < len(members):
            nxt = Context(ctx.tenant, ctx.target, ctx.hops, ctx.step + 1, ctx.visited)
            return Ring(_aors(tenant, members[ctx.step + 1]), target.ring_time, nxt.encode())
        return _forward(snap, tenant, ctx, target.fallback, now, 'unavailable' if outcome == 'unregistered' else 'no-answer') \
            or _final(outcome)
    if outcome == 'unregistered':
        dest = target.forwarding['unregistered'] or target.mobile
        reason = 'unavailable'
    elif outcome == 'busy':
        dest = target.forwarding['busy']
        reason = 'user-busy'
    elif outcome == 'no_answer':
        dest = target.forwarding['no_answer']
        reason = 'no-answer'
    else:
        dest, reason = None, None
    if dest == 'voicemail':
        # Voicemail needs a media server, which this release does not deploy.
        dest = None
    return _forward(snap, tenant, ctx, dest, now, reason) or _final(outcome)


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
    target = tenant.targets.get(entry.target) if entry.target else None
    if target is None:
        return Reject(404, 'Number has no target')
    return _reach(snap, tenant, target, Context(tenant.name, target.number), now, identity)


def _reach(snap, tenant, target, ctx, now, identity):
    """Ring an extension or group, applying DND and unconditional forwarding."""
    if target.kind == EXTENSION:
        if target.dnd:
            # DND is busy treatment without forwarding (Voys: DND also suppresses forwards).
            return Reject(486, 'Do Not Disturb')
        unconditional = target.forwarding['unconditional']
        if unconditional and unconditional != 'voicemail':
            plan = _forward(snap, tenant, ctx, unconditional, now, 'unconditional', identity)
            if plan is not None:
                return plan
        if not target.accounts:
            return after_failure(snap, ctx.encode(), 'unregistered', now)
        return Ring(_aors(tenant, target.number), target.ring_time, ctx.encode(), identity, identity == ANONYMOUS_URI)
    members = _group_members(tenant, target)
    if not members:
        return _forward(snap, tenant, ctx, target.fallback, now, 'unavailable', identity) \
            or Reject(480, 'Temporarily Unavailable')
    if target.strategy == 'sequential':
        return Ring(_aors(tenant, members[0]), target.ring_time, ctx.encode(), identity, identity == ANONYMOUS_URI)
    aors = []
    for member in members:
        aors.extend(_aors(tenant, member))
    return Ring(aors, target.ring_time, ctx.encode(), identity, identity == ANONYMOUS_URI)


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
    """Follow a forward of ctx.target to ``dest`` (internal number or E.164); None if it
    does not apply: no destination, a loop, too many hops, or an outside destination the
    forwarding party may not dial. The plan carries the diversion history, newest first."""
    if not dest:
        return None
    entry = '<sip:%s@%s>;reason=%s' % (ctx.target, tenant.domain, reason)
    target = tenant.targets.get(dest)
    if target is not None:
        nxt = ctx.forwarded_to(tenant.name, dest)
        plan = nxt and _reach(snap, tenant, target, nxt, now, identity)
    elif dest.startswith('+'):
        number = snap.numbers.get(dest)
        status = number.status_at(now) if number is not None else None
        if status in ('active', 'inactive'):
            # A number of the directory: on-net if it leads somewhere, else no forward.
            owner = number.tenant
            inner = owner.targets.get(number.target) if status == 'active' and number.target else None
            nxt = inner and ctx.forwarded_to(owner.name, number.target)
            # Another tenant sees the forwarding tenant's number, never an internal identity.
            presented = identity if owner is tenant else _tenant_identity(tenant)
            plan = nxt and _reach(snap, owner, inner, nxt, now, presented)
        elif ctx.hops < MAX_FORWARD_HOPS and _may_dial(tenant, tenant.targets.get(ctx.target), dest):
            # The forwarding party pays for the outside leg: its tenant's trunk and permissions.
            plan = _trunk(tenant, dest, _tenant_identity(tenant), False)
        else:
            plan = None
    else:
        return None
    if isinstance(plan, (Ring, Relay)):
        plan.diversion = plan.diversion + (entry,)
    return plan


def _may_dial(tenant, party, e164):
    """Whether ``party`` (an extension, or a group: tenant rules only) may call ``e164`` out."""
    if not rules.is_international(e164, tenant.dial_plan['country_code']):
        return True
    if not tenant.international_calls:
        return False
    return party is None or party.kind != EXTENSION or party.international_calls


def _outside(snap, tenant, caller, e164, now):
    """A call to an outside number: on-net when a tenant holds it active, else the trunk."""
    entry = snap.numbers.get(e164)
    if entry is not None and entry.status_at(now) == 'active':
        if caller.caller_id in ('anonymous', None):
            identity = ANONYMOUS_URI
        else:
            identity = '<sip:%s@%s>' % (caller.caller_id, tenant.domain)
        return _to_number(snap, entry, now, identity)
    if not _may_dial(tenant, caller, e164):
        return Reject(403, 'International calls not permitted')
    if caller.caller_id == 'anonymous':
        return _trunk(tenant, e164, ANONYMOUS_URI, True)
    if not caller.caller_id:
        return _trunk(tenant, e164, ANONYMOUS_URI, True)
    return _trunk(tenant, e164, '<sip:%s@%s>' % (caller.caller_id, tenant.domain), False)


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


def _trunk(tenant, user, identity, privacy):
    if tenant.trunk is None:
        return Reject(503, 'No trunk for outside calls')
    address = tenant.trunk['addresses'][0]
    host = '[%s]' % address if ':' in address else address
    return Relay('sip:%s@%s:%d' % (user, host, tenant.trunk['port']), identity, privacy)


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
