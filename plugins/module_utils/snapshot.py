# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An immutable, indexed picture of the whole directory for call routing.

Built once per directory generation from the canonical tenant states; every
question the router asks per request is then a dictionary lookup. Nothing
here touches the database except ``load()``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.model import DEVICE, EXTENSION, GROUP, NUMBER, dial_plan


def _permissions(obj):
    """permission field -> bool, for every call class that needs one (rules.CALL_CLASS_PERMISSION)."""
    return dict((field, bool(obj[field])) for field in rules.CALL_CLASS_PERMISSION.values() if field)


class Account(object):
    __slots__ = ('username', 'ha1', 'kind', 'extension')

    def __init__(self, username, ha1, kind, extension):
        self.username = username
        self.ha1 = ha1
        self.kind = kind
        self.extension = extension


class Extension(object):
    """What routing needs of an extension; forwarding destinations as stored."""

    kind = EXTENSION
    __slots__ = ('tenant', 'number', 'name', 'accounts', 'numbers', 'caller_id', 'mobile', 'ring_time',
                 'forwarding', 'dnd', 'available', 'voicemail', 'international_calls', 'location',
                 'single_number_reach', 'permissions', 'emergency_only', 'max_outside_calls',
                 'max_outside_calls_per_minute')

    def __init__(self, tenant, obj, numbers, main_number):
        self.tenant = tenant
        self.number = obj['internal_number']
        self.name = obj['name']
        self.accounts = tuple(a['username'] for a in obj['sip_accounts'])
        self.numbers = tuple(numbers)
        self.mobile = obj['mobile']
        self.ring_time = obj['ring_time']
        self.forwarding = dict(obj['forwarding'])
        self.dnd = obj['dnd']
        self.available = obj['available']
        self.voicemail = obj['voicemail']['enabled']
        self.international_calls = obj['international_calls']
        self.location = obj['location']
        self.single_number_reach = obj['single_number_reach']
        self.permissions = _permissions(obj)
        self.emergency_only = obj['emergency_only']
        self.max_outside_calls = obj['max_outside_calls']
        self.max_outside_calls_per_minute = obj['max_outside_calls_per_minute']
        cid = obj['outbound_caller_id']
        if cid == 'anonymous':
            self.caller_id = 'anonymous'
        elif cid == 'main':
            self.caller_id = main_number
        elif cid:
            self.caller_id = cid
        else:
            self.caller_id = self.numbers[0] if self.numbers else main_number


class Group(object):
    kind = GROUP
    __slots__ = ('tenant', 'number', 'name', 'strategy', 'members', 'ring_time', 'fallback')

    def __init__(self, tenant, obj):
        self.tenant = tenant
        self.number = obj['internal_number']
        self.name = obj['name']
        self.strategy = obj['strategy']
        self.members = tuple(obj['members'])
        self.ring_time = obj['ring_time']
        self.fallback = obj['fallback']


class Tenant(object):
    __slots__ = ('name', 'domain', 'dial_plan', 'timezone', 'main_number', 'international_calls', 'locations',
                 'trunk', 'accounts', 'targets', 'devices', 'media_server', 'permissions', 'max_outside_calls',
                 'max_outside_calls_per_minute')

    def __init__(self, state, plan):
        t = state.tenant
        self.name = t['name']
        self.domain = t['sip_domain']
        self.dial_plan = dial_plan(t)
        self.timezone = t['timezone']
        self.main_number = t['main_number']
        self.international_calls = t['international_calls']
        self.media_server = t['media_server']
        self.permissions = _permissions(t)
        self.max_outside_calls = t['max_outside_calls']
        self.max_outside_calls_per_minute = t['max_outside_calls_per_minute']
        self.locations = dict((loc['name'], loc) for loc in t['locations'])
        trunks = dict((tr['name'], tr) for tr in t['trunks'])
        preferred = t['preferred_trunk'] or (t['trunks'][0]['name'] if len(t['trunks']) == 1 else None)
        self.trunk = trunks.get(preferred)
        numbers_of = state.numbers_of(plan)
        self.accounts = {}
        self.targets = {}
        for key, obj in state.objects(EXTENSION).items():
            ext = Extension(self.name, obj, numbers_of.get(key, ()), self.main_number)
            self.targets[key] = ext
            for acc in obj['sip_accounts']:
                self.accounts[acc['username']] = Account(acc['username'], acc['ha1'], acc['kind'], ext)
        for key, obj in state.objects(GROUP).items():
            self.targets[key] = Group(self.name, obj)
        self.devices = dict((mac, dict(d)) for mac, d in state.objects(DEVICE).items())


class NumberEntry(object):
    """One E.164 number of the directory: who holds it and where it leads."""

    __slots__ = ('e164', 'tenant', 'target', 'status', 'activates_at')

    def __init__(self, e164, tenant, target, number, tz):
        self.e164 = e164
        self.tenant = tenant
        self.target = target
        self.status = number['status']
        self.activates_at = None
        if self.status == 'porting' and number['porting_date']:
            self.activates_at = rules.porting_activation(number['porting_date'], tz).timestamp()

    def status_at(self, now):
        """'active', 'inactive' or 'porting' at the given epoch second."""
        if self.status == 'porting' and self.activates_at is not None and now >= self.activates_at:
            return 'active'
        return self.status


class Snapshot(object):
    """The directory at one generation, indexed for routing."""

    def __init__(self, states, generation=0, trusted_addresses=()):
        self.generation = generation
        self.tenants = {}
        self.by_domain = {}
        self.numbers = {}
        self.trunk_sources = {}
        for name, state in sorted(states.items()):
            if state.tenant is None:
                continue
            plan = state.number_plan()[0]
            tenant = Tenant(state, plan)
            self.tenants[name] = tenant
            self.by_domain[tenant.domain] = tenant
            numbers = state.objects(NUMBER)
            for e164, entry in plan.items():
                self.numbers[e164] = NumberEntry(e164, tenant, entry['target'], numbers[entry['number']], tenant.timezone)
            for trunk in state.tenant['trunks']:
                for address in trunk['addresses']:
                    self.trunk_sources.setdefault(address, []).append(tenant)
        # Addresses trusted by deployment (role variable) besides the tenants' trunks.
        self.trusted = frozenset(trusted_addresses) | frozenset(self.trunk_sources)

    def is_trusted(self, address):
        return address in self.trusted


def load(txn, trusted_addresses=()):
    """Build a snapshot inside a (read) transaction of the store."""
    generation = txn.generation()['generation']
    return Snapshot(txn.load_all(), generation, trusted_addresses)
