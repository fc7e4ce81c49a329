# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provisioning server against real nginx (the role's standalone instance, TLS with the
certificate the role created) and the real Kamailio of the session.

For each vendor family a phone fetches its file with its own credentials over HTTPS, the file
parses (XML, or key/value lines), and the SIP credentials taken from it register at Kamailio.
Refused: no credentials (401), another device's credentials (401), an unknown MAC (404), other
paths and listings (404); repeated failures from one address are refused with 429 (the app),
as are floods (nginx limit_req). A rename through extension or tenant_config shows in the next
fetch. An activation code works once, then says it was used; an expired one says so.
"""

import base64
import http.client
import json
import os
import re
import sqlite3
import ssl
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
from ansible_collections.voxplane.pbx.plugins.module_utils import catalogue, provisioning

from lab.net import free_port, neighbour_address
from lab.sipp import users_csv

HERE = os.path.dirname(os.path.abspath(__file__))

SECRET = 'test-provisioning-secret-%s' % uuid.uuid4().hex[:8]
PHONES = [
    # vendor (also the account name), model, MAC, the files the firmware asks for (first: the one with the lines)
    dict(vendor='yealink', model='yealink-t33g', mac='80:5e:c0:00:01:01', number='41', name='Yvonne'),
    dict(vendor='snom', model='snom-d735', mac='00:04:13:00:01:02', number='42', name='Sabine'),
    dict(vendor='poly', model='poly-vvx450', mac='64:16:7f:00:01:03', number='43', name='Paul'),
    dict(vendor='cisco', model='cisco-8841', mac='00:eb:d5:00:01:04', number='44', name='Carla'),
    dict(vendor='fanvil', model='fanvil-x4u', mac='0c:38:3e:00:01:05', number='45', name='Felix'),
    dict(vendor='grandstream', model='grandstream-grp2614', mac='c0:74:ad:00:01:06', number='46', name='Greta'),
    dict(vendor='gigaset', model='gigaset-n670', mac='7c:2f:80:00:01:07', number='47', name='Gisela'),
]
FILE_OF = {
    'yealink': '{mac}.cfg', 'snom': '{mac}.xml', 'poly': '{mac}-phone.cfg', 'cisco': 'SEP{MAC}.cnf.xml',
    'fanvil': '{mac}.cfg', 'grandstream': 'cfg{mac}.xml', 'gigaset': '{MAC}.xml',
}
FAILURE_LIMIT = 6


def file_name(phone, vendor=None):
    hexdigits = phone['mac'].replace(':', '')
    return FILE_OF[vendor or phone['vendor']].format(mac=hexdigits, MAC=hexdigits.upper())


def basic(user, password):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()


def credentials(phone):
    """The device's own HTTP credentials: its MAC and the password derived from the secret."""
    return basic(phone['mac'].replace(':', ''), provisioning.device_password(SECRET, phone['mac']))


class Server(object):
    def __init__(self, kamailio, address, port, config_dir):
        self.kamailio, self.address, self.port, self.config_dir = kamailio, address, port, config_dir
        self.context = ssl.create_default_context(cafile=os.path.join(config_dir, 'tls', 'server.crt'))

    def get(self, path, authorization=None, source=None, method='GET'):
        """(status, headers dict, body text) of one HTTPS request, checking the role's certificate."""
        conn = http.client.HTTPSConnection(self.address, self.port, context=self.context, timeout=10,
                                           source_address=(source, 0) if source else None)
        try:
            headers = {'Authorization': authorization} if authorization else {}
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read().decode('utf-8', 'replace')
        finally:
            conn.close()


@pytest.fixture(scope='module')
def server(kamailio):
    root = os.path.join(kamailio.root, 'provisioning')
    os.makedirs(root, exist_ok=True)
    port = free_port(kamailio.address, udp=False)
    variables = dict(
        directory=kamailio.directory_path, secret=SECRET, phones=PHONES,
        provisioning_install_packages=False, provisioning_config_dir=os.path.join(root, 'etc'),
        provisioning_runtime_dir=os.path.join(root, 'run'), provisioning_log_dir=os.path.join(root, 'log'),
        provisioning_listen_address=kamailio.address, provisioning_https_port=port,
        provisioning_server_name=kamailio.address, provisioning_app_port=free_port('127.0.0.1', udp=False),
        provisioning_sip_server='%s:%d' % (kamailio.address, kamailio.port),
        provisioning_failure_limit=FAILURE_LIMIT, provisioning_failure_window=60, provisioning_failure_ban=120,
        provisioning_rate=20, provisioning_burst=40,
    )
    run = kamailio.playbook(os.path.join(HERE, 'provisioning.yml'), variables)
    control = os.path.join(root, 'etc', 'voxplane-provisioning')
    try:
        assert run.rc == 0, 'provisioning.yml failed: %r' % (run,)
        assert kamailio.wait_for_directory('beta.sip.test')
        yield Server(kamailio, kamailio.address, port, os.path.join(root, 'etc'))
    finally:
        if os.path.exists(control):
            os.system('%s stop >/dev/null 2>&1' % control)


# ------------------------------------------------------------------------------ what the files say
def parse(phone, text):
    """The first line's (user, auth name, password, display name) as the vendor's format carries it;
    the parse itself proves the file well-formed (XML) or made of key/value lines."""
    vendor = phone['vendor']
    if vendor == 'yealink':
        pairs = key_values(text, '=', comment='#')
        return (pairs['account.1.user_name'], pairs['account.1.auth_name'], pairs['account.1.password'],
                pairs['account.1.display_name'])
    if vendor == 'fanvil':
        body = [line for line in text.splitlines() if not line.startswith('<')]
        pairs = key_values('\n'.join(body), ':')
        return (pairs['SIP1 Phone Number'], pairs['SIP1 Register User'], pairs['SIP1 Register Pswd'],
                pairs['SIP1 Display Name'])
    root = ET.fromstring(text.encode('utf-8'))
    if vendor == 'snom':
        def snom(tag):
            return root.find('.//%s[@idx="1"]' % tag).text
        return snom('user_name'), snom('user_pname'), snom('user_pass'), snom('user_realname')
    if vendor == 'poly':
        reg = root.find('reg').attrib
        return (reg['reg.1.address'].split('@')[0], reg['reg.1.auth.userId'], reg['reg.1.auth.password'],
                reg['reg.1.displayName'])
    if vendor == 'cisco':
        def cisco(tag):
            return root.find(tag).text
        return cisco('User_ID_1_'), cisco('Auth_ID_1_'), cisco('Password_1_'), cisco('Display_Name_1_')
    if vendor == 'grandstream':
        config = root.find('config')
        return config.find('P35').text, config.find('P36').text, config.find('P34').text, config.find('P3').text
    if vendor == 'gigaset':
        items = dict((i.get('ID'), i.get('value').strip('"')) for i in root.iter('SYMB_ITEM'))
        base = 'BS_Accounts.astAccounts[0].'
        return (items[base + 'aucUsername'], items[base + 'aucAuthenticationName'],
                items[base + 'aucAuthenticationPassword'], items[base + 'aucDisplayName'])
    raise AssertionError(vendor)


def message_waiting(phone, text):
    """(the number the first line's message key dials, whether the phone subscribes to
    message-summary) as the vendor's format carries them (docs/devices.md)."""
    vendor = phone['vendor']
    if vendor == 'yealink':
        pairs = key_values(text, '=', comment='#')
        return pairs['voice_mail.number.1'], pairs['account.1.subscribe_mwi'] == '1'
    if vendor == 'fanvil':
        pairs = key_values('\n'.join(line for line in text.splitlines() if not line.startswith('<')), ':')
        return pairs['SIP1 MWI Num'], pairs['SIP1 Subscribe'] == '1'
    root = ET.fromstring(text.encode('utf-8'))
    if vendor == 'snom':  # it subscribes to its mailbox
        return root.find('.//user_mailbox[@idx="1"]').text, True
    if vendor == 'poly':
        msg = root.find('msg').attrib
        return msg['msg.mwi.1.callBack'], bool(msg['msg.mwi.1.subscribe'])
    if vendor == 'cisco':
        return root.find('Voice_Mail_Number').text, root.find('Voice_Mail_Enable_1_').text == 'Yes'
    if vendor == 'grandstream':
        config = root.find('config')
        return config.find('P33').text, config.find('P99').text == '1'
    if vendor == 'gigaset':  # no subscription: the server's NOTIFYs light the lamp
        items = dict((i.get('ID'), i.get('value').strip('"')) for i in root.iter('SYMB_ITEM'))
        return items['BS_IP_Data1.aucS_VOIP_NET_AM_NUMBER_1'], False
    raise AssertionError(vendor)


def key_values(text, separator, comment=None):
    pairs = {}
    for line in text.splitlines():
        if not line.strip() or (comment and line.startswith(comment)):
            continue
        key, sep, value = line.partition(separator)
        assert sep, 'not a key%svalue line: %r' % (separator, line)
        pairs[key.strip()] = value.strip()
    return pairs


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize('phone', PHONES, ids=[p['vendor'] for p in PHONES])
def test_each_vendor_fetches_its_file_and_registers_with_what_it_got(kamailio, server, phone):
    if phone['vendor'] == 'poly':  # the master file names the phone file
        status, _headers, master = server.get('/%s.cfg' % phone['mac'].replace(':', ''), credentials(phone))
        assert status == 200, master
        assert ET.fromstring(master).get('CONFIG_FILES') == file_name(phone)
    status, headers, text = server.get('/' + file_name(phone), credentials(phone))
    assert status == 200, text
    assert headers['cache-control'] == 'no-store'
    user, auth_name, password, display = parse(phone, text)
    assert (user, auth_name, display) == (phone['vendor'] + '.desk', phone['vendor'] + '.desk', phone['name'])
    assert len(password) == 24
    # The message key dials the mailbox; the phone subscribes to the lamp, or the router NOTIFYs it unsolicited.
    vendor = catalogue.DEVICE_MODELS[phone['model']]['vendor']
    assert message_waiting(phone, text) == ('*86', catalogue.MWI[vendor] == catalogue.MWI_SUBSCRIBE)
    # The provisioning URL for later fetches is in the file, too.
    assert 'https://%s:%d/' % (server.address, server.port) in text
    inf = users_csv(os.path.join(kamailio.workdir, 'prov-%s.csv' % phone['vendor']), [(user, 'beta.sip.test', password)])
    registered = kamailio.sipp('register_ok.xml', inf=inf, timeout=10)
    assert registered.rc == 0, registered
    kamailio.kamcmd('ul.rm', 'location', '%s@beta.sip.test' % user)


def test_refusals_no_credentials_another_devices_unknown_mac_listing(server):
    yealink, snom = PHONES[0], PHONES[1]
    path = '/' + file_name(yealink)
    status, headers, text = server.get(path)
    assert status == 401 and headers['www-authenticate'].startswith('Basic realm=')
    assert 'account.1' not in text
    status, _headers, text = server.get(path, credentials(snom))  # snom's credentials for the yealink's file
    assert status == 401 and 'password' not in text
    status, _headers, _text = server.get('/0015650000ff.cfg', credentials(yealink))  # unknown MAC
    assert status == 404
    for other in ('/', '/phone_templates/', '/settings.json', '/secret', '/%s' % file_name(yealink, 'snom')):
        assert server.get(other, credentials(yealink))[0] == 404, other
    assert server.get('/../secret', credentials(yealink))[0] == 400  # nginx refuses a path above the root


def test_repeated_failures_from_one_address_are_refused_and_logged(server):
    source = neighbour_address(neighbour_address(server.address))
    yealink = PHONES[0]
    statuses = [server.get('/' + file_name(yealink), basic('805ec0000101', 'guess-%d' % i), source=source)[0]
                for i in range(FAILURE_LIMIT + 2)]
    assert statuses[:FAILURE_LIMIT] == [401] * FAILURE_LIMIT and statuses[FAILURE_LIMIT:] == [429, 429]
    # Refused even with the right credentials now, while other addresses are served.
    status, _headers, text = server.get('/' + file_name(yealink), credentials(yealink), source=source)
    assert status == 429 and 'too many failed requests' in text
    assert server.get('/' + file_name(yealink), credentials(yealink))[0] == 200
    with open(os.path.join(server.config_dir, '..', 'log', 'app.log')) as handle:
        log = handle.read()
    assert '%s: %d failed requests' % (source, FAILURE_LIMIT) in log
    assert 'wrong credentials for device 80:5e:c0:00:01:01 (tenant beta)' in log


def test_a_flood_is_cut_by_nginx(server):
    source = neighbour_address(neighbour_address(neighbour_address(server.address)))
    statuses = [server.get('/nothing-here.cfg', source=source)[0] for _i in range(80)]
    assert 429 in statuses and statuses[0] == 404


@pytest.mark.parametrize('via', ['extension', 'tenant_config'])
def test_a_rename_shows_in_the_next_fetch(kamailio, server, via):
    snom = PHONES[1]
    name = 'Sabine %s %s' % (via, uuid.uuid4().hex[:4])
    run = kamailio.playbook(os.path.join(HERE, 'rename.yml'),
                            dict(directory=kamailio.directory_path, number=snom['number'], name=name, via=via))
    assert run.rc == 0, run
    committed = time.monotonic()
    status, _headers, text = server.get('/' + file_name(snom), credentials(snom))
    served = time.monotonic() - committed
    assert status == 200 and parse(snom, text)[3] == name
    assert served < 1.0, 'served %.3f s after the commit' % served
    print('renamed via %s: served with the new name %.3f s after the playbook returned' % (via, served))


def issue_code(kamailio, phone):
    out = os.path.join(kamailio.root, 'activation-%s.json' % uuid.uuid4().hex[:8])
    run = kamailio.playbook(os.path.join(HERE, 'activation.yml'),
                            dict(directory=kamailio.directory_path, mac=phone['mac'], out=out))
    assert run.rc == 0, run
    with open(out) as handle:
        return json.load(handle)


def test_an_activation_code_works_once(kamailio, server):
    cisco = PHONES[3]
    issued = issue_code(kamailio, cisco)
    code = issued['activation_code']
    assert re.match(r'^\d{4}-\d{4}-\d{4}-\d{4}$', code) and issued['changed'] is True
    assert 'activation' not in issued['device']  # the hash stays in the directory
    with sqlite3.connect(kamailio.directory_path) as conn:
        stored = conn.execute('SELECT doc FROM devices WHERE mac = ?', (cisco['mac'],)).fetchone()[0]
    assert code.replace('-', '') not in stored
    status, _headers, text = server.get('/activate?code=%s' % code)
    assert status == 200, text
    answer = json.loads(text)
    assert answer['mac'] == cisco['mac'] and 'SEP%s.cnf.xml' % cisco['mac'].replace(':', '').upper() in answer['files']
    # What the code gave is what the phone fetches its file with.
    status, _headers, text = server.get('/' + file_name(cisco), basic(answer['username'], answer['password']))
    assert status == 200 and parse(cisco, text)[0] == 'cisco.desk'
    status, _headers, text = server.get('/activate?code=%s' % code)
    assert status == 410 and text.strip() == 'activation code already used'


def test_an_expired_activation_code_is_refused(kamailio, server):
    grandstream = PHONES[5]
    code = issue_code(kamailio, grandstream)['activation_code']
    # An hour passes: the stored expiry moves into the past.
    with sqlite3.connect(kamailio.directory_path) as conn:
        doc = json.loads(conn.execute('SELECT doc FROM devices WHERE mac = ?', (grandstream['mac'],)).fetchone()[0])
        doc['activation']['expires_at'] = int(time.time()) - 1
        conn.execute('UPDATE devices SET doc = ? WHERE mac = ?', (json.dumps(doc, sort_keys=True), grandstream['mac']))
    status, _headers, text = server.get('/activate?code=%s' % code.replace('-', ''))
    assert status == 410 and text.strip() == 'activation code expired'
    assert server.get('/activate?code=0000-0000-0000-0000')[0] == 404
