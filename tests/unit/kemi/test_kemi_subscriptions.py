# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kemi/voxplane_subscriptions.py through the KSR double: SUBSCRIBE to message-summary (and the
package check shared with as-feature-event), the rtimer tick (what it reads when nothing
happened, the NOTIFYs of a mailbox's counts in the subscription's dialog, the first tick after a
start, unsolicited NOTIFYs to the registered contacts of accounts whose phones want them), with a
real directory whose mailboxes the store's own voicemail API changes. The htable is a dict with
the real module's locking rule (no slot lock while an iterator is open). Against a real
Kamailio: tests/sip/test_message_waiting.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

import kemi_directory
from kemi_directory import BETA_DOMAIN, DOMAIN
from ansible_collections.voxplane.pbx.plugins.module_utils import message_summary
from ansible_collections.voxplane.pbx.plugins.module_utils.model import DEVICE

CISCO_MAC = '00:eb:d5:00:00:12'      # a Cisco MPP (unsolicited MWI) carrying paul.desk (12)
YEALINK_MAC = '80:5e:c0:00:00:13'    # a Yealink (subscribes) carrying anna.desk (13)
CONTACT = 'sip:paul.desk@192.0.2.44:5062'
RECEIVED = 'sip:198.51.100.9:40000'


class Tables(object):
    """Kamailio's htables as the router uses them: get/sets/rm/inc, slot locks, one iterator."""

    def __init__(self, ksr, data=None):
        self.ksr = ksr
        self.data = data if data is not None else {}
        self.locked = []
        self.iterating = False
        r = ksr.returns
        r['htable.sht_get'] = lambda t, k: self.data.get((t, k), 0 if t == 'vxsubn' else None)
        r['htable.sht_sets'] = self.sets
        r['htable.sht_rm'] = lambda t, k: self.data.pop((t, k), None) and 1 or 1
        r['htable.sht_inc'] = self.inc
        r['htable.sht_lock'] = self.lock
        r['htable.sht_unlock'] = self.unlock
        r['htable.sht_iterator_start'] = self.start
        r['htable.sht_iterator_next'] = self.next
        r['htable.sht_iterator_end'] = self.end

    def sets(self, table, key, value):
        self.data[(table, key)] = value
        return 1

    def inc(self, table, key):
        self.data[(table, key)] = self.data.get((table, key), 0) + 1
        return self.data[(table, key)]

    def lock(self, table, key):
        assert not self.iterating, 'a slot lock while the iterator holds the slots: Kamailio would deadlock'
        assert (table, key) not in self.locked
        self.locked.append((table, key))
        return 1

    def unlock(self, table, key):
        self.locked.remove((table, key))
        return 1

    def start(self, name, table):
        self.iterating = True
        self.items = iter(sorted((k, v) for (t, k), v in self.data.items() if t == table))
        self.name = name
        return 1

    def next(self, name):
        try:
            key, value = next(self.items)
        except StopIteration:
            return -1
        self.ksr.pv['$shtitkey(%s)' % name] = key
        self.ksr.pv['$shtitval(%s)' % name] = value
        return 1

    def end(self, name):
        self.iterating = False
        return 1

    def subscriptions(self):
        return dict((k, v) for (t, k), v in self.data.items() if t == 'vxsubs' and k.startswith('sub:'))


@pytest.fixture
def db(tmp_path):
    harness = kemi_directory.build(tmp_path / 'directory.db')
    harness.apply('acme', None, {DEVICE: {
        CISCO_MAC: {'model': 'cisco-8841', 'lines': ['paul.desk']},
        YEALINK_MAC: {'model': 'yealink-t33g', 'lines': ['anna.desk']}}})
    return harness


@pytest.fixture
def worker(db, fresh):
    module, double, _clock = fresh(db.path)
    router = module.mod_init()
    assert router.view.current() is not None
    tables = Tables(double)
    double.reset()
    return module, router, double, tables


def contacts(ksr, by_aor):
    """usrloc's answer to reg_fetch_contacts: {aor: [(contact, received, socket)]}."""
    def fetch(table, aor, profile):
        assert table == 'location' and profile == 'vxmwi'
        found = by_aor.get(aor, [])
        ksr.pv['$(ulc(vxmwi=>count))'] = len(found)
        for i, (contact, received, socket) in enumerate(found):
            ksr.pv['$(ulc(vxmwi=>addr)[%d])' % i] = contact
            ksr.pv['$(ulc(vxmwi=>received)[%d])' % i] = received
            ksr.pv['$(ulc(vxmwi=>socket)[%d])' % i] = socket
            ksr.pv['$(ulc(vxmwi=>path)[%d])' % i] = None
        return 1 if found else -1
    ksr.returns['registrar.reg_fetch_contacts'] = fetch


def subscribe(router, ksr, user, to=None, event='message-summary', domain=DOMAIN, call_id='cid-1', expires='600',
              totag=False):
    to = to or user
    ruri = 'sip:%s@%s' % (to, domain)
    ksr.pv.clear()
    ksr.returns['siputils.has_totag'] = 1 if totag else -1
    ksr.pv.update({'$rm': 'SUBSCRIBE', '$si': '192.0.2.44', '$sp': 5062, '$pr': 'udp', '$Ri': '192.0.2.1', '$Rp': 5060,
                   '$ru': ruri, '$adu': ruri, '$rU': to, '$tU': to, '$fd': domain, '$fU': user, '$au': user,
                   '$ci': call_id, '$ft': 'phone-tag', '$ltt(s)': 'our-tag', '$hdr(Event)': event,
                   '$hdr(Expires)': expires, '$hdr(Contact)': '<sip:%s@192.0.2.44:5062>' % user})
    ksr.reset()
    router.ksr_request_route(None)
    return ksr.called('sl.sl_send_reply') + ksr.called('sl.send_reply')


def notifies(ksr):
    """(request URI, next hop, socket, headers dict, body) of every NOTIFY sent."""
    out = []
    for method, ruri, next_hop, socket, headers, body in ksr.called('tm.t_uac_send'):
        assert method == 'NOTIFY'
        fields = dict(line.split(': ', 1) for line in headers.split('\r\n') if line)
        out.append((ruri, next_hop, socket, fields, body))
    return out


def lamp(body):
    parsed = message_summary.parse(body)
    return ('yes' if parsed['waiting'] else 'no', parsed['new'], parsed['old'])


def tick(router, ksr):
    ksr.reset()
    router.ksr_rtimer_subscriptions(None)
    assert [line for level, line in ksr.logs if level == 'err'] == []
    return notifies(ksr)


def add_message(db, extension, folder='new', tenant='acme'):
    with db.directory.transaction() as txn:
        return txn.add_voicemail(tenant, extension, '2026-01-01T10:00:00Z', 3000, 'x.wav', {}, folder=folder)


# ------------------------------------------------------------------------------ SUBSCRIBE
def test_a_phone_subscribes_to_its_own_account_or_mailbox_and_is_answered_200(worker):
    _module, router, ksr, tables = worker
    assert subscribe(router, ksr, 'vera.desk') == [(200, 'OK')]
    assert ksr.called('hdr.append_to_reply') == [('Expires: 600\r\nContact: <sip:%s>\r\n' % DOMAIN,)]
    assert subscribe(router, ksr, 'vera.desk', to='*86', call_id='cid-2') == [(200, 'OK')]
    assert subscribe(router, ksr, 'vera.desk', to='%2A86', call_id='cid-3') == [(200, 'OK')]  # escaped as some send it
    records = dict((k, message_summary_record(v)) for k, v in tables.subscriptions().items())
    assert sorted(records) == ['sub:message-summary:cid-1', 'sub:message-summary:cid-2', 'sub:message-summary:cid-3']
    first = records['sub:message-summary:cid-1']
    assert (first['event'], first['tenant'], first['extension'], first['username']) == ('message-summary', 'acme', '44', 'vera.desk')
    assert first['resource'] == 'sip:vera.desk@%s' % DOMAIN and records['sub:message-summary:cid-2']['resource'] == 'sip:*86@%s' % DOMAIN
    where = ('sip:vera.desk@192.0.2.44:5062', 'sip:192.0.2.44:5062', 'udp:192.0.2.1:5060')
    assert (first['contact'], first['next_hop'], first['socket']) == where
    assert first['sent'] is None and tables.data[('vxsubn', 'n')] == 3
    assert tables.locked == []


def message_summary_record(text):
    from ansible_collections.voxplane.pbx.plugins.module_utils import subscriptions
    return subscriptions.loads(text)


@pytest.mark.parametrize('to', ['max.muster', '10', '86', '*78'])
def test_nobody_subscribes_to_another_box(worker, to):
    _module, router, ksr, tables = worker
    assert subscribe(router, ksr, 'vera.desk', to=to) == [(403, 'Subscribe to your own account only')]
    assert tables.subscriptions() == {}


def test_another_package_is_489_naming_both_served(worker):
    _module, router, ksr, _tables = worker
    assert subscribe(router, ksr, 'vera.desk', event='presence') == [(489, 'Bad Event')]
    assert ksr.called('hdr.append_to_reply') == [('Allow-Events: as-feature-event, message-summary\r\n',)]


def test_a_refresh_is_told_again_an_unsubscribe_ends_it_and_an_unknown_dialog_is_481(worker):
    module, router, ksr, tables = worker
    subscribe(router, ksr, 'vera.desk')
    assert [lamp(n[4]) for n in tick(router, ksr)] == [('no', 0, 0)]
    assert tick(router, ksr) == []
    assert subscribe(router, ksr, 'vera.desk', totag=True) == [(200, 'OK')]
    [(_ruri, _hop, _sock, headers, _body)] = tick(router, ksr)
    assert headers['CSeq'] == '2 NOTIFY' and headers['From'] == '<sip:vera.desk@%s>;tag=our-tag' % DOMAIN
    assert subscribe(router, ksr, 'vera.desk', totag=True, expires='0') == [(200, 'OK')]
    assert tables.subscriptions() == {}
    assert subscribe(router, ksr, 'vera.desk', totag=True) == [(481, 'Subscription Does Not Exist')]
    assert module.SUBSCRIPTIONS is not None


# ------------------------------------------------------------------------------ the tick
def test_an_idle_tick_costs_two_selects_and_reads_no_subscription(worker, traced_sql):
    _module, router, ksr, _tables = worker
    subscribe(router, ksr, 'vera.desk')
    tick(router, ksr)
    del traced_sql[:]
    assert tick(router, ksr) == []
    assert traced_sql == ['SELECT generation FROM voxplane_generation WHERE id = 1',
                          'SELECT serial FROM voicemail_serial WHERE id = 1']
    assert ksr.called('htable.sht_iterator_start') == []


def test_the_lamp_follows_the_mailbox_in_the_subscriptions_dialog(worker, db):
    _module, router, ksr, _tables = worker
    subscribe(router, ksr, 'vera.desk')
    subscribe(router, ksr, 'vera.desk', to='*86', call_id='cid-2')
    first = tick(router, ksr)
    assert [lamp(n[4]) for n in first] == [('no', 0, 0)] * 2
    ruri, next_hop, socket, headers, body = first[0]
    assert (ruri, next_hop, socket) == ('sip:vera.desk@192.0.2.44:5062', 'sip:192.0.2.44:5062', 'udp:192.0.2.1:5060')
    assert headers['Event'] == 'message-summary' and headers['Content-Type'] == 'application/simple-message-summary'
    assert headers['To'] == '<sip:vera.desk@%s>;tag=phone-tag' % DOMAIN and headers['Call-ID'] == 'cid-1'
    assert headers['Subscription-State'].startswith('active;expires=')
    assert 'Message-Account: sip:*86@%s' % DOMAIN in body

    message = add_message(db, '44')
    after = tick(router, ksr)
    assert [(lamp(n[4]), n[3]['CSeq']) for n in after] == [(('yes', 1, 0), '2 NOTIFY')] * 2
    with db.directory.transaction() as txn:
        txn.move_voicemail('acme', message, 'saved')
    assert [lamp(n[4]) for n in tick(router, ksr)] == [('no', 0, 1)] * 2
    with db.directory.transaction() as txn:
        txn.delete_voicemail('acme', message)
    assert [lamp(n[4]) for n in tick(router, ksr)] == [('no', 0, 0)] * 2
    # another box changes: nobody here is told anything
    add_message(db, '11')
    assert tick(router, ksr) == []


def test_another_tenants_box_never_reaches_this_subscription(worker, db):
    _module, router, ksr, _tables = worker
    subscribe(router, ksr, 'vera.desk')
    tick(router, ksr)
    with db.directory.transaction() as txn:
        beta = txn.load_tenant('beta')
    beta_extension = sorted(beta.objects('extension'))[0]
    add_message(db, beta_extension, tenant='beta')
    assert tick(router, ksr) == []
    assert BETA_DOMAIN != DOMAIN


def test_after_a_restart_the_first_tick_tells_every_subscription_even_an_unchanged_one(worker, db, fresh):
    _module, router, ksr, tables = worker
    subscribe(router, ksr, 'vera.desk')
    tick(router, ksr)
    # Kamailio restarts: the htable comes back from the database, the process is new
    module2, double2, _clock = fresh(db.path)
    router2 = module2.mod_init()
    Tables(double2, tables.data)
    assert [(lamp(n[4]), n[3]['CSeq']) for n in tick(router2, double2)] == [(('no', 0, 0), '2 NOTIFY')]
    assert tick(router2, double2) == []
    add_message(db, '44')  # while "down" for the next one
    module3, double3, _clock = fresh(db.path)
    router3 = module3.mod_init()
    Tables(double3, tables.data)
    assert [lamp(n[4]) for n in tick(router3, double3)] == [('yes', 1, 0)]


def test_an_expired_subscription_is_dropped_without_a_notify(worker, db):
    _module, router, ksr, tables = worker
    subscribe(router, ksr, 'vera.desk')
    tick(router, ksr)
    key = 'sub:message-summary:cid-1'
    record = message_summary_record(tables.data[('vxsubs', key)])
    record['expires_at'] = 1.0
    from ansible_collections.voxplane.pbx.plugins.module_utils import subscriptions
    tables.data[('vxsubs', key)] = subscriptions.dumps(record)
    add_message(db, '44')
    assert tick(router, ksr) == [] and tables.subscriptions() == {}


def test_a_subscribe_between_reading_and_notifying_wins(worker, db):
    module, router, ksr, tables = worker
    subscribe(router, ksr, 'vera.desk')
    tick(router, ksr)
    add_message(db, '44')
    real_records = module.SUBSCRIPTIONS._records

    def records_then_refresh(now):
        found = real_records(now)
        subscribe(router, ksr, 'vera.desk', totag=True)  # the worker refreshes meanwhile
        ksr.pv['$rm'] = 'SUBSCRIBE'
        return found
    module.SUBSCRIPTIONS._records = records_then_refresh
    try:
        ksr.reset()
        router.ksr_rtimer_subscriptions(None)
    finally:
        module.SUBSCRIPTIONS._records = real_records
    assert ksr.called('tm.t_uac_send') == []  # the stale record is not notified ...
    assert [(lamp(n[4]), n[3]['CSeq']) for n in tick(router, ksr)] == [(('yes', 1, 0), '2 NOTIFY')]  # ... the refreshed one is


# ------------------------------------------------------------------------------ unsolicited
def test_a_registered_phone_that_wants_unsolicited_mwi_gets_an_out_of_dialog_notify(worker, db):
    _module, router, ksr, _tables = worker
    contacts(ksr, {'sip:paul.desk@%s' % DOMAIN: [(CONTACT, RECEIVED, 'udp:192.0.2.1:5060')],
                   'sip:anna.desk@%s' % DOMAIN: [('sip:anna.desk@192.0.2.45:5062', '', 'udp:192.0.2.1:5060')]})
    tick(router, ksr)
    add_message(db, '12')
    add_message(db, '13')  # anna's Yealink subscribes by itself: no unsolicited NOTIFY
    [(ruri, next_hop, socket, headers, body)] = tick(router, ksr)
    assert (ruri, next_hop, socket) == (CONTACT, RECEIVED, 'udp:192.0.2.1:5060')
    assert headers['From'].startswith('<sip:*86@%s>;tag=' % DOMAIN) and headers['To'] == '<sip:paul.desk@%s>' % DOMAIN
    assert headers['CSeq'] == '1 NOTIFY' and headers['Event'] == 'message-summary'
    assert lamp(body) == ('yes', 1, 0)
    assert ksr.called('registrar.reg_free_contacts') == [('vxmwi',)]
    # the same counts again (a greeting changed the serial): nothing; the message heard: told
    with db.directory.transaction() as txn:
        txn.set_mailbox_state('acme', '12', {'greetings': {}})
    assert tick(router, ksr) == []
    with db.directory.transaction() as txn:
        [message] = txn.voicemail_messages('acme', '12')
        txn.move_voicemail('acme', message['id'], 'saved')
    assert [lamp(n[4]) for n in tick(router, ksr)] == [('no', 0, 1)]


def test_an_account_that_subscribed_is_told_in_its_dialog_only(worker, db):
    _module, router, ksr, _tables = worker
    contacts(ksr, {'sip:paul.desk@%s' % DOMAIN: [(CONTACT, RECEIVED, 'udp:192.0.2.1:5060')]})
    subscribe(router, ksr, 'paul.desk')
    tick(router, ksr)
    add_message(db, '12')
    [(ruri, _hop, _sock, headers, _body)] = tick(router, ksr)
    assert headers['Call-ID'] == 'cid-1' and ruri == 'sip:paul.desk@192.0.2.44:5062'


def test_unsolicited_phones_learn_after_a_restart_what_changed_while_down(worker, db, fresh):
    _module, router, ksr, tables = worker
    contacts(ksr, {'sip:paul.desk@%s' % DOMAIN: [(CONTACT, RECEIVED, 'udp:192.0.2.1:5060')]})
    add_message(db, '12')
    assert [lamp(n[4]) for n in tick(router, ksr)] == [('yes', 1, 0)]
    assert tables.data[('vxsubs', 'mwi:serial')] == '1'
    # down: a message for 12 arrives; then a start with the stored serial tells only that box
    add_message(db, '12')
    module2, double2, _clock = fresh(db.path)
    router2 = module2.mod_init()
    Tables(double2, tables.data)
    contacts(double2, {'sip:paul.desk@%s' % DOMAIN: [(CONTACT, RECEIVED, 'udp:192.0.2.1:5060')]})
    assert [lamp(n[4]) for n in tick(router2, double2)] == [('yes', 2, 0)]
    assert tick(router2, double2) == []


def test_an_unsolicited_account_without_registered_contacts_is_sent_nothing(worker, db):
    _module, router, ksr, _tables = worker
    contacts(ksr, {})
    tick(router, ksr)
    add_message(db, '12')
    assert tick(router, ksr) == []
