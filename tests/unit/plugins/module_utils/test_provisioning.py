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


# ------------------------------------------------------------------------------ the templates
def _render(model):
    """The configuration file of a device of ``model`` with two lines, rendered as the app renders it."""
    import os
    import jinja2
    from lab import REPO

    secret = SECRET
    domain = 'acme.example'
    users = ('anna.desk', 'anna.two')
    accounts = [dict(username=u, kind='desk_phone', ha1=rules.ha1(u, domain, provisioning.line_password(secret, domain, u)))
                for u in users]
    tenant = dict(name='acme', sip_domain=domain, country_code='49', timezone='Europe/Berlin', locations=[])
    device = dict(mac='80:5e:c0:12:34:56', model=model, name='Desk', lines=list(users), location=None, timezone=None)
    state = TenantState('acme', tenant, {'extension': {'10': dict(internal_number='10', name='Anna', sip_accounts=accounts)},
                                         'device': {device['mac']: device}, 'phonebook_entry': {}})
    settings, skipped = provisioning.phone_settings(state, device['mac'], secret, 'sip.acme.example:5070',
                                                    'https://prov.example/')
    assert not skipped
    folder = os.path.join(REPO, 'roles', 'provisioning', 'files', 'phone_templates')
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), undefined=jinja2.StrictUndefined,
                             autoescape=lambda name: name in provisioning.XML_TEMPLATES, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    template = [t for t in provisioning.VENDOR_FILES[settings['vendor']].values() if t != 'poly-master.cfg'][0]
    return settings, env.get_template(template).render(**settings)


def _pairs(text, separator):
    pairs = {}
    for line in text.splitlines():
        key, sep, value = line.partition(separator)
        if sep and not line.startswith('#'):
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.mark.parametrize('model', ['yealink-t33g', 'snom-d735', 'poly-vvx450', 'cisco-8841', 'fanvil-x4u',
                                   'grandstream-grp2614', 'gigaset-n670'])
def test_each_file_sets_the_voicemail_number_and_the_mwi_way_of_its_vendor_on_every_line(model):
    import xml.etree.ElementTree as ET

    settings, text = _render(model)
    assert settings['voicemail_number'] == '*86'
    subscribe = settings['mwi'] == catalogue.MWI_SUBSCRIBE
    assert settings['mwi'] == catalogue.MWI[settings['vendor']]
    vendor = settings['vendor']
    if vendor == 'Yealink':
        pairs = _pairs(text, '=')
        for n in (1, 2):
            assert pairs['voice_mail.number.%d' % n] == '*86'
            assert pairs['account.%d.subscribe_mwi' % n] == '1' and pairs['account.%d.subscribe_mwi_to_vm' % n] == '0'
    elif vendor == 'Fanvil':
        pairs = _pairs(text, ':')
        for n in (1, 2):
            assert pairs['SIP%d MWI Num' % n] == '*86' and pairs['SIP%d Subscribe' % n] == '1'
    else:
        root = ET.fromstring(text.encode('utf-8'))
        if vendor == 'Snom':
            assert [e.text for e in root.iter('user_mailbox')] == ['*86', '*86']
        elif vendor == 'Poly':
            msg = root.find('msg').attrib
            assert msg['msg.mwi.1.subscribe'] == 'anna.desk@acme.example' and msg['msg.mwi.2.subscribe'] == 'anna.two@acme.example'
            assert msg['msg.mwi.1.callBack'] == '*86' and msg['msg.mwi.2.callBackMode'] == 'contact'
        elif vendor == 'Cisco':
            assert not subscribe and root.find('Voice_Mail_Number').text == '*86'
            assert [root.find('Voice_Mail_Server_%d_' % n).text for n in (1, 2)] == [None, None]
            assert [root.find('Voice_Mail_Enable_%d_' % n).text for n in (1, 2)] == ['No', 'No']
        elif vendor == 'Grandstream':
            config = root.find('config')
            # account 1: P33/P99, account 2: base 400 (P404 its user ID, P426/P415)
            assert config.find('P35').text == 'anna.desk' and config.find('P404').text == 'anna.two'
            assert config.find('P33').text == '*86' and config.find('P426').text == '*86'
            assert config.find('P99').text == '1' and config.find('P415').text == '1'
        elif vendor == 'Gigaset':
            assert not subscribe
            items = dict((i.get('ID'), i.get('value')) for i in root.iter('SYMB_ITEM'))
            for n in (1, 2):
                assert items['BS_IP_Data1.aucS_VOIP_NET_AM_NUMBER_%d' % n] == '"*86"'
                assert items['BS_IP_Data1.ucB_VOIP_NET_AM_ENABLED_%d' % n] == '1'
        else:
            raise AssertionError(vendor)
