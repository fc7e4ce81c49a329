# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router script's own cost per request, this tree's against older versions and the
benchmarks' minimal baseline script, measured in one running Kamailio.

    .venv/bin/python bench/kemi_ab.py [--against REF ...] [--baseline] [--script PATH ...]
                                      [--request register|invite_480] [--pairs 3000] [--rounds 6]
                                      [--accounts N]

One Kamailio is deployed from this tree (roles/kamailio through the SIP test harness: one UDP
worker, no bans for the bench's addresses). Each round loads every version's script in turn
into that same Kamailio (``app_python.reload``), in a rotating order, and measures the CPU of
all Kamailio processes (schedstat) over ``--pairs`` requests:

- ``register`` (default): REGISTER pairs (challenge, then credentials) from a phone's address,
  of one account of the SIP tests' directory (its contacts cleared before each run), or with
  ``--accounts N`` of N accounts in turn in the bench's large directory (lab.directories: 200
  tenants of 50 extensions, two accounts each), each always from the same port so that its
  binding is renewed;
- ``invite_480``: INVITEs from the trunk to DIDs of extensions nobody registered, answered 480
  and ACKed (the large directory).

``--baseline`` adds bench/baseline_kemi/voxplane_kemi.py, the minimal script bench/run.py
compares against (no directory: constants instead of lookups); its accounts get that script's
shared password, so that both scripts accept the same REGISTERs. ``--script PATH`` adds any
other script file (an experiment). Everything else (cfg, modules, the collection's
module_utils, the machine's load at that moment) is the same for all versions, so the medians
compare the scripts alone: bench/run.py compares whole deployments instead, with more drift
between its servers. A version whose script needs other module_utils than this tree's fails
loudly (its requests answer 500 and the run reports it).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import directories as bd  # noqa: E402
from lab.kamailio import KamailioInstance  # noqa: E402
from lab.net import free_port  # noqa: E402
from lab.sipp import password, run_sipp  # noqa: E402
import sip_bench

ADDRESS = '127.0.0.248'
PHONE = '127.0.0.247'
ACCOUNT, DOMAIN = 'bert.desk', 'acme.sip.test'
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join('kemi', 'voxplane_kemi.py')
LARGE_TENANTS = 200
WHAT = {'register': 'REGISTER pair (challenge + credentials)', 'invite_480': 'INVITE -> 480 (+ ACK)'}


def script_of(ref, folder):
    """The router script of git ``ref`` (None: this tree's) as a file in ``folder``."""
    path = os.path.join(folder, 'voxplane_kemi-%s.py' % (ref or 'this-tree'))
    if ref is None:
        shutil.copy(os.path.join(REPO, SCRIPT), path)
    else:
        text = subprocess.run(['git', '-C', REPO, 'show', '%s:%s' % (ref, SCRIPT)], check=True,
                              capture_output=True, text=True).stdout
        with open(path, 'w') as handle:
            handle.write(text)
    return path


def _large_directory(root, instance, variables, shared_password):
    """The bench's large directory (200 tenants x 50 extensions) for this Kamailio. With
    ``shared_password`` the registering accounts (extensions 10..34, desk phones) get it."""
    bd.use_collection()
    path = variables['kamailio_directory_path'] = os.path.join(root, 'large.db')
    bd.build(path, LARGE_TENANTS, 50, instance.trunk)
    if shared_password:
        bd.set_desk_passwords(path, LARGE_TENANTS, bd.extension_numbers(50)[:25], shared_password)


def _requests(args, root, instance, shared_password):
    """(sipp scenario, -inf path, source address) of the measured requests."""
    inf = os.path.join(root, 'requests.csv')
    rows = []
    if args.request == 'invite_480':
        # DIDs of extensions nobody registers (the REGISTER runs use 10..34), over all tenants.
        unregistered = bd.extension_numbers(50)[25:]
        for i in range(2000):
            t = i % LARGE_TENANTS
            rows.append((bd.did(t, unregistered[(i // LARGE_TENANTS) % len(unregistered)]), '%s:%d' % instance.target))
        scenario, source = os.path.join(sip_bench.SCENARIOS, 'invite_480.xml'), instance.trunk
    else:
        if args.accounts > 1 or shared_password:
            numbers = bd.extension_numbers(50)
            for i in range(args.accounts):
                t, ext = i % LARGE_TENANTS, numbers[(i // LARGE_TENANTS) % 25]
                user, domain = bd.username(t, ext), bd.domain(t)
                secret = shared_password or bd.password(t, ext)
                rows.append((user, domain, '[authentication username=%s password=%s]' % (user, secret)))
        else:
            rows.append((ACCOUNT, DOMAIN, '[authentication username=%s password=%s]' % (ACCOUNT, password(ACCOUNT))))
        scenario, source = os.path.join(sip_bench.SCENARIOS, 'register.xml'), PHONE
    with open(inf, 'w') as handle:
        handle.write('SEQUENTIAL\n')
        for row in rows:
            handle.write(';'.join(row) + '\n')
    return scenario, inf, source, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--against', action='append', default=[], metavar='REF',
                        help='a git commit, tag or branch whose kemi/voxplane_kemi.py to compare (repeatable)')
    parser.add_argument('--baseline', action='store_true',
                        help='also the minimal baseline script of bench/baseline_kemi (the ratio of bench/run.py)')
    parser.add_argument('--script', action='append', default=[], metavar='PATH',
                        help='also this router script file (repeatable)')
    parser.add_argument('--request', choices=('register', 'invite_480'), default='register',
                        help='what to measure (default register)')
    parser.add_argument('--pairs', type=int, default=3000, help='requests (REGISTER pairs, INVITEs) per run (default 3000)')
    parser.add_argument('--rounds', type=int, default=6, help='runs per version (default 6)')
    parser.add_argument('--rate', type=int, default=1000, help='requests a second (default 1000)')
    parser.add_argument('--accounts', type=int, default=1,
                        help='register this many accounts in turn, in the large directory (default 1)')
    args = parser.parse_args()
    if not (args.against or args.baseline or args.script):
        parser.error('nothing to compare with: give --against, --baseline or --script')

    root = sip_bench.make_workroot()
    instance = KamailioInstance(root, ADDRESS, free_port(ADDRESS))
    # No feature-key timer process and no call detail records: the baseline and older scripts have
    # no functions for them (the records' cost is bench/cdr_bench.py's).
    variables = dict(kamailio_children=1, kamailio_ban_exempt=[], kamailio_flood_requests=10 ** 8,
                     kamailio_feature_event_interval_ms=0, kamailio_cdr=False)
    shared_password = sip_bench.BASELINE_SHARED_PASSWORD if args.baseline and args.request == 'register' else None
    if args.baseline and args.request == 'register':
        args.accounts = max(args.accounts, 1)
    large = args.request == 'invite_480' or args.accounts > 1 or shared_password
    if large:
        _large_directory(root, instance, variables, shared_password)
    scenario, inf, source, rows = _requests(args, root, instance, shared_password)
    server = sip_bench.Server('voxplane', instance, variables)
    try:
        server.deploy()
        # On a shared machine other processes preempt the server between and within requests and
        # evict its caches; at the highest priority that happens less (the same for every version).
        for pid in server.pids:
            try:
                os.setpriority(os.PRIO_PROCESS, pid, -20)
            except OSError:
                pass
        if not large:
            provisioned = instance.provision()
            if provisioned.rc != 0:
                raise RuntimeError('provisioning failed: %r' % (provisioned,))
        instance.wait_for_directory(domain=bd.domain(0) if large else DOMAIN)
        versions = [(ref, script_of(ref, root)) for ref in args.against]
        if args.baseline:
            versions.append(('baseline', os.path.join(sip_bench.BASELINE_KEMI, 'voxplane_kemi.py')))
        versions += [(os.path.basename(path), path) for path in args.script]
        versions.append(('this tree', script_of(None, root)))
        port = free_port(source, tcp=False)
        deployed = os.path.join(instance.config_dir, SCRIPT)
        figures = dict((name, []) for name, _path in versions)
        load_before = os.getloadavg()[0]
        for round_number in range(args.rounds):
            shift = round_number % len(versions)
            for name, path in versions[shift:] + versions[:shift]:
                shutil.copy(path, deployed)
                instance.kamcmd('app_python.reload')
                if args.request == 'register' and len(rows) == 1:
                    instance.kamcmd('ul.rm', 'location', '%s@%s' % rows[0][:2])
                # warm-up: the reloaded script loads its snapshot on its first request
                run_sipp(scenario, instance.target, source, root, calls=100, timeout=30, inf=inf, rate=500,
                         local_port=port)
                run = sip_bench.measure(server, scenario, inf, args.pairs, args.rate, timeout=args.pairs // 100 + 60,
                                        settle=0.3, source=source)
                if run['ok'] != args.pairs:
                    raise RuntimeError('%s: %d of %d requests succeeded\n%s\n%s' % (
                        name, run['ok'], args.pairs, run['errors'], instance.log_tail()))
                cost = run['sched_us_per_op'] or 0.0
                figures[name].append(cost)
                print('round %d  %-14s %7.1f us CPU per %s' % (round_number + 1, name, cost, WHAT[args.request]), flush=True)
        mine = statistics.median(figures['this tree'])
        print('\nus CPU of all Kamailio processes per %s, %d x %d rounds%s' % (
            WHAT[args.request], args.pairs, args.rounds,
            ', %d account(s)' % len(rows) if args.request == 'register' else ''))
        print('   %-14s %9s %9s %9s   %s' % ('version', 'median', 'min', 'max', 'this tree against it'))
        for name, values in figures.items():
            median = statistics.median(values)
            against = '' if name == 'this tree' else '%+.0f%% (%.2fx)' % ((mine / median - 1) * 100, mine / median)
            print('   %-14s %9.1f %9.1f %9.1f   %s' % (name, median, min(values), max(values), against))
        print('load average before %.2f, after %.2f' % (load_before, os.getloadavg()[0]))
    finally:
        instance.stop()
        sip_bench.remove_workroot(root)
    return 0


if __name__ == '__main__':
    sys.exit(main())
