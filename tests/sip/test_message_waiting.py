# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The message-waiting lamp (message-summary, RFC 3842) against a real Kamailio of its own
(deployed by the role, tenants.yml; restarted by one test): raw SIP phones (lab.wire.Peer) that
register and subscribe with digest authentication, answer every NOTIFY 200 and read its body;
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
from lab.wire import Message, Peer, wait_for_options

ACME = 'acme.sip.test'
BETA = 'beta.sip.test'
GIGASET = '7c:2f:80:00:00:12'  # a Gigaset N670 carrying cora.desk (12): unsolicited MWI
WAIT = 1.0  # every NOTIFY must arrive within this after the change
QUIET = 0.3  # and no other within this after it


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


class Phone(object):
    """A SIP account on a UDP socket of its own: registers, subscribes, answers NOTIFYs."""

    def __init__(self, pbx, user, domain=ACME):
        self.user, self.domain = user, domain
        self.peer = Peer(pbx.address, pbx.target)
        self.dialog = None  # (Call-ID, our From tag, the server's To tag) of the subscription
        self.seen = set()  # (Call-ID, CSeq) of the NOTIFYs received

    def close(self):
        self.peer.close()

    def register(self, expires=600):
        _challenge, answer, _params = self.peer.authenticate('REGISTER', self.user, self.domain, password(self.user),
                                                             headers=['Expires: %d' % expires])
        assert answer is not None and answer.code == 200, (answer and answer.first_line, self.transcript())

    def subscribe(self, to=None, expires=600):
        """The final reply (a Message) of an authenticated SUBSCRIBE to message-summary of ``to``."""
        _challenge, answer, _params = self.peer.authenticate(
            'SUBSCRIBE', self.user, self.domain, password(self.user), dialled=to or self.user,
            headers=['Event: message-summary', 'Expires: %d' % expires, 'Accept: application/simple-message-summary'])
        if answer is not None and answer.code == 200:
            self.dialog = (answer.call_id, answer.header('From').split(';tag=', 1)[1],
                           answer.header('To').split(';tag=', 1)[1])
        return answer

    def notifies(self, timeout, first=False):
        """The NOTIFYs that arrive within ``timeout`` s (each answered 200), as (time, Message);
        ``first``: from the first one on, wait only QUIET s more (for one too many)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            data = self.peer._receive(deadline)  # pylint: disable=protected-access
            if data is None:
                return got
            message = Message(data)
            if message.method != 'NOTIFY':
                continue
            if (message.call_id, message.cseq) not in self.seen:  # not a retransmission of one answered late
                self.seen.add((message.call_id, message.cseq))
                got.append((time.time(), message))
                if first:
                    deadline = min(deadline, time.monotonic() + QUIET)
            echoed = ('Via', 'From', 'To', 'Call-ID', 'CSeq')
            reply = ['SIP/2.0 200 OK'] + ['%s: %s' % (name, message.header(name)) for name in echoed]
            self.peer.send(('\r\n'.join(reply) + '\r\nContent-Length: 0\r\n\r\n').encode())

    def lamp(self, timeout=WAIT, since=None):
        """(Messages-Waiting, new, old) of the one NOTIFY that arrives within ``timeout`` s,
        checked against RFC 3842 and the subscription's dialog; ``since``: the change's time."""
        got = self.notifies(timeout, first=True)
        assert len(got) == 1, ([m.text for _t, m in got], self.transcript())
        at, message = got[0]
        assert message.header('Event') == 'message-summary'
        assert message.header('Content-Type') == 'application/simple-message-summary'
        if since is not None:
            assert at - since < WAIT, at - since
        return lamp_of(message, self.dialog)

    def transcript(self):
        return '\n'.join(self.peer.transcript[-6:])


def lamp_of(message, dialog):
    from ansible_collections.voxplane.pbx.plugins.module_utils import message_summary
    if dialog is not None:  # in the subscription's dialog: its Call-ID, our tag in To, the 200's in From
        call_id, ours, theirs = dialog
        assert message.call_id == call_id
        assert message.header('To').endswith(';tag=%s' % ours) and message.header('From').endswith(';tag=%s' % theirs)
        assert message.header('Subscription-State').startswith('active;expires=')
    summary = message_summary.parse(message.body)
    assert summary['account'] == 'sip:*86@%s' % message.header('To').split('@', 1)[1].split('>', 1)[0]
    return ('yes' if summary['waiting'] else 'no', summary['new'], summary['old'])


@pytest.fixture
def phones(pbx):
    opened = []

    def phone(user, domain=ACME):
        opened.append(Phone(pbx, user, domain))
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
