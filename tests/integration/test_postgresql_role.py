# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postgresql role (community.postgresql) on a Debian cluster of the test's own: TLS with
scram passwords, the directory's schema made by its owner, Kamailio's user reading everything and
writing exactly what a feature code writes, the media services' user writing exactly what the
media service writes (through its own store code); a second run changes nothing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import wave

import pytest

import voxplane_media_store as media_store  # pytest.ini pythonpath: media/
from directory_helpers import DOMAIN, account, extension, tenant_request  # pytest.ini pythonpath
from lab import PLAYBOOKS
from lab.playbook import run_playbook
from lab.postgresql import deploy_postgresql, directory_location, missing_prerequisites
from ansible_collections.voxplane.pbx.plugins.module_utils import phone_settings, rules, voicemail_flows
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import StorageError
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import PhoneSetting
from ansible_collections.voxplane.pbx.plugins.module_utils.schema import LATEST_VERSION
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or bool(missing_prerequisites()),
                                reason='needs root and PostgreSQL 15 (make deps)')


@pytest.fixture(scope='module')
def deployed():
    with deploy_postgresql() as (run, settings):
        assert run.rc == 0, run
        yield run, settings


def test_a_second_run_changes_nothing(deployed):
    _run, settings = deployed
    again = run_playbook(os.path.join(PLAYBOOKS, 'postgresql.yml'), settings, interpreter=False)
    assert again.rc == 0 and again.changed == 0, again


def test_the_owner_has_the_newest_schema_over_tls(deployed):
    _run, settings = deployed
    owner = Directory(directory_location(settings))
    with owner.transaction() as txn:
        assert txn.schema_version() == LATEST_VERSION
        assert txn.conn.execute('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()').fetchone()[0] is True
        reconcile(txn, 'acme', tenant_request(), {EXTENSION: {'10': extension(account('max.muster'), name='Max')}})
    # the clients' networks may connect with TLS only (Debian's own 127.0.0.1/32 lines stay as they are)
    hba = open('/etc/postgresql/15/%s/pg_hba.conf' % settings['postgresql_cluster_name']).read()
    assert [line.split() for line in hba.splitlines() if line.startswith('hostssl')] == [
        ['hostssl', 'voxplane', user, '127.0.0.0/8', 'scram-sha-256'] for user in ('voxplane', 'voxplane_kamailio', 'voxplane_media')]


def test_kamailios_user_reads_and_writes_only_what_a_feature_code_writes(deployed):
    _run, settings = deployed
    kamailio = Directory(directory_location(settings, 'kamailio'))
    with kamailio.transaction(write=False) as txn:
        assert txn.tenant_names() == ['acme'] and txn.load_tenant('acme').get(EXTENSION, '10')['name'] == 'Max'
    # a feature code (DND on) with the router's write path
    setting = PhoneSetting('acme', '10', {'dnd': True}, 'Do Not Disturb On')
    outcome = phone_settings.apply(kamailio, setting)
    assert (outcome.code, outcome.changed) == (603, True), outcome
    with kamailio.transaction(write=False) as txn:
        assert txn.load_tenant('acme').get(EXTENSION, '10')['dnd'] is True
    # anything else is refused by the database, named
    with pytest.raises(StorageError, match=r'the database refused access \(permission denied for table tenants\)'):
        with kamailio.transaction() as txn:
            reconcile(txn, 'acme', {'display_name': 'ACME AG'})
    with pytest.raises(StorageError, match='permission denied'):
        with kamailio.transaction() as txn:
            txn.conn.execute('UPDATE tenants SET sip_domain = %s', ('evil.example',))


def test_the_media_services_user_writes_only_what_the_media_service_writes(deployed, tmp_path):
    """The media service's own store code (media/voxplane_media_store.py) as the postgresql role's
    media user: a message kept, saved and deleted, a greeting recorded, PIN failures counted, the
    PIN changed (phone_settings.apply, as a feature code); anything else is refused."""
    _run, settings = deployed
    with Directory(directory_location(settings)).transaction() as txn:
        reconcile(txn, 'acme', None, {EXTENSION: {'10': {'voicemail': {'enabled': True}}}})
    media = media_store.MediaDirectory(directory_location(settings, 'media'), media_store.Messages(str(tmp_path)))
    box = media.tenant(DOMAIN).mailbox('10')
    with media.read() as txn:
        serial = txn.voicemail_serial()
    path = box.begin_message(voicemail_flows.Caller('+4930555', 'Bert'), 'no-answer')
    with wave.open(path, 'wb') as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b'\x01\x00' * 12000)
    box.keep_message(path, 1500)
    assert box.counts() == (1, 0)
    [message] = box.messages()
    box.mark_read(message)
    assert box.counts() == (0, 1)
    with media.read() as txn:
        assert txn.mailboxes_changed(serial)[1] == {('acme', '10'): {'new': 0, 'saved': 1}}
    box.delete(message)
    assert box.counts() == (0, 0) and not os.path.exists(path)
    greeting = box.greeting_path('busy')
    with open(greeting, 'wb') as handle:
        handle.write(b'RIFF-not-checked-here')
    box.keep_greeting('busy', greeting, 1000)
    assert media.stored_audio('acme', box.greeting('busy').hash) == b'RIFF-not-checked-here'
    box.set_pin_failures([1765100000.0])
    assert box.pin_failures() == [1765100000.0]
    assert box.change_pin('13579') is None
    assert media.tenant(DOMAIN).mailbox('10').pin_hash == rules.pin_hash('acme', '10', '13579')
    # anything else is refused by the database, named
    with pytest.raises(StorageError, match=r'the database refused access \(permission denied for table tenants\)'):
        with media.directory.transaction() as txn:
            reconcile(txn, 'acme', {'display_name': 'ACME AG'})
    for statement in ('DELETE FROM audio', 'UPDATE announcements SET doc = doc', 'DELETE FROM mailboxes',
                      "INSERT INTO numbers (tenant_id, number, doc) VALUES (1, '1', '{}')"):
        with pytest.raises(StorageError, match='permission denied'):
            with media.directory.transaction() as txn:
                txn.conn.execute(statement)
