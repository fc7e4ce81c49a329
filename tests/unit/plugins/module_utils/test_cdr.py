# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/cdr.py: the stamp, a row as Kamailio's acc writes it, the table in real SQLite
(its computed tenant and start, the index the queries use, retention), tenant isolation,
summaries and the call list CSV."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import datetime
import io
import sqlite3

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import cdr

T0 = 1765000000.0   # 2025-12-06T05:46:40Z


def stamp(tenant='acme', start=T0, caller='+4989555000', key='k1@x', **fields):
    base = dict(direction='inbound', dialled='+4930123410', callee='+4930123410', reached='extension:10')
    base.update(fields)
    return cdr.stamp_value(cdr.Stamp(tenant, **base), start, caller, key)


def utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S')


def row(vx, method='BYE', code='200', reply=None, answer=T0 + 5, end=T0 + 65, **extra):
    """A row as acc writes it: start_time the answer (cdr_start_on_confirmed), duration the talk time."""
    out = dict(vx=vx, method=method, code=code, reply=reply, ended='%.6f' % end if method else None,
               start_time=utc(answer), end_time=utc(end), duration=(end - answer) if method in ('BYE', '') else 0.0)
    out.update(extra)
    return out


@pytest.fixture
def table(tmp_path):
    path = str(tmp_path / 'cdr.sqlite')
    conn = sqlite3.connect(path)
    for statement in cdr.create_statements('sqlite'):
        conn.execute(statement)
    conn.commit()
    yield path, conn
    conn.close()


def insert(conn, **values):
    names = sorted(values)
    conn.execute('INSERT INTO voxplane_cdr (%s) VALUES (%s)' % (', '.join(names), ', '.join('?' * len(names))),
                 [values[n] for n in names])
    conn.commit()


def test_a_stamp_round_trips_with_escapes_and_a_call_id_taken_as_it_is():
    value = stamp(caller='a|b%c', key='odd|call%id', dialled='0|1')
    fields = cdr.parse_stamp(value)
    assert fields['caller'] == 'a|b%c' and fields['call_key'] == 'odd|call%id' and fields['dialled'] == '0|1'
    assert fields['tenant'] == 'acme' and fields['start'] == T0


def test_restamp_changes_the_static_part_and_the_outcome_only():
    value = stamp()
    forwarded = cdr.restamp(value, cdr.Stamp('acme', direction='inbound', dialled='+4930123410', callee='+4930123410',
                                             reached='extension:12', diversion='10:user-busy'))
    fields = cdr.parse_stamp(cdr.restamp(forwarded, outcome='no_answer'))
    assert (fields['reached'], fields['diversion'], fields['outcome']) == ('extension:12', '10:user-busy', 'no_answer')
    assert (fields['start'], fields['caller'], fields['call_key']) == (T0, '+4989555000', 'k1@x')
    assert cdr.restamp('not a stamp', outcome='no_answer') is None


def test_diversion_text_of_diversion_headers():
    assert cdr.diversion_text(['<sip:27@acme.sip.test>;reason=unconditional', '<sip:+4930999@acme>;reason=no-answer']) == \
        '27:unconditional,+4930999:no-answer'


@pytest.mark.parametrize('method, code, outcome, expected', [
    ('BYE', '200', '', 'answered'), ('INVITE', '486', '', 'busy'), ('INVITE', '600', '', 'busy'),
    ('INVITE', '487', '', 'cancelled'), ('INVITE', '408', '', 'no_answer'), ('INVITE', '480', 'no_answer', 'no_answer'),
    ('INVITE', '480', '', 'unavailable'), ('INVITE', '404', '', 'unavailable'), ('INVITE', '603', '', 'rejected'),
    ('INVITE', '403', '', 'rejected'), ('INVITE', '0', '', 'failed'),
])
def test_dispositions(method, code, outcome, expected):
    vx = cdr.restamp(stamp(), outcome=outcome) if outcome else stamp()
    rec = cdr.record(row(vx, method=method, code=code))
    assert rec['disposition'] == expected and rec['end_state'] == 'normal'


def test_an_answered_row_has_its_ring_and_talk_time():
    rec = cdr.record(row(stamp(), answer=T0 + 5.25, end=T0 + 65.5))
    assert (rec['ring_seconds'], rec['talk_seconds'], rec['code']) == (5.2, 60.2, 200)


def test_an_expired_row_is_answered_with_acc_s_own_end():
    rec = cdr.record(dict(vx=stamp(), method=None, code=None, reply=None, ended=None, start_time=utc(T0 + 4),
                          end_time=utc(T0 + 100), duration=96.0))
    assert rec['disposition'] == 'answered' and rec['end_state'] == 'expired' and rec['talk_seconds'] == 96.0
    assert rec['end'] == T0 + 100


def test_the_table_computes_tenant_and_start_and_queries_use_the_index(table):
    path, conn = table
    insert(conn, **row(stamp('acme', T0)))
    insert(conn, **row(stamp('beta', T0 + 1, key='k2@x')))
    assert conn.execute('SELECT tenant, began FROM voxplane_cdr ORDER BY id').fetchall() == [('acme', T0), ('beta', T0 + 1)]
    query = 'EXPLAIN QUERY PLAN SELECT * FROM voxplane_cdr WHERE tenant = ? AND began >= ?'
    plan = ' '.join(r[-1] for r in conn.execute(query, ('acme', T0)))
    assert 'voxplane_cdr_tenant_began' in plan


def test_a_tenants_records_are_never_another_tenants(table):
    path, conn = table
    insert(conn, **row(stamp('acme', T0)))
    insert(conn, **row(stamp('acme-two', T0 + 1, key='k2@x')))
    insert(conn, **row(stamp('beta', T0 + 2, key='k3@x')))
    assert [r['call_key'] for r in cdr.read(path, 'acme')] == ['k1@x']
    assert [r['call_key'] for r in cdr.read(path, 'beta')] == ['k3@x']
    assert cdr.read(path, 'gamma') == []


def test_read_selects_the_period_and_filters(table):
    path, conn = table
    insert(conn, **row(stamp(start=T0, key='a'), answer=T0 + 3, end=T0 + 63))
    insert(conn, **row(stamp(start=T0 + 3600, key='b', direction='outbound', caller_extension='10', reached='outside:+4940'),
                       method='INVITE', code='486'))
    insert(conn, **row(stamp(start=T0 + 7200, key='c', diversion='61:no-answer', reached='group:61'), method='INVITE', code='487'))
    assert [r['call_key'] for r in cdr.read(path, 'acme', since=T0 + 1)] == ['b', 'c']
    assert [r['call_key'] for r in cdr.read(path, 'acme', until=T0 + 3600)] == ['a']
    every = cdr.read(path, 'acme')
    assert [r['call_key'] for r in every if cdr.matches(r, extension='10')] == ['a', 'b']
    assert [r['call_key'] for r in every if cdr.matches(r, group='61')] == ['c']
    assert [r['call_key'] for r in every if cdr.matches(r, directions=['outbound'])] == ['b']
    assert [r['call_key'] for r in every if cdr.matches(r, dispositions=['cancelled', 'busy'])] == ['b', 'c']
    summary = cdr.summary(every)
    assert summary['calls'] == 3 and summary['answered'] == 1 and summary['answered_ratio'] == 0.333
    assert summary['minutes'] == 1.0 and sum(summary['by_hour'].values()) == 3
    assert summary['by_disposition'] == {'answered': 1, 'busy': 1, 'cancelled': 1}


def test_the_csv_has_the_call_list_columns(table):
    path, conn = table
    insert(conn, **row(stamp(diversion='27:unconditional')))
    text = cdr.csv_text([cdr.with_times(r) for r in cdr.read(path, 'acme')])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [column[0] for column in cdr.CSV_COLUMNS]
    assert rows[0]['Result'] == 'answered' and rows[0]['Forwarded'] == '27 (unconditional)'
    assert rows[0]['Date'] == '2025-12-06' and rows[0]['Duration (s)'] == '60.0'


def test_retention_deletes_only_records_older_than_the_limit(table):
    path, conn = table
    insert(conn, **row(stamp(start=T0 - 40 * 86400, key='old')))
    insert(conn, **row(stamp(start=T0, key='new')))
    conn.execute(cdr.purge_statement('?'), (T0 - 30 * 86400,))
    conn.commit()
    assert [r['call_key'] for r in cdr.read(path, 'acme')] == ['new']


def test_a_missing_file_or_another_database_is_a_clear_error(tmp_path):
    with pytest.raises(cdr.CdrError, match='does not exist'):
        cdr.read(str(tmp_path / 'none.sqlite'), 'acme')
    other = str(tmp_path / 'other.sqlite')
    sqlite3.connect(other).execute('CREATE TABLE t (x)').connection.commit()
    with pytest.raises(cdr.CdrError, match='no such table: voxplane_cdr'):
        cdr.read(other, 'acme')


def test_period_bounds():
    now = T0
    assert cdr.moment('-7d', datetime.timezone.utc, now) == now - 7 * 86400
    assert cdr.moment('2025-12-06', datetime.timezone.utc) == 1764979200.0
    assert cdr.moment('2025-12-06T01:00:00+01:00', datetime.timezone.utc) == 1764979200.0
    with pytest.raises(ValueError):
        cdr.moment('yesterday-ish', datetime.timezone.utc)


def test_the_roles_store_script_makes_the_table_once_and_enforces_retention(tmp_path, capsys):
    import importlib.util
    import os
    import time
    from lab import REPO
    spec = importlib.util.spec_from_file_location('voxplane_cdr_store', os.path.join(REPO, 'kemi', 'voxplane_cdr_store.py'))
    store = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(store)
    path = str(tmp_path / 'cdr.sqlite')
    assert store.main(['x', path, '--retention-days', '30']) == 0
    assert capsys.readouterr().out.strip() == 'created: voxplane_cdr'
    conn = sqlite3.connect(path)
    assert conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
    insert(conn, **row(stamp(start=time.time() - 31 * 86400, key='old')))
    insert(conn, **row(stamp(start=time.time(), key='new')))
    assert store.main(['x', path, '--retention-days', '30']) == 0
    assert capsys.readouterr().out.strip() == 'purged: 1'
    assert store.main(['x', path]) == 0
    assert capsys.readouterr().out.strip() == 'unchanged'
    assert [r['call_key'] for r in cdr.read(path, 'acme')] == ['new']
