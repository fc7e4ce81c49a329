# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIP on the wire, for the lab's hand-made peers: one message parser (``Message``), one digest
(``challenge_params``, ``digest``), one raw UDP peer (``Peer``: any bytes on the wire, replies
matched by Via branch or Call-ID, challenges answered) and the one-request probes of a server
(``sip_request``, ``options_probe``, ``wait_for_options``).

Standard library only, so that the demo's drivers (which run without the test venv's
packages) use it too."""

import hashlib
import re
import socket
import time
import uuid

# RFC 3261 7.3.3 and later RFCs: the compact form of a header name -> its full name.
COMPACT = {'v': 'via', 'f': 'from', 't': 'to', 'i': 'call-id', 'm': 'contact', 'l': 'content-length',
           'c': 'content-type', 'k': 'supported', 's': 'subject', 'e': 'content-encoding', 'o': 'event',
           'u': 'allow-events', 'r': 'refer-to', 'b': 'referred-by', 'x': 'session-expires'}

_STATUS = re.compile(r'SIP/2\.0 (\d{3}) ?(.*)')
_REQUEST = re.compile(r'(\S+) (\S+) SIP/2\.0$')


def _text(data):
    return data.decode('utf-8', 'replace') if isinstance(data, bytes) else data


def _bytes(value):
    return value if isinstance(value, bytes) else value.encode('utf-8')


class Message(object):
    """A SIP request or reply, from bytes or text (CRLF or LF line ends). ``first_line``,
    ``method`` and ``uri`` (requests), ``code`` and ``reason`` (replies, else None),
    ``headers`` ({lower-case full name: [values in order]}, compact forms folded into their full
    names), ``body`` and ``text``. ``header(name)`` is the first value or None, ``all(name)`` every
    value."""

    def __init__(self, data):
        self.text = _text(data)
        normalised = self.text.replace('\r\n', '\n')
        head, _sep, self.body = normalised.partition('\n\n')
        lines = head.lstrip('\n').split('\n')
        self.first_line = lines[0].strip()
        status = _STATUS.match(self.first_line)
        request = None if status else _REQUEST.match(self.first_line)
        self.code = int(status.group(1)) if status else None
        self.reason = status.group(2) if status else None
        self.method = request.group(1) if request else None
        self.uri = request.group(2) if request else None
        self.headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(':')
            if sep:
                key = name.strip().lower()
                self.headers.setdefault(COMPACT.get(key, key), []).append(value.strip())

    def __repr__(self):
        return 'Message(%r)' % self.first_line

    @property
    def is_sip(self):
        return self.code is not None or self.method is not None

    @property
    def is_final(self):
        return self.code is not None and self.code >= 200

    def all(self, name):
        key = name.lower()
        return list(self.headers.get(COMPACT.get(key, key), ()))

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def entries(self, name):
        """Every entry of a header that may be repeated or comma-separated (Via, Route,
        Record-Route), in order."""
        return [part.strip() for value in self.all(name) for part in re.split(r',\s*(?=<|SIP/)', value)]

    @property
    def is_reply(self):
        return self.code is not None

    @property
    def call_id(self):
        return self.header('Call-ID')

    @property
    def cseq(self):
        """(number, method) of the CSeq header, or (None, None)."""
        number, _sep, method = (self.header('CSeq') or '').partition(' ')
        return (int(number), method.strip()) if number.isdigit() else (None, None)


def parse(data):
    """The Message in ``data``, or None when it does not start with a SIP request or status line."""
    message = Message(data)
    return message if message.is_sip else None


def header(message, name):
    """Every value of header ``name`` in ``message`` (a Message, or raw text or bytes)."""
    return (message if isinstance(message, Message) else Message(message)).all(name)


def first_line(text):
    return _text(text).split('\r\n', 1)[0].split('\n', 1)[0]


def is_final(text):
    line = first_line(text)
    return line.startswith('SIP/2.0 ') and not line[8:9] == '1'


def final_of(replies):
    """The first final status line among raw replies, or a description of what came instead."""
    finals = [first_line(r) for r in replies if is_final(r)]
    if finals:
        return finals[0]
    return 'no final reply (got %s)' % ([first_line(r) for r in replies] or 'nothing')


def code_of(line):
    match = re.match(r'SIP/2\.0 (\d{3}) ', line or '')
    return match.group(1) if match else None


# ------------------------------------------------------------------------------ digest
def challenge_params(value):
    """{realm, nonce, qop, opaque, algorithm, stale, ...} of a WWW-/Proxy-Authenticate value."""
    value = _text(value)
    if value[:7].lower() == 'digest ':
        value = value[7:]
    return {key.lower(): quoted if quoted or not bare else bare
            for key, quoted, bare in re.findall(r'([\w-]+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', value)}


def _md5(data):
    return hashlib.md5(data).hexdigest().encode()


def digest(challenge, user, secret, method, uri, nc=1, cnonce=None, use_qop=True):
    """RFC 2617 Digest credentials answering ``challenge`` (a header value, or its parameters):
    qop=auth with nc and cnonce when the challenge offers it and ``use_qop``, else RFC 2069.
    Text when every argument is text; bytes when one is bytes (a username that is not UTF-8)."""
    params = challenge if isinstance(challenge, dict) else challenge_params(challenge)
    as_bytes = any(isinstance(v, bytes) for v in (user, secret, method, uri))
    user, secret, method, uri = (_bytes(v) for v in (user, secret, method, uri))
    realm, nonce = _bytes(params['realm']), _bytes(params['nonce'])
    ha1 = _md5(user + b':' + realm + b':' + secret)
    ha2 = _md5(method + b':' + uri)
    fields = [b'username="' + user + b'"', b'realm="' + realm + b'"', b'nonce="' + nonce + b'"', b'uri="' + uri + b'"']
    qops = [q.strip() for q in params.get('qop', '').split(',') if q.strip()]
    if use_qop and 'auth' in qops:
        count = b'%08x' % nc
        cnonce = _bytes(cnonce or uuid.uuid4().hex[:16])
        response = _md5(b':'.join((ha1, nonce, count, cnonce, b'auth', ha2)))
        fields += [b'response="' + response + b'"', b'qop=auth', b'nc=' + count, b'cnonce="' + cnonce + b'"']
    else:
        fields.append(b'response="' + _md5(ha1 + b':' + nonce + b':' + ha2) + b'"')
    if params.get('opaque'):
        fields.append(b'opaque="' + _bytes(params['opaque']) + b'"')
    fields.append(b'algorithm=MD5')
    credentials = b'Digest ' + b', '.join(fields)
    return credentials if as_bytes else credentials.decode('utf-8')


# ------------------------------------------------------------------------------ a raw peer
class Peer(object):
    """One UDP socket on ``address`` (an ephemeral port unless ``port``) talking to ``target``:
    builds requests as bytes, so that any field can carry what a proper UA never would, sends
    them and reads the replies. ``transcript`` keeps everything sent and received, for a failed
    assertion. Non-2xx final replies to INVITEs are ACKed by ``wait``."""

    def __init__(self, address, target, port=0, timeout=2.0):
        self.target = target
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, port))
        self.address, self.port = self.sock.getsockname()
        self.local_ip = self.address
        self.transcript = []
        self.received = []
        self.last_sent = None

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def compose(self, method, ruri, from_uri, to, call_id=None, cseq=1, headers=(), body=b'', branch=None,
                from_tag=None, to_tag=None, contact=True):
        """A request as bytes; every part may be text or bytes (bytes go on the wire unchanged).
        ``to`` is the whole To header value when it starts with '<' or '"', else a URI that is
        put in angle brackets (with ``to_tag``)."""
        call_id = call_id or uuid.uuid4().hex
        branch = branch or 'z9hG4bK' + uuid.uuid4().hex[:16]
        to = _bytes(to)
        if not to.startswith((b'<', b'"')):
            to = b'<' + to + b'>' + (b';tag=' + _bytes(to_tag) if to_tag else b'')
        lines = [_bytes(method) + b' ' + _bytes(ruri) + b' SIP/2.0',
                 b'Via: SIP/2.0/UDP %s:%d;branch=%s;rport' % (_bytes(self.address), self.port, _bytes(branch)),
                 b'Max-Forwards: 70',
                 b'From: <' + _bytes(from_uri) + b'>;tag=' + _bytes(from_tag or uuid.uuid4().hex[:10]),
                 b'To: ' + to,
                 b'Call-ID: ' + _bytes(call_id),
                 b'CSeq: %d %s' % (cseq, _bytes(method))]
        if contact:
            lines.append(b'Contact: <sip:peer@%s:%d>' % (_bytes(self.address), self.port))
        lines += [_bytes(h) for h in headers]
        body = _bytes(body)
        lines.append(b'Content-Length: %d' % len(body))
        return b'\r\n'.join(lines) + b'\r\n\r\n' + body

    def build(self, method, ruri, from_uri, to, call_id=None, branch=None, **kwargs):
        """(request bytes, Call-ID, Via branch) of compose()."""
        call_id = call_id or uuid.uuid4().hex
        branch = branch or 'z9hG4bK' + uuid.uuid4().hex[:16]
        return self.compose(method, ruri, from_uri, to, call_id=call_id, branch=branch, **kwargs), call_id, branch

    def send(self, data, target=None):
        self.last_sent = data
        self.transcript.append('>>> sent\n' + _text(data))
        self.sock.sendto(data, target or self.target)

    def _receive(self, deadline):
        """The next datagram before ``deadline`` (recorded), or None."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(max(0.001, left))
        try:
            data = self.sock.recvfrom(70000)[0]
        except socket.timeout:
            return None
        self.transcript.append('<<< received\n' + _text(data))
        self.received.append(_text(data))
        return data

    def replies(self, call_id, timeout=2.0, until_final=True):
        """The replies of ``call_id`` (decoded text; None: every datagram) that arrive within
        ``timeout`` seconds, stopping at the first final one unless ``until_final`` is False."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            data = self._receive(deadline)
            if data is None:
                return got
            text = _text(data)
            if call_id is not None and Message(text).call_id != call_id:
                continue
            got.append(text)
            if call_id is not None and until_final and is_final(text):
                return got

    def exchange(self, data, timeout=2.0):
        """Send one request and return its replies up to the first final one."""
        self.send(data)
        return self.replies(Message(data).call_id, timeout)

    def wait(self, branch, timeout=None):
        """The final reply (a Message) whose Via carries ``branch`` (provisional ones skipped),
        or None."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        wanted = b'branch=' + _bytes(branch)
        while True:
            data = self._receive(deadline)
            if data is None:
                return None
            reply = parse(data)
            if reply is None or reply.code is None or wanted not in data or reply.code < 200:
                continue
            if reply.cseq[1] == 'INVITE' and reply.code >= 300:
                self._ack(reply, data)
            return reply

    def _ack(self, reply, data):
        head = data.split(b'\r\n\r\n', 1)[0].split(b'\r\n')
        names = (b'via', b'from', b'to', b'call-id')
        keep = [line for line in head[1:] if line.split(b':', 1)[0].strip().lower() in names]
        ack = [b'ACK sip:%s:%d SIP/2.0' % (self.target[0].encode(), self.target[1])] + keep + [
            b'CSeq: %d ACK' % reply.cseq[0], b'Max-Forwards: 70', b'Content-Length: 0']
        self.send(b'\r\n'.join(ack) + b'\r\n\r\n')

    def request(self, method, ruri, from_uri, to, timeout=None, **kwargs):
        """Send one request and return its final reply (a Message), or None."""
        data, _call_id, branch = self.build(method, ruri, from_uri, to, **kwargs)
        self.send(data)
        return self.wait(branch, timeout)

    def authenticate(self, method, user, domain, password, auth_user=None, ruri=None, dialled='11',
                     use_qop=True, answer_from=None, new_call_id=False, headers=(), contact=True):
        """A request without credentials, then the same request (same Call-ID, next CSeq)
        answering the challenge with ``auth_user`` (default ``user``) and ``password``.
        REGISTER goes to sip:<domain> with To = From = user@domain; INVITE to sip:<dialled>@<domain>.
        ``answer_from``: another Peer that sends the answer (another source address);
        ``new_call_id``: answer under a new Call-ID; ``contact`` False: no Contact of the peer's
        own (``headers`` may bring one). Returns (challenge, answer, digest params)."""
        aor = 'sip:%s@%s' % (user, domain)
        if method == 'REGISTER':
            ruri = ruri or 'sip:%s' % domain
            to_uri = aor
        else:
            ruri = ruri or 'sip:%s@%s' % (dialled, domain)
            to_uri = ruri
        from_tag = uuid.uuid4().hex[:8]
        challenge = self.request(method, ruri, aor, to_uri, from_tag=from_tag, headers=headers, contact=contact)
        if challenge is None or challenge.code not in (401, 407):
            return challenge, None, None
        params = challenge_params(challenge.header('WWW-Authenticate' if challenge.code == 401 else 'Proxy-Authenticate'))
        credentials = digest(params, auth_user or user, password, method, ruri, use_qop=use_qop)
        name = b'Authorization: ' if challenge.code == 401 else b'Proxy-Authorization: '
        call_id = None if new_call_id else challenge.call_id
        sender = answer_from or self
        answer = sender.request(method, ruri, aor, to_uri, call_id=call_id, cseq=2, from_tag=from_tag,
                                headers=list(headers) + [name + _bytes(credentials)], contact=contact)
        return challenge, answer, params


# ------------------------------------------------------------------------------ probes
def sip_request(local_ip, target, method, ruri, from_uri, to_uri, headers=(), timeout=2.0):
    """Send one request over UDP from an ephemeral port of local_ip; return the first final
    status line (or the last provisional one when no final came, or None). For polling and
    probes: the tests proper use sipp scenarios or a Peer."""
    with Peer(local_ip, target) as peer:
        data = peer.compose(method, ruri, from_uri, to_uri, headers=headers)
        replies = peer.exchange(data, timeout)
    lines = [first_line(r) for r in replies]
    finals = [line for line in lines if is_final(line)]
    return finals[0] if finals else (lines[-1] if lines else None)


def options_probe(address, port, timeout=2.0, user=None):
    """Send one OPTIONS over UDP from an ephemeral loopback port; return the status line or None."""
    ruri = 'sip:%s%s:%d' % ((user + '@') if user else '', address, port)
    line = sip_request(address, (address, port), 'OPTIONS', ruri, 'sip:probe@%s' % address, ruri, timeout=timeout)
    return None if line is None or line.startswith('SIP/2.0 1') else line


def wait_for_options(address, port, timeout=15):
    """Poll with OPTIONS until a 200 comes (its status line) or ``timeout`` seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = options_probe(address, port, timeout=1.0)
        if line and line.startswith('SIP/2.0 200'):
            return line
        time.sleep(0.2)
    return None
