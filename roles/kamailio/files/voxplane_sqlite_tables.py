# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Add the router's own tables to Kamailio's usrloc SQLite database, on a new deployment and on
one whose database was made before they existed (voxplane_sqlite_init.py makes the file only
once).

usage: voxplane_sqlite_tables.py DB_PATH OWNER GROUP [SCHEMA.sql ...]

Each SCHEMA.sql (Kamailio's own, e.g. dialog-create.sql: the dialogs kept over a restart) is loaded
when the first table it creates is missing.

voxplane_subscriptions holds the htable vxsubs (the SIP event subscriptions, and the voicemail
serial last told, kemi/voxplane_subscriptions.py): htable loads it at start and writes it back
at shutdown (dbmode=1). Kamailio 5.6's htable writes a table back only when its load found at
least one row, so the table is never left empty: it keeps the row mwi:serial, which the router
rewrites and never removes.

Prints "unchanged" or what it did ("created: voxplane_subscriptions", "seeded:
voxplane_subscriptions"); the role reports a change when anything was done. Every file it
touches (the database and its -wal and -shm files) stays OWNER:GROUP.
"""

import grp
import os
import pwd
import re
import sqlite3
import sys

TABLES = {
    # The htable module's columns (Debian's db_sqlite/htable-create.sql), with TEXT values:
    # a subscription record is a JSON text longer than that schema's VARCHAR(128).
    "voxplane_subscriptions": (
        "CREATE TABLE voxplane_subscriptions ("
        "id INTEGER PRIMARY KEY NOT NULL, "
        "key_name TEXT DEFAULT '' NOT NULL, "
        "key_type INTEGER DEFAULT 0 NOT NULL, "
        "value_type INTEGER DEFAULT 0 NOT NULL, "
        "key_value TEXT DEFAULT '' NOT NULL, "
        "expires INTEGER DEFAULT 0 NOT NULL)",
        # the row that keeps it from being empty (value: no serial told yet)
        ("mwi:serial", ""),
    ),
}


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    db_path, owner, group = argv[1:4]
    schemas = argv[4:]
    uid = pwd.getpwnam(owner).pw_uid
    gid = grp.getgrnam(group).gr_gid
    if not os.path.isfile(db_path):
        sys.stderr.write("%s does not exist: voxplane_sqlite_init.py makes it first\n" % db_path)
        return 1
    done = []
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            present = set(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
            for table, (create, (key, value)) in sorted(TABLES.items()):
                if table not in present:
                    conn.execute(create)
                    done.append("created: %s" % table)
                if conn.execute("SELECT COUNT(*) FROM %s" % table).fetchone()[0] == 0:
                    conn.execute("INSERT INTO %s (key_name, key_type, value_type, key_value, expires) "
                                 "VALUES (?, 0, 0, ?, 0)" % table, (key, value))
                    done.append("seeded: %s" % table)
            for schema in schemas:
                with open(schema) as handle:
                    text = handle.read()
                tables = re.findall(r"CREATE TABLE\s+(\w+)", text)
                if tables and tables[0] not in present:
                    # executescript would commit the open transaction: the statements one by one.
                    for statement in [s.strip() for s in text.split(";") if s.strip()]:
                        conn.execute(statement)
                    done.append("created: %s" % ", ".join(tables))
    finally:
        conn.close()
    # A connection of root's may have made the -wal/-shm files: Kamailio (OWNER) must write them.
    for path in (db_path, db_path + "-wal", db_path + "-shm"):
        if os.path.exists(path):
            os.chown(path, uid, gid)
    print("\n".join(done) if done else "unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
