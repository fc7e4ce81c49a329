# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router's defences, probed directly with a small SIP client (lab.wire.Peer):

- enumeration: an unknown username with credentials gets exactly what a wrong password gets
  (REGISTER 401, INVITE 407, a new challenge); an unknown domain gets 403;
- digest: qop=auth with nonce counts, nonces short-lived and bound to Call-ID and source address;
- bans: authentication failures (wrong password or unknown user) from one address ban it after
  the configured count; a request flood bans it too; a banned address gets no reply at
  all; ``kamcmd htable.dump vxban`` lists it, ``htable.delete`` lifts it, the log has one line
  per ban; exempt addresses and the trusted trunk are never banned;
- invalid UTF-8 where the router reads text is a 400, never a 500; an ACK gets no reply.

Tests that must not be banned run from the exempt prober address (kamailio.prober).
"""

import time

import pytest

from attack_harness import ACME, BAN_FAILURES, BAN_TIME, FLOOD_REQUESTS, NONCE_EXPIRE, answers, banned, \
    ban_lines, flood, lift_ban, note
from lab.net import wait_for
from lab.sipp import password
from lab.wire import Peer, challenge_params, digest

REAL = ('anna.desk', 'bert.desk', 'cora.app')
UNKNOWN = ('nobody.desk', 'admin', '100', 'anna.desk.old')
# Flood tests send 3 x FLOOD_REQUESTS OPTIONS at this rate: 300 in 1.5 s, three times the
# role's limit (100 in 2 s), yet paced so that a server that does not ban answers them all.
FLOOD_RATE = 200.0
# What may differ between two answers to the same question: tags, nonces, Call-ID, Via.
VARYING = ('to', 'from', 'call-id', 'via', 'www-authenticate', 'proxy-authenticate', 'content-length', 'cseq')


def shape(reply):
    """What an attacker can compare between two answers: status, reason, header names and the
    challenge's realm and parameter names (not the nonce)."""
    if reply is None:
        return None
    fixed = tuple(sorted((k, tuple(v)) for k, v in reply.headers.items() if k not in VARYING))
    challenge = reply.headers.get('www-authenticate') or reply.headers.get('proxy-authenticate')
    params = challenge_params(challenge[0]) if challenge else {}
    return (reply.code, reply.reason, fixed, params.get('realm'), tuple(sorted(k for k in params if k != 'nonce')))


# ------------------------------------------------------------------------------ enumeration
@pytest.mark.parametrize('method, code', [('REGISTER', 401), ('INVITE', 407)])
def test_an_unknown_username_gets_what_a_wrong_password_gets(kamailio, method, code):
    shapes = {}
    with Peer(kamailio.prober, kamailio.target) as client:
        for user in REAL + UNKNOWN:
            challenge, answer, dummy = client.authenticate(method, user, ACME, 'not-the-password')
            shapes[user] = (shape(challenge), shape(answer))
    note('enumeration by %s with credentials' % method,
         ['%-14s challenge %s, answer %s' % (u, s[0] and s[0][:2], s[1] and s[1][:2]) for u, s in shapes.items()])
    for user, (challenge, answer) in shapes.items():
        assert challenge is not None and challenge[0] == code, (user, challenge)
        assert answer is not None and answer[0] == code, (user, answer)  # a new challenge, as for a wrong password
    assert len(set(shapes.values())) == 1, shapes


@pytest.mark.parametrize('method', ['REGISTER', 'INVITE'])
def test_an_unknown_domain_gets_403_with_and_without_credentials(kamailio, method):
    with Peer(kamailio.prober, kamailio.target) as client:
        ruri = 'sip:unknown.example' if method == 'REGISTER' else 'sip:11@unknown.example'
        plain = client.request(method, ruri, 'sip:anna.desk@unknown.example', 'sip:anna.desk@unknown.example')
        header = ('Authorization: ' if method == 'REGISTER' else 'Proxy-Authorization: ') + (
            'Digest username="anna.desk", realm="unknown.example", nonce="0123456789abcdef", uri="%s", '
            'response="00000000000000000000000000000000", algorithm=MD5' % ruri)
        with_credentials = client.request(method, ruri, 'sip:anna.desk@unknown.example',
                                          'sip:anna.desk@unknown.example', headers=[header])
    assert plain is not None and plain.code == 403, plain
    assert with_credentials is not None and with_credentials.code == 403, with_credentials


# ------------------------------------------------------------------------------ digest
def test_challenges_offer_qop_auth_and_the_right_password_registers(kamailio):
    with Peer(kamailio.prober, kamailio.target) as client:
        challenge, answer, params = client.authenticate('REGISTER', 'cora.desk', ACME, password('cora.desk'))
    kamailio.kamcmd('ul.rm', 'location', 'cora.desk@' + ACME)
    assert challenge is not None and challenge.code == 401, challenge
    assert 'auth' in params.get('qop', '').split(','), challenge.text
    assert answer is not None and answer.code == 200, answer and answer.text


def test_a_nonce_count_cannot_be_replayed(kamailio):
    with Peer(kamailio.prober, kamailio.target) as client:
        challenge, answer, dummy = client.authenticate('REGISTER', 'cora.desk', ACME, password('cora.desk'))
        assert answer is not None and answer.code == 200, answer and answer.text
        # The same Authorization header again (same nonce, same nc) in a new request.
        authorization = [h for h in client.last_sent.split(b'\r\n') if h.startswith(b'Authorization:')]
        replay = client.request('REGISTER', 'sip:' + ACME, 'sip:cora.desk@' + ACME, 'sip:cora.desk@' + ACME,
                                call_id=challenge.headers['call-id'][0], cseq=3, headers=authorization)
    kamailio.kamcmd('ul.rm', 'location', 'cora.desk@' + ACME)
    assert replay is not None and replay.code == 401, replay and replay.text


# Without qop (RFC 2069 clients) nothing but the nonce binds a response to its request, so the
# auth module binds the nonce to the source address and Call-ID (auth_checks_*). With qop and a
# nonce count the auth module lets a phone reuse its nonce for other requests on purpose
# (credential caching): that needs the password for every new response, and the count stops
# a replay of a captured one (test_a_nonce_count_cannot_be_replayed above).
def test_a_nonce_is_bound_to_its_source_address(kamailio):
    with Peer(kamailio.prober, kamailio.target) as client, \
            Peer(kamailio.fuzzer, kamailio.target) as elsewhere:
        answer = client.authenticate('REGISTER', 'cora.desk', ACME, password('cora.desk'), answer_from=elsewhere,
                                     use_qop=False)[1]
    kamailio.kamcmd('ul.rm', 'location', 'cora.desk@' + ACME)
    assert answer is not None and answer.code == 401, answer and answer.text


def test_a_nonce_is_bound_to_its_call_id(kamailio):
    with Peer(kamailio.prober, kamailio.target) as client:
        answer = client.authenticate('REGISTER', 'cora.desk', ACME, password('cora.desk'), new_call_id=True,
                                     use_qop=False)[1]
    kamailio.kamcmd('ul.rm', 'location', 'cora.desk@' + ACME)
    assert answer is not None and answer.code == 401, answer and answer.text


def test_a_nonce_expires(kamailio):
    with Peer(kamailio.prober, kamailio.target) as client:
        ruri, aor = 'sip:' + ACME, 'sip:cora.desk@' + ACME
        challenge = client.request('REGISTER', ruri, aor, aor)
        assert challenge is not None and challenge.code == 401, challenge
        time.sleep(NONCE_EXPIRE + 1.5)
        params = challenge_params(challenge.headers['www-authenticate'][0])
        credentials = digest(params, 'cora.desk', password('cora.desk'), 'REGISTER', ruri)
        late = client.request('REGISTER', ruri, aor, aor, call_id=challenge.headers['call-id'][0], cseq=2,
                              headers=['Authorization: ' + credentials])
    kamailio.kamcmd('ul.rm', 'location', 'cora.desk@' + ACME)
    assert late is not None and late.code == 401, late and late.text


# ------------------------------------------------------------------------------ bans
def test_authentication_failures_ban_the_address_silently_until_lifted(kamailio, attacker):
    answers_seen = []
    with Peer(attacker, kamailio.target) as client:
        for attempt in range(BAN_FAILURES):
            # Wrong passwords and unknown users alike count as failures.
            user = 'bert.desk' if attempt % 2 else 'nobody%d.desk' % attempt
            challenge, answer, dummy = client.authenticate('REGISTER', user, ACME, 'guess-%d' % attempt)
            answers_seen.append((user, challenge and challenge.code, answer and answer.code))
        # Banned now: nothing from this address is answered, not even a fresh REGISTER or OPTIONS.
        silent_register = client.request('REGISTER', 'sip:' + ACME, 'sip:bert.desk@' + ACME,
                                         'sip:bert.desk@' + ACME, timeout=1.0)
    silent_options = not answers(attacker, kamailio.target)
    addresses, dump = banned(kamailio)
    lines = ban_lines(kamailio, attacker)
    lifted = lift_ban(kamailio, attacker)
    answered_again = wait_for(lambda: answers(attacker, kamailio.target, timeout=0.5), 3)
    note('ban after %d authentication failures from %s' % (BAN_FAILURES, attacker),
         ['(user, challenge, answer): %s' % answers_seen, 'log: %s' % '; '.join(m.group(0) for m in lines),
          'answered again after htable.delete: %s' % answered_again])
    explain = 'answers: %s\nvxban: %s\nlog:\n%s' % (answers_seen, dump, kamailio.log_tail(20))
    # Every failure but the last got a new challenge (the last one may already go unanswered).
    assert all(c == 401 and a == 401 for dummy, c, a in answers_seen[:-1]), explain
    assert silent_register is None and silent_options, explain
    assert addresses is not None and attacker in addresses, explain
    assert len(lines) == 1 and lines[0].group(2) == str(BAN_TIME), explain
    assert lifted.returncode == 0 and answered_again, (lifted, explain)


def test_fewer_failures_than_the_limit_do_not_ban(kamailio, attacker):
    with Peer(attacker, kamailio.target) as client:
        codes = [client.authenticate('REGISTER', 'bert.desk', ACME, 'guess-%d' % n)[1] for n in range(BAN_FAILURES - 2)]
        challenge, answer, dummy = client.authenticate('REGISTER', 'bert.desk', ACME, password('bert.desk'))
    kamailio.kamcmd('ul.rm', 'location', 'bert.desk@' + ACME)
    assert all(c is not None and c.code == 401 for c in codes), codes
    assert answer is not None and answer.code == 200, answer
    addresses, dump = banned(kamailio)
    assert addresses is not None and attacker not in addresses, dump


def test_a_request_flood_bans_the_address(kamailio, attacker):
    count = 3 * FLOOD_REQUESTS
    answered = flood(attacker, kamailio.target, count, rate=FLOOD_RATE)
    silent = wait_for(lambda: not answers(attacker, kamailio.target, timeout=0.5), 3)
    addresses, dump = banned(kamailio)
    lines = ban_lines(kamailio, attacker)
    note('flood from %s' % attacker, ['%d OPTIONS in %.1f s, %d answered; silent afterwards: %s'
                                      % (count, count / FLOOD_RATE, answered, silent),
                                      'log: %s' % '; '.join(m.group(0) for m in lines)])
    explain = 'answered %d of %d\nvxban: %s\nlog:\n%s' % (answered, count, dump, kamailio.log_tail(20))
    assert answered < count and silent, explain
    assert addresses is not None and attacker in addresses, explain
    assert len(lines) == 1, explain


@pytest.mark.parametrize('who', ['exempt', 'trunk'])
def test_exempt_and_trunk_addresses_are_never_banned(kamailio, who):
    address = kamailio.prober if who == 'exempt' else kamailio.trunk
    count = 3 * FLOOD_REQUESTS
    answered = flood(address, kamailio.target, count, rate=FLOOD_RATE)
    with Peer(address, kamailio.target) as client:
        failures = [client.authenticate('REGISTER', 'bert.desk', ACME, 'guess-%d' % n)[1]
                    for n in range(BAN_FAILURES + 2)]
    still = answers(address, kamailio.target)
    addresses, dump = banned(kamailio)
    note('%s address %s' % (who, address), ['%d of %d flood OPTIONS answered; %d wrong passwords all challenged: %s'
                                            % (answered, count, len(failures),
                                               all(f is not None and f.code == 401 for f in failures))])
    # Flood-checked, it would be banned after about FLOOD_REQUESTS; a few may be lost on the way.
    assert answered >= 0.95 * count, (answered, count)
    assert all(f is not None and f.code == 401 for f in failures), failures
    assert still
    assert addresses is not None and address not in addresses, dump


# ------------------------------------------------------------------------------ invalid UTF-8
BAD = b'\xff\xfe'
CASES = {
    # name: (source: 'prober' or 'trunk', method, Request-URI, From, To, extra header)
    # (A REGISTER's To user is not among them: the auth module compares it with the digest
    # username before the router reads it, so an unauthenticated one is just challenged.)
    'register-to-domain': ('prober', b'REGISTER', b'sip:acme.sip.test', b'sip:anna.desk@acme.sip.test',
                           b'sip:anna.desk@acme' + BAD + b'.sip.test', None),
    'register-digest-username': ('prober', b'REGISTER', b'sip:acme.sip.test', b'sip:anna.desk@acme.sip.test',
                                 b'sip:anna.desk@acme.sip.test', b'Authorization'),
    'invite-ruri-user': ('prober', b'INVITE', b'sip:1' + BAD + b'1@acme.sip.test', b'sip:anna.desk@acme.sip.test',
                         b'sip:11@acme.sip.test', None),
    'invite-from-domain': ('prober', b'INVITE', b'sip:11@acme.sip.test', b'sip:anna.desk@acme' + BAD + b'.sip.test',
                           b'sip:11@acme.sip.test', None),
    'invite-digest-username': ('prober', b'INVITE', b'sip:11@acme.sip.test', b'sip:anna.desk@acme.sip.test',
                               b'sip:11@acme.sip.test', b'Proxy-Authorization'),
    'inbound-ruri-user': ('trunk', b'INVITE', b'sip:+49301234560' + BAD + b'@acme.sip.test',
                          b'sip:+49305559999@carrier.example', b'sip:+49301234560@acme.sip.test', None),
    'options-ruri-user': ('prober', b'OPTIONS', b'sip:anna' + BAD + b'@acme.sip.test', b'sip:anna.desk@acme.sip.test',
                          b'sip:anna.desk@acme.sip.test', None),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_invalid_utf8_where_the_router_reads_text_is_a_400(kamailio, name):
    source, method, ruri, from_uri, to_uri, auth = CASES[name]
    headers = []
    if auth:
        headers.append(auth + b': Digest username="anna' + BAD + b'.desk", realm="acme.sip.test", '
                       b'nonce="0123456789abcdef0123456789abcdef", uri="' + ruri + b'", '
                       b'response="00000000000000000000000000000000", algorithm=MD5, qop=auth, nc=00000001, '
                       b'cnonce="0a4f113b"')
    body = b''
    if method == b'INVITE':
        headers.append(b'Content-Type: application/sdp')
        body = b'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n'
    address = kamailio.prober if source == 'prober' else kamailio.trunk
    with Peer(address, kamailio.target) as client:
        reply = client.request(method, ruri, from_uri, to_uri, headers=headers, body=body)
    assert reply is not None and reply.code == 400, reply and reply.text


def test_an_ack_with_invalid_utf8_gets_no_reply(kamailio):
    with Peer(kamailio.prober, kamailio.target) as client:
        reply = client.request(b'ACK', b'sip:1' + BAD + b'1@acme.sip.test', b'sip:anna.desk@acme.sip.test',
                               b'sip:11@acme.sip.test', timeout=1.0)
    assert reply is None, reply.text
