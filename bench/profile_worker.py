# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a router worker's time goes: flame graphs of Kamailio under sipp load.

    .venv/bin/python bench/profile_worker.py [--out docs/flamegraphs] [--seconds 8] [--rate 2000]
    (make profile; the tools come from make bench-tools: linux-perf, py-spy)

One Kamailio is deployed from this tree like bench/kemi_ab.py does (roles/kamailio, one UDP
worker, the bench's large directory, no bans for the load's addresses). For each request
(REGISTER pairs of 2000 accounts from a phone's address; INVITEs from the trunk to numbers nobody
registered, answered 480) and each script (the router, kemi/voxplane_kemi.py; the minimal
baseline, bench/baseline_kemi), loaded in turn into that same Kamailio:

- ``perf record`` (DWARF call graphs) of every Kamailio process during a load window, drawn by
  bench/flamegraph.py: ``<script>-<request>-perf.svg``, coloured kernel / libpython /
  app_python3 (the KSR boundary) / Kamailio modules / Kamailio core / libc;
- for the router, ``py-spy record`` attached to the UDP worker's embedded interpreter during
  another window: ``router-<request>-py-spy.svg`` (the Python functions, idle time left out).

It prints the self-time shares per category of every perf profile.
"""

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab.kamailio import KamailioInstance  # noqa: E402
from lab.net import free_port  # noqa: E402
from lab.sipp import run_sipp  # noqa: E402
import flamegraph  # noqa: E402
import kemi_ab  # noqa: E402
import sip_bench  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERF = shutil.which('perf') or '/usr/bin/perf'
PY_SPY = os.path.join(os.path.dirname(sys.executable), 'py-spy')
# After each window: the usrloc timer writes the window's registrations back to SQLite (every
# second in the role's bench settings), which must not land in the next window's profile.
SETTLE = 2.5


def _load(scenario, instance, source, root, inf, calls, rate, port):
    """sipp in a thread: (thread, result holder)."""
    holder = {}

    def run():
        holder['result'] = run_sipp(scenario, instance.target, source, root, calls=calls, timeout=calls // rate + 60,
                                    inf=inf, rate=rate, local_port=port)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, holder


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--out', default=os.path.join(REPO, 'docs', 'flamegraphs'))
    parser.add_argument('--seconds', type=int, default=8, help='length of each profiled window (default 8)')
    parser.add_argument('--rate', type=int, default=2000, help='requests a second during a window (default 2000)')
    parser.add_argument('--frequency', type=int, default=999, help='perf samples a second (default 999)')
    parser.add_argument('--request', action='append', choices=('register', 'invite_480'),
                        help='which requests (default both)')
    args = parser.parse_args()
    for tool in (PERF, PY_SPY):
        if not os.path.exists(tool):
            parser.error('%s is missing: make bench-tools installs it' % tool)
    os.makedirs(args.out, exist_ok=True)
    requests = args.request or ['register', 'invite_480']
    root = sip_bench.make_workroot()
    instance = KamailioInstance(root, kemi_ab.ADDRESS, free_port(kemi_ab.ADDRESS))
    variables = dict(kamailio_children=1, kamailio_ban_exempt=[], kamailio_flood_requests=10 ** 8,
                     kamailio_feature_event_interval_ms=0, kamailio_usrloc_timer_interval=1)
    kemi_ab._large_directory(root, instance, variables, sip_bench.BASELINE_SHARED_PASSWORD)
    server = sip_bench.Server('voxplane', instance, variables)
    deployed = os.path.join(instance.config_dir, kemi_ab.SCRIPT)
    scripts = (('router', os.path.join(REPO, kemi_ab.SCRIPT)),
               ('baseline', os.path.join(sip_bench.BASELINE_KEMI, 'voxplane_kemi.py')))
    report = []
    try:
        server.deploy()
        instance.wait_for_directory(domain=kemi_ab.bd.domain(0))
        for request in requests:
            opts = argparse.Namespace(request=request, accounts=2000)
            scenario, inf, source, _rows = kemi_ab._requests(opts, root, instance, sip_bench.BASELINE_SHARED_PASSWORD)
            port = free_port(source, tcp=False)
            for name, path in scripts:
                shutil.copy(path, deployed)
                instance.kamcmd('app_python.reload')
                # warm-up: every account registered once (the first binding of an account is an
                # INSERT, later ones are updates), the snapshot loaded, the caches filled
                run_sipp(scenario, instance.target, source, root, calls=len(_rows), timeout=60, inf=inf, rate=1000,
                         local_port=port)
                time.sleep(SETTLE)
                calls = args.rate * (args.seconds + 2)
                thread, holder = _load(scenario, instance, source, root, inf, calls, args.rate, port)
                data = os.path.join(root, '%s-%s.perf' % (name, request))
                subprocess.run([PERF, 'record', '-q', '-F', str(args.frequency), '--call-graph', 'dwarf,16384',
                                '-o', data, '-p', ','.join(str(p) for p in server.pids), '--', 'sleep',
                                str(args.seconds)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                thread.join()
                time.sleep(SETTLE)
                script = subprocess.run([PERF, 'script', '-F', 'comm,tid,ip,sym,dso', '-i', data],
                                        capture_output=True, text=True, check=True).stdout
                stacks = flamegraph.fold(script.splitlines())
                title = '%s, %s at %d/s: all Kamailio processes (perf, %d samples)' % (
                    'voxplane router' if name == 'router' else 'minimal KEMI baseline', kemi_ab.WHAT[request],
                    args.rate, sum(stacks.values()))
                with open(os.path.join(args.out, '%s-%s-perf.svg' % (name, request)), 'w') as handle:
                    handle.write(flamegraph.svg(stacks, title))
                report.append((name, request, sum(stacks.values()), flamegraph.shares(stacks),
                               holder.get('result') and holder['result'].rc))
                if name == 'router':
                    thread, holder = _load(scenario, instance, source, root, inf, calls, args.rate, port)
                    svg = os.path.join(args.out, '%s-%s-py-spy.svg' % (name, request))
                    subprocess.run([PY_SPY, 'record', '-p', str(server.worker), '-d', str(args.seconds), '-r', '500',
                                    '-f', 'flamegraph', '-o', svg, '--nonblocking'],
                                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    thread.join()
                    time.sleep(SETTLE)
        print('self-time shares of all Kamailio processes (perf samples at %d/s, %d s windows, %d requests/s)'
              % (args.frequency, args.seconds, args.rate))
        names = [n for n, _c in flamegraph.CATEGORIES]
        print('   %-10s %-11s %8s ' % ('script', 'request', 'samples') + ' '.join('%9s' % n[:9] for n in names))
        for name, request, samples, share, _rc in report:
            print('   %-10s %-11s %8d ' % (name, request, samples) + ' '.join('%8.1f%%' % (share[n] * 100) for n in names))
        print('flame graphs in %s' % args.out)
    finally:
        instance.stop()
        sip_bench.remove_workroot(root)
    return 0


if __name__ == '__main__':
    sys.exit(main())
