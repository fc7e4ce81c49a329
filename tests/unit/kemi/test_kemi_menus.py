# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The adapter's half of issue 22 (docs/media.md, "Menus, queues and conference rooms: the contract"): a
call to a menu, queue or room goes to the media service with X-Voxplane-Media; X-Voxplane-Origin is honoured
only from the media service's addresses (its calls need no credentials) and removed from anyone else's
request, which is then routed as without it; a queue member's ring lets the member's answer go back; the
feature codes *44/*45 write through the one write path. Driven through the KSR double over a real SQLite
directory (the routing tests' tenant: test_routing_menus.build)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from conftest import SOURCE, loaded_script, settings_for
from ksr_double.ksr_double import KSRDouble
from test_kemi_adapter import BRANCH_ROUTE, FAILURE_ROUTE, calls, errors, new_request, registered, replies
from test_routing_menus import DOMAIN, MAIN, MENU, TRUNK, build

MEDIA = 'sip:127.0.0.5:5090'
MEDIA_ADDRESS = '127.0.0.5'
PHONE = '10.0.0.5'
CALLER = '<sip:+4989123456@carrier.example>'


@pytest.fixture(scope='module')
def directory(tmp_path_factory):
    return build(tmp_path_factory.mktemp('kemi-menus') / 'directory.db')


@pytest.fixture(scope='module')
def double():
    return KSRDouble()


@pytest.fixture(scope='module')
def kemi(tmp_path_factory, directory, double):
    settings = dict(settings_for(directory.path), media_service=MEDIA)
    with loaded_script(tmp_path_factory.mktemp('kemi-menus-script'), settings, double) as module:
        yield module


@pytest.fixture
def ksr(double):
    double.reset()
    double.pv.clear()
    double.pv['$si'] = SOURCE
    double.returns.clear()
    yield double
    double.reset()
    double.pv.clear()
    double.returns.clear()


@pytest.fixture
def router(kemi, ksr):
    instance = kemi.mod_init()
    assert instance.view.current() is not None
    instance.guard.forget()
    ksr.reset()
    return instance


def from_media(ksr, user, origin, identity=CALLER, privacy=None, source=MEDIA_ADDRESS):
    """An INVITE the media service places through the router: no credentials, the tenant's domain in the
    Request-URI, the caller in P-Asserted-Identity."""
    new_request(ksr, 'INVITE', si=source, rU=user, rd=DOMAIN, ru='sip:%s@%s' % (user, DOMAIN), fd=DOMAIN,
                fu='sip:+4989123456@carrier.example')
    ksr.pv['$hdr(X-Voxplane-Origin)'] = origin
    ksr.pv['$hdr(X-Voxplane-Call)'] = 'a84b4c76e66710@caller.example'
    ksr.pv['$hdr(P-Asserted-Identity)'] = identity
    if privacy:
        ksr.pv['$hdr(Privacy)'] = privacy


def branch(router, ksr, uri):
    """The header calls of the branch route for the branch to ``uri``."""
    ksr.reset()
    ksr.pv['$ru'] = uri
    assert router.ksr_branch_route_one(None) == 1
    assert errors(ksr) == []
    return calls(ksr, 'hdr.remove', 'hdr.append', 'uac.uac_replace_from')


def test_the_script_knows_the_media_services_address(kemi, router):
    assert router.media_sources == frozenset([MEDIA_ADDRESS])
    assert kemi.media_sources('') == frozenset() and kemi.media_sources(None) == frozenset()
    assert kemi.media_sources('sip:[2001:db8::5]:5090') == frozenset(['2001:db8::5'])
    assert MEDIA_ADDRESS in router.guard.exempt            # its calls are never counted as a flood
    assert router.view.current().media_service == MEDIA


def test_the_first_snapshot_of_a_worker_knows_the_media_service(kemi, ksr):
    instance = kemi.mod_init()
    instance.view.snapshot = None
    instance.view.preload()                               # child_init
    assert instance.view.snapshot.media_service == MEDIA


def test_a_number_to_a_menu_reaches_the_media_service_with_the_header(router, ksr):
    new_request(ksr, 'INVITE', si=TRUNK, rU=MENU, fd='carrier.example', fU='+4989123456')
    assert router.ksr_request_route(None) == 1
    assert ksr.pv['$ru'] == 'sip:700@%s' % DOMAIN and ksr.called('setdsturi') == [(MEDIA,)]
    assert ksr.called('tm.t_relay') == [()] and replies(ksr) == [] and errors(ksr) == []
    headers = branch(router, ksr, 'sip:700@%s' % DOMAIN)
    assert ('hdr.append', ('X-Voxplane-Media: ivr;number=700\r\n',)) in headers
    assert ('hdr.remove', ('X-Voxplane-Media',)) in headers          # whatever the caller sent under that name


@pytest.mark.parametrize('source, kind', [(PHONE, 'a phone'), (TRUNK, 'the trunk')])
def test_the_origin_header_from_anyone_else_is_removed_and_the_call_routed_without_it(router, ksr, source, kind):
    if source == PHONE:
        new_request(ksr, 'INVITE', si=PHONE, rU='11', ru='sip:11@%s' % DOMAIN, adu='sip:11@%s' % DOMAIN, fd=DOMAIN,
                    fU='empfang.desk', au='empfang.desk')
    else:
        new_request(ksr, 'INVITE', si=TRUNK, rU=MAIN, fd='carrier.example', fU='+4989123456')
    ksr.pv['$hdr(X-Voxplane-Origin)'] = 'queue;number=600;to=member'
    ksr.pv['$hdr(X-Voxplane-Call)'] = 'forged'
    registered(ksr, 'anna.desk', domain=DOMAIN)
    router.ksr_request_route(None)
    assert calls(ksr, 'hdr.remove')[:2] == [('hdr.remove', ('X-Voxplane-Origin',)), ('hdr.remove', ('X-Voxplane-Call',))]
    if source == PHONE:  # authenticated and routed to Anna as a plain call: her own ring time, no member ring
        assert ksr.called('auth.pv_auth_check') and ksr.called('tm.t_set_fr') == [(20000, 0)]
        assert not ksr.pv['$avp(vx_ctx)'].split('|')[1].startswith('member:')
    else:                # the trunk's call to the main number: no target there
        assert replies(ksr) == [(404, 'Number has no target')]


def test_a_media_service_call_without_an_origin_is_an_ordinary_request(router, ksr):
    from_media(ksr, '11', None)
    router.ksr_request_route(None)
    assert ksr.called('hdr.remove') == []                     # its own X-Voxplane-Call stays
    assert ksr.called('auth.auth_challenge') == [(DOMAIN, 1)]  # no credentials: challenged like anyone


def test_a_queue_member_rings_its_phones_alone_without_credentials(router, ksr):
    from_media(ksr, '11', 'queue;number=600;to=member')
    registered(ksr, 'anna.desk', 'anna.app', domain=DOMAIN)
    assert router.ksr_request_route(None) == 1
    assert ksr.called('auth.pv_auth_check') == [] and ksr.called('auth.auth_challenge') == []
    assert calls(ksr, 'hdr.remove') == [('hdr.remove', ('X-Voxplane-Origin',))]
    looked_up = [args[1] for args in ksr.called('registrar.lookup_uri') + ksr.called('registrar.lookup_to_dset')]
    assert looked_up == ['sip:anna.desk@%s' % DOMAIN, 'sip:anna.app@%s' % DOMAIN]
    assert ksr.called('tm.t_set_fr') == [(12000, 0)] and ksr.called('tm.t_relay') == [()]
    assert ksr.called('tm.t_on_failure') == [(FAILURE_ROUTE,)] and ksr.called('tm.t_on_branch') == [(BRANCH_ROUTE,)]
    context = ksr.pv['$avp(vx_ctx)']
    assert context.split('|')[1] == 'member:11'
    # the caller's identity is the media service's: no P-Asserted-Identity or From of the router's
    assert [c for c in branch(router, ksr, 'sip:anna.desk@10.0.0.9') if c[0] != 'hdr.remove'] == []
    # the member's phone is busy: the 486 goes back to the media service as it is
    ksr.reset()
    ksr.pv.update({'$avp(vx_ctx)': context, '$T_reply_code': 486, '$ou': 'sip:11@%s' % DOMAIN})
    ksr.returns['tm.t_branch_timeout'] = -1
    ksr.returns['tm.t_is_canceled'] = -1
    assert router.ksr_failure_route_call(None) == 1
    assert replies(ksr) == [] and ksr.called('tm.t_relay') == [] and errors(ksr) == []


@pytest.mark.parametrize('user, origin, reply', [
    ('12', 'queue;number=600;to=member', (486, 'Do Not Disturb')),
    ('10', 'queue;number=600;to=member', (403, 'Not a member of queue 600')),
    ('11', 'queue;number=600', None),
    ('00881612345678', 'ivr;number=700;to=target', (403, 'Satellite calls not permitted')),
])
def test_what_the_router_refuses_the_media_service_is_answered(router, ksr, user, origin, reply):
    from_media(ksr, user, origin)
    router.ksr_request_route(None)
    (code, reason), = replies(ksr)
    assert (code, reason) == reply if reply else code == 400
    assert ksr.called('tm.t_relay') == []


def test_a_menu_choice_of_an_outside_number_leaves_as_a_forward_of_the_tenant(router, ksr):
    from_media(ksr, '0401234567', 'ivr;number=700;to=target', identity='"Caller" <sip:+4989123456@carrier.example>')
    router.ksr_request_route(None)
    assert ksr.pv['$ru'] == 'sip:+49401234567@%s:5060' % TRUNK and ksr.called('tm.t_set_fr') == [(30000, 0)]
    assert errors(ksr) == [] and replies(ksr) == []
    headers = branch(router, ksr, 'sip:+49401234567@%s:5060' % TRUNK)
    assert ('hdr.append', ('P-Asserted-Identity: <sip:%s@%s>\r\n' % (MAIN, DOMAIN),)) in headers   # who pays
    assert ('uac.uac_replace_from', ('', 'sip:+4989123456@%s' % DOMAIN)) in headers                  # who calls


def test_an_anonymous_caller_stays_anonymous_on_a_leg_forwarded_out(router, ksr):
    from_media(ksr, '0401234567', 'queue;number=600;to=target', privacy='id')
    router.ksr_request_route(None)
    headers = branch(router, ksr, 'sip:+49401234567@%s:5060' % TRUNK)
    assert ('uac.uac_replace_from', ('"Anonymous"', 'sip:anonymous@anonymous.invalid')) in headers
    assert ('hdr.append', ('Privacy: id\r\n',)) in headers


def test_a_menu_choice_of_an_extension_follows_its_forwards(router, ksr):
    from_media(ksr, '13', 'ivr;number=700;to=target')      # Cora forwards every call to 10
    registered(ksr, 'empfang.desk', domain=DOMAIN)
    router.ksr_request_route(None)
    assert ksr.called('registrar.lookup_uri') == [('location', 'sip:empfang.desk@%s' % DOMAIN)]
    headers = branch(router, ksr, 'sip:empfang.desk@10.0.0.7')
    assert ('hdr.append', ('Diversion: <sip:13@%s>;reason=unconditional\r\n' % DOMAIN,)) in headers


def test_queue_codes_write_the_queue_through_the_one_write_path(kemi, fresh, tmp_path):
    harness = build(tmp_path / 'directory.db')
    module, double, _clock = fresh(harness.path)
    instance = module.mod_init()
    assert instance.view.current() is not None
    new_request(double, 'INVITE', si=PHONE, rU='*45600', ru='sip:*45600@%s' % DOMAIN, adu='sip:*45600@%s' % DOMAIN,
                fd=DOMAIN, fU='anna.desk', au='anna.desk')
    double.reset()
    instance.ksr_request_route(None)
    assert replies(double) == [(603, 'Logged Out Of Queue 600')]
    members = harness.load('acme').get('queue', '600')['members']
    assert [(m['extension'], m['logged_in']) for m in members] == [('11', False), ('12', True), ('13', False)]
    assert double.called('tm.t_relay') == []
