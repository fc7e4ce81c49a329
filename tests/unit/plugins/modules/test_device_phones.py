# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The device module's activation codes, and what device_info, extension_info and device_action
say when Kamailio cannot be asked (the exchange with a running Kamailio: tests/sip/test_phones.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.voxplane.pbx.plugins.module_utils import provisioning

TENANT = dict(name='acme', sip_domain='acme.voxplane.example', licences=dict(seats=dict(best=2)))
EXTENSION = dict(tenant='acme', internal_number='10', name='Max Mustermann', seat='best',
                 sip_accounts=[dict(username='max.muster', password='a-long-sip-password')])
DEVICE = dict(tenant='acme', mac='00:15:65:ab:cd:ef', model='yealink-t46u', name='Empfang', lines=['max.muster'])


def _phone(pbx):
    pbx.ok('tenant', **TENANT)
    pbx.ok('extension', **EXTENSION)
    pbx.ok('device', **DEVICE)


def _stored_activation(pbx):
    return json.loads(pbx.query('SELECT doc FROM devices')[0][0]).get('activation')


def test_an_activation_code_is_returned_once_and_stored_only_as_its_hash(pbx):
    _phone(pbx)
    issued = pbx.ok('device', tenant='acme', mac=DEVICE['mac'], activation_code=True, activation_code_hours=2)
    code = issued['activation_code']
    assert issued['changed'] is True and len(code.replace('-', '')) == 16
    stored = _stored_activation(pbx)
    assert stored['hash'] == provisioning.activation_hash(code) and stored['used_at'] is None
    assert code.replace('-', '') not in json.dumps(pbx.snapshot())
    assert 'activation' not in issued['device'] and issued['activation_expires_at'].endswith('Z')
    # Fed back, the device changes nothing and keeps its code; a new code replaces the old one.
    info = pbx.ok('device_info', tenant='acme', mac=DEVICE['mac'])
    assert 'activation' not in info['devices'][0]
    assert pbx.ok('device', **info['devices'][0])['changed'] is False
    assert _stored_activation(pbx) == stored
    again = pbx.ok('device', tenant='acme', mac=DEVICE['mac'], activation_code=True)
    assert again['activation_code'] != code and _stored_activation(pbx)['hash'] == provisioning.activation_hash(again['activation_code'])


def test_check_mode_issues_no_code_and_the_diff_says_one_would_be(pbx):
    _phone(pbx)
    before = pbx.snapshot()
    checked = pbx.run('device', check=True, diff=True, tenant='acme', mac=DEVICE['mac'], activation_code=True)
    assert checked['changed'] is True and checked['activation_code'] is None
    assert checked['diff']['after']['activation_code'] == '******** (changed)'
    assert pbx.snapshot() == before


def test_a_code_of_less_than_an_hour_is_refused(pbx):
    _phone(pbx)
    failed = pbx.run('device', tenant='acme', mac=DEVICE['mac'], activation_code=True, activation_code_hours=0)
    assert failed.failed and failed['msg'] == ('device %s (tenant acme): activation_code_hours: a code is valid for '
                                               'at least 1 hour [range]' % DEVICE['mac'])
    assert _stored_activation(pbx) is None


def test_registration_status_without_a_running_kamailio_names_the_fifo(pbx, tmp_path):
    _phone(pbx)
    fifo = str(tmp_path / 'run' / 'kamailio_rpc.fifo')
    for module, key in (('device_info', dict(mac=DEVICE['mac'])), ('extension_info', dict(internal_number='10'))):
        failed = pbx.run(module, tenant='acme', registration=True, kamailio_rpc=fifo, **key)
        assert failed.failed and failed['msg'].startswith('kamailio rpc %s: No such file or directory' % fifo)
        # Without registration, Kamailio is not asked at all.
        assert 'registrations' not in pbx.ok(module, tenant='acme', kamailio_rpc=fifo, **key)


def test_device_action_names_a_missing_device_and_a_vendor_without_remote_control(pbx, tmp_path):
    _phone(pbx)
    fifo = str(tmp_path / 'kamailio_rpc.fifo')
    failed = pbx.run('device_action', tenant='acme', mac='00:15:65:00:00:99', action='restart', kamailio_rpc=fifo)
    assert failed.failed and failed['msg'] == 'device 00:15:65:00:00:99 (tenant acme): does not exist'
    pbx.ok('device', tenant='acme', mac='3c:a6:2f:00:00:01', model='avm-fritzfon-c6')
    failed = pbx.run('device_action', tenant='acme', mac='3c:a6:2f:00:00:01', action='resync', kamailio_rpc=fifo)
    assert failed.failed and failed['violations'][0]['rule'] == 'remote_control'
    failed = pbx.run('device_action', tenant='acme', mac=DEVICE['mac'], action='resync', kamailio_rpc=fifo)
    assert failed.failed and 'kamailio rpc %s' % fifo in failed['msg']


def test_a_backup_with_secrets_restores_the_activation_code(pbx, tmp_path):
    _phone(pbx)
    pbx.ok('device', tenant='acme', mac=DEVICE['mac'], activation_code=True)
    stored = _stored_activation(pbx)
    dest = str(tmp_path / 'acme.json')
    pbx.ok('tenant_info', name='acme', secrets=True, format='json', dest=dest)
    with open(dest) as handle:
        [device] = json.load(handle)['devices']
    assert device['activation'] == stored
    empty = type(pbx)(tmp_path / 'restored.db')
    empty.ok('tenant_config', src=dest, state='overridden')
    assert _stored_activation(empty) == stored
