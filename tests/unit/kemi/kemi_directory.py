# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directory the KEMI adapter tests route over, written through the real store and
reconcile engine (tests/unit/plugins/module_utils/directory_helpers.py).

acme (Germany): number SINGLE -> extension 10, the block BLOCK (main number) -> group 50,
  trunk ecotel (two addresses), international calls allowed, media server MEDIA_SERVER.
  10 max.muster + max.app    ring 25 s, busy -> 12, no answer -> 13, mobile MOBILE_10
  11 erika.desk              outbound caller id anonymous, no answer -> OUTSIDE
  12 paul.desk               no forwarding at all
  13 anna.desk               no name
  14 extern.desk             unconditional -> OUTSIDE (leaves through the trunk)
  16 fwd.desk                unconditional -> 10
  17 chain.desk              unconditional -> 18, 18 unconditional -> 13: two hops
  18 chain2.desk
  22 ute.desk                unregistered -> 13
  23 tls.desk                requires TLS (or secure WebSocket)
  40 (no account)            mobile MOBILE_40 (no single number reach: never rung)
  41 nobody.desk             no forwarding, no mobile
  44 vera.desk               voicemail, no forwards
  45 snr.desk                single number reach to MOBILE_45
  46 (no account)            single number reach to MOBILE_46
  47 dora.desk               DND and voicemail
  48 fwd.snr                 unconditional -> 45
  49 anon.desk               outbound caller id anonymous
  60..67 hunt60..hunt67     members of group 52
  group 50 parallel [10, 11] fallback 13; group 51 sequential [12, 13] ring 15 s, no fallback;
  group 52 sequential [60..67] ring 10 s, fallback 13
beta (Austria): international calls forbidden, one trunk, extension 100.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from directory_helpers import (  # noqa: F401  pylint: disable=unused-import  # DOMAIN, PASSWORD are re-exported
    BETA_DOMAIN, BLOCK, DOMAIN, HQ, PASSWORD, SINGLE, Harness, account, block, extension, tenant_request,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION, GROUP, NUMBER

ECOTEL = ('192.0.2.10', '192.0.2.11')
EXTRA_TRUSTED = '198.51.100.7'
B_TRUNK = '203.0.113.5'
B_MAIN = '+4315550100'
OUTSIDE = '+4940123456'
MOBILE_10 = '+491701000010'
MOBILE_40 = '+491704000040'
HQ_ECID = '+4930123400'
UNKNOWN_DOMAIN = 'unknown.voxplane.example'
GAMMA_DOMAIN = 'gamma.voxplane.example'
HUNT = tuple(str(n) for n in range(60, 68))   # the 8 members of sequential group 52
MEDIA_SERVER = 'sip:192.0.2.30:5080'          # acme's voicemail server (tenant media_server)
MOBILE_45 = '+491704500045'
MOBILE_46 = '+491704600046'


def _ext(user, name, *more, **fields):
    accounts = ([account(user)] if user else []) + list(more)
    return extension(*accounts, name=name, **fields)


def acme_tenant():
    return tenant_request(
        smart=40, best=1, client_complete=1, main_number=BLOCK, international_calls=True, media_server=MEDIA_SERVER,
        locations=[dict(HQ, emergency_caller_id=HQ_ECID)],
        trunks=[{'name': 'ecotel', 'addresses': list(ECOTEL)}], preferred_trunk='ecotel')


def acme_children():
    children = {
        NUMBER: {BLOCK: block(target='50'), SINGLE: {'target': '10'}},
        EXTENSION: {
            '10': _ext('max.muster', 'Max Mustermann', account('max.app', 'softclient'), seat='best', ring_time=25,
                       international_calls=True, location='hq', mobile=MOBILE_10,
                       forwarding={'busy': '12', 'no_answer': '13'}),
            '11': _ext('erika.desk', 'Erika Musterfrau', outbound_caller_id='anonymous',
                       forwarding={'no_answer': OUTSIDE}),
            '12': _ext('paul.desk', 'Paul Weiter'),
            '13': _ext('anna.desk', None),
            '14': _ext('extern.desk', 'Extern Weiter', forwarding={'unconditional': OUTSIDE}),
            '16': _ext('fwd.desk', 'Eins Weiter', forwarding={'unconditional': '10'}),
            '17': _ext('chain.desk', 'Zwei Weiter', forwarding={'unconditional': '18'}),
            '18': _ext('chain2.desk', 'Zwischen', forwarding={'unconditional': '13'}),
            '22': _ext('ute.desk', 'Ute Unreg', forwarding={'unregistered': '13'}),
            '23': extension(dict(account('tls.desk'), require_tls=True), name='Tessa TLS'),
            '40': _ext(None, 'Ohne Konto', mobile=MOBILE_40),
            '41': _ext('nobody.desk', 'Niemand'),
            '44': _ext('vera.desk', 'Vera Voicemail', voicemail={'enabled': True}),
            '45': _ext('snr.desk', 'Sina SNR', mobile=MOBILE_45, single_number_reach=True),
            '46': _ext(None, 'Nur Mobil', mobile=MOBILE_46, single_number_reach=True),
            '47': _ext('dora.desk', 'Dora DND', dnd=True, voicemail={'enabled': True}),
            '48': _ext('fwd.snr', 'Zu SNR', forwarding={'unconditional': '45'}),
            '49': _ext('anon.desk', 'Anonym', outbound_caller_id='anonymous'),
        },
        GROUP: {
            '50': {'name': 'Zentrale', 'strategy': 'parallel', 'members': ['10', '11'], 'fallback': '13'},
            '51': {'name': 'Support', 'strategy': 'sequential', 'members': ['12', '13'], 'ring_time': 15},
            '52': {'name': 'Hunt', 'strategy': 'sequential', 'members': list(HUNT), 'ring_time': 10,
                   'fallback': '13'},
        },
    }
    children[EXTENSION].update((number, _ext('hunt%s' % number, 'Hunt %s' % number)) for number in HUNT)
    return children


def beta_tenant():
    return tenant_request(domain=BETA_DOMAIN, smart=5, best=0, country_code='43', international_calls=False,
                          main_number=B_MAIN, locations=[{'name': 'wien', 'street': 'Ring 1', 'postal_code': '1010',
                                                          'city': 'Wien', 'country': 'AT'}],
                          trunks=[{'name': 'b-trunk', 'addresses': [B_TRUNK], 'port': 5080}])


def beta_children():
    return {NUMBER: {B_MAIN: {'target': '100'}},
            EXTENSION: {'100': _ext('bert.beta', 'Bert Beta')}}


def gamma():
    """A third tenant, added by the reload tests."""
    return tenant_request(domain=GAMMA_DOMAIN, smart=1, best=0), {EXTENSION: {'10': _ext('gina.gamma', 'Gina')}}


def build(path):
    harness = Harness(path)
    harness.apply('acme', acme_tenant(), acme_children())
    harness.apply('beta', beta_tenant(), beta_children())
    return harness
