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


def test_the_calls_of_one_conference_room_go_to_one_worker():
    clock = Clock()
    workers = front.Workers([5081, 5082], clock)
    workers.report(5081, 0)
    workers.report(5082, 0)
    invite = INVITE.replace(b'Call-ID: call-1\r\n', b'Call-ID: call-1\r\nX-Voxplane-Media: conference;number=650\r\n')
    first, headers, _body = front.split(invite)
    room = front.room_key(first, headers)
    assert room == b'conference:acme.sip.test/650'
    assert front.room_key(*front.split(INVITE)[:2]) is None
    assert workers.choose('a', room) == 5081
    assert workers.choose('b', room) == 5081   # 5082 is less loaded, but 5081 has the room
    assert workers.choose('c') == 5082
    assert workers.choose("d", b"beta.sip.test/650") == 5082   # another room: the least loaded


def _free_tcp_and_udp_ports(count):
    ports = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        if port + 2 < 65535 and port not in ports:
            ports.append(port)
    return ports


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

    def worker(index, status_port):
        return [sys.executable, '-c', 'import sys, time; sys.path.insert(0, %r); import voxplane_media_front as f; '
                'f.report(%d, %d, 4); time.sleep(20)' % (here, status_port, sip_port + 1 + index)]

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
