# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flood and ban policy (docs/security.md, "Floods, and the addresses of customers") against
the suite's Kamailio, as an office and as an attacker meet it:

- an office: 200 phones of one tenant behind ONE address (sipp instances on one 127.0.0.x, other
  ports) register, subscribe to feature-key events and call each other at 10 calls a second for
  a minute; while they do, an attacker sends from the same address (as a forged UDP source
  would) garbage, insane requests, OPTIONS, wrong passwords for the office's accounts and
  REGISTERs to an unknown domain, well above what bans an unknown address; and a password
  guesser on an address of its own. Asserted: no call, registration or subscription fails, the
  office's address is never banned (its forged failures get 503 once past the limit), the
  guesser is banned;
- an unknown address just below the configured number of requests over one TCP connection
  (one worker takes them all) is not banned; one above it, over UDP (the workers share the
  requests), is, at the configured number and not at a worker's share;
- a known address over its own ceiling gets 503 with Retry-After for the rest of the slot,
  one log line, and no ban.

The office is the tenant of office.yml (tenant_config, one task): extensions 200..399 with one
account each, o<ext>.desk, password o<ext>-desk-pw.
"""

import json
import os
import re
import socket
import threading
import time

import pytest

from attack_harness import BAN_FAILURES, BAN_TIME, FLOOD_INTERVAL, FLOOD_REQUESTS, KNOWN_FLOOD_REQUESTS, Forger, \
    answers, ban_lines, banned, burst, note, wait_for_slot_start
from lab.net import free_port, wait_for, wait_udp_bound
from lab.sipp import finish_sipp, run_sipp, start_sipp, users_csv
from lab.wire import Peer, parse

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, 'scenarios')
OFFICE = 'office.sip.test'
PHONES = 200
FIRST_EXTENSION = 200
CALL_RATE = 10          # calls a second
CALL_SECONDS = 60
REFRESH_RATE = 4        # re-registrations and subscriptions a second, alongside the calls
ATTACK_AFTER = 10       # seconds into the calls
ATTACK_SECONDS = 35
ATTACK_RATE = 120       # forged items a second (each wrong password is two requests)


def extension(index):
    return str(FIRST_EXTENSION + index)


def user(index):
    return 'o%s.desk' % extension(index)


def secret(index):
    return 'o%s-desk-pw' % extension(index)


def office_document():
    return {
        'tenant': {'name': 'office', 'sip_domain': OFFICE, 'licences': {'seats': {'best': PHONES}}},
        'extensions': [{'internal_number': extension(i), 'name': 'Desk %s' % extension(i), 'seat': 'best',
                        'sip_accounts': [{'username': user(i), 'password': secret(i)}]} for i in range(PHONES)],
    }


@pytest.fixture(scope='module')
def office(deployment):
    """The office tenant in the suite's directory, routed by every worker."""
    instance = deployment.instance
    if instance is None:
        if deployment.error and not deployment.reported:
            deployment.reported = True
            pytest.fail(deployment.error, pytrace=False)
        pytest.skip('the attack suite\'s Kamailio is not running: see the first error')
    src = os.path.join(instance.root, 'office.json')
    with open(src, 'w') as handle:
        json.dump(office_document(), handle)
    variables = {'directory': instance.directory_path, 'src': src}
    run = instance.playbook(os.path.join(HERE, 'office.yml'), variables)
    assert run.rc == 0, 'office.yml failed:\n%s\n%s' % (run.stdout[-3000:], run.stderr[-2000:])
    assert instance.wait_for_directory(OFFICE), instance.log_tail()
    return instance


def _office_file(kamailio, name, rows):
    return users_csv(os.path.join(kamailio.workdir, 'office-%s.csv' % name), rows)


def _sipp(kamailio, scenario, address, **kwargs):
    return start_sipp(os.path.join(SCENARIOS, scenario), kamailio.target, address, kamailio.workdir, **kwargs)


def _counts(result):
    stats = result.stats
    return 'rc %s, %s successful, %s failed' % (result.rc, stats.get('SuccessfulCall(C)'), stats.get('FailedCall(C)'))


def _ok(result, calls):
    return (result.rc == 0 and result.stats.get('SuccessfulCall(C)') == str(calls)
            and result.stats.get('FailedCall(C)') == '0')


def _explain(kamailio, results, since):
    parts = ['=== %s: %s\n%s' % (name, _counts(r), r.errors[-1500:]) for name, r in results.items()]
    lines = [line for line in kamailio.log_since(since).splitlines() if 'voxplane:' in line]
    return '\n'.join(parts + ['=== voxplane log lines (last 40)'] + lines[-40:])


def test_an_office_behind_one_address_keeps_working_through_a_forged_attack_on_it(kamailio, office):
    address = kamailio.pool.take()       # the office's NAT address
    guesser = kamailio.pool.take()       # an address nothing ever authenticated from
    since = kamailio.log_size()
    answer_port = free_port(address, tcp=False)
    calls = CALL_RATE * CALL_SECONDS
    contacts = [(user(i), OFFICE, secret(i), str(answer_port)) for i in range(PHONES)]
    registrations = _office_file(kamailio, 'register', contacts)
    # Phone i calls the colleague half the office away: nobody gets two calls at once.
    dialling = _office_file(kamailio, 'call', [(user(i), OFFICE, secret(i), extension((i + PHONES // 2) % PHONES))
                                               for i in range(PHONES)])

    phones = _sipp(kamailio, 'office_answer.xml', address, local_port=answer_port, calls=calls,
                   timeout=CALL_SECONDS + 90)
    assert wait_udp_bound(address, answer_port), 'the answering phones did not start'
    first = run_sipp(os.path.join(SCENARIOS, 'office_register.xml'), kamailio.target, address, kamailio.workdir,
                     calls=PHONES, rate=100, inf=registrations, timeout=40)
    assert _ok(first, PHONES), _explain(kamailio, {'registration': first}, since)

    started = time.monotonic()
    callers = _sipp(kamailio, 'office_call.xml', address, calls=calls, rate=CALL_RATE, inf=dialling,
                    timeout=CALL_SECONDS + 60)
    again = _sipp(kamailio, 'office_register.xml', address, calls=PHONES, rate=REFRESH_RATE, inf=registrations,
                  timeout=CALL_SECONDS + 30)
    subscribers = _sipp(kamailio, 'office_subscribe.xml', address, calls=PHONES, rate=REFRESH_RATE,
                        inf=registrations, timeout=CALL_SECONDS + 30)

    time.sleep(ATTACK_AFTER)
    forger = Forger(address, kamailio.target, OFFICE, [user(i) for i in range(PHONES)], ATTACK_RATE)
    attack = threading.Thread(target=forger.run, args=(ATTACK_SECONDS,), daemon=True)
    attack.start()
    # Meanwhile a password guesser on an address of its own is banned as ever.
    guesses = []
    with Peer(guesser, kamailio.target, timeout=1.0) as client:
        for n in range(BAN_FAILURES + 2):
            guesses.append(client.authenticate('REGISTER', user(n), OFFICE, 'guess-%d' % n)[1])
    attack.join(timeout=ATTACK_SECONDS + 30)

    results = {'calls': finish_sipp(callers), 're-registrations': finish_sipp(again),
               'subscriptions': finish_sipp(subscribers)}
    results['answering phones'] = finish_sipp(phones, timeout=30)
    elapsed = time.monotonic() - started
    addresses, dump = banned(kamailio)
    known = kamailio.kamcmd('htable.dump', 'vxknown').stdout   # what an operator lists
    log = kamailio.log_since(since)
    limited = re.findall(r'voxplane: rate-limited [^\n]*%s\b(?!\.)[^\n]*' % re.escape(address), log)
    title = 'office: %d phones behind %s, %d calls at %d/s (%.0f s)' % (PHONES, address, calls, CALL_RATE, elapsed)
    note(title,
         ['%s: %s' % (name, _counts(r)) for name, r in sorted(dict(results, registration=first).items())]
         + ['forged from %s (other ports) for %d s at %d/s:' % (address, ATTACK_SECONDS, ATTACK_RATE)]
         + ['  ' + line for line in forger.summary()]
         + ['rate-limit log lines: %s' % limited,
            'guesser %s: answers %s; banned: %s' % (guesser, [g and g.code for g in guesses], guesser in (addresses or ())),
            'office address banned: %s' % (address in (addresses or ()))])
    explain = _explain(kamailio, results, since) + '\nvxban: ' + dump + '\n' + '\n'.join(forger.summary())

    # The office: every call, registration and subscription succeeded; never banned.
    assert _ok(results['calls'], calls), explain
    assert _ok(results['re-registrations'], PHONES) and _ok(results['subscriptions'], PHONES), explain
    assert addresses is not None and address not in addresses and not ban_lines(kamailio, address), explain
    assert re.search(r'name: %s\b(?!\.)' % re.escape(address), known), known
    # The forger was answered all along (no ban): its wrong passwords got new challenges up to the
    # limit, then 503 with Retry-After, logged once a window.
    assert forger.requests * FLOOD_INTERVAL / ATTACK_SECONDS > 2 * FLOOD_REQUESTS, explain   # twice what bans
    wrong = [n for (kind, code), n in forger.replies.items() if kind in ('register', 'invite') and code == 503]
    assert sum(wrong) > 0 and forger.retry_after, explain
    assert forger.replies[('options', 200)] >= 0.95 * forger.sent['options'], explain
    assert limited and all('authentication failures' in line for line in limited), explain
    # The guesser: challenged until its 10th failure, then silence, banned.
    assert [g and g.code for g in guesses[:BAN_FAILURES - 1]] == [401] * (BAN_FAILURES - 1), explain
    assert guesses[-1] is None and guesser in addresses, explain
    assert [m.group(2) for m in ban_lines(kamailio, guesser)] == [str(BAN_TIME)], explain


def _tcp_options(address, target, count):
    """``count`` OPTIONS over one TCP connection (a TCP worker takes all requests of a
    connection); the status codes of the replies."""
    sock = socket.create_connection(target, timeout=3.0, source_address=(address, 0))
    port = sock.getsockname()[1]
    ruri = 'sip:%s:%d' % target
    try:
        for n in range(count):
            sock.sendall(('OPTIONS %s SIP/2.0\r\nVia: SIP/2.0/TCP %s:%d;branch=z9hG4bKtcp%d%s\r\nMax-Forwards: 70\r\n'
                          'From: <sip:tcp@%s>;tag=t%d\r\nTo: <%s>\r\nCall-ID: tcp-%d-%s\r\nCSeq: 1 OPTIONS\r\n'
                          'Content-Length: 0\r\n\r\n' % (ruri, address, port, n, port, address, n, ruri, n, port))
                         .encode())
        data, codes = b'', []
        sock.settimeout(1.5)
        while len(codes) < count:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            while b'\r\n\r\n' in data:
                head, data = data.split(b'\r\n\r\n', 1)
                reply = parse(head + b'\r\n\r\n')
                if reply is not None:
                    codes.append(reply.code)
        return codes
    finally:
        sock.close()


def test_an_unknown_address_below_the_limit_on_one_worker_is_not_banned(kamailio, attacker):
    # 90 % of the configured number in one slot, all to one TCP worker: a worker that banned at
    # its share of the number (100 / 2 workers) would ban here.
    count = int(0.9 * FLOOD_REQUESTS)
    wait_for_slot_start()
    codes = _tcp_options(attacker, kamailio.target, count)
    addresses, dump = banned(kamailio)
    note('%d OPTIONS over one TCP connection from %s in one slot' % (count, attacker),
         ['answered: %d (%s)' % (len(codes), sorted(set(codes))), 'banned: %s' % (attacker in (addresses or ()))])
    assert codes == [200] * count, (codes, kamailio.log_tail(10))
    assert addresses is not None and attacker not in addresses, dump
    assert answers(attacker, kamailio.target)


def test_an_unknown_address_over_the_limit_is_banned_whichever_workers_take_its_requests(kamailio, attacker):
    # 1.6 times the configured number within one slot over UDP: every worker takes a part, none
    # of them alone more than the number, and the address is banned at the number.
    count = int(1.6 * FLOOD_REQUESTS)
    wait_for_slot_start()
    codes, dummy = burst(attacker, kamailio.target, count, rate=count / (0.6 * FLOOD_INTERVAL))
    addresses, dump = banned(kamailio)
    lines = ban_lines(kamailio, attacker)
    note('%d OPTIONS over UDP from %s in one slot' % (count, attacker),
         ['answered: %s' % dict(codes), 'log: %s' % '; '.join(m.group(0) for m in lines)])
    explain = 'answered %s\nvxban: %s\n%s' % (dict(codes), dump, kamailio.log_tail(10))
    assert addresses is not None and attacker in addresses, explain
    assert 0.95 * FLOOD_REQUESTS <= codes[200] <= FLOOD_REQUESTS and set(codes) == {200}, explain
    reason = 'request flood: more than %d requests in %d s' % (FLOOD_REQUESTS, FLOOD_INTERVAL)
    assert [m.group(3) for m in lines] == [reason], explain
    assert wait_for(lambda: not answers(attacker, kamailio.target, timeout=0.5), 3)


def test_a_known_address_over_its_ceiling_gets_503_with_retry_after_and_no_ban(kamailio, office, attacker):
    since = kamailio.log_size()
    with Peer(attacker, kamailio.target) as client:
        registered = client.authenticate('REGISTER', user(0), OFFICE, secret(0), headers=['Expires: 0'])[1]
    assert registered is not None and registered.code == 200, registered
    count = KNOWN_FLOOD_REQUESTS + 400
    wait_for_slot_start()
    codes, retry_after = burst(attacker, kamailio.target, count, rate=count / (0.4 * FLOOD_INTERVAL))
    addresses, dump = banned(kamailio)
    lines = re.findall(r'voxplane: rate-limited %s:[^\n]*' % re.escape(attacker), kamailio.log_since(since))
    after = wait_for(lambda: answers(attacker, kamailio.target, timeout=0.5), FLOOD_INTERVAL + 1)
    note('%d OPTIONS from %s, known (an account registered from there), in one slot' % (count, attacker),
         ['answered: %s; Retry-After: %s' % (dict(codes), dict(retry_after)), 'log: %s' % lines,
          'answered in the next slot: %s' % after])
    explain = 'answered %s, Retry-After %s\nvxban: %s\n%s' % (
        dict(codes), dict(retry_after), dump, kamailio.log_tail(10))
    # The ceiling holds (a few requests may be lost on loopback), the rest get 503 with a
    # Retry-After of the slot's rest (1 or 2 s); nothing is banned, one line is logged.
    assert KNOWN_FLOOD_REQUESTS * 0.95 <= codes[200] <= KNOWN_FLOOD_REQUESTS and codes[503] > 0, explain
    assert set(codes) == {200, 503} and sum(retry_after.values()) == codes[503], explain
    assert set(retry_after) <= {'1', '2'}, explain
    assert addresses is not None and attacker not in addresses and not ban_lines(kamailio, attacker), explain
    assert len(lines) == 1 and ('more than %d requests in %d s' % (KNOWN_FLOOD_REQUESTS, FLOOD_INTERVAL)) in lines[0]
    assert after, explain
