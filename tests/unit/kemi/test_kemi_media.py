# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kemi/voxplane_media.py (NAT handling and the rtpengine relay) against the KSR double.

The double is built from api_list_media.json: the KSR functions of the NAT lab's Kamailio
(roles/kamailio with rtpengine, TLS and secure WebSocket; the default list has no rtpengine
module, as the default cfg does not load it). Message and branch flags are kept by the double
as Kamailio keeps them for one message. The first part drives ``Media`` directly (the relay
decision, the flags, which message offers, answers or deletes); the second drives the whole
router (voxplane_kemi.py) to check that its hooks reach ``Media`` on the right routes.
Real-Kamailio tests of the same: tests/sip/test_nat_media.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os

import pytest

from conftest import REPO, loaded_script, settings_for
from ksr_double.ksr_double import MEDIA_API_LIST, KSRDouble
from test_kemi_adapter import register

MEDIA_SCRIPT = os.path.join(REPO, 'kemi', 'voxplane_media.py')
NAT_SETTINGS = {'nat': True, 'rtpengine': True, 'relay': 'nat'}

SOURCE_NATED, RELAY_FORCED = 5, 6   # message flags: sender behind NAT, the tenant relays every call
CALLEE_NATED, RELAYED = 7, 8        # branch flags: callee's binding behind NAT, this branch relayed
PLAIN = 'replace-origin replace-session-connection ICE=remove'
# An offer to a plain or SDES-SRTP leg also undoes what a WebRTC caller may have offered
# (test_kemi_webrtc.py covers WebRTC legs).
OFFER_RTP = PLAIN + ' DTLS=off rtcp-mux-demux transport-protocol=RTP/AVP'
OFFER_SRTP = PLAIN + ' DTLS=off rtcp-mux-demux transport-protocol=RTP/SAVP SDES-no-AEAD_AES_256_GCM SDES-no-AEAD_AES_128_GCM'
NAT_TESTS = 1 | 2 | 16 | 64  # nat_uac_test: Contact, Via, port, WebSocket
REPLY_ROUTE = 'ksr_reply_route_media'
RELAY_CALLS = ('rtpengine.rtpengine_offer', 'rtpengine.rtpengine_answer', 'rtpengine.rtpengine_delete0')


def flagged_double():
    """A KSR double with the rtpengine module whose (branch) flags behave like Kamailio's."""
    double = KSRDouble(MEDIA_API_LIST)
    double.flags, double.bflags = set(), set()
    double.returns['setflag'] = lambda flag: double.flags.add(flag) or True
    double.returns['isflagset'] = lambda flag: flag in double.flags
    double.returns['setbflag'] = lambda flag: double.bflags.add(flag) or True
    double.returns['isbflagset'] = lambda flag: flag in double.bflags
    return double


def message(double, method='INVITE', proto='udp', ruri='sip:cora@203.0.113.7:5060', du=None, sdp=True,
            nated=False, sdp_private=False, callee_nated=False, route_param=False, first_hop=True,
            contact='<sip:phone@10.0.0.5:5060>'):
    """What Kamailio would show the script for one message: pv values and module answers."""
    double.reset()
    double.flags.clear()
    double.bflags.clear()
    double.pv.clear()
    double.pv.update({'$rm': method, '$pr': proto, '$ru': ruri, '$du': du, '$si': '198.51.100.9',
                      '$hdr(Contact)': contact})
    if callee_nated:
        double.bflags.add(CALLEE_NATED)  # registrar lookup copies the binding's branch flags
    # nat_uac_test: NAT_TESTS says whether the sender is behind NAT, 8 whether the SDP holds a
    # private address.
    double.returns['nathelper.nat_uac_test'] = lambda tests: 1 if (nated if tests != 8 else sdp_private) else -1
    double.returns['textops.has_body_type'] = lambda kind: 1 if sdp and kind == 'application/sdp' else -1
    double.returns['rr.check_route_param'] = lambda param: 1 if route_param and param == 'nat=yes' else -1
    double.returns['siputils.is_first_hop'] = 1 if first_hop else -1
    return double


def relay_calls(double):
    return [call for call in double.calls if call.name in RELAY_CALLS]


@pytest.fixture
def ksr():
    return flagged_double()


@pytest.fixture
def media_module(ksr):
    with ksr.installed():
        spec = importlib.util.spec_from_file_location('voxplane_media_under_test', MEDIA_SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def media(media_module):
    return media_module.Media(NAT_SETTINGS)


# Detection ---------------------------------------------------------------------------------

def test_every_request_is_answered_where_it_came_from(media_module, ksr):
    message(ksr, 'OPTIONS')
    media_module.Media(NAT_SETTINGS).reply_to_source()
    assert ksr.called('force_rport') == [()]
    message(ksr, 'OPTIONS')
    media_module.Media({'nat': False}).reply_to_source()
    assert ksr.calls == []


def test_a_register_from_behind_nat_stores_its_source_and_is_marked_for_keepalives(media, ksr):
    message(ksr, 'REGISTER', nated=True)
    media.detect('REGISTER')
    assert ksr.called('nathelper.nat_uac_test') == [(NAT_TESTS,)]
    assert ksr.called('nathelper.fix_nated_register') == [()]
    assert ksr.flags == {SOURCE_NATED} and ksr.bflags == {CALLEE_NATED}
    assert ksr.called('nathelper.set_contact_alias') == []


def test_a_call_from_behind_nat_gets_an_alias_on_its_contact(media, ksr):
    message(ksr, 'INVITE', nated=True)
    media.detect('INVITE')
    assert ksr.called('nathelper.set_contact_alias') == [()]
    assert ksr.called('nathelper.fix_nated_register') == [] and ksr.bflags == set()
    assert ksr.flags == {SOURCE_NATED}


def test_a_public_sender_is_left_alone(media, ksr):
    message(ksr, 'REGISTER', nated=False)
    media.detect('REGISTER')
    assert ksr.called('nathelper.nat_uac_test') == [(NAT_TESTS,)]
    assert ksr.flags == set() and ksr.bflags == set()
    assert ksr.called('nathelper.fix_nated_register') == [] and ksr.called('nathelper.set_contact_alias') == []


def test_without_nathelper_nothing_is_detected(media_module, ksr):
    media = media_module.Media({'nat': False, 'rtpengine': True})
    message(ksr, 'REGISTER', nated=True)
    media.detect('REGISTER')
    assert ksr.calls == []


# The relay decision (branch route) ------------------------------------------------------------

@pytest.mark.parametrize('case, kwargs, offer', [
    ('caller behind NAT', dict(nated=True), OFFER_RTP),
    ('callee behind NAT', dict(callee_nated=True), OFFER_RTP),
    ('caller over TLS, callee over UDP', dict(proto='tls'), OFFER_RTP),
    ('caller over UDP, callee over TLS', dict(ruri='sip:cora@203.0.113.7:5061;transport=tls'), OFFER_SRTP),
    ('callee over TLS by its destination URI', dict(du='sip:203.0.113.7:5061;transport=TLS'), OFFER_SRTP),
    ('callee reached with a sips: URI', dict(ruri='sips:cora@203.0.113.7'), OFFER_SRTP),
    ('caller behind NAT with a private SDP', dict(nated=True, sdp_private=True), OFFER_RTP + ' SIP-source-address'),
])
def test_a_branch_is_relayed_when_a_side_is_behind_nat_or_the_transports_differ(media, ksr, case, kwargs, offer):
    message(ksr, **kwargs)
    media.detect('INVITE')  # the request route, then the branch route of the same message
    media.branch()
    assert ksr.called('rtpengine.rtpengine_offer') == [(offer,)], case
    assert ksr.called('rr.add_rr_param') == [(';nat=yes',)]
    assert ksr.pv['$dlg_var(vx_media)'] == '1'
    assert RELAYED in ksr.bflags


@pytest.mark.parametrize('case, kwargs', [
    ('both public over UDP', {}),
    ('both public over TLS', dict(proto='tls', ruri='sip:cora@203.0.113.7:5061;transport=tls')),
])
def test_two_public_endpoints_with_the_same_transport_are_not_relayed(media, ksr, case, kwargs):
    message(ksr, **kwargs)
    media.detect('INVITE')
    media.branch()
    assert relay_calls(ksr) == [], case
    assert ksr.called('rr.add_rr_param') == [] and '$dlg_var(vx_media)' not in ksr.pv
    assert RELAYED not in ksr.bflags


def test_relay_always_relays_two_public_endpoints(media_module, ksr):
    media = media_module.Media(dict(NAT_SETTINGS, relay='always'))
    message(ksr)
    media.branch()
    assert ksr.called('rtpengine.rtpengine_offer') == [(OFFER_RTP,)]
    assert ksr.called('rr.add_rr_param') == [(';nat=yes',)]


def test_a_tenant_that_relays_every_call_has_two_public_endpoints_relayed(media, ksr):
    message(ksr)
    media.detect('INVITE')
    media.force_relay()  # the router: the call's tenant has media_relay: always
    media.branch()
    assert RELAY_FORCED in ksr.flags
    assert ksr.called('rtpengine.rtpengine_offer') == [(OFFER_RTP,)]
    assert ksr.called('rr.add_rr_param') == [(';nat=yes',)]


def test_without_rtpengine_nothing_is_relayed(media_module, ksr):
    media = media_module.Media({'nat': True, 'rtpengine': False, 'relay': 'always'})
    message(ksr, nated=True, callee_nated=True, proto='tls')
    media.branch()
    assert ksr.calls == []


def test_an_invite_without_sdp_is_marked_relayed_but_offers_nothing(media, ksr):
    """The offer then comes in the callee's 200 and the answer in the ACK (in_dialog)."""
    message(ksr, nated=True, sdp=False)
    media.detect('INVITE')
    media.branch()
    assert relay_calls(ksr) == []
    assert ksr.called('rr.add_rr_param') == [(';nat=yes',)] and RELAYED in ksr.bflags


# Replies -------------------------------------------------------------------------------------

def test_the_answer_of_a_relayed_branch_goes_to_rtpengine(media, ksr):
    message(ksr, 'INVITE', callee_nated=True)
    ksr.bflags.add(RELAYED)
    media.reply()
    assert ksr.called('rtpengine.rtpengine_answer') == [(PLAIN,)]
    assert ksr.called('nathelper.set_contact_alias') == [()]  # the callee is behind NAT


def test_a_reply_of_a_branch_that_is_not_relayed_is_left_alone(media, ksr):
    message(ksr, 'INVITE')
    media.reply()
    assert relay_calls(ksr) == [] and ksr.called('nathelper.set_contact_alias') == []


def test_a_reply_without_sdp_is_not_an_answer(media, ksr):
    message(ksr, 'INVITE', sdp=False)
    ksr.bflags.add(RELAYED)
    media.reply()
    assert relay_calls(ksr) == []


# In-dialog requests of a relayed call (nat=yes in the route set) ---------------------------------

@pytest.mark.parametrize('method, sdp, expected', [
    ('INVITE', True, [('rtpengine.rtpengine_offer', (OFFER_RTP,))]),    # re-INVITE: a new offer
    ('UPDATE', True, [('rtpengine.rtpengine_offer', (OFFER_RTP,))]),
    ('INVITE', False, []),                                              # re-INVITE without SDP: offer in its 200
    ('ACK', True, [('rtpengine.rtpengine_answer', (PLAIN,))]),          # the answer of a late offer
    ('ACK', False, []),
    ('BYE', False, [('rtpengine.rtpengine_delete0', ())]),
    ('INFO', True, []),
])
def test_in_dialog_requests_of_a_relayed_call(media, ksr, method, sdp, expected):
    message(ksr, method, sdp=sdp, route_param=True)
    media.in_dialog(method)
    assert [(call.name, call.args) for call in relay_calls(ksr)] == expected
    assert ksr.called('tm.t_on_reply') == [(REPLY_ROUTE,)] and RELAYED in ksr.bflags


@pytest.mark.parametrize('method', ['INVITE', 'ACK', 'BYE'])
def test_in_dialog_requests_of_a_call_that_is_not_relayed(media, ksr, method):
    message(ksr, method, route_param=False)
    media.in_dialog(method)
    assert relay_calls(ksr) == [] and ksr.called('tm.t_on_reply') == []


def test_in_dialog_requests_follow_the_contact_alias_unless_a_route_set_the_destination(media, ksr):
    message(ksr, 'BYE')
    media.in_dialog('BYE')
    assert ksr.called('nathelper.handle_ruri_alias') == [()]
    message(ksr, 'BYE', du='sip:198.51.100.2:5060;lr')
    media.in_dialog('BYE')
    assert ksr.called('nathelper.handle_ruri_alias') == []


# The failure route: CANCEL, every branch failed, timeouts -----------------------------------------

def test_a_failed_or_cancelled_relayed_call_deletes_its_relay_session(media, ksr):
    message(ksr)
    ksr.pv['$dlg_var(vx_media)'] = '1'
    media.failed()
    assert ksr.called('rtpengine.rtpengine_delete0') == [()]


def test_a_failed_call_that_was_not_relayed_deletes_nothing(media, ksr):
    message(ksr)
    media.failed()
    assert relay_calls(ksr) == []


# Through the router: the hooks of voxplane_kemi.py ------------------------------------------------

@pytest.fixture
def media_router(tmp_path, directory):
    double = flagged_double()
    settings = dict(settings_for(directory.path), media=NAT_SETTINGS)
    with loaded_script(tmp_path / 'kemi', settings, double) as module:
        router = module.mod_init()
        yield router, double


def in_dialog(double, method, **kwargs):
    message(double, method, route_param=True, **kwargs)
    double.returns['siputils.has_totag'] = 1
    double.returns['tm.t_check_trans'] = -1


def test_router_a_bye_of_a_relayed_call_deletes_and_is_relayed(media_router):
    router, double = media_router
    in_dialog(double, 'BYE', sdp=False)
    router.ksr_request_route(None)
    names = double.call_names()
    assert double.called('rtpengine.rtpengine_delete0') == [()]
    assert names.index('rr.loose_route') < names.index('rtpengine.rtpengine_delete0') < names.index('tm.t_relay')


def test_router_a_re_invite_of_a_relayed_call_offers_again(media_router):
    router, double = media_router
    in_dialog(double, 'INVITE', nated=True)  # from the phone behind NAT: its new Contact gets an alias
    router.ksr_request_route(None)
    assert double.called('rtpengine.rtpengine_offer') == [(OFFER_RTP,)]
    assert double.called('tm.t_on_reply') == [(REPLY_ROUTE,)]
    assert double.called('nathelper.set_contact_alias') == [()] and SOURCE_NATED in double.flags


def test_router_an_ack_with_sdp_answers(media_router):
    router, double = media_router
    in_dialog(double, 'ACK')
    router.ksr_request_route(None)
    assert double.called('rtpengine.rtpengine_answer') == [(PLAIN,)]


def test_router_the_failure_route_deletes_the_relay_session_of_a_cancelled_call(media_router):
    router, double = media_router
    message(double)
    double.pv['$dlg_var(vx_media)'] = '1'
    double.returns['tm.t_is_canceled'] = 1
    router.ksr_failure_route_call(None)
    assert double.called('rtpengine.rtpengine_delete0') == [()]


def test_router_the_media_reply_route_answers_for_a_relayed_branch(media_router):
    router, double = media_router
    message(double)
    double.bflags.add(RELAYED)
    router.ksr_reply_route_media(None)
    assert double.called('rtpengine.rtpengine_answer') == [(PLAIN,)]


def test_router_a_register_from_behind_nat_is_fixed_once_proven_then_saved(media_router):
    router, double = media_router
    message(double, 'REGISTER', nated=True)
    register(double, 'max.app')
    router.ksr_request_route(None)
    names = double.call_names()
    assert double.called('force_rport') == [()] and double.called('nathelper.fix_nated_register') == [()]
    assert names.index('auth.pv_auth_check') < names.index('nathelper.fix_nated_register') \
        < names.index('registrar.save')
    assert CALLEE_NATED in double.bflags
    # Without credentials it is challenged, and nothing of NAT handling is done for it.
    message(double, 'REGISTER', nated=True)
    register(double, 'max.app', auth=False)
    router.ksr_request_route(None)
    assert double.called('auth.auth_challenge') and double.called('force_rport') == [()]
    assert double.called('nathelper.fix_nated_register') == [] and double.bflags == set()
