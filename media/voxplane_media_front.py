# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media service's front: one SIP address for Kamailio, calls spread over worker processes.

The PJSIP wheel the service runs on is built for at most 4 calls at once per process (its
PJSUA_MAX_CALLS; a fifth INVITE gets 486), so the service runs ``workers`` processes, each a
PJSIP engine on a port of its own (the front's port + 1 + its number), and this front on the
service's port relays the requests that start a dialog to a worker with a free call slot.

It is a stateless relay for one internal hop (RFC 3261 16.11): a request gets the front's Via
on top and ``X-Voxplane-Media-Source`` (where it really came from: the worker admits Kamailio's
addresses only) and goes to a worker: a new INVITE to the least loaded one, CANCEL and ACK (and
anything else) to the worker its Call-ID went to; a response from a worker loses the front's Via
and goes to the next Via's address. Once a call is answered its in-dialog requests go to the
worker's own Contact, past the front. The front makes no SIP message of its own: a full
service answers 486 from a worker.

Workers tell the front their number of calls on a status socket (on every change and every
second; a worker silent for 3 s gets no calls) and ask it to send pending mails; the front
starts them, starts one again that ended, and passes SIGTERM on when it stops.

Conference rooms and queues span workers, so neither is limited by the calls one worker takes.
The front keeps every room's members (conference_flows.Rooms) and tells each worker in a room its
table on every change; each worker mixes its own members in its PJSIP bridge and sends the mix of
its speakers to the other workers in the room over a loopback audio bus
(voxplane_media_engine.RoomBus). The front keeps every queue's state too
(queue_flows.QueueKeeper): a worker's queue flows ask it, one round trip a question. These are
``voxplane-room`` messages on the status socket, JSON, both ways.

With a metrics socket (settings "metrics": listen "address:port", allow: networks) the front
answers Prometheus's GET /metrics there, to the allowed networks only (403 otherwise): calls in
progress, workers and workers alive, calls taken, calls refused (every worker was full: the
worker answers 486) and worker restarts (docs/operations.md).
"""

import hashlib
import ipaddress
import json
import logging
import re
import selectors
import socket
import subprocess
import time

from ansible_collections.voxplane.pbx.plugins.module_utils.conference_flows import Rooms
from ansible_collections.voxplane.pbx.plugins.module_utils.queue_flows import QueueKeeper

LOG = logging.getLogger('voxplane-media')

SOURCE_HEADER = 'X-Voxplane-Media-Source'
CALLS_PER_WORKER = 4
# A worker that has not reported for this long gets no new call.
WORKER_SILENT_S = 3.0
# A Call-ID is remembered this long after its INVITE (its CANCEL or ACK come within the
# transaction's lifetime, 64 * T1).
CALL_MEMORY_S = 64.0
STATUS_PREFIX = b'voxplane-media '
ROOM_PREFIX = b'voxplane-room '
RESTART_DELAY_S = 1.0
# A worker's question to the front (a queue's state) is answered within this.
CALL_TIMEOUT_S = 1.0
_HEADER_END = re.compile(rb'\r?\n\r?\n')


# ---------------------------------------------------------------------------- the messages
def split(datagram):
    """(first line, [header lines], body) of a SIP datagram; folded headers joined."""
    match = _HEADER_END.search(datagram)
    head, body = (datagram[:match.start()], datagram[match.end():]) if match else (datagram, b'')
    lines = re.split(rb'\r?\n', head)
    headers = []
    for line in lines[1:]:
        if line[:1] in (b' ', b'\t') and headers:
            headers[-1] += b' ' + line.strip()
        elif line:
            headers.append(line)
    return lines[0], headers, body


def join(first, headers, body):
    return b'\r\n'.join([first] + headers) + b'\r\n\r\n' + body


def _name(line):
    name = line.split(b':', 1)[0].strip().lower()
    return {b'v': b'via', b'i': b'call-id', b't': b'to', b'l': b'content-length'}.get(name, name)


def header(headers, name):
    """The value of the first header ``name`` (lower case, compact forms understood), or None."""
    for line in headers:
        if _name(line) == name:
            return line.split(b':', 1)[1].strip()
    return None


def vias(headers):
    """Every Via value in order (a header line may hold several, comma-separated)."""
    found = []
    for line in headers:
        if _name(line) == b'via':
            found.extend(v.strip() for v in line.split(b':', 1)[1].split(b','))
    return found


def request_with_front(datagram, front, source):
    """A request as the front relays it: its Via on top (a branch of its own from the top Via's),
    the real source in SOURCE_HEADER (one sent by anyone else dropped). None when it is no request."""
    first, headers, body = split(datagram)
    if first.startswith(b'SIP/2.0') or b' SIP/2.0' not in first:
        return None
    # The same branch for a request and the CANCEL or ACK of it (their top Vias are the same).
    top = (vias(headers) or [b''])[0]
    branch = 'z9hG4bK-vxm-' + hashlib.sha1(top).hexdigest()[:20]
    kept = [h for h in headers if _name(h) != SOURCE_HEADER.lower().encode()]
    via = ('Via: SIP/2.0/UDP %s:%d;branch=%s' % (front[0], front[1], branch)).encode()
    kept = [via] + kept + [('%s: %s:%d' % (SOURCE_HEADER, source[0], source[1])).encode()]
    return join(first, kept, body)


def response_without_front(datagram):
    """(a response without the front's top Via, the address it goes to: the next Via's received
    and rport, else its sent-by) or None when there is no Via left to send it to."""
    first, headers, body = split(datagram)
    out, removed = [], False
    for line in headers:
        if not removed and _name(line) == b'via':
            name, value = line.split(b':', 1)
            rest = [v.strip() for v in value.split(b',')][1:]
            removed = True
            if rest:
                out.append(name + b': ' + b', '.join(rest))
            continue
        out.append(line)
    remaining = vias(out)
    if not remaining:
        return None
    return join(first, out, body), via_address(remaining[0])


def via_address(via):
    """Where a response to this Via goes (RFC 3261 18.2.2, RFC 3581)."""
    sent_by, _sep, params = via.partition(b';')
    host_port = sent_by.split()[-1]
    host, _colon, port = host_port.rpartition(b':') if b':' in host_port else (host_port, b'', b'5060')
    values = dict((p.split(b'=', 1) + [b''])[:2] for p in params.split(b';') if p)
    host = values.get(b'received') or host
    port = values.get(b'rport') or port or b'5060'
    return host.decode().strip('[]'), int(port)


def call_key(headers):
    return header(headers, b'call-id')


def starts_dialog(first, headers):
    """A new INVITE: no To tag yet."""
    to = header(headers, b'to') or b''
    return first.startswith(b'INVITE ') and b';tag=' not in to.replace(b' ', b'').lower()


# ---------------------------------------------------------------------------- the workers
class Workers(object):
    """Which worker takes the next call: the one with the fewest calls (counting the INVITEs
    sent to it since its last report) that reported lately; Call-IDs remembered for CANCEL/ACK."""

    def __init__(self, ports, clock=time.monotonic):
        self.ports = list(ports)
        self.clock = clock
        self.calls = dict((port, 0) for port in self.ports)
        self.pending = dict((port, 0) for port in self.ports)
        self.seen = dict((port, None) for port in self.ports)
        self.by_call = {}

    def report(self, port, calls):
        if port in self.calls:
            self.calls[port] = calls
            self.pending[port] = 0
            self.seen[port] = self.clock()

    def alive(self, port):
        return self.seen[port] is not None and self.clock() - self.seen[port] < WORKER_SILENT_S

    def choose(self, call_id):
        """The worker for a new call (a full one when every worker is full: it answers 486)."""
        now = self.clock()
        candidates = [p for p in self.ports if self.alive(p)] or self.ports
        port = min(candidates, key=lambda p: (self.calls[p] + self.pending[p], self.ports.index(p)))
        self.pending[port] += 1
        self.by_call[call_id] = (port, now)
        if len(self.by_call) > 4096:
            self.forget(now)
        return port

    def of_call(self, call_id):
        found = self.by_call.get(call_id)
        return found[0] if found else None

    def any(self):
        """A worker for a request outside any call (OPTIONS): the least loaded, nothing counted."""
        candidates = [p for p in self.ports if self.alive(p)] or self.ports
        return min(candidates, key=lambda p: (self.calls[p] + self.pending[p], self.ports.index(p)))

    def forget(self, now):
        for call_id in [c for c, (_p, at) in self.by_call.items() if now - at > CALL_MEMORY_S]:
            del self.by_call[call_id]

    def load(self):
        return sum(self.calls.values())

    def full(self):
        """Whether every worker that reported lately has no free call slot (a new call gets 486)."""
        candidates = [p for p in self.ports if self.alive(p)] or self.ports
        return all(self.calls[p] + self.pending[p] >= CALLS_PER_WORKER for p in candidates)


def metrics_socket(listen):
    """(address, port) of "address:port" ("[::1]:9496" for IPv6)."""
    address, _sep, port = listen.rpartition(':')
    return address.strip('[]'), int(port)


class Metrics(object):
    """The front's counters, and the Prometheus text of them with the workers' state."""

    def __init__(self, allow=()):
        self.allow = tuple(ipaddress.ip_network(net, strict=False) for net in allow)
        self.calls = 0
        self.refused = 0
        self.restarts = 0

    def allowed(self, source):
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False
        return any(address in net for net in self.allow)

    def exposition(self, workers):
        alive = sum(1 for port in workers.ports if workers.alive(port))
        lines = []
        for name, kind, text, value in (
                ('voxplane_media_calls_in_progress', 'gauge', 'Calls the workers hold now.', workers.load()),
                ('voxplane_media_workers', 'gauge', 'Worker processes (PJSIP engines) of the front.', len(workers.ports)),
                ('voxplane_media_workers_alive', 'gauge', 'Workers that reported within 3 s.', alive),
                ('voxplane_media_call_slots', 'gauge', 'Calls the service can hold at once.', len(workers.ports) * CALLS_PER_WORKER),
                ('voxplane_media_calls_total', 'counter', 'Calls (dialog-creating INVITEs) relayed to a worker.', self.calls),
                ('voxplane_media_calls_refused_total', 'counter', 'Calls that came while every worker was full (486).', self.refused),
                ('voxplane_media_worker_restarts_total', 'counter', 'Workers started again after they ended.', self.restarts)):
            lines += ['# HELP %s %s' % (name, text), '# TYPE %s %s' % (name, kind), '%s %d' % (name, value)]
        return ('\n'.join(lines) + '\n').encode()


class Front(object):
    """The relay and the supervisor of the worker processes."""

    def __init__(self, address, port, worker_command, count, on_mail=None, clock=time.monotonic, metrics=None):
        self.address = address
        self.port = port
        self.worker_command = worker_command      # function(index, status_port) -> argv
        self.workers = Workers([port + 1 + i for i in range(count)], clock)
        self.on_mail = on_mail
        self.clock = clock
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((address, port))
        self.status = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.status.bind(('127.0.0.1', 0))
        self.processes = {}
        self.started_at = {}
        self.rooms = Rooms()
        self.queues = QueueKeeper()
        self.links = {}    # worker port -> the address its reports come from (its link socket)
        # Prometheus: settings {"listen": "address:port", "allow": [networks]}; None or no listen: none.
        self.metrics = self.http = None
        if metrics and metrics.get('listen'):
            self.metrics = Metrics(metrics.get('allow') or ())
            host, http_port = metrics_socket(metrics['listen'])
            self.http = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM)
            self.http.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.http.bind((host, http_port))
            self.http.listen(16)
            self.http.setblocking(False)

    @property
    def status_port(self):
        return self.status.getsockname()[1]

    def start_worker(self, index):
        self.processes[index] = subprocess.Popen(self.worker_command(index, self.status_port))  # pylint: disable=consider-using-with
        self.started_at[index] = self.clock()

    def run(self, stop_requested, recover_worker=None):
        """Relay and supervise until ``stop_requested()``; ``recover_worker(pid)`` keeps what a
        worker that ended was recording."""
        for index in range(len(self.workers.ports)):
            self.start_worker(index)
        selector = selectors.DefaultSelector()
        selector.register(self.sip, selectors.EVENT_READ, self._sip)
        selector.register(self.status, selectors.EVENT_READ, self._status)
        if self.http is not None:
            selector.register(self.http, selectors.EVENT_READ, self._scrape)
        next_check = 0.0
        while not stop_requested():
            for key, _mask in selector.select(0.2):
                key.data()
            now = self.clock()
            if now >= next_check:
                next_check = now + 1.0
                self._supervise(recover_worker)
        self.stop()

    def _sip(self):
        try:
            datagram, source = self.sip.recvfrom(65535)
        except OSError:
            return
        if datagram.startswith(b'SIP/2.0'):
            # Only a worker's response is relayed (nobody else's is the front's to pass on).
            if source[0] == self.address and source[1] in self.workers.calls:
                relayed = response_without_front(datagram)
                if relayed is not None:
                    self._send(relayed[0], relayed[1])
            return
        first, headers, _body = split(datagram)
        call_id = call_key(headers)
        if starts_dialog(first, headers):
            if self.metrics is not None and first.startswith(b'INVITE '):
                self.metrics.calls += 1
                if self.workers.full():
                    self.metrics.refused += 1
            port = self.workers.choose(call_id)
        else:
            port = self.workers.of_call(call_id) or self.workers.any()
        relayed = request_with_front(datagram, (self.address, self.port), source)
        if relayed is not None:
            self._send(relayed, (self.address, port))

    def _scrape(self):
        """A connection to the metrics socket: GET /metrics from an allowed network gets the
        exposition, anything else 403 or 404; one request, then closed. The read waits at most
        0.2 s (the relay waits meanwhile), and only for an allowed source."""
        try:
            conn, source = self.http.accept()
        except OSError:
            return
        try:
            if not self.metrics.allowed(source[0]):
                status, body = '403 Forbidden', b'not allowed\n'
            else:
                conn.settimeout(0.2)
                request = conn.recv(2048)
                line = request.split(b'\r\n', 1)[0].split()
                if len(line) >= 2 and line[0] == b'GET' and line[1].split(b'?', 1)[0] == b'/metrics':
                    status, body = '200 OK', self.metrics.exposition(self.workers)
                else:
                    status, body = '404 Not Found', b'only /metrics here\n'
            conn.settimeout(0.5)
            conn.sendall(('HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n'
                          'Connection: close\r\n\r\n' % (status, len(body))).encode() + body)
        except OSError:
            pass
        finally:
            conn.close()

    def _send(self, datagram, destination):
        try:
            self.sip.sendto(datagram, destination)
        except OSError as e:
            LOG.warning('front: cannot send to %s:%d: %s', destination[0], destination[1], e)

    def _status(self):
        try:
            datagram, source = self.status.recvfrom(65535)
        except OSError:
            return
        if source[0] != '127.0.0.1':
            return
        if datagram.startswith(ROOM_PREFIX):
            self._room_message(datagram[len(ROOM_PREFIX):], source)
            return
        if not datagram.startswith(STATUS_PREFIX):
            return
        fields = dict(f.split(b'=', 1) for f in datagram[len(STATUS_PREFIX):].split() if b'=' in f)
        try:
            port = int(fields.get(b'port', b'0'))
            if port in self.workers.calls:
                self.links[port] = source
            if b'calls' in fields:
                self.workers.report(port, int(fields[b'calls']))
        except ValueError:
            return
        if fields.get(b'mail') == b'1' and self.on_mail is not None:
            self.on_mail()

    def _room_message(self, text, source):
        try:
            message = json.loads(text.decode('utf-8'))
            worker = int(message.get('worker', 0))
        except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
            LOG.warning('front: a room message that is no JSON object from %s:%d', source[0], source[1])
            return
        if worker not in self.workers.calls:
            return
        self.links[worker] = source
        self._tell(answer(self.rooms, self.queues, message, worker))

    def _tell(self, replies):
        for worker, message in replies:
            address = self.links.get(worker)
            if address is None:
                continue
            try:
                self.status.sendto(ROOM_PREFIX + json.dumps(message, separators=(',', ':')).encode(), address)
            except OSError as e:
                LOG.warning('front: cannot tell worker %d about room %s: %s', worker, message.get('key'), e)

    def _supervise(self, recover_worker):
        for index, process in list(self.processes.items()):
            code = process.poll()
            if code is None:
                continue
            if self.clock() - self.started_at[index] < RESTART_DELAY_S:
                continue
            LOG.error('worker %d (pid %d) ended with %s: starting it again', index, process.pid, code)
            port = self.workers.ports[index]
            self._tell(self.rooms.worker_gone(port))
            self.queues.worker_gone(port, time.time())
            self.links.pop(port, None)
            if recover_worker is not None:
                recover_worker(process.pid)
            if self.metrics is not None:
                self.metrics.restarts += 1
            self.start_worker(index)

    def stop(self, timeout=15.0):
        """SIGTERM to every worker (each keeps what it records), then wait for them."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = self.clock() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.sip.close()
        self.status.close()
        if self.http is not None:
            self.http.close()


class FrontUnavailable(Exception):
    """The front did not answer a worker's question."""


def answer(rooms, queues, message, worker):
    """The (worker, message) pairs the front sends for a worker's room or queue message."""
    message = dict(message, worker=worker)
    try:
        if message.get('t') == 'queue':
            try:
                value = queues.handle(message)
            except (KeyError, IndexError, TypeError, ValueError) as e:
                return [(worker, {'t': 'answer', 'id': message.get('id'), 'error': 'queue %s: %s' % (message.get('op'), e)})]
            return [(worker, {'t': 'answer', 'id': message.get('id'), 'value': value})]
        return rooms.handle(message)
    except (KeyError, TypeError, ValueError) as e:
        LOG.warning('front: a message from worker %s not understood (%s)', worker, e)
        return []


class FrontLink(object):
    """A worker's side of the status socket: its reports (number of calls, a mail to send) and
    its room messages go to the front from one socket, and the front's room messages come back
    to it (``receive``, polled by the engine; nothing blocks)."""

    def __init__(self, status_port, port):
        self.front = ('127.0.0.1', int(status_port))
        self.port = int(port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.setblocking(False)
        self.asked = 0
        self.waiting = []

    def _send(self, datagram):
        try:
            self.sock.sendto(datagram, self.front)
        except OSError:
            pass

    def report(self, calls=None, mail=False):
        fields = 'port=%d' % self.port + (' calls=%d' % calls if calls is not None else '') + (' mail=1' if mail else '')
        self._send(STATUS_PREFIX + fields.encode())

    def send(self, message):
        """A room message (a dict) to the front, from this worker."""
        message = dict(message, worker=self.port)
        self._send(ROOM_PREFIX + json.dumps(message, separators=(',', ':')).encode())

    def call(self, message, timeout=CALL_TIMEOUT_S):
        """A question to the front (a queue's state): its value. Blocks for the round trip (well
        under a millisecond); room messages that arrive meanwhile wait for ``receive``."""
        self.asked += 1
        self.send(dict(message, id=self.asked))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FrontUnavailable('the front did not answer within %.1f s' % timeout)
            ready = selectors.DefaultSelector()
            ready.register(self.sock, selectors.EVENT_READ)
            try:
                if not ready.select(left):
                    continue
            finally:
                ready.close()
            for reply in self._read():
                if reply.get('t') == 'answer' and reply.get('id') == self.asked:
                    if reply.get('error'):
                        raise FrontUnavailable(reply['error'])
                    return reply.get('value')
                if reply.get('t') != 'answer':
                    self.waiting.append(reply)

    def receive(self):
        """The front's room messages that arrived (dicts)."""
        messages, self.waiting = self.waiting + self._read(), []
        return messages

    def _read(self):
        messages = []
        while True:
            try:
                datagram, source = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return messages
            except OSError:
                return messages
            if source != self.front or not datagram.startswith(ROOM_PREFIX):
                continue
            try:
                messages.append(json.loads(datagram[len(ROOM_PREFIX):].decode('utf-8')))
            except (ValueError, UnicodeDecodeError):
                LOG.warning('a room message from the front that is no JSON')


class LocalRooms(object):
    """The front's part for an engine that runs alone (no front): the rooms in this process."""

    def __init__(self, port):
        self.port = int(port)
        self.rooms = Rooms()
        self.queues = QueueKeeper()
        self.pending = []

    def send(self, message):
        self.pending.extend(reply for _worker, reply in self.rooms.handle(dict(message, worker=self.port)))

    def call(self, message):
        reply = answer(self.rooms, self.queues, dict(message, id=0), self.port)[0][1]
        if reply.get('error'):
            raise FrontUnavailable(reply['error'])
        return reply.get('value')

    def receive(self):
        messages, self.pending = self.pending, []
        return messages
