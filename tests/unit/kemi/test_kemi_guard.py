# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router's flood and ban policy (kemi/voxplane_kemi.py ``Guard``, docs/security.md) with
several workers: each worker is a script of its own with a KSR double of its own, and the
doubles share one ``SharedTables``, the htables of one Kamailio instance.

- Requests are counted per address and slot in shared memory (vxflood): the configured number
  holds however the requests spread over the workers.
- An address that passed digest authentication (vxknown) is never banned: over its own ceiling
  its requests get 503 with Retry-After, and past the failure limit its failures get 503
  instead of a new challenge.
- An unknown address is banned for a flood or for failures, as before.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import types

import pytest

from conftest import loaded_script, settings_for
from ksr_double.ksr_double import KSRDouble
from kemi_directory import DOMAIN, ECOTEL
from test_kemi_adapter import new_request, register, replies

# Small numbers, so that a test sends a flood in a few requests: more than 8 requests in a slot
# of 2 s ban an unknown address, more than 12 rate-limit a known one, 3 failures in a window of
# 60 s ban an unknown address.
BAN = {'flood_requests': 8, 'flood_interval': 2, 'known_flood_requests': 12, 'auth_failures': 3, 'window': 60,
       'time': 900}
OFFICE = '203.0.113.10'   # phones of one tenant behind one NAT address
STRANGER = '203.0.113.66'  # an address nothing ever authenticated from


class SharedTables(object):
    """The htables of one Kamailio instance (the role's cfg), shared by the doubles of several
    workers, with htable 5.6.3's semantics as measured on the live server: sht_inc on a missing
    item creates it in a table with initval (vxflood, vxfail) and answers -255 in one without;
    sht_get of a missing item gives the table's initval (None without one); sht_seti answers 1.
    Expiry is not modelled: the keys carry their slot or window."""

    INITVAL = {'vxflood': 0, 'vxfail': 0}

    def __init__(self, *doubles):
        self.items = {}
        for double in doubles:
            self.attach(double)

    def attach(self, double):
        for name in ('sht_get', 'sht_inc', 'sht_seti', 'sht_lock', 'sht_unlock'):
            double.returns['htable.' + name] = getattr(self, name)
        return double

    def table(self, name):
        return dict((key, value) for (table, key), value in self.items.items() if table == name)

    def sht_get(self, table, key):
        return self.items.get((table, key), self.INITVAL.get(table))

    def sht_inc(self, table, key):
        if (table, key) not in self.items:
            if table not in self.INITVAL:
                return -255
            self.items[(table, key)] = self.INITVAL[table]
        self.items[(table, key)] += 1
        return self.items[(table, key)]

    def sht_seti(self, table, key, value):
        self.items[(table, key)] = value
        return 1

    @staticmethod
    def sht_lock(table, key):
        return 1

    sht_unlock = sht_lock


class Clock(object):
    """time.time() of every worker (the slots and windows follow it)."""

    def __init__(self, now=1000.5):
        self.now = now

    def time(self):
        return self.now

    def monotonic(self):
        return self.now


class Record(object):
    """What a worker's double saw of one request (the double itself starts afresh with the next)."""

    def __init__(self, double):
        self.calls, self.logs = list(double.calls), list(double.logs)

    def called(self, name):
        return [call.args for call in self.calls if call.name == name]


class Instance(object):
    """A Kamailio instance of ``count`` workers over ``directory`` with these ban settings."""

    def __init__(self, workers, doubles, tables, clock):
        self.workers, self.doubles, self.tables, self.clock = workers, doubles, tables, clock
        self.logs = []  # (level, message) of every request so far, in order

    def _sent(self, double):
        record = Record(double)
        self.logs += record.logs
        return record

    def send(self, worker, method, source, **pv):
        """One request to worker ``worker``; its Record."""
        double = self.doubles[worker]
        double.reset()
        double.pv.clear()
        new_request(double, method, si=source, **pv)
        self.workers[worker].ksr_request_route(None)
        return self._sent(double)

    def options(self, worker, source):
        return self.send(worker, 'OPTIONS', source)

    def register(self, worker, source, right=True):
        """An authenticated REGISTER of max.muster (the double's pv_auth_check: 1 right, -2 wrong)."""
        double = self.doubles[worker]
        double.reset()
        double.pv.clear()
        register(double, 'max.muster')
        double.pv['$si'] = source
        double.returns['auth.pv_auth_check'] = 1 if right else -2
        self.workers[worker].ksr_request_route(None)
        return self._sent(double)

    def banned(self):
        return sorted(self.tables.table('vxban'))

    def warnings(self):
        return [message for level, message in self.logs if level == 'warn']


@pytest.fixture
def instance(tmp_path, directory, monkeypatch):
    """make(count=2, **ban) -> Instance: workers sharing their htables and clock."""
    with contextlib.ExitStack() as stack:
        def make(count=2, nat=False, **ban):
            settings = dict(settings_for(directory.path), ban=dict(BAN, **ban), media={'nat': nat})
            tables, clock = SharedTables(), Clock()
            workers, doubles = [], []
            for number in range(count):
                double = tables.attach(KSRDouble())
                module = stack.enter_context(loaded_script(tmp_path / ('worker-%d' % number), settings, double))
                monkeypatch.setattr(module, 'time', types.SimpleNamespace(time=clock.time, monotonic=clock.monotonic))
                worker = module.mod_init()
                worker.child_init(1)  # a SIP worker loads its snapshot (and so the trunks) at start
                workers.append(worker)
                doubles.append(double)
            return Instance(workers, doubles, tables, clock)
        yield make


def answered(records):
    return [reply for record in records for reply in replies(record)]


# Floods: counted over all workers ----------------------------------------------------------------

def test_a_flood_is_counted_over_all_workers_whichever_takes_the_requests(instance):
    kamailio = instance()
    # Uneven: the configured 8 all to one worker are allowed (a worker's share would be 4) ...
    first = [kamailio.options(0, STRANGER) for _n in range(8)]
    assert answered(first) == [(200, 'OK')] * 8 and kamailio.banned() == []
    # ... and the 9th of the slot bans, though its worker saw none before.
    ninth = kamailio.options(1, STRANGER)
    assert replies(ninth) == [] and kamailio.banned() == [STRANGER]
    assert kamailio.warnings() == ['voxplane: banned %s for 900 s: request flood: more than 8 requests in 2 s\n'
                                   % STRANGER]


def test_a_flood_spread_evenly_over_the_workers_is_banned_at_the_configured_number(instance):
    kamailio = instance(count=4)
    sent = [kamailio.options(n % 4, STRANGER) for n in range(12)]   # 3 a worker
    assert answered(sent) == [(200, 'OK')] * 8
    assert kamailio.banned() == [STRANGER] and len(kamailio.warnings()) == 1


def test_a_ban_holds_in_the_next_slots_and_is_not_counted(instance):
    kamailio = instance()
    for n in range(9):
        kamailio.options(n % 2, STRANGER)
    assert kamailio.banned() == [STRANGER]
    kamailio.clock.now = 1002.0
    later = [kamailio.options(n % 2, STRANGER) for n in range(20)]
    assert answered(later) == [] and len(kamailio.warnings()) == 1
    assert kamailio.tables.table('vxflood') == {STRANGER + '|500': 9}


def test_each_slot_counts_afresh(instance):
    kamailio = instance()
    for now in (1000.0, 1001.9, 1002.0, 1003.9):   # slots 500 and 501, 6 + 6 requests
        kamailio.clock.now = now
        assert answered([kamailio.options(n % 2, STRANGER) for n in range(3)]) == [(200, 'OK')] * 3
    assert kamailio.banned() == []
    assert sorted(kamailio.tables.table('vxflood').items()) == [(STRANGER + '|500', 6), (STRANGER + '|501', 6)]


def test_a_request_costs_a_look_into_the_ban_table_and_one_count(instance):
    kamailio = instance()
    double = kamailio.register(0, STRANGER)
    htable = [(call.name, call.args) for call in double.calls if call.name.startswith('htable.')]
    assert htable[:2] == [('htable.sht_get', ('vxban', STRANGER)), ('htable.sht_inc', ('vxflood', STRANGER + '|500'))]
    # what follows is the known table: written once for this worker's first authentication ...
    assert htable[2:] == [('htable.sht_seti', ('vxknown', STRANGER, 1))]
    # ... and not again within the refresh interval, however often the address authenticates
    again = kamailio.register(0, STRANGER)
    assert [(call.name, call.args) for call in again.calls if call.name.startswith('htable.')] == htable[:2]


def test_a_known_address_is_written_again_after_the_refresh_interval(instance):
    kamailio = instance()
    writes = []
    for now in (1000.0, 1005.0, 1009.9, 1010.0, 1015.0, 1020.1):
        kamailio.clock.now = now
        writes += kamailio.register(0, OFFICE).called('htable.sht_seti')
    assert writes == [('vxknown', OFFICE, 1)] * 3     # at 1000.0, 1010.0 and 1020.1


@pytest.mark.parametrize('source', [ECOTEL[0], '10.0.0.99'])
def test_trunks_and_exempt_addresses_are_neither_counted_nor_banned_nor_written(instance, source):
    kamailio = instance(exempt=['10.0.0.99'])
    for n in range(30):
        kamailio.options(n % 2, source)
    double = kamailio.register(0, source)
    assert kamailio.tables.items == {} and double.called('registrar.save') == [('location', 0)]


# Known addresses: never banned, rate-limited ------------------------------------------------------

def test_an_address_that_authenticated_on_one_worker_is_known_to_all(instance):
    kamailio = instance()
    assert kamailio.register(0, OFFICE).called('registrar.save') == [('location', 0)]
    sent = [kamailio.options(1, OFFICE) for _n in range(11)]       # 12 requests in the slot
    assert answered(sent) == [(200, 'OK')] * 11
    assert kamailio.banned() == [] and kamailio.warnings() == []


def test_a_known_address_over_its_ceiling_gets_503_with_retry_after_and_is_never_banned(instance):
    kamailio = instance(nat=True)
    kamailio.register(0, OFFICE)                                    # 1 request: known now
    sent = [kamailio.options(n % 2, OFFICE) for n in range(15)]     # requests 2 to 16 of the slot
    assert answered(sent) == [(200, 'OK')] * 11 + [(503, 'Service Unavailable')] * 4
    # the slot [1000, 1002) ends 1.5 s after the clock's 1000.5: come back in 2 s
    assert [d.called('hdr.append_to_reply') for d in sent][-4:] == [[('Retry-After: 2\r\n',)]] * 4
    assert [d.called('force_rport') for d in sent][-1] == [()]     # the 503 goes back through the NAT
    assert kamailio.banned() == []
    assert kamailio.warnings() == ['voxplane: rate-limited %s: more than 12 requests in 2 s; answered 503 for the '
                                   'rest of the 2 s (an address that authenticated recently is never banned)\n'
                                   % OFFICE]                          # once a slot, not once a request
    ack = kamailio.send(0, 'ACK', OFFICE)
    assert replies(ack) == [] and ack.called('hdr.append_to_reply') == []
    # the next slot admits it again, and a phone there registers
    kamailio.clock.now = 1002.0
    assert kamailio.register(1, OFFICE).called('registrar.save') == [('location', 0)]


def test_a_known_address_is_looked_up_once_per_refresh_interval_by_a_worker(instance):
    kamailio = instance()
    kamailio.register(0, OFFICE)
    lookups = []
    for _n in range(11):
        lookups += [args for args in kamailio.options(1, OFFICE).called('htable.sht_get') if args[0] == 'vxknown']
    assert lookups == [('vxknown', OFFICE)]                         # the first request over 8


def test_an_unknown_address_behind_a_known_one_is_banned_alone(instance):
    kamailio = instance()
    kamailio.register(0, OFFICE)
    for n in range(10):
        kamailio.options(n % 2, OFFICE)
        kamailio.options(n % 2, STRANGER)
    assert kamailio.banned() == [STRANGER]


# Failures -------------------------------------------------------------------------------------------

def test_an_unknown_address_guessing_passwords_is_banned(instance):
    kamailio = instance()
    guesses = [kamailio.register(n % 2, STRANGER, right=False) for n in range(3)]
    assert [d.called('auth.auth_challenge') for d in guesses] == [[(DOMAIN, 1)]] * 3
    assert kamailio.banned() == [STRANGER]
    assert kamailio.warnings() == ['voxplane: banned %s for 900 s: 3 authentication failures\n' % STRANGER]
    silent = kamailio.register(0, STRANGER)
    assert replies(silent) == [] and silent.called('registrar.save') == []


def test_wrong_passwords_from_a_known_address_get_503_past_the_limit_and_never_a_ban(instance):
    kamailio = instance(known_flood_requests=100)
    kamailio.register(0, OFFICE)
    # a forger (or a broken phone) at the office's address: 3 failures get a new challenge as
    # always, from the 3rd of the window on 503 with Retry-After instead ...
    guesses = [kamailio.register(n % 2, OFFICE, right=False) for n in range(6)]
    assert [d.called('auth.auth_challenge') for d in guesses] == [[(DOMAIN, 1)]] * 2 + [[]] * 4
    assert answered(guesses) == [(503, 'Service Unavailable')] * 4
    # the window [960, 1020) ends 19.5 s after the clock's 1000.5
    assert guesses[-1].called('hdr.append_to_reply') == [('Retry-After: 20\r\n',)]
    # ... logged: each failure up to the limit, then one line for the window
    notices = [m for d in guesses for level, m in d.logs if level == 'notice']
    assert len(notices) == 3 and kamailio.warnings() == [
        'voxplane: rate-limited authentication failures of %s: 3 in 60 s; answered 503 for the rest of the window '
        '(an address that authenticated recently is never banned)\n' % OFFICE]
    # never banned, and the office's phones with their right passwords register all along
    assert kamailio.banned() == []
    assert kamailio.register(1, OFFICE).called('registrar.save') == [('location', 0)]


@pytest.mark.parametrize('what', ['unknown domain', 'unknown account'])
def test_other_failures_of_a_known_address_past_the_limit_get_503_too(instance, what):
    kamailio = instance()
    kamailio.register(0, OFFICE)
    for _n in range(3):
        kamailio.register(0, OFFICE, right=False)
    double = kamailio.doubles[1]
    double.reset()
    double.pv.clear()
    if what == 'unknown domain':
        new_request(double, 'REGISTER', si=OFFICE, td='nowhere.example', tU='x', fU='x', ru='sip:nowhere.example')
    else:
        register(double, 'no.such.user')
        double.pv['$si'] = OFFICE
    kamailio.workers[1].ksr_request_route(None)
    assert replies(double) == [(503, 'Service Unavailable')] and double.called('auth.auth_challenge') == []
    assert kamailio.banned() == []
