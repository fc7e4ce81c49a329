# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part 4 (``run.py --reload``): what a directory change costs a worker, in-process.

On the large directory (100,000 extensions with ``--tenants 2000``): the full rebuild every
worker did before (the baseline) against the incremental reload (snapshot.load with the
previous snapshot) after one-extension changes committed like a module run; the snapshot's
memory; the routing core's decision latency per call (p50/p99/max, the garbage collector on,
as in a worker). With ``--snapshot-against REF`` also git REF's snapshot.py (a full build
from the same directory), e.g. the router before incremental reloads.
"""

import gc
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import directories as bd  # noqa: E402

REPO = bd.REPO
# Per-call timing (wall clock, no system call). A shared machine preempts the process in the
# middle of some calls: each pass gives its percentiles, the best pass counts (like the best of
# several passes of part 1), the median pass is printed beside it.
CLOCK = time.perf_counter_ns
PASSES = 5


def _txn(path):
    from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory
    return Directory(path).transaction(write=False, create=False)


def _load(path, trusted, previous=None, module=None):
    from ansible_collections.voxplane.pbx.plugins.module_utils import snapshot
    with _txn(path) as txn:
        return (module or snapshot).load(txn, trusted, *([previous] if previous is not None else []))


def _timed_load(path, trusted, previous=None, module=None):
    """(wall s, CPU s, snapshot)."""
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    snap = _load(path, trusted, previous, module)
    return time.perf_counter() - w0, time.process_time() - c0, snap


def _traced(fn):
    """(bytes still held by what fn() returns, its result), by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        gc.collect()
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current, result


def _reference_module(ref):
    """git REF's snapshot.py as a module of its own (it imports this tree's rules and model)."""
    text = subprocess.run(['git', '-C', REPO, 'show', '%s:plugins/module_utils/snapshot.py' % ref],
                          capture_output=True, text=True, check=True).stdout
    commit = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', ref], capture_output=True, text=True,
                            check=True).stdout.strip()
    handle, path = tempfile.mkstemp(suffix='_snapshot_%s.py' % commit)
    with os.fdopen(handle, 'w') as out:
        out.write(text)
    try:
        spec = importlib.util.spec_from_file_location('snapshot_%s' % commit, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.remove(path)
    return commit, module


def _latencies(snap, tenants, extensions, trusted, count, passes_count=PASSES):
    """us per call of each routing decision, one call at a time, requests spread over every
    tenant, the garbage collector on as in a worker: p50, p99 and max of the best pass, the p99
    of the median pass."""
    from ansible_collections.voxplane.pbx.plugins.module_utils import routing
    rng = random.Random(5062)
    numbers = bd.extension_numbers(extensions)
    now = time.time()
    cases = {'route_from_account (internal call)': [], 'route_inbound (DID in a block)': [],
             'registrar_credentials': [], 'after_failure (unregistered -> 480)': []}
    for _unused in range(count):
        t = rng.randrange(tenants)
        caller, callee = rng.sample(numbers, 2)
        kind = rng.choice(('desk', 'app'))
        did = bd.did(t, rng.choice(numbers))
        cases['route_from_account (internal call)'].append(
            (routing.route_from_account, (snap, bd.domain(t), bd.username(t, caller, kind), callee, now)))
        cases['route_inbound (DID in a block)'].append((routing.route_inbound, (snap, did, trusted, now)))
        cases['registrar_credentials'].append(
            (routing.registrar_credentials, (snap, bd.domain(t), bd.username(t, callee, kind))))
        context = routing.route_inbound(snap, did, trusted, now).context
        cases['after_failure (unregistered -> 480)'].append(
            (routing.after_failure, (snap, context, 'unregistered', now)))
    clock = CLOCK
    results = {}
    for name, calls in cases.items():
        for fn, args in calls[:200]:  # warm up
            fn(*args)
        passes = []
        for _unused in range(passes_count):
            times = []
            for fn, args in calls:
                t0 = clock()
                fn(*args)
                times.append(clock() - t0)
            times.sort()
            passes.append((times[len(times) // 2] / 1e3, times[int(len(times) * 0.99)] / 1e3, times[-1] / 1e3))
        p99s = sorted(p[1] for p in passes)
        results[name] = dict(p50=min(p[0] for p in passes), p99=p99s[0], p99_median=p99s[len(p99s) // 2],
                             max=min(p[2] for p in passes))
    return results


def run(path, tenants, extensions, trusted, quick, log, against=None):
    """Every figure of part 4; the directory at path is changed (DND of some extensions)."""
    trusted_list = [trusted]
    changes = 5 if quick else 20
    results = dict(changes=changes)

    log('reload: full rebuild (the baseline), %s' % ('once' if quick else 'median of 3'))
    fulls = [_timed_load(path, trusted_list) for _unused in range(1 if quick else 3)]
    snap = fulls[-1][2]
    results['full_wall_s'] = statistics.median(f[0] for f in fulls)
    results['full_cpu_s'] = statistics.median(f[1] for f in fulls)
    results['sizes'] = dict(tenants=len(snap.tenants), numbers=len(snap.numbers),
                            accounts=sum(len(t.accounts) for t in snap.tenants.values()),
                            targets=sum(len(t.targets) for t in snap.tenants.values()))

    log('reload: %d one-extension changes, each committed, then reloaded incrementally' % changes)
    rng = random.Random(5063)
    numbers = bd.extension_numbers(extensions)
    pauses, cpus, commits, wrong = [], [], [], []
    for i in range(changes):
        t, ext = rng.randrange(tenants), rng.choice(numbers)
        commits.append(bd.set_dnd(path, t, ext, True))
        wall, cpu, new = _timed_load(path, trusted_list, previous=snap)
        pauses.append(wall)
        cpus.append(cpu)
        from ansible_collections.voxplane.pbx.plugins.module_utils import routing
        plan = routing.route_inbound(new, bd.did(t, ext), trusted, time.time())
        if not (isinstance(plan, routing.Reject) and plan.code == 486) or new.rebuilt != 1:
            wrong.append('%s/%s: %r, %d rebuilt' % (bd.tenant_name(t), ext, plan, new.rebuilt))
        bd.set_dnd(path, t, ext, False)
        snap = _load(path, trusted_list, previous=new)
        log('reload: change %d: %s/%s, pause %.1f ms' % (i + 1, bd.tenant_name(t), ext, wall * 1e3))
    results.update(pause_median_ms=statistics.median(pauses) * 1e3, pause_max_ms=max(pauses) * 1e3,
                   cpu_median_ms=statistics.median(cpus) * 1e3, commit_median_ms=statistics.median(commits) * 1e3,
                   wrong=wrong)

    log('reload: routing-core latency per decision (p50/p99/max)')
    results['latency'] = _latencies(snap, tenants, extensions, trusted, 4000 if quick else 20000, 2 if quick else PASSES)

    log('reload: snapshot memory (tracemalloc), after a full build and after %d incremental reloads' % changes)
    del snap, fulls

    def _traced_size_hint():
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    def full_then_changes():
        first = _load(path, trusted_list)
        held = [_traced_size_hint()]
        current = first
        for _unused in range(changes):
            t, ext = rng.randrange(tenants), rng.choice(numbers)
            bd.set_dnd(path, t, ext, True)
            current = _load(path, trusted_list, previous=current)
            bd.set_dnd(path, t, ext, False)
            current = _load(path, trusted_list, previous=current)
        del first
        held.append(current)
        return held

    after, held = _traced(full_then_changes)
    results['memory_full_mb'] = held[0] / 1e6
    results['memory_after_changes_mb'] = after / 1e6
    del held
    if against:
        commit, module = _reference_module(against)
        log('reload: %s snapshot.py (%s): full build and memory' % (against, commit))
        wall, cpu, ref = _timed_load(path, trusted_list, module=module)
        del ref
        memory, ref = _traced(lambda: _load(path, trusted_list, module=module))
        results['against'] = dict(ref=against, commit=commit, full_wall_s=wall, full_cpu_s=cpu, memory_mb=memory / 1e6,
                                  latency=_latencies(ref, tenants, extensions, trusted, 4000 if quick else 20000,
                                                     2 if quick else PASSES))
        del ref
    return results


def report(results, reload_check_ms=500):
    """Print part 4; returns the lines' data for nothing else."""
    sizes = results['sizes']
    print()
    print('4. Reload after a one-extension change, in-process (%d tenants, %d extensions+groups, %d SIP accounts, '
          '%d numbers)' % (sizes['tenants'], sizes['targets'], sizes['accounts'], sizes['numbers']))
    print('   the baseline is the full rebuild every worker did at any change; incremental = snapshot.load with the')
    print('   previous snapshot (only the changed tenant is read and rebuilt); %d changes, each committed by a'
          % results['changes'])
    print('   reconcile transaction like a module run')
    print()
    print('   %-46s %12s %12s %10s' % ('', 'full rebuild', 'incremental', 'inc/full'))
    full_ms = results['full_wall_s'] * 1e3
    print('   %-46s %12.1f %12.1f %10s' % ('worker pause per change, median (ms, wall)', full_ms,
                                           results['pause_median_ms'], _ratio(full_ms, results['pause_median_ms'])))
    print('   %-46s %12.1f %12.1f %10s' % ('worker pause per change, longest (ms, wall)', full_ms,
                                           results['pause_max_ms'], _ratio(full_ms, results['pause_max_ms'])))
    print('   %-46s %12.1f %12.1f %10s' % ('CPU per change (ms)', results['full_cpu_s'] * 1e3,
                                           results['cpu_median_ms'], _ratio(results['full_cpu_s'] * 1e3,
                                                                            results['cpu_median_ms'])))
    print('   %-46s %12.1f %12.1f' % ('snapshot memory (MB, tracemalloc)', results['memory_full_mb'],
                                      results['memory_after_changes_mb']))
    print('   (memory: after the full build; after it and %d incremental reloads, the older snapshots dropped)'
          % (2 * results['changes']))
    print('   %-46s %12.1f' % ('commit of one change (ms, median)', results['commit_median_ms']))
    print('   change routed by a worker after its commit: at most reload_check_ms (%d ms) + the pause: %.0f ms'
          % (reload_check_ms, reload_check_ms + results['pause_max_ms']))
    if results['wrong']:
        print('   WRONG after an incremental reload: %s' % '; '.join(results['wrong']))
    against = results.get('against')
    print()
    header = '   %-40s %32s' % ('routing core, us per decision (one call', 'this tree p50/p99/max (p99 med)')
    if against:
        header += ' %34s' % ('%s p50/p99/max (p99 med)' % against['commit'])
    print(header)
    print('   at a time, GC on, spread requests; best of %d passes)' % PASSES)
    for name, row in results['latency'].items():
        line = '   %-40s %8.1f %7.1f %7.0f %8s' % (name, row['p50'], row['p99'], row['max'], '(%.1f)' % row['p99_median'])
        if against:
            ref = against['latency'][name]
            line += '   %8.1f %7.1f %7.0f %8s' % (ref['p50'], ref['p99'], ref['max'], '(%.1f)' % ref['p99_median'])
        print(line)
    if against:
        print()
        print('   %s snapshot.py (%s), full build from the same directory: %.1f s wall, %.1f s CPU, %.1f MB'
              % (against['ref'], against['commit'], against['full_wall_s'], against['full_cpu_s'], against['memory_mb']))
        print('   this tree, full build: %.1f s wall, %.1f s CPU, %.1f MB'
              % (results['full_wall_s'], results['full_cpu_s'], results['memory_full_mb']))


def _ratio(a, b):
    return '%.3fx' % (b / a) if a and b else '-'


if __name__ == '__main__':
    sys.exit('run it through bench/run.py --reload')
