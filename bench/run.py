# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane benchmark: the routing core in-process, then the real Kamailio under sipp load.

    .venv/bin/python bench/run.py            full run, about 3.5 minutes
    .venv/bin/python bench/run.py --quick    about 1 minute
    options: --core-only, --sip-only, --json FILE, --keep (keep the temporary tree),
             --against REF (the SIP part of git REF's bench first, then both side by side),
             --reload / --reload-only (part 4: a one-extension change on 100,000 extensions, full
             rebuild against incremental reload; --snapshot-against REF adds git REF's snapshot.py)

Needs root (Kamailio drops to the kamailio user itself), kamailio, sipp and ansible-playbook
next to this Python (the venv), like tests/sip. Everything runs on loopback: voxplane Kamailio
on 127.0.0.251, the baseline on 127.0.0.252, every sipp on 127.0.0.253, random free high ports.
Every sipp run is bounded (-m, -timeout); a watchdog ends the whole run after --deadline
seconds; both Kamailio instances are stopped (by pid file) at the end, even after an error.
See docs/benchmarks.md.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import directories as bd  # noqa: E402
from lab.kamailio import KAMAILIO, missing_prerequisites  # noqa: E402
from lab.sipp import SIPP  # noqa: E402

TENANTS = 200
RELOAD_TENANTS = 2000
EXTENSIONS = 50
T0 = time.monotonic()


def log(message):
    sys.stderr.write('[%5.1fs] %s\n' % (time.monotonic() - T0, message))
    sys.stderr.flush()


class Deadline(Exception):
    pass


def _on_alarm(_signum, _frame):
    raise Deadline('the benchmark ran past its deadline')


def _on_term(signum, _frame):
    raise KeyboardInterrupt('signal %d' % signum)


# ------------------------------------------------------------------------------ machine
def _first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return '?'


def machine():
    model = '?'
    try:
        with open('/proc/cpuinfo') as handle:
            for line in handle:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(cpus=os.cpu_count(), cpu_model=model, kernel=platform.release(), loadavg=os.getloadavg(),
                python=platform.python_version(), kamailio=_first_line([KAMAILIO, '-v']),
                sipp=_first_line([SIPP, '-v']).replace('SIPp ', ''))


# ------------------------------------------------------------------------------ printing
def _fmt(value, spec='%.1f', none='-'):
    return none if value is None else spec % value


def _ratio(a, b):
    return '%.2fx' % (b / a) if a and b else '-'


def print_core(core, tenants):
    sizes, dec, loads = core['sizes'], core['decisions'], core['loads']
    print()
    print('1. Routing core in-process (Python %s; best of %d passes over %d seeded requests spread over all tenants)' % (
        platform.python_version(), core['repeats'], core['count']))
    for label in ('small', 'medium', 'large'):
        print('   %-6s %4d tenant(s), %6d extensions+groups, %6d SIP accounts, %6d numbers' % (
            label, sizes[label]['tenants'], sizes[label]['targets'], sizes[label]['accounts'], sizes[label]['numbers']))
    print()
    print('   %-38s %27s     %-16s' % ('', 'requests spread over all tenants', 'one request repeated'))
    print('   %-38s %8s %8s %8s %8s   %8s %8s %6s %12s' % (
        'us per decision', 'small', 'medium', 'large', 'l/s', 'small', 'large', 'l/s', 'large dec./s'))
    for name in dec['small']:
        sm, md, lg = dec['small'][name], dec['medium'][name], dec['large'][name]
        print('   %-38s %8.2f %8.2f %8.2f %8s   %8.2f %8.2f %6s %12s' % (
            name, sm['spread'], md['spread'], lg['spread'], _ratio(sm['spread'], lg['spread']),
            sm['same'], lg['same'], _ratio(sm['same'], lg['same']), '{:,.0f}'.format(1e6 / lg['spread'])))
    print()
    print('   %-38s %8.1f %8.1f %8.1f %8s   (ms; the reload cost, per worker)' % (
        'snapshot build (SQLite -> index)', loads['small'] * 1e3, loads['medium'] * 1e3, loads['large'] * 1e3,
        _ratio(loads['small'], loads['large'])))
    if core.get('large_memory_bytes'):
        memory_mb = core['large_memory_bytes'] / 1e6
        print('   %-38s %8s %8s %8.1f   (MB; one copy per worker)' % ('snapshot memory (tracemalloc)', '', '', memory_mb))
    checks = dict(core['checks'])
    if 'error' in checks:
        print('   KEMI adapter: %s' % checks.pop('error'))
    for name, value in checks.items():
        if not name.startswith('adapter: '):
            print('   %-52s %8.3f   (us, large)' % (name, value))
    adapter = [(n[len('adapter: '):], v) for n, v in checks.items() if n.startswith('adapter: ')]
    if adapter:
        print('   whole request through kemi/voxplane_kemi.py ksr_request_route, stub KSR (Python side only):')
        for name, value in adapter:
            print('     %-50s %8.2f   (us, large)' % (name, value))
    print('   %-52s %8.1f   (s, large; reconcile, one transaction per tenant)' % (
        'directory build (provisioning)', core['large_build_s']))


SIP_ROWS = [
    ('register', 'REGISTER + digest, 1 account', '2 / 2'),
    ('register_many', 'REGISTER + digest, many accounts', '2 / 2'),
    ('invite_480', 'INVITE unregistered DID -> 480, ACK', '2 / 1'),
    ('call', 'call: INVITE 180 200 ACK BYE 200 (tm)', '6 / 7'),
]
VARIANT_NAMES = (('baseline', 'base'), ('checks', '+checks'), ('voxplane', 'vox'), ('stock', 'stock'))


def _us(result):
    """A server's figure for a row: the median of its rounds (older JSON: the whole run's)."""
    if not result:
        return None
    return result.get('median_us') or result['us_per_op']


def print_sip(sip, deploy_seconds):
    present = [k for k, _n in VARIANT_NAMES if any(k in row for key, row in sip.items() if key != 'reload')]
    heads = [n for k, n in VARIANT_NAMES if k in present]
    print()
    print('2. Kamailio 5.6 + app_python3 under sipp load: 1 UDP worker (children=1), loopback, the role-rendered cfg')
    print('   us = microseconds of CPU per call of all Kamailio processes (schedstat) around each bounded sipp run,')
    print('   the median of the rounds (every server in turn in each round);')
    print('   base = bench/baseline_kemi (minimal KEMI: fixed HA1, no directory);')
    if 'stock' in present:
        print('   stock = Debian\'s stock kamailio.cfg, WITH_AUTH/USRLOCDB/NAT/RTPENGINE/ANTIFLOOD on SQLite (bench/stock_anchor.py)')
    if 'checks' in present:
        print('   +checks = baseline plus the voxplane router\'s request checks (maxfwd, sanity, t_check_trans)')
    print()
    print('   %-44s %-12s' % ('operation', 'msgs in/out') + ''.join('%11s' % ('%s us' % n) for n in heads)
          + '%9s%10s %12s %8s' % ('vox/base', 'vox/stock', 'failed', 'rate/s'))
    for key, label, msgs in SIP_ROWS:
        row = sip.get(key)
        if not row:
            continue
        base, vox = row.get('baseline'), row.get('voxplane')
        ref = base or sip.get('register', {}).get('baseline')
        label = row[next(iter(row))].get('label', label) if key == 'register_many' else label
        cells = ''.join('%11s' % _fmt(_us(row.get(k))) for k in present)
        failed = '/'.join(str(row[k]['failed'] + (row[k]['calls'] - row[k]['ok'] - row[k]['failed'])) if k in row else '-'
                          for k in present)
        calls = max(r['calls'] for r in row.values())
        print('   %-44s %-12s' % (label, msgs) + cells + '%9s%10s %12s %8s' % (
            _ratio(_us(ref), _us(vox)) + ('' if base else '*'), _ratio(_us(row.get('stock')), _us(vox)), failed,
            '%d' % (vox or base)['offered_rate']) + ('   (%d calls each)' % calls if key == 'register' else ''))
    print('   failed = failed or missing calls per server, in column order%s' % (
        '; * against the 1-account baseline' if any('baseline' not in sip.get(k, {'baseline': 1}) for k, _l, _m in SIP_ROWS) else ''))
    print('   the UDP worker alone: %s' % '; '.join(
        '%s %s' % (key, '/'.join(_fmt(sip[key][k]['worker_us_per_op']) if k in sip[key] else '-' for k in present))
        for key, _l, _m in SIP_ROWS if key in sip))
    for key, _label, _msgs in SIP_ROWS:
        for k in present:
            r = sip.get(key, {}).get(k)
            if not r or not r['ok']:
                continue
            others = sorted(((v / r['ok'] * 1e6, n) for n, v in r['by_process'].items()
                             if n != 'udp worker' and not n.startswith('pid ')), reverse=True)
            if others and others[0][0] > 0.1 * r['us_per_op']:
                print('   %s/%s: besides the worker, %s' % (key, k, ', '.join('%s %.0f us' % (n, v) for v, n in others if v >= 1)))
    cap = sip.get('register_capacity')
    if cap:
        print()
        print('   %-44s' % ('capacity: REGISTER, closed loop, %d in flight' % cap['voxplane']['limit'])
              + ''.join('%12s' % n for n in heads) + '%10s%10s' % ('vox/base', 'vox/stock'))
        b, v, st = cap['baseline'], cap['voxplane'], cap.get('stock')
        rows = (
            ('registrations/s achieved', lambda r: '%.0f' % r['rate'], _ratio(b['rate'], v['rate']),
             _ratio(st and st['rate'], v['rate'])),
            ('failed / retransmissions', lambda r: '%d / %d' % (r['failed'] + r['calls'] - r['ok'] - r['failed'],
                                                                r['retransmissions']), '', ''),
            ('us CPU per registration (all processes)', lambda r: '%.1f' % _us(r), _ratio(_us(b), _us(v)),
             _ratio(_us(st), _us(v))),
            ('ceiling for one worker core (1e6 / us)', lambda r: '%.0f/s' % (1e6 / _us(r)), '', ''),
            ('Kamailio CPU / wall', lambda r: '%.0f%%' % (r['kamailio_util'] * 100), '', ''),
            ('sipp CPU / wall', lambda r: '%.0f%%' % (r['sipp_cpu_s'] / r['elapsed'] * 100), '', ''),
        )
        for label, cell, ratio, ratio_stock in rows:
            print('   %-44s' % label + ''.join('%12s' % (cell(cap[k]) if k in cap else '-') for k in present)
                  + '%10s%10s' % (ratio, ratio_stock))
    reload_ = sip.get('reload')
    if reload_:
        print()
        print('   reload (voxplane): the first request after a directory change took %.0f ms (normally %.1f ms):' % (
            reload_['stall_ms'], reload_['normal_ms']))
        print('   %.0f ms CPU in the worker reloading its snapshot, serving nothing else meanwhile (reply: %s)' % (
            reload_['worker_cpu_ms'], reload_['reply']))
        change = reload_.get('change')
        if change:
            print('   one-extension change under load (DND of %s/%s, trunk INVITEs to %s one after another):' % (
                change['tenant'], change['extension'], change['number']))
            print('   routed by the worker %s ms after the commit (%.0f ms); slowest reply around the reload %s ms '
                  '(normally %s ms);' % (_fmt(change['routed_after_ms'], '%.0f'), change['commit_ms'],
                                         _fmt(change['slowest_ms'], '%.1f'), _fmt(change['normal_ms'], '%.1f')))
            print('   %d probes, %d unanswered; worker CPU in that window %.0f ms; replies %s -> %s' % (
                change['probes'], change['unanswered'], change['worker_cpu_ms'], change['first_reply'],
                change['last_reply']))
    if deploy_seconds:
        print('   (deploy through roles/kamailio, in parallel: %s)' % ', '.join(
            '%s %.1f s' % item for item in sorted(deploy_seconds.items())))


# ------------------------------------------------------------------------------ main
def run_reference(ref, quick, deadline):
    """The SIP part of the benchmark as git ``ref`` had it (its own role, router and bench), in
    a temporary worktree: every figure of that run, or raises. Run before this tree's own run,
    so that both share the machine's state of the moment as far as possible."""
    repo = os.path.dirname(HERE)
    tree = tempfile.mkdtemp(prefix='voxplane-bench-ref-')
    out = os.path.join(tree + '.json')
    try:
        subprocess.run(['git', '-C', repo, 'worktree', 'add', '--detach', '--force', tree, ref], check=True,
                       stdout=subprocess.DEVNULL)
        log('reference %s: running its bench in %s' % (ref, tree))
        cmd = [sys.executable, os.path.join(tree, 'bench', 'run.py'), '--sip-only', '--json', out,
               '--deadline', str(deadline)] + (['--quick'] if quick else [])
        proc = subprocess.run(cmd, cwd=tree, stdout=subprocess.PIPE, text=True, timeout=deadline + 60, check=False)
        if proc.returncode == 2 or not os.path.exists(out):
            raise RuntimeError('the bench of %s did not finish (exit %d)' % (ref, proc.returncode))
        with open(out) as handle:
            return json.load(handle)
    finally:
        subprocess.run(['git', '-C', repo, 'worktree', 'remove', '--force', tree], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tree, ignore_errors=True)
        if os.path.exists(out):
            os.remove(out)


def print_against(ref, before, after):
    """This tree's voxplane router against the reference's, each also relative to its own run's
    baseline KEMI server (the ratio that the machine's load affects least)."""
    print()
    print('3. Against %s (its bench run first, then this tree\'s; us CPU per call, voxplane server)' % ref)
    print()
    print('   %-44s %10s %10s %8s %12s %12s %8s' % ('operation', 'ref us', 'now us', 'now/ref', 'ref vox/base',
                                                    'now vox/base', 'change'))
    for key, label, _msgs in SIP_ROWS + [('register_capacity', 'REGISTER, closed loop (capacity)', '')]:
        old, new = before.get(key, {}), after.get(key, {})
        if 'voxplane' not in old or 'voxplane' not in new:
            continue
        old_ratio = old['voxplane']['us_per_op'] / old['baseline']['us_per_op'] if 'baseline' in old else None
        new_ratio = new['voxplane']['us_per_op'] / new['baseline']['us_per_op'] if 'baseline' in new else None
        change = '%+.0f%%' % ((new_ratio / old_ratio - 1) * 100) if old_ratio and new_ratio else '-'
        print('   %-44s %10s %10s %8s %12s %12s %8s' % (
            label, _fmt(old['voxplane']['us_per_op']), _fmt(new['voxplane']['us_per_op']),
            _ratio(old['voxplane']['us_per_op'], new['voxplane']['us_per_op']),
            '%.2fx' % old_ratio if old_ratio else '-', '%.2fx' % new_ratio if new_ratio else '-', change))
    print('   change = (now vox/base) / (ref vox/base) - 1: the router\'s own cost, with the machine\'s drift divided out')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--quick', action='store_true', help='shorter runs, no capacity run (about 1 minute)')
    parser.add_argument('--core-only', action='store_true', help='only the in-process routing core')
    parser.add_argument('--sip-only', action='store_true', help='only Kamailio under sipp load')
    parser.add_argument('--json', help='also write every figure to this JSON file')
    parser.add_argument('--keep', action='store_true', help='keep the temporary tree (logs, sipp files)')
    parser.add_argument('--reload', action='store_true', help='add part 4: reloads after one-extension changes '
                        '(the large directory defaults to %d tenants = %d extensions)' % (RELOAD_TENANTS, RELOAD_TENANTS * EXTENSIONS))
    parser.add_argument('--reload-only', action='store_true', help='only part 4 (no root needed)')
    parser.add_argument('--snapshot-against', metavar='REF', help='part 4 also builds the snapshot with git REF\'s '
                        'snapshot.py (e.g. the router before incremental reloads)')
    parser.add_argument('--tenants', type=int, default=None, help='tenants of the large directory (default %d, '
                        '%d with --reload)' % (TENANTS, RELOAD_TENANTS))
    parser.add_argument('--extensions', type=int, default=EXTENSIONS,
                        help='extensions per tenant, at most 89 (default %(default)s)')
    parser.add_argument('--deadline', type=int, default=None, help='seconds before the watchdog stops everything '
                        '(default 180 with --quick, 480 otherwise)')
    parser.add_argument('--rounds', type=int, default=None, help='rounds of every SIP row, each server in turn in '
                        'each (default 4, 1 with --quick); the report gives their medians')
    parser.add_argument('--no-stock', action='store_true', help='without the native anchor (Debian\'s stock '
                        'kamailio.cfg, bench/stock_anchor.py)')
    parser.add_argument('--against', metavar='REF', help='first run the SIP part of the bench of git REF (commit, '
                        'tag, branch) in a temporary worktree, then print both side by side')
    args = parser.parse_args(argv)
    run_reload = args.reload or args.reload_only
    if args.tenants is None:
        args.tenants = RELOAD_TENANTS if run_reload else TENANTS
    run_sip = not args.core_only and not args.reload_only
    if run_sip:
        reason = missing_prerequisites()
        if reason:
            parser.error(reason)
    deadline = args.deadline or (180 if args.quick else 480) + (1200 if run_reload else 0)
    reference = None
    if args.against:
        if args.core_only:
            parser.error('--against compares the SIP part: leave out --core-only')
        reference = run_reference(args.against, args.quick, deadline)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.alarm(deadline)

    import core_bench  # pylint: disable=import-outside-toplevel
    import reload_bench  # pylint: disable=import-outside-toplevel
    import sip_bench  # pylint: disable=import-outside-toplevel

    workroot = sip_bench.make_workroot()
    bd.use_collection()
    info = machine()
    log('voxplane bench%s in %s (%d CPUs, load %.2f %.2f %.2f)' % (
        ' --quick' if args.quick else '', workroot, info['cpus'], *info['loadavg']))
    tenants, extensions = args.tenants, args.extensions
    results = dict(machine=info, quick=args.quick, tenants=tenants, extensions=extensions)
    bench = None
    status = 0
    try:
        dir_folder = os.path.join(workroot, 'directory')
        os.makedirs(dir_folder)
        large_path = os.path.join(dir_folder, 'directory.db')
        log('building the large directory: %d tenants x %d extensions (2 SIP accounts each), a DDI block each'
            % (tenants, extensions))
        t0 = time.perf_counter()
        bd.build(large_path, tenants, extensions, sip_bench.CLIENT_ADDRESS)
        large_build = time.perf_counter() - t0
        if not args.sip_only and not args.reload_only:
            core = core_bench.run(workroot, large_path, tenants, extensions, sip_bench.CLIENT_ADDRESS, args.quick, log)
            core['large_build_s'] = large_build
            results['core'] = core
            print_core(core, tenants)
            sys.stdout.flush()
        if run_reload:
            results['reload'] = reload_bench.run(large_path, tenants, extensions, sip_bench.CLIENT_ADDRESS, args.quick,
                                                 log, against=args.snapshot_against)
            reload_bench.report(results['reload'])
            sys.stdout.flush()
        if run_sip:
            bench = sip_bench.Bench(workroot, large_path, tenants, extensions, args.quick, log, rounds=args.rounds,
                                    with_stock=not args.no_stock)
            results['deploy_s'] = bench.deploy()
            results['sip'] = bench.run()
            print_sip(results['sip'], results['deploy_s'])
            if reference is not None:
                results['against'] = dict(ref=args.against, sip=reference.get('sip', {}))
                print_against(args.against, reference.get('sip', {}), results['sip'])
            failures = [(k, s) for k, row in results['sip'].items() if k != 'reload'
                        for s, r in row.items() if r['failed'] or r['rc'] != 0]
            if failures:
                print('\n   FAILED CALLS in: %s' % ', '.join('%s/%s' % f for f in failures))
                status = 1
    except (Deadline, KeyboardInterrupt) as exc:
        log('stopping: %s' % (exc or 'interrupted'))
        status = 2
    finally:
        signal.alarm(0)
        if bench is not None:
            log('stopping both Kamailio instances')
            bench.stop()
        if args.keep:
            log('kept %s' % workroot)
        else:
            sip_bench.remove_workroot(workroot)
    results['load_after'] = os.getloadavg()
    results['seconds'] = time.monotonic() - T0
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(results, handle, indent=1, sort_keys=True, default=str)
    print()
    print('machine: %(cpus)d CPUs (%(cpu_model)s), kernel %(kernel)s, Python %(python)s; %(kamailio)s; sipp %(sipp)s' % info)
    print('load average before %.2f, after %.2f; total %.0f s%s' % (
        info['loadavg'][0], results['load_after'][0], results['seconds'], ' (--quick)' if args.quick else ''))
    return status


if __name__ == '__main__':
    sys.exit(main())
