# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directory on PostgreSQL: the second dialect of store.py.

A location is a libpq connection string, in either of its forms: a URL
(``postgresql://voxplane@db1:5432/voxplane?sslmode=verify-full``) or keyword/value
pairs (``host=db1 port=5432 dbname=voxplane user=voxplane sslmode=require``). A
password comes from the location, from ``password`` (the modules' option
``directory_password``, from a vault) or from libpq itself (``PGPASSWORD``,
``~/.pgpass`` or a ``passfile=`` of the location); every other libpq option and
variable (``sslmode``, ``sslrootcert``, ``PGHOST``, ...) works as libpq documents it.

The driver is whichever is installed: psycopg 3 (``psycopg``, preferred) or psycopg2
(Debian's ``python3-psycopg2`` for Kamailio's embedded Python). The connection is
wrapped so that the store's code, written for sqlite3 (``conn.execute(sql, params)``,
cursors with ``fetchone``/``rowcount``/``lastrowid``), runs unchanged.

Transactions keep SQLite's guarantees:

- A write transaction runs at READ COMMITTED and first takes a transaction-level
  advisory lock (one per schema of the database): writers queue, as they do on SQLite's
  ``BEGIN IMMEDIATE``, and each statement of the writer that got the lock sees every
  change committed before it. So the integrity rules that ``integrity.py`` checks in
  Python (licence counts, references between objects, ...) hold across concurrent
  writers, not only those a database constraint enforces. The lock is waited for at most
  ``lock_timeout_ms``.
- A read transaction is REPEATABLE READ READ ONLY: one consistent picture of the whole
  directory (the router's snapshot), however long the load takes, without blocking or
  being blocked by a writer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.voxplane.pbx.plugins.module_utils.errors import EnvironmentProblem, StorageError, this_python

try:
    import psycopg as _psycopg3
except ImportError as e:  # pragma: no cover - depends on the host
    _psycopg3 = None
    _PSYCOPG3_ERROR = e
else:
    _PSYCOPG3_ERROR = None

try:
    import psycopg2 as _psycopg2
    import psycopg2.errorcodes  # noqa: F401  # pylint: disable=unused-import
except ImportError as e:  # pragma: no cover - depends on the host
    _psycopg2 = None
    _PSYCOPG2_ERROR = e
else:
    _PSYCOPG2_ERROR = None

# libpq's connection keywords: a location that starts with one of them followed by '=' is a
# keyword/value connection string, not a file name.
_KEYWORDS = ('host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'passfile', 'service', 'sslmode',
             'connect_timeout', 'options', 'application_name', 'target_session_attrs')
_KEYWORD_FORM = re.compile(r'^\s*(%s)\s*=' % '|'.join(_KEYWORDS))
_PASSWORD_PAIR = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")

# Every voxplane writer of one schema takes this lock first (pg_advisory_xact_lock on a hash of
# the schema's name): two directories in two schemas of one database do not queue on each other.
_WRITER_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('voxplane directory ' || current_schema(), 0))"

# A connection that cannot be made in this many seconds fails (libpq's smallest useful value is 2).
CONNECT_TIMEOUT = 5
# The router's generation poll: a statement that takes longer than this fails, so that a worker
# never waits long on a server that stopped answering.
POLL_STATEMENT_TIMEOUT_MS = 1000


def is_location(location):
    """Whether a directory location names a PostgreSQL database (a URL or libpq keyword/value pairs)."""
    return location.startswith(('postgresql://', 'postgres://')) or bool(_KEYWORD_FORM.match(location))


def shown(location):
    """The location as a message may show it: a password in it is masked."""
    if location.startswith(('postgresql://', 'postgres://')):
        scheme, sep, rest = location.partition('://')
        authority, slash, tail = rest.partition('/')
        userinfo, at, hosts = authority.rpartition('@')
        if at and ':' in userinfo:
            authority = '%s:********@%s' % (userinfo.split(':', 1)[0], hosts)
        tail = re.sub(r'([?&]password=)[^&]*', r'\1********', tail)
        return '%s%s%s%s%s' % (scheme, sep, authority, slash, tail)
    return _PASSWORD_PAIR.sub(r'\1********', location)


def driver():
    """The installed driver module (psycopg 3 first, psycopg2 else); an EnvironmentProblem naming
    the packages when neither is there."""
    if _psycopg3 is not None:
        return _psycopg3
    if _psycopg2 is not None:
        return _psycopg2
    raise EnvironmentProblem(
        'a PostgreSQL driver for Python (psycopg or psycopg2)',
        '%s cannot import psycopg (%s) nor psycopg2 (%s), and the directory is a PostgreSQL database'
        % (this_python(), _PSYCOPG3_ERROR, _PSYCOPG2_ERROR),
        'Install one for that Python: Debian/Ubuntu python3-psycopg2 (or python3-psycopg), RHEL/Fedora '
        'python3-psycopg2, or pip install psycopg[binary]; or point ansible_python_interpreter at a Python '
        'that has one.')


def _translate(statement):
    """A statement of the store (sqlite3's ``?`` placeholders) in the driver's paramstyle
    (``%s``), a literal ``%`` doubled; nothing inside a quoted literal or name changes."""
    out = []
    for i, part in enumerate(re.split(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")", statement)):
        if i % 2:
            out.append(part.replace('%', '%%'))
        else:
            out.append(part.replace('%', '%%').replace('?', '%s'))
    return ''.join(out)


class _Cursor(object):
    """A driver cursor as the store uses sqlite3's: iteration, fetchone, fetchall, rowcount and
    lastrowid (the id the last INSERT into a table with a serial key took: lastval())."""

    __slots__ = ('_cursor', '_conn')

    def __init__(self, cursor, conn):
        self._cursor = cursor
        self._conn = conn

    def __iter__(self):
        return iter(self._cursor)

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()

    @property
    def rowcount(self):
        return self._cursor.rowcount

    @property
    def lastrowid(self):
        return self._conn.execute('SELECT lastval()').fetchone()[0]


class Connection(object):
    """A driver connection in autocommit mode (the dialect says BEGIN and COMMIT itself) with
    sqlite3's ``execute(sql, params)``; statements arrive already translated (dialect.sql)."""

    def __init__(self, raw):
        self.raw = raw

    def execute(self, statement, params=()):
        cursor = self.raw.cursor()
        cursor.execute(statement, tuple(params))
        return _Cursor(cursor, self)

    def close(self):
        try:
            self.raw.close()
        except Exception:  # pylint: disable=broad-except
            pass  # a connection the server already dropped


class PostgresqlDialect(object):
    """The directory in a PostgreSQL database (a schema of it: the first of the search_path)."""

    name = 'postgresql'
    serial = 'BIGSERIAL PRIMARY KEY'
    blob = 'BYTEA'

    def __init__(self, location, password=None, lock_timeout_ms=10000, connect_timeout=CONNECT_TIMEOUT):
        self.location = location
        # What messages show (StorageError's location): the location without its password.
        self.path = shown(location)
        self.password = password or None
        self.lock_timeout_ms = lock_timeout_ms
        self.connect_timeout = connect_timeout
        self._sql = {}

    @staticmethod
    def require_driver():
        driver()

    @property
    def errors(self):
        """The driver's exceptions, which error() turns into a StorageError."""
        return (driver().Error,)

    # The database is made by an administrator (the voxplane.pbx.postgresql role), never by a module:
    # it "exists" for the store, and a connection says why it cannot be used.
    def exists(self):
        return True

    def check_location(self, create=True, create_parents=False):
        return []

    def remove(self):
        pass

    def _connect(self, **options):
        module = driver()
        kwargs = dict(connect_timeout=self.connect_timeout, application_name='voxplane', password=self.password)
        kwargs.update(options)
        try:
            if module is _psycopg3:
                raw = module.connect(self.location, autocommit=True, **kwargs)
            else:
                raw = module.connect(self.location, **kwargs)
                raw.autocommit = True
        except module.Error as e:
            raise self.error(e)
        return Connection(raw)

    def connect(self, create=True, create_parents=False):
        conn = self._connect()
        try:
            self._refuse_foreign(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _refuse_foreign(self, conn):
        """A schema with tables but no voxplane_schema is another application's: refused before
        anything is written."""
        try:
            tables = [r[0] for r in conn.execute(
                'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() '
                'ORDER BY table_name')]
        except self.errors as e:
            raise self.error(e)
        if tables and 'voxplane_schema' not in tables:
            shown_tables = ', '.join(tables[:10]) + (', and %d more' % (len(tables) - 10) if len(tables) > 10 else '')
            raise StorageError(self.path, 'is a PostgreSQL database of another application (tables: %s), '
                                          'not a voxplane directory' % shown_tables)

    def begin(self, conn, write):
        if write:
            conn.execute('BEGIN ISOLATION LEVEL READ COMMITTED')
            conn.execute("SET LOCAL lock_timeout = '%dms'" % int(self.lock_timeout_ms))
            conn.execute(_WRITER_LOCK)
        else:
            conn.execute('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')

    def sql(self, statement):
        translated = self._sql.get(statement)
        if translated is None:
            translated = _translate(statement)
            if len(self._sql) < 2048:
                self._sql[statement] = translated
        return translated

    def has_table(self, conn, table):
        return conn.execute(
            'SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = %s',
            (table,)).fetchone() is not None

    @staticmethod
    def json_text(column, *path):
        """SQL for the text at ``path`` of the JSON document in ``column``."""
        return "(%s::jsonb #>> '{%s}')" % (column, ','.join(path))

    # The router's generation poll ------------------------------------------------------------------

    def connect_poll(self):
        """A long-lived connection for generation polls: no transaction, a short statement timeout."""
        conn = self._connect()
        try:
            conn.execute('SET statement_timeout = %d' % POLL_STATEMENT_TIMEOUT_MS)
        except self.errors as e:
            conn.close()
            raise self.error(e)
        return conn

    def poll_generation(self, conn):
        try:
            return conn.execute('SELECT generation FROM voxplane_generation WHERE id = 1').fetchone()[0]
        except self.errors as e:
            if _sqlstate(e) == '42P01':   # undefined_table: not a voxplane directory (yet)
                return None
            raise self.error(e)

    def poll_voicemail_serial(self, conn):
        try:
            return conn.execute('SELECT serial FROM voicemail_serial WHERE id = 1').fetchone()[0]
        except self.errors as e:
            if _sqlstate(e) == '42P01':   # a schema before voicemail (migration 5)
                return None
            raise self.error(e)

    # Errors ----------------------------------------------------------------------------------------

    def error(self, exc):
        """The StorageError for a driver error: the location (without password) and why."""
        if isinstance(exc, StorageError):
            return exc
        state = _sqlstate(exc) or ''
        text = _first_line(exc)
        if not state:
            # libpq's own refusals at connection time carry no SQLSTATE: the server's FATAL text does.
            fatal = _FATAL.search(text)
            if fatal:
                text = fatal.group(1)
                state = next((code for code, pattern in _CONNECT_STATES if pattern in text), '')
            elif 'no password supplied' in text:
                return StorageError(self.path, 'the server asks for a password and none was given (the modules\' '
                                               'directory_password, PGPASSWORD or a .pgpass file)')
        if state in ('28P01', '28000'):
            return StorageError(self.path, 'the server refused the login (%s)' % text)
        if state == '3D000':
            return StorageError(self.path, 'the database does not exist (%s); create it first (the voxplane.pbx.postgresql '
                                           'role does)' % text)
        if state == '42501':
            return StorageError(self.path, 'the database refused access (%s)' % text)
        if state == '55P03':
            return StorageError(self.path, 'locked by another writer; gave up after %g s (%s)'
                                % (self.lock_timeout_ms / 1000.0, text))
        if state.startswith('23'):
            return StorageError(self.path, 'the database refused the change (%s)' % text)
        if state in ('40001', '40P01'):
            return StorageError(self.path, 'a concurrent change conflicted (%s); try again' % text)
        if state == '57014':
            return StorageError(self.path, 'the server did not answer in time (%s)' % text)
        if state.startswith(('08', '57P')) or not state:
            return StorageError(self.path, 'cannot reach the database server (%s)' % text)
        return StorageError(self.path, 'database error (%s)' % text)


# What a refused connection says (``... port 5432 failed: FATAL:  database "x" does not exist``).
_FATAL = re.compile(r'FATAL:\s+(.*)$')
_CONNECT_STATES = (('28P01', 'password authentication failed'), ('28000', 'no pg_hba.conf entry'),
                   ('3D000', 'does not exist'), ('57P03', 'the database system is'))


def _sqlstate(exc):
    return getattr(exc, 'sqlstate', None) or getattr(exc, 'pgcode', None)


def _first_line(exc):
    """The server's message and its detail (``duplicate key value violates unique constraint
    "tenants_name_key": Key (name)=(acme) already exists.``), or the driver's message on one line
    (libpq's connection errors span several)."""
    diag = getattr(exc, 'diag', None)
    primary = getattr(diag, 'message_primary', None)
    if primary:
        detail = getattr(diag, 'message_detail', None)
        return '%s: %s' % (primary, detail) if detail else primary
    text = ' '.join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    if text.startswith('connection failed: '):
        text = text[len('connection failed: '):]
    return text or type(exc).__name__


def driver_name():
    """psycopg 3 or psycopg2, as installed (for messages and tests)."""
    module = driver()
    return '%s %s' % (module.__name__, getattr(module, '__version__', '?').split(' ')[0])
