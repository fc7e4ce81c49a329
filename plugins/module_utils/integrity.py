# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules that span objects: references, uniqueness, licence counts.

``check(state, removed, lookups)`` looks at a tenant's state *as it would be*
after a change and returns every broken rule. Field rules (the shape of one
value) live in rules.py; these are the rules of the whole tenant, and of the
whole directory through ``lookups`` (numbers, MACs and SIP domains are unique
across tenants).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.catalogue import DEVICE_MODELS
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import Violation
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    ANNOUNCEMENT, CONFERENCE, DEVICE, EXTENSION, GROUP, INTERNAL_KINDS, IVR, KIND_WORDS, MEDIA_KINDS, NUMBER, QUEUE,
    SCHEDULE, TENANT, describe,
)


class Lookups(object):
    """Questions about other tenants, answered by the store inside the same transaction."""

    def number_owners(self, e164s, tenant):
        """{e164: other tenant} for the numbers another tenant already holds."""
        return {}

    def mac_owner(self, mac, tenant):
        """The other tenant whose device has this MAC, or None."""
        return None

    def domain_owner(self, domain, tenant):
        """The other tenant with this SIP domain, or None."""
        return None

    def has_audio(self, tenant, digest):
        """Whether the directory holds the tenant's audio with this SHA-256 (an offline check,
        without a directory, takes it that it does)."""
        return True

    def audio_duration(self, tenant, digest):
        """The length in ms of the tenant's audio with this SHA-256; None when it is not known."""
        return None


def check(state, previous=None, lookups=None, changed=None, warnings=None):
    """Violations of the tenant state. ``previous`` is the state before the
    change, so that a reference left dangling is reported as the deletion it
    blocks. ``changed`` holds the (kind, key) pairs the change touches and
    limits the cross-tenant questions to them (None: ask for everything).

    ``warnings``: a list for the tenant's references to a number that no tenant holds yet
    (``main_number``, a location's ``emergency_caller_id``; see ``_Collector.own_number``),
    which are then accepted, so that a playbook may create the number after the tenant that
    names it. None refuses them: a whole tenant document names its own numbers."""
    lookups = lookups or Lookups()
    v = _Collector(state, previous, warnings)
    if state.tenant is None:
        if not state.is_empty():
            kinds = ', '.join('%d %ss' % (len(objs), kind) for kind, objs in sorted(state.children.items()) if objs)
            v.add(TENANT, state.name, 'state', 'tenant_not_empty',
                  'cannot remove the tenant while it still has %s; remove them first' % kinds)
        return v.violations
    touched = (lambda kind, key: True) if changed is None else (lambda kind, key: (kind, key) in changed)
    _check_tenant(v, state, lookups, touched)
    plan, conflicts = state.number_plan()
    _check_numbers(v, state, lookups, touched, plan, conflicts)
    _check_extensions(v, state, plan, touched)
    _check_groups(v, state)
    _check_media_numbers(v, state, touched)
    _check_announcements(v, state, lookups, touched)
    _check_ivrs(v, state)
    _check_queues(v, state)
    _check_conferences(v, state)
    _check_schedules(v, state)
    _check_addons(v, state, touched)
    _check_devices(v, state, lookups, touched)
    return v.violations


def check_tenant_removal(previous, force=False, now=None):
    """Removing a whole tenant is refused while one of its numbers is still being ported in
    (status porting, porting day not reached): the carrier moves it to this tenant on that day.
    ``force`` removes it all the same."""
    if previous.tenant is None or force:
        return []
    tz = previous.tenant['timezone']
    return [Violation(describe(NUMBER, key, previous.name), 'status', 'porting',
                      'cannot remove tenant %s while %s is still porting (porting day %s); wait for the porting '
                      'day, or set force' % (previous.name, key, number['porting_date']))
            for key, number in sorted(previous.objects(NUMBER).items())
            if rules.effective_status(number, tz, now) == 'porting']


class _Collector(object):
    def __init__(self, state, previous, warnings=None):
        self.state = state
        self.violations = []
        self.warnings = warnings
        self.removed = set()
        self.previous_accounts = {}
        self.removed_numbers = {}
        if previous is not None:
            for kind, objs in previous.children.items():
                self.removed.update((kind, key) for key in objs if key not in state.objects(kind))
            if state.tenant is not None:
                self.removed.update(('location', name) for name in previous.location_names() - state.location_names())
            self.previous_accounts = dict((user, owner[0]) for user, owner in previous.sip_accounts().items())
            owned_now = state.owned_numbers()
            self.removed_numbers = dict((e164, key) for e164, key in previous.owned_numbers().items() if e164 not in owned_now)

    def number_reference(self, kind, key, field, e164, rule, message):
        """A reference to a number the tenant no longer holds: a blocked removal if this change removed it."""
        if e164 in self.removed_numbers:
            self.violations.append(Violation(
                describe(NUMBER, self.removed_numbers[e164], self.state.name), 'state', 'still_referenced',
                'cannot remove %s: still referenced by %s (%s)' % (e164, describe(kind, key), field)))
        else:
            self.add(kind, key, field, rule, message)

    def own_number(self, field, e164, rule, what, lookups, touched):
        """A reference of the tenant to one of its own numbers (``main_number``, a location's
        ``emergency_caller_id``), ``e164``, that the tenant does not hold. Removing that number
        is blocked; a number of another tenant is refused; a number that no tenant holds yet is
        refused too unless this check collects warnings (the single-object modules), which
        accept it with a warning when the change sets it: the router presents it only once it
        is a number of the tenant (snapshot.Tenant). ``what`` says what the reference is for,
        for the messages. With warnings, a change that does not touch the tenant object leaves
        its references alone: they were judged when the tenant was last written."""
        name = self.state.name
        if e164 in self.removed_numbers:
            self.number_reference(TENANT, name, field, e164, rule, None)  # the removal is blocked
            return
        if self.warnings is not None and not touched(TENANT, name):
            return
        other = lookups.number_owners([e164], name).get(e164)
        if other:
            self.add(TENANT, name, field, rule, '%s%s is not a number of tenant %s (it belongs to tenant %s); %s'
                     % (what[0], e164, name, other, what[1]))
        elif self.warnings is None:
            self.add(TENANT, name, field, rule, '%s%s is not a number of tenant %s; %s' % (what[0], e164, name, what[1]))
        else:
            self.warnings.append(Violation(describe(TENANT, name), field, rule, (
                '%s%s is not a number of tenant %s yet (no tenant holds it): accepted; %s' % (
                    what[0], e164, name, what[2]))))

    def add(self, kind, key, field, rule, message):
        self.violations.append(Violation(describe(kind, key, self.state.name), field, rule, message))

    def reference(self, kind, key, field, ref_kind, ref_key, what):
        """A reference that does not resolve: a blocked deletion or a bad reference."""
        kinds = INTERNAL_KINDS if ref_kind == 'target' else (ref_kind,)
        removed_kind = next((k for k in kinds if (k, ref_key) in self.removed), None)
        if removed_kind == 'location':
            self.violations.append(Violation(
                describe(TENANT, self.state.name), 'locations', 'still_referenced',
                'cannot remove location %s: still referenced by %s (%s)' % (ref_key, describe(kind, key), field)))
        elif removed_kind:
            self.violations.append(Violation(
                describe(removed_kind, ref_key, self.state.name), 'state', 'still_referenced',
                'cannot remove it: still referenced by %s (%s)' % (describe(kind, key), field)))
        else:
            self.add(kind, key, field, 'reference', '%s %s does not exist in tenant %s' % (what, ref_key, self.state.name))


def _check_tenant(v, state, lookups, touched):
    t = state.tenant
    name = state.name
    if touched(TENANT, name):
        other = lookups.domain_owner(t['sip_domain'], name)
        if other:
            v.add(TENANT, name, 'sip_domain', 'domain_unique', 'SIP domain %s already belongs to tenant %s' % (t['sip_domain'], other))
    seen = set()
    owned = state.owned_numbers()
    for i, loc in enumerate(t['locations']):
        if loc['name'] in seen:
            v.add(TENANT, name, 'locations', 'unique', 'location %s is listed twice' % loc['name'])
        seen.add(loc['name'])
        # Emergency calls present this number to the emergency service: it must be the tenant's own.
        ecid = loc.get('emergency_caller_id')
        if ecid and ecid not in owned:
            v.own_number('locations[%d].emergency_caller_id' % i, ecid, 'own_number', (
                'location %s: ' % loc['name'], 'an emergency call presents one of the tenant\'s own numbers',
                'emergency calls from %s present it once it is a number of this tenant, until then the tenant\'s '
                'main number (or the caller\'s own number, or the trunk\'s default number)' % loc['name']),
                lookups, touched)
    trunk_names = [tr['name'] for tr in t['trunks']]
    if len(set(trunk_names)) != len(trunk_names):
        v.add(TENANT, name, 'trunks', 'unique', 'trunk names must be unique')
    if t['preferred_trunk'] and t['preferred_trunk'] not in trunk_names:
        v.add(TENANT, name, 'preferred_trunk', 'reference', 'trunk %s is not one of the tenant\'s trunks' % t['preferred_trunk'])
    if len(trunk_names) > 1 and not t['preferred_trunk']:
        v.add(TENANT, name, 'preferred_trunk', 'preferred_trunk_required',
              'a tenant with several trunks must name its preferred trunk')
    if t['main_number'] and t['main_number'] not in owned:
        v.own_number('main_number', t['main_number'], 'reference', (
            '', 'the main number is one of the tenant\'s own numbers',
            'calls present it once it is a number of this tenant, until then as if the tenant had no main number'),
            lookups, touched)
    ranges = t['internal_ranges']
    spans = sorted((len(r.split('-')[0]), int(r.split('-')[0]), int(r.split('-')[1]), r) for r in ranges)
    for a, b in zip(spans, spans[1:]):
        if a[0] == b[0] and b[1] <= a[2]:
            v.add(TENANT, name, 'internal_ranges', 'overlap', 'ranges %s and %s overlap' % (a[3], b[3]))


def _check_numbers(v, state, lookups, touched, plan, conflicts):
    tz = state.tenant['timezone']
    targets = state.internal_targets()
    numbers = state.objects(NUMBER)
    owned = {}
    # Untouched numbers first, so that an overlap is blamed on the number the change touches.
    for key, number in sorted(numbers.items(), key=lambda item: (touched(NUMBER, item[0]), item[0])):
        members = [key] + (rules.block_numbers(key, number['ddi_range']) if number['ddi_range'] else [])
        overlap = {}
        for e164 in members:
            if e164 in owned and owned[e164] != key:
                overlap.setdefault(owned[e164], []).append(e164)
            owned.setdefault(e164, key)
        for other, e164s in sorted(overlap.items()):  # one violation per pair of overlapping numbers, not per DDI
            v.add(NUMBER, key, 'number', 'number_unique',
                  _some_of(e164s, members, 'is already part of number %s' % other, 'are already part of number %s' % other))
        for e164 in members[1:]:
            if len(e164) > 16:
                v.add(NUMBER, key, 'ddi_range', 'e164_length',
                      'block member %s has more than 15 digits' % e164)
                break
            if e164.startswith('+49') and len(e164) > 15:
                v.add(NUMBER, key, 'ddi_range', 'e164_length_de',
                      'block member %s has more than 12 national digits' % e164)
                break
        if number['status'] == 'porting' and not number['porting_date']:
            v.add(NUMBER, key, 'porting_date', 'porting_date_required', 'a porting number needs its porting day')
        if number['status'] != 'porting' and number['porting_date'] and rules.effective_status(
                dict(number, status='porting'), tz) != 'active':
            v.add(NUMBER, key, 'status', 'porting_status',
                  'a number with a future porting day must have status porting')
        if number['interim'] and number['status'] != 'active':
            v.add(NUMBER, key, 'interim', 'interim_active', 'interim numbers are active at once (status active)')
        _check_destination(v, state, NUMBER, key, 'target', number['target'], targets)
        if touched(NUMBER, key):
            taken = {}
            for e164, other in sorted(lookups.number_owners(members, state.name).items()):
                taken.setdefault(other, []).append(e164)
            for other, e164s in sorted(taken.items()):  # one violation per tenant it overlaps, not per DDI
                v.add(NUMBER, key, 'number', 'number_one_tenant', _some_of(
                    e164s, members, 'already belongs to tenant %s' % other, 'already belong to tenant %s' % other))
    for e164, claimants in conflicts:
        v.add(NUMBER, plan[e164]['number'], 'target', 'number_one_target',
              '%s would reach both %s; a number has one target' % (e164, ' and '.join(claimants)))


def _some_of(e164s, members, one, many):
    """A message about some numbers of a number object: '<the number> <one>' for one, '<n> of its <m>
    numbers (<first> to <last>) <many>' for more (a block overlapping another: one message, not one per DDI)."""
    if len(e164s) == 1:
        return '%s %s' % (e164s[0], one)
    return '%d of its %d numbers (%s to %s) %s' % (len(e164s), len(members), min(e164s), max(e164s), many)


def _check_extensions(v, state, plan, touched):
    t = state.tenant
    name = state.name
    targets = state.internal_targets()
    owned = set(plan)
    numbers_of = state.numbers_of(plan)
    locations = state.location_names()
    seats = dict((p, []) for p in rules.SEAT_PACKAGES)   # package -> the extensions that take one, in order
    client_addons = []
    usernames = {}
    groups = state.objects(GROUP)
    # Untouched extensions first, so that a duplicate is blamed on the extension the change touches.
    for key, ext in sorted(state.objects(EXTENSION).items(), key=lambda item: (touched(EXTENSION, item[0]), item[0])):
        if key in groups:
            if touched(GROUP, key) and not touched(EXTENSION, key):
                v.add(GROUP, key, 'internal_number', 'internal_unique', '%s is already the number of extension %s' % (key, key))
            else:
                v.add(EXTENSION, key, 'internal_number', 'internal_unique', '%s is already the number of group %s' % (key, key))
        if not rules.in_internal_ranges(key, t['internal_ranges']):
            v.add(EXTENSION, key, 'internal_number', 'internal_range',
                  '%s is outside the tenant\'s internal ranges %s' % (key, ', '.join(t['internal_ranges'])))
        seats[ext['seat']].append(key)
        needs_client = any(a['kind'] in rules.CLIENT_ACCOUNT_KINDS for a in ext['sip_accounts'])
        if needs_client and ext['seat'] not in rules.PACKAGES_WITH_CLIENT:
            client_addons.append(key)
        for acc in ext['sip_accounts']:
            if acc['username'] in usernames:
                v.add(EXTENSION, key, 'sip_accounts', 'username_unique',
                      'SIP username %s is already used by extension %s in domain %s'
                      % (acc['username'], usernames[acc['username']], t['sip_domain']))
            usernames.setdefault(acc['username'], key)
        for e164 in ext['external_numbers']:
            if e164 not in owned:
                v.number_reference(EXTENSION, key, 'external_numbers', e164, 'reference',
                                   '%s is not a number of tenant %s' % (e164, name))
        cid = ext['outbound_caller_id']
        if cid == 'main' and not t['main_number']:
            v.add(EXTENSION, key, 'outbound_caller_id', 'main_number_required', 'the tenant has no main_number to present')
        elif cid not in (None, 'main', 'anonymous') and cid not in numbers_of.get(key, ()):
            v.number_reference(EXTENSION, key, 'outbound_caller_id', cid, 'own_number',
                               '%s is not one of this extension\'s numbers (%s)' % (cid, ', '.join(numbers_of.get(key, [])) or 'none'))
        if ext['location'] and ext['location'] not in locations:
            v.reference(EXTENSION, key, 'location', 'location', ext['location'], 'location')
        for kind in rules.FORWARD_KINDS:
            _check_destination(v, state, EXTENSION, key, 'forwarding.%s' % kind, ext['forwarding'][kind], targets, ext)
        for i, dial in enumerate(ext['speed_dials']):
            _check_destination(v, state, EXTENSION, key, 'speed_dials[%d].number' % i, dial['number'], targets, ext)
        if ext['forwarding']['unconditional'] == key:
            v.add(EXTENSION, key, 'forwarding.unconditional', 'forward_loop', 'an extension cannot forward to itself')
        _check_call_features(v, t, key, ext)
    if t['licences'] is not None:
        for package, users in sorted(seats.items()):
            _check_licence(v, state, touched, users, t['licences']['seats'].get(package, 0), 'licences.seats.%s' % package,
                           'seats', 'seat', ('takes', 'take', 'a %s seat but the tenant has %%d' % package),
                           'no %s seat is left for it: the tenant\'s %%d are taken (licences.seats.%s)' % (package, package))
        _check_licence(v, state, touched, client_addons, t['licences']['addons'].get(rules.CLIENT_ADDON, 0),
                       'licences.addons.%s' % rules.CLIENT_ADDON, 'softclient_licence', 'sip_accounts',
                       ('on a smart seat has', 'on a smart seat have', 'softclient or webphone accounts, which need the best '
                        'package or the %s add-on; the tenant has %%d' % rules.CLIENT_ADDON),
                       'its softclient or webphone account needs the best seat or a %s add-on, and none is left: the '
                       'tenant\'s %%d are taken (licences.addons.%s)' % (rules.CLIENT_ADDON, rules.CLIENT_ADDON))


def _check_licence(v, state, touched, users, available, licence_field, rule, field, too_many, none_left,
                   kind=EXTENSION, nouns=('extension', 'extensions')):
    """More objects of ``kind`` (extensions; IVR menus, conference rooms) use a licence than the tenant has:
    one object the change touches that got none is named as such (field ``field``, ``none_left``); otherwise
    the tenant's licence names the objects left without one (``too_many``: the verb for one and for several,
    the rest of the sentence; ``nouns``: the kind's name for one and for several). ``users`` are in the
    order the licences go: untouched objects first."""
    if len(users) <= available:
        return
    left_out = users[available:]
    if len(left_out) == 1 and touched(kind, left_out[0]):
        v.add(kind, left_out[0], field, rule, none_left % available)
        return
    one, many, rest = too_many
    listed = ', '.join(left_out[:10]) + (' and %d more' % (len(left_out) - 10) if len(left_out) > 10 else '')
    v.add(TENANT, state.name, licence_field, rule, '%d %s %s %s; none is left for %s %s' % (
        len(users), nouns[len(users) > 1], many if len(users) > 1 else one, rest % available,
        nouns[len(left_out) > 1], listed))


# How messages name a call class: (one number, numbers of the class).
_CALL_CLASS_WORDS = {'international': ('an international number', 'international numbers'),
                     'premium': ('a premium-rate number', 'premium-rate numbers'),
                     'satellite': ('a satellite network number', 'satellite network numbers')}


def _check_call_features(v, tenant, key, ext):
    """Single number reach needs a mobile; an outside forward or mobile must be a number the
    extension may call (it pays for that leg): its call class needs the permission of tenant
    and extension, and an emergency_only extension calls nothing outside."""
    if ext['single_number_reach'] and not ext['mobile']:
        v.add(EXTENSION, key, 'single_number_reach', 'mobile_required', 'single number reach rings the mobile: set mobile')
    outside = [('forwarding.%s' % kind, ext['forwarding'][kind]) for kind in rules.FORWARD_KINDS]
    if ext['single_number_reach']:
        outside.append(('mobile', ext['mobile']))
    for field, dest in outside:
        if not dest or not dest.startswith('+'):
            continue
        if ext['emergency_only']:
            v.add(EXTENSION, key, field, 'emergency_only',
                  '%s is an outside number and this extension may call only internal numbers and the emergency '
                  'numbers %s (emergency_only)' % (dest, ' and '.join(rules.EMERGENCY_NUMBERS)))
            continue
        call_class = rules.call_class(dest, tenant['country_code'])
        permission = rules.CALL_CLASS_PERMISSION[call_class]
        if permission and not (tenant[permission] and ext[permission]):
            one, many = _CALL_CLASS_WORDS[call_class]
            who = ('this extension' if tenant[permission] else 'the tenant' if ext[permission]
                   else 'neither the tenant nor this extension')
            v.add(EXTENSION, key, field, permission, '%s is %s and %s may %scall %s (%s)' % (
                dest, one, who, '' if who.startswith('neither') else 'not ', many, permission))


def _check_destination(v, state, kind, key, field, dest, targets, ext=None):
    """A destination names what exists in the tenant: an extension, group, IVR menu, queue or
    conference room, the extension's own box ('voicemail', which must be enabled), another extension's
    box ('voicemail:<number>', enabled too), an announcement ('announcement:<name>'), a schedule
    ('schedule:<name>'); 'voicemail-menu' and outside numbers are always there (outside numbers have
    rules of their own)."""
    if dest is None or dest.startswith('+') or dest == rules.VOICEMAIL_MENU:
        return
    if dest == rules.OWN_VOICEMAIL:
        if ext is None:
            v.add(kind, key, field, 'voicemail_group', 'a %s has no voicemail; name an extension\'s box '
                  '(voicemail:<internal number>) or a number instead' % KIND_WORDS.get(kind, kind))
        elif not ext['voicemail']['enabled']:
            v.add(kind, key, field, 'voicemail_disabled', 'forwards to voicemail, but voicemail is not enabled')
        return
    service = rules.service_destination(dest)
    if service is not None and service[0] in ('announcement', 'schedule'):
        if service[1] not in state.objects(service[0]):
            v.reference(kind, key, field, service[0], service[1], service[0])
        return
    if service is not None:  # voicemail:<internal number>
        mailbox = state.objects(EXTENSION).get(service[1])
        if mailbox is None:
            v.reference(kind, key, field, EXTENSION, service[1], 'extension')
        elif not mailbox['voicemail']['enabled']:
            v.add(kind, key, field, 'voicemail_disabled', '%s: extension %s has no voicemail enabled' % (dest, service[1]))
        return
    if dest not in targets:
        v.reference(kind, key, field, 'target', dest, 'target')


def _check_announcements(v, state, lookups, touched):
    """An announcement's audio is in the directory (its module puts it there; a tenant document
    from another directory must come with it), and where it leads exists."""
    targets = state.internal_targets()
    for name, announcement in sorted(state.objects(ANNOUNCEMENT).items()):
        if touched(ANNOUNCEMENT, name) and announcement['audio']:
            if not lookups.has_audio(state.name, announcement['audio']):
                v.add(ANNOUNCEMENT, name, 'audio', 'audio_missing', 'audio %s... is not in this directory: give the '
                      'announcement module its WAV file (src), or the document the audio (tenant_info audio: true)'
                      % announcement['audio'][:12])
            else:
                length = lookups.audio_duration(state.name, announcement['audio'])
                if length is not None and length != announcement['duration_ms']:
                    v.add(ANNOUNCEMENT, name, 'duration_ms', 'audio_duration', 'audio %s... is %d ms long, not %s: give '
                          'the duration_ms that goes with the audio' % (announcement['audio'][:12], length,
                                                                        announcement['duration_ms']))
        if announcement['then'] == 'announcement:%s' % name:
            v.add(ANNOUNCEMENT, name, 'then', 'forward_loop', 'an announcement cannot lead to itself')
        else:
            _check_destination(v, state, ANNOUNCEMENT, name, 'then', announcement['then'], targets)


def _check_outside(v, state, kind, key, field, dest):
    """An outside number an object that is no extension leads to (a menu's key, a queue's overflow, a
    schedule's destination): the tenant pays for that leg, so its call class needs the tenant's
    permission (rules.CALL_CLASS_PERMISSION)."""
    if not dest or not dest.startswith('+'):
        return
    call_class = rules.call_class(dest, state.tenant['country_code'])
    permission = rules.CALL_CLASS_PERMISSION[call_class]
    if permission and not state.tenant[permission]:
        one, many = _CALL_CLASS_WORDS[call_class]
        v.add(kind, key, field, permission, '%s is %s and the tenant may not call %s (%s)' % (dest, one, many, permission))


def _check_destinations(v, state, kind, key, obj, fields, targets):
    """Every destination field of an object that is no extension: it exists, and an outside number is
    one the tenant may call. ``fields``: (field path, destination) pairs."""
    own = '%s:%s' % (kind, key) if kind == SCHEDULE else key
    for field, dest in fields:
        # A menu's key may lead to the menu itself (the media service plays it again); nothing else may.
        if dest == own and not (kind == IVR and field.startswith('keys.')):
            words = KIND_WORDS.get(kind, kind)
            v.add(kind, key, field, 'forward_loop', '%s %s cannot lead to itself' % ('an' if words[0] in 'AEIOU' else 'a', words))
            continue
        _check_destination(v, state, kind, key, field, dest, targets)
        _check_outside(v, state, kind, key, field, dest)


def _check_announcement_refs(v, state, kind, key, obj, fields):
    """The announcements an object plays (a menu's greeting, a queue's music) exist."""
    for field in fields:
        if obj[field] and obj[field] not in state.objects(ANNOUNCEMENT):
            v.reference(kind, key, field, ANNOUNCEMENT, obj[field], 'announcement')


def _check_media_numbers(v, state, touched):
    """IVR menus, queues and conference rooms share the internal numbers of extensions and groups: one
    internal number, one object, reported on the object the change adds; and within the internal ranges."""
    owners = {}
    for kind in INTERNAL_KINDS:
        for key in state.objects(kind):
            owners.setdefault(key, []).append(kind)
    ranges = state.tenant['internal_ranges']
    for kind in MEDIA_KINDS:
        for key in sorted(state.objects(kind)):
            if not rules.in_internal_ranges(key, ranges):
                v.add(kind, key, 'internal_number', 'internal_range',
                      '%s is outside the tenant\'s internal ranges %s' % (key, ', '.join(ranges)))
    for key, kinds in sorted(owners.items()):
        if len(kinds) < 2 or not any(kind in MEDIA_KINDS for kind in kinds):
            continue  # an extension and a group are _check_extensions' part
        # Blame what the change touches (the latest kind of them), naming the first other holder.
        culprit = ([kind for kind in kinds if touched(kind, key)] or kinds)[-1]
        other = next(kind for kind in kinds if kind != culprit)
        v.add(culprit, key, 'internal_number', 'internal_unique', '%s is already the number of %s %s'
              % (key, KIND_WORDS.get(other, other), key))


def _check_ivrs(v, state):
    targets = state.internal_targets()
    for key, menu in sorted(state.objects(IVR).items()):
        _check_announcement_refs(v, state, IVR, key, menu, ('greeting', 'menu'))
        fields = [('keys.%s' % k, dest) for k, dest in menu['keys'].items()]
        fields += [('invalid', menu['invalid']), ('no_input', menu['no_input'])]
        _check_destinations(v, state, IVR, key, menu, fields, targets)


def _check_queues(v, state):
    targets = state.internal_targets()
    extensions = state.objects(EXTENSION)
    for key, queue in sorted(state.objects(QUEUE).items()):
        for i, member in enumerate(queue['members']):
            if member['extension'] not in extensions:
                v.reference(QUEUE, key, 'members[%d].extension' % i, EXTENSION, member['extension'], 'extension')
        _check_announcement_refs(v, state, QUEUE, key, queue, ('music',))
        _check_destinations(v, state, QUEUE, key, queue, [('overflow', queue['overflow']),
                                                          ('no_members', queue['no_members'])], targets)


def _check_conferences(v, state):
    for key, room in sorted(state.objects(CONFERENCE).items()):
        _check_announcement_refs(v, state, CONFERENCE, key, room, ('music',))
        for flag in ('wait_for_moderator', 'end_with_moderator'):
            if room[flag] and not room['moderator_pin_hash']:
                v.add(CONFERENCE, key, flag, 'moderator_pin_required', 'a moderator is whoever enters the moderator PIN: '
                      'set moderator_pin')
        if room['pin_hash'] and room['pin_hash'] == room['moderator_pin_hash']:
            v.add(CONFERENCE, key, 'moderator_pin', 'pin_distinct', 'the moderator PIN must differ from the PIN')


def _check_schedules(v, state):
    targets = state.internal_targets()
    for name, schedule in sorted(state.objects(SCHEDULE).items()):
        _check_destinations(v, state, SCHEDULE, name, schedule, [('open', schedule['open']),
                                                                 ('closed', schedule['closed'])], targets)


# The add-on licence each IVR menu and conference room takes (rules.ADDONS), counted like seats.
_ADDON_OF = ((IVR, rules.IVR_ADDON), (CONFERENCE, rules.CONFERENCE_ADDON))


def _check_addons(v, state, touched):
    licences = state.tenant['licences']
    if licences is None:
        return
    for kind, addon in _ADDON_OF:
        # Untouched objects first: they hold their licence already; what the change adds is left without.
        users = sorted(state.objects(kind), key=lambda key: (touched(kind, key), key))
        words = KIND_WORDS[kind]
        _check_licence(v, state, touched, users, licences['addons'].get(addon, 0), 'licences.addons.%s' % addon,
                       '%s_licence' % addon, 'internal_number',
                       ('takes', 'take', 'an %s add-on but the tenant has %%d' % addon),
                       'no %s add-on is left for it: the tenant\'s %%d are taken (licences.addons.%s)' % (addon, addon),
                       kind=kind, nouns=(words, words + 's'))


def _check_groups(v, state):
    targets = state.internal_targets()
    extensions = state.objects(EXTENSION)
    for key, group in sorted(state.objects(GROUP).items()):
        if not rules.in_internal_ranges(key, state.tenant['internal_ranges']):
            v.add(GROUP, key, 'internal_number', 'internal_range',
                  '%s is outside the tenant\'s internal ranges %s' % (key, ', '.join(state.tenant['internal_ranges'])))
        if len(set(group['members'])) != len(group['members']):
            v.add(GROUP, key, 'members', 'unique', 'a member is listed twice')
        for member in group['members']:
            if member not in extensions:
                v.reference(GROUP, key, 'members', EXTENSION, member, 'extension')
        if group['fallback'] == key:
            v.add(GROUP, key, 'fallback', 'forward_loop', 'a group cannot fall back to itself')
        else:
            _check_destination(v, state, GROUP, key, 'fallback', group['fallback'], targets)


def _check_devices(v, state, lookups, touched):
    accounts = state.sip_accounts()
    locations = state.location_names()
    carried = {}
    # Untouched devices first, so that a conflicting line is blamed on the device the change touches.
    for mac, device in sorted(state.objects(DEVICE).items(), key=lambda item: (touched(DEVICE, item[0]), item[0])):
        if len(set(device['lines'])) != len(device['lines']):
            v.add(DEVICE, mac, 'lines', 'unique', 'a line is listed twice')
        model = DEVICE_MODELS.get(device['model'])
        if model and len(device['lines']) > model['lines']:
            v.add(DEVICE, mac, 'lines', 'line_count', 'a %s %s has %d lines, %d given'
                  % (model['vendor'], model['model'], model['lines'], len(device['lines'])))
        for user in device['lines']:
            if user not in accounts:
                owner = v.previous_accounts.get(user)
                if owner:
                    v.violations.append(Violation(
                        describe(EXTENSION, owner, state.name), 'sip_accounts', 'still_referenced',
                        'cannot remove SIP account %s: it is a line of %s' % (user, describe(DEVICE, mac))))
                    continue
                v.add(DEVICE, mac, 'lines', 'reference', 'SIP account %s does not exist in tenant %s' % (user, state.name))
                continue
            if accounts[user][1]['kind'] != 'desk_phone':
                v.add(DEVICE, mac, 'lines', 'line_kind', 'SIP account %s is a %s account, not a desk phone line'
                      % (user, accounts[user][1]['kind']))
            if user in carried and carried[user] != mac:
                v.add(DEVICE, mac, 'lines', 'line_unique', 'SIP account %s is already a line of device %s' % (user, carried[user]))
            carried.setdefault(user, mac)
        if device['location'] and device['location'] not in locations:
            v.reference(DEVICE, mac, 'location', 'location', device['location'], 'location')
        if touched(DEVICE, mac):
            other = lookups.mac_owner(mac, state.name)
            if other:
                v.add(DEVICE, mac, 'mac', 'mac_unique', 'MAC %s already belongs to a device of tenant %s' % (mac, other))
