# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A WebRTC webphone for the SIP tests: SIP over secure WebSocket (RFC 7118) with aiortc's
real DTLS-SRTP and ICE media, as a browser running JsSIP or SIP.js does.

It registers (digest authentication), calls (INVITE with aiortc's offer, ACK, BYE) and can
take one call (200 with aiortc's answer). Its microphone is a 440 Hz tone; what it hears is
decoded by aiortc and counted per 20 ms frame, with the frames that carry sound (not
silence) counted apart. Its ICE candidates are the one address it is given (aioice would
otherwise offer every address of this host). Every wait is bounded.
"""

import array
import asyncio
import fractions
import math
import re
import ssl
import struct
import time
import uuid

import aioice.ice
import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame

from lab.wire import Message, digest

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms
# A frame "carries sound" above this RMS (the tone's is ~5700; PCMU's silence is 0-8).
SOUND_RMS = 500


class Tone(MediaStreamTrack):
    """A 440 Hz tone, 8 kHz mono, paced in real time; counts the frames it produced."""

    kind = 'audio'

    def __init__(self):
        super().__init__()
        self.sent = 0
        self._start = None

    async def recv(self):
        if self._start is None:
            self._start = time.monotonic()
        pts = self.sent * FRAME_SAMPLES
        wait = self._start + pts / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        samples = struct.pack('<%dh' % FRAME_SAMPLES, *(
            int(8000 * math.sin(2 * math.pi * 440 * (pts + n) / SAMPLE_RATE)) for n in range(FRAME_SAMPLES)))
        frame = AudioFrame(format='s16', layout='mono', samples=FRAME_SAMPLES)
        frame.planes[0].update(samples)
        frame.pts = pts
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.sent += 1
        return frame


def _rms(frame):
    """The loudness of a decoded frame (aiortc decodes to signed 16-bit PCM)."""
    if frame.format.name != 's16':
        return 0.0
    samples = array.array('h', bytes(frame.planes[0]))[:frame.samples * len(frame.layout.channels)]
    return math.sqrt(sum(sample * sample for sample in samples) / len(samples)) if samples else 0.0


def _uri(name_addr):
    match = re.search(r'<([^>]+)>', name_addr)
    return match.group(1) if match else name_addr.split(';')[0]


class Webphone(object):
    """One webphone account over one secure WebSocket connection (use inside asyncio)."""

    def __init__(self, url, user, domain, password, cafile, address, origin=None, timeout=10):
        self.url = url
        self.user = user
        self.domain = domain
        self.password = password
        self.cafile = cafile
        self.address = address  # the only ICE host candidate
        self.origin = origin
        self.timeout = timeout
        self.host = '%s.invalid' % uuid.uuid4().hex[:12]
        self.contact = '<sip:%s@%s;transport=ws>' % (uuid.uuid4().hex[:8], self.host)
        self.tag = uuid.uuid4().hex[:10]
        self.ws = None
        self.inbox = None
        self.reader = None
        self.log = []  # every message sent and received, for a failure's explanation
        self.pc = None
        self.tone = None
        self.heard = 0  # decoded frames received
        self.sounds = 0  # of which carried sound
        self.offer = self.answer = None  # the SDP this phone sent / got
        self.dtls_state = None  # the DTLS transport's state while the call was up
        self.call_id = None
        self.seen = None
        self._real_addresses = None
        self._listener = None
        self._dialog = None

    # ------------------------------------------------------------------ transport
    async def connect(self):
        context = ssl.create_default_context(cafile=self.cafile)
        self.ws = await asyncio.wait_for(websockets.connect(
            self.url, subprotocols=['sip'], ssl=context, origin=self.origin, open_timeout=self.timeout),
            self.timeout)
        self.inbox = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self):
        try:
            async for frame in self.ws:
                text = frame.decode() if isinstance(frame, bytes) else frame
                self.log.append('<<< ' + text)
                message = Message(text)
                if message.method == 'OPTIONS' or message.method == 'INVITE' and not self._listener:
                    await self._answer_request(message)
                    continue
                if message.method == 'ACK' and not self._listener:
                    continue  # of a re-INVITE's 200
                if message.method == 'BYE':  # the other side hung up
                    await self._answer_request(message)
                await self.inbox.put(message)
        except websockets.ConnectionClosed:
            pass

    async def send(self, text):
        self.log.append('>>> ' + text)
        await self.ws.send(text)

    async def receive(self, predicate, timeout=None):
        """The next message for which predicate is true (others are dropped)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError('webphone %s: no expected message within %s s' % (self.user, timeout))
            message = await asyncio.wait_for(self.inbox.get(), left)
            if predicate(message):
                return message

    async def close(self):
        if self.pc is not None:
            await self.pc.close()
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()

    # ------------------------------------------------------------------ requests
    def _via(self, branch):
        return 'SIP/2.0/WSS %s;branch=%s;rport' % (self.host, branch)

    def _request(self, method, uri, call_id, cseq, to, extra=(), body='', branch=None, from_tag=None):
        lines = ['%s %s SIP/2.0' % (method, uri),
                 'Via: ' + self._via(branch or 'z9hG4bK' + uuid.uuid4().hex),
                 'Max-Forwards: 70',
                 'From: <sip:%s@%s>;tag=%s' % (self.user, self.domain, from_tag or self.tag),
                 'To: ' + to,
                 'Call-ID: ' + call_id,
                 'CSeq: %d %s' % (cseq, method),
                 'Contact: ' + self.contact,
                 'User-Agent: voxplane-test-webphone'] + list(extra)
        if body:
            lines.append('Content-Type: application/sdp')
        lines.append('Content-Length: %d' % len(body.encode()))
        return '\r\n'.join(lines) + '\r\n\r\n' + body

    async def _transaction(self, method, uri, call_id, cseq, to, extra=(), body=''):
        """Send a request, answer a 401/407 challenge once; the final reply and the CSeq used."""
        branch = 'z9hG4bK' + uuid.uuid4().hex
        await self.send(self._request(method, uri, call_id, cseq, to, extra, body, branch))
        for _attempt in range(2):
            reply = await self.receive(lambda m, c=cseq: m.is_reply and m.cseq == (c, method) and m.code >= 200)
            if reply.code not in (401, 407) or _attempt:
                return reply, cseq
            if method == 'INVITE':  # a negative final reply to an INVITE is ACKed in its transaction
                await self.send(self._ack_for(reply, uri, call_id, cseq, branch))
            header = 'WWW-Authenticate' if reply.code == 401 else 'Proxy-Authenticate'
            credentials = '%s: %s' % ('Authorization' if reply.code == 401 else 'Proxy-Authorization',
                                      digest(reply.header(header), self.user, self.password, method, uri))
            cseq += 1
            branch = 'z9hG4bK' + uuid.uuid4().hex
            await self.send(self._request(method, uri, call_id, cseq, to, list(extra) + [credentials], body, branch))
        return reply, cseq

    def _ack_for(self, reply, uri, call_id, cseq, branch):
        return '\r\n'.join([
            'ACK %s SIP/2.0' % uri, 'Via: ' + self._via(branch), 'Max-Forwards: 70',
            'From: <sip:%s@%s>;tag=%s' % (self.user, self.domain, self.tag), 'To: ' + reply.header('To'),
            'Call-ID: ' + call_id, 'CSeq: %d ACK' % cseq, 'Content-Length: 0']) + '\r\n\r\n'

    async def register(self, expires=300):
        call_id = uuid.uuid4().hex
        to = '<sip:%s@%s>' % (self.user, self.domain)
        reply, _cseq = await self._transaction('REGISTER', 'sip:' + self.domain, call_id, 1, to,
                                               ['Expires: %d' % expires])
        return reply

    # ------------------------------------------------------------------ media
    async def _media(self):
        """A peer connection with the tone as its microphone, counting what it hears."""
        real = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [self.address]
        self.pc = RTCPeerConnection()
        self.tone = Tone()
        self.pc.addTrack(self.tone)
        self._real_addresses = real

        @self.pc.on('track')
        def _on_track(track):
            asyncio.ensure_future(self._listen(track))

    async def _listen(self, track):
        while True:
            try:
                frame = await track.recv()
            except Exception:  # pylint: disable=broad-except  # the track ended
                return
            self.heard += 1
            if _rms(frame) > SOUND_RMS:
                self.sounds += 1

    def _restore_addresses(self):
        aioice.ice.get_host_addresses = self._real_addresses

    def _dtls(self):
        transceivers = self.pc.getTransceivers()
        return transceivers[0].receiver.transport.state if transceivers else None

    # ------------------------------------------------------------------ calls
    async def call(self, target, seconds, during=None):
        """Call ``target`` (a user of this domain), talk ``seconds``, hang up. The final reply
        to the INVITE, and the BYE's, or None when it was not answered. ``during(call_id)``, a
        blocking function, runs once the call is up; its result is kept in self.seen."""
        await self._media()
        try:
            await self.pc.setLocalDescription(await self.pc.createOffer())
        finally:
            self._restore_addresses()
        self.offer = self.pc.localDescription.sdp
        call_id = self.call_id = uuid.uuid4().hex
        uri = 'sip:%s@%s' % (target, self.domain)
        reply, cseq = await self._transaction('INVITE', uri, call_id, 1, '<%s>' % uri, body=self.offer)
        if reply.code != 200:
            return reply, None
        routes = list(reversed(reply.entries('Record-Route')))
        remote = _uri(reply.header('Contact'))
        to = reply.header('To')
        route_lines = ['Route: ' + route for route in routes]
        await self.send(self._request('ACK', remote, call_id, cseq, to, route_lines))
        self.answer = reply.body
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply.body, type='answer'))
        started = time.monotonic()
        if during is not None:
            await asyncio.sleep(seconds / 2)
            self.seen = await asyncio.get_running_loop().run_in_executor(None, during, call_id)
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
        self.dtls_state = self._dtls()
        bye, _cseq = await self._transaction('BYE', remote, call_id, cseq + 1, to, route_lines)
        return reply, bye

    def expect_call(self):
        """Take the next INVITE (take_call) instead of answering it busy."""
        self._listener = True

    async def take_call(self, seconds=None, timeout=15):
        """Wait for an INVITE (after expect_call), answer it with aiortc's answer; then talk
        ``seconds`` and hang up (the BYE's final reply), or with ``seconds`` None wait up to
        ``timeout`` s for the caller's BYE (answered 200; returned). A re-INVITE meanwhile is
        answered with the same SDP (nothing changes on this side)."""
        invite = await self.receive(lambda m: not m.is_reply and m.method == 'INVITE', timeout)
        await self.send(self._response(invite, 180, 'Ringing'))
        await self._media()
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=invite.body, type='offer'))
            self.offer = invite.body
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        finally:
            self._restore_addresses()
        self.answer = self.pc.localDescription.sdp
        await self.send(self._response(invite, 200, 'OK', self.answer))
        await self.receive(lambda m: not m.is_reply and m.method == 'ACK', timeout)
        self._listener = None
        if seconds is None:
            bye = await self.receive(lambda m: not m.is_reply and m.method == 'BYE', timeout)
            self.dtls_state = self._dtls()
            return bye
        await asyncio.sleep(seconds)
        self.dtls_state = self._dtls()
        routes = invite.entries('Record-Route')  # the callee keeps their order
        number, _method = invite.cseq
        to = invite.header('From')
        from_tag = self.tag
        remote = _uri(invite.header('Contact'))
        lines = ['BYE %s SIP/2.0' % remote, 'Via: ' + self._via('z9hG4bK' + uuid.uuid4().hex), 'Max-Forwards: 70',
                 'From: %s;tag=%s' % (invite.header('To').split(';tag=')[0], from_tag), 'To: ' + to,
                 'Call-ID: ' + invite.header('Call-ID'), 'CSeq: %d BYE' % (number + 1)] \
            + ['Route: ' + route for route in routes] + ['Content-Length: 0']
        await self.send('\r\n'.join(lines) + '\r\n\r\n')
        return await self.receive(lambda m: m.is_reply and m.cseq[1] == 'BYE' and m.code >= 200)

    def _response(self, request, code, reason, body=''):
        to = request.header('To')
        if ';tag=' not in to:
            to += ';tag=' + self.tag
        lines = ['SIP/2.0 %d %s' % (code, reason)] + ['Via: ' + via for via in request.headers.get('via', ())] \
            + ['Record-Route: ' + route for route in request.headers.get('record-route', ())] \
            + ['From: ' + request.header('From'), 'To: ' + to, 'Call-ID: ' + request.header('Call-ID'),
               'CSeq: ' + request.header('CSeq'), 'Contact: ' + self.contact]
        if body:
            lines.append('Content-Type: application/sdp')
        lines.append('Content-Length: %d' % len(body.encode()))
        return '\r\n'.join(lines) + '\r\n\r\n' + body

    async def _answer_request(self, request):
        """Requests this phone does not wait for: keepalive OPTIONS and a BYE get 200, a
        re-INVITE of the call the same SDP, another INVITE 486."""
        if request.method in ('OPTIONS', 'BYE'):
            await self.send(self._response(request, 200, 'OK'))
        elif request.method == 'INVITE' and ';tag=' in (request.header('To') or '') and self.answer \
                and self.pc is not None:
            await self.send(self._response(request, 200, 'OK', self.pc.localDescription.sdp))  # a re-INVITE
        elif request.method == 'INVITE':
            await self.send(self._response(request, 486, 'Busy Here'))
