# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Feature-key synchronisation (as-feature-event) against the real Kamailio: a sipp phone
(feature_key_phone.xml) subscribes as tenant beta's vera.desk (extension 30, phones.yml), is
told the state, is NOTIFYed within 1 s after a *78 and after a playbook clears DND, then
presses its DND key (a SUBSCRIBE with a SetDoNotDisturb body), which writes the directory
through the feature codes' write path: tenant_info shows it and the next call meets DND.
"""

import json
import os
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from route_check import predicted_answer
from lab.calls import call, final_reply
from lab.sipp import finish_sipp, parse_messages, password, start_sipp, users_csv
from lab.wire import header

HERE = os.path.dirname(os.path.abspath(__file__))

BETA = 'beta.sip.test'
NS = '{http://www.ecma-international.org/standards/ecma-323/csta/ed3}'


def extension_30(kamailio):
    out = os.path.join(kamailio.root, 'beta-%s.json' % uuid.uuid4().hex[:8])
    run = kamailio.playbook(os.path.join(HERE, 'read_tenant.yml'),
                            dict(directory=kamailio.directory_path, out=out, tenant_name='beta'))
    assert run.rc == 0, run
    with open(out) as handle:
        return dict((e['internal_number'], e) for e in json.load(handle)['extensions'])['30']


def set_dnd_by_playbook(kamailio, dnd):
    run = kamailio.playbook(os.path.join(HERE, 'rename.yml'),
                            dict(directory=kamailio.directory_path, number='30', name='Vera', via='extension', dnd=dnd))
    assert run.rc == 0, run


def batches(result):
    """The NOTIFYs the phone received, as (time, {'dnd': bool, forwarding type: target or None})
    per batch of four."""
    notifies = [m for m in parse_messages(result.messages) if m.direction == 'received' and m.first_line.startswith('NOTIFY')]
    states = []
    for i in range(0, len(notifies) - len(notifies) % 4, 4):
        state = {}
        for message in notifies[i:i + 4]:
            assert header(message, 'Event') == ['as-feature-event']
            assert header(message, 'Content-Type') == ['application/x-as-feature-event+xml']
            root = ET.fromstring(message.text.split('\n\n', 1)[1].strip())
            if root.tag == NS + 'DoNotDisturbEvent':
                state['dnd'] = root.find(NS + 'doNotDisturbOn').text == 'true'
            else:
                status = root.find(NS + 'forwardStatus').text == 'true'
                state[root.find(NS + 'forwardingType').text] = root.find(NS + 'forwardTo').text if status else None
        states.append((notifies[i].time, state))
    return states


@pytest.fixture(scope='module')
def vera(kamailio):
    from test_phones import phones_play
    phones_play(kamailio, 'setup')
    assert kamailio.wait_for_directory(BETA)
    set_dnd_by_playbook(kamailio, False)
    yield 'vera.desk'


def test_a_subscribed_phone_follows_dnd_from_feature_code_playbook_and_its_own_key(kamailio, vera):
    inf = users_csv(os.path.join(kamailio.workdir, 'fk-%s.csv' % uuid.uuid4().hex[:6]), [(vera, BETA, password(vera))])
    phone = start_sipp('feature_key_phone.xml', kamailio.target, kamailio.address, kamailio.workdir, inf=inf, timeout=40)
    time.sleep(1.5)  # subscribed and told the first state
    before = final_reply(call(kamailio, 'dora.desk', '30', domain=BETA))

    dialled = call(kamailio, vera, '*78', domain=BETA)
    star78 = time.time()
    assert final_reply(dialled) == 'SIP/2.0 603 Do Not Disturb On'
    time.sleep(1.5)
    set_dnd_by_playbook(kamailio, False)
    playbook = time.time()
    result = finish_sipp(phone, timeout=30)  # the phone presses its key after the third state
    explain = '%s\n%s\n%s' % (result.stdout[-2000:], result.errors[-2000:], kamailio.log_tail(30))
    assert result.rc == 0, explain
    states = batches(result)
    # Every NOTIFY is in the subscription's dialog: its From tag is the To tag of the 200 to the SUBSCRIBE.
    messages = parse_messages(result.messages)
    ok = [m for m in messages if m.direction == 'received' and m.first_line.startswith('SIP/2.0 200')][0]
    our_tag = header(ok, 'To')[0].split(';tag=', 1)[1]
    assert set(header(m, 'From')[0].split(';tag=', 1)[1] for m in messages
               if m.direction == 'received' and m.first_line.startswith('NOTIFY')) == {our_tag}, explain
    assert len(states) == 4, explain
    first, after_78, after_playbook, after_key = states
    assert first[1] == {'dnd': False, 'forwardImmediate': None, 'forwardBusy': None, 'forwardNoAns': None}
    assert after_78[1]['dnd'] is True and 0 <= after_78[0] - star78 < 1.0, (after_78[0] - star78)
    # The playbook's NOTIFY: within 1 s of the playbook's end (its commit is earlier still).
    assert after_playbook[1]['dnd'] is False and after_playbook[0] - playbook < 1.0, (after_playbook[0] - playbook)
    assert after_key[1]['dnd'] is True
    print('as-feature-event NOTIFY after *78: %.3f s, after the playbook returned: %.3f s'
          % (after_78[0] - star78, after_playbook[0] - playbook))
    # The key went through the directory's one write path: tenant_info shows it ...
    assert extension_30(kamailio)['dnd'] is True
    # ... and the next call to Vera meets her DND, as route_info predicts.
    after = final_reply(call(kamailio, 'dora.desk', '30', domain=BETA))
    assert after == predicted_answer(kamailio, 'dora.desk', '30', tenant='beta') and after != before, (before, after)
    set_dnd_by_playbook(kamailio, False)


def test_other_event_packages_and_foreign_subscriptions_are_refused(kamailio, vera):
    from lab.wire import sip_request
    line = sip_request(kamailio.address, kamailio.target, 'SUBSCRIBE', 'sip:vera.desk@%s' % BETA,
                       'sip:vera.desk@%s' % BETA, 'sip:vera.desk@%s' % BETA, headers=['Event: presence'])
    assert line == 'SIP/2.0 489 Bad Event'
