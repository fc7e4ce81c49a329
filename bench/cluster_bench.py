# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One SIP node against three with DMQ replication (docs/cluster.md): what a cluster costs.

    sudo .venv/bin/python bench/cluster_bench.py [--quick] [--rounds 2] [--json FILE]

One PostgreSQL server (lab.postgresql) holds the directory of the SIP tests
(tests/lab/playbooks/tenants.yml). On it run, deployed by the real roles with one UDP worker each:

- ``single``: one Kamailio, no cluster (the baseline);
- ``cluster``: three Kamailio nodes replicating over DMQ (lab.cluster.kamailio_cluster); the
  load goes to node A, and the CPU of all three nodes counts.

Loads (sipp, bounded runs, the same for both; rounds alternate between the two):

- REGISTER with digest authentication, cycling through the tenants' 40 SIP accounts from an
  address of their own: on the cluster every registration is saved with a Path and replicated to
  the two other nodes (dmq_usrloc: one KDMQ request and its reply to each);
- routed INVITEs from the trunk to a number whose phone is not registered (answered 480): routed
  from the snapshot, nothing replicated (dialog tracking starts only for relayed calls);
- calls (INVITE, 200, ACK, BYE) from the trunk at node B to a phone registered at node A (handed
  over along its Path: two nodes relay every request) against the same call on one node.

CPU is utime + stime of every Kamailio process of the target (all nodes for the cluster) from
/proc, before and after each run. "Replication" is the CPU the other two nodes spent per request
of the run at node A. Last, the time from a commit (a DND change written through the store API,
as a module does) to the first routed call with it on each node, polled at every node at once.
"""

import argparse
import concurrent.futures
import json
import os
import re
import statistics
import sys
import time

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import directories  # noqa: E402
from lab.cluster import kamailio_cluster  # noqa: E402
from lab.kamailio import kamailio_lab, missing_prerequisites, processes  # noqa: E402
from lab.net import free_port  # noqa: E402
from lab.postgresql import missing_prerequisites as missing_postgresql  # noqa: E402
from lab.postgresql import postgresql_lab  # noqa: E402
from lab.sipp import finish_sipp, password, run_sipp, start_sipp, users_csv  # noqa: E402
from lab.wire import sip_request  # noqa: E402
from sip_bench import CLK_TCK, _elapsed, _int, _stat_ticks  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, 'scenarios')
ACME = 'acme.sip.test'
# The registering accounts (desk and app of each): not Rita (39) nor Mia (26), whose numbers the
# INVITE loads and the commit-to-routing probes call (a contact left by the REGISTER load would
# be rung instead of the 480).
USERS = ('anna', 'bert', 'cora', 'finn', 'gina', 'hans', 'ida', 'jan', 'kai', 'lena', 'olga', 'pia',
         'quirin', 'tina', 'sven', 'uwe')
UNREGISTERED_DDI = '+4930123456039'       # rita: never registered, answered 480
CALLEE = 'bert.app'                        # the phone of the call runs (extension 11)
CALLEE_DDI = '+4930123456011'
DND_EXTENSION, DND_DDI = '26', '+4930123456026'
IN_FLIGHT = 100                            # the closed-loop (capacity) runs: requests in flight


def cpu_seconds(pids):
    return sum(_stat_ticks(pid) or 0 for pid in pids) / float(CLK_TCK)


def node_pids(node):
    return sorted(processes(node.pid()))


def process_cpu(node):
    """{process (kamcmd core.psx; a UDP worker by its socket: the SIP port's or the cluster socket's):
    CPU seconds}."""
    psx = node.kamcmd('core.psx').stdout
    names = dict((int(pid), name.strip()) for pid, name in re.findall(r'PID:\s*(\d+)\s*\n\s*DSC:\s*([^\n]*)', psx))
    used = {}
    for pid in node_pids(node):
        name = names.get(pid, 'other')
        if name.startswith('udp receiver'):
            name = 'SIP worker' if name.endswith(':%d' % node.port) else 'cluster-socket worker'
        name = re.sub(r'^(dmq worker|timer|slow timer).*', r'\1', name)
        used[name] = used.get(name, 0.0) + (_stat_ticks(pid) or 0) / float(CLK_TCK)
    return used


class Target(object):
    """Where a load goes (``entry``: the node that takes the requests) and whose CPU counts
    (``nodes``: every node of the target)."""

    def __init__(self, name, entry, nodes, phone_node=None):
        self.name = name
        self.entry = entry
        self.nodes = nodes
        self.phone_node = phone_node or entry    # where the callee registers

    def cpu(self):
        return [cpu_seconds(node_pids(node)) for node in self.nodes]


def measure(target, scenario, inf, source, calls, rate, extra=(), uas=None):
    """One bounded sipp run from ``source`` to the target's entry node; the CPU of each node."""
    before = target.cpu()
    by_process = process_cpu(target.entry)
    started = time.monotonic()
    result = run_sipp(scenario, target.entry.target, source, target.entry.workdir, calls=calls,
                      timeout=int(calls / float(rate)) + 30, inf=inf, rate=rate, extra=list(extra))
    wall = time.monotonic() - started
    callee = finish_sipp(uas, timeout=5) if uas is not None else None
    time.sleep(0.3)   # DMQ replication and the timers of the run's last requests
    after = target.cpu()
    by_process = dict((name, used - by_process.get(name, 0.0)) for name, used in process_cpu(target.entry).items())
    ok, failed = _int(result.stats, 'SuccessfulCall(C)'), _int(result.stats, 'FailedCall(C)')
    used = [b - a for a, b in zip(before, after)]
    return dict(ok=ok, failed=failed, wall=_elapsed(result.stats) or wall, cpu=used, rc=result.rc, by_process=by_process,
                callee_failed=_int(callee.stats, 'FailedCall(C)') if callee else None,
                errors=result.errors[-800:] if result.rc else '')


def summarise(parts):
    ok = sum(p['ok'] for p in parts)
    wall = sum(p['wall'] for p in parts)
    cpu = [sum(p['cpu'][i] for p in parts) for i in range(len(parts[0]['cpu']))]
    by_process = {}
    for part in parts:
        for name, used in part['by_process'].items():
            by_process[name] = by_process.get(name, 0.0) + used
    return dict(ok=ok, failed=sum(p['failed'] for p in parts), rate=ok / wall if wall else 0.0,
                entry_us_by_process=dict((name, used / ok * 1e6) for name, used in by_process.items() if ok and used),
                us_entry=cpu[0] / ok * 1e6 if ok else None,
                us_others=sum(cpu[1:]) / ok * 1e6 if ok and len(cpu) > 1 else 0.0,
                us_total=sum(cpu) / ok * 1e6 if ok else None)


def commit_dnd(location, dnd):
    """Extension 26's DND through the store, one write transaction as a module commits it."""
    directories.use_collection()
    from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION  # pylint: disable=import-outside-toplevel
    from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile  # pylint: disable=import-outside-toplevel
    from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory  # pylint: disable=import-outside-toplevel
    with Directory(location).transaction() as txn:
        reconcile(txn, 'acme', None, {EXTENSION: {DND_EXTENSION: {'dnd': dnd}}})


def commit_to_routing(location, nodes, trunk, repeat):
    """For each of ``repeat`` commits (DND on, off, ...): seconds from the commit's return to the
    first call routed with it, per node. Every node is polled by a thread of its own."""
    results = dict((node.address, []) for node in nodes)
    for turn in range(repeat):
        dnd = turn % 2 == 0
        wanted = ' 486 ' if dnd else ' 480 '    # DND, or nobody registered
        time.sleep(0.6)   # past every worker's last generation check of the previous turn
        commit_dnd(location, dnd)
        committed = time.monotonic()

        def watch(node):
            uri = 'sip:%s@%s' % (DND_DDI, ACME)
            while time.monotonic() < committed + 5:
                line = sip_request(trunk, node.target, 'INVITE', uri, 'sip:+4989111@%s' % trunk, uri, timeout=1.0)
                if line and wanted in line:
                    return time.monotonic() - committed
                time.sleep(0.005)
            return None
        with concurrent.futures.ThreadPoolExecutor(len(nodes)) as pool:
            for node, took in zip(nodes, pool.map(watch, nodes)):
                results[node.address].append(took)
    if repeat % 2:
        commit_dnd(location, False)
    return results


def log(text):
    print(text, flush=True)


def main():  # pylint: disable=too-many-locals,too-many-statements
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--quick', action='store_true', help='shorter runs (about 3 minutes in all)')
    parser.add_argument('--rounds', type=int, default=None, help='rounds per load (default 2, quick 1)')
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()
    reason = missing_prerequisites() or missing_postgresql()
    if reason:
        sys.exit('cluster_bench: %s' % reason)
    rounds = args.rounds or (1 if args.quick else 2)
    n_reg, r_reg = (1500, 300) if args.quick else (6000, 400)
    n_inv, r_inv = (1500, 300) if args.quick else (6000, 400)
    n_call, r_call = (150, 30) if args.quick else (600, 60)
    n_cap = 3000 if args.quick else 12000
    repeat = 4 if args.quick else 10

    common = dict(kamailio_children=1, kamailio_log_level=1, kamailio_feature_event_interval_ms=0,
                  kamailio_flood_requests=60000, kamailio_flood_interval=1)
    started = time.monotonic()
    with postgresql_lab(prefix='voxplane-bench-cluster-pg-') as server, \
            kamailio_cluster(nodes=3, server=server, prefix='voxplane-bench-cluster-', **common) as cluster:
        a, b, c = cluster.nodes
        single_address = cluster.pool.take()
        with kamailio_lab(prefix='voxplane-bench-single-', address=single_address, trunk=cluster.trunk,
                          provision=False, kamailio_directory_path=server.location('voxplane', password=''),
                          kamailio_directory_password=server.password, directory_password=server.password,
                          kamailio_trusted_trunks=[cluster.trunk], kamailio_ban_exempt=[single_address],
                          setup=lambda instance: setattr(instance, 'directory_path', cluster.directory),
                          **common) as single:
            single.trunk_port = a.trunk_port
            if not single.wait_for_directory():
                sys.exit('cluster_bench: the single node does not route\n%s' % single.log_tail())
            log('deployed in %.0f s: PostgreSQL on %s:%d, single node %s:%d, cluster %s'
                % (time.monotonic() - started, server.address, server.port, single.address, single.port,
                   ', '.join('%s:%d' % node.target for node in cluster.nodes)))
            phones = cluster.pool.take()
            accounts = [('%s.desk' % user, ACME, password('%s.desk' % user)) for user in USERS] + \
                [('%s.app' % user, ACME, password('%s.app' % user)) for user in USERS]
            reg_inf = users_csv(os.path.join(single.workdir, 'bench-accounts.csv'), accounts)
            targets = {'single': Target('single', single, [single]),
                       'cluster': Target('cluster', a, [a, b, c])}
            results = dict((key, {}) for key in targets)

            def rounds_of(load, runner, calls):
                parts = dict((key, []) for key in targets)
                for _round in range(rounds):
                    for key, target in targets.items():
                        result = runner(target, calls // rounds)
                        log('%-7s %-14s ok %5d failed %3d in %5.1f s, CPU %s s'
                            % (key, load, result['ok'], result['failed'], result['wall'],
                               '+'.join('%.2f' % used for used in result['cpu'])))
                        if result['rc']:
                            log(result['errors'])
                        parts[key].append(result)
                for key in targets:
                    results[key][load] = summarise(parts[key])

            rounds_of('register', lambda target, calls: measure(
                target, os.path.join(SCENARIOS, 'register.xml'), reg_inf, phones, calls, r_reg), n_reg)
            inv_inf = os.path.join(single.workdir, 'bench-480.csv')
            with open(inv_inf, 'w') as handle:
                handle.write('SEQUENTIAL\n%s;%s\n' % (UNREGISTERED_DDI, ACME))
            rounds_of('invite_480', lambda target, calls: measure(
                target, os.path.join(SCENARIOS, 'invite_480.xml'), inv_inf, cluster.trunk, calls, r_inv), n_inv)
            # Throughput: a closed loop of IN_FLIGHT requests at a time, as fast as the node answers.
            rounds_of('register_capacity', lambda target, calls: measure(
                target, os.path.join(SCENARIOS, 'register.xml'), reg_inf, phones, calls, 50000,
                extra=['-l', str(IN_FLIGHT)]), n_cap)
            rounds_of('invite_capacity', lambda target, calls: measure(
                target, os.path.join(SCENARIOS, 'invite_480.xml'), inv_inf, cluster.trunk, calls, 50000,
                extra=['-l', str(IN_FLIGHT)]), n_cap)
            for registered in ('single', 'cluster'):
                for node in targets[registered].nodes:
                    node.kamcmd('ul.rm', 'location', 'bert.desk@' + ACME)
                    node.kamcmd('ul.rm', 'location', 'bert.app@' + ACME)
            # The call: trunk -> B -> A -> phone on the cluster; trunk -> single -> phone.
            targets['cluster'] = Target('cluster', b, [b, a, c], phone_node=a)
            call_inf = os.path.join(single.workdir, 'bench-call.csv')
            with open(call_inf, 'w') as handle:
                handle.write('SEQUENTIAL\n%s;%s\n' % (CALLEE_DDI, ACME))
            callee_port = {}
            for key, target in targets.items():
                port = free_port(phones, tcp=False)
                inf = users_csv(os.path.join(single.workdir, 'callee-%s.csv' % key), [(CALLEE, ACME, password(CALLEE))])
                reg = run_sipp(os.path.join(SCENARIOS, 'register.xml'), target.phone_node.target, phones,
                               target.phone_node.workdir, calls=1, timeout=10, inf=inf, local_port=port)
                if reg.rc != 0:
                    sys.exit('cluster_bench: the callee did not register with %s: %s' % (key, reg.errors[-800:]))
                callee_port[key] = port
            time.sleep(0.5)

            def call_run(target, calls):
                uas = start_sipp(os.path.join(SCENARIOS, 'call_uas.xml'), target.phone_node.target, phones,
                                 target.phone_node.workdir, calls=calls, timeout=int(calls / float(r_call)) + 30,
                                 local_port=callee_port[target.name])
                time.sleep(0.3)
                return measure(target, os.path.join(SCENARIOS, 'call_uac.xml'), call_inf, cluster.trunk, calls, r_call,
                               uas=uas)
            rounds_of('call', call_run, n_call)
            log('commit to routing: %d commits, every node polled' % repeat)
            propagation = commit_to_routing(cluster.directory, [single, a, b, c], cluster.trunk, repeat)
    report(results, propagation, dict(single=single.address, a=a.address, b=b.address, c=c.address),
           dict(register=(n_reg, r_reg), invite_480=(n_inv, r_inv), call=(n_call, r_call), rounds=rounds,
                commits=repeat, seconds=round(time.monotonic() - started)))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(dict(results=results, propagation=propagation), handle, indent=1)


def report(results, propagation, addresses, runs):
    single, cluster = results['single'], results['cluster']
    print('\nvoxplane cluster benchmark: one node vs three nodes with DMQ replication (%s s; %d round(s); '
          'REGISTER %d at %d/s, INVITE %d at %d/s, calls %d at %d/s)'
          % (runs['seconds'], runs['rounds'], runs['register'][0], runs['register'][1], runs['invite_480'][0],
             runs['invite_480'][1], runs['call'][0], runs['call'][1]))
    print('CPU per request, us (utime+stime of every Kamailio process; cluster: node taking the load | '
          'the two others | all three)')
    print('%-30s %10s %26s %9s %9s' % ('load', 'one node', 'three nodes', 'ratio', 'failed'))
    labels = {'register': 'REGISTER + digest (32 accounts)', 'invite_480': 'routed INVITE -> 480',
              'call': 'call B -> A -> phone (4 req.)'}
    for load in ('register', 'invite_480', 'call'):
        one, three = single[load], cluster[load]
        print('%-30s %10.1f %8.1f | %6.1f | %6.1f %8.2fx %4d/%d' % (
            labels[load], one['us_total'], three['us_entry'], three['us_others'], three['us_total'],
            three['us_total'] / one['us_total'], one['failed'], three['failed']))
    reg = cluster['register']
    print('replication per registration: %.1f us on the two other nodes (%.1f us each), %.1f us more at the node '
          'taking it (Path, msg_apply_changes, DMQ send): %.1f us in all above one node'
          % (reg['us_others'], reg['us_others'] / 2, reg['us_entry'] - single['register']['us_total'],
             reg['us_total'] - single['register']['us_total']))
    print('throughput, closed loop of %d in flight (requests/s answered; CPU per request, us, all nodes):'
          % IN_FLIGHT)
    for load, label in (('register_capacity', 'REGISTER + digest'), ('invite_capacity', 'routed INVITE -> 480')):
        one, three = single[load], cluster[load]
        print('  %-22s one node %6.0f/s (%6.1f us), three nodes %6.0f/s (%6.1f us: %.1f at A, %.1f at B and C): %.2fx'
              % (label, one['rate'], one['us_total'], three['rate'], three['us_total'], three['us_entry'],
                 three['us_others'], three['rate'] / one['rate'] if one['rate'] else 0.0))
    for load in ('register', 'register_capacity'):
        print('where the node taking the REGISTERs spends it (%s, us per REGISTER): one node %s; node A %s' % (
            load, _processes(single[load]), _processes(cluster[load])))
    names = {addresses['single']: 'one node', addresses['a']: 'node A', addresses['b']: 'node B',
             addresses['c']: 'node C'}
    print('commit -> first call routed with it (ms, %d commits): %s' % (runs['commits'], '; '.join(
        '%s median %s max %s' % (names[address], _ms(statistics.median([t for t in times if t is not None]))
                                 if any(t is not None for t in times) else '-',
                                 _ms(max(t for t in times if t is not None)) if any(t is not None for t in times)
                                 else '-') + (' (%d never)' % times.count(None) if None in times else '')
        for address, times in propagation.items())))


def _processes(result):
    shares = sorted(result['entry_us_by_process'].items(), key=lambda item: -item[1])
    return ', '.join('%s %.0f' % (name, used) for name, used in shares if used >= 1) or '-'


def _ms(seconds):
    return '%.0f' % (seconds * 1000)


if __name__ == '__main__':
    main()
