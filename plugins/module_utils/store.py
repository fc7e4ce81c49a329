# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directory store: connection, schema migrations, transactions, rows <-> objects.

Modules never write SQL; they open a ``Directory``, run one ``transaction()``
and hand it the changes the reconcile engine planned. The SQL is written once
with ``?`` placeholders in the common subset of SQLite and PostgreSQL; a
``Dialect`` supplies what differs (connecting, locking, serial keys, binary
columns, placeholders, a JSON field, the driver's errors): ``SqliteDialect``
here, ``postgresql.PostgresqlDialect`` for a ``postgresql://`` location.

Every committed change bumps the generation counter in the same transaction:
the KEMI router polls that single row to know when to reload its snapshot. The
transaction also stamps that generation on every tenant it wrote to
(``tenants.generation``), so that the router rebuilds only those tenants.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import hashlib
import json
import os

from ansible_collections.voxplane.pbx.plugins.module_utils.errors import (
    EnvironmentProblem, SchemaError, StorageError, this_python,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.integrity import Lookups
from ansible_collections.voxplane.pbx.plugins.module_utils import postgresql
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    ANNOUNCEMENT, CHILD_KINDS, CONFERENCE, DEVICE, EXTENSION, GROUP, IVR, KEY_FIELD, NUMBER, PHONEBOOK, QUEUE, SCHEDULE,
    TENANT, with_defaults,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.rules import block_numbers
from ansible_collections.voxplane.pbx.plugins.module_utils.schema import LATEST_VERSION, MIGRATIONS
from ansible_collections.voxplane.pbx.plugins.module_utils.state import TenantState

# A Python built without SQLite (from source without its headers) has no sqlite3; the
# modules then fail with require_sqlite3()'s message instead of an import traceback.
try:
    import sqlite3
except ImportError as e:
    sqlite3 = None
    SQLITE3_IMPORT_ERROR = e
else:
    SQLITE3_IMPORT_ERROR = None

DEFAULT_LOCATION = '/var/lib/voxplane/directory.db'
# The key of a mailbox's state (Transaction.mailbox_state) that holds its recorded greetings: {kind: audio hash}.
MAILBOX_GREETINGS = 'greetings'


def require_sqlite3():
    """Raise the EnvironmentProblem of a Python without the sqlite3 module."""
    if sqlite3 is None:
        raise EnvironmentProblem(
            'the sqlite3 module', '%s cannot import it (%s), and the directory is a SQLite database'
            % (this_python(), SQLITE3_IMPORT_ERROR),
            'Run the modules with a Python that has it (ansible_python_interpreter): the python3 of '
            'Debian/Ubuntu and RHEL/Fedora (python3-libs) has it; a Python built from source needs the '
            'SQLite headers (libsqlite3-dev, sqlite-devel) when it is built.')


# kind -> (table, key column). Child rows all carry tenant_id.
TABLES = {EXTENSION: ('extensions', 'internal_number'), GROUP: ('call_groups', 'internal_number'),
          NUMBER: ('numbers', 'number'), DEVICE: ('devices', 'mac'), PHONEBOOK: ('phonebook_entries', 'name'),
          ANNOUNCEMENT: ('announcements', 'name'), IVR: ('ivr_menus', 'internal_number'),
          QUEUE: ('call_queues', 'internal_number'), CONFERENCE: ('conference_rooms', 'internal_number'),
          SCHEDULE: ('schedules', 'name')}

# Fields kept in their own columns or rows rather than in doc.
_OUT_OF_DOC = {TENANT: ('name', 'sip_domain'), EXTENSION: ('tenant', 'internal_number', 'sip_accounts'),
               GROUP: ('tenant', 'internal_number'), NUMBER: ('tenant', 'number'), DEVICE: ('tenant', 'mac'),
               PHONEBOOK: ('tenant', 'name'), ANNOUNCEMENT: ('tenant', 'name'), IVR: ('tenant', 'internal_number'),
               QUEUE: ('tenant', 'internal_number'), CONFERENCE: ('tenant', 'internal_number'),
               SCHEDULE: ('tenant', 'name')}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _doc(kind, obj):
    return json.dumps(dict((k, v) for k, v in obj.items() if k not in _OUT_OF_DOC[kind]), sort_keys=True)


# The first 16 bytes of every SQLite 3 database file.

# SQLite's primary result codes by message, for Pythons whose sqlite3 errors
# carry no sqlite_errorname (before 3.11).
_SQLITE_HEADER = b'SQLite format 3\x00'
_SQLITE_CODES = {
    'unable to open database file': 'SQLITE_CANTOPEN',
    'attempt to write a readonly database': 'SQLITE_READONLY',
    'disk I/O error': 'SQLITE_IOERR',
    'database or disk is full': 'SQLITE_FULL',
    'database is locked': 'SQLITE_BUSY',
    'database table is locked': 'SQLITE_LOCKED',
    'database disk image is malformed': 'SQLITE_CORRUPT',
    'file is not a database': 'SQLITE_NOTADB',
    'access permission denied': 'SQLITE_PERM',
}


def _errno_text(number):
    return os.strerror(number)


class SqliteDialect(object):
    """SQLite in WAL mode: readers (Kamailio workers) never block the writer.

    Everything that touches the file goes through here, and so does every
    storage error: ``error()`` is the one place that turns an OSError or a
    sqlite3 error into a StorageError naming the file and the reason.
    """

    name = 'sqlite'
    serial = 'INTEGER PRIMARY KEY'
    blob = 'BLOB'

    def __init__(self, path, busy_timeout_ms=10000):
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        # Folders connect() created for a new file; remove() takes them away again.
        self._made_folders = []

    @staticmethod
    def require_driver():
        require_sqlite3()

    @property
    def errors(self):
        """The driver's exceptions, which error() turns into a StorageError."""
        return (sqlite3.Error,) if sqlite3 is not None else ()

    def exists(self):
        return self.path == ':memory:' or os.path.exists(self.path)

    def _folder(self):
        return os.path.dirname(os.path.abspath(self.path))

    def _missing_folders(self):
        """The folders above the file that do not exist yet, outermost first."""
        missing = []
        folder = self._folder()
        while not os.path.exists(folder) and os.path.dirname(folder) != folder:
            missing.insert(0, folder)
            folder = os.path.dirname(folder)
        return missing

    def _path_problem(self):
        """What makes the path unusable as a file, whatever the permissions: None if nothing."""
        if os.path.isdir(self.path):
            return 'is a folder, not a file'
        folder = self._folder()
        while not os.path.exists(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        if not os.path.isdir(folder):
            return '%s is a file, not a folder (%s)' % (folder, _errno_text(errno.ENOTDIR))
        return None

    def _access_problem(self):
        """Why the file or its folder cannot be read or written: None if nothing is found."""
        kwargs = {'effective_ids': True} if os.access in os.supports_effective_ids else {}
        folder = self._folder()
        if os.path.exists(self.path) and not os.access(self.path, os.R_OK, **kwargs):
            return 'cannot read the file (%s)' % _errno_text(errno.EACCES)
        if not os.access(folder, os.X_OK, **kwargs):
            return 'cannot open the folder %s (%s)' % (folder, _errno_text(errno.EACCES))
        try:
            read_only_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):
            read_only_fs = False
        if read_only_fs:
            return 'cannot write: %s is on a read-only file system (%s)' % (folder, _errno_text(errno.EROFS))
        for path, what in ((self.path, 'the file'), (self.path + '-wal', 'the file'), (self.path + '-shm', 'the file')):
            if os.path.exists(path) and not os.access(path, os.W_OK, **kwargs):
                return 'cannot write: %s %s is read-only (%s)' % (what, path, _errno_text(errno.EACCES))
        if not os.access(folder, os.W_OK, **kwargs):
            # WAL mode creates the -wal and -shm files beside the database.
            return 'cannot write: the folder %s is read-only (%s)' % (folder, _errno_text(errno.EACCES))
        return None

    def error(self, exc):
        """The StorageError for ``exc`` (an OSError or sqlite3.Error): the location and why."""
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, OSError):
            where = ' %s' % exc.filename if exc.filename and exc.filename != self.path else ''
            return StorageError(self.path, 'cannot access%s (%s)' % (where, exc.strerror or exc))
        text = str(exc)
        name = getattr(exc, 'sqlite_errorname', None) or _SQLITE_CODES.get(text, '')
        code = '_'.join(name.split('_')[:2])
        if code in ('SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_PERM', 'SQLITE_IOERR', 'SQLITE_AUTH'):
            problem = self._path_problem() or self._access_problem()
            if problem:
                return StorageError(self.path, problem)
        reasons = {
            'SQLITE_CANTOPEN': 'cannot open the file (%s)',
            'SQLITE_READONLY': 'cannot write (%s)',
            'SQLITE_PERM': 'cannot write (%s)',
            'SQLITE_IOERR': 'input/output error (%%s, %s)' % name,
            'SQLITE_FULL': 'cannot write: the disk is full (%s; %%s)' % _errno_text(errno.ENOSPC),
            'SQLITE_BUSY': 'locked by another writer; gave up after %g s (%%s)' % (self.busy_timeout_ms / 1000.0),
            'SQLITE_LOCKED': 'locked by another writer; gave up after %g s (%%s)' % (self.busy_timeout_ms / 1000.0),
            'SQLITE_CORRUPT': 'the file is corrupt (%s); restore it from a backup',
            'SQLITE_NOTADB': 'the file is corrupt (%s); restore it from a backup',
            'SQLITE_CONSTRAINT': 'the database refused the change (%s)',
        }
        return StorageError(self.path, reasons.get(code, 'database error (%s)') % text)

    def check_location(self, create=True, create_parents=False):
        """Make sure the path can hold a voxplane directory before anything is written.

        An existing file must be empty, or a SQLite database (foreign ones are
        refused once connected, see ``_refuse_foreign``); a new one needs its
        folder, which is created only with ``create_parents``. Raises
        StorageError naming the path and what is wrong; returns the folders a
        new file still needs (created by ``connect``)."""
        if self.path == ':memory:':
            return []
        problem = self._path_problem()
        if problem:
            raise StorageError(self.path, problem)
        if os.path.exists(self.path):
            return []  # what the file holds is checked once connected (_refuse_foreign)
        if not create:
            raise StorageError(self.path, 'does not exist')
        missing = self._missing_folders()
        if missing and not create_parents:
            raise StorageError(self.path, 'the folder %s does not exist (%s); create it first or set create_parents'
                               % (self._folder(), _errno_text(errno.ENOENT)))
        if not missing:
            problem = self._access_problem()
            if problem:
                raise StorageError(self.path, problem)
        return missing

    def _refuse_foreign(self, conn):
        """A file that is not a SQLite database, or a SQLite database with tables but no
        voxplane schema (another application's), is refused. Runs on the fresh connection
        before anything is written (WAL mode, schema); SQLite reads the header itself. (Never
        open the file with Python here: closing any descriptor of a database file drops every
        POSIX lock this process holds on it, also those of its open SQLite connections: a
        router worker's connection would lose its lock, and a writer closing elsewhere would
        then delete the -wal and -shm files under it.)"""
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' "
                "ORDER BY name")]
        except sqlite3.DatabaseError as e:
            if 'not a database' not in str(e) or self._has_sqlite_header():
                raise  # a SQLite file with a garbled header: corrupt (SqliteDialect.error)
            raise StorageError(self.path, 'is not a SQLite database (it does not start with the SQLite header), '
                                          'so not a voxplane directory')
        if tables and 'voxplane_schema' not in tables:
            shown = ', '.join(tables[:10]) + (', and %d more' % (len(tables) - 10) if len(tables) > 10 else '')
            raise StorageError(self.path, 'is a SQLite database of another application (tables: %s), '
                                          'not a voxplane directory' % shown)

    def _has_sqlite_header(self):
        """Only for a file SQLite already refused: no open connection of this process can hold
        a lock on it that closing this descriptor would drop."""
        try:
            with open(self.path, 'rb') as handle:
                return handle.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
        except OSError:
            return False

    def connect(self, create=True, create_parents=False):
        if self.path == ':memory:':
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute('PRAGMA foreign_keys = ON')
            return conn
        missing = self.check_location(create, create_parents)
        conn = None
        try:
            for folder in missing:
                os.mkdir(folder, 0o755)
                self._made_folders.append(folder)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_ms / 1000.0)
            conn.execute('PRAGMA busy_timeout = %d' % self.busy_timeout_ms)
            self._refuse_foreign(conn)
            conn.execute('PRAGMA journal_mode = WAL')
            conn.execute('PRAGMA synchronous = NORMAL')
            self._share_wal_files()
            conn.execute('PRAGMA foreign_keys = ON')
            return conn
        except (OSError, sqlite3.Error, StorageError) as e:
            if conn is not None:
                conn.close()
            if missing:
                self.remove()
            raise self.error(e)

    def _share_wal_files(self):
        # WAL readers (the Kamailio workers, another user) must write the -shm
        # file: give the -wal/-shm files we create the database file's permissions.
        try:
            mode = os.stat(self.path).st_mode & 0o666
            for suffix in ('-wal', '-shm'):
                path = self.path + suffix
                if os.path.exists(path) and os.stat(path).st_uid == os.geteuid() and os.stat(path).st_mode & 0o666 != mode:
                    os.chmod(path, mode)
        except OSError:
            pass

    def remove(self):
        """Remove a directory this process created and did not keep, with the folders made for it."""
        if self.path == ':memory:':
            return
        for suffix in ('', '-wal', '-shm'):
            try:
                os.remove(self.path + suffix)
            except OSError:
                pass
        while self._made_folders:
            try:
                os.rmdir(self._made_folders.pop())
            except OSError:
                break

    def begin(self, conn, write):
        # IMMEDIATE takes the write lock up front: two playbooks writing at once
        # queue on busy_timeout instead of failing half-way with SQLITE_BUSY.
        conn.execute('BEGIN IMMEDIATE' if write else 'BEGIN')

    def sql(self, statement):
        return statement

    def has_table(self, conn, table):
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None

    @staticmethod
    def json_text(column, *path):
        """SQL for the text at ``path`` of the JSON document in ``column``."""
        return "json_extract(%s, '$.%s')" % (column, '.'.join(path))

    # The router's generation poll (GenerationPoll) ---------------------------------------------------

    def connect_poll(self):
        try:
            return sqlite3.connect('file:%s?mode=ro' % self.path, uri=True, timeout=1.0)
        except sqlite3.Error as e:
            raise self._poll_error(e)

    def poll_generation(self, conn):
        try:
            return conn.execute('SELECT generation FROM voxplane_generation WHERE id = 1').fetchone()[0]
        except sqlite3.Error as e:
            if 'no such table' in str(e) or 'not a database' in str(e):
                return None  # not a voxplane directory (yet): a transaction says what the file is
            raise self._poll_error(e)

    def poll_voicemail_serial(self, conn):
        try:
            return conn.execute('SELECT serial FROM voicemail_serial WHERE id = 1').fetchone()[0]
        except sqlite3.Error as e:
            if 'no such table' in str(e):
                return None  # a directory of a schema before voicemail (migration 5)
            raise self._poll_error(e)

    def _poll_error(self, exc):
        if not os.path.exists(self.path):
            return StorageError(self.path, 'does not exist')
        return self.error(exc)


def dialect_for(location, password=None, lock_timeout_ms=None):
    """Pick the dialect from the directory location: a ``postgresql://`` URL or libpq keyword/value
    pairs (``host=db1 dbname=voxplane ...``) mean PostgreSQL, anything else is a SQLite file.
    ``password``: a PostgreSQL password the location does not carry; ``lock_timeout_ms``: how long
    a writer waits for another's lock (default 10 s)."""
    timeout = {} if lock_timeout_ms is None else {'lock_timeout_ms': lock_timeout_ms}
    if postgresql.is_location(location):
        return postgresql.PostgresqlDialect(location, password=password, **timeout)
    return SqliteDialect(location, **dict(('busy_timeout_ms', v) for v in timeout.values()))


class Directory(object):
    """One directory database. ``transaction()`` is the only way in."""

    def __init__(self, location=DEFAULT_LOCATION, dialect=None, password=None):
        self.location = location
        self.dialect = dialect or dialect_for(location, password)
        self.dialect.require_driver()

    def exists(self):
        return self.dialect.exists()

    def check_location(self, create_parents=False):
        """Raise StorageError unless a write transaction could use or create the directory here
        (check mode asks this instead of touching a file that does not exist yet)."""
        self.dialect.check_location(create=True, create_parents=create_parents)

    def transaction(self, write=True, create=True, create_parents=False):
        """A transaction. create=False: the directory must exist (readers and the router
        never create one); create_parents: a new file's missing folders are created too."""
        return Transaction(self.dialect, write, create, create_parents)

    def generation_poll(self):
        """A GenerationPoll of this directory (the router's per-worker reload check)."""
        return GenerationPoll(self.dialect)


class GenerationPoll(object):
    """The directory generation, read over one long-lived read-only connection of its own (one
    per process: a forked worker opens its own): one single-row SELECT a call, no transaction.
    None: not a voxplane directory (yet). A storage error names the directory like every other,
    and the next call connects again."""

    def __init__(self, dialect):
        self.dialect = dialect
        self._conn = None
        self._pid = None

    def __call__(self):
        try:
            if self._conn is None or self._pid != os.getpid():
                self._conn = self.dialect.connect_poll()
                self._pid = os.getpid()
            return self.dialect.poll_generation(self._conn)
        except BaseException:
            self.close()
            raise

    def voicemail_serial(self):
        """The directory's voicemail serial over the same connection (what the message-waiting
        lamps follow; None before migration 5). Call it after the generation."""
        try:
            return self.dialect.poll_voicemail_serial(self._conn)
        except BaseException:
            self.close()
            raise

    def close(self):
        if self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except Exception:  # pylint: disable=broad-except
                pass
        self._conn = None


class Transaction(Lookups):
    """A unit of work: commits on a clean exit unless rolled back, else rolls back.

    Every storage error inside it, on entry, in the body or at commit, leaves
    as the dialect's StorageError naming the file and the reason."""

    def __init__(self, dialect, write, create, create_parents=False):
        self.dialect = dialect
        self.write = write
        self.create = create
        self.create_parents = create_parents
        self.conn = None
        self.dirty = False
        self._rollback_only = False
        self._tenant_ids = {}
        # Tenants this transaction wrote to: their generation is set at commit.
        self._touched = set()
        # The schema version found before this transaction migrated it; None when it was current.
        self.migrated_from = None
        # The generation this transaction's commit moved the directory to; None if it wrote nothing.
        self.committed_generation = None

    def __enter__(self):
        # A directory this transaction creates and then rolls back is removed again: nothing written means no file.
        self._created = not self.dialect.exists()
        self.conn = self.dialect.connect(create=self.create, create_parents=self.create_parents)
        try:
            self.dialect.begin(self.conn, self.write)
            self._migrate()
        except BaseException as e:
            self.conn.close()
            if self._created:
                self.dialect.remove()
            if isinstance(e, self.dialect.errors):
                raise self.dialect.error(e)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        failure = exc if isinstance(exc, self.dialect.errors) else None
        try:
            if exc_type is None and not self._rollback_only:
                try:
                    if self.dirty:
                        self._execute('UPDATE voxplane_generation SET generation = generation + 1, changed_at = ? WHERE id = 1',
                                      (_now(),))
                        generation = self.generation()['generation']
                        for name in sorted(self._touched):
                            self._execute('UPDATE tenants SET generation = ? WHERE name = ?', (generation, name))
                    self.conn.execute('COMMIT')
                    if self.dirty:
                        self.committed_generation = generation
                    return False
                except self.dialect.errors as e:
                    failure = e
            try:
                self.conn.execute('ROLLBACK')
            except self.dialect.errors:
                pass  # closing the connection discards the transaction all the same
            if self._created:
                self.conn.close()
                self.dialect.remove()
        finally:
            self.conn.close()
        if failure is not None:
            raise self.dialect.error(failure)
        return False

    def rollback_at_exit(self):
        """Check mode: everything runs and is read back, then nothing is kept."""
        self._rollback_only = True

    # Schema ----------------------------------------------------------------

    def _execute(self, statement, params=()):
        return self.conn.execute(self.dialect.sql(statement), params)

    def schema_version(self):
        if not self.dialect.has_table(self.conn, 'voxplane_schema'):
            return 0
        row = self._execute('SELECT MAX(version) FROM voxplane_schema').fetchone()
        return row[0] or 0

    def _migrate(self):
        version = self.schema_version()
        if version > LATEST_VERSION:
            raise SchemaError(self.dialect.path, 'schema version %d is newer than this collection understands (%d); '
                              'upgrade the voxplane.pbx collection' % (version, LATEST_VERSION))
        if version == LATEST_VERSION:
            return
        if not self.write:
            raise SchemaError(self.dialect.path, 'schema version %d needs migrating to %d; run a module or the directory '
                              'role first' % (version, LATEST_VERSION))
        if version == 0:
            self._execute('CREATE TABLE voxplane_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)')
        for number, description, statements in MIGRATIONS:
            if number <= version:
                continue
            for statement in statements:
                self._execute(statement.format(serial=self.dialect.serial, blob=self.dialect.blob))
            self._execute('INSERT INTO voxplane_schema (version, description, applied_at) VALUES (?, ?, ?)',
                          (number, description, _now()))
        self.migrated_from = version

    def generation(self):
        row = self._execute('SELECT generation, changed_at FROM voxplane_generation WHERE id = 1').fetchone()
        return {'generation': row[0], 'changed_at': row[1]}

    def tenant_generations(self):
        """tenant name -> the directory generation that last changed anything of that tenant."""
        return dict(self._execute('SELECT name, generation FROM tenants'))

    # Reading ---------------------------------------------------------------

    def tenant_names(self):
        return [r[0] for r in self._execute('SELECT name FROM tenants ORDER BY name')]

    def _tenant_id(self, name):
        if name not in self._tenant_ids:
            row = self._execute('SELECT id FROM tenants WHERE name = ?', (name,)).fetchone()
            self._tenant_ids[name] = row[0] if row else None
        return self._tenant_ids[name]

    def load_tenant(self, name):
        """The tenant and all its objects, in canonical form."""
        row = self._execute('SELECT id, name, sip_domain, doc FROM tenants WHERE name = ?', (name,)).fetchone()
        if row is None:
            return TenantState(name)
        tenant_id = row[0]
        self._tenant_ids[name] = tenant_id
        tenant = dict(with_defaults(TENANT, json.loads(row[3])), name=row[1], sip_domain=row[2])
        children = {}
        for kind in CHILD_KINDS:
            table, key_col = TABLES[kind]
            objs = {}
            for rid, key, doc in self._execute('SELECT id, %s, doc FROM %s WHERE tenant_id = ?' % (key_col, table), (tenant_id,)):
                obj = with_defaults(kind, json.loads(doc))
                obj[KEY_FIELD[kind]] = key
                obj['tenant'] = name
                if kind == EXTENSION:
                    obj['_id'] = rid
                objs[key] = obj
            children[kind] = objs
        by_id = dict((ext.pop('_id'), ext) for ext in children[EXTENSION].values())
        for ext in by_id.values():
            ext['sip_accounts'] = []
        for ext_id, username, kind, ha1, require_tls in self._execute(
                'SELECT extension_id, username, kind, ha1, require_tls FROM sip_accounts WHERE tenant_id = ? '
                'ORDER BY extension_id, position', (tenant_id,)):
            account = {'username': username, 'kind': kind, 'ha1': ha1}
            if require_tls:
                account['require_tls'] = True
            by_id[ext_id]['sip_accounts'].append(account)
        return TenantState(name, tenant, children)

    def load_all(self):
        """Every tenant's state: what the router's snapshot is built from."""
        return dict((name, self.load_tenant(name)) for name in self.tenant_names())

    # Lookups across tenants (integrity.Lookups) ------------------------------

    def number_owners(self, e164s, tenant):
        owners = {}
        e164s = list(e164s)
        for i in range(0, len(e164s), 500):
            chunk = e164s[i:i + 500]
            query = ('SELECT c.e164, t.name FROM number_claims c JOIN tenants t ON t.id = c.tenant_id '
                     'WHERE t.name <> ? AND c.e164 IN (%s)' % ', '.join('?' * len(chunk)))
            owners.update(dict(self._execute(query, [tenant] + chunk).fetchall()))
        return owners

    def mac_owner(self, mac, tenant):
        row = self._execute('SELECT t.name FROM devices d JOIN tenants t ON t.id = d.tenant_id WHERE d.mac = ? AND t.name <> ?',
                            (mac, tenant)).fetchone()
        return row[0] if row else None

    def device_by_activation(self, digest):
        """(tenant name, MAC) of the device whose stored activation code has this SHA-256, or None."""
        row = self._execute("SELECT t.name, d.mac FROM devices d JOIN tenants t ON t.id = d.tenant_id "
                            "WHERE %s = ?" % self.dialect.json_text('d.doc', 'activation', 'hash'), (digest,)).fetchone()
        return tuple(row) if row else None

    def domain_owner(self, domain, tenant):
        row = self._execute('SELECT name FROM tenants WHERE sip_domain = ? AND name <> ?', (domain, tenant)).fetchone()
        return row[0] if row else None

    # Writing ---------------------------------------------------------------

    def apply(self, tenant_name, changes):
        """Write planned changes (reconcile.Change) in dependency order."""
        if not self.write:
            raise StorageError(self.dialect.path, 'cannot write in a read-only transaction')
        order = dict((kind, i) for i, kind in enumerate((TENANT,) + CHILD_KINDS))
        # Creations and updates parents first; deletions children first.
        upserts = sorted((c for c in changes if c.after is not None), key=lambda c: order[c.kind])
        deletes = sorted((c for c in changes if c.after is None), key=lambda c: -order[c.kind])
        if changes:
            self._touched.add(tenant_name)
        for change in deletes:
            self.dirty = True
            self._write(tenant_name, change)
        # Release the rows that may move between objects (a SIP username from
        # one extension to another, a DDI from one block to another) before
        # any object takes them.
        for change in upserts:
            if change.before is not None and change.kind == EXTENSION:
                self._execute('DELETE FROM sip_accounts WHERE extension_id = ?', (self._row_id(tenant_name, change),))
            if change.before is not None and change.kind == NUMBER and change.before.get('ddi_range') != change.after.get('ddi_range'):
                self._execute('DELETE FROM number_claims WHERE number_id = ?', (self._row_id(tenant_name, change),))
        for change in upserts:
            self.dirty = True
            self._write(tenant_name, change)

    def _write(self, tenant_name, change):
        if change.kind == TENANT:
            self._write_tenant(change)
        else:
            self._write_child(tenant_name, change)

    def _row_id(self, tenant_name, change):
        table, key_col = TABLES[change.kind]
        return self._execute('SELECT id FROM %s WHERE tenant_id = ? AND %s = ?' % (table, key_col),
                             (self._tenant_id(tenant_name), change.key)).fetchone()[0]

    def _write_tenant(self, change):
        if change.after is None:
            self._execute('DELETE FROM tenants WHERE name = ?', (change.key,))
            self._tenant_ids.pop(change.key, None)
        elif change.before is None:
            self._execute('INSERT INTO tenants (name, sip_domain, doc) VALUES (?, ?, ?)',
                          (change.key, change.after['sip_domain'], _doc(TENANT, change.after)))
            self._tenant_ids.pop(change.key, None)
        else:
            self._execute('UPDATE tenants SET sip_domain = ?, doc = ? WHERE name = ?',
                          (change.after['sip_domain'], _doc(TENANT, change.after), change.key))

    def _write_child(self, tenant_name, change):
        table, key_col = TABLES[change.kind]
        tenant_id = self._tenant_id(tenant_name)
        if tenant_id is None:
            raise StorageError(self.dialect.path, 'tenant %s does not exist' % tenant_name)
        if change.after is None:
            if change.kind == EXTENSION:
                self._execute('DELETE FROM sip_accounts WHERE extension_id IN (SELECT id FROM extensions WHERE tenant_id = ? AND internal_number = ?)',
                              (tenant_id, change.key))
            if change.kind == NUMBER:
                self._execute('DELETE FROM number_claims WHERE number_id IN (SELECT id FROM numbers WHERE tenant_id = ? AND number = ?)',
                              (tenant_id, change.key))
            self._execute('DELETE FROM %s WHERE tenant_id = ? AND %s = ?' % (table, key_col), (tenant_id, change.key))
            return
        doc = _doc(change.kind, change.after)
        if change.before is None:
            cursor = self._execute('INSERT INTO %s (tenant_id, %s, doc) VALUES (?, ?, ?)' % (table, key_col),
                                   (tenant_id, change.key, doc))
            row_id = cursor.lastrowid
        else:
            self._execute('UPDATE %s SET doc = ? WHERE tenant_id = ? AND %s = ?' % (table, key_col), (doc, tenant_id, change.key))
            row_id = self._row_id(tenant_name, change)
        if change.kind == EXTENSION:
            for position, acc in enumerate(change.after['sip_accounts']):
                self._execute('INSERT INTO sip_accounts (tenant_id, extension_id, position, username, kind, ha1, require_tls) '
                              'VALUES (?, ?, ?, ?, ?, ?, ?)',
                              (tenant_id, row_id, position, acc['username'], acc['kind'], acc['ha1'],
                               1 if acc.get('require_tls') else 0))
        elif change.kind == NUMBER:
            before = change.before or {}
            if before.get('ddi_range') != change.after.get('ddi_range') or change.before is None:
                members = [change.key] + (block_numbers(change.key, change.after['ddi_range']) if change.after['ddi_range'] else [])
                for e164 in members:
                    self._execute('INSERT INTO number_claims (e164, number_id, tenant_id) VALUES (?, ?, ?)', (e164, row_id, tenant_id))

    # The media service's data (docs/media.md) ------------------------------
    # Written by the media service, not through reconcile; every change to a mailbox moves
    # voicemail_serial and stamps the mailbox with it, so that a reader (the message-waiting
    # NOTIFYs) asks only for the mailboxes changed since the serial it saw last.

    def _extension_id(self, tenant, extension):
        row = self._execute('SELECT e.id FROM extensions e JOIN tenants t ON t.id = e.tenant_id '
                            'WHERE t.name = ? AND e.internal_number = ?', (tenant, extension)).fetchone()
        if row is None:
            raise StorageError(self.dialect.path, 'extension %s of tenant %s does not exist' % (extension, tenant))
        return row[0]

    def tenant_of_domain(self, domain):
        """(tenant name, tenant generation) of the tenant whose SIP domain this is, or None: what the
        media service asks per call, to reload a tenant only when it changed."""
        row = self._execute('SELECT name, generation FROM tenants WHERE sip_domain = ?', (domain,)).fetchone()
        return tuple(row) if row else None

    def announcement(self, tenant, name):
        """The document of the tenant's announcement of that name, or None."""
        row = self._execute('SELECT a.doc FROM announcements a JOIN tenants t ON t.id = a.tenant_id '
                            'WHERE t.name = ? AND a.name = ?', (tenant, name)).fetchone()
        return json.loads(row[0]) if row else None

    def voicemail_serial(self):
        return self._execute('SELECT serial FROM voicemail_serial WHERE id = 1').fetchone()[0]

    def _mailbox_changed(self, tenant, extension):
        """Move voicemail_serial and stamp the mailbox with it (the row is made when missing)."""
        if not self.write:
            raise StorageError(self.dialect.path, 'cannot write in a read-only transaction')
        self._execute('UPDATE voicemail_serial SET serial = serial + 1 WHERE id = 1')
        serial = self.voicemail_serial()
        ext_id = self._extension_id(tenant, extension)
        if self._execute('UPDATE mailboxes SET serial = ? WHERE extension_id = ?', (serial, ext_id)).rowcount == 0:
            self._execute('INSERT INTO mailboxes (tenant_id, extension_id, serial, doc) VALUES (?, ?, ?, ?)',
                          (self._tenant_id(tenant), ext_id, serial, '{}'))
        return serial

    def mailbox_state(self, tenant, extension):
        """The mailbox's own state ({} when nothing was kept yet): recorded greetings under
        MAILBOX_GREETINGS ({kind: audio hash}), PIN failures (ISO times)."""
        row = self._execute('SELECT m.doc FROM mailboxes m WHERE m.extension_id = ?',
                            (self._extension_id(tenant, extension),)).fetchone()
        return json.loads(row[0]) if row else {}

    def set_mailbox_state(self, tenant, extension, state):
        self._mailbox_changed(tenant, extension)
        self._execute('UPDATE mailboxes SET doc = ? WHERE extension_id = ?',
                      (json.dumps(state, sort_keys=True), self._extension_id(tenant, extension)))

    def add_voicemail(self, tenant, extension, received_at, duration_ms, file, doc, folder='new'):
        """Store a message's metadata (the audio file is the media service's); its id."""
        self._mailbox_changed(tenant, extension)
        cursor = self._execute('INSERT INTO voicemail_messages (tenant_id, extension_id, folder, received_at, '
                               'duration_ms, file, doc) VALUES (?, ?, ?, ?, ?, ?, ?)',
                               (self._tenant_id(tenant), self._extension_id(tenant, extension), folder, received_at,
                                int(duration_ms), file, json.dumps(doc, sort_keys=True)))
        return cursor.lastrowid

    _MESSAGE_COLUMNS = ('SELECT v.id, t.name, e.internal_number, v.folder, v.received_at, v.duration_ms, v.file, v.doc '
                        'FROM voicemail_messages v JOIN tenants t ON t.id = v.tenant_id '
                        'JOIN extensions e ON e.id = v.extension_id ')

    @staticmethod
    def _message(row):
        message = json.loads(row[7])
        message.update(id=row[0], tenant=row[1], mailbox=row[2], folder=row[3], received_at=row[4],
                       duration_ms=row[5], file=row[6])
        return message

    def voicemail_messages(self, tenant, extension=None, folder=None):
        """The messages of a tenant (of one mailbox, of one folder), oldest first."""
        query, params = self._MESSAGE_COLUMNS + 'WHERE t.name = ?', [tenant]
        if extension is not None:
            query, params = query + ' AND e.internal_number = ?', params + [extension]
        if folder is not None:
            query, params = query + ' AND v.folder = ?', params + [folder]
        return [self._message(row) for row in self._execute(query + ' ORDER BY v.received_at, v.id', params)]

    def voicemail_message(self, tenant, message_id):
        row = self._execute(self._MESSAGE_COLUMNS + 'WHERE t.name = ? AND v.id = ?', (tenant, message_id)).fetchone()
        return self._message(row) if row else None

    def move_voicemail(self, tenant, message_id, folder):
        message = self.voicemail_message(tenant, message_id)
        if message is None:
            raise StorageError(self.dialect.path, 'message %s of tenant %s does not exist' % (message_id, tenant))
        if message['folder'] != folder:
            self._mailbox_changed(tenant, message['mailbox'])
            self._execute('UPDATE voicemail_messages SET folder = ? WHERE id = ?', (folder, message_id))

    def update_voicemail(self, tenant, message_id, doc):
        """Replace a message's metadata document (its mail delivery state); counts do not change."""
        self._execute('UPDATE voicemail_messages SET doc = ? WHERE id = ? AND tenant_id = ?',
                      (json.dumps(doc, sort_keys=True), message_id, self._tenant_id(tenant)))

    def delete_voicemail(self, tenant, message_id):
        """Remove a message's row; the message (with its file, for the caller to remove), or None."""
        message = self.voicemail_message(tenant, message_id)
        if message is not None:
            self._mailbox_changed(tenant, message['mailbox'])
            self._execute('DELETE FROM voicemail_messages WHERE id = ?', (message_id,))
        return message

    def voicemail_to_mail(self):
        """Every message (of any tenant) whose e-mail is still to be sent (doc email.state
        'pending'), oldest first."""
        return [self._message(row) for row in self._execute(
            self._MESSAGE_COLUMNS + "WHERE %s = 'pending' ORDER BY v.received_at, v.id" % self.dialect.json_text('v.doc', 'email', 'state'))]

    def mailbox_counts(self, tenant, extension=None):
        """{extension: {'new': n, 'saved': n}} of a tenant's mailboxes that hold messages."""
        query = ('SELECT e.internal_number, v.folder, COUNT(*) FROM voicemail_messages v '
                 'JOIN extensions e ON e.id = v.extension_id JOIN tenants t ON t.id = v.tenant_id WHERE t.name = ?')
        params = [tenant]
        if extension is not None:
            query, params = query + ' AND e.internal_number = ?', params + [extension]
        counts = {}
        for number, folder, count in self._execute(query + ' GROUP BY e.internal_number, v.folder', params):
            counts.setdefault(number, {'new': 0, 'saved': 0})[folder] = count
        return counts

    def mailboxes_changed(self, since):
        """(serial now, {(tenant, extension): {'new': n, 'saved': n}}) of every mailbox changed
        after voicemail serial ``since`` (None: every mailbox that ever changed)."""
        serial = self.voicemail_serial()
        changed = {}
        rows = self._execute('SELECT t.name, e.internal_number, m.extension_id FROM mailboxes m '
                             'JOIN tenants t ON t.id = m.tenant_id JOIN extensions e ON e.id = m.extension_id '
                             'WHERE m.serial > ?', (-1 if since is None else since,)).fetchall()
        for tenant, number, ext_id in rows:
            counts = {'new': 0, 'saved': 0}
            for folder, count in self._execute('SELECT folder, COUNT(*) FROM voicemail_messages WHERE extension_id = ? '
                                               'GROUP BY folder', (ext_id,)):
                counts[folder] = count
            changed[(tenant, number)] = counts
        return serial, changed

    def put_audio(self, tenant, data, duration_ms):
        """Keep audio (a WAV file's bytes) for the tenant; its SHA-256, by which it is referred to."""
        digest = hashlib.sha256(data).hexdigest()
        tenant_id = self._tenant_id(tenant)
        if self._execute('SELECT 1 FROM audio WHERE tenant_id = ? AND hash = ?', (tenant_id, digest)).fetchone() is None:
            self._execute('INSERT INTO audio (tenant_id, hash, duration_ms, data) VALUES (?, ?, ?, ?)',
                          (tenant_id, digest, int(duration_ms), data))
        return digest

    def audio(self, tenant, digest):
        """The bytes of the tenant's audio with that SHA-256, or None."""
        row = self._execute('SELECT a.data FROM audio a JOIN tenants t ON t.id = a.tenant_id WHERE t.name = ? AND a.hash = ?',
                            (tenant, digest)).fetchone()
        return bytes(row[0]) if row else None

    def has_audio(self, tenant, digest):
        return self._execute('SELECT 1 FROM audio a JOIN tenants t ON t.id = a.tenant_id WHERE t.name = ? AND a.hash = ?',
                             (tenant, digest)).fetchone() is not None

    def audio_duration(self, tenant, digest):
        row = self._execute('SELECT a.duration_ms FROM audio a JOIN tenants t ON t.id = a.tenant_id WHERE t.name = ? '
                            'AND a.hash = ?', (tenant, digest)).fetchone()
        return row[0] if row else None

    def audio_hashes(self, tenant):
        return set(r[0] for r in self._execute('SELECT a.hash FROM audio a JOIN tenants t ON t.id = a.tenant_id '
                                               'WHERE t.name = ?', (tenant,)))

    def remove_audio(self, tenant, digests):
        tenant_id = self._tenant_id(tenant)
        for digest in digests:
            self._execute('DELETE FROM audio WHERE tenant_id = ? AND hash = ?', (tenant_id, digest))

    def audio_in_use(self, tenant):
        """The SHA-256s of the tenant's audio that something refers to: an announcement, or a mailbox's
        recorded greeting (its state's MAILBOX_GREETINGS)."""
        used = set(r[0] for r in self._execute(
            "SELECT %s FROM announcements a JOIN tenants t ON t.id = a.tenant_id "
            "WHERE t.name = ?" % self.dialect.json_text('a.doc', 'audio'), (tenant,)) if r[0])
        for (doc,) in self._execute('SELECT m.doc FROM mailboxes m JOIN tenants t ON t.id = m.tenant_id WHERE t.name = ?',
                                    (tenant,)):
            greetings = json.loads(doc).get(MAILBOX_GREETINGS) or {}
            used.update(digest for digest in greetings.values() if digest)
        return used

    def prune_audio(self, tenant, digests):
        """Remove those of ``digests`` that nothing refers to any more (audio_in_use); the removed ones."""
        unused = set(digests) - self.audio_in_use(tenant) if digests else set()
        self.remove_audio(tenant, sorted(unused))
        return unused
