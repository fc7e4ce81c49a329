# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create a Kamailio SQLite database from schema files, atomically.

usage: voxplane_sqlite_init.py DB_PATH OWNER GROUP SCHEMA.sql [SCHEMA.sql ...]

The schema is loaded into DB_PATH.tmp-<pid> and renamed to DB_PATH only when every file
loaded (owned by OWNER:GROUP, mode 0640), so an interrupted run never leaves a half-made
database behind (the role runs this with `creates: DB_PATH`). An existing DB_PATH is never
touched.
"""

import grp
import os
import pwd
import sqlite3
import sys


def main(argv):
    if len(argv) < 5:
        sys.stderr.write(__doc__)
        return 2
    db_path, owner, group, schemas = argv[1], argv[2], argv[3], argv[4:]
    uid = pwd.getpwnam(owner).pw_uid
    gid = grp.getgrnam(group).gr_gid
    if os.path.exists(db_path):
        print("exists: %s" % db_path)
        return 0
    tmp = "%s.tmp-%d" % (db_path, os.getpid())
    try:
        conn = sqlite3.connect(tmp)
        try:
            # WAL is a property of the file: set it once here, so that Kamailio's workers use
            # it without running a PRAGMA themselves (db_sqlite 5.6 has no busy timeout, and
            # db_set_journal_mode made workers starting together fail with "database is
            # locked"). WAL lets the workers read while one of them writes.
            conn.execute("PRAGMA journal_mode=WAL")
            for schema in schemas:
                with open(schema) as handle:
                    conn.executescript(handle.read())
            conn.commit()
        finally:
            conn.close()
        os.chown(tmp, uid, gid)
        os.chmod(tmp, 0o640)
        os.rename(tmp, db_path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print("created: %s" % db_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
