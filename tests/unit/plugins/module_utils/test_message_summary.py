# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The message-waiting lamp (message_summary.py) and the subscription record every package
shares (subscriptions.py). The exchange with phones: tests/sip/test_message_waiting.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import catalogue, feature_events
from ansible_collections.voxplane.pbx.plugins.module_utils import message_summary as ms
from ansible_collections.voxplane.pbx.plugins.module_utils import subscriptions as subs
from ansible_collections.voxplane.pbx.plugins.module_utils.state import TenantState


@pytest.mark.parametrize('counts, waiting, line', [
    ({'new': 1, 'saved': 0}, 'yes', 'Voice-Message: 1/0 (0/0)'),
    ({'new': 0, 'saved': 1}, 'no', 'Voice-Message: 0/1 (0/0)'),
    ({'saved': 3}, 'no', 'Voice-Message: 0/3 (0/0)'),
    (None, 'no', 'Voice-Message: 0/0 (0/0)'),
    ({'new': 12, 'saved': 5}, 'yes', 'Voice-Message: 12/5 (0/0)'),
])
def test_the_body_says_whether_messages_wait_and_how_many(counts, waiting, line):
    text = ms.body(ms.state_of(counts), 'acme.example')
    assert text.split('\r\n') == ['Messages-Waiting: %s' % waiting, 'Message-Account: sip:*86@acme.example', line, '']
    parsed = ms.parse(text)
    assert parsed['waiting'] is (waiting == 'yes') and parsed['account'] == 'sip:*86@acme.example'
    assert (parsed['new'], parsed['old']) == (ms.state_of(counts)['new'], ms.state_of(counts)['old'])


def test_a_body_that_is_none_does_not_parse():
    with pytest.raises(ValueError):
        ms.parse('Voice-Message: 1/0')


@pytest.mark.parametrize('user, allowed', [('anna.desk', True), ('*86', True), ('bert.desk', False), ('86', False),
                                           ('', False), ('10', False)])
def test_an_account_subscribes_to_itself_or_its_mailbox_only(user, allowed):
    assert ms.may_subscribe(user, 'anna.desk') is allowed


def _tenant(devices):
    children = {
        'extension': {'10': dict(internal_number='10', sip_accounts=[dict(username='anna.desk'), dict(username='anna.app')]),
                      '11': dict(internal_number='11', sip_accounts=[dict(username='bert.desk')]),
                      '12': dict(internal_number='12', sip_accounts=[dict(username='cora.desk')])},
        'device': dict((d['mac'], d) for d in devices),
    }
    return TenantState('acme', dict(name='acme', sip_domain='acme.example'), children)


def test_unsolicited_mwi_goes_to_the_lines_of_vendors_whose_files_ask_for_it():
    state = _tenant([dict(mac='00:eb:d5:00:00:01', model='cisco-8841', lines=['anna.desk', 'gone']),
                     dict(mac='7c:2f:80:00:00:02', model='gigaset-n670', lines=['bert.desk', 'anna.desk']),
                     dict(mac='80:5e:c0:00:00:03', model='yealink-t33g', lines=['cora.desk', 'anna.app'])])
    assert ms.unsolicited_accounts(state) == {'10': ['anna.desk'], '11': ['bert.desk']}
    assert ms.unsolicited_accounts(_tenant([])) == {}


def test_every_provisioned_vendor_has_an_mwi_way():
    vendors = set(m['vendor'] for m in catalogue.DEVICE_MODELS.values()) - {'AVM'}
    assert set(catalogue.MWI) == vendors
    assert set(catalogue.MWI.values()) == {catalogue.MWI_SUBSCRIBE, catalogue.MWI_UNSOLICITED}


def test_the_unsolicited_notify_is_a_dialog_of_its_own_from_the_mailbox():
    headers = ms.unsolicited_headers('anna.desk', 'acme.example', 'tag1', 'cid1')
    assert headers.startswith('From: <sip:*86@acme.example>;tag=tag1\r\nTo: <sip:anna.desk@acme.example>\r\n'
                              'Call-ID: cid1\r\nCSeq: 1 NOTIFY\r\nEvent: message-summary\r\n')
    assert 'Content-Type: application/simple-message-summary\r\n' in headers and ';tag=' not in headers.split('To:')[1]


# ------------------------------------------------------------------------------ the shared subscription record
def test_expires_key_and_event():
    assert [subs.expires_of(v) for v in ('0', '30', '600', '99999', None, 'x')] == [0, 60, 600, 3600, 3600, 3600]
    assert subs.event_of(' Message-Summary ;id=2') == 'message-summary' and subs.event_of(None) == ''
    key = subs.key('message-summary', 'cid@x')
    assert subs.is_subscription_key(key) and not subs.is_subscription_key('mwi:serial')
    assert key != subs.key('as-feature-event', 'cid@x')
    assert subs.PACKAGES == {'as-feature-event': feature_events.CONTENT_TYPE, 'message-summary': ms.CONTENT_TYPE}


@pytest.mark.parametrize('event, resource, content_type', [
    ('as-feature-event', None, 'application/x-as-feature-event+xml'),
    ('message-summary', 'sip:*86@acme.example', 'application/simple-message-summary'),
])
def test_the_record_and_the_notify_in_its_dialog(event, resource, content_type):
    record = subs.subscription(event, 'acme', 'acme.example', '10', 'anna.desk', 'cid@x', 'phone-tag', 'our-tag',
                               'sip:anna.desk@192.0.2.4:5062', 'sip:192.0.2.4:5062', 'udp:192.0.2.1:5060', 100.0,
                               resource=resource, cseq=7)
    assert subs.loads(subs.dumps(record)) == record
    headers = subs.notify_headers(record, 540)
    assert ('From: <%s>;tag=our-tag\r\nTo: <sip:anna.desk@acme.example>;tag=phone-tag\r\n'
            % (resource or 'sip:anna.desk@acme.example')) in headers
    assert 'Call-ID: cid@x\r\nCSeq: 7 NOTIFY\r\nEvent: %s\r\n' % event in headers
    assert 'Subscription-State: active;expires=540\r\n' in headers and 'Content-Type: %s\r\n' % content_type in headers
    assert 'Subscription-State: terminated;reason=timeout' in subs.notify_headers(record, 0)


@pytest.mark.parametrize('text', [None, '', 'not json', '[1]', '{"event": "message-summary"}'])
def test_a_damaged_stored_record_reads_as_none(text):
    assert subs.loads(text) is None
