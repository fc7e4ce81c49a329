# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain model: the canonical shape of each object kind.

A *request* is what a module (or a whole-tenant document) asks for: the
options the user gave, with left-out options absent ("leave as is").
``merge(kind, current, request, tenant)`` turns it into the *desired* object
in canonical form: every field present, values normalised by rules.py,
passwords turned into HA1. ``public(kind, obj)`` is the same object without
secrets, in exactly the shape the modules take, so that feeding the output of
tenant_info back into the modules changes nothing.

Field ownership: a field the request leaves out keeps its stored value. That
is how runtime state (DND toggled by a feature code, say) survives playbooks
that do not mention it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError, ValidationFailed

TENANT = 'tenant'
NUMBER = 'number'
EXTENSION = 'extension'
DEVICE = 'device'
GROUP = 'group'
PHONEBOOK = 'phonebook_entry'
ANNOUNCEMENT = 'announcement'
IVR = 'ivr'
QUEUE = 'queue'
CONFERENCE = 'conference'
SCHEDULE = 'schedule'

# Kinds that live inside a tenant, in the order they are written (targets
# before the numbers and devices that reference them) and the key field of each.
CHILD_KINDS = (ANNOUNCEMENT, SCHEDULE, EXTENSION, GROUP, QUEUE, CONFERENCE, IVR, NUMBER, DEVICE, PHONEBOOK)
KEY_FIELD = {TENANT: 'name', NUMBER: 'number', EXTENSION: 'internal_number', DEVICE: 'mac', GROUP: 'internal_number',
             PHONEBOOK: 'name', ANNOUNCEMENT: 'name', IVR: 'internal_number', QUEUE: 'internal_number',
             CONFERENCE: 'internal_number', SCHEDULE: 'name'}
PLURAL = {NUMBER: 'numbers', EXTENSION: 'extensions', DEVICE: 'devices', GROUP: 'groups', PHONEBOOK: 'phonebook',
          ANNOUNCEMENT: 'announcements', IVR: 'ivrs', QUEUE: 'queues', CONFERENCE: 'conferences', SCHEDULE: 'schedules'}
# The kinds that share a tenant's internal numbers (one internal number, one object), and of them the
# ones the PBX's media service answers (docs/media.md).
INTERNAL_KINDS = (EXTENSION, GROUP, IVR, QUEUE, CONFERENCE)
MEDIA_KINDS = (IVR, QUEUE, CONFERENCE)
# How messages and summaries name a kind for people.
KIND_WORDS = {IVR: 'IVR menu', CONFERENCE: 'conference room'}

SECRET_MARK = '********'


def describe(kind, key, tenant=None):
    """How messages name an object: 'extension 100 (tenant acme)'."""
    if kind == TENANT or tenant is None:
        return '%s %s' % (kind, key)
    return '%s %s (tenant %s)' % (kind, key, tenant)


_DESCRIBED = re.compile(r'^(?P<kind>\w+) (?P<key>.+?) \(tenant (?P<tenant>[^)]+)\)$')


def parse_described(obj):
    """(kind, key) of an object named by describe() with its tenant, or None: its inverse."""
    match = _DESCRIBED.match(obj)
    return (match.group('kind'), match.group('key')) if match else None


def _defaults(kind):
    if kind == TENANT:
        return {
            'display_name': None, 'sip_domain': None, 'country_code': '49', 'national_prefix': '0',
            'international_prefix': '00', 'timezone': 'Europe/Berlin', 'main_number': None,
            'international_calls': True, 'locations': [], 'licences': {'seats': {}, 'addons': {}},
            'trunks': [], 'preferred_trunk': None, 'internal_ranges': [], 'media_server': None,
            'max_outside_calls': None, 'max_outside_calls_per_minute': None, 'premium_calls': False,
            'satellite_calls': False, 'media_relay': 'auto', 'language': 'de', 'voicemail_pin_always': False,
        }
    if kind == NUMBER:
        return {'ddi_range': None, 'status': 'active', 'porting_date': None, 'interim': False,
                'target': None, 'description': None}
    if kind == EXTENSION:
        return {
            'name': None, 'email': None, 'role': 'end_user', 'seat': 'smart', 'ddi': None,
            'assign_all_external_numbers': True, 'external_numbers': [], 'sip_accounts': [],
            'outbound_caller_id': None, 'mobile': None,
            'voicemail': {'enabled': False, 'pin_hash': None, 'locked': False, 'email': None, 'attach': True,
                          'delete_after_email': False},
            'international_calls': False, 'ring_time': 20,
            'forwarding': {'unconditional': None, 'busy': None, 'no_answer': None, 'unregistered': None},
            'dnd': False, 'available': True, 'location': None, 'single_number_reach': False,
            'max_outside_calls': None, 'max_outside_calls_per_minute': None, 'premium_calls': False,
            'satellite_calls': False, 'emergency_only': False, 'speed_dials': [], 'language': None,
        }
    if kind == DEVICE:
        # activation: the one-time activation code (provisioning.py), only as its hash.
        return {'model': None, 'name': None, 'lines': [], 'location': None, 'timezone': None, 'activation': None}
    if kind == GROUP:
        return {'name': None, 'strategy': 'parallel', 'members': [], 'ring_time': 30, 'fallback': None}
    if kind == PHONEBOOK:
        return {'number': None, 'mobile': None, 'company': None}
    if kind == ANNOUNCEMENT:
        # audio: the SHA-256 of its WAV in the directory's audio table (docs/media.md); then: where
        # the call goes after it (a destination), None: the caller hears it and the call ends.
        return {'description': None, 'audio': None, 'duration_ms': None, 'then': None}
    if kind == IVR:
        # greeting, menu: announcements (menu None: the media service's built-in prompt); keys: key ->
        # destination; invalid / no_input: where the call goes after max_tries wrong keys / tries without
        # a key (None: goodbye, the call ends); direct_dial: the caller may dial an extension's number.
        return {'name': None, 'greeting': None, 'menu': None, 'keys': {}, 'timeout': 5, 'max_tries': 3,
                'invalid': None, 'no_input': None, 'direct_dial': False}
    if kind == QUEUE:
        # members: [{extension, penalty, logged_in}]; music: an announcement (None: the built-in music);
        # announce_position: seconds between announcements of the position and the estimated wait (0: off).
        return {'name': None, 'strategy': 'ring_all', 'members': [], 'member_ring_time': 15, 'wrapup_time': 10,
                'max_callers': 10, 'max_wait': 300, 'overflow': None, 'no_members': None, 'music': None,
                'announce_position': 0}
    if kind == CONFERENCE:
        # The PINs only as hashes (rules.conference_pin_hash), like a voicemail PIN.
        return {'name': None, 'pin_hash': None, 'moderator_pin_hash': None, 'max_participants': 10,
                'wait_for_moderator': False, 'announce_join_leave': False, 'mute_on_entry': False,
                'end_with_moderator': False, 'music': None}
    if kind == SCHEDULE:
        # timezone None: the tenant's; hours: [{days, from, to}]; holidays: dates (closed all day).
        return {'description': None, 'timezone': None, 'hours': [], 'holidays': [], 'open': None, 'closed': None}
    raise KeyError(kind)


class SubField(object):
    """One sub-field of a structured field: its name, its type ('str', 'bool', 'int', 'list' of text,
    'dict'), whether it must be given, whether it is a secret (stored only hashed, never shown), its
    choices and the default an option takes."""

    __slots__ = ('name', 'type', 'required', 'secret', 'choices', 'default', 'shortest')

    def __init__(self, name, type_name='str', required=False, secret=False, choices=None, default=None, shortest=0):
        self.name = name
        self.type = type_name
        self.required = required
        self.secret = secret
        self.choices = choices
        self.default = default
        self.shortest = shortest  # a secret: the fewest characters its rule accepts


# The field table: the sub-fields of every structured field (lists of mappings, mappings), and the fields
# that are columns of the extensions CSV layout. The one place they are spelled: the modules' argument
# specs (runner.suboptions), the tenant document's shape check (tenant_document) and the CSV layouts
# (tenant_csv) read them from here; how each value is normalised is the merge functions' part below.
SUB_FIELDS = {
    (TENANT, 'locations'): (
        SubField('name', required=True), SubField('street', required=True), SubField('postal_code', required=True),
        SubField('city', required=True), SubField('country', default='DE'), SubField('emergency_caller_id')),
    (TENANT, 'trunks'): (SubField('name', required=True), SubField('addresses', 'list', required=True),
                         SubField('port', 'int', default=5060)),
    (TENANT, 'licences'): (SubField('seats', 'dict'), SubField('addons', 'dict')),
    (EXTENSION, 'sip_accounts'): (
        SubField('username', required=True), SubField('kind', choices=rules.SIP_ACCOUNT_KINDS),
        SubField('password', secret=True, shortest=rules.PASSWORD_MIN_LENGTH), SubField('ha1', secret=True, shortest=32),
        SubField('require_tls', 'bool')),
    (EXTENSION, 'voicemail'): (SubField('enabled', 'bool'), SubField('pin', secret=True, shortest=rules.PIN_LENGTH[0]),
                               SubField('pin_hash', secret=True, shortest=64), SubField('locked', 'bool'),
                               SubField('email'), SubField('attach', 'bool'), SubField('delete_after_email', 'bool')),
    (EXTENSION, 'forwarding'): tuple(SubField(kind) for kind in rules.FORWARD_KINDS),
    (EXTENSION, 'speed_dials'): (SubField('code', required=True), SubField('number', required=True), SubField('name')),
    (DEVICE, 'activation'): (SubField('hash'), SubField('expires_at', 'int'), SubField('used_at', 'int')),
    (QUEUE, 'members'): (SubField('extension', required=True), SubField('penalty', 'int'), SubField('logged_in', 'bool')),
    (SCHEDULE, 'hours'): (SubField('days', 'list', required=True), SubField('from', required=True),
                          SubField('to', required=True)),
}
# Secrets that are fields of their own (not sub-fields): a conference room's PINs, given as text and stored
# only as hashes. ``REQUEST_FIELDS`` are fields a request may give that are never stored as such.
SECRET_OPTIONS = {
    CONFERENCE: (SubField('pin', secret=True, shortest=rules.PIN_LENGTH[0]),
                 SubField('moderator_pin', secret=True, shortest=rules.PIN_LENGTH[0]),
                 SubField('pin_hash', secret=True, shortest=64), SubField('moderator_pin_hash', secret=True, shortest=64)),
}
REQUEST_FIELDS = {CONFERENCE: ('pin', 'moderator_pin')}
# Stored secret fields (hashes) that a replacement keeps unless the request names them.
_KEPT_SECRETS = {CONFERENCE: ('pin_hash', 'moderator_pin_hash')}
# Columns of the extensions CSV layout, in the order the export writes them: the extension's own fields
# (a cell's type follows the field's default: true/false, a whole number, values separated by "|", text),
# then voicemail_<sub-field> and account<N>_<sub-field> from the sub-fields above.
CSV_COLUMNS = {
    EXTENSION: ('internal_number', 'name', 'email', 'role', 'seat', 'ddi', 'assign_all_external_numbers',
                'external_numbers', 'outbound_caller_id', 'mobile', 'location', 'ring_time', 'international_calls',
                'language'),
}
_ALL_SECRETS = tuple(sub for subs in list(SUB_FIELDS.values()) + list(SECRET_OPTIONS.values()) for sub in subs if sub.secret)
# Every secret (sub-)field name (a tenant document's secret values are masked wherever they are).
SECRET_FIELDS = tuple(sorted(set(sub.name for sub in _ALL_SECRETS)))


def too_short_to_mask(field, value):
    """A value of a secret field that is shorter than its rule accepts: it is refused (never stored), and
    masking it in a task's output would garble every message (Ansible masks each occurrence of it: a
    one-letter password turns 'extension' into 'e********xtension'). Such a value is not masked, and never
    echoed either: the module replaces it by a stand-in its rule refuses just the same."""
    shortest = max([sub.shortest for sub in _ALL_SECRETS if sub.name == field] + [0])
    return isinstance(value, str) and 0 < len(value) < shortest


def sub_fields(kind, field):
    """The SubFields of a structured field, or () for a plain one."""
    return SUB_FIELDS.get((kind, field), ())


def clone(value):
    """A deep copy of an object made of dicts, lists and plain values (what every object is): several
    times faster than copy.deepcopy, which matters when a whole tenant of 10,000 extensions is merged."""
    if isinstance(value, dict):
        return dict((k, clone(v) if isinstance(v, (dict, list)) else v) for k, v in value.items())
    if isinstance(value, list):
        return [clone(v) if isinstance(v, (dict, list)) else v for v in value]
    return copy.deepcopy(value)


def with_defaults(kind, stored):
    """A stored object completed with the defaults of fields added after it was written,
    so that a new optional field needs no migration of the stored documents."""
    obj = _defaults(kind)
    obj.update(stored)
    return obj


# Fields that must be given when an object is created.
REQUIRED_ON_CREATE = {TENANT: ('sip_domain',), DEVICE: ('model',), PHONEBOOK: ('number',), ANNOUNCEMENT: ('audio',),
                      SCHEDULE: ('open', 'closed')}


_REPLACEMENT = {}


def replacement(kind, request):
    """The request that makes an object exactly as written (state ``replaced``): every field
    the request leaves out is asked for at its default, an empty string where the default is
    "none" (which clears it). Stored secrets are kept all the same: a SIP account or a voicemail
    given without password or PIN keeps its credential, as in every other merge."""
    if kind not in _REPLACEMENT:
        template = {}
        for field, default in _defaults(kind).items():
            if field in REQUIRED_ON_CREATE.get(kind, ()) or field in _KEPT_SECRETS.get(kind, ()):
                continue
            if isinstance(default, dict):
                default = dict((sub, '' if value is None else value) for sub, value in default.items() if sub != 'pin_hash')
            template[field] = '' if default is None else default
        _REPLACEMENT[kind] = template
    full = dict(_REPLACEMENT[kind])  # its values are never changed in place: merge copies what it keeps
    for field, value in request.items():
        if value is None:
            continue
        if isinstance(full.get(field), dict) and isinstance(value, dict):
            value = dict(full[field], **value)  # a sub-option left out goes to its default too
        full[field] = value
    return full


def _opt_text(value):
    """Optional free text: an empty string clears the field."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)  # a number or a date where a document has text (YAML: name: 1234)
    value = value.strip()
    return value or None


class _Normaliser(object):
    """Collects RuleErrors of one request so that all of them are reported at once."""

    def __init__(self, obj):
        self.obj = obj
        self.violations = []

    def run(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RuleError as e:
            self.violations.append(e.at(self.obj))
            return None

    def fail(self, field, rule, message):
        self.violations.append(RuleError(field, rule, message).at(self.obj))

    def check(self):
        if self.violations:
            raise ValidationFailed(self.violations)


def dial_plan(tenant):
    return {'country_code': tenant['country_code'], 'national_prefix': tenant['national_prefix'],
            'international_prefix': tenant['international_prefix']}


def _number_in_plan(n, field, value, tenant):
    if not tenant:
        return n.run(rules.e164, value, field)
    return n.run(rules.e164, value, field, tenant['country_code'], tenant['national_prefix'], tenant['international_prefix'])


def _destination(n, field, value, tenant, outside=True):
    """A call destination: an internal number (an extension, group, IVR menu, queue or conference
    room), 'voicemail' (the extension's own mailbox), a destination the PBX answers itself
    ('voicemail:<internal number>', 'voicemail-menu', 'announcement:<name>'), a schedule
    ('schedule:<name>'), or, where ``outside``, an outside number in E.164."""
    value = _opt_text(value)
    if value is None:
        return None
    if value == rules.OWN_VOICEMAIL:
        return value
    service = rules.service_destination(value)
    if service is not None:
        prefix, name = service
        if prefix == 'voicemail':
            return 'voicemail:%s' % n.run(rules.internal_number, name, field)
        if prefix in ('announcement', 'schedule'):
            return '%s:%s' % (prefix, n.run(rules.object_name, name, field))
        return value
    if value.isdigit() and not value.startswith('0'):
        return n.run(rules.internal_number, value, field)
    if not outside:
        n.fail(field, 'destination', '%r is no internal number, voicemail:<internal number>, %s, announcement:<name> '
               'or schedule:<name>' % (value, rules.VOICEMAIL_MENU))
        return None
    return _number_in_plan(n, field, value, tenant)


def _service_destination(n, field, value, tenant):
    """A destination of an object that is no extension (a menu's key, a queue's overflow, a schedule's
    open or closed): as _destination, without the 'voicemail' of an extension's own box."""
    dest = _destination(n, field, value, tenant)
    if dest == rules.OWN_VOICEMAIL:
        n.fail(field, 'destination', 'only an extension has a voicemail box of its own; name voicemail:<internal number>')
        return None
    return dest


def _announcement_name(n, field, value):
    """An optional announcement named by its name (an empty string clears it)."""
    value = _opt_text(value)
    return value and n.run(rules.object_name, value, field)


def merge(kind, tenant_name, key, current, request, tenant):
    """Desired canonical object = current (or defaults) overlaid with the request.

    ``tenant`` is the tenant's canonical object as it will be after this change
    (for the dial plan and the SIP realm); None only when kind is TENANT.
    """
    obj = describe(kind, key, tenant_name if kind != TENANT else None)
    n = _Normaliser(obj)
    creating = current is None
    desired = clone(current) if current is not None else dict(_defaults(kind), **{KEY_FIELD[kind]: key})
    if kind != TENANT:
        desired['tenant'] = tenant_name
    if creating:
        for field in REQUIRED_ON_CREATE.get(kind, ()):
            if request.get(field) in (None, ''):
                n.fail(field, 'required', 'is required when the %s is created' % kind)
    _MERGERS[kind](n, desired, request, tenant if kind != TENANT else desired)
    n.check()
    return desired


# Fields whose dict merges per sub-option (a sub-option left out stays); other dicts are replaced.
_PER_SUB_OPTION = ('voicemail', 'forwarding')


def _same_value(requested, stored, per_sub_option=False):
    """Whether a requested value is already the stored canonical one ('' asks for "none")."""
    if requested == stored:
        return True
    if requested == '' and stored is None:
        return True
    if per_sub_option and isinstance(requested, dict) and isinstance(stored, dict):
        return all(_same_value(v, stored.get(k)) for k, v in requested.items())
    return False


def unchanged_by(kind, current, request):
    """True when merging ``request`` over ``current`` cannot change it: every requested value is
    already the stored value in canonical form (an exported document applied again). A shortcut
    only: anything else (another spelling, a password to hash) goes through merge()."""
    for field, value in request.items():
        if value is None or field in ('tenant', KEY_FIELD[kind]):
            continue
        if field not in current:
            return False
        stored = current[field]
        if kind == EXTENSION and field == 'sip_accounts':
            if not isinstance(value, list) or len(value) != len(stored):
                return False
            for acc, have in zip(value, stored):
                if not isinstance(acc, dict) or acc.get('password') or acc.get('username') != have['username']:
                    return False
                if acc.get('kind', have['kind']) != have['kind'] or acc.get('ha1', have['ha1']) != have['ha1']:
                    return False
                if acc.get('require_tls') not in (None, '', have.get('require_tls', False)):
                    return False
        elif kind == EXTENSION and field == 'voicemail':
            if not isinstance(value, dict) or value.get('pin') or not _same_value(value, stored, True):
                return False
        elif not _same_value(value, stored, field in _PER_SUB_OPTION):
            return False
    return True


def _merge_tenant(n, d, r, _tenant):
    for field in ('country_code', 'national_prefix', 'international_prefix'):
        if r.get(field) is not None:
            value = str(r[field]).strip()
            if not value.isdigit() or len(value) > 4:
                n.fail(field, 'digits', '%r must be 1-4 digits' % value)
            d[field] = value
    if r.get('display_name') is not None:
        d['display_name'] = _opt_text(r['display_name'])
    if r.get('sip_domain') is not None:
        d['sip_domain'] = n.run(rules.hostname, r['sip_domain'], 'sip_domain')
    if r.get('timezone') is not None:
        d['timezone'] = n.run(rules.timezone, r['timezone'], 'timezone')
    _merge_call_permissions(n, d, r, ('international_calls', 'premium_calls', 'satellite_calls'))
    if r.get('main_number') is not None:
        d['main_number'] = _opt_text(r['main_number']) and _number_in_plan(n, 'main_number', r['main_number'], d)
    if r.get('locations') is not None:
        locations = []
        for i, loc in enumerate(r['locations']):
            field = 'locations[%d]' % i
            name = _opt_text(loc.get('name'))
            if not name:
                n.fail(field + '.name', 'required', 'every location needs a name')
            entry = {'name': name}
            for sub in ('street', 'postal_code', 'city'):
                entry[sub] = _opt_text(loc.get(sub))
                if entry[sub] is None:
                    n.fail('%s.%s' % (field, sub), 'emergency_address',
                           'location %s needs a full emergency address (street, postal_code, city)' % (name or 'without a name'))
            entry['country'] = _opt_text(loc.get('country')) or 'DE'
            ecid = _opt_text(loc.get('emergency_caller_id'))
            entry['emergency_caller_id'] = ecid and _number_in_plan(n, field + '.emergency_caller_id', ecid, d)
            if name:
                locations.append(entry)
        d['locations'] = locations
    if r.get('licences') is not None:
        lic = {'seats': {}, 'addons': {}}
        for group, allowed in (('seats', rules.SEAT_PACKAGES), ('addons', rules.ADDONS)):
            for name, count in sorted((r['licences'].get(group) or {}).items()):
                known = n.run(rules.choice, name, allowed, 'licences.%s' % group) is not None
                if n.run(rules.bounded_int, count, 'licences.%s.%s' % (group, name), 0, 100000) is not None and known:
                    lic[group][name] = count
        d['licences'] = lic
    if r.get('trunks') is not None:
        trunks = []
        for i, trunk in enumerate(r['trunks']):
            field = 'trunks[%d]' % i
            name = _opt_text(trunk.get('name'))
            if not name:
                n.fail(field + '.name', 'required', 'every trunk needs a name')
            addresses = [n.run(rules.address, a, '%s.addresses' % field) for a in (trunk.get('addresses') or [])]
            if not addresses:
                n.fail(field + '.addresses', 'required', 'trunk %s needs at least one address' % (name or 'without a name'))
            port = trunk.get('port') or 5060
            n.run(rules.bounded_int, port, field + '.port', 1, 65535)
            if name:
                trunks.append({'name': name, 'addresses': addresses, 'port': port})
        d['trunks'] = trunks
    if r.get('media_server') is not None:
        value = _opt_text(r['media_server'])
        d['media_server'] = value and n.run(rules.sip_server, value, 'media_server')
    if r.get('media_relay') is not None:
        d['media_relay'] = n.run(rules.choice, r['media_relay'], rules.MEDIA_RELAY_MODES, 'media_relay')
    if r.get('language') is not None:
        d['language'] = n.run(rules.language, r['language'], 'language')
    if r.get('voicemail_pin_always') is not None:
        d['voicemail_pin_always'] = bool(r['voicemail_pin_always'])
    if r.get('preferred_trunk') is not None:
        d['preferred_trunk'] = _opt_text(r['preferred_trunk'])
    if r.get('internal_ranges') is not None:
        d['internal_ranges'] = [n.run(rules.internal_range, v, 'internal_ranges') for v in r['internal_ranges']]


def _merge_call_permissions(n, d, r, flags):
    """What a tenant or an extension may call outside, and how much: the call class
    permissions (rules.call_class) and the limits on outside calls (empty: no limit)."""
    for field in flags:
        if r.get(field) is not None:
            d[field] = bool(r[field])
    for field in ('max_outside_calls', 'max_outside_calls_per_minute'):
        if r.get(field) is not None:
            d[field] = n.run(rules.call_limit, r[field], field)


def _merge_number(n, d, r, tenant):
    if r.get('ddi_range') is not None:
        value = _opt_text(r['ddi_range'])
        if value is not None:
            n.run(rules.ddi_range, value, 'ddi_range')
        d['ddi_range'] = value
    if r.get('status') is not None:
        d['status'] = n.run(rules.choice, r['status'], rules.NUMBER_STATUSES, 'status')
    if r.get('porting_date') is not None:
        value = _opt_text(r['porting_date']) if isinstance(r['porting_date'], str) else r['porting_date']
        d['porting_date'] = value and n.run(rules.iso_date, value, 'porting_date')
    if r.get('interim') is not None:
        d['interim'] = bool(r['interim'])
    if r.get('target') is not None:
        d['target'] = _destination(n, 'target', str(r['target']), tenant, outside=False)
        if d['target'] == rules.OWN_VOICEMAIL:
            n.fail('target', 'destination', 'a number has no voicemail of its own; name voicemail:<internal number>')
    if r.get('description') is not None:
        d['description'] = _opt_text(r['description'])


def _merge_extension(n, d, r, tenant):
    for field in ('name', 'email'):
        if r.get(field) is not None:
            d[field] = _opt_text(r[field])
    if d.get('email'):
        n.run(rules.email, d['email'], 'email')
    if r.get('role') is not None:
        d['role'] = n.run(rules.choice, r['role'], rules.ROLES, 'role')
    if r.get('seat') is not None:
        d['seat'] = n.run(rules.choice, r['seat'], rules.SEAT_PACKAGES, 'seat')
    if r.get('ddi') is not None:
        value = _opt_text(str(r['ddi']))
        if value is not None and not value.isdigit():
            n.fail('ddi', 'digits', '%r: a direct-dial suffix consists of digits' % value)
        d['ddi'] = value
    for field in ('assign_all_external_numbers', 'dnd', 'available', 'single_number_reach'):
        if r.get(field) is not None:
            d[field] = bool(r[field])
    _merge_call_permissions(n, d, r, ('international_calls', 'premium_calls', 'satellite_calls', 'emergency_only'))
    if r.get('external_numbers') is not None:
        numbers = [_number_in_plan(n, 'external_numbers', v, tenant) for v in r['external_numbers']]
        d['external_numbers'] = sorted(set(v for v in numbers if v))
    if r.get('outbound_caller_id') is not None:
        value = _opt_text(r['outbound_caller_id'])
        if value in (None, 'main', 'anonymous'):
            d['outbound_caller_id'] = value
        else:
            d['outbound_caller_id'] = _number_in_plan(n, 'outbound_caller_id', value, tenant)
    if r.get('mobile') is not None:
        value = _opt_text(r['mobile'])
        d['mobile'] = value and _number_in_plan(n, 'mobile', value, tenant)
    if r.get('ring_time') is not None:
        d['ring_time'] = n.run(rules.bounded_int, r['ring_time'], 'ring_time', 5, 300)
    if r.get('location') is not None:
        d['location'] = _opt_text(r['location'])
    if r.get('language') is not None:  # none: the tenant's language
        value = _opt_text(r['language'])
        d['language'] = value and n.run(rules.language, value, 'language')
    if r.get('voicemail') is not None:
        vm = r['voicemail']
        if vm.get('enabled') is not None:
            d['voicemail']['enabled'] = bool(vm['enabled'])
        if vm.get('pin') is not None:
            pin = n.run(rules.voicemail_pin, vm['pin'], 'voicemail.pin')
            if pin:
                d['voicemail']['pin_hash'] = rules.pin_hash(d['tenant'], d['internal_number'], pin)
        elif vm.get('pin_hash'):
            d['voicemail']['pin_hash'] = n.run(rules.pin_hash_value, vm['pin_hash'], 'voicemail.pin_hash')
        for flag in ('locked', 'attach', 'delete_after_email'):
            if vm.get(flag) is not None:
                d['voicemail'][flag] = bool(vm[flag])
        if vm.get('email') is not None:
            value = _opt_text(vm['email'])
            d['voicemail']['email'] = value and n.run(rules.email, value, 'voicemail.email')
    if r.get('forwarding') is not None:
        for kind in rules.FORWARD_KINDS:
            if r['forwarding'].get(kind) is not None:
                d['forwarding'][kind] = _destination(n, 'forwarding.%s' % kind, r['forwarding'][kind], tenant)
    if r.get('sip_accounts') is not None:
        d['sip_accounts'] = _merge_sip_accounts(n, d['sip_accounts'], r['sip_accounts'], tenant)
    if r.get('speed_dials') is not None:
        d['speed_dials'] = _merge_speed_dials(n, r['speed_dials'], tenant)


def _merge_speed_dials(n, requested, tenant):
    """An extension's speed dials [Kurzwahl]: the list given replaces the stored one, sorted by
    code; each code once; the number an internal number or an outside number of the dial plan."""
    dials = {}
    for i, entry in enumerate(requested):
        field = 'speed_dials[%d]' % i
        code = n.run(rules.speed_dial_code, entry.get('code'), field + '.code')
        if code in dials:
            n.fail(field + '.code', 'unique', 'speed dial code %s is listed twice' % code)
            code = None
        number = _opt_text(entry.get('number') if entry.get('number') is None else str(entry['number']))
        if number is None:
            n.fail(field + '.number', 'required', 'speed dial %s needs a number' % (code or i + 1))
        elif number == 'voicemail':
            n.fail(field + '.number', 'speed_dial_number', 'a speed dial calls an internal or an outside number')
        else:
            number = _destination(n, field + '.number', number, tenant)
            if code is not None:
                dials[code] = {'code': code, 'number': number, 'name': _opt_text(entry.get('name'))}
    return [dials[code] for code in sorted(dials, key=lambda c: (len(c), c))]


def _merge_sip_accounts(n, current, requested, tenant):
    """The requested list replaces the current one; an account given without a
    password or HA1 keeps the credential it has (matched by username), and without a kind or
    require_tls the ones it has."""
    known = dict((a['username'], a) for a in current)
    realm = tenant['sip_domain'] if tenant else None
    accounts = []
    for i, acc in enumerate(requested):
        field = 'sip_accounts[%d]' % i
        # Every sub-field is judged, whatever the others are: all of an account's problems in one answer.
        user = n.run(rules.username, acc.get('username'), field + '.username')
        stored = known.get(user)
        kind = acc.get('kind') or (stored['kind'] if stored else 'desk_phone')
        valid = n.run(rules.choice, kind, rules.SIP_ACCOUNT_KINDS, field + '.kind') is not None and user is not None
        require_tls = acc.get('require_tls')
        if require_tls is None or require_tls == '':
            require_tls = stored.get('require_tls', False) if stored else False
        elif not isinstance(require_tls, bool):
            n.fail(field + '.require_tls', 'boolean', 'require_tls is true or false, not %r' % (require_tls,))
            valid = False
        secret = None
        if acc.get('password'):
            if len(acc['password']) < rules.PASSWORD_MIN_LENGTH:
                n.fail(field + '.password', 'password_length', 'SIP passwords have at least %d characters' % rules.PASSWORD_MIN_LENGTH)
            elif user is not None:
                secret = rules.ha1(user, realm, acc['password'])
        elif acc.get('ha1'):
            secret = n.run(rules.ha1_value, acc['ha1'], field + '.ha1')
        elif stored:
            secret = stored['ha1']
        else:
            n.fail(field + '.password', 'required', 'new SIP account %s needs a password (or ha1)'
                   % (user or acc.get('username') or i + 1))
        if not valid or secret is None:
            continue
        account = {'username': user, 'kind': kind, 'ha1': secret}
        if require_tls:
            account['require_tls'] = True  # only where set: most accounts take any transport
        accounts.append(account)
    return accounts


def _merge_device(n, d, r, tenant):
    if r.get('model') is not None:
        d['model'] = n.run(rules.choice, r['model'], sorted(_device_models()), 'model')
    for field in ('name', 'location'):
        if r.get(field) is not None:
            d[field] = _opt_text(r[field])
    if r.get('timezone') is not None:
        value = _opt_text(r['timezone'])
        d['timezone'] = value and n.run(rules.timezone, value, 'timezone')
    if r.get('lines') is not None:
        d['lines'] = [n.run(rules.username, v, 'lines') for v in r['lines']]
    if r.get('activation') is not None:
        d['activation'] = n.run(rules.activation, r['activation'], 'activation') if r['activation'] != '' else None


def _merge_group(n, d, r, tenant):
    if r.get('name') is not None:
        d['name'] = _opt_text(r['name'])
    if r.get('strategy') is not None:
        d['strategy'] = n.run(rules.choice, r['strategy'], rules.GROUP_STRATEGIES, 'strategy')
    if r.get('ring_time') is not None:
        d['ring_time'] = n.run(rules.bounded_int, r['ring_time'], 'ring_time', 5, 600)
    if r.get('members') is not None:
        d['members'] = [n.run(rules.internal_number, str(v), 'members') for v in r['members']]
    if r.get('fallback') is not None:
        d['fallback'] = _destination(n, 'fallback', r['fallback'], tenant)


def _device_models():
    from ansible_collections.voxplane.pbx.plugins.module_utils.catalogue import DEVICE_MODELS
    return DEVICE_MODELS


def _merge_phonebook(n, d, r, tenant):
    if r.get('number') is not None:
        value = _opt_text(str(r['number']))
        d['number'] = value and _number_in_plan(n, 'number', value, tenant)
    if r.get('mobile') is not None:
        value = _opt_text(str(r['mobile']))
        d['mobile'] = value and _number_in_plan(n, 'mobile', value, tenant)
    if r.get('company') is not None:
        d['company'] = _opt_text(r['company'])


def _merge_announcement(n, d, r, tenant):
    if r.get('description') is not None:
        d['description'] = _opt_text(r['description'])
    if r.get('audio') is not None:
        d['audio'] = n.run(rules.sha256_hex, r['audio'], 'audio')
    if r.get('duration_ms') is not None:
        d['duration_ms'] = n.run(rules.bounded_int, r['duration_ms'], 'duration_ms', 1, rules.ANNOUNCEMENT_MAX_SECONDS * 1000)
    if r.get('then') is not None:
        d['then'] = _destination(n, 'then', r['then'], tenant)


def _merge_ivr(n, d, r, tenant):
    if r.get('name') is not None:
        d['name'] = _opt_text(r['name'])
    for field in ('greeting', 'menu'):
        if r.get(field) is not None:
            d[field] = _announcement_name(n, field, r[field])
    if r.get('keys') is not None:
        if not isinstance(r['keys'], dict):
            n.fail('keys', 'type', 'keys is a mapping of a key (0-9, * or #) to a destination, not %r' % (r['keys'],))
        else:
            keys = {}
            for raw, dest in r['keys'].items():
                key = n.run(rules.menu_key, raw, 'keys')
                if key is None:
                    continue
                if key in keys:
                    n.fail('keys.%s' % key, 'unique', 'key %s is listed twice' % key)
                    continue
                dest = _service_destination(n, 'keys.%s' % key, '' if dest is None else str(dest), tenant)
                if dest is not None:
                    keys[key] = dest
            d['keys'] = dict((key, keys[key]) for key in rules.MENU_KEYS if key in keys)
    if r.get('timeout') is not None:
        d['timeout'] = n.run(rules.bounded_int, r['timeout'], 'timeout', 1, 60)
    if r.get('max_tries') is not None:
        d['max_tries'] = n.run(rules.bounded_int, r['max_tries'], 'max_tries', 1, 10)
    for field in ('invalid', 'no_input'):
        if r.get(field) is not None:
            d[field] = _service_destination(n, field, r[field], tenant)
    if r.get('direct_dial') is not None:
        d['direct_dial'] = bool(r['direct_dial'])


def _merge_queue_members(n, current, requested):
    """A queue's members: the list given replaces the stored one, in its order; a member given without
    ``logged_in`` keeps its stored login state (a member's own, set with the feature codes *44/*45), a new
    one is logged in; without ``penalty`` it keeps its stored one (0 for a new one)."""
    stored = dict((m['extension'], m) for m in current)
    members, seen = [], set()
    for i, member in enumerate(requested):
        field = 'members[%d]' % i
        if not isinstance(member, dict):
            n.fail(field, 'type', 'a member is {extension, penalty, logged_in}, not %r' % (member,))
            continue
        number = n.run(rules.internal_number, member.get('extension'), field + '.extension')
        if number is None:
            continue
        if number in seen:
            n.fail(field + '.extension', 'unique', 'extension %s is listed twice' % number)
            continue
        seen.add(number)
        before = stored.get(number, {})
        penalty = member.get('penalty')
        if penalty is None or penalty == '':
            penalty = before.get('penalty', 0)
        else:
            penalty = n.run(rules.bounded_int, penalty, field + '.penalty', 0, 100)
        logged_in = member.get('logged_in')
        if logged_in is None or logged_in == '':
            logged_in = before.get('logged_in', True)
        elif not isinstance(logged_in, bool):
            n.fail(field + '.logged_in', 'boolean', 'logged_in is true or false, not %r' % (logged_in,))
            continue
        members.append({'extension': number, 'penalty': penalty or 0, 'logged_in': logged_in})
    return members


def _merge_queue(n, d, r, tenant):
    if r.get('name') is not None:
        d['name'] = _opt_text(r['name'])
    if r.get('strategy') is not None:
        d['strategy'] = n.run(rules.choice, r['strategy'], rules.QUEUE_STRATEGIES, 'strategy')
    if r.get('members') is not None:
        if isinstance(r['members'], list):
            d['members'] = _merge_queue_members(n, d['members'], r['members'])
        else:
            n.fail('members', 'type', 'members is a list of {extension, penalty, logged_in}')
    for field, low, high in (('member_ring_time', 5, 300), ('wrapup_time', 0, 600), ('max_callers', 1, 1000),
                             ('max_wait', 10, 7200)):
        if r.get(field) is not None:
            d[field] = n.run(rules.bounded_int, r[field], field, low, high)
    if r.get('announce_position') is not None:
        value = n.run(rules.bounded_int, r['announce_position'], 'announce_position', 0, 3600)
        if value is not None and 0 < value < 15:
            n.fail('announce_position', 'range', '%d s is too often; give 15 to 3600 seconds, or 0 for none' % value)
        d['announce_position'] = value
    for field in ('overflow', 'no_members'):
        if r.get(field) is not None:
            d[field] = _service_destination(n, field, r[field], tenant)
    if r.get('music') is not None:
        d['music'] = _announcement_name(n, 'music', r['music'])


def _merge_conference(n, d, r, tenant):
    if r.get('name') is not None:
        d['name'] = _opt_text(r['name'])
    for field in ('pin', 'moderator_pin'):
        stored = field + '_hash'
        if r.get(field) is not None:
            if r[field] == '':
                d[stored] = None  # no PIN (any caller enters, or nobody is moderator)
            else:
                pin = n.run(rules.conference_pin, r[field], field)
                if pin:
                    d[stored] = rules.conference_pin_hash(d['tenant'], d['internal_number'], pin)
        elif r.get(stored):
            d[stored] = n.run(rules.pin_hash_value, r[stored], stored)
        elif r.get(stored) == '':
            d[stored] = None
    if r.get('max_participants') is not None:
        d['max_participants'] = n.run(rules.bounded_int, r['max_participants'], 'max_participants', 2, 200)
    for flag in ('wait_for_moderator', 'announce_join_leave', 'mute_on_entry', 'end_with_moderator'):
        if r.get(flag) is not None:
            d[flag] = bool(r[flag])
    if r.get('music') is not None:
        d['music'] = _announcement_name(n, 'music', r['music'])


def _merge_schedule(n, d, r, tenant):
    if r.get('description') is not None:
        d['description'] = _opt_text(r['description'])
    if r.get('timezone') is not None:  # none: the tenant's
        value = _opt_text(r['timezone'])
        d['timezone'] = value and n.run(rules.timezone, value, 'timezone')
    if r.get('hours') is not None:
        if isinstance(r['hours'], list):
            hours = [n.run(rules.opening_hours, entry, 'hours[%d]' % i) for i, entry in enumerate(r['hours'])]
            d['hours'] = [entry for entry in hours if entry is not None]
        else:
            n.fail('hours', 'type', 'hours is a list of {days, from, to}')
    if r.get('holidays') is not None:
        if isinstance(r['holidays'], list):
            days = [n.run(rules.iso_date, day, 'holidays[%d]' % i) for i, day in enumerate(r['holidays'])]
            d['holidays'] = sorted(set(day for day in days if day))
        else:
            n.fail('holidays', 'type', 'holidays is a list of dates (YYYY-MM-DD)')
    for field in ('open', 'closed'):
        if r.get(field) is not None:
            d[field] = _service_destination(n, field, r[field], tenant)


_MERGERS = {TENANT: _merge_tenant, NUMBER: _merge_number, EXTENSION: _merge_extension,
            DEVICE: _merge_device, GROUP: _merge_group, PHONEBOOK: _merge_phonebook,
            ANNOUNCEMENT: _merge_announcement, IVR: _merge_ivr, QUEUE: _merge_queue, CONFERENCE: _merge_conference,
            SCHEDULE: _merge_schedule}


def normalise_key(kind, key, tenant=None):
    """The canonical key of an object, or RuleError: MACs and numbers have several spellings."""
    field = KEY_FIELD[kind]
    if kind == TENANT:
        return rules.slug(key, field)
    if kind == DEVICE:
        return rules.mac(key, field)
    if kind == PHONEBOOK:
        return rules.phonebook_name(key, field)
    if kind in (ANNOUNCEMENT, SCHEDULE):
        return rules.object_name(key, field)
    if kind == NUMBER:
        if tenant:
            return rules.e164(key, field, tenant['country_code'], tenant['national_prefix'], tenant['international_prefix'])
        return rules.e164(key, field)
    return rules.internal_number(key, field)


def _public_account(acc):
    view = {'username': acc['username'], 'kind': acc['kind']}
    if acc.get('require_tls'):
        view['require_tls'] = True
    return view


def public(kind, obj):
    """The object without secrets, in the shape the modules take."""
    if obj is None:
        return None
    out = clone(obj)
    if kind == EXTENSION:
        out['sip_accounts'] = [_public_account(a) for a in obj['sip_accounts']]
        out['voicemail'] = dict((k, v) for k, v in obj['voicemail'].items() if k != 'pin_hash')
    if kind == DEVICE:
        out.pop('activation', None)
    for field in _KEPT_SECRETS.get(kind, ()):
        out.pop(field, None)
    return out


def with_secrets(kind, obj):
    """Like public(), plus the stored secrets as they are stored (HA1, PIN hash, a device's activation
    code hash), never plain text:
    the form a backup takes, so that it restores into an empty directory (tenant_info secrets=true)."""
    out = public(kind, obj)
    if kind == EXTENSION and out is not None:
        for acc, view in zip(obj['sip_accounts'], out['sip_accounts']):
            view['ha1'] = acc['ha1']
        if obj['voicemail'].get('pin_hash'):
            out['voicemail']['pin_hash'] = obj['voicemail']['pin_hash']
    if kind == DEVICE and out is not None and obj.get('activation'):
        out['activation'] = clone(obj['activation'])  # its hash and times, as stored
    if out is not None:
        for field in _KEPT_SECRETS.get(kind, ()):
            if obj.get(field):
                out[field] = obj[field]
    return out


def diff_view(kind, obj, other=None):
    """Like public(), but shows that a secret is set and, on the after side of a
    diff (``other`` is the before object), whether it changes; never its value."""
    out = public(kind, obj)
    if kind == DEVICE and out is not None and obj.get('activation'):
        changed = other is not None and (other.get('activation') or {}).get('hash') != obj['activation']['hash']
        out['activation_code'] = SECRET_MARK + (' (changed)' if changed else '')
    if out is not None:
        for field in _KEPT_SECRETS.get(kind, ()):  # a conference room's PINs: set, and whether they change
            if obj.get(field):
                changed = other is not None and other.get(field) != obj[field]
                out[field[:-len('_hash')]] = SECRET_MARK + (' (changed)' if changed else '')
    if kind != EXTENSION or out is None:
        return out
    other_ha1 = dict((a['username'], a['ha1']) for a in (other or {}).get('sip_accounts', []))
    for acc, view in zip(obj['sip_accounts'], out['sip_accounts']):
        changed = other is not None and other_ha1.get(acc['username'], acc['ha1']) != acc['ha1']
        view['password'] = SECRET_MARK + (' (changed)' if changed else '')
    if obj['voicemail'].get('pin_hash'):
        changed = other is not None and other['voicemail'].get('pin_hash') != obj['voicemail']['pin_hash']
        out['voicemail']['pin'] = SECRET_MARK + (' (changed)' if changed else '')
    return out
