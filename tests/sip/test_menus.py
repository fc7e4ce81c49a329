# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router's half of issue 22 against a real Kamailio of its own (deployed by the role, tenants.yml, with
kamailio_media_service pointing at a stand-in on an address of its own): docs/media.md, "Menus, queues and
conference rooms: the contract".

- a number whose target is an IVR menu reaches the media service with X-Voxplane-Media: ivr;number=700;
- X-Voxplane-Origin from anyone else (the trunk, a phone) is removed and ignored: the call is routed as without it;
- a call from the media service's address with to=member rings only that member's phones (no forwards) and
  its busy answer goes back as it is; with to=target to an extension it follows that extension's forward;
  to an outside number it leaves through the trunk within the tenant's call permissions (the tenant's main
  number in P-Asserted-Identity, the caller in From);
- *45600 and *44600 dialled from a member's phone change its login in the directory.

The stand-ins (media service, trunk) are UDP user agents that answer every INVITE with a final reply and record
what they got; phones are sipp (lab.sipp.Phone).
"""

import json
import sqlite3
import time

import pytest

from lab.calls import call, final_reply
from lab.directories import use_collection
from lab.kamailio import kamailio_lab, missing_prerequisites
from lab.net import UdpWorker, free_port, neighbour_address
from lab.sipp import Phone, finish_sipp, received
from lab.wire import Message, Peer, header

ACME = 'acme.sip.test'
MAIN = '<sip:+49301234560@acme.sip.test>'
MENU_NUMBER = '+493099990010'
CALLER = '<sip:+49891234567@carrier.example>'


class StandIn(UdpWorker):
    """A user agent that answers every INVITE at once with ``code`` and records the requests it got."""

    def __init__(self, address, port, code=486, reason='Busy Here'):
        super(StandIn, self).__init__(address, port)
        self.code, self.reason = code, reason
        self.requests = []

    def _run(self):
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except OSError:
                continue
            message = Message(data.decode('utf-8', 'replace'))
            if message.is_reply:
                continue
            self.requests.append(message)
            if message.first_line.startswith('INVITE'):
                self.sock.sendto(self._reply(message), source)

    def _reply(self, message):
        lines = ['SIP/2.0 %d %s' % (self.code, self.reason)]
        for name in ('Via', 'From', 'To', 'Call-ID', 'CSeq'):
            for value in message.all(name):
                lines.append('%s: %s%s' % (name, value, ';tag=standin' if name == 'To' and 'tag=' not in value else ''))
        return ('\r\n'.join(lines + ['Content-Length: 0']) + '\r\n\r\n').encode()

    def invites(self):
        return [m for m in self.requests if m.first_line.startswith('INVITE')]


@pytest.fixture(scope='module')
def pbx():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    media = {}

    def setup(instance):
        # The media service on an address of its own (neither Kamailio's nor the trunk's).
        media['address'] = neighbour_address(instance.trunk)
        media['port'] = free_port(media['address'], tcp=False)
        return {'kamailio_media_service': 'sip:%(address)s:%(port)d' % media}
    with kamailio_lab(prefix='voxplane-menus-', kamailio_children=1, setup=setup) as instance:
        use_collection()
        from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
        from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory
        with Directory(instance.directory_path).transaction() as txn:
            reconcile(txn, 'acme', {'licences': {'seats': {'best': 20}, 'addons': {'ivr': 1}}}, {
                'queue': {'600': {'name': 'Support', 'members': [{'extension': '10'}, {'extension': '27'},
                                                                 {'extension': '11'}], 'member_ring_time': 8}},
                'ivr': {'700': {'name': 'Zentrale', 'keys': {'1': '60', '2': '600'}}},
            })
            reconcile(txn, 'acme', None, {'number': {MENU_NUMBER: {'target': '700'}}})
        time.sleep(1.2)  # every worker reloads within reload_check_ms
        instance.media_address, instance.media_port = media['address'], media['port']
        yield instance


def invite(peer, user, headers, from_uri='sip:+49891234567@carrier.example'):
    """Send an INVITE to sip:<user>@acme.sip.test from ``peer``; its final reply (a Message) or None."""
    return peer.request('INVITE', 'sip:%s@%s' % (user, ACME), from_uri, 'sip:%s@%s' % (user, ACME),
                        headers=headers, timeout=12)


def origin(to, number='600', service='queue'):
    return ['X-Voxplane-Origin: %s;number=%s;to=%s' % (service, number, to), 'X-Voxplane-Call: caller-call-1',
            'P-Asserted-Identity: %s' % CALLER]


def phones(pbx, scenario, *usernames):
    """Register these accounts and run ``scenario`` on each; returns {username: (Phone, sipp handle)}."""
    running = {}
    for username in usernames:
        phone = Phone(pbx, username)
        assert phone.register().rc == 0, username
        running[username] = (phone, phone.start(scenario))
    return running


def finished(running):
    """Stop the phones; {username: what its sipp got}."""
    results = {}
    for username, (phone, handle) in running.items():
        results[username] = finish_sipp(handle, timeout=3)
        phone.unregister()
    return results


def invites_of(result):
    return received(result, 'INVITE ')


def test_a_number_to_a_menu_reaches_the_media_service_with_the_header(pbx):
    with StandIn(pbx.media_address, pbx.media_port) as media, Peer(pbx.trunk, pbx.target) as trunk:
        reply = invite(trunk, MENU_NUMBER, ['X-Voxplane-Media: voicemail;mailbox=10;reason=unconditional'])
        assert reply is not None and reply.code == 486, (reply, pbx.log_tail(20))
    got, = media.invites()
    assert got.first_line == 'INVITE sip:700@%s SIP/2.0' % ACME, got.first_line
    assert got.all('X-Voxplane-Media') == ['ivr;number=700']      # the router's, not what the carrier sent
    assert got.all('X-Voxplane-Origin') == []


def test_the_origin_header_from_the_trunk_is_removed_and_ignored(pbx):
    # to=member would ring Anna alone; from the trunk it is nothing: the head number rings the reception (60)
    running = phones(pbx, 'phone_busy.xml', 'anna.desk', 'bert.desk')
    try:
        with StandIn(pbx.media_address, pbx.media_port) as media, Peer(pbx.trunk, pbx.target) as trunk:
            reply = invite(trunk, '+49301234560', origin('member'))
    finally:
        results = finished(running)
    assert reply is not None and reply.code == 486, reply
    for username in ('anna.desk', 'bert.desk'):
        got, = invites_of(results[username])
        assert header(got, 'X-Voxplane-Origin') == [] and header(got, 'X-Voxplane-Call') == [], got
    assert media.requests == []


def test_the_origin_header_from_a_phone_is_removed_and_ignored(pbx):
    # Anna's phone claims to be the media service ringing queue member Gina (27): Gina's forward applies as on any
    # call (Bert rings, with the Diversion), and nobody sees the header.
    running = phones(pbx, 'phone_busy.xml', 'bert.desk', 'gina.desk')
    try:
        with Peer(pbx.address, pbx.target) as anna:
            _challenge, answer, _params = anna.authenticate('INVITE', 'anna.desk', ACME, 'anna-desk-pw', dialled='27',
                                                            headers=origin('member'))
    finally:
        results = finished(running)
    assert answer is not None and answer.code == 486, answer
    assert invites_of(results['gina.desk']) == []
    got, = invites_of(results['bert.desk'])
    assert header(got, 'Diversion') == ['<sip:27@%s>;reason=unconditional' % ACME]
    assert header(got, 'X-Voxplane-Origin') == [] and header(got, 'X-Voxplane-Call') == []


def test_a_member_ring_from_the_media_service_rings_that_member_alone_and_its_answer_goes_back(pbx):
    # Gina (27) forwards every call to Bert: as a queue member her own phones ring, nothing else.
    running = phones(pbx, 'phone_busy.xml', 'gina.desk', 'bert.desk')
    try:
        with Peer(pbx.media_address, pbx.target) as media:
            reply = invite(media, '27', origin('member'))
    finally:
        results = finished(running)
    assert reply is not None and (reply.code, reply.reason) == (486, 'Busy Here'), (reply, pbx.log_tail(20))
    got, = invites_of(results['gina.desk'])
    assert header(got, 'P-Asserted-Identity') == [CALLER] and header(got, 'Diversion') == []
    assert header(got, 'X-Voxplane-Origin') == []
    assert invites_of(results['bert.desk']) == []


def test_a_target_from_the_media_service_follows_the_extensions_forward(pbx):
    running = phones(pbx, 'phone_busy.xml', 'gina.desk', 'bert.desk')
    try:
        with Peer(pbx.media_address, pbx.target) as media:
            reply = invite(media, '27', origin('target', '700', 'ivr'))
    finally:
        results = finished(running)
    assert reply is not None and reply.code == 486, reply
    assert invites_of(results['gina.desk']) == []
    got, = invites_of(results['bert.desk'])
    assert header(got, 'Diversion') == ['<sip:27@%s>;reason=unconditional' % ACME]
    assert header(got, 'P-Asserted-Identity') == [CALLER]


def test_an_outside_target_from_the_media_service_respects_the_tenants_call_permissions(pbx):
    with StandIn(pbx.trunk, pbx.trunk_port, 486) as carrier, Peer(pbx.media_address, pbx.target) as media:
        refused = invite(media, '+499001234567', origin('target', '700', 'ivr'))
        assert refused is not None and (refused.code, refused.reason) == (403, 'Premium-rate calls not permitted')
        reply = invite(media, '030 5554433'.replace(' ', ''), origin('target'))
        assert reply is not None and reply.code == 486, (reply, pbx.log_tail(20))
    got, = carrier.invites()
    assert got.first_line == 'INVITE sip:+49305554433@%s:%d SIP/2.0' % (pbx.trunk, pbx.trunk_port)
    assert got.all('P-Asserted-Identity') == [MAIN]                      # the tenant pays for the leg
    assert '+49891234567@acme.sip.test' in got.header('From')          # the caller, as on any forwarded leg


def members(pbx):
    conn = sqlite3.connect(pbx.directory_path)
    try:
        doc = conn.execute("SELECT doc FROM call_queues WHERE internal_number = '600'").fetchone()[0]
    finally:
        conn.close()
    return dict((m['extension'], m['logged_in']) for m in json.loads(doc)['members'])


def test_queue_codes_log_a_member_out_and_in(pbx):
    assert members(pbx)['11'] is True
    try:
        assert final_reply(call(pbx, 'bert.desk', '*45600')) == 'SIP/2.0 603 Logged Out Of Queue 600'
        assert members(pbx) == {'10': True, '27': True, '11': False}
        assert final_reply(call(pbx, 'bert.desk', '*44600')) == 'SIP/2.0 603 Logged In To Queue 600'
        assert members(pbx)['11'] is True
        assert final_reply(call(pbx, 'cora.desk', '*44600')) == 'SIP/2.0 403 Not a member of queue 600'
        assert final_reply(call(pbx, 'bert.desk', '*44601')) == 'SIP/2.0 404 No queue 601'
    finally:
        call(pbx, 'bert.desk', '*44600')
