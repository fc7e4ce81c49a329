# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kamailio_rpc and phone_control without a Kamailio: the FIFO errors a module reports, the shape
of a usrloc contact, and which contacts a remote action goes to. The real exchange with Kamailio
is tested in tests/sip/test_phones.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import kamailio_rpc, phone_control
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError
from ansible_collections.voxplane.pbx.plugins.module_utils.state import TenantState


def test_a_missing_fifo_a_plain_file_and_a_fifo_nobody_reads_are_named(tmp_path):
    with pytest.raises(kamailio_rpc.RpcError) as info:
        kamailio_rpc.FifoRpc(str(tmp_path / 'nope.fifo')).call('core.uptime')
    assert 'nope.fifo: No such file or directory; is Kamailio running' in str(info.value)
    plain = tmp_path / 'plain'
    plain.write_text('')
    with pytest.raises(kamailio_rpc.RpcError) as info:
        kamailio_rpc.FifoRpc(str(plain)).call('core.uptime')
    assert 'is not a FIFO' in str(info.value)
    fifo = str(tmp_path / 'rpc.fifo')
    os.mkfifo(fifo)
    with pytest.raises(kamailio_rpc.RpcError) as info:
        kamailio_rpc.FifoRpc(fifo, timeout=0.3).call('core.uptime')
    assert 'nobody reads the FIFO' in str(info.value)
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith('voxplane_reply_')]  # reply FIFO removed


CONTACT = {'Address': 'sip:anna.desk@192.0.2.41:5062;transport=udp', 'Expires': 284, 'Call-ID': 'abc@192.0.2.41',
           'User-Agent': 'Yealink SIP-T33G 124.86.0.75', 'Received': '[not set]', 'Socket': 'udp:192.0.2.1:5060'}


def test_a_contact_without_nat_handling_comes_from_its_own_address():
    view = kamailio_rpc.contact_view(CONTACT, now=0)
    assert view == dict(contact=CONTACT['Address'], source='192.0.2.41:5062', received=None, socket='udp:192.0.2.1:5060',
                        user_agent='Yealink SIP-T33G 124.86.0.75', expires_in=284, expires_at='1970-01-01T00:04:44Z',
                        call_id='abc@192.0.2.41')
    natted = kamailio_rpc.contact_view(dict(CONTACT, Received='sip:203.0.113.9:40123', **{'User-Agent': 'n/a'}), now=0)
    assert natted['source'] == '203.0.113.9:40123' and natted['user_agent'] is None


class FakeRpc(object):
    """Answers ul.lookup from a dict and records tm.t_uac_wait_block calls (unit level only)."""

    def __init__(self, contacts):
        self.contacts = contacts
        self.sent = []

    def call(self, method, *params):
        if method == 'ul.lookup':
            found = self.contacts.get(params[1])
            if not found:
                raise kamailio_rpc.RpcError('AOR not found in location table', code=500)
            return {'AoR': params[1], 'Contacts': [{'Contact': c} for c in found]}
        self.sent.append(params)
        return {'code': 200, 'text': 'OK'}


def _state(model='yealink-t33g'):
    tenant = dict(name='acme', sip_domain='acme.example')
    device = dict(mac='80:5e:c0:12:34:56', model=model, lines=['anna.desk', 'anna.two', 'anna.three'])
    return TenantState('acme', tenant, {'device': {device['mac']: device}})


def test_an_action_goes_once_to_each_registered_contact_and_check_mode_sends_nothing():
    same = dict(CONTACT)
    rpc = FakeRpc({'anna.desk@acme.example': [CONTACT], 'anna.two@acme.example': [same]})
    event, targets = phone_control.device_action(_state(), '80:5e:c0:12:34:56', 'restart', rpc, send=False)
    assert event == 'check-sync;reboot=true' and rpc.sent == []
    assert [(t['username'], t['sent']) for t in targets] == [('anna.desk', False)]
    event, targets = phone_control.device_action(_state('cisco-8841'), '80:5e:c0:12:34:56', 'resync', rpc)
    assert event == 'resync' and len(rpc.sent) == 1 and targets[0]['acknowledged'] is True
    method, ruri, next_hop, socket, headers = rpc.sent[0]
    assert (method, ruri, next_hop, socket) == ('NOTIFY', CONTACT['Address'], '.', 'udp:192.0.2.1:5060')
    assert 'Event: resync\r\n' in headers and 'To: <sip:anna.desk@acme.example>' in headers


def test_a_vendor_without_remote_control_is_refused_by_rule():
    with pytest.raises(RuleError) as info:
        phone_control.device_action(_state('avm-fritzfon-c6'), '80:5e:c0:12:34:56', 'resync', FakeRpc({}))
    assert info.value.rule == 'remote_control' and 'AVM' in info.value.message


@pytest.mark.parametrize('answer, expected', [
    ({'code': 200, 'text': 'OK'}, (200, 'OK')), ('SIP/2.0 486 Busy Here', (486, 'Busy Here')),
    ([{'code': 408, 'text': 'Request Timeout'}], (408, 'Request Timeout')),
])
def test_reply_status_reads_the_forms_tm_answers_in(answer, expected):
    assert kamailio_rpc._reply_status(answer) == expected


class AnswersWith(object):
    def __init__(self, error):
        self.error = error

    def call(self, method, *params):
        raise self.error


@pytest.mark.parametrize('message', ['AOR not found in location table', 'AOR has no contacts'])
def test_an_aor_without_contacts_is_not_registered(message):
    status = kamailio_rpc.registration(AnswersWith(kamailio_rpc.RpcError('kamailio rpc f: ul.lookup: %s (500)' % message,
                                                                         code=500)), 'anna.desk', 'acme.example')
    assert status == dict(username='anna.desk', aor='anna.desk@acme.example', registered=False, status='not registered',
                          contacts=[])


def test_other_rpc_errors_are_not_taken_for_not_registered():
    with pytest.raises(kamailio_rpc.RpcError):
        kamailio_rpc.registration(AnswersWith(kamailio_rpc.RpcError('kamailio rpc f: ul.lookup: Table not found', code=500)),
                                  'anna.desk', 'acme.example')
