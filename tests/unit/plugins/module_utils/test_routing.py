# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The routing core (routing.py) deciding calls over a snapshot of a real SQLite directory.

Two tenants modelled on the seeds (plus a third without a trunk):

acme (A, Germany, +49): a Berlin block +49 30 1234 00-99 whose head number is the main number
  and reaches group 50; a single number; a porting number with a future day and one with a
  past day; an inactive number; extensions with desk + softclient accounts, DND, forwarding of
  every kind, a parallel and a sequential group with an unavailable and a DND member, two trunks
  (one preferred), two locations with emergency caller ids, international calls allowed for the
  tenant, per extension on or off, outbound caller id own / main / anonymous / a chosen number.
  acme has a media server, so extensions with voicemail enabled reach their mailbox; some
  extensions use single number reach (SNR: their mobile rings along through the trunk).
beta (B, Austria, +43): international calls forbidden for the whole tenant, one trunk with an
  IPv6 and an IPv4 address, one location without an emergency caller id, an extension 10 of its
  own (A has one too).
gamma (C): no trunk, no numbers; SNR extensions whose mobile cannot ring (no trunk).

Everything is written through the real store and reconcile engine, so it satisfies the
directory's integrity rules. A few objects those rules refuse today (RUNTIME_ONLY: forwards
abroad without the permission, voicemail without a media server) are patched into the loaded
states before the snapshot is built: the router checks those conditions again at call time, for
data written before a rule existed, and the tests of those checks need such data.

Decisions are checked against BLUEPRINT "Call handling, in order". Where the code decides
otherwise, the test states the expected decision and is marked xfail(strict=True).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import re
import zoneinfo

import pytest

import copy

from directory_helpers import (
    BETA_DOMAIN, BLOCK, BRANCH, DOMAIN, HQ, PASSWORD, SINGLE, Harness, account, block, extension, tenant_request,
)
from ansible_collections.voxplane.pbx.plugins.module_utils import routing, rules, snapshot
from ansible_collections.voxplane.pbx.plugins.module_utils.model import DEVICE, EXTENSION, GROUP, NUMBER, TENANT
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import (
    ANONYMOUS_URI, FEATURE_CODES, MAX_FORWARD_HOPS, Context, PhoneSetting, Reject, Relay, Ring, after_failure,
    phone_setting, register_target, registrar_credentials, route_from_account, route_inbound,
)

# The directory ------------------------------------------------------------------------------

GAMMA_DOMAIN = 'gamma.voxplane.example'

# acme's numbers (besides BLOCK +49 30 1234 00-99 and SINGLE +49 30 999001)
PORT_FUTURE = '+4930777001'       # porting, its day lies ahead
PORT_PAST = '+4930777002'         # porting, its day has passed: active by itself
INACTIVE = '+4930999009'
PORTING_DAY = '2030-06-15'
MAIN = BLOCK                      # the head number of the block is acme's main number
HQ_ECID = '+4930123400'
BRANCH_ECID = '+4940999000'
OUTSIDE = '+4940123456'           # a number no tenant holds
SWISS = '+41441234567'

# acme's trunks: ecotel (preferred) and a backup; one more address trusted by deployment
ECOTEL = ('192.0.2.10', '192.0.2.11')
BACKUP = ('192.0.2.20',)
EXTRA_TRUSTED = '198.51.100.7'

# beta's numbers and trunk
B_MAIN = '+4315550100'
B_300 = '+4315550300'
B_PORTING = '+4315550777'
B_TRUNK_V6 = '2001:db8::5'
B_TRUNK_V4 = '203.0.113.5'

# acme's voicemail server (tenant media_server), as given and in the canonical form the directory stores
MEDIA_SERVER_GIVEN = 'sip:vm.acme.voxplane.example'
MEDIA_SERVER = 'sip:vm.acme.voxplane.example:5060'

# mobiles of the single number reach extensions
MOBILE_70 = '+491707000070'
MOBILE_71 = '+491707100071'
MOBILE_72 = '+41797200072'        # a Swiss mobile: international for acme
MOBILE_G = '+491709000011'

WIEN = {'name': 'wien', 'street': 'Ring 1', 'postal_code': '1010', 'city': 'Wien', 'country': 'AT'}

# A fixed "now" (2027-03-01 12:00 UTC): after PORT_PAST's day, before PORTING_DAY.
NOW = calendar.timegm((2027, 3, 1, 12, 0, 0))
BERLIN = zoneinfo.ZoneInfo('Europe/Berlin')
ACTIVATION = datetime.datetime(2030, 6, 15, 8, 0, 0, tzinfo=BERLIN).timestamp()   # 06:00 UTC (CEST)

MAC = '00:15:65:aa:bb:cc'


def _ext(user, name, *more_accounts, **fields):
    accounts = [account(user)] + list(more_accounts) if user else list(more_accounts)
    return extension(*accounts, name=name, **fields)


def acme_children():
    extensions = {
        '10': _ext('max.muster', 'Max Mustermann', account('max.app', 'softclient'), seat='best',
                   international_calls=True, location='hq', mobile='+491701000010', ring_time=25),
        '11': _ext('erika.desk', 'Erika "Eri" Musterfrau', account('erika.web', 'webphone'), ddi='41',
                   location='hamburg', mobile='+491701111111',
                   forwarding={'busy': '12', 'no_answer': '+49 89 12345678'}),
        '12': _ext('paul.desk', 'Paul Weiter', forwarding={'unconditional': '13'},
                   speed_dials=[{'code': '1', 'number': '13'}, {'code': '22', 'number': '040 123456'},
                                {'code': '5', 'number': '50', 'name': 'Zentrale'}]),
        '13': _ext('anna.desk', None, location='hamburg'),
        '14': _ext('extern.desk', 'Extern Weiter', forwarding={'unconditional': OUTSIDE}),
        '15': _ext('dora.desk', 'Dora Dnd', dnd=True, forwarding={'unconditional': '13', 'busy': '12'}),
        '16': _ext('loop16', 'Loop Sechzehn', forwarding={'unconditional': '17'}),
        '17': _ext('loop17', 'Loop Siebzehn', forwarding={'unconditional': '16'}),
        '18': _ext('urs.desk', 'Urs Urlaub', available=False),
        '19': _ext('mia.desk', 'Mia Main', outbound_caller_id='main'),
        '20': _ext('anton.desk', 'Anton Anonym', outbound_caller_id='anonymous', international_calls=True, location='hq'),
        '21': _ext('sina.desk', 'Sina Single', outbound_caller_id=SINGLE),
        '22': _ext('ute.desk', 'Ute Unreg', mobile='+491702222222', forwarding={'unregistered': '13'}),
        '23': _ext('ping23', 'Ping', forwarding={'busy': '24'}),
        '24': _ext('pong24', 'Pong', forwarding={'busy': '23'}),
        '25': _ext('fwd25', 'Weiter Single', forwarding={'unconditional': SINGLE}),
        '26': _ext('fwd26', 'Weiter Beta', international_calls=True, forwarding={'unconditional': B_MAIN}),
        '27': _ext('fwd27', 'Weiter Beta Schleife', international_calls=True, forwarding={'unconditional': B_300}),
        '28': _ext('loop28', 'E164 Schleife 28', forwarding={'unconditional': '+4930123429'}),
        '29': _ext('loop29', 'E164 Schleife 29', forwarding={'unconditional': '+4930123428'}),
        '40': _ext(None, 'Ohne Konto', mobile='+491704000040'),
        '42': _ext('nora.desk', 'Nora Nummernlos', assign_all_external_numbers=False),
        '44': _ext('vera.desk', 'Vera Voicemail', voicemail={'enabled': True, 'pin': '4711'},
                   forwarding={'busy': 'voicemail', 'no_answer': 'voicemail'}),
        # may not dial abroad; its forward to SWISS is RUNTIME_ONLY
        '45': _ext('hans.desk', 'Hans Ausland'),
        # voicemail: DND with forwards it suppresses; unconditional to voicemail; no forwards at all;
        # a busy forward besides voicemail
        '46': _ext('vdnd.desk', 'Voicemail DND', voicemail={'enabled': True}, dnd=True,
                   forwarding={'unconditional': '13', 'busy': '12', 'no_answer': '13', 'unregistered': '13'}),
        '47': _ext('vall.desk', 'Voicemail Immer', voicemail={'enabled': True}, forwarding={'unconditional': 'voicemail'}),
        '48': _ext('vplain.desk', 'Voicemail Schlicht', voicemail={'enabled': True}),
        '49': _ext('vbusy.desk', 'Voicemail Besetzt', voicemail={'enabled': True},
                   forwarding={'busy': '13', 'unregistered': 'voicemail'}),
        # A -> B -> A busy loop where both have voicemail
        '60': _ext('vping.desk', 'VM Ping', voicemail={'enabled': True}, forwarding={'busy': '61'}),
        '61': _ext('vpong.desk', 'VM Pong', voicemail={'enabled': True}, forwarding={'busy': '60'}),
        # forwards to extensions on DND (with and without voicemail)
        '62': _ext('todnd.vm', 'Zu DND mit VM', forwarding={'unconditional': '46'}),
        '63': _ext('todnd.plain', 'Zu DND', forwarding={'unconditional': '15'}),
        '64': _ext('busy.todnd', 'Besetzt zu DND', voicemail={'enabled': True}, forwarding={'busy': '15'}),
        # single number reach: with accounts, without accounts, a mobile abroad (permitted), and on DND
        '70': _ext('snr.desk', 'Sina SNR', mobile=MOBILE_70, single_number_reach=True, ring_time=30),
        '71': _ext(None, 'Nur Mobil', mobile=MOBILE_71, single_number_reach=True),
        '72': _ext('snr.abroad', 'SNR Ausland', mobile=MOBILE_72, single_number_reach=True, international_calls=True),
        '73': _ext('snr.dnd', 'SNR DND', mobile=MOBILE_70, single_number_reach=True, dnd=True),
    }
    # a forwarding chain 30 -> 31 -> ... -> 36, longer than MAX_FORWARD_HOPS
    for n in range(30, 37):
        fwd = {'unconditional': str(n + 1)} if n < 36 else {}
        if n == 35:
            fwd['no_answer'] = '13'
        extensions[str(n)] = _ext('chain%d' % n, 'Kette %d' % n, forwarding=fwd)
    return {
        NUMBER: {
            BLOCK: block(target='50'),
            SINGLE: {'target': '21'},
            PORT_FUTURE: {'status': 'porting', 'porting_date': PORTING_DAY, 'target': '13'},
            PORT_PAST: {'status': 'porting', 'porting_date': '2025-03-14', 'target': '13'},
            INACTIVE: {'status': 'inactive', 'target': '13'},
            # the Hamburg branch's number: its emergency caller ID must be a number of acme
            BRANCH_ECID: {'target': '11'},
        },
        EXTENSION: extensions,
        GROUP: {
            '50': {'name': 'Zentrale', 'strategy': 'parallel', 'members': ['10', '11', '18', '15', '13'],
                   'ring_time': 30, 'fallback': '19'},
            '51': {'name': 'Support', 'strategy': 'sequential', 'members': ['18', '13', '15', '11'],
                   'ring_time': 15, 'fallback': '19'},
            '52': {'name': 'Nachtdienst', 'members': ['18'], 'fallback': '13'},
            '53': {'name': 'Leer', 'members': []},
            '54': {'name': 'Nur DND', 'strategy': 'sequential', 'members': ['15'], 'fallback': OUTSIDE},
            '55': {'name': 'Ohne Ausweg', 'strategy': 'sequential', 'members': ['13']},
            # members without accounts (40; 71 has SNR, still no account), on DND, unavailable
            '56': {'name': 'Ohne Konten', 'strategy': 'parallel', 'members': ['40', '71', '15', '18', '13', '11']},
            '57': {'name': 'Ohne Konten seq', 'strategy': 'sequential', 'members': ['40', '71', '15', '18', '13', '11']},
            # nobody with an account
            '58': {'name': 'Nur ohne Konten', 'strategy': 'parallel', 'members': ['40', '71'], 'fallback': '13'},
            '59': {'name': 'Nur ohne Konten seq', 'strategy': 'sequential', 'members': ['40', '71']},
        },
        DEVICE: {MAC: {'model': 'yealink-t46u', 'lines': ['max.muster'], 'location': 'hq'}},
    }


def acme_tenant():
    return tenant_request(
        smart=60, best=1, client_complete=1, main_number=MAIN, international_calls=True, media_server=MEDIA_SERVER_GIVEN,
        locations=[dict(HQ, emergency_caller_id=HQ_ECID), dict(BRANCH, emergency_caller_id='040 999000')],
        trunks=[{'name': 'ecotel', 'addresses': list(ECOTEL)},
                {'name': 'backup', 'addresses': list(BACKUP), 'port': 5062}],
        preferred_trunk='ecotel')


def beta_tenant():
    return tenant_request(
        domain=BETA_DOMAIN, smart=10, best=0, country_code='43', international_calls=False, main_number=B_MAIN,
        locations=[dict(WIEN)], trunks=[{'name': 'b-trunk', 'addresses': ['2001:DB8::5', B_TRUNK_V4], 'port': 5080}])


def beta_children():
    return {
        NUMBER: {
            B_MAIN: {'target': '100'},
            B_300: {'target': '300'},
            B_PORTING: {'status': 'porting', 'porting_date': PORTING_DAY, 'target': '100'},
        },
        EXTENSION: {
            '100': _ext('bert.beta', 'Bert Beta', international_calls=True),
            '10': _ext('berta.zehn', 'Berta Zehn'),
            '300': _ext('pong.beta', 'Pong Beta'),        # forward to +49 30 1234 27: RUNTIME_ONLY
            '400': _ext('fwd.beta', 'Weiter Deutschland'),  # forward to +49 30 555123: RUNTIME_ONLY
        },
    }


def gamma_children():
    return {EXTENSION: {
        '10': _ext('gina.gamma', 'Gina Gamma', international_calls=True),
        '11': _ext('snr.gamma', 'SNR ohne Trunk', mobile=MOBILE_G, single_number_reach=True),
        '12': _ext(None, 'Nur Mobil ohne Trunk', mobile=MOBILE_G, single_number_reach=True),
    }}


# Objects the directory's integrity rules refuse today, patched into the loaded states (see the
# module docstring): (tenant, kind, key) -> fields replaced in the stored object.
RUNTIME_ONLY = {
    # a forward abroad of an extension without the international permission
    ('acme', EXTENSION, '45'): {'forwarding': {'unconditional': SWISS}},
    # forwards abroad (+49 is abroad for +43) in a tenant without the international permission
    ('beta', EXTENSION, '300'): {'forwarding': {'unconditional': '+4930123427'}},
    ('beta', EXTENSION, '400'): {'forwarding': {'unconditional': '+4930555123'}},
}


def build_directory(path):
    """acme, beta and gamma written through the real store and reconcile engine."""
    harness = Harness(path)
    harness.apply('acme', acme_tenant(), acme_children())
    harness.apply('beta', beta_tenant(), beta_children())
    harness.apply('gamma', tenant_request(domain=GAMMA_DOMAIN, smart=3, best=0), gamma_children())
    return harness


def patched_states(harness, patches):
    """The directory's tenant states with ``patches`` ((tenant, kind, key) -> fields) applied to
    copies of the stored objects, bypassing reconcile and integrity; and the generation."""
    with harness.directory.transaction(write=False, create=False) as txn:
        states, generation = txn.load_all(), txn.generation()['generation']
    for (tenant, kind, key), fields in patches.items():
        state = states[tenant]
        if kind == TENANT:
            state.tenant = dict(copy.deepcopy(state.tenant), **fields)
            continue
        obj = copy.deepcopy(state.objects(kind)[key])
        for field, value in fields.items():
            obj[field] = dict(obj[field], **value) if isinstance(value, dict) else value
        state.objects(kind)[key] = obj
    return states, generation


def load_snapshot(harness, trusted=(EXTRA_TRUSTED,), patches=None):
    """The snapshot the router decides from: the directory's states plus RUNTIME_ONLY (or ``patches``)."""
    states, generation = patched_states(harness, RUNTIME_ONLY if patches is None else patches)
    return snapshot.Snapshot(states, generation, trusted)


@pytest.fixture(scope='module')
def directory(tmp_path_factory):
    return build_directory(tmp_path_factory.mktemp('routing') / 'directory.db')


@pytest.fixture(scope='module')
def snap(directory):
    return load_snapshot(directory)


# Helpers ------------------------------------------------------------------------------------

def call(snap, user, dialled, now=NOW, domain=DOMAIN):
    return route_from_account(snap, domain, user, dialled, now)


def aors(*users, **kw):
    domain = kw.get('domain', DOMAIN)
    return tuple('%s@%s' % (u, domain) for u in users)


def ctx(plan):
    return Context.decode(plan.context)


def sip(user, domain=DOMAIN):
    return '<sip:%s@%s>' % (user, domain)


def trunk_uri(user, host=ECOTEL[0], port=5060):
    return 'sip:%s@%s:%d' % (user, host, port)


def assert_reject(plan, code):
    assert isinstance(plan, Reject), plan
    assert plan.code == code, plan
    assert plan.reason
    return plan


def assert_ring(plan, users, domain=DOMAIN, target=None, tenant=None):
    assert isinstance(plan, Ring), plan
    assert plan.aors == aors(*users, domain=domain), plan
    if target is not None:
        c = ctx(plan)
        assert c.target == target, plan
        assert c.tenant == (tenant or ('beta' if domain == BETA_DOMAIN else 'acme')), plan
    return plan


def assert_relay(plan, uri, identity, privacy=False):
    assert isinstance(plan, Relay), plan
    assert (plan.uri, plan.identity, plan.privacy) == (uri, identity, privacy), plan
    return plan


MAX = ('max.muster', 'max.app')
ERIKA = ('erika.desk', 'erika.web')
ANNA = ('anna.desk',)

# SIP Diversion reason values are tokens (RFC 5806 / RFC 3261 token).
_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")


# Registration ---------------------------------------------------------------------------------

def test_credentials_are_the_tenant_realm_and_the_stored_ha1(snap):
    # The third item: no refusal of any transport (none of these accounts requires TLS).
    assert registrar_credentials(snap, DOMAIN, 'max.muster') == (DOMAIN, rules.ha1('max.muster', DOMAIN, PASSWORD), None)
    assert registrar_credentials(snap, DOMAIN, 'max.app') == (DOMAIN, rules.ha1('max.app', DOMAIN, PASSWORD), None)
    assert registrar_credentials(snap, BETA_DOMAIN, 'bert.beta') == (BETA_DOMAIN, rules.ha1('bert.beta', BETA_DOMAIN, PASSWORD),
                                                                     None)


def test_an_unknown_domain_is_refused(snap):
    reject = registrar_credentials(snap, 'unknown.voxplane.example', 'max.muster')
    assert_reject(reject, 403)
    assert 'domain' in reject.reason.lower()


@pytest.mark.parametrize('domain, user', [
    (DOMAIN, 'nobody.here'),                      # unknown account
    (DOMAIN, ''),
    (BETA_DOMAIN, 'max.muster'),                  # an account of A is unknown in B's domain
    (DOMAIN, 'bert.beta'),                        # and one of B in A's
])
def test_an_unknown_account_has_the_realm_but_no_ha1(snap, domain, user):
    # The adapter challenges it exactly like a wrong password: nothing tells which accounts exist.
    assert registrar_credentials(snap, domain, user) == (domain, None, None)


# The edge: digest uri, contacts, From ----------------------------------------------------------

def _never_myself(uri):
    return False


@pytest.mark.parametrize('digest_uri, request_uri, matches', [
    ('sip:13@%s' % DOMAIN, 'sip:13@%s' % DOMAIN, True),
    ('sip:13@%s' % DOMAIN.upper(), 'sip:13@%s' % DOMAIN, True),
    ('SIP:13@%s' % DOMAIN, 'sip:13@%s' % DOMAIN, True),
    ('sip:%s' % DOMAIN, 'sip:%s' % DOMAIN, True),                         # REGISTER
    ('sip:13@%s' % DOMAIN, 'sip:004420123456@%s' % DOMAIN, False),        # computed for another call
    ('sip:MAX@%s' % DOMAIN, 'sip:max@%s' % DOMAIN, False),                # the user part is exact
    (None, 'sip:13@%s' % DOMAIN, False),
    ('', 'sip:13@%s' % DOMAIN, False),
])
def test_the_digest_uri_must_be_the_request_uri(digest_uri, request_uri, matches):
    assert routing.digest_uri_matches(digest_uri, request_uri, _never_myself) is matches


def test_a_digest_uri_naming_this_server_without_user_is_accepted_only_for_this_server():
    def myself(uri):
        return uri == 'sip:192.0.2.1:5060'
    assert routing.digest_uri_matches('sip:192.0.2.1:5060', 'sip:13@%s' % DOMAIN, myself)
    assert not routing.digest_uri_matches('sip:192.0.2.99:5060', 'sip:13@%s' % DOMAIN, myself)
    assert not routing.digest_uri_matches('sip:13@192.0.2.1:5060', 'sip:14@%s' % DOMAIN, myself)


@pytest.mark.parametrize('values, uris', [
    (['<sip:max@10.0.0.5:5060>'], ['sip:max@10.0.0.5:5060']),
    (['"Max, Desk" <sip:max@10.0.0.5>;expires=60, <sip:max@10.0.0.6;transport=tcp>'],
     ['sip:max@10.0.0.5', 'sip:max@10.0.0.6;transport=tcp']),
    (['sip:max@10.0.0.5;expires=0'], ['sip:max@10.0.0.5']),
    (['*'], ['*']),
    ([''], []),
])
def test_contact_uris_are_split_outside_quotes_and_brackets(values, uris):
    assert routing.split_uris(values) == uris


@pytest.mark.parametrize('uri, host', [
    ('sip:max@10.0.0.5:5060;transport=udp', '10.0.0.5'),
    ('sip:+44201234567@192.0.2.10', '192.0.2.10'),
    ('sips:max@[2001:DB8::1]:5061', '2001:db8::1'),
    ('sip:Phone.Example.COM', 'phone.example.com'),
])
def test_uri_host(uri, host):
    assert routing.uri_host(uri) == host


def test_a_contact_may_not_point_at_a_trunk_or_at_this_server(snap):
    def myself(uri):
        return routing.uri_host(uri) == '192.0.2.1'
    assert routing.contact_refusal(snap, ['sip:max.muster@10.0.0.5:5060'], myself) is None
    assert routing.contact_refusal(snap, ['*'], myself) is None
    at_trunk = routing.contact_refusal(snap, ['sip:max@10.0.0.5', 'sip:+44201234567@%s:5100' % ECOTEL[1]], myself)
    assert_reject(at_trunk, 403)
    assert 'trunk' in at_trunk.reason
    assert_reject(routing.contact_refusal(snap, ['sip:+44201234567@%s' % EXTRA_TRUSTED], myself), 403)
    at_us = routing.contact_refusal(snap, ['sip:max@192.0.2.1:5060'], myself)
    assert_reject(at_us, 403)
    assert 'this server' in at_us.reason


@pytest.mark.parametrize('identity, display, uri', [
    ('"Max Mustermann" <sip:10@%s>' % DOMAIN, '"Max Mustermann"', 'sip:10@%s' % DOMAIN),
    ('<sip:+4930123410@%s>' % DOMAIN, '', 'sip:+4930123410@%s' % DOMAIN),
    (ANONYMOUS_URI, '"Anonymous"', ANONYMOUS_URI),
    ('sip:+4930123410@%s' % DOMAIN, '', 'sip:+4930123410@%s' % DOMAIN),
])
def test_from_header_of_an_identity(identity, display, uri):
    assert routing.from_header(identity) == (display, uri)


def test_register_target_is_the_accounts_own_aor(snap):
    assert register_target(snap, DOMAIN, 'max.muster', 'max.muster') == 'max.muster@' + DOMAIN
    assert register_target(snap, DOMAIN, 'max.app', 'max.app') == 'max.app@' + DOMAIN
    assert register_target(snap, BETA_DOMAIN, 'berta.zehn', 'berta.zehn') == 'berta.zehn@' + BETA_DOMAIN


@pytest.mark.parametrize('domain, to_user, auth_user', [
    (DOMAIN, 'erika.desk', 'max.muster'),          # another user's AOR of the same tenant
    (DOMAIN, 'max.app', 'max.muster'),             # even the same extension's other account
    (BETA_DOMAIN, 'bert.beta', 'max.muster'),      # another tenant's user
    (BETA_DOMAIN, 'max.muster', 'max.muster'),     # A's account in B's domain
    (DOMAIN, 'nobody.here', 'nobody.here'),
    ('unknown.voxplane.example', 'max.muster', 'max.muster'),
])
def test_register_target_refused(snap, domain, to_user, auth_user):
    assert_reject(register_target(snap, domain, to_user, auth_user), 403)


# Internal calls -------------------------------------------------------------------------------

def test_internal_number_rings_every_aor_of_every_account(snap):
    plan = assert_ring(call(snap, 'anna.desk', '10'), MAX, target='10')
    assert plan.ring_time == 25
    assert plan.context == 'acme|10|0|0|acme/10|'
    assert plan.diversion == ()
    plan = assert_ring(call(snap, 'max.muster', '11'), ERIKA, target='11')
    assert plan.ring_time == 20


def test_internal_caller_identity_is_name_and_internal_number(snap):
    assert call(snap, 'max.muster', '13').identity == '"Max Mustermann" %s' % sip('10')
    assert call(snap, 'max.app', '13').identity == '"Max Mustermann" %s' % sip('10')   # either account: the extension
    assert call(snap, 'anna.desk', '10').identity == sip('13')                         # no name: the number alone
    assert call(snap, 'erika.desk', '13').identity == '"Erika Eri Musterfrau" %s' % sip('11')   # quotes cannot break out
    assert call(snap, 'anton.desk', '13').identity == '"Anton Anonym" %s' % sip('20')   # anonymous only outside


def test_dialled_string_is_trimmed(snap):
    assert_ring(call(snap, 'anna.desk', ' 10 '), MAX, target='10')


def test_each_tenant_reaches_its_own_internal_numbers(snap):
    assert_ring(call(snap, 'anna.desk', '10'), MAX, target='10')
    plan = assert_ring(call(snap, 'bert.beta', '10', domain=BETA_DOMAIN), ('berta.zehn',), domain=BETA_DOMAIN,
                       target='10')
    assert plan.identity == '"Bert Beta" %s' % sip('100', BETA_DOMAIN)


@pytest.mark.parametrize('dialled', ['100', '300'])
def test_another_tenants_internal_numbers_are_not_reachable(snap, dialled):
    assert_reject(call(snap, 'max.muster', dialled), 404)


# ('*78' was here until feature codes came: a leading '*' is a feature code now, see below)
@pytest.mark.parametrize('dialled', ['', '   ', '#78', '78#', '999', '0', 'abc', '13a'])
def test_neither_internal_nor_a_number_is_404(snap, dialled):
    assert_reject(call(snap, 'max.muster', dialled), 404)


@pytest.mark.parametrize('domain, user', [
    (DOMAIN, 'nobody.here'), (BETA_DOMAIN, 'max.muster'), ('unknown.voxplane.example', 'max.muster'),
])
def test_a_call_from_an_unknown_account_is_refused(snap, domain, user):
    assert_reject(route_from_account(snap, domain, user, '10', NOW), 403)


def test_an_extension_without_accounts_is_unregistered_and_its_mobile_is_not_rung(snap):
    # 40 has a mobile but no single number reach: no implicit 'unregistered -> mobile' any more
    assert snap.tenants['acme'].targets['40'].mobile == '+491704000040'
    assert_reject(call(snap, 'max.muster', '40'), 480)
    assert_reject(route_inbound(snap, '+4930123440', ECOTEL[0], NOW), 480)


# Inbound --------------------------------------------------------------------------------------

@pytest.mark.parametrize('dialled, source', [
    ('+4930123410', ECOTEL[0]),          # E.164
    ('030123410', ECOTEL[0]),            # national, in the trunk tenant's plan
    ('030123410', ECOTEL[1]),            # from the trunk's second address
    ('030123410', BACKUP[0]),            # and from the tenant's other trunk
    ('004930123410', ECOTEL[0]),         # international prefix
    ('4930123410', ECOTEL[0]),           # international without plus
    ('4930123410', B_TRUNK_V4),          # ... from another tenant's trunk
    ('+4930123410', EXTRA_TRUSTED),
    ('4930123410', EXTRA_TRUSTED),
])
def test_inbound_number_formats_reach_the_extension_with_that_ddi(snap, dialled, source):
    plan = assert_ring(route_inbound(snap, dialled, source, NOW), MAX, target='10')
    assert plan.identity is None            # the network's caller id is kept
    assert plan.privacy is False
    assert plan.diversion == ()


def test_inbound_national_number_is_read_in_the_plan_of_the_trunks_tenant(snap):
    # 01 5550100 is Vienna for beta's trunk (+43) ...
    assert_ring(route_inbound(snap, '015550100', B_TRUNK_V4, NOW), ('bert.beta',), domain=BETA_DOMAIN, target='100')
    assert_ring(route_inbound(snap, '015550100', B_TRUNK_V6, NOW), ('bert.beta',), domain=BETA_DOMAIN, target='100')
    # ... and +49 15550100 for acme's trunk: not a number of the directory
    assert_reject(route_inbound(snap, '015550100', ECOTEL[0], NOW), 404)
    # a national number from an address that belongs to no trunk has no plan to be read in
    assert_reject(route_inbound(snap, '030123410', EXTRA_TRUSTED, NOW), 404)


def test_inbound_block_ddi_reaches_the_extension_with_that_ddi(snap):
    assert_ring(route_inbound(snap, '+4930123441', ECOTEL[0], NOW), ERIKA, target='11')   # extension 11 has DDI 41
    # 11's own internal number as DDI is not its number
    assert_reject(route_inbound(snap, '+4930123411', ECOTEL[0], NOW), 404)


def test_inbound_head_number_reaches_its_target_group(snap):
    plan = assert_ring(route_inbound(snap, BLOCK, ECOTEL[0], NOW), MAX + ERIKA + ANNA, target='50')
    assert plan.ring_time == 30
    assert_ring(route_inbound(snap, '0301234', ECOTEL[0], NOW), MAX + ERIKA + ANNA, target='50')


def test_inbound_single_number_reaches_its_target(snap):
    assert_ring(route_inbound(snap, SINGLE, ECOTEL[0], NOW), ('sina.desk',), target='21')


@pytest.mark.parametrize('dialled', ['+4930123499', '+4930123450'])
def test_inbound_block_ddi_without_target_is_404(snap, dialled):
    assert_reject(route_inbound(snap, dialled, ECOTEL[0], NOW), 404)


@pytest.mark.parametrize('dialled', ['+4930555555', '+49301234100', '+493012341', '', 'anonymous', '+', '+49abc'])
def test_inbound_unknown_number_is_404(snap, dialled):
    assert_reject(route_inbound(snap, dialled, ECOTEL[0], NOW), 404)


def test_inbound_inactive_number_is_480(snap):
    assert_reject(route_inbound(snap, INACTIVE, ECOTEL[0], NOW), 480)
    assert_reject(route_inbound(snap, '030999009', ECOTEL[0], NOW), 480)


def test_inbound_porting_number_before_its_day_is_404(snap):
    assert_reject(route_inbound(snap, PORT_FUTURE, ECOTEL[0], NOW), 404)
    assert_reject(route_inbound(snap, B_PORTING, B_TRUNK_V4, NOW), 404)


def test_inbound_porting_number_activates_at_0800_berlin_on_its_day(snap):
    assert ACTIVATION == calendar.timegm((2030, 6, 15, 6, 0, 0))       # 08:00 CEST
    assert_reject(route_inbound(snap, PORT_FUTURE, ECOTEL[0], ACTIVATION - 1), 404)
    assert_reject(route_inbound(snap, PORT_FUTURE, ECOTEL[0], calendar.timegm((2030, 6, 14, 12, 0, 0))), 404)
    assert_ring(route_inbound(snap, PORT_FUTURE, ECOTEL[0], ACTIVATION), ANNA, target='13')
    assert_ring(route_inbound(snap, PORT_FUTURE, ECOTEL[0], ACTIVATION + 86400 * 400), ANNA, target='13')
    # beta's porting number on the same day: also 08:00 Europe/Berlin (beta keeps the default zone)
    assert_reject(route_inbound(snap, B_PORTING, B_TRUNK_V4, ACTIVATION - 1), 404)
    assert_ring(route_inbound(snap, B_PORTING, B_TRUNK_V4, ACTIVATION), ('bert.beta',), domain=BETA_DOMAIN, target='100')


def test_inbound_porting_number_whose_day_has_passed_is_routed(snap):
    assert_ring(route_inbound(snap, PORT_PAST, ECOTEL[0], NOW), ANNA, target='13')


def test_inbound_to_a_dnd_extension_is_busy(snap):
    assert_reject(route_inbound(snap, '+4930123415', ECOTEL[0], NOW), 486)


# Outbound -------------------------------------------------------------------------------------

@pytest.mark.parametrize('dialled', ['030555123', '004930555123', '+4930555123'])
def test_national_number_leaves_by_the_preferred_trunk_with_the_own_number(snap, dialled):
    plan = assert_relay(call(snap, 'max.muster', dialled), trunk_uri('+4930555123'), sip('+4930123410'))
    assert plan.headers == {}
    assert plan.diversion == ()


def test_national_number_is_allowed_without_international_permission(snap):
    assert_relay(call(snap, 'anna.desk', '030555123'), trunk_uri('+4930555123'), sip('+4930123413'))
    assert_relay(call(snap, 'mia.desk', '01701234567'), trunk_uri('+491701234567'), sip(MAIN))


@pytest.mark.parametrize('dialled', ['0041441234567', '+41441234567'])
def test_international_number_when_tenant_and_extension_may(snap, dialled):
    assert_relay(call(snap, 'max.muster', dialled), trunk_uri(SWISS), sip('+4930123410'))


@pytest.mark.parametrize('user', ['anna.desk', 'mia.desk', 'erika.desk', 'nora.desk'])
def test_international_refused_when_the_extension_may_not(snap, user):
    assert_reject(call(snap, user, '0041441234567'), 403)


def test_international_refused_when_the_tenant_may_not(snap):
    # bert.beta's extension may dial abroad, its tenant may not; Germany is abroad for beta (+43)
    assert snap.tenants['beta'].targets['100'].international_calls is True
    assert_reject(call(snap, 'bert.beta', '004930555123', domain=BETA_DOMAIN), 403)
    assert_reject(call(snap, 'bert.beta', '+41441234567', domain=BETA_DOMAIN), 403)


def test_national_number_in_the_callers_dial_plan(snap):
    # 01 234567 is Vienna for beta; out by beta's trunk, IPv6 address in brackets, its port
    assert_relay(call(snap, 'bert.beta', '01234567', domain=BETA_DOMAIN),
                 'sip:+431234567@[2001:db8::5]:5080', sip(B_MAIN, BETA_DOMAIN))
    assert_relay(call(snap, 'bert.beta', '00431234567', domain=BETA_DOMAIN),
                 'sip:+431234567@[2001:db8::5]:5080', sip(B_MAIN, BETA_DOMAIN))


def test_outbound_caller_id_variants(snap):
    assert_relay(call(snap, 'max.muster', '030555123'), trunk_uri('+4930555123'), sip('+4930123410'))    # own DDI
    assert_relay(call(snap, 'mia.desk', '030555123'), trunk_uri('+4930555123'), sip(MAIN))               # main
    assert_relay(call(snap, 'sina.desk', '030555123'), trunk_uri('+4930555123'), sip(SINGLE))            # chosen number
    assert_relay(call(snap, 'nora.desk', '030555123'), trunk_uri('+4930555123'), sip(MAIN))              # none: main
    assert_relay(call(snap, 'anton.desk', '030555123'), trunk_uri('+4930555123'), ANONYMOUS_URI, privacy=True)
    assert_relay(call(snap, 'anton.desk', '0041441234567'), trunk_uri(SWISS), ANONYMOUS_URI, privacy=True)


def test_on_net_call_to_another_tenants_active_number_rings_that_tenant(snap):
    for dialled in ('004315550100', '+4315550100'):
        plan = assert_ring(call(snap, 'max.muster', dialled), ('bert.beta',), domain=BETA_DOMAIN, target='100')
        assert ctx(plan).tenant == 'beta'
        assert plan.identity == sip('+4930123410')     # external identity: the caller's E.164 number


def test_on_net_call_presents_the_chosen_number(snap):
    assert call(snap, 'mia.desk', '004315550100').identity == sip(MAIN)
    assert call(snap, 'sina.desk', '004315550100').identity == sip(SINGLE)


def test_on_net_calls_are_not_trunk_calls(snap):
    # "a voxplane tenant's active number stays on-net; anything else leaves by the trunk if the caller
    # may dial that class": the permission is a trunk matter
    assert_ring(call(snap, 'mia.desk', '004315550100'), ('bert.beta',), domain=BETA_DOMAIN, target='100')
    assert_ring(call(snap, 'bert.beta', '004930123410', domain=BETA_DOMAIN), MAX, target='10')
    # and a tenant without a trunk reaches the other tenants
    assert_ring(call(snap, 'gina.gamma', '030123410', domain=GAMMA_DOMAIN), MAX, target='10')


def test_on_net_call_within_the_tenant_by_e164(snap):
    assert_ring(call(snap, 'anna.desk', '030999001'), ('sina.desk',), target='21')
    assert_ring(call(snap, 'anna.desk', '030123441'), ERIKA, target='11')
    assert_ring(call(snap, 'anna.desk', '0301234'), MAX + ERIKA + ANNA, target='50')
    assert_ring(call(snap, 'anna.desk', '030777002'), ANNA, target='13')            # ported already


def test_on_net_call_from_an_anonymous_caller_stays_anonymous(snap):
    plan = assert_ring(call(snap, 'anton.desk', '004315550100'), ('bert.beta',), domain=BETA_DOMAIN, target='100')
    assert (plan.identity, plan.privacy) == (ANONYMOUS_URI, True)
    # a caller that presents a number is not private
    plan = assert_ring(call(snap, 'max.muster', '004315550100'), ('bert.beta',), domain=BETA_DOMAIN, target='100')
    assert (plan.identity, plan.privacy) == (sip('+4930123410'), False)


def test_a_number_still_porting_in_goes_out_by_the_trunk(snap):
    assert_relay(call(snap, 'anna.desk', '030777001'), trunk_uri(PORT_FUTURE), sip('+4930123413'))
    assert_relay(call(snap, 'max.muster', '004315550777'), trunk_uri(B_PORTING), sip('+4930123410'))
    # from its porting day on, it is on-net
    assert_ring(call(snap, 'anna.desk', '030777001', now=ACTIVATION), ANNA, target='13')
    assert_ring(call(snap, 'max.muster', '004315550777', now=ACTIVATION), ('bert.beta',), domain=BETA_DOMAIN,
                target='100')


def test_an_inactive_number_is_not_on_net(snap):
    assert_relay(call(snap, 'max.muster', '030999009'), trunk_uri(INACTIVE), sip('+4930123410'))


def test_a_number_still_porting_abroad_needs_the_international_permission(snap):
    assert_reject(call(snap, 'anna.desk', '004315550777'), 403)


def test_no_trunk_is_503(snap):
    assert_reject(call(snap, 'gina.gamma', '030555123', domain=GAMMA_DOMAIN), 503)
    assert_reject(call(snap, 'gina.gamma', '0041441234567', domain=GAMMA_DOMAIN), 503)


# Emergency ------------------------------------------------------------------------------------

@pytest.mark.parametrize('number', ['110', '112'])
def test_emergency_goes_out_with_the_locations_caller_id_and_address(snap, number):
    plan = assert_relay(call(snap, 'max.muster', number), trunk_uri(number), sip(HQ_ECID))
    assert plan.headers == {'X-Emergency-Location': 'hq; Hauptstraße 1; 10115 Berlin; DE'}
    plan = assert_relay(call(snap, 'anna.desk', number), trunk_uri(number), sip(BRANCH_ECID))
    assert plan.headers == {'X-Emergency-Location': 'hamburg; Jungfernstieg 7; 20354 Hamburg; DE'}


def test_emergency_is_allowed_without_international_permission(snap):
    # anna (13) may not dial abroad; beta may not dial abroad at all
    assert not snap.tenants['acme'].targets['13'].international_calls
    assert isinstance(call(snap, 'anna.desk', '112'), Relay)
    assert isinstance(call(snap, 'berta.zehn', '110', domain=BETA_DOMAIN), Relay)


def test_emergency_is_never_anonymous(snap):
    plan = assert_relay(call(snap, 'anton.desk', '112'), trunk_uri('112'), sip(HQ_ECID), privacy=False)
    assert plan.headers['X-Emergency-Location'].startswith('hq; ')


def test_emergency_without_a_location_falls_back_to_the_tenant_main_number(snap):
    # mia has no location and acme has two: the main number, no address to guess
    plan = assert_relay(call(snap, 'mia.desk', '112'), trunk_uri('112'), sip(MAIN))
    assert plan.headers == {}


def test_emergency_of_a_single_location_without_caller_id_presents_the_main_number(snap):
    plan = assert_relay(call(snap, 'berta.zehn', '112', domain=BETA_DOMAIN),
                        'sip:112@[2001:db8::5]:5080', sip(B_MAIN, BETA_DOMAIN))
    assert plan.headers == {'X-Emergency-Location': 'wien; Ring 1; 1010 Wien; AT'}


def test_emergency_numbers_beat_everything_else(snap):
    # 110/112 are never internal numbers, never normalised as outside numbers
    assert_relay(call(snap, 'max.muster', ' 112 '), trunk_uri('112'), sip(HQ_ECID))
    assert_reject(call(snap, 'max.muster', '1120'), 404)


def test_emergency_without_trunk_is_503(snap):
    assert_reject(call(snap, 'gina.gamma', '112', domain=GAMMA_DOMAIN), 503)


# DND and forwarding ---------------------------------------------------------------------------

def test_dnd_is_busy_without_forwarding(snap):
    # 15 has DND on and an unconditional forward to 13: the forward is suppressed
    assert_reject(call(snap, 'max.muster', '15'), 486)
    assert_reject(call(snap, 'max.muster', '+4930123415'), 486)   # on-net by number, too


def test_unconditional_forward_to_an_internal_number(snap):
    plan = assert_ring(call(snap, 'max.muster', '12'), ANNA, target='13')
    c = ctx(plan)
    assert (c.hops, c.step, c.visited) == (1, 0, ('acme/12', 'acme/13'))
    assert plan.diversion == ('<sip:12@%s>;reason=unconditional' % DOMAIN,)
    assert plan.ring_time == 20


def test_a_forwarded_internal_call_keeps_the_callers_identity(snap):
    plan = assert_ring(call(snap, 'max.muster', '12'), ANNA, target='13')
    assert (plan.identity, plan.privacy) == ('"Max Mustermann" %s' % sip('10'), False)


def test_a_direct_call_rings_an_unavailable_extension(snap):
    # availability takes an extension out of groups, not out of reach
    assert_ring(call(snap, 'max.muster', '18'), ('urs.desk',), target='18')


def test_unconditional_forward_to_an_external_number(snap):
    plan = assert_relay(call(snap, 'max.muster', '14'), trunk_uri(OUTSIDE), sip(MAIN))
    assert plan.diversion == ('<sip:14@%s>;reason=unconditional' % DOMAIN,)
    # inbound too
    plan = assert_relay(route_inbound(snap, '+4930123414', ECOTEL[0], NOW), trunk_uri(OUTSIDE), sip(MAIN))
    assert plan.diversion == ('<sip:14@%s>;reason=unconditional' % DOMAIN,)


# How long a forward target rings (issue 13): the leg's own ring time, never the forwarding
# extension's -------------------------------------------------------------------------------------

def test_a_forward_to_an_outside_number_rings_for_the_outside_ring_time(snap):
    # 11 rings 20 s, then its no-answer forward leaves through the trunk: that leg has its own 30 s
    plan = after_failure(snap, call(snap, 'max.muster', '11').context, 'no_answer', NOW)
    assert_relay(plan, trunk_uri('+498912345678'), sip(MAIN))
    assert plan.ring_time == routing.OUTSIDE_RING_TIME == 30
    # an unconditional forward out, at call time and inbound
    assert call(snap, 'max.muster', '14').ring_time == 30
    assert route_inbound(snap, '+4930123414', ECOTEL[0], NOW).ring_time == 30


def test_a_forward_to_an_extension_rings_for_that_extensions_ring_time(snap):
    # 11 (20 s) forwards busy calls to 12 -> 13 (unconditional): 13 rings its own 20 s; 10 rings 25 s
    plan = after_failure(snap, call(snap, 'max.muster', '11').context, 'busy', NOW)
    assert_ring(plan, ANNA, target='13')
    assert plan.ring_time == snap.tenants['acme'].targets['13'].ring_time == 20
    assert call(snap, 'anna.desk', '70').ring_time == 30                     # 70: ring_time 30


def test_voicemail_rings_for_the_outside_ring_time(snap):
    assert call(snap, 'max.muster', '47').ring_time == 30                    # unconditional to voicemail
    assert after_failure(snap, call(snap, 'max.muster', '44').context, 'busy', NOW).ring_time == 30


def test_a_call_the_caller_dialled_out_rings_until_the_far_end_answers(snap):
    # no ring time of the core: tm's cfg-wide fr_inv_timer and the maximum setup time bound it
    assert call(snap, 'max.muster', '040123456').ring_time is None
    assert call(snap, 'max.muster', '112').ring_time is None


def test_the_mobile_of_single_number_reach_rings_as_long_as_the_phones(snap):
    plan = call(snap, 'max.muster', '70')
    assert plan.mobile.ring_time == plan.ring_time == 30


def test_unconditional_forward_to_an_own_number_stays_on_net(snap):
    plan = assert_ring(call(snap, 'max.muster', '25'), ('sina.desk',), target='21')
    assert ctx(plan).visited == ('acme/25', 'acme/21')
    assert plan.diversion == ('<sip:25@%s>;reason=unconditional' % DOMAIN,)


def test_unconditional_forward_to_another_tenants_number_rings_that_tenant(snap):
    plan = assert_ring(call(snap, 'max.muster', '26'), ('bert.beta',), domain=BETA_DOMAIN, target='100')
    c = ctx(plan)
    assert (c.tenant, c.hops, c.visited) == ('beta', 1, ('acme/26', 'beta/100'))
    assert plan.diversion == ('<sip:26@%s>;reason=unconditional' % DOMAIN,)
    # Another tenant never sees an internal identity: it sees the forwarding tenant's main number.
    assert plan.identity == '<sip:%s@%s>' % (snap.tenants['acme'].main_number, DOMAIN)
    assert 'Max' not in plan.identity and not plan.privacy


def test_a_forward_abroad_needs_the_international_permission_of_the_extension(snap):
    # 45 may not dial abroad: its forward to +41 does not apply, 45 itself rings
    assert not snap.tenants['acme'].targets['45'].international_calls
    for plan in (call(snap, 'anna.desk', '45'), route_inbound(snap, '+4930123445', ECOTEL[0], NOW)):
        assert not (isinstance(plan, Relay) and plan.uri.startswith('sip:%s@' % SWISS)), plan
        plan = assert_ring(plan, ('hans.desk',), target='45')
        assert (ctx(plan).hops, plan.diversion) == (0, ())


def test_a_forward_abroad_needs_the_international_permission_of_the_tenant(snap):
    # beta may not dial abroad (+49 is abroad for +43): 400's forward does not apply, 400 itself rings
    plan = call(snap, 'bert.beta', '400', domain=BETA_DOMAIN)
    assert not isinstance(plan, Relay), plan
    plan = assert_ring(plan, ('fwd.beta',), domain=BETA_DOMAIN, target='400')
    assert (ctx(plan).hops, plan.diversion) == (0, ())


def test_after_unregistered_the_unregistered_forward(snap):
    plan = assert_ring(after_failure(snap, call(snap, 'max.muster', '22').context, 'unregistered', NOW), ANNA,
                       target='13')
    assert plan.diversion == ('<sip:22@%s>;reason=unavailable' % DOMAIN,)      # 22 has a mobile too: not used
    assert ctx(plan).hops == 1


def test_after_unregistered_without_forward_the_mobile_is_not_rung(snap):
    # 11 has a mobile, no unregistered forward, no voicemail: the final answer (the mobile rings
    # only with single number reach, along with the phones)
    assert snap.tenants['acme'].targets['11'].mobile == '+491701111111'
    assert_reject(after_failure(snap, call(snap, 'max.muster', '11').context, 'unregistered', NOW), 480)


def test_after_unregistered_without_forward_or_mobile_480(snap):
    assert_reject(after_failure(snap, call(snap, 'max.muster', '13').context, 'unregistered', NOW), 480)


def test_after_busy_the_busy_forward(snap):
    # 11 busy -> 12, which forwards unconditionally to 13
    plan = assert_ring(after_failure(snap, call(snap, 'max.muster', '11').context, 'busy', NOW), ANNA, target='13')
    c = ctx(plan)
    assert (c.hops, c.visited) == (2, ('acme/11', 'acme/12', 'acme/13'))
    assert plan.diversion != ()


def test_a_forwarding_chain_carries_the_diversion_history(snap):
    # newest first: 12 (unconditional) in front of 11 (user-busy)
    plan = after_failure(snap, call(snap, 'max.muster', '11').context, 'busy', NOW)
    assert plan.diversion == ('<sip:12@%s>;reason=unconditional' % DOMAIN, '<sip:11@%s>;reason=user-busy' % DOMAIN)


def test_after_busy_without_forward_486(snap):
    assert_reject(after_failure(snap, call(snap, 'max.muster', '13').context, 'busy', NOW), 486)
    assert_reject(after_failure(snap, call(snap, 'max.muster', '22').context, 'busy', NOW), 486)


def test_after_no_answer_the_no_answer_forward(snap):
    plan = assert_relay(after_failure(snap, call(snap, 'max.muster', '11').context, 'no_answer', NOW),
                        trunk_uri('+498912345678'), sip(MAIN))
    assert plan.diversion == ('<sip:11@%s>;reason=no-answer' % DOMAIN,)


def test_after_no_answer_without_forward_480(snap):
    assert_reject(after_failure(snap, call(snap, 'max.muster', '13').context, 'no_answer', NOW), 480)
    # the mobile is the unregistered forward only
    assert_reject(after_failure(snap, call(snap, 'anna.desk', '10').context, 'no_answer', NOW), 480)


def test_after_rejection_no_forward_603(snap):
    assert_reject(after_failure(snap, call(snap, 'max.muster', '11').context, 'rejected', NOW), 603)


def test_forward_to_voicemail_without_a_media_server_is_the_final_answer(directory):
    # The directory refuses voicemail without a media server; data from before that rule still routes.
    patches = dict(RUNTIME_ONLY)
    patches[('acme', TENANT, 'acme')] = {'media_server': None}
    snap = load_snapshot(directory, patches=patches)
    assert snap.tenants['acme'].media_server is None and snap.tenants['acme'].targets['44'].voicemail
    context = call(snap, 'max.muster', '44').context
    assert_reject(after_failure(snap, context, 'busy', NOW), 486)
    assert_reject(after_failure(snap, context, 'no_answer', NOW), 480)
    assert_reject(after_failure(snap, call(snap, 'max.muster', '48').context, 'unregistered', NOW), 480)
    assert_reject(call(snap, 'max.muster', '46'), 486)                     # DND
    assert_ring(call(snap, 'max.muster', '47'), ('vall.desk',), target='47')   # unconditional 'voicemail': rings


def test_after_failure_of_a_target_that_is_gone_is_480(snap):
    assert_reject(after_failure(snap, Context('acme', '99').encode(), 'busy', NOW), 480)
    assert_reject(after_failure(snap, Context('nosuch', '10').encode(), 'no_answer', NOW), 480)


def test_unconditional_loop_stops_at_the_second_extension(snap):
    # 16 -> 17 -> 16: the call rings 17
    plan = assert_ring(call(snap, 'max.muster', '16'), ('loop17',), target='17')
    assert ctx(plan).visited == ('acme/16', 'acme/17')
    assert plan.diversion == ('<sip:16@%s>;reason=unconditional' % DOMAIN,)
    plan = assert_ring(call(snap, 'max.muster', '17'), ('loop16',), target='16')
    assert ctx(plan).visited == ('acme/17', 'acme/16')


def test_busy_loop_stops(snap):
    # 23 busy -> 24, 24 busy -> 23 (already visited): busy
    plan = assert_ring(after_failure(snap, call(snap, 'max.muster', '23').context, 'busy', NOW), ('pong24',),
                       target='24')
    assert ctx(plan).visited == ('acme/23', 'acme/24')
    assert_reject(after_failure(snap, plan.context, 'busy', NOW), 486)


def test_forwarding_chain_is_bounded(snap):
    plan = assert_ring(call(snap, 'max.muster', '30'), ('chain%d' % (30 + MAX_FORWARD_HOPS),),
                       target=str(30 + MAX_FORWARD_HOPS))
    c = ctx(plan)
    assert c.hops == MAX_FORWARD_HOPS
    assert c.visited == tuple('acme/%d' % n for n in range(30, 31 + MAX_FORWARD_HOPS))
    # one Diversion per hop, newest first
    assert plan.diversion == tuple('<sip:%d@%s>;reason=unconditional' % (n, DOMAIN)
                                   for n in range(29 + MAX_FORWARD_HOPS, 29, -1))
    # no further forward after the last hop: 35's no-answer forward to 13 is not followed
    assert_reject(after_failure(snap, plan.context, 'no_answer', NOW), 480)
    # the same extension reached directly does follow it
    assert_ring(after_failure(snap, Context('acme', '35').encode(), 'no_answer', NOW), ANNA, target='13')


def test_forward_loop_through_e164_numbers_stops(snap):
    plan = assert_ring(call(snap, 'max.muster', '28'), ('loop29',), target='29')
    assert ctx(plan).hops == 1
    assert ctx(plan).visited == ('acme/28', 'acme/29')
    assert plan.diversion == ('<sip:28@%s>;reason=unconditional' % DOMAIN,)


def test_forward_loop_through_another_tenant_is_bounded(snap):
    # A 27 -> B 300 (+43 1 5550300) -> A 27 (+49 30 1234 27) -> ...
    plan = call(snap, 'max.muster', '27')
    assert isinstance(plan, Ring), plan
    assert ctx(plan).hops <= MAX_FORWARD_HOPS


def test_forward_loop_through_another_tenant_stops(snap):
    plan = assert_ring(call(snap, 'max.muster', '27'), ('pong.beta',), domain=BETA_DOMAIN, target='300')
    assert ctx(plan).hops == 1
    assert ctx(plan).visited == ('acme/27', 'beta/300')
    assert plan.diversion == ('<sip:27@%s>;reason=unconditional' % DOMAIN,)
    # and from the other side: B 300 -> A 27, which does not go back to B 300
    plan = assert_ring(route_inbound(snap, B_300, B_TRUNK_V4, NOW), ('fwd27',), target='27')
    assert (ctx(plan).hops, ctx(plan).visited) == (1, ('beta/300', 'acme/27'))
    assert plan.diversion == ('<sip:300@%s>;reason=unconditional' % BETA_DOMAIN,)


# Groups ---------------------------------------------------------------------------------------

def test_parallel_group_rings_every_available_member_without_dnd(snap):
    # 50: 10, 11, 18 (unavailable), 15 (DND), 13
    plan = assert_ring(call(snap, 'anna.desk', '50'), MAX + ERIKA + ANNA, target='50')
    assert plan.ring_time == 30
    assert plan.identity == sip('13')
    assert not set(plan.aors) & set(aors('urs.desk', 'dora.desk'))


def test_parallel_group_falls_back_after_failure(snap):
    plan = assert_ring(after_failure(snap, call(snap, 'anna.desk', '50').context, 'no_answer', NOW), ('mia.desk',),
                       target='19')
    assert ctx(plan).visited == ('acme/50', 'acme/19')
    assert plan.diversion == ('<sip:50@%s>;reason=no-answer' % DOMAIN,)


def test_sequential_group_steps_through_members_then_falls_back(snap):
    # 51: 18 (unavailable), 13, 15 (DND), 11 -> rings 13, then 11, then the fallback 19
    first = assert_ring(call(snap, 'max.muster', '51'), ANNA, target='51')
    assert first.ring_time == 15
    assert ctx(first).step == 0
    second = assert_ring(after_failure(snap, first.context, 'no_answer', NOW), ERIKA, target='51')
    assert ctx(second).step == 1
    assert second.ring_time == 15
    third = assert_ring(after_failure(snap, second.context, 'busy', NOW), ('mia.desk',), target='19')
    assert ctx(third).hops == 1
    assert third.diversion == ('<sip:51@%s>;reason=no-answer' % DOMAIN,)
    # the fallback extension has no forwards of its own: its failure is final
    assert_reject(after_failure(snap, third.context, 'no_answer', NOW), 480)


def test_sequential_group_moves_on_whatever_the_failure(snap):
    for outcome in ('unregistered', 'busy', 'no_answer', 'rejected'):
        assert_ring(after_failure(snap, Context('acme', '51').encode(), outcome, NOW), ERIKA, target='51')


def test_group_fallback_diversion_reason_is_a_sip_token(snap):
    context = call(snap, 'anna.desk', '50').context
    plans = {outcome: after_failure(snap, context, outcome, NOW) for outcome in ('no_answer', 'busy', 'unregistered')}
    plans['no members'] = call(snap, 'max.muster', '52')
    reasons = {}
    for key, plan in plans.items():
        assert len(plan.diversion) == 1, plan
        reasons[key] = plan.diversion[0].split(';reason=', 1)[1]
        assert _TOKEN_RE.match(reasons[key]), reasons[key]
    # every member that rang was busy: user-busy (docs/routing.md, Reaching a group)
    assert reasons == {'no_answer': 'no-answer', 'busy': 'user-busy', 'unregistered': 'unavailable',
                       'no members': 'unavailable'}


def test_sequential_group_without_fallback_ends_with_the_last_failure(snap):
    context = call(snap, 'max.muster', '55').context
    assert_reject(after_failure(snap, context, 'busy', NOW), 486)
    assert_reject(after_failure(snap, context, 'no_answer', NOW), 480)


def test_group_without_ringable_members_goes_to_its_fallback_at_once(snap):
    # 52: only an unavailable member
    plan = assert_ring(call(snap, 'max.muster', '52'), ANNA, target='13')
    assert ctx(plan).visited == ('acme/52', 'acme/13')
    assert plan.diversion == ('<sip:52@%s>;reason=unavailable' % DOMAIN,)
    # 54: only a DND member; fallback outside
    assert_relay(call(snap, 'max.muster', '54'), trunk_uri(OUTSIDE), sip(MAIN))


def test_empty_group_without_fallback_is_480(snap):
    assert_reject(call(snap, 'max.muster', '53'), 480)


# What the whole group did decides the fallback's diversion reason and the final answer (issue 13):
# not the last step alone. Group 51 rings 13, then 11, then falls back to 19; group 57 rings 13,
# then 11, and has no fallback.
GROUP_STEPS = [
    # (first member, second member) -> (reason of the fallback, final answer without one)
    (('no_answer', 'unregistered'), ('no-answer', 480)),     # rang unanswered, the last one not registered
    (('rejected', 'unregistered'), ('no-answer', 480)),      # a phone that rang and refused
    (('busy', 'unregistered'), ('user-busy', 486)),
    (('unregistered', 'busy'), ('user-busy', 486)),
    (('busy', 'busy'), ('user-busy', 486)),
    (('busy', 'no_answer'), ('no-answer', 480)),
    (('no_answer', 'busy'), ('no-answer', 480)),             # someone rang unanswered: not busy
    (('unregistered', 'no_answer'), ('no-answer', 480)),
    (('unregistered', 'unregistered'), ('unavailable', 480)),  # nobody could ring
]


def _through_group(snap, group, outcomes):
    plan = call(snap, 'max.muster', group)
    for outcome in outcomes:
        assert isinstance(plan, Ring), plan
        plan = after_failure(snap, plan.context, outcome, NOW)
    return plan


@pytest.mark.parametrize('outcomes, expected', GROUP_STEPS)
def test_sequential_group_fallback_reason_is_what_the_whole_group_did(snap, outcomes, expected):
    plan = assert_ring(_through_group(snap, '51', outcomes), ('mia.desk',), target='19')
    assert plan.diversion == ('<sip:51@%s>;reason=%s' % (DOMAIN, expected[0]),)
    assert ctx(plan).rung == ''                     # the fallback target starts afresh


@pytest.mark.parametrize('outcomes, expected', GROUP_STEPS)
def test_sequential_group_without_fallback_answers_what_the_whole_group_did(snap, outcomes, expected):
    assert_reject(_through_group(snap, '57', outcomes), expected[1])


def test_each_step_of_a_sequential_group_carries_what_the_members_did_so_far(snap):
    first = call(snap, 'max.muster', '51')
    assert ctx(first).rung == ''
    assert ctx(after_failure(snap, first.context, 'unregistered', NOW)).rung == ''
    assert ctx(after_failure(snap, first.context, 'busy', NOW)).rung == 'busy'
    assert ctx(after_failure(snap, first.context, 'no_answer', NOW)).rung == 'no_answer'
    assert ctx(after_failure(snap, first.context, 'rejected', NOW)).rung == 'no_answer'


@pytest.mark.parametrize('outcome, reason', [('no_answer', 'no-answer'), ('rejected', 'no-answer'),
                                             ('busy', 'user-busy'), ('unregistered', 'unavailable')])
def test_parallel_group_fallback_reason_follows_the_groups_outcome(snap, outcome, reason):
    plan = after_failure(snap, call(snap, 'anna.desk', '50').context, outcome, NOW)
    assert_ring(plan, ('mia.desk',), target='19')
    assert plan.diversion == ('<sip:50@%s>;reason=%s' % (DOMAIN, reason),)


@pytest.mark.parametrize('rung, outcome, result', [
    ('', 'unregistered', ''), ('', 'busy', 'busy'), ('', 'no_answer', 'no_answer'), ('', 'rejected', 'no_answer'),
    ('busy', 'unregistered', 'busy'), ('busy', 'busy', 'busy'), ('busy', 'no_answer', 'no_answer'),
    ('no_answer', 'unregistered', 'no_answer'), ('no_answer', 'busy', 'no_answer'),
])
def test_group_rung_merges_one_step_into_what_the_group_did(rung, outcome, result):
    assert routing.group_rung(rung, outcome) == result
    assert result in routing.GROUP_OUTCOMES


def test_a_group_fallback_to_an_outside_number_rings_for_its_own_ring_time(snap):
    # 54: its only member is on DND: at once to its outside fallback
    plan = assert_relay(call(snap, 'max.muster', '54'), trunk_uri(OUTSIDE), sip(MAIN))
    assert plan.ring_time == routing.OUTSIDE_RING_TIME == 30


# Context ------------------------------------------------------------------------------------

def test_context_round_trip():
    c = Context('acme', '51', hops=2, step=1, visited=['acme/12', 'acme/51'], rung='busy')
    text = c.encode()
    assert text == 'acme|51|2|1|acme/12,acme/51|busy'
    d = Context.decode(text)
    assert (d.tenant, d.target, d.hops, d.step, d.visited, d.rung) == ('acme', '51', 2, 1, ('acme/12', 'acme/51'), 'busy')
    assert Context.decode(d.encode()).encode() == text


def test_context_visits_its_target_by_default():
    c = Context('beta', '100')
    assert c.visited == ('beta/100',)
    assert (c.hops, c.step, c.rung) == (0, 0, '')
    assert c.encode() == 'beta|100|0|0|beta/100|'
    assert Context.decode(c.encode()).visited == ('beta/100',)


def test_context_of_the_five_field_form_decodes_as_nobody_rang_yet():
    # A transaction set up before the group outcome field existed (app_python.reload while it rang).
    d = Context.decode('acme|51|0|1|acme/51')
    assert (d.tenant, d.target, d.hops, d.step, d.visited, d.rung) == ('acme', '51', 0, 1, ('acme/51',), '')
    assert d.encode() == 'acme|51|0|1|acme/51|'


@pytest.mark.parametrize('text', ['acme|51|0|1|acme/51|maybe', 'acme|51|0|1', 'acme|51|0|1|acme/51|busy|x'])
def test_a_malformed_context_is_refused(text):
    with pytest.raises(ValueError):
        Context.decode(text)


def test_context_forwarded_to_is_one_hop_further_and_never_loops():
    c = Context('acme', '10', step=2)
    d = c.forwarded_to('beta', '10')          # the same number in another tenant is another target
    assert (d.tenant, d.target, d.hops, d.step, d.visited) == ('beta', '10', 1, 0, ('acme/10', 'beta/10'))
    assert c.visited == ('acme/10',)          # c itself is unchanged
    assert d.forwarded_to('acme', '10') is None
    assert d.forwarded_to('beta', '10') is None
    last = Context('acme', '1', hops=MAX_FORWARD_HOPS - 1).forwarded_to('acme', '2')
    assert last.hops == MAX_FORWARD_HOPS
    assert last.forwarded_to('acme', '3') is None


def test_plans_carry_a_context_that_decodes(snap):
    for plan in (call(snap, 'anna.desk', '10'), call(snap, 'anna.desk', '51'), route_inbound(snap, BLOCK, ECOTEL[0], NOW)):
        c = ctx(plan)
        assert Context.decode(c.encode()).encode() == plan.context


# The routing core decides from the snapshot alone -----------------------------------------------

def test_a_decision_does_not_change_the_snapshot(snap):
    before = (dict(snap.tenants['acme'].targets['11'].forwarding), snap.tenants['acme'].locations['hq'].copy())
    for dummy in range(2):
        call(snap, 'max.muster', '112')
        after_failure(snap, call(snap, 'max.muster', '11').context, 'busy', NOW)
    assert (snap.tenants['acme'].targets['11'].forwarding, snap.tenants['acme'].locations['hq']) == before
    # two emergency plans do not share their headers
    one, two = call(snap, 'max.muster', '112'), call(snap, 'anna.desk', '112')
    assert one.headers is not two.headers


# Voicemail ------------------------------------------------------------------------------------

def div(number, reason, domain=DOMAIN):
    """One Diversion entry (RFC 5806) as the router writes it."""
    return '<sip:%s@%s>;reason=%s' % (number, domain, reason)


MAX_INTERNAL = '"Max Mustermann" %s' % sip('10')


def assert_voicemail(plan, number, diversion, identity=None, privacy=False):
    """The call to ``number``'s mailbox: request URI in the tenant's domain, next hop the media server."""
    assert isinstance(plan, Relay), plan
    assert plan.uri == 'sip:%s@%s' % (number, DOMAIN), plan
    assert plan.destination == MEDIA_SERVER, plan
    # The media header names the mailbox and why the call came (the newest diversion's reason).
    reason = diversion[0].rsplit('reason=', 1)[1]
    assert (plan.identity, plan.privacy, plan.headers) == (
        identity, privacy, {'X-Voxplane-Media': 'voicemail;mailbox=%s;reason=%s' % (number, reason)}), plan
    assert plan.diversion == diversion, plan
    return plan


def test_tenant_media_server_is_stored_canonical(snap):
    assert snap.tenants['acme'].media_server == MEDIA_SERVER
    assert snap.tenants['beta'].media_server is None


def test_voicemail_relay_shape_after_a_failure(snap):
    # in the failure route the caller's identity is already on the call: the plan names none
    plan = assert_voicemail(after_failure(snap, call(snap, 'max.muster', '44').context, 'busy', NOW),
                            '44', (div('44', 'user-busy'),))
    assert plan.uri.split('@')[1] == DOMAIN and plan.destination != plan.uri   # mailbox by URI, sent to the server
    assert plan.context is None                                              # a relay, not a ring: no further step


def test_voicemail_at_call_time_presents_the_callers_identity(snap):
    assert_voicemail(call(snap, 'max.muster', '46'), '46', (div('46', 'do-not-disturb'),), MAX_INTERNAL)
    # an anonymous on-net caller stays anonymous at the mailbox
    assert_voicemail(call(snap, 'anton.desk', '030123446'), '46', (div('46', 'do-not-disturb'),), ANONYMOUS_URI, True)
    # inbound from the network: the network's caller id is kept
    assert_voicemail(route_inbound(snap, '+4930123446', ECOTEL[0], NOW), '46', (div('46', 'do-not-disturb'),))


def test_dnd_without_voicemail_is_486_do_not_disturb(snap):
    plan = assert_reject(call(snap, 'max.muster', '15'), 486)
    assert plan.reason == 'Do Not Disturb'
    assert route_inbound(snap, '+4930123415', ECOTEL[0], NOW).reason == 'Do Not Disturb'


def test_dnd_with_voicemail_goes_to_the_mailbox(snap):
    for plan in (call(snap, 'max.muster', '46'), route_inbound(snap, '+4930123446', ECOTEL[0], NOW)):
        assert_voicemail(plan, '46', (div('46', 'do-not-disturb'),), identity=plan.identity)


def test_dnd_suppresses_the_unconditional_and_every_other_forward(snap):
    # 15 (no voicemail) forwards unconditionally to 13 and on busy to 12; 46 (voicemail) to 13/12/13/13
    assert snap.tenants['acme'].targets['15'].forwarding['unconditional'] == '13'
    assert snap.tenants['acme'].targets['46'].forwarding == {
        'unconditional': '13', 'busy': '12', 'no_answer': '13', 'unregistered': '13'}
    assert_reject(call(snap, 'max.muster', '15'), 486)
    plan = call(snap, 'max.muster', '46')
    assert isinstance(plan, Relay) and plan.destination == MEDIA_SERVER, plan    # not a Ring of 13 or 12
    assert plan.diversion == (div('46', 'do-not-disturb'),)


def test_dnd_rings_no_mobile_either(snap):
    # 73 has single number reach and DND: nothing rings
    assert snap.tenants['acme'].targets['73'].single_number_reach
    assert_reject(call(snap, 'max.muster', '73'), 486)


def test_unconditional_forward_to_voicemail(snap):
    assert_voicemail(call(snap, 'max.muster', '47'), '47', (div('47', 'unconditional'),), MAX_INTERNAL)
    assert_voicemail(route_inbound(snap, '+4930123447', ECOTEL[0], NOW), '47', (div('47', 'unconditional'),))


@pytest.mark.parametrize('number, outcome, reason', [
    ('44', 'busy', 'user-busy'),            # forwarding.busy: voicemail
    ('44', 'no_answer', 'no-answer'),       # forwarding.no_answer: voicemail
    ('44', 'unregistered', 'unavailable'),  # no unregistered forward: voicemail all the same
    ('48', 'busy', 'user-busy'),            # no forwards at all
    ('48', 'no_answer', 'no-answer'),
    ('48', 'unregistered', 'unavailable'),
    ('49', 'no_answer', 'no-answer'),       # a busy forward only
    ('49', 'unregistered', 'unavailable'),  # forwarding.unregistered: voicemail
])
def test_after_failure_without_an_applicable_forward_voicemail(snap, number, outcome, reason):
    plan = after_failure(snap, call(snap, 'max.muster', number).context, outcome, NOW)
    assert_voicemail(plan, number, (div(number, reason),))


def test_after_failure_a_forward_beats_voicemail(snap):
    # 49: busy -> 13, and voicemail enabled
    plan = assert_ring(after_failure(snap, call(snap, 'max.muster', '49').context, 'busy', NOW), ANNA, target='13')
    assert plan.diversion == (div('49', 'user-busy'),)


@pytest.mark.parametrize('number, outcome, code', [
    ('13', 'busy', 486), ('13', 'no_answer', 480), ('13', 'unregistered', 480),   # no forward, no voicemail
    ('48', 'rejected', 603),                   # a device's own rejection never goes to voicemail
])
def test_after_failure_without_forward_or_voicemail_the_final_answer(snap, number, outcome, code):
    assert_reject(after_failure(snap, call(snap, 'max.muster', number).context, outcome, NOW), code)


def test_a_loop_a_b_a_ends_in_the_last_extensions_voicemail(snap):
    # 60 busy -> 61, 61 busy -> 60 (visited): the forward cannot be followed, 61's voicemail
    first = assert_ring(after_failure(snap, call(snap, 'max.muster', '60').context, 'busy', NOW),
                        ('vpong.desk',), target='61')
    assert (ctx(first).visited, first.diversion) == (('acme/60', 'acme/61'), (div('60', 'user-busy'),))
    # (a plan of the failure route names only its own diversion; the adapter keeps the history)
    plan = after_failure(snap, first.context, 'busy', NOW)
    assert_voicemail(plan, '61', (div('61', 'user-busy'),))


def test_a_loop_a_b_a_without_voicemail_ends_with_busy(snap):
    plan = after_failure(snap, call(snap, 'max.muster', '23').context, 'busy', NOW)
    assert_reject(after_failure(snap, plan.context, 'busy', NOW), 486)


def test_a_forward_to_an_extension_on_dnd_gets_that_extensions_treatment(snap):
    # 62 -> 46 (DND, voicemail): 46's mailbox, both diversions, newest first
    assert_voicemail(call(snap, 'max.muster', '62'), '46',
                     (div('46', 'do-not-disturb'), div('62', 'unconditional')), MAX_INTERNAL)
    # 63 -> 15 (DND, no voicemail): 486 Do Not Disturb, 63 does not ring
    assert assert_reject(call(snap, 'max.muster', '63'), 486).reason == 'Do Not Disturb'
    # 64 busy -> 15: 15's answer, not 64's own voicemail
    assert snap.tenants['acme'].targets['64'].voicemail
    plan = assert_reject(after_failure(snap, call(snap, 'max.muster', '64').context, 'busy', NOW), 486)
    assert plan.reason == 'Do Not Disturb'


# Single number reach --------------------------------------------------------------------------

def assert_mobile(plan, number, mobile, identity=None, privacy=False):
    """The Ring's mobile branch: a relay through acme's trunk, its own identity and diversion."""
    mobile_plan = plan.mobile
    assert isinstance(mobile_plan, Relay), plan
    assert (mobile_plan.uri, mobile_plan.identity, mobile_plan.privacy) == (trunk_uri(mobile), identity or sip(MAIN), privacy)
    assert mobile_plan.diversion == (div(number, 'follow-me'),)
    assert (mobile_plan.destination, mobile_plan.headers) == (None, {})
    return mobile_plan


def test_single_number_reach_rings_the_mobile_along_with_the_phones(snap):
    plan = assert_ring(call(snap, 'max.muster', '70'), ('snr.desk',), target='70')
    assert (plan.ring_time, plan.identity, plan.privacy, plan.diversion) == (30, MAX_INTERNAL, False, ())
    # the mobile presents the tenant (it pays for the leg), never the caller's internal identity
    assert_mobile(plan, '70', MOBILE_70)


def test_single_number_reach_from_the_network(snap):
    plan = assert_ring(route_inbound(snap, '+4930123470', ECOTEL[0], NOW), ('snr.desk',), target='70')
    assert plan.identity is None
    assert_mobile(plan, '70', MOBILE_70)


def test_single_number_reach_keeps_an_anonymous_callers_privacy(snap):
    plan = assert_ring(call(snap, 'anton.desk', '030123470'), ('snr.desk',), target='70')
    assert (plan.identity, plan.privacy) == (ANONYMOUS_URI, True)
    assert_mobile(plan, '70', MOBILE_70, privacy=True)


def test_single_number_reach_to_a_mobile_abroad_when_permitted(snap):
    plan = assert_ring(call(snap, 'max.muster', '72'), ('snr.abroad',), target='72')
    assert_mobile(plan, '72', MOBILE_72)


def test_single_number_reach_without_accounts_rings_the_mobile_alone(snap):
    plan = call(snap, 'max.muster', '71')
    assert isinstance(plan, Ring) and plan.aors == (), plan
    assert (ctx(plan).target, plan.ring_time) == ('71', 20)
    assert_mobile(plan, '71', MOBILE_71)
    # nobody answers: no forward, no voicemail
    assert_reject(after_failure(snap, plan.context, 'no_answer', NOW), 480)


def test_no_mobile_branch_without_single_number_reach(directory, snap):
    assert snap.tenants['acme'].targets['10'].mobile and not snap.tenants['acme'].targets['10'].single_number_reach
    assert assert_ring(call(snap, 'anna.desk', '10'), MAX, target='10').mobile is None
    # switched off in a snapshot: the same extension 70 rings its phone only
    patches = dict(RUNTIME_ONLY)
    patches[('acme', EXTENSION, '70')] = {'single_number_reach': False}
    assert assert_ring(call(load_snapshot(directory, patches=patches), 'max.muster', '70'),
                       ('snr.desk',), target='70').mobile is None


@pytest.mark.parametrize('patch', [
    (('acme', EXTENSION, '72'), {'international_calls': False}),   # the extension may not call abroad
    (('acme', TENANT, 'acme'), {'international_calls': False}),     # the tenant may not
])
def test_no_mobile_branch_to_a_number_the_extension_may_not_call(directory, patch):
    # The directory refuses such a mobile up front; the router checks again at call time.
    patches = dict(RUNTIME_ONLY)
    patches[patch[0]] = patch[1]
    snap = load_snapshot(directory, patches=patches)
    plan = assert_ring(call(snap, 'max.muster', '72'), ('snr.abroad',), target='72')
    assert plan.mobile is None
    # a national mobile is fine either way
    assert_mobile(call(snap, 'max.muster', '70'), '70', MOBILE_70)


def test_no_mobile_branch_without_a_trunk(snap):
    plan = assert_ring(call(snap, 'gina.gamma', '11', domain=GAMMA_DOMAIN), ('snr.gamma',), domain=GAMMA_DOMAIN,
                       target='11', tenant='gamma')
    assert plan.mobile is None
    # no accounts and no mobile that can ring: unregistered, nothing else -> 480
    assert_reject(call(snap, 'gina.gamma', '12', domain=GAMMA_DOMAIN), 480)


# Groups skip members that cannot ring -------------------------------------------------------------

def test_parallel_group_skips_members_without_accounts_on_dnd_or_unavailable(snap):
    # 56: 40 (no accounts), 71 (no accounts, single number reach), 15 (DND), 18 (unavailable), 13, 11
    plan = assert_ring(call(snap, 'max.muster', '56'), ANNA + ERIKA, target='56')
    assert plan.mobile is None                    # a member's mobile does not ring in a group


@pytest.mark.parametrize('group', ['58', '59'])
def test_a_group_of_members_without_accounts_has_nobody_to_ring(snap, group):
    # 58 (parallel) goes to its fallback at once, 59 (sequential, no fallback) is 480: no empty ring
    plan = call(snap, 'max.muster', group)
    if group == '58':
        plan = assert_ring(plan, ANNA, target='13')
        assert plan.diversion == (div('58', 'unavailable'),)
    else:
        assert_reject(plan, 480)


def test_sequential_group_skips_members_without_accounts_on_dnd_or_unavailable(snap):
    first = assert_ring(call(snap, 'max.muster', '57'), ANNA, target='57')
    assert (ctx(first).step, first.mobile) == (0, None)
    second = assert_ring(after_failure(snap, first.context, 'no_answer', NOW), ERIKA, target='57')
    assert ctx(second).step == 1
    assert_reject(after_failure(snap, second.context, 'no_answer', NOW), 480)


# Feature codes --------------------------------------------------------------------------------

FEATURE_CASES = [
    ('*78', '*78', {'dnd': True}, 'Do Not Disturb On'),
    ('*79', '*79', {'dnd': False}, 'Do Not Disturb Off'),
    ('*72', '*7213', {'forwarding': {'unconditional': '13'}}, 'Forward All Calls To 13'),
    ('*73', '*73', {'forwarding': {'unconditional': ''}}, 'Forward All Calls Off'),
    ('*90', '*90030555123', {'forwarding': {'busy': '030555123'}}, 'Forward When Busy To 030555123'),
    ('*91', '*91', {'forwarding': {'busy': ''}}, 'Forward When Busy Off'),
    ('*92', '*92+4940123456', {'forwarding': {'no_answer': '+4940123456'}}, 'Forward On No Answer To +4940123456'),
    ('*93', '*93', {'forwarding': {'no_answer': ''}}, 'Forward On No Answer Off'),
]


def test_every_feature_code_has_a_case():
    assert sorted(code for code, _d, _r, _t in FEATURE_CASES) == sorted(FEATURE_CODES)


@pytest.mark.parametrize('code, dialled, wanted, done', FEATURE_CASES)
def test_feature_code_is_a_phone_setting_for_the_callers_extension(snap, code, dialled, wanted, done):
    assert dialled.startswith(code) and code in FEATURE_CODES
    for user in ('max.muster', 'max.app'):          # either account: its extension
        plan = call(snap, user, dialled)
        assert isinstance(plan, PhoneSetting), plan
        assert (plan.tenant, plan.extension, plan.request, plan.done) == ('acme', '10', wanted, done)
    # a trailing '#' (phones send it to end dialling) and surrounding blanks are ignored
    plan = call(snap, 'max.muster', ' %s# ' % dialled)
    assert (plan.request, plan.done) == (wanted, done)


# The Request-URI user is unescaped once, by the core's entry points (issue 13) -----------------------

@pytest.mark.parametrize('dialled', ['*78%23', '*78%23 ', '%2A78', '%2a78%23', '*78#'])
def test_an_escaped_feature_code_is_the_feature_code(snap, dialled):
    plan = call(snap, 'max.muster', dialled)
    assert isinstance(plan, PhoneSetting), plan
    assert (plan.request, plan.done) == ({'dnd': True}, 'Do Not Disturb On')


def test_an_escaped_number_after_a_feature_code_is_the_number(snap):
    plan = call(snap, 'max.muster', '*72%2B4940123456%23')
    assert (plan.request, plan.done) == ({'forwarding': {'unconditional': '+4940123456'}}, 'Forward All Calls To +4940123456')


@pytest.mark.parametrize('escaped, plain', [('%2B4940123456', '+4940123456'), ('%2b4940123456', '+4940123456'),
                                            ('%30%34%30123456', '040123456'), ('1%33', '13')])
def test_an_escaped_dialled_number_is_routed_like_the_plain_one(snap, escaped, plain):
    assert repr(call(snap, 'max.muster', escaped)) == repr(call(snap, 'max.muster', plain))


def test_an_escaped_inbound_number_is_routed_like_the_plain_one(snap):
    for escaped, plain in (('%2B4930123414', '+4930123414'), ('%2B4930999001', SINGLE)):
        assert repr(route_inbound(snap, escaped, ECOTEL[0], NOW)) == repr(route_inbound(snap, plain, ECOTEL[0], NOW))
    assert isinstance(route_inbound(snap, '%2B%34%39%33%30%31%32%33%34%31%30', ECOTEL[0], NOW), Ring)


def test_the_user_is_unescaped_once_only(snap):
    # '%2523' is an escaped '%' followed by '23': the phone dialled '*78%23' literally
    assert_reject(call(snap, 'max.muster', '*78%2523'), 484)
    assert_reject(call(snap, 'max.muster', '%2525'), 404)
    assert routing.request_user('%2523') == '%23'


@pytest.mark.parametrize('dialled, why', [
    ('*78%2', 'malformed escape'), ('*78%', 'malformed escape'), ('%zz10', 'malformed escape'),
    ('1%G0', 'malformed escape'),
    ('%00', 'control character'), ('10%00', 'control character'), ('1%0A0', 'control character'),
    ('%7F', 'control character'), ('1\x000', 'control character'), ('1\r\n0', 'control character'),
    ('%FF', 'not UTF-8'), ('%C3', 'not UTF-8'), ('%C3%28', 'not UTF-8'),
])
def test_a_user_that_does_not_unescape_to_printable_text_is_400(snap, dialled, why):
    for plan in (call(snap, 'max.muster', dialled), route_inbound(snap, dialled, ECOTEL[0], NOW)):
        assert_reject(plan, 400)
        assert plan.reason.startswith('Bad Request: ') and why in plan.reason, plan


def test_an_escaped_printable_character_that_is_no_number_is_404(snap):
    assert routing.request_user('%C3%A4') == '\u00e4'
    assert_reject(call(snap, 'max.muster', '%C3%A4'), 404)
    assert_reject(route_inbound(snap, '%C3%A4', ECOTEL[0], NOW), 404)


def test_request_user_without_escapes_is_unchanged():
    for user in ('10', '+4930123456', '*78#', '', None):
        assert routing.request_user(user) == (user or '')


def test_feature_code_of_another_tenant_is_for_its_own_extension(snap):
    plan = call(snap, 'berta.zehn', '*78', domain=BETA_DOMAIN)
    assert (plan.tenant, plan.extension, plan.request) == ('beta', '10', {'dnd': True})


def test_phone_setting_is_the_same_decision_without_the_account_lookup(snap):
    acme = snap.tenants['acme']
    plan = phone_setting(acme, acme.targets['13'], '*9011#')
    assert (plan.tenant, plan.extension, plan.request, plan.done) == (
        'acme', '13', {'forwarding': {'busy': '11'}}, 'Forward When Busy To 11')


@pytest.mark.parametrize('dialled', ['*', '*7', '*77', '*80', '*00', '*#78', '*7#8'])
def test_unknown_feature_code_is_404(snap, dialled):
    plan = assert_reject(call(snap, 'max.muster', dialled), 404)
    assert 'feature code' in plan.reason.lower() and dialled[:3] in plan.reason


@pytest.mark.parametrize('dialled', ['*72', '*72#', '*90', '*90##', '*92'])
def test_feature_code_without_its_number_is_484(snap, dialled):
    plan = assert_reject(call(snap, 'max.muster', dialled), 484)
    assert dialled[:3] in plan.reason


@pytest.mark.parametrize('dialled', ['*781', '*79#1', '*7313', '*9113#', '*9300491701234567'])
def test_feature_code_with_a_surplus_number_is_484(snap, dialled):
    plan = assert_reject(call(snap, 'max.muster', dialled), 484)
    assert dialled[:3] in plan.reason


def test_feature_codes_come_from_accounts_only(snap):
    # dialled by the network towards a trunk address: not a setting of anybody's
    assert_reject(route_inbound(snap, '*78', ECOTEL[0], NOW), 404)
    # an unknown account is refused before the code is read
    assert_reject(route_from_account(snap, DOMAIN, 'nobody.here', '*78', NOW), 403)


# An anonymous caller's privacy on later legs ------------------------------------------------------

def test_an_anonymous_callers_privacy_holds_on_a_forward_to_an_outside_number(snap):
    # anton (anonymous) calls 14 on-net, which forwards to an outside number: the leg presents the
    # tenant's main number (the tenant pays) and keeps the caller's Privacy
    plan = assert_relay(call(snap, 'anton.desk', '030123414'), trunk_uri(OUTSIDE), sip(MAIN), privacy=True)
    assert plan.diversion == (div('14', 'unconditional'),)
    # a caller with a number of its own is not private there
    assert_relay(call(snap, 'max.muster', '030123414'), trunk_uri(OUTSIDE), sip(MAIN), privacy=False)


def test_an_anonymous_callers_privacy_holds_on_a_forward_to_another_tenant(snap):
    plan = assert_ring(call(snap, 'anton.desk', '030123426'), ('bert.beta',), domain=BETA_DOMAIN, target='100')
    assert (plan.identity, plan.privacy) == (sip(MAIN), True)
    plan = assert_ring(call(snap, 'max.muster', '030123426'), ('bert.beta',), domain=BETA_DOMAIN, target='100')
    assert plan.privacy is False


def test_dnd_switched_on_while_the_call_rang_is_busy_treatment_without_forwards(snap):
    # 15 (DND, busy forward to 12) and 46 (DND, voicemail): a ring that began before DND ends
    # the way a call made now would, not by the busy or no-answer forward.
    for outcome in ('busy', 'no_answer', 'unregistered'):
        plan = assert_reject(after_failure(snap, Context('acme', '15').encode(), outcome, NOW), 486)
        assert plan.reason == 'Do Not Disturb'
        assert_voicemail(after_failure(snap, Context('acme', '46').encode(), outcome, NOW), '46',
                         (div('46', 'do-not-disturb'),))


# Call classes and outside-call limits --------------------------------------------------------

def _patched(directory, patches):
    both = dict(RUNTIME_ONLY)
    both.update(patches)
    return load_snapshot(directory, patches=both)


@pytest.mark.parametrize('number, reason', [
    ('0900 1234567', 'Premium-rate calls not permitted'),        # national premium rate
    ('0137 1234567', 'Premium-rate calls not permitted'),        # mass calls (televoting)
    ('00870 123456789', 'Satellite calls not permitted'),        # Inmarsat
    ('00881 612345678', 'Satellite calls not permitted'),        # Iridium
    ('00979 12345678', 'Premium-rate calls not permitted'),      # international premium rate
])
def test_premium_and_satellite_numbers_need_their_permission(directory, snap, number, reason):
    # Max (10) may call abroad, but neither he nor acme may call premium-rate or satellite numbers.
    plan = assert_reject(call(snap, 'max.muster', number), 403)
    assert plan.reason == reason
    allowed = _patched(directory, {('acme', TENANT, 'acme'): {'premium_calls': True, 'satellite_calls': True},
                                   ('acme', EXTENSION, '10'): {'premium_calls': True, 'satellite_calls': True}})
    plan = call(allowed, 'max.muster', number)
    assert isinstance(plan, Relay) and plan.charge == ('acme', '10'), plan
    only_extension = _patched(directory, {('acme', EXTENSION, '10'): {'premium_calls': True, 'satellite_calls': True}})
    assert assert_reject(call(only_extension, 'max.muster', number), 403).reason == reason


def test_a_national_call_needs_no_permission(snap):
    plan = call(snap, 'erika.desk', '040 123456')
    assert isinstance(plan, Relay) and plan.charge == ('acme', '11')


def test_an_emergency_only_extension_reaches_colleagues_and_110_and_nothing_outside(directory):
    emergency_only = _patched(directory, {('acme', EXTENSION, '10'): {'emergency_only': True}})
    assert assert_reject(call(emergency_only, 'max.muster', '040 123456'), 403).reason == 'Outside calls not permitted'
    assert_reject(call(emergency_only, 'max.muster', B_MAIN), 403)            # another tenant's number
    assert isinstance(call(emergency_only, 'max.muster', '13'), Ring)
    plan = call(emergency_only, 'max.muster', '110')
    assert isinstance(plan, Relay) and plan.uri == trunk_uri('110') and plan.charge is None  # never limited


def test_a_forward_abroad_of_an_extension_without_the_permission_does_not_go_out(snap):
    # Hans (45) may not call abroad; his forward to SWISS (stored before the rule) is not followed:
    # whatever path leads out, the outside leg is checked against the forwarding party.
    plan = call(snap, 'max.muster', '45')
    assert isinstance(plan, Ring) and plan.aors == aors('hans.desk'), plan


def test_outside_legs_are_charged_to_whoever_pays_for_them(snap):
    assert call(snap, 'max.muster', '040 123456').charge == ('acme', '10')
    forward = call(snap, 'max.muster', '14')                                  # 14 forwards to OUTSIDE
    assert isinstance(forward, Relay) and forward.charge == ('acme', '14')
    assert call(snap, 'max.muster', '112').charge is None


def test_outside_call_limits_are_the_ones_set_on_tenant_and_extension(directory, snap):
    assert routing.outside_call_limits(snap, ('acme', '10')) == []
    limited = _patched(directory, {('acme', TENANT, 'acme'): {'max_outside_calls': 30},
                                   ('acme', EXTENSION, '10'): {'max_outside_calls': 2, 'max_outside_calls_per_minute': 5}})
    tenant, extension = routing.outside_call_limits(limited, ('acme', '10'))
    assert (tenant.profile, tenant.key, tenant.concurrent, tenant.per_minute) == ('vx_out_tenant', 'acme', 30, None)
    assert (extension.profile, extension.key, extension.concurrent, extension.per_minute) == \
        ('vx_out_ext', 'acme/10', 2, 5)
    assert [lim.key for lim in routing.outside_call_limits(limited, ('acme', '50'))] == ['acme']   # a group: tenant only
    assert extension.refusal(1, 4) is None
    assert assert_reject(extension.refusal(2, 0), 403).reason == \
        'Outside call limit reached: 2 calls at once for extension 10'
    assert assert_reject(extension.refusal(0, 5), 403).reason == \
        'Outside call limit reached: 5 calls a minute for extension 10'


@pytest.mark.parametrize('uri, port', [
    ('sip:max@10.0.0.5:5070', 5070), ('sip:max@10.0.0.5', 5060), ('sips:max@10.0.0.5', 5061),
    ('sip:max@[2001:db8::1]:5080;transport=tcp', 5080), ('sip:[2001:db8::1]', 5060),
])
def test_uri_port(uri, port):
    assert routing.uri_port(uri) == port


def test_server_addresses_name_this_server_like_kamailios_is_myself():
    own = routing.ServerAddresses(['192.0.2.1:5060', '[2001:db8::1]:5061', '203.0.113.9:5060', 'pbx.example.com'])
    assert own.names('sip:max@192.0.2.1:5060') and own.names('sip:192.0.2.1')   # default port 5060
    assert not own.names('sip:max@192.0.2.1:5070')      # a phone on the same host, another port
    assert own.names('sips:x@[2001:DB8::1]') and not own.names('sip:x@[2001:db8::1]')
    assert own.names('sip:x@PBX.example.com:5999')      # an alias without a port: every port
    assert not own.names('sip:x@192.0.2.2:5060')


# Remembered decisions (routing.Decisions, what the adapter asks) ------------------------------

def test_decisions_are_the_cores_legs_remembered_per_snapshot(snap, directory):
    decisions = routing.Decisions()
    first = decisions.inbound(snap, PORT_PAST, ECOTEL[0], NOW)
    assert [repr(leg) for leg in first] == [repr(leg) for leg in routing.legs(
        snap, route_inbound(snap, PORT_PAST, ECOTEL[0], NOW), NOW)]
    assert decisions.inbound(snap, PORT_PAST, ECOTEL[0], NOW + 30) is first          # asked again: remembered
    assert decisions.inbound(snap, PORT_PAST, ECOTEL[1], NOW) is not first           # another source: its own
    calls = decisions.from_account(snap, DOMAIN, ANNA[0], '11', NOW)
    assert [repr(leg) for leg in calls] == [repr(leg) for leg in routing.legs(
        snap, route_from_account(snap, DOMAIN, ANNA[0], '11', NOW), NOW)]
    assert decisions.from_account(snap, DOMAIN, ANNA[0], '11', NOW) is calls
    # A feature code's PhoneSetting is handed back as it is (the adapter writes it every time).
    assert isinstance(decisions.from_account(snap, DOMAIN, ANNA[0], '*78', NOW), PhoneSetting)
    # Another snapshot (any directory change): everything is decided afresh.
    other = load_snapshot(directory)
    assert decisions.inbound(other, PORT_PAST, ECOTEL[0], NOW) is not first


def test_remembered_decisions_change_when_a_porting_number_activates(snap):
    decisions = routing.Decisions()
    assert snap.stable_period(ACTIVATION - 1)[1] == ACTIVATION
    assert snap.stable_period(ACTIVATION)[0] == ACTIVATION
    before = decisions.inbound(snap, PORT_FUTURE, ECOTEL[0], ACTIVATION - 1)
    assert [leg.plan.code for leg in before] == [404]
    after = decisions.inbound(snap, PORT_FUTURE, ECOTEL[0], ACTIVATION)
    assert isinstance(after[0].plan, Ring) and after[0].plan.aors == tuple('%s@%s' % (a, DOMAIN) for a in ANNA)
    assert after[0].plan.uris == tuple('sip:%s@%s' % (a, DOMAIN) for a in ANNA)
    # A clock that steps back before the activation is decided as before it.
    assert [leg.plan.code for leg in decisions.inbound(snap, PORT_FUTURE, ECOTEL[0], ACTIVATION - 60)] == [404]


def test_remembered_decisions_are_bounded(snap, monkeypatch):
    monkeypatch.setattr(routing.Decisions, 'LIMIT', 3)
    decisions = routing.Decisions()
    for ddi in ('10', '11', '12', '13', '14'):
        decisions.inbound(snap, BLOCK + ddi, ECOTEL[0], NOW)
        assert len(decisions.known) <= 3


def test_remembered_credentials_follow_the_snapshot(snap, directory):
    decisions = routing.Decisions()
    first = decisions.credentials(snap, DOMAIN, ANNA[0])
    assert first == registrar_credentials(snap, DOMAIN, ANNA[0]) and first[1]
    assert decisions.credentials(snap, DOMAIN, ANNA[0]) is first
    assert decisions.credentials(snap, DOMAIN, 'nobody')[1] is None
    assert isinstance(decisions.credentials(snap, 'unknown.example', ANNA[0]), Reject)
    assert decisions.credentials(load_snapshot(directory), DOMAIN, ANNA[0]) is not first


# Speed dials (Kurzwahl) -------------------------------------------------------------------------

def test_a_speed_dial_is_dialled_as_its_number(snap):
    assert_ring(call(snap, 'paul.desk', '**1'), ANNA, target='13')
    assert [repr(leg) for leg in routing.legs(snap, call(snap, 'paul.desk', '**22'), NOW)] == \
        [repr(leg) for leg in routing.legs(snap, call(snap, 'paul.desk', '+4940123456'), NOW)]
    assert isinstance(call(snap, 'paul.desk', '**22#'), Relay)
    group = call(snap, 'paul.desk', '**5')
    assert isinstance(group, Ring) and Context.decode(group.context).target == '50'


@pytest.mark.parametrize('dialled, code', [('**9', 404), ('**', 404), ('**123', 404), ('**78', 404)])
def test_an_unknown_speed_dial_is_refused(snap, dialled, code):
    assert_reject(call(snap, 'paul.desk', dialled), code)
    assert_reject(call(snap, 'max.muster', '**1'), 404)       # speed dials are the extension's own


# A main number or emergency caller ID the tenant does not hold yet ------------------------------
# The modules accept one that no tenant holds yet (a playbook creates the tenant first, its numbers
# later); the router presents it only once it is a number of the tenant, and acts as without it
# until then (docs/routing.md, "Caller identity").

N_DOMAIN = 'nordwind.voxplane.example'
N_BLOCK = '+4940555010'           # the head number (the main number) of the block 00-99
N_ECID = N_BLOCK + '99'
N_OWN = '+4940777001'             # extension 11's own number
N_TRUNK = '192.0.2.40'


@pytest.fixture
def pending(tmp_path):
    """nordwind, written one object at a time before its block exists: main number and the
    location's emergency caller ID name block numbers; (harness, snapshot maker)."""
    harness = Harness(tmp_path / 'directory.db')
    result = harness.apply('nordwind', tenant_request(
        domain=N_DOMAIN, smart=6, best=0, main_number=N_BLOCK, locations=[dict(HQ, emergency_caller_id=N_ECID)],
        trunks=[{'name': 'carrier', 'addresses': [N_TRUNK]}]))
    assert sorted(w.field for w in result.warnings) == ['locations[0].emergency_caller_id', 'main_number']
    harness.apply('nordwind', None, {
        NUMBER: {N_OWN: {}},
        EXTENSION: {
            '10': _ext('nord0.desk', 'Main', outbound_caller_id='main', location='hq'),
            '11': _ext('nord1.desk', 'Own', external_numbers=[N_OWN], location='hq'),
            '12': _ext('nord2.desk', 'Nothing'),
            '13': _ext('nord3.desk', 'Forward', forwarding={'unconditional': OUTSIDE}),
            '14': _ext('nord4.desk', 'Mobile', mobile='+491701400014', single_number_reach=True),
        }})
    return harness, lambda: load_snapshot(harness, patches={})


def test_a_main_number_not_yet_held_is_not_presented(pending):
    harness, snapshot_of = pending
    snap = snapshot_of()
    tenant = snap.tenants['nordwind']
    assert tenant.main_number is None and tenant.locations['hq']['emergency_caller_id'] is None
    out = trunk_uri('+4930555123', N_TRUNK)
    # outside calls of extensions that would present it: as without a main number (anonymous)
    for user in ('nord0.desk', 'nord2.desk'):
        assert_relay(call(snap, user, '030555123', domain=N_DOMAIN), out, ANONYMOUS_URI, privacy=True)
    assert_relay(call(snap, 'nord1.desk', '030555123', domain=N_DOMAIN), out, sip(N_OWN, N_DOMAIN))
    # forwards and the mobile present no main number either
    forward = call(snap, 'nord2.desk', '13', domain=N_DOMAIN)
    assert_relay(forward, trunk_uri(OUTSIDE, N_TRUNK), ANONYMOUS_URI)
    assert call(snap, 'nord2.desk', '14', domain=N_DOMAIN).mobile.identity == ANONYMOUS_URI
    # emergency: the location's caller ID, else the main number, else the caller's own number, else
    # no number of ours (the carrier presents the trunk's default number); never Privacy
    assert_relay(call(snap, 'nord1.desk', '112', domain=N_DOMAIN), trunk_uri('112', N_TRUNK), sip(N_OWN, N_DOMAIN))
    assert_relay(call(snap, 'nord0.desk', '112', domain=N_DOMAIN), trunk_uri('112', N_TRUNK), ANONYMOUS_URI)


def test_the_main_number_is_presented_once_the_tenant_holds_it(pending):
    harness, snapshot_of = pending
    harness.apply('nordwind', None, {NUMBER: {N_BLOCK: block(ddi_range='00-99')}})
    snap = snapshot_of()
    out = trunk_uri('+4930555123', N_TRUNK)
    assert_relay(call(snap, 'nord0.desk', '030555123', domain=N_DOMAIN), out, sip(N_BLOCK, N_DOMAIN))
    # (12 has a number of its own now: its DDI in the block)
    assert_relay(call(snap, 'nord2.desk', '030555123', domain=N_DOMAIN), out, sip(N_BLOCK + '12', N_DOMAIN))
    assert_relay(call(snap, 'nord2.desk', '13', domain=N_DOMAIN), trunk_uri(OUTSIDE, N_TRUNK), sip(N_BLOCK, N_DOMAIN))
    assert call(snap, 'nord2.desk', '14', domain=N_DOMAIN).mobile.identity == sip(N_BLOCK, N_DOMAIN)
    for user in ('nord0.desk', 'nord1.desk'):
        assert_relay(call(snap, user, '112', domain=N_DOMAIN), trunk_uri('112', N_TRUNK), sip(N_ECID, N_DOMAIN))


def test_an_emergency_caller_id_not_yet_held_falls_back_to_the_main_number(pending):
    harness, snapshot_of = pending
    harness.apply('nordwind', {'locations': [dict(HQ, emergency_caller_id='+4940555011099')]},
                  {NUMBER: {N_BLOCK: block(ddi_range='00-99')}})
    snap = snapshot_of()
    assert_relay(call(snap, 'nord1.desk', '112', domain=N_DOMAIN), trunk_uri('112', N_TRUNK), sip(N_BLOCK, N_DOMAIN))


# Forwarded calls show the original caller (From) and the forwarding tenant's number (PAI) ---------------
# routing.original_caller: the caller a leg forwarded out through a trunk shows in From.

CALLING = '+4989555000'


def first_leg(snap, plan, calling=CALLING):
    """(P-Asserted-Identity, From, privacy) of the first leg of ``plan`` as the adapter puts them on
    its branch; a call from the trunk presents ``calling`` (None: anonymous)."""
    leg = next(routing.legs(snap, plan, NOW))
    caller = routing.original_caller(leg.plan, leg.origin, lambda: calling)
    return leg.identity, caller or leg.identity, routing.forwarded_privacy(leg.privacy, caller)


def test_the_first_plan_knows_the_original_caller(snap):
    assert call(snap, 'max.muster', '14').origin == sip('+4930123410')          # its own number
    assert call(snap, 'mia.desk', '13').origin == sip(MAIN)                     # outbound caller id: main
    assert call(snap, 'sina.desk', '13').origin == sip(SINGLE)                  # a chosen number
    assert call(snap, 'anton.desk', '13').origin == ANONYMOUS_URI
    assert route_inbound(snap, '+4930123414', ECOTEL[0], NOW).origin == routing.CALLING_NUMBER
    # on-net, by number: the same outside identity
    assert call(snap, 'max.muster', '030123414').origin == sip('+4930123410')


@pytest.mark.parametrize('plan_of, expected', [
    # a trunk caller: its calling number in the forwarding tenant's domain; anonymous with Privacy
    (lambda snap: route_inbound(snap, '+4930123414', ECOTEL[0], NOW), (sip(MAIN), sip(CALLING), False)),
    # an account: exactly what it presents on a direct outside call
    (lambda snap: call(snap, 'max.muster', '14'), (sip(MAIN), sip('+4930123410'), False)),
    (lambda snap: call(snap, 'anton.desk', '14'), (sip(MAIN), ANONYMOUS_URI, True)),
    # a group's fallback to an outside number
    (lambda snap: call(snap, 'max.muster', '54'), (sip(MAIN), sip('+4930123410'), False)),
])
def test_a_forward_out_shows_the_original_caller_in_from(snap, plan_of, expected):
    assert first_leg(snap, plan_of(snap)) == expected


def test_an_anonymous_trunk_caller_stays_anonymous(snap):
    assert first_leg(snap, route_inbound(snap, '+4930123414', ECOTEL[0], NOW), None) == (sip(MAIN), ANONYMOUS_URI, True)


def test_a_forward_of_the_failure_route_keeps_the_original_caller(snap):
    # 11 does not answer an inbound call; its no-answer forward leaves through the trunk
    ring = route_inbound(snap, BLOCK + '41', ECOTEL[0], NOW)
    ringing = next(routing.legs(snap, ring, NOW))
    assert ringing.origin == routing.CALLING_NUMBER and ringing.identity is None
    before = {'identity': ringing.identity, 'privacy': ringing.privacy, 'diversion': ringing.diversion,
              'origin': ringing.origin}
    leg = next(routing.legs(snap, after_failure(snap, ring.context, 'no_answer', NOW), NOW, before))
    assert leg.plan.forwarded_by == DOMAIN and leg.identity == sip(MAIN)
    assert routing.original_caller(leg.plan, leg.origin, lambda: CALLING) == sip(CALLING)
    # a transaction whose stored headers predate the origin: From shows the identity, as before
    old = dict(before, origin=None)
    leg = next(routing.legs(snap, after_failure(snap, ring.context, 'no_answer', NOW), NOW, old))
    assert routing.original_caller(leg.plan, leg.origin, lambda: CALLING) is None


def test_only_legs_forwarded_out_show_the_original_caller(snap):
    # an outside call, voicemail, a forward to a colleague, an emergency call: From is the identity
    for plan in (call(snap, 'max.muster', '040 123456'), call(snap, 'max.muster', '112'),
                 call(snap, 'max.muster', '16')):
        leg = next(routing.legs(snap, plan, NOW))
        assert getattr(leg.plan, 'forwarded_by', None) is None
    # the mobile of single number reach is forwarded out by its tenant
    assert call(snap, 'max.muster', '70').mobile.forwarded_by == DOMAIN


@pytest.mark.parametrize('user, source, privacy, expected', [
    ('+4989555000', ECOTEL[0], None, '+4989555000'),
    ('%2B4989555000', ECOTEL[0], None, '+4989555000'),
    ('089555000', ECOTEL[0], None, '+4989555000'),               # national in acme's dial plan
    ('004989555000', ECOTEL[0], None, '+4989555000'),
    ('01555123', B_TRUNK_V4, None, '+431555123'),                # national in beta's (Austrian) dial plan
    ('4989555000', EXTRA_TRUSTED, None, '+4989555000'),          # no tenant's trunk: international without '+'
    ('anonymous', ECOTEL[0], None, None),
    ('', ECOTEL[0], None, None),
    ('+4989555000', ECOTEL[0], 'id', None),
    ('+4989555000', ECOTEL[0], 'header; user', None),
    ('+4989555000', ECOTEL[0], 'none', '+4989555000'),
    ('%zz', ECOTEL[0], None, None),
])
def test_the_calling_number_of_a_trunk_call(snap, user, source, privacy, expected):
    assert routing.calling_number(snap, user, source, privacy) == expected
