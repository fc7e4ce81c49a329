# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the attack suite (tests/attack): attacker addresses, a small SIP client that
answers digest challenges, SIPVicious runs, Kamailio's ban table and log, and the report that
the suite prints at the end of its pytest run.

The Kamailio instance itself comes from tests/sip/sip_harness.py (``KamailioInstance``); this
suite deploys its own, with the ban settings below and the fuzzer's and the prober's addresses
in ``kamailio_ban_exempt``. Every address is on 127.0.0.0/8.
"""

import collections
import hashlib
import os
import random
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
for _path in (os.path.join(REPO, 'tests', 'sip'), os.path.join(REPO, 'tests'), os.path.join(REPO, 'bench')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from lab.net import free_port

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
class AddressPool(object):
    """127.0.0.x addresses (2..254) for attackers, none of them in ``exclude`` (Kamailio's own
    address, the trunk stand-in's, 127.0.0.1 and the role's default trusted 127.0.0.9). Each
    attacker gets a fresh address: bans are per source address."""

    def __init__(self, exclude):
        self.free = ['127.0.0.%d' % x for x in range(2, 255) if '127.0.0.%d' % x not in set(exclude)]
        random.shuffle(self.free)

    def take(self):
        return self.free.pop()


# ------------------------------------------------------------------------------ a SIP client
Reply = collections.namedtuple('Reply', 'code reason headers text')


def parse_reply(data):
    """Reply(code, reason, {lower-case name: [values]}, text) of a SIP response, or None."""
    text = data.decode('utf-8', 'replace')
    first, rest = (text.split('\r\n', 1) + [''])[:2]
    match = re.match(r'SIP/2\.0 (\d{3}) ?(.*)', first)
    if not match:
        return None
    headers = collections.defaultdict(list)
    for line in rest.split('\r\n\r\n', 1)[0].split('\r\n'):
        name, sep, value = line.partition(':')
        if sep:
            headers[name.strip().lower()].append(value.strip())
    return Reply(int(match.group(1)), match.group(2), dict(headers), text)


def challenge_params(value):
    """{realm, nonce, qop, opaque, algorithm, stale} of a WWW-/Proxy-Authenticate value."""
    params = dict((k.lower(), v1 if v1 else v2) for k, v1, v2 in
                  re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', value))
    return params


def digest_response(params, username, password, method, uri, nc=1, cnonce=None, use_qop=True):
    """The Authorization value answering ``params`` (qop=auth with nc/cnonce when offered and
    ``use_qop``, else RFC 2069)."""
    realm, nonce = params['realm'], params['nonce']
    user_bytes = username if isinstance(username, bytes) else username.encode()
    ha1 = hashlib.md5(user_bytes + (':%s:%s' % (realm, password)).encode()).hexdigest()
    ha2 = hashlib.md5(('%s:%s' % (method, uri)).encode()).hexdigest()
    parts = [b'Digest username="' + user_bytes + b'"', ('realm="%s"' % realm).encode(),
             ('nonce="%s"' % nonce).encode(), ('uri="%s"' % uri).encode(), b'algorithm=MD5']
    if use_qop and 'auth' in params.get('qop', '').split(','):
        cnonce = cnonce or uuid.uuid4().hex[:16]
        response = hashlib.md5(('%s:%s:%08x:%s:auth:%s' % (ha1, nonce, nc, cnonce, ha2)).encode()).hexdigest()
        parts += [b'qop=auth', ('nc=%08x' % nc).encode(), ('cnonce="%s"' % cnonce).encode()]
    else:
        response = hashlib.md5(('%s:%s:%s' % (ha1, nonce, ha2)).encode()).hexdigest()
    parts.append(('response="%s"' % response).encode())
    if params.get('opaque'):
        parts.append(('opaque="%s"' % params['opaque']).encode())
    return b', '.join(parts)


class SipClient(object):
    """One UDP socket on ``local_ip`` talking to Kamailio: builds requests (bytes, so that any
    field can carry invalid UTF-8), sends them and waits for the final reply matching the
    request's Via branch. Non-2xx final replies to INVITEs are ACKed."""

    def __init__(self, local_ip, target, timeout=2.0):
        self.local_ip = local_ip
        self.target = target
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.port = self.sock.getsockname()[1]
        self.last_sent = None

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def build(self, method, ruri, from_uri, to_uri, call_id=None, cseq=1, headers=(), body=b'', to_tag=None,
              from_tag=None, branch=None):
        """A request as bytes (str arguments are UTF-8 encoded); returns (data, call_id, branch)."""
        def raw(value):
            return value if isinstance(value, bytes) else value.encode()
        call_id = call_id or uuid.uuid4().hex
        branch = branch or 'z9hG4bK' + uuid.uuid4().hex[:16]
        lines = [raw(method) + b' ' + raw(ruri) + b' SIP/2.0',
                 ('Via: SIP/2.0/UDP %s:%d;branch=%s;rport' % (self.local_ip, self.port, branch)).encode(),
                 b'Max-Forwards: 70',
                 b'From: <' + raw(from_uri) + b'>;tag=' + raw(from_tag or uuid.uuid4().hex[:8]),
                 b'To: <' + raw(to_uri) + b'>' + (b';tag=' + raw(to_tag) if to_tag else b''),
                 b'Call-ID: ' + raw(call_id),
                 ('CSeq: %d %s' % (cseq, method if isinstance(method, str) else method.decode('latin-1'))).encode(),
                 ('Contact: <sip:probe@%s:%d>' % (self.local_ip, self.port)).encode()]
        lines += [raw(h) for h in headers]
        lines.append(('Content-Length: %d' % len(body)).encode())
        return b'\r\n'.join(lines) + b'\r\n\r\n' + body, call_id, branch

    def send(self, data):
        self.last_sent = data
        self.sock.sendto(data, self.target)

    def wait(self, branch, timeout=None):
        """The final reply whose Via carries ``branch`` (provisional ones skipped), or None."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        wanted = ('branch=' + branch).encode() if isinstance(branch, str) else b'branch=' + branch
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recvfrom(70000)[0]
            except socket.timeout:
                return None
            reply = parse_reply(data)
            if reply is None or wanted not in data or reply.code < 200:
                continue
            if reply.headers.get('cseq', [''])[0].endswith('INVITE') and reply.code >= 300:
                self._ack(reply, data)
            return reply

    def _ack(self, reply, data):
        head = data.split(b'\r\n\r\n', 1)[0].split(b'\r\n')
        names = (b'via', b'from', b'to', b'call-id')
        keep = [line for line in head[1:] if line.split(b':', 1)[0].strip().lower() in names]
        cseq = reply.headers['cseq'][0].split()[0].encode()
        ack = [b'ACK sip:%s:%d SIP/2.0' % (self.target[0].encode(), self.target[1])] + keep + [
            b'CSeq: ' + cseq + b' ACK', b'Max-Forwards: 70', b'Content-Length: 0']
        self.send(b'\r\n'.join(ack) + b'\r\n\r\n')

    def request(self, method, ruri, from_uri, to_uri, timeout=None, **kwargs):
        """Send one request and return its final reply (or None)."""
        data, dummy, branch = self.build(method, ruri, from_uri, to_uri, **kwargs)
        self.send(data)
        return self.wait(branch, timeout)

    def authenticate(self, method, user, domain, password, auth_user=None, ruri=None, dialled='11',
                     use_qop=True, answer_from=None, new_call_id=False, headers=()):
        """A request without credentials, then the same request (same Call-ID, next CSeq)
        answering the challenge with ``auth_user`` (default ``user``) and ``password``.
        REGISTER goes to sip:<domain> with To = From = user@domain; INVITE to sip:<dialled>@<domain>.
        ``answer_from``: another SipClient that sends the answer (another source address);
        ``new_call_id``: answer under a new Call-ID. Returns (challenge, answer, digest params)."""
        aor = 'sip:%s@%s' % (user, domain)
        if method == 'REGISTER':
            ruri = ruri or 'sip:%s' % domain
            to_uri = aor
        else:
            ruri = ruri or 'sip:%s@%s' % (dialled, domain)
            to_uri = ruri
        from_tag = uuid.uuid4().hex[:8]
        challenge = self.request(method, ruri, aor, to_uri, from_tag=from_tag, headers=headers)
        if challenge is None or challenge.code not in (401, 407):
            return challenge, None, None
        name = 'www-authenticate' if challenge.code == 401 else 'proxy-authenticate'
        params = challenge_params(challenge.headers[name][0])
        credentials = digest_response(params, auth_user or user, password, method, ruri, use_qop=use_qop)
        header = (b'Authorization: ' if challenge.code == 401 else b'Proxy-Authorization: ') + credentials
        call_id = None if new_call_id else challenge.headers['call-id'][0]
        sender = answer_from or self
        answer = sender.request(method, ruri, aor, to_uri, call_id=call_id, cseq=2, from_tag=from_tag,
                                headers=list(headers) + [header])
        return challenge, answer, params


def flood(local_ip, target, count, rate=200.0, timeout=1.5):
    """Send ``count`` OPTIONS (no Request-URI user: Kamailio answers them itself) from
    ``local_ip`` at ``rate`` a second (paced, so that a server that does not ban can answer every
    one of them); return how many were answered by ``timeout`` seconds after the last."""
    with SipClient(local_ip, target) as client:
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
    with SipClient(local_ip, target) as client:
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


def log_text(kamailio, offset=0):
    try:
        with open(kamailio.log_file, 'rb') as handle:
            handle.seek(offset)
            return handle.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def log_size(kamailio):
    try:
        return os.path.getsize(kamailio.log_file)
    except OSError:
        return 0


def ban_lines(kamailio, address):
    """The 'voxplane: banned <address> for <N> s: <reason>' lines of Kamailio's log."""
    return [m for m in BAN_LINE.finditer(log_text(kamailio)) if m.group(1) == address]


def wait_for(predicate, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


# ------------------------------------------------------------------------------ SIPVicious
ToolRun = collections.namedtuple('ToolRun', 'cmd rc stdout stderr seconds')


def sipvicious(tool, address, args, timeout=120):
    """Run the installed SIPVicious ``tool`` from ``address`` (sipvicious_bound.py: svwar and
    svcrack ignore -b in 0.3.3) with ``-x address`` (its Via host); bounded by ``timeout``."""
    port = free_port(address, tcp=False)
    cmd = [SYSTEM_PYTHON, SIPVICIOUS_BOUND, address, tool, '-b', address, '-x', address, '-P', str(port)] + list(args)
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
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
    with SipClient(local_ip, target) as client:
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
                reply = parse_reply(data)
                if reply is not None:
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
        credentials = digest_response(params, user, 'not-%s' % uuid.uuid4().hex[:8], method, ruri)
        header = (b'Authorization: ' if reply.code == 401 else b'Proxy-Authorization: ') + credentials
        aor = 'sip:%s@%s' % (user, self.domain)
        data = client.build(method, ruri, aor, aor if method == 'REGISTER' else ruri, call_id=call_id, cseq=2,
                            headers=[header])[0]
        self._send(client, data, method.lower(), call_id)

    def _take(self, client, data):
        reply = parse_reply(data)
        if reply is None or reply.code < 200:
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
        with SipClient(self.local_ip, self.target) as client:
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
