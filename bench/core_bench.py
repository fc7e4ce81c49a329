# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part 1: the routing core in-process, over a large and a small directory snapshot.

Decisions are timed like ``timeit`` does (garbage collector off, best of several repeats) over
a fixed, seeded list of requests spread over every tenant of the snapshot, so that a large
snapshot is not measured on one hot cache line. The small snapshot is the baseline: the
large/small ratio shows whether a decision depends on the directory size.
"""

import gc
import importlib.util
import os
import random
import statistics
import sys
import time
import tracemalloc
import types

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import directories as bd  # noqa: E402

REPO = bd.REPO


def _timed(fn, args, repeats):
    """CPU seconds per call of fn(*a) for a in args: the best of ``repeats`` passes (process CPU time,
    so that time the shared machine gives to other processes does not count)."""
    best = float('inf')
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _unused in range(repeats):
            t0 = time.process_time()
            for a in args:
                fn(*a)
            best = min(best, time.process_time() - t0)
    finally:
        if enabled:
            gc.enable()
    return best / len(args)


def _load_snapshot(path, trusted):
    from ansible_collections.voxplane.pbx.plugins.module_utils import snapshot
    from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory
    with Directory(path).transaction(write=False, create=False) as txn:
        return snapshot.load(txn, trusted)


def _snapshot_build(path, trusted, repeats):
    """(median seconds, snapshot) of snapshot.load over the SQLite directory (what a worker does at a reload)."""
    times = []
    snap = None
    for _unused in range(repeats):
        snap = None
        gc.collect()
        t0 = time.perf_counter()
        snap = _load_snapshot(path, trusted)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), snap


def _snapshot_memory(path, trusted):
    """Bytes held by one snapshot (tracemalloc; every Kamailio worker holds its own copy)."""
    gc.collect()
    tracemalloc.start()
    try:
        snap = _load_snapshot(path, trusted)
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del snap
    return current


def _requests(tenants, extensions, count, seed):
    """Seeded request arguments spread over every tenant and extension."""
    rng = random.Random(seed)
    numbers = bd.extension_numbers(extensions)
    now = time.time()
    calls, inbound, creds = [], [], []
    for _unused in range(count):
        t = rng.randrange(tenants)
        caller, callee = rng.sample(numbers, 2)
        kind = rng.choice(('desk', 'app'))
        calls.append((bd.domain(t), bd.username(t, caller, kind), callee, now))
        inbound.append((bd.did(t, rng.choice(numbers)), None, now))
        creds.append((bd.domain(t), bd.username(t, rng.choice(numbers), kind)))
    return calls, inbound, creds


def _cases(snap, tenants, extensions, trusted, count):
    """[(name, fn, spread args)] of the routing functions over this snapshot."""
    from ansible_collections.voxplane.pbx.plugins.module_utils import routing
    calls, inbound, creds = _requests(tenants, extensions, count, seed=5060)
    # Sanity: the requests get the answers the benchmark means to time.
    sample_call = routing.route_from_account(snap, *calls[0])
    sample_in = routing.route_inbound(snap, inbound[0][0], trusted, inbound[0][2])
    sample_creds = routing.registrar_credentials(snap, *creds[0])
    assert isinstance(sample_call, routing.Ring), sample_call
    assert isinstance(sample_in, routing.Ring), sample_in
    assert isinstance(sample_creds, tuple), sample_creds
    # An INVITE to an extension nobody registered: the adapter then asks after_failure('unregistered').
    failures = [(routing.route_inbound(snap, d, trusted, now).context, 'unregistered', now) for d, _s, now in inbound]
    return (
        ('route_from_account (internal call)', lambda d, u, n, now: routing.route_from_account(snap, d, u, n, now), calls),
        ('route_inbound (DID in a block)', lambda d, _s, now: routing.route_inbound(snap, d, trusted, now), inbound),
        ('registrar_credentials', lambda d, u: routing.registrar_credentials(snap, d, u), creds),
        ('after_failure (unregistered -> 480)', lambda c, o, now: routing.after_failure(snap, c, o, now), failures),
    )


def _decisions(snaps, tenant_counts, extensions, trusted, count, repeats):
    """µs per decision: {size: {name: {'spread': us, 'same': us}}}.

    spread: every request different, over all tenants (a worker's real pattern: cold caches);
    same: one request repeated (everything stays in the CPU caches: only the algorithm is left).
    Passes of all sizes are interleaved, so that a change in the machine's load hits all alike."""
    cases = dict((label, _cases(snaps[label], tenant_counts[label], extensions, trusted, count)) for label in SIZES)
    best = dict((label, {}) for label in SIZES)
    for index in range(len(cases[SIZES[0]])):
        for _unused in range(repeats):
            for label in SIZES:
                name, fn, args = cases[label][index]
                entry = best[label].setdefault(name, dict(spread=float('inf'), same=float('inf')))
                entry['spread'] = min(entry['spread'], _timed(fn, args, 1))
                entry['same'] = min(entry['same'], _timed(fn, [args[0]] * len(args), 1))
    return dict((label, dict((name, dict((m, t * 1e6) for m, t in v.items())) for name, v in best[label].items()))
                for label in SIZES)


class _StubModule(types.ModuleType):
    """A stand-in for one KSR submodule: every function returns 1 unless told otherwise."""

    def __init__(self, name, returns):
        super().__init__(name)
        self._returns = returns

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        value = self._returns.get(name, 1)

        def fn(*_args):
            return value
        setattr(self, name, fn)
        return fn


def _stub_ksr(pv):
    """A minimal, fast KSR: pv.get reads the dict pv; an initial request without a transaction;
    no registered contact (lookups fail); errors logged are kept in ksr.errors."""
    ksr = types.ModuleType('KSR')
    ksr.errors = []
    ksr.info = ksr.dbg = ksr.notice = ksr.warn = lambda *_a: None
    ksr.err = ksr.crit = ksr.errors.append
    ksr.pv = types.ModuleType('KSR.pv')
    ksr.pv.get = pv.get
    ksr.pv.sets = ksr.pv.seti = lambda *_a: None
    fail = -1
    for name, returns in (('siputils', dict(has_totag=fail)), ('tm', dict(t_check_trans=fail)),
                          ('rr', dict(loose_route=fail)), ('registrar', dict(lookup_uri=fail, lookup_to_dset=fail))):
        setattr(ksr, name, _StubModule('KSR.' + name, returns))
    for name in ('maxfwd', 'sanity', 'sl', 'hdr', 'auth', 'pvx', 'pike', 'dialog', 'uac'):
        setattr(ksr, name, _StubModule('KSR.' + name, {}))
    ksr.htable = _StubModule('KSR.htable', dict(sht_get=None))   # nobody is banned
    ksr.is_myself = lambda *_a: False
    ksr.set_drop = lambda *_a: None
    return ksr


def _kemi_module(ksr):
    """kemi/voxplane_kemi.py imported with the given stand-in KSR."""
    previous = sys.modules.get('KSR')
    sys.modules['KSR'] = ksr
    try:
        spec = importlib.util.spec_from_file_location('voxplane_kemi_bench', os.path.join(REPO, 'kemi', 'voxplane_kemi.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            sys.modules.pop('KSR', None)
        else:
            sys.modules['KSR'] = previous
    return module


PHONE = '127.0.0.250'


def _kemi(path, trusted, tenants, extensions, count, repeats):
    """The KEMI adapter in-process: generation checks of its DirectoryView, and whole requests
    through ksr_request_route with a stub KSR (the Python side of a request only, hot caches)."""
    results = {}
    pv = {}
    ksr = _stub_ksr(pv)
    try:
        kemi = _kemi_module(ksr)
        # Polling on every call: one SELECT of the generation row on the worker's connection.
        view = kemi.DirectoryView(path, trusted, 0.0)
        view.current()
        results['generation check (SELECT on the worker connection)'] = _timed(view.current, [()] * count, 5) * 1e6
        # Between polls (reload_check_ms, default 500 ms): a clock read and a comparison.
        view = kemi.DirectoryView(path, trusted, 3600.0)
        view.current()
        results['DirectoryView.current() between polls'] = _timed(view.current, [()] * count * 10, 5) * 1e6
        kemi.VIEW = view
        router = kemi.kamailio()
        router.view = view
    except Exception as exc:  # pylint: disable=broad-except
        results['error'] = 'kemi/voxplane_kemi.py: %s: %s' % (type(exc).__name__, exc)
        return results

    rng = random.Random(5061)
    numbers = bd.extension_numbers(extensions)
    registers, challenges, invites = [], [], []
    for _unused in range(count):
        t = rng.randrange(tenants)
        user = bd.username(t, rng.choice(numbers), rng.choice(('desk', 'app')))
        # from a phone's address (not a trunk): the ban and flood checks run as for any phone
        registers.append({'$rm': 'REGISTER', '$si': PHONE, '$td': bd.domain(t), '$tU': user, '$au': user,
                          '$ru': 'sip:' + bd.domain(t), '$adu': 'sip:' + bd.domain(t)})
        challenges.append({'$rm': 'REGISTER', '$si': PHONE, '$td': bd.domain(t), '$tU': user})
        invites.append({'$rm': 'INVITE', '$si': trusted[0], '$rU': bd.did(t, rng.choice(numbers))})

    def request(values):
        pv.clear()
        pv.update(values)
        router.ksr_request_route(None)

    for name, args in (('REGISTER without credentials -> 401', challenges),
                       ('REGISTER with credentials -> save', registers),
                       ('INVITE from the trunk -> 480 (no contact)', invites)):
        del ksr.errors[:]
        results['adapter: ' + name] = _timed(request, [(v,) for v in args], repeats) * 1e6
        if ksr.errors:
            results['error'] = 'the adapter logged errors (%s): %s' % (name, ksr.errors[0].strip())
    return results


def run(workdir, large_path, tenants, extensions, trusted, quick, log):
    """Build the small and medium directories, time everything; returns a dict of results.

    Sizes: small = 1 tenant (the baseline), medium = a tenth of the tenants, large = all of them."""
    count = 4000 if quick else 20000
    repeats = 3 if quick else 7
    build_repeats = 1 if quick else 3
    paths = dict(large=large_path)
    tenant_counts = dict(small=1, medium=max(1, tenants // 10), large=tenants)
    for label in ('small', 'medium'):
        paths[label] = os.path.join(workdir, 'directory-%s.db' % label)
        bd.build(paths[label], tenant_counts[label], extensions, trusted)

    loads, snaps, sizes = {}, {}, {}
    for label in SIZES:
        log('core: snapshot build, %s directory (%d tenants x %d extensions)' % (label, tenant_counts[label], extensions))
        loads[label], snaps[label] = _snapshot_build(paths[label], [trusted], build_repeats if label == 'large' else 5)
        snap = snaps[label]
        sizes[label] = dict(tenants=len(snap.tenants), numbers=len(snap.numbers),
                            accounts=sum(len(t.accounts) for t in snap.tenants.values()),
                            targets=sum(len(t.targets) for t in snap.tenants.values()))
    memory = None
    if not quick:
        snaps.pop('large')
        memory = _snapshot_memory(large_path, [trusted])
        snaps['large'] = _load_snapshot(large_path, [trusted])

    log('core: decisions (%d requests, best of %d)' % (count, repeats))
    decisions = _decisions(snaps, tenant_counts, extensions, trusted, count, repeats)
    log('core: the KEMI adapter in-process (stub KSR)')
    checks = _kemi(large_path, [trusted], tenants, extensions, count, repeats)
    return dict(sizes=sizes, loads=loads, large_memory_bytes=memory, decisions=decisions, checks=checks,
                count=count, repeats=repeats)


SIZES = ('small', 'medium', 'large')
