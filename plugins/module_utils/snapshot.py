# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An immutable, indexed picture of the whole directory for call routing.

Built from the canonical tenant states; every question the router asks per
request is then a dictionary lookup. Nothing here touches the database
except ``load()``.

A change costs what it touches: each tenant carries the directory generation
that last changed it (store.py stamps it on every write), and ``load()`` given
the previous snapshot rebuilds only the tenants whose generation moved, shares
every other Tenant object with the previous snapshot and patches the
cross-tenant indexes (numbers, SIP domains, trunk addresses). The result is
the same as a full build (tests/unit/plugins/module_utils/test_snapshot_incremental.py).

Compact on purpose (100,000 extensions fit in tens of MB per worker): no
per-account or per-DID dict, values that many objects have in common (a
default forwarding, permissions, an extension's settings) stored once and
shared, small strings interned; an Account is made when asked for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import datetime
import sys

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    ANNOUNCEMENT, CONFERENCE, DEVICE, EXTENSION, GROUP, IVR, NUMBER, QUEUE, SCHEDULE, dial_plan,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.state import TenantState

_HA1_BYTES = 16  # an MD5 digest (rules.ha1_value: 32 hex digits)


def _intern(text):
    return sys.intern(text) if isinstance(text, str) else text


class _Pool(object):
    """One shared object per distinct value: what many extensions have in common is stored
    once. Passed on from a snapshot to the next one built from it; rebuilt by a full load."""

    __slots__ = ('_values',)

    def __init__(self):
        self._values = {}

    def share(self, key, make):
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = make()
        return value

    def mapping(self, items):
        """A shared dict with these items (never to be changed by its users)."""
        items = tuple(sorted(items))
        return self.share(('map',) + items, lambda: dict(items))

    def strings(self, values):
        values = tuple(values)
        return self.share(('tuple',) + values, lambda: tuple(_intern(v) for v in values))


def _permissions(obj, pool):
    """permission field -> bool, for every call class that needs one (rules.CALL_CLASS_PERMISSION)."""
    return pool.mapping((field, bool(obj[field])) for field in rules.CALL_CLASS_PERMISSION.values() if field)


class Account(object):
    """A SIP account as the router sees it; made on request from its extension."""

    __slots__ = ('username', 'ha1', 'kind', 'extension', 'require_tls')

    def __init__(self, username, ha1, kind, extension, require_tls=False):
        self.username = username
        self.ha1 = ha1
        self.kind = kind
        self.extension = extension
        self.require_tls = require_tls  # registers and calls over TLS (or secure WebSocket) only


class Accounts(dict):
    """username -> Account of one tenant, stored as username -> Extension: the HA1s of the
    tenant's accounts are one byte string here, the kinds are shared settings of the
    extension; an Account object exists only while a request uses it."""

    __slots__ = ('ha1s',)

    def __init__(self):
        dict.__init__(self)
        self.ha1s = b''

    def get(self, username, default=None):
        ext = dict.get(self, username)
        if ext is None:
            return default
        return ext.account(username, self.ha1s)

    def __getitem__(self, username):
        return dict.__getitem__(self, username).account(username, self.ha1s)

    def values(self):
        return [ext.account(user, self.ha1s) for user, ext in dict.items(self)]

    def items(self):
        return [(user, ext.account(user, self.ha1s)) for user, ext in dict.items(self)]


class _Settings(object):
    """An extension's settings that many extensions share (one object per distinct set)."""

    __slots__ = ('ring_time', 'forwarding', 'dnd', 'available', 'voicemail', 'international_calls', 'location',
                 'single_number_reach', 'permissions', 'emergency_only', 'max_outside_calls',
                 'max_outside_calls_per_minute', 'kinds', 'tls_only')

    def __init__(self, values):
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)


def _setting(name):
    return property(lambda self: getattr(self._settings, name), doc='shared setting %s' % name)


# Numbers: no number asked for yet.
_NOTHING = object()
# Extension.caller_id: the extension's own first number.
_FIRST_NUMBER = object()


def _tls_only(accounts, pool):
    """Per account, whether it requires TLS; None when none does (nearly every extension)."""
    flags = tuple(bool(a.get('require_tls')) for a in accounts)
    return pool.share(('tls',) + flags, lambda: flags) if any(flags) else None


def _compact_number(e164):
    """An E.164 number as its digits, an int (28 bytes instead of a 60-byte string)."""
    digits = e164[1:]
    if e164[:1] == '+' and digits.isdigit() and digits.isascii() and digits[:1] != '0':
        return int(digits)
    return e164


class Extension(object):
    """What routing needs of an extension; forwarding destinations as stored."""

    kind = EXTENSION
    __slots__ = ('tenant', 'number', 'name', 'accounts', '_numbers', '_caller_id', 'mobile', '_ha1s', '_settings',
                 'speed_dials')

    def __init__(self, tenant, obj, numbers, main_number, pool, first_ha1=0):
        self.tenant = tenant
        self.number = _intern(obj['internal_number'])
        self.name = obj['name']
        accounts = obj['sip_accounts']
        self.accounts = tuple(a['username'] for a in accounts)  # unique: interning would only cost
        self._ha1s = first_ha1  # where this extension's HA1s start in its tenant's Accounts.ha1s
        # One number (the usual case) is kept as its digits, without a tuple around it.
        self._numbers = _compact_number(numbers[0]) if len(numbers) == 1 else tuple(numbers)
        self.mobile = obj['mobile']
        # code -> the number it calls (internal or E.164); None for the many without speed dials.
        dials = obj.get('speed_dials')
        self.speed_dials = pool.mapping((d['code'], d['number']) for d in dials) if dials else None
        forwarding = pool.mapping(obj['forwarding'].items())
        values = (obj['ring_time'], forwarding, obj['dnd'], obj['available'], obj['voicemail']['enabled'],
                  obj['international_calls'], _intern(obj['location']), obj['single_number_reach'],
                  _permissions(obj, pool), obj['emergency_only'], obj['max_outside_calls'],
                  obj['max_outside_calls_per_minute'], pool.strings([a['kind'] for a in accounts]),
                  _tls_only(accounts, pool))
        key = ('settings',) + tuple(id(v) if i in (1, 8, 12, 13) else v for i, v in enumerate(values))
        self._settings = pool.share(key, lambda: _Settings(values))
        cid = obj['outbound_caller_id']
        if cid == 'anonymous':
            self._caller_id = 'anonymous'
        elif cid == 'main':
            self._caller_id = main_number
        elif cid:
            self._caller_id = cid
        else:
            self._caller_id = _FIRST_NUMBER if numbers else main_number

    def account(self, username, ha1s):
        i = self.accounts.index(username)
        start = (self._ha1s + i) * _HA1_BYTES
        settings = self._settings
        return Account(username, ha1s[start:start + _HA1_BYTES].hex(), settings.kinds[i], self,
                       settings.tls_only is not None and settings.tls_only[i])

    @property
    def numbers(self):
        """The E.164 numbers that reach the extension, sorted."""
        numbers = self._numbers
        if numbers.__class__ is tuple:
            return numbers
        return ('+%d' % numbers,) if numbers.__class__ is int else (numbers,)

    @property
    def caller_id(self):
        """The number an outside call presents: 'anonymous', a number, or None."""
        cid = self._caller_id
        return self.numbers[0] if cid is _FIRST_NUMBER else cid

    ring_time = _setting('ring_time')
    forwarding = _setting('forwarding')
    dnd = _setting('dnd')
    available = _setting('available')
    voicemail = _setting('voicemail')
    international_calls = _setting('international_calls')
    location = _setting('location')
    single_number_reach = _setting('single_number_reach')
    permissions = _setting('permissions')
    emergency_only = _setting('emergency_only')
    max_outside_calls = _setting('max_outside_calls')
    max_outside_calls_per_minute = _setting('max_outside_calls_per_minute')


class Group(object):
    kind = GROUP
    __slots__ = ('tenant', 'number', 'name', 'strategy', 'members', 'ring_time', 'fallback')

    def __init__(self, tenant, obj, pool):
        self.tenant = tenant
        self.number = _intern(obj['internal_number'])
        self.name = obj['name']
        self.strategy = _intern(obj['strategy'])
        self.members = pool.strings(obj['members'])
        self.ring_time = obj['ring_time']
        self.fallback = obj['fallback']


class Menu(object):
    """An IVR menu: the router sends its calls to the media service (routing._reach); the route simulator
    and the call-flow pictures follow its keys."""

    kind = IVR
    __slots__ = ('tenant', 'number', 'name', 'greeting', 'menu', 'keys', 'timeout', 'max_tries', 'invalid', 'no_input',
                 'direct_dial')

    def __init__(self, tenant, obj):
        self.tenant = tenant
        self.number = _intern(obj['internal_number'])
        self.name = obj['name']
        for field in self.__slots__[3:]:
            setattr(self, field, obj[field])
        # key -> destination in the order a phone's keypad lists the keys
        self.keys = dict((key, obj['keys'][key]) for key in rules.MENU_KEYS if key in obj['keys'])


class Queue(object):
    """A call queue: its members ring through the router (routing.route_from_media, to=member); the rest is
    the media service's. ``members``: (extension, penalty, logged in) in the queue's order."""

    kind = QUEUE
    __slots__ = ('tenant', 'number', 'name', 'strategy', 'members', 'member_numbers', 'member_ring_time', 'wrapup_time',
                 'max_callers', 'max_wait', 'overflow', 'no_members', 'music', 'announce_position')

    def __init__(self, tenant, obj):
        self.tenant = tenant
        self.number = _intern(obj['internal_number'])
        self.name = obj['name']
        for field in self.__slots__[3:]:
            if field in obj:
                setattr(self, field, obj[field])
        self.members = tuple((_intern(m['extension']), m['penalty'], m['logged_in']) for m in obj['members'])
        self.member_numbers = frozenset(m[0] for m in self.members)


class Room(object):
    """A conference room: the media service's alone."""

    kind = CONFERENCE
    __slots__ = ('tenant', 'number', 'name', 'max_participants')

    def __init__(self, tenant, obj):
        self.tenant = tenant
        self.number = _intern(obj['internal_number'])
        self.name = obj['name']
        self.max_participants = obj['max_participants']


_MEDIA_TARGETS = ((IVR, Menu), (QUEUE, Queue), (CONFERENCE, Room))
_DAY = datetime.timedelta(days=1)


class Schedule(object):
    """Business hours: ``is_open(now)`` by the clock in the schedule's time zone (its own, else the
    tenant's): within an interval of that day of the week and not a holiday. ``marks``: the minutes of the
    day at which the answer may change (every opening and closing time, and midnight), from which
    ``Snapshot.stable_period`` knows how long a decision holds."""

    __slots__ = ('name', 'zone', 'timezone', 'open', 'closed', 'days', 'holidays', 'marks')

    def __init__(self, obj, tenant_timezone):
        self.name = _intern(obj['name'])
        self.timezone = obj['timezone'] or tenant_timezone
        self.zone = rules.time_zone(self.timezone)
        self.open = obj['open']
        self.closed = obj['closed']
        days = [[] for _day in rules.WEEKDAYS]
        marks = set([0])
        for entry in obj['hours']:
            start, end = rules.clock_time(entry['from'], 'from'), rules.clock_time(entry['to'], 'to', end=True)
            marks.update((start, end % 1440))
            for day in entry['days']:
                days[rules.WEEKDAYS.index(day)].append((start, end))
        self.days = tuple(tuple(sorted(spans)) for spans in days)
        self.holidays = frozenset(obj['holidays'])
        self.marks = tuple(sorted(marks))

    def is_open(self, now):
        """Whether the schedule is open at epoch second ``now``."""
        local = datetime.datetime.fromtimestamp(now, self.zone)
        if local.date().isoformat() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.days[local.weekday()])

    def destination(self, now):
        """(open?, the destination the schedule leads to at ``now``)."""
        is_open = self.is_open(now)
        return is_open, self.open if is_open else self.closed


def clock_period(zone, marks, now):
    """(start, end) around epoch second ``now`` in which no wall-clock time of ``marks`` (minutes of the day,
    midnight among them) passes in ``zone`` and its offset from UTC does not change: a stretch in which a
    schedule of those marks gives one answer. At most a day long."""
    day = datetime.datetime.fromtimestamp(now, zone).date()
    moments = set()
    for offset in (-1, 0, 1, 2):
        date = day + offset * _DAY
        for mark in marks:
            for fold in (0, 1):  # a wall-clock time the change from summer time passes twice
                moments.add(datetime.datetime(date.year, date.month, date.day, mark // 60, mark % 60, fold=fold,
                                              tzinfo=zone).timestamp())
    moments = sorted(moments)
    i = bisect.bisect_right(moments, now)
    start, end = moments[i - 1], moments[i]

    def offset_at(moment):
        return datetime.datetime.fromtimestamp(moment, zone).utcoffset()

    if offset_at(start) != offset_at(end):  # summer time begins or ends in between: that moment too
        low, high = start, end
        while high - low > 1:
            middle = (low + high) // 2
            if offset_at(middle) == offset_at(start):
                low = middle
            else:
                high = middle
        if high <= now:
            start = high
        else:
            end = high
    return start, end


class _NumberSource(object):
    """What the E.164 numbers of one number object (a single number or a block) share."""

    __slots__ = ('tenant', 'status', 'activates_at')

    def __init__(self, tenant, number, tz):
        self.tenant = tenant
        self.status = _intern(number['status'])
        self.activates_at = None
        if self.status == 'porting' and number['porting_date']:
            self.activates_at = rules.porting_activation(number['porting_date'], tz).timestamp()


class NumberEntry(object):
    """One E.164 number of the directory: who holds it and where it leads."""

    __slots__ = ('e164', 'target', '_source')

    def __init__(self, e164, target, source):
        self.e164 = e164
        self.target = target
        self._source = source

    tenant = property(lambda self: self._source.tenant)
    status = property(lambda self: self._source.status)
    activates_at = property(lambda self: self._source.activates_at)

    def status_at(self, now):
        """'active', 'inactive' or 'porting' at the given epoch second."""
        source = self._source
        if source.status == 'porting' and source.activates_at is not None and now >= source.activates_at:
            return 'active'
        return source.status


class _Block(object):
    """The direct-dial numbers of one block (base number + DDI): a DDI's entry is made when
    asked for, so that a block of 100 or 100,000 DDIs costs one object."""

    __slots__ = ('base', 'first', 'last', 'width', 'claimed', 'source')

    def __init__(self, base, ddi_range, claimed, source):
        self.base = base
        self.first, self.last, self.width = rules.ddi_range(ddi_range)
        self.claimed = claimed  # DDI -> internal number, for the DDIs that lead somewhere
        self.source = source

    def entry(self, e164, ddi):
        if ddi.isdigit() and ddi.isascii() and self.first <= int(ddi) <= self.last:
            return NumberEntry(e164, self.claimed.get(ddi), self.source)
        return None

    def __len__(self):
        return self.last - self.first + 1

    def __iter__(self):
        for ddi in range(self.first, self.last + 1):
            yield self.base + str(ddi).zfill(self.width)


class Numbers(object):
    """E.164 number -> NumberEntry over every tenant, read like a dict: single numbers and block
    heads in a dictionary, a block's members found through their block (one dictionary lookup
    per DDI width in use, usually one)."""

    __slots__ = ('_single', '_blocks', '_widths', '_last')

    def __init__(self, single=None, blocks=None):
        self._single = single or {}
        self._blocks = blocks or {}
        self._widths = tuple(sorted(set(block.width for block in self._blocks.values())))
        # The last block member asked for: a request asks for the same number twice in a row
        # (``in``, then ``get``), which then makes one entry, not two.
        self._last = (_NOTHING, None)

    def get(self, key, default=None):
        entry = self._single.get(key)
        if entry is not None:
            return entry
        last = self._last
        if last[0] == key:
            return last[1]
        if key.__class__ is str:
            for width in self._widths:
                block = self._blocks.get(key[:-width])
                if block is not None:
                    entry = block.entry(key, key[-width:])
                    if entry is not None:
                        self._last = (key, entry)
                        return entry
        return default

    def __contains__(self, key):
        return self.get(key) is not None

    def __getitem__(self, key):
        entry = self.get(key)
        if entry is None:
            raise KeyError(key)
        return entry

    def __len__(self):
        return len(self._single) + sum(len(block) for block in self._blocks.values())

    def __iter__(self):
        yield from self._single
        for block in self._blocks.values():
            yield from block

    def keys(self):
        return list(self)

    def items(self):
        return [(e164, self[e164]) for e164 in self]

    def values(self):
        return [self[e164] for e164 in self]

    def __eq__(self, other):
        return dict(self.items()) == dict(other.items()) if hasattr(other, 'items') else NotImplemented

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None

    def __repr__(self):
        return 'Numbers(%d)' % len(self)


def _presented_location(location, plan):
    """A location as the router uses it: its emergency caller ID only once it is a number of the
    tenant (``plan``: the tenant's number plan)."""
    ecid = location.get('emergency_caller_id')
    return location if not ecid or ecid in plan else dict(location, emergency_caller_id=None)


class Tenant(object):
    __slots__ = ('name', 'domain', 'dial_plan', 'timezone', 'main_number', 'international_calls', 'locations',
                 'trunk', 'trunk_addresses', 'accounts', 'targets', 'devices', 'media_server', 'relay_media', 'permissions',
                 'max_outside_calls', 'max_outside_calls_per_minute', 'single_numbers', 'blocks', 'activations',
                 'announcements', 'voicemail_pin_always', 'schedules', 'queues_of')

    def __init__(self, state, pool=None):
        pool = pool or _Pool()
        t = state.tenant
        self.name = _intern(t['name'])
        self.domain = _intern(t['sip_domain'])
        self.dial_plan = pool.mapping(dial_plan(t).items())
        self.timezone = _intern(t['timezone'])
        plan = state.number_plan()[0]
        # A main number or emergency caller ID that is not (yet) a number of the tenant is not
        # presented: the modules accept one that no tenant holds yet (integrity.check), so that a
        # playbook may create the number after the tenant. Until then the router acts as without it.
        self.main_number = t['main_number'] if t['main_number'] in plan else None
        self.international_calls = t['international_calls']
        self.media_server = t['media_server']
        self.voicemail_pin_always = t['voicemail_pin_always']
        # name -> where the call goes after it (a destination), or None: the call ends with it.
        self.announcements = dict((_intern(name), a['then']) for name, a in state.objects(ANNOUNCEMENT).items())
        self.relay_media = t['media_relay'] == 'always'  # every call's media through rtpengine
        self.permissions = _permissions(t, pool)
        self.max_outside_calls = t['max_outside_calls']
        self.max_outside_calls_per_minute = t['max_outside_calls_per_minute']
        self.locations = dict((loc['name'], _presented_location(loc, plan)) for loc in t['locations'])
        trunks = dict((tr['name'], tr) for tr in t['trunks'])
        preferred = t['preferred_trunk'] or (t['trunks'][0]['name'] if len(t['trunks']) == 1 else None)
        self.trunk = trunks.get(preferred)
        self.trunk_addresses = tuple(address for trunk in t['trunks'] for address in trunk['addresses'])
        numbers_of = state.numbers_of(plan)
        self.accounts = Accounts()
        self.targets = {}
        ha1s = []
        for key, obj in state.objects(EXTENSION).items():
            ext = Extension(self.name, obj, numbers_of.get(key, ()), self.main_number, pool, len(ha1s))
            self.targets[ext.number] = ext
            for acc in obj['sip_accounts']:
                dict.__setitem__(self.accounts, acc['username'], ext)
                ha1s.append(acc['ha1'])
        self.accounts.ha1s = bytes.fromhex(''.join(ha1s))
        for obj in state.objects(GROUP).values():
            group = Group(self.name, obj, pool)
            self.targets[group.number] = group
        # IVR menus, queues and conference rooms: internal numbers the media service answers (docs/media.md).
        self.queues_of = {}  # extension -> the queues it is a member of (feature codes *44, *45)
        for kind, make in _MEDIA_TARGETS:
            for key, obj in sorted(state.objects(kind).items()):
                target = make(self.name, obj)
                self.targets[target.number] = target
                if kind == QUEUE:
                    for member in target.member_numbers:
                        self.queues_of[member] = self.queues_of.get(member, ()) + (target.number,)
        self.schedules = dict((name, Schedule(obj, self.timezone)) for name, obj in state.objects(SCHEDULE).items())
        self.devices = dict((mac, dict(d)) for mac, d in state.objects(DEVICE).items())
        # Every E.164 number of the tenant as the snapshot's number index holds it: an entry per
        # single number and block head, a _Block per block with the DDIs that lead somewhere.
        singles, blocks, claimed = [], [], {}
        for e164, entry in plan.items():
            if entry['target'] and e164 != entry['number']:
                claimed.setdefault(entry['number'], []).append((e164[len(entry['number']):], entry['target']))
        for key, number in state.objects(NUMBER).items():
            source = _NumberSource(self, number, self.timezone)
            head = plan[key]['target']
            singles.append(NumberEntry(key, _intern(head) if head else None, source))
            if number.get('ddi_range'):
                ddis = pool.mapping((_intern(ddi), _intern(target)) for ddi, target in claimed.get(key, ()))
                blocks.append(_Block(key, number['ddi_range'], ddis, source))
        self.single_numbers = tuple(singles)
        self.blocks = tuple(blocks)
        # The moments a porting number of this tenant becomes active: the only times at which
        # routing on an unchanged directory changes (NumberEntry.status_at).
        self.activations = tuple(sorted(set(entry._source.activates_at for entry in singles
                                            if entry._source.activates_at is not None)))


def _add(tenants, single, blocks, tenant):
    tenants[tenant.name] = tenant
    for entry in tenant.single_numbers:
        single[entry.e164] = entry
    for block in tenant.blocks:
        blocks[block.base] = block


class Snapshot(object):
    """The directory at one generation, indexed for routing.

    ``states``: tenant name -> TenantState (a state without tenant object is left out).
    ``tenant_generations``: tenant name -> the generation that last changed it, what
    ``load()`` compares to rebuild only what changed. ``media_service``: the SIP URI of the PBX's
    own media service (the deployment's, docs/media.md), or None."""

    def __init__(self, states=None, generation=0, trusted_addresses=(), tenant_generations=None, media_service=None):
        pool, tenants, single, blocks = _Pool(), {}, {}, {}
        for _name, state in sorted((states or {}).items()):
            if state.tenant is not None:
                _add(tenants, single, blocks, Tenant(state, pool))
        self._assemble(generation, trusted_addresses, tenant_generations, pool, tenants, Numbers(single, blocks),
                       media_service)

    @classmethod
    def _made(cls, generation, trusted_addresses, tenant_generations, pool, tenants, numbers, media_service=None):
        snap = cls.__new__(cls)
        snap._assemble(generation, trusted_addresses, tenant_generations, pool, tenants, numbers, media_service)
        return snap

    def _assemble(self, generation, trusted_addresses, tenant_generations, pool, tenants, numbers, media_service=None):
        """Set the tenants and the number index; derive the small cross-tenant indexes."""
        self.generation = generation
        self.media_service = media_service
        self.trusted_addresses = frozenset(trusted_addresses)
        self.tenant_generations = dict(tenant_generations or {})
        self._pool = pool
        self.tenants = tenants
        self.numbers = numbers
        self.by_domain = dict((tenant.domain, tenant) for tenant in tenants.values())
        self.trunk_sources = {}
        for name in sorted(tenants):
            for address in tenants[name].trunk_addresses:
                self.trunk_sources.setdefault(address, []).append(tenants[name])
        # Addresses trusted by deployment (role variable) besides the tenants' trunks.
        self.trusted = self.trusted_addresses | frozenset(self.trunk_sources)
        self.activations = sorted(set(moment for tenant in tenants.values() for moment in tenant.activations))
        # The clocks of every schedule: (time zone, its marks), each once.
        self.clocks = sorted(set((schedule.timezone, schedule.marks) for tenant in tenants.values()
                                 for schedule in tenant.schedules.values()))
        self.rebuilt = len(tenants)  # tenants built for this snapshot (updated(): the changed ones)

    def updated(self, states, generation, tenant_generations=None):
        """A new snapshot with the tenants of ``states`` (name -> TenantState; no tenant object:
        removed) rebuilt; every other tenant is shared with this one, which stays as it was."""
        tenants = dict(self.tenants)
        single, blocks = dict(self.numbers._single), dict(self.numbers._blocks)
        # Every changed tenant's numbers leave first, then the new ones come: a number that
        # moved from one changed tenant to another ends up with its new holder.
        for name in states:
            old = tenants.pop(name, None)
            if old is not None:
                for entry in old.single_numbers:
                    if single.get(entry.e164) is entry:
                        del single[entry.e164]
                for block in old.blocks:
                    if blocks.get(block.base) is block:
                        del blocks[block.base]
        for _name, state in sorted(states.items()):
            if state.tenant is not None:
                _add(tenants, single, blocks, Tenant(state, self._pool))
        snap = self._made(generation, self.trusted_addresses, tenant_generations, self._pool, tenants,
                          Numbers(single, blocks), self.media_service)
        snap.rebuilt = len(states)
        return snap

    def is_trusted(self, address):
        return address in self.trusted

    def stable_period(self, now):
        """(start, end): the stretch of time around ``now`` in which no number of this snapshot
        changes its status and no schedule opens or closes (an opening or closing time, midnight, a
        change of summer time in its time zone), so that the routing core decides every call the same
        way throughout."""
        moments = self.activations
        i = bisect.bisect_right(moments, now)
        start, end = (moments[i - 1] if i else float('-inf')), (moments[i] if i < len(moments) else float('inf'))
        for timezone, marks in self.clocks:
            first, last = clock_period(rules.time_zone(timezone), marks, now)
            start, end = max(start, first), min(end, last)
        return start, end


def load(txn, trusted_addresses=(), previous=None, media_service=None):
    """Build a snapshot inside a (read) transaction of the store. With ``previous`` (a snapshot
    loaded earlier with the same trusted addresses and media service), only the tenants whose
    generation moved since are read and rebuilt."""
    generation = txn.generation()['generation']
    generations = txn.tenant_generations()
    if previous is not None and previous.trusted_addresses == frozenset(trusted_addresses) \
            and previous.media_service == media_service:
        if generation == previous.generation and generations == previous.tenant_generations:
            return previous
        known = previous.tenant_generations
        states = dict((name, txn.load_tenant(name)) for name, g in generations.items() if known.get(name) != g)
        states.update((name, TenantState(name)) for name in known if name not in generations)
        return previous.updated(states, generation, generations)
    pool, tenants, single, blocks = _Pool(), {}, {}, {}
    for name in sorted(generations):  # one tenant's state in memory at a time
        _add(tenants, single, blocks, Tenant(txn.load_tenant(name), pool))
    return Snapshot._made(generation, trusted_addresses, generations, pool, tenants, Numbers(single, blocks), media_service)
