# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router's security findings, each as an attack on a real Kamailio (conftest.py).

One test (or parametrised test) per finding; each fails on a router without the fix and
passes with it. The session's directory is tests/lab/playbooks/tenants.yml (acme: anna 10 with
international permission, bert 11 without, cora 12 anonymous, the block +49301234560 00-99;
beta: dora 10 behind +494099999999; the trunk stand-in at kamailio.trunk:kamailio.trunk_port,
a trusted source). An attacker is a fresh 127.0.0.x that is neither Kamailio's address nor
the trunk's (``attacker_address``), one per test, so that bans do not leak between tests.

1. Open relay to the trunk (forged in-dialog requests):
   - test_forged_in_dialog_request_is_not_relayed[...]: an INVITE/BYE/MESSAGE/OPTIONS with a
     To tag, no credentials and a Route to Kamailio and/or the trunk, R-URI at the trunk:
     481 or 403 and nothing reaches the trunk stand-in (without the fix: relayed by loose_route).
   - test_in_dialog_requests_of_real_calls_still_follow_the_record_route[...]: positive
     control, an authenticated internal call and an inbound call with re-INVITE and BYE.
2. Digest replay:
   - test_the_challenge_offers_qop_auth
   - test_a_captured_proxy_authorization_cannot_be_replayed: the header of a real call
     replayed from another port and Call-ID to an outside number, and the captured INVITE
     replayed byte for byte: neither is accepted, nothing new reaches the trunk or the phone.
   - test_a_digest_whose_uri_differs_from_the_request_uri_is_refused: a fresh, correct digest
     (computed here) for another uri: 400/403, nothing at the trunk; the same digest client
     with the right uri does go out (control).
3. Permission bypass through a registered contact:
   - test_register_refuses_a_contact_at_the_trunk_or_at_kamailio[...]
   - test_a_contact_at_the_trunk_in_usrloc_is_never_rung: the contact put straight into usrloc
     (kamcmd ul.add); calls to bert from anna and from the trunk get a 4xx, the trunk nothing.
4. Undecodable input:
   - test_undecodable_bytes_get_400_not_500[...]: non-UTF-8 bytes in an INVITE's R-URI user,
     a REGISTER's To domain, a digest username.
   - test_an_undecodable_ack_gets_no_reply_and_kamailio_goes_on
5. Brute force and enumeration:
   - test_an_unknown_account_looks_like_a_wrong_password
   - test_password_guessing_bans_the_address: 300 wrong-password REGISTERs in ~3 s, at most
     20 answered, then silence; htable vxban lists the address, one "voxplane: banned" log line,
     other addresses still register, htable.delete lifts the ban.
6. Identity leaks (From carries the public identity, never the SIP username):
   - test_the_callee_never_sees_the_sip_username_in_from[...]: cora (anonymous) and bert to
     beta's number, bert to an outside number through the trunk; in-dialog requests carry the
     same rewritten From, the caller sees its own From in every reply (uac restore).

Every sipp run is bounded (-m, -timeout, a subprocess timeout); every raw socket has a timeout.
"""

import os
import random
import re
import socket
import time
import uuid

import pytest

from lab.calls import (
    ACME, BETA, call, contacts, final_reply, first_invite, inbound, register, report, requests, scene, users_file,
)
from lab.sipp import Listener, Phone, finish_sipp, parse_messages, password, received, run_sipp, statuses
from lab.net import AddressPool
from lab.wire import Peer, challenge_params, code_of, digest, final_of, first_line, header, wait_for_options

OUTSIDE = '+442012345678'
FORGED_PAI = '<sip:+49301234560@acme.sip.test>'
BERT_PUBLIC = '+4930123456011'  # bert's DDI 11 in acme's block +49301234560 00-99
NATIONAL = '0305559999'  # an outside number bert may call (national)
_ATTACKERS = set()


# ------------------------------------------------------------------------------ helpers
_POOLS = {}


def attacker_address(kamailio):
    """A 127.0.0.x no other test of this session used, that is neither Kamailio's address, the
    trunk stand-in's nor a trusted trunk of the role's variables (127.0.0.9)."""
    if kamailio.address not in _POOLS:
        _POOLS[kamailio.address] = AddressPool({kamailio.address, kamailio.trunk, '127.0.0.1', '127.0.0.9'})
    return _POOLS[kamailio.address].take()


def explain(kamailio, peers=(), listeners=None, sipp=None, log_from=None):
    """Everything a failed assertion needs: raw transcripts, what the listeners got, sipp
    results (lab.calls.report) and Kamailio's log tail."""
    parts = []
    for name, peer in peers:
        parts.append('=== %s (%s:%d)\n%s' % (name, peer.address, peer.port, '\n'.join(peer.transcript)[-6000:]))
    for name, listener in (listeners or {}).items():
        received_text = '\n---\n'.join(listener.datagrams)[-4000:]
        parts.append('=== %s received %d datagram(s)\n%s' % (name, len(listener.datagrams), received_text))
    parts.append(report(kamailio, **(sipp or {})))
    if log_from is not None:
        parts.append('=== kamailio log since the test began\n' + kamailio.log_since(log_from)[-6000:])
    return '\n'.join(parts)


class BusyListener(Listener):
    """lab.sipp.Listener that also answers every INVITE it gets with 486 (and ignores the
    rest): it records what reached the trunk stand-in (or a phone's port) like Listener, but
    an INVITE relayed there ends at once instead of being retransmitted by tm for fr_timer
    seconds into the next test's listener or trunk stand-in."""

    def _run(self):
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode('utf-8', 'replace')
            self.datagrams.append(text)
            if text.startswith('INVITE '):
                keep = [line for line in text.split('\r\n\r\n', 1)[0].split('\r\n')[1:]
                        if line.split(':', 1)[0].strip().lower() in ('via', 'v', 'from', 'f', 'call-id', 'i', 'cseq')]
                to = [line for line in text.split('\r\n\r\n', 1)[0].split('\r\n')
                      if line.split(':', 1)[0].strip().lower() in ('to', 't')] or ['To: <sip:x@x>']
                to = to[0] if ';tag=' in to[0] else to[0] + ';tag=busy'
                reply = ['SIP/2.0 486 Busy Here'] + keep + [to, 'Content-Length: 0']
                try:
                    self.sock.sendto(('\r\n'.join(reply) + '\r\n\r\n').encode('utf-8'), source)
                except OSError:
                    return


def call_ids_of(datagrams):
    return sorted(set(v for d in datagrams for v in header(d, 'Call-ID')))


# ---------------------------------------------------------------------------- a call with a digest made here
SDP = ('v=0\r\no=attacker 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n'
       'm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n')


def invite_with_digest(peer, user, dialled, auth_uri=None, secret=None, domain=ACME, timeout=3.0, call_id=None):
    """An INVITE from ``user`` to sip:<dialled>@<domain> without credentials (407), then again
    with a digest computed here whose uri is ``auth_uri`` (default: the Request-URI).
    Returns (challenge reply, replies to the INVITE with credentials)."""
    ruri = 'sip:%s@%s' % (dialled, domain)
    call_id, tag = call_id or uuid.uuid4().hex, uuid.uuid4().hex[:10]
    common = dict(from_uri='sip:%s@%s' % (user, domain), to='<%s>' % ruri, call_id=call_id, from_tag=tag,
                  headers=['Content-Type: application/sdp'], body=SDP)
    first = peer.exchange(peer.compose('INVITE', ruri, cseq=1, **common), timeout)
    challenge = [r for r in first if first_line(r).startswith('SIP/2.0 407')]
    if not challenge:
        return (first[-1] if first else None), []
    # ACK the 407 (a negative final reply of an INVITE transaction).
    peer.send(peer.compose('ACK', ruri, from_uri=common['from_uri'], to=header(challenge[0], 'To')[0],
                           call_id=call_id, from_tag=tag, cseq=1,
                           branch=re.search(r'branch=([^;\s]+)', header(challenge[0], 'Via')[0]).group(1)))
    value = header(challenge[0], 'Proxy-Authenticate')[0]
    credentials = digest(value, user, secret or password(user), 'INVITE', auth_uri or ruri)
    second = dict(common, headers=common['headers'] + ['Proxy-Authorization: ' + credentials])
    return challenge[0], peer.exchange(peer.compose('INVITE', ruri, cseq=2, **second), timeout)


# ------------------------------------------------------------------------------ 1. open relay
def _forged(kamailio, peer, method, routes):
    trunk_uri = 'sip:%s@%s:%d' % (OUTSIDE, kamailio.trunk, kamailio.trunk_port)
    hops = {'kamailio': '<sip:%s:%d;lr>' % kamailio.target,
            'trunk': '<sip:%s:%d;lr>' % (kamailio.trunk, kamailio.trunk_port)}
    headers = ['Route: ' + ', '.join(hops[r] for r in routes), 'P-Asserted-Identity: ' + FORGED_PAI]
    body = ''
    if method == 'INVITE':
        headers.append('Content-Type: application/sdp')
        body = SDP
    elif method == 'MESSAGE':
        headers.append('Content-Type: text/plain')
        body = 'toll fraud'
    return peer.compose(method, trunk_uri, from_uri='sip:+49301234560@acme.sip.test',
                        to='<sip:%s@%s>;tag=x' % (OUTSIDE, kamailio.trunk), cseq=2, headers=headers, body=body)


@pytest.mark.parametrize('method,routes', [
    pytest.param('INVITE', ('kamailio',), id='invite-route-kamailio'),
    pytest.param('INVITE', ('kamailio', 'trunk'), id='invite-route-kamailio-trunk'),
    pytest.param('INVITE', ('trunk',), id='invite-route-trunk'),
    pytest.param('BYE', ('kamailio',), id='bye-route-kamailio'),
    pytest.param('BYE', ('trunk',), id='bye-route-trunk'),
    pytest.param('MESSAGE', ('kamailio',), id='message-route-kamailio'),
    pytest.param('OPTIONS', ('kamailio',), id='options-route-kamailio'),
])
def test_forged_in_dialog_request_is_not_relayed(kamailio, method, routes):
    """No credentials, not from the trunk, a To tag that belongs to no dialog: Kamailio must not
    relay it (to the trunk, where it would be a free outside call with a forged identity)."""
    attacker = attacker_address(kamailio)
    with BusyListener(kamailio.trunk, kamailio.trunk_port) as trunk, Peer(attacker, kamailio.target) as peer:
        replies = peer.exchange(_forged(kamailio, peer, method, routes), timeout=2.5)
        time.sleep(0.3)
    why = explain(kamailio, [('attacker', peer)], {'trunk': trunk})
    assert trunk.datagrams == [], 'the forged %s reached the trunk\n%s' % (method, why)
    assert code_of(final_of(replies)) in ('481', '403'), '%s\n%s' % (final_of(replies), why)


def test_a_forged_in_dialog_invite_from_sipp_gets_481_and_nothing_reaches_the_trunk(kamailio):
    """Finding 1 as a sipp scenario (sec_forged_in_dialog.xml): the INVITE of a fraudster's tool,
    To tag and Route via Kamailio to the trunk, forged P-Asserted-Identity, no credentials."""
    attacker = attacker_address(kamailio)
    inf = os.path.join(kamailio.workdir, 'forged-%s.csv' % os.urandom(3).hex())
    with open(inf, 'w') as handle:
        handle.write('SEQUENTIAL\n%s;%s:%d;%s:%d;+49301234560;acme.sip.test\n' % (
            OUTSIDE, kamailio.trunk, kamailio.trunk_port, kamailio.address, kamailio.port))
    with BusyListener(kamailio.trunk, kamailio.trunk_port) as trunk:
        result = run_sipp('sec_forged_in_dialog.xml', kamailio.target, attacker, kamailio.workdir, inf=inf,
                          timeout=10)
        time.sleep(0.3)
    why = report(kamailio, fraudster=result)
    assert trunk.datagrams == [], 'the forged INVITE reached the trunk\n%s' % why
    assert final_reply(result) == 'SIP/2.0 481 Call/Transaction Does Not Exist', why


@pytest.mark.parametrize('kind', ['internal', 'inbound'])
def test_in_dialog_requests_of_real_calls_still_follow_the_record_route(kamailio, kind):
    """Positive control for finding 1: a real call's ACK, re-INVITE, ACK and BYE are relayed
    along the Record-Route set (bert -> anna with credentials; the trunk -> anna's DDI)."""
    anna = Phone(kamailio, 'anna.desk')
    if kind == 'internal':
        caller, phones = scene(kamailio, lambda: call(kamailio, 'bert.desk', '10'), answer=anna)
        expected = ['407', '200', '200', '200']
    else:
        caller, phones = scene(kamailio, lambda: inbound(kamailio, '+4930123456010'), answer=anna)
        expected = ['200', '200', '200']
    why = report(kamailio, caller=caller, anna=phones['anna.desk'])
    assert caller.rc == 0 and statuses(caller) == expected, why
    assert phones['anna.desk'].rc == 0 and requests(phones['anna.desk']) == ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE'], \
        why


# ------------------------------------------------------------------------------ 2. digest replay
def test_the_challenge_offers_qop_auth(kamailio):
    with Peer(kamailio.address, kamailio.target) as peer:
        challenge, dummy = invite_with_digest(peer, 'bert.desk', NATIONAL)
        assert challenge and first_line(challenge).startswith('SIP/2.0 407'), explain(kamailio, [('bert', peer)])
        params = challenge_params(header(challenge, 'Proxy-Authenticate')[0])
    qops = [q.strip() for q in params.get('qop', '').split(',')]
    assert 'auth' in qops, 'the challenge offers no qop=auth: %s' % header(challenge, 'Proxy-Authenticate')


def _captured_invite(result):
    """The INVITE with Proxy-Authorization sipp sent, as (wire bytes, SipMessage)."""
    sent = [m for m in parse_messages(result.messages)
            if m.direction == 'sent' and m.first_line.startswith('INVITE ') and header(m, 'Proxy-Authorization')]
    assert sent, 'sipp sent no INVITE with credentials'
    head, _sep, body = sent[0].text.partition('\n\n')
    body = body.rstrip('\n') + '\n' if body.strip() else ''
    head = re.sub(r'(?im)^(Content-Length|l):.*$', 'Content-Length: %d' % len(body.replace('\n', '\r\n')), head)
    return (head.replace('\n', '\r\n') + '\r\n\r\n' + body.replace('\n', '\r\n')).encode('utf-8'), sent[0]


def test_a_captured_proxy_authorization_cannot_be_replayed(kamailio):
    """bert calls anna (10) for real; his Proxy-Authorization is read from sipp's trace. Replayed
    (1) in a new INVITE from another port and Call-ID to an outside number bert may call, and
    (2) as the very same INVITE from the same port once its transaction is gone: neither is
    accepted, nothing reaches the trunk nor, again, anna's phone."""
    anna = Phone(kamailio, 'anna.desk')
    assert anna.register().rc == 0
    try:
        handle = anna.start('phone_answer.xml')
        caller = call(kamailio, 'bert.desk', '10')
        phone = finish_sipp(handle, timeout=3)
        ended = time.monotonic()
        why = report(kamailio, caller=caller, anna=phone)
        assert caller.rc == 0 and statuses(caller) == ['407', '200', '200', '200'], why
        wire, captured = _captured_invite(caller)
        credentials = header(captured, 'Proxy-Authorization')[0]
        sipp_port = int(re.search(r' -p (\d+)', ' '.join(caller.cmd)).group(1))

        # (1) the captured credentials in a new call to an outside number
        ruri = 'sip:%s@%s' % (NATIONAL, ACME)
        with BusyListener(kamailio.trunk, kamailio.trunk_port) as trunk, Peer(kamailio.address, kamailio.target) as thief:
            stolen = thief.compose('INVITE', ruri, from_uri='sip:bert.desk@%s' % ACME, to='<%s>' % ruri,
                                   headers=['Proxy-Authorization: ' + credentials, 'Content-Type: application/sdp'],
                                   body=SDP)
            replies = thief.exchange(stolen, timeout=2.5)
            time.sleep(0.3)
        why = explain(kamailio, [('replay', thief)], {'trunk': trunk}, sipp={'caller': caller})
        assert trunk.datagrams == [], 'the replayed credentials placed an outside call\n' + why
        assert code_of(final_of(replies)) in ('407', '400', '403'), final_of(replies) + '\n' + why

        # (2) the same INVITE again, from the same port, after tm forgot its transaction
        # (wait_timer, 5 s): as a retransmission it would only be absorbed.
        time.sleep(max(0.0, ended + 6.0 - time.monotonic()))
        with BusyListener(kamailio.address, anna.port) as phone_port, \
                BusyListener(kamailio.trunk, kamailio.trunk_port) as trunk, \
                Peer(kamailio.address, kamailio.target, sipp_port) as thief:
            call_id = header(captured, 'Call-ID')[0]
            thief.send(wire)
            replies = thief.replies(call_id, timeout=2.5)
            time.sleep(0.3)
        why = explain(kamailio, [('exact replay', thief)], {'anna': phone_port, 'trunk': trunk})
        assert phone_port.datagrams == [] and trunk.datagrams == [], 'the replayed INVITE was routed again\n' + why
        assert code_of(final_of(replies)) in ('407', '400', '403'), final_of(replies) + '\n' + why
    finally:
        anna.unregister()


def test_a_digest_whose_uri_differs_from_the_request_uri_is_refused(kamailio):
    """RFC 2617 3.2.2: the digest uri must be the Request-URI. A fresh, correct digest for
    sip:10@acme.sip.test on an INVITE to an outside number: 400 (or 403), nothing at the trunk.
    Control: the same client with the right uri is accepted and the call goes out."""
    with BusyListener(kamailio.trunk, kamailio.trunk_port) as trunk, Peer(kamailio.address, kamailio.target) as peer:
        _challenge, control = invite_with_digest(peer, 'bert.desk', NATIONAL)
        time.sleep(0.3)
    why = explain(kamailio, [('control', peer)], {'trunk': trunk})
    assert [d for d in trunk.datagrams if d.startswith('INVITE ')], \
        'the control call (correct digest) did not reach the trunk: the digest client is wrong?\n' + why

    call_id = uuid.uuid4().hex
    with BusyListener(kamailio.trunk, kamailio.trunk_port) as trunk, Peer(kamailio.address, kamailio.target) as peer:
        _challenge, replies = invite_with_digest(peer, 'bert.desk', NATIONAL, auth_uri='sip:10@%s' % ACME,
                                                 call_id=call_id)
        time.sleep(0.3)
    why = explain(kamailio, [('uri mismatch', peer)], {'trunk': trunk})
    assert call_id not in call_ids_of(trunk.datagrams), 'a digest for another uri placed the outside call\n' + why
    assert code_of(final_of(replies)) in ('400', '403'), final_of(replies) + '\n' + why


# ------------------------------------------------------------------------------ 3. contacts
def _register_contact(kamailio, user, contact):
    inf = users_file(kamailio, 'contact', [(user, ACME, password(user), contact)])
    return kamailio.sipp('sec_register_contact.xml', inf=inf, timeout=10)


@pytest.mark.parametrize('where', ['trunk', 'kamailio'])
def test_register_refuses_a_contact_at_the_trunk_or_at_kamailio(kamailio, where):
    """bert (no international permission) binds an outside number at the trunk (or at
    Kamailio itself) as his contact: a call to bert would become a call to that number."""
    host = (kamailio.trunk, kamailio.trunk_port) if where == 'trunk' else kamailio.target
    contact = 'sip:%s@%s:%d' % ((OUTSIDE,) + host)
    aor = 'bert.desk@' + ACME
    try:
        result = _register_contact(kamailio, 'bert.desk', contact)
        bound = contacts(kamailio, aor)
    finally:
        kamailio.kamcmd('ul.rm', 'location', aor)
    why = report(kamailio, register=result) + '\nusrloc: %r' % bound
    assert not [c for c in bound if c.startswith(contact)], 'the contact was bound\n' + why
    assert result.rc == 0 and statuses(result) == ['401', '403'], why


def test_a_contact_at_the_trunk_in_usrloc_is_never_rung(kamailio):
    """Defence in depth: the same contact put straight into usrloc (kamcmd ul.add). anna calls
    bert (11) and the trunk calls bert's DDI: a 4xx, and nothing reaches the trunk stand-in."""
    aor = 'bert.desk@' + ACME
    contact = 'sip:%s@%s:%d' % (OUTSIDE, kamailio.trunk, kamailio.trunk_port)
    # ul.add table AOR contact expires Q path flags cflags methods (usrloc README, 5.6): Q must
    # look like a float to kamcmd, methods 0xffffffff = every method (registrar method_filtering).
    added = kamailio.kamcmd('ul.add', 'location', aor, contact, '120', '1.0', '.', '0', '0', '4294967295')
    try:
        assert added.returncode == 0, added.stdout + added.stderr
        assert [c for c in contacts(kamailio, aor) if c.startswith(contact)], 'ul.add did not bind %s' % contact
        with BusyListener(kamailio.trunk, kamailio.trunk_port) as trunk:
            internal = call(kamailio, 'anna.desk', '11', timeout=12)
            from_trunk = inbound(kamailio, BERT_PUBLIC, timeout=12)
            time.sleep(0.3)
    finally:
        kamailio.kamcmd('ul.rm', 'location', aor)
    why = explain(kamailio, listeners={'trunk': trunk}, sipp={'anna': internal, 'trunk caller': from_trunk})
    assert trunk.datagrams == [], 'a call to bert was sent to the contact at the trunk\n' + why
    for result in (internal, from_trunk):
        assert code_of(final_reply(result)) in ('480', '403', '404'), '%s\n%s' % (final_reply(result), why)


# ------------------------------------------------------------------------------ 4. undecodable
def _undecodable(kamailio, peer, where):
    bad = b'\xff\xfe'
    if where == 'invite-ruri-user':
        ruri = b'sip:+49' + bad + b'30123456010@' + ACME.encode()
        return peer.compose('INVITE', ruri, from_uri='sip:bert.desk@%s' % ACME, to='<sip:10@%s>' % ACME,
                            headers=['Content-Type: application/sdp'], body=SDP)
    if where == 'register-to-domain':
        # Kamailio's URI parser refuses such bytes in a host name (sanity answers 400 by itself)
        # but not inside an IPv6 reference, so they reach the script as $td.
        return peer.compose('REGISTER', 'sip:%s' % ACME, from_uri='sip:bert.desk@%s' % ACME,
                            to=b'<sip:bert.desk@[::' + bad + b']>')
    assert where == 'register-digest-username'
    credentials = (b'Authorization: Digest username="bert' + bad + b'.desk", realm="acme.sip.test", '
                   b'nonce="0123456789abcdef", uri="sip:acme.sip.test", '
                   b'response="0123456789abcdef0123456789abcdef", algorithm=MD5')
    return peer.compose('REGISTER', 'sip:%s' % ACME, from_uri='sip:bert.desk@%s' % ACME,
                        to='<sip:bert.desk@%s>' % ACME, headers=[credentials])


@pytest.mark.parametrize('where', ['invite-ruri-user', 'register-to-domain', 'register-digest-username'])
def test_undecodable_bytes_get_400_not_500(kamailio, where):
    with Peer(attacker_address(kamailio), kamailio.target) as peer:
        replies = peer.exchange(_undecodable(kamailio, peer, where), timeout=2.0)
    assert code_of(final_of(replies)) == '400', final_of(replies) + '\n' + explain(kamailio, [('sender', peer)])


def test_an_undecodable_ack_gets_no_reply_and_kamailio_goes_on(kamailio):
    bad = b'\xff\xfe'
    with Peer(attacker_address(kamailio), kamailio.target) as peer:
        acks = [peer.compose('ACK', b'sip:+49' + bad + b'30123456010@' + ACME.encode(),
                             from_uri='sip:bert.desk@%s' % ACME, to='<sip:10@%s>' % ACME),
                peer.compose('ACK', b'sip:10@' + ACME.encode(), from_uri='sip:bert.desk@%s' % ACME,
                             to=b'<sip:10@acme' + bad + b'.sip.test>;tag=x')]
        replies = [peer.exchange(ack, timeout=1.0) for ack in acks]
    why = explain(kamailio, [('sender', peer)])
    assert replies == [[], []], why
    assert wait_for_options(kamailio.address, kamailio.port, timeout=3), 'Kamailio stopped answering OPTIONS\n' + why


# ------------------------------------------------------------------------------ 5. brute force
def test_an_unknown_account_looks_like_a_wrong_password(kamailio):
    attacker = attacker_address(kamailio)
    unknown = run_sipp('register_any.xml', kamailio.target, attacker, kamailio.workdir, timeout=10,
                       inf=users_file(kamailio, 'zoe', [('zoe.desk', ACME, 'guess-1')]))
    wrong = run_sipp('register_any.xml', kamailio.target, attacker, kamailio.workdir, timeout=10,
                     inf=users_file(kamailio, 'bert', [('bert.desk', ACME, 'guess-1')]))
    why = report(kamailio, unknown=unknown, wrong=wrong)
    assert final_reply(wrong) == 'SIP/2.0 401 Unauthorized', why
    assert final_reply(unknown) == final_reply(wrong), why


def _register_request(peer, user, cseq=1, call_id=None, tag=None, credentials=None):
    aor = 'sip:%s@%s' % (user, ACME)
    return peer.compose('REGISTER', 'sip:%s' % ACME, from_uri=aor, to='<%s>' % aor, call_id=call_id, cseq=cseq,
                        from_tag=tag, headers=['Expires: 60'] + (['Authorization: ' + credentials] if credentials
                                                                 else []))


def _guess(peer, user, timeout):
    """One password guess: REGISTER, 401, REGISTER with a wrong password. Returns the status
    lines it got (an empty list: Kamailio did not answer at all)."""
    call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:10]
    first = peer.exchange(_register_request(peer, user, 1, call_id, tag), timeout)
    lines = [first_line(r) for r in first]
    challenge = [r for r in first if first_line(r).startswith('SIP/2.0 401')]
    if challenge:
        guess = 'wrong-%d' % random.randint(0, 10 ** 9)
        credentials = digest(header(challenge[0], 'WWW-Authenticate')[0], user, guess, 'REGISTER',
                             'sip:%s' % ACME)
        request = _register_request(peer, user, 2, call_id, tag, credentials)
        lines += [first_line(r) for r in peer.exchange(request, timeout)]
    return lines


def test_password_guessing_bans_the_address(kamailio):
    """300 wrong-password REGISTERs from one address within about 3 s: after at most 20 answered
    guesses the address is banned and gets no reply at all; vxban lists it, the log says so once,
    another address still registers, and htable.delete lifts the ban."""
    attacker = attacker_address(kamailio)
    start = kamailio.log_size()
    attempts, answered, silent_at = 300, 0, None
    try:
        with Peer(attacker, kamailio.target) as peer:
            began = time.monotonic()
            for n in range(attempts):
                lines = _guess(peer, 'bert.desk', 0.5)
                if not lines:
                    silent_at = n
                    break
                answered += 1
            if silent_at is not None:
                # Banned: the remaining guesses go out paced to end about 3 s after the first,
                # each an unauthenticated REGISTER and one with a wrong password for the last
                # nonce seen; no reply at all may come back.
                mark = len(peer.received)
                nonce = [t for t in peer.received if first_line(t).startswith('SIP/2.0 401')]
                for n in range(silent_at + 1, attempts):
                    peer.send(_register_request(peer, 'bert.desk'))
                    if nonce:
                        credentials = digest(header(nonce[-1], 'WWW-Authenticate')[0], 'bert.desk',
                                             'wrong-%d' % n, 'REGISTER', 'sip:%s' % ACME)
                        peer.send(_register_request(peer, 'bert.desk', credentials=credentials))
                    time.sleep(max(0.0, began + 3.0 * (n + 1) / attempts - time.monotonic()))
                peer.replies(None, timeout=1.0, until_final=False)
                after_ban = [first_line(t) for t in peer.received[mark:]]
            elapsed = time.monotonic() - began
        why = explain(kamailio, [('attacker', peer)], log_from=start)[-8000:]
        summary = '%d of %d guesses answered in %.1f s; first unanswered guess: #%s' % (
            answered, attempts, elapsed, silent_at)
        assert silent_at is not None and answered <= 20, summary + '\n' + why
        assert after_ban == [], '%s; replies after the ban: %r\n%s' % (summary, after_ban[:10], why)
        print('ban test: ' + summary)

        banned = kamailio.kamcmd('htable.dump', 'vxban')
        assert banned.returncode == 0 and attacker in banned.stdout, banned.stdout + banned.stderr
        lines = [line for line in kamailio.log_since(start).splitlines()
                 if re.search(r'voxplane: banned %s\b(?!\.)' % re.escape(attacker), line)]
        assert len(lines) == 1, 'log lines banning %s: %r\n%s' % (attacker, lines, why[-4000:])

        # Another address (Kamailio's own, exempt from bans in the test instance) still registers.
        legit = register(kamailio, 'anna.desk')
        kamailio.kamcmd('ul.rm', 'location', 'anna.desk@' + ACME)
        assert legit.rc == 0 and statuses(legit) == ['401', '200'], report(kamailio, register=legit)

        # Lifting the ban: the attacker address gets answers again.
        lifted = kamailio.kamcmd('htable.delete', 'vxban', attacker)
        assert lifted.returncode == 0, lifted.stdout + lifted.stderr
        with Peer(attacker, kamailio.target) as peer:
            again = peer.exchange(_register_request(peer, 'bert.desk'), timeout=2.0)
        assert final_of(again).startswith('SIP/2.0 401'), final_of(again) + '\n' + explain(kamailio, [('after', peer)])
    finally:
        kamailio.kamcmd('htable.delete', 'vxban', attacker)


# ------------------------------------------------------------------------------ 6. identity
def _from_user(value):
    match = re.search(r'sips?:([^@;>]+)@', value)
    return match.group(1) if match else None


@pytest.mark.parametrize('caller_user,dialled,callee', [
    pytest.param('cora.desk', '+494099999999', 'dora.desk', id='anonymous-to-beta'),
    pytest.param('bert.desk', '+494099999999', 'dora.desk', id='bert-to-beta'),
    pytest.param('bert.desk', NATIONAL, 'trunk', id='bert-to-outside'),
])
def test_the_callee_never_sees_the_sip_username_in_from(kamailio, caller_user, dialled, callee):
    if callee == 'trunk':
        caller, callees = scene(kamailio, lambda: call(kamailio, caller_user, dialled), trunk='phone_answer.xml')
    else:
        caller, callees = scene(kamailio, lambda: call(kamailio, caller_user, dialled),
                                answer=Phone(kamailio, callee, domain=BETA))
    far = callees[callee]
    why = report(kamailio, caller=caller, callee=far)
    # The call works end to end, re-INVITE and BYE included (in-dialog, finding 6d).
    assert caller.rc == 0 and statuses(caller) == ['407', '200', '200', '200'], why
    assert far.rc == 0 and requests(far) == ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE'], why

    invite = first_invite(far)
    sent_from = header(invite, 'From')[0]
    identities = header(invite, 'From') + header(invite, 'P-Asserted-Identity')
    assert not [v for v in identities if caller_user in v], \
        'the callee sees %s: %r\n%s' % (caller_user, identities, why)
    if caller_user == 'cora.desk':
        assert 'anonymous@anonymous.invalid' in sent_from, why
        assert all('anonymous' in v for v in header(invite, 'P-Asserted-Identity')), why
    else:
        assert _from_user(sent_from) == BERT_PUBLIC, why

    # Every in-dialog request the callee received carries the From of its INVITE ...
    in_dialog = [m for m in parse_messages(far.messages) if m.direction == 'received'
                 and not m.first_line.startswith('SIP/2.0')][1:]
    for message in in_dialog:
        assert header(message, 'From') == [sent_from], message.text + '\n' + why
    # ... and the caller sees its own From (uac restore) in every reply.
    own = [header(m, 'From')[0] for m in parse_messages(caller.messages) if m.direction == 'sent'
           and m.first_line.startswith('INVITE ')][0]
    for reply in received(caller, 'SIP/2.0'):
        assert header(reply, 'From') == [own], reply.text + '\n' + why
