# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router script's own cost per REGISTER pair, this tree's against older versions, measured
in one running Kamailio.

    .venv/bin/python bench/kemi_ab.py --against c9afe37 [--against REF ...] [--pairs 3000] [--rounds 6]
                                      [--accounts 2000]

One Kamailio is deployed from this tree (roles/kamailio through the SIP test harness: one UDP
worker, the tests' two tenants, no bans for the bench's address). Each round loads every
version's kemi/voxplane_kemi.py in turn into that same Kamailio (``app_python.reload``), in a
rotating order, and measures the CPU of all Kamailio processes (schedstat) over ``--pairs``
REGISTER pairs (challenge, then credentials) from a phone's address: of one account of the
SIP tests' directory (its contacts cleared before each run), or with ``--accounts N`` of N
accounts in turn in the bench's large directory (bench_directory: 200 tenants of 50
extensions, two accounts each), each always from the same port so that its binding is renewed. Everything else (cfg, modules, the collection's
module_utils, the machine's load at that moment) is the same for all versions, so the medians
compare the scripts alone: bench/run.py --against compares whole deployments instead, with
more drift between its two runs. A version whose script needs other module_utils than this
tree's fails loudly (its requests answer 500 and the run reports it).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys

import bench_directory as bd  # noqa: F401  (puts tests/sip on sys.path)
from bench_directory import sip_harness as h
import sip_bench

ADDRESS = '127.0.0.248'
PHONE = '127.0.0.247'
ACCOUNT, DOMAIN = 'bert.desk', 'acme.sip.test'
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join('kemi', 'voxplane_kemi.py')


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--against', action='append', required=True, metavar='REF',
                        help='a git commit, tag or branch whose kemi/voxplane_kemi.py to compare (repeatable)')
    parser.add_argument('--pairs', type=int, default=3000, help='REGISTER pairs per run (default 3000)')
    parser.add_argument('--rounds', type=int, default=6, help='runs per version (default 6)')
    parser.add_argument('--rate', type=int, default=1000, help='REGISTER pairs a second (default 1000)')
    parser.add_argument('--accounts', type=int, default=1,
                        help='register this many accounts in turn, in the large directory (default 1)')
    args = parser.parse_args()

    root = sip_bench.make_workroot()
    instance = h.KamailioInstance(root, ADDRESS, h.free_port(ADDRESS))
    variables = dict(kamailio_children=1, kamailio_ban_exempt=[], kamailio_flood_requests=10 ** 8)
    if args.accounts > 1:
        bd.use_collection(root)
        variables['kamailio_directory_path'] = os.path.join(root, 'large.db')
        bd.build(variables['kamailio_directory_path'], 200, 50, instance.trunk)
        numbers = bd.extension_numbers(50)
        accounts = [(bd.username(i % 200, numbers[(i // 200) % 25]), bd.domain(i % 200),
                     bd.password(i % 200, numbers[(i // 200) % 25])) for i in range(args.accounts)]
    else:
        accounts = [(ACCOUNT, DOMAIN, h.password(ACCOUNT))]
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
        if args.accounts == 1:
            provisioned = instance.provision()
            if provisioned.rc != 0:
                raise RuntimeError('provisioning failed: %r' % (provisioned,))
        instance.wait_for_directory(domain=accounts[0][1])
        versions = [(ref, script_of(ref, root)) for ref in args.against] + [('this tree', script_of(None, root))]
        inf = os.path.join(root, 'register.csv')
        with open(inf, 'w') as handle:
            handle.write('SEQUENTIAL\n')
            for user, domain, password in accounts:
                handle.write('%s;%s;[authentication username=%s password=%s]\n' % (user, domain, user, password))
        scenario = os.path.join(sip_bench.SCENARIOS, 'register.xml')
        port = h.free_port(PHONE, tcp=False)
        deployed = os.path.join(instance.config_dir, SCRIPT)
        figures = dict((name, []) for name, _path in versions)
        load_before = os.getloadavg()[0]
        for round_number in range(args.rounds):
            shift = round_number % len(versions)
            for name, path in versions[shift:] + versions[:shift]:
                shutil.copy(path, deployed)
                instance.kamcmd('app_python.reload')
                if args.accounts == 1:
                    instance.kamcmd('ul.rm', 'location', '%s@%s' % accounts[0][:2])
                # warm-up: the reloaded script loads its snapshot on its first request
                h.run_sipp(scenario, instance.target, PHONE, root, calls=100, timeout=30, inf=inf, rate=500,
                           local_port=port)
                run = sip_bench.measure(server, scenario, inf, args.pairs, args.rate, timeout=args.pairs // 100 + 60,
                                        settle=0.3, source=PHONE)
                if run['ok'] != args.pairs:
                    raise RuntimeError('%s: %d of %d REGISTER pairs succeeded\n%s\n%s' % (
                        name, run['ok'], args.pairs, run['errors'], instance.log_tail()))
                cost = run['sched_us_per_op'] or 0.0
                figures[name].append(cost)
                print('round %d  %-10s %7.1f us CPU per REGISTER pair' % (round_number + 1, name, cost), flush=True)
        mine = statistics.median(figures['this tree'])
        print('\nus CPU of all Kamailio processes per REGISTER pair (challenge + credentials), %d pairs x %d rounds, '
              '%d account(s)' % (args.pairs, args.rounds, len(accounts)))
        print('   %-12s %9s %9s %9s   %s' % ('version', 'median', 'min', 'max', 'this tree against it'))
        for name, values in figures.items():
            median = statistics.median(values)
            against = '' if name == 'this tree' else '%+.0f%%' % ((mine / median - 1) * 100)
            print('   %-12s %9.1f %9.1f %9.1f   %s' % (name, median, min(values), max(values), against))
        print('load average before %.2f, after %.2f' % (load_before, os.getloadavg()[0]))
    finally:
        instance.stop()
        sip_bench.remove_workroot(root)
    return 0


if __name__ == '__main__':
    sys.exit(main())
