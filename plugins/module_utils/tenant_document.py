# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A whole tenant as one document: parse, apply through the reconcile engine, summarise, export.

The document has exactly the shape ``tenant_info`` returns (``tenant``, ``numbers``,
``extensions``, ``devices``, ``groups``, ``phonebook``), so that export, edit, apply
round-trips with no change. ``apply_document(txn, document, state)`` applies one to any open
write transaction: a directory file, or an empty in-memory directory
(``Directory(':memory:')``) to validate a tenant file offline or to simulate routing on a
document that is not applied yet. Every problem of the document, its shape as well as every
rule and integrity check of the engine, is reported at once as one ValidationFailed.

States follow the network resource modules: ``merged`` (listed objects get the listed
fields, the rest stays), ``replaced`` (each listed object becomes exactly as written, objects
not listed stay), ``overridden`` (the tenant becomes exactly the document: objects not
listed are removed), ``deleted`` (the tenant and everything in it).

Plain Python: PyYAML is imported only when a YAML file is read or written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import hashlib
import json
import os

from ansible_collections.voxplane.pbx.plugins.module_utils import audio, integrity, model, tenant_csv
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError, ValidationFailed, Violation
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    ANNOUNCEMENT, CHILD_KINDS, CONFERENCE, DEVICE, EXTENSION, GROUP, IVR, KEY_FIELD, NUMBER, PHONEBOOK, QUEUE, SCHEDULE,
    TENANT,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import ABSENT, follow_on_filter, mentions, reconcile
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

MERGED, REPLACED, OVERRIDDEN, DELETED, VALIDATED = 'merged', 'replaced', 'overridden', 'deleted', 'validated'
STATES = (MERGED, REPLACED, OVERRIDDEN, DELETED, VALIDATED)

# Document section -> kind, in the order tenant_info returns them.
SECTIONS = (('numbers', NUMBER), ('extensions', EXTENSION), ('devices', DEVICE), ('groups', GROUP),
            ('phonebook', PHONEBOOK), ('announcements', ANNOUNCEMENT), ('schedules', SCHEDULE), ('ivrs', IVR),
            ('queues', QUEUE), ('conferences', CONFERENCE))
SECTION_OF = dict((kind, section) for section, kind in SECTIONS)
# The recordings the announcements play, when the export carries them (tenant_info audio: true): a list of
# {sha256, duration_ms, wav_base64}, the WAV as the directory keeps it (16-bit PCM, mono, 8000 Hz).
AUDIO_SECTION = 'audio'
AUDIO_FIELDS = ('sha256', 'duration_ms', 'wav_base64')
# What tenant_info returns beside the document: read-only, ignored on the way in.
READ_ONLY_KEYS = ('exists', 'number_plan', 'generation', 'changed', 'failed', 'invocation', 'files', 'dest',
                  'csv_skipped', 'summary', 'mailboxes')

# The sub-fields of structured fields (lists of mappings, mappings) are those of the model's field table
# (model.SUB_FIELDS); the shape a sub-field's value must have follows its type there (see _check_value).
_SHAPE_OF_TYPE = {'str': None, 'bool': False, 'int': 0, 'list': [], 'dict': {}}
# Fields whose default (None) does not tell their shape: a device's stored activation code is a mapping.
_SHAPE = {(DEVICE, 'activation'): {}}
# Fields whose values are secrets: never shown, masked in the task's own output.
SECRET_FIELDS = model.SECRET_FIELDS
_SCALARS = (str, int, float, datetime.date)


class TenantDocument(object):
    """A parsed document: the tenant's name, its request (None: not given), the child requests
    ({kind: {raw key: request}}), and what was wrong with its shape (reported with the engine's
    violations). ``locate`` rewrites a violation to say where in the source it is (CSV: file, row
    and column)."""

    def __init__(self, tenant_name, tenant_request=None, children=None, violations=(), source='config', locate=None,
                 recordings=None):
        self.tenant_name = tenant_name
        self.tenant_request = tenant_request
        self.children = children or dict((kind, {}) for kind in CHILD_KINDS)
        self.violations = list(violations)
        self.source = source
        self.locate = locate or (lambda violation: violation)
        self.from_csv = False
        # The audio the document brings ({sha256: (WAV bytes, duration in ms)}; its AUDIO_SECTION), and
        # whether audio it does not bring is taken as there (judged without a directory).
        self.audio = recordings or {}
        self.assume_audio = False
        # The SHA-256s of recordings the document lists but that were refused (said once, as their own problem).
        self.refused_audio = set()

    def _with(self, sheet):
        """This document as read from a CSV sheet: the sheet's own problems first, and every engine
        violation told as the sheet's file, row and column."""
        self.violations = sheet.violations + self.violations
        self.locate = sheet.locate
        self.from_csv = True
        return self

    def count(self, kind):
        return len(self.children.get(kind, {}))


def _describe_source(source):
    return 'document %s' % source


def _type_name(value):
    return {dict: 'a mapping', list: 'a list', bool: 'a boolean'}.get(type(value), type(value).__name__)


def _check_value(v, obj, field, value, default):
    """The shape of one field against the type of its default: a list, a mapping, a boolean, a whole
    number, or a plain value. None means "not given" (merged leaves the stored value)."""
    if value is None:
        return True
    if isinstance(default, list):
        expected, ok = 'a list', isinstance(value, list)
    elif isinstance(default, dict):
        expected, ok = 'a mapping', isinstance(value, dict)
    elif isinstance(default, bool):
        expected, ok = 'true or false', isinstance(value, bool)
    elif isinstance(default, int):
        expected, ok = 'a whole number', isinstance(value, int) and not isinstance(value, bool)
    else:
        expected, ok = 'a plain value (text or number)', isinstance(value, _SCALARS) and not isinstance(value, bool)
    if not ok:
        v.append(Violation(obj, field, 'type', 'must be %s, got %s %r' % (expected, _type_name(value), value)))
    return ok


_FIELDS = {}


def _fields(kind):
    """(defaults, known field names) of a kind, computed once."""
    if kind not in _FIELDS:
        defaults = model.with_defaults(kind, {})
        known = set(defaults) | set([KEY_FIELD[kind], 'tenant' if kind != TENANT else 'name'])
        _FIELDS[kind] = (defaults, known | set(model.REQUEST_FIELDS.get(kind, ())))
    return _FIELDS[kind]


_NONE = type(None)
_PLAIN_TYPES = frozenset((str, int, float, datetime.date, _NONE))
# The types the quick pass lets through for a sub-field of each type; lists and mappings inside an item
# (a trunk's addresses, a licence's seats) always take the detailed pass.
_FAST_SUB_TYPES = {'str': _PLAIN_TYPES, 'int': _PLAIN_TYPES, 'bool': frozenset((bool, _NONE)),
                   'list': frozenset(), 'dict': frozenset()}
_FAST = {}


def _fast_types(kind):
    """field -> the exact types a well-formed value has, and field -> allowed keys of its items (lists of
    mappings, or a mapping of plain values); what the quick pass over a large document checks."""
    if kind not in _FAST:
        defaults, known = _fields(kind)
        types, items = {}, {}
        for field in known:
            default = _SHAPE.get((kind, field), defaults.get(field))
            if field not in defaults:
                types[field] = frozenset((str, int)) if field == KEY_FIELD[kind] else frozenset((str, _NONE))
            elif isinstance(default, list):
                types[field] = frozenset((list, _NONE))
            elif isinstance(default, dict):
                types[field] = frozenset((dict, _NONE))
            elif isinstance(default, bool):
                types[field] = frozenset((bool, _NONE))
            elif isinstance(default, int):
                types[field] = frozenset((int, _NONE))
            else:
                types[field] = _PLAIN_TYPES
            subs = model.sub_fields(kind, field)
            if subs:
                items[field] = dict((sub.name, _FAST_SUB_TYPES[sub.type]) for sub in subs)
        _FAST[kind] = (types, items)
    return _FAST[kind]


def _well_formed(kind, data):
    """The quick pass: True when every field is known and every value has the right type (most objects
    of a large document); False sends the object through _check_object's detailed pass."""
    types, items = _fast_types(kind)
    for field, value in data.items():
        allowed = types.get(field)
        if allowed is None or type(value) not in allowed:
            return False
        if isinstance(value, list):
            subs = items.get(field)
            for item in value:
                if subs is None:
                    if type(item) not in _PLAIN_TYPES or item is None:
                        return False
                elif not isinstance(item, dict) or not all(type(x) in subs.get(k, ()) for k, x in item.items()):
                    return False
        elif isinstance(value, dict):
            subs = items.get(field)
            if subs is None or not all(type(x) in subs.get(k, ()) for k, x in value.items()):
                return False
    return True


def _check_object(v, kind, obj, data):
    """Unknown fields and wrongly typed values of one object, every one of them."""
    if _well_formed(kind, data):
        return
    defaults, known = _fields(kind)
    for field in sorted(data, key=str):
        if field not in known:
            v.append(Violation(obj, str(field), 'unsupported', 'is not a field of a %s (known: %s)'
                               % (kind, ', '.join(sorted(known)))))
            continue
        value = data[field]
        if field in (KEY_FIELD[kind], 'tenant', 'name') and field not in defaults:
            continue
        if not _check_value(v, obj, field, value, _SHAPE.get((kind, field), defaults.get(field))):
            continue
        subs = dict((sub.name, _SHAPE_OF_TYPE[sub.type]) for sub in model.sub_fields(kind, field))
        names = ', '.join(sub.name for sub in model.sub_fields(kind, field))
        if isinstance(value, list):
            for i, item in enumerate(value):
                path = '%s[%d]' % (field, i)
                if subs:
                    if not isinstance(item, dict):
                        v.append(Violation(obj, path, 'type', 'must be a mapping, got %s %r' % (_type_name(item), item)))
                        continue
                    _check_subs(v, obj, field, path, item, subs, names)
                elif not isinstance(item, _SCALARS) or isinstance(item, bool):
                    v.append(Violation(obj, path, 'type', 'must be a plain value, got %s %r' % (_type_name(item), item)))
        elif isinstance(value, dict) and subs:
            _check_subs(v, obj, field, field, value, subs, names)


def _check_subs(v, obj, field, path, value, subs, names):
    """Unknown sub-fields and wrongly typed sub-field values of one mapping."""
    for sub in sorted(value, key=str):
        if sub not in subs:
            v.append(Violation(obj, '%s.%s' % (path, sub), 'unsupported', 'is not a field of %s (known: %s)' % (field, names)))
        else:
            _check_value(v, obj, '%s.%s' % (path, sub), value[sub], subs[sub])


def _key_text(value):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip() or None


def parse_document(data, tenant_name=None, source='config'):
    """A TenantDocument from a mapping in the shape tenant_info returns. ``tenant_name`` (the
    task's ``tenant`` option) names the tenant when the document does not, and must agree with it
    when it does. Never raises: what is wrong is kept in ``violations``."""
    v = []
    where = _describe_source(source)
    if not isinstance(data, dict):
        v.append(Violation(where, 'document', 'type', 'a tenant document is a mapping with the sections tenant, %s; got %s'
                           % (', '.join(section[0] for section in SECTIONS), _type_name(data))))
        return TenantDocument(tenant_name, violations=v, source=source)
    for key in sorted(data, key=str):
        if key not in ('tenant', AUDIO_SECTION) and key not in dict(SECTIONS) and key not in READ_ONLY_KEYS:
            v.append(Violation(where, str(key), 'unsupported', 'is not a section of a tenant document (known: tenant, %s, %s)'
                               % (', '.join(section[0] for section in SECTIONS), AUDIO_SECTION)))
    tenant_data = data.get('tenant')
    tenant_request = None
    named = None
    if tenant_data not in (None, {}):
        if not isinstance(tenant_data, dict):
            v.append(Violation(where, 'tenant', 'type', 'must be a mapping, got %s' % _type_name(tenant_data)))
        else:
            named = _key_text(tenant_data.get('name'))
            _check_object(v, TENANT, model.describe(TENANT, named or tenant_name or '?'), tenant_data)
            tenant_request = dict((k, val) for k, val in tenant_data.items() if k != 'name')
    name = tenant_name if tenant_name is not None else named
    if name is None:
        v.append(Violation(where, 'tenant.name', 'required', 'name the tenant: in the document (tenant.name) or with the tenant option'))
    elif named is not None and named != str(name).strip():
        v.append(Violation(model.describe(TENANT, name), 'name', 'tenant_mismatch',
                           'the document is tenant %s, the task names tenant %s' % (named, name)))
    else:
        try:
            name = model.normalise_key(TENANT, str(name))
        except RuleError as e:
            v.append(e.at(model.describe(TENANT, name)))
    children = dict((kind, {}) for kind in CHILD_KINDS)
    for section, kind in SECTIONS:
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            v.append(Violation(where, section, 'type', 'must be a list of %s, got %s' % (section, _type_name(items))))
            continue
        key_field = KEY_FIELD[kind]
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                v.append(Violation(where, '%s[%d]' % (section, i), 'type', 'must be a mapping, got %s' % _type_name(item)))
                continue
            key = _key_text(item.get(key_field))
            if key is None:
                v.append(Violation(where, '%s[%d].%s' % (section, i, key_field), 'required',
                                   'every entry of %s needs its %s' % (section, key_field)))
                continue
            obj = model.describe(kind, key, name)
            _check_object(v, kind, obj, item)
            owner = item.get('tenant')
            if owner is not None and name is not None and str(owner).strip() != name:
                v.append(Violation(obj, 'tenant', 'tenant_mismatch', 'belongs to tenant %s, the document is tenant %s' % (owner, name)))
            if key in children[kind]:
                v.append(Violation(obj, key_field, 'requested_twice', '%s is listed twice in %s' % (key, section)))
                continue
            children[kind][key] = dict((k, val) for k, val in item.items() if k not in (key_field, 'tenant'))
    refused = set()
    recordings = _parse_audio(v, where, data.get(AUDIO_SECTION), name, refused)
    document = TenantDocument(name, tenant_request, children, v, source, recordings=recordings)
    document.refused_audio = refused
    return document


def _parse_audio(v, where, items, tenant_name, refused):
    """{sha256: (WAV bytes, duration in ms)} of a document's AUDIO_SECTION; what is wrong goes to ``v``:
    each entry's WAV must be what the directory keeps (audio_format), have the SHA-256 it is listed
    under (audio_hash) and, when given, the duration (audio_duration). The SHA-256s of refused entries go to
    ``refused``."""
    recordings = {}
    if items is None:
        return recordings
    if not isinstance(items, list):
        v.append(Violation(where, AUDIO_SECTION, 'type', 'must be a list of recordings, got %s' % _type_name(items)))
        return recordings
    for i, item in enumerate(items):
        path = '%s[%d]' % (AUDIO_SECTION, i)
        if not isinstance(item, dict):
            v.append(Violation(where, path, 'type', 'must be a mapping, got %s' % _type_name(item)))
            continue
        digest = item.get('sha256')
        obj = model.describe('audio', '%s...' % digest[:12] if isinstance(digest, str) else path, tenant_name)
        problems = len(v)
        if isinstance(digest, str):
            refused.add(digest.strip().lower())  # until it passes
        for key in sorted(item, key=str):
            if key not in AUDIO_FIELDS:
                v.append(Violation(obj, str(key), 'unsupported', 'is not a field of a recording (known: %s)'
                                   % ', '.join(AUDIO_FIELDS)))
        for key in ('sha256', 'wav_base64'):
            if not isinstance(item.get(key), str):
                v.append(Violation(obj, key, 'required' if item.get(key) is None else 'type', 'every recording needs its '
                                   '%s as text' % key))
        if len(v) > problems:
            continue
        try:
            data = base64.b64decode(''.join(item['wav_base64'].split()), validate=True)
        except (binascii.Error, ValueError) as e:
            v.append(Violation(obj, 'wav_base64', 'base64', 'is not base64 text (%s)' % e))
            continue
        try:
            length = audio.engine_duration_ms(data)
        except RuleError as e:
            v.append(e.at(obj))
            continue
        if hashlib.sha256(data).hexdigest() != digest.strip().lower():
            v.append(Violation(obj, 'sha256', 'audio_hash', 'the WAV file has the SHA-256 %s...; it is not the audio '
                               'listed' % hashlib.sha256(data).hexdigest()[:12]))
        elif item.get('duration_ms') not in (None, length):
            v.append(Violation(obj, 'duration_ms', 'audio_duration', 'the WAV file is %d ms long, not %r'
                               % (length, item['duration_ms'])))
        else:
            recordings[digest.strip().lower()] = (data, length)
            refused.discard(digest.strip().lower())
    return recordings


# Reading files ----------------------------------------------------------------------------------

def yaml_loader():
    """PyYAML's C loader when libyaml is built in (several times faster), else the Python one."""
    import yaml
    return getattr(yaml, 'CSafeLoader', None) or yaml.SafeLoader


def read_document(path, tenant_name=None, csv_options=None):
    """A TenantDocument from a file: JSON (fastest), YAML (``.yml``/``.yaml``) or CSV (``.csv``,
    see tenant_csv); the format goes by the file name's ending."""
    where = _describe_source(path)
    lower = path.lower()
    try:
        if lower.endswith('.csv') or csv_options:
            return tenant_csv.read(path, tenant_name, csv_options or {}, parse_document)
        with open(path, 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError) as e:
        return TenantDocument(tenant_name, violations=[Violation(where, 'src', 'file', 'cannot read it (%s)' % (e.strerror or e))],
                              source=path)
    try:
        if lower.endswith('.json'):
            data = json.loads(raw.decode('utf-8'))
        elif lower.endswith(('.yml', '.yaml')):
            import yaml
            data = yaml.load(raw, Loader=yaml_loader())  # nosec: a safe loader
        else:
            return TenantDocument(tenant_name, violations=[Violation(
                where, 'src', 'format', 'the file name must end in .json, .yml, .yaml or .csv')], source=path)
    except UnicodeDecodeError as e:
        return TenantDocument(tenant_name, violations=[Violation(where, 'src', 'encoding', 'is not UTF-8 (%s)' % e)], source=path)
    except ValueError as e:
        return TenantDocument(tenant_name, violations=[Violation(where, 'src', 'json', 'is not valid JSON (%s)' % e)], source=path)
    except Exception as e:  # yaml.YAMLError; PyYAML is imported only for YAML files
        return TenantDocument(tenant_name, violations=[Violation(where, 'src', 'yaml', 'is not valid YAML (%s)' % e)], source=path)
    return parse_document(data, tenant_name, path)


# Applying ------------------------------------------------------------------------------------------

def apply_document(txn, document, state=MERGED, force=False):
    """Apply a TenantDocument (or a mapping in tenant_info's shape) to the tenant in an open write
    transaction, through the reconcile engine; returns its Result. Raises ValidationFailed with
    every violation of the document, located in its source, and writes nothing then.

    The transaction may be on a directory file or on ``Directory(':memory:')``: an empty
    in-memory directory validates a document offline, and the route simulator applies a
    not-yet-applied document there (or over a copy of the live tenant in a rolled-back
    transaction) to route calls on it."""
    if not isinstance(document, TenantDocument):
        document = parse_document(document)
    violations = list(document.violations)
    if document.tenant_name is None or any(v.rule in ('tenant_mismatch',) or v.field == 'tenant.name' for v in violations):
        raise ValidationFailed([document.locate(v) for v in violations])
    name = document.tenant_name
    try:
        if state == DELETED:
            previous = txn.load_tenant(name)
            violations.extend(integrity.check_tenant_removal(previous, force))
            if violations:
                raise ValidationFailed(violations)
            return reconcile(txn, name, ABSENT, {}, purge=CHILD_KINDS)
        if violations:
            # The shape is wrong: still run the engine's field rules on what is readable, so that every
            # problem is reported at once; nothing is written (the transaction raises before apply).
            _collect_engine_violations(txn, document, state, violations)
            raise ValidationFailed(violations)
        tenant_request, children = _requests(document, state)
        return reconcile(_lookups(txn, document), name, tenant_request, children,
                         purge=CHILD_KINDS if state == OVERRIDDEN else (), whole_tenant=True, audio=document.audio)
    except ValidationFailed as e:
        raise ValidationFailed(_unique([document.locate(_restore_hint(v)) for v in e.violations]))


class _AudioAssumed(object):
    """The transaction, except that audio is taken as there: any (a document judged without a directory),
    or ``digests`` (the recordings a document lists but that were refused: their own problem, said once)."""

    def __init__(self, txn, digests=None):
        self._txn = txn
        self._digests = digests

    def __getattr__(self, name):
        return getattr(self._txn, name)

    def has_audio(self, tenant, digest):
        return self._digests is None or digest in self._digests or self._txn.has_audio(tenant, digest)

    def audio_duration(self, tenant, digest):
        return None if self._digests is None or digest in self._digests else self._txn.audio_duration(tenant, digest)


def _lookups(txn, document):
    if document.assume_audio:
        return _AudioAssumed(txn)
    return _AudioAssumed(txn, document.refused_audio) if document.refused_audio else txn


def _restore_hint(violation):
    """A new SIP account without a secret, from a document: say where the secret would come from."""
    if violation.rule == 'required' and violation.field.startswith('sip_accounts[') and violation.field.endswith('.password'):
        return Violation(violation.obj, violation.field, violation.rule, violation.message + '; this directory does not hold '
                         'the account yet and the document has no secret for it (export with secrets: true for a backup)')
    return violation


# A SIP account without password or ha1 taken as one that exists gets this stand-in HA1; it is never stored.
_STAND_IN_HA1 = '0' * 32
# The same for a conference room's moderator PIN.
_STAND_IN_PIN_HASH = '0' * 64


def assume_existing_accounts(document):
    """Take every SIP account of the document that has no password or ha1 as one that exists: it gets a
    stand-in credential (so does the moderator PIN of a conference room that needs one); and take the audio
    its announcements name as there (the document need not bring
    it). What judges a document without a directory does this (the offline validation, the route
    simulator, which authenticate nobody and play nothing): a tenant_info export without secrets and
    audio, the file a repository keeps, is then judged on everything else. Changes the document in place;
    returns it."""
    if isinstance(document, TenantDocument):
        document.assume_audio = True
    for request in document.children.get(EXTENSION, {}).values():
        accounts = request.get('sip_accounts') if isinstance(request, dict) else None
        if isinstance(accounts, list):
            request['sip_accounts'] = [
                dict(acc, ha1=_STAND_IN_HA1) if isinstance(acc, dict) and not acc.get('password') and not acc.get('ha1') else acc
                for acc in accounts]
    for request in document.children.get(CONFERENCE, {}).values():
        # A room that waits for (or ends with) its moderator has a moderator PIN, which an export without
        # secrets leaves out: taken as there, as a SIP account's password is.
        if isinstance(request, dict) and (request.get('wait_for_moderator') or request.get('end_with_moderator')) \
                and not request.get('moderator_pin') and not request.get('moderator_pin_hash'):
            request['moderator_pin_hash'] = _STAND_IN_PIN_HASH
    return document


def validate_document(document):
    """Judge a document on its own, without any directory: its shape, every field rule and, when it
    holds its tenant's settings (a ``tenant`` section), every integrity check inside the tenant, applied
    to an empty in-memory directory; nothing is read or written anywhere. SIP accounts without a secret
    are taken as existing (assume_existing_accounts). A document without tenant settings (a CSV file,
    a partial document) is judged by the field rules with the default dial plan: the checks across
    objects need its tenant. Raises ValidationFailed with every violation; returns counts() of what
    applying it to an empty directory adds."""
    if not isinstance(document, TenantDocument):
        document = parse_document(document)
    assume_existing_accounts(document)
    if document.tenant_request is not None or document.tenant_name is None:
        with Directory(':memory:').transaction(write=True) as txn:
            txn.rollback_at_exit()
            return counts(apply_document(txn, document, MERGED))
    name = document.tenant_name
    tenant = model.merge(TENANT, name, name, None, {'sip_domain': 'tenant.invalid'}, None)
    violations = list(document.violations)
    broken = set(v.obj for v in violations)
    for kind, requests in document.children.items():
        for key, request in requests.items():
            if model.describe(kind, key, name) in broken:
                continue  # its shape is wrong; said already
            try:
                key = model.normalise_key(kind, key, tenant)
            except RuleError as e:
                violations.append(e.at(model.describe(kind, key, name)))
            try:  # the object may exist in the tenant: judged as an update, so nothing is required on creation
                model.merge(kind, name, key, model.with_defaults(kind, {KEY_FIELD[kind]: key}), request, tenant)
            except ValidationFailed as e:
                violations.extend(e.violations)
    if violations:
        raise ValidationFailed(_unique([document.locate(v) for v in violations]))
    table = dict((section, {'added': document.count(kind), 'changed': 0, 'removed': 0}) for section, kind in SECTIONS)
    table['tenant'] = {'added': 0, 'changed': 0, 'removed': 0}
    return table


def _requests(document, state):
    if state in (REPLACED, OVERRIDDEN):
        tenant = model.replacement(TENANT, document.tenant_request) if document.tenant_request is not None else None
        children = dict((kind, dict((key, model.replacement(kind, req)) for key, req in reqs.items()))
                        for kind, reqs in document.children.items())
        return tenant, children
    return document.tenant_request, document.children


class _DryRun(Exception):
    pass


def _collect_engine_violations(txn, document, state, violations):
    """The engine's own violations for the readable part of a document whose shape is wrong."""
    tenant_request, children = _requests(document, state)
    bad = set(violation.obj for violation in violations)
    # Objects with a broken shape are left out: their values may not even have the right types. Nothing
    # is purged (a left-out object is not one the document removes), and what the engine then says about
    # a left-out object (a reference to it, say) is not reported: it would only repeat the shape problem.
    left_out = []
    cleaned = {}
    for kind, reqs in children.items():
        cleaned[kind] = {}
        for key, req in reqs.items():
            if model.describe(kind, key, document.tenant_name) not in bad:
                cleaned[kind][key] = req
            else:
                left_out.append((kind, key, req))
    if tenant_request is not None and model.describe(TENANT, document.tenant_name) in bad:
        tenant_request = None
    keep = follow_on_filter(mentions(left_out))
    try:
        reconcile(_NoWrite(_lookups(txn, document)), document.tenant_name, tenant_request, cleaned, whole_tenant=True,
                  audio=document.audio)
    except ValidationFailed as e:
        violations.extend(keep(e.violations))
    except _DryRun:
        pass


class _NoWrite(object):
    """The transaction, except that writing stops the run (a dry run for more violations)."""

    def __init__(self, txn):
        self._txn = txn

    def __getattr__(self, name):
        return getattr(self._txn, name)

    def apply(self, tenant_name, changes):
        raise _DryRun()


def _unique(violations):
    seen = set()
    out = []
    for v in violations:
        if str(v) not in seen:
            seen.add(str(v))
            out.append(v)
    return out


# Summaries: counts as data, a bounded readable diff --------------------------------------------------

def counts(result):
    """{'tenant': {...}, 'extensions': {'added': n, 'changed': n, 'removed': n}, ...} for every kind."""
    out = dict((name, {'added': 0, 'changed': 0, 'removed': 0}) for name in ['tenant'] + [section[0] for section in SECTIONS])
    words = {'create': 'added', 'update': 'changed', 'delete': 'removed'}
    for change in result.changes:
        name = 'tenant' if change.kind == TENANT else SECTION_OF[change.kind]
        out[name][words[change.action]] += 1
    return out


def _compact(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def field_changes(before, after, path=''):
    """[(field path, before, after)] of what differs between two objects, by field path as the object modules
    name fields: into mappings (``forwarding.no_answer``, ``licences.seats.smart``) and into lists of mappings
    of the same length (``sip_accounts[0].password``); any other list is one value."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            out.extend(field_changes(before.get(key), after.get(key), '%s.%s' % (path, key) if path else str(key)))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after) and \
            all(isinstance(item, dict) for item in before + after):
        out = []
        for i, (old, new) in enumerate(zip(before, after)):
            out.extend(field_changes(old, new, '%s[%d]' % (path, i)))
        return out
    return [(path, before, after)]


def change_lines(change, tenant_name):
    """One change as readable lines: the object and, per field path, before -> after (secrets as set/changed)."""
    header = '%s %s' % ({'create': '+', 'delete': '-', 'update': '~'}[change.action],
                        model.describe(change.kind, change.key, tenant_name if change.kind != TENANT else None))
    before = model.diff_view(change.kind, change.before) or {}
    after = model.diff_view(change.kind, change.after, change.before) or {}
    lines = [header]
    if change.action == 'delete':
        return lines
    if change.action == 'create':
        defaults = model.with_defaults(change.kind, {})
        shown = dict((field, value) for field, value in after.items() if field not in ('tenant', KEY_FIELD[change.kind]))
        for path, _default, value in field_changes(dict((k, defaults.get(k)) for k in shown), shown):
            lines.append('    %s: %s' % (path, _compact(value)))
        return lines
    for path, old, new in field_changes(before, after):
        lines.append('    %s: %s -> %s' % (path, _compact(old), _compact(new)))
    return lines


def diff_text(result, limit=20):
    """The readable, bounded diff of a run: counts per kind, then the first ``limit`` changes."""
    table = counts(result)
    lines = ['tenant %s: %d changes' % (result.tenant_name, len(result.changes))]
    for name, c in table.items():
        if any(c.values()):
            lines.append('  %-11s %d added, %d changed, %d removed' % (name + ':', c['added'], c['changed'], c['removed']))
    shown = result.changes[:max(limit, 0)]
    if shown:
        lines.append('')
    for change in shown:
        lines.extend(change_lines(change, result.tenant_name))
    more = len(result.changes) - len(shown)
    if more > 0:
        lines.append('... and %d more changes not shown (diff_limit %d)' % (more, limit))
    return '\n'.join(lines) + '\n'


# Export ---------------------------------------------------------------------------------------------

def export_document(state, secrets=False, recordings=None):
    """The tenant as a document (tenant_info's shape). ``secrets``: with the stored HA1s and PIN hashes
    (never plain text), so that it restores into an empty directory. ``recordings`` (announcement_audio()'s
    answer): the announcements' audio as the document's AUDIO_SECTION, for the same reason."""
    view = model.with_secrets if secrets else model.public
    doc = {'tenant': _key_first(TENANT, view(TENANT, state.tenant)) if state.tenant else {}}
    for section, kind in SECTIONS:
        objects = state.objects(kind)
        doc[section] = [_key_first(kind, view(kind, objects[key])) for key in sorted(objects)]
    if recordings is not None:
        doc[AUDIO_SECTION] = [dict(sha256=digest, duration_ms=length, wav_base64=base64.b64encode(data).decode('ascii'))
                              for digest, (data, length) in sorted(recordings.items())]
    return doc


def announcement_audio(txn, state):
    """{sha256: (WAV bytes, duration in ms)} of the audio the tenant's announcements play, read in ``txn``."""
    found = {}
    for announcement in state.objects(ANNOUNCEMENT).values():
        digest = announcement['audio']
        data = txn.audio(state.name, digest) if digest and digest not in found else None
        if data is not None:
            found[digest] = (data, txn.audio_duration(state.name, digest))
    return found


def _key_first(kind, obj):
    """The key field first: what a reader looks for in a long file."""
    key_field = KEY_FIELD[kind]
    out = {key_field: obj[key_field]}
    out.update((k, val) for k, val in obj.items() if k != key_field)
    return out


def dump(document, path, fmt):
    """Write a document as JSON or YAML (the C dumper when there is one); returns the text written."""
    if fmt == 'json':
        text = json.dumps(document, indent=1, sort_keys=False, ensure_ascii=False) + '\n'
    else:
        import yaml
        dumper = getattr(yaml, 'CSafeDumper', None) or yaml.SafeDumper
        text = yaml.dump(document, Dumper=dumper, allow_unicode=True, sort_keys=False, default_flow_style=False)
    return text


def secret_values(data):
    """Every value of a secret field anywhere in a document (the module masks them in its output), but those
    too short for their rule (model.too_short_to_mask: refused anyway, never echoed)."""
    found = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in SECRET_FIELDS and isinstance(value, (str, int)) and str(value) and \
                        not model.too_short_to_mask(key, str(value)):
                    found.add(str(value))
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(i for i in item if isinstance(i, (dict, list)))
    return found


def write_atomically(path, text, mode=0o644):
    """Write a file whole or not at all (a temporary beside it, then renamed)."""
    tmp = '%s.tmp-%d' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='') as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
