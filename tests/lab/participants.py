# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many conference participants at once: the PJSIP wheel holds 4 calls a process, so a room of
more callers needs several phone processes. ``Participants`` starts them (``python -m
lab.participants``, PARTICIPANTS_PER_PROCESS calls each, on the same loopback address: the media
service admits its Kamailio's address), each call enters the room with the PIN after the PIN
prompt (a room without a PIN: ``pin_prompt`` None) and records what it hears. When every call is in, ``speak(tones)`` has participant i
send ``tones[i]`` (a WAV file, or None) at a wall-clock time of its own, all processes alike;
``finish()`` hangs up and returns each participant's recording, the wall-clock time its recording
began, and its RTP counters.

    room = Participants(media.target, media.caller, 6, '650', ACME, '3819#', pin_prompt, tmp_path)
    room.join(timeout=60); room.speak([tone_wav(i) for i in range(6)], gap=1.0); results = room.finish()

A process talks to the test on stdin and stdout, one JSON object a line.
"""

import json
import os
import subprocess
import sys
import time

PARTICIPANTS_PER_PROCESS = 4
HERE = os.path.dirname(os.path.abspath(__file__))


class Participants(object):
    def __init__(self, target, address, count, number, domain, digits, pin_prompt, folder,
                 header='conference;number=%s', per_process=PARTICIPANTS_PER_PROCESS):
        self.count = count
        self.folder = str(folder)
        self.processes = []
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE) + os.pathsep + os.environ.get('PYTHONPATH', ''))
        for first in range(0, count, per_process):
            spec = {'target': target, 'address': address, 'number': number, 'domain': domain, 'digits': digits,
                    'pin_prompt': pin_prompt, 'header': header % number, 'folder': self.folder,
                    'indices': list(range(first, min(count, first + per_process)))}
            process = subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, '-m', 'lab.participants', json.dumps(spec)], env=env, cwd=os.path.dirname(HERE),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
            self.processes.append(process)

    def _read(self, process, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError('a participants process ended (exit %s)' % process.wait(5))
            try:
                return json.loads(line)
            except ValueError:
                continue
        raise RuntimeError('no answer from a participants process within %.0f s' % timeout)

    def join(self, timeout=60):
        """Every call dials and enters the room; the number of calls that are in."""
        joined = 0
        for process in self.processes:
            process.stdin.write(json.dumps({'do': 'join', 'timeout': timeout}) + '\n')
        for process in self.processes:
            joined += self._read(process, timeout + 10)['joined']
        return joined

    def speak(self, tones, gap=1.0, start_in=1.0, hold=0.0):
        """Participant i sends ``tones[i]`` at start + i * ``gap`` (wall clock); returns when the
        last has been sent and ``gap`` + ``hold`` more seconds have passed. The start time."""
        start = time.time() + start_in
        for process in self.processes:
            process.stdin.write(json.dumps({'do': 'speak', 'tones': tones, 'start': start, 'gap': gap, 'hold': hold}) + '\n')
        for process in self.processes:
            self._read(process, start_in + gap * (len(tones) + 2) + hold + 10)
        return start

    def rtp(self):
        """{index: RTP counters} of every participant now (Call.rtp)."""
        counters = {}
        for process in self.processes:
            process.stdin.write(json.dumps({'do': 'rtp'}) + '\n')
        for process in self.processes:
            for index, value in self._read(process, 10)['rtp'].items():
                counters[int(index)] = value
        return counters

    def finish(self):
        """Hang up; {index: {'record', 'record_started', 'rtp', 'final'}} of every participant."""
        results = {}
        for process in self.processes:
            process.stdin.write(json.dumps({'do': 'finish'}) + '\n')
        for process in self.processes:
            for index, result in self._read(process, 30)['results'].items():
                results[int(index)] = result
            process.stdin.close()
            process.wait(15)
        return results

    def close(self):
        """End every process; one still running (a test that failed half-way) hangs up first, so
        that its calls do not hold the service's call slots."""
        for process in self.processes:
            if process.poll() is None:
                try:
                    process.stdin.write(json.dumps({'do': 'finish'}) + '\n')
                    process.stdin.close()
                    process.wait(15)
                except (OSError, ValueError, subprocess.TimeoutExpired):
                    pass
            if process.poll() is None:
                process.kill()
                process.wait(5)


def _serve(spec):
    """A phone process: its participants, driven by the test's JSON lines on stdin."""
    from lab.phone import Phone, poll, wait  # pylint: disable=import-outside-toplevel  # PJSIP: this process only

    phone = Phone(spec['address'])
    calls = {}

    def say(message):
        sys.stdout.write(json.dumps(message) + '\n')
        sys.stdout.flush()

    for line in sys.stdin:
        order = json.loads(line)
        if order['do'] == 'join':
            for index in spec['indices']:
                record = os.path.join(spec['folder'], 'participant-%d.wav' % index)
                calls[index] = phone.dial('sip:%s@%s' % (spec['number'], spec['domain']), spec['target'],
                                          headers={'X-Voxplane-Media': spec['header']}, record=record)
                poll(0.2)
            joined = 0
            for index, call in calls.items():
                if not call.wait_media(order['timeout']):
                    continue
                if spec['pin_prompt']:
                    if call.wait_heard(spec['pin_prompt'], timeout=order['timeout']) is None:
                        continue
                    call.dtmf(spec['digits'], gap=0.15)
                joined += 1
            poll(1.0)
            say({'joined': joined})
        elif order['do'] == 'speak':
            pending = sorted((order['start'] + i * order['gap'], i) for i in spec['indices'] if order['tones'][i])
            for at, index in pending:
                wait(lambda at=at: time.time() >= at, max(0.0, at - time.time()) + 1)
                calls[index].play(order['tones'][index])
            last = order['start'] + len(order['tones']) * order['gap'] + order.get('hold', 0.0)
            wait(lambda: time.time() >= last, max(0.0, last - time.time()) + 1)
            say({'spoken': len(pending)})
        elif order['do'] == 'rtp':
            say({'rtp': dict((index, call.rtp()) for index, call in calls.items())})
        elif order['do'] == 'finish':
            rtp = dict((index, call.rtp()) for index, call in calls.items())
            for call in calls.values():
                call.hangup()
            for call in calls.values():
                call.wait_ended(10)
            poll(0.5)
            say({'results': dict((index, {'record': call.record_file, 'record_started': call.record_started,
                                          'rtp': rtp[index], 'final': call.final})
                                 for index, call in calls.items())})
            return 0
    return 0


if __name__ == '__main__':
    sys.exit(_serve(json.loads(sys.argv[1])))
