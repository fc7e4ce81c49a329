# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/kamailio/files/voxplane_sqlite_tables.py: the router's own tables in the usrloc
database, on a database made before they existed (what voxplane_sqlite_init.py made once) as on
a new one; the row that keeps Kamailio 5.6's htable writing the table back; a second run changes
nothing. The whole path (the role, htable loading and saving the table across a restart):
tests/sip/test_message_waiting.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import sqlite3
import subprocess
import sys

import pytest

from lab import REPO

SCRIPT = os.path.join(REPO, 'roles', 'kamailio', 'files', 'voxplane_sqlite_tables.py')


def run(path):
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    done = subprocess.run([sys.executable, SCRIPT, str(path), user, group], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split('\n')[:-1]


@pytest.fixture
def old_usrloc(tmp_path):
    """A usrloc database as the role made it before the table existed: WAL, a location row."""
    path = tmp_path / 'usrloc.sqlite'
    conn = sqlite3.connect(str(path))
    conn.execute('PRAGMA journal_mode=WAL')
    conn.execute('CREATE TABLE version (id INTEGER PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL, '
                 'table_version INTEGER DEFAULT 0 NOT NULL)')
    conn.execute("CREATE TABLE location (id INTEGER PRIMARY KEY NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL)")
    conn.execute("INSERT INTO location (username) VALUES ('anna.desk')")
    conn.commit()
    conn.close()
    return path


def rows(path, query):
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_a_database_made_before_the_table_gets_it_with_its_row_and_keeps_the_rest(old_usrloc):
    assert run(old_usrloc) == ['created: voxplane_subscriptions', 'seeded: voxplane_subscriptions']
    columns = [r[1] for r in rows(old_usrloc, 'PRAGMA table_info(voxplane_subscriptions)')]
    assert columns == ['id', 'key_name', 'key_type', 'value_type', 'key_value', 'expires']
    assert rows(old_usrloc, 'SELECT key_name, key_type, value_type, key_value FROM voxplane_subscriptions') == [
        ('mwi:serial', 0, 0, '')]
    assert rows(old_usrloc, 'SELECT username FROM location') == [('anna.desk',)]
    assert rows(old_usrloc, 'PRAGMA journal_mode') == [('wal',)]
    assert run(old_usrloc) == ['unchanged']


def test_a_table_left_empty_gets_its_row_again_and_subscriptions_stay(old_usrloc):
    run(old_usrloc)
    conn = sqlite3.connect(str(old_usrloc))
    conn.execute('DELETE FROM voxplane_subscriptions')
    conn.commit()
    conn.close()
    assert run(old_usrloc) == ['seeded: voxplane_subscriptions']
    conn = sqlite3.connect(str(old_usrloc))
    conn.execute("INSERT INTO voxplane_subscriptions (key_name, key_value) VALUES ('sub:message-summary:x', '{}')")
    conn.commit()
    conn.close()
    assert run(old_usrloc) == ['unchanged']
    assert len(rows(old_usrloc, 'SELECT * FROM voxplane_subscriptions')) == 2


def test_no_database_is_an_error_that_names_it(tmp_path):
    done = subprocess.run([sys.executable, SCRIPT, str(tmp_path / 'none.sqlite'), 'root', 'root'],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and 'none.sqlite does not exist' in done.stderr
    assert not (tmp_path / 'none.sqlite').exists()
