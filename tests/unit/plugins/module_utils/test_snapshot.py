# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The snapshot (snapshot.py): the indexed, per-generation view of the directory the router
decides from. Built from the same two-tenant directory as test_routing.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from directory_helpers import BETA_DOMAIN, BLOCK, DOMAIN, PASSWORD, SINGLE, account, extension, tenant_request
from test_routing import (
    ACTIVATION, B_MAIN, B_PORTING, B_TRUNK_V4, B_TRUNK_V6, BACKUP, BRANCH_ECID, ECOTEL, EXTRA_TRUSTED, GAMMA_DOMAIN,
    HQ_ECID, INACTIVE, MAC, MAIN, MEDIA_SERVER, MOBILE_70, MOBILE_71, NOW, PORT_FUTURE, PORT_PAST, build_directory,
    load_snapshot,
)
from ansible_collections.voxplane.pbx.plugins.module_utils import rules, snapshot
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION, GROUP
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import Reject, Ring, route_from_account, route_inbound
from ansible_collections.voxplane.pbx.plugins.module_utils.state import TenantState


@pytest.fixture(scope='module')
def directory(tmp_path_factory):
    return build_directory(tmp_path_factory.mktemp('snapshot') / 'directory.db')


@pytest.fixture(scope='module')
def snap(directory):
    return load_snapshot(directory)


def test_generation_is_the_directorys(directory, snap):
    assert snap.generation == directory.generation() == 3      # one reconcile per tenant


def test_tenants_by_name_and_by_domain(snap):
    assert sorted(snap.tenants) == ['acme', 'beta', 'gamma']
    assert sorted(snap.by_domain) == sorted([DOMAIN, BETA_DOMAIN, GAMMA_DOMAIN])
    for name, tenant in snap.tenants.items():
        assert snap.by_domain[tenant.domain] is tenant
        assert tenant.name == name
    assert 'ACME.voxplane.example' not in snap.by_domain


def test_tenant_dial_plan_and_permissions(snap):
    acme, beta = snap.tenants['acme'], snap.tenants['beta']
    assert acme.dial_plan == {'country_code': '49', 'national_prefix': '0', 'international_prefix': '00'}
    assert beta.dial_plan == {'country_code': '43', 'national_prefix': '0', 'international_prefix': '00'}
    assert (acme.international_calls, beta.international_calls) == (True, False)
    assert (acme.main_number, beta.main_number, snap.tenants['gamma'].main_number) == (MAIN, B_MAIN, None)
    assert acme.timezone == 'Europe/Berlin'


def test_locations_keep_their_emergency_caller_ids(snap):
    locations = snap.tenants['acme'].locations
    assert sorted(locations) == ['hamburg', 'hq']
    assert locations['hq']['emergency_caller_id'] == HQ_ECID
    assert locations['hamburg']['emergency_caller_id'] == BRANCH_ECID      # given nationally, stored as E.164
    assert snap.tenants['beta'].locations['wien']['emergency_caller_id'] is None


def test_the_preferred_trunk_or_the_only_one_or_none(snap):
    assert snap.tenants['acme'].trunk == {'name': 'ecotel', 'addresses': list(ECOTEL), 'port': 5060}
    assert snap.tenants['beta'].trunk == {'name': 'b-trunk', 'addresses': [B_TRUNK_V6, B_TRUNK_V4], 'port': 5080}
    assert snap.tenants['gamma'].trunk is None


def test_trusted_addresses_are_every_trunk_address_and_the_extra_ones(snap):
    assert snap.trusted == frozenset(ECOTEL + BACKUP + (B_TRUNK_V6, B_TRUNK_V4, EXTRA_TRUSTED))
    for address in ECOTEL + BACKUP + (B_TRUNK_V6, B_TRUNK_V4, EXTRA_TRUSTED):
        assert snap.is_trusted(address), address
    for address in ('192.0.2.99', '2001:DB8::5', '2001:0db8::5', '', 'acme.voxplane.example'):
        assert not snap.is_trusted(address), address


def test_trunk_sources_name_the_tenants_behind_an_address(snap):
    acme, beta = snap.tenants['acme'], snap.tenants['beta']
    assert snap.trunk_sources == {ECOTEL[0]: [acme], ECOTEL[1]: [acme], BACKUP[0]: [acme],
                                  B_TRUNK_V6: [beta], B_TRUNK_V4: [beta]}
    assert EXTRA_TRUSTED not in snap.trunk_sources      # trusted, but no tenant's dial plan


def test_without_extra_addresses_only_the_trunks_are_trusted(directory):
    snap = load_snapshot(directory, trusted=())
    assert snap.trusted == frozenset(snap.trunk_sources)
    assert not snap.is_trusted(EXTRA_TRUSTED)


def test_numbers_index_every_number_of_every_tenant(snap):
    acme, beta = snap.tenants['acme'], snap.tenants['beta']
    assert len(snap.numbers) == (1 + 100 + 5) + 3          # acme: block head + 100 DDIs + 5 singles; beta: 3
    assert all(snap.numbers[BLOCK + '%02d' % ddi].tenant is acme for ddi in range(100))
    assert snap.numbers[BLOCK].target == '50'
    assert snap.numbers[BLOCK + '10'].target == '10'
    assert snap.numbers[BLOCK + '41'].target == '11'       # extension 11 has DDI 41
    assert snap.numbers[BLOCK + '11'].target is None
    assert snap.numbers[BLOCK + '99'].target is None
    assert snap.numbers[SINGLE].target == '21'
    assert (snap.numbers[B_MAIN].tenant, snap.numbers[B_MAIN].target) == (beta, '100')
    assert snap.numbers[BLOCK + '10'].e164 == BLOCK + '10'
    assert BLOCK + '100' not in snap.numbers


def test_number_status_in_time(snap):
    assert snap.numbers[BLOCK + '10'].status_at(NOW) == 'active'
    assert snap.numbers[INACTIVE].status_at(NOW) == 'inactive'
    assert snap.numbers[INACTIVE].status_at(ACTIVATION) == 'inactive'
    assert snap.numbers[PORT_PAST].status_at(NOW) == 'active'
    for number in (PORT_FUTURE, B_PORTING):
        entry = snap.numbers[number]
        assert entry.status == 'porting'
        assert entry.activates_at == ACTIVATION            # 08:00 Europe/Berlin on the porting day
        assert entry.status_at(NOW) == 'porting'
        assert entry.status_at(ACTIVATION - 1) == 'porting'
        assert entry.status_at(ACTIVATION) == 'active'
    assert snap.numbers[BLOCK].activates_at is None


def test_accounts_are_indexed_per_tenant_with_their_ha1(snap):
    acme = snap.tenants['acme']
    acc = acme.accounts['max.muster']
    assert (acc.username, acc.kind, acc.ha1) == ('max.muster', 'desk_phone', rules.ha1('max.muster', DOMAIN, PASSWORD))
    assert acme.accounts['max.app'].kind == 'softclient'
    assert acme.accounts['erika.web'].kind == 'webphone'
    assert acc.extension is acme.accounts['max.app'].extension is acme.targets['10']
    assert 'max.muster' not in snap.tenants['beta'].accounts
    assert 'bert.beta' not in acme.accounts
    assert sorted(snap.tenants['gamma'].accounts) == ['gina.gamma', 'snr.gamma']


def test_extensions_carry_what_routing_needs(snap):
    acme = snap.tenants['acme']
    ten = acme.targets['10']
    assert (ten.kind, ten.tenant, ten.number, ten.name) == (EXTENSION, 'acme', '10', 'Max Mustermann')
    assert ten.accounts == ('max.muster', 'max.app')
    assert ten.numbers == (BLOCK + '10',)
    assert (ten.mobile, ten.ring_time, ten.location, ten.international_calls) == ('+491701000010', 25, 'hq', True)
    assert (ten.dnd, ten.available, ten.voicemail) == (False, True, False)
    assert acme.targets['11'].forwarding == {'unconditional': None, 'busy': '12', 'no_answer': '+498912345678',
                                             'unregistered': None}
    assert acme.targets['13'].numbers == tuple(sorted([BLOCK + '13', PORT_FUTURE, PORT_PAST, INACTIVE]))
    assert acme.targets['13'].name is None
    assert acme.targets['15'].dnd is True
    assert acme.targets['18'].available is False
    assert acme.targets['40'].accounts == ()
    assert acme.targets['44'].voicemail is True
    assert acme.targets['42'].numbers == ()


def test_voicemail_and_single_number_reach_as_stored(directory):
    # snapshot.load itself (the tests' load_snapshot patches a few objects in, see test_routing)
    with directory.directory.transaction(write=False, create=False) as txn:
        snap = snapshot.load(txn)
    acme, beta = snap.tenants['acme'], snap.tenants['beta']
    assert (acme.media_server, beta.media_server) == (MEDIA_SERVER, None)
    targets = acme.targets
    assert (targets['70'].single_number_reach, targets['70'].mobile, targets['70'].accounts) == (True, MOBILE_70, ('snr.desk',))
    assert (targets['71'].single_number_reach, targets['71'].mobile, targets['71'].accounts) == (True, MOBILE_71, ())
    assert (targets['10'].single_number_reach, targets['10'].mobile) == (False, '+491701000010')
    assert (targets['44'].voicemail, targets['48'].voicemail, targets['13'].voicemail) == (True, True, False)
    assert targets['47'].forwarding['unconditional'] == 'voicemail'
    assert (targets['46'].dnd, targets['46'].voicemail) == (True, True)


def test_outbound_caller_id_is_resolved_once(snap):
    targets = snap.tenants['acme'].targets
    assert targets['10'].caller_id == BLOCK + '10'        # default: its own first number
    assert targets['19'].caller_id == MAIN                # main
    assert targets['20'].caller_id == 'anonymous'
    assert targets['21'].caller_id == SINGLE              # a chosen number of its own
    assert targets['42'].caller_id == MAIN                # no number of its own: the main number
    assert snap.tenants['gamma'].targets['10'].caller_id is None     # nothing to present


def test_groups_carry_strategy_members_and_fallback(snap):
    targets = snap.tenants['acme'].targets
    group = targets['51']
    assert (group.kind, group.tenant, group.number, group.name) == (GROUP, 'acme', '51', 'Support')
    assert (group.strategy, group.members, group.ring_time, group.fallback) == ('sequential', ('18', '13', '15', '11'), 15, '19')
    assert targets['50'].strategy == 'parallel'
    assert targets['53'].members == ()
    assert targets['54'].fallback == '+4940123456'


def test_devices_are_keyed_by_mac(snap):
    assert sorted(snap.tenants['acme'].devices) == [MAC]
    assert snap.tenants['acme'].devices[MAC]['lines'] == ['max.muster']
    assert snap.tenants['beta'].devices == {}


def test_same_internal_number_in_two_tenants_stays_apart(snap):
    assert snap.tenants['acme'].targets['10'].accounts == ('max.muster', 'max.app')
    assert snap.tenants['beta'].targets['10'].accounts == ('berta.zehn',)


def test_a_state_without_tenant_object_is_left_out():
    snap = snapshot.Snapshot({'gone': TenantState('gone')}, generation=7, trusted_addresses=['192.0.2.1'])
    assert (snap.tenants, snap.by_domain, snap.numbers, snap.trunk_sources) == ({}, {}, {}, {})
    assert snap.generation == 7
    assert snap.trusted == frozenset(['192.0.2.1'])


def test_a_tenant_without_numbers_or_trunks_indexes_nothing_else(pbx):
    pbx.apply('acme', tenant_request(), {})
    pbx.apply('acme', {}, {})      # nothing changes
    with pbx.directory.transaction(write=False, create=False) as txn:
        snap = snapshot.load(txn)
    assert sorted(snap.tenants) == ['acme']
    assert snap.numbers == {} and snap.trusted == frozenset()
    assert snap.generation == 1


def test_an_address_shared_by_two_tenants_names_both(pbx):
    trunk = [{'name': 'carrier', 'addresses': ['192.0.2.50']}]
    pbx.apply('acme', tenant_request(trunks=trunk), {})
    pbx.apply('beta', tenant_request(domain=BETA_DOMAIN, trunks=trunk), {})
    with pbx.directory.transaction(write=False, create=False) as txn:
        snap = snapshot.load(txn)
    assert snap.trunk_sources['192.0.2.50'] == [snap.tenants['acme'], snap.tenants['beta']]
    assert snap.trusted == frozenset(['192.0.2.50'])


def test_a_snapshot_is_a_picture_of_one_generation(acme):
    """A change to the directory shows in the next snapshot; the one in hand keeps routing as before."""
    with acme.directory.transaction(write=False, create=False) as txn:
        old = snapshot.load(txn)
    assert isinstance(route_inbound(old, BLOCK + '10', '192.0.2.1', NOW), Ring)
    assert isinstance(route_from_account(old, DOMAIN, 'max.muster', '11', NOW), Reject)
    acme.apply('acme', None, {EXTENSION: {'10': {'dnd': True}, '11': extension(account('erika.desk'), name='Erika')}})
    with acme.directory.transaction(write=False, create=False) as txn:
        new = snapshot.load(txn)
    assert new.generation == old.generation + 1
    assert isinstance(route_inbound(old, BLOCK + '10', '192.0.2.1', NOW), Ring)
    assert route_inbound(new, BLOCK + '10', '192.0.2.1', NOW).code == 486
    assert isinstance(route_from_account(new, DOMAIN, 'max.muster', '11', NOW), Ring)
    assert old.tenants['acme'].targets['10'].dnd is False
    assert '11' not in old.tenants['acme'].targets
