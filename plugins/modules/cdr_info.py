#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: cdr_info
short_description: Read a voxplane tenant's call detail records, as data, a call list CSV or JSON lines
version_added: 0.3.0
description:
  - Reads the call detail records Kamailio writes (the kamailio role's C(kamailio_cdr_database), by its acc module, one
    record per call leg the router set up, see C(docs/operations.md)) of one tenant, for a period, optionally only
    those of an extension, a number or a group, of some directions or dispositions.
  - Returns them as data (RV(records)), or writes them to O(dest) as the CSV of a portal's call list (column names
    in RV(columns)) or as JSON lines; with O(summary) also the tenant's figures (calls, answered calls and ratio,
    talk minutes, calls by hour of the day, by disposition and by direction).
  - A tenant's records are never returned for another tenant (the query is by tenant and each record's tenant is
    checked again).
  - Reads only. It needs no directory and no rights on it. On PostgreSQL a role with C(SELECT) on the table
    C(voxplane_cdr) alone is enough (the C(call details only) use, see the examples and C(docs/operations.md)).
author:
  - voxplane developers (@voxplane)
requirements:
  - Python 3.9 or newer with C(sqlite3) and C(zoneinfo) on the host the module runs on (the host that holds the
    SQLite file, or any host that reaches the PostgreSQL database).
  - For records on PostgreSQL, C(psycopg) (version 3) or C(psycopg2) for that Python.
options:
  tenant:
    description: The tenant whose records to read (its name).
    type: str
    required: true
  cdr_database:
    description:
      - Where the records are, as the kamailio role's C(kamailio_cdr_database) says.
      - A file path is a SQLite file (opened read-only, never created).
      - A PostgreSQL location (a C(postgresql://) URL or libpq keyword/value pairs) is a database with the table
        C(voxplane_cdr); its password from O(cdr_password), the location, E(PGPASSWORD) or C(~/.pgpass).
      - Can also be set with the environment variable E(VOXPLANE_CDR_DATABASE).
    type: str
    default: /var/lib/voxplane/kamailio/cdr.sqlite
  cdr_password:
    description:
      - The password of the PostgreSQL user of O(cdr_database), from a vault for example. Ignored for a SQLite file.
      - Can also be set with the environment variable E(VOXPLANE_CDR_PASSWORD).
    type: str
  since:
    description:
      - The first call to include, by the time the router took it.
      - V(2026-12-01) or V(2026-12-01 08:00) (in O(timezone)), an ISO time with its offset
        (V(2026-12-01T08:00:00+01:00)), V(today), or a time before now (V(-7d), V(-12h), V(-30m)).
      - Left out, the oldest record kept is the first.
    type: str
  until:
    description: The end of the period (exclusive), written as O(since); left out, now.
    type: str
  extension:
    description:
      - Only calls of this internal number, as the caller's extension, the callee, what the call reached or a hop of
        its forwards.
    type: str
  number:
    description: Only calls with this number (E.164, V(+4930...)) as the caller, the callee, the dialled number or a hop.
    type: str
  group:
    description: Only calls that reached this group (its internal number), were dialled to it or forwarded by it.
    type: str
  direction:
    description: Only calls of these directions.
    type: list
    elements: str
    choices: [internal, inbound, outbound, on-net]
  disposition:
    description: Only calls that ended so.
    type: list
    elements: str
    choices: [answered, busy, no_answer, unavailable, rejected, cancelled, failed]
  format:
    description:
      - V(data) returns the records in RV(records).
      - V(csv) is the call list a portal shows (RV(columns)); V(jsonl) one JSON object per line, every field.
        Either is written to O(dest) when given, else returned in RV(content).
    type: str
    choices: [data, csv, jsonl]
    default: data
  dest:
    description:
      - A file on the host to write the O(format) V(csv) or V(jsonl) to (mode 0600, as call records are personal data).
        Written only when its content changes (the task then reports a change).
    type: path
  summary:
    description: Whether to return the tenant's figures for the records selected (RV(summary)).
    type: bool
    default: true
  timezone:
    description: The IANA time zone of the dates and times shown, of O(since)/O(until) without an offset and of the hours.
    type: str
    default: UTC
attributes:
  check_mode:
    support: full
    description: Reads as in a real run; a file that O(dest) would change is reported as changed and not written.
  diff_mode:
    support: none
    description: The records are the result; a written file's content is not shown as a diff.
notes:
  - The records of a call between two tenants (on-net) belong to the calling tenant.
seealso:
  - name: Call detail records
    description: The fields, the retention and the call-details-only role (docs/operations.md).
    link: https://github.com/voxplane/voxplane/blob/main/docs/operations.md#call-detail-records
'''

EXAMPLES = r'''
- name: Yesterday's calls of acme as data (asks Kamailio)
  voxplane.pbx.cdr_info:
    tenant: acme
    since: -1d
  register: calls

- name: Show the answered ratio (asks Kamailio)
  ansible.builtin.debug:
    msg: "{{ calls.summary.answered }} of {{ calls.summary.calls }} calls answered, {{ calls.summary.minutes }} minutes"

- name: The call list of extension 210 in December as CSV, for the portal's export (asks Kamailio)
  voxplane.pbx.cdr_info:
    tenant: acme
    extension: "210"
    since: "2026-12-01"
    until: "2027-01-01"
    timezone: Europe/Berlin
    format: csv
    dest: /tmp/acme-210-december.csv

- name: The unanswered inbound calls of this week as JSON lines (asks Kamailio)
  voxplane.pbx.cdr_info:
    tenant: acme
    since: -7d
    direction: [inbound]
    disposition: [no_answer, busy, cancelled]
    format: jsonl
    dest: /tmp/acme-missed.jsonl

# Call details only: a PostgreSQL role that may read the table voxplane_cdr and nothing else
# (GRANT SELECT ON voxplane_cdr TO calls_reader), its password in a vault.
- name: Read the records with the read-only role (asks Kamailio)
  voxplane.pbx.cdr_info:
    tenant: acme
    cdr_database: postgresql://calls_reader@db1.example.net/voxplane?sslmode=verify-full
    cdr_password: "{{ vault_calls_reader_password }}"
    since: today
  register: today
'''

RETURN = r'''
records:
  description:
    - With O(format) V(data), the records, oldest first. Times are ISO 8601 in O(timezone); C(start) is when the
      router took the call, C(answer) when it was answered (null when it was not), C(end) when it ended.
    - C(direction) V(internal), V(inbound), V(outbound) or V(on-net); C(caller) the caller's public number (the
      From of a call from the trunk), C(caller_extension) and C(caller_account) the calling extension and its SIP
      account; C(dialled) as dialled, C(callee) the number or internal number it meant, C(reached) what rang last
      (V(extension:11), V(group:61), V(voicemail:23), V(outside:+49...)); C(diversion) the forwards (number and
      reason, newest first); C(trunk) the trunk it came in or went out by; C(call_class) of an outside number
      (V(national), V(international), V(premium), V(satellite), V(emergency)).
    - C(disposition) (V(answered), V(busy), V(no_answer), V(unavailable), V(rejected), V(cancelled), V(failed)) with
      the final reply's C(code); C(end_state) V(normal), or V(expired) for a call whose end was not seen (a BYE lost,
      or a restart of Kamailio meanwhile; its end is then the time the dialog expired); C(ring_seconds),
      C(talk_seconds); C(call_key) ties the legs of one call together (the caller's Call-ID).
  returned: when O(format) is V(data)
  type: list
  elements: dict
  sample:
    - {tenant: acme, direction: inbound, caller: "+4989123456", callee: "+4930123456010", dialled: "+4930123456010",
       reached: "extension:210", diversion: [], disposition: answered, code: 200, end_state: normal,
       start: "2026-12-07T09:14:03.120+00:00", answer: "2026-12-07T09:14:08.410+00:00",
       end: "2026-12-07T09:16:11.007+00:00", ring_seconds: 5.3, talk_seconds: 122.6, trunk: carrier,
       call_class: "", call_key: a84b4c76e66710@pbx.example.com}
content:
  description: With O(format) V(csv) or V(jsonl) and no O(dest), the text.
  returned: when O(format) is not V(data) and O(dest) is not given
  type: str
columns:
  description: The CSV's column names, in order.
  returned: when O(format) is V(csv)
  type: list
  elements: str
  sample: [Date, Time, Direction, From, Extension, Account, To, Dialled, Reached, Result, Code, "Ring (s)",
           "Duration (s)", Forwarded, Trunk, Call class, Call ID]
count:
  description: How many records were selected.
  returned: always
  type: int
  sample: 42
dest:
  description: The file written (or that would be written in check mode).
  returned: when O(dest) is given
  type: str
summary:
  description:
    - The tenant's figures for the records selected, C(calls), C(answered), C(answered_ratio) (null without
      calls), C(minutes) (talk time of the answered calls), C(by_hour) (calls by the hour of the day they started,
      V(00) to V(23), in O(timezone)), C(by_disposition) and C(by_direction).
  returned: when O(summary) is true
  type: dict
  sample: {calls: 42, answered: 35, answered_ratio: 0.833, minutes: 97.5, by_hour: {"09": 12, "10": 30},
           by_disposition: {answered: 35, no_answer: 5, busy: 2}, by_direction: {inbound: 30, outbound: 12}}
'''

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.voxplane.pbx.plugins.module_utils import cdr


def _zone(module, name):
    if name.upper() == 'UTC':
        import datetime
        return datetime.timezone.utc
    try:
        import zoneinfo
        return zoneinfo.ZoneInfo(name)
    except Exception as e:  # ZoneInfoNotFoundError, ValueError for a malformed key
        module.fail_json(msg='timezone: %s is not an IANA time zone here (%s)' % (name, e))


def _write(module, dest, text):
    """Write ``text`` to ``dest`` (0600) when it differs; whether it did (or would, in check mode)."""
    try:
        with open(dest) as handle:
            if handle.read() == text:
                return False
    except (IOError, OSError):
        pass
    if module.check_mode:
        return True
    folder = os.path.dirname(os.path.abspath(dest))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.cdr_info-')
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.rename(tmp, dest)
    except (IOError, OSError) as e:
        module.fail_json(msg='cannot write %s (%s)' % (dest, e.strerror or e))
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            tenant=dict(type='str', required=True),
            cdr_database=dict(type='str', default=cdr.DEFAULT_LOCATION, fallback=(env_fallback, ['VOXPLANE_CDR_DATABASE'])),
            cdr_password=dict(type='str', no_log=True, fallback=(env_fallback, ['VOXPLANE_CDR_PASSWORD'])),
            since=dict(type='str'),
            until=dict(type='str'),
            extension=dict(type='str'),
            number=dict(type='str'),
            group=dict(type='str'),
            direction=dict(type='list', elements='str', choices=list(cdr.DIRECTIONS)),
            disposition=dict(type='list', elements='str', choices=list(cdr.DISPOSITIONS)),
            format=dict(type='str', default='data', choices=['data', 'csv', 'jsonl']),
            dest=dict(type='path'),
            summary=dict(type='bool', default=True),
            timezone=dict(type='str', default='UTC'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    zone = _zone(module, params['timezone'])
    bounds = {}
    for name in ('since', 'until'):
        if params[name]:
            try:
                bounds[name] = cdr.moment(params[name], zone)
            except ValueError:
                module.fail_json(msg='%s: %r is not a date, a time, today or -<n>d/-<n>h/-<n>m' % (name, params[name]))
    try:
        records = cdr.read(params['cdr_database'], params['tenant'], bounds.get('since'), bounds.get('until'),
                           password=params['cdr_password'])
    except cdr.CdrError as e:
        module.fail_json(msg=str(e))
    records = [r for r in records if cdr.matches(r, params['extension'], params['number'], params['group'],
                                                 params['direction'], params['disposition'])]
    result = dict(changed=False, count=len(records))
    if params['summary']:
        result['summary'] = cdr.summary(records, zone)
    shown = [cdr.with_times(r, zone) for r in records]
    if params['format'] == 'data':
        result['records'] = shown
    else:
        text = cdr.csv_text(shown) if params['format'] == 'csv' else cdr.jsonl_text(shown)
        if params['format'] == 'csv':
            result['columns'] = [title for title, _field in cdr.CSV_COLUMNS]
        if params['dest']:
            result['dest'] = params['dest']
            result['changed'] = _write(module, params['dest'], text)
        else:
            result['content'] = text
    module.exit_json(**result)


if __name__ == '__main__':
    main()
