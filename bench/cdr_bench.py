# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cost of the call detail records: Kamailio CPU per call with and without accounting.

    .venv/bin/python bench/cdr_bench.py [--calls 500] [--pairs 10] [--rate 100] [--floor] [--profile]

Two Kamailio servers are deployed from this tree by the real role (the SIP test harness: one UDP
worker, the SIP tests' tenants), one with ``kamailio_cdr: true`` (acc with dialog writing every
call's record into its SQLite file, the router's one dialog variable per call), one with
``kamailio_cdr: false``. Each pair is one run of ``--calls`` calls on each server, both at the same
time (each with its own sipp; ``--back-to-back``: one after the other, the order alternating):
anna.desk calls 11, whose phone (a sipp UAS registered as bert.desk) answers; every call is the
full dialog (INVITE, 407, INVITE with credentials, 180, 200, ACK, re-INVITE, BYE). The CPU of all
Kamailio processes (schedstat; both servers pinned to one core, sipp to the other) around each run,
per call. The cost is the median of the pairs' ratios: the machine's speed drifts by more than the
cost between runs minutes apart, and within a pair, whose runs share the core and the minute, it
cancels. With accounting, every run must leave exactly one record per call.
``--profile`` then runs the server with records once more under ``perf record`` (Debian's
linux-perf, ``make bench-tools``) and prints the shares of acc, its database driver and SQLite.
``--floor`` points acc's records at Kamailio's db_flatstore instead (one append-only file per
process, no transaction): the same dialogs, callbacks, dialog variables and records, without the
database's write, i.e. what accounting costs apart from its database.

Run it on a quiet machine: other work on the cores moves the figures.
"""

import argparse
import contextlib
import glob
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab.calls import users_file  # noqa: E402
from lab.kamailio import KamailioInstance, processes, settle  # noqa: E402
from lab.net import free_port, wait_udp_bound  # noqa: E402
from lab.wire import wait_for_options  # noqa: E402
from lab.postgresql import missing_prerequisites as missing_postgresql  # noqa: E402
from lab.postgresql import postgresql_lab  # noqa: E402
from lab.sipp import Phone, finish_sipp, password, start_sipp  # noqa: E402
import sip_bench  # noqa: E402

WITH, WITHOUT = 'with records', 'without records'
ADDRESSES = {WITH: '127.0.0.236', WITHOUT: '127.0.0.238'}
# The shared objects that are the records' own work in a profile: acc, the database driver, SQLite.
ACCOUNTING_CODE = ('acc.so', 'db_sqlite.so', 'libsqlite3.so.0.8.6', 'sqlops.so', 'db_postgres.so', 'libpq.so.5.15',
                   'db_flatstore.so')
PG_DATABASE = 'voxplane_cdr_bench'
CALLER, CALLEE, DIALLED = 'anna.desk', 'bert.desk', '11'
FLAT_DIR = 'cdr-flat'  # --floor: db_flatstore's directory, below the server's state directory


def to_flatstore(server):
    """--floor: restart ``server`` with acc writing into db_flatstore files instead of its database."""
    instance = server.instance
    flat = os.path.join(instance.state_dir, FLAT_DIR)
    os.makedirs(flat, exist_ok=True)
    owner = os.stat(instance.state_dir)
    os.chown(flat, owner.st_uid, owner.st_gid)
    path = os.path.join(instance.config_dir, 'kamailio.cfg')
    with open(path) as handle:
        cfg = handle.read()
    cfg, loaded = re.subn(r'^loadmodule "acc.so"$', 'loadmodule "db_flatstore.so"\nloadmodule "acc.so"', cfg, flags=re.M)
    cfg, pointed = re.subn(r'^modparam\("acc", "db_url", "[^"]*"\)$', 'modparam("acc", "db_url", "flatstore:%s")' % flat,
                           cfg, flags=re.M)
    if (loaded, pointed) != (1, 1):
        raise RuntimeError('--floor: acc.so or its db_url not found once in %s' % path)
    with open(path, 'w') as handle:
        handle.write(cfg)
    restarted = instance.control('restart')
    if restarted.returncode != 0 or not wait_for_options(instance.address, instance.port, timeout=60):
        raise RuntimeError('--floor: the restart failed: %s%s\n%s' % (restarted.stdout, restarted.stderr, instance.log_tail()))
    instance.wait_for_directory()
    server.pids = sorted(processes(instance.pid()))


def records(instance, postgresql=None):
    spooled = glob.glob(os.path.join(instance.state_dir, FLAT_DIR, '*.log'))
    if spooled:  # --floor: one line per record
        count = 0
        for path in spooled:
            with open(path, 'rb') as handle:
                count += sum(1 for _line in handle)
        return count
    if postgresql is not None:
        return postgresql.sql('SELECT COUNT(*) FROM voxplane_cdr', dbname=PG_DATABASE)[0][0]
    path = os.path.join(instance.state_dir, 'cdr.sqlite')
    if not os.path.exists(path):
        return None
    with sqlite3.connect(path) as conn:
        return conn.execute('SELECT COUNT(*) FROM voxplane_cdr').fetchone()[0]


def postgresql_ns(server):
    """schedstat CPU (ns) of the PostgreSQL server's processes (the postmaster and its children)."""
    with open(os.path.join(server.data, 'postmaster.pid')) as handle:
        postmaster = int(handle.readline())
    return sum(sip_bench._schedstat_ns(pid) or 0 for pid in processes(postmaster))  # pylint: disable=protected-access


def one_run(server, calls, rate, postgresql=None):
    instance = server.instance
    phone = Phone(instance, CALLEE)
    assert phone.register().rc == 0, instance.log_tail()
    uas = start_sipp('phone_answer.xml', instance.target, phone.address, instance.workdir, local_port=phone.port,
                     calls=calls, timeout=calls // max(1, rate) + 60)
    wait_udp_bound(phone.address, phone.port)
    inf = users_file(instance, 'bench', [(CALLER, 'acme.sip.test', password(CALLER), DIALLED)])
    before = records(instance, postgresql)
    pg_before = postgresql_ns(postgresql) if postgresql is not None else 0
    try:
        run = sip_bench.measure(server, 'call.xml', inf, calls, rate, timeout=calls // max(1, rate) + 60, limit=50,
                                settle=1.0, source=instance.address)
    finally:
        finish_sipp(uas, timeout=5)
        phone.unregister()
    settle(instance.ctl_socket)
    after = records(instance, postgresql)
    run['records'] = None if before is None else after - before
    if postgresql is not None:
        run['postgresql_us_per_call'] = (postgresql_ns(postgresql) - pg_before) / 1e3 / calls
    return run


def together(servers, order, calls, rate, postgresql=None):
    """One run on each server at the same time (the default method), each with its own sipp: whatever
    the machine does meanwhile falls on both alike. The runs in ``order``."""
    runs = {}
    errors = []

    def run(label):
        try:
            runs[label] = one_run(servers[label], calls, rate, postgresql if label == WITH else None)
        except Exception as exc:  # pylint: disable=broad-except  # raised below, in the main thread
            errors.append('%s: %r' % (label, exc))

    threads = [threading.Thread(target=run, args=(label,)) for label in order]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError('; '.join(errors))
    return [runs[label] for label in order]


def pin(server, cpu):
    """Every thread of every Kamailio process of server on one core."""
    for pid in server.pids:
        for task in os.listdir('/proc/%d/task' % pid):
            try:
                os.sched_setaffinity(int(task), {cpu})
            except OSError:  # a thread that just ended
                pass


def profile_shares(path):
    """The shares of a ``perf record`` file by shared object (perf report --sort dso), as a dict."""
    report = subprocess.run(['perf', 'report', '-i', path, '--no-children', '--sort', 'dso', '--stdio', '-g', 'none'],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, check=False)
    shares = {}
    for line in report.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith('%') and not line.startswith('#'):
            shares[parts[1]] = float(parts[0].rstrip('%'))
    return shares


def profiled_run(server, calls, rate, path):
    """One run with ``perf record`` attached to every Kamailio process of server."""
    pids = ','.join(str(pid) for pid in server.pids)
    perf = subprocess.Popen(['perf', 'record', '-F', '1999', '-o', path, '-p', pids],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run = one_run(server, calls, rate)
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--calls', type=int, default=500, help='calls per run (default 500)')
    parser.add_argument('--pairs', type=int, default=10, help='pairs of runs, one on each server (default 10)')
    parser.add_argument('--rate', type=int, default=100, help='calls a second (default 100)')
    parser.add_argument('--kamailio-cpu', type=int, default=1, help='the core of both servers (default 1)')
    parser.add_argument('--sipp-cpu', type=int, default=0, help='the core of sipp and this script (default 0)')
    parser.add_argument('--database', choices=('sqlite', 'postgresql'), default='sqlite',
                        help="the records' database: the role's SQLite file (default) or a PostgreSQL server "
                             "started for the run (its CPU printed apart)")
    parser.add_argument('--a-a', action='store_true', dest='a_a',
                        help='both servers without records: what the method reports when there is nothing to find')
    parser.add_argument('--back-to-back', action='store_false', dest='together',
                        help="a pair's two runs one after the other (default: at the same time, both servers on "
                             "one core, each with its own sipp)")
    parser.add_argument('--floor', action='store_true',
                        help="the server with records writes them into db_flatstore files, not its database: "
                             "accounting's cost apart from the database's write")
    parser.add_argument('--profile', action='store_true',
                        help='then one more run on the server with records under perf: the shares of acc and SQLite')
    args = parser.parse_args()
    if args.floor and args.database != 'sqlite':
        parser.error('--floor replaces the database: it goes without --database')
    root = sip_bench.make_workroot()
    servers = {}
    postgresql = None
    stack = contextlib.ExitStack()
    try:
        cdr_settings = {}
        if args.database == 'postgresql':
            reason = missing_postgresql()
            if reason:
                parser.error(reason)
            postgresql = stack.enter_context(postgresql_lab(prefix='voxplane-cdr-bench-'))
            postgresql.create_database(PG_DATABASE)
            with open(os.path.join(postgresql.data, 'postmaster.pid')) as handle:
                os.sched_setaffinity(int(handle.readline()), {args.sipp_cpu})  # its backends inherit it
            cdr_settings = dict(kamailio_cdr_database=postgresql.location(PG_DATABASE, password=''),
                                kamailio_cdr_password=postgresql.password)
        for label, address in sorted(ADDRESSES.items()):
            instance = KamailioInstance(os.path.join(root, label.replace(' ', '-')), address, free_port(address))
            os.makedirs(instance.root, exist_ok=True)
            os.chmod(instance.root, 0o755)
            variables = dict(kamailio_children=1, kamailio_cdr=label == WITH and not args.a_a,
                             kamailio_feature_event_interval_ms=0, kamailio_flood_requests=10 ** 8)
            if label == WITH:
                variables.update(cdr_settings)
            servers[label] = sip_bench.Server(label, instance, variables).deploy()
            if label == WITH and args.floor and not args.a_a:
                to_flatstore(servers[label])
            provisioned = instance.provision()
            if provisioned.rc != 0:
                raise RuntimeError('provisioning failed: %r' % (provisioned,))
            instance.wait_for_directory()
        os.sched_setaffinity(0, {args.sipp_cpu})  # sipp inherits it
        for server in servers.values():
            pin(server, args.kamailio_cpu)
        # warm-up: each worker loads its snapshot and works out the call's decision once
        for server in servers.values():
            one_run(server, 50, 50)
        figures = dict((label, []) for label in servers)
        pairs = []
        labels = sorted(servers)
        load_before = os.getloadavg()[0]
        postgresql_cpu = []
        for number in range(args.pairs):
            pair = {}
            order = labels[number % 2:] + labels[:number % 2]
            if args.together:
                runs = dict(zip(order, together(servers, order, args.calls, args.rate, postgresql)))
            else:
                runs = dict((label, one_run(servers[label], args.calls, args.rate, postgresql if label == WITH else None))
                            for label in order)
            for label in order:
                run = runs[label]
                if 'postgresql_us_per_call' in run:
                    postgresql_cpu.append(run['postgresql_us_per_call'])
                if run['ok'] != args.calls:
                    raise RuntimeError('%s: %d of %d calls succeeded\n%s' % (label, run['ok'], args.calls, run['errors']))
                if run['records'] is not None and run['records'] != args.calls:
                    raise RuntimeError('%s: %d records for %d calls' % (label, run['records'], args.calls))
                pair[label] = run['sched_us_per_op']
                if label == WITH:
                    kept = run['records']
                figures[label].append(run['sched_us_per_op'])
            pairs.append((pair[WITH], pair[WITHOUT]))
            print('pair %2d  with records %7.1f  without %7.1f us CPU per call  ratio %.3f  (%s records)' % (
                number + 1, pair[WITH], pair[WITHOUT], pair[WITH] / pair[WITHOUT], 'no' if kept is None else kept), flush=True)
        print('\nus CPU of all Kamailio processes per call (%d pairs of %d calls, %d/s, one UDP worker)' % (
            args.pairs, args.calls, args.rate))
        for label in labels:
            values = figures[label]
            print('   %-16s median %7.1f  min %7.1f  max %7.1f' % (label, statistics.median(values), min(values), max(values)))
        # The median of the pairs' ratios: within a pair the machine's drift cancels.
        ratios = sorted(with_ / without for with_, without in pairs)
        ratio = statistics.median(ratios)
        print('   accounting costs %+.1f%% CPU per call (median of the pairs\' ratios %.3fx; quartiles %.3f-%.3f)' % (
            (ratio - 1) * 100, ratio, ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]))
        if postgresql_cpu:
            print('   PostgreSQL server (not Kamailio) median %.1f us CPU per call' % statistics.median(postgresql_cpu))
        print('load average before %.2f, after %.2f' % (load_before, os.getloadavg()[0]))
        if args.profile:
            path = os.path.join(root, 'with-records.perf')
            profiled_run(servers[WITH], args.calls, args.rate, path)
            shares = profile_shares(path)
            print('\nshares of the CPU of the server with records (perf record, %d calls):' % args.calls)
            for dso in ACCOUNTING_CODE + ('dialog.so', 'libpython3.11.so.1.0', 'kamailio', '[kernel.kallsyms]'):
                print('   %-24s %5.2f %%' % (dso, shares.get(dso, 0.0)))
            print('   accounting\'s own code   %5.2f %%' % sum(shares.get(dso, 0.0) for dso in ACCOUNTING_CODE))
    finally:
        for server in servers.values():
            server.instance.stop()
        stack.close()
        sip_bench.remove_workroot(root)
    return 0


if __name__ == '__main__':
    sys.exit(main())
