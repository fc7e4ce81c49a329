# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cost of the call detail records: Kamailio CPU per call with and without accounting.

    .venv/bin/python bench/cdr_bench.py [--calls 1000] [--rounds 5] [--rate 100]

Two Kamailio servers are deployed from this tree by the real role (the SIP test harness: one UDP
worker, the SIP tests' tenants), one with ``kamailio_cdr: true`` (acc with dialog writing every
call's record into its SQLite file, the router's one dialog variable per call), one with
``kamailio_cdr: false``. Each round places ``--calls`` calls on each (in turns, the order rotating):
anna.desk calls 11, whose phone (a sipp UAS registered as bert.desk) answers; every call is the
full dialog (INVITE, 407, INVITE with credentials, 180, 200, ACK, re-INVITE, BYE). The CPU of all
Kamailio processes (schedstat) around each run, per call; the medians of the rounds and their
ratio. With accounting, every run must leave exactly one record per call.

Run it on a quiet machine: the rounds are interleaved, but other work on the cores moves the
figures.
"""

import argparse
import os
import sqlite3
import statistics
import sys

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab.calls import users_file  # noqa: E402
from lab.kamailio import KamailioInstance, settle  # noqa: E402
from lab.net import free_port, wait_udp_bound  # noqa: E402
from lab.sipp import Phone, finish_sipp, password, start_sipp  # noqa: E402
import sip_bench  # noqa: E402

ADDRESSES = {'with records': '127.0.0.236', 'without records': '127.0.0.238'}
CALLER, CALLEE, DIALLED = 'anna.desk', 'bert.desk', '11'


def records(instance):
    path = os.path.join(instance.state_dir, 'cdr.sqlite')
    if not os.path.exists(path):
        return None
    with sqlite3.connect(path) as conn:
        return conn.execute('SELECT COUNT(*) FROM voxplane_cdr').fetchone()[0]


def one_run(server, calls, rate):
    instance = server.instance
    phone = Phone(instance, CALLEE)
    assert phone.register().rc == 0, instance.log_tail()
    uas = start_sipp('phone_answer.xml', instance.target, phone.address, instance.workdir, local_port=phone.port,
                     calls=calls, timeout=calls // max(1, rate) + 60)
    wait_udp_bound(phone.address, phone.port)
    inf = users_file(instance, 'bench', [(CALLER, 'acme.sip.test', password(CALLER), DIALLED)])
    before = records(instance)
    try:
        run = sip_bench.measure(server, 'call.xml', inf, calls, rate, timeout=calls // max(1, rate) + 60, limit=50,
                                settle=1.0, source=instance.address)
    finally:
        finish_sipp(uas, timeout=5)
        phone.unregister()
    settle(instance.ctl_socket)
    after = records(instance)
    run['records'] = None if before is None else after - before
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--calls', type=int, default=1000, help='calls per run (default 1000)')
    parser.add_argument('--rounds', type=int, default=5, help='runs per server (default 5)')
    parser.add_argument('--rate', type=int, default=100, help='calls a second (default 100)')
    args = parser.parse_args()
    root = sip_bench.make_workroot()
    servers = {}
    try:
        for label, address in sorted(ADDRESSES.items()):
            instance = KamailioInstance(os.path.join(root, label.replace(' ', '-')), address, free_port(address))
            os.makedirs(instance.root, exist_ok=True)
            os.chmod(instance.root, 0o755)
            variables = dict(kamailio_children=1, kamailio_cdr=label == 'with records',
                             kamailio_feature_event_interval_ms=0, kamailio_flood_requests=10 ** 8)
            servers[label] = sip_bench.Server(label, instance, variables).deploy()
            provisioned = instance.provision()
            if provisioned.rc != 0:
                raise RuntimeError('provisioning failed: %r' % (provisioned,))
            instance.wait_for_directory()
        # warm-up: each worker loads its snapshot and works out the call's decision once
        for server in servers.values():
            one_run(server, 50, 50)
        figures = dict((label, []) for label in servers)
        labels = sorted(servers)
        load_before = os.getloadavg()[0]
        for number in range(args.rounds):
            for label in labels[number % 2:] + labels[:number % 2]:
                run = one_run(servers[label], args.calls, args.rate)
                if run['ok'] != args.calls:
                    raise RuntimeError('%s: %d of %d calls succeeded\n%s' % (label, run['ok'], args.calls, run['errors']))
                if run['records'] is not None and run['records'] != args.calls:
                    raise RuntimeError('%s: %d records for %d calls' % (label, run['records'], args.calls))
                figures[label].append(run['sched_us_per_op'])
                print('round %d  %-16s %7.1f us CPU per call  records %s' % (
                    number + 1, label, float(run['sched_us_per_op'] or 0), run['records']), flush=True)
        with_, without = statistics.median(figures['with records']), statistics.median(figures['without records'])
        print('\nus CPU of all Kamailio processes per call (%d calls x %d rounds, %d/s, one UDP worker)' % (
            args.calls, args.rounds, args.rate))
        for label in labels:
            values = figures[label]
            print('   %-16s median %7.1f  min %7.1f  max %7.1f' % (label, statistics.median(values), min(values), max(values)))
        print('   accounting costs %+.1f%% CPU per call (%.3fx)' % ((with_ / without - 1) * 100, with_ / without))
        print('load average before %.2f, after %.2f' % (load_before, os.getloadavg()[0]))
    finally:
        for server in servers.values():
            server.instance.stop()
        sip_bench.remove_workroot(root)
    return 0


if __name__ == '__main__':
    sys.exit(main())
