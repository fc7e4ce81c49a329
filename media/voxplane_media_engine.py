# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media service's engine: PJSIP (the pjsua2 binding) carrying out the steps of the flows
(media_steps) on SIP calls, in one worker process (the wheel takes 4 calls a process; the front,
voxplane_media_front.py, spreads calls over the workers). It decides nothing: which flow answers
an INVITE, and what each flow does next, come from the pure core through the ``dispatch``
function it is given.

Threads: PJSIP runs with ``mainThreadOnly`` and no worker threads of its own for SIP; the
service's main thread calls ``run()``, which polls ``libHandleEvents`` and is the only thread
that touches a PJSIP object. Callbacks only queue an event (a WAV player's end of file comes
from the media clock thread); the loop handles the queue, the timers of the steps (digit
timeouts, a recording's silence and maximum length) and the flows.

A call's life: INVITE from an address in ``allowed_sources`` (else 403; for an INVITE the front
relayed, the address it names in its SOURCE_HEADER) -> ``dispatch(text)``
returns (flow, language, tenant) or raises media_calls.Refusal (its answer) or a DirectoryError
(503) -> each step the flow yields is started; when it ends, its StepResult goes back to the
flow. After the caller hangs up the running step ends with ``hung_up`` (a recording keeps what
it has) and a later step closes the flow. A Bridge places a second call (a *leg*) through
Kamailio (``EngineSettings.kamailio``) and connects the two calls' audio in the bridge once the
leg is answered; the leg counts against the process's calls. A Conference puts the call into its
room: a room spans workers, so its members are kept by the front (conference_flows.Rooms), which
tells every worker in the room its table on each change; the engine connects its own members in
PJSIP's conference bridge by it and carries the others' voices over a RoomBus (a port of the
bridge whose audio comes from and goes to the other workers in the room, over loopback UDP).
``shutdown()`` ends running recordings first (their flows keep the messages), then ends every call
and destroys PJSIP.
"""

import collections
import gc
import logging
import re
import socket
import struct
import time
import warnings
import zlib

import pjsua2 as pj

from ansible_collections.voxplane.pbx.plugins.module_utils.conference_flows import RULES as ROOM_RULES
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError
from ansible_collections.voxplane.pbx.plugins.module_utils.media_calls import Refusal, identity_headers, read_invite
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import (
    DONE, Answer, Bridge, CollectDigits, Conference, EarlyMedia, Hangup, Hold, Language, Play, Prompt, Record, StepResult,
    Talk,
)

import voxplane_media_audio as audio_files
from voxplane_media_front import SOURCE_HEADER, LocalRooms

with warnings.catch_warnings():
    # G.711-era sample arithmetic in C: deprecated from Python 3.11 (audioop-lts from PyPI
    # provides it on 3.13); Debian 12's Python 3.11 has it.
    warnings.simplefilter('ignore', DeprecationWarning)
    import audioop  # pylint: disable=deprecated-module

LOG = logging.getLogger('voxplane-media')
# Where an INVITE the front relayed came from (voxplane_media_front.SOURCE_HEADER).
_RELAYED_FROM = re.compile(r'^%s:\s*(\S+)\s*$' % SOURCE_HEADER, re.MULTILINE | re.IGNORECASE)

# How often a recording's signal level is looked at (silence detection), in seconds.
LEVEL_POLL_S = 0.1
# A recording's stream counters (logged when it ends) start this long after it began.
RTP_SETTLE_S = 0.2
# A recording ended by silence keeps this much of the silence after the last sound (ms).
SILENCE_KEPT_MS = 300
# PJSIP closes a recorder's file shortly after it is destroyed (the bridge removes ports
# between two frames); a recording's step ends once the file is complete, or after this long
# (then its header is repaired here).
CLOSE_TIMEOUT_S = 2.0
# A step that needs the call's audio waits this long for the media to come up.
MEDIA_TIMEOUT_S = 5.0
# After the 200, the flow waits for the caller's ACK (the caller's side of the media is up then:
# a prompt played before it loses its first syllables on a slow path), at most this long.
ACK_TIMEOUT_S = 2.0
# Polling PJSIP: how long libHandleEvents may wait for an event (ms); the steps' timers are
# looked at after every poll.
POLL_MS = 10
# A BYE right after the last prompt would cut off its end, which is still on its way (encoded,
# sent, in the phone's jitter buffer): the call is ended this long after a prompt ended.
LINGER_S = 0.4
# Calls at once: the PJSIP wheel is built with PJSUA_MAX_CALLS 4 (a fifth INVITE gets 486 from
# pjsua); the service runs as many workers as it needs calls (voxplane_media_front.py).
CALLS_PER_PROCESS = 4
# G.711 has 8 bytes a millisecond (the jitter buffer counts frames of its codec's size).
G711_BYTES_PER_MS = 8.0
# How long libHandleEvents may wait while there is no call.
IDLE_POLL_MS = 100
# A worker tells the front its number of calls at least this often (seconds).
REPORT_S = 1.0
# On shutdown, how long ended calls may take to be gone (BYE answered) before PJSIP is destroyed.
SHUTDOWN_GRACE_S = 2.0
# A conference call waits this long for the front to let it into its room.
JOIN_TIMEOUT_S = 2.0
# The room bus: a datagram is this header (the room's hash) and one frame of 16-bit PCM; a
# frame is 20 ms at 8 kHz. Frames from one worker wait in a queue of at most BUS_QUEUE_MAX; one
# is taken per frame once BUS_PREFILL are there (absorbs the scheduling jitter of two processes).
BUS_MAGIC = b'VXRB'
BUS_FRAME_BYTES = 320
BUS_PREFILL = 2
BUS_QUEUE_MAX = 5


class EngineSettings(object):
    """Where a worker listens and what PJSIP may use (the media role's variables). ``front`` is
    the (address, port) of the service's front: the real source of an INVITE it relays is in
    its SOURCE_HEADER."""

    def __init__(self, address, port, allowed_sources, front=None, rtp_port_min=40000, rtp_port_max=40999,
                 silence_level=8, pjsip_log_level=1, kamailio=None):
        self.kamailio = kamailio      # sip:host:port the calls the service places go to (None: it places none)
        self.address = address
        self.port = int(port)
        self.allowed_sources = frozenset(allowed_sources)
        self.front = tuple(front) if front else None
        self.rtp_port_min = int(rtp_port_min)
        self.rtp_port_max = int(rtp_port_max)
        self.silence_level = int(silence_level)
        self.pjsip_log_level = int(pjsip_log_level)


class _Account(pj.Account):
    def __init__(self, engine):
        pj.Account.__init__(self)
        self.engine = engine

    def onIncomingCall(self, prm):
        call = _Call(self.engine, self, prm.callId)
        # The message must be read now: rdata lives only during this callback.
        self.engine.events.append(('incoming', call, prm.rdata.wholeMsg, prm.rdata.srcAddress))


class _Call(pj.Call):
    def __init__(self, engine, account, call_id=pj.PJSUA_INVALID_ID):
        pj.Call.__init__(self, account, call_id)
        self.engine = engine

    def onCallState(self, prm):
        self.engine.events.append(('state', self, None, None))

    def onCallMediaState(self, prm):
        self.engine.events.append(('media', self, None, None))

    def onDtmfDigit(self, prm):
        self.engine.events.append(('digit', self, prm.digit, None))


class _Player(pj.AudioMediaPlayer):
    def __init__(self, engine):
        pj.AudioMediaPlayer.__init__(self)
        self.engine = engine

    def onEof2(self):
        # Called from the media clock thread: only queue it.
        self.engine.events.append(('eof', self, None, None))


def room_hash(key):
    """Four bytes that name a room on the bus (its key's CRC-32)."""
    return struct.pack('!I', zlib.crc32(key.encode('utf-8')))


class BusSocket(object):
    """The worker's end of the room buses: one loopback UDP socket; frames that arrive are put
    into the queue of the room (by the hash in their header) and of the worker they came from.
    Used by the media clock thread only (the RoomBus callbacks)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.setblocking(False)
        self.address = list(self.sock.getsockname())
        self.buses = {}     # room hash -> RoomBus

    def drain(self):
        while True:
            try:
                datagram, source = self.sock.recvfrom(2048)
            except OSError:
                return
            if len(datagram) != 8 + BUS_FRAME_BYTES or datagram[:4] != BUS_MAGIC:
                continue
            bus = self.buses.get(datagram[4:8])
            if bus is not None:
                bus.arrived(source, datagram[8:])

    def send(self, header, pcm, peers):
        datagram = header + pcm
        for peer in peers:
            try:
                self.sock.sendto(datagram, peer)
            except OSError:
                pass

    def close(self):
        self.sock.close()


class RoomBus(pj.AudioMediaPort):
    """A port of the bridge that joins a room's members in this worker to those in others: what
    the bridge sends it (the mix of this worker's speakers) goes to the other workers' buses;
    what it gives the bridge is the sum of what they sent (one frame of each per frame). The
    callbacks run in the media clock thread; the main thread only swaps ``peers`` and ``heard``
    (whole values)."""

    def __init__(self, sockets, key):
        pj.AudioMediaPort.__init__(self)
        self.sockets = sockets
        self.header = BUS_MAGIC + room_hash(key)
        self.peers = ()          # (host, port) of the buses this worker's speakers are sent to
        self.heard = frozenset()  # (host, port) of the buses whose frames are played
        self.queues = {}
        self.primed = set()
        self.frames = 0
        self.missing = 0         # frames a worker in ``heard`` had not sent in time

    def create(self, name):
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.clockRate = audio_files.RATE
        fmt.channelCount = 1
        fmt.frameTimeUsec = 20000
        fmt.bitsPerSample = 16
        self.createPort(name, fmt)
        self.sockets.buses[self.header[4:]] = self

    def arrived(self, source, pcm):
        if source not in self.heard:
            return   # not a worker of this room (or not heard now): dropped
        queue = self.queues.get(source)
        if queue is None:
            queue = self.queues[source] = collections.deque(maxlen=BUS_QUEUE_MAX)
        queue.append(pcm)

    def onFrameRequested(self, frame):
        self.sockets.drain()
        mixed = None
        for source in self.heard:
            queue = self.queues.get(source)
            if not queue:
                self.primed.discard(source)
                self.missing += 1
                continue
            if source not in self.primed:
                if len(queue) < BUS_PREFILL:
                    continue
                self.primed.add(source)
            pcm = queue.popleft()
            mixed = pcm if mixed is None else audioop.add(mixed, pcm, 2)
        self.frames += 1
        if mixed is None:
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            return
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(mixed)
        frame.size = len(mixed)

    def onFrameReceived(self, frame):
        peers = self.peers
        if peers and frame.size == BUS_FRAME_BYTES:
            self.sockets.send(self.header, bytes(frame.buf), peers)


class _Room(object):
    """A conference room as far as this worker is in it: its spec, its own members (member id ->
    Session), the room's last table from the front, the links made in the bridge, the bus and
    who hears it and is heard through it, the music player and whom it plays to, the tones."""

    def __init__(self, spec):
        self.spec = spec
        self.local = {}
        self.table = None
        self.links = set()
        self.bus = None
        self.bus_sinks = set()
        self.bus_sources = set()
        self.music = None
        self.music_sinks = set()
        self.tones = []


class Session(object):
    """One call and its flow, while it lasts."""

    def __init__(self, call, flow, language, tenant, label):
        self.call = call
        self.flow = flow
        self.language = language
        self.tenant = tenant
        self.label = label
        self.started = False
        self.step = None
        self.answered = False        # 200 sent: a BYE ends it
        self.gone = False            # the call is disconnected
        self.ended = False           # a final answer or BYE was sent by us
        self.flow_done = False
        self.digits = ''             # typed and not yet used (type-ahead)
        self.collected = ''
        self.audio = None            # the call's AudioMedia once media is up
        self.player = None
        self.recorder = None
        self.deadline = None
        self.record_started = 0.0
        self.last_voice = 0.0
        self.next_level = 0.0
        self.waiting_media = False
        self.waiting_ack = False     # 200 sent, its ACK not yet here (the Answer step goes on)
        self.closing = None          # (end, digit, deadline) of a recording being closed
        self.media_index = 0
        self.rtp_at_record = None    # the stream's counters when the recording began
        self.played_at = 0.0         # when the last prompt ended
        self.hangup_at = None        # a Hangup step waits until then (LINGER_S)
        self.call_id = ''            # the caller's Call-ID, its domain, the identity it presents
        self.domain = ''
        self.identity = ()
        self.ringing = {}            # the calls a Bridge placed, ringing: leg -> [user, its AudioMedia]
        self.leg = None              # the one that answered, connected to the caller
        self.leg_user = None
        self.leg_audio = None
        self.leg_code = 0            # 200 once the leg is answered and connected
        self.leg_failure = 500       # the last failure of a ringing leg
        self.room = None             # the _Room a Conference step put the call into
        self.member = None           # its member id in the room (the front's Rooms) while it joins or is in
        self.hold = None             # (prompts, looped player) of the music on hold, while it plays


class Engine(object):
    """PJSIP and the calls; ``dispatch(invite_text)`` -> (flow, language, tenant name)."""

    def __init__(self, settings, dispatch, files, on_load=None, clock=time.monotonic, rooms=None):
        self.settings = settings
        self.dispatch = dispatch
        self.files = files
        self.on_load = on_load          # told the number of calls on every change and every second
        # The front's room keeper (voxplane_media_front.FrontLink), or the rooms of this process.
        self.room_link = rooms if rooms is not None else LocalRooms(settings.port)
        self.bus_sockets = None
        self.joining = {}            # member id -> Session, while the front decides
        self.members = 0
        self.clock = clock
        self._reported = (None, 0.0)
        self.events = collections.deque()
        self.sessions = {}           # _Call -> Session
        self.refused = []            # calls answered with a refusal, kept until they are gone
        self.legs = {}               # a call a Bridge placed -> its Session, until it is gone
        self.rooms = {}              # RoomSpec.key -> _Room while it has members here
        self.leg_account = None
        self.stopping = False
        self.ep = None
        self.account = None
        self._transports = []

    # ------------------------------------------------------------------------ life
    def start(self):
        s = self.settings
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.maxCalls = CALLS_PER_PROCESS
        cfg.uaConfig.userAgent = 'voxplane-media'
        # The bridge at G.711's rate: prompts, recordings and calls need no resampling.
        cfg.medConfig.clockRate = audio_files.RATE
        cfg.medConfig.sndClockRate = audio_files.RATE
        cfg.medConfig.channelCount = 1
        cfg.medConfig.maxMediaPorts = 2 * CALLS_PER_PROCESS + 8   # a call and its player or recorder
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.logConfig.level = s.pjsip_log_level
        cfg.logConfig.consoleLevel = s.pjsip_log_level
        cfg.logConfig.msgLogging = s.pjsip_log_level >= 5
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        for codec in self.ep.codecEnum2():
            self.ep.codecSetPriority(codec.codecId, 0)
        self.ep.codecSetPriority('PCMA/8000/1', 255)
        self.ep.codecSetPriority('PCMU/8000/1', 254)
        tc = pj.TransportConfig()
        tc.boundAddress = s.address
        tc.port = s.port
        self._transports.append(self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc))
        self.ep.libStart()
        self.bus_sockets = BusSocket()
        acfg = pj.AccountConfig()
        acfg.idUri = 'sip:media@%s:%d' % (s.address, s.port)
        acfg.mediaConfig.transportConfig.boundAddress = s.address
        acfg.mediaConfig.transportConfig.port = s.rtp_port_min
        acfg.mediaConfig.transportConfig.portRange = s.rtp_port_max - s.rtp_port_min
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_DISABLED
        self.account = _Account(self)
        self.account.create(acfg, True)
        if s.kamailio:
            # The calls the service places: every request through Kamailio (a loose route), so the
            # request URI stays sip:<user>@<tenant's domain>.
            lcfg = pj.AccountConfig()
            lcfg.idUri = 'sip:media@%s:%d' % (s.address, s.port)
            lcfg.sipConfig.proxies.append('%s;transport=udp;lr' % s.kamailio)
            lcfg.mediaConfig.transportConfig.boundAddress = s.address
            lcfg.mediaConfig.transportConfig.port = s.rtp_port_min
            lcfg.mediaConfig.transportConfig.portRange = s.rtp_port_max - s.rtp_port_min
            lcfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_DISABLED
            self.leg_account = _Account(self)
            self.leg_account.create(lcfg, False)
        LOG.info('listening on %s:%d, RTP %d-%d, at most %d calls, SIP from %s', s.address, s.port,
                 s.rtp_port_min, s.rtp_port_max, CALLS_PER_PROCESS, ', '.join(sorted(s.allowed_sources)))

    def run(self, stop_requested):
        """Serve calls until ``stop_requested()`` is true, then shut down."""
        while not stop_requested():
            self.poll()
        self.shutdown()

    def poll(self):
        # Idle, nothing has a timer: a longer wait (a SIP event ends it at once).
        self.ep.libHandleEvents(POLL_MS if self.sessions else IDLE_POLL_MS)
        for message in self.room_link.receive():
            self._room_message(message)
        self._handle_events()
        self._tick()
        self._report()

    def _report(self, force=False):
        if self.on_load is None:
            return
        now, (calls, at), busy = self.clock(), self._reported, len(self.sessions) + len(self.legs)
        if force or calls != busy or now - at >= REPORT_S:
            self._reported = (busy, now)
            self.on_load(busy)

    def shutdown(self):
        """End every call (a running recording first ends as 'shutdown', so its flow keeps the
        message), wait a little for the calls to be gone, destroy PJSIP."""
        self.stopping = True
        for session in list(self.sessions.values()):
            if session.recorder is not None:
                self._close_recording(session, 'shutdown')
        deadline = self.clock() + CLOSE_TIMEOUT_S + 0.5
        while any(s.closing for s in self.sessions.values()) and self.clock() < deadline:
            self.ep.libHandleEvents(POLL_MS)
            self._handle_events()
            self._tick()
        for session in list(self.sessions.values()):
            if not session.flow_done:
                session.flow.close()
                session.flow_done = True
            self._hangup(session, Hangup(503, 'Service Unavailable'))
        for leg in list(self.legs):
            self._hangup_leg(leg)
        deadline = self.clock() + SHUTDOWN_GRACE_S
        while (self.sessions or self.refused or self.legs) and self.clock() < deadline:
            self.ep.libHandleEvents(POLL_MS)
            self._handle_events()
        for session in list(self.sessions.values()):
            self._release(session)
        self.sessions.clear()
        self.legs.clear()
        del self.refused[:]
        self.events.clear()
        for account in (self.account, self.leg_account):
            if account is not None:
                account.shutdown()
        self.account = self.leg_account = None
        for room in list(self.rooms.values()):
            self._stop_room(room)
        self.rooms.clear()
        gc.collect()  # every pjsua2 object must be gone before libDestroy
        self.ep.libDestroy()
        if self.bus_sockets is not None:
            self.bus_sockets.close()
        self.ep = None
        LOG.info('stopped')

    # ------------------------------------------------------------------------ events
    def _handle_events(self):
        while self.events:
            kind, obj, value, extra = self.events.popleft()
            if kind == 'incoming':
                self._incoming(obj, value, extra)
            elif kind == 'eof':
                self._eof(obj)
            else:
                session = self.sessions.get(obj)
                if session is None and obj in self.legs:
                    self._leg_event(kind, obj)
                    continue
                if session is None:
                    if kind == 'state' and obj in self.refused:
                        self.refused.remove(obj)  # refused with a final answer: it ends at once
                    continue
                if kind == 'state':
                    self._state(session)
                elif kind == 'media':
                    self._media(session)
                elif kind == 'digit':
                    self._digit(session, value)

    def _incoming(self, call, text, source):
        host, port = source.rsplit(':', 1)
        address = host.strip('[]')
        if self.settings.front and (address, int(port)) == self.settings.front:
            relayed = _RELAYED_FROM.search(text)
            source = relayed.group(1) if relayed else source
            address = source.rsplit(':', 1)[0].strip('[]')
        if address not in self.settings.allowed_sources:
            LOG.warning('INVITE from %s refused (403): not one of the Kamailio nodes this service serves', source)
            return self._refuse(call, 403, 'Forbidden')
        if self.stopping:
            return self._refuse(call, 503, 'Service Unavailable')
        try:
            flow, language, tenant, label = self.dispatch(text)
        except Refusal as refusal:
            LOG.info('INVITE from %s refused: %d %s', source, refusal.code, refusal.reason)
            return self._refuse(call, refusal.code, refusal.reason)
        except DirectoryError as e:
            LOG.error('INVITE from %s: the directory cannot be read (%s): 503', source, e)
            return self._refuse(call, 503, 'Directory Unavailable')
        session = Session(call, flow, language, tenant, label)
        request = read_invite(text)
        session.call_id, session.domain, session.identity = request.call_id, request.domain, identity_headers(text)
        self.sessions[call] = session
        LOG.info('%s: started', label)
        self._advance(session, None)

    def _refuse(self, call, code, reason):
        prm = pj.CallOpParam()
        prm.statusCode = code
        prm.reason = reason
        try:
            call.hangup(prm)
        except pj.Error as e:
            LOG.error('cannot refuse a call with %d: %s', code, e.info())
        self.refused.append(call)

    def _state(self, session):
        try:
            info = session.call.getInfo()
            disconnected = info.state == pj.PJSIP_INV_STATE_DISCONNECTED
        except pj.Error:
            disconnected = True
        if not disconnected:
            if session.waiting_ack and info.state == pj.PJSIP_INV_STATE_CONFIRMED:
                session.waiting_ack = False
                self._finish(session, DONE)
            return
        session.waiting_ack = False
        session.gone = True
        step = session.step
        if session.leg is not None or session.ringing:
            self._end_bridge(session, StepResult(end='hangup', hung_up=True, code=session.leg_code, user=session.leg_user or ''))
        elif session.room is not None or session.member is not None:
            self._leave_room(session)
            self._finish(session, StepResult(end='hangup', hung_up=True))
        elif session.recorder is not None:
            self._close_recording(session, 'hangup')
        elif not session.flow_done and step is not None and not isinstance(step, Hangup) and session.closing is None:
            self._stop_player(session)
            session.audio = None
            self._finish(session, StepResult(end='hangup', digits=session.collected, hung_up=True))
        session.audio = None
        self._release_if_over(session)

    def _release_if_over(self, session):
        """Forget a call that is gone once its recording (if any) is complete and handed on."""
        if not session.gone or session.closing is not None or session.call not in self.sessions:
            return
        if not session.flow_done:
            session.flow.close()
            session.flow_done = True
        LOG.info('%s: ended', session.label)
        self._release(session)
        del self.sessions[session.call]

    def _media(self, session):
        try:
            info = session.call.getInfo()
        except pj.Error:
            return
        audio = None
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                audio = session.call.getAudioMedia(index)
                session.media_index = index
                break
        session.audio = audio
        if audio is not None and session.waiting_media:
            session.waiting_media = False
            self._finish(session, self._begin(session, session.step))

    def _digit(self, session, digit):
        LOG.debug('%s: digit %s', session.label, digit)
        session.digits += digit
        step = session.step
        if isinstance(step, Play) and session.player is not None and digit in step.barge_in:
            self._stop_player(session)
            self._finish(session, StepResult(end='digit', digits=digit))
        elif isinstance(step, Record) and session.recorder is not None and digit in step.stop_digits:
            session.digits = session.digits[:-1]
            self._close_recording(session, 'digit', digit)
        elif isinstance(step, CollectDigits) and not session.waiting_media and session.deadline is not None:
            self._finish(session, self._collect(session, step))

    def _eof(self, player):
        for room in self.rooms.values():
            for tone in room.tones:
                if tone[0] is player:
                    room.tones.remove(tone)
                    for sink in tone[1]:
                        if sink.audio is not None:
                            try:
                                player.stopTransmit(sink.audio)
                            except pj.Error:
                                pass
                    return
        for session in self.sessions.values():
            # A looped player (what a Bridge plays while it rings) plays on.
            if session.player is player and isinstance(session.step, Play):
                self._stop_player(session)
                session.played_at = self.clock()
                self._finish(session, DONE)
                return

    def _tick(self):
        now = self.clock()
        for session in list(self.sessions.values()):
            step = session.step
            if session.waiting_media:
                if now >= session.deadline:
                    LOG.error('%s: no media within %.0f s: hanging up', session.label, MEDIA_TIMEOUT_S)
                    session.waiting_media = False
                    session.flow.close()
                    session.flow_done = True
                    self._hangup(session, Hangup(500, 'No Media'))
                continue
            if session.waiting_ack:
                if now >= session.deadline:
                    LOG.info('%s: no ACK within %.0f s of the 200: going on', session.label, ACK_TIMEOUT_S)
                    session.waiting_ack = False
                    self._finish(session, DONE)
                continue
            if session.hangup_at is not None:
                if now >= session.hangup_at:
                    session.hangup_at = None
                    self._hangup(session, step)
                continue
            if session.closing is not None:
                if audio_files.closed(step.path) or now >= session.closing[2]:
                    self._finish(session, self._recorded(session))
                    self._release_if_over(session)
            elif isinstance(step, Record) and session.recorder is not None:
                if session.rtp_at_record is None and now - session.record_started >= RTP_SETTLE_S:
                    session.rtp_at_record = self._rtp_counters(session) + (now,)
                if now >= session.next_level:
                    session.next_level = now + LEVEL_POLL_S
                    try:
                        # The caller's level: what the call's port transmits into the bridge
                        # (pjsua names the levels from the port's side).
                        if session.audio.getTxLevel() > self.settings.silence_level:
                            session.last_voice = now
                    except pj.Error:
                        pass
                if (now - session.last_voice) * 1000 >= step.silence_ms:
                    self._close_recording(session, 'silence')
                elif now >= session.deadline:
                    self._close_recording(session, 'max')
            elif isinstance(step, Hold) and session.deadline is not None and now >= session.deadline:
                self._finish(session, DONE)
            elif isinstance(step, Conference) and session.member in self.joining and now >= session.deadline:
                LOG.error('%s: no answer about room %s within %.0f s', session.label, step.room.key, JOIN_TIMEOUT_S)
                self._leave_room(session)
                self._finish(session, StepResult(end='unavailable'))
            elif isinstance(step, Bridge) and session.ringing and session.leg is None and now >= session.deadline:
                LOG.info('%s: %s not answered within %d ms', session.label, step.user, step.ring_ms)
                self._end_bridge(session, StepResult(end='timeout', code=408))
            elif isinstance(step, CollectDigits) and session.deadline is not None and now >= session.deadline:
                session.deadline = None
                self._finish(session, StepResult(end='timeout', digits=session.collected))

    # ------------------------------------------------------------------------ the flow
    def _finish(self, session, result):
        """The running step ended with ``result`` (None: it goes on): on with the flow."""
        if result is not None:
            session.step = None
            session.deadline = None
            self._advance(session, result)

    def _advance(self, session, result):
        while not session.flow_done:
            try:
                step = session.flow.send(result) if session.started else next(session.flow)
                session.started = True
            except StopIteration:
                session.flow_done = True
                self._hangup(session, Hangup())
                return
            except Exception:  # pylint: disable=broad-except  # one call's failure must not stop the service
                LOG.exception('%s: the flow failed', session.label)
                session.flow_done = True
                self._hangup(session, Hangup(500, 'Server Internal Error'))
                return
            session.step = step
            LOG.debug('%s: %r (after %r)', session.label, step, result)
            if isinstance(step, Language):
                session.language = step.language
                result = DONE
                continue
            if session.gone or self.stopping:
                session.flow.close()
                session.flow_done = True
                return
            if isinstance(step, Hangup):
                session.flow.close()
                session.flow_done = True
                linger = session.played_at + LINGER_S - self.clock()
                if linger > 0 and not self.stopping:
                    session.hangup_at = self.clock() + linger
                else:
                    self._hangup(session, step)
                return
            result = self._begin(session, step)
            if result is None:
                return

    def _begin(self, session, step):
        """Start ``step``; its result when it is over at once, else None (an event ends it)."""
        if not isinstance(step, (Hold, Bridge)):
            self._stop_hold(session)
        if isinstance(step, Hold):
            if self._wait_for_media(session):
                return None
            self._hold(session, step.prompts)
            session.deadline = self.clock() + step.ms / 1000.0
            return None
        if isinstance(step, Answer):
            return self._answer(session, 200)
        if isinstance(step, EarlyMedia):
            return self._answer(session, 183)
        if isinstance(step, Play):
            return self._play(session, step)
        if isinstance(step, Record):
            return self._record(session, step)
        if isinstance(step, CollectDigits):
            session.collected = ''
            return self._collect(session, step)
        if isinstance(step, Bridge):
            return self._bridge(session, step)
        if isinstance(step, Conference):
            return self._conference(session, step)
        if isinstance(step, Talk):
            return None if session.leg is not None else StepResult(end='ended', code=200)
        raise TypeError('%s: unknown step %r' % (session.label, step))

    def _answer(self, session, code):
        prm = pj.CallOpParam()
        prm.statusCode = code
        try:
            session.call.answer(prm)
        except pj.Error as e:
            LOG.error('%s: cannot answer %d: %s', session.label, code, e.info())
            return StepResult(end='hangup', hung_up=True)
        session.answered = session.answered or code == 200
        if code != 200:
            return DONE
        session.waiting_ack = True
        session.deadline = self.clock() + ACK_TIMEOUT_S
        return None

    def _wait_for_media(self, session):
        if session.audio is not None:
            return False
        session.waiting_media = True
        session.deadline = self.clock() + MEDIA_TIMEOUT_S
        return True

    def _play(self, session, step):
        if step.flush:
            session.digits = ''
        typed = [d for d in session.digits if d in step.barge_in]
        if typed:
            return StepResult(end='digit', digits=typed[0])
        files = self.files.files(step.prompts, session.language, session.tenant)
        if not files:
            return DONE
        if self._wait_for_media(session):
            return None
        player = _Player(self)
        try:
            if len(files) == 1:
                player.createPlayer(files[0], pj.PJMEDIA_FILE_NO_LOOP)
            else:
                player.createPlaylist(files, '', pj.PJMEDIA_FILE_NO_LOOP)
            player.startTransmit(session.audio)
        except pj.Error as e:
            LOG.error('%s: cannot play %s: %s', session.label, files, e.info())
            return DONE
        session.player = player
        return None

    def _stop_player(self, session):
        player, session.player = session.player, None
        if player is not None and session.audio is not None:
            try:
                player.stopTransmit(session.audio)
            except pj.Error:
                pass

    def _record(self, session, step):
        if self._wait_for_media(session):
            return None
        session.digits = ''
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(step.path)
            session.audio.startTransmit(recorder)
        except pj.Error as e:
            LOG.error('%s: cannot record to %s: %s', session.label, step.path, e.info())
            return StepResult(end='error')
        now = self.clock()
        session.recorder = recorder
        # Counted from a moment in: the jitter buffer first drops what came while nobody
        # listened (during the tone) and waits for the next packet, which is no loss.
        session.rtp_at_record = None
        session.record_started = session.last_voice = now
        session.next_level = now
        session.deadline = now + step.max_ms / 1000.0
        return None

    def _rtp_counters(self, session):
        """(packets received, lost; ms of audio the jitter buffer discarded and was empty for;
        the worst jitter in ms) of the call's audio stream, or None."""
        if session.gone:
            return None
        try:
            stat = session.call.getStreamStat(session.media_index)
        except pj.Error:
            return None
        rx, jb = stat.rtcp.rxStat, stat.jbuf
        frame_ms = jb.frameSize / G711_BYTES_PER_MS  # the calls are G.711 only
        return (rx.pkt, rx.loss, jb.discard * frame_ms, jb.empty * frame_ms, rx.jitterUsec.max / 1000.0)

    def _close_recording(self, session, end, digit=''):
        """Stop the running recording; its step ends once PJSIP has closed the file (_tick). What
        the stream received meanwhile is logged: what the benchmark counts lost frames with."""
        now = self._rtp_counters(session)
        if now is not None and session.rtp_at_record is not None:
            start = session.rtp_at_record
            LOG.info('%s: recording ended (%s) after %d ms; over its last %d ms RTP received %d packets, lost %d, '
                     'jitter buffer discarded %d ms and was empty for %d ms, jitter up to %.1f ms', session.label, end,
                     (self.clock() - session.record_started) * 1000, (self.clock() - start[5]) * 1000,
                     now[0] - start[0], now[1] - start[1], now[2] - start[2], now[3] - start[3], now[4])
        recorder, session.recorder = session.recorder, None
        if session.audio is not None:
            try:
                session.audio.stopTransmit(recorder)
            except pj.Error:
                pass
        del recorder  # destroys the pjsua recorder, which closes the file soon after
        session.closing = (end, digit, self.clock() + CLOSE_TIMEOUT_S)

    def _recorded(self, session):
        """The result of a recording whose file is complete (or repaired, when PJSIP did not close
        it in time); a recording ended by silence loses the silent tail."""
        (end, digit, _deadline), session.closing = session.closing, None
        path = session.step.path
        try:
            length = audio_files.duration_ms(path) if audio_files.closed(path) else audio_files.repair(path)
            if end == 'silence':
                length = audio_files.cut(path, (session.last_voice - session.record_started) * 1000 + SILENCE_KEPT_MS)
        except (OSError, ValueError) as e:
            LOG.error('%s: recording %s unreadable: %s', session.label, path, e)
            length = 0
        return StepResult(end=end, digits=digit, duration_ms=length, hung_up=session.gone)

    def _collect(self, session, step):
        for index, digit in enumerate(session.digits):
            if step.terminator and digit == step.terminator:
                session.digits = session.digits[index + 1:]
                return StepResult(end='terminator', digits=session.collected)
            session.collected += digit
            if len(session.collected) >= step.max_digits:
                session.digits = session.digits[index + 1:]
                return StepResult(end='max', digits=session.collected)
        session.digits = ''
        timeout = step.next_timeout_ms if session.collected else step.first_timeout_ms
        session.deadline = self.clock() + timeout / 1000.0
        return None

    def _hangup(self, session, step):
        self._stop_player(session)
        self._stop_hold(session)
        if session.gone or session.ended:
            return
        session.ended = True
        prm = pj.CallOpParam()
        if not session.answered:
            prm.statusCode = step.code
            prm.reason = step.reason
            for name, value in step.headers:
                header = pj.SipHeader()
                header.hName = name
                header.hValue = value
                prm.txOption.headers.append(header)
        try:
            session.call.hangup(prm)
        except pj.Error as e:
            LOG.error('%s: cannot hang up: %s', session.label, e.info())

    # ------------------------------------------------------------------------ bridges
    def _bridge(self, session, step):
        """Place the leg of a Bridge through Kamailio; the caller hears ``hold`` meanwhile."""
        if self.leg_account is None:
            LOG.error('%s: no Kamailio to place a call through (kamailio_uri)', session.label)
            return StepResult(end='failed', code=503)
        if self._wait_for_media(session):
            return None
        headers = [('X-Voxplane-Origin', step.origin), ('X-Voxplane-Call', session.call_id)] + list(session.identity)
        session.ringing, session.leg, session.leg_audio, session.leg_code, session.leg_failure = {}, None, None, 0, 500
        for user in (step.user,) + step.also:
            leg = _Call(self, self.leg_account)
            prm = pj.CallOpParam(True)
            for name, value in headers:
                header = pj.SipHeader()
                header.hName = name
                header.hValue = value
                prm.txOption.headers.append(header)
            uri = 'sip:%s@%s' % (user, session.domain)
            try:
                leg.makeCall(uri, prm)
            except pj.Error as e:
                leg.thisown = False  # a call that never got an id must not be destroyed: pjsua asserts
                LOG.error('%s: cannot call %s: %s', session.label, uri, e.info())
                continue
            LOG.info('%s: calling %s (%s)', session.label, uri, step.origin)
            self.legs[leg] = session
            session.ringing[leg] = [user, None]
        if not session.ringing:
            return StepResult(end='failed', code=500)
        session.deadline = self.clock() + step.ring_ms / 1000.0
        if step.hold:
            self._hold(session, step.hold)
        else:
            self._stop_hold(session)
        return None

    def _hold(self, session, prompts):
        """Music on hold: ``prompts`` looped into the call; the same music already playing goes on."""
        if session.hold is not None and session.hold[0] == prompts:
            return
        self._stop_hold(session)
        files = self.files.files(prompts, session.language, session.tenant)
        if not files or session.audio is None:
            return
        player = pj.AudioMediaPlayer()
        try:
            if len(files) == 1:
                player.createPlayer(files[0], 0)
            else:
                player.createPlaylist(files, '', 0)
            player.startTransmit(session.audio)
        except pj.Error as e:
            LOG.error('%s: cannot play %s: %s', session.label, files, e.info())
            return
        session.hold = (prompts, player)

    def _stop_hold(self, session):
        hold, session.hold = session.hold, None
        if hold is not None and session.audio is not None:
            try:
                hold[1].stopTransmit(session.audio)
            except pj.Error:
                pass

    def _leg_event(self, kind, leg):
        """A call a Bridge placed changed: the first one answered is connected (the others are
        ended); the step fails when the last one ringing fails."""
        session = self.legs[leg]
        try:
            info = leg.getInfo()
        except pj.Error:
            info = None
        if info is None or info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            del self.legs[leg]
            code = (info.lastStatusCode if info is not None else 0) or 500
            if session.leg is leg:
                LOG.info('%s: %s ended', session.label, session.leg_user)
                result = StepResult(end='ended', code=200, user=session.leg_user)
                self._end_bridge(session, result if isinstance(session.step, (Bridge, Talk)) else None)
            elif leg in session.ringing:
                LOG.info('%s: %s answered %d', session.label, session.ringing.pop(leg)[0], code)
                session.leg_failure = code
                if not session.ringing and session.leg is None:
                    self._end_bridge(session, StepResult(end='failed', code=code))
            return
        ringing = session.ringing.get(leg)
        if ringing is None or session.leg is not None:
            return
        if kind == 'media':
            for index, media in enumerate(info.media):
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    ringing[1] = leg.getAudioMedia(index)
                    break
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and ringing[1] is not None:
            session.leg, session.leg_user, session.leg_audio = leg, ringing[0], ringing[1]
            del session.ringing[leg]
            for other in list(session.ringing):
                self._hangup_leg(other)  # its end comes as an event, after the step has moved on
            session.ringing = {}
            self._stop_hold(session)
            try:
                session.audio.startTransmit(session.leg_audio)
                session.leg_audio.startTransmit(session.audio)
            except pj.Error as e:
                LOG.error('%s: cannot connect the calls: %s', session.label, e.info())
            session.leg_code = 200
            session.deadline = None
            LOG.info('%s: connected to %s', session.label, session.leg_user)
            if session.step.until_answer:
                self._finish(session, StepResult(end='answered', code=200, user=session.leg_user))

    def _end_bridge(self, session, result):
        """The running Bridge is over: the calls part, its calls are ended (those not ended yet),
        and the flow goes on with ``result`` (None: the step that runs is none of the bridge's)."""
        leg, audio, session.leg, session.leg_audio, session.leg_code = session.leg, session.leg_audio, None, None, 0
        ringing, session.ringing = list(session.ringing), {}
        self._stop_player(session)
        if audio is not None:
            for source, sink in ((session.audio, audio), (audio, session.audio)):
                if source is not None and sink is not None:
                    try:
                        source.stopTransmit(sink)
                    except pj.Error:
                        pass
        for other in ringing + [leg]:
            if other is not None and other in self.legs:
                self._hangup_leg(other)
        self._finish(session, result)

    def _hangup_leg(self, leg):
        try:
            leg.hangup(pj.CallOpParam())
        except pj.Error:
            pass

    # ------------------------------------------------------------------------ conference rooms
    def _conference(self, session, step):
        """Ask the front to let the call into its room; the answer ('joined') goes on."""
        if self._wait_for_media(session):
            return None
        self.members += 1
        session.member = '%d/%d' % (self.settings.port, self.members)
        spec = step.room
        self.joining[session.member] = session
        session.deadline = self.clock() + JOIN_TIMEOUT_S
        self.room_link.send({
            't': 'join', 'key': spec.key, 'tenant': spec.tenant, 'number': spec.number, 'member': session.member,
            'bus': self.bus_sockets.address, 'moderator': bool(step.moderator), 'muted': bool(step.muted),
            'rules': dict((name, getattr(spec, name)) for name in ROOM_RULES)})
        return None

    def _room_message(self, message):
        kind = message.get('t')
        if kind == 'joined':
            self._joined(message)
        elif kind == 'room':
            self._room_table(message)

    def _joined(self, message):
        session = self.joining.pop(message.get('member'), None)
        if session is None or not isinstance(session.step, Conference):
            return
        spec = session.step.room
        if not message.get('ok'):
            session.member = None
            LOG.info('%s: room %s is full (%d)', session.label, spec.key, spec.max_participants)
            self._finish(session, StepResult(end='full'))
            return
        room = self.rooms.get(spec.key)
        if room is None:
            room = self.rooms[spec.key] = _Room(spec)
        room.local[session.member] = session
        session.room = room
        session.deadline = None
        LOG.info('%s: joined room %s (%s%s), %d in it', session.label, spec.key,
                 'moderator' if session.step.moderator else 'participant', ', muted' if session.step.muted else '',
                 message.get('count', 0))

    def _leave_room(self, session):
        """Take the call out of its room here at once (or out of the queue to join it), and tell the
        front (the others' tables follow)."""
        room, session.room = session.room, None
        member, session.member = session.member, None
        if member is None:
            return
        if room is None:
            if self.joining.pop(member, None) is not None:
                self.room_link.send({'t': 'leave', 'key': session.step.room.key, 'member': member})
            return
        room.local.pop(member, None)
        left = [row for row in (room.table or {}).get('members', ()) if row[0] != member]
        LOG.info('%s: left room %s, %d in it', session.label, room.spec.key, len(left))
        self.room_link.send({'t': 'leave', 'key': room.spec.key, 'member': member})
        self._apply_room(room)

    def _room_table(self, message):
        room = self.rooms.get(message.get('key'))
        if room is None:
            return
        room.table = message
        members = set(row[0] for row in message.get('members', ()))
        for member in message.get('ended', ()):
            session = room.local.pop(member, None)
            if session is not None:
                session.room = session.member = None
                self._finish(session, StepResult(end='ended'))
        if len(room.local) and room.spec.announce_join_leave and message.get('tone'):
            key, hearing = message['tone']
            self._tone(room, key, [room.local[m] for m in hearing if m in room.local])
        for member in [m for m in room.local if m not in members]:
            # The front no longer counts it (a worker restart, a lost message): it is not heard.
            LOG.warning('room %s: %s is no longer in the room', room.spec.key, member)
        if message.get('ended'):
            LOG.info('room %s ended with its moderator', room.spec.key)
        self._apply_room(room)

    def _apply_room(self, room):
        """Make the bridge's links, the bus and the music what the room's last table says, for the
        members in this worker."""
        table = room.table or {}
        here = dict((m, s) for m, s in room.local.items() if s.audio is not None)
        rows = [row for row in table.get('members', ()) if row[0] in here or row[1] != self.settings.port]
        sources = set(table.get('sources', ())) & set(row[0] for row in rows)
        remote = [row for row in rows if row[1] != self.settings.port]
        wanted = set((here[a], here[b]) for a in here for b in here if a != b and a in sources)
        for source, sink in room.links - wanted:
            self._transmit(source.audio, sink.audio, False)
        for source, sink in wanted - room.links:
            self._transmit(source.audio, sink.audio, True)
        room.links = wanted
        # The bus: this worker's speakers go to the workers of the room's other members; what the
        # other workers' speakers say is heard by every member here.
        speakers = set(s for m, s in here.items() if m in sources) if remote else set()
        heard_from = frozenset(tuple(row[2]) for row in remote if row[0] in sources)
        listeners = set(here.values()) if heard_from else set()
        if (speakers or listeners) and room.bus is None:
            room.bus = RoomBus(self.bus_sockets, room.spec.key)
            try:
                room.bus.create('room-%s' % room.spec.key)
            except pj.Error as e:
                LOG.error('room %s: no bus port: %s', room.spec.key, e.info())
                room.bus = None
        if room.bus is not None:
            room.bus.peers = tuple(sorted(set(tuple(row[2]) for row in remote))) if speakers else ()
            room.bus.heard = heard_from
            for member in room.bus_sources - speakers:
                self._transmit(member.audio, room.bus, False)
            for member in speakers - room.bus_sources:
                self._transmit(member.audio, room.bus, True)
            for member in room.bus_sinks - listeners:
                self._transmit(room.bus, member.audio, False)
            for member in listeners - room.bus_sinks:
                self._transmit(room.bus, member.audio, True)
            room.bus_sources, room.bus_sinks = speakers, listeners
        self._apply_music(room, set(here[m] for m in table.get('music', ()) if m in here))
        if not room.local:
            self._stop_room(room)
            self.rooms.pop(room.spec.key, None)

    def _apply_music(self, room, music):
        if music and room.music is None:
            first = next(iter(music))
            files = self.files.files([room.spec.music or Prompt('music')], first.language, first.tenant)
            if files:
                room.music = pj.AudioMediaPlayer()
                try:
                    room.music.createPlayer(files[0], 0)
                except pj.Error as e:
                    LOG.error('room %s: cannot play %s: %s', room.spec.key, files[0], e.info())
                    room.music = None
        for member in room.music_sinks - music:
            self._transmit(room.music, member.audio, False)
        for member in music - room.music_sinks:
            self._transmit(room.music, member.audio, True)
        room.music_sinks = music if room.music is not None else set()
        if not music and room.music is not None:
            room.music = None

    def _tone(self, room, key, members):
        members = [m for m in members if m.audio is not None]
        files = self.files.files([Prompt(key)], members[0].language, members[0].tenant) if members else None
        if not files:
            return
        player = _Player(self)
        try:
            player.createPlayer(files[0], pj.PJMEDIA_FILE_NO_LOOP)
        except pj.Error as e:
            LOG.error('room %s: cannot play %s: %s', room.spec.key, files[0], e.info())
            return
        for member in members:
            self._transmit(player, member.audio, True)
        room.tones.append((player, members))

    def _stop_room(self, room):
        for source, sink in room.links:
            self._transmit(source.audio, sink.audio, False)
        for member in room.music_sinks:
            self._transmit(room.music, member.audio, False)
        if room.bus is not None:
            for member in room.bus_sources:
                self._transmit(member.audio, room.bus, False)
            for member in room.bus_sinks:
                self._transmit(room.bus, member.audio, False)
            room.bus.peers, room.bus.heard = (), frozenset()
            self.bus_sockets.buses.pop(room.bus.header[4:], None)
            if room.bus.frames:
                LOG.info('room %s: bus %d frames, %d missing', room.spec.key, room.bus.frames, room.bus.missing)
        room.links, room.music, room.music_sinks, room.tones = set(), None, set(), []
        room.bus, room.bus_sources, room.bus_sinks = None, set(), set()

    @staticmethod
    def _transmit(source, sink, start):
        if source is None or sink is None:
            return
        try:
            if start:
                source.startTransmit(sink)
            else:
                source.stopTransmit(sink)
        except pj.Error:
            pass

    def _release(self, session):
        if session.room is not None or session.member is not None:
            self._leave_room(session)
        for leg in list(session.ringing) + [session.leg]:
            if leg is not None and leg in self.legs:
                self._hangup_leg(leg)
        session.ringing, session.leg, session.leg_audio = {}, None, None
        self._stop_player(session)
        self._stop_hold(session)
        session.recorder = None
        session.audio = None
