# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part 2: the real Kamailio under sipp load, the voxplane router against a minimal KEMI script.

Both servers are deployed by the real roles/kamailio through tests/lab/playbooks/deploy.yml (the SIP test
harness), with one UDP worker (children=1) and no TCP; the baseline only differs in
``kamailio_kemi_src_dir`` = bench/baseline_kemi. CPU is read from /proc/<pid>/stat
(utime + stime) of every Kamailio process (attendant, the UDP worker, timers, ctl, usrloc timer)
just before and just after each sipp run, which is bounded by -m and -timeout.
"""

import concurrent.futures
import os
import re
import resource
import shutil
import statistics
import tempfile
import threading
import time

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import directories as bd  # noqa: E402
from lab.kamailio import processes  # noqa: E402
from lab.kamailio import KamailioInstance  # noqa: E402
from lab.net import free_port  # noqa: E402
from lab.sipp import finish_sipp, run_sipp, start_sipp, users_csv  # noqa: E402
from lab.wire import options_probe, sip_request, wait_for_options  # noqa: E402
import stock_anchor  # noqa: E402

VOXPLANE_ADDRESS = '127.0.0.251'
BASELINE_ADDRESS = '127.0.0.252'
CLIENT_ADDRESS = '127.0.0.253'   # the trunk's sipp (INVITEs); the directory's trunk address (trusted)
# The phones' sipp (REGISTER loads, the callee): not a trunk, so that registrations pay for
# every check an untrusted source gets (ban list, flood detection), and may bind contacts there.
PHONE_ADDRESS = '127.0.0.250'
CHECKS_ADDRESS = '127.0.0.254'
STOCK_ADDRESS = '127.0.0.246'
HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, 'scenarios')
BASELINE_KEMI = os.path.join(HERE, 'baseline_kemi')

# The baseline script's constants (bench/baseline_kemi/voxplane_kemi.py).
BASELINE_USER, BASELINE_DOMAIN, BASELINE_PASSWORD = 'bench', 'bench.test', 'bench-secret'
BASELINE_SHARED_PASSWORD = 'bench-shared-secret'
CALLEE_TENANT, CALLEE_EXTENSION = 0, '40'
CLK_TCK = os.sysconf('SC_CLK_TCK')


# ------------------------------------------------------------------------------ CPU accounting
def _stat_ticks(pid):
    """utime + stime (clock ticks) of one process, or None when it is gone."""
    try:
        with open('/proc/%d/stat' % pid) as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])   # fields 14 and 15 of proc(5)


def _schedstat_ns(pid):
    """On-CPU nanoseconds of every thread of the process (finer than ticks), or None."""
    total = 0
    try:
        for tid in os.listdir('/proc/%d/task' % pid):
            with open('/proc/%d/task/%s/schedstat' % (pid, tid)) as handle:
                total += int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total


class Server(object):
    """One deployed Kamailio (a KamailioInstance of the SIP test harness) and its processes."""

    def __init__(self, label, instance, overrides):
        self.label = label
        self.instance = instance
        self.overrides = overrides
        self.pids = []
        self.names = {}
        self.worker = None
        self.deploy_seconds = None

    def deploy(self):
        t0 = time.monotonic()
        run = self.instance.deploy(**self.overrides)
        self.deploy_seconds = time.monotonic() - t0
        if run.rc != 0:
            raise RuntimeError('%s: the role failed: %r\n%s' % (self.label, run, self.instance.log_tail()))
        # A SIP worker loads its snapshot before it reads its first request (seconds for 100,000
        # extensions on a busy machine): wait for that as long as the watchdog allows.
        if not wait_for_options(self.instance.address, self.instance.port, timeout=START_TIMEOUT):
            raise RuntimeError('%s: no 200 to OPTIONS on %s:%d\n%s' % (
                self.label, self.instance.address, self.instance.port, self.instance.log_tail()))
        self.pids = sorted(processes(self.instance.pid()))
        psx = self.instance.kamcmd('core.psx').stdout
        self.names = dict((int(pid), name.strip()) for pid, name in re.findall(r'PID:\s*(\d+)\s*\n\s*DSC:\s*([^\n]*)', psx))
        workers = [pid for pid, name in self.names.items() if name.startswith('udp receiver')]
        self.worker = workers[0] if workers else None
        return self

    def cpu(self):
        """{'total', 'worker', 'sched'} seconds (stat ticks of all processes, of the UDP worker; schedstat
        of all) and 'by_pid' ticks."""
        by_pid, ns = {}, 0
        for pid in self.pids:
            by_pid[pid] = _stat_ticks(pid) or 0
            ns += _schedstat_ns(pid) or 0
        return dict(total=sum(by_pid.values()) / float(CLK_TCK), worker=by_pid.get(self.worker, 0) / float(CLK_TCK),
                    sched=ns / 1e9, by_pid=by_pid)

    def process_name(self, pid):
        name = self.names.get(pid, 'pid %d' % pid)
        return 'udp worker' if name.startswith('udp receiver') else name

    @property
    def target(self):
        return self.instance.target

    def hostport(self):
        return '%s:%d' % self.instance.target


# ------------------------------------------------------------------------------ sipp runs
def _elapsed(stats):
    """sipp's ElapsedTime(C) ('HH:MM:SS:uuuuuu' or 'HH:MM:SS.uuuuuu') in seconds, or None."""
    text = stats.get('ElapsedTime(C)') or ''
    parts = re.split(r'[:.]', text)
    try:
        if len(parts) >= 4:
            return int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2]) + float('0.' + parts[3])
    except ValueError:
        pass
    return None


def _int(stats, key):
    try:
        return int(stats.get(key) or 0)
    except ValueError:
        return 0


def measure(server, scenario, inf, calls, rate, timeout, limit=None, before_finish=None, settle=0.05,
            source=CLIENT_ADDRESS):
    """One bounded sipp run from ``source`` against server; CPU of the Kamailio processes around it
    (read ``settle`` seconds after sipp ends: registrations wait for the usrloc timer's write-back
    to SQLite)."""
    extra = ['-l', str(limit)] if limit else []
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = server.cpu()
    t0 = time.monotonic()
    result = run_sipp(scenario, server.target, source, server.instance.workdir, calls=calls,
                      timeout=timeout, inf=inf, rate=rate, extra=extra)
    wall = time.monotonic() - t0
    extra_result = before_finish() if before_finish else None
    time.sleep(settle)  # the last replies and timer work of the run
    cpu1 = server.cpu()
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = result.stats
    ok, failed = _int(stats, 'SuccessfulCall(C)'), _int(stats, 'FailedCall(C)')
    elapsed = _elapsed(stats) or wall
    total, worker, sched = (cpu1[k] - cpu0[k] for k in ('total', 'worker', 'sched'))
    by_process = {}
    for pid, ticks in cpu1['by_pid'].items():
        name = server.process_name(pid)
        by_process[name] = by_process.get(name, 0.0) + (ticks - cpu0['by_pid'].get(pid, 0)) / float(CLK_TCK)
    return dict(
        scenario=os.path.basename(scenario), rc=result.rc, ok=ok, failed=failed, calls=calls, offered_rate=rate,
        limit=limit, elapsed=elapsed, wall=wall, rate=ok / elapsed if elapsed else 0.0,
        retransmissions=_int(stats, 'Retransmissions(C)'), cpu_s=total, worker_cpu_s=worker, sched_cpu_s=sched,
        us_per_op=total / ok * 1e6 if ok else None, worker_us_per_op=worker / ok * 1e6 if ok else None,
        sched_us_per_op=sched / ok * 1e6 if ok else None, kamailio_util=total / elapsed if elapsed else None,
        by_process=by_process, sipp_cpu_s=(usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime),
        errors=result.errors[-1500:] if result.rc != 0 else '', uas=extra_result)


def _csv(path, rows):
    with open(path, 'w') as handle:
        handle.write('SEQUENTIAL\n')
        for row in rows:
            handle.write(';'.join(row) + '\n')
    return path


# ------------------------------------------------------------------------------ the benchmark
# key -> (address, label, extra role variables). 'checks' only in a full run.
VARIANTS = (
    ('baseline', BASELINE_ADDRESS, 'minimal KEMI script', dict(kamailio_kemi_src_dir=BASELINE_KEMI)),
    ('checks', CHECKS_ADDRESS, 'minimal + voxplane request checks', dict(
        kamailio_kemi_src_dir=BASELINE_KEMI, kamailio_router_settings={'bench_checks': True})),
    ('voxplane', VOXPLANE_ADDRESS, 'voxplane router', {}),
    # Debian's stock kamailio.cfg (bench/stock_anchor.py), not deployed by the role.
    ('stock', STOCK_ADDRESS, 'Debian stock kamailio.cfg', {}),
)
# The stock cfg's user location is the Request-URI user (use_domain 0): the callee is "bench",
# and a number nobody registered gets its 404 (stateful, after the lookup fails).
STOCK_CALLEE = BASELINE_USER
STOCK_UNREGISTERED_REPLY = '404'

_SUMMED = ('ok', 'failed', 'calls', 'elapsed', 'wall', 'retransmissions', 'cpu_s', 'worker_cpu_s', 'sched_cpu_s', 'sipp_cpu_s')


def combine(parts):
    """One result from the rounds of a measurement: counts and times summed, ratios recomputed."""
    total = dict(parts[0])
    for part in parts[1:]:
        for key in _SUMMED:
            total[key] += part[key]
        total['by_process'] = dict((k, total['by_process'].get(k, 0.0) + part['by_process'].get(k, 0.0))
                                   for k in set(total['by_process']) | set(part['by_process']))
        total['rc'] = total['rc'] or part['rc']
        total['errors'] = (total['errors'] + part['errors'])[-3000:]
    ok, elapsed = total['ok'], total['elapsed']
    # Each round's CPU per call from schedstat (nanoseconds; the stat ticks are 10 ms, a few percent
    # of a round), else from the ticks.
    per_round = [p['sched_us_per_op'] or p['us_per_op'] for p in parts if p['us_per_op']]
    total.update(rounds=len(parts), per_round_us=per_round,
                 median_us=statistics.median(per_round) if per_round else None, rate=ok / elapsed if elapsed else 0.0,
                 us_per_op=total['cpu_s'] / ok * 1e6 if ok else None,
                 worker_us_per_op=total['worker_cpu_s'] / ok * 1e6 if ok else None,
                 sched_us_per_op=total['sched_cpu_s'] / ok * 1e6 if ok else None,
                 kamailio_util=total['cpu_s'] / elapsed if elapsed else None,
                 uas=[p['uas'] for p in parts if p.get('uas')])
    return total


class Bench(object):
    def __init__(self, workroot, directory_path, tenants, extensions, quick, log, rounds=None, with_stock=True):
        self.workroot = workroot
        # Each row's calls are split into rounds, every server in turn in each round: the medians
        # of the rounds and their ratios are what the report gives.
        self.rounds = rounds or (1 if quick else 4)
        self.with_stock = with_stock
        self.directory_path = directory_path
        self.tenants = tenants
        self.extensions = extensions
        self.quick = quick
        self.log = log
        self.servers = {}
        self.results = {}
        self.files = {}
        self.callee_ports = {}

    # -- setup
    def _instance(self, name, address):
        root = os.path.join(self.workroot, name)
        os.makedirs(root)
        os.chmod(root, 0o755)  # the kamailio user must reach etc/, run/ and state/ below it
        return KamailioInstance(root, address, free_port(address))

    def deploy(self):
        free_port(CLIENT_ADDRESS)  # raises when nothing can be bound there
        free_port(PHONE_ADDRESS)
        # The load generators send tens of thousands of requests a second from one address: the
        # flood detection runs on every request but must not ban them (pike counts in 16 bits,
        # so the limit is 60,000 a second rather than anything larger).
        # No feature-key timer process: the baseline script has no function for it. No call detail
        # records: the baseline script has none, and their cost per call is bench/cdr_bench.py's.
        common = dict(kamailio_children=1, kamailio_trusted_trunks=[CLIENT_ADDRESS], kamailio_cdr=False,
                      kamailio_feature_event_interval_ms=0, kamailio_usrloc_timer_interval=USRLOC_TIMER_S,
                      kamailio_flood_requests=60000, kamailio_flood_interval=1)
        for key, address, label, overrides in VARIANTS:
            if key == 'checks' and self.quick:
                continue
            if key == 'stock':
                if self.with_stock:
                    self.servers[key] = Server(label, self._stock_instance(), {})
                continue
            instance = self._instance(key, address)
            variables = dict(common, kamailio_listen=[
                {'proto': 'udp', 'address': instance.address, 'port': instance.port}], **overrides)
            if key == 'voxplane':
                variables['kamailio_directory_path'] = self.directory_path
            self.servers[key] = Server(label, instance, variables)
        self.log('sip: deploying %s with roles/kamailio' % ', '.join(
            '%s on %s:%d' % ((k,) + s.target) for k, s in self.servers.items()))
        with concurrent.futures.ThreadPoolExecutor(len(self.servers)) as pool:
            for future in [pool.submit(s.deploy) for s in self.servers.values()]:
                future.result()
        return dict((k, s.deploy_seconds) for k, s in self.servers.items())

    def _accounts(self):
        """The many accounts of the REGISTER load (user, domain, password): 2000 over the tenants,
        extensions 10..34 (the registering ones)."""
        registering = bd.extension_numbers(self.extensions)[:25]
        many = []
        for i in range(2000):
            t, ext = i % self.tenants, registering[(i // self.tenants) % len(registering)]
            many.append((bd.username(t, ext), bd.domain(t), bd.password(t, ext)))
        return many

    def _stock_instance(self):
        """Debian's stock cfg, its subscribers the baseline's accounts (the one account and the many
        accounts with the shared password), their domains its aliases."""
        root = os.path.join(self.workroot, 'stock')
        os.makedirs(root)
        os.chmod(root, 0o755)
        many = [(user, domain_, BASELINE_SHARED_PASSWORD) for user, domain_, _p in self._accounts()]
        accounts = [(BASELINE_USER, BASELINE_DOMAIN, BASELINE_PASSWORD)] + many
        return stock_anchor.StockInstance(root, STOCK_ADDRESS, free_port(STOCK_ADDRESS), accounts,
                                          [d for _u, d, _p in accounts])

    def stop(self):
        def stop_one(server):
            try:
                server.instance.stop()
            except Exception as exc:  # pylint: disable=broad-except
                self.log('sip: stopping %s failed: %s' % (server.label, exc))
        with concurrent.futures.ThreadPoolExecutor(max(1, len(self.servers))) as pool:
            list(pool.map(stop_one, self.servers.values()))

    # -- inputs
    def _files(self):
        work = os.path.join(self.workroot, 'inputs')
        os.makedirs(work, exist_ok=True)
        numbers = bd.extension_numbers(self.extensions)
        registering = numbers[:25]                     # extensions 10..34 register in the load runs
        unregistered = [n for n in numbers if n not in registering and n != CALLEE_EXTENSION]
        many = self._accounts()
        dids = [bd.did(i % self.tenants, unregistered[(i // self.tenants) % len(unregistered)]) for i in range(2000)]
        vox_account = (bd.username(0, numbers[0]), bd.domain(0), bd.password(0, numbers[0]))
        vox_callee = (bd.username(CALLEE_TENANT, CALLEE_EXTENSION), bd.domain(CALLEE_TENANT), bd.password(CALLEE_TENANT, CALLEE_EXTENSION))
        baseline_account = (BASELINE_USER, BASELINE_DOMAIN, BASELINE_PASSWORD)
        files = {}
        for key, server in self.servers.items():
            vox = key == 'voxplane'
            files['reg_many_' + key] = users_csv(os.path.join(work, 'reg-many-%s.csv' % key), many if vox else [
                (user, domain_, BASELINE_SHARED_PASSWORD) for user, domain_, _p in many])
            files['reg_' + key] = users_csv(os.path.join(work, 'reg-%s.csv' % key), [vox_account if vox else baseline_account])
            files['callee_' + key] = users_csv(os.path.join(work, 'callee-%s.csv' % key),
                                               [vox_callee if vox else baseline_account])
            files['480_' + key] = _csv(os.path.join(work, '480-%s.csv' % key), [(d, server.hostport()) for d in dids])
            files['call_' + key] = _csv(os.path.join(work, 'call-%s.csv' % key), [
                (STOCK_CALLEE if key == 'stock' else bd.did(CALLEE_TENANT, CALLEE_EXTENSION), server.hostport())])
        if 'stock' in self.servers:
            # The same INVITE, expecting the stock cfg's answer to a number nobody registered.
            with open(os.path.join(SCENARIOS, 'invite_480.xml')) as handle:
                text = handle.read()
            files['scenario_invite_480.xml_stock'] = os.path.join(work, 'invite_%s.xml' % STOCK_UNREGISTERED_REPLY)
            with open(files['scenario_invite_480.xml_stock'], 'w') as handle:
                handle.write(text.replace('<recv response="480"', '<recv response="%s"' % STOCK_UNREGISTERED_REPLY))
        self.accounts_many = len(set(many))
        self.tenants_many = len(set(d for _u, d, _p in many))
        return files

    # -- runs
    def _rounds(self, key, label, server_keys, run_one, calls, rate, rounds, limit=None):
        """calls split into rounds; in each round every server in turn (drift hits all alike)."""
        parts = dict((k, []) for k in server_keys)
        per = calls // rounds
        for _unused in range(rounds):
            for server_key in server_keys:
                self.log('sip: %-9s %-34s %6d calls at %s/s%s' % (
                    server_key, label, per, rate, ' (%d in flight)' % limit if limit else ''))
                result = run_one(server_key, per)
                if result['rc'] != 0 or result['failed']:
                    self.log('sip:   rc=%s ok=%d failed=%d\n%s' % (
                        result['rc'], result['ok'], result['failed'], result['errors']))
                parts[server_key].append(result)
        self.results[key] = dict((k, dict(combine(v), label=label)) for k, v in parts.items())

    def _load(self, scenario, inf_key, rate, limit=None, settle=0.05, source=CLIENT_ADDRESS):
        def run_one(server_key, calls):
            server = self.servers[server_key]
            timeout = 60 if limit else int(calls / float(rate) + 20)
            inf = self.files[inf_key if inf_key in self.files else inf_key + server_key]
            own = self.files.get('scenario_%s_%s' % (os.path.basename(scenario), server_key), scenario)
            return measure(server, own, inf, calls, rate, timeout, limit=limit, settle=settle, source=source)
        return run_one

    def _register_callee(self, server_key):
        """Bind the callee's contact on a port of its own (no stale contact from the load runs)."""
        server = self.servers[server_key]
        aor = ('%s@%s' % (bd.username(CALLEE_TENANT, CALLEE_EXTENSION), bd.domain(CALLEE_TENANT)) if server_key == 'voxplane'
               else STOCK_CALLEE if server_key == 'stock' else '%s@%s' % (BASELINE_USER, BASELINE_DOMAIN))
        server.instance.kamcmd('ul.rm', 'location', aor)
        port = free_port(PHONE_ADDRESS, tcp=False)
        reg = run_sipp(os.path.join(SCENARIOS, 'register.xml'), server.target, PHONE_ADDRESS,
                       server.instance.workdir, calls=1, timeout=10, inf=self.files['callee_' + server_key],
                       local_port=port)
        if reg.rc != 0:
            raise RuntimeError('%s: the callee did not register: rc=%s\n%s' % (server_key, reg.rc, reg.errors[-2000:]))
        self.callee_ports[server_key] = port

    def _call(self, rate):
        def run_one(server_key, calls):
            server = self.servers[server_key]
            timeout = int(calls / float(rate) + 20)
            uas = start_sipp(os.path.join(SCENARIOS, 'call_uas.xml'), server.target, PHONE_ADDRESS,
                             server.instance.workdir, calls=calls, timeout=timeout + 5,
                             local_port=self.callee_ports[server_key])
            time.sleep(0.3)  # let the callee bind its port

            def finish_uas():
                done = finish_sipp(uas)
                return dict(rc=done.rc, ok=_int(done.stats, 'SuccessfulCall(C)'), failed=_int(done.stats, 'FailedCall(C)'))

            return measure(server, os.path.join(SCENARIOS, 'call_uac.xml'), self.files['call_' + server_key], calls,
                           rate, timeout, before_finish=finish_uas)
        return run_one

    def warm_up(self):
        """First requests of each worker: the voxplane worker loads its directory snapshot here,
        on a single OPTIONS first (the load takes longer than sipp's first retransmission, and
        a REGISTER answered twice would fail the warm-up run)."""
        for key, server in self.servers.items():
            sip_request(PHONE_ADDRESS, server.target, 'OPTIONS', 'sip:warm-up@%s' % bd.domain(0),
                        'sip:warm-up@%s' % bd.domain(0), 'sip:warm-up@%s' % bd.domain(0), timeout=10.0)
            t0 = time.monotonic()
            result = run_sipp(os.path.join(SCENARIOS, 'register.xml'), server.target, PHONE_ADDRESS,
                              server.instance.workdir, calls=50, timeout=30, inf=self.files['reg_' + key], rate=100)
            self.log('sip: warm-up %s: rc=%s in %.1f s' % (key, result.rc, time.monotonic() - t0))
            if result.rc != 0:
                raise RuntimeError('%s: warm-up REGISTERs failed: %s\n%s' % (
                    key, result.errors[-2000:], server.instance.log_tail()))
            run_sipp(self.files.get('scenario_invite_480.xml_' + key, os.path.join(SCENARIOS, 'invite_480.xml')),
                     server.target, CLIENT_ADDRESS, server.instance.workdir, calls=20, timeout=20,
                     inf=self.files['480_' + key], rate=50)

    def reload_stall(self):
        """The first request after a directory change: the worker rebuilds its snapshot meanwhile."""
        server = self.servers['voxplane']
        address, port = server.instance.target

        def probe():
            t0 = time.monotonic()
            line = options_probe(address, port, timeout=15.0, user='reloadprobe')  # reaches view.current()
            return time.monotonic() - t0, line

        normal = [probe()[0] for _unused in range(5)]
        generation = bd.bump_generation(self.directory_path)
        time.sleep(0.7)  # past reload_check_ms (500 ms by default)
        cpu0 = server.cpu()
        stall, line = probe()
        cpu1 = server.cpu()
        return dict(normal_ms=statistics.median(normal) * 1e3, stall_ms=stall * 1e3, reply=line,
                    worker_cpu_ms=(cpu1['worker'] - cpu0['worker']) * 1e3, generation=generation)

    def change_under_load(self, duration=1.0, interval=0.01):
        """A one-extension change (DND on) committed while trunk INVITEs to that extension's DID
        arrive one after another: how long after the commit the worker routes it (480 becomes
        486), and the slowest reply around the reload (the worker's pause)."""
        server = self.servers['voxplane']
        t = self.tenants // 2
        ext = bd.extension_numbers(self.extensions)[-1]   # never registered by the bench
        uri = 'sip:%s@%s' % (bd.did(t, ext), bd.domain(t))
        probes = []
        stop = threading.Event()

        def probe():
            while not stop.is_set():
                sent = time.monotonic()
                line = sip_request(CLIENT_ADDRESS, server.target, 'INVITE', uri, 'sip:+4989111@%s' % CLIENT_ADDRESS,
                                   uri, timeout=2.0)
                probes.append((sent, time.monotonic(), line))
                time.sleep(interval)

        worker = threading.Thread(target=probe, daemon=True)
        worker.start()
        try:
            time.sleep(duration)
            cpu0 = server.cpu()
            committed_at = time.monotonic()
            commit_s = bd.set_dnd(self.directory_path, t, ext, True)
            committed = time.monotonic()
            deadline = committed + 5.0
            while time.monotonic() < deadline and not any(p[2] and ' 486 ' in p[2] and p[0] >= committed for p in probes):
                time.sleep(0.005)
            time.sleep(duration)
            cpu1 = server.cpu()
        finally:
            stop.set()
            worker.join(timeout=5)
            bd.set_dnd(self.directory_path, t, ext, False)
        before = [p[1] - p[0] for p in probes if p[1] < committed_at]
        after = [p for p in probes if p[1] >= committed]
        routed = [p[1] for p in after if p[2] and ' 486 ' in p[2]]
        unanswered = sum(1 for p in probes if p[2] is None)
        return dict(number=bd.did(t, ext), tenant=bd.tenant_name(t), extension=ext, commit_ms=commit_s * 1e3,
                    routed_after_ms=(routed[0] - committed) * 1e3 if routed else None,
                    normal_ms=statistics.median(before) * 1e3 if before else None,
                    slowest_ms=max(p[1] - p[0] for p in after) * 1e3 if after else None,
                    probes=len(probes), unanswered=unanswered, worker_cpu_ms=(cpu1['worker'] - cpu0['worker']) * 1e3,
                    first_reply=after[0][2] if after else None, last_reply=after[-1][2] if after else None)

    def run(self):
        q = self.quick
        self.files = self._files()
        self.warm_up()
        servers = list(self.servers)
        rounds = self.rounds
        n_reg, r_reg = (2000, 1000) if q else (20000, 2000)
        n_inv, r_inv = (2000, 1000) if q else (16000, 2000)
        n_call, r_call = (400, 200) if q else (3000, 300)
        reg = os.path.join(SCENARIOS, 'register.xml')
        inv = os.path.join(SCENARIOS, 'invite_480.xml')
        self._rounds('register', 'REGISTER + digest, 1 account', servers,
                     self._load(reg, 'reg_', r_reg, settle=USRLOC_SETTLE, source=PHONE_ADDRESS), n_reg, r_reg, rounds)
        self._rounds('register_many', 'REGISTER + digest, %d accounts/%d domains' % (self.accounts_many, self.tenants_many),
                     servers, self._load(reg, 'reg_many_', r_reg, settle=USRLOC_SETTLE, source=PHONE_ADDRESS),
                     n_reg, r_reg, rounds)
        self._rounds('invite_480', 'INVITE (unregistered DID) -> 480', servers, self._load(inv, '480_', r_inv),
                     n_inv, r_inv, rounds)
        for server_key in servers:
            self._register_callee(server_key)
        self._rounds('call', 'call: INVITE..200, ACK, BYE', servers, self._call(r_call), n_call, r_call, rounds)
        if not q:
            self._rounds('register_capacity', 'REGISTER, closed loop', servers,
                         self._load(reg, 'reg_', 50000, limit=CAPACITY_IN_FLIGHT, settle=USRLOC_SETTLE,
                                    source=PHONE_ADDRESS), 30000, 50000, max(2, rounds),
                         limit=CAPACITY_IN_FLIGHT)
        self.results['reload'] = self.reload_stall()
        self.results['reload']['change'] = self.change_under_load()
        return self.results


CAPACITY_IN_FLIGHT = 200
START_TIMEOUT = 180
# usrloc writes registrations back to SQLite every timer_interval seconds (db_mode 2): the bench
# sets 1 s, and reads the CPU a little later, so that each run pays for its own write-back.
USRLOC_TIMER_S = 1
USRLOC_SETTLE = USRLOC_TIMER_S + 0.2


def make_workroot():
    root = tempfile.mkdtemp(prefix='voxplane-bench-')
    os.chmod(root, 0o755)
    return root


def remove_workroot(root):
    shutil.rmtree(root, ignore_errors=True)
