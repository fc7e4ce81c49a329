# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane demo: a voicemail with audio, the lamp on the owner's phone, the owner listening.

usage: python3 voicemail.py PLAN.json     (written by playbooks/demo/voicemail.yml)

Everything goes through the demo's Kamailio, which hands the voicemail calls to the media
service (roles/media, kamailio_media_service):

1. the owner's desk phone (a raw SIP peer, lab.wire) registers and subscribes to its
   message-summary with digest authentication; it answers every NOTIFY 200 and every INVITE
   "486 Busy Here" (its owner is on another call);
2. the caller (the lab's PJSIP phone, lab.phone, calling as its SIP account with digest
   authentication) dials the owner's extension: the desk phone answers busy, Kamailio sends
   the call to the media service, the caller hears the busy greeting and the tone, speaks a
   known sequence of tones (lab.audio) and ends with the hash key;
3. the message is read back from the directory and its stored WAV checked by frequency; the
   desk phone's lamp must go on (NOTIFY Messages-Waiting: yes);
4. the owner dials *86 from the desk phone's account, hears "one new message", listens to it
   (the tones are looked for in what the owner heard), deletes it (7) and hangs up; the lamp
   must go off again;
5. the desk phone unsubscribes and unregisters, so that a run leaves nothing behind; a
   message an earlier, failed run left in the box is removed first.

Prints one JSON document {"ok": bool, "summary": [lines], ...}; exit 0 when the traffic ran
(the playbook asserts "ok"), 3 on a setup error. Bounded in time.
"""

import json
import os
import sqlite3
import sys
import threading
import time
import wave

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import audio, phone  # noqa: E402  pylint: disable=wrong-import-position
import driver_run  # noqa: E402  pylint: disable=wrong-import-position
from driver_run import SetupError  # noqa: E402  pylint: disable=wrong-import-position
from lab.directories import use_collection  # noqa: E402  pylint: disable=wrong-import-position
from lab.net import wait_for  # noqa: E402  pylint: disable=wrong-import-position
from lab.wire import Message, Peer  # noqa: E402  pylint: disable=wrong-import-position

EXPIRES = 120  # the desk phone's registration and subscription; removed at the end anyway
LAMP_WAIT = 5.0  # seconds for a NOTIFY after the mailbox changed
GREETING_WAIT = 40.0  # the greeting (a name spoken at its first use) and the tone
# What the caller says: silence, the lab's tone sequence (500, 1100, 1700, 800 Hz), silence.
TONES = [(0, 300)] + list(audio.SEQUENCE) + [(0, 300)]
# A menu is answered once its first words are heard (a key during the prompt before it could be
# taken as the answer to that one).
OPENING_MS = 1500


class DeskPhone(object):
    """The owner's desk phone: registers, subscribes to message-summary, then (in a thread of
    its own) answers NOTIFYs 200 and INVITEs 486 and keeps what it got."""

    def __init__(self, address, proxy, username, domain, password, parse):
        self.peer = Peer(address, proxy)
        self.username, self.domain, self.password = username, domain, password
        self.parse = parse
        self.notifies = []  # (monotonic time, waiting 'yes'/'no', new, old)
        self.invites = []  # Call-IDs of the INVITEs it answered busy
        self.subscribed = self.registered = False
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def register(self, expires=EXPIRES):
        _challenge, answer, _params = self.peer.authenticate(
            'REGISTER', self.username, self.domain, self.password, headers=['Expires: %d' % expires])
        return answer.code if answer is not None else None

    def subscribe(self, expires=EXPIRES):
        _challenge, answer, _params = self.peer.authenticate(
            'SUBSCRIBE', self.username, self.domain, self.password, dialled=self.username,
            headers=['Event: message-summary', 'Expires: %d' % expires, 'Accept: application/simple-message-summary'])
        return answer.code if answer is not None else None

    def start(self):
        self._thread = threading.Thread(target=self._serve, name='desk-phone', daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _reply(self, message, status, to_tag=None):
        to = message.header('To')
        if to_tag and ';tag=' not in to:
            to += ';tag=%s' % to_tag
        lines = ['SIP/2.0 %s' % status] + ['Via: %s' % via for via in message.all('Via')] + [
            'From: %s' % message.header('From'), 'To: %s' % to, 'Call-ID: %s' % message.call_id,
            'CSeq: %s' % message.header('CSeq'), 'Content-Length: 0']
        self.peer.send(('\r\n'.join(lines) + '\r\n\r\n').encode())

    def _serve(self):
        while not self._stop.is_set():
            data = self.peer._receive(time.monotonic() + 0.1)  # pylint: disable=protected-access
            if data is None:
                continue
            message = Message(data)
            if message.method == 'NOTIFY':
                self._reply(message, '200 OK')
                try:
                    summary = self.parse(message.body)
                except ValueError:
                    continue
                with self._lock:
                    self.notifies.append((time.monotonic(), 'yes' if summary['waiting'] else 'no',
                                          summary['new'], summary['old']))
            elif message.method == 'INVITE':
                self._reply(message, '486 Busy Here', to_tag='busy%d' % (len(self.invites) + 1))
                with self._lock:
                    if message.call_id not in self.invites:
                        self.invites.append(message.call_id)
            elif message.method not in (None, 'ACK'):
                self._reply(message, '200 OK')

    def lamp_after(self, since, waiting, counts=None, timeout=LAMP_WAIT):
        """The first NOTIFY after ``since`` (monotonic) that says Messages-Waiting ``waiting``
        ('yes'/'no') with the (new, old) ``counts`` when given: (time, waiting, new, old), or None."""
        def seen():
            with self._lock:
                found = [n for n in self.notifies if n[0] >= since and n[1] == waiting and
                         (counts is None or tuple(n[2:]) == tuple(counts))]
            return found[0] if found else None
        return wait_for(seen, timeout)


class Driver(object):
    def __init__(self, plan):
        self.plan = plan
        self.run_dir = plan['run_dir']
        self.domain = plan['domain']
        self.proxy = (plan['proxy']['address'], int(plan['proxy']['port']))
        self.target = '%s:%d' % self.proxy
        self.owner = plan['owner']
        self.caller = plan['caller']
        self.notes = []
        self.desk = None
        self.tones = None

    def prompt(self, key):
        return os.path.join(self.plan['prompts_dir'], self.plan['language'], key + '.wav')

    def opening(self, key):
        """A WAV file of the first OPENING_MS of a prompt (in the run's folder)."""
        path = os.path.join(self.run_dir, 'opening-%s.wav' % key)
        with wave.open(self.prompt(key), 'rb') as source:
            params = source.getparams()
            frames = source.readframes(source.getframerate() * OPENING_MS // 1000)
        with wave.open(path, 'wb') as out:
            out.setparams(params)
            out.writeframes(frames)
        return path

    def messages(self):
        """The mailbox's messages in the directory: dicts of id, folder, duration_ms, path, doc."""
        conn = sqlite3.connect(self.plan['directory'])
        try:
            rows = conn.execute(
                'SELECT v.id, v.folder, v.duration_ms, v.file, v.doc FROM voicemail_messages v '
                'JOIN tenants t ON t.id = v.tenant_id JOIN extensions e ON e.id = v.extension_id '
                'WHERE t.name = ? AND e.internal_number = ? ORDER BY v.id',
                (self.plan['tenant'], self.owner['extension'])).fetchall()
        finally:
            conn.close()
        return [{'id': r[0], 'folder': r[1], 'duration_ms': r[2], 'path': os.path.join(self.plan['storage_dir'], r[3]),
                 'doc': json.loads(r[4] or '{}')} for r in rows]

    # --- 1. a clean start ----------------------------------------------------------------
    def prepare(self):
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        for name in ('caller-heard.wav', 'owner-heard.wav'):
            try:
                os.unlink(os.path.join(self.run_dir, name))
            except OSError:
                pass
        for path in (self.plan['directory'], self.prompt('beep')):
            if not os.path.exists(path):
                raise SetupError('%s is missing: is the media service deployed?' % path)
        use_collection()
        from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory  # pylint: disable=import-outside-toplevel
        leftovers = self.messages()
        if leftovers:
            with Directory(self.plan['directory']).transaction() as txn:
                for message in leftovers:
                    txn.delete_voicemail(self.plan['tenant'], message['id'])
            for message in leftovers:
                try:
                    os.unlink(message['path'])
                except OSError:
                    pass
            self.notes.append('removed %d message(s) an earlier run left in mailbox %s'
                              % (len(leftovers), self.owner['extension']))
        self.tones = audio.write_tones(os.path.join(self.run_dir, 'tones.wav'), TONES)

    # --- 2. the desk phone -----------------------------------------------------------------
    def start_desk_phone(self):
        from ansible_collections.voxplane.pbx.plugins.module_utils import message_summary  # pylint: disable=import-outside-toplevel
        self.desk = DeskPhone(self.plan['phone_address'], self.proxy, self.owner['username'], self.domain,
                              self.owner['password'], message_summary.parse)
        registered = self.desk.register()
        if registered != 200:
            raise SetupError('%s could not register (%s)' % (self.owner['username'], registered))
        self.desk.registered = True
        subscribed = self.desk.subscribe()
        if subscribed != 200:
            raise SetupError('%s could not subscribe to message-summary (%s)' % (self.owner['username'], subscribed))
        self.desk.subscribed = True
        self.desk.start()
        return self.desk.lamp_after(0, 'no')

    def stop_desk_phone(self):
        if self.desk is None:
            return
        self.desk.stop()
        try:
            if self.desk.subscribed:
                self.desk.subscribe(expires=0)
            if self.desk.registered:
                self.desk.register(expires=0)
        except OSError as exc:
            self.notes.append('the desk phone could not unsubscribe or unregister: %s' % exc)
        self.desk.peer.close()

    # --- 3. leaving a message ----------------------------------------------------------------
    def leave_message(self):
        result = {'answered': False, 'greeting': False, 'beep': False, 'kept': False, 'final': None}
        caller = phone.Phone(self.plan['phone_address'], user=self.caller['username'], domain=self.domain,
                             password=self.caller['password'])
        call = caller.dial('sip:%s@%s' % (self.owner['extension'], self.domain), self.target,
                           record=os.path.join(self.run_dir, 'caller-heard.wav'))
        try:
            result['answered'] = call.wait_answered(15)
            if result['answered']:
                beep = call.wait_heard(self.prompt('beep'), timeout=GREETING_WAIT)
                result['beep'] = beep is not None
                result['greeting'] = call.wait_heard(self.prompt('after_the_tone'), timeout=1) is not None
                if beep is not None:
                    call.play(self.tones)
                    phone.poll(audio.duration_ms(self.tones) / 1000.0 + 0.2)
                    result['hash_at'] = time.monotonic()
                    call.dtmf('#')
                    result['kept'] = call.wait_heard(self.prompt('message_kept'), timeout=10, after_ms=beep) is not None
            result['final'] = call.wait_ended(10)
        finally:
            call.hangup()
            call.wait_ended(5)
            caller.close()
        found = wait_for(self.messages, 10) or []
        result['message'] = found[0] if found else None
        if found:
            result['tones'], result['segments'] = audio.has_sequence(found[0]['path'])
        return result

    # --- 4. the owner listens ------------------------------------------------------------------
    def listen(self):
        result = {'answered': False, 'counted': False, 'heard': False, 'deleted': False, 'final': None,
                  'lamp_read': None}
        owner = phone.Phone(self.plan['phone_address'], user=self.owner['username'], domain=self.domain,
                            password=self.owner['password'])
        heard = os.path.join(self.run_dir, 'owner-heard.wav')
        call = owner.dial('sip:*86@%s' % self.domain, self.target, record=heard)
        try:
            result['answered'] = call.wait_answered(15)
            if result['answered']:
                # "(You have) one new message": the call's first words may be cut off before its
                # media is up, and the prompt is short (three of its four pieces will do).
                counted = call.wait_heard(self.prompt('new_message_one'), timeout=15, share=0.7)
                result['counted'] = counted is not None
                menu = call.wait_heard(self.opening('main_menu'), timeout=20, after_ms=counted or 0)
                if menu is not None:
                    since = time.monotonic()
                    call.dtmf('1')
                    end = call.wait_heard(self.opening('message_menu'), timeout=30, after_ms=menu)
                    if end is not None:
                        result['heard'], result['segments'] = audio.has_sequence(heard)
                        # Once played, the message is read: the lamp goes off (0 new, 1 old).
                        result['lamp_read'] = self.desk.lamp_after(since, 'no', (0, 1))
                        call.dtmf('7')
                        result['pressed_delete'] = True
                        # "Message deleted" is short; whether it is gone is what the directory says below.
                        call.wait_heard(self.prompt('message_deleted'), timeout=15, after_ms=end)
                        call.dtmf('#')
            call.hangup()
            result['final'] = call.wait_ended(10)
        finally:
            call.hangup()
            call.wait_ended(5)
            owner.close()
        result['messages_after'] = len(self.messages())
        result['deleted'] = bool(result.get('pressed_delete')) and result['messages_after'] == 0
        return result

    # --- the run -------------------------------------------------------------------------------
    def run(self):
        lines = []
        problems = []
        owner, caller = self.owner, self.caller
        lines.append('Voicemail: %s (%s) has a box with a PIN on the media service at %s; the desk phone %s is '
                     'on another call (it answers 486 Busy Here) and subscribes to message-summary'
                     % (owner['name'], owner['extension'], self.plan['media'], owner['username']))
        start_lamp = self.start_desk_phone()
        lines.append('  %s registered and subscribed; lamp at the start: %s'
                     % (owner['username'], 'Messages-Waiting: %s (%d/%d)' % start_lamp[1:] if start_lamp else 'no NOTIFY'))
        if not start_lamp:
            problems.append('no NOTIFY with Messages-Waiting: no after the SUBSCRIBE')
        since = time.monotonic()
        left = self.leave_message()
        message = left['message']
        lines.append('  %s (%s, %s) dialled %s: %s rang and answered busy; %s; %s'
                     % (caller['username'], caller['name'], caller['extension'], owner['extension'],
                        owner['username'] if self.desk.invites else 'no device',
                        'the media service answered' if left['answered'] else 'NOT answered (final %s)' % (left['final'],),
                        'the caller heard the greeting and the tone, said four tones and pressed #'
                        if left['greeting'] and left['beep'] else 'the greeting or the tone was NOT heard'))
        if not self.desk.invites:
            problems.append('the desk phone never got the INVITE: the call did not meet a busy extension')
        if not (left['answered'] and left['beep'] and left['greeting']):
            problems.append('the caller did not reach the greeting and the tone (traces: %s/caller-heard.wav, the media log)'
                            % self.run_dir)
        tones = False
        if message:
            seconds = message['duration_ms'] / 1000.0
            tones = left.get('tones', False)
            found = ' '.join('%d' % s[0] for s in left.get('segments', ()))
            stored = os.path.relpath(message['path'], self.plan['storage_dir'])
            lines.append('  message recorded: %.1f s from %s, reason %s, folder %s, %s (tones found in the stored WAV: %s Hz)'
                         % (seconds, message['doc'].get('caller'), message['doc'].get('reason'), message['folder'], stored,
                            found or 'none'))
            if not tones:
                problems.append('the stored message does not hold the tones the caller sent (%s)' % message['path'])
            if message['doc'].get('reason') != 'user-busy':
                problems.append('the message was not left as a busy call (reason %s)' % message['doc'].get('reason'))
        else:
            problems.append('no message was stored in mailbox %s' % owner['extension'])
        lamp_on = self.desk.lamp_after(since, 'yes', (1, 0)) if message else None
        if lamp_on:
            lines.append('  lamp on: NOTIFY Messages-Waiting: yes (1/0) to %s, %.1f s after the caller pressed #'
                         % (owner['username'], lamp_on[0] - left.get('hash_at', lamp_on[0])))
        else:
            problems.append('the lamp did not go on (no NOTIFY with Messages-Waiting: yes within %d s)' % LAMP_WAIT)
        heard = deleted = False
        lamp_off = None
        if message:
            since = time.monotonic()
            listened = self.listen()
            heard, deleted = listened['heard'], listened['deleted']
            lines.append('  %s dialled *86 from %s: %s; %s; %s'
                         % (owner['name'], owner['username'],
                            'heard "one new message"' if listened['counted'] else 'did NOT hear "one new message"',
                            'listened to it (tones found in what the owner heard: %s Hz)'
                            % ' '.join('%d' % s[0] for s in listened.get('segments', ())) if heard
                            else 'did NOT hear the message back',
                            'deleted it (7)' if deleted else 'could NOT delete it'))
            if not (listened['counted'] and heard and deleted):
                problems.append('the owner did not hear the message and delete it (traces: %s/owner-heard.wav)' % self.run_dir)
            lamp_off = self.desk.lamp_after(since, 'no', (0, 0))
            read = listened['lamp_read']
            if lamp_off and listened['messages_after'] == 0:
                lines.append('  lamp off: NOTIFY Messages-Waiting: no (%s once the message was heard, 0/0 once deleted); '
                             'the mailbox is empty again' % ('0/1' if read else 'no NOTIFY'))
            else:
                problems.append('the lamp did not go off with an empty mailbox (NOTIFY no 0/0: %s; %d messages left)'
                                % ('yes' if lamp_off else 'none', listened['messages_after']))
        ok = not problems
        if message:
            lines.append('voicemail: message from %s to %s recorded (%.1f s, %s), lamp %s, owner %s, lamp %s'
                         % (caller['extension'], owner['extension'], message['duration_ms'] / 1000.0,
                            'tones found' if tones else 'NO tones', 'on' if lamp_on else 'NOT on',
                            'heard it' if heard else 'did NOT hear it', 'off' if lamp_off else 'NOT off'))
        else:
            lines.append('voicemail: NO message from %s to %s' % (caller['extension'], owner['extension']))
        lines += ['  PROBLEM: %s' % problem for problem in problems]
        lines += ['  Note: %s' % note for note in self.notes]
        return dict(ok=ok, summary=lines)


def main(argv):
    return driver_run.run(argv, __doc__, Driver, lambda driver: driver.stop_desk_phone(), 'Voicemail')


if __name__ == '__main__':
    sys.exit(main(sys.argv))
