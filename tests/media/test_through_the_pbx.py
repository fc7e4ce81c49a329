# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calls through the PBX to its media service, with real audio both ways: Kamailio deployed by its
role, rtpengine, the media service and one directory (lab.media.pbx_with_media, pbx_tenants.yml:
acme relays every call's media, so rtpengine carries all of acme's audio); pjsua2 phones that
REGISTER with digest and call through Kamailio (lab.phone); a raw SIP subscriber for the
message-waiting lamp (lab.mwi). Audio is checked by frequency (lab.audio).

- a call to a busy extension reaches its mailbox through rtpengine: the caller hears the greeting,
  leaves the test tones, the directory holds caller and reason (user-busy) and the WAV the tones;
  the lamp goes on (NOTIFY bodies), the owner dials *86 from its phone, hears "one new message"
  and the tones, deletes the message, and the lamp goes off;
- a call nobody answers reaches the mailbox for no-answer;
- a number plays an announcement, then the call goes on to the announcement's destination; a
  recording replaced with the announcement module (ansible-playbook) is what the next call hears;
- a phone cannot reach another tenant's mailbox: not with its own X-Voxplane-Media header (the
  router replaces it, and strips it from calls that do not go to the service), not by dialling
  the other tenant's URI, not by calling the service directly.
"""

import hashlib
import os
import subprocess

import pytest

from lab import audio
from lab.directories import use_collection
from lab.kamailio import missing_prerequisites as kamailio_missing
from lab.media import missing_prerequisites as media_missing, pbx_with_media
from lab.mwi import Subscriber
from lab.net import pick_loopback_address
# lab.phone.wait polls PJSIP, so that the phones' calls go on while a test waits (the phones run
# in the test's thread: lab.net.wait_for would only sleep, and a call's RTP and SIP would stall).
from lab.phone import Phone, poll, wait
from lab.wire import Message, Peer
from media_suite import HEADER, SILENCE_S, prompt

ACME = 'acme.media.test'
BETA = 'beta.media.test'
HERE = os.path.dirname(os.path.abspath(__file__))
TENANTS = os.path.join(HERE, 'pbx_tenants.yml')
ANNOUNCEMENT = os.path.join(HERE, 'announcement.yml')
ACME_NUMBER = '+49301234560'  # plays the announcement "welcome", then rings Emil (13)
# The replaced announcement: tones the test sequence has none of.
NEW_TONES = ((1300, 400), (0, 100), (600, 400), (0, 100), (1900, 400))


def password(user):
    return '%s-desk-pw' % user.split('.')[0]


class Pbx(object):
    """The three servers and the phones of a test: ``phone`` registers one (closed at the end)."""

    def __init__(self, kamailio, media, relay):
        self.kamailio, self.media, self.relay = kamailio, media, relay
        self.opened = []

    @property
    def registrar(self):
        return '%s:%d' % self.kamailio.target

    def phone(self, user, domain=ACME, answer='busy', play=None):
        """A pjsua2 phone of its own on a fresh loopback address, registered as ``user``."""
        phone = Phone(pick_loopback_address(), user=user)
        self.opened.append(phone)
        assert phone.register(self.registrar, domain, password(user), answer=answer, play=play), \
            'REGISTER of %s failed\n%s' % (user, self.kamailio.log_tail(20))
        return phone

    def subscriber(self, user, domain=ACME):
        subscriber = Subscriber(pick_loopback_address(), self.kamailio.target, user, domain, password(user))
        self.opened.append(subscriber)
        return subscriber

    def close(self):
        for opened in self.opened:
            if isinstance(opened, Phone):
                opened.unregister()
            elif getattr(opened, 'dialog', None) is not None:
                opened.subscribe(expires=0)
            opened.close()
        self.opened = []

    def relay_sessions(self, call_id):
        """rtpengine's view of one call (rtpengine-ctl list sessions <Call-ID>), asked while the
        phones go on with their calls."""
        with subprocess.Popen(['rtpengine-ctl', '-ip', '127.0.0.1', '-port', str(self.relay.cli_port), 'list',
                               'sessions', call_id], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            if not wait(lambda: proc.poll() is not None, 10):
                proc.kill()
            return proc.communicate()[0]


@pytest.fixture(scope='module')
def pbx(tmp_path_factory):
    reason = media_missing() or kamailio_missing()
    if reason:
        pytest.skip(reason)
    with pbx_with_media(kamailio_variables={'provision': False}, media_voicemail_silence_s=SILENCE_S) as servers:
        kamailio, media, relay = servers
        run = kamailio.provision(TENANTS)
        assert run.rc == 0, run
        assert kamailio.wait_for_directory(ACME), kamailio.log_tail()
        folder = tmp_path_factory.mktemp('pbx-audio')
        media.tones = audio.write_tones(str(folder / 'tones.wav'), [(0, 300)] + list(audio.SEQUENCE) + [(0, 300)])
        yield Pbx(kamailio, media, relay)


@pytest.fixture
def lab(pbx):
    yield pbx
    pbx.close()


def greeting_file(media, who, kind):
    """The generated greeting of a mailbox of ``who`` (the service's cache of its speech), once
    the service has spoken it."""
    use_collection()
    from ansible_collections.voxplane.pbx.plugins.module_utils import media_prompts  # pylint: disable=import-outside-toplevel
    text = media_prompts.template('greeting_%s_named' % kind, 'en', who=who)
    digest = hashlib.sha256(('en-gb\0%s' % text).encode('utf-8')).hexdigest()
    return os.path.join(media.storage_dir, 'cache', 'speech', 'en', digest + '.wav')


def sdp_address(message):
    """The connection address of a message's SDP."""
    lines = [line for line in message.body.splitlines() if line.startswith('c=IN IP4 ')]
    assert lines, message.text
    return lines[0].split()[-1]


def assert_relayed(lab, call, answer='SIP/2.0 200'):
    """The media of the caller's call goes through rtpengine: the SDP of its ``answer`` (the 200, or
    the 183 of early media) names rtpengine's address, never the service's (so what the phone hears
    came through rtpengine), and rtpengine holds a session of the call between the phone and the
    service."""
    replies = [Message(r) for r in call.responses if r.startswith(answer)]
    assert replies and replies[-1].body, call.responses
    address = sdp_address(replies[-1])
    assert address == lab.kamailio.address and address != lab.media.address, replies[-1].text
    sessions = lab.relay_sessions(replies[-1].call_id)
    assert lab.media.address in sessions and call.phone.address in sessions, sessions


def wait_message(media, tenant, mailbox, timeout=10):
    return wait(lambda: media.messages(tenant, mailbox), timeout)


def test_a_busy_extensions_caller_leaves_a_message_that_lights_the_lamp_and_its_owner_hears(lab, tmp_path):
    media = lab.media
    bert = lab.phone('bert.desk', answer='busy')  # Bert is on the phone: his desk answers 486
    lamp = lab.subscriber('bert.desk')  # a second device of Bert's watching his mailbox
    answer = lamp.subscribe()
    assert answer.code == 200, (answer.first_line, lamp.transcript())
    assert lamp.lamp(timeout=3) == ('no', 0, 0)

    finn = lab.phone('finn.desk')
    call = finn.dial('sip:11@%s' % ACME, record=tmp_path / 'caller.wav')
    assert bert.wait_incoming(1, 10), 'Bert\'s phone did not ring\n%s' % lab.kamailio.log_tail(20)
    assert call.wait_answered(15), (call.final, lab.kamailio.log_tail(20), media.log_tail(20))
    assert_relayed(lab, call)
    # The generated busy greeting; the hash key skips what is left of it.
    greeting = greeting_file(media, 'Bert Berger', 'busy')
    assert wait(lambda: os.path.exists(greeting), 10), media.log_tail(20)
    assert call.wait_heard(greeting, timeout=15), 'the caller did not hear the busy greeting'
    call.dtmf('#')
    beep = call.wait_heard(prompt(media, 'beep'), timeout=10)
    assert beep, media.log_tail(20)
    call.play(media.tones)
    poll(audio.duration_ms(media.tones) / 1000.0 + 0.3)
    call.dtmf('#')
    assert call.wait_heard(prompt(media, 'message_kept'), timeout=10, after_ms=beep), media.log_tail(20)
    assert call.wait_ended(10) == (200, 'Normal call clearing')

    [message] = wait_message(media, 'acme', '11')
    assert message['folder'] == 'new' and message['doc']['reason'] == 'user-busy', message
    assert message['doc']['caller'] == '14', message  # Finn, as Kamailio presents him inside the tenant
    found, segments = audio.has_sequence(message['path'])
    assert found, segments

    notify = lamp.notifies(3, first=True)
    assert len(notify) == 1, [m.text for _t, m in notify]
    body = notify[0][1].body
    assert 'Messages-Waiting: yes' in body and 'Voice-Message: 1/0' in body, body

    # Bert dials his mailbox from his own phone.
    owner = bert.dial('sip:*86@%s' % ACME, record=tmp_path / 'owner.wav')
    assert owner.wait_answered(10), (owner.final, lab.kamailio.log_tail(20))
    assert_relayed(lab, owner)
    counted = owner.wait_heard(prompt(media, 'new_message_one'), timeout=15)
    assert counted, ('the owner did not hear "one new message"', media.log_tail(12))
    menu = owner.wait_heard(prompt(media, 'main_menu'), timeout=15, after_ms=counted)
    assert menu, media.log_tail(15)
    owner.dtmf('1')
    end_of_message = owner.wait_heard(prompt(media, 'message_menu'), timeout=20, after_ms=menu)
    assert end_of_message, media.log_tail(15)
    found, segments = audio.has_sequence(tmp_path / 'owner.wav')
    assert found, segments  # the same tones, back through rtpengine and G.711 both ways
    owner.dtmf('7')
    assert owner.wait_heard(prompt(media, 'message_deleted'), timeout=10, after_ms=end_of_message)
    owner.hangup()
    owner.wait_ended(10)
    assert media.messages('acme', '11') == []

    # Heard (saved), then deleted: the lamp goes off, in one NOTIFY or two.
    bodies = [m.body for _t, m in lamp.notifies(3)]
    assert bodies, 'no NOTIFY after the message was deleted'
    assert 'Messages-Waiting: no' in bodies[-1] and 'Voice-Message: 0/0' in bodies[-1], bodies


def test_a_call_nobody_answers_reaches_the_mailbox_for_no_answer(lab, tmp_path):
    media = lab.media
    cora = lab.phone('cora.desk', answer='ring')  # rings 5 s (her ring_time), nobody answers
    finn = lab.phone('finn.desk')
    call = finn.dial('sip:12@%s' % ACME, record=tmp_path / 'caller.wav')
    assert cora.wait_incoming(1, 10)
    assert call.wait_answered(15), (call.final, lab.kamailio.log_tail(20))
    assert_relayed(lab, call)
    beep = call.wait_heard(prompt(media, 'beep'), timeout=20)
    assert beep, media.log_tail(20)
    assert call.wait_heard(greeting_file(media, 'Cora Conrad', 'unavailable'), timeout=1)
    call.play(media.tones)
    poll(audio.duration_ms(media.tones) / 1000.0 + 0.3)
    call.hangup()
    call.wait_ended(5)
    [message] = wait_message(media, 'acme', '12')
    assert message['doc']['reason'] == 'no-answer' and message['doc']['caller'] == '14', message
    assert audio.has_sequence(message['path'])[0]
    media.clear_messages('acme', '12')


def test_a_number_plays_its_announcement_then_the_call_goes_on_and_a_new_recording_is_heard_next(lab, tmp_path):
    kamailio, media = lab.kamailio, lab.media
    run = kamailio.playbook(ANNOUNCEMENT, {'directory': kamailio.directory_path, 'src': str(media.tones)})
    assert run.rc == 0 and run.changed == 2, run
    emil = lab.phone('emil.desk', answer='answer')
    finn = lab.phone('finn.desk')

    call = finn.dial('sip:%s@%s' % (ACME_NUMBER, ACME), record=tmp_path / 'first.wav')
    assert call.wait_media(10), (call.final, kamailio.log_tail(20))
    assert_relayed(lab, call, answer='SIP/2.0 183')
    assert emil.wait_incoming(1, audio.duration_ms(media.tones) / 1000.0 + 15), (call.final, kamailio.log_tail(20))
    assert call.wait_answered(5), call.final  # Emil, after the announcement
    assert call.early(), call.states  # the announcement came as early media
    found, segments = audio.has_sequence(tmp_path / 'first.wav')
    assert found, segments
    call.hangup()
    call.wait_ended(5)

    new_tones = audio.write_tones(str(tmp_path / 'new.wav'), [(0, 300)] + list(NEW_TONES) + [(0, 300)])
    run = kamailio.playbook(ANNOUNCEMENT, {'directory': kamailio.directory_path, 'src': new_tones})
    assert run.rc == 0 and run.changed == 1, run  # the recording only
    call = finn.dial('sip:%s@%s' % (ACME_NUMBER, ACME), record=tmp_path / 'second.wav')
    assert emil.wait_incoming(2, audio.duration_ms(new_tones) / 1000.0 + 15), (call.final, kamailio.log_tail(20))
    assert call.wait_answered(5), call.final
    call.hangup()
    call.wait_ended(5)
    found, segments = audio.has_sequence(tmp_path / 'second.wav', NEW_TONES)
    assert found, segments
    assert not audio.has_sequence(tmp_path / 'second.wav')[0], 'the old recording was played'


def test_a_phone_cannot_reach_another_tenants_mailbox(lab, tmp_path):
    kamailio, media = lab.kamailio, lab.media
    anna = lab.phone('anna.desk', answer='ring')
    forged = {HEADER: 'mailbox;mailbox=20;pin=no'}  # beta's box, without its PIN

    # *86 at beta's domain with the service's header: the router sends Anna to her own box.
    offset = media.log_size()
    call = anna.dial('sip:*86@%s' % BETA, headers=forged, record=tmp_path / 'own.wav')
    assert call.wait_answered(10), (call.final, kamailio.log_tail(20))
    assert call.wait_heard(prompt(media, 'no_messages'), timeout=15), media.log_tail(15)
    call.hangup()
    call.wait_ended(5)
    started = [line for line in media.log_since(offset).splitlines() if line.endswith(': started')]
    assert len(started) == 1 and '(mailbox *86@%s;mailbox=10;pin=no, from 10)' % ACME in started[0], started

    # Beta's mailbox number: the router routes by the caller's tenant, and acme has no 20.
    call = anna.dial('sip:20@%s' % BETA, headers=forged)
    assert call.wait_ended(10)[0] == 404, call.final

    # A second binding of Anna's whose Path leads to the service and whose contact is beta's box:
    # a call to Anna reaches the service there, but never with the caller's header.
    binding = Peer(pick_loopback_address(), kamailio.target)
    lab.opened.append(binding)
    trap = ['Contact: <sip:20@%s>' % BETA, 'Path: <sip:%s;lr>' % media.target]
    _challenge, answer, _params = binding.authenticate('REGISTER', 'anna.desk', ACME, password('anna.desk'),
                                                       headers=trap + ['Expires: 60'], contact=False)
    assert answer is not None and answer.code == 200, (answer and answer.first_line, binding.transcript[-2:])
    offset = media.log_size()
    finn = lab.phone('finn.desk')
    call = finn.dial('sip:10@%s' % ACME, headers=forged)
    assert wait(lambda: 'refused: 400' in media.log_since(offset), 10), (media.log_tail(10), kamailio.log_tail(30))
    ringing = anna.wait_incoming(1, 10)
    assert ringing is not None, kamailio.log_tail(20)
    assert HEADER.lower() not in ringing.request.lower(), ringing.request
    call.hangup()
    call.wait_ended(10)
    log = media.log_since(offset)
    assert 'refused: 400' in log and BETA not in ''.join(line for line in log.splitlines() if line.endswith(': started')), log
    binding.authenticate('REGISTER', 'anna.desk', ACME, password('anna.desk'), headers=trap + ['Expires: 0'], contact=False)

    # Straight to the service, past Kamailio: refused.
    call = anna.dial('sip:20@%s' % BETA, media.target, headers={HEADER: 'voicemail;mailbox=20;reason=user-busy'})
    assert call.wait_ended(5)[0] == 403
