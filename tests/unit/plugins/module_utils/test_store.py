# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store (store.py, schema.py) on each backend and the reconcile engine's transaction contract:
schema on first use, version guard, generation counter, atomicity, check mode, idempotence. What
only a SQLite file has (its bytes, folder, permissions, WAL) is marked sqlite_only; what only
PostgreSQL has is in test_store_postgresql.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import pathlib
import pwd
import re
import shutil
import sqlite3
import tempfile

import pytest

from directory_helpers import (
    BETA_DOMAIN, BLOCK, BRANCH, DOMAIN, HQ, INTERIM, MEDIA_SERVER, PASSWORD, SINGLE, account, block, extension, tenant_request,
)
from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import SchemaError, StorageError, ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.model import DEVICE, EXTENSION, GROUP, NUMBER, TENANT
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import ABSENT, reconcile
from ansible_collections.voxplane.pbx.plugins.module_utils.schema import LATEST_VERSION, MIGRATIONS
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory, dialect_for

PIN = '4711'
TABLES = {'voxplane_schema', 'voxplane_generation', 'tenants', 'extensions', 'sip_accounts', 'call_groups',
          'numbers', 'number_claims', 'devices', 'phonebook_entries', 'voicemail_messages', 'mailboxes',
          'voicemail_serial', 'audio', 'announcements', 'ivr_menus', 'call_queues', 'conference_rooms', 'schedules'}
MIGRATION_5_TABLES = ('voicemail_messages', 'mailboxes', 'voicemail_serial', 'audio', 'announcements')
MIGRATION_6_TABLES = ('ivr_menus', 'call_queues', 'conference_rooms', 'schedules')


def undo_migration_6(pbx):
    """A directory as written before migration 6 (IVR menus, queues, conference rooms, schedules)."""
    for table in MIGRATION_6_TABLES:
        pbx.sql('DROP TABLE %s' % table)


def undo_migration_5(pbx):
    """A directory as written before migration 5 (the media service's tables), and so before 6."""
    undo_migration_6(pbx)
    for table in MIGRATION_5_TABLES:
        pbx.sql('DROP TABLE %s' % table)


def whole_tenant(mac='00:15:65:ab:cd:ef', block_key=BLOCK, single='+49 30 999001', ext10=10, media_server=MEDIA_SERVER):
    """A realistic tenant document: everything the seeds describe, in one request."""
    return tenant_request(
        smart=5, best=2, client_complete=2, locations=[dict(HQ), dict(BRANCH)],
        main_number=single, timezone='Europe/Berlin', internal_ranges=['10-99'],
        trunks=[{'name': 'telekom', 'addresses': ['192.0.2.10']}, {'name': 'ecotel', 'addresses': ['sip.ecotel.example']}],
        preferred_trunk='telekom', media_server=media_server,
    ), {
        NUMBER: {block_key: block(), single: {'target': '50'}, '03221 1234567': {'interim': True},
                 '+4940555000': {'status': 'porting', 'porting_date': '2099-05-04'}},
        EXTENSION: {
            ext10: extension(account('max.muster'), account('max.app', kind='softclient'),
                             email='max.muster@acme.example', role='admin', mobile='0171 1234567',
                             outbound_caller_id='030 1234 10', voicemail={'enabled': True, 'pin': PIN},
                             forwarding={'unregistered': '0171 1234567', 'busy': 'voicemail'}, location='hq',
                             single_number_reach=True),
            '11': extension(account('erika.m'), name='Erika Musterfrau', seat='best', external_numbers=[INTERIM],
                            location='hamburg'),
            '12': extension(account('otto.web', kind='webphone'), name='Otto', dnd=True),
        },
        GROUP: {'50': {'name': 'Zentrale', 'members': ['10', 11], 'strategy': 'sequential', 'fallback': '12'}},
        DEVICE: {mac: {'model': 'yealink-t46u', 'lines': ['max.muster', 'erika.m'], 'location': 'hq', 'name': 'Empfang'}},
    }


def raw(path, sql):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# Schema ------------------------------------------------------------------------------------------

def test_schema_is_created_on_first_use(pbx):
    assert not pbx.snapshot()
    with pbx.directory.transaction() as txn:
        assert txn.schema_version() == LATEST_VERSION == len(MIGRATIONS)
        assert txn.generation()['generation'] == 0
    snapshot = pbx.snapshot()
    assert set(snapshot) == TABLES
    assert [row[:2] for row in snapshot['voxplane_schema']] == [(m[0], m[1]) for m in MIGRATIONS]
    assert snapshot['voxplane_generation'] == [(1, 0, '1970-01-01T00:00:00Z')]
    assert all(not snapshot[t] for t in TABLES - {'voxplane_schema', 'voxplane_generation', 'voicemail_serial'})
    if pbx.backend == 'sqlite':
        assert raw(pbx.path, 'PRAGMA journal_mode') == [('wal',)]


def test_schema_is_created_once(pbx):
    for dummy in range(3):
        with pbx.directory.transaction():
            pass
    assert len(pbx.sql('SELECT * FROM voxplane_schema')) == len(MIGRATIONS)


def test_a_missing_folder_is_refused_naming_it(tmp_path):
    path = tmp_path / 'var' / 'lib' / 'voxplane' / 'directory.db'
    with pytest.raises(StorageError) as info:
        with Directory(str(path)).transaction():
            pass
    assert str(info.value) == ('directory %s: the folder %s does not exist (No such file or directory); '
                               'create it first or set create_parents' % (path, path.parent))
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_folders_are_created_when_asked(tmp_path):
    directory = Directory(str(tmp_path / 'var' / 'lib' / 'voxplane' / 'directory.db'))
    with directory.transaction(create_parents=True):
        pass
    assert directory.exists()


def test_folders_created_for_a_directory_that_is_rolled_back_are_removed(tmp_path):
    directory = Directory(str(tmp_path / 'var' / 'lib' / 'voxplane' / 'directory.db'))
    with directory.transaction(create_parents=True) as txn:
        txn.rollback_at_exit()
    assert list(tmp_path.iterdir()) == []


def test_reading_needs_an_existing_migrated_directory(pbx):
    if pbx.backend == 'sqlite':
        with pytest.raises(StorageError, match='^directory %s: does not exist$' % re.escape(pbx.path)):
            with pbx.directory.transaction(write=False, create=False):
                pass
        assert pbx.snapshot() is None
        sqlite3.connect(pbx.path).close()        # an empty database file
    with pytest.raises(SchemaError) as info:     # (PostgreSQL: an empty database)
        with pbx.directory.transaction(write=False, create=False):
            pass
    assert str(info.value) == ('directory %s: schema version 0 needs migrating to %d; run a module or the directory '
                               'role first' % (pbx.shown, LATEST_VERSION))
    assert not pbx.snapshot()


@pytest.mark.parametrize('write', [True, False])
def test_a_newer_schema_is_refused(acme, write):
    acme.sql("INSERT INTO voxplane_schema (version, description, applied_at) VALUES (?, 'from the future', 'x')",
             (LATEST_VERSION + 1,))
    before = acme.snapshot()
    with pytest.raises(SchemaError) as info:
        with acme.directory.transaction(write=write):
            pass
    # A storage error like every other: it names the directory.
    assert isinstance(info.value, StorageError) and info.value.location == acme.shown
    assert str(info.value) == ('directory %s: schema version %d is newer than this collection understands (%d); '
                               'upgrade the voxplane.pbx collection' % (acme.shown, LATEST_VERSION + 1, LATEST_VERSION))
    assert acme.snapshot() == before


def _directory_at_version_1(path):
    """A directory as the collection's first schema wrote it: one tenant, generation 4."""
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE voxplane_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)')
    for statement in MIGRATIONS[0][2]:
        conn.execute(statement.format(serial='INTEGER PRIMARY KEY'))
    conn.execute("INSERT INTO voxplane_schema VALUES (1, ?, 'x')", (MIGRATIONS[0][1],))
    conn.execute("UPDATE voxplane_generation SET generation = 4")
    conn.execute("INSERT INTO tenants (name, sip_domain, doc) VALUES ('acme', ?, ?)",
                 (DOMAIN, json.dumps({'display_name': 'ACME'})))
    conn.commit()
    conn.close()


def test_a_directory_of_schema_1_is_upgraded_and_its_tenants_carry_its_generation(tmp_path):
    path = str(tmp_path / 'old.db')
    _directory_at_version_1(path)
    with Directory(path).transaction() as txn:
        assert txn.migrated_from == 1
        assert txn.schema_version() == LATEST_VERSION
        assert txn.tenant_generations() == {'acme': 4}    # unknown history: the generation of the upgrade
        assert txn.load_tenant('acme').tenant['display_name'] == 'ACME'
    assert raw(path, 'SELECT version FROM voxplane_schema ORDER BY version') == [(v,) for v in range(1, LATEST_VERSION + 1)]


def test_a_reader_does_not_upgrade_an_old_directory(tmp_path):
    path = str(tmp_path / 'old.db')
    _directory_at_version_1(path)
    with pytest.raises(SchemaError, match='^directory %s: schema version 1 needs migrating to %d;' % (re.escape(path), LATEST_VERSION)):
        with Directory(path).transaction(write=False, create=False):
            pass


def test_each_write_stamps_its_generation_on_the_tenants_it_touched(acme):
    acme.apply('beta', tenant_request(domain=BETA_DOMAIN), {})
    with acme.directory.transaction(write=False, create=False) as txn:
        assert txn.tenant_generations() == {'acme': 1, 'beta': 2}
    acme.apply('acme', None, {EXTENSION: {'10': {'dnd': True}}})
    acme.apply('beta', None, {})                     # nothing changes: no new generation
    with acme.directory.transaction(write=False, create=False) as txn:
        assert txn.tenant_generations() == {'acme': 3, 'beta': 2}
        assert txn.generation()['generation'] == 3
    with acme.directory.transaction() as txn:        # two tenants in one transaction
        reconcile(txn, 'acme', None, {EXTENSION: {'10': {'dnd': False}}})
        reconcile(txn, 'beta', {'display_name': 'Beta neu'}, {})
    with acme.directory.transaction() as txn:        # rolled back: nothing stamped
        reconcile(txn, 'beta', {'display_name': 'Beta verworfen'}, {})
        txn.rollback_at_exit()
    with acme.directory.transaction(write=False, create=False) as txn:
        assert txn.tenant_generations() == {'acme': 4, 'beta': 4}
    with acme.directory.transaction() as txn:
        reconcile(txn, 'beta', ABSENT, {})
    with acme.directory.transaction(write=False, create=False) as txn:
        assert txn.tenant_generations() == {'acme': 4}


# The file: only a voxplane directory, an empty file or a new path -------------------------------

def files_of(folder):
    """Every file of a folder with its bytes: equal iff nothing was created, changed or removed."""
    return dict((p.name, p.read_bytes()) for p in sorted(folder.iterdir()))


def _foreign_database(path, wal=False):
    conn = sqlite3.connect(str(path))
    if wal:
        conn.execute('PRAGMA journal_mode = WAL')
    conn.execute('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)')
    conn.execute('CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER)')
    conn.execute("INSERT INTO users (name) VALUES ('alice')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize('wal', [False, True])
@pytest.mark.parametrize('write, create', [(True, True), (False, False), (True, False)])
def test_another_applications_database_is_refused_and_left_byte_identical(tmp_path, write, create, wal):
    path = tmp_path / 'app.db'
    _foreign_database(path, wal)
    before = files_of(tmp_path)
    with pytest.raises(StorageError) as info:
        with Directory(str(path)).transaction(write=write, create=create):
            pass
    assert str(info.value) == ('directory %s: is a SQLite database of another application (tables: orders, users), '
                               'not a voxplane directory' % path)
    assert files_of(tmp_path) == before
    assert raw(str(path), 'PRAGMA journal_mode') == [('wal' if wal else 'delete',)]


def test_a_long_list_of_foreign_tables_is_shortened(tmp_path):
    path = tmp_path / 'app.db'
    conn = sqlite3.connect(str(path))
    for i in range(12):
        conn.execute('CREATE TABLE t%02d (x)' % i)
    conn.close()
    with pytest.raises(StorageError, match=r'\(tables: t00, t01, .*, t09, and 2 more\)'):
        with Directory(str(path)).transaction():
            pass


@pytest.mark.parametrize('content', [b'hello, this is a text file\n', bytes(range(256)) * 20])
def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path, content):
    path = tmp_path / 'notes.txt'
    path.write_bytes(content)
    with pytest.raises(StorageError) as info:
        with Directory(str(path)).transaction():
            pass
    assert str(info.value) == ('directory %s: is not a SQLite database (it does not start with the SQLite header), '
                               'so not a voxplane directory' % path)
    assert files_of(tmp_path) == {'notes.txt': content}


def test_an_empty_file_and_an_empty_database_are_initialised(tmp_path):
    for name in ('empty.db', 'sqlite.db'):
        path = tmp_path / name
        if name == 'empty.db':
            path.write_bytes(b'')
        else:
            sqlite3.connect(str(path)).execute('PRAGMA user_version = 7').connection.close()
        with Directory(str(path)).transaction() as txn:
            assert txn.migrated_from == 0
        assert raw(str(path), 'SELECT MAX(version) FROM voxplane_schema') == [(LATEST_VERSION,)]


@pytest.mark.sqlite_only
def test_a_corrupt_directory_names_the_file_and_changes_nothing(acme, tmp_path):
    data = bytearray(open(acme.path, 'rb').read())
    for i in range(4096, len(data)):
        data[i] = (data[i] * 7 + 3) % 256
    with open(acme.path, 'wb') as handle:
        handle.write(bytes(data))
    before = open(acme.path, 'rb').read()
    for write in (True, False):
        with pytest.raises(StorageError) as info:
            with acme.directory.transaction(write=write, create=write) as txn:
                txn.load_tenant('acme')
        assert str(info.value) == ('directory %s: the file is corrupt (database disk image is malformed); '
                                   'restore it from a backup' % acme.path)
    assert open(acme.path, 'rb').read() == before


def test_a_garbled_header_is_a_corrupt_file(tmp_path):
    path = tmp_path / 'directory.db'
    path.write_bytes(b'SQLite format 3\x00' + bytes(range(256)) * 20)
    with pytest.raises(StorageError, match=r': the file is corrupt \(file is not a database\); restore it from a backup$'):
        with Directory(str(path)).transaction():
            pass


def test_a_path_that_is_a_folder(tmp_path):
    for write, create in ((True, True), (False, False)):
        with pytest.raises(StorageError) as info:
            with Directory(str(tmp_path)).transaction(write=write, create=create):
                pass
        assert str(info.value) == 'directory %s: is a folder, not a file' % tmp_path
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('create_parents', [False, True])
def test_a_path_through_a_regular_file(tmp_path, create_parents):
    (tmp_path / 'etc').write_text('a file')
    path = tmp_path / 'etc' / 'voxplane' / 'directory.db'
    with pytest.raises(StorageError) as info:
        with Directory(str(path)).transaction(create_parents=create_parents):
            pass
    assert str(info.value) == 'directory %s: %s is a file, not a folder (Not a directory)' % (path, tmp_path / 'etc')
    assert files_of(tmp_path) == {'etc': b'a file'}


def test_a_write_lock_held_too_long_names_the_file(acme):
    with acme.directory.transaction():           # a playbook writing: it holds the writers' lock
        with pytest.raises(StorageError) as info:
            with Directory(acme.path, dialect_for(acme.path, lock_timeout_ms=50)).transaction():
                pass
    reason = {'sqlite': 'database is locked', 'postgresql': 'canceling statement due to lock timeout'}[acme.backend]
    assert str(info.value) == ('directory %s: locked by another writer; gave up after 0.05 s (%s)'
                               % (acme.shown, reason))


def test_a_failing_statement_inside_a_transaction_is_a_storage_error_and_rolls_back(acme):
    before = acme.snapshot()
    with pytest.raises(StorageError) as info:
        with acme.directory.transaction() as txn:
            txn.apply('acme', [])
            txn._execute("INSERT INTO tenants (name, sip_domain, doc) VALUES ('acme', 'x.example', '{}')")
    reason = {'sqlite': 'UNIQUE constraint failed: tenants.name',
              'postgresql': 'duplicate key value violates unique constraint "tenants_name_key": '
                            'Key (name)=(acme) already exists.'}[acme.backend]
    assert str(info.value) == 'directory %s: the database refused the change (%s)' % (acme.shown, reason)
    assert acme.snapshot() == before


# Permissions: root may write anywhere, so these run in a child process as the user nobody.

@pytest.fixture
def shared_tmp():
    """A folder the user nobody can reach (pytest's own tmp_path is private to root)."""
    folder = tempfile.mkdtemp(prefix='voxplane-perm-')
    os.chmod(folder, 0o755)
    yield pathlib.Path(folder)
    shutil.rmtree(folder)


def as_nobody(fn):
    """Run fn() in a forked child as nobody; returns what it raised as 'Type: message', or 'ok'."""
    if os.geteuid() != 0:
        pytest.skip('needs root to switch to the user nobody')
    nobody = pwd.getpwnam('nobody')
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        outcome = 'ok'
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            fn()
        except BaseException as e:  # pylint: disable=broad-except
            outcome = '%s: %s' % (type(e).__name__, e)
        finally:
            os.write(writer, outcome.encode('utf-8'))
            os._exit(0)
    os.close(writer)
    chunks = []
    while True:
        chunk = os.read(reader, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    os.waitpid(pid, 0)
    return b''.join(chunks).decode('utf-8')


def _open(path, write=True, create=True, change=False):
    def run():
        with Directory(str(path)).transaction(write=write, create=create) as txn:
            txn.load_tenant('acme')
            if change:
                reconcile(txn, 'acme', tenant_request())
    return run


def test_a_new_directory_in_a_read_only_folder(shared_tmp):
    path = shared_tmp / 'directory.db'
    outcome = as_nobody(_open(path))
    assert outcome == ('StorageError: directory %s: cannot write: the folder %s is read-only (Permission denied)'
                       % (path, shared_tmp))
    assert list(shared_tmp.iterdir()) == []


def test_an_existing_directory_in_a_read_only_folder(shared_tmp):
    path = shared_tmp / 'directory.db'
    with Directory(str(path)).transaction():
        pass
    os.chmod(str(path), 0o666)
    before = files_of(shared_tmp)
    outcome = as_nobody(_open(path))
    assert outcome == ('StorageError: directory %s: cannot write: the folder %s is read-only (Permission denied)'
                       % (path, shared_tmp))
    assert files_of(shared_tmp) == before


def test_a_read_only_directory_file(shared_tmp):
    path = shared_tmp / 'directory.db'
    with Directory(str(path)).transaction():
        pass
    os.chmod(str(shared_tmp), 0o777)
    os.chmod(str(path), 0o644)
    before = path.read_bytes()
    outcome = as_nobody(_open(path, change=True))
    assert outcome == ('StorageError: directory %s: cannot write: the file %s is read-only (Permission denied)'
                       % (path, path))
    assert path.read_bytes() == before
    assert raw(str(path), 'SELECT COUNT(*) FROM tenants') == [(0,)]


@pytest.mark.parametrize('write, create', [(True, True), (False, False)])
def test_an_unreadable_directory_file(shared_tmp, write, create):
    path = shared_tmp / 'directory.db'
    with Directory(str(path)).transaction():
        pass
    os.chmod(str(path), 0o600)
    outcome = as_nobody(_open(path, write, create))
    assert outcome == 'StorageError: directory %s: cannot read the file (Permission denied)' % path


def test_a_folder_nobody_may_enter(shared_tmp):
    folder = shared_tmp / 'private'
    folder.mkdir(mode=0o700)
    path = folder / 'directory.db'
    outcome = as_nobody(_open(path))
    assert outcome.startswith('StorageError: directory %s: ' % path) and '(Permission denied)' in outcome, outcome
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize('location, dialect, shown', [
    ('/var/lib/voxplane/directory.db', 'sqlite', '/var/lib/voxplane/directory.db'),
    ('postgresql://voxplane@db/voxplane', 'postgresql', 'postgresql://voxplane@db/voxplane'),
    ('postgres://voxplane:s3cret@db:5432/voxplane', 'postgresql', 'postgres://voxplane:********@db:5432/voxplane'),
    ('postgresql://db/voxplane?user=vx&password=s3cret&sslmode=require', 'postgresql',
     'postgresql://db/voxplane?user=vx&password=********&sslmode=require'),
    ('host=db1 port=5432 dbname=voxplane user=vx password=s3cret sslmode=verify-full', 'postgresql',
     'host=db1 port=5432 dbname=voxplane user=vx password=******** sslmode=verify-full'),
    ("dbname=voxplane password='s3 cret'", 'postgresql', 'dbname=voxplane password=********'),
])
def test_the_location_picks_the_dialect_and_messages_never_show_a_password(location, dialect, shown):
    chosen = dialect_for(location)
    assert chosen.name == dialect and chosen.path == shown


# Generation counter, atomicity, check mode -----------------------------------------------------------

def test_a_successful_reconcile_bumps_the_generation_by_exactly_one(pbx):
    document, children = whole_tenant()
    result = pbx.apply('acme', document, children)
    assert len(result.changes) == 1 + 4 + 3 + 1 + 1
    assert pbx.generation() == 1
    pbx.apply('acme', None, {EXTENSION: {'12': {'dnd': False}}})
    assert pbx.generation() == 2
    with pbx.directory.transaction(write=False) as txn:
        changed_at = txn.generation()['changed_at']
    assert changed_at > '2020' and changed_at.endswith('Z')


def test_a_transaction_reports_the_generation_its_commit_moved_to(acme):
    before = acme.generation()
    with acme.directory.transaction() as txn:
        reconcile(txn, 'acme', None, {EXTENSION: {'10': {'dnd': True}}})
    assert txn.committed_generation == before + 1 == acme.generation()
    with acme.directory.transaction() as txn:
        reconcile(txn, 'acme', None, {EXTENSION: {'10': {'dnd': True}}})  # no change: nothing committed
    assert txn.committed_generation is None and acme.generation() == before + 1


def test_reconcile_without_create_changes_only_objects_that_exist(acme):
    before, generation = acme.snapshot(), acme.generation()
    with pytest.raises(ValidationFailed) as info:
        with acme.directory.transaction() as txn:
            reconcile(txn, 'acme', None, {EXTENSION: {'4711': {'dnd': True}}}, create=False)
    violation = info.value.violations[0]
    assert (violation.field, violation.rule) == ('internal_number', 'reference'), violation
    assert 'does not exist' in violation.message
    assert acme.snapshot() == before and acme.generation() == generation
    with acme.directory.transaction() as txn:
        result = reconcile(txn, 'acme', None, {EXTENSION: {'10': {'dnd': True}}}, create=False)
    assert result.changed and acme.generation() == generation + 1


def test_a_failed_reconcile_writes_nothing(acme):
    before, generation = acme.snapshot(), acme.generation()
    with pytest.raises(ValidationFailed):
        acme.apply('acme', {'display_name': 'ACME AG'}, {
            EXTENSION: {'11': extension(account('erika.m'))},     # valid ...
            NUMBER: {SINGLE: {'target': '99'}},                   # ... but this is not
        })
    assert acme.snapshot() == before and acme.generation() == generation


def test_a_failed_first_reconcile_leaves_no_schema_behind(pbx):
    with pytest.raises(ValidationFailed):
        pbx.apply('acme', tenant_request(), {NUMBER: {SINGLE: {'target': '10'}}})
    assert not pbx.snapshot()


def test_an_error_after_the_writes_rolls_all_of_them_back(acme):
    before = acme.snapshot()
    with pytest.raises(RuntimeError):
        with acme.directory.transaction() as txn:
            result = reconcile(txn, 'acme', {'display_name': 'ACME AG'}, {EXTENSION: {'11': extension(account('erika.m'))}})
            assert result.changed and txn.load_tenant('acme').get(EXTENSION, '11') is not None
            raise RuntimeError('the task died half-way')
    assert acme.snapshot() == before


def test_rollback_at_exit_runs_everything_and_keeps_nothing(acme):
    before, generation = acme.snapshot(), acme.generation()
    with acme.directory.transaction() as txn:
        result = reconcile(txn, 'acme', {'display_name': 'ACME AG'},
                           {EXTENSION: {'11': extension(account('erika.m'))}, NUMBER: {SINGLE: {'target': '11'}}})
        # read back inside the transaction: the change is really there
        state = txn.load_tenant('acme')
        assert state.tenant['display_name'] == 'ACME AG' and state.get(NUMBER, SINGLE)['target'] == '11'
        txn.rollback_at_exit()
    assert result.changed and [c.summary('acme') for c in result.changes] == [
        'update tenant acme', 'create extension 11 (tenant acme)', 'create number +4930999001 (tenant acme)']
    assert result.diffs()[1]['after']['sip_accounts'] == [{'username': 'erika.m', 'kind': 'desk_phone', 'password': '********'}]
    assert acme.snapshot() == before and acme.generation() == generation


def test_a_check_mode_run_on_a_new_file_keeps_no_schema(pbx):
    with pbx.directory.transaction() as txn:
        assert reconcile(txn, 'acme', tenant_request()).changed
        txn.rollback_at_exit()
    assert not pbx.snapshot()


def test_applying_the_same_request_twice_changes_nothing_the_second_time(pbx):
    document, children = whole_tenant()
    first = pbx.apply('acme', document, children)
    assert first.changed
    snapshot = pbx.snapshot()
    second = pbx.apply('acme', document, children)
    assert not second.changed and second.changes == [] and second.diffs() == []
    assert pbx.snapshot() == snapshot and pbx.generation() == 1


def test_other_spellings_of_the_same_request_change_nothing(pbx):
    document, children = whole_tenant()
    pbx.apply('acme', document, children)
    snapshot = pbx.snapshot()
    document, children = whole_tenant(mac='00-15-65-AB-CD-EF', block_key='030 1234', single='0049 30 999001', ext10='10',
                                      media_server='SIP:Media.ACME.voxplane.example')
    assert not pbx.apply('acme', document, children).changed
    assert pbx.snapshot() == snapshot


def test_a_request_leaving_fields_out_changes_nothing(pbx):
    document, children = whole_tenant()
    pbx.apply('acme', document, children)
    result = pbx.apply('acme', {}, {EXTENSION: {'10': {}, '11': {'sip_accounts': [{'username': 'erika.m'}]}},
                                    NUMBER: {BLOCK: {}}, DEVICE: {'001565abcdef': {}}, GROUP: {'50': {}}})
    assert not result.changed and pbx.generation() == 1


def test_what_is_stored_is_what_was_planned(pbx):
    document, children = whole_tenant()
    result = pbx.apply('acme', document, children)
    loaded = pbx.load('acme')
    assert loaded.tenant == result.state.tenant
    for kind in (EXTENSION, GROUP, NUMBER, DEVICE):
        assert loaded.objects(kind) == result.state.objects(kind), kind
    ext = loaded.get(EXTENSION, '10')
    assert ext['sip_accounts'][0] == {'username': 'max.muster', 'kind': 'desk_phone',
                                      'ha1': rules.ha1('max.muster', 'acme.voxplane.example', PASSWORD)}
    claims = pbx.sql('SELECT e164 FROM number_claims')
    assert len(claims) == 1 + 100 + 1 + 1 + 1


def test_purge_removes_what_the_document_does_not_name(pbx):
    document, children = whole_tenant()
    pbx.apply('acme', document, children)
    children[EXTENSION].pop('12')
    purge = (EXTENSION, GROUP, NUMBER, DEVICE)
    # group 50 falls back to 12: the purge is refused while it is referenced
    violations = pbx.reject('acme', document, children, purge=purge)
    assert [(v.obj, v.rule) for v in violations] == [('extension 12 (tenant acme)', 'still_referenced')]
    children[GROUP]['50']['fallback'] = ''
    result = pbx.apply('acme', document, children, purge=purge)
    assert [c.summary('acme') for c in result.changes] == ['delete extension 12 (tenant acme)',
                                                           'update group 50 (tenant acme)']
    assert pbx.load('acme').get(EXTENSION, '12') is None


def test_deleting_a_tenant_with_everything_frees_its_rows(pbx):
    document, children = whole_tenant()
    pbx.apply('acme', document, children)
    pbx.apply('acme', ABSENT, dict((kind, {}) for kind in children), purge=tuple(children))
    snapshot = pbx.snapshot()
    assert all(not snapshot[t] for t in TABLES - {'voxplane_schema', 'voxplane_generation', 'voicemail_serial'})
    with pbx.directory.transaction(write=False) as txn:
        assert txn.tenant_names() == [] and txn.load_all() == {}


def _strip_stored(pbx, table, field):
    """Rewrite every stored document of ``table`` without ``field``, as a collection older than
    the field wrote it; returns how many documents had it."""
    stripped = 0
    for rid, doc in pbx.sql('SELECT id, doc FROM %s' % table):
        obj = json.loads(doc)
        if obj.pop(field, 'missing') != 'missing':
            stripped += 1
        pbx.sql('UPDATE %s SET doc = ? WHERE id = ?' % table, (json.dumps(obj), rid))
    return stripped


def test_documents_stored_before_the_new_fields_load_with_their_defaults(acme):
    acme.apply('acme', None, {EXTENSION: {'11': extension(account('erika.m'), mobile='0171 1234567')}})
    expected = acme.load('acme')
    assert expected.tenant['media_server'] is None
    assert [e['single_number_reach'] for e in expected.objects(EXTENSION).values()] == [False, False]
    assert _strip_stored(acme, 'tenants', 'media_server') == 1
    assert _strip_stored(acme, 'extensions', 'single_number_reach') == 2
    before, generation = acme.snapshot(), acme.generation()
    loaded = acme.load('acme')
    assert loaded.tenant == expected.tenant
    assert loaded.objects(EXTENSION) == expected.objects(EXTENSION)
    # a request that leaves the new fields out finds nothing to change and writes nothing
    result = acme.apply('acme', {}, {EXTENSION: {'10': {}, '11': {'mobile': '0171 1234567'}}})
    assert not result.changed and acme.snapshot() == before and acme.generation() == generation
    # setting them works as on any other document
    acme.apply('acme', {'media_server': 'sip:192.0.2.50'}, {EXTENSION: {'11': {'single_number_reach': True}}})
    loaded = acme.load('acme')
    assert loaded.tenant['media_server'] == 'sip:192.0.2.50:5060'
    assert loaded.get(EXTENSION, '11')['single_number_reach'] is True
    assert loaded.get(EXTENSION, '10')['single_number_reach'] is False


CALL_FIELDS = ('max_outside_calls', 'max_outside_calls_per_minute', 'premium_calls', 'satellite_calls')


def test_documents_stored_before_the_call_limits_load_with_no_limit_and_no_permission(acme):
    expected = acme.load('acme')
    for field in CALL_FIELDS:
        assert _strip_stored(acme, 'tenants', field) == 1
    for field in CALL_FIELDS + ('emergency_only',):
        assert _strip_stored(acme, 'extensions', field) == 1
    before, generation = acme.snapshot(), acme.generation()
    loaded = acme.load('acme')
    assert loaded.tenant == expected.tenant and loaded.objects(EXTENSION) == expected.objects(EXTENSION)
    assert [loaded.tenant[f] for f in CALL_FIELDS] == [None, None, False, False]
    assert [loaded.get(EXTENSION, '10')[f] for f in CALL_FIELDS + ('emergency_only',)] == [None, None, False, False, False]
    result = acme.apply('acme', {}, {EXTENSION: {'10': {}}})
    assert not result.changed and acme.snapshot() == before and acme.generation() == generation
    acme.apply('acme', {'max_outside_calls': 5}, {EXTENSION: {'10': {'max_outside_calls': 2, 'emergency_only': True}}})
    loaded = acme.load('acme')
    assert loaded.tenant['max_outside_calls'] == 5 and loaded.get(EXTENSION, '10')['max_outside_calls'] == 2
    assert loaded.get(EXTENSION, '10')['emergency_only'] is True


def test_lookups_across_tenants(acme):
    acme.apply('acme', None, {DEVICE: {'00:15:65:ab:cd:ef': {'model': 'snom-d785'}}})
    with acme.directory.transaction(write=False) as txn:
        assert txn.number_owners(['+4930123455', '+4930123455', SINGLE], 'beta') == {'+4930123455': 'acme'}
        assert txn.number_owners(['+4930123455'], 'acme') == {}
        assert txn.mac_owner('00:15:65:ab:cd:ef', 'beta') == 'acme'
        assert txn.mac_owner('00:15:65:ab:cd:ef', 'acme') is None
        assert txn.domain_owner('acme.voxplane.example', 'beta') == 'acme'
        assert txn.domain_owner(BETA_DOMAIN, 'beta') is None
        assert txn.number_owners(rules.block_numbers('+493012', '0000-9999'), 'beta').keys() == set(
            rules.block_numbers(BLOCK, '00-99'))   # more than one chunk of 500


def test_a_read_only_transaction_cannot_write(acme):
    with acme.directory.transaction(write=False) as txn:
        with pytest.raises(StorageError) as info:
            reconcile(txn, 'acme', {'display_name': 'ACME AG'})
    assert str(info.value) == 'directory %s: cannot write in a read-only transaction' % acme.shown


# Secrets never leave the store as values --------------------------------------------------------------

def test_secrets_are_stored_as_digests_only_and_never_shown(pbx, tmp_path):
    document, children = whole_tenant()
    result = pbx.apply('acme', document, children)
    for path in glob.glob(str(tmp_path / 'directory.db*')):
        with open(path, 'rb') as f:
            data = f.read()
        assert PASSWORD.encode() not in data
    assert PASSWORD not in repr(pbx.snapshot())
    ha1s = [a['ha1'] for e in result.state.objects(EXTENSION).values() for a in e['sip_accounts']]
    pin_hash = result.state.get(EXTENSION, '10')['voicemail']['pin_hash']
    text = json.dumps(result.diffs())
    for secret in [PASSWORD, pin_hash] + ha1s:
        assert secret not in text
    assert text.count('"password": "********"') == 4 and '"pin": "********"' in text

    request = {'sip_accounts': [account('max.muster', password='Winter-2025!'), {'username': 'max.app'}],
               'voicemail': {'pin': '0815'}}
    changed = pbx.apply('acme', None, {EXTENSION: {'10': request}})
    diff = changed.diffs()[0]
    assert diff['before_header'] == diff['after_header'] == 'extension 10 (tenant acme)'
    for side, mark in (('before', '********'), ('after', '******** (changed)')):
        assert [a['password'] for a in diff[side]['sip_accounts']] == [mark, '********']
        assert diff[side]['voicemail']['pin'] == mark
    text = json.dumps(changed.diffs())
    for secret in [PASSWORD, 'Winter-2025!', '0815', PIN, pin_hash] + ha1s:
        assert secret not in text


def test_a_deleted_object_diffs_against_absent(acme):
    result = acme.apply('acme', None, {EXTENSION: {'10': ABSENT}})
    diff = result.diffs()[0]
    assert diff['after'] == {} and diff['after_header'] == 'extension 10 (tenant acme) (absent)'
    assert diff['before']['sip_accounts'] == [{'username': 'max.muster', 'kind': 'desk_phone', 'password': '********'}]


def test_tenant_kind_diff(pbx):
    result = pbx.apply('acme', tenant_request())
    assert result.changes[0].kind == TENANT and result.changes[0].action == 'create'
    assert result.diffs()[0]['before_header'] == 'tenant acme (absent)'


@pytest.mark.sqlite_only
def test_opening_the_directory_keeps_the_locks_of_other_connections_of_the_process(tmp_path):
    """A router worker keeps a connection open and opens the directory again for each reload.
    Opening must not drop that connection's POSIX locks (closing any descriptor of the file
    would): another process closing its connection would then take itself for the last one and
    delete the -wal and -shm files under the worker, whose later writes fail with an I/O error."""
    import subprocess
    import sys
    path = str(tmp_path / 'directory.db')
    with Directory(path).transaction() as txn:
        txn.apply('acme', [])
    kept = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
    kept.execute('SELECT generation FROM voxplane_generation').fetchone()
    try:
        with Directory(path).transaction(write=False, create=False):
            pass
        subprocess.run([sys.executable, '-c', 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); '
                        'c.execute("SELECT 1 FROM voxplane_generation").fetchone(); c.close()', path], check=True)
        assert os.path.exists(path + '-shm') and os.path.exists(path + '-wal')
    finally:
        kept.close()


def test_a_version_2_directory_gains_the_phonebook_and_keeps_its_tenants(acme):
    """Migration 3 (phonebook) on a directory written before it: the tenants load unchanged."""
    undo_migration_5(acme)
    acme.sql('DROP TABLE phonebook_entries')
    acme.sql('ALTER TABLE sip_accounts DROP COLUMN require_tls')  # migration 4
    acme.sql('DELETE FROM voxplane_schema WHERE version > 2')
    with acme.directory.transaction() as txn:
        assert txn.migrated_from == 2 and txn.schema_version() == LATEST_VERSION
        state = txn.load_tenant('acme')
    assert state.tenant is not None and state.objects('extension') and state.objects('phonebook_entry') == {}


def test_a_version_3_directory_gains_require_tls_and_its_accounts_take_any_transport(acme):
    """Migration 4 (SIP accounts that require TLS) on a directory written before it."""
    with acme.directory.transaction(write=False) as txn:
        before = txn.load_tenant('acme').objects('extension')
    undo_migration_5(acme)
    acme.sql('ALTER TABLE sip_accounts DROP COLUMN require_tls')
    acme.sql('DELETE FROM voxplane_schema WHERE version > 3')
    with acme.directory.transaction() as txn:
        assert txn.migrated_from == 3 and txn.schema_version() == LATEST_VERSION
        after = txn.load_tenant('acme').objects('extension')
    assert after == before and before
    assert not any(a.get('require_tls') for ext in after.values() for a in ext['sip_accounts'])


# The media service's data (migration 5) ----------------------------------------------------------

def test_messages_are_kept_moved_and_deleted_per_mailbox_and_each_change_moves_the_voicemail_serial(acme):
    with acme.directory.transaction() as txn:
        generation = txn.generation()['generation']
        serial = txn.voicemail_serial()
        first = txn.add_voicemail('acme', '10', '2026-12-07T10:00:00Z', 4200, 'voicemail/acme/10/a.wav',
                                  {'caller': '11', 'reason': 'user-busy'})
        second = txn.add_voicemail('acme', '10', '2026-12-07T11:00:00Z', 1000, 'voicemail/acme/10/b.wav', {})
        assert txn.voicemail_serial() == serial + 2
    with acme.directory.transaction() as txn:
        assert txn.generation()['generation'] == generation  # the router does not reload for a message
        assert [m['id'] for m in txn.voicemail_messages('acme', '10')] == [first, second]
        message = txn.voicemail_message('acme', first)
        assert (message['mailbox'], message['folder'], message['duration_ms'], message['caller']) == ('10', 'new', 4200, '11')
        assert txn.mailbox_counts('acme') == {'10': {'new': 2, 'saved': 0}}
        txn.move_voicemail('acme', first, 'saved')
        assert txn.mailbox_counts('acme', '10') == {'10': {'new': 1, 'saved': 1}}
        assert txn.delete_voicemail('acme', second)['file'] == 'voicemail/acme/10/b.wav'
        assert txn.delete_voicemail('acme', second) is None
        assert txn.voicemail_message('beta', first) is None
    with acme.directory.transaction(write=False) as txn:
        serial_now, changed = txn.mailboxes_changed(serial)
        assert serial_now == serial + 4 and changed == {('acme', '10'): {'new': 0, 'saved': 1}}
        assert txn.mailboxes_changed(serial_now) == (serial_now, {})


def test_a_mailbox_state_is_its_own_and_audio_is_kept_once_per_tenant(acme):
    with acme.directory.transaction() as txn:
        assert txn.mailbox_state('acme', '10') == {}
        digest = txn.put_audio('acme', b'RIFF-greeting', 1500)
        assert txn.put_audio('acme', b'RIFF-greeting', 1500) == digest
        txn.set_mailbox_state('acme', '10', {'greetings': {'busy': digest}, 'pin_failures': ['2026-12-07T10:00:00Z']})
    with acme.directory.transaction(write=False) as txn:
        assert txn.mailbox_state('acme', '10')['greetings'] == {'busy': digest}
        assert txn.audio('acme', digest) == b'RIFF-greeting' and txn.audio('beta', digest) is None
        assert txn.audio_hashes('acme') == {digest}
    with acme.directory.transaction() as txn:
        with pytest.raises(StorageError, match='extension 99 of tenant acme does not exist'):
            txn.mailbox_state('acme', '99')


def test_the_media_service_finds_a_tenant_by_its_domain_with_its_generation(acme):
    with acme.directory.transaction(write=False) as txn:
        name, generation = txn.tenant_of_domain(DOMAIN)
        assert name == 'acme' and generation == txn.tenant_generations()['acme']
        assert txn.tenant_of_domain('nowhere.example') is None


def test_an_announcement_is_read_by_tenant_and_name(acme):
    with acme.directory.transaction() as txn:
        tenant_id = txn._tenant_id('acme')
        txn._execute('INSERT INTO announcements (tenant_id, name, doc) VALUES (?, ?, ?)',
                     (tenant_id, 'closed', json.dumps({'audio': 'ab' * 32})))
    with acme.directory.transaction(write=False) as txn:
        assert txn.announcement('acme', 'closed') == {'audio': 'ab' * 32}
        assert txn.announcement('acme', 'open') is None
        assert txn.announcement('beta', 'closed') is None


def test_messages_whose_mail_is_pending_are_found_across_tenants(acme):
    with acme.directory.transaction() as txn:
        pending = txn.add_voicemail('acme', '10', '2026-12-07T10:00:00Z', 4200, 'a.wav',
                                    {'email': {'state': 'pending', 'to': 'max.muster@acme.example'}})
        sent = txn.add_voicemail('acme', '10', '2026-12-07T09:00:00Z', 4200, 'b.wav', {'email': {'state': 'sent'}})
        txn.add_voicemail('acme', '10', '2026-12-07T08:00:00Z', 4200, 'c.wav', {})
    with acme.directory.transaction(write=False) as txn:
        assert [m['id'] for m in txn.voicemail_to_mail()] == [pending]
    with acme.directory.transaction() as txn:
        txn.update_voicemail('acme', pending, {'email': {'state': 'sent'}})
    with acme.directory.transaction(write=False) as txn:
        assert txn.voicemail_to_mail() == [] and sent


def test_a_version_5_directory_gains_menus_queues_rooms_and_schedules_and_keeps_its_tenants(acme):
    """Migration 6 on a directory written before it: the tenants load unchanged, with none of the new kinds."""
    with acme.directory.transaction(write=False) as txn:
        before = txn.load_tenant('acme')
    undo_migration_6(acme)
    acme.sql('DELETE FROM voxplane_schema WHERE version > 5')
    with pytest.raises(SchemaError) as info:  # a reader never migrates, and says so
        with acme.directory.transaction(write=False, create=False):
            pass
    assert 'schema version 5 needs migrating to %d' % LATEST_VERSION in str(info.value)
    with acme.directory.transaction() as txn:
        assert txn.migrated_from == 5 and txn.schema_version() == LATEST_VERSION
        after = txn.load_tenant('acme')
    assert after.tenant == before.tenant and after.children == before.children
    assert all(after.objects(kind) == {} for kind in ('ivr', 'queue', 'conference', 'schedule'))
