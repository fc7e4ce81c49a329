# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phones behind NAT, with audio (docs/nat-and-media.md).

An office network namespace behind a masquerading router namespace (tests/lab/nat.py) holds two
baresip phones, anna.desk (extension 10, auto-answer) and bert.desk (11, answers only when
told). Kamailio (the role, nathelper on, OPTIONS keepalives every 3 s) and rtpengine (the
rtpengine role, userspace) run in the root namespace on 198.18.N.1, the trunk stand-in (sipp
plus lab.nat.RtpPeer) on 198.18.N.3. The router forgets a UDP binding after 8 s
without packets, as a strict home router does.

Every call checks RTP both ways at both ends: the office's nft counters (packets between each
phone and the relay's port range) and the RTP peer's own counts; and that rtpengine holds no
session once the call is over (rtpengine-ctl list numsessions).
"""

import asyncio
import contextlib
import http.client
import importlib.util
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

import webphone
from lab import nat
from lab.calls import final_reply, register as sip_register, report, users_file
from lab.kamailio import KamailioInstance, kamailio_lab, kamcmd, missing_prerequisites
from lab.nat import RtpPeer
from lab.net import free_port, wait_for
from lab.rtpengine import rtpengine_lab
from lab.sipp import Phone, finish_sipp, password, received, start_sipp, statuses

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = os.path.join(HERE, 'nat_settings.yml')  # tenant media_relay, finn.desk require_tls
ACME = 'acme.sip.test'
KEEPALIVE = 3  # kamailio_natping_interval in this module
NAT_TIMEOUT = 8  # the router's UDP binding timeout
REREGISTER = 10  # anna's registration interval (s) while the NAT port changes under her
MIN_PACKETS = 100  # 2 s of 20 ms packets: each call carries 3 s or more each way
WEBPHONE_ORIGIN = 'https://phone.acme.test'  # the one page allowed to open the secure WebSocket


@pytest.fixture(scope='module')
def lab():
    reason = missing_prerequisites() or nat.missing_prerequisites()
    if reason:
        pytest.skip(reason)
    root = tempfile.mkdtemp(prefix='voxplane-nat-')
    os.chmod(root, 0o755)
    relay_low = 30000 + 200 * (os.getpid() % 40)
    network = nat.NatLab(udp_timeout=NAT_TIMEOUT, rtp_ports=(relay_low, relay_low + 199))
    try:
        network.up()
        with contextlib.ExitStack() as stack:
            relay = stack.enter_context(rtpengine_lab(root, network.kamailio, (relay_low, relay_low + 199), log_level=6,
                                                      log_file=os.path.join(root, 'rtpengine.log')))
            kamailio = stack.enter_context(kamailio_lab(
                root=root, address=network.kamailio, trunk=network.trunk, setup=lambda k: _nat_variables(k, relay)))
            # finn's phone registers over TLS and its account may only use TLS.
            assert kamailio.provision(SETTINGS, media_relay='auto', finn_require_tls=True).rc == 0
            assert kamailio.wait_for_directory(), kamailio.log_tail()
            kamailio.lab = network
            kamailio.rtpengine_ctl = relay.control
            kamailio.rtpengine_cli = relay.cli_port
            proxy = kamailio.target
            kamailio.anna = network.phone(root, 'anna.desk', ACME, password('anna.desk'), proxy, host=10).start()
            kamailio.bert = network.phone(root, 'bert.desk', ACME, password('bert.desk'), proxy, host=11,
                                          answer='manual').start()
            kamailio.finn = network.phone(root, 'finn.desk', ACME, password('finn.desk'),
                                          (network.kamailio, kamailio.tls_port), host=12,
                                          tls_cafile=os.path.join(kamailio.config_dir, 'tls', 'server.pem')).start()
            for phone in (kamailio.anna, kamailio.bert, kamailio.finn):
                assert wait_for(lambda p=phone: bindings(kamailio, p.user), 10), \
                    'baresip %s did not register\n%s\n%s' % (phone.user, phone.output()[-3000:], kamailio.log_tail())
            yield kamailio
    finally:
        network.down()
        if os.environ.get('VOXPLANE_SIP_KEEP') == '1':
            print('\nvoxplane nat: kept %s' % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


def _nat_variables(kamailio, relay):
    """The role variables of the NAT lab's Kamailio: TLS and WSS listen entries on free ports,
    nathelper with keepalives every KEEPALIVE s, the lab's rtpengine, the webphone's origin."""
    kamailio.tls_port = free_port(kamailio.address)
    kamailio.wss_port = free_port(kamailio.address)
    listen = kamailio.variables()['kamailio_listen'] + [
        {'proto': 'tls', 'address': kamailio.address, 'port': kamailio.tls_port},
        {'proto': 'wss', 'address': kamailio.address, 'port': kamailio.wss_port}]
    # VOXPLANE_NAT_LOG_LEVEL=3: Kamailio's debug log, for a post-mortem with VOXPLANE_SIP_KEEP=1.
    # (kamailio_registrar_min_expires: a phone may re-register every REREGISTER s.)
    kamailio.nat_variables = dict(kamailio_listen=listen, kamailio_nathelper=True,
                                  kamailio_registrar_min_expires=REREGISTER,
                                  kamailio_natping_interval=KEEPALIVE,
                                  kamailio_log_level=int(os.environ.get('VOXPLANE_NAT_LOG_LEVEL', '2')),
                                  kamailio_rtpengine_sockets=['udp:127.0.0.1:%d' % relay.ng_port],
                                  kamailio_websocket_origins=[WEBPHONE_ORIGIN])
    return kamailio.nat_variables


# ------------------------------------------------------------------------------ helpers
def bindings(kamailio, user):
    """ul.lookup of user@acme: [(contact URI, received URI or None), ...]."""
    out = kamcmd(kamailio.ctl_socket, 'ul.lookup', 'location', '%s@%s' % (user, ACME)).stdout
    found, contact = [], None
    for line in out.splitlines():
        key, _sep, value = line.strip().partition(':')
        value = value.strip()
        if key == 'Address':
            contact = value
            found.append((contact, None))
        elif key == 'Received' and found and value and value != '[not set]':
            found[-1] = (found[-1][0], value)
    return found


def received_address(kamailio, user):
    """The received URI stored with user's one binding, or None."""
    rows = bindings(kamailio, user)
    return rows[0][1] if len(rows) == 1 else None


def sessions(kamailio):
    out = subprocess.run([kamailio.rtpengine_ctl, 'sessions'], capture_output=True, text=True, timeout=10,
                         check=False).stdout
    for line in out.splitlines():
        if line.startswith('Current sessions total:'):
            return int(line.split(':')[1])
    return None


def answered(result):
    """The trunk call was answered and ended by its BYE (sipp counts it successful)."""
    return result.rc == 0 and result.stats.get('SuccessfulCall(C)') == '1' and received(result, 'SIP/2.0 200')


def trunk_call(kamailio, dialled, peer, scenario='nat_trunk_call.xml', timeout=30):
    inf = users_file(kamailio, 'nat-in', [('+493055599999', ACME, 'unused', dialled, peer.address, str(peer.port))])
    return start_sipp(scenario, kamailio.target, kamailio.trunk, kamailio.workdir, inf=inf,
                      timeout=timeout)


def explain(kamailio, **results):
    lab = kamailio.lab
    return '%s\nrtp counters %s\n=== anna\n%s\n=== bert\n%s\n=== finn\n%s' % (
        report(kamailio, **results), lab.rtp_counts(), kamailio.anna.output()[-2500:], kamailio.bert.output()[-2500:], kamailio.finn.output()[-2500:])


# ------------------------------------------------------------------------------ tests
def test_phone_behind_nat_is_stored_with_its_public_address(lab):
    """The binding keeps the private Contact and, as received, the router's public address and
    the port the router mapped the phone's SIP port to."""
    contact, received_uri = bindings(lab, 'anna.desk')[0]
    assert lab.lab.office_net + '10' in contact
    assert received_uri and received_uri.startswith('sip:%s:' % lab.lab.router_wan), bindings(lab, 'anna.desk')
    public_port = int(received_uri.split(':')[2].split(';')[0])
    assert public_port in lab.lab.public_ports(lab.anna.address, 5060)


def test_trunk_calls_phone_behind_nat_with_audio_both_ways(lab):
    """The trunk calls anna's DDI: the INVITE reaches her through the NAT (received address,
    binding kept open by keepalives), she answers, RTP flows both ways through rtpengine; the
    re-INVITE and the BYE follow the Record-Route, and rtpengine holds no session after."""
    lab.lab.reset_rtp_counts()
    with RtpPeer(lab.trunk) as peer:
        result = finish_sipp(trunk_call(lab, '+4930123456010', peer))
    counts = lab.lab.rtp_counts()
    assert answered(result), explain(lab, trunk=result)
    assert peer.received > MIN_PACKETS and peer.sent > MIN_PACKETS, (peer.received, peer.sent, explain(lab))
    assert peer.sources == {lab.lab.kamailio}, 'RTP reached the trunk from %s, not only the relay' % peer.sources
    assert counts['out_10'] > MIN_PACKETS and counts['in_10'] > MIN_PACKETS, explain(lab, trunk=result)
    answer = [m for m in received(result, 'SIP/2.0 200') if 'application/sdp' in m.text][0]
    assert 'c=IN IP4 %s' % lab.lab.kamailio in answer.text, answer.text  # the relay, not 10.77.x
    assert wait_for(lambda: sessions(lab) == 0, 5), 'rtpengine sessions left: %s' % sessions(lab)


def test_phone_calls_phone_behind_the_same_nat_with_audio_both_ways(lab):
    """bert dials 10 from the same office: both legs are behind the NAT, both relayed."""
    lab.lab.reset_rtp_counts()
    lab.bert.dial('sip:10@%s' % ACME)
    try:
        both_phones = ('out_10', 'in_10', 'out_11', 'in_11')
        assert wait_for(lambda: min(lab.lab.rtp_counts()[k] for k in both_phones) > 1.5 * MIN_PACKETS, 15), \
            explain(lab)
    finally:
        lab.bert.hangup()
    counts = lab.lab.rtp_counts()
    assert counts['out_10'] > MIN_PACKETS and counts['out_11'] > MIN_PACKETS, counts
    assert wait_for(lambda: sessions(lab) == 0, 5), 'rtpengine sessions left: %s' % sessions(lab)


def test_keepalives_keep_the_binding_open(lab):
    """Longer than the router's binding timeout without a call: only Kamailio's OPTIONS
    keepalives keep anna reachable, and a call still rings her."""
    time.sleep(NAT_TIMEOUT + 2 * KEEPALIVE)
    with RtpPeer(lab.trunk) as peer:
        result = finish_sipp(trunk_call(lab, '+4930123456010', peer))
    assert answered(result), explain(lab, trunk=result)
    assert peer.received > MIN_PACKETS, explain(lab, trunk=result)


def test_phone_re_registers_after_the_nat_port_changes(lab):
    """The router forgets anna's NAT binding while she stays registered: her next re-REGISTER
    comes from a new public port, and the same binding (the same Contact) now carries that
    port, where calls reach her. (Her phone restarts first with a short registration interval,
    and again afterwards with the usual one; baresip's Contact changes with every start, so
    each start leaves a binding behind, which does not stop a call.)"""
    old = {binding[0] for binding in bindings(lab, 'anna.desk')}
    lab.anna.restart(regint=REREGISTER)
    try:
        mine = wait_for(lambda: [b for b in bindings(lab, 'anna.desk') if b[0] not in old and b[1]], 10)
        assert mine, (old, bindings(lab, 'anna.desk'))
        contact, before = mine[0]
        lab.lab.forget_bindings(lab.anna.address)
        # Kamailio's keepalives now go to a port the router no longer maps; her own re-REGISTER
        # (within REREGISTER s) opens a new one.
        moved = wait_for(lambda: [r for c, r in bindings(lab, 'anna.desk') if c == contact and r and r != before],
                         REREGISTER + 5)
        assert moved, (contact, before, bindings(lab, 'anna.desk'), lab.lab.public_ports(lab.anna.address, 5060))
        public_port = int(moved[0].split(':')[2].split(';')[0])
        assert public_port in lab.lab.public_ports(lab.anna.address, 5060), (moved, before)
        lab.lab.reset_rtp_counts()
        with RtpPeer(lab.trunk) as peer:
            result = finish_sipp(trunk_call(lab, '+4930123456010', peer))
        assert answered(result), explain(lab, trunk=result)
        assert peer.received > MIN_PACKETS and lab.lab.rtp_counts()['in_10'] > MIN_PACKETS, explain(lab, trunk=result)
    finally:
        lab.anna.restart()
        assert wait_for(lambda: len(bindings(lab, 'anna.desk')) > len(old) + 1, 10)


def test_cancelled_and_refused_calls_leave_no_relay_session(lab):
    """A call to bert (rings, answers only when told) that the caller cancels, and one that
    bert refuses (486): rtpengine got the offer while it rang, and holds no session afterwards."""
    with RtpPeer(lab.trunk) as peer:
        handle = trunk_call(lab, '+4930123456011', peer, scenario='nat_trunk_cancel.xml', timeout=10)
        assert wait_for(lambda: sessions(lab) == 1, 5), 'no relay session while ringing'
        cancelled = finish_sipp(handle)
    assert cancelled.rc == 0 and received(cancelled, 'SIP/2.0 487'), explain(lab, trunk=cancelled)
    assert wait_for(lambda: sessions(lab) == 0, 5), \
        'rtpengine sessions left after CANCEL: %s\n%s' % (sessions(lab), explain(lab, trunk=cancelled))
    with RtpPeer(lab.trunk) as peer:
        handle = trunk_call(lab, '+4930123456011', peer, timeout=10)
        assert wait_for(lambda: sessions(lab) == 1, 5), 'no relay session while ringing'
        assert wait_for(lambda: 'Incoming call' in lab.bert.output() or 'incoming call' in lab.bert.output(), 5)
        lab.bert.hangup()  # refuse the ringing call
        refused = finish_sipp(handle)
    assert final_reply(refused) == 'SIP/2.0 486 Busy Here', explain(lab, trunk=refused)
    assert wait_for(lambda: sessions(lab) == 0, 5), 'rtpengine sessions left after a refusal'


def _public_call(lab):
    """The trunk calls cora, a sipp phone registered from a public address (no NAT); returns the
    relay's session counts seen while the call was up and the INVITE cora got."""
    phone = Phone(lab, 'cora.desk')
    assert phone.register().rc == 0
    try:
        handle = phone.start('phone_answer.xml')
        seen = set()
        with RtpPeer(lab.trunk) as peer:
            call = trunk_call(lab, '+4930123456012', peer)
            while call['proc'].poll() is None:  # the relay's session count while the call is up
                seen.add(sessions(lab))
                time.sleep(0.2)
            caller = finish_sipp(call)
        callee = finish_sipp(handle)
        assert caller.rc == 0, explain(lab, trunk=caller, phone=callee)
        return seen, received(callee, 'INVITE ')[0]
    finally:
        phone.unregister()


def test_two_public_endpoints_are_not_relayed(lab):
    """A call between public endpoints: the SDP passes unchanged and rtpengine is never asked."""
    seen, invite = _public_call(lab)
    assert seen == {0}, 'rtpengine relayed a call between public endpoints: %s' % seen
    assert 'c=IN IP4 %s' % lab.trunk in invite.text, invite.text
    assert 'nat=yes' not in invite.text
    assert sessions(lab) == 0


def test_media_relay_always_relays_public_endpoints_too(lab):
    """kamailio_media_relay: always (a settings change: the role only reloads the router) relays
    the same call; back to nat afterwards."""
    assert lab.deploy(**dict(lab.nat_variables, kamailio_media_relay='always')).rc == 0
    try:
        time.sleep(1)  # every worker has re-imported the router
        seen, invite = _public_call(lab)
    finally:
        assert lab.deploy(**lab.nat_variables).rc == 0
    assert 1 in seen, 'no relay session during the call: %s' % seen
    assert 'c=IN IP4 %s' % lab.address in invite.text and 'nat=yes' in invite.text, invite.text
    assert wait_for(lambda: sessions(lab) == 0, 5), 'rtpengine sessions left: %s' % sessions(lab)


def test_a_tenant_with_media_relay_always_relays_public_endpoints_too(lab):
    """The tenant setting (media_relay: always, written by voxplane.pbx.tenant while Kamailio
    routes) relays the same call without any change to the role; back to auto afterwards."""
    assert lab.provision(SETTINGS, media_relay='always', finn_require_tls=True).rc == 0
    try:
        time.sleep(1.5)  # every worker checks the directory generation every 500 ms
        seen, invite = _public_call(lab)
    finally:
        assert lab.provision(SETTINGS, media_relay='auto', finn_require_tls=True).rc == 0
    assert 1 in seen, 'no relay session during the call: %s' % seen
    assert 'c=IN IP4 %s' % lab.address in invite.text and 'nat=yes' in invite.text, invite.text
    assert wait_for(lambda: sessions(lab) == 0, 5), 'rtpengine sessions left: %s' % sessions(lab)


def test_an_account_that_requires_tls_is_refused_over_udp(lab):
    """finn.desk (require_tls) registers over TLS (its phone, above); the same credentials over
    UDP get 403 once proven, while a wrong password is only challenged again."""
    assert any('transport=tls' in (c + (r or '')).lower() for c, r in bindings(lab, 'finn.desk'))
    refused = sip_register(lab, 'finn.desk')
    assert final_reply(refused) == 'SIP/2.0 403 TLS required for this account', report(lab, register=refused)
    try:
        assert statuses(sip_register(lab, 'cora.desk'))[-1:] == ['200']  # other accounts: any transport
    finally:
        Phone(lab, 'cora.desk').unregister()


@pytest.mark.parametrize('transport', ['tcp', 'tls'])
def test_crlf_keepalives_are_answered_on_connections(lab, transport):
    """A phone on TCP or TLS keeps its connection (and its NAT binding) open with a double CRLF
    (RFC 5626 3.5.1); Kamailio answers each with a single CRLF and keeps the connection."""
    port = lab.tls_port if transport == 'tls' else lab.port
    with socket.create_connection((lab.address, port), timeout=5) as raw:
        conn = raw
        if transport == 'tls':
            context = ssl.create_default_context(cafile=os.path.join(lab.config_dir, 'tls', 'server.pem'))
            context.check_hostname = False
            conn = context.wrap_socket(raw, server_hostname=lab.address)
        for _ping in range(2):
            conn.sendall(b'\r\n\r\n')
            assert conn.recv(16) == b'\r\n'


def test_tls_phone_registers_and_takes_a_trunk_call_with_srtp(lab):
    """finn's phone registers over TLS (the role's self-signed certificate) and insists on SRTP;
    the trunk speaks plain RTP: rtpengine bridges SRTP and RTP, audio flows both ways."""
    contact, received_uri = bindings(lab, 'finn.desk')[0]
    assert 'transport=tls' in contact.lower() or 'transport=tls' in (received_uri or '').lower(), \
        bindings(lab, 'finn.desk')
    lab.lab.reset_rtp_counts()
    with RtpPeer(lab.trunk) as peer:
        result = finish_sipp(trunk_call(lab, '+4930123456014', peer))
    counts = lab.lab.rtp_counts()
    assert answered(result), explain(lab, trunk=result)
    answer = [m for m in received(result, 'SIP/2.0 200') if 'application/sdp' in m.text][0]
    assert 'RTP/AVP' in answer.text and 'a=crypto' not in answer.text, answer.text  # plain RTP to the trunk
    assert peer.received > MIN_PACKETS and peer.sent > MIN_PACKETS, (peer.received, peer.sent, explain(lab))
    assert counts['out_12'] > MIN_PACKETS and counts['in_12'] > MIN_PACKETS, explain(lab, trunk=result)
    phone = lab.finn.output()
    assert 'SRTP is Enabled' in phone and 'failed to decrypt' not in phone, phone[-3000:]
    decoded = wait_for(lab.finn.audio_packets, 5)  # baresip's own count at hang-up
    assert decoded and min(decoded) > MIN_PACKETS, (decoded, phone[-3000:])
    assert wait_for(lambda: sessions(lab) == 0, 5), 'rtpengine sessions left: %s' % sessions(lab)


def test_a_host_behind_one_to_one_nat_advertises_its_public_address(tmp_path):
    """kamailio_public_address (a cloud VM's elastic address) is advertised on every listen entry
    without an advertise of its own, and keepalives come from it (the role in check mode with
    --diff on a fresh tree: what it would write)."""
    if missing_prerequisites():
        pytest.skip(missing_prerequisites())
    os.chmod(str(tmp_path), 0o755)
    instance = KamailioInstance(str(tmp_path), '127.0.0.1', 5060)
    listen = [{'proto': 'udp', 'address': '10.0.0.5', 'port': 5060},
              {'proto': 'tcp', 'address': '10.0.0.5', 'port': 5060, 'advertise': 'sip.example.net:5060'}]
    run = instance.deploy(check=True, diff=True, kamailio_listen=listen, kamailio_public_address='203.0.113.7',
                          kamailio_manage_service=False)
    assert run.rc == 0, repr(run)
    assert '+listen=udp:10.0.0.5:5060 advertise 203.0.113.7:5060' in run.stdout, run.stdout[-4000:]
    assert '+listen=tcp:10.0.0.5:5060 advertise sip.example.net:5060' in run.stdout
    assert '+modparam("nathelper", "sipping_from", "sip:pinger@203.0.113.7")' in run.stdout
    assert '"203.0.113.7:5060"' in run.stdout  # the router counts the public address as its own


@pytest.mark.parametrize('reached, advertised', [
    ('203.0.113.9', '203.0.113.9'),   # a cloud VM managed through its elastic address
    ('127.0.0.1', None),              # loopback: nothing to advertise
    ('pbx.example.net', None),        # a name: nothing is guessed
])
def test_the_public_address_defaults_to_the_address_ansible_reaches_the_host_at(tmp_path, reached, advertised):
    """kamailio_public_address auto (the default): ansible_host, when it is an IP address the host
    does not have itself, is advertised; else nothing is (the role in check mode with --diff)."""
    if missing_prerequisites():
        pytest.skip(missing_prerequisites())
    os.chmod(str(tmp_path), 0o755)
    instance = KamailioInstance(str(tmp_path), '127.0.0.1', 5060)
    listen = [{'proto': 'udp', 'address': '10.0.0.5', 'port': 5060}]
    run = instance.deploy(check=True, diff=True, kamailio_listen=listen, kamailio_manage_service=False,
                          ansible_host=reached)
    assert run.rc == 0, repr(run)
    if advertised:
        assert '+listen=udp:10.0.0.5:5060 advertise %s:5060' % advertised in run.stdout, run.stdout[-4000:]
    else:
        listens = [line for line in run.stdout.splitlines() if line.startswith('+listen=')]
        assert listens == ['+listen=udp:10.0.0.5:5060'], run.stdout[-4000:]


# ------------------------------------------------------------------------------ WebRTC
def call_info(kamailio, call_id):
    """rtpengine's view of one call (rtpengine-ctl list sessions <call-id>): its media streams
    with their protocols."""
    return subprocess.run(['rtpengine-ctl', '-ip', '127.0.0.1', '-port', str(kamailio.rtpengine_cli), 'list',
                           'sessions', call_id], capture_output=True, text=True, timeout=10, check=False).stdout


def with_webphone(lab, talk, seconds=4):
    """wera's webphone (198.18.N.4, public) connects over secure WebSocket, registers, runs
    ``talk(phone)`` (a coroutine function) and unregisters; returns the phone, its REGISTER reply,
    its binding as Kamailio stored it and what ``talk`` returned."""

    async def scenario():
        phone = webphone.Webphone('wss://%s:%d/ws' % (lab.lab.kamailio, lab.wss_port), 'wera.web', ACME,
                                  password('wera.web'), os.path.join(lab.config_dir, 'tls', 'server.pem'),
                                  lab.lab.webphone, origin=WEBPHONE_ORIGIN)
        await phone.connect()
        try:
            registered = await phone.register()
            binding = bindings(lab, 'wera.web')
            return phone, registered, binding, await talk(phone)
        finally:
            try:
                await phone.register(expires=0)
            finally:
                await phone.close()

    return asyncio.run(asyncio.wait_for(scenario(), 30 + seconds))


def test_webphone_over_secure_websocket_calls_a_desk_phone_with_audio_both_ways(lab):
    """wera's webphone (aiortc: ICE, DTLS-SRTP, as a browser) registers over secure WebSocket and
    calls anna's desk phone behind the NAT. rtpengine bridges DTLS-SRTP (the webphone's side) and
    plain RTP (anna's): both hear the other, and no session is left after the BYE."""
    lab.lab.reset_rtp_counts()
    phone, registered, binding, (invited, bye) = with_webphone(
        lab, lambda phone: phone.call('10', 4, during=lambda call_id: call_info(lab, call_id)))
    log = '\n'.join(phone.log)[-6000:]
    counts = lab.lab.rtp_counts()
    assert registered.code == 200, log
    assert binding and 'transport=ws' in (binding[0][1] or '').lower(), binding  # reached over its connection
    assert invited.code == 200 and bye is not None and bye.code == 200, '%s\n%s' % (log, explain(lab))
    # The webphone's side: DTLS-SRTP with ICE; the desk phone's: plain RTP.
    assert 'UDP/TLS/RTP/SAVPF' in phone.answer and 'a=fingerprint:' in phone.answer \
        and 'a=ice-ufrag:' in phone.answer and 'a=crypto' not in phone.answer, phone.answer
    assert phone.dtls_state == 'connected', phone.dtls_state
    assert 'UDP/TLS/RTP/SAVPF' in phone.seen and 'RTP/AVP' in phone.seen, phone.seen
    # Audio both ways: the tone anna sends is heard (decoded frames with sound), and anna gets
    # the webphone's RTP through the relay.
    assert phone.tone.sent > MIN_PACKETS and phone.sounds > MIN_PACKETS, (phone.tone.sent, phone.heard, phone.sounds)
    assert counts['in_10'] > MIN_PACKETS and counts['out_10'] > MIN_PACKETS, explain(lab)
    assert wait_for(lambda: sessions(lab) == 0, 5), 'rtpengine sessions left: %s' % sessions(lab)


def test_desk_phone_calls_the_webphone_with_audio_both_ways(lab):
    """anna's desk phone dials 15, wera's webphone: rtpengine offers the webphone ICE and
    DTLS-SRTP (UDP/TLS/RTP/SAVPF, one port for RTP and RTCP, no SDES keys) in place of anna's
    plain RTP; the webphone answers, both hear the other, the webphone hangs up."""

    async def answer(phone):
        phone.expect_call()
        await asyncio.get_running_loop().run_in_executor(None, lab.anna.dial, 'sip:15@%s' % ACME)
        return await phone.take_call(4)

    lab.lab.reset_rtp_counts()
    phone, registered, binding, bye = with_webphone(lab, answer)
    log = '\n'.join(phone.log)[-6000:]
    counts = lab.lab.rtp_counts()
    assert registered.code == 200 and binding, log
    assert bye.code == 200, '%s\n%s' % (log, explain(lab))
    offer = phone.offer
    assert 'UDP/TLS/RTP/SAVPF' in offer and 'a=fingerprint:' in offer and 'a=setup:actpass' in offer \
        and 'a=ice-ufrag:' in offer and 'a=rtcp-mux' in offer and 'a=mid:' in offer and 'a=crypto' not in offer, offer
    assert phone.dtls_state == 'connected', phone.dtls_state
    assert phone.tone.sent > MIN_PACKETS and phone.sounds > MIN_PACKETS, (phone.tone.sent, phone.heard, phone.sounds)
    assert counts['in_10'] > MIN_PACKETS and counts['out_10'] > MIN_PACKETS, explain(lab)
    assert wait_for(lambda: sessions(lab) == 0, 5), 'rtpengine sessions left: %s' % sessions(lab)


def http_status(lab, port, path='/ws', origin=WEBPHONE_ORIGIN, upgrade=True, tls=True):
    """The status of one HTTP GET to Kamailio (a WebSocket handshake when ``upgrade``)."""
    headers = {'Upgrade': 'websocket', 'Connection': 'Upgrade', 'Sec-WebSocket-Version': '13',
               'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol': 'sip'} if upgrade else {}
    if origin:
        headers['Origin'] = origin
    if tls:
        context = ssl.create_default_context(cafile=os.path.join(lab.config_dir, 'tls', 'server.pem'))
        connection = http.client.HTTPSConnection(lab.lab.kamailio, port, context=context, timeout=5)
    else:
        connection = http.client.HTTPConnection(lab.lab.kamailio, port, timeout=5)
    try:
        connection.request('GET', path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_only_allowed_websocket_handshakes_are_accepted(lab):
    """The secure WebSocket port upgrades a handshake of /ws from the allowed origin (101); a
    foreign or missing origin gets 403, another path or a plain GET 404, and HTTP on the plain
    TCP SIP port or the SIP-over-TLS port 403: only the wss listen entry speaks WebSocket."""
    assert http_status(lab, lab.wss_port) == 101
    assert http_status(lab, lab.wss_port, origin='https://evil.example') == 403
    assert http_status(lab, lab.wss_port, origin=None) == 403
    assert http_status(lab, lab.wss_port, path='/admin') == 404
    assert http_status(lab, lab.wss_port, upgrade=False) == 404
    assert http_status(lab, lab.port, tls=False) == 403
    assert http_status(lab, lab.tls_port) == 403


def test_trunk_calls_the_webphone_with_a_re_invite_and_audio_both_ways(lab):
    """The trunk calls wera's DDI (15): the trunk gets plain RTP/AVP from the relay, the webphone
    ICE and DTLS-SRTP; the trunk's re-INVITE is offered to the webphone the same way, and its BYE
    ends the call with no relay session left."""

    async def answer(phone):
        phone.expect_call()
        with RtpPeer(lab.trunk) as peer:
            handle = trunk_call(lab, '+4930123456015', peer)
            bye = await phone.take_call(timeout=20)
            result = await asyncio.get_running_loop().run_in_executor(None, finish_sipp, handle)
        return peer, bye, result

    phone, registered, binding, (peer, bye, result) = with_webphone(lab, answer, seconds=20)
    log = '\n'.join(phone.log)[-6000:]
    assert registered.code == 200 and binding, log
    assert answered(result), '%s\n%s' % (log, explain(lab, trunk=result))
    assert bye.method == 'BYE', log
    reinvites = [line for line in phone.log if line.startswith('<<< INVITE') and ';tag=' in line.split('To:')[1]]
    assert reinvites and 'UDP/TLS/RTP/SAVPF' in reinvites[0] and 'a=ice-ufrag:' in reinvites[0], log
    answer_sdp = [m for m in received(result, 'SIP/2.0 200') if 'application/sdp' in m.text][0].text
    assert 'RTP/AVP' in answer_sdp and 'a=fingerprint' not in answer_sdp and 'a=ice-' not in answer_sdp \
        and 'c=IN IP4 %s' % lab.lab.kamailio in answer_sdp, answer_sdp
    assert phone.dtls_state == 'connected', phone.dtls_state
    assert peer.received > MIN_PACKETS and peer.sent > MIN_PACKETS and phone.heard > MIN_PACKETS, \
        (peer.received, peer.sent, phone.heard)
    assert peer.sources == {lab.lab.kamailio}, peer.sources
    assert wait_for(lambda: sessions(lab) == 0, 5), 'rtpengine sessions left: %s' % sessions(lab)


def test_media_api_list_matches_the_committed_ksr_double_data(lab):
    """tests/unit/ksr_double/api_list_media.json is what this Kamailio (nathelper, rtpengine,
    tls, xhttp, websocket loaded) exports to KEMI: the double the unit tests of voxplane_media and
    voxplane_websocket use. VOXPLANE_WRITE_API_LIST=1 rewrites the file from the live server."""
    path = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'tests', 'unit', 'ksr_double', 'regenerate.py')
    spec = importlib.util.spec_from_file_location('voxplane_ksr_regenerate', path)
    regenerate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regenerate)
    live = regenerate.render(regenerate.build(regenerate.DEFAULT_KAMCMD, 'unix:' + lab.ctl_socket))
    output = os.path.join(os.path.dirname(path), 'api_list_media.json')
    if os.environ.get('VOXPLANE_WRITE_API_LIST') == '1':
        with open(output, 'w') as handle:
            handle.write(live)
    with open(output) as handle:
        assert live == handle.read(), (
            'tests/unit/ksr_double/api_list_media.json is stale: rewrite it with VOXPLANE_WRITE_API_LIST=1 '
            '.venv/bin/python -m pytest tests/sip/test_nat_media.py -k api_list')
