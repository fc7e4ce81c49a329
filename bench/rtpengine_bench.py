# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rtpengine's CPU per concurrent relayed call in userspace mode, with RTP flowing both ways.

    sudo .venv/bin/python bench/rtpengine_bench.py [--calls 0,10,50,100] [--window 10] [--rounds 1]

One rtpengine deployed by the role (roles/rtpengine: userspace, ``table = -1``, daemon mode,
two threads) on 127.0.0.245. For each N it sets up N calls over the ng control socket as
Kamailio's rtpengine module does (offer with the caller's SDP, answer with the callee's, the
flags of kemi/voxplane_media.py for plain RTP legs), then streams G.711 (PCMU, 160-byte
payload, 50 packets per second) both ways through the relay for every call: caller sockets
on 127.0.0.246, callee sockets on 127.0.0.247, all in this process (one sender loop, 20 ms
ticks). After a warm-up second it reads rtpengine's utime + stime from /proc/<pid>/stat over
a fixed window, counts the packets that came out of the relay, deletes the calls and checks
that rtpengine holds no session.

Printed per N: rtpengine's CPU (% of one core), the CPU above the idle baseline (N = 0) per call
and per call-second (µs of CPU per second of one relayed call, both directions), per relayed
packet, the packets relayed against those expected, and the ratio to the idle baseline. The
sender's own CPU is printed too: on this 2-core machine it competes with rtpengine.
"""

import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab.rtpengine import deploy_rtpengine  # noqa: E402
from sip_bench import CLK_TCK, _stat_ticks  # noqa: E402

RELAY_ADDRESS = '127.0.0.245'
CALLER_ADDRESS = '127.0.0.246'
CALLEE_ADDRESS = '127.0.0.247'
PACKET_INTERVAL = 0.02  # 50 packets per second per direction, as G.711 with 20 ms frames
PAYLOAD = b'\xff' * 160  # PCMU silence, 20 ms at 8 kHz
# What kemi/voxplane_media.py asks for on a plain RTP leg (replace-origin
# replace-session-connection ICE=remove RTP/AVP).
OFFER_FLAGS = {'replace': ['origin', 'session-connection'], 'ICE': 'remove', 'transport-protocol': 'RTP/AVP'}


# ------------------------------------------------------------------------------ ng protocol
def bencode(value):
    if isinstance(value, int):
        return b'i%de' % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b'%d:%s' % (len(value), value)
    if isinstance(value, list):
        return b'l' + b''.join(bencode(item) for item in value) + b'e'
    if isinstance(value, dict):
        return b'd' + b''.join(bencode(key) + bencode(value[key]) for key in sorted(value)) + b'e'
    raise TypeError('cannot bencode %r' % (value,))


def bdecode(data, pos=0):
    """(value, next position); strings come back as str."""
    kind = data[pos:pos + 1]
    if kind == b'i':
        end = data.index(b'e', pos)
        return int(data[pos + 1:end]), end + 1
    if kind in (b'l', b'd'):
        pos += 1
        items = []
        while data[pos:pos + 1] != b'e':
            item, pos = bdecode(data, pos)
            items.append(item)
        if kind == b'l':
            return items, pos + 1
        return dict(zip(items[0::2], items[1::2])), pos + 1
    colon = data.index(b':', pos)
    length = int(data[pos:colon])
    return data[colon + 1:colon + 1 + length].decode('utf-8', 'replace'), colon + 1 + length


class NgClient(object):
    """rtpengine's ng control protocol over UDP: "<cookie> <bencoded dict>" each way."""

    def __init__(self, address, port):
        self.target = (address, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2.0)
        self.serial = 0

    def __call__(self, command, **params):
        self.serial += 1
        cookie = b'vx%d' % self.serial
        params['command'] = command
        self.sock.sendto(cookie + b' ' + bencode(params), self.target)
        while True:
            data = self.sock.recv(65536)
            head, _sep, body = data.partition(b' ')
            if head == cookie:
                reply = bdecode(body)[0]
                if reply.get('result') != 'ok':
                    raise RuntimeError('rtpengine %s: %r' % (command, reply))
                return reply


def sdp(address, port, session):
    return ('v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n'
            'a=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n' % (session, address, address, port))


def media_of(body):
    """(address, port) the SDP body asks to send RTP to."""
    address = re.search(r'^c=IN IP4 (\S+)', body, re.M).group(1)
    port = int(re.search(r'^m=audio (\d+)', body, re.M).group(1))
    return address, port


# ------------------------------------------------------------------------------ calls and RTP
class Leg(object):
    """One endpoint's RTP socket and where the relay wants its packets."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        self.sock.bind((address, 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.target = None
        self.received = 0
        self.seq = 0

    def send(self):
        self.seq += 1
        header = struct.pack('!BBHII', 0x80, 0, self.seq & 0xffff, (self.seq * 160) & 0xffffffff, self.port)
        try:
            self.sock.sendto(header + PAYLOAD, self.target)
        except OSError:
            pass

    def drain(self):
        while True:
            try:
                self.sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            self.received += 1

    def close(self):
        self.sock.close()


def set_up_calls(ng, count, tag):
    calls = []
    for index in range(count):
        caller, callee = Leg(CALLER_ADDRESS), Leg(CALLEE_ADDRESS)
        call_id, from_tag, to_tag = 'bench-%s-%d' % (tag, index), 'f%d' % index, 't%d' % index
        offer = ng('offer', **dict(OFFER_FLAGS, **{'call-id': call_id, 'from-tag': from_tag,
                                                   'sdp': sdp(CALLER_ADDRESS, caller.port, index + 1)}))
        callee.target = media_of(offer['sdp'])  # the callee sends to the relay's side of the caller
        answer = ng('answer', **dict(OFFER_FLAGS, **{'call-id': call_id, 'from-tag': from_tag, 'to-tag': to_tag,
                                                     'sdp': sdp(CALLEE_ADDRESS, callee.port, index + 1000)}))
        caller.target = media_of(answer['sdp'])
        calls.append((call_id, from_tag, caller, callee))
    return calls


def set_up_direct(count):
    """The same endpoints sending straight to each other: the no-relay baseline of the sender."""
    calls = []
    for index in range(count):
        caller, callee = Leg(CALLER_ADDRESS), Leg(CALLEE_ADDRESS)
        caller.target, callee.target = (CALLEE_ADDRESS, callee.port), (CALLER_ADDRESS, caller.port)
        calls.append((None, None, caller, callee))
    return calls


def stream(calls, seconds):
    """Send one packet per leg every 20 ms for ``seconds``, draining every socket each tick."""
    legs = [leg for call in calls for leg in call[2:]]
    next_tick = time.monotonic()
    deadline = next_tick + seconds
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_tick:
            for leg in legs:
                leg.send()
            next_tick += PACKET_INTERVAL
        for leg in legs:
            leg.drain()
        time.sleep(max(0.0, min(next_tick, deadline) - time.monotonic()))
    for leg in legs:
        leg.drain()


def own_cpu():
    times = os.times()
    return times.user + times.system


def measure(ng, rtpengine_pid, count, window, tag, direct=False):
    calls = set_up_direct(count) if direct else set_up_calls(ng, count, tag)
    try:
        stream(calls, 1.0)  # warm-up: the relay learns every endpoint's address
        received_before = sum(leg.received for call in calls for leg in call[2:])
        cpu_before, own_before, started = _stat_ticks(rtpengine_pid), own_cpu(), time.monotonic()
        stream(calls, window)
        cpu_after, own_after, elapsed = _stat_ticks(rtpengine_pid), own_cpu(), time.monotonic() - started
        relayed = sum(leg.received for call in calls for leg in call[2:]) - received_before
    finally:
        for call_id, from_tag, caller, callee in calls:
            if call_id:
                try:
                    ng('delete', **{'call-id': call_id, 'from-tag': from_tag})
                except (RuntimeError, OSError):
                    pass
            caller.close()
            callee.close()
    return dict(calls=count, seconds=elapsed, cpu=(cpu_after - cpu_before) / float(CLK_TCK),
                sender_cpu=own_after - own_before, relayed=relayed, expected=int(2 * count * elapsed / PACKET_INTERVAL))


def sessions(control_script):
    out = subprocess.run([control_script, 'sessions'], capture_output=True, text=True, timeout=10, check=False).stdout
    match = re.search(r'Current sessions total:\s*(\d+)', out)
    return int(match.group(1)) if match else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--calls', default='0,10,50,100', help='concurrent calls per step (at most 200)')
    parser.add_argument('--window', type=float, default=10.0, help='seconds of measurement per step')
    parser.add_argument('--rounds', type=int, default=1, help='repeat the steps, report the median CPU')
    args = parser.parse_args(argv)
    steps = [int(n) for n in args.calls.split(',')]
    if any(n < 0 or n > 200 for n in steps):
        parser.error('--calls: each step between 0 and 200')
    if 0 not in steps:
        steps.insert(0, 0)
    if os.geteuid() != 0:
        parser.error('needs root (the role deploys rtpengine like the SIP tests do)')
    root = tempfile.mkdtemp(prefix='voxplane-rtpbench-')
    os.chmod(root, 0o755)
    control = None
    try:
        pid, ng_port, _cli_port, control = deploy_rtpengine(root, RELAY_ADDRESS, (44000, 44999))
        ng = NgClient('127.0.0.1', ng_port)
        version = subprocess.run(['/usr/bin/rtpengine', '--version'], capture_output=True, text=True, check=False)
        print('rtpengine %s (pid %d, userspace, table -1, 2 threads) on %s; load average %.2f'
              % ((version.stdout + version.stderr).strip().split()[-1], pid, RELAY_ADDRESS, os.getloadavg()[0]))
        results, direct = {}, {}
        for round_number in range(args.rounds):
            for count in steps:
                result = measure(ng, pid, count, args.window, '%d-%d' % (round_number, count))
                left = sessions(control)
                if left:
                    raise RuntimeError('rtpengine holds %s sessions after deleting the calls' % left)
                results.setdefault(count, []).append(result)
                if count:
                    direct.setdefault(count, []).append(measure(ng, pid, count, args.window, '', direct=True))

        def median(runs, key):
            return sorted(runs, key=key)[len(runs) // 2]

        def relay_share(run):
            return run['cpu'] / run['seconds']

        def sender_share(run):
            return run['sender_cpu'] / run['seconds']

        idle_share = relay_share(median(results[0], relay_share))
        first = next((n for n in steps if n), None)
        print('window %.0f s per step, %d round(s), medians; 2 RTP streams per call (PCMU, 50 pps each way)'
              % (args.window, args.rounds))
        print('"direct": the same streams between the same sockets without the relay (the senders\' own cost)')
        print('%5s %10s %10s %12s %10s %10s %16s %13s %13s %8s' % (
            'calls', 'rtpengine', 'above 0', 'us/call-s', 'us/packet', 'vs first', 'relayed/expected',
            'sender relay', 'sender direct', 'relay/direct'))
        per_call_first = None
        for count in steps:
            run = median(results[count], relay_share)
            above = relay_share(run) - idle_share
            per_call = above / count * 1e6 if count else 0.0
            per_packet = above * run['seconds'] / run['relayed'] * 1e6 if run['relayed'] else 0.0
            if count == first:
                per_call_first = per_call
            plain = median(direct[count], sender_share) if count else None
            print('%5d %9.2f%% %9.2f%% %12.1f %10.2f %10s %8d/%-7d %12.1f%% %12s %8s' % (
                count, 100 * relay_share(run), 100 * above, per_call, per_packet,
                '%.2fx' % (per_call / per_call_first) if count and per_call_first else '-',
                run['relayed'], run['expected'], 100 * sender_share(run),
                '%.1f%%' % (100 * sender_share(plain)) if plain else '-',
                '%.2fx' % (relay_share(run) / sender_share(plain)) if plain and sender_share(plain) else '-'))
        print('us/call-s: rtpengine CPU above idle per second of one relayed call (both directions); '
              'vs first: per call against the smallest N; relay/direct: rtpengine CPU against the '
              'senders\' own CPU for the same streams without a relay. rtpengine held 0 sessions after every step.')
    finally:
        if control and os.path.exists(control):
            subprocess.run([control, 'stop'], capture_output=True, timeout=30, check=False)
        subprocess.run(['rm', '-rf', root], check=False)
    return 0


if __name__ == '__main__':
    sys.exit(main())
