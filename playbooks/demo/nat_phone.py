# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane demo: a phone behind NAT takes a call from the carrier, with audio both ways.

usage: python3 nat_phone.py PLAN.json     (written by playbooks/demo/nat_phone.yml)

The office network (tests/lab/nat.py: an office namespace behind a masquerading router
namespace) is up already: the demo builds it before Kamailio and rtpengine start, since both
listen on its veth. This driver

1. stops a phone an earlier run left behind (by its pid file) and removes the account's
   bindings (kamcmd ul.rm);
2. starts baresip in the office namespace (10.77.0.10, auto-answer, a 440 Hz tone as its
   microphone) and waits until Kamailio holds its binding with the router's public address
   as "received";
3. lets the carrier stand-in (sipp on 127.0.0.2) call the phone's direct dial with an SDP that
   names an RTP peer (lab.nat.RtpPeer: counts what it gets, sends PCMU back), talks for a
   few seconds, hangs up; meanwhile it reads rtpengine's session count;
4. reads the office's nft counters (RTP the phone sent to and got from the relay), baresip's
   own statistics, the RTP peer's counts and where its RTP came from, and rtpengine's session
   count once the call is over; stops the phone (it unregisters).

Prints one JSON document {"ok": bool, "summary": [lines], ...}; exit 0 when the traffic ran
(the playbook asserts "ok"), 3 on a setup error. Bounded in time. Standard library and the test
lab (tests/lab) only.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import demo_calls
import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import nat  # noqa: E402  pylint: disable=wrong-import-position
from lab.net import wait_for  # noqa: E402  pylint: disable=wrong-import-position

MIN_PACKETS = 100  # 2 s of 20 ms packets; the call carries more each way
PHONE_HOST = 10  # the phone's office address: <office_net>.10
PHONE_LIFETIME = 120  # seconds: baresip quits by itself after this at the latest
REGISTER_WAIT = 10


class Driver(object):
    def __init__(self, plan):
        self.plan = plan
        self.calls_dir = plan['calls_dir']
        self.run_dir = os.path.join(self.calls_dir, 'nat-phone')
        self.pid_file = os.path.join(self.calls_dir, demo_calls.PID_DIR, 'nat-phone.pid')
        net = plan['nat']
        self.lab = nat.NatLab(udp_timeout=None, rtp_ports=tuple(plan['relay_ports']), name=net['name'],
                              public_net=net['public_net'], office_net=net['office_net'])
        self.account = plan['account']
        self.aor = '%s@%s' % (self.account['username'], plan['domain'])
        self.phone = None
        self.notes = []

    # --- helpers ---------------------------------------------------------------------
    def kamcmd(self, *args):
        return subprocess.run([self.plan['kamcmd'], '-s', 'unix:' + self.plan['ctl_socket']] + list(args),
                              capture_output=True, text=True, timeout=10, check=False).stdout

    def binding(self):
        """(contact, received) of the account's binding that has a received address, else None."""
        contact = None
        for line in self.kamcmd('ul.lookup', 'location', self.aor).splitlines():
            key, _sep, value = line.strip().partition(':')
            value = value.strip()
            if key == 'Address':
                contact = value
            elif key == 'Received' and contact and value.startswith('sip:'):
                return contact, value
        return None

    def sessions(self):
        out = subprocess.run([self.plan['rtpengine_control'], 'sessions'], capture_output=True, text=True,
                             timeout=10, check=False).stdout
        for line in out.splitlines():
            if line.startswith('Current sessions total:'):
                return int(line.split(':')[1])
        return None

    # --- 1. and 2. -------------------------------------------------------------------
    def prepare(self):
        if not self.lab.is_up():
            raise demo_calls.SetupError('the office network %s is not up (playbooks/demo.yml builds it with '
                                        'tests/lab/nat.py before Kamailio starts)' % self.lab.office_ns)
        stopped = demo_calls.stop_leftovers(self.calls_dir)
        if stopped:
            self.notes.append('stopped what an earlier run left running: %s' % ', '.join(stopped))
        self.kamcmd('ul.rm', 'location', self.aor)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        os.makedirs(self.run_dir, mode=0o700)
        os.makedirs(os.path.dirname(self.pid_file), mode=0o700, exist_ok=True)

    def start_phone(self):
        proxy = (self.plan['proxy']['address'], self.plan['proxy']['port'])
        self.phone = self.lab.phone(self.run_dir, self.account['username'], self.plan['domain'],
                                    self.account['password'], proxy, host=PHONE_HOST, lifetime=PHONE_LIFETIME)
        self.phone.start()
        with open(self.pid_file, 'w') as handle:
            handle.write('%d\n' % self.phone.proc.pid)
        return wait_for(self.binding, REGISTER_WAIT)

    def stop_phone(self):
        if self.phone is not None:
            self.phone.stop()  # SIGTERM: baresip unregisters
        try:
            os.unlink(self.pid_file)
        except OSError:
            pass

    # --- 3. the call -----------------------------------------------------------------
    def call(self):
        caller = self.plan['caller']
        traces = self.run_dir
        with nat.RtpPeer(caller['address']) as peer:
            csv = os.path.join(traces, 'carrier.csv')
            with open(csv, 'w') as handle:
                row = (caller['number'], self.plan['dial'], peer.address, peer.port)
                handle.write('SEQUENTIAL\n%s;%s;%s;%d\n' % row)
            argv = [self.plan.get('sipp') or shutil.which('sipp') or '/usr/bin/sipp',
                    '%s:%d' % (self.plan['carrier_proxy']['address'], self.plan['carrier_proxy']['port']),
                    '-sf', self.plan['scenario'], '-i', caller['address'], '-p', str(caller['port']),
                    '-inf', csv, '-m', '1', '-d', str(int(self.plan['talk_seconds'] * 1000)),
                    '-nostdin', '-timeout', '%ds' % (self.plan['talk_seconds'] + 20), '-timeout_error',
                    '-trace_msg', '-message_file', os.path.join(traces, 'carrier.msg')]
            self.lab.reset_rtp_counts()
            seen = set()
            with open(os.path.join(traces, 'carrier.out'), 'wb') as out:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
                deadline = time.monotonic() + self.plan['talk_seconds'] + 30
                while proc.poll() is None and time.monotonic() < deadline:
                    seen.add(self.sessions())
                    time.sleep(0.5)
                if proc.poll() is None:
                    proc.kill()
                rc = proc.wait(timeout=5)
            time.sleep(0.3)  # the last packets in flight
            counts = self.lab.rtp_counts()
            result = dict(rc=rc, peer_received=peer.received, peer_sent=peer.sent, peer_sources=sorted(peer.sources),
                          phone_sent=counts.get('out_%d' % PHONE_HOST, 0), phone_got=counts.get('in_%d' % PHONE_HOST, 0),
                          sessions_during=max([s for s in seen if s is not None] or [0]))
        wait_for(lambda: self.sessions() == 0, 5)
        result['sessions_after'] = self.sessions()
        result['final'] = self._final_reply(os.path.join(traces, 'carrier.msg'))
        return result

    @staticmethod
    def _final_reply(path):
        finals = [m for m in demo_calls.read_sipp_trace(path)
                  if m.direction == 'received' and m.code is not None and m.cseq[1] == 'INVITE' and m.code >= 200]
        return '%d %s' % (finals[0].code, finals[0].reason) if finals else 'none'

    # --- 4. report -------------------------------------------------------------------
    def report(self, registered, call):
        acc = self.account
        relay = self.plan['relay_address']
        router = self.lab.router_wan
        lines = ['Phone behind NAT: %s (%s, %s), baresip at %s:5060 in the office namespace %s behind the router '
                 '%s (masquerade)' % (acc['username'], acc['person'], acc['extension'], self.lab.office_net + str(PHONE_HOST),
                                      self.lab.office_ns, router)]
        problems = []
        if registered:
            contact, received = registered
            public = received[len('sip:'):].split(';')[0]
            lines.append('  registered from %s (Kamailio stores it as received; the Contact says %s)'
                         % (public, contact.split(';')[0]))
            if not public.startswith(router + ':'):
                problems.append('the binding was not received from the router %s' % router)
        else:
            problems.append('the phone did not register within %d s (see %s/out.log)' % (REGISTER_WAIT, self.run_dir))
        if call:
            baresip = self.phone.audio_packets() if self.phone else None
            own_count = '; baresip counted %d sent / %d received' % (baresip[0], baresip[1]) if baresip else ''
            lines.append('  the carrier (%s) dialled %s; final %s; %s' % (
                self.plan['caller']['address'], self.plan['dial'], call['final'],
                'call answered' if call['rc'] == 0 and call['final'].startswith('200') else 'NOT answered'))
            lines.append('  RTP through the relay %s: the phone sent %d / got %d packets (office counters), the '
                         'carrier got %d / sent %d%s' % (
                             relay, call['phone_sent'], call['phone_got'], call['peer_received'], call['peer_sent'],
                             own_count))
            lines.append('  relay sessions: %s during the call, %s after' % (call['sessions_during'],
                                                                             call['sessions_after']))
            if call['rc'] != 0 or not call['final'].startswith('200'):
                problems.append('the call was not answered (sipp exit %s, final %s; trace %s/carrier.msg)'
                                % (call['rc'], call['final'], self.run_dir))
            if min(call['phone_sent'], call['phone_got'], call['peer_received'], call['peer_sent']) < MIN_PACKETS:
                problems.append('audio did not flow both ways (fewer than %d packets somewhere)' % MIN_PACKETS)
            if call['peer_sources'] and call['peer_sources'] != [relay]:
                problems.append('RTP reached the carrier from %s, not only from the relay' % call['peer_sources'])
            if call['sessions_during'] < 1 or call['sessions_after'] != 0:
                problems.append('the relay held %s sessions during the call and %s after (expected >= 1, then 0)'
                                % (call['sessions_during'], call['sessions_after']))
        lines += ['  PROBLEM: %s' % problem for problem in problems]
        lines += ['  Note: %s' % note for note in self.notes]
        return dict(ok=not problems, summary=lines, registered=bool(registered), call=call)


def _terminate(signum, _frame):
    """SIGTERM (a timeout of the playbook) ends the run through its cleanup."""
    raise SystemExit(128 + signum)


def main(argv):
    signal.signal(signal.SIGTERM, _terminate)
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1]) as handle:
        plan = json.load(handle)
    driver = Driver(plan)
    try:
        driver.prepare()
        try:
            registered = driver.start_phone()
            call = driver.call() if registered else None
            report = driver.report(registered, call)
        finally:
            driver.stop_phone()
    except demo_calls.SetupError as exc:
        print(json.dumps(dict(ok=False, error=str(exc), summary=['Phone behind NAT: setup failed: %s' % exc])))
        return 3
    print(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
