# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desk phones against the real Kamailio: registration status in device_info and extension_info
(read from Kamailio's usrloc over its JSON-RPC FIFO) and remote actions (device_action: a NOTIFY
through Kamailio's tm to the registered contact, here a sipp UAS standing in for the phone).

Tenant beta's extension 30 (Vera) and her Yealink 80:5e:c0:00:00:30 come from phones.yml.
"""

import json
import os
import uuid

import pytest

from lab.sipp import Listener, Phone, finish_sipp, parse_messages
from lab.wire import header

HERE = os.path.dirname(os.path.abspath(__file__))

PHONES = os.path.join(HERE, 'phones.yml')
MAC = '80:5e:c0:00:00:30'


def phones_play(kamailio, step, **variables):
    out = os.path.join(kamailio.root, 'phones-%s.json' % uuid.uuid4().hex[:8])
    extra = dict(directory=kamailio.directory_path, kamailio_rpc=os.path.join(kamailio.runtime_dir, 'kamailio_rpc.fifo'),
                 step=step, out=out)
    extra.update(variables)
    run = kamailio.playbook(PHONES, extra)
    assert run.rc == 0, 'phones.yml (%s) failed: %r' % (step, run)
    if step == 'setup':
        return run
    with open(out) as handle:
        return json.load(handle)


@pytest.fixture(scope='module')
def vera(kamailio):
    phones_play(kamailio, 'setup')
    assert kamailio.wait_for_directory('beta.sip.test')
    phone = Phone(kamailio, 'vera.desk', domain='beta.sip.test')
    yield phone
    phone.unregister()


def status(kamailio):
    result = phones_play(kamailio, 'status')
    device = dict((r['username'], r) for r in result['device']['registrations'])
    extension = dict((r['username'], r) for r in result['extension']['registrations'])
    return result, device, extension


def test_registration_status_follows_the_phone_registering_and_unregistering(kamailio, vera):
    result, device, extension = status(kamailio)
    # Feeding the devices back stays possible: the status is beside them, not inside.
    assert result['device']['devices'][0]['lines'] == ['vera.desk']
    assert list(device) == ['vera.desk'] and device['vera.desk']['mac'] == MAC
    assert device['vera.desk']['registered'] is False and device['vera.desk']['status'] == 'not registered'
    assert device['vera.desk']['contacts'] == []

    registered = vera.register()
    assert registered.rc == 0, registered
    result, device, extension = status(kamailio)
    line = device['vera.desk']
    assert line['registered'] is True and line['status'] == 'registered'
    assert line['aor'] == 'vera.desk@beta.sip.test'
    [contact] = line['contacts']
    assert contact['contact'] == 'sip:vera.desk@%s:%d' % (kamailio.address, vera.port)
    assert contact['source'] == '%s:%d' % (kamailio.address, vera.port)
    assert contact['socket'] == 'udp:%s:%d' % (kamailio.address, kamailio.port)
    assert 0 < contact['expires_in'] <= 300 and contact['expires_at'].endswith('Z')
    # extension_info: every account of the extension, the app one not registered.
    assert sorted(extension) == ['vera.app', 'vera.desk']
    assert extension['vera.desk']['registered'] is True and extension['vera.desk']['internal_number'] == '30'
    assert extension['vera.app']['status'] == 'not registered'

    # The phone unregisters (REGISTER with Expires: 0): "not registered" again.
    gone = kamailio.sipp('unregister.xml', inf=vera_inf(kamailio, vera), local_port=vera.port, timeout=10)
    assert gone.rc == 0, gone
    result, device, extension = status(kamailio)
    assert device['vera.desk']['registered'] is False and device['vera.desk']['contacts'] == []
    assert extension['vera.desk']['status'] == 'not registered'


def vera_inf(kamailio, phone):
    from lab.sipp import password, users_csv
    return users_csv(os.path.join(kamailio.workdir, 'vera-%d.csv' % phone.port),
                     [(phone.username, phone.domain, password(phone.username))])


def test_a_restart_reaches_the_registered_phone_which_acknowledges_it(kamailio, vera):
    assert vera.register().rc == 0
    # Check mode reads the contacts and sends nothing.
    with Listener(kamailio.address, vera.port) as silent:
        checked = phones_play(kamailio, 'action', action='restart', check=True)
        assert checked['contacts'][0]['sent'] is False and checked['acknowledged'] == 0
        assert checked['event'] == 'check-sync;reboot=true'
    assert silent.datagrams == []

    uas = vera.start('phone_notify.xml')
    sent = phones_play(kamailio, 'action', action='restart')
    got = finish_sipp(uas)
    assert got.rc == 0, got
    [notify] = [m for m in parse_messages(got.messages) if m.direction == 'received']
    assert notify.first_line == 'NOTIFY sip:vera.desk@%s:%d SIP/2.0' % (kamailio.address, vera.port)
    assert header(notify, 'Event') == ['check-sync;reboot=true']
    assert sent['changed'] is True and sent['acknowledged'] == 1
    [contact] = sent['contacts']
    assert contact['code'] == 200 and contact['acknowledged'] is True and contact['username'] == 'vera.desk'


def test_a_phone_that_does_not_answer_is_reported_as_not_acknowledged(kamailio, vera):
    assert vera.register().rc == 0
    with Listener(kamailio.address, vera.port) as mute:  # receives the NOTIFY, never answers
        sent = phones_play(kamailio, 'action', action='resync')
    assert any(d.startswith('NOTIFY ') and 'Event: check-sync;reboot=false' in d for d in mute.datagrams)
    [contact] = sent['contacts']
    assert contact['sent'] is True and contact['acknowledged'] is False and contact['code'] == 408
    assert sent['acknowledged'] == 0
