# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SIP fuzzer's generator and runner: seeded mutations of valid requests over UDP and TCP,
for the attack suite's fuzz stage (tests/attack/test_fuzz.py) and its command line
(bench/fuzz.py, `make fuzz`).

The generator starts from valid requests (REGISTER, INVITE with SDP, in-dialog BYE, re-INVITE
and ACK with a To-tag, OPTIONS, and with a trunk inbound INVITEs from the trusted trunk address)
and applies one mutation to each: byte flips and insertions, truncation, invalid UTF-8 in the
Request-URI user, the To/From domain, the display names or the digest username, a 60 kB header,
a missing or duplicated Via/Call-ID/CSeq/From/To, a negative, huge or wrong Content-Length, a
bad CSeq, a garbage first line, NUL bytes. The same seed gives the same messages. The first
messages cover every (mutation, transport) pair; the rest are drawn at random.

Sending is asynchronous: UDP datagrams paced at ``udp_rate`` from one socket, TCP one connection
a message with at most ``tcp_window`` open at once. Every message carries a token (fz<run>x<id>)
in its Call-ID, Via branch and From tag, so that UDP replies are matched to it; a TCP reply
belongs to its connection. Non-2xx final replies to INVITEs are ACKed (as a UA would, so that
Kamailio's transactions end); requests Kamailio relays to the fuzzer's addresses get a 480. Many
malformed messages get no reply at all: that is counted, not an error. ``format_summary`` is the
report of a run. Kamailio's process tree and shared memory before and after: lab.kamailio.
"""

import collections
import errno
import random
import re
import selectors
import socket
import time


# Invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong '/', a UTF-16
# surrogate, a 5-byte form, bytes that never occur.
BAD_UTF8 = (b'\xff', b'\xfe\xff', b'\x80', b'\xc3\x28', b'\xa0\xa1', b'\xe2\x28\xa1', b'\xf0\x28\x8c\xbc',
            b'\xc0\xaf', b'\xed\xa0\x80', b'\xf8\x88\x80\x80\x80', b'\xe2\x82')

KIND_WEIGHTS = (('register', 22), ('invite', 22), ('bye', 12), ('reinvite', 10), ('options', 14), ('ack', 6),
                ('inbound', 14))
MUTATION_WEIGHTS = (('none', 5), ('flip', 10), ('insert', 8), ('truncate', 8), ('utf8_ruri_user', 6),
                    ('utf8_to_domain', 5), ('utf8_from_domain', 5), ('utf8_display', 4), ('utf8_auth_user', 6),
                    ('huge_header', 2), ('missing_header', 8), ('duplicate_header', 6), ('content_length', 6),
                    ('bad_cseq', 6), ('garbage_first_line', 6), ('nul', 6))
KINDS = tuple(pair[0] for pair in KIND_WEIGHTS)
MUTATIONS = tuple(pair[0] for pair in MUTATION_WEIGHTS)
ESSENTIAL = (b'Via', b'Call-ID', b'CSeq', b'From', b'To')
HUGE = 60 * 1024

USERS = ('anna.desk', 'bert.desk', 'cora.app', 'finn.desk', 'mia.desk', 'nobody.desk', '10', 'admin')
DIALLED = ('11', '10', '60', '62', '27', '+4930123456010', '030555999', '*78', '0049301234560', '999999')
INBOUND = ('+49301234560', '+4930123456024', '+494099999999', '+4930123456011', '030123456010', '+493099990001',
           '+4930123456099', '4930123456010')

# A reply's first line. Kamailio echoes the request's SIP version token, so a request whose
# version was mutated ('sip/2.0', 'SIP/2.0c') gets a reply that starts with that token.
STATUS_RE = re.compile(rb'^SIP/\S*[ \t]+(\d{3})', re.I)
TOKEN_RE = re.compile(rb'fz(\d+)x(\d+)')
COMPACT = {b'v': b'via', b'f': b'from', b't': b'to', b'i': b'call-id', b'l': b'content-length'}


# ------------------------------------------------------------------------------ messages
class Message(object):
    """A request under construction: first line, ordered headers, body (all bytes)."""

    def __init__(self, first_line, headers, body=b''):
        self.first_line = first_line
        self.headers = [list(h) for h in headers]
        self.body = body
        self.headers.append([b'Content-Length', str(len(body)).encode()])

    def find(self, name):
        return [i for i, header in enumerate(self.headers) if header[0].lower() == name.lower()]

    def value(self, name):
        found = self.find(name)
        return self.headers[found[0]][1] if found else None

    def set(self, name, value):
        found = self.find(name)
        if found:
            self.headers[found[0]][1] = value
        else:
            self.headers.insert(len(self.headers) - 1, [name, value])

    def serialize(self):
        lines = [self.first_line] + [n + b': ' + v for n, v in self.headers]
        return b'\r\n'.join(lines) + b'\r\n\r\n' + self.body


Fuzzed = collections.namedtuple('Fuzzed', 'id kind mutation transport data')


class Context(object):
    """Where the messages go and what they name: Kamailio's address, the fuzzer's source
    address (and the port in its Via), the tenant domain, accounts and dialled strings, and the
    trusted trunk address (inbound INVITEs come from there) or None."""

    def __init__(self, target, source, source_port=5060, domain='acme.sip.test', users=USERS, dialled=DIALLED,
                 trunk=None, inbound=INBOUND):
        self.target = target
        self.source = source
        self.source_port = source_port
        self.domain = domain
        self.users = tuple(users)
        self.dialled = tuple(dialled)
        self.trunk = trunk
        self.inbound = tuple(inbound)


def _sdp(address, rng):
    return ('v=0\r\no=fuzz %d %d IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n'
            'm=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n'
            % (rng.randint(1, 10 ** 9), rng.randint(1, 10 ** 9), address, address,
               rng.randrange(10000, 60000, 2))).encode()


def _digest(name, user, domain, uri, rng):
    return (name, ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%032x", algorithm=MD5, '
                   'qop=auth, nc=%08x, cnonce="%08x"'
                   % (user, domain, '%032x' % rng.getrandbits(128), uri, rng.getrandbits(128),
                      rng.randint(1, 9), rng.getrandbits(32))))


def template(kind, ctx, token, transport, rng):
    """A valid request of ``kind`` carrying ``token`` in its Call-ID, branch and From tag."""
    src, sport = (ctx.trunk[0], ctx.trunk[1]) if kind == 'inbound' else (ctx.source, ctx.source_port)
    user = rng.choice(ctx.users)
    peer = rng.choice(ctx.users)
    display = user.split('.')[0].title()
    domain = ctx.domain
    via = ('Via', 'SIP/2.0/%s %s:%d;branch=z9hG4bK%s;rport' % (transport.upper(), src, sport, token))
    common = [via, ('Max-Forwards', '70')]
    call_id = ('Call-ID', '%s@%s' % (token, src))
    contact = ('Contact', '<sip:%s@%s:%d>' % (user, src, sport))
    target = '%s:%d' % ctx.target
    body = b''
    if kind == 'register':
        ruri = 'sip:%s' % domain
        headers = common + [('From', '"%s" <sip:%s@%s>;tag=%s' % (display, user, domain, token)),
                            ('To', '"%s" <sip:%s@%s>' % (display, user, domain)), call_id,
                            ('CSeq', '%d REGISTER' % rng.randint(1, 200)), contact, ('Expires', '300')]
        if rng.random() < 0.5:
            headers.append(_digest('Authorization', user, domain, ruri, rng))
        method = 'REGISTER'
    elif kind in ('invite', 'inbound'):
        if kind == 'invite':
            dialled = rng.choice(ctx.dialled)
            caller = '"%s" <sip:%s@%s>;tag=%s' % (display, user, domain, token)
        else:
            dialled = rng.choice(ctx.inbound)
            caller = '<sip:+4930555%04d@%s>;tag=%s' % (rng.randint(0, 9999), src, token)
        ruri = 'sip:%s@%s' % (dialled, domain)
        headers = common + [('From', caller), ('To', '<%s>' % ruri), call_id, ('CSeq', '1 INVITE'), contact,
                            ('Subject', 'fuzz'), ('Content-Type', 'application/sdp')]
        if kind == 'invite' and rng.random() < 0.5:
            headers.append(_digest('Proxy-Authorization', user, domain, ruri, rng))
        body = _sdp(src, rng)
        method = 'INVITE'
    elif kind in ('bye', 'reinvite', 'ack'):
        method = {'bye': 'BYE', 'reinvite': 'INVITE', 'ack': 'ACK'}[kind]
        ruri = 'sip:%s@%s:%d' % (peer, src, sport)  # the "callee's contact": the fuzzer itself
        headers = common[:1]
        if rng.random() < 0.5:
            headers.append(('Route', '<sip:%s;lr;ftag=%s>' % (target, token)))
        headers += [common[1], ('From', '"%s" <sip:%s@%s>;tag=%s' % (display, user, domain, token)),
                    ('To', '<sip:%s@%s>;tag=%08x' % (peer, domain, rng.getrandbits(32))), call_id,
                    ('CSeq', '%d %s' % (rng.randint(2, 50), method))]
        if kind == 'reinvite':
            headers += [contact, ('Content-Type', 'application/sdp')]
            body = _sdp(src, rng)
    else:  # options
        method = 'OPTIONS'
        ruri = rng.choice(('sip:%s' % target, 'sip:%s@%s' % (user, domain), 'sip:%s@%s' % (user, target)))
        headers = common + [('From', '"%s" <sip:%s@%s>;tag=%s' % (display, user, domain, token)),
                            ('To', '<%s>' % ruri), call_id, ('CSeq', '%d OPTIONS' % rng.randint(1, 9)),
                            ('Accept', 'application/sdp')]
    headers.append(('User-Agent', 'voxplane-fuzz'))
    return Message(('%s %s SIP/2.0' % (method, ruri)).encode(),
                   [(n.encode(), v.encode()) for n, v in headers], body)


def _inject_host(value, bad, rng):
    """Put invalid UTF-8 into the host of the first sip: URI in value."""
    match = re.search(rb'sip:(?:[^@>;\s]*@)?([^>;:\s]+)', value)
    if not match:
        return value + bad
    start, end = match.span(1)
    cut = rng.randint(start, end)
    return value[:cut] + bad + value[cut:]


def _method(msg):
    return msg.first_line.split(b' ', 1)[0]


def mutate_structure(msg, mutation, kind, ctx, rng):
    """Apply a header-level mutation in place (the byte-level ones come after serializing)."""
    bad = rng.choice(BAD_UTF8)
    if mutation == 'utf8_ruri_user':
        method, uri, version = (msg.first_line.split(b' ', 2) + [b'', b''])[:3]
        if b'@' in uri:
            head, at, host = uri.partition(b'@')
            uri = head + bad + at + host
        else:
            uri = uri.replace(b'sip:', b'sip:user' + bad + b'@', 1)
        msg.first_line = b' '.join((method, uri, version))
    elif mutation in ('utf8_to_domain', 'utf8_from_domain'):
        name = b'To' if mutation == 'utf8_to_domain' else b'From'
        msg.set(name, _inject_host(msg.value(name), bad, rng))
    elif mutation == 'utf8_display':
        for name in (b'From', b'To'):
            value = msg.value(name)
            if value.startswith(b'"'):
                end = value.index(b'"', 1)
                value = value[:end] + bad + value[end:]
            else:
                value = b'"Caller ' + bad + b'" ' + value
            msg.set(name, value)
    elif mutation == 'utf8_auth_user':
        name = b'Proxy-Authorization' if _method(msg) == b'INVITE' else b'Authorization'
        if not msg.find(name):
            uri = msg.first_line.split(b' ')[1].decode('latin-1')
            msg.set(name, _digest(name.decode(), 'user', ctx.domain, uri, rng)[1].encode())
        value = msg.value(name)
        user = re.search(rb'username="([^"]*)"', value)
        cut = rng.randint(user.start(1), user.end(1))
        msg.set(name, value[:cut] + bad + value[cut:])
    elif mutation == 'huge_header':
        filler = bytes(rng.choice(b'abcdefghijklmnopqrstuvwxyz0123456789') for dummy in range(64)) * (HUGE // 64)
        where = rng.choice((b'X-Fuzz', b'Subject', b'User-Agent', b'Contact'))
        if where == b'Contact':
            msg.set(b'Contact', b'<sip:' + filler + b'@' + ctx.source.encode() + b'>')
        else:
            msg.set(where, filler)
    elif mutation == 'missing_header':
        name = rng.choice(ESSENTIAL)
        msg.headers = [h for h in msg.headers if h[0].lower() != name.lower()]
    elif mutation == 'duplicate_header':
        name = rng.choice(ESSENTIAL + (b'Content-Length',))
        index = msg.find(name)[0]
        other = {b'Via': b'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKdup%08x' % rng.getrandbits(32),
                 b'Call-ID': b'dup%08x@fuzz' % rng.getrandbits(32),
                 b'CSeq': b'%d %s' % (rng.randint(1, 9), rng.choice((b'INVITE', b'BYE', b'REGISTER'))),
                 b'From': b'<sip:other@%s>;tag=dup%04x' % (ctx.domain.encode(), rng.getrandbits(16)),
                 b'To': b'<sip:other@%s>' % ctx.domain.encode(),
                 b'Content-Length': str(rng.choice((0, 5, 500))).encode()}[name]
        msg.headers.insert(index + rng.choice((0, 1)), [name, other])
    elif mutation == 'content_length':
        length = len(msg.body)
        msg.set(b'Content-Length', rng.choice((b'-1', b'-65536', b'4294967296', b'2147483648', b'4294967295',
                                               b'99999999999999999999', b'100000', str(length + 100).encode(),
                                               str(max(length - 5, 0)).encode(), b'abc', b'', b'0x10',
                                               b' 12 34', b'+5')))
    elif mutation == 'bad_cseq':
        method = _method(msg)
        other = b'BYE' if method != b'BYE' else b'INVITE'
        msg.set(b'CSeq', rng.choice((b'', b'abc ' + method, b'-1 ' + method, b'4294967296 ' + method,
                                     b'99999999999999999999 ' + method, b'2147483648 ' + method, b'0 ' + method,
                                     b'1 ' + other, b'1', method, b'1 ' + method + b' extra', b'1 \xff\xfe',
                                     b'1 ' + method.lower(), b'1\t\t' + method)))
    elif mutation == 'garbage_first_line':
        garbage = bytes(rng.randrange(256) for dummy in range(rng.randint(1, 80))).replace(b'\r', b'').replace(b'\n', b'')
        msg.first_line = rng.choice((
            garbage, b'INVITE', b'INVITE sip:11@acme.sip.test SIP/3.0', b' SIP/2.0', b'SIP/2.0 200 OK',
            b'SIP/2.0 999 Strange', b'FOO sip:11@acme.sip.test SIP/2.0', b'INVITE  SIP/2.0', b'INVITE sip: SIP/2.0',
            b'INVITE <sip:11@acme.sip.test> SIP/2.0', b'A' * 300 + b' sip:a@b SIP/2.0',
            b'REGISTER sip:acme.sip.test SIP/2.0 extra', b'INVITE sip:11@acme.sip.test',
            b'invite sip:11@acme.sip.test sip/2.0', b'INVITE sip:@ SIP/2.0', b'INVITE tel:+4930123456010 SIP/2.0',
            b'INVITE sip:11@[::1 SIP/2.0', b'INVITE sip:11@acme.sip.test:99999999 SIP/2.0', b''))


def mutate_bytes(data, mutation, rng):
    """Apply a byte-level mutation to a serialized message."""
    data = bytearray(data)
    if mutation == 'flip':
        for dummy in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    elif mutation == 'insert':
        for dummy in range(rng.randint(1, 8)):
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = bytes(rng.randrange(256) for dummy in range(rng.randint(1, 4)))
    elif mutation == 'truncate':
        del data[rng.randint(1, len(data) - 1):]
    elif mutation == 'nul':
        first = data.index(b' ') + 1 if b' ' in data else 0
        positions = [rng.randint(first, first + 12)] + [rng.randrange(len(data)) for dummy in range(rng.randint(0, 3))]
        for pos in sorted(positions, reverse=True):
            data[pos:pos] = b'\x00'
    return bytes(data)


def generate(seed, count, ctx, mutations=MUTATIONS):
    """The fuzzed messages of one run: deterministic in (seed, count, ctx, mutations)."""
    rng = random.Random(seed)
    run = seed % 1000000
    kinds = [k for k in KINDS if k != 'inbound' or ctx.trunk]
    kind_weights = [w for k, w in KIND_WEIGHTS if k in kinds]
    mutations = tuple(m for m in MUTATIONS if m in mutations)
    mutation_weights = [w for m, w in MUTATION_WEIGHTS if m in mutations]
    coverage = [(m, t) for m in mutations for t in ('udp', 'tcp')]
    out = []
    for index in range(count):
        if index < len(coverage):
            mutation, transport = coverage[index]
        else:
            mutation = rng.choices(mutations, mutation_weights)[0]
            transport = 'udp' if rng.random() < 0.6 else 'tcp'
        kind = rng.choices(kinds, kind_weights)[0]
        token = 'fz%dx%d' % (run, index)
        msg = template(kind, ctx, token, transport, rng)
        mutate_structure(msg, mutation, kind, ctx, rng)
        data = mutate_bytes(msg.serialize(), mutation, rng)
        out.append(Fuzzed(index, kind, mutation, transport, data))
    return out


# ------------------------------------------------------------------------------ parsing replies
def split_head(data):
    """(first line, {lower-case header name: [values]}) of a SIP message, names expanded."""
    head = data.split(b'\r\n\r\n', 1)[0]
    lines = head.split(b'\r\n')
    headers = collections.defaultdict(list)
    for line in lines[1:]:
        name, sep, value = line.partition(b':')
        if sep:
            name = name.strip().lower()
            headers[COMPACT.get(name, name)].append(value.strip())
    return lines[0], headers


def ack_for(reply, ruri):
    """The ACK of a non-2xx final reply to an INVITE (same branch), or None if it lacks a header."""
    headers = split_head(reply)[1]
    try:
        cseq = headers[b'cseq'][0].split()[0]
        lines = [b'ACK ' + ruri + b' SIP/2.0', b'Via: ' + headers[b'via'][0], b'Max-Forwards: 70',
                 b'From: ' + headers[b'from'][0], b'To: ' + headers[b'to'][0],
                 b'Call-ID: ' + headers[b'call-id'][0], b'CSeq: ' + cseq + b' ACK', b'Content-Length: 0']
    except IndexError:
        return None
    return b'\r\n'.join(lines) + b'\r\n\r\n'


def answer_for(request, code=480, reason=b'Temporarily Unavailable'):
    """A final reply to a request Kamailio relayed to the fuzzer (None for an ACK or garbage)."""
    first, headers = split_head(request)
    if first.startswith(b'ACK ') or not all(headers.get(h) for h in (b'via', b'from', b'to', b'call-id', b'cseq')):
        return None
    to = headers[b'to'][0]
    if b';tag=' not in to:
        to += b';tag=fzsink'
    lines = [b'SIP/2.0 %d %s' % (code, reason)] + [b'Via: ' + v for v in headers[b'via']] + [
        b'From: ' + headers[b'from'][0], b'To: ' + to, b'Call-ID: ' + headers[b'call-id'][0],
        b'CSeq: ' + headers[b'cseq'][0], b'Content-Length: 0']
    return b'\r\n'.join(lines) + b'\r\n\r\n'


def next_message(buffer):
    """Split one complete SIP message off a TCP stream buffer: (message or None, rest)."""
    end = buffer.find(b'\r\n\r\n')
    if end < 0:
        return None, buffer
    headers = split_head(buffer[:end])[1]
    try:
        length = int(headers.get(b'content-length', [b'0'])[0])
    except ValueError:
        length = 0
    total = end + 4 + max(length, 0)
    if len(buffer) < total:
        return None, buffer
    return buffer[:total], buffer[total:]


# ------------------------------------------------------------------------------ sending
class Outcome(object):
    """What one message got: the first final status code, provisional codes, how TCP ended."""
    __slots__ = ('final', 'provisional', 'reply_line', 'closed', 'error')

    def __init__(self):
        self.final = None
        self.provisional = []
        self.reply_line = None
        self.closed = False
        self.error = None


class Fuzzer(object):
    """Send fuzzed messages to ctx.target and collect the replies (see the module docstring)."""

    def __init__(self, ctx, udp_rate=800.0, tcp_window=64, tcp_timeout=1.0, linger=1.5, deadline=600.0):
        self.ctx = ctx
        self.udp_rate = udp_rate
        self.tcp_window = tcp_window
        self.tcp_timeout = tcp_timeout
        self.linger = linger
        self.deadline = deadline
        self.sel = selectors.DefaultSelector()
        self.udp = self._udp_socket(ctx.source, 0)
        ctx.source_port = self.udp.getsockname()[1]
        self.trunk_udp = self._udp_socket(*ctx.trunk) if ctx.trunk else None
        self.messages = {}
        self.outcomes = {}
        self.tcp_open = {}
        self.stats = collections.Counter()
        self.requests_received = collections.Counter()
        self.last_activity = time.monotonic()

    def _udp_socket(self, address, port):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind((address, port))
        sock.setblocking(False)
        self.sel.register(sock, selectors.EVENT_READ, ('udp', None))
        return sock

    def close(self):
        for sock in [self.udp, self.trunk_udp] + [entry[0] for entry in self.tcp_open.values()]:
            if sock is not None:
                try:
                    self.sel.unregister(sock)
                except (KeyError, ValueError):
                    pass
                sock.close()
        self.tcp_open.clear()
        self.sel.close()

    # -- receiving
    def _poll(self, timeout):
        for key, dummy in self.sel.select(timeout):
            kind, mid = key.data
            if kind == 'udp':
                self._read_udp(key.fileobj)
            else:
                self._read_tcp(key.fileobj, mid)
        self._expire_tcp()

    def _read_udp(self, sock):
        while True:
            try:
                data, addr = sock.recvfrom(70000)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error queued on the socket
                self.stats['udp_socket_errors'] += 1
                continue
            self.last_activity = time.monotonic()
            if STATUS_RE.match(data):
                match = TOKEN_RE.search(data)
                mid = int(match.group(2)) if match and int(match.group(1)) == self.run else None
                self._reply(mid, data, lambda ack, sock=sock: sock.sendto(ack, self.ctx.target))
            else:
                self._request(data, lambda answer, sock=sock, addr=addr: sock.sendto(answer, addr))

    def _read_tcp(self, sock, mid):
        entry = self.tcp_open.get(sock.fileno())
        if entry is None:
            return
        try:
            chunk = sock.recv(70000)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b''
        self.last_activity = time.monotonic()
        if not chunk:
            self.outcomes[mid].closed = True
            self.stats['tcp_closed_by_server'] += 1
            self._close_tcp(sock)
            return
        entry[2] += chunk
        while True:
            message, entry[2] = next_message(entry[2])
            if message is None:
                break
            if STATUS_RE.match(message):
                self._reply(mid, message, lambda ack, sock=sock: sock.sendall(ack))
            else:
                self._request(message, lambda answer, sock=sock: sock.sendall(answer))
        if self.outcomes[mid].final is not None:
            self._close_tcp(sock)

    def _reply(self, mid, data, send_ack):
        first = data.split(b'\r\n', 1)[0]
        match = STATUS_RE.match(first)
        if mid is None or mid not in self.outcomes or not match:
            self.stats['unmatched_replies'] += 1
            return
        code = int(match.group(1))
        outcome = self.outcomes[mid]
        if code < 200:
            outcome.provisional.append(code)
            return
        if outcome.final is not None:
            self.stats['retransmitted_finals'] += 1
        else:
            outcome.final = code
            outcome.reply_line = first.decode('utf-8', 'replace')
        headers = split_head(data)[1]
        cseq = headers.get(b'cseq', [b''])[0]
        if code >= 300 and cseq.endswith(b'INVITE'):
            parts = self.messages[mid].data.split(b' ', 2)
            ruri = parts[1] if len(parts) > 2 and parts[1].startswith(b'sip:') else b'sip:%s:%d' % (
                self.ctx.target[0].encode(), self.ctx.target[1])
            ack = ack_for(data, ruri)
            if ack:
                try:
                    send_ack(ack)
                    self.stats['acks_sent'] += 1
                except OSError:
                    self.stats['ack_errors'] += 1

    def _request(self, data, send_answer):
        method = ascii(re.split(rb'\s', data, 1)[0][:20])[2:-1]
        self.requests_received[method] += 1
        answer = answer_for(data)
        if answer:
            try:
                send_answer(answer)
            except OSError:
                pass

    def _close_tcp(self, sock):
        self.tcp_open.pop(sock.fileno(), None)
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _expire_tcp(self, force=False):
        now = time.monotonic()
        for fd, (sock, deadline, _buf, _mid) in list(self.tcp_open.items()):
            if force or now > deadline:
                self._close_tcp(sock)

    # -- sending
    def _send_udp(self, msg):
        sock = self.trunk_udp if msg.kind == 'inbound' else self.udp
        try:
            sock.sendto(msg.data, self.ctx.target)
        except OSError as exc:
            self.outcomes[msg.id].error = errno.errorcode.get(exc.errno, str(exc))
            self.stats['send_errors'] += 1

    def _send_tcp(self, msg):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.ctx.trunk[0] if msg.kind == 'inbound' else self.ctx.source, 0))
            sock.settimeout(2.0)
            sock.connect(self.ctx.target)
            sock.sendall(msg.data)
        except OSError as exc:
            self.outcomes[msg.id].error = errno.errorcode.get(exc.errno, str(exc))
            self.stats['send_errors'] += 1
            sock.close()
            return
        sock.setblocking(False)
        self.sel.register(sock, selectors.EVENT_READ, ('tcp', msg.id))
        self.tcp_open[sock.fileno()] = [sock, time.monotonic() + self.tcp_timeout, b'', msg.id]

    def send(self, messages, run):
        """Send every message (tokens fz<run>x<id>), then wait ``linger`` seconds of silence
        for late replies."""
        self.run = run
        start = time.monotonic()
        hard_deadline = start + self.deadline
        udp_sent = 0
        for msg in messages:
            self.messages[msg.id] = msg
            self.outcomes[msg.id] = Outcome()
            if time.monotonic() > hard_deadline:
                self.stats['not_sent_deadline'] += 1
                continue
            if msg.transport == 'udp':
                due = start + udp_sent / self.udp_rate
                while time.monotonic() < due:
                    self._poll(max(0.0, due - time.monotonic()))
                self._send_udp(msg)
                udp_sent += 1
            else:
                while len(self.tcp_open) >= self.tcp_window:
                    self._poll(0.02)
                self._send_tcp(msg)
            self._poll(0)
        self.sent_seconds = time.monotonic() - start
        self.last_activity = time.monotonic()
        while time.monotonic() < hard_deadline and (
                self.tcp_open or time.monotonic() - self.last_activity < self.linger):
            self._poll(0.1)
        self._expire_tcp(force=True)
        self.total_seconds = time.monotonic() - start

    # -- results
    def summary(self):
        sent = collections.Counter()
        by_mutation = collections.defaultdict(collections.Counter)
        replies = collections.Counter()
        five_hundreds = []
        no_reply = 0
        for mid, msg in sorted(self.messages.items()):
            outcome = self.outcomes[mid]
            sent['%s/%s' % (msg.kind, msg.transport)] += 1
            key = str(outcome.final) if outcome.final else 'none'
            by_mutation[msg.mutation][key] += 1
            if outcome.final:
                replies[str(outcome.final)] += 1
            else:
                no_reply += 1
            if outcome.final == 500:
                five_hundreds.append({'id': mid, 'kind': msg.kind, 'mutation': msg.mutation,
                                      'transport': msg.transport, 'reply': outcome.reply_line,
                                      'message': msg.data[:600].decode('latin-1')})
        return {
            'messages': len(self.messages), 'seconds_sending': round(self.sent_seconds, 2),
            'seconds_total': round(self.total_seconds, 2),
            'sent_by_kind_transport': dict(sorted(sent.items())),
            'replies_by_status': dict(sorted(replies.items())), 'no_reply': no_reply,
            'replies_by_mutation': {m: dict(sorted(c.items())) for m, c in sorted(by_mutation.items())},
            'five_hundreds': five_hundreds, 'count_500': len(five_hundreds),
            'requests_relayed_to_fuzzer': dict(self.requests_received), 'transport_stats': dict(self.stats),
        }


def fuzz(ctx, count, seed, mutations=MUTATIONS, **options):
    """Generate and send ``count`` messages; return the summary dict."""
    fuzzer = Fuzzer(ctx, **options)  # binds the UDP socket: its port goes into every Via
    try:
        fuzzer.send(generate(seed, count, ctx, mutations), seed % 1000000)
        result = fuzzer.summary()
    finally:
        fuzzer.close()
    result['seed'] = seed
    return result


def format_summary(result):
    """The human-readable report of one fuzz run (what make test prints)."""
    lines = ['fuzz: %d messages, seed %s, sent in %.1f s (%.1f s with late replies)'
             % (result['messages'], result['seed'], result['seconds_sending'], result['seconds_total'])]
    lines.append('  sent by kind/transport: ' + ', '.join('%s %d' % kv for kv in result['sent_by_kind_transport'].items()))
    lines.append('  final replies by status: ' + ', '.join('%s x%d' % kv for kv in result['replies_by_status'].items())
                 + '; no final reply: %d' % result['no_reply'])
    lines.append('  500 replies: %d' % result['count_500'])
    lines.append('  by mutation (status: count):')
    for mutation, counts in result['replies_by_mutation'].items():
        lines.append('    %-18s %s' % (mutation, ', '.join('%s:%d' % kv for kv in counts.items())))
    if result['requests_relayed_to_fuzzer']:
        lines.append('  requests Kamailio relayed to the fuzzer (answered 480): ' + ', '.join(
            '%s %d' % kv for kv in sorted(result['requests_relayed_to_fuzzer'].items())))
    if result['transport_stats']:
        lines.append('  transport: ' + ', '.join('%s %d' % kv for kv in sorted(result['transport_stats'].items())))
    for key in ('restarts', 'shm_before', 'shm_after', 'shm_growth', 'settle_seconds', 'router_errors'):
        if key in result:
            lines.append('  %s: %s' % (key.replace('_', ' '), result[key]))
    for item in result['five_hundreds'][:5]:
        lines.append('  500 for #%d %s/%s %s: %r'
                     % (item['id'], item['kind'], item['transport'], item['mutation'], item['message'][:300]))
    return '\n'.join(lines)
