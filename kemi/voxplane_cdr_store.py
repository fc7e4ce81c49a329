# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The table Kamailio's acc module writes the call detail records into (module_utils/cdr.py), and its
retention.

usage: voxplane_cdr_store.py LOCATION [--owner USER --group GROUP] [--retention-days N]

LOCATION is a SQLite file (created in WAL mode, owned by USER:GROUP, so that Kamailio's workers write
it) or a PostgreSQL location (postgresql://...; its password from PGPASSWORD or a passfile). Creates
the table voxplane_cdr and its indexes when they are missing, and with --retention-days deletes the
records of calls that started more than N days ago. Prints "unchanged" or what it did. The role runs
it on every deployment; the router's rtimer runs ``purge`` every hour (kamailio_cdr_retention_days).
"""

import argparse
import grp
import os
import pwd
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from ansible_collections.voxplane.pbx.plugins.module_utils import cdr  # noqa: E402  # pylint: disable=wrong-import-position

BUSY_TIMEOUT_S = 10


def is_postgresql(location):
    return location.startswith(('postgresql://', 'postgres://')) or '=' in location.split('/', 1)[0]


def connect(location, password=None):
    """(connection, placeholder, dialect name) for ``location``."""
    if is_postgresql(location):
        import psycopg2  # pylint: disable=import-outside-toplevel  # python3-psycopg2, as for a PostgreSQL directory
        conn = psycopg2.connect(location, password=password or None, connect_timeout=5,
                                application_name='voxplane cdr')
        conn.autocommit = True
        return conn, '%s', 'postgresql'
    conn = sqlite3.connect(location, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    return conn, '?', 'sqlite'


def create(location, owner=None, group=None, password=None):
    """Make the table and its indexes where missing; the list of what was done."""
    done = []
    fresh = not is_postgresql(location) and not os.path.exists(location)
    conn, _placeholder, dialect = connect(location, password)
    try:
        cursor = conn.cursor()
        if dialect == 'sqlite':
            # WAL is a property of the file: Kamailio's workers then write without running a PRAGMA.
            cursor.execute('PRAGMA journal_mode=WAL')
            cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (cdr.TABLE,))
        else:
            cursor.execute('SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() '
                           'AND table_name = %s', (cdr.TABLE,))
        present = cursor.fetchone() is not None
        for statement in cdr.create_statements(dialect):
            cursor.execute(statement)
        if not present:
            done.append('created: %s' % cdr.TABLE)
    finally:
        conn.close()
    if dialect == 'sqlite' and owner:
        uid, gid = pwd.getpwnam(owner).pw_uid, grp.getgrnam(group or owner).gr_gid
        for path in (location, location + '-wal', location + '-shm'):
            if os.path.exists(path):
                os.chown(path, uid, gid)
        if fresh:
            os.chmod(location, 0o640)
    return done


def purge(location, days, password=None, now=None):
    """Delete the records of calls that started more than ``days`` days ago; how many went."""
    conn, placeholder, _dialect = connect(location, password)
    try:
        cursor = conn.cursor()
        cursor.execute(cdr.purge_statement(placeholder), ((now or time.time()) - float(days) * 86400,))
        return cursor.rowcount
    finally:
        conn.close()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('location')
    parser.add_argument('--owner')
    parser.add_argument('--group')
    parser.add_argument('--retention-days', type=float, default=0)
    args = parser.parse_args(argv[1:])
    password = os.environ.get('VOXPLANE_CDR_PASSWORD')
    done = create(args.location, args.owner, args.group, password)
    if args.retention_days > 0:
        gone = purge(args.location, args.retention_days, password)
        if gone:
            done.append('purged: %d' % gone)
    print('\n'.join(done) if done else 'unchanged')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
