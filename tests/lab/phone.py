# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A test phone on PJSIP's Python binding (pjsua2, the wheel the media service runs on): it
calls from a loopback address of its own, plays a WAV file into the call over looped silence
(a sender without an audio source sends no DTMF), records everything it hears, sends RFC 4733
DTMF, and keeps the final answer of a call it placed with its headers. It calls either straight
to a target (``dial(uri, target)``: a loose route to it, as Kamailio reaches the media service) or,
once it has REGISTERed one SIP account with digest authentication (``register``), through that
registrar as a real phone does; a registered phone answers the calls it gets busy (486), ringing
until cancelled, or with 200 (``answer``), and keeps each INVITE it received.

PJSIP allows one endpoint per process: ``endpoint()`` makes it on first use and everything runs
in the thread that made it; a phone waits by polling PJSIP (``Phone.wait``). Every wait is
bounded. ``close_all()`` (registered with atexit) ends calls and destroys the endpoint.

    phone = Phone('127.0.0.30')
    call = phone.dial('sip:10@acme.sip.test', '127.0.0.40:5080', headers={'X-Voxplane-Media': 'voicemail;...'},
                      play=tones_wav, record=tmp / 'heard.wav')
    call.wait_answered(5); call.dtmf('#'); call.hangup(); call.wait_ended(5)

    desk = Phone('127.0.0.31', user='bert.desk')
    assert desk.register('127.0.0.20:5060', 'acme.sip.test', 'bert-desk-pw', answer='busy')
    call = desk.dial('sip:*86@acme.sip.test', record=tmp / 'mailbox.wav')   # through the registrar
"""

import atexit
import gc
import os
import tempfile
import time

import pjsua2 as pj

from lab import audio
from lab.audio import write_tones

_STATE = {'endpoint': None, 'phones': [], 'silence': None, 'answerer': None, 'due': []}
POLL_MS = 10


def endpoint():
    """The process's PJSIP endpoint (null audio device, 8 kHz bridge, G.711 only)."""
    if _STATE['endpoint'] is None:
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.maxCalls = 256
        cfg.uaConfig.userAgent = 'voxplane-lab-phone'
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.channelCount = 1
        cfg.medConfig.maxMediaPorts = 600
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.logConfig.level = 1
        cfg.logConfig.consoleLevel = 1
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, 0)
        ep.codecSetPriority('PCMA/8000/1', 255)
        ep.codecSetPriority('PCMU/8000/1', 254)
        ep.libStart()
        _STATE['endpoint'] = ep
        folder = tempfile.mkdtemp(prefix='voxplane-phone-')
        _STATE['silence'] = write_tones(os.path.join(folder, 'silence.wav'), [(0, 1000)])
        atexit.register(close_all)
    return _STATE['endpoint']


def poll(seconds):
    """Let PJSIP work for ``seconds``."""
    ep = endpoint()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ep.libHandleEvents(POLL_MS)
        _answer_due()


def _answer_due():
    """Answer the calls a phone let ring (Phone.answer_calls) whose time has come."""
    now = time.monotonic()
    for item in [d for d in _STATE['due'] if d[0] <= now]:
        _STATE['due'].remove(item)
        _at, pj_call, code = item
        answer = pj.CallOpParam()
        answer.statusCode = code
        try:
            if code < 300:
                pj_call.answer(answer)
            else:
                pj_call.hangup(answer)
        except pj.Error:
            pass


def wait(predicate, timeout):
    """Poll PJSIP until ``predicate()`` is true or ``timeout`` seconds pass; its last value."""
    ep = endpoint()
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        ep.libHandleEvents(POLL_MS)
        _answer_due()
        value = predicate()
    return value


def hang_up_all(settle=1.0):
    """End every call of every phone (a test that failed half-way leaves its calls up, and the
    wheel's pjsua holds 4 calls a process), then let PJSIP settle for ``settle`` seconds."""
    _STATE['due'] = []
    for phone in list(_STATE['phones']):
        for call in phone.calls:
            if call.pj_call is not None:
                call.hangup()
    poll(settle)


def close_all():
    ep = _STATE['endpoint']
    if ep is None:
        return
    for phone in list(_STATE['phones']):
        phone.close()
    poll(0.3)
    _STATE['phones'] = []
    _STATE['endpoint'] = None
    gc.collect()  # every pjsua2 object must be gone before libDestroy
    ep.libDestroy()


class _Account(pj.Account):
    """An account of a lab phone. A call to a registered account goes to its phone; any other
    call to the phone that answers calls for all (``Phone.answer_calls``: it stands in for
    Kamailio, and pjsua may pick any account of the process for a call), else to the account's
    own phone."""

    def __init__(self, phone=None):
        pj.Account.__init__(self)
        self.phone = phone

    def onIncomingCall(self, prm):
        phone = self.phone
        if phone is None or phone.registered is not self:
            phone = _STATE['answerer'] if _STATE['answerer'] is not None else phone
        if phone is not None:
            phone.incoming_call(self, prm)


class _Call(pj.Call):
    def __init__(self, phone, account, call_id=pj.PJSUA_INVALID_ID):
        pj.Call.__init__(self, account, call_id)
        self.phone = phone
        self.test_call = None

    def onCallState(self, prm):
        info = self.getInfo()
        call = self.test_call
        call.states.append((info.state, info.lastStatusCode))
        try:
            if prm.e.type == pj.PJSIP_EVENT_TSX_STATE:
                rdata = prm.e.body.tsxState.src.rdata
                if rdata.wholeMsg.startswith('SIP/2.0'):
                    call.responses.append(rdata.wholeMsg)
        except (AttributeError, pj.Error):
            pass
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            call.final = (info.lastStatusCode, info.lastReason)
            call.ended_at = time.monotonic()
            call.stop_media()

    def onCallMediaState(self, prm):
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.test_call.media_index = index
                self.test_call.media_up(self.getAudioMedia(index))
                return


# How a phone answers the calls it gets, by name: (its final response, seconds it rings first).
# 'ring' rings until the caller gives up.
ANSWERS = {'busy': (486, 0), 'ring': (480, 3600), 'answer': (200, 0)}


class Call(object):
    """A call the phone placed (or received: ``request`` is the INVITE's text): its
    states, the answers it got, what it heard."""

    def __init__(self, phone, play, record, loop=False):
        self.phone = phone
        self.play_file = play
        self.play_loop = loop
        self.media_index = 0
        self.record_file = record
        self.states = []
        self.responses = []
        self.final = None
        self.ended_at = None
        self.audio = None
        self.player = None
        self.silence = None
        self.recorder = None
        self.record_started = None
        self.pj_call = None
        self.request = None      # the INVITE of a call the phone received
        self.arrived = time.monotonic()  # when it was placed or came in

    # media ---------------------------------------------------------------
    def media_up(self, audio):
        if self.audio is not None:
            return
        self.audio = audio
        if self.record_file:
            self.record_started = time.time()   # wall clock of the recording's first sample
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(str(self.record_file))
            audio.startTransmit(self.recorder)
        # The (null) speaker listens, as a phone's would: a stream nobody reads fills its jitter
        # buffer and discards every frame.
        audio.startTransmit(endpoint().audDevManager().getPlaybackDevMedia())
        # Silence, looped, always: a call without an audio source sends no DTMF (nor RTP).
        self.silence = pj.AudioMediaPlayer()
        self.silence.createPlayer(str(_STATE['silence']), 0)
        self.silence.startTransmit(audio)
        self.play(self.play_file, loop=self.play_loop)

    def play(self, path, loop=False):
        """Send ``path`` into the call from now on, once (or looped), over the silence."""
        if self.audio is None:
            self.play_file = path
            return
        if self.player is not None:
            try:
                self.player.stopTransmit(self.audio)
            except pj.Error:
                pass
            self.player = None
        if path is not None:
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(str(path), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
            self.player.startTransmit(self.audio)

    def stop_media(self):
        self.player = None
        self.silence = None
        self.recorder = None  # closes the recording: its header is complete
        self.audio = None

    # signalling ----------------------------------------------------------
    @property
    def state(self):
        return self.states[-1][0] if self.states else None

    def answered(self):
        return any(state == pj.PJSIP_INV_STATE_CONFIRMED for state, _code in self.states)

    def early(self):
        return any(state == pj.PJSIP_INV_STATE_EARLY and code == 183 for state, code in self.states)

    def wait_answered(self, timeout=5):
        return wait(lambda: self.answered() or self.final is not None, timeout) and self.answered()

    def wait_media(self, timeout=5):
        return wait(lambda: self.audio is not None or self.final is not None, timeout) and self.audio is not None

    def wait_ended(self, timeout=10):
        return wait(lambda: self.final is not None, timeout) and self.final

    def dtmf(self, digits, gap=0.25):
        """Send ``digits`` as RFC 4733 telephone events, one after the other."""
        for digit in digits:
            if self.final is not None:
                return
            self.pj_call.dialDtmf(digit)
            poll(gap)

    def wait_heard(self, reference, timeout=15, after_ms=0, share=0.8):
        """Wait until the call has heard ``reference`` (a WAV file: a prompt) from ``after_ms`` of
        its recording on (lab.audio.heard: ``share`` of its pieces); the position (ms) where it
        ends, or None. The recording reaches the disk in 4 KB pieces (a quarter of a second)."""
        found = []

        def heard():
            if self.record_file is None or not os.path.exists(str(self.record_file)):
                return False
            try:
                # A little before after_ms: prompts of one step follow each other without a gap.
                end, matched = audio.heard(reference, self.record_file, max(0, after_ms - 200))
            except ValueError:
                return False
            if end is not None and matched >= share:
                found.append(end)
                return True
            return False
        wait(lambda: heard() or self.final is not None, timeout)
        if not found and self.final is not None:
            poll(0.3)  # the rest of the recording reaches the disk once the call has ended
            heard()
        return found[-1] if found else None

    def rtp(self):
        """The call's RTP counters now: packets sent and received, received ones lost, and the
        milliseconds of audio its jitter buffer discarded and was empty for; None without a stream."""
        if self.final is not None or self.audio is None:
            return None
        try:
            stat = self.pj_call.getStreamStat(self.media_index)
        except pj.Error:
            return None
        frame_ms = stat.jbuf.frameSize / 8.0  # G.711: 8 bytes a millisecond
        return {'sent': stat.rtcp.txStat.pkt, 'received': stat.rtcp.rxStat.pkt, 'lost': stat.rtcp.rxStat.loss,
                'discarded_ms': stat.jbuf.discard * frame_ms, 'empty_ms': stat.jbuf.empty * frame_ms}

    def heard_ms(self):
        """How much the recording of what the call heard holds (ms)."""
        try:
            return audio.duration_ms(self.record_file)
        except (OSError, ValueError):
            return 0

    def hangup(self):
        if self.final is None:
            try:
                self.pj_call.hangup(pj.CallOpParam())
            except pj.Error:
                pass

    def final_response(self):
        """The text of the final answer to the INVITE (a failure or the 200), or None."""
        finals = [r for r in self.responses if not r.startswith('SIP/2.0 1')]
        return finals[-1] if finals else None


class Phone(object):
    """A SIP phone on ``address`` (UDP, ``port`` or a free one; its RTP on the same address)."""

    def __init__(self, address, user='phone', port=0, domain=None, password=None):
        """``domain`` and ``password``: the calls it places without registering are those of the
        SIP account <user>@<domain> (its From, and the digest answer to Kamailio's challenge)."""
        ep = endpoint()
        self.address = address
        config = pj.TransportConfig()
        config.boundAddress = address
        config.port = port
        self.transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, config)
        self.port = ep.transportGetInfo(self.transport_id).localName.rsplit(':', 1)[1]
        self.user = user
        self.domain, self.password = domain, password
        self.accounts = {}  # target -> pj.Account whose route set sends to it
        self.calls = []
        self.registered = None  # the account register() made: calls without a target go through it
        # How it answers the calls it gets (answer_calls, register): a rule, what it plays and records.
        self.answer_rule = lambda _request: ANSWERS['answer']
        self.answer_play, self.answer_record_dir, self.answer_loop = None, None, True
        self.incoming = []  # the calls it got, oldest first
        _STATE['phones'].append(self)

    def register(self, registrar, domain, password, answer='busy', play=None, expires=300, timeout=5, username=None):
        """REGISTER sip:<username>@<domain> (default: the phone's user) at ``registrar`` (host:port,
        Kamailio) with digest authentication, the phone's address as its Contact. The calls it gets
        from then on are answered as ``answer`` says (a name of ANSWERS: busy 486, ring until
        cancelled, answer 200 with ``play`` looped; None: as answer_calls said). True once the
        registrar answered 200 within ``timeout`` s."""
        username = username or self.user
        config = pj.AccountConfig()
        config.idUri = 'sip:%s@%s' % (username, domain)
        config.regConfig.registrarUri = 'sip:%s' % domain
        config.regConfig.timeoutSec = expires
        config.sipConfig.transportId = self.transport_id
        config.sipConfig.proxies.append('sip:%s;transport=udp;lr' % registrar)
        config.sipConfig.authCreds.append(pj.AuthCredInfo('digest', '*', username, 0, password))
        # On loopback nothing is behind NAT: the Contact and Via stay what the phone bound.
        config.natConfig.contactRewriteUse = 0
        config.natConfig.viaRewriteUse = 0
        config.natConfig.sdpNatRewriteUse = 0
        config.mediaConfig.transportConfig.boundAddress = self.address
        if answer is not None:
            self.answer_rule, self.answer_play, self.answer_loop = (lambda _request: ANSWERS[answer]), play, True
        account = _Account(self)
        account.create(config)
        self.registered = account
        wait(lambda: account.getInfo().regStatus >= 200, timeout)
        return account.getInfo().regStatus == 200

    def unregister(self, timeout=5):
        """Remove the binding (REGISTER with Expires 0); True once the registrar took it."""
        account = self.registered
        if account is None:
            return True
        account.setRegistration(False)
        wait(lambda: not account.getInfo().regIsActive, timeout)
        return not account.getInfo().regIsActive

    def _account(self, target):
        """The phone's account for calls sent to ``target``: a loose route to it (as Kamailio sends
        the media service its INVITEs), so the request URI stays the one dialled."""
        if target not in self.accounts:
            config = pj.AccountConfig()
            config.idUri = ('sip:%s@%s' % (self.user, self.domain) if self.domain
                            else 'sip:%s@%s:%s' % (self.user, self.address, self.port))
            config.sipConfig.transportId = self.transport_id
            config.sipConfig.proxies.append('sip:%s;transport=udp;lr' % target)
            if self.password:
                config.sipConfig.authCreds.append(pj.AuthCredInfo('digest', '*', self.user, 0, self.password))
            config.mediaConfig.transportConfig.boundAddress = self.address
            account = _Account(self)
            account.create(config)
            self.accounts[target] = account
        return self.accounts[target]

    def dial(self, uri, target=None, headers=None, play=None, record=None, from_uri=None, loop=False):
        """Call ``uri`` by sending the INVITE to ``target`` (host:port), or without one through
        the registered account (its registrar, its credentials), with extra ``headers``;
        ``play`` (a WAV file, ``loop``ed or once) is sent from the moment the media is up."""
        call = Call(self, play, record, loop)
        pj_call = _Call(self, self._account(target) if target else self.registered)
        pj_call.test_call = call
        call.pj_call = pj_call
        prm = pj.CallOpParam(True)
        for name, value in (headers or {}).items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            prm.txOption.headers.append(header)
        if from_uri:
            prm.txOption.localUri = from_uri
        try:
            pj_call.makeCall(uri, prm)
        except pj.Error:
            pj_call.thisown = False  # a call that never got an id must not be destroyed: pjsua asserts
            raise
        self.calls.append(call)
        return call

    def answer_calls(self, play=None, record_dir=None, loop=True, answer=None):
        """From now on answer every call that comes in (to this phone, or to any account of the
        lab's phones: the phone stands in for Kamailio and the phones behind it), sending ``play``
        (looped) and recording each to ``record_dir``/incoming-<n>.wav; ``incoming`` lists them.
        ``answer(request text)`` -> (final code, seconds it rings first); default (200, 0)."""
        self.answer_play, self.answer_record_dir, self.answer_loop = play, record_dir, loop
        self.answer_rule = answer or (lambda _request: (200, 0))
        self.incoming = []
        if 'incoming' not in self.accounts:
            config = pj.AccountConfig()
            config.idUri = 'sip:%s@%s:%s' % (self.user, self.address, self.port)
            config.sipConfig.transportId = self.transport_id
            config.mediaConfig.transportConfig.boundAddress = self.address
            account = _Account(self)
            account.create(config)
            self.accounts['incoming'] = account
        _STATE['answerer'] = self

    def incoming_call(self, account, prm):
        record = None
        if self.answer_record_dir is not None:
            record = os.path.join(str(self.answer_record_dir), 'incoming-%d.wav' % len(self.incoming))
        call = Call(self, self.answer_play, record, self.answer_loop)
        call.request = prm.rdata.wholeMsg
        pj_call = _Call(self, account, prm.callId)
        pj_call.test_call = call
        call.pj_call = pj_call
        self.calls.append(call)
        self.incoming.append(call)
        code, ring_s = self.answer_rule(call.request)
        answer = pj.CallOpParam()
        answer.statusCode = 180 if ring_s else code
        if code < 300 or ring_s:
            pj_call.answer(answer)
        else:
            pj_call.hangup(answer)
        if ring_s:
            _STATE['due'].append((time.monotonic() + ring_s, pj_call, code))

    def wait_incoming(self, count=1, timeout=10):
        """Wait until ``count`` calls came in; the last of them, or None."""
        wait(lambda: len(self.incoming) >= count, timeout)
        return self.incoming[count - 1] if len(self.incoming) >= count else None

    def close(self):
        if _STATE['answerer'] is self:
            _STATE['answerer'] = None
        for call in self.calls:
            call.hangup()
        poll(0.2)
        for call in self.calls:
            call.stop_media()
            if call.pj_call is not None:
                call.pj_call.test_call = None
                # pjsua frees a call's slot when it ends; the wrapper of an incoming call that ended
                # keeps a stale id, and destroying it asserts in pjsua2 (aborting the test run).
                call.pj_call.thisown = False
            call.pj_call = None
        self.calls = []
        for account in self.accounts.values():
            account.shutdown()
        self.accounts = {}
        if self.registered is not None:
            self.registered.shutdown()
            self.registered = None
        self.incoming = []
        if self.transport_id is not None:
            # pjsua holds 8 transports a process: a suite that opens phone after phone needs them back.
            try:
                endpoint().transportClose(self.transport_id)
            except pj.Error:
                pass
            self.transport_id = None
        if self in _STATE['phones']:
            _STATE['phones'].remove(self)
