# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The adapter's part of the call features (docs/routing.md): feature codes (the one write
path, and the shared generation that makes every worker reload), voicemail (the media server
as next hop), single number reach (the mobile as one more branch with its own headers) and
603 as busy. Driven through the KSR double over a real SQLite directory (kemi_directory.py);
tests that write use a directory of their own."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

import directory_helpers
import kemi_directory
from kemi_directory import BLOCK, DOMAIN, ECOTEL, MEDIA_SERVER, MOBILE_45, OUTSIDE, SINGLE
from test_kemi_adapter import (
    ANONYMOUS, BRANCH_ROUTE, FAILURE_ROUTE, GENERATION_SQL, calls, errors, failure, from_account, inbound, index,
    register_gamma, registered, relayed, replies, sip, trunk_uri,
)

SHV = 'vx_generation'
MAX_INTERNAL = '"Max Mustermann" %s' % sip('10')


class SharedMemory(object):
    """$shv(...) of one Kamailio instance: shared by the doubles of several workers."""

    def __init__(self, *doubles):
        self.values = {SHV: 0}                 # cfg: modparam("pv", "shvset", "vx_generation=i:0")
        for double in doubles:
            self.attach(double)

    def attach(self, double):
        double.returns['pvx.shv_get'] = self.values.get
        double.returns['pvx.shv_seti'] = self._seti
        return double

    def _seti(self, name, value):
        self.values[name] = value
        return 1


class Location(object):
    """usrloc and the destination set as Kamailio keeps them, for the branches a relay makes:
    lookup_uri rewrites the request URI and sets its next hop ($du) from the contact's received
    address; lookup_to_dset adds a branch with the contact's own next hop; corex's
    append_branch_uri adds a branch that takes the request's current next hop (dst_uri, and
    path, socket, flags: corex_append_branch); t_relay sends the request URI branch and the
    added ones."""

    def __init__(self, ksr, contacts):
        self.ksr = ksr
        self.contacts = contacts               # AOR uri -> (contact uri, received uri or None)
        self.branches = []
        self.relayed = None
        for name, function in (('registrar.lookup_uri', self.lookup_uri),
                               ('registrar.lookup_to_dset', self.lookup_to_dset),
                               ('corex.append_branch_uri', self.append_branch_uri),
                               ('resetdsturi', self.resetdsturi), ('setdsturi', self.setdsturi),
                               ('tm.t_relay', self.t_relay)):
            ksr.returns[name] = function

    def lookup_uri(self, _table, aor):
        if aor not in self.contacts:
            return -1
        contact, received = self.contacts[aor]
        self.ksr.pv['$ru'] = contact
        if received:
            self.ksr.pv['$du'] = received
        return 1

    def lookup_to_dset(self, _table, aor):
        if aor not in self.contacts:
            return -1
        self.branches.append(self.contacts[aor])
        return 1

    def append_branch_uri(self, uri):
        self.branches.append((uri, self.ksr.pv.get('$du')))
        return 1

    def resetdsturi(self):
        self.ksr.pv.pop('$du', None)
        return True

    def setdsturi(self, uri):
        self.ksr.pv['$du'] = uri
        return True

    def t_relay(self):
        self.relayed = [(self.ksr.pv.get('$ru'), self.ksr.pv.get('$du'))] + self.branches
        return 1


def branch_headers(router, ksr, uri):
    """The headers the branch route puts on the branch whose request URI is ``uri``."""
    ksr.reset()
    ksr.pv['$ru'] = uri
    assert router.ksr_branch_route_one(None) == 1
    assert errors(ksr) == []
    return [args[0] for args in ksr.called('hdr.append')]


def pai(identity):
    return 'P-Asserted-Identity: %s\r\n' % identity


def diversion(number, reason):
    return 'Diversion: %s;reason=%s\r\n' % (sip(number), reason)


def media(number, reason):
    """The media service's instructions on a leg to a mailbox (docs/media.md)."""
    return 'X-Voxplane-Media: voicemail;mailbox=%s;reason=%s\r\n' % (number, reason)


PRIVACY = 'Privacy: id\r\n'


def next_request(double):
    """A new request on a worker: no calls, no pv values; scripted returns (shv) stay."""
    double.reset()
    double.pv.clear()


def ext_field(harness, number, field):
    return harness.load('acme').get('extension', number)[field]


# Feature codes ------------------------------------------------------------------------------

@pytest.fixture
def worker(request, fresh, tmp_path, backend):
    """A worker of its own over a directory of its own, on each backend: (router, double, harness,
    shared memory); the loaded script is ``router.script``."""
    harness = kemi_directory.build(directory_helpers.harness(request, tmp_path, backend).path)
    module, double, _clock = fresh(harness.path)
    shm = SharedMemory(double)
    router = module.mod_init()
    router.script = module
    assert router.view.current() is not None
    double.reset()
    return router, double, harness, shm


def test_a_feature_code_writes_answers_and_publishes_the_generation(worker):
    router, double, harness, shm = worker
    generation = harness.generation()
    from_account(double, 'max.muster', '*78')
    assert router.ksr_request_route(None) == 1
    assert replies(double) == [(603, 'Do Not Disturb On')]
    assert harness.generation() == generation + 1 and ext_field(harness, '10', 'dnd') is True
    assert double.called('pvx.shv_seti') == [(SHV, generation + 1)] and shm.values[SHV] == generation + 1
    # answered at once: nothing rings, no transaction is set up
    for name in ('tm.t_relay', 'rr.record_route', 'tm.t_on_failure', 'tm.t_on_branch', 'tm.t_reply'):
        assert double.called(name) == [], name
    assert double.called('auth.consume_credentials') == [()]     # authenticated like any call
    infos = [m for level, m in double.logs if level == 'info']
    assert len(infos) == 1 and 'acme/10' in infos[0] and '603 Do Not Disturb On' in infos[0]
    assert errors(double) == []


@pytest.mark.parametrize('dialled, done, field, value', [
    ('*7213', 'Forward All Calls To 13', 'forwarding', {'unconditional': '13', 'busy': '12', 'no_answer': '13',
                                                        'unregistered': None}),
    ('*91#', 'Forward When Busy Off', 'forwarding', {'unconditional': None, 'busy': None, 'no_answer': '13',
                                                     'unregistered': None}),
])
def test_forwarding_codes_write_through_the_adapter(worker, dialled, done, field, value):
    router, double, harness, _shm = worker
    from_account(double, 'max.app', dialled)
    router.ksr_request_route(None)
    assert replies(double) == [(603, done)]
    assert ext_field(harness, '10', field) == value
    assert double.called('pvx.shv_seti') == [(SHV, harness.generation())]


def test_a_refused_feature_code_writes_and_publishes_nothing(worker):
    router, double, harness, _shm = worker
    generation = harness.generation()
    from_account(double, 'max.muster', '*7299')
    router.ksr_request_route(None)
    (code, reason), = replies(double)
    assert code == 404 and reason.startswith('forwarding.unconditional: ') and reason.endswith('[reference]')
    assert harness.generation() == generation and double.called('pvx.shv_seti') == []
    assert double.called('tm.t_relay') == []


def test_an_unchanged_setting_is_answered_without_publishing(worker):
    router, double, harness, _shm = worker
    generation = harness.generation()
    from_account(double, 'max.muster', '*79')              # DND is off already
    router.ksr_request_route(None)
    assert replies(double) == [(603, 'Do Not Disturb Off')]
    assert harness.generation() == generation and double.called('pvx.shv_seti') == []


@pytest.mark.parametrize('dialled, code', [('*77', 404), ('*72', 484), ('*781', 484)])
def test_a_malformed_feature_code_is_answered_by_the_core_without_writing(worker, dialled, code):
    router, double, harness, _shm = worker
    generation = harness.generation()
    from_account(double, 'max.muster', dialled)
    router.ksr_request_route(None)
    assert [c for c, _r in replies(double)] == [code]
    assert harness.generation() == generation and double.called('pvx.shv_seti') == []


@pytest.mark.parametrize('dialled', ['*78%23', '*78#'])
def test_a_feature_code_with_an_escaped_or_a_raw_hash_switches_dnd_on(worker, dialled):
    # Issue 13: phones escape the dialled '#' in the Request-URI ($rU is 'sip:*78%23@...' raw).
    router, double, harness, _shm = worker
    from_account(double, 'max.muster', dialled)
    router.ksr_request_route(None)
    assert replies(double) == [(603, 'Do Not Disturb On')]
    assert ext_field(harness, '10', 'dnd') is True


def test_an_escaped_forward_number_is_stored_unescaped(worker):
    router, double, harness, _shm = worker
    from_account(double, 'max.muster', '*72%2B4940123456%23')
    router.ksr_request_route(None)
    assert replies(double) == [(603, 'Forward All Calls To +4940123456')]
    assert ext_field(harness, '10', 'forwarding')['unconditional'] == '+4940123456'


def test_a_feature_code_while_a_playbook_holds_the_write_lock_is_503(worker, monkeypatch):
    router, double, harness, _shm = worker
    monkeypatch.setattr(router.script, '_SETTING_BUSY_TIMEOUT_MS', 50)     # not the 2 s of production
    with harness.directory.transaction():                                   # a playbook writing
        from_account(double, 'max.muster', '*78')
        router.ksr_request_route(None)
    (code, reason), = replies(double)
    assert code == 503 and reason.startswith('Directory unavailable')
    assert errors(double) == [] and double.called('pvx.shv_seti') == []
    assert ext_field(harness, '10', 'dnd') is False


def test_the_next_call_on_another_worker_routes_with_the_feature_code(fresh, tmp_path):
    harness = kemi_directory.build(tmp_path / 'directory.db')
    (module_a, a, _clock_a), (module_b, b, _clock_b) = fresh(harness.path), fresh(harness.path)
    shm = SharedMemory(a, b)
    router_a, router_b = module_a.mod_init(), module_b.mod_init()
    for router, double in ((router_a, a), (router_b, b)):
        next_request(double)
        inbound(double, SINGLE)
        router.ksr_request_route(None)
        assert double.called('tm.t_relay') == [()]         # 10 rings on both workers
    generation = harness.generation()
    # a playbook's change is seen at the next poll only: within the interval B still rings
    harness.apply('acme', None, {'extension': {'41': {'name': 'Niemand Neu'}}})
    next_request(b)
    inbound(b, SINGLE)
    router_b.ksr_request_route(None)
    assert b.called('tm.t_relay') == [()] and module_b.VIEW.generation == generation
    # the phone of 10 dials *78 on worker A
    next_request(a)
    from_account(a, 'max.muster', '*78')
    router_a.ksr_request_route(None)
    assert replies(a) == [(603, 'Do Not Disturb On')]
    assert shm.values[SHV] == generation + 2 == harness.generation()
    # B's clock has not moved, yet the very next call routes with DND
    next_request(b)
    inbound(b, SINGLE)
    router_b.ksr_request_route(None)
    assert replies(b) == [(486, 'Do Not Disturb')] and b.called('tm.t_relay') == []
    assert module_b.VIEW.generation == generation + 2
    # and A itself
    next_request(a)
    inbound(a, SINGLE)
    router_a.ksr_request_route(None)
    assert replies(a) == [(486, 'Do Not Disturb')]


def test_a_newer_shared_generation_reloads_before_the_poll_interval_without_sql_otherwise(fresh, tmp_path, traced_sql):
    harness = kemi_directory.build(tmp_path / 'directory.db')
    module, double, _clock = fresh(harness.path)
    shm = SharedMemory(double)
    router = module.mod_init()
    register_gamma(double, router)
    assert double.called('sl.sl_send_reply') == [(403, 'Unknown domain')]
    harness.apply('gamma', *kemi_directory.gamma())                       # generation 3
    shm.values[SHV] = 2                                                   # not newer: the poll decides
    del traced_sql[:]
    register_gamma(double, router)
    assert double.called('sl.sl_send_reply') == [(403, 'Unknown domain')] and traced_sql == []
    shm.values[SHV] = 3                                                   # another worker committed 3
    register_gamma(double, router)
    assert double.called('auth.auth_challenge') == [('gamma.voxplane.example', 1)]
    assert traced_sql[0] == GENERATION_SQL and module.VIEW.generation == 3
    del traced_sql[:]
    register_gamma(double, router)                                        # caught up: no SQL again
    assert traced_sql == [] and double.called('auth.auth_challenge') == [('gamma.voxplane.example', 1)]


# Voicemail: the media server as next hop ------------------------------------------------------------

def test_voicemail_at_call_time_is_relayed_to_the_media_server(router, ksr):
    from_account(ksr, 'max.muster', '47')                  # 47: DND and voicemail
    router.ksr_request_route(None)
    assert ksr.pv['$ru'] == 'sip:47@' + DOMAIN
    assert ksr.called('setdsturi') == [(MEDIA_SERVER,)]
    assert ksr.called('resetdsturi') == []                 # the request route's first step: nothing to reset
    assert index(ksr, 'setdsturi') < index(ksr, 'tm.t_relay')
    # The mailbox rings for the core's OUTSIDE_RING_TIME, set before the relay.
    assert ksr.called('tm.t_set_fr') == [(30000, 0)] and '$avp(vx_ctx)' not in ksr.pv
    assert index(ksr, 'tm.t_set_fr') < index(ksr, 'tm.t_relay')
    relayed(router, ksr)
    assert [a[0] for a in ksr.called('hdr.append')] == [pai(MAX_INTERNAL), diversion('47', 'do-not-disturb'),
                                                        media('47', 'do-not-disturb')]


def test_voicemail_after_busy_keeps_the_callers_identity_and_adds_its_diversion(router, ksr):
    from_account(ksr, 'max.muster', '44')
    registered(ksr, 'vera.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('setdsturi') == []
    ksr.reset()
    failure(ksr, ksr.pv['$avp(vx_ctx)'], code=486)
    router.ksr_failure_route_call(None)
    assert ksr.pv['$ru'] == 'sip:44@' + DOMAIN and ksr.called('setdsturi') == [(MEDIA_SERVER,)]
    # the failed branch's next hop is reset before the media server's is set
    assert index(ksr, 'resetdsturi') < index(ksr, 'setdsturi') < index(ksr, 'tm.t_relay')
    assert ksr.called('tm.t_on_failure') == [(FAILURE_ROUTE,)] and ksr.pv['$avp(vx_ctx)'] == ''
    relayed(router, ksr)
    assert [a[0] for a in ksr.called('hdr.append')] == [pai(MAX_INTERNAL), diversion('44', 'user-busy'),
                                                        media('44', 'user-busy')]


FORGED_MEDIA = 'mailbox;mailbox=99;pin=no'  # what a caller might send to open another mailbox without its PIN


def test_a_callers_own_media_header_goes_on_no_branch_to_a_phone(router, ksr):
    # A contact's Path may lead to the media service, which trusts every INVITE Kamailio sends.
    from_account(ksr, 'max.muster', '44')
    registered(ksr, 'vera.desk')
    ksr.pv['$hdr(X-Voxplane-Media)'] = FORGED_MEDIA
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('hdr.remove').count(('X-Voxplane-Media',)) == 1
    assert not [a for a in ksr.called('hdr.append') if a[0].startswith('X-Voxplane-Media')]


def test_a_callers_own_media_header_is_replaced_by_the_routers_on_the_leg_to_the_media_service(router, ksr):
    from_account(ksr, 'max.muster', '44')
    registered(ksr, 'vera.desk')
    ksr.pv['$hdr(X-Voxplane-Media)'] = FORGED_MEDIA
    router.ksr_request_route(None)
    relayed(router, ksr)
    ksr.reset()
    failure(ksr, ksr.pv['$avp(vx_ctx)'], code=486)
    router.ksr_failure_route_call(None)
    relayed(router, ksr)
    # removed once (a second removal of the same header would overlap in Kamailio's lumps), then the router's
    assert ksr.called('hdr.remove').count(('X-Voxplane-Media',)) == 1
    assert [a[0] for a in ksr.called('hdr.append') if a[0].startswith('X-Voxplane-Media')] == [media('44', 'user-busy')]


def test_voicemail_when_nobody_is_registered(router, ksr):
    inbound(ksr, BLOCK + '44')
    registered(ksr)
    router.ksr_request_route(None)
    assert ksr.pv['$ru'] == 'sip:44@' + DOMAIN and ksr.called('setdsturi') == [(MEDIA_SERVER,)]
    relayed(router, ksr)
    assert [a[0] for a in ksr.called('hdr.append')] == [diversion('44', 'unavailable'), media('44', 'unavailable')]


def test_each_plan_starts_from_a_clean_next_hop(router, ksr):
    # a failure route's request still has the failed branch's next hop: a forward to the trunk
    # must not be sent there
    loc = Location(ksr, {})
    failure(ksr, 'acme|11|0|0|acme/11', code=408, timeout=True)
    ksr.pv['$du'] = 'sip:198.51.100.11:40000'
    router.ksr_failure_route_call(None)
    assert loc.relayed == [(trunk_uri(OUTSIDE), None)]
    # a voicemail relay's next hop is the media server, whatever came before
    ksr.reset()
    failure(ksr, 'acme|44|0|0|acme/44', code=486)
    ksr.pv['$du'] = 'sip:198.51.100.11:40000'
    router.ksr_failure_route_call(None)
    assert loc.relayed == [('sip:44@' + DOMAIN, MEDIA_SERVER)]


# Single number reach: the mobile as one more branch with its own headers ------------------------------

SNR_CONTACT = 'sip:snr@10.0.0.45:5060'
SNR_RECEIVED = 'sip:198.51.100.45:40000'        # the phone behind NAT (nathelper: received)


def test_single_number_reach_rings_phones_and_mobile_each_with_its_own_headers(router, ksr):
    loc = Location(ksr, {'sip:snr.desk@' + DOMAIN: (SNR_CONTACT, SNR_RECEIVED)})
    from_account(ksr, 'max.muster', '45')
    router.ksr_request_route(None)
    assert replies(ksr) == [] and ksr.called('tm.t_on_branch') == [(BRANCH_ROUTE,)]
    assert ksr.called('tm.t_set_fr') == [(20000, 0)] and ksr.pv['$avp(vx_ctx)'] == 'acme|45|0|0|acme/45|'
    # the phone keeps its own next hop; the mobile goes to the trunk, never to the phone's address
    assert sorted(loc.relayed) == sorted([(SNR_CONTACT, SNR_RECEIVED), (trunk_uri(MOBILE_45), None)])
    assert calls(ksr, 'hdr.remove', 'hdr.append') == []
    assert branch_headers(router, ksr, SNR_CONTACT) == [pai(MAX_INTERNAL)]
    assert branch_headers(router, ksr, trunk_uri(MOBILE_45)) == [pai(sip(BLOCK)), diversion('45', 'follow-me')]


def test_single_number_reach_mobile_branch_adds_its_diversion_to_the_history(router, ksr):
    Location(ksr, {'sip:snr.desk@' + DOMAIN: (SNR_CONTACT, None)})
    from_account(ksr, 'anna.desk', '48')                   # 48 -> 45
    router.ksr_request_route(None)
    assert branch_headers(router, ksr, SNR_CONTACT) == [pai(sip('13')), diversion('48', 'unconditional')]
    assert branch_headers(router, ksr, trunk_uri(MOBILE_45)) == [
        pai(sip(BLOCK)), diversion('45', 'follow-me'), diversion('48', 'unconditional')]


def test_single_number_reach_keeps_an_anonymous_callers_privacy_on_both_branches(router, ksr):
    Location(ksr, {'sip:snr.desk@' + DOMAIN: (SNR_CONTACT, None)})
    from_account(ksr, 'erika.desk', BLOCK + '45')          # erika presents no number: on-net, anonymous
    router.ksr_request_route(None)
    assert branch_headers(router, ksr, SNR_CONTACT) == [pai(ANONYMOUS), PRIVACY]
    assert branch_headers(router, ksr, trunk_uri(MOBILE_45)) == [pai(sip(BLOCK)), PRIVACY, diversion('45', 'follow-me')]


def test_inbound_single_number_reach_from_the_trunk(router, ksr):
    loc = Location(ksr, {'sip:snr.desk@' + DOMAIN: (SNR_CONTACT, SNR_RECEIVED)})
    inbound(ksr, BLOCK + '45', source=ECOTEL[0])
    router.ksr_request_route(None)
    assert (trunk_uri(MOBILE_45), None) in loc.relayed
    assert branch_headers(router, ksr, SNR_CONTACT) == []           # the network's caller id is kept
    assert branch_headers(router, ksr, trunk_uri(MOBILE_45)) == [pai(sip(BLOCK)), diversion('45', 'follow-me')]


# An anonymous caller's privacy on every later leg ------------------------------------------------------

def test_an_anonymous_callers_privacy_holds_on_a_forward_of_the_failure_route(router, ksr):
    # anon.desk calls 11 on-net (anonymous); 11 does not answer and forwards to an outside number:
    # that leg presents the tenant's main number, and the caller's Privacy stays
    from_account(ksr, 'anon.desk', BLOCK + '11')
    registered(ksr, 'erika.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert [a[0] for a in ksr.called('hdr.append')] == [pai(ANONYMOUS), PRIVACY]
    ksr.reset()
    failure(ksr, ksr.pv['$avp(vx_ctx)'], code=408, timeout=True)
    router.ksr_failure_route_call(None)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    relayed(router, ksr)
    assert [a[0] for a in ksr.called('hdr.append')] == [pai(sip(BLOCK)), PRIVACY, diversion('11', 'no-answer')]


# 603 from a phone is busy -----------------------------------------------------------------------------

def test_603_from_the_phones_is_busy_and_reaches_voicemail(router, ksr):
    failure(ksr, 'acme|44|0|0|acme/44', code=603)
    router.ksr_failure_route_call(None)
    assert ksr.pv['$ru'] == 'sip:44@' + DOMAIN and ksr.called('setdsturi') == [(MEDIA_SERVER,)]
    relayed(router, ksr)
    assert ksr.called('hdr.append') == [(diversion('44', 'user-busy'),), (media('44', 'user-busy'),)]


# A forwarded call shows the original caller in From, the forwarding tenant's number in P-Asserted-Identity

CARRIER_CALLER = '+4989555000'      # inbound(): the carrier's From user


def from_of(ksr):
    """The From the branch route put on the branch (uac_replace_from), or None."""
    replaced = ksr.called('uac.uac_replace_from')
    assert len(replaced) <= 1, replaced
    return replaced[0] if replaced else None


def forwarded_headers(router, ksr, uri):
    """(From, headers) of the branch to ``uri``."""
    headers = branch_headers(router, ksr, uri)
    return from_of(ksr), headers


@pytest.mark.parametrize('user, privacy, shown', [
    (CARRIER_CALLER, None, ('', 'sip:%s@%s' % (CARRIER_CALLER, DOMAIN))),
    ('089555000', None, ('', 'sip:%s@%s' % (CARRIER_CALLER, DOMAIN))),          # national: acme's dial plan
    ('%2B4989555000', None, ('', 'sip:%s@%s' % (CARRIER_CALLER, DOMAIN))),      # escaped '+'
    ('004989555000', None, ('', 'sip:%s@%s' % (CARRIER_CALLER, DOMAIN))),
    ('anonymous', None, ('"Anonymous"', ANONYMOUS)),
    (CARRIER_CALLER, 'id', ('"Anonymous"', ANONYMOUS)),                          # the caller asked for privacy
    (CARRIER_CALLER, 'none', ('', 'sip:%s@%s' % (CARRIER_CALLER, DOMAIN))),
])
def test_a_trunk_call_forwarded_out_shows_the_calling_number(router, ksr, user, privacy, shown):
    inbound(ksr, BLOCK + '14')                     # 14 forwards every call to OUTSIDE
    ksr.pv['$fU'] = user
    if privacy:
        ksr.pv['$hdr(Privacy)'] = privacy
    router.ksr_request_route(None)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    relayed(router, ksr)
    anonymous = shown[1] == ANONYMOUS
    assert from_of(ksr) == shown
    assert [a[0] for a in ksr.called('hdr.append')] == [pai(sip(BLOCK))] + ([PRIVACY] if anonymous else []) + [
        diversion('14', 'unconditional')]


@pytest.mark.parametrize('user, shown, private', [
    ('max.muster', ('', 'sip:+4930123410@' + DOMAIN), False),     # its own number, as on a direct outside call
    ('anon.desk', ('"Anonymous"', ANONYMOUS), True),              # anonymous outside: anonymous here too
])
def test_an_internal_call_forwarded_out_shows_the_callers_outside_identity(router, ksr, user, shown, private):
    from_account(ksr, user, '14')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert from_of(ksr) == shown
    assert [a[0] for a in ksr.called('hdr.append')] == [pai(sip(BLOCK))] + ([PRIVACY] if private else []) + [
        diversion('14', 'unconditional')]


def test_a_forward_of_the_failure_route_shows_the_original_caller(router, ksr):
    # the carrier's caller rings erika (11), who does not answer: her no-answer forward goes out
    inbound(ksr, BLOCK + '11')
    ksr.pv['$fU'] = '089555000'
    registered(ksr, 'erika.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert from_of(ksr) is None                    # the phone sees the carrier's From as it came
    ksr.reset()
    failure(ksr, ksr.pv['$avp(vx_ctx)'], code=408, timeout=True)
    router.ksr_failure_route_call(None)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    relayed(router, ksr)
    assert from_of(ksr) == ('', 'sip:%s@%s' % (CARRIER_CALLER, DOMAIN))
    assert [a[0] for a in ksr.called('hdr.append')] == [pai(sip(BLOCK)), diversion('11', 'no-answer')]


@pytest.mark.parametrize('call, mobile_from, desk_from', [
    (lambda ksr: inbound(ksr, BLOCK + '45'), ('', 'sip:%s@%s' % (CARRIER_CALLER, DOMAIN)), None),
    (lambda ksr: from_account(ksr, 'max.muster', '45'), ('', 'sip:+4930123410@' + DOMAIN),
     ('"Max Mustermann"', 'sip:10@' + DOMAIN)),
])
def test_the_mobile_of_single_number_reach_shows_the_original_caller(router, ksr, call, mobile_from, desk_from):
    Location(ksr, {'sip:snr.desk@' + DOMAIN: (SNR_CONTACT, None)})
    call(ksr)
    router.ksr_request_route(None)
    assert forwarded_headers(router, ksr, trunk_uri(MOBILE_45)) == (
        mobile_from, [pai(sip(BLOCK)), diversion('45', 'follow-me')])
    # the desk phone's branch: the carrier's From as it came, or the caller's internal identity
    assert forwarded_headers(router, ksr, SNR_CONTACT)[0] == desk_from


def test_the_remembered_decision_shows_each_calls_own_caller(router, ksr):
    # the second call to the number takes the remembered legs; its From is still its own caller's
    shown = []
    for user in (CARRIER_CALLER, '+4940111222', 'anonymous'):
        ksr.reset()
        ksr.pv.clear()
        inbound(ksr, BLOCK + '14')
        ksr.pv['$fU'] = user
        router.ksr_request_route(None)
        relayed(router, ksr)
        shown.append(from_of(ksr)[1])
    assert shown == ['sip:%s@%s' % (CARRIER_CALLER, DOMAIN), 'sip:+4940111222@' + DOMAIN, ANONYMOUS]
    assert len(router.decisions.known) == 1
