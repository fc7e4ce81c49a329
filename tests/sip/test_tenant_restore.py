# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tenant_info export with secrets restored into an empty directory: phones register with their old passwords.

The session's Kamailio holds tenants acme and beta (tests/lab/playbooks/tenants.yml, passwords
<user>-desk-pw ...). ``tenant_info secrets: true`` writes each tenant to a JSON file (HA1s and
PIN hashes, never a password); a second Kamailio, deployed by the real role with an empty
directory, gets them with one ``tenant_config`` task each. Its directory must then hold the same
content, row for row, and the phones must register there with the passwords they always had,
while a wrong password is still refused.
"""

import os
import sqlite3

import pytest

from lab.calls import ACME, BETA, contacts, register, report
from lab.kamailio import kamailio_lab
from lab.net import pick_loopback_address
from lab.sipp import statuses

BACKUP = """\
- name: Back up the tenants with their secrets
  hosts: all
  gather_facts: false
  tasks:
    - name: One JSON file per tenant
      voxplane.pbx.tenant_info:
        tenant: "{{ item }}"
        secrets: true
        format: json
        dest: "{{ backup }}/{{ item }}.json"
        directory: "{{ directory }}"
      loop: [acme, beta]
"""

RESTORE = """\
- name: Restore the tenants into another directory
  hosts: all
  gather_facts: false
  tasks:
    - name: One tenant_config task per tenant
      voxplane.pbx.tenant_config:
        src: "{{ backup }}/{{ item }}.json"
        state: overridden
        directory: "{{ directory }}"
      loop: [acme, beta]
"""


def content(path):
    """Every row of the directory without row ids: equal iff two directories hold the same tenants."""
    conn = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
    try:
        return {
            'tenants': sorted(conn.execute('SELECT name, sip_domain, doc FROM tenants')),
            'extensions': sorted(conn.execute('SELECT t.name, e.internal_number, e.doc FROM extensions e '
                                              'JOIN tenants t ON t.id = e.tenant_id')),
            'sip_accounts': sorted(conn.execute('SELECT t.name, e.internal_number, a.position, a.username, a.kind, a.ha1, '
                                                'a.require_tls '
                                                'FROM sip_accounts a JOIN extensions e ON e.id = a.extension_id '
                                                'JOIN tenants t ON t.id = a.tenant_id')),
            'numbers': sorted(conn.execute('SELECT number, doc FROM numbers')),
            'number_claims': sorted(conn.execute('SELECT c.e164, n.number FROM number_claims c JOIN numbers n ON n.id = c.number_id')),
            'devices': sorted(conn.execute('SELECT mac, doc FROM devices')),
            'call_groups': sorted(conn.execute('SELECT t.name, g.internal_number, g.doc FROM call_groups g '
                                               'JOIN tenants t ON t.id = g.tenant_id')),
            'phonebook_entries': sorted(conn.execute('SELECT name, doc FROM phonebook_entries')),
        }
    finally:
        conn.close()


@pytest.fixture(scope='module')
def empty_kamailio(kamailio):
    """A second Kamailio of the real role, on another 127.0.0.x, with an empty directory."""
    address = pick_loopback_address()
    while address in (kamailio.address, kamailio.trunk):
        address = pick_loopback_address()
    with kamailio_lab(prefix='voxplane-restore-', provision=False, address=address) as instance:
        yield instance


def test_an_export_with_secrets_restores_and_phones_register_with_their_old_passwords(kamailio, empty_kamailio):
    backup = os.path.join(empty_kamailio.root, 'backup')
    os.makedirs(backup)
    playbooks = {}
    for name, text in (('backup', BACKUP), ('restore', RESTORE)):
        playbooks[name] = os.path.join(empty_kamailio.root, '%s.yml' % name)
        with open(playbooks[name], 'w') as handle:
            handle.write(text)
    run = kamailio.playbook(playbooks['backup'], {'backup': backup, 'directory': kamailio.directory_path})
    assert run.rc == 0, run
    for tenant in ('acme', 'beta'):
        text = open(os.path.join(backup, '%s.json' % tenant)).read()
        assert '"ha1"' in text and '-pw' not in text
        assert os.stat(os.path.join(backup, '%s.json' % tenant)).st_mode & 0o777 == 0o600

    # Before the restore the second server knows nobody: the domain is refused.
    assert statuses(register(empty_kamailio, 'anna.desk', ACME)) != ['401', '200']

    variables = {'backup': backup, 'directory': empty_kamailio.directory_path}
    run = empty_kamailio.playbook(playbooks['restore'], variables)
    assert run.rc == 0 and run.changed == 1, run
    restored = content(empty_kamailio.directory_path)
    assert restored == content(kamailio.directory_path)
    assert [row[3] for row in restored['sip_accounts'] if row[-1]] == ['wera.web']  # its TLS requirement too
    run = empty_kamailio.playbook(playbooks['restore'], variables)
    assert run.rc == 0 and run.changed == 0, run

    assert empty_kamailio.wait_for_directory(ACME) and empty_kamailio.wait_for_directory(BETA), empty_kamailio.log_tail()
    try:
        for user, domain in (('anna.desk', ACME), ('bert.app', ACME), ('cora.desk', ACME), ('dora.app', BETA)):
            result = register(empty_kamailio, user, domain)
            assert result.rc == 0 and statuses(result) == ['401', '200'], report(empty_kamailio, register=result)
            assert contacts(empty_kamailio, '%s@%s' % (user, domain)), user
        wrong = register(empty_kamailio, 'anna.desk', ACME, 'not-the-password')
        assert statuses(wrong)[-1] != '200', report(empty_kamailio, register=wrong)
    finally:
        for user, domain in (('anna.desk', ACME), ('bert.app', ACME), ('cora.desk', ACME), ('dora.app', BETA)):
            empty_kamailio.kamcmd('ul.rm', 'location', '%s@%s' % (user, domain))
