# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The message-waiting lamp (message-summary, RFC 3842) against a real Kamailio of its own
(deployed by the role, tenants.yml; restarted by one test): raw SIP phones (lab.mwi.Subscriber)
that register and subscribe with digest authentication, answer every NOTIFY 200 and read its body;
messages appear, are saved and deleted through the directory's store API, as the media service
writes them.

- a subscribed phone's lamp goes on (yes 1/0) and off (no 0/1, no 0/0), each NOTIFY within 1 s,
  in the subscription's dialog; the mailbox's voicemail number (*86) is a subscription target too;
- a SUBSCRIBE to somebody else's box is refused; another tenant's phone never hears of this box;
- a phone that only registers but whose device (a Gigaset: catalogue.MWI) asks for unsolicited
  MWI gets an out-of-dialog NOTIFY; one that does not ask gets nothing;
- Kamailio stopped with a live subscription and a registered unsolicited phone, a message
  arriving meanwhile: after the start both lamps go on, the subscription's in its old dialog.
"""

import time
import uuid

import pytest

from lab.directories import use_collection
from lab.kamailio import kamailio_lab, missing_prerequisites
from lab.mwi import WAIT, Subscriber, lamp_of
from lab.wire import wait_for_options

ACME = 'acme.sip.test'
BETA = 'beta.sip.test'
GIGASET = '7c:2f:80:00:00:12'  # a Gigaset N670 carrying cora.desk (12): unsolicited MWI


def password(user):
    name, kind = user.split('.')
    return '%s-%s-pw' % (name, kind)


@pytest.fixture(scope='module')
def pbx():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    with kamailio_lab(prefix='voxplane-mwi-', kamailio_children=1) as instance:
        use_collection()
        from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
        from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory
        instance.store = Directory(instance.directory_path)
        with instance.store.transaction() as txn:
            reconcile(txn, 'acme', None, {'device': {GIGASET: {'model': 'gigaset-n670', 'lines': ['cora.desk']}}})
        yield instance


@pytest.fixture
def mailbox(pbx):
    """add(extension, tenant) -> message id; save(id); delete(id); every message gone afterwards."""
    added = []

    class Mailbox(object):
        @staticmethod
        def add(extension, tenant='acme'):
            with pbx.store.transaction() as txn:
                message = txn.add_voicemail(tenant, extension, '2026-01-01T10:00:00Z', 4000,
                                            'voicemail/%s/%s/%s.wav' % (tenant, extension, uuid.uuid4().hex), {})
            added.append((tenant, message))
            return message

        @staticmethod
        def save(message, tenant='acme'):
            with pbx.store.transaction() as txn:
                txn.move_voicemail(tenant, message, 'saved')

        @staticmethod
        def delete(message, tenant='acme'):
            with pbx.store.transaction() as txn:
                txn.delete_voicemail(tenant, message)
    yield Mailbox
    with pbx.store.transaction() as txn:
        for tenant, message in added:
            txn.delete_voicemail(tenant, message)


@pytest.fixture
def phones(pbx):
    opened = []

    def phone(user, domain=ACME):
        opened.append(Subscriber(pbx.address, pbx.target, user, domain, password(user)))
        return opened[-1]
    yield phone
    for p in opened:
        if p.dialog is not None:
            p.subscribe(expires=0)
        p.close()


def test_a_subscribed_phones_lamp_goes_on_and_off_with_the_mailbox(pbx, phones, mailbox):
    anna = phones('anna.desk')
    assert anna.subscribe().code == 200
    assert anna.lamp() == ('no', 0, 0)  # at once, the current counts
    message = mailbox.add('10')
    assert anna.lamp(since=time.time()) == ('yes', 1, 0)
    mailbox.save(message)
    assert anna.lamp(since=time.time()) == ('no', 0, 1)
    mailbox.delete(message)
    assert anna.lamp(since=time.time()) == ('no', 0, 0)
    assert anna.notifies(0.5) == []  # nothing more


def test_the_voicemail_number_is_a_subscription_target_too(pbx, phones, mailbox):
    bert = phones('bert.desk')
    answer = bert.subscribe(to='*86')
    assert answer.code == 200, answer.first_line
    assert bert.lamp() == ('no', 0, 0)
    mailbox.add('11')
    assert bert.lamp(since=time.time()) == ('yes', 1, 0)


def test_a_subscribe_to_somebody_elses_box_is_refused(pbx, phones):
    anna = phones('anna.desk')
    answer = anna.subscribe(to='bert.desk')
    assert answer.code == 403, answer.first_line
    assert anna.notifies(0.5) == []


def test_another_tenants_phone_never_hears_of_this_box(pbx, phones, mailbox):
    dora = phones('dora.desk', BETA)
    assert dora.subscribe().code == 200
    assert dora.lamp() == ('no', 0, 0)
    anna = phones('anna.desk')
    assert anna.subscribe().code == 200
    assert anna.lamp() == ('no', 0, 0)
    mailbox.add('10')  # acme's 10; beta has a 10 (Dora) too
    assert anna.lamp() == ('yes', 1, 0)
    assert dora.notifies(WAIT) == []


def test_a_registered_phone_that_asks_for_unsolicited_mwi_is_notified_without_subscribing(pbx, phones, mailbox):
    cora = phones('cora.desk')  # a line of the Gigaset
    cora.register()
    bert = phones('bert.desk')  # registered, no device that asks for unsolicited MWI
    bert.register()
    mailbox.add('12')
    mailbox.add('11')
    got = cora.notifies(WAIT, first=True)
    assert len(got) == 1, [m.text for _t, m in got]
    message = got[0][1]
    assert message.header('Event') == 'message-summary' and ';tag=' not in message.header('To')
    assert message.header('From').startswith('<sip:*86@%s>' % ACME) and message.uri.endswith(':%d' % cora.peer.port)
    assert lamp_of(message, None) == ('yes', 1, 0)
    assert bert.notifies(0.5) == []
    cora.register(expires=0)
    bert.register(expires=0)


def test_after_a_restart_the_lamp_shows_what_arrived_while_kamailio_was_down(pbx, phones, mailbox):
    anna = phones('anna.desk')
    assert anna.subscribe().code == 200
    assert anna.lamp() == ('no', 0, 0)
    cora = phones('cora.desk')
    cora.register()
    mailbox.add('12')
    assert [lamp_of(m, None) for _t, m in cora.notifies(WAIT, first=True)] == [('yes', 1, 0)]
    stopped = pbx.control('stop')
    assert stopped.returncode == 0, stopped.stderr
    mailbox.add('10')  # both arrive while Kamailio is down
    mailbox.add('12')
    started = pbx.control('start')
    assert started.returncode == 0, started.stderr + pbx.log_tail()
    assert wait_for_options(pbx.address, pbx.port)
    # the subscription came back from the usrloc database: the NOTIFY is in its old dialog
    assert anna.lamp(timeout=5) == ('yes', 1, 0)
    got = cora.notifies(5, first=True)
    assert [lamp_of(m, None) for _t, m in got] == [('yes', 2, 0)], pbx.log_tail()
    cora.register(expires=0)
