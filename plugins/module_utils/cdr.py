# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call detail records: what the router stamps on a call, and what an administrator reads back.

Kamailio writes the records itself: its ``acc`` module, with ``cdr_enable`` and the ``dialog``
module, inserts one row per call leg the router set up (a tracked dialog) into the table
``voxplane_cdr`` when the dialog ends (answered and hung up, failed, cancelled, or expired after a
restart or a lost BYE). The router's whole part per call is one dialog variable, ``$dlg_var(vx)``
(``STAMP_VAR``), set once when the call is relayed and again only when a failure route forwards it
(``restamp``): what it already knows, joined with ``|``::

    tenant|start|direction|caller_extension|caller_account|dialled|callee|reached|diversion|trunk|call_class|outcome|caller|call_key

``start`` is the time the router took the call (seconds since the epoch, three decimals);
``outcome`` is what the failure route made of the ringing (``no_answer``), ``caller`` the caller's
public number, ``call_key`` the Call-ID that ties the legs of one call together (the caller's own,
also on the legs the media service places for a menu or queue: its ``X-Voxplane-Call``). Every field
but the last is escaped (``%`` and ``|``); the last is taken as it is. The static part of a stamp
(``Stamp``) depends only on the routing decision, so the router works it out once per decision and
reuses it for every call that takes the same legs.

Kamailio adds to the row: ``start_time``/``end_time``/``duration`` (acc's core fields; with
``cdr_start_on_confirmed`` the start is the answer and ``duration`` the talk time), ``method``
(``$rm``: ``BYE`` for a call that was answered and hung up, ``INVITE`` for a failed one, empty for an
expired one), ``code`` (``$T_reply_code``), ``reply`` (``$rs``) and ``ended`` (``$TV(Sn)``, the time
the record was written). ``record`` turns such a row into the fields a call list shows.

Standard library only: the router imports the stamp functions inside Kamailio's Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import csv
import datetime
import io
import json
import re
import time

from ansible_collections.voxplane.pbx.plugins.module_utils import routing, rules

STAMP_VAR = '$dlg_var(vx)'
TABLE = 'voxplane_cdr'
# The Kamailio side: the extra columns acc writes (cdr_extra), beside start_time, end_time, duration.
CDR_EXTRA = 'vx=$dlg_var(vx);method=$rm;code=$T_reply_code;reply=$rs;ended=$TV(Sn)'
DEFAULT_LOCATION = '/var/lib/voxplane/kamailio/cdr.sqlite'

DIRECTIONS = ('internal', 'inbound', 'outbound', 'on-net')
DISPOSITIONS = ('answered', 'busy', 'no_answer', 'unavailable', 'rejected', 'cancelled', 'failed')

# The fields of the static part of a stamp, in order (between the start and the outcome).
STATIC_FIELDS = ('direction', 'caller_extension', 'caller_account', 'dialled', 'callee', 'reached', 'diversion',
                 'trunk', 'call_class')
_FIELDS = ('tenant', 'start') + STATIC_FIELDS + ('outcome', 'caller', 'call_key')
_SPLITS = len(_FIELDS) - 1

# The column names of the CSV a portal's call list has, and the record field each one shows.
CSV_COLUMNS = (
    ('Date', 'date'), ('Time', 'time'), ('Direction', 'direction'), ('From', 'caller'),
    ('Extension', 'caller_extension'), ('Account', 'caller_account'), ('To', 'callee'), ('Dialled', 'dialled'),
    ('Reached', 'reached'), ('Result', 'disposition'), ('Code', 'code'), ('Ring (s)', 'ring_seconds'),
    ('Duration (s)', 'talk_seconds'), ('Forwarded', 'diversion_text'), ('Trunk', 'trunk'),
    ('Call class', 'call_class'), ('Call ID', 'call_key'),
)

_BUSY = (486, 600)
_UNAVAILABLE = (404, 410, 480, 484, 503, 604)


# ------------------------------------------------------------------------------ the router's side
def escape(value):
    """A stamp field: ``%`` and ``|`` escaped, None as ''."""
    if value is None:
        return ''
    value = str(value)
    if '%' in value or '|' in value:
        value = value.replace('%', '%25').replace('|', '%7C')
    return value


def unescape(value):
    return value.replace('%7C', '|').replace('%25', '%') if '%' in value else value


class Stamp(object):
    """The static part of one leg's stamp: ``tenant`` and the joined STATIC_FIELDS (``text``)."""

    __slots__ = ('tenant', 'text')

    def __init__(self, tenant, **fields):
        self.tenant = escape(tenant)
        self.text = '|'.join(escape(fields.get(name)) for name in STATIC_FIELDS)

    def __repr__(self):
        return 'Stamp(%s|%s)' % (self.tenant, self.text)


def stamp_value(stamp, start, caller, call_key):
    """The dialog variable of a new call: ``stamp`` (Stamp), the time the router took it, the caller's
    public number and the call key (Call-ID)."""
    return '%s|%.3f|%s||%s|%s' % (stamp.tenant, start, stamp.text, escape(caller), call_key or '')


def restamp(value, stamp=None, outcome=None):
    """The dialog variable ``value`` with the static part of ``stamp`` (a forward's leg: what it reached,
    its diversion chain) and/or ``outcome``; the start, caller and call key stay. None when ``value`` is
    not a stamp."""
    parts = (value or '').split('|', _SPLITS)
    if len(parts) != len(_FIELDS):
        return None
    if stamp is not None:
        parts[2:2 + len(STATIC_FIELDS)] = stamp.text.split('|')
    if outcome is not None:
        parts[_FIELDS.index('outcome')] = escape(outcome)
    return '|'.join(parts)


def parse_stamp(value):
    """The fields of a dialog variable (dict), or None."""
    parts = (value or '').split('|', _SPLITS)
    if len(parts) != len(_FIELDS):
        return None
    fields = dict((name, unescape(part)) for name, part in zip(_FIELDS[:-1], parts[:-1]))
    fields['call_key'] = parts[-1]
    try:
        fields['start'] = float(fields['start'])
    except ValueError:
        return None
    return fields


def diversion_text(entries):
    """A leg's diversion history (Diversion header values, newest first) as ``number:reason`` pairs."""
    out = []
    for entry in entries or ():
        match = re.match(r'\s*<sip:([^@>;]+)[^>]*>(?:.*?;\s*reason=([\w-]+))?', entry)
        if match:
            out.append('%s:%s' % (match.group(1), match.group(2) or ''))
    return ','.join(out)


def _uri_user_host(uri):
    rest = uri.split(':', 1)[1] if ':' in uri else uri
    user, _sep, host = rest.partition('@')
    return user, host.split(';', 1)[0].split('>', 1)[0]


def _identity_number(identity):
    """The user part of an identity (``"Anna" <sip:+4930...@domain>``), '' for an anonymous one."""
    if not identity or identity == routing.ANONYMOUS_URI:
        return ''
    match = re.search(r'sips?:([^@>;]+)@', identity)
    return match.group(1) if match else ''


def reached(tenant, plan):
    """What a leg rings: ``extension:21``, ``group:61``, ``queue:800`` ... (a Ring, by its context's target),
    ``voicemail:23`` and the like (a leg to the media service, by its service), ``outside:+49...`` (a leg
    through the trunk)."""
    if plan.__class__ is routing.Ring:
        fields = (plan.context or '').split('|')
        target = fields[1] if len(fields) > 1 else ''
        if target.startswith(routing.MEMBER_MARK):
            return 'member:%s' % target[len(routing.MEMBER_MARK):]
        obj = tenant.targets.get(target) if tenant is not None else None
        return '%s:%s' % (getattr(obj, 'kind', 'extension') if obj is not None else 'extension', target)
    if plan.__class__ is routing.Relay:
        media = routing.media_request(plan)
        if media is not None:
            service, params = media
            return '%s:%s' % (service, params.get('mailbox') or params.get('name') or _uri_user_host(plan.uri)[0])
        return 'outside:%s' % _uri_user_host(plan.uri)[0]
    return ''


def _trunk_name(tenant, plan):
    """The name of the tenant's trunk a Relay leaves through, or ''."""
    if tenant is None or plan.__class__ is not routing.Relay or tenant.trunk is None or routing.media_request(plan):
        return ''
    hostport = _uri_user_host(plan.uri)[1]
    host = hostport[1:].split(']', 1)[0] if hostport.startswith('[') else hostport.split(':', 1)[0]
    return tenant.trunk.get('name', '') if host in tenant.trunk.get('addresses', ()) else ''


def leg_stamp(snap, leg, tenant, direction, caller_extension='', caller_account='', dialled='', callee='',
              trunk=''):
    """The Stamp of a leg (routing.Leg) the router relays: for ``tenant`` (snapshot Tenant, or None),
    ``direction`` (DIRECTIONS), the caller's extension and account, what was dialled and the number or
    internal number it meant (``callee``), the trunk the call came in by (``trunk``; else the trunk the leg
    leaves by). The call class is the outside number's (rules.call_class) on a leg through the trunk."""
    plan = leg.plan
    where = reached(tenant, plan)
    leaves_by = _trunk_name(tenant, plan)
    call_class = ''
    if where.startswith('outside:') and tenant is not None:
        number = where[len('outside:'):]
        if number in rules.EMERGENCY_NUMBERS or (plan.__class__ is routing.Relay and plan.charge is None):
            call_class = 'emergency'
        elif number.startswith('+'):
            call_class = rules.call_class(number, tenant.dial_plan['country_code'])
    return Stamp(tenant.name if tenant is not None else '', direction=direction, caller_extension=caller_extension,
                 caller_account=caller_account, dialled=dialled, callee=callee or dialled, reached=where,
                 diversion=diversion_text(leg.diversion), trunk=trunk or leaves_by, call_class=call_class)


def caller_number(identity):
    """The public number an account's call presents (routing's outside identity), '' when anonymous."""
    return _identity_number(identity)


# ------------------------------------------------------------------------------ a row as a record
def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _utc_text(value):
    """acc's start_time/end_time (time_mode 4: 'YYYY-MM-DD HH:MM:SS' in UTC; a datetime from PostgreSQL) as
    seconds since the epoch."""
    if value is None or value == '':
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            return value.timestamp()
        return float(calendar.timegm(value.timetuple()))
    try:
        return float(calendar.timegm(time.strptime(str(value)[:19], '%Y-%m-%d %H:%M:%S')))
    except ValueError:
        return None


def disposition(method, code, outcome):
    """(disposition, end) of a row: how the call ended (DISPOSITIONS) and whether its end was seen
    (``normal``) or the dialog expired (``expired``: a restart or a BYE that never came)."""
    if method == 'BYE':
        return 'answered', 'normal'
    if not method:
        return None, 'expired'
    if code == 487:
        return 'cancelled', 'normal'
    if code in _BUSY:
        return 'busy', 'normal'
    if code == 408 or (outcome == 'no_answer' and code == 480):
        return 'no_answer', 'normal'
    if code in _UNAVAILABLE:
        return 'unavailable', 'normal'
    if 400 <= code < 700:
        return 'rejected', 'normal'
    return 'failed', 'normal'


def record(row):
    """The record of one row of the table (a dict with its columns), or None when the row carries no
    stamp. Times are seconds since the epoch (``start``: the router took the call; ``answer``; ``end``),
    ``ring_seconds`` from start to answer (or to the end of an unanswered call), ``talk_seconds`` from
    answer to end."""
    fields = parse_stamp(row.get('vx'))
    if fields is None:
        return None
    code = int(_number(row.get('code')) or _number(row.get('reply')) or 0)
    method = row.get('method') or ''
    result, end_state = disposition(method, code, fields['outcome'])
    duration = _number(row.get('duration')) or 0.0
    ended = _number(row.get('ended'))
    start = fields['start']
    if end_state == 'expired':
        # Written by the dialog's timer: no message, only acc's own times (whole seconds).
        end = _utc_text(row.get('end_time')) or ended or start
        answered = duration > 0
        result = 'answered' if answered else 'failed'
    else:
        end = ended or _utc_text(row.get('end_time')) or start
        answered = result == 'answered'
    answer = max(start, end - duration) if answered else None
    if answered:
        ring, talk = answer - start, duration
        code = code if method != 'BYE' else 200
    else:
        ring, talk = max(0.0, end - start), 0.0
    fields.update(
        id=row.get('id'), disposition=result, end_state=end_state, code=code or None,
        answer=round(answer, 3) if answer is not None else None, end=round(end, 3),
        ring_seconds=round(ring, 1), talk_seconds=round(talk, 1),
        diversion=[dict(zip(('number', 'reason'), d.split(':', 1))) for d in fields['diversion'].split(',') if d],
    )
    fields['start'] = round(start, 3)
    return fields


# ------------------------------------------------------------------------------ reading the table
def matches(rec, extension=None, number=None, group=None, directions=None, dispositions=None):
    """Whether a record passes the filters of cdr_info."""
    if directions and rec['direction'] not in directions:
        return False
    if dispositions and rec['disposition'] not in dispositions:
        return False
    if extension and extension not in (rec['caller_extension'], rec['callee'], _reached_number(rec['reached'])) \
            and not any(d['number'] == extension for d in rec['diversion']):
        return False
    if number and number not in (rec['caller'], rec['callee'], rec['dialled']) \
            and not any(d['number'] == number for d in rec['diversion']):
        return False
    if group and rec['reached'] != 'group:%s' % group and rec['callee'] != group \
            and not any(d['number'] == group for d in rec['diversion']):
        return False
    return True


def _reached_number(reached):
    return reached.split(':', 1)[1] if ':' in reached else reached


def select(conn, tenant, since=None, until=None):
    """The rows of ``tenant`` whose call started in [since, until) (epoch seconds; None: open), oldest
    first, as records. ``conn``: a connection with sqlite3's ``execute`` and ``?`` placeholders (sqlite3,
    or the PostgreSQL wrapper of module_utils/postgresql.py). Only the tenant's rows are read (the indexed
    ``tenant`` column), and each record's tenant is checked again."""
    where, params = ['tenant = ?'], [tenant]
    if since is not None:
        where.append('began >= ?')
        params.append(float(since))
    if until is not None:
        where.append('began < ?')
        params.append(float(until))
    names = ('id', 'start_time', 'end_time', 'duration', 'vx', 'method', 'code', 'reply', 'ended')
    rows = conn.execute('SELECT %s FROM %s WHERE %s ORDER BY began, id'
                        % (', '.join(names), TABLE, ' AND '.join(where)), params).fetchall()
    out = []
    for row in rows:
        rec = record(dict(zip(names, row)))
        if rec is not None and rec['tenant'] == tenant:
            out.append(rec)
    return out


class CdrError(Exception):
    """The call records cannot be read: where (the password masked) and why."""


def is_postgresql(location):
    return location.startswith(('postgresql://', 'postgres://')) or bool(re.match(r'^\s*\w+\s*=', location))


def shown(location):
    """The location as a message may show it (a PostgreSQL password masked)."""
    if is_postgresql(location):
        from ansible_collections.voxplane.pbx.plugins.module_utils import postgresql  # pylint: disable=import-outside-toplevel
        return postgresql.shown(location)
    return location


class _Translated(object):
    """A PostgreSQL connection (module_utils/postgresql.py) taking statements with ``?`` placeholders."""

    def __init__(self, conn, dialect):
        self.conn, self.dialect = conn, dialect

    def execute(self, statement, params=()):
        return self.conn.execute(self.dialect.sql(statement), params)

    def close(self):
        self.conn.close()


def connect(location, password=None):
    """A read-only connection to the call records at ``location``: a SQLite file (opened read-only: it
    is never created nor changed) or a PostgreSQL location (a role with SELECT on voxplane_cdr is
    enough). Raises CdrError."""
    if is_postgresql(location):
        from ansible_collections.voxplane.pbx.plugins.module_utils import postgresql  # pylint: disable=import-outside-toplevel
        from ansible_collections.voxplane.pbx.plugins.module_utils.errors import StorageError  # pylint: disable=import-outside-toplevel
        dialect = postgresql.PostgresqlDialect(location, password=password)
        try:
            conn = dialect._connect()  # pylint: disable=protected-access  # no directory checks: only the CDR table
            conn.execute('SET default_transaction_read_only = on')
        except StorageError as e:
            raise CdrError('call records %s: %s' % (e.location, e.reason))
        return _Translated(conn, dialect)
    import os  # pylint: disable=import-outside-toplevel
    import sqlite3  # pylint: disable=import-outside-toplevel
    if not os.path.isfile(location):
        raise CdrError('call records %s: does not exist (kamailio_cdr_database of the kamailio role)' % location)
    try:
        conn = sqlite3.connect('file:%s?mode=ro' % location, uri=True, timeout=10)
        conn.execute('SELECT 1 FROM %s LIMIT 1' % TABLE).fetchall()
    except sqlite3.Error as e:
        raise CdrError('call records %s: %s' % (location, e))
    return conn


def read(location, tenant, since=None, until=None, password=None):
    """select() of the records at ``location``; CdrError when they cannot be read."""
    conn = connect(location, password)
    try:
        return select(conn, tenant, since, until)
    except Exception as e:  # the driver's error (sqlite3 or psycopg), whichever is in use
        if e.__class__.__module__.split('.', maxsplit=1)[0] in ('sqlite3', 'psycopg', 'psycopg2') or \
                e.__class__.__name__ == 'StorageError':
            raise CdrError('call records %s: %s' % (shown(location), str(e).strip().split('\n', maxsplit=1)[0]))
        raise
    finally:
        conn.close()


_RELATIVE = re.compile(r'^\s*-\s*(\d+)\s*([dhm])\s*$')


def moment(text, zone, now=None):
    """Epoch seconds of a period bound: ``2026-12-01``, ``2026-12-01 08:00`` (in ``zone``), an ISO time
    with its offset, ``today``, or ``-7d``, ``-12h``, ``-30m`` (before now). ValueError otherwise."""
    now = time.time() if now is None else now
    text = str(text).strip()
    match = _RELATIVE.match(text)
    if match:
        return now - int(match.group(1)) * {'d': 86400, 'h': 3600, 'm': 60}[match.group(2)]
    if text == 'today':
        day = datetime.datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)
        return day.timestamp()
    value = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.timestamp()


def with_times(rec, zone=None):
    """The record with ISO times (in ``zone``, a tzinfo, else UTC) and the call list's date and time."""
    zone = zone or datetime.timezone.utc
    out = dict(rec)
    for key in ('start', 'answer', 'end'):
        if rec.get(key) is not None:
            out[key] = datetime.datetime.fromtimestamp(rec[key], zone).isoformat(timespec='milliseconds')
    begun = datetime.datetime.fromtimestamp(rec['start'], zone)
    out['date'], out['time'] = begun.strftime('%Y-%m-%d'), begun.strftime('%H:%M:%S')
    out['diversion_text'] = ', '.join('%s (%s)' % (d['number'], d['reason']) for d in rec['diversion'])
    return out


def summary(records, zone=None):
    """Calls, answered calls, their ratio, talk minutes and calls by hour of the day (in ``zone``)."""
    zone = zone or datetime.timezone.utc
    answered = [r for r in records if r['disposition'] == 'answered']
    by_hour = {}
    for rec in records:
        hour = datetime.datetime.fromtimestamp(rec['start'], zone).hour
        by_hour['%02d' % hour] = by_hour.get('%02d' % hour, 0) + 1
    by_disposition, by_direction = {}, {}
    for rec in records:
        by_disposition[rec['disposition']] = by_disposition.get(rec['disposition'], 0) + 1
        by_direction[rec['direction']] = by_direction.get(rec['direction'], 0) + 1
    return dict(calls=len(records), answered=len(answered),
                answered_ratio=round(len(answered) / len(records), 3) if records else None,
                minutes=round(sum(r['talk_seconds'] for r in answered) / 60.0, 1),
                by_hour=by_hour, by_disposition=by_disposition, by_direction=by_direction)


def csv_text(records):
    """The records (with_times) as the CSV of a call list."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow([title for title, _field in CSV_COLUMNS])
    for rec in records:
        writer.writerow(['' if rec.get(field) is None else rec.get(field) for _title, field in CSV_COLUMNS])
    return out.getvalue()


def jsonl_text(records):
    return ''.join(json.dumps(rec, sort_keys=True) + '\n' for rec in records)


# ------------------------------------------------------------------------------ the table
def create_statements(dialect):
    """The table and its indexes (``sqlite`` or ``postgresql``). ``tenant`` and ``began`` (when the router
    took the call) are computed from the stamp by the database, so that Kamailio writes one value and
    the queries by tenant and period use an index."""
    if dialect == 'postgresql':
        return [
            "CREATE TABLE IF NOT EXISTS %s (id BIGSERIAL PRIMARY KEY, "
            "start_time TIMESTAMP WITHOUT TIME ZONE, end_time TIMESTAMP WITHOUT TIME ZONE, "
            "duration DOUBLE PRECISION, vx TEXT NOT NULL DEFAULT '', method TEXT, code TEXT, reply TEXT, "
            "ended TEXT, "
            "tenant TEXT GENERATED ALWAYS AS (split_part(vx, '|', 1)) STORED, "
            "began DOUBLE PRECISION GENERATED ALWAYS AS "
            "(CAST(NULLIF(split_part(vx, '|', 2), '') AS DOUBLE PRECISION)) STORED)" % TABLE,
            "CREATE INDEX IF NOT EXISTS %s_tenant_began ON %s (tenant, began)" % (TABLE, TABLE),
            "CREATE INDEX IF NOT EXISTS %s_began ON %s (began)" % (TABLE, TABLE),
        ]
    return [
        "CREATE TABLE IF NOT EXISTS %s (id INTEGER PRIMARY KEY NOT NULL, "
        "start_time TEXT, end_time TEXT, duration REAL, vx TEXT NOT NULL DEFAULT '', method TEXT, code TEXT, "
        "reply TEXT, ended TEXT, "
        "tenant TEXT GENERATED ALWAYS AS (substr(vx, 1, instr(vx, '|') - 1)) VIRTUAL, "
        "began REAL GENERATED ALWAYS AS (CAST(substr(vx, instr(vx, '|') + 1, 14) AS REAL)) VIRTUAL)" % TABLE,
        "CREATE INDEX IF NOT EXISTS %s_tenant_began ON %s (tenant, began)" % (TABLE, TABLE),
        "CREATE INDEX IF NOT EXISTS %s_began ON %s (began)" % (TABLE, TABLE),
    ]


def purge_statement(placeholder):
    """Delete the records of calls that started before a time (retention)."""
    return 'DELETE FROM %s WHERE began < %s' % (TABLE, placeholder)
