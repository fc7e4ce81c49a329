# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the attack suite (tests/attack): floods and bursts, a forger, SIPVicious runs,
Kamailio's ban table and log, and the report that the suite prints at the end of its pytest
run. The SIP client (lab.wire.Peer: raw requests, digest answers) and the attacker addresses
(lab.net.AddressPool) are the lab's.

The Kamailio instance itself comes from the lab (lab.kamailio); this suite deploys its own,
with the ban settings below and the fuzzer's and the prober's addresses in
``kamailio_ban_exempt``. Every address is on 127.0.0.0/8.
"""

import collections
import os
import re
import select
import shutil
import socket
import subprocess
import threading
import time
import uuid

from lab import REPO
from lab.net import free_port
from lab.wire import Peer, challenge_params, digest, parse

HERE = os.path.dirname(os.path.abspath(__file__))

DICTIONARIES = os.path.join(HERE, 'dictionaries')
SIPVICIOUS_BOUND = os.path.join(HERE, 'sipvicious_bound.py')
SYSTEM_PYTHON = '/usr/bin/python3'  # the interpreter Debian's sipvicious package runs with
ACME = 'acme.sip.test'

# The role's abuse settings for this suite's instance (the role defaults, spelled out so that
# the tests can count with them), and a short nonce lifetime so that expiry can be tested.
BAN_FAILURES = 10
BAN_WINDOW = 60
BAN_TIME = 900
FLOOD_REQUESTS = 100
FLOOD_INTERVAL = 2
KNOWN_FLOOD_REQUESTS = 3000
NONCE_EXPIRE = 5

BAN_LINE = re.compile(r'voxplane: banned (\S+) for (\d+) s: ([^\n]*)')
ROUTER_ERROR = re.compile(r'voxplane: [^\n]* failed at [^\n]*')
CRASH = re.compile(r'terminating due to SIGCHLD|signal 11|Segmentation fault|core dumped', re.I)


def role_variables(exempt):
    """The abuse variables of roles/kamailio this suite deploys with."""
    return {
        'kamailio_ban_auth_failures': BAN_FAILURES,
        'kamailio_ban_window': BAN_WINDOW,
        'kamailio_ban_time': BAN_TIME,
        'kamailio_flood_requests': FLOOD_REQUESTS,
        'kamailio_flood_interval': FLOOD_INTERVAL,
        'kamailio_known_flood_requests': KNOWN_FLOOD_REQUESTS,
        'kamailio_ban_exempt': list(exempt),
        'kamailio_nonce_expire': NONCE_EXPIRE,
    }


def missing_tools():
    """Why the SIPVicious tests cannot run here (None when they can)."""
    for tool in ('svmap', 'svwar', 'svcrack'):
        if not shutil.which(tool):
            return '%s is missing (make deps installs the Debian package sipvicious)' % tool
    if not os.path.exists(SYSTEM_PYTHON):
        return '%s is missing' % SYSTEM_PYTHON
    return None


# ------------------------------------------------------------------------------ addresses
def flood(local_ip, target, count, rate=200.0, timeout=1.5):
    """Send ``count`` OPTIONS (no Request-URI user: Kamailio answers them itself) from
    ``local_ip`` at ``rate`` a second (paced, so that a server that does not ban can answer every
    one of them); return how many were answered by ``timeout`` seconds after the last."""
    with Peer(local_ip, target) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
        ruri = 'sip:%s:%d' % target
        branches, answered = set(), set()

        def drain(until):
            while True:
                left = until - time.monotonic()
                client.sock.settimeout(max(left, 0.0001))
                try:
                    data = client.sock.recvfrom(70000)[0]
                except (socket.timeout, BlockingIOError):
                    if left <= 0:
                        return
                    continue
                match = re.search(rb'branch=(z9hG4bK[0-9a-f]+)', data)
                if match and match.group(1) in branches:
                    answered.add(match.group(1))

        start = time.monotonic()
        for index in range(count):
            data, dummy, branch = client.build('OPTIONS', ruri, 'sip:flood@%s' % local_ip, ruri)
            branches.add(branch.encode())
            client.send(data)
            drain(start + (index + 1) / rate)
        drain(time.monotonic() + timeout)
    return len(answered)


def answers(local_ip, target, timeout=1.0):
    """Whether Kamailio answers an OPTIONS from ``local_ip`` (a banned address gets nothing)."""
    with Peer(local_ip, target) as client:
        ruri = 'sip:%s:%d' % target
        return client.request('OPTIONS', ruri, 'sip:probe@%s' % local_ip, ruri, timeout=timeout) is not None


# ------------------------------------------------------------------------------ Kamailio state
def banned(kamailio):
    """The addresses in the ban table (kamcmd htable.dump vxban), or None when Kamailio has no
    such table; the raw kamcmd output is the second item."""
    proc = kamailio.kamcmd('htable.dump', 'vxban')
    text = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or 'error' in text.lower()[:40]:
        return None, text
    return set(re.findall(r'name:\s*(\S+)', text)), text


def lift_ban(kamailio, address):
    return kamailio.kamcmd('htable.delete', 'vxban', address)


def ban_lines(kamailio, address):
    """The 'voxplane: banned <address> for <N> s: <reason>' lines of Kamailio's log."""
    return [m for m in BAN_LINE.finditer(kamailio.log_since()) if m.group(1) == address]


# ------------------------------------------------------------------------------ SIPVicious
ToolRun = collections.namedtuple('ToolRun', 'cmd rc stdout stderr seconds')


def sipvicious(tool, address, args, timeout=120):
    """Run the installed SIPVicious ``tool`` from ``address`` (sipvicious_bound.py: svwar and
    svcrack ignore -b in 0.3.3) with ``-x address`` (its Via host); bounded by ``timeout``."""
    port = free_port(address, tcp=False)
    cmd = [SYSTEM_PYTHON, SIPVICIOUS_BOUND, address, tool, '-b', address, '-x', address, '-P', str(port)] + list(args)
    # The tool's package sits beside its script (/usr/bin/<tool> -> /usr/share/sipvicious/...), where
    # running the script directly would find it.
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.realpath('/usr/bin/' + tool)))
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, env=env)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = 'timeout'
        out = exc.stdout.decode('utf-8', 'replace') if isinstance(exc.stdout, bytes) else exc.stdout or ''
        err = exc.stderr.decode('utf-8', 'replace') if isinstance(exc.stderr, bytes) else exc.stderr or ''
    return ToolRun(cmd, rc, out, err, time.monotonic() - start)


def shown_command(run):
    """The tool's command line as a user would type it (without the bind shim)."""
    args = run.cmd[run.cmd.index(SIPVICIOUS_BOUND) + 2:]
    return ' '.join(args).replace(DICTIONARIES + os.sep, 'tests/attack/dictionaries/')


def interesting_lines(text, limit=12, width=240):
    """A tool's output without its DEBUG records (and their continuation lines), at most
    ``limit`` lines of at most ``width`` characters."""
    lines, debug = [], False
    for line in text.splitlines():
        record = re.match(r'(DEBUG|INFO|WARNING|ERROR|CRITICAL):', line)
        if record:
            debug = record.group(1) == 'DEBUG'
        if line.strip() and not debug:
            lines.append(line if len(line) <= width else line[:width] + '...')
    return lines[:limit] + (['... (%d more lines)' % (len(lines) - limit)] if len(lines) > limit else [])


# ------------------------------------------------------------------------------ the report
REPORT = []


def note(title, lines):
    """Add a section to the report printed at the end of the pytest run (conftest.py) and
    written to build/test-results/attack-summary.txt."""
    REPORT.append((title, list(lines) if not isinstance(lines, str) else lines.splitlines()))


def results_dir():
    return os.environ.get('VOXPLANE_RESULTS_DIR') or os.path.join(REPO, 'build', 'test-results')


# ------------------------------------------------------------------------------ floods in time
def wait_for_slot_start(interval=FLOOD_INTERVAL, within=0.05):
    """Sleep until a new slot of ``interval`` seconds (the router's flood slots: fixed slots of
    the clock) has just begun; returns the slot's number."""
    while True:
        now = time.time()
        into = now % interval
        if into < within:
            return int(now // interval)
        time.sleep(interval - into)


def burst(local_ip, target, count, rate):
    """Send ``count`` OPTIONS to the server from one UDP socket of ``local_ip`` at ``rate`` a
    second while a thread takes the replies; returns {status code: number of replies} and the
    Retry-After values of the 503s (a Counter)."""
    codes, retry_after = collections.Counter(), collections.Counter()
    with Peer(local_ip, target) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, 33, 4 * 1024 * 1024)  # SO_RCVBUFFORCE (root)
        done = threading.Event()

        def receive():
            client.sock.settimeout(0.2)
            quiet_since = None
            while True:
                try:
                    data = client.sock.recvfrom(70000)[0]
                except socket.timeout:
                    if done.is_set():
                        quiet_since = quiet_since or time.monotonic()
                        if time.monotonic() - quiet_since > 1.0:
                            return
                    continue
                reply = parse(data)
                if reply is not None and reply.code is not None:
                    codes[reply.code] += 1
                    for value in reply.headers.get('retry-after', ()):
                        retry_after[value] += 1

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        ruri = 'sip:%s:%d' % target
        start = time.monotonic()
        for index in range(count):
            client.send(client.build('OPTIONS', ruri, 'sip:burst@%s' % local_ip, ruri)[0])
            pause = start + (index + 1) / float(rate) - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        done.set()
        thread.join(timeout=15)
    return codes, retry_after


class Forger(object):
    """An attacker sending from ``local_ip`` (another port of an address whose phones work, as a
    forged UDP source would): every 1/rate seconds one of garbage bytes, a request that fails
    Kamailio's sanity checks (CSeq method not the request's: 400), an OPTIONS, a REGISTER or an
    INVITE of a real account whose challenge it answers with a wrong password, and a REGISTER
    to a domain nobody has. Run it with ``run(seconds)`` (a thread of its own); ``sent`` counts
    what it sent by kind, ``replies`` the final replies by (kind, status) (kind ``register`` is
    the answer with a wrong password, ``register-challenge`` the request before it),
    ``retry_after`` the Retry-After values it was given."""

    KINDS = ('garbage', 'insane', 'options', 'register', 'invite', 'unknown-domain')

    def __init__(self, local_ip, target, domain, users, rate):
        self.local_ip, self.target, self.domain, self.users, self.rate = local_ip, target, domain, list(users), rate
        self.sent, self.replies, self.retry_after = collections.Counter(), collections.Counter(), collections.Counter()
        self.kind_of = {}       # Call-ID -> kind of the request
        self.challenged = {}    # Call-ID -> (user, method, Request-URI) of a request awaiting its challenge
        self.requests = 0       # SIP requests sent (what the server counts; garbage is none)

    def _send(self, client, data, kind, call_id=None):
        client.send(data)
        self.sent[kind] += 1
        if call_id is not None:
            self.kind_of[call_id] = kind
            self.requests += 1

    def _next(self, client, number):
        kind = self.KINDS[number % len(self.KINDS)]
        user = self.users[(number // len(self.KINDS)) % len(self.users)]
        aor = 'sip:%s@%s' % (user, self.domain)
        if kind == 'garbage':
            self._send(client, os.urandom(160), kind)
        elif kind == 'insane':
            data, call_id, dummy = client.build('OPTIONS', 'sip:%s@%s' % (user, self.domain), aor, aor)
            self._send(client, data.replace(b'CSeq: 1 OPTIONS', b'CSeq: 1 REGISTER'), kind, call_id)
        elif kind == 'options':
            ruri = 'sip:%s:%d' % self.target
            data, call_id, dummy = client.build('OPTIONS', ruri, aor, ruri)
            self._send(client, data, kind, call_id)
        elif kind in ('register', 'invite'):
            method = kind.upper()
            ruri = 'sip:%s' % self.domain if kind == 'register' else 'sip:%s@%s' % (user, self.domain)
            data, call_id, dummy = client.build(method, ruri, aor, aor if kind == 'register' else ruri)
            self.challenged[call_id] = (user, method, ruri)
            self._send(client, data, kind + '-challenge', call_id)
        else:
            other = 'sip:%s@nowhere.invalid' % user
            data, call_id, dummy = client.build('REGISTER', 'sip:nowhere.invalid', other, other)
            self._send(client, data, kind, call_id)

    def _answer(self, client, reply, call_id):
        """Answer the challenge to one of our requests with a wrong password."""
        user, method, ruri = self.challenged.pop(call_id)
        name = 'www-authenticate' if reply.code == 401 else 'proxy-authenticate'
        params = challenge_params(reply.headers[name][0])
        credentials = digest(params, user, 'not-%s' % uuid.uuid4().hex[:8], method, ruri)
        header = (b'Authorization: ' if reply.code == 401 else b'Proxy-Authorization: ') + credentials.encode()
        aor = 'sip:%s@%s' % (user, self.domain)
        data = client.build(method, ruri, aor, aor if method == 'REGISTER' else ruri, call_id=call_id, cseq=2,
                            headers=[header])[0]
        self._send(client, data, method.lower(), call_id)

    def _take(self, client, data):
        reply = parse(data)
        if reply is None or reply.code is None or reply.code < 200:
            return
        call_id = reply.headers.get('call-id', [''])[0]
        kind = self.kind_of.get(call_id, 'unknown')
        self.replies[(kind, reply.code)] += 1
        for value in reply.headers.get('retry-after', ()):
            self.retry_after[value] += 1
        if reply.headers.get('cseq', [''])[0].endswith('INVITE') and reply.code >= 300:
            client._ack(reply, data)  # pylint: disable=protected-access  # a client ACKs a final reply
        if reply.code in (401, 407) and call_id in self.challenged:
            self._answer(client, reply, call_id)

    def _drain(self, client, timeout):
        """Take the replies that are there, waiting at most ``timeout`` for the first."""
        while select.select([client.sock], [], [], timeout)[0]:
            timeout = 0
            try:
                self._take(client, client.sock.recvfrom(70000)[0])
            except BlockingIOError:
                return

    def run(self, seconds):
        with Peer(self.local_ip, self.target) as client:
            client.sock.setblocking(False)
            start = time.monotonic()
            number = 0
            while time.monotonic() - start < seconds:
                due = start + number / float(self.rate)
                if time.monotonic() >= due:
                    self._next(client, number)
                    number += 1
                else:
                    self._drain(client, max(0.0, due - time.monotonic()))
            quiet = time.monotonic() + 1.0   # the last replies
            while time.monotonic() < quiet:
                self._drain(client, 0.1)

    def summary(self):
        return ['sent by kind: %s (%d SIP requests)' % (dict(self.sent), self.requests),
                'final replies (kind, status): %s' % dict(sorted(self.replies.items())),
                'Retry-After values: %s' % dict(self.retry_after)]
