# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Three SIP nodes on one PostgreSQL directory (docs/cluster.md), every part real and started
here: a PostgreSQL server (lab.postgresql) and three Kamailio nodes deployed by the roles, each on
a loopback address of its own, replicating over DMQ (lab.cluster.kamailio_cluster: one deployment
for the whole module), and two media services deployed by the media role on the same directory.
Phones, the trunk stand-in, attackers and the media services each have an address of their own.

- a phone registered on node A is rung from the trunk through node B and by a phone on node C,
  the call reaching it from A;
- a playbook's change is routed on all three nodes within 1 s; a feature code dialled on B is
  honoured by a call on A within 1 s;
- A restarts and gets the registrations back from B and C (DMQ sync): calls reach the phone
  without a new registration;
- ten seconds without PostgreSQL while calls arrive on every node: none routed differently,
  feature codes get a clean 503, a playbook fails naming the server and writes nothing, and
  everything recovers by itself;
- a password guesser's failures count on every node and its ban holds on all three; the
  outside-call limit counts the calls of every node;
- the media services are a dispatcher set: a voicemail call through any node is answered by one
  of the two real services, a message left through a node is in the PostgreSQL directory with the
  mailbox's counts and serial moved, and with one service stopped every node's calls go to the
  other.

Every test prints its numbers (calls attempted, failed, the longest gap, replication times).
"""

import concurrent.futures
import importlib.util
import os
import re
import time
import uuid

import pytest

from lab import table_rows
from lab.calls import ACME, final_reply, inbound, report, users_file
from lab.cluster import kamailio_cluster
from lab.kamailio import missing_prerequisites
from lab.media import missing_prerequisites as missing_media
from lab.net import wait_for, wait_udp_bound
from lab.postgresql import missing_prerequisites as missing_postgresql
from lab.sipp import finish_sipp, parse_messages, password, run_sipp, start_sipp
from lab.wire import Peer, sip_request

HERE = os.path.dirname(os.path.abspath(__file__))
CHANGE = os.path.join(HERE, 'postgresql_change.yml')  # a new extension of tenant acme
LIMIT = os.path.join(HERE, 'cluster_limit.yml')         # tenant acme's max_outside_calls
BERT_DDI = '+4930123456011'
MIA_DDI = '+4930123456026'
CORA_DDI = '+4930123456012'                          # never registered: answered without a write
OUTAGE = 10.0
CALL_RATE = 15                                        # calls a second, over the three nodes


@pytest.fixture(scope='module')
def cluster():
    reason = missing_prerequisites() or missing_postgresql() or missing_media()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    with kamailio_cluster(nodes=3, media_services=2) as running:
        print('\ncluster: PostgreSQL and three nodes deployed by the roles in %.0f s: %s'
              % (time.monotonic() - started, ', '.join('%s:%d (cluster port %d)' % (n.address, n.port, m['port'])
                                                       for n, m in zip(running.nodes, running.members))))
        yield running


def probe(node, number, source):
    """An inbound INVITE from the trunk stand-in's address to ``node``: its final status line."""
    uri = 'sip:%s@%s' % (number, ACME)
    return sip_request(source, node.target, 'INVITE', uri, 'sip:+4989111@%s' % source, uri, timeout=1.0)


def dial(cluster, node, user, dialled):
    """An authenticated INVITE of ``user`` (tenants.yml password) to ``node`` from an address of
    its own: the final reply's status line."""
    with Peer(cluster.pool.take(), node.target) as peer:
        _challenge, answer, _params = peer.authenticate('INVITE', user, ACME, password(user), dialled=dialled)
    return answer.first_line if answer is not None else None


def invite_source(result):
    """The top Via (sent-by) of the first INVITE a sipp UAS received."""
    invites = [m for m in parse_messages(result.messages) if m.direction == 'received' and m.method == 'INVITE']
    return invites[0].all('Via')[0].split()[1].split(';')[0] if invites else None


def ring_phone(cluster, phone, place_call):
    """``phone`` answers (phone_answer.xml) the call ``place_call()`` makes; (caller, phone) results."""
    handle = phone.start('phone_answer.xml')
    try:
        caller = place_call()
    finally:
        answered = finish_sipp(handle, timeout=3)
    return caller, answered


# ------------------------------------------------------------------------------ registrations
def test_a_phone_registered_on_a_is_rung_through_a_from_b_and_from_a_phone_on_c(cluster):
    a, b, c = cluster.nodes
    bert = cluster.phone(a, 'bert.desk')
    registered = bert.register()
    assert registered.rc == 0, report(a, register=registered)
    try:
        replicated = cluster.wait_for_contact(bert.aor, bert.contact)
        print('registration on A replicated to every node in %s s' % (None if replicated is None else '%.3f' % replicated))
        assert replicated is not None, [cluster.contacts(node, bert.aor) for node in cluster.nodes]
        # Every node holds the binding with a Path naming A's cluster socket.
        for node in cluster.nodes:
            (_contact, path), = cluster.contacts(node, bert.aor)
            own = '<sip:%s:%d;lr;vxs=udp:%s:%d' % (a.address, cluster.members[0]['port'], a.address, a.port)
            assert path.startswith(own), path
        # From the trunk, arriving at B ...
        caller, phone = ring_phone(cluster, bert, lambda: inbound(b, BERT_DDI))
        explain = report(b, caller=caller, phone=phone) + '\n=== A\n' + a.log_tail(30)
        assert final_reply(caller) == 'SIP/2.0 200 OK' and phone.rc == 0, explain
        assert invite_source(phone) == '%s:%d' % a.target, explain  # from A, where the phone registered
        # ... and from a phone of the same tenant on C (authenticated there).
        anna = cluster.phone(c, 'anna.desk')
        inf = users_file(c, 'call', [('anna.desk', ACME, password('anna.desk'), '11')])
        caller, phone = ring_phone(cluster, bert, lambda: run_sipp('call.xml', c.target, anna.address, c.workdir,
                                                                   inf=inf, timeout=20))
        explain = report(c, caller=caller, phone=phone) + '\n=== A\n' + a.log_tail(30)
        assert final_reply(caller) == 'SIP/2.0 200 OK' and phone.rc == 0, explain
        assert invite_source(phone) == '%s:%d' % a.target, explain
        # The phone hangs up itself: its BYE goes back through A and B to the trunk.
        handle = bert.start('phone_hangs_up.xml')
        inf = users_file(b, 'in', [('+493055599999', ACME, 'unused', BERT_DDI)])
        caller = run_sipp('call_hung_up.xml', b.target, cluster.trunk, b.workdir, inf=inf, timeout=10)
        phone = finish_sipp(handle, timeout=3)
        explain = report(b, caller=caller, phone=phone) + '\n=== A\n' + a.log_tail(30)
        assert caller.rc == 0 and phone.rc == 0, explain
        bye = [m for m in parse_messages(caller.messages) if m.direction == 'received' and m.method == 'BYE']
        assert bye and bye[0].all('Via')[0].split()[1].split(';')[0] == '%s:%d' % b.target, explain
    finally:
        a.kamcmd('ul.rm', 'location', bert.aor)
    # The removal is replicated as well.
    assert wait_for(lambda: all(cluster.contacts(node, bert.aor) == [] for node in cluster.nodes), 5), \
        [cluster.contacts(node, bert.aor) for node in cluster.nodes]


def test_a_restarted_node_gets_the_registrations_back_from_the_others(cluster):
    a, b, _c = cluster.nodes
    bert = cluster.phone(a, 'bert.desk')
    assert bert.register().rc == 0
    try:
        assert cluster.wait_for_contact(bert.aor, bert.contact) is not None
        before = a.pid()
        started = time.monotonic()
        cluster.restart(a)
        up = time.monotonic() - started
        assert a.pid() != before
        synced = cluster.wait_for_contact(bert.aor, bert.contact, nodes=[a], timeout=10)
        print('node A restarted in %.1f s; its registration back from B and C (DMQ sync) %s s after it answered'
              % (up, None if synced is None else '%.3f' % synced))
        assert synced is not None, a.log_tail()
        # Registrations live in memory and DMQ only: the node's usrloc database holds none.
        assert table_rows(a.usrloc_db).get('location') == []
        # Calls reach the phone without a new registration: through B (to A), and at A itself.
        for node in (b, a):
            caller, phone = ring_phone(cluster, bert, lambda: inbound(node, BERT_DDI))
            explain = report(node, caller=caller, phone=phone) + '\n=== A\n' + a.log_tail(30)
            assert final_reply(caller) == 'SIP/2.0 200 OK' and phone.rc == 0, explain
            assert invite_source(phone) == '%s:%d' % a.target, explain
    finally:
        a.kamcmd('ul.rm', 'location', bert.aor)


# ------------------------------------------------------------------------------ the directory
def _final(line):
    return line is not None and not line.startswith('SIP/2.0 1')


def _routed_everywhere(cluster, number, before, since, timeout=5.0):
    """Poll every node (in parallel) until its final answer to an inbound call to ``number`` is
    another than ``before``; {node address: seconds after ``since``} (None: not within ``timeout``)."""
    def watch(node):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = probe(node, number, cluster.trunk)
            if _final(line) and line != before:
                return round(time.monotonic() - since, 3)
            time.sleep(0.02)
        return None
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cluster.nodes)) as pool:
        return dict(zip([n.address for n in cluster.nodes], pool.map(watch, cluster.nodes)))


def _every_worker(cluster, number, since, probes=6):
    """From 1 s after ``since`` on: the answers of ``probes`` calls to ``number`` on each node
    (each node's two workers poll the generation every 500 ms: by then both route with it)."""
    time.sleep(max(0.0, since + 1.0 - time.monotonic()))
    return {node.address: sorted(set(probe(node, number, cluster.trunk) for _probe in range(probes)))
            for node in cluster.nodes}


def test_a_playbook_change_is_routed_on_every_node_within_a_second(cluster):
    a = cluster.nodes[0]
    before = probe(a, '+4930123456013', cluster.trunk)
    change = a.provision(CHANGE, extension='13')
    ended = time.monotonic()
    assert change.rc == 0 and change.changed == 1, repr(change)
    try:
        routed = _routed_everywhere(cluster, '+4930123456013', before, ended)
        print('playbook change routed after the playbook ended: %s'
              % ', '.join('%s %s' % (node, 'never' if took is None else '%.2f s' % took) for node, took in routed.items()))
        assert all(took is not None and took < 1.0 for took in routed.values()), routed
        answers = _every_worker(cluster, '+4930123456013', ended)
        assert all(len(lines) == 1 and lines != [before] for lines in answers.values()), answers
    finally:
        assert a.provision(CHANGE, extension='13', state='absent').rc == 0  # the seat is needed later


def test_a_feature_code_dialled_on_b_is_honoured_on_a_within_a_second(cluster):
    a, b, _c = cluster.nodes
    before = probe(a, MIA_DDI, cluster.trunk)          # nobody registered: 480
    try:
        assert dial(cluster, b, 'mia.desk', '*78') == 'SIP/2.0 603 Do Not Disturb On'
        answered = time.monotonic()
        routed = _routed_everywhere(cluster, MIA_DDI, before, answered)
        print('DND by feature code on B routed after its answer: %s'
              % ', '.join('%s %s' % (node, 'never' if took is None else '%.2f s' % took) for node, took in routed.items()))
        assert all(took is not None and took < 1.0 for took in routed.values()), routed
        assert _every_worker(cluster, MIA_DDI, answered) == {node.address: ['SIP/2.0 486 Do Not Disturb']
                                                             for node in cluster.nodes}
    finally:
        assert dial(cluster, b, 'mia.desk', '*79') == 'SIP/2.0 603 Do Not Disturb Off'


def test_ten_seconds_without_postgresql(cluster):
    server = cluster.server
    nodes = cluster.nodes
    expected = probe(nodes[0], CORA_DDI, cluster.trunk)
    rows_before = table_rows(cluster.directory)
    answers = []
    server.stop()
    try:
        stopped = time.monotonic()
        turn = 0
        while time.monotonic() < stopped + OUTAGE:
            started = time.monotonic()
            node = nodes[turn % len(nodes)]
            answers.append((node.address, probe(node, CORA_DDI, cluster.trunk), started, time.monotonic() - started))
            turn += 1
            time.sleep(max(0.0, 1.0 / CALL_RATE - (time.monotonic() - started)))
        feature_code = dial(cluster, nodes[1], 'mia.desk', '*78')
        change = nodes[2].provision(CHANGE, extension='16')
    finally:
        server.start()
    failed = [answer for answer in answers if answer[1] != expected]
    gaps = [later[2] - earlier[2] for earlier, later in zip(answers, answers[1:])]
    print('postgresql outage: %d calls in %.0f s over %d nodes, %d failed, longest gap between two calls %.0f ms, '
          'slowest answer %.0f ms; feature code: %s; playbook rc %s'
          % (len(answers), OUTAGE, len(nodes), len(failed), max(gaps) * 1000,
             max(took for _n, _l, _s, took in answers) * 1000, feature_code, change.rc))
    assert len(answers) >= OUTAGE * CALL_RATE * 0.8 and failed == [], failed[:5]
    assert feature_code.startswith('SIP/2.0 503 Directory unavailable'), feature_code
    assert change.rc != 0 and 'cannot reach the database server' in change.stdout, repr(change)
    # Nothing was written: no extension 16, Mia without DND.
    assert table_rows(cluster.directory) == rows_before
    # Back by itself: a change is routed on every node again, a feature code is answered.
    unknown = probe(nodes[0], '+4930123456016', cluster.trunk)
    change = nodes[2].provision(CHANGE, extension='16')
    ended = time.monotonic()
    assert change.rc == 0 and change.changed == 1, repr(change)
    routed = _routed_everywhere(cluster, '+4930123456016', unknown, ended)
    print('after the outage, a change routed on every node: %s' % routed)
    assert all(took is not None and took < 1.0 for took in routed.values()), routed
    answers = _every_worker(cluster, '+4930123456016', ended)
    assert all(len(lines) == 1 and lines != [unknown] for lines in answers.values()), answers
    assert dial(cluster, nodes[1], 'mia.desk', '*79') == 'SIP/2.0 603 Do Not Disturb Off'


# ------------------------------------------------------------------------------ protection
def test_failures_count_on_every_node_and_a_ban_holds_on_all_three(cluster):
    a, b, c = cluster.nodes
    guesser = cluster.pool.take()
    answered = []
    with Peer(guesser, a.target) as peer:
        # Ten wrong passwords, spread over the three nodes (4 on A, 3 on B, 3 on C): banned at
        # the tenth, counted over the cluster.
        for attempt, node in enumerate([a, b, c, a, b, c, a, b, c, a]):
            peer.target = node.target
            _challenge, answer, _params = peer.authenticate('REGISTER', 'bert.desk', ACME, 'guess-%d' % attempt)
            answered.append(answer.code if answer is not None else None)
        banned = time.monotonic()
        everywhere = wait_for(lambda: all('%s' % guesser in node.kamcmd('htable.dump', 'vxban').stdout
                                          for node in cluster.nodes), 3, interval=0.01)
        replicated = time.monotonic() - banned
        # Banned: no node answers it any more, not even an OPTIONS.
        silent = []
        for node in cluster.nodes:
            peer.target = node.target
            silent.append(peer.request('OPTIONS', 'sip:%s:%d' % node.target, 'sip:probe@%s' % guesser,
                                       'sip:%s:%d' % node.target, timeout=0.5))
    print('password guesser: answers %s; banned on every node %.3f s after its tenth failure; '
          'replies to it afterwards: %s' % (answered, replicated, [s and s.first_line for s in silent]))
    assert answered == [401] * 10 and everywhere, [node.kamcmd('htable.dump', 'vxban').stdout for node in cluster.nodes]
    assert silent == [None, None, None]
    # Lifting the ban on one node lifts it on all.
    a.kamcmd('htable.delete', 'vxban', guesser)
    assert wait_for(lambda: not any(guesser in node.kamcmd('htable.dump', 'vxban').stdout for node in cluster.nodes), 3)


def _outside_call(cluster, node, user, dialled):
    """An authenticated outside call that rings at the trunk until it is cancelled after 3 s."""
    inf = users_file(node, 'ring', [(user, ACME, password(user), dialled)])
    return start_sipp('call_ringing_cancel.xml', node.target, cluster.pool.take(), node.workdir, inf=inf, timeout=20)


def _invites_at(handle):
    try:
        with open(handle['files']['msg'], 'rb') as trace:
            return trace.read().count(b'INVITE sip:')
    except OSError:
        return 0


def test_max_outside_calls_counts_the_calls_of_every_node(cluster):
    a, b, c = cluster.nodes
    limit = a.provision(LIMIT, max_outside_calls=2)
    assert limit.rc == 0, repr(limit)
    trunk = start_sipp('phone_ring.xml', a.target, cluster.trunk, a.workdir, local_port=a.trunk_port, calls=2,
                       timeout=20)
    wait_udp_bound(cluster.trunk, a.trunk_port)
    calls = []
    try:
        for node, user, number in ((a, 'anna.desk', '0305550101'), (b, 'bert.desk', '0305550102')):
            calls.append(_outside_call(cluster, node, user, number))
            assert wait_for(lambda: _invites_at(trunk) >= len(calls), 5), 'call %d did not reach the trunk' % len(calls)
        started = time.monotonic()
        third = run_sipp('call.xml', c.target, cluster.pool.take(), c.workdir,
                         inf=users_file(c, 'call', [('finn.desk', ACME, password('finn.desk'), '0305550103')]),
                         timeout=10)
        took = time.monotonic() - started
    finally:
        calls = [finish_sipp(handle) for handle in calls]
        trunk = finish_sipp(trunk, timeout=5)
        a.provision(LIMIT, max_outside_calls='')
    print('tenant max_outside_calls 2: calls on A and B ringing at the trunk, the third on C answered %s in %.2f s'
          % (final_reply(third), took))
    explain = report(c, third=third, trunk=trunk)
    assert final_reply(third) == 'SIP/2.0 403 Outside call limit reached: 2 calls at once for tenant acme', explain
    assert [final_reply(result) for result in calls] == ['SIP/2.0 487 Request Terminated'] * 2, explain


# ------------------------------------------------------------------------------ media services
JAN_DDI = '+4930123456023'   # Jan (23): DND and voicemail


def answered_by(cluster, call):
    """The media service (lab.media.MediaInstance) whose address the call's 200 names (its Contact,
    else its SDP's connection address: no relay between the caller and the service here), or None."""
    final = call.final_response() or ''
    if not final.startswith('SIP/2.0 200'):
        return None
    named = re.findall(r'^(?:Contact|m)\s*:[^\n]*?sips?:(?:[^@>\s]*@)?([0-9.]+)', final, re.M | re.I)
    named += re.findall(r'^c=IN IP4 ([0-9.]+)', final, re.M)
    found = [service for address in named for service in cluster.media if service.address == address]
    return found[0] if found else None


def voicemail_call(cluster, phone, node, tmp_path, name):
    """A call from the trunk stand-in's address to Jan's number through ``node``; the call."""
    return phone.dial('sip:%s@%s' % (JAN_DDI, ACME), '%s:%d' % node.target, from_uri='sip:+4989111@%s' % cluster.trunk,
                      record=tmp_path / ('%s.wav' % name))


def mailbox(cluster, service):
    """(new, saved) of Jan's mailbox and the directory's voicemail serial, read through ``service``'s directory."""
    with service.directory().transaction(write=False, create=False) as txn:
        counts = txn.mailbox_counts('acme', '23').get('23', {})
        return counts.get('new', 0), counts.get('saved', 0), txn.voicemail_serial()


def test_voicemail_calls_through_every_node_are_answered_by_the_real_media_services(cluster, tmp_path):
    """Jan (23) has DND and voicemail: a call to him from the trunk goes to the PBX's media service,
    one of the two real ones of the dispatcher set. Through every node the caller gets the
    service's 200 with SDP and hears its greeting; a message left through B is stored in the
    PostgreSQL directory (its file on the service that took it) and moves the mailbox's count and
    the voicemail serial."""
    from lab import audio  # pylint: disable=import-outside-toplevel  # pjsua2: this test only
    from lab.phone import Phone, poll  # pylint: disable=import-outside-toplevel
    caller = Phone(cluster.trunk, user='+4989111')
    try:
        for node in cluster.nodes:
            call = voicemail_call(cluster, caller, node, tmp_path, 'greeting-%s' % node.address)
            answered = call.wait_answered(15)
            service = answered_by(cluster, call)
            print('voicemail call through %s: %s, answered by %s' % (
                node.address, (call.final_response() or 'no answer').split('\r\n', 1)[0],
                service.target if service else None))
            assert answered and service is not None, (call.final_response(), call.states, node.log_tail(30))
            assert 'application/sdp' in call.final_response().lower()
            assert call.wait_media(5), 'no media from %s' % service.target
            call.hangup()
            assert call.wait_ended(10)
        before = mailbox(cluster, cluster.media[0])
        b = cluster.nodes[1]
        call = voicemail_call(cluster, caller, b, tmp_path, 'message')
        assert call.wait_answered(15), call.states
        service = answered_by(cluster, call)
        beep = call.wait_heard(os.path.join(service.prompts_dir, 'de', 'beep.wav'), timeout=40)
        assert beep, 'no tone before the recording\n%s' % service.log_tail(20)
        call.play(audio.write_tones(str(tmp_path / 'tones.wav'), [(440, 700), (0, 100), (880, 700), (0, 100), (660, 900)]))
        poll(2.8)
        call.dtmf('#')
        kept = wait_for(lambda: len(service.messages('acme', '23')) > before[0] + before[1], 20)
        call.hangup()
        call.wait_ended(10)
        after = mailbox(cluster, cluster.media[1 - cluster.media.index(service)])  # read through the other service's view
        print('message left through B, taken by %s: mailbox (new, saved, serial) %s -> %s; stored %s' % (
            service.target, before, after, service.messages('acme', '23')[-1:]))
        assert kept, service.log_tail(30)
        message = service.messages('acme', '23')[-1]
        assert message['folder'] == 'new' and message['duration_ms'] >= 1000 and os.path.exists(message['path']), message
        assert after[0] == before[0] + 1 and after[1] == before[1] and after[2] > before[2], (before, after)
    finally:
        caller.close()


def test_with_one_media_service_stopped_every_node_sends_its_calls_to_the_other(cluster, tmp_path):
    """The first media service stops: the nodes' calls to Jan's voicemail still get a 200, from the
    second (a node whose probe has not noticed yet relays to the next after the timeout and marks
    the first inactive). The first is started again at the end."""
    from lab.phone import Phone  # pylint: disable=import-outside-toplevel
    stopped, other = cluster.media
    stop = stopped.control('stop')
    assert stop.returncode == 0 and not stopped.answers(), stop.stdout + stop.stderr
    caller = Phone(cluster.trunk, user='+4989111')
    try:
        answers = []
        for node in cluster.nodes:
            for attempt in range(2):
                call = voicemail_call(cluster, caller, node, tmp_path, 'failover-%s-%d' % (node.address, attempt))
                call.wait_answered(30)
                service = answered_by(cluster, call)
                answers.append((node.address, (call.final_response() or 'no answer').split('\r\n', 1)[0],
                                service.target if service else None))
                call.hangup()
                call.wait_ended(10)
        print('first media service %s stopped: %s' % (stopped.target, answers))
        assert [(code, target) for _node, code, target in answers] == [('SIP/2.0 200 OK', other.target)] * 6, answers
    finally:
        caller.close()
        start = stopped.control('start')
        assert start.returncode == 0, start.stdout + start.stderr


def test_kdmq_from_anything_but_a_node_is_dropped(cluster):
    a = cluster.nodes[0]
    stranger = cluster.pool.take()
    offset = a.log_size()
    with Peer(stranger, (a.address, cluster.members[0]['port'])) as peer:
        reply = peer.request('KDMQ', 'sip:usrloc@%s:%d' % (a.address, cluster.members[0]['port']),
                             'sip:usrloc@%s' % stranger, 'sip:usrloc@%s' % a.address, timeout=0.5,
                             headers=['Content-Type: application/json'], body='{"action":3}',
                             call_id=uuid.uuid4().hex)
    assert reply is None
    assert 'not a node' in a.log_since(offset)


def test_cluster_api_list_matches_the_committed_ksr_double_data(cluster):
    """tests/unit/ksr_double/api_list_cluster.json is what a cluster node (dmq, dmq_usrloc, path,
    textopsx and, with two media services, dispatcher loaded) exports to KEMI: the double of
    tests/unit/kemi/test_kemi_cluster.py. VOXPLANE_WRITE_API_LIST=1 rewrites it from the live node."""
    path = os.path.join(os.path.dirname(HERE), 'unit', 'ksr_double', 'regenerate.py')
    spec = importlib.util.spec_from_file_location('voxplane_ksr_regenerate', path)
    regenerate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regenerate)
    live = regenerate.render(regenerate.build(regenerate.DEFAULT_KAMCMD, 'unix:' + cluster.nodes[0].ctl_socket))
    output = os.path.join(os.path.dirname(path), 'api_list_cluster.json')
    if os.environ.get('VOXPLANE_WRITE_API_LIST') == '1':
        with open(output, 'w') as handle:
            handle.write(live)
    with open(output) as handle:
        assert live == handle.read(), (
            'tests/unit/ksr_double/api_list_cluster.json is stale: rewrite it with VOXPLANE_WRITE_API_LIST=1 '
            '.venv/bin/python -m pytest tests/sip/test_cluster.py -k api_list')
