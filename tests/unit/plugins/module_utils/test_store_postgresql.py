# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent writers on each backend, and what only the PostgreSQL dialect has: its locations
and connection options, its errors, its drivers (psycopg 3 here, psycopg2 in Kamailio's Python).
Everything else of the store runs on both backends in test_store.py and the other suites."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import threading
import time

import pytest

from directory_helpers import Harness, account, extension, only, tenant_request
from lab import REPO
from ansible_collections.voxplane.pbx.plugins.module_utils import postgresql
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import EnvironmentProblem, StorageError, ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION, GROUP
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import ABSENT, reconcile
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

SYSTEM_PYTHON = '/usr/bin/python3.11'   # Debian's, the one Kamailio embeds


# Two writers, each valid alone, not together ------------------------------------------------------

def race(pbx, first, second, hold=0.5):
    """Run ``first(txn)`` and, while its transaction is open, start ``second(txn)`` in another
    transaction of another thread; ``first`` commits after ``hold`` seconds. Returns what the
    second raised (None if nothing) and when it finished, relative to the first's commit."""
    entered = threading.Event()
    outcome = {}

    def second_writer():
        entered.wait(10)
        try:
            with pbx.directory.transaction() as txn:
                second(txn)
        except Exception as e:  # pylint: disable=broad-except
            outcome['error'] = e
        outcome['done'] = time.monotonic()

    thread = threading.Thread(target=second_writer)
    thread.start()
    with pbx.directory.transaction() as txn:
        first(txn)
        entered.set()
        time.sleep(hold)
        committed = time.monotonic()
    thread.join(30)
    return outcome.get('error'), outcome['done'] - committed


def test_two_writers_each_within_the_licence_do_not_both_take_the_last_seat(pbx):
    """No database constraint counts seats: integrity.py does, in the transaction. The second
    writer waits for the first and then sees its extension."""
    pbx.apply('acme', tenant_request(smart=2, best=0), {EXTENSION: {'10': extension(account('max.muster'))}})
    error, after_commit = race(pbx, lambda txn: reconcile(txn, 'acme', None, {EXTENSION: {'11': extension()}}),
                               lambda txn: reconcile(txn, 'acme', None, {EXTENSION: {'12': extension()}}))
    assert isinstance(error, ValidationFailed), error
    v = only(error.violations, 'extension 12 (tenant acme)', 'seat', 'seats')
    assert v.message == "no smart seat is left for it: the tenant's 2 are taken (licences.seats.smart)"
    assert after_commit >= 0, 'the second writer finished before the first committed'
    assert sorted(pbx.load('acme').objects(EXTENSION)) == ['10', '11']


def test_a_removal_and_a_new_reference_to_it_are_not_both_committed(pbx):
    """A group naming extension 11 while another writer removes 11: each alone is valid."""
    pbx.apply('acme', tenant_request(), {EXTENSION: {'10': extension(), '11': extension()}})
    error, _after = race(pbx, lambda txn: reconcile(txn, 'acme', None, {EXTENSION: {'11': ABSENT}}),
                         lambda txn: reconcile(txn, 'acme', None, {GROUP: {'50': {'name': 'Empfang', 'members': ['10', '11']}}}))
    assert isinstance(error, ValidationFailed), error
    assert [(v.field, v.rule) for v in error.violations] == [('members', 'reference')]
    state = pbx.load('acme')
    assert sorted(state.objects(EXTENSION)) == ['10'] and state.objects(GROUP) == {}


@pytest.mark.postgresql_only
def test_without_the_writers_lock_both_would_commit(pbx, monkeypatch):
    """What the lock prevents: the same race with plain READ COMMITTED transactions ends with
    three extensions on two seats (so the tests above do test the lock)."""
    dialect = pbx.directory.dialect
    monkeypatch.setattr(dialect, 'begin', lambda conn, write: conn.execute('BEGIN'))
    pbx.apply('acme', tenant_request(smart=2, best=0), {EXTENSION: {'10': extension()}})
    error, _after = race(pbx, lambda txn: reconcile(txn, 'acme', None, {EXTENSION: {'11': extension()}}),
                         lambda txn: reconcile(txn, 'acme', None, {EXTENSION: {'12': extension()}}), hold=0.3)
    assert error is None
    assert sorted(pbx.load('acme').objects(EXTENSION)) == ['10', '11', '12']


# Locations, connection options, errors (PostgreSQL only) ------------------------------------------

@pytest.fixture
def server(postgresql_server):
    return postgresql_server


@pytest.fixture
def location(server):
    location = server.create_schema()
    yield location
    server.drop_schema(location)


def without_password(server, location):
    return location.replace(':%s@' % server.password, '@')


def write_tenant(directory):
    with directory.transaction() as txn:
        reconcile(txn, 'acme', tenant_request())
        return txn


def test_the_password_from_the_option_pgpassword_or_a_passfile(server, location, monkeypatch, tmp_path):
    bare = without_password(server, location)
    with pytest.raises(StorageError) as info:
        write_tenant(Directory(bare))
    assert str(info.value) == ("directory %s: the server asks for a password and none was given (the modules' "
                               "directory_password, PGPASSWORD or a .pgpass file)" % bare)
    assert write_tenant(Directory(bare, password=server.password)).committed_generation == 1   # directory_password
    monkeypatch.setenv('PGPASSWORD', server.password)
    with Directory(bare).transaction(write=False) as txn:
        assert txn.tenant_names() == ['acme']
    monkeypatch.delenv('PGPASSWORD')
    passfile = tmp_path / 'pgpass'
    passfile.write_text('%s:%d:*:postgres:%s\n' % (server.address, server.port, server.password))
    passfile.chmod(0o600)
    with Directory(bare + '&passfile=%s' % passfile).transaction(write=False) as txn:
        assert txn.tenant_names() == ['acme']


def test_the_keyword_value_form_and_libpq_options(server, location):
    schema = location.rsplit('%3D', 1)[1]
    keywords = "host=%s port=%d dbname=voxplane_tests user=postgres password=%s options='-csearch_path=%s'" % (
        server.address, server.port, server.password, schema)
    assert write_tenant(Directory(keywords)).committed_generation == 1
    with Directory(location).transaction(write=False) as txn:
        assert txn.tenant_names() == ['acme']
    # sslmode reaches libpq: the lab's server has no TLS
    with pytest.raises(StorageError) as info:
        write_tenant(Directory(location + '&sslmode=require'))
    assert 'server does not support SSL' in str(info.value) and server.password not in str(info.value)


def test_what_cannot_be_used_is_named_without_the_password(server, location):
    cases = [
        (location.replace('/voxplane_tests?', '/no_such_db?'), 'the database does not exist (',
         'create it first (the voxplane.pbx.postgresql role does)'),
        (location.replace(":%d/" % server.port, ":1/"), "cannot reach the database server (", "Connection refused"),
        (location.replace(':%s@' % server.password, ':wrong@'), 'the server refused the login (',
         'password authentication failed for user "postgres"'),
    ]
    for wrong, reason, fragment in cases:
        for write in (True, False):
            with pytest.raises(StorageError) as info:
                with Directory(wrong).transaction(write=write, create=write):
                    pass
            text = str(info.value)
            assert text.startswith('directory %s: %s' % (postgresql.shown(wrong), reason)), text
            assert fragment in text and server.password not in text and 'wrong' not in text


def test_another_applications_schema_is_refused_and_left_alone(server, location):
    harness = Harness(location)
    harness.sql('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)')
    harness.sql('CREATE TABLE orders (id INTEGER PRIMARY KEY)')
    before = harness.snapshot()
    for write in (True, False):
        with pytest.raises(StorageError) as info:
            with harness.directory.transaction(write=write, create=write):
                pass
        assert str(info.value) == ('directory %s: is a PostgreSQL database of another application (tables: orders, '
                                   'users), not a voxplane directory' % harness.shown)
    assert harness.snapshot() == before


def test_the_generation_poll(server, location):
    directory = Directory(location)
    poll = directory.generation_poll()
    assert poll() is None                      # an empty schema: not a voxplane directory yet
    write_tenant(directory)
    assert poll() == 1
    server.sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s '
               'AND pid <> pg_backend_pid()', ('voxplane',))
    with pytest.raises(StorageError):          # the connection was lost: named, and opened again next time
        poll()
    assert poll() == 1
    poll.close()


def test_without_a_driver_the_task_names_the_packages(monkeypatch, location):
    monkeypatch.setattr(postgresql, '_psycopg3', None)
    monkeypatch.setattr(postgresql, '_psycopg2', None)
    with pytest.raises(EnvironmentProblem) as info:
        Directory(location)
    text = str(info.value)
    assert text.startswith('a PostgreSQL driver for Python (psycopg or psycopg2) is missing on this host: ')
    assert 'python3-psycopg2' in text and 'psycopg[binary]' in text


ROUND_TRIP = r'''
import sys
from ansible_collections.voxplane.pbx.plugins.module_utils import postgresql
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory
directory = Directory(sys.argv[1])
with directory.transaction() as txn:
    reconcile(txn, 'beta', {'display_name': 'Beta', 'sip_domain': 'beta.voxplane.example', 'locations': [
        {'name': 'hq', 'street': 'Hauptstrasse 1', 'postal_code': '10115', 'city': 'Berlin'}]})
with directory.transaction(write=False) as txn:
    print(postgresql.driver_name().split()[0], txn.tenant_names(), directory.generation_poll()())
'''


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason='no %s' % SYSTEM_PYTHON)
def test_kamailios_python_uses_debians_psycopg2(server, location):
    """The router runs the same store in Debian's Python 3.11 with python3-psycopg2 (make deps)."""
    write_tenant(Directory(location))
    run = subprocess.run([SYSTEM_PYTHON, '-c', ROUND_TRIP, location], capture_output=True, text=True, timeout=60, check=False,
                         env=dict(os.environ, PYTHONPATH=os.path.join(REPO, 'build', 'collections')))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split('\n')[0] == "psycopg2 ['acme', 'beta'] 2"
