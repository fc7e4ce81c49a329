# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane demo: a caller walks the menu into the support queue and a member answers, with audio.

usage: python3 ivr.py PLAN.json     (written by playbooks/demo/ivr.yml)

Everything goes through the demo's Kamailio and its media service (roles/media):

1. the queue member's desk phone (the lab's PJSIP phone, lab.phone) registers with digest
   authentication and answers every call, sending a known sequence of tones (lab.audio) and
   recording what it hears;
2. the carrier (a PJSIP phone on the trunk's address) calls the menu's number: Kamailio hands the
   call to the media service, which answers with the menu; once the caller heard the menu it
   presses 2 (an RFC 4733 telephone event);
3. the media service places the menu's choice through Kamailio, Kamailio hands the queue's number
   back to the service, the caller waits with the queue's music while the queue rings its first
   member through Kamailio; the member's phone answers;
4. the media service's log must show the caller's call starting in the menu and then in the queue
   (the member was rung by the queue, not by another way to his phone);
5. the caller sends the other known sequence of tones; each side's recording must hold the other
   side's tones (frequency check), the caller's not its own;
6. the caller hangs up, the member's phone unregisters: a run leaves nothing behind.

Prints one JSON document {"ok": bool, "summary": [lines], ...}; exit 0 when the traffic ran
(the playbook asserts "ok"), 3 on a setup error. Bounded in time.
"""

import os
import sys
import time

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import audio, phone  # noqa: E402  pylint: disable=wrong-import-position
import driver_run  # noqa: E402  pylint: disable=wrong-import-position
from driver_run import SetupError  # noqa: E402  pylint: disable=wrong-import-position

MENU_WAIT = 20.0  # the call answered, the menu heard to its end
RING_WAIT = 30.0  # the key pressed, the member's phone rings (the queue's member_ring_time is longer)
HEAR_WAIT = 15.0  # a side's tones in the other side's recording
# What each side says: silence, a sequence of tones (lab.audio), silence.
CALLER_TONES = [(0, 300)] + list(audio.SEQUENCE) + [(0, 300)]
MEMBER_TONES = [(0, 300)] + list(audio.OTHER_SEQUENCE) + [(0, 300)]


def hertz(segments):
    return ' '.join('%d' % s[0] for s in segments) or 'none'


def heard(path, tones):
    try:
        return audio.has_sequence(path, tones)
    except (OSError, ValueError):
        return False, []


class Driver(object):
    def __init__(self, plan):
        self.plan = plan
        self.run_dir = plan['run_dir']
        self.domain = plan['domain']
        self.target = '%s:%d' % (plan['proxy']['address'], int(plan['proxy']['port']))
        self.member = plan['member']
        self.caller = plan['caller']
        self.menu, self.queue = plan['menu'], plan['queue']
        self.member_phone = None
        self.caller_tones = self.member_tones = None
        self.log_offset = 0

    def prompt(self, key):
        return os.path.join(self.plan['prompts_dir'], self.plan['language'], key + '.wav')

    def prepare(self):
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        for name in os.listdir(self.run_dir):
            if name.endswith('.wav'):
                os.unlink(os.path.join(self.run_dir, name))
        if not os.path.exists(self.prompt('menu_choose')):
            raise SetupError('%s is missing: is the media service deployed?' % self.prompt('menu_choose'))
        try:
            self.log_offset = os.path.getsize(self.plan['media_log'])
        except OSError:
            self.log_offset = 0
        self.caller_tones = audio.write_tones(os.path.join(self.run_dir, 'caller-tones.wav'), CALLER_TONES)
        self.member_tones = audio.write_tones(os.path.join(self.run_dir, 'member-tones.wav'), MEMBER_TONES)

    def media_log(self):
        """What the media service logged since the start of the run."""
        try:
            with open(self.plan['media_log'], 'rb') as handle:
                handle.seek(self.log_offset)
                return handle.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def started(self, service, number):
        """The media service's line of a call of ``service`` (ivr, queue) to ``number`` from the caller
        that started since the run began, or None."""
        mark = '(%s %s@%s;number=%s, from %s): started' % (service, number, self.domain, number, self.caller['number'])
        lines = [line for line in self.media_log().splitlines() if line.endswith(mark)]
        return lines[0] if lines else None

    def start_member(self):
        member = phone.Phone(self.member['address'], user=self.member['username'])
        self.member_phone = member
        if not member.register(self.target, self.domain, self.member['password'], answer=None):
            raise SetupError('%s could not register at %s' % (self.member['username'], self.target))
        member.answer_calls(play=self.member_tones, record_dir=self.run_dir)

    def stop_member(self):
        if self.member_phone is not None:
            self.member_phone.unregister()

    def call(self):
        """The carrier's call: menu, key 2, queue, the member answers, tones both ways."""
        result = {'answered': False, 'menu': False, 'rang': None, 'member_answered': False,
                  'member_heard': (False, []), 'caller_heard': (False, []), 'own_echo': False, 'final': None}
        carrier = phone.Phone(self.caller['address'], user=self.caller['number'])
        call = carrier.dial('sip:%s@%s' % (self.plan['number'], self.domain), self.target,
                            record=os.path.join(self.run_dir, 'caller-heard.wav'),
                            from_uri='sip:%s@carrier.example' % self.caller['number'])
        try:
            result['answered'] = call.wait_answered(15)
            if not result['answered']:
                return result
            menu = call.wait_heard(self.prompt('menu_choose'), timeout=MENU_WAIT)
            result['menu'] = menu is not None
            if menu is None:
                return result
            pressed = time.monotonic()
            call.dtmf('2')
            leg = self.member_phone.wait_incoming(1, timeout=RING_WAIT)
            if leg is None:
                return result
            result['rang'] = time.monotonic() - pressed
            result['member_answered'] = leg.wait_answered(5) and leg.wait_media(5)
            if not result['member_answered']:
                return result
            result['waited'] = time.monotonic() - pressed
            call.play(self.caller_tones)
            phone.wait(lambda: heard(leg.record_file, audio.SEQUENCE)[0], audio.duration_ms(self.caller_tones) / 1000.0 + HEAR_WAIT)
            phone.wait(lambda: heard(call.record_file, audio.OTHER_SEQUENCE)[0], HEAR_WAIT)
            result['member_heard'] = heard(leg.record_file, audio.SEQUENCE)
            result['caller_heard'] = heard(call.record_file, audio.OTHER_SEQUENCE)
            result['own_echo'] = heard(call.record_file, audio.SEQUENCE)[0]
            call.hangup()
            result['final'] = call.wait_ended(10)
            result['member_ended'] = leg.wait_ended(10)
        finally:
            call.hangup()
            call.wait_ended(5)
            carrier.close()
        return result

    def run(self):
        lines, problems = [], []
        member, menu, queue = self.member, self.menu, self.queue
        keys = ', '.join('%s -> %s' % (k, menu['keys'][k]) for k in sorted(menu['keys']))
        members = ', '.join(m['extension'] for m in queue['members'])
        lines.append('Menu and queue: the carrier (%s, calling number %s) dials %s: menu %s %s (keys %s); queue %s %s '
                     '(%s: %s)' % (self.caller['address'], self.caller['number'], self.plan['number'],
                                   menu['internal_number'], menu['name'], keys, queue['internal_number'], queue['name'],
                                   queue['strategy'], members))
        self.start_member()
        lines.append('  %s (%s, %s) registered: the queue\'s first member'
                     % (member['username'], member['name'], member['extension']))
        result = self.call()
        if result['answered'] and result['menu']:
            lines.append('  the media service answered, the caller heard the menu and pressed 2 (RFC 4733)')
        else:
            problems.append('the caller did not hear the menu (answered: %s; final %s; traces: %s/caller-heard.wav)'
                            % (result['answered'], result['final'], self.run_dir))
        if result['rang'] is not None:
            lines.append('  %s rang %.1f s after the key and %s'
                         % (member['username'], float(result['rang']),
                            'answered' if result['member_answered'] else 'did NOT answer'))
        elif result['menu']:
            problems.append('the member\'s phone did not ring within %d s of the key' % RING_WAIT)
        menu_line = self.started('ivr', menu['internal_number'])
        queue_line = self.started('queue', queue['internal_number'])
        if menu_line and queue_line:
            lines.append('  the media service\'s log: the call started in menu %s, then in queue %s'
                         % (menu['internal_number'], queue['internal_number']))
        elif result['menu']:
            problems.append('the media service did not log the call in menu %s (%s) and then in queue %s (%s)'
                            % (menu['internal_number'], 'seen' if menu_line else 'not seen',
                               queue['internal_number'], 'seen' if queue_line else 'not seen'))
        if result['member_answered']:
            lines.append('  %s heard the caller\'s tones: %s Hz; the caller heard %s\'s: %s Hz%s'
                         % (member['name'], hertz(result['member_heard'][1]) if result['member_heard'][0] else 'NOT found',
                            member['name'], hertz(result['caller_heard'][1]) if result['caller_heard'][0] else 'NOT found',
                            '; the caller heard itself' if result['own_echo'] else ''))
            if not (result['member_heard'][0] and result['caller_heard'][0]):
                problems.append('the two sides did not hear each other (traces: %s)' % self.run_dir)
            if result['own_echo']:
                problems.append('the caller heard its own tones')
        elif result['rang'] is not None:
            problems.append('the member\'s phone did not answer')
        both = result['member_heard'][0] and result['caller_heard'][0] and bool(queue_line)
        lines.append('menu: the carrier pressed 2 at menu %s, queue %s rang %s (%s), %s'
                     % (menu['internal_number'], queue['internal_number'], member['name'], member['extension'],
                        'who answered with audio both ways' if both and not result['own_echo'] else 'NOT answered with audio both ways'))
        lines += ['  PROBLEM: %s' % problem for problem in problems]
        return dict(ok=not problems, summary=lines)


def main(argv):
    return driver_run.run(argv, __doc__, Driver, lambda driver: driver.stop_member(), 'Menu and queue')


if __name__ == '__main__':
    sys.exit(main(sys.argv))
