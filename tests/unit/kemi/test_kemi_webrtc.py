# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kemi/voxplane_media.py (the media kinds of WebRTC, SRTP and RTP legs and their rtpengine
flags) and kemi/voxplane_websocket.py (which HTTP requests become WebSocket connections),
through the KSR double built from api_list_media.json: what the NAT lab's Kamailio (nathelper,
rtpengine, tls, xhttp, websocket) exports, checked against the live server by
tests/sip/test_nat_media.py, where the same paths run with rtpengine, a webphone and a desk
phone. These pin the decisions case by case."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os

import pytest

from conftest import KEMI_SCRIPT
from ksr_double.ksr_double import KSRDouble

KEMI = os.path.dirname(KEMI_SCRIPT)
MEDIA_API_LIST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'ksr_double',
                              'api_list_media.json')
FLAG_SOURCE_WEBRTC = 9


def _load(name, double):
    with double.installed():
        spec = importlib.util.spec_from_file_location('%s_under_test' % name, os.path.join(KEMI, name + '.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def ksr():
    double = KSRDouble(api_list=MEDIA_API_LIST)
    double.returns['nathelper.nat_uac_test'] = -1  # the SDP names no private address
    double.returns['isflagset'] = False
    double.returns['isbflagset'] = False
    with double.installed():
        yield double


@pytest.fixture
def media(ksr):
    return _load('voxplane_media', ksr).Media({'nat': True, 'rtpengine': True, 'relay': 'nat'})


@pytest.fixture
def websocket(ksr):
    return _load('voxplane_websocket', ksr).WebSocket(
        {'ports': [8443], 'path': '/ws', 'origins': ['https://phone.example.net/']})


def _from_webphone(ksr):
    ksr.pv['$pr'] = 'wss'
    ksr.returns['isflagset'] = lambda flag: flag == FLAG_SOURCE_WEBRTC


# Media kinds and flags ------------------------------------------------------------------------

def test_a_request_over_a_websocket_is_marked_as_webrtc_and_as_behind_nat(ksr, media):
    ksr.pv['$pr'] = 'wss'
    ksr.pv['$hdr(Contact)'] = '<sip:k3x9@d1fe.invalid;transport=ws>'
    ksr.returns['siputils.is_first_hop'] = True
    ksr.returns['nathelper.nat_uac_test'] = lambda tests: 1 if tests & 64 else -1  # only the WebSocket test
    media.detect('INVITE')
    assert (FLAG_SOURCE_WEBRTC,) in ksr.called('setflag') and (5,) in ksr.called('setflag')
    assert ksr.called('nathelper.set_contact_alias') == [()]


def test_a_webphone_calling_a_desk_phone_is_relayed_with_plain_rtp_toward_the_desk_phone(ksr, media):
    _from_webphone(ksr)
    ksr.pv['$ru'] = 'sip:anna@10.0.0.10:5060'
    ksr.returns['textops.has_body_type'] = 1
    media.branch()
    (flags,), = ksr.called('rtpengine.rtpengine_offer')
    assert flags.split() == ['replace-origin', 'replace-session-connection', 'ICE=remove', 'DTLS=off',
                             'rtcp-mux-demux', 'transport-protocol=RTP/AVP']
    assert (8,) in ksr.called('setbflag')


def test_a_webphone_calling_a_tls_phone_gets_sdes_srtp_toward_it(ksr, media):
    _from_webphone(ksr)
    ksr.pv['$du'] = 'sip:198.51.100.7:40000;transport=tls'
    ksr.returns['textops.has_body_type'] = 1
    media.branch()
    (flags,), = ksr.called('rtpengine.rtpengine_offer')
    assert 'transport-protocol=RTP/SAVP' in flags and 'DTLS=off' in flags and 'ICE=remove' in flags


def test_a_desk_phone_calling_a_webphone_offers_ice_and_dtls_srtp_toward_it(ksr, media):
    ksr.pv['$pr'] = 'udp'
    ksr.pv['$du'] = 'sip:198.51.100.9:51234;transport=ws'
    ksr.returns['textops.has_body_type'] = 1
    media.branch()
    (flags,), = ksr.called('rtpengine.rtpengine_offer')
    assert flags.split() == ['replace-origin', 'replace-session-connection', 'ICE=force',
                             'transport-protocol=UDP/TLS/RTP/SAVPF', 'rtcp-mux-offer', 'rtcp-mux-require',
                             'generate-mid', 'SDES-off']


def test_the_answer_to_a_webphone_keeps_ice_and_leaves_the_dtls_role_to_rtpengine(ksr, media):
    _from_webphone(ksr)
    ksr.returns['isbflagset'] = lambda flag: flag == 8  # the branch was relayed
    ksr.returns['textops.has_body_type'] = 1
    media.reply()
    (flags,), = ksr.called('rtpengine.rtpengine_answer')
    assert flags.split() == ['replace-origin', 'replace-session-connection', 'ICE=force']


def test_the_answer_to_a_desk_phone_removes_ice(ksr, media):
    ksr.pv['$pr'] = 'udp'
    ksr.returns['isbflagset'] = lambda flag: flag == 8
    ksr.returns['textops.has_body_type'] = 1
    media.reply()
    (flags,), = ksr.called('rtpengine.rtpengine_answer')
    assert flags.split() == ['replace-origin', 'replace-session-connection', 'ICE=remove']


def test_two_public_desk_phones_on_udp_are_not_relayed(ksr, media):
    ksr.pv['$pr'] = 'udp'
    ksr.pv['$ru'] = 'sip:bert@198.51.100.11:5060'
    media.branch()
    assert ksr.called('rtpengine.rtpengine_offer') == []


# The WebSocket handshake ----------------------------------------------------------------------

def _handshake(ksr, **pv):
    values = {'$Rp': 8443, '$pr': 'tls', '$rm': 'GET', '$hu': '/ws', '$hdr(Upgrade)': 'websocket',
              '$hdr(Connection)': 'keep-alive, Upgrade', '$hdr(Origin)': 'https://phone.example.net',
              '$si': '198.51.100.9', '$sp': 51234}
    values.update(pv)
    ksr.pv.update(values)


def test_an_allowed_handshake_is_upgraded(ksr, websocket):
    _handshake(ksr)
    assert websocket.handle() == 1
    assert ksr.called('websocket.handle_handshake') == [()] and ksr.called('xhttp.xhttp_reply') == []
    assert ksr.called('set_reply_close') == [()]  # the HTTP connection never becomes a SIP one otherwise


def test_a_refused_handshake_is_answered_and_never_upgraded(ksr, websocket):
    _handshake(ksr, **{'$hdr(Origin)': 'https://evil.example'})
    websocket.handle()
    assert ksr.called('websocket.handle_handshake') == []
    assert ksr.called('xhttp.xhttp_reply') == [(403, 'Forbidden: origin not allowed', '', '')]


@pytest.mark.parametrize('pv, code', [
    ({'$hdr(Origin)': 'https://evil.example'}, 403),
    ({'$hdr(Origin)': None}, 403),
    ({'$Rp': 5061}, 403),
    ({'$pr': 'tcp'}, 403),
    ({'$hu': '/admin'}, 404),
    ({'$hu': '/ws?token=1'}, None),
    ({'$hdr(Upgrade)': None}, 404),
    ({'$rm': 'POST'}, 404),
])
def test_other_requests_are_refused(ksr, websocket, pv, code):
    _handshake(ksr, **pv)
    refusal = websocket.refusal()
    assert (refusal[0] if refusal else None) == code


def test_without_origins_any_origin_is_accepted(ksr):
    websocket = _load('voxplane_websocket', ksr).WebSocket({'ports': [8443], 'path': '/ws', 'origins': []})
    _handshake(ksr, **{'$hdr(Origin)': None})
    assert websocket.refusal() is None
