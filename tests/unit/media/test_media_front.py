# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media service's front (media/voxplane_media_front.py): a request relayed with the front's
Via and its real source, a response relayed to the next Via, and which worker takes a call."""

import http.client
import os
import socket
import sys
import threading
import time

import voxplane_media_front as front

INVITE = (b'INVITE sip:10@acme.sip.test SIP/2.0\r\n'
          b'Via: SIP/2.0/UDP 127.0.0.20:5060;branch=z9hG4bKabc;rport\r\n'
          b'From: <sip:11@acme.sip.test>;tag=1\r\nTo: <sip:10@acme.sip.test>\r\nCall-ID: call-1\r\n'
          b'CSeq: 1 INVITE\r\nX-Voxplane-Media-Source: 10.0.0.66:5060\r\nContent-Length: 4\r\n\r\nv=0\n')


def test_a_request_gets_the_fronts_via_and_its_real_source_and_loses_a_forged_one():
    relayed = front.request_with_front(INVITE, ('127.0.0.40', 5080), ('127.0.0.20', 5060))
    first, headers, body = front.split(relayed)
    assert first == b'INVITE sip:10@acme.sip.test SIP/2.0' and body == b'v=0\n'
    assert headers[0].startswith(b'Via: SIP/2.0/UDP 127.0.0.40:5080;branch=z9hG4bK-vxm-')
    assert headers[1] == b'Via: SIP/2.0/UDP 127.0.0.20:5060;branch=z9hG4bKabc;rport'
    assert [h for h in headers if h.lower().startswith(b'x-voxplane-media-source')] == [
        b'X-Voxplane-Media-Source: 127.0.0.20:5060']


def test_a_cancel_gets_the_branch_of_its_invite():
    cancel = INVITE.replace(b'INVITE sip', b'CANCEL sip', 1).replace(b'1 INVITE', b'1 CANCEL')
    invite_via = front.split(front.request_with_front(INVITE, ('127.0.0.40', 5080), ('127.0.0.20', 5060)))[1][0]
    cancel_via = front.split(front.request_with_front(cancel, ('127.0.0.40', 5080), ('127.0.0.20', 5060)))[1][0]
    assert invite_via == cancel_via


def test_a_response_loses_the_fronts_via_and_goes_to_the_next_one():
    response = (b'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.40:5080;branch=z9hG4bK-vxm-1, '
                b'SIP/2.0/UDP 127.0.0.20:5060;branch=z9hG4bKabc;rport=5062;received=127.0.0.21\r\n'
                b'Call-ID: call-1\r\nContent-Length: 0\r\n\r\n')
    relayed, destination = front.response_without_front(response)
    assert destination == ('127.0.0.21', 5062)
    assert front.vias(front.split(relayed)[1]) == [b'SIP/2.0/UDP 127.0.0.20:5060;branch=z9hG4bKabc;rport=5062;received=127.0.0.21']
    assert front.response_without_front(b'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.40:5080;branch=x\r\n\r\n') is None


def test_where_a_response_goes():
    assert front.via_address(b'SIP/2.0/UDP 127.0.0.20:5070;branch=x') == ('127.0.0.20', 5070)
    assert front.via_address(b'SIP/2.0/UDP kamailio.example;branch=x') == ('kamailio.example', 5060)
    assert front.via_address(b'SIP/2.0/UDP 127.0.0.20:5070;rport;branch=x') == ('127.0.0.20', 5070)


def test_a_new_invite_starts_a_dialog_a_reinvite_does_not():
    first, headers, _body = front.split(INVITE)
    assert front.starts_dialog(first, headers)
    first, headers, _body = front.split(INVITE.replace(b'To: <sip:10@acme.sip.test>', b't: <sip:10@acme.sip.test>;tag=9'))
    assert not front.starts_dialog(first, headers)


class Clock(object):
    now = 100.0

    def __call__(self):
        return self.now


def test_the_least_loaded_worker_that_reported_takes_the_call_and_keeps_its_call_id():
    clock = Clock()
    workers = front.Workers([5081, 5082, 5083], clock)
    workers.report(5081, 3)
    workers.report(5082, 1)        # 5083 never reported: not chosen while others are alive
    assert workers.choose('a') == 5082
    assert workers.choose('b') == 5082   # 1 call + 1 on its way: still fewer than 5081's 3
    assert workers.choose('c') == 5081   # 3 each now: the first port wins
    assert workers.of_call('a') == 5082 and workers.of_call('nope') is None
    clock.now += front.WORKER_SILENT_S + 1  # nobody reported lately: any worker will do
    assert workers.choose('d') in (5081, 5082, 5083)


def test_a_call_id_is_forgotten_after_the_transactions_lifetime():
    clock = Clock()
    workers = front.Workers([5081], clock)
    workers.report(5081, 0)
    workers.choose('a')
    clock.now += front.CALL_MEMORY_S + 1
    workers.forget(clock.now)
    assert workers.of_call('a') is None


def test_a_queue_spans_workers_its_state_kept_by_the_front():
    from ansible_collections.voxplane.pbx.plugins.module_utils.queue_flows import QueueKeeper, QueueSpec, RemoteQueueState
    from ansible_collections.voxplane.pbx.plugins.module_utils.conference_flows import Rooms
    rooms, queues = Rooms(), QueueKeeper()

    def link(worker):
        return lambda message: front.answer(rooms, queues, dict(message, id=1), worker)[0][1]['value']
    spec = QueueSpec('acme', '600', [('10', 0), ('11', 0)], strategy='sequential')
    one, two = RemoteQueueState(link(5081), 'acme/600'), RemoteQueueState(link(5082), 'acme/600')
    assert one.enter('c1', 10) and two.enter('c2', 10)
    assert two.position('c2') == 2 and one.offer('c1', spec, 100.0, set()) == ['10']
    assert two.offer('c2', spec, 100.0, set()) == []          # not at the head
    one.ring('c1', ['10'])
    assert two.free(spec, 100.0) == ['11']                   # '10' rings for c1 on the other worker
    one.rang('c1', ['10'])
    one.taken('c1', '10')
    one.leave('c1')
    assert two.offer('c2', spec, 100.0, ()) == ['11']       # c2 is at the head, '10' talks
    queues.worker_gone(5081, 101.0)                           # c1's worker ended: '10' is free again
    assert two.free(spec, 101.0) == ['10', '11']
    reply = front.answer(rooms, queues, {'t': 'queue', 'key': 'acme/600', 'op': 'drop_table', 'args': [], 'id': 7}, 5081)
    assert reply == [(5081, {'t': 'answer', 'id': 7, 'error': "queue drop_table: no queue operation 'drop_table'"})]


def test_a_worker_asks_the_front_over_its_link_and_keeps_room_messages_for_later():
    import json
    import socket
    import threading
    status = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    status.bind(('127.0.0.1', 0))
    link = front.FrontLink(status.getsockname()[1], 5081)

    def serve():
        datagram, source = status.recvfrom(4096)
        question = json.loads(datagram[len(front.ROOM_PREFIX):])
        status.sendto(front.ROOM_PREFIX + b'{"t":"room","key":"acme/650","members":[]}', source)
        status.sendto(front.ROOM_PREFIX + json.dumps({'t': 'answer', 'id': question['id'], 'value': 3}).encode(), source)
    thread = threading.Thread(target=serve)
    thread.start()
    assert link.call({'t': 'queue', 'key': 'acme/600', 'op': 'position', 'args': ['c1']}) == 3
    thread.join(5)
    assert link.receive() == [{'t': 'room', 'key': 'acme/650', 'members': []}]
    try:
        link.call({'t': 'queue', 'key': 'acme/600', 'op': 'position', 'args': ['c1']}, timeout=0.2)
    except front.FrontUnavailable as e:
        assert 'did not answer' in str(e)
    else:
        raise AssertionError('no answer must raise')
    status.close()


def _free_tcp_and_udp_ports(count):
    """Ports free for UDP and TCP alike on 127.0.0.1 (the SIP port and the one above it for the
    worker, the metrics port for HTTP): a port the kernel gave UDP may be a TCP connection's."""
    ports = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        if port + 2 >= 65535 or port in ports or not all(_free(port + offset) for offset in (0, 1)):
            continue
        ports.append(port)
    return ports


def _free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(('127.0.0.1', port))
            except OSError:
                return False
    return True


def _get(url, source=None):
    conn = http.client.HTTPConnection('127.0.0.1', int(url.rsplit(':', 1)[1].split('/')[0]), timeout=5,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request('GET', '/' + url.split('/', 3)[3])
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def test_the_fronts_metrics_socket_counts_calls_and_refusals_for_the_allowed_networks_only():
    """A real front (sockets, a worker process that reports 4 calls: full) relays an INVITE and
    answers GET /metrics to 127.0.0.1 only."""
    sip_port, http_port = _free_tcp_and_udp_ports(2)
    here = os.path.dirname(os.path.abspath(front.__file__))

    import ansible_collections
    paths = [here] + [os.path.dirname(p) for p in ansible_collections.__path__]

    def worker(index, status_port):
        return [sys.executable, '-c', 'import sys, time; sys.path[:0] = %r; import voxplane_media_front as f; '
                'f.FrontLink(%d, %d).report(4); time.sleep(20)' % (paths, status_port, sip_port + 1 + index)]

    relay = front.Front('127.0.0.1', sip_port, worker, 1,
                        metrics={'listen': '127.0.0.1:%d' % http_port, 'allow': ['127.0.0.1/32']})
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop.is_set,))
    thread.start()
    try:
        url = 'http://127.0.0.1:%d/metrics' % http_port
        deadline = time.monotonic() + 10
        while 'voxplane_media_workers_alive 1' not in _get(url)[1] and time.monotonic() < deadline:
            time.sleep(0.1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as kamailio:
            kamailio.bind(('127.0.0.1', 0))
            kamailio.sendto(INVITE, ('127.0.0.1', sip_port))
        while 'voxplane_media_calls_total 1' not in _get(url)[1] and time.monotonic() < deadline:
            time.sleep(0.1)
        status, body = _get(url)
        assert status == 200
        assert 'voxplane_media_calls_total 1' in body and 'voxplane_media_calls_refused_total 1' in body, body
        assert 'voxplane_media_calls_in_progress 4' in body and 'voxplane_media_workers 1' in body, body
        assert '# TYPE voxplane_media_calls_refused_total counter' in body
        assert _get(url.replace('/metrics', '/other'))[0] == 404
        status, body = _get(url, source='127.0.0.2')
        assert status == 403 and 'voxplane_' not in body
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
