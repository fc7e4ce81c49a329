# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmarks' native anchor (bench/stock_anchor.py): Debian's stock kamailio.cfg with the
listed changes only, its SQLite database made with Kamailio's own schema, and a cfg that
Kamailio accepts (kamailio -c, where Kamailio is installed). No load, no timing."""

import os
import sqlite3
import subprocess
import sys

import pytest

from lab import REPO

sys.path.insert(0, os.path.join(REPO, 'bench'))
import stock_anchor  # noqa: E402  pylint: disable=wrong-import-position

DOMAINS = ['bench.test', 't000.bench.test']


def _render(tmp_path):
    return stock_anchor.render('127.0.0.246', 5099, str(tmp_path / 'kamailio.sqlite'), str(tmp_path / 'ctl'), DOMAINS)


def test_the_copy_is_debians_file_as_shipped():
    shipped = '/etc/kamailio/kamailio.cfg'
    if not os.path.exists(shipped):
        pytest.skip('the kamailio package is not installed')
    if subprocess.run(['dpkg', '--verify', 'kamailio'], capture_output=True, text=True, check=False).stdout.strip():
        pytest.skip('the installed conffiles were changed locally')
    with open(shipped) as a, open(stock_anchor.SHIPPED) as b:
        assert a.read() == b.read()


def test_only_the_listed_changes(tmp_path):
    text = _render(tmp_path)
    changed = stock_anchor.changed_lines(text)
    assert sorted(changed) == sorted([
        '#!trydef DBURL "sqlite://%s"' % (tmp_path / 'kamailio.sqlite'),
        'children=1',
        'listen=udp:127.0.0.246:5099',
        'loadmodule "db_sqlite.so"',
        'modparam("ctl", "binrpc", "unix:%s")' % (tmp_path / 'ctl'),
        'modparam("pike", "reqs_density_per_unit", 60000)',
        'modparam("usrloc", "timer_interval", 1)',
    ])
    assert ['alias="%s"' % d for d in DOMAINS] == [line for line in text.splitlines() if line.startswith('alias=')]
    # every defence of the shipped file is still there
    for kept in ('sanity_check("17895", "7")', 'pike_check_req()', 'auth_check("$fd", "subscriber", "1")',
                 'mf_process_maxfwd_header("10")', '$sht(ipban=>$si)'):
        assert kept in text


def test_database_with_kamailios_schema(tmp_path):
    if not os.path.isdir(stock_anchor.SCHEMA):
        pytest.skip('the kamailio package is not installed')
    path = stock_anchor.make_database(str(tmp_path / 'k.sqlite'), [('bench', 'bench.test', 'secret')] * 2)
    with sqlite3.connect(path) as db:
        assert db.execute('SELECT username, domain, password FROM subscriber').fetchall() == [('bench', 'bench.test', 'secret')]
        versions = dict(db.execute('SELECT table_name, table_version FROM version'))
        assert 'subscriber' in versions and 'location' in versions
        assert db.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'


def test_kamailio_accepts_the_cfg(tmp_path):
    if not os.path.exists(stock_anchor.KAMAILIO) or not os.path.isdir(stock_anchor.SCHEMA):
        pytest.skip('the kamailio package is not installed')
    instance = stock_anchor.StockInstance(str(tmp_path), '127.0.0.246', 5099, [('bench', 'bench.test', 's')], DOMAINS)
    with open(instance.cfg, 'w') as handle:
        handle.write(stock_anchor.render(instance.address, instance.port, instance.db_path, instance.ctl_socket,
                                         DOMAINS))
    check = subprocess.run(instance.command() + ['-c'], capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stderr[-2000:]
