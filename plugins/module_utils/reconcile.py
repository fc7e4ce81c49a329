# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reconcile engine: desired vs current -> changes -> validated write.

One entry point, ``reconcile()``, for any set of objects of one tenant: the
single-object modules pass one object, the whole-tenant module passes them
all. It loads the tenant's current state inside the caller's transaction,
merges each request over the current object (left-out fields stay as they
are), plans the changes, validates the tenant *as it would be* after them,
and only then writes. A broken rule raises ValidationFailed before any row
is touched; the transaction rolls back either way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import integrity, model
import re

from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError, ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.model import ANNOUNCEMENT, CHILD_KINDS, EXTENSION, TENANT


class _Absent(object):
    """Marks an object the request wants removed."""

    def __repr__(self):
        return 'ABSENT'


ABSENT = _Absent()


class Change(object):
    __slots__ = ('kind', 'key', 'before', 'after')

    def __init__(self, kind, key, before, after):
        self.kind = kind
        self.key = key
        self.before = before
        self.after = after

    @property
    def action(self):
        if self.before is None:
            return 'create'
        if self.after is None:
            return 'delete'
        return 'update'

    def diff(self, tenant_name):
        """An Ansible diff entry; secrets show as set/changed, never as values."""
        header = model.describe(self.kind, self.key, tenant_name if self.kind != TENANT else None)
        return {
            'before_header': header if self.before is not None else '%s (absent)' % header,
            'after_header': header if self.after is not None else '%s (absent)' % header,
            'before': model.diff_view(self.kind, self.before) or {},
            'after': model.diff_view(self.kind, self.after, self.before) or {},
        }

    def summary(self, tenant_name):
        return '%s %s' % (self.action, model.describe(self.kind, self.key, tenant_name if self.kind != TENANT else None))


class Result(object):
    def __init__(self, tenant_name, changes, previous, state, warnings=()):
        self.tenant_name = tenant_name
        self.changes = changes
        self.previous = previous
        self.state = state
        # Violations accepted with a warning (integrity.check's ``warnings``): the task says them.
        self.warnings = list(warnings)

    @property
    def changed(self):
        return bool(self.changes)

    def diffs(self):
        return [c.diff(self.tenant_name) for c in self.changes]


class _WithAudio(object):
    """The transaction as integrity's Lookups, with the audio a change brings counted as there."""

    def __init__(self, txn, audio):
        self._txn = txn
        self._audio = audio

    def __getattr__(self, name):
        return getattr(self._txn, name)

    def has_audio(self, tenant, digest):
        return digest in self._audio or self._txn.has_audio(tenant, digest)

    def audio_duration(self, tenant, digest):
        if digest in self._audio:
            return self._audio[digest][1]
        return self._txn.audio_duration(tenant, digest)


def reconcile(txn, tenant_name, tenant_request=None, children=None, purge=(), create=True, whole_tenant=False,
              audio=None):
    """Plan, validate and write a tenant's requested objects.

    tenant_request: dict of tenant options, ABSENT to remove the tenant, or
    None to leave the tenant object as it is. children: {kind: {key: request
    dict or ABSENT}}. purge: kinds whose objects not named in ``children``
    are removed (the whole-tenant module's declarative mode). create=False
    only changes objects that exist: a request for a missing one is a
    ``reference`` violation (a phone's feature code never creates anything).
    whole_tenant: the request is a whole tenant document, which names its own numbers: a
    ``main_number`` or ``emergency_caller_id`` that is not one of them is refused. Otherwise
    (one object at a time) a number that no tenant holds yet is accepted, and the Result's
    ``warnings`` say so (integrity.check).
    audio: {SHA-256: (WAV bytes, duration in ms)} the requested objects refer to (an announcement's
    converted WAV, the audio of a tenant document): counted as there when the tenant is judged, and
    kept with the change. Audio that no announcement or mailbox greeting refers to after the change
    (an announcement's old audio, given audio nothing uses) is removed in the same transaction.
    """
    children = children or {}
    audio = audio or {}
    if audio:
        txn = _WithAudio(txn, audio)
    violations = []
    # Objects whose own fields are wrong: left out of the integrity pass, together with what it says
    # about them, which would only repeat their problem (see follow_on_filter).
    failed = []
    previous = txn.load_tenant(tenant_name)
    changes = []

    if tenant_request is ABSENT:
        tenant = None
    elif tenant_request is not None:
        try:
            tenant = model.merge(TENANT, tenant_name, tenant_name, previous.tenant, tenant_request, None)
        except ValidationFailed as e:
            violations.extend(e.violations)
            tenant = _without_bad_fields(tenant_name, previous.tenant, tenant_request, e.violations)
    else:
        tenant = previous.tenant
    if tenant != previous.tenant:
        changes.append(Change(TENANT, tenant_name, previous.tenant, tenant))

    if tenant is None and violations:
        raise ValidationFailed(violations)  # a new tenant too broken to judge its objects by
    if tenant is None and any(req is not ABSENT for reqs in children.values() for req in reqs.values()):
        violations.append(RuleError('tenant', 'reference', 'tenant %s does not exist; create it first' % tenant_name)
                          .at(model.describe(TENANT, tenant_name)))
        raise ValidationFailed(violations)

    for kind in CHILD_KINDS:
        requests = children.get(kind, {})
        named = set()
        for raw_key, request in requests.items():
            try:
                key = model.normalise_key(kind, raw_key, tenant)
            except RuleError as e:
                if tenant is None and request is ABSENT:
                    continue  # nothing to remove where there is no tenant
                violations.append(e.at(model.describe(kind, raw_key, tenant_name)))
                violations.extend(field_violations(kind, tenant_name, raw_key, request, tenant))
                failed.append((kind, raw_key, request))
                continue
            if key in named:
                violations.append(RuleError(model.KEY_FIELD[kind], 'requested_twice',
                                            '%r names the same %s as another entry of this request' % (raw_key, kind))
                                  .at(model.describe(kind, key, tenant_name)))
                continue
            named.add(key)
            current = previous.get(kind, key)
            if current is None and not create and request is not ABSENT:
                violations.append(RuleError(model.KEY_FIELD[kind], 'reference', '%s does not exist'
                                            % model.describe(kind, key, tenant_name))
                                  .at(model.describe(kind, key, tenant_name)))
                continue
            if request is ABSENT:
                desired = None
            elif current is not None and model.unchanged_by(kind, current, request):
                continue  # already exactly so: what a whole tenant applied again mostly is
            else:
                try:
                    desired = model.merge(kind, tenant_name, key, current, request, tenant)
                except ValidationFailed as e:
                    violations.extend(e.violations)
                    failed.append((kind, key, request))
                    continue
            if desired != current:
                changes.append(Change(kind, key, current, desired))
        if kind in purge:
            for key, current in sorted(previous.objects(kind).items()):
                if key not in named:
                    changes.append(Change(kind, key, current, None))
    if violations:
        # Judge the rest as well, so that a whole tenant's every problem is reported at once.
        if tenant is not None:
            state = previous.with_changes(changes)
            touched = set((c.kind, c.key) for c in changes)
            more = integrity.check(state, previous, txn, touched, None if whole_tenant else []) + \
                _realm_change(previous, state, changes)
            violations.extend(follow_on_filter(mentions(failed))(more))
        raise ValidationFailed(violations)

    state = previous.with_changes(changes)
    if not changes:
        # Nothing changes, so nothing new to check: the stored tenant passed these checks when it was
        # written (an unchanged 10,000-extension tenant applied again costs no full integrity pass).
        return Result(tenant_name, changes, previous, state)
    warnings = None if whole_tenant else []
    violations = integrity.check(state, previous, txn, set((c.kind, c.key) for c in changes), warnings)
    violations.extend(_realm_change(previous, state, changes))
    if violations:
        raise ValidationFailed(violations)
    if changes:
        txn.apply(tenant_name, changes)
        _keep_audio(txn, state, changes, audio)
    return Result(tenant_name, changes, previous, state, warnings or ())


def _keep_audio(txn, state, changes, audio):
    """After the writes: the audio the change brings is kept, and what no longer has a user goes
    (the old audio of a changed or removed announcement, given audio that nothing refers to)."""
    if state.tenant is None or not (audio or any(c.kind == ANNOUNCEMENT for c in changes)):
        return  # a removed tenant's audio goes with it
    tenant_name = state.name
    for _digest, (data, duration_ms) in sorted(audio.items()):
        txn.put_audio(tenant_name, data, duration_ms)
    replaced = set()
    for c in changes:
        if c.kind == ANNOUNCEMENT and c.before is not None and (c.after is None or c.after['audio'] != c.before['audio']):
            replaced.add(c.before['audio'])
    txn.prune_audio(tenant_name, (replaced | set(audio)) - set([None]))


def field_violations(kind, tenant_name, key, request, tenant):
    """The field rules a request breaks, judged as for a new object: what an object whose key is wrong
    has wrong besides, so that one answer holds all of it. [] for a removal, or for a child of a tenant
    that does not exist (no dial plan to judge its numbers by)."""
    if not isinstance(request, dict) or (kind != TENANT and tenant is None):
        return []
    try:
        model.merge(kind, tenant_name, key, None, request, tenant)
    except ValidationFailed as e:
        return e.violations
    return []


def _without_bad_fields(tenant_name, current, request, violations):
    """The tenant as requested minus the fields that broke a rule (they keep their current or default
    value), so that its objects can still be judged; None when even that is not a valid tenant."""
    bad = set(re.split(r'[.\[]', v.field)[0] for v in violations)
    try:
        return model.merge(TENANT, tenant_name, tenant_name, current,
                           dict((k, v) for k, v in request.items() if k not in bad), None)
    except (ValidationFailed, RuleError):
        return current


def mentions(objects):
    """How the integrity pass names these (kind, key, request) objects in its messages."""
    phrases = set()
    for kind, key, request in objects:
        phrases.update(['%s %s' % (kind, key), 'target %s' % key])
        if isinstance(request, dict):
            for account in request.get('sip_accounts') or []:
                if isinstance(account, dict) and isinstance(account.get('username'), str):
                    phrases.add('SIP account %s' % account['username'])
    return phrases


def follow_on_filter(phrases):
    """A filter dropping violations that mention one of the phrases: consequences of an object left
    out because its own fields are wrong (a group member that 'does not exist', say)."""
    if not phrases:
        return list
    pattern = re.compile('(%s)(?![\\w.:-])' % '|'.join(re.escape(p) for p in sorted(phrases)))
    return lambda violations: [v for v in violations if not pattern.search(v.obj + ': ' + v.message)]


def _realm_change(previous, state, changes):
    """A stored HA1 is bound to the SIP domain (the digest realm): changing the
    domain needs a new password for every SIP account in the same change."""
    if previous.tenant is None or state.tenant is None or previous.tenant['sip_domain'] == state.tenant['sip_domain']:
        return []
    stale = []
    for key, ext in sorted(state.objects(EXTENSION).items()):
        before = dict((a['username'], a['ha1']) for a in (previous.get(EXTENSION, key) or {}).get('sip_accounts', []))
        stale.extend(a['username'] for a in ext['sip_accounts'] if before.get(a['username']) == a['ha1'])
    if not stale:
        return []
    return [RuleError('sip_domain', 'realm_change',
                      'the SIP domain is the digest realm of the stored passwords; give new passwords for %s in the same change'
                      % ', '.join(stale)).at(model.describe(TENANT, state.name))]
