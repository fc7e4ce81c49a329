# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The message-waiting lamp as a phone sees it (message-summary, RFC 3842): ``Subscriber``, a SIP
account on a raw UDP socket of its own (lab.wire.Peer) that registers and subscribes with digest
authentication, answers every NOTIFY 200 and reads its body; ``lamp_of`` checks a NOTIFY against
RFC 3842 and the subscription's dialog and says what the lamp shows. For the lamp's own tests
(tests/sip/test_message_waiting.py) and the media service's through the PBX."""

import time

from lab.directories import use_collection
from lab.wire import Message, Peer

WAIT = 1.0  # a NOTIFY must arrive within this after the change
QUIET = 0.3  # and no other within this after it


class Subscriber(object):
    """A SIP account on a UDP socket of its own on ``address``, talking to Kamailio at
    ``target`` (host, port): registers, subscribes, answers NOTIFYs."""

    def __init__(self, address, target, user, domain, password):
        self.user, self.domain, self.password = user, domain, password
        self.peer = Peer(address, target)
        self.dialog = None  # (Call-ID, our From tag, the server's To tag) of the subscription
        self.seen = set()  # (Call-ID, CSeq) of the NOTIFYs received

    def close(self):
        self.peer.close()

    def register(self, expires=600):
        _challenge, answer, _params = self.peer.authenticate('REGISTER', self.user, self.domain, self.password,
                                                             headers=['Expires: %d' % expires])
        assert answer is not None and answer.code == 200, (answer and answer.first_line, self.transcript())

    def subscribe(self, to=None, expires=600):
        """The final reply (a Message) of an authenticated SUBSCRIBE to message-summary of ``to``."""
        _challenge, answer, _params = self.peer.authenticate(
            'SUBSCRIBE', self.user, self.domain, self.password, dialled=to or self.user,
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
        checked against RFC 3842 and the subscription's dialog; ``since``: the change's time,
        the NOTIFY must come within WAIT s of it."""
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
    """(Messages-Waiting, new, old) of a message-summary NOTIFY; ``dialog`` (the subscription's
    Call-ID and tags; None: an unsolicited NOTIFY) must be the one it came in."""
    use_collection()
    from ansible_collections.voxplane.pbx.plugins.module_utils import message_summary  # pylint: disable=import-outside-toplevel
    if dialog is not None:  # in the subscription's dialog: its Call-ID, our tag in To, the 200's in From
        call_id, ours, theirs = dialog
        assert message.call_id == call_id
        assert message.header('To').endswith(';tag=%s' % ours) and message.header('From').endswith(';tag=%s' % theirs)
        assert message.header('Subscription-State').startswith('active;expires=')
    summary = message_summary.parse(message.body)
    assert summary['account'] == 'sip:*86@%s' % message.header('To').split('@', 1)[1].split('>', 1)[0]
    return ('yes' if summary['waiting'] else 'no', summary['new'], summary['old'])
