# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A directory of 100,000 extensions changes while Kamailio routes at a steady rate.

The directory (2000 tenants of 50 extensions, each with a desk phone and a softclient account:
200,000 SIP accounts) is built with the collection's own store and reconcile engine
(tests/lab/directories.py, which the benchmarks build with too), and a Kamailio of its own routes on it.
While authenticated REGISTERs and answered inbound calls run at a steady rate, one
``tenant_config`` task (ansible-playbook, tests/sip/big_change.yml) turns on DND for one
extension. Every request must be answered, every reply within 100 ms (sipp's -trace_rtt on the
REGISTER challenge, the authenticated REGISTER, the INVITE's 180 from the phone and the BYE),
and the change must be routed by the workers within a second of its commit.
"""

import csv
import glob
import os
import time

import pytest

from lab import directories as bd
from lab.kamailio import kamailio_lab, missing_prerequisites
from lab.net import free_port
from lab.sipp import finish_sipp, run_sipp, start_sipp, users_csv
from lab.wire import sip_request


HERE = os.path.dirname(os.path.abspath(__file__))
CHANGE_PLAYBOOK = os.path.join(HERE, 'big_change.yml')
TENANTS, EXTENSIONS = 2000, 50
TENANT = 1234                      # the tenant that changes (any of the 2000)
CALLEE = '10'                      # registered; answers the steady inbound calls
CHANGED = '59'                     # never registered: 480 before the change, 486 (DND) after it
SLOWEST_REPLY_MS = 100
LOAD_TIMEOUT = 180
CALL_RATE, CALLS = 5, 75           # 15 s of calls ...
REGISTER_RATE, REGISTERS = 20, 300  # ... and of REGISTERs


def _directory(instance):
    """The benchmarks' directory of TENANTS x EXTENSIONS, its trunk the stand-in's address."""
    bd.use_collection()
    bd.build(instance.directory_path, TENANTS, EXTENSIONS, instance.trunk)
    return {'kamailio_trusted_trunks': [instance.trunk]}


@pytest.fixture(scope='module')
def big():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    # Every worker loads the snapshot of 200,000 accounts before it answers (about 12 s here).
    with kamailio_lab(prefix='voxplane-big-', provision=False, setup=_directory, wait_timeout=LOAD_TIMEOUT) as instance:
        assert instance.wait_for_directory(bd.domain(TENANTS - 1), timeout=LOAD_TIMEOUT), instance.log_tail()
        yield instance


def _inbound(kamailio, extension):
    uri = 'sip:%s@%s' % (bd.did(TENANT, extension), bd.domain(TENANT))
    return sip_request(kamailio.trunk, kamailio.target, 'INVITE', uri, 'sip:+4989111@%s' % kamailio.trunk, uri,
                       timeout=1.0)


def _reply_times(workdir, scenario):
    """Every reply time (ms) sipp's -trace_rtt wrote for a scenario, by rtd number."""
    times = {}
    for path in glob.glob(os.path.join(workdir, '%s_*_rtt.csv' % scenario)):
        with open(path) as handle:
            for row in csv.DictReader(handle, delimiter=';'):
                times.setdefault(row['rtd_no'], []).append(float(row['response_time_ms']))
    return times


def test_a_change_to_a_100000_extension_directory_under_steady_load(big):
    kamailio = big
    pid = kamailio.pid()
    work = kamailio.workdir
    assert _inbound(kamailio, CHANGED) == 'SIP/2.0 480 Temporarily Unavailable'

    # The callee registers and stands by for every call on its contact's port.
    callee = bd.username(TENANT, CALLEE)
    port = free_port(kamailio.address, tcp=False)
    reg = run_sipp('register_ok.xml', kamailio.target, kamailio.address, work, timeout=10, local_port=port,
                   inf=users_csv(os.path.join(work, 'callee.csv'),
                                 [(callee, bd.domain(TENANT), bd.password(TENANT, CALLEE))]))
    assert reg.rc == 0, reg.errors
    phone = start_sipp('phone_timed.xml', kamailio.target, kamailio.address, work, calls=CALLS, timeout=60,
                       local_port=port)
    time.sleep(0.3)

    # REGISTERs of accounts all over the directory, the changed tenant's included.
    accounts = [(bd.username(t, ext, kind), bd.domain(t), bd.password(t, ext, kind))
                for t in range(TENANT % 17, TENANTS, 17) for ext in ('11', '33') for kind in ('desk', 'app')]
    accounts.append((bd.username(TENANT, '12'), bd.domain(TENANT), bd.password(TENANT, '12')))
    timed = ['-trace_rtt', '-rtt_freq', '1']
    registers = start_sipp('register_load_timed.xml', kamailio.target, kamailio.address, work, calls=REGISTERS,
                           rate=REGISTER_RATE, timeout=60, inf=users_csv(os.path.join(work, 'load.csv'), accounts),
                           extra=timed)
    calls_inf = os.path.join(work, 'calls.csv')
    with open(calls_inf, 'w') as handle:
        handle.write('SEQUENTIAL\n+4989111;%s;%s\n' % (bd.domain(TENANT), bd.did(TENANT, CALLEE)))
    calls = start_sipp('inbound_call_timed.xml', kamailio.target, kamailio.trunk, work, calls=CALLS, rate=CALL_RATE,
                       timeout=60, inf=calls_inf, extra=timed)

    seen = {}
    try:
        time.sleep(4.0)
        started = time.monotonic()
        change = kamailio.provision(CHANGE_PLAYBOOK, tenant=bd.tenant_name(TENANT), extension=CHANGED)
        ended = time.monotonic()
        assert change.rc == 0 and change.changed == 1, repr(change)
        deadline = ended + 5.0
        while time.monotonic() < deadline:
            seen['line'] = _inbound(kamailio, CHANGED)
            if (seen['line'] or '').startswith('SIP/2.0 486 '):
                seen['routed'] = time.monotonic()
                break
            time.sleep(0.02)
    finally:
        results = dict((name, finish_sipp(handle, timeout=75)) for name, handle in
                       (('registers', registers), ('calls', calls), ('phone', phone)))
    assert seen.get('routed'), 'DND not routed 5 s after the playbook: %r\n%s' % (seen.get('line'), kamailio.log_tail())
    # Both workers take requests: a second after the playbook, every probe meets the change.
    time.sleep(max(0.0, ended + 1.0 - time.monotonic()))
    assert [_inbound(kamailio, CHANGED) for _probe in range(10)] == ['SIP/2.0 486 Do Not Disturb'] * 10
    assert kamailio.pid() == pid

    for name, result in results.items():
        assert result.rc == 0 and result.stats.get('FailedCall(C)') == '0', (name, result.stats, result.errors[-2000:])
    assert int(results['calls'].stats['SuccessfulCall(C)']) == CALLS
    assert int(results['registers'].stats['SuccessfulCall(C)']) == REGISTERS
    slowest = {}
    for scenario, labels in (('register_load_timed', {'1': 'REGISTER -> 401', '2': 'REGISTER with credentials -> 200'}),
                             ('inbound_call_timed', {'1': 'INVITE -> 180', '2': 'BYE -> 200'})):
        times = _reply_times(work, scenario)
        for rtd, label in labels.items():
            assert times.get(rtd), 'no reply times for %s in %s' % (label, work)
            slowest[label] = (max(times[rtd]), len(times[rtd]))
    print('big directory: playbook %.1f s, routed %.2f s after it ended; slowest replies (ms, count): %s'
          % (ended - started, seen['routed'] - ended, slowest))
    assert all(ms < SLOWEST_REPLY_MS for ms, _n in slowest.values()), slowest
