# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The KEMI router (kemi/voxplane_kemi.py) in a real Kamailio, against docs/routing.md.

The session's Kamailio (conftest.py) routes with the directory of tests/lab/playbooks/tenants.yml:
tenants acme (acme.sip.test: anna 10, bert 11, cora 12, group 60 = 10 + 11, the block
+49301234560 00-99 whose head number reaches group 60) and beta (beta.sip.test: dora 10,
emil 20, +494099999999 -> dora); both tenants' trunk is the trunk stand-in at kamailio.trunk.

Phones and calls: tests/lab/calls.py. Every sipp is bounded (-m, -timeout, a subprocess timeout).
"""

import os
import re
import signal
import sqlite3
import threading
import time

import pytest

from route_check import assert_predicted
from lab.calls import (
    ACME, BETA, OUTSIDE_CALLER, call, contacts, final_reply, first_invite, inbound, register, report, requests,
    scene, users_file, via_is_kamailio,
)
from lab import SCENARIOS
from lab.net import free_port
from lab.sipp import Listener, Phone, finish_sipp, parse_messages, password, received, run_sipp, start_sipp, statuses
from lab.wire import header, sip_request, wait_for_options

HERE = os.path.dirname(os.path.abspath(__file__))

CHANGE_PLAYBOOK = os.path.join(HERE, 'change.yml')


# ------------------------------------------------------------------------------ 1. REGISTER
@pytest.mark.parametrize('user,domain', [('anna.desk', ACME), ('dora.app', BETA)])
def test_register_is_challenged_with_the_tenant_realm_then_binds_the_contact(kamailio, user, domain):
    result = register(kamailio, user, domain)
    try:
        assert result.rc == 0 and statuses(result) == ['401', '200'], report(kamailio, register=result)
        challenge = received(result, 'SIP/2.0 401')[0]
        assert header(challenge, 'WWW-Authenticate')[0].startswith('Digest realm="%s"' % domain)
        contact = 'sip:%s@%s:%s' % (user, kamailio.address, re.search(r' -p (\d+)', ' '.join(result.cmd)).group(1))
        assert contact in contacts(kamailio, '%s@%s' % (user, domain))
    finally:
        kamailio.kamcmd('ul.rm', 'location', '%s@%s' % (user, domain))


@pytest.mark.parametrize('user,domain,secret,expected,reason', [
    pytest.param('anna.desk', 'nowhere.sip.test', None, ['403'], 'Unknown domain', id='unknown-domain'),
    # An unknown account is challenged again exactly like a wrong password: the answer does
    # not tell which accounts exist.
    pytest.param('zoe.desk', ACME, 'zoe-desk-pw', ['401', '401'], 'Unauthorized', id='unknown-account'),
    pytest.param('anna.desk', ACME, 'not-the-password', ['401', '401'], 'Unauthorized', id='wrong-password'),
    # Isolation: an account of acme does not exist in beta's domain, even with its right password.
    pytest.param('anna.desk', BETA, None, ['401', '401'], 'Unauthorized', id='acme-account-in-beta'),
])
def test_register_is_refused(kamailio, user, domain, secret, expected, reason):
    result = register(kamailio, user, domain, secret)
    assert result.rc == 0 and statuses(result) == expected, report(kamailio, register=result)
    assert final_reply(result) == 'SIP/2.0 %s %s' % (expected[-1], reason)
    assert contacts(kamailio, '%s@%s' % (user, domain)) == []


def test_a_phone_behind_an_edge_proxy_is_called_through_its_path(kamailio):
    """Several nodes (RFC 3327): an edge proxy registers a phone it alone reaches (a private
    Contact) with a Path naming itself. The binding keeps the Path, and a call to the phone is
    sent to the edge, with the Path as its Route, not to the phone's Contact nor to the address
    the REGISTER came from (where a NAT fix would send it)."""
    edge = free_port(kamailio.address, tcp=False)
    inf = users_file(kamailio, 'path', [('cora.desk', ACME, password('cora.desk'), '10.99.0.5:5060',
                                         '%s:%d' % (kamailio.address, edge))])
    registered = kamailio.sipp('register_path.xml', inf=inf, timeout=10)
    try:
        assert registered.rc == 0 and statuses(registered) == ['401', '200'], report(kamailio, register=registered)
        binding = kamailio.kamcmd('ul.lookup', 'location', 'cora.desk@' + ACME).stdout
        assert 'sip:cora.desk@10.99.0.5:5060' in binding and '<sip:%s:%d;lr>' % (kamailio.address, edge) in binding, binding
        with Listener(kamailio.address, edge) as at_edge:
            call = inbound(kamailio, '+4930123456012', timeout=6)
            invites = [d for d in at_edge.datagrams if d.startswith('INVITE ')]
        assert invites, report(kamailio, trunk=call)
        first_line, _sep, rest = invites[0].partition('\r\n')
        assert first_line == 'INVITE sip:cora.desk@10.99.0.5:5060 SIP/2.0', invites[0]
        assert re.search(r'(?mi)^Route: <sip:%s:%d;lr>' % (re.escape(kamailio.address), edge), rest), invites[0]
    finally:
        kamailio.kamcmd('ul.rm', 'location', 'cora.desk@' + ACME)


# ------------------------------------------------------------------------------ 2. persistence
def test_a_registration_survives_a_restart_and_still_gets_calls(kamailio):
    bert = Phone(kamailio, 'bert.app')
    result = bert.register()
    assert result.rc == 0, report(kamailio, register=result)
    try:
        contact = 'sip:bert.app@%s:%d' % (kamailio.address, bert.port)
        before = kamailio.pid()
        proc = kamailio.control('restart')
        assert proc.returncode == 0, proc.stdout + proc.stderr + kamailio.log_tail()
        assert kamailio.pid() and kamailio.pid() != before
        assert wait_for_options(kamailio.address, kamailio.port), kamailio.log_tail()
        # usrloc (db_mode 2) flushed the contact to SQLite at shutdown and preloaded it at start ...
        assert contacts(kamailio, bert.aor) == [contact]
        # ... and the router rings it: the trunk calls bert's DDI +4930123456011.
        handle = bert.start('phone_answer.xml')
        caller = inbound(kamailio, '+4930123456011')
        phone = finish_sipp(handle, timeout=3)
        assert_predicted(kamailio, caller, {'bert.app': phone}, '+4930123456011', trunk=True, answer=bert)
        explain = report(kamailio, caller=caller, phone=phone)
        assert caller.rc == 0 and statuses(caller) == ['200', '200', '200'], explain
        assert phone.rc == 0 and requests(phone) == ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE']
    finally:
        bert.unregister()


# ------------------------------------------------------------------------------ 3./9. internal calls
def test_internal_call_forks_to_every_device_and_the_dialog_follows_the_record_route(kamailio):
    desk, app = Phone(kamailio, 'anna.desk'), Phone(kamailio, 'anna.app')
    caller, phones = scene(kamailio, lambda: call(kamailio, 'bert.desk', '10'), answer=desk, ring=[app])
    assert_predicted(kamailio, caller, phones, '10', 'bert.desk', answer=desk, ring=[app])
    explain = report(kamailio, caller=caller, desk=phones['anna.desk'], app=phones['anna.app'])
    # bert: 407 challenge, then the call is answered; re-INVITE and BYE get their 200 too.
    assert caller.rc == 0 and statuses(caller) == ['407', '200', '200', '200'], explain
    challenge = received(caller, 'SIP/2.0 407')[0]
    assert header(challenge, 'Proxy-Authenticate')[0].startswith('Digest realm="%s"' % ACME)
    # Both of anna's devices got the INVITE (parallel fork); the app was cancelled by tm.
    assert phones['anna.desk'].rc == 0 and requests(phones['anna.desk']) == ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE'], \
        explain
    assert phones['anna.app'].rc == 0 and requests(phones['anna.app']) == ['INVITE', 'CANCEL', 'ACK'], explain
    for phone in (desk, app):
        invite = first_invite(phones[phone.username])
        # R-URI = the registered contact (lookup_uri / lookup_to_dset)
        assert invite.first_line == 'INVITE sip:%s@%s:%d SIP/2.0' % (phone.username, kamailio.address, phone.port)
        # The caller's forged identity is replaced by the one of its extension.
        assert header(invite, 'P-Asserted-Identity') == ['"Bert" <sip:11@acme.sip.test>'], explain
        assert any(kamailio.address in rr and ';lr' in rr for rr in header(invite, 'Record-Route')), explain
    # ACK, re-INVITE, ACK and BYE reached the answering phone through Kamailio (loose_route):
    # sent by Kamailio (its Via on top) to the phone's Contact, Kamailio's Route consumed.
    in_dialog = [m for m in parse_messages(phones['anna.desk'].messages)
                 if m.direction == 'received' and not m.first_line.startswith('SIP/2.0')][1:]
    for message in in_dialog:
        assert message.first_line.split()[1].startswith('sip:%s:' % kamailio.address), message.text
        assert via_is_kamailio(kamailio, message), message.text
        assert header(message, 'Route') == [], message.text
        assert len(header(message, 'Via')) == 2, message.text  # Kamailio's and bert's


def test_an_internal_number_of_another_tenant_is_not_reachable(kamailio):
    # 20 exists only in beta: dora (beta) reaches it (480: nobody registered), acme's bert gets 404.
    from_beta = call(kamailio, 'dora.desk', '20', domain=BETA)
    from_acme = call(kamailio, 'bert.desk', '20')
    assert_predicted(kamailio, from_beta, {}, '20', 'dora.desk', tenant='beta')
    assert_predicted(kamailio, from_acme, {}, '20', 'bert.desk')
    assert final_reply(from_beta) == 'SIP/2.0 480 Temporarily Unavailable', report(kamailio, caller=from_beta)
    assert statuses(from_acme) == ['407', '404'], report(kamailio, caller=from_acme)
    assert final_reply(from_acme) == 'SIP/2.0 404 No such extension or number'


def test_an_internal_call_to_an_unregistered_extension_gets_480(kamailio):
    assert contacts(kamailio, 'cora.desk@' + ACME) == [] and contacts(kamailio, 'cora.app@' + ACME) == []
    result = call(kamailio, 'bert.desk', '12')
    assert_predicted(kamailio, result, {}, '12', 'bert.desk')
    assert statuses(result) == ['407', '480'], report(kamailio, caller=result)
    assert final_reply(result) == 'SIP/2.0 480 Temporarily Unavailable'


def test_invite_with_a_wrong_password_is_challenged_again(kamailio):
    inf = users_file(kamailio, 'call', [('bert.desk', ACME, 'not-the-password', '10')])
    result = kamailio.sipp('call.xml', inf=inf, timeout=10)
    assert statuses(result) == ['407', '407'], report(kamailio, caller=result)


# ------------------------------------------------------------------------------ 4. inbound
def test_inbound_ddi_rings_every_device_of_the_extension(kamailio):
    desk, app = Phone(kamailio, 'anna.desk'), Phone(kamailio, 'anna.app')
    caller, phones = scene(kamailio, lambda: inbound(kamailio, '+4930123456010'), answer=desk, ring=[app])
    assert_predicted(kamailio, caller, phones, '+4930123456010', trunk=True, answer=desk, ring=[app])
    explain = report(kamailio, caller=caller, desk=phones['anna.desk'], app=phones['anna.app'])
    # From the trunk address: no challenge, straight to anna's devices.
    assert caller.rc == 0 and statuses(caller) == ['200', '200', '200'], explain
    assert requests(phones['anna.desk']) == ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE'], explain
    assert requests(phones['anna.app']) == ['INVITE', 'CANCEL', 'ACK'], explain


def test_inbound_head_number_rings_the_group_members(kamailio):
    anna, bert = Phone(kamailio, 'anna.desk'), Phone(kamailio, 'bert.desk')
    caller, phones = scene(kamailio, lambda: inbound(kamailio, '+49301234560'), answer=anna, ring=[bert])
    assert_predicted(kamailio, caller, phones, '+49301234560', trunk=True, answer=anna, ring=[bert])
    explain = report(kamailio, caller=caller, anna=phones['anna.desk'], bert=phones['bert.desk'])
    assert caller.rc == 0 and statuses(caller) == ['200', '200', '200'], explain
    assert requests(phones['anna.desk']) == ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE'], explain
    assert requests(phones['bert.desk']) == ['INVITE', 'CANCEL', 'ACK'], explain


@pytest.mark.parametrize('dialled,reply', [
    pytest.param('+493055500000', '404 Number not assigned', id='unknown'),
    pytest.param('+493099990002', '480 Number inactive', id='inactive'),
    pytest.param('+493099990001', '404 Number not yet ported', id='porting-2099'),
])
def test_inbound_to_a_number_that_does_not_ring(kamailio, dialled, reply):
    result = inbound(kamailio, dialled)
    assert_predicted(kamailio, result, {}, dialled, trunk=True)
    assert result.rc == 0 and final_reply(result) == 'SIP/2.0 ' + reply, report(kamailio, caller=result)


def test_an_invite_from_an_untrusted_address_is_challenged_not_routed(kamailio):
    # The very INVITE that rings anna from the trunk address (see above), sent from Kamailio's
    # own address: a 407 challenge, and anna's registered phone receives nothing.
    anna = Phone(kamailio, 'anna.desk')
    assert anna.register().rc == 0
    try:
        with Listener(kamailio.address, anna.port) as phone:
            result = inbound(kamailio, '+4930123456010', source=kamailio.address)
            time.sleep(0.2)
    finally:
        anna.unregister()
    assert result.rc == 0 and statuses(result) == ['407'], report(kamailio, caller=result)
    assert phone.datagrams == []


# ------------------------------------------------------------------------------ 5. outbound
def _outbound(kamailio, caller, dialled):
    """A call from ``caller`` that should leave through the trunk stand-in (which answers)."""
    result, callees = scene(kamailio, lambda: call(kamailio, caller, dialled), trunk='phone_answer.xml')
    assert_predicted(kamailio, result, callees, dialled, caller, far_end='answer')
    explain = report(kamailio, caller=result, trunk=callees['trunk'])
    assert result.rc == 0 and statuses(result) == ['407', '200', '200', '200'], explain
    assert callees['trunk'].rc == 0 and requests(callees['trunk']) == ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE'], \
        explain
    return first_invite(callees['trunk']), explain


def test_outbound_national_number_leaves_as_e164_with_the_callers_number(kamailio):
    invite, explain = _outbound(kamailio, 'anna.desk', '0305551234')
    assert invite.first_line == 'INVITE sip:+49305551234@%s:%d SIP/2.0' % (kamailio.trunk, kamailio.trunk_port), explain
    assert header(invite, 'P-Asserted-Identity') == ['<sip:+4930123456010@acme.sip.test>'], explain
    assert header(invite, 'Privacy') == [], explain


def test_outbound_anonymous_caller_id_presents_anonymous_with_privacy(kamailio):
    invite, explain = _outbound(kamailio, 'cora.desk', '0305551234')
    assert invite.first_line == 'INVITE sip:+49305551234@%s:%d SIP/2.0' % (kamailio.trunk, kamailio.trunk_port), explain
    # docs/routing.md: the bare addr-spec (RFC 3325 allows it) with Privacy: id
    assert header(invite, 'P-Asserted-Identity') == ['sip:anonymous@anonymous.invalid'], explain
    assert header(invite, 'Privacy') == ['id'], explain


def test_outbound_international_needs_the_extensions_permission(kamailio):
    refused = call(kamailio, 'bert.desk', '00442071234567')
    assert_predicted(kamailio, refused, {}, '00442071234567', 'bert.desk')
    assert statuses(refused) == ['407', '403'], report(kamailio, caller=refused)
    assert final_reply(refused) == 'SIP/2.0 403 International calls not permitted'
    invite, explain = _outbound(kamailio, 'anna.desk', '00442071234567')
    assert invite.first_line == 'INVITE sip:+442071234567@%s:%d SIP/2.0' % (kamailio.trunk, kamailio.trunk_port), explain


def test_emergency_call_leaves_through_the_trunk_with_the_location(kamailio):
    # bert may not dial international numbers; 112 goes out anyway.
    invite, explain = _outbound(kamailio, 'bert.desk', '112')
    assert invite.first_line == 'INVITE sip:112@%s:%d SIP/2.0' % (kamailio.trunk, kamailio.trunk_port), explain
    assert header(invite, 'P-Asserted-Identity') == ['<sip:+4930123456099@acme.sip.test>'], explain
    assert header(invite, 'X-Emergency-Location') == ['hq; Hauptstr. 1; 10115 Berlin; DE'], explain


def test_a_number_of_another_tenant_is_reached_on_net_not_through_the_trunk(kamailio):
    desk, app = Phone(kamailio, 'dora.desk', BETA), Phone(kamailio, 'dora.app', BETA)
    with Listener(kamailio.trunk, kamailio.trunk_port) as trunk:
        caller, phones = scene(kamailio, lambda: call(kamailio, 'anna.desk', '+494099999999'), answer=desk, ring=[app])
    assert_predicted(kamailio, caller, phones, '+494099999999', 'anna.desk', answer=desk, ring=[app])
    explain = report(kamailio, caller=caller, desk=phones['dora.desk'], app=phones['dora.app'])
    assert caller.rc == 0 and statuses(caller) == ['407', '200', '200', '200'], explain
    assert requests(phones['dora.desk']) == ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE'], explain
    assert requests(phones['dora.app']) == ['INVITE', 'CANCEL', 'ACK'], explain
    assert header(first_invite(phones['dora.desk']), 'P-Asserted-Identity') == ['<sip:+4930123456010@acme.sip.test>']
    assert trunk.datagrams == []


def test_a_busy_forward_to_an_outside_number_carries_one_identity_and_the_diversion(kamailio):
    # Finn (14) forwards busy calls to +49305559999. bert calls him, his phone answers 486: the
    # failure route sends the call out through the trunk. The new branch must carry only the
    # forward's identity (acme's main number, which pays for the outside leg), not also the one
    # the request route set for the first branch (bert's), and one Diversion naming finn.
    finn = Phone(kamailio, 'finn.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'bert.desk', '14'), busy=[finn],
                            trunk='phone_answer.xml')
    assert_predicted(kamailio, caller, callees, '14', 'bert.desk', busy=[finn], far_end='answer')
    explain = report(kamailio, caller=caller, finn=callees['finn.desk'], trunk=callees['trunk'])
    assert requests(callees['finn.desk']) == ['INVITE', 'ACK'], explain
    assert caller.rc == 0 and statuses(caller) == ['407', '200', '200', '200'], explain
    assert callees['trunk'].rc == 0 and requests(callees['trunk']) == ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE'], \
        explain
    invite = first_invite(callees['trunk'])
    assert invite.first_line == \
        'INVITE sip:+49305559999@%s:%d SIP/2.0' % (kamailio.trunk, kamailio.trunk_port), explain
    assert header(invite, 'P-Asserted-Identity') == ['<sip:+49301234560@acme.sip.test>'], explain
    assert header(invite, 'Privacy') == [], explain
    assert header(invite, 'Diversion') == ['<sip:14@acme.sip.test>;reason=user-busy'], explain
    # The first branch (to finn's phone) carried bert's identity; it must not reach the trunk.
    assert '<sip:11@acme.sip.test>' not in invite.text, explain


# ------------------------------------------------------------------------------ 7. exceptions
_LOG_LINE = re.compile(r'^\s*\d+\((\d+)\) (\w+): ')
_RECEIVED = re.compile(r'receive_msg\(\): --- received sip message - request - call-id: \[([^\]]+)\]')


def _call_ids(result):
    return sorted(set(header(m, 'Call-ID')[0] for m in parse_messages(result.messages) if header(m, 'Call-ID')))


def _raising_scenario(kamailio):
    """scenarios/invite_raises.xml with {BYTE-FF} replaced by the byte 0xFF (kept ASCII in git)."""
    with open(os.path.join(SCENARIOS, 'invite_raises.xml'), 'rb') as handle:
        text = handle.read()
    path = os.path.join(kamailio.workdir, 'invite_raises.xml')
    with open(path, 'wb') as handle:
        handle.write(text.replace(b'{BYTE-FF}', b'\xff'))
    return path


def test_an_undecodable_request_uri_answers_400_and_the_worker_goes_on(kamailio):
    """invite_raises.xml makes KSR.pv.get("$rU") raise inside the script (the R-URI user is not
    UTF-8): the sender's fault, answered 400 without an error line. (Other exceptions answer
    500 with one line: tests/unit/kemi.) With debug logging on for the test, every log line
    names the worker (pid) and the Call-ID, so the test checks that the very worker that
    raised answers later requests right."""
    with open(kamailio.log_file) as handle:
        handle.seek(0, os.SEEK_END)
        start = handle.tell()
    assert kamailio.kamcmd('corex.debug', '3').returncode == 0
    try:
        bad = run_sipp(_raising_scenario(kamailio), kamailio.target, kamailio.trunk, kamailio.workdir, calls=4,
                       rate=20, timeout=10)
        good = kamailio.sipp('register_ok.xml', calls=20, rate=40, timeout=15,
                             inf=users_file(kamailio, 'after', [('bert.app', ACME, password('bert.app'))] * 20))
    finally:
        kamailio.kamcmd('corex.debug', '2')
        kamailio.kamcmd('ul.rm', 'location', 'bert.app@' + ACME)
    with open(kamailio.log_file, errors='replace') as handle:
        handle.seek(start)
        log = handle.read().splitlines()
    explain = report(kamailio, bad=bad, good=good)
    assert bad.rc == 0 and statuses(bad) == ['400'] * 4, explain
    assert final_reply(bad) == 'SIP/2.0 400 Bad Request: not UTF-8', explain
    assert good.rc == 0 and good.stats.get('SuccessfulCall(C)') == '20', explain

    worker_of = {}  # Call-ID -> pids of the workers that received a request of that call
    for line in log:
        match = _RECEIVED.search(line)
        if match and _LOG_LINE.match(line):
            worker_of.setdefault(match.group(1), set()).add(_LOG_LINE.match(line).group(1))
    raised = set()
    for call_id in _call_ids(bad):
        errors = [line for line in log if call_id in line and _LOG_LINE.match(line)
                  and _LOG_LINE.match(line).group(2) in ('ERROR', 'CRITICAL', 'ALERT', 'BUG')]
        assert errors == [], '\n'.join(errors)
        raised |= worker_of.get(call_id, set())
    assert not [line for line in log if 'Traceback' in line]
    # Every worker that got an undecodable request answered REGISTERs (401, then 200) afterwards.
    good_workers = set()
    for call_id in _call_ids(good):
        good_workers |= worker_of.get(call_id, set())
    assert raised and raised <= good_workers, (raised, good_workers)


# ------------------------------------------------------------------------------ 8. reload
def _probe_inbound(kamailio, number):
    uri = 'sip:%s@%s' % (number, ACME)
    return sip_request(kamailio.trunk, kamailio.target, 'INVITE', uri, 'sip:%s@%s' % (OUTSIDE_CALLER, kamailio.trunk),
                       uri, timeout=1.0)


def _watch_change(kamailio, number, stop, seen):
    """Poll the directory generation (read-only, as the workers do); once it moved, probe an
    inbound call to ``number`` until it gets the new answer. Records monotonic times in seen."""
    conn = sqlite3.connect('file:%s?mode=ro' % kamailio.directory_path, uri=True, timeout=1.0)
    try:
        query = 'SELECT generation FROM voxplane_generation WHERE id = 1'
        first = conn.execute(query).fetchone()[0]
        while not stop.is_set():
            if 'committed' not in seen and conn.execute(query).fetchone()[0] != first:
                seen['committed'] = time.monotonic()
            if 'committed' in seen:
                seen['line'] = _probe_inbound(kamailio, number)
                if seen['line'] == 'SIP/2.0 480 Temporarily Unavailable':  # extension 13, nobody registered
                    seen['routed'] = time.monotonic()
                    return
            time.sleep(0.02)
    finally:
        conn.close()


def test_a_directory_change_routes_within_a_second_without_restart_or_loss(kamailio):
    pid = kamailio.pid()
    # Before: hugo.desk does not exist, and the block member with DDI 13 leads nowhere.
    before = register(kamailio, 'hugo.desk')
    assert statuses(before) == ['401', '401'], report(kamailio, register=before)
    assert _probe_inbound(kamailio, '+4930123456013') == 'SIP/2.0 404 Number has no target'

    # A steady authenticated REGISTER load (Expires 0: every request goes through the snapshot,
    # nothing stays bound) runs while the playbook changes the directory.
    load = start_sipp('register_load.xml', kamailio.target, kamailio.address, kamailio.workdir, calls=3000,
                      rate=50, timeout=90, inf=users_file(kamailio, 'load', [('cora.app', ACME, password('cora.app'))]))
    stop, seen = threading.Event(), {}
    watcher = threading.Thread(target=_watch_change, args=(kamailio, '+4930123456013', stop, seen), daemon=True)
    try:
        time.sleep(1.0)
        watcher.start()
        run = kamailio.provision(CHANGE_PLAYBOOK)
        done = time.monotonic()
        assert run.rc == 0 and run.changed == 1, repr(run)
        watcher.join(timeout=5)
        stop.set()
        assert 'committed' in seen, 'the playbook did not bump the directory generation'
        assert 'routed' in seen, 'still %r 5 s after the playbook ended\n%s' % (seen.get('line'), kamailio.log_tail())
        after_commit, after_playbook = seen['routed'] - seen['committed'], max(0.0, seen['routed'] - done)
        # reload_check_ms is 500: the change should route within about half a second.
        assert after_commit < 2.0, 'the change routed %.2f s after its commit' % after_commit
        assert after_playbook < 2.0, 'the change routed %.2f s after the playbook ended' % after_playbook

        # Every worker checks the generation on its own (at most every reload_check_ms, 500 ms):
        # one second after the commit all of them route with the change. Then the new account
        # registers and its phone gets the DDI call.
        time.sleep(max(0.0, seen['committed'] + 1.0 - time.monotonic()))
        hugo = Phone(kamailio, 'hugo.desk')
        caller, phones = scene(kamailio, lambda: inbound(kamailio, '+4930123456013'), answer=hugo)
        assert statuses(caller) == ['200', '200', '200'], report(kamailio, caller=caller, hugo=phones['hugo.desk'])
        time.sleep(0.5)
    finally:
        stop.set()
        load['proc'].send_signal(signal.SIGUSR1)  # sipp: place no new calls, finish, exit
        loaded = finish_sipp(load, timeout=20)
    assert kamailio.pid() == pid  # no restart
    assert loaded.stats.get('FailedCall(C)') == '0', report(kamailio, load=loaded)
    assert int(loaded.stats.get('SuccessfulCall(C)', 0)) >= 100, report(kamailio, load=loaded)
    assert loaded.rc == 0, report(kamailio, load=loaded)
    print('reload test: routed %.2f s after the commit, %.2f s after the playbook ended; %s REGISTERs under load, '
          '%s failed' % (after_commit, after_playbook, loaded.stats.get('SuccessfulCall(C)'),
                         loaded.stats.get('FailedCall(C)')))
