# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incremental snapshot (snapshot.load with the previous snapshot): after every kind of
change it must equal a full build of the same generation, rebuild only the tenants that
changed, and leave the previous snapshot as it was."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from directory_helpers import BETA_DOMAIN, BLOCK, SINGLE, account, block, extension, harness, tenant_request
from test_routing import B_MAIN, ECOTEL, EXTRA_TRUSTED, GAMMA_DOMAIN, NOW, build_directory
from ansible_collections.voxplane.pbx.plugins.module_utils import phone_settings, snapshot
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    CONFERENCE, EXTENSION, GROUP, IVR, NUMBER, QUEUE, SCHEDULE,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import ABSENT, reconcile
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import PhoneSetting, Reject, Ring, route_inbound

TRUSTED = (EXTRA_TRUSTED,)
DELTA_DOMAIN = 'delta.voxplane.example'
DELTA_BLOCK = '+49401234'
DELTA_TRUNK = '192.0.2.77'


def _target(obj):
    if obj.kind in (IVR, QUEUE, CONFERENCE):  # a menu, queue or room: every slot
        return dict((field, getattr(obj, field)) for field in ('kind',) + obj.__slots__)
    fields = ['kind', 'tenant', 'number', 'name', 'ring_time']
    if obj.kind == EXTENSION:
        fields += ['accounts', 'numbers', 'caller_id', 'mobile', 'forwarding', 'dnd', 'available', 'voicemail',
                   'international_calls', 'location', 'single_number_reach', 'permissions', 'emergency_only',
                   'max_outside_calls', 'max_outside_calls_per_minute']
    else:
        fields += ['strategy', 'members', 'fallback']
    return dict((field, getattr(obj, field)) for field in fields)


def _schedule(schedule):
    return dict((field, getattr(schedule, field)) for field in schedule.__slots__ if field != 'zone')


def _tenant(tenant):
    fields = ['name', 'domain', 'dial_plan', 'timezone', 'main_number', 'international_calls', 'locations', 'trunk',
              'devices', 'media_server', 'permissions', 'max_outside_calls', 'max_outside_calls_per_minute', 'queues_of']
    dump = dict((field, getattr(tenant, field)) for field in fields)
    dump['schedules'] = dict((name, _schedule(schedule)) for name, schedule in tenant.schedules.items())
    dump['accounts'] = dict((user, (acc.username, acc.ha1, acc.kind, acc.extension.number))
                            for user, acc in tenant.accounts.items())
    dump['targets'] = dict((key, _target(obj)) for key, obj in tenant.targets.items())
    return dump


def dump(snap):
    """Everything the router can ask a snapshot, as plain data."""
    return {
        'generation': snap.generation,
        'tenants': dict((name, _tenant(tenant)) for name, tenant in snap.tenants.items()),
        'by_domain': dict((domain, tenant.name) for domain, tenant in snap.by_domain.items()),
        'numbers': dict((e164, (entry.e164, entry.tenant.name, entry.target, entry.status, entry.activates_at))
                        for e164, entry in snap.numbers.items()),
        'trunk_sources': dict((address, [t.name for t in tenants]) for address, tenants in snap.trunk_sources.items()),
        'trusted': snap.trusted,
        'clocks': snap.clocks,
    }


def _load(harness, previous=None):
    with harness.directory.transaction(write=False, create=False) as txn:
        return snapshot.load(txn, TRUSTED, previous)


def step(harness, previous, rebuilt):
    """Load incrementally from ``previous``; check it against a full build and return it."""
    before = dump(previous)
    new = _load(harness, previous)
    full = _load(harness)
    assert dump(new) == dump(full)
    assert new.rebuilt == rebuilt
    for name, tenant in new.tenants.items():   # the unchanged tenants are the previous snapshot's own objects
        if name in previous.tenants and previous.tenant_generations[name] == new.tenant_generations[name]:
            assert tenant is previous.tenants[name]
    assert dump(previous) == before             # the previous snapshot routes on as it was
    return new


@pytest.fixture
def directory(request, tmp_path, backend):
    """acme, beta and gamma, on each backend (conftest's ``backend``)."""
    return build_directory(harness(request, tmp_path, backend).path)


def test_an_unchanged_directory_gives_the_same_snapshot(directory):
    snap = _load(directory)
    assert _load(directory, snap) is snap


def test_one_extension_changed_rebuilds_its_tenant_only(directory):
    snap = _load(directory)
    assert isinstance(route_inbound(snap, BLOCK + '10', ECOTEL[0], NOW), Ring)
    directory.apply('acme', None, {EXTENSION: {'10': {'dnd': True}}})
    new = step(directory, snap, rebuilt=1)
    assert route_inbound(new, BLOCK + '10', ECOTEL[0], NOW).code == 486
    assert isinstance(route_inbound(snap, BLOCK + '10', ECOTEL[0], NOW), Ring)
    assert new.tenants['beta'] is snap.tenants['beta'] and new.tenants['gamma'] is snap.tenants['gamma']


def test_extensions_added_and_removed_take_their_numbers_and_accounts(directory):
    snap = _load(directory)
    directory.apply('acme', None, {EXTENSION: {'80': extension(account('neu.desk'), name='Neu'), '45': ABSENT}})
    new = step(directory, snap, rebuilt=1)
    assert new.numbers[BLOCK + '80'].target == '80' and new.numbers[BLOCK + '45'].target is None
    assert 'neu.desk' in new.tenants['acme'].accounts and 'hans.desk' not in new.tenants['acme'].accounts


def test_a_tenant_added_then_removed(directory):
    snap = _load(directory)
    directory.apply('delta', tenant_request(domain=DELTA_DOMAIN, trunks=[{'name': 'c', 'addresses': [DELTA_TRUNK]}]), {
        NUMBER: {DELTA_BLOCK: block()},
        EXTENSION: {'10': extension(account('dirk.desk'), name='Dirk')},
    })
    added = step(directory, snap, rebuilt=1)
    assert added.by_domain[DELTA_DOMAIN] is added.tenants['delta']
    assert added.numbers[DELTA_BLOCK + '10'].tenant is added.tenants['delta']
    assert added.is_trusted(DELTA_TRUNK) and added.trunk_sources[DELTA_TRUNK] == [added.tenants['delta']]
    with directory.directory.transaction() as txn:
        reconcile(txn, 'delta', ABSENT, {}, purge=(NUMBER, EXTENSION, GROUP))
    removed = step(directory, added, rebuilt=1)
    assert 'delta' not in removed.tenants and DELTA_DOMAIN not in removed.by_domain
    assert DELTA_BLOCK + '10' not in removed.numbers and DELTA_BLOCK not in removed.numbers
    assert not removed.is_trusted(DELTA_TRUNK)


def test_a_number_moving_between_tenants_in_one_transaction(directory):
    snap = _load(directory)
    with directory.directory.transaction() as txn:
        reconcile(txn, 'acme', None, {NUMBER: {SINGLE: ABSENT}, EXTENSION: {'21': {'outbound_caller_id': 'main'}}})
        reconcile(txn, 'beta', None, {NUMBER: {SINGLE: {'target': '100'}}})
    new = step(directory, snap, rebuilt=2)
    assert new.numbers[SINGLE].tenant is new.tenants['beta'] and new.numbers[SINGLE].target == '100'
    assert snap.numbers[SINGLE].tenant is snap.tenants['acme']


def test_a_number_moving_between_tenants_over_two_generations(directory):
    snap = _load(directory)
    directory.apply('acme', None, {NUMBER: {SINGLE: ABSENT}, EXTENSION: {'21': {'outbound_caller_id': 'main'}}})
    released = step(directory, snap, rebuilt=1)
    assert SINGLE not in released.numbers
    directory.apply('beta', None, {NUMBER: {SINGLE: {'target': '100'}}})
    taken = step(directory, released, rebuilt=1)
    assert taken.numbers[SINGLE].tenant is taken.tenants['beta']


def test_a_block_changes_its_range_and_a_ddi_its_extension(directory):
    snap = _load(directory)
    directory.apply('acme', None, {NUMBER: {BLOCK: block('00-59', target='50')}, EXTENSION: {'11': {'ddi': '42'}}})
    new = step(directory, snap, rebuilt=1)
    assert BLOCK + '60' not in new.numbers and BLOCK + '59' in new.numbers
    assert new.numbers[BLOCK + '42'].target == '11' and new.numbers[BLOCK + '41'].target is None


def _move_domain(directory, tenant, domain, accounts):
    """A new SIP domain is a new digest realm: every account of the tenant gets a new password."""
    children = dict((ext, extension(account(user, password='Neu-2027-%s' % user), name=name))
                    for ext, (user, name) in accounts.items())
    directory.apply(tenant, {'sip_domain': domain}, {EXTENSION: children})


BETA_ACCOUNTS = {'100': ('bert.beta', 'Bert Beta'), '10': ('berta.zehn', 'Berta Zehn'), '300': ('pong.beta', 'Pong Beta'),
                 '400': ('fwd.beta', 'Weiter Deutschland')}
GAMMA_ACCOUNTS = {'10': ('gina.gamma', 'Gina Gamma'), '11': ('snr.gamma', 'SNR ohne Trunk')}


def test_a_tenant_moves_to_another_sip_domain(directory):
    snap = _load(directory)
    _move_domain(directory, 'beta', 'beta-neu.voxplane.example', BETA_ACCOUNTS)
    new = step(directory, snap, rebuilt=1)
    assert BETA_DOMAIN not in new.by_domain and new.by_domain['beta-neu.voxplane.example'] is new.tenants['beta']
    assert new.numbers[B_MAIN].tenant is new.tenants['beta']
    assert new.tenants['beta'].accounts['bert.beta'].ha1 != snap.tenants['beta'].accounts['bert.beta'].ha1
    assert snap.by_domain[BETA_DOMAIN] is snap.tenants['beta']


def test_trunk_addresses_follow_the_tenants(directory):
    snap = _load(directory)
    directory.apply('gamma', {'trunks': [{'name': 'g', 'addresses': [ECOTEL[0], '192.0.2.99']}]}, {})
    new = step(directory, snap, rebuilt=1)
    assert new.trunk_sources[ECOTEL[0]] == [new.tenants['acme'], new.tenants['gamma']]
    assert new.is_trusted('192.0.2.99') and not snap.is_trusted('192.0.2.99')


def test_menus_queues_rooms_and_schedules_come_and_go_with_their_tenant(directory):
    snap = _load(directory)
    addons = {'client_complete': 1, 'ivr': 1, 'conference': 1}
    licences = {'licences': {'seats': {'smart': 60, 'best': 1}, 'addons': addons}}
    directory.apply('acme', licences, {
        QUEUE: {'600': {'members': [{'extension': '10'}, {'extension': '11', 'logged_in': False}]}},
        CONFERENCE: {'650': {'name': 'Team'}},
        IVR: {'700': {'keys': {'1': '600', '2': '650'}}},
        SCHEDULE: {'hours': {'hours': [{'days': ['mon'], 'from': '08:00', 'to': '12:00'}], 'open': '700', 'closed': '10'}},
    })
    added = step(directory, snap, rebuilt=1)
    acme = added.tenants['acme']
    assert acme.targets['700'].keys == {'1': '600', '2': '650'} and acme.queues_of == {'10': ('600',), '11': ('600',)}
    assert added.clocks == [('Europe/Berlin', (0, 480, 720))] and snap.clocks == []
    outcome = phone_settings.apply(directory.directory, PhoneSetting('acme', '11', {'logged_in': True}, 'in', QUEUE,
                                                                     ('600',)))
    assert outcome.changed
    logged_in = step(directory, added, rebuilt=1)
    assert logged_in.tenants['acme'].targets['600'].members[1] == ('11', 0, True)
    assert added.tenants['acme'].targets['600'].members[1] == ('11', 0, False)  # the previous one is as it was
    directory.apply('acme', None, {SCHEDULE: {'hours': ABSENT}, IVR: {'700': ABSENT}, QUEUE: {'600': ABSENT},
                                   CONFERENCE: {'650': ABSENT}})
    removed = step(directory, logged_in, rebuilt=1)
    assert removed.clocks == [] and '700' not in removed.tenants['acme'].targets


def test_a_feature_code_is_picked_up_like_a_module_run(directory):
    snap = _load(directory)
    outcome = phone_settings.apply(directory.directory, PhoneSetting('acme', '10', {'dnd': True}, 'DND on'))
    assert outcome.changed
    new = step(directory, snap, rebuilt=1)
    assert new.generation == outcome.generation
    assert isinstance(route_inbound(new, BLOCK + '10', ECOTEL[0], NOW), Reject)


def test_many_changes_in_a_row_stay_equal_to_a_full_build(directory):
    snap = _load(directory)
    changes = [
        ('acme', None, {EXTENSION: {'10': {'dnd': True}}}),
        ('gamma', None, {EXTENSION: {'10': {'name': 'Gina Neu'}}}),
        ('beta', {'display_name': 'Beta Neu'}, {}),
        ('acme', None, {EXTENSION: {'10': {'dnd': False}, '13': {'forwarding': {'busy': '12'}}}}),
    ]
    for tenant, request, children in changes:
        directory.apply(tenant, request, children)
        snap = step(directory, snap, rebuilt=1)
    _move_domain(directory, 'beta', 'beta-neu.voxplane.example', BETA_ACCOUNTS)
    snap = step(directory, snap, rebuilt=1)
    _move_domain(directory, 'gamma', BETA_DOMAIN, GAMMA_ACCOUNTS)   # the domain beta gave up
    snap = step(directory, snap, rebuilt=1)
    assert snap.by_domain[BETA_DOMAIN] is snap.tenants['gamma'] and GAMMA_DOMAIN not in snap.by_domain


def test_other_trusted_addresses_mean_a_full_build(directory):
    snap = _load(directory)
    directory.apply('acme', None, {EXTENSION: {'10': {'dnd': True}}})
    with directory.directory.transaction(write=False, create=False) as txn:
        other = snapshot.load(txn, ('192.0.2.200',), snap)
    assert other.rebuilt == 3 and other.is_trusted('192.0.2.200') and not other.is_trusted(EXTRA_TRUSTED)
