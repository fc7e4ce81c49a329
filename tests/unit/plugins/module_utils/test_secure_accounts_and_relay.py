"""Two media and transport settings of the directory, from the model to the router's answers:
a SIP account that requires TLS (``require_tls``) and a tenant whose every call takes the media
relay (``media_relay: always``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from directory_helpers import DOMAIN, Harness, account, expect, extension, tenant_request
from ansible_collections.voxplane.pbx.plugins.module_utils import model, routing, snapshot, tenant_csv
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import Reject, Relay, Ring

OTHER_DOMAIN = 'relayed.voxplane.example'
TRUNK = '192.0.2.10'
NOW = 1800000000.0


def _router_view(harness):
    with harness.directory.transaction(write=False, create=False) as txn:
        return snapshot.load(txn)


def _secure(username, **more):
    acc = account(username, **more)
    acc['require_tls'] = True
    return acc


@pytest.fixture()
def harness(tmp_path):
    h = Harness(tmp_path / 'directory.db')
    h.apply('acme', tenant_request(trunks=[{'name': 'carrier', 'addresses': [TRUNK]}]), {EXTENSION: {
        '10': extension(_secure('anna.desk'), account('anna.app', 'softclient'), seat='best', international_calls=True),
        '11': extension(account('bert.desk')),
    }})
    h.apply('relayed', tenant_request(domain=OTHER_DOMAIN, media_relay='always'), {EXTENSION: {
        '20': extension(account('cora.desk')),
    }})
    return h


# The model and the store ------------------------------------------------------------------------

def test_require_tls_is_stored_per_account_and_shown_only_where_set(harness):
    accounts = harness.load('acme').objects(EXTENSION)['10']['sip_accounts']
    assert [(a['username'], a.get('require_tls', False)) for a in accounts] == [('anna.desk', True), ('anna.app', False)]
    view = model.public(EXTENSION, harness.load('acme').objects(EXTENSION)['10'])['sip_accounts']
    assert view == [{'username': 'anna.desk', 'kind': 'desk_phone', 'require_tls': True},
                    {'username': 'anna.app', 'kind': 'softclient'}]


def test_an_account_given_without_require_tls_keeps_it_and_false_clears_it(harness):
    harness.apply('acme', None, {EXTENSION: {'10': {'sip_accounts': [
        {'username': 'anna.desk'}, {'username': 'anna.app'}]}}})
    assert harness.load('acme').objects(EXTENSION)['10']['sip_accounts'][0]['require_tls'] is True
    harness.apply('acme', None, {EXTENSION: {'10': {'sip_accounts': [
        {'username': 'anna.desk', 'require_tls': False}, {'username': 'anna.app'}]}}})
    assert 'require_tls' not in harness.load('acme').objects(EXTENSION)['10']['sip_accounts'][0]


def test_require_tls_that_is_not_a_boolean_names_the_field(harness):
    violations = harness.reject('acme', None, {EXTENSION: {'11': {'sip_accounts': [
        {'username': 'bert.desk', 'require_tls': 'sometimes'}]}}})
    expect(violations, 'extension 11 (tenant acme)', 'sip_accounts[0].require_tls', 'boolean', 'sometimes')


def test_media_relay_is_a_tenant_setting_with_two_values(harness):
    assert harness.load('relayed').tenant['media_relay'] == 'always'
    assert harness.load('acme').tenant['media_relay'] == 'auto'
    violations = harness.reject('acme', {'media_relay': 'sometimes'})
    expect(violations, 'tenant acme', 'media_relay', 'choice', 'auto, always')


def test_a_csv_export_carries_require_tls_and_reads_it_back(harness):
    doc = {'extensions': [model.public(EXTENSION, obj) for obj in harness.load('acme').objects(EXTENSION).values()]}
    text = tenant_csv.render(doc)[0][tenant_csv.EXTENSIONS]
    header = text.splitlines()[0].split(';')
    assert 'account1_require_tls' in header and 'account2_require_tls' in header
    again = tenant_csv.render({'extensions': [{'internal_number': '11', 'sip_accounts': [{'username': 'bert.desk'}]}]})
    assert 'require_tls' not in again[0][tenant_csv.EXTENSIONS]  # no such column while no account needs it


# The router ---------------------------------------------------------------------------------------

def test_the_credentials_say_which_accounts_refuse_other_transports(harness):
    snap = _router_view(harness)
    realm, ha1, refusal = routing.registrar_credentials(snap, DOMAIN, 'anna.desk')
    assert realm == DOMAIN and ha1 and isinstance(refusal, Reject)
    assert (refusal.code, refusal.reason) == (403, 'TLS required for this account')
    assert routing.registrar_credentials(snap, DOMAIN, 'anna.app')[2] is None
    assert routing.registrar_credentials(snap, DOMAIN, 'nobody.here') == (DOMAIN, None, None)


@pytest.mark.parametrize('proto, secure', [('tls', True), ('WSS', True), ('udp', False), ('tcp', False),
                                           ('ws', False), (None, False)])
def test_secure_transports_are_tls_and_secure_websocket(proto, secure):
    assert routing.secure_transport(proto) is secure


def test_a_tenant_that_relays_every_call_is_found_from_either_side(harness):
    snap = _router_view(harness)
    ring_cora = routing.route_from_account(snap, OTHER_DOMAIN, 'cora.desk', '20', NOW)
    assert isinstance(ring_cora, Ring)
    assert routing.forces_media_relay(snap, OTHER_DOMAIN, ring_cora)   # the caller's tenant
    assert routing.forces_media_relay(snap, None, ring_cora)           # the tenant whose phones ring
    ring_bert = routing.route_from_account(snap, DOMAIN, 'anna.desk', '11', NOW)
    assert not routing.forces_media_relay(snap, DOMAIN, ring_bert)
    assert not routing.forces_media_relay(snap, None, ring_bert)
    outside = routing.route_from_account(snap, DOMAIN, 'anna.desk', '0301234567', NOW)
    assert isinstance(outside, Relay) and not routing.forces_media_relay(snap, DOMAIN, outside)
    assert not routing.forces_media_relay(snap, None, Reject(404, 'Not Found'))


def test_the_tenant_setting_reaches_the_snapshot_on_change(harness):
    harness.apply('acme', {'media_relay': 'always'})
    snap = _router_view(harness)
    ring_bert = routing.route_from_account(snap, DOMAIN, 'anna.desk', '11', NOW)
    assert routing.forces_media_relay(snap, None, ring_bert)
