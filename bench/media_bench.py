# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kamailio's CPU per routed call with the media relay engaged and not, and rtpengine's CPU.

    sudo .venv/bin/python bench/media_bench.py [--calls 600] [--rate 60] [--rounds 3]

One Kamailio (roles/kamailio, one UDP worker) and one rtpengine (roles/rtpengine), both on
loopback, with the SIP tests' directory (tests/lab/playbooks/tenants.yml). The trunk stand-in
(bench/scenarios/call_uac.xml: INVITE with SDP, 200, ACK, BYE along the Record-Route) calls a
phone registered from a public address (call_uas.xml). Two modes, alternating per round on the
same processes (the mode is a router setting: the role only reloads the KEMI script):

- ``nat``: two public endpoints, the router does not engage rtpengine (the baseline);
- ``always``: every call is relayed: offer in the branch route, answer in the reply route,
  delete on the BYE (three ng round trips per call).

CPU is utime + stime of every Kamailio process and of rtpengine from /proc, before and after each
bounded sipp run. No RTP flows (signalling cost only); rtpengine's CPU per relayed RTP stream is
not measured here.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab.kamailio import KamailioInstance, missing_prerequisites  # noqa: E402
from lab.net import free_port  # noqa: E402
from lab.rtpengine import deploy_rtpengine  # noqa: E402
from lab.sipp import Phone, finish_sipp, run_sipp, start_sipp  # noqa: E402
from lab.wire import wait_for_options  # noqa: E402
from lab.kamailio import processes  # noqa: E402
from sip_bench import CLK_TCK, _int, _stat_ticks  # noqa: E402

KAMAILIO_ADDRESS = '127.0.0.241'
TRUNK_ADDRESS = '127.0.0.242'
SCENARIOS = os.path.join(HERE, 'scenarios')
CALLEE = 'cora.desk'                 # extension 12 of tests/lab/playbooks/tenants.yml
CALLEE_DID = '+4930123456012'


def ticks(pids):
    return sum(_stat_ticks(pid) or 0 for pid in pids) / float(CLK_TCK)


def deploy(root, log):
    rtpengine_pid, ng_port, _cli_port, _control = deploy_rtpengine(root, KAMAILIO_ADDRESS, (42000, 43999))
    kamailio = KamailioInstance(root, KAMAILIO_ADDRESS, free_port(KAMAILIO_ADDRESS), trunk=TRUNK_ADDRESS)
    variables = dict(kamailio_children=1, kamailio_log_level=1, kamailio_flood_requests=60000,
                     kamailio_flood_interval=1,
                     kamailio_listen=[{'proto': 'udp', 'address': KAMAILIO_ADDRESS, 'port': kamailio.port}],
                     kamailio_rtpengine_sockets=['udp:127.0.0.1:%d' % ng_port])
    log('deploying Kamailio on %s:%d, rtpengine ng on 127.0.0.1:%d' % (KAMAILIO_ADDRESS, kamailio.port, ng_port))
    run = kamailio.deploy(kamailio_media_relay='nat', **variables)
    if run.rc != 0:
        raise RuntimeError('kamailio role failed: %r\n%s' % (run, kamailio.log_tail()))
    if not wait_for_options(KAMAILIO_ADDRESS, kamailio.port) or kamailio.provision().rc != 0 \
            or not kamailio.wait_for_directory():
        raise RuntimeError('Kamailio did not come up with the directory\n%s' % kamailio.log_tail())
    return kamailio, variables, rtpengine_pid


def one_run(kamailio, phone, inf, calls, rate, kamailio_pids, rtpengine_pid):
    timeout = int(calls / float(rate) + 20)
    uas = start_sipp(os.path.join(SCENARIOS, 'call_uas.xml'), kamailio.target, kamailio.address,
                     kamailio.workdir, calls=calls, timeout=timeout + 5, local_port=phone.port)
    time.sleep(0.3)
    k0, r0, t0 = ticks(kamailio_pids), ticks([rtpengine_pid]), time.monotonic()
    caller = run_sipp(os.path.join(SCENARIOS, 'call_uac.xml'), kamailio.target, TRUNK_ADDRESS,
                      kamailio.workdir, calls=calls, timeout=timeout, inf=inf, rate=rate)
    finish_sipp(uas)
    time.sleep(0.2)
    k1, r1, wall = ticks(kamailio_pids), ticks([rtpengine_pid]), time.monotonic() - t0
    ok = _int(caller.stats, 'SuccessfulCall(C)')
    return dict(ok=ok, failed=_int(caller.stats, 'FailedCall(C)'), kamailio_s=k1 - k0, rtpengine_s=r1 - r0, wall=wall)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--calls', type=int, default=600, help='calls per run (default 600)')
    parser.add_argument('--rate', type=int, default=60, help='calls a second (default 60)')
    parser.add_argument('--rounds', type=int, default=3, help='runs per mode, alternating (default 3)')
    parser.add_argument('--keep', action='store_true', help='keep the temporary tree')
    args = parser.parse_args()
    reason = missing_prerequisites()
    if reason:
        sys.exit('media_bench: ' + reason)

    def log(text):
        print('media_bench: ' + text, flush=True)

    root = tempfile.mkdtemp(prefix='voxplane-media-bench-')
    os.chmod(root, 0o755)
    kamailio = None
    try:
        kamailio, variables, rtpengine_pid = deploy(root, log)
        phone = Phone(kamailio, CALLEE)
        if phone.register().rc != 0:
            raise RuntimeError('the callee did not register')
        inf = os.path.join(root, 'call.csv')
        with open(inf, 'w') as handle:
            handle.write('SEQUENTIAL\n%s;%s:%d\n' % (CALLEE_DID, KAMAILIO_ADDRESS, kamailio.port))
        totals = {'nat': [], 'always': []}
        current = 'nat'
        for _round in range(args.rounds):
            for relay in ('nat', 'always'):
                if relay != current:
                    run = kamailio.deploy(kamailio_media_relay=relay, **variables)  # settings: reload only
                    if run.rc != 0:
                        raise RuntimeError('redeploy failed: %r' % (run,))
                    time.sleep(1.0)
                    current = relay
                pids = sorted(processes(kamailio.pid()))
                result = one_run(kamailio, phone, inf, args.calls, args.rate, pids, rtpengine_pid)
                log('%-6s %4d ok %3d failed  Kamailio %.2f s CPU  rtpengine %.2f s CPU  in %.1f s' % (
                    relay, result['ok'], result['failed'], result['kamailio_s'], result['rtpengine_s'], result['wall']))
                totals[relay].append(result)
        print()
        print('%-34s %14s %14s %8s' % ('per answered call (ACK, BYE incl.)', 'not relayed', 'relayed', 'ratio'))
        rows = {}
        for relay, runs in totals.items():
            ok = sum(r['ok'] for r in runs) or 1
            rows[relay] = (sum(r['kamailio_s'] for r in runs) / ok * 1e6, sum(r['rtpengine_s'] for r in runs) / ok * 1e6,
                           sum(r['failed'] for r in runs), sum(r['ok'] for r in runs))
        base, relayed = rows['nat'], rows['always']
        print('%-34s %11.0f us %11.0f us %7.2fx' % ('Kamailio CPU', base[0], relayed[0], relayed[0] / base[0]))
        print('%-34s %11.0f us %11.0f us' % ('rtpengine CPU (signalling only)', base[1], relayed[1]))
        answered = ('%d / %d' % (base[3], base[2]), '%d / %d' % (relayed[3], relayed[2]))
        print('%-34s %14s %14s' % (('calls answered / failed',) + answered))
        print('load average: %s' % ' '.join(open('/proc/loadavg').read().split()[:3]))
        return 0 if not (base[2] or relayed[2]) else 1
    finally:
        if kamailio is not None:
            kamailio.stop()
        ctl = os.path.join(root, 'rtpengine', 'voxplane-rtpengine')
        if os.path.exists(ctl):
            subprocess.run([ctl, 'stop'], capture_output=True, timeout=30, check=False)
        if args.keep:
            print('media_bench: kept %s' % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
