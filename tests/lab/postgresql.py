# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real PostgreSQL server for the tests: Debian's PostgreSQL 15 binaries, a cluster made with
initdb in a temporary folder, listening on a random 127.0.0.x and a free port (and a socket in
that folder), password authentication over TCP, stopped and removed at the end.

    with postgresql_lab() as server:
        location = server.create_database()     # postgresql://postgres:...@127.0.0.x:port/vx_1
        ...
        server.stop(); server.start()            # an outage, same cluster

``postgresql_server`` is the session fixture of the suites (conftest: ``from lab.postgresql import
postgresql_server``); ``missing_prerequisites()`` says what is not installed. The server runs as
the ``postgres`` user when the tests run as root (initdb refuses root), with fsync off: a test
cluster, never a place for data. ``VOXPLANE_PG_KEEP=1`` keeps the folder (the server log) for a
post-mortem.
"""

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading

from lab.net import free_port, pick_loopback_address, wait_for

VERSION = '15'
BIN = '/usr/lib/postgresql/%s/bin' % VERSION
SUPERUSER = 'postgres'


def missing_prerequisites():
    """Why a PostgreSQL server cannot be started here, or None."""
    if not os.access(os.path.join(BIN, 'initdb'), os.X_OK):
        return 'PostgreSQL %s server binaries are not installed (Debian: postgresql-%s; make deps)' % (VERSION, VERSION)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return 'no user %s to run PostgreSQL as (Debian: postgresql-%s creates it)' % (SUPERUSER, VERSION)
    try:
        import psycopg  # noqa: F401  # pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        return 'psycopg is not installed in the test environment (requirements/test.txt; make venv)'
    return None


class PostgresqlServer(object):
    """One cluster in ``root``: ``start()``, ``stop()``, locations of databases on it, SQL as superuser."""

    def __init__(self, root, address=None, port=None):
        self.root = root
        self.data = os.path.join(root, 'data')
        self.socket_dir = os.path.join(root, 'run')
        self.log = os.path.join(root, 'postgresql.log')
        self.address = address or pick_loopback_address()
        self.port = port or free_port(self.address, udp=False)
        self.password = secrets.token_hex(12)
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._run_as = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SUPERUSER)
            self._run_as = (entry.pw_uid, entry.pw_gid)

    def _command(self, *args, **kwargs):
        def demote():
            if self._run_as:
                os.setgid(self._run_as[1])
                os.setuid(self._run_as[0])
        return subprocess.run(list(args), preexec_fn=demote, cwd=self.root, capture_output=True, text=True,
                              timeout=kwargs.get('timeout', 120), check=kwargs.get('check', True))

    def initdb(self):
        os.makedirs(self.socket_dir, exist_ok=True)
        if self._run_as:
            for path in (self.root, self.socket_dir):
                os.chown(path, *self._run_as)
        pwfile = os.path.join(self.root, 'pwfile')
        with open(pwfile, 'w') as handle:
            handle.write(self.password + '\n')
        if self._run_as:
            os.chown(pwfile, *self._run_as)
        self._command(os.path.join(BIN, 'initdb'), '-D', self.data, '-U', SUPERUSER, '--pwfile', pwfile,
                      '--auth-local', 'trust', '--auth-host', 'scram-sha-256', '-E', 'UTF8', '--locale', 'C.UTF-8')
        os.remove(pwfile)
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as conf:
            conf.write('\n# voxplane test lab\n'
                       "listen_addresses = '%s'\nport = %d\nunix_socket_directories = '%s'\n"
                       'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
                       'max_connections = 200\nshared_buffers = 32MB\n' % (self.address, self.port, self.socket_dir))

    def start(self):
        self._command(os.path.join(BIN, 'pg_ctl'), '-D', self.data, '-l', self.log, '-w', '-t', '60', 'start')

    def stop(self, mode='fast'):
        self._command(os.path.join(BIN, 'pg_ctl'), '-D', self.data, '-m', mode, '-w', '-t', '60', 'stop', check=False)

    def running(self):
        return self._command(os.path.join(BIN, 'pg_ctl'), '-D', self.data, 'status', check=False).returncode == 0

    # Databases and SQL -------------------------------------------------------------------------------

    def location(self, dbname='postgres', user=SUPERUSER, password=None, **params):
        """The URL of a database (the superuser's password in it unless another is given)."""
        secret = self.password if password is None and user == SUPERUSER else password
        auth = '%s:%s' % (user, secret) if secret else user
        query = '&'.join('%s=%s' % item for item in sorted(params.items()))
        return 'postgresql://%s@%s:%d/%s%s' % (auth, self.address, self.port, dbname, '?' + query if query else '')

    def connect(self, dbname='postgres'):
        import psycopg  # pylint: disable=import-outside-toplevel
        return psycopg.connect(self.location(dbname), autocommit=True)

    def sql(self, statement, params=(), dbname='postgres'):
        """Run one statement as the superuser (autocommit); its rows, or None without a result."""
        with self.connect(dbname) as conn:
            cursor = conn.execute(statement, params or None)
            return cursor.fetchall() if cursor.description is not None else None

    def create_database(self, name=None, owner=SUPERUSER):
        """A new empty database; its location (as the superuser)."""
        with self._lock:
            name = name or 'vx_%d' % next(self._names)
        self.sql('CREATE DATABASE "%s" OWNER "%s" TEMPLATE template0' % (name, owner))
        return self.location(name)

    def drop_database(self, name):
        self.sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)

    def create_schema(self, name=None, dbname='voxplane_tests'):
        """A new empty schema in database ``dbname`` (made on first use); the location of a directory
        in it (``options=-csearch_path=...``). Ten times cheaper than a database of its own, which
        is what the unit suites take one of per test."""
        with self._lock:
            name = name or 'vx_%d' % next(self._names)
            if not self.sql('SELECT 1 FROM pg_database WHERE datname = %s', (dbname,)):
                self.sql('CREATE DATABASE "%s" TEMPLATE template0' % dbname)
        self.sql('CREATE SCHEMA "%s"' % name, dbname=dbname)
        return self.location(dbname, options='-csearch_path%%3D%s' % name)

    def drop_schema(self, location):
        """Drop the schema of a location create_schema() made, with everything in it."""
        dbname, _sep, query = location.rsplit('/', 1)[1].partition('?')
        self.sql('DROP SCHEMA IF EXISTS "%s" CASCADE' % query.rsplit('%3D', 1)[1], dbname=dbname)


@contextlib.contextmanager
def postgresql_lab(prefix='voxplane-pg-', address=None, port=None):
    """A PostgreSQL server for the length of the block (see the module's doc)."""
    root = tempfile.mkdtemp(prefix=prefix)
    os.chmod(root, 0o755)
    server = PostgresqlServer(root, address, port)
    try:
        server.initdb()
        server.start()
        wait_for(server.running, 30)
        yield server
    finally:
        server.stop('immediate')
        if os.environ.get('VOXPLANE_PG_KEEP') == '1':
            print('postgresql lab kept in %s' % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def deploy_postgresql(prefix='vxtest', address=None, port=None, **variables):
    """PostgreSQL deployed by the real postgresql role (tests/lab/playbooks/postgresql.yml) into a
    Debian cluster of its own (``<prefix><random>``, a random 127.0.0.x and free port), dropped at
    the end; yields (the run of the role, the role variables). Role variables over the defaults."""
    from lab import PLAYBOOKS  # pylint: disable=import-outside-toplevel
    from lab.playbook import run_playbook  # pylint: disable=import-outside-toplevel
    address = address or pick_loopback_address()
    settings = dict(postgresql_cluster_name='%s%s' % (prefix, secrets.token_hex(3)), postgresql_port=port or free_port(address, udp=False),
                    postgresql_listen_addresses=[address], postgresql_clients=['127.0.0.0/8'],
                    postgresql_owner_password=secrets.token_hex(12), postgresql_kamailio_password=secrets.token_hex(12),
                    postgresql_media_password=secrets.token_hex(12),
                    postgresql_install_packages=False, postgresql_directory_sslmode='require')
    settings.update(variables)
    try:
        run = run_playbook(os.path.join(PLAYBOOKS, 'postgresql.yml'), settings, interpreter=False)
        yield run, settings
    finally:
        subprocess.run(['pg_dropcluster', '--stop', VERSION, settings['postgresql_cluster_name']],
                       capture_output=True, check=False, timeout=120)


def directory_location(settings, user='owner', **params):
    """The location of the directory a deploy_postgresql() made, as its owner, as Kamailio's user or
    as the media services' user."""
    name, password, default = {'owner': ('postgresql_owner', 'postgresql_owner_password', 'voxplane'),
                               'kamailio': ('postgresql_kamailio_user', 'postgresql_kamailio_password',
                                            'voxplane_kamailio'),
                               'media': ('postgresql_media_user', 'postgresql_media_password', 'voxplane_media')}[user]
    query = '&'.join('%s=%s' % item for item in sorted(dict({'sslmode': 'require'}, **params).items()))
    return 'postgresql://%s:%s@%s:%d/%s?%s' % (
        settings.get(name, default), settings[password], settings['postgresql_listen_addresses'][0],
        settings['postgresql_port'], settings.get('postgresql_database', 'voxplane'), query)


try:
    import pytest
except ImportError:  # pragma: no cover - the demo and the benchmarks import the lab without pytest
    pytest = None
else:
    @pytest.fixture(scope='session')
    def postgresql_server():
        """One PostgreSQL server for the test session (per xdist worker); skipped where it cannot run."""
        missing = missing_prerequisites()
        if missing and os.environ.get('CI'):
            pytest.fail(missing)  # make deps and make venv install everything: CI runs it all
        if missing:
            pytest.skip(missing)
        with postgresql_lab() as server:
            yield server
