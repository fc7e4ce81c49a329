# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provisioning core (provisioning.py): file names, derived credentials, activation codes,
what a phone's file is made of, and the failure counter. The real nginx and app are tested in
tests/sip/test_provisioning.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import catalogue, provisioning, rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError
from ansible_collections.voxplane.pbx.plugins.module_utils.state import TenantState

SECRET = 'a-provisioning-secret-of-some-length'


@pytest.mark.parametrize('name, expected', [
    ('805ec0123456.cfg', ('80:5e:c0:12:34:56', '<mac>.cfg')),
    ('805ec0123456-phone.cfg', ('80:5e:c0:12:34:56', '<mac>-phone.cfg')),
    ('000413abcdef.xml', ('00:04:13:ab:cd:ef', '<mac>.xml')),
    ('000413ABCDEF.xml', ('00:04:13:ab:cd:ef', '<MAC>.xml')),
    ('SEP00EBD5000104.cnf.xml', ('00:eb:d5:00:01:04', 'SEP<MAC>.cnf.xml')),
    ('cfgc074ad000106.xml', ('c0:74:ad:00:01:06', 'cfg<mac>.xml')),
    ('y000000000123.cfg', None), ('805ec012345.cfg', None), ('../805ec0123456.cfg', None),
    ('805EC0123456.cfg', None), ('sep00ebd5000104.cnf.xml', None), ('805ec0123456.cfg.bak', None),
])
def test_file_names_map_to_a_mac_and_a_pattern(name, expected):
    assert provisioning.parse_path(name) == expected


def test_every_vendor_of_the_catalogue_but_avm_is_provisioned_and_remotely_controlled():
    vendors = set(m['vendor'] for m in catalogue.DEVICE_MODELS.values())
    assert vendors - set(provisioning.VENDOR_FILES) == {'AVM'}
    assert set(catalogue.REMOTE_EVENTS) == set(provisioning.VENDOR_FILES)


def test_derived_passwords_are_stable_distinct_and_need_a_real_secret():
    one = provisioning.line_password(SECRET, 'acme.example', 'anna.desk')
    assert one == provisioning.line_password(SECRET, 'ACME.example', 'anna.desk')
    assert len(one) == 24 and one.isalnum()
    assert one != provisioning.line_password(SECRET, 'acme.example', 'bert.desk')
    assert one != provisioning.line_password(SECRET + 'x', 'acme.example', 'anna.desk')
    assert provisioning.device_password(SECRET, '80-5E-C0-12-34-56') == provisioning.device_password(SECRET, '805ec0123456')
    assert provisioning.device_password(SECRET, '805ec0123456') != one
    with pytest.raises(ValueError):
        provisioning.line_password('short', 'acme.example', 'anna.desk')


def _basic(user, password):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()


def test_basic_auth_accepts_only_the_devices_own_credentials():
    mac = '80:5e:c0:12:34:56'
    good = provisioning.device_password(SECRET, mac)
    assert provisioning.check_basic_auth(_basic('805ec0123456', good), SECRET, mac)
    assert provisioning.check_basic_auth(_basic('805EC0123456', good), SECRET, mac)
    other = provisioning.device_password(SECRET, '80:5e:c0:12:34:57')
    for header in (None, '', _basic('805ec0123456', other), _basic('805ec0123457', good), 'Basic !!!',
                   'Digest username="805ec0123456"', _basic('805ec0123456', '')):
        assert not provisioning.check_basic_auth(header, SECRET, mac), header


def test_activation_codes_are_16_digits_stored_as_a_hash_and_expire():
    code = provisioning.new_activation_code()
    assert len(code) == 19 and code.replace('-', '').isdigit()
    digest = provisioning.activation_hash(code)
    assert digest == provisioning.activation_hash(code.replace('-', '')) == provisioning.activation_hash(' %s ' % code)
    assert code.replace('-', '') not in digest and len(digest) == 64
    assert provisioning.activation_state(None) == 'none'
    stored = dict(hash=digest, expires_at=1000, used_at=None)
    assert provisioning.activation_state(stored, now=999) == 'valid'
    assert provisioning.activation_state(stored, now=1000) == 'expired'
    assert provisioning.activation_state(dict(stored, used_at=998), now=999) == 'used'


def test_the_stored_activation_rule():
    digest = hashlib.sha256(b'x').hexdigest()
    assert rules.activation(dict(hash=digest, expires_at=5)) == dict(hash=digest, expires_at=5, used_at=None)
    for bad in ('1234', dict(hash='abc'), dict(hash=digest, expires_at='soon'), dict(hash=digest, used_at=True)):
        with pytest.raises(RuleError) as info:
            rules.activation(bad)
        assert info.value.rule == 'activation'


def _state(password_for):
    domain = 'acme.example'
    tenant = dict(name='acme', sip_domain=domain, country_code='49', timezone='Europe/Berlin',
                  locations=[dict(name='hq')])
    accounts = [dict(username=u, kind='desk_phone', ha1=rules.ha1(u, domain, password_for(u))) for u in ('anna.desk', 'anna.two')]
    extension = dict(internal_number='10', name='Anna\nSchmidt', sip_accounts=accounts)
    device = dict(mac='80:5e:c0:12:34:56', model='yealink-t33g', name='Desk', lines=['anna.desk', 'anna.two', 'gone'],
                  location='hq', timezone=None)
    book = {'Pizza': dict(number='+49301111', mobile=None, company=None)}
    return TenantState('acme', tenant, {'extension': {'10': extension}, 'device': {device['mac']: device},
                                        'phonebook_entry': book})


def test_phone_settings_carry_the_lines_whose_password_is_the_derived_one():
    def derived(username):
        return provisioning.line_password(SECRET, 'acme.example', username)

    state = _state(lambda u: derived(u) if u == 'anna.desk' else 'set-by-hand')
    settings, skipped = provisioning.phone_settings(state, '80:5e:c0:12:34:56', SECRET, 'sip.acme.example:5070',
                                                    'https://prov.example/')
    [line] = settings['lines']
    assert line['username'] == 'anna.desk' and line['password'] == derived('anna.desk')
    assert line['display_name'] == 'Anna Schmidt'  # a line break would start a key of its own
    assert (line['server_host'], line['server_port'], line['index']) == ('sip.acme.example', 5070, 1)
    assert [u for u, _why in skipped] == ['anna.two', 'gone']
    assert 'line_password' in dict(skipped)['anna.two']
    assert settings['timezone'] == 'Europe/Berlin' and settings['language'] == 'German'
    assert settings['phonebook'] == [dict(name='Pizza', number='+49301111', mobile=None, company='')]
    assert settings['provisioning_url'] == 'https://prov.example/'


def test_failures_ban_an_address_for_a_while():
    now = [0.0]
    counter = provisioning.FailureCounter(limit=3, window=10, ban=30, clock=lambda: now[0])
    assert [counter.fail('192.0.2.1') for _i in range(2)] == [False, False]
    now[0] = 11  # the first two fell out of the window
    assert counter.fail('192.0.2.1') is False and not counter.is_banned('192.0.2.1')
    assert [counter.fail('192.0.2.1') for _i in range(2)] == [False, True]
    assert counter.is_banned('192.0.2.1') and not counter.is_banned('192.0.2.2')
    now[0] = 41.5
    assert not counter.is_banned('192.0.2.1')
