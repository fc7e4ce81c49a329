# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postgresql role (community.postgresql) on a Debian cluster of the test's own: TLS with
scram passwords, the directory's schema made by its owner, Kamailio's user reading everything and
writing exactly what a feature code writes; a second run changes nothing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from directory_helpers import account, extension, tenant_request  # pytest.ini pythonpath
from lab import PLAYBOOKS
from lab.playbook import run_playbook
from lab.postgresql import deploy_postgresql, directory_location, missing_prerequisites
from ansible_collections.voxplane.pbx.plugins.module_utils import phone_settings
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
        ['hostssl', 'voxplane', user, '127.0.0.0/8', 'scram-sha-256'] for user in ('voxplane', 'voxplane_kamailio')]


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
