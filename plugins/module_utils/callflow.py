# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Route simulation: the call flow the router produces for one call, as data.

Pure Python, no Ansible, no Kamailio. ``simulate()`` asks the routing core (routing.py) what
the KEMI adapter asks it, in the same order, over a Snapshot of the directory: the first
decision (``route_from_account`` / ``route_inbound``), its legs (``routing.legs``), and after
a ring nobody answered the failure route's next decision (``routing.after_reply``). What
Kamailio and the phones would contribute comes from the circumstances: which SIP accounts
have a registered contact, which branch answers, is busy (486) or declines (603); every
other branch rings until the ring time runs out. docs/route-simulation.md describes it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import os
import shutil
import tempfile

from ansible_collections.voxplane.pbx.plugins.module_utils import phone_settings, routing, rules, snapshot, tenant_document
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import ValidationFailed, Violation
from ansible_collections.voxplane.pbx.plugins.module_utils.model import CHILD_KINDS, EXTENSION, IVR, KIND_WORDS, QUEUE, TENANT
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import Change
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

# A failed ring's reply as tm hands it to the failure route: a branch that rang out gives 408.
_BUSY, _DECLINED, _TIMED_OUT = 486, 603, 408
# The simulation stops after this many steps (the core bounds every chain far below it).
_MAX_STEPS = 200


def _subject(tenant):
    return 'call (tenant %s)' % tenant


def refuse(tenant, field, rule, message):
    raise ValidationFailed([Violation(_subject(tenant), field, rule, message)])


class Caller(object):
    """Who places the call: a SIP account of ``tenant`` (``username``), or the tenant's trunk
    (``source`` address) presenting ``calling_number``."""

    __slots__ = ('tenant', 'username', 'source', 'calling_number')

    def __init__(self, tenant, username=None, source=None, calling_number=None):
        self.tenant = tenant
        self.username = username
        self.source = source
        self.calling_number = calling_number

    @property
    def from_trunk(self):
        return self.username is None


def resolve_caller(snap, tenant_name, account=None, extension=None, trunk=False, calling_number=None, source=None):
    """The Caller the options describe: a SIP account, an extension (its first SIP account) or
    the tenant's trunk (its preferred trunk's first address unless ``source`` names one of the
    directory's trunk addresses). Raises ValidationFailed naming the field and the rule."""
    tenant = snap.tenants.get(tenant_name)
    if tenant is None:
        refuse(tenant_name, 'tenant', 'reference', 'tenant %s does not exist' % tenant_name)
    if trunk:
        if source is None:
            if tenant.trunk is None:
                refuse(tenant_name, 'caller.trunk', 'reference',
                       'tenant %s has no preferred trunk; name the trunk address in caller.source' % tenant_name)
            source = tenant.trunk['addresses'][0]
        elif not snap.is_trusted(source):
            refuse(tenant_name, 'caller.source', 'reference',
                   '%s is no trunk address of the directory: a call from there is no inbound call' % source)
        return Caller(tenant_name, source=source, calling_number=calling_number)
    if extension is not None:
        ext = tenant.targets.get(str(extension))
        if ext is None or ext.kind != EXTENSION:
            refuse(tenant_name, 'caller.extension', 'reference',
                   'extension %s does not exist in tenant %s' % (extension, tenant_name))
        if not ext.accounts:
            refuse(tenant_name, 'caller.extension', 'reference', 'extension %s has no SIP account to call from' % extension)
        account = ext.accounts[0]
    if account not in tenant.accounts:
        refuse(tenant_name, 'caller.account', 'reference', 'SIP account %s does not exist in tenant %s' % (account, tenant_name))
    return Caller(tenant_name, username=account)


class Circumstances(object):
    """What the phones and far ends do. Each list names branches by SIP account (``anna.desk``
    or ``anna.desk@acme.example``), by the internal number of the extension that owns the
    account, by a number a trunk leg calls (``+4917012345678``), or by ``trunk`` / ``voicemail``
    for every such leg. ``registered``: the accounts with a registered contact (None: all)."""

    def __init__(self, registered=None, answer=(), busy=(), decline=()):
        self.registered = None if registered is None else set(str(n) for n in registered)
        self.answer = set(str(n) for n in answer)
        self.busy = set(str(n) for n in busy)
        self.decline = set(str(n) for n in decline)

    def check(self, tenant_name):
        """Refuse a branch named in two reply lists."""
        lists = (('answer', self.answer), ('busy', self.busy), ('decline', self.decline))
        for i, (field, names) in enumerate(lists):
            for other, more in lists[i + 1:]:
                both = sorted(names & more)
                if both:
                    refuse(tenant_name, field, 'conflict', '%s named in %s and in %s' % (', '.join(both), field, other))

    def reply(self, names):
        """'answer', 'busy', 'decline' or None (it rings) for a branch known by ``names``."""
        for what, listed in (('answer', self.answer), ('busy', self.busy), ('decline', self.decline)):
            if listed & names:
                return what
        return None


def with_dnd(states, dnd):
    """The tenant states with DND switched on or off for the named extensions ({tenant:
    {internal number: bool}}), copies where changed; refuses an extension that does not exist."""
    states = dict(states)
    for tenant_name, settings in (dnd or {}).items():
        state = states.get(tenant_name)
        for number, value in settings.items():
            ext = state.objects(EXTENSION).get(str(number)) if state is not None else None
            if ext is None:
                refuse(tenant_name, 'dnd', 'reference', 'extension %s does not exist in tenant %s' % (number, tenant_name))
            if not isinstance(value, bool):
                refuse(tenant_name, 'dnd', 'type', 'DND of extension %s must be true or false, not %r' % (number, value))
            state = state.with_changes([Change(EXTENSION, str(number), ext, dict(ext, dnd=value))])
        states[tenant_name] = state
    return states


# The PBX's media service when a simulation is only told that one is deployed (route_info's
# media_service: deployed): predictions name this instead of an address.
DEPLOYED_MEDIA_SERVICE = 'the PBX media service'


def build_snapshot(states, generation=0, dnd=None, media_service=DEPLOYED_MEDIA_SERVICE):
    """The router's Snapshot of ``states`` (txn.load_all()), with the DND overrides and the PBX's
    media service (its URI, DEPLOYED_MEDIA_SERVICE, or None: none)."""
    return snapshot.Snapshot(with_dnd(states, dnd), generation, media_service=media_service)


def call_time(text, timezone):
    """Epoch seconds of ``text`` (ISO 8601; without an offset: in the tenant's ``timezone``)."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError('%r is no ISO 8601 date and time (2026-03-01T09:30 or 2026-03-01T09:30:00+01:00)' % (text,))
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo  # Python 3.9+, as the directory's porting dates use it
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.timestamp()


@contextlib.contextmanager
def _scratch_directory():
    """A directory of its own in a temporary SQLite file, removed afterwards."""
    folder = tempfile.mkdtemp(prefix='voxplane-route-info-')
    try:
        yield Directory(os.path.join(folder, 'directory.db'))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def try_setting(state, setting):
    """The answer ``phone_settings.apply`` gives a feature code, found on a scratch copy of the
    caller's tenant (a temporary SQLite directory), so nothing is written to the directory."""
    with _scratch_directory() as scratch:
        with scratch.transaction(write=True) as txn:
            changes = [Change(TENANT, state.name, None, state.tenant)]
            for kind in CHILD_KINDS:
                changes.extend(Change(kind, key, None, obj) for key, obj in sorted(state.objects(kind).items()))
            txn.apply(state.name, changes)
        return phone_settings.apply(scratch, setting)


def document_state(document):
    """The TenantState a tenant document (tenant_document.TenantDocument, as read_document gives
    it) describes: applied by tenant_document.apply_document, with every rule and integrity check
    of the modules, to an empty in-memory directory. Raises ValidationFailed naming each
    violation; nothing is written anywhere."""
    tenant_document.assume_existing_accounts(document)
    with Directory(':memory:').transaction(write=True) as txn:
        tenant_document.apply_document(txn, document)
        return txn.load_tenant(document.tenant_name)


def _uri_user(uri):
    return uri.split(':', 1)[-1].split('@', 1)[0]


def _uri_domain(uri):
    return uri.split('@', 1)[-1].split(':', 1)[0].split(';', 1)[0]


# What a caller presses in a menu: a key, several digits (an extension's number, where the menu lets callers
# dial one directly), or nothing within the menu's timeout.
NO_KEY = 'timeout'


def check_digits(tenant_name, digits):
    """route_info's ``digits``: each entry a key (0-9, *, #), digits, or 'timeout'; refused naming the field."""
    for i, entry in enumerate(digits or ()):
        text = str(entry).strip()
        if text != NO_KEY and not (text in rules.MENU_KEYS or text.isdigit()):
            refuse(tenant_name, 'digits[%d]' % i, 'menu_key', '%r is not a key (0-9, * or #), an internal number or '
                   '%s (no key within the menu\'s timeout)' % (entry, NO_KEY))
    return [str(entry).strip() for entry in digits] if digits is not None else None


def destination_words(tenant, dest):
    """A destination as a person says it: 'group 20 Vertrieb', 'voicemail of 10', 'announcement closed'."""
    if dest is None:
        return 'goodbye (the call ends)'
    service = rules.service_destination(dest)
    if service is not None:
        prefix, name = service
        return {'voicemail': 'voicemail of %s', 'announcement': 'announcement %s', 'schedule': 'schedule %s'}.get(
            prefix, 'the voicemail menu%s') % (name or '')
    target = tenant.targets.get(dest) if tenant is not None else None
    if target is None:
        return dest
    return '%s %s%s' % (KIND_WORDS.get(target.kind, target.kind), dest, ' %s' % target.name if target.name else '')


def _branch_names(tenant, aor):
    user = aor.split('@', 1)[0]
    names = set([aor, user])
    account = tenant.accounts.get(user) if tenant is not None else None
    if account is not None:
        names.add(account.extension.number)
    return names


class _Continue(object):
    """The call goes on with ``plan``, a call the media service places (route_from_media), whose legs start
    from ``before`` (what the media service's leg carried)."""

    __slots__ = ('plan', 'before')

    def __init__(self, plan, before):
        self.plan = plan
        self.before = before


class _Flow(object):
    """The steps so far and the answer the caller gets."""

    def __init__(self, snap, caller, circumstances, now=0, digits=None):
        self.snap = snap
        self.caller = caller
        self.circ = circumstances
        self.steps = []
        self.final = None
        self.elapsed = 0
        self.now = now
        # the keys the caller presses at the menus, in order (None: not said; the flow stops at a menu)
        self.digits = list(digits) if digits is not None else None

    def step(self, leg, action, **fields):
        own = list(getattr(leg.plan, 'diversion', ()))
        caller = self.original_caller(leg.plan, leg) if isinstance(leg.plan, routing.Relay) else None
        step = dict(action=action, at=self.elapsed, identity=leg.identity,
                    from_identity=caller or leg.identity, privacy=routing.forwarded_privacy(leg.privacy, caller),
                    diversion=own, diversion_history=list(leg.diversion),
                    reason=own[0].rsplit('reason=', 1)[-1] if own else None)
        step.update(fields)
        self.steps.append(step)
        return step

    def original_caller(self, relay, leg):
        """routing.original_caller of a Relay (a trunk leg, a mobile): a caller from the trunk
        presents caller.calling_number (none given: it presents no number, anonymous)."""
        caller = self.caller
        return routing.original_caller(relay, leg.origin, lambda: routing.calling_number(
            self.snap, caller.calling_number or '', caller.source))

    def end(self, code, reason, by=None):
        self.final = {'code': code, 'reason': reason, 'by': by}

    def limit_refusal(self, charge):
        """The core's refusal of an outside leg, if a limit of zero calls stops even the first."""
        for limit in routing.outside_call_limits(self.snap, charge):
            refusal = limit.refusal(0, 0)
            if refusal is not None:
                return refusal
        return None

    def relay(self, leg):
        """A Relay leg: the trunk or the media service; its far end answers for itself. Returns
        'no_answer' when the call goes on after it (an announcement that leads somewhere, which
        the media service answers 480 once played), else None."""
        plan = leg.plan
        media = routing.media_request(plan)
        if media is not None and media[0] != 'voicemail':
            return self.media(leg, *media)
        if plan.charge is not None:
            refusal = self.limit_refusal(plan.charge)
            if refusal is not None:
                self.end(refusal.code, refusal.reason)
                return
        via = 'voicemail' if plan.destination else 'trunk'
        number = _uri_user(plan.uri)
        self.step(leg, via, uri=plan.uri, destination=plan.destination or plan.uri, number=number,
                  ring_time=plan.ring_time, headers=dict(plan.headers))
        reply = self.circ.reply(set([number, via]))
        if reply is None and media is not None and plan.destination == self.snap.media_service:
            # The PBX's own media service answers a mailbox that is there (docs/media.md).
            reply = 'answer'
            self.steps[-1]['mailbox'] = media[1].get('mailbox')
        if reply == 'answer':
            self.end(200, 'OK', via if via == 'voicemail' else number)
        elif reply == 'busy':
            self.end(_BUSY, 'Busy Here', number)
        elif reply == 'decline':
            self.end(_DECLINED, 'Decline', number)
        else:
            self.end(None, 'the answer of the %s' % ('media server' if plan.destination else 'trunk'))
        return None

    def notes(self, leg):
        """A step per schedule the leg's decision passed (routing.ScheduleNote)."""
        for note in getattr(leg.plan, 'notes', ()):
            tenant = self.snap.tenants.get(note.tenant)
            schedule = tenant.schedules.get(note.name) if tenant else None
            self.steps.append(dict(action='schedule', at=self.elapsed, identity=leg.identity, from_identity=leg.identity,
                                   privacy=bool(leg.privacy), diversion=[], diversion_history=list(leg.diversion),
                                   reason=None, name=note.name, open=note.open, destination=note.destination,
                                   destination_words=destination_words(tenant, note.destination),
                                   timezone=schedule.timezone if schedule else None))

    def media_origin(self, leg, domain):
        """The original caller as the router tells it from the media service's call (routing.media_caller of
        the identity the media service received)."""
        if leg.identity:
            return routing.media_caller(self.snap, domain, leg.identity)
        caller = self.caller  # a call from the trunk: the carrier's calling number
        return routing.media_caller(self.snap, domain, 'sip:%s@carrier.invalid' % caller.calling_number
                                    if caller.calling_number else None)

    def placed(self, leg, service, number, dest):
        """What the media service does for a menu or queue that leads to ``dest``: a call through the router
        (route_from_media) to go on with, or None when there is no destination (goodbye)."""
        if dest is None:
            return None
        domain = _uri_domain(leg.plan.uri)
        to, user = routing.origin_request(dest)
        plan = routing.route_from_media(self.snap, domain, user, routing.origin_header(service, number, to),
                                        self.media_origin(leg, domain), self.now + self.elapsed)
        return _Continue(plan, {'identity': leg.identity, 'privacy': leg.privacy, 'diversion': (),
                                'origin': getattr(plan, 'origin', None)})

    def next_key(self):
        if not self.digits:
            return None
        return self.digits.pop(0)

    def menu(self, leg, number):
        """An IVR menu: with route_info's ``digits``, which key led where (the flow goes on there, as the media
        service places the call); without them, or when they run out, the caller hears the menu."""
        plan = leg.plan
        tenant = self.snap.by_domain.get(_uri_domain(plan.uri))
        menu = tenant.targets[number]
        step = self.step(leg, 'ivr', uri=plan.uri, destination=plan.destination, headers=dict(plan.headers),
                         number=number, name=menu.name, greeting=menu.greeting, menu=menu.menu, keys=dict(menu.keys),
                         timeout=menu.timeout, max_tries=menu.max_tries, invalid=menu.invalid, no_input=menu.no_input,
                         direct_dial=menu.direct_dial, pressed=[], choice=None, key=None, chosen=None,
                         choices=dict((key, destination_words(tenant, dest)) for key, dest in menu.keys.items()))
        tries = 0
        while True:
            entry = self.next_key()
            if entry is None:  # the caller listens (no more digits given)
                self.end(200, 'OK', 'ivr %s' % number)
                return None
            step['pressed'].append(entry)
            if entry == NO_KEY:
                self.elapsed += menu.timeout
                tries, last = tries + 1, 'no_input'
            elif entry in menu.keys and menu.keys[entry] == number:
                tries = 0  # the menu again
                continue
            elif entry in menu.keys:
                step.update(choice='key', key=entry, chosen=menu.keys[entry])
                break
            elif menu.direct_dial and getattr(tenant.targets.get(entry), 'kind', None) == EXTENSION:
                step.update(choice='direct_dial', key=entry, chosen=entry)
                break
            else:
                tries, last = tries + 1, 'invalid'
            if tries >= menu.max_tries:
                step.update(choice=last, chosen=menu.invalid if last == 'invalid' else menu.no_input)
                break
        step['chosen_words'] = destination_words(tenant, step['chosen'])
        placed = self.placed(leg, IVR, number, step['chosen'])
        if placed is None:
            self.end(200, 'OK', 'ivr %s' % number)
        return placed

    def queue(self, leg, number):
        """A queue: the member ``answer`` names rings (as the media service has the router ring it) and answers;
        else nobody answers within max_wait and the overflow follows; with nobody logged in, no_members."""
        plan = leg.plan
        tenant = self.snap.by_domain.get(_uri_domain(plan.uri))
        queue = tenant.targets[number]
        registered = self.circ.registered
        members, ready = [], []
        for ext_number, penalty, logged_in in sorted(queue.members, key=lambda m: m[1]):
            ext = tenant.targets.get(ext_number)
            names = set([ext_number]) | set(getattr(ext, 'accounts', ()))
            members.append({'extension': ext_number, 'penalty': penalty, 'logged_in': logged_in})
            can_ring = ext is not None and logged_in and not ext.dnd and ext.available and \
                (registered is None or bool(names & registered))
            if can_ring:
                ready.append((ext_number, names))
        logged = [m['extension'] for m in members if m['logged_in']]
        answering = next((ext_number for ext_number, names in ready if self.circ.reply(names) == 'answer'), None)
        step = self.step(leg, 'queue', uri=plan.uri, destination=plan.destination, headers=dict(plan.headers),
                         number=number, name=queue.name, strategy=queue.strategy, members=members, logged_in=logged,
                         ready=[m for m, dummy in ready], member_ring_time=queue.member_ring_time, max_wait=queue.max_wait,
                         overflow=queue.overflow, no_members=queue.no_members,
                         overflow_words=destination_words(tenant, queue.overflow),
                         no_members_words=destination_words(tenant, queue.no_members))
        if not logged and queue.no_members:
            step['outcome'] = 'no_members'
            return self.placed(leg, QUEUE, number, queue.no_members)
        if answering is not None:
            step.update(outcome='answered', answered_by=answering)
            domain = _uri_domain(plan.uri)
            member = routing.route_from_media(self.snap, domain, answering, routing.origin_header(QUEUE, number, 'member'),
                                              self.media_origin(leg, domain), self.now + self.elapsed)
            return _Continue(member, {'identity': leg.identity, 'privacy': leg.privacy, 'diversion': (),
                                      'origin': getattr(member, 'origin', None)})
        step['outcome'] = 'overflow'
        self.elapsed += queue.max_wait
        placed = self.placed(leg, QUEUE, number, queue.overflow)
        if placed is None:
            self.end(200, 'OK', 'queue %s' % number)
        return placed

    def media(self, leg, service, params):
        """A leg the media service answers itself that is no caller's voicemail: an announcement
        (played, then the call goes on where it leads, or ends), the mailbox menus, an IVR menu, a queue,
        a conference room."""
        plan = leg.plan
        if service == 'ivr':
            return self.menu(leg, params.get('number'))
        if service == 'queue':
            return self.queue(leg, params.get('number'))
        if service == 'conference':
            tenant = self.snap.by_domain.get(_uri_domain(plan.uri))
            room = tenant.targets.get(params.get('number'))
            self.step(leg, 'conference', uri=plan.uri, destination=plan.destination, headers=dict(plan.headers),
                      number=params.get('number'), name=getattr(room, 'name', None),
                      max_participants=getattr(room, 'max_participants', None))
            self.end(200, 'OK', 'conference %s' % params.get('number'))
            return None
        if service == 'announcement':
            self.step(leg, 'announcement', uri=plan.uri, destination=plan.destination, name=params.get('name'),
                      then=params.get('then') == 'yes', headers=dict(plan.headers))
            if plan.context:
                return 'no_answer'
            self.end(200, 'OK', 'announcement %s' % params.get('name'))
            return None
        self.step(leg, 'mailbox', uri=plan.uri, destination=plan.destination, mailbox=params.get('mailbox'),
                  pin=params.get('pin') == 'yes', headers=dict(plan.headers))
        self.end(200, 'OK', 'the mailbox menu')
        return None

    def ring(self, leg):
        """A Ring leg: returns its outcome for after_failure, 'unregistered' when nothing could
        ring, or None when it ended the call (answered)."""
        plan = leg.plan
        ctx = routing.Context.decode(plan.context)
        tenant = self.snap.tenants.get(ctx.tenant)
        member = routing.is_member_ring(plan.context)
        if member:  # a queue member's phones (route_from_media, to=member)
            ctx = routing.Context(ctx.tenant, ctx.target[len(routing.MEMBER_MARK):])
        target = tenant.targets.get(ctx.target) if tenant else None
        registered = self.circ.registered
        ringing = [aor for aor in plan.aors
                   if registered is None or _branch_names(tenant, aor) & registered]
        mobile = plan.mobile
        if mobile is not None and mobile.charge is not None and self.limit_refusal(mobile.charge) is not None:
            mobile = None  # over a limit: the phones ring, the mobile does not
        branches = [(aor.split('@', 1)[0], _branch_names(tenant, aor)) for aor in ringing]
        if mobile is not None:
            number = _uri_user(mobile.uri)
            branches.append((number, set([number, 'trunk', 'mobile'])))
        members = []
        for aor in plan.aors:
            account = tenant.accounts.get(aor.split('@', 1)[0]) if tenant else None
            if account is not None and account.extension.number not in members:
                members.append(account.extension.number)
        step = self.step(leg, 'ring', tenant=ctx.tenant, target=ctx.target,
                         target_kind=getattr(target, 'kind', None), target_name=getattr(target, 'name', None),
                         extensions=members, accounts=[aor.split('@', 1)[0] for aor in plan.aors],
                         ringing=[name for name, dummy in branches], mobile=_uri_user(mobile.uri) if mobile else None,
                         ring_time=plan.ring_time, mobile_identity=None, mobile_from_identity=None,
                         mobile_privacy=None, mobile_diversion=[], queue_member=member)
        if mobile is not None:  # the mobile's branch presents its own identity, From and diversion
            caller = self.original_caller(mobile, leg)
            step.update(mobile_identity=mobile.identity, mobile_from_identity=caller or mobile.identity,
                        mobile_privacy=routing.forwarded_privacy(mobile.privacy or leg.privacy, caller),
                        mobile_diversion=list(mobile.diversion) + list(leg.diversion))
        if not branches:
            step['outcome'] = 'unregistered'
            return 'unregistered'
        replies = [(name, self.circ.reply(names)) for name, names in branches]
        answered = [name for name, reply in replies if reply == 'answer']
        if answered:
            step.update(outcome='answered', answered_by=answered[0])
            self.end(200, 'OK', answered[0])
            return None
        # tm's pick of the branches' replies: a 6xx at once (it cancels the branches still ringing,
        # RFC 3261 16.7), else a ring that ran out (408) before busy (486).
        if any(reply == 'decline' for dummy, reply in replies):
            code, timed_out = _DECLINED, False
        else:
            timed_out = any(reply is None for dummy, reply in replies)
            code = _TIMED_OUT if timed_out else _BUSY
        outcome = routing.failure_outcome(code, timed_out)
        step['outcome'] = outcome
        step['reply'] = code
        if timed_out:
            self.elapsed += plan.ring_time
        return outcome


def simulate(snap, caller, dialled, now, circumstances, setting_outcome=None, digits=None):
    """The call flow of one call: {'steps': [...], 'final': {'code', 'reason', 'by'}}.
    ``setting_outcome(PhoneSetting)`` answers a feature code (try_setting); None: the
    feature code's step is reported without its answer. ``digits``: what the caller presses at the
    menus it reaches, in order (check_digits)."""
    circumstances.check(caller.tenant)
    flow = _Flow(snap, caller, circumstances, now, check_digits(caller.tenant, digits))
    if caller.from_trunk:
        plan = routing.route_inbound(snap, dialled, caller.source, now)
    else:
        plan = routing.route_from_account(snap, snap.tenants[caller.tenant].domain, caller.username, dialled, now)
    if isinstance(plan, routing.PhoneSetting):
        flow.steps.append({'action': 'feature_code', 'at': 0, 'tenant': plan.tenant, 'extension': plan.extension,
                           'setting': plan.request})
        if plan.kind == QUEUE:
            flow.steps[-1]['queues'] = list(plan.keys)  # the login of these queues (*44, *45)
        outcome = setting_outcome(plan) if setting_outcome else None
        if outcome is None:
            flow.end(None, 'the answer of the feature code (not tried)')
        else:
            flow.end(outcome.code, outcome.reason)
        return _result(flow)
    before = None
    while flow.final is None and len(flow.steps) < _MAX_STEPS:
        outcome = None
        for leg in routing.legs(snap, plan, now, before):
            flow.notes(leg)
            if isinstance(leg.plan, routing.Reject):
                flow.end(leg.plan.code, leg.plan.reason)
                break
            if isinstance(leg.plan, routing.Relay):
                outcome = flow.relay(leg)
                break
            outcome = flow.ring(leg)
            if outcome != 'unregistered':
                break
        if flow.final is not None:
            break
        if isinstance(outcome, _Continue):  # the media service places a call through the router
            plan, before = outcome.plan, outcome.before
            continue
        # The failure route: the next decision starts from what the failed branches carried.
        before = {'identity': leg.identity, 'privacy': leg.privacy, 'diversion': leg.diversion, 'origin': leg.origin}
        plan = routing.after_reply(snap, leg.plan.context, outcome, now)
        if plan is None:
            flow.end(flow.steps[-1].get('reply'), 'the callee\'s own answer')
    if flow.final is None:
        flow.end(480, 'Temporarily Unavailable')
    return _result(flow)


def _result(flow):
    return {'steps': flow.steps, 'final': flow.final, 'summary': summarise(flow.steps, flow.final)}


def _setting_words(setting):
    """A feature code's setting (the extension module's options it sets) in words: 'Do Not Disturb on',
    'no-answer forward to 11', 'unconditional forward off'."""
    words = []
    for field, value in sorted(setting.items()):
        if field == 'logged_in':
            words.append('log %s' % ('in' if value else 'out'))
        elif field == 'forwarding' and isinstance(value, dict):
            words.extend('%s forward %s' % (kind.replace('_', '-'), 'to %s' % dest if dest else 'off')
                         for kind, dest in sorted(value.items()))
        elif isinstance(value, bool):
            words.append('%s %s' % ('Do Not Disturb' if field == 'dnd' else field, 'on' if value else 'off'))
        else:
            words.append('%s %s' % (field, value))
    return ', '.join(words)


def summarise(steps, final):
    """One line per step and one for the final answer, as a person would say it."""
    lines = []
    for step in steps:
        why = ' (Diversion %s)' % step['reason'] if step.get('reason') else ''
        if step['action'] == 'ring':
            what = '%s %s%s' % (step['target_kind'] or 'target', step['target'],
                                ' %s' % step['target_name'] if step['target_name'] else '')
            if step.get('queue_member'):
                what += ' (queue member)'
            if step['target_kind'] == 'group':
                what += ' (%s)' % ', '.join(step['extensions'])
            if step['outcome'] == 'unregistered':
                lines.append('%ds: ring %s%s: nobody registered, nothing rings' % (step['at'], what, why))
                continue
            result = {'answered': 'answered by %s' % step.get('answered_by'), 'busy': 'busy', 'no_answer': 'no answer'}[
                step['outcome']]
            lines.append('%ds: ring %s%s: %s for %ss: %s' % (step['at'], what, why, ', '.join(step['ringing']),
                                                             step['ring_time'], result))
        elif step['action'] == 'voicemail':
            lines.append('%ds: voicemail %s on %s%s' % (step['at'], step['number'], step['destination'], why))
        elif step['action'] == 'announcement':
            lines.append('%ds: announcement %s%s' % (step['at'], step['name'], ', then on' if step['then'] else
                                                     ', then the call ends'))
        elif step['action'] == 'mailbox':
            whose = ' of %s' % step['mailbox'] if step['mailbox'] else ' (mailbox number, then PIN)'
            pin = ' with PIN' if step['pin'] and step['mailbox'] else ''
            lines.append('%ds: the mailbox menu%s%s' % (step['at'], whose, pin))
        elif step['action'] == 'trunk':
            lines.append('%ds: out through the trunk to %s%s' % (step['at'], step['number'], why))
        elif step['action'] == 'feature_code':
            queues = step.get('queues')
            where = ''
            if queues:
                where = ' %s queue%s %s' % ('to' if step['setting'].get('logged_in') else 'of',
                                            's' if len(queues) > 1 else '', ', '.join(queues))
            words = _setting_words(step['setting'])
            lines.append('0s: feature code for extension %s: %s%s' % (step['extension'], words, where))
        elif step['action'] == 'schedule':
            state = 'open' if step['open'] else 'closed'
            lines.append('%ds: schedule %s (%s): %s -> %s' % (
                step['at'], step['name'], step['timezone'], state, step['destination_words']))
        elif step['action'] == 'ivr':
            lines.append('%ds: %s' % (step['at'], _menu_words(step)))
        elif step['action'] == 'queue':
            lines.append('%ds: %s' % (step['at'], _queue_words(step)))
        elif step['action'] == 'conference':
            lines.append('%ds: conference room %s%s: answered by the media service' % (
                step['at'], step['number'], ' %s' % step['name'] if step['name'] else ''))
    if final['code'] is None:
        lines.append('final: %s' % final['reason'])
    else:
        lines.append('final: %d %s' % (final['code'], final['reason']))
    return lines


def _menu_words(step):
    """An IVR step in words: 'ivr 700 Zentrale: key 2 -> queue 600 Support'."""
    what = 'IVR menu %s%s' % (step['number'], ' %s' % step['name'] if step['name'] else '')
    choice = step['choice']
    if choice == 'key':
        return '%s: key %s -> %s' % (what, step['key'], step['chosen_words'])
    if choice == 'direct_dial':
        return '%s: dialled %s directly -> %s' % (what, step['key'], step['chosen_words'])
    if choice == 'invalid':
        return '%s: invalid key %s, %d tries -> %s' % (what, step['pressed'][-1], step['max_tries'], step['chosen_words'])
    if choice == 'no_input':
        return '%s: no key, %d tries of %ds -> %s' % (what, step['max_tries'], step['timeout'], step['chosen_words'])
    keys = ', '.join('%s -> %s' % item for item in step['choices'].items()) or 'no keys'
    return '%s: %s; waits for a key' % (what, keys)


def _queue_words(step):
    """A queue step in words: 'queue 600 Support (ring_all: 11, 12; max wait 120s): overflow after 120s to ...'."""
    name = ' %s' % step['name'] if step['name'] else ''
    who = ', '.join(step['logged_in']) or 'nobody logged in'
    what = 'queue %s%s (%s: %s; max wait %ds)' % (step['number'], name, step['strategy'], who, step['max_wait'])
    if step['outcome'] == 'answered':
        return '%s: member %s answers' % (what, step['answered_by'])
    if step['outcome'] == 'no_members':
        return '%s: no member logged in -> %s' % (what, step['no_members_words'])
    return '%s: nobody answers, overflow after %ds to %s' % (what, step['max_wait'], step['overflow_words'])
