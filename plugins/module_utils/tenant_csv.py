# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CSV files of a tenant, as the admins of hosted PBX portals keep them (docs/tenant-documents.md).

Four layouts, each with a header row naming its columns (any order; UTF-8, a byte order mark
allowed; ``;`` as Excel's German export writes it, or ``,``):

- extensions: one row per extension, its SIP accounts (``account1_username``, ...), its
  numbers (``ddi``, ``external_numbers``) and the desk phone that carries its lines (``device_*``);
- phonebook: ``name``, ``number``, ``mobile``, ``company``;
- speed dials: ``extension``, ``code``, ``number``, ``name``;
- queue members: ``queue``, ``extension``, ``penalty``, ``logged_in`` (one row per member, in order).

A CSV file becomes a tenant document for state ``merged``: the extensions, entries, speed dial
lists and queues' member lists it lists get the columns it has; a column the file does not have is
left as it is (a member without ``logged_in`` keeps its login), an empty cell clears an optional
text field. Every problem is reported with the file, the row (the line
number a spreadsheet shows, the header being row 1) and the column.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import io
import os
import re

from ansible_collections.voxplane.pbx.plugins.module_utils import model
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import Violation
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    DEVICE, EXTENSION, PHONEBOOK, QUEUE, describe, parse_described,
)

EXTENSIONS, PHONEBOOK_CSV, SPEED_DIALS, QUEUE_MEMBERS = 'extensions', 'phonebook', 'speed_dials', 'queue_members'
KINDS = (EXTENSIONS, PHONEBOOK_CSV, SPEED_DIALS, QUEUE_MEMBERS)
FILE_NAMES = {EXTENSIONS: 'extensions.csv', PHONEBOOK_CSV: 'phonebook.csv', SPEED_DIALS: 'speed_dials.csv',
              QUEUE_MEMBERS: 'queue_members.csv'}

# Columns of the extensions layout -> field and how the cell is read, from the model's field table
# (model.CSV_COLUMNS, model.SUB_FIELDS): a field's cell type follows its default.
_TEXT, _BOOL, _INT, _LIST = 'text', 'bool', 'int', 'list'


def _cell_type(default):
    if isinstance(default, bool):
        return _BOOL
    if isinstance(default, int):
        return _INT
    return _LIST if isinstance(default, list) else _TEXT


_EXTENSION_DEFAULTS = model.with_defaults(EXTENSION, {})
EXTENSION_COLUMNS = tuple((field, _cell_type(_EXTENSION_DEFAULTS.get(field))) for field in model.CSV_COLUMNS[EXTENSION])
VOICEMAIL_COLUMNS = tuple(('voicemail_%s' % sub.name, sub.name, _BOOL if sub.type == 'bool' else _TEXT)
                          for sub in model.sub_fields(EXTENSION, 'voicemail'))
ACCOUNT_FIELDS = tuple(sub.name for sub in model.sub_fields(EXTENSION, 'sip_accounts'))
_ACCOUNT_BOOLEANS = tuple(sub.name for sub in model.sub_fields(EXTENSION, 'sip_accounts') if sub.type == 'bool')
DEVICE_COLUMNS = (('device_mac', 'mac'), ('device_model', 'model'), ('device_name', 'name'), ('device_lines', 'lines'))
PHONEBOOK_COLUMNS = ('name', 'number', 'mobile', 'company')
SPEED_DIAL_COLUMNS = ('extension', 'code', 'number', 'name')
# A queue's members, from the model's field table (model.SUB_FIELDS), after the queue's internal number.
QUEUE_MEMBER_COLUMNS = ('queue',) + tuple(sub.name for sub in model.sub_fields(QUEUE, 'members'))
_QUEUE_MEMBER_TYPES = dict((sub.name, {'int': 'int', 'bool': 'bool'}.get(sub.type, 'text'))
                           for sub in model.sub_fields(QUEUE, 'members'))
LIST_SEPARATOR = '|'

_ACCOUNT_COLUMN = re.compile(r'^account(?P<n>[1-9][0-9]?)_(?P<field>%s)$' % '|'.join(ACCOUNT_FIELDS))
_TRUE = ('true', 'yes', 'ja', 'y', 'j', '1', 'x', 'wahr')
_FALSE = ('false', 'no', 'nein', 'n', '0', 'falsch')


class _Sheet(object):
    """One CSV file being read: its rows, and which object and column each problem belongs to."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.violations = []
        self.rows = {}        # (kind, key) -> row number
        self.columns = {}     # (kind, key) -> {field path: column}

    def error(self, row, column, rule, message, what=None):
        self.violations.append(Violation(self.where(row, what), column, rule, message))

    def where(self, row, what=None):
        return '%s row %d%s' % (self.name, row, ' (%s)' % what if what else '')

    def locate(self, violation):
        """An engine violation about an object of this file, told as file, row and column."""
        found = parse_described(violation.obj)
        if not found or (found[0], found[1]) not in self.rows:
            return violation
        kind, key = found
        columns = self.columns.get((kind, key), {})
        column = columns.get(violation.field)
        if column is None:
            column = columns.get(violation.field.split('.')[0].split('[')[0], violation.field)
        row = self.rows[(kind, key)]
        if isinstance(column, tuple):  # a speed dial: the row of that entry
            row, column = column
        return Violation(self.where(row, violation.obj), column, violation.rule, violation.message)


def _decode(path, sheet):
    with open(path, 'rb') as handle:
        raw = handle.read()
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        row = raw[:e.start].count(b'\n') + 1
        sheet.error(row, 'file', 'encoding', 'is not UTF-8 (byte %d of the file: %s); save it as "CSV UTF-8"' % (e.start, e.reason))
        return None


def sniff_delimiter(header_line):
    """``;`` or ``,``: whichever separates the header row's column names."""
    return ';' if header_line.count(';') >= header_line.count(',') and ';' in header_line else ','


def read(path, tenant_name, options, parse_document):
    """A TenantDocument (tenant_document.parse_document of the rows) from one CSV file."""
    sheet = _Sheet(path)
    try:
        text = _decode(path, sheet)
    except (IOError, OSError) as e:
        sheet.error(0, 'src', 'file', 'cannot read it (%s)' % (e.strerror or e))
        text = None
    if text is None:
        return parse_document({}, tenant_name, path)._with(sheet)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        sheet.error(1, 'header', 'header', 'the file has no header row (the first row names the columns)')
        return parse_document({}, tenant_name, path)._with(sheet)
    delimiter = options.get('delimiter') or 'auto'
    if delimiter == 'auto':
        delimiter = sniff_delimiter(lines[0])
    reader = csv.reader(io.StringIO(text, newline=''), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
        records = []
        for record in reader:
            records.append((reader.line_num, record))
    except csv.Error as e:
        sheet.error(reader.line_num, 'file', 'csv', 'cannot be read as CSV (%s)' % e)
        return parse_document({}, tenant_name, path)._with(sheet)
    kind = options.get('kind') or _kind_of(header)
    if kind is None:
        sheet.error(1, 'header', 'header', 'the header names no known layout: an extensions file has internal_number, a '
                    'phonebook name and number, a speed dial file extension, code and number, a queue members file '
                    'queue and extension (delimiter %r)' % delimiter)
        return parse_document({}, tenant_name, path)._with(sheet)
    document = {EXTENSIONS: _read_extensions, PHONEBOOK_CSV: _read_phonebook, SPEED_DIALS: _read_speed_dials,
                QUEUE_MEMBERS: _read_queue_members}[kind](sheet, header, records)
    return parse_document(document, tenant_name, path)._with(sheet)


def _kind_of(header):
    if 'internal_number' in header:
        return EXTENSIONS
    if 'queue' in header and 'extension' in header:
        return QUEUE_MEMBERS
    if 'extension' in header and 'code' in header:
        return SPEED_DIALS
    if 'name' in header and 'number' in header:
        return PHONEBOOK_CSV
    return None


def _check_header(sheet, header, known, required):
    for i, column in enumerate(header):
        if column and column not in known and not _ACCOUNT_COLUMN.match(column):
            sheet.error(1, column or 'column %d' % (i + 1), 'unsupported', 'is not a column of this layout (known: %s)'
                        % ', '.join(known))
    seen = set()
    for column in header:
        if column and column in seen:
            sheet.error(1, column, 'unique', 'the column is named twice in the header')
        seen.add(column)
    for column in required:
        if column not in header:
            sheet.error(1, column, 'required', 'the header must have this column')


def _cells(header, record):
    return dict((column, record[i].strip() if i < len(record) else '') for i, column in enumerate(header) if column)


def _value(sheet, row, column, cell, how, what):
    """A cell as the document value: None when empty (left as is) for booleans and numbers."""
    if how == _TEXT:
        return cell
    if how == _LIST:
        return [part.strip() for part in cell.split(LIST_SEPARATOR) if part.strip()]
    if cell == '':
        return None
    if how == _BOOL:
        if cell.lower() in _TRUE:
            return True
        if cell.lower() in _FALSE:
            return False
        sheet.error(row, column, 'type', '%r is not true or false (also accepted: yes/no, ja/nein, 1/0)' % cell, what)
        return None
    try:
        return int(cell)
    except ValueError:
        sheet.error(row, column, 'type', '%r is not a whole number' % cell, what)
        return None


def _read_extensions(sheet, header, records):
    account_columns = sorted(set(int(m.group('n')) for m in (_ACCOUNT_COLUMN.match(c) for c in header) if m))
    known = [column[0] for column in EXTENSION_COLUMNS + VOICEMAIL_COLUMNS + DEVICE_COLUMNS]
    known += ['account<N>_%s' % f for f in ACCOUNT_FIELDS]
    _check_header(sheet, header, known, ('internal_number',))
    extensions, devices = [], []
    for row, record in records:
        if not any(cell.strip() for cell in record):
            continue  # an empty line
        cells = _cells(header, record)
        key = cells.get('internal_number', '')
        if not key:
            sheet.error(row, 'internal_number', 'required', 'every row needs the internal number of its extension')
            continue
        what = describe(EXTENSION, key)
        ext = {'internal_number': key}
        columns = {'internal_number': 'internal_number'}
        for column, how in EXTENSION_COLUMNS[1:]:
            if column in cells:
                value = _value(sheet, row, column, cells[column], how, what)
                if value is not None:
                    ext[column] = value
                columns[column] = column
        voicemail = {}
        for column, field, how in VOICEMAIL_COLUMNS:
            if column in cells:
                value = _value(sheet, row, column, cells[column], how, what)
                if value not in (None, ''):
                    voicemail[field] = value
                columns['voicemail.%s' % field] = column
        if voicemail:
            ext['voicemail'] = voicemail
            columns['voicemail'] = 'voicemail_enabled'
        if account_columns:
            accounts = []
            for n in account_columns:
                username = cells.get('account%d_username' % n, '')
                if not username:
                    if any(cells.get('account%d_%s' % (n, f)) for f in ACCOUNT_FIELDS[1:]):
                        sheet.error(row, 'account%d_username' % n, 'required',
                                    'account %d has a kind or credential but no username' % n, what)
                    continue
                account = {'username': username}
                for field in ACCOUNT_FIELDS[1:]:
                    column = 'account%d_%s' % (n, field)
                    if cells.get(column):
                        value = cells[column]
                        if field in _ACCOUNT_BOOLEANS:
                            value = _value(sheet, row, column, value, _BOOL, what)
                        if value is not None:
                            account[field] = value
                position = len(accounts)
                for field in ACCOUNT_FIELDS:
                    columns['sip_accounts[%d].%s' % (position, field)] = 'account%d_%s' % (n, field)
                columns['sip_accounts[%d]' % position] = 'account%d_username' % n
                accounts.append(account)
            ext['sip_accounts'] = accounts
            columns['sip_accounts'] = 'account%d_username' % account_columns[0]
        mac = cells.get('device_mac', '')
        if mac:
            device = {'mac': mac}
            for column, field in DEVICE_COLUMNS[1:3]:
                if cells.get(column):
                    device[field] = cells[column]
            if cells.get('device_lines'):
                device['lines'] = _value(sheet, row, 'device_lines', cells['device_lines'], _LIST, what)
            else:
                device['lines'] = [a['username'] for a in ext.get('sip_accounts', []) if a.get('kind', 'desk_phone') == 'desk_phone']
            devices.append(device)
            sheet.rows[(DEVICE, mac)] = row
            sheet.columns[(DEVICE, mac)] = dict((field, column) for column, field in DEVICE_COLUMNS)
        if (EXTENSION, key) in sheet.rows:
            sheet.error(row, 'internal_number', 'requested_twice', 'extension %s is already in row %d'
                        % (key, sheet.rows[(EXTENSION, key)]), what)
            continue
        sheet.rows[(EXTENSION, key)] = row
        sheet.columns[(EXTENSION, key)] = columns
        extensions.append(ext)
    document = {'extensions': extensions}
    if devices:
        document['devices'] = devices
    return document


def _read_phonebook(sheet, header, records):
    _check_header(sheet, header, PHONEBOOK_COLUMNS, ('name', 'number'))
    entries = []
    for row, record in records:
        if not any(cell.strip() for cell in record):
            continue
        cells = _cells(header, record)
        name = ' '.join(cells.get('name', '').split())
        if not name:
            sheet.error(row, 'name', 'required', 'every phonebook entry needs a name')
            continue
        if (PHONEBOOK, name) in sheet.rows:
            sheet.error(row, 'name', 'requested_twice', '%s is already in row %d' % (name, sheet.rows[(PHONEBOOK, name)]),
                        describe(PHONEBOOK, name))
            continue
        entry = {'name': name}
        for column in PHONEBOOK_COLUMNS[1:]:
            if column in cells:
                entry[column] = cells[column]
        sheet.rows[(PHONEBOOK, name)] = row
        sheet.columns[(PHONEBOOK, name)] = dict((c, c) for c in PHONEBOOK_COLUMNS)
        entries.append(entry)
    return {'phonebook': entries}


def _read_speed_dials(sheet, header, records):
    _check_header(sheet, header, SPEED_DIAL_COLUMNS, ('extension', 'code', 'number'))
    by_extension = {}
    for row, record in records:
        if not any(cell.strip() for cell in record):
            continue
        cells = _cells(header, record)
        ext = cells.get('extension', '')
        if not ext:
            sheet.error(row, 'extension', 'required', 'every speed dial names its extension')
            continue
        dials = by_extension.setdefault(ext, [])
        position = len(dials)
        dial = dict((column, cells[column]) for column in SPEED_DIAL_COLUMNS[1:] if column in cells)
        dials.append(dial)
        sheet.rows.setdefault((EXTENSION, ext), row)
        columns = sheet.columns.setdefault((EXTENSION, ext), {'internal_number': 'extension', 'speed_dials': 'code'})
        for column in SPEED_DIAL_COLUMNS[1:]:
            columns['speed_dials[%d].%s' % (position, column)] = (row, column)
        columns['speed_dials[%d]' % position] = (row, 'code')
    return {'extensions': [{'internal_number': ext, 'speed_dials': dials} for ext, dials in by_extension.items()]}


def _read_queue_members(sheet, header, records):
    """One row per member: the rows of a queue, in their order, are its members (they replace its stored
    list; a member without a logged_in cell keeps its login, as with the queue module)."""
    _check_header(sheet, header, QUEUE_MEMBER_COLUMNS, ('queue', 'extension'))
    by_queue = {}
    for row, record in records:
        if not any(cell.strip() for cell in record):
            continue
        cells = _cells(header, record)
        queue = cells.get('queue', '')
        if not queue:
            sheet.error(row, 'queue', 'required', 'every row names the internal number of its queue')
            continue
        what = describe(QUEUE, queue)
        members = by_queue.setdefault(queue, [])
        position = len(members)
        member = {}
        for column in QUEUE_MEMBER_COLUMNS[1:]:
            if column in cells:
                value = _value(sheet, row, column, cells[column], _QUEUE_MEMBER_TYPES[column], what)
                if value not in (None, ''):
                    member[column] = value
        members.append(member)
        sheet.rows.setdefault((QUEUE, queue), row)
        columns = sheet.columns.setdefault((QUEUE, queue), {'internal_number': 'queue', 'members': 'extension'})
        for column in QUEUE_MEMBER_COLUMNS[1:]:
            columns['members[%d].%s' % (position, column)] = (row, column)
        columns['members[%d]' % position] = (row, 'extension')
    return {'queues': [{'internal_number': queue, 'members': members} for queue, members in by_queue.items()]}


# Export -------------------------------------------------------------------------------------------------

def _cell(value):
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(v) for v in value)
    return str(value)


def render(document, delimiter=';'):
    """{layout: CSV text} for a tenant document (tenant_info's shape), and what the CSV layouts cannot
    hold (a device whose lines are not all one extension's, a second device of an extension)."""
    extensions = document.get('extensions') or []
    # A voicemail or account column is written when some extension's document has that sub-field: never a
    # password or PIN (an export has none), the stored HA1 and PIN hash with secrets, require_tls where set.
    voicemail = [c for c in VOICEMAIL_COLUMNS if any(c[1] in (e.get('voicemail') or {}) for e in extensions)]
    account_fields = [f for f in ACCOUNT_FIELDS if any(f in a for e in extensions for a in e.get('sip_accounts', []))]
    owner = {}
    for ext in extensions:
        for acc in ext.get('sip_accounts', []):
            owner[acc['username']] = ext['internal_number']
    device_of, skipped = {}, []
    for device in document.get('devices') or []:
        owners = set(owner.get(line) for line in device.get('lines', []))
        if len(owners) != 1 or None in owners:
            skipped.append('device %s: its lines are not the accounts of one extension' % device['mac'])
        elif next(iter(owners)) in device_of:
            skipped.append('device %s: extension %s has a device in the file already' % (device['mac'], next(iter(owners))))
        else:
            device_of[next(iter(owners))] = device
    accounts = max([len(e.get('sip_accounts', [])) for e in extensions] + [1])
    header = [column[0] for column in EXTENSION_COLUMNS] + [column[0] for column in voicemail]
    for n in range(1, accounts + 1):
        header += ['account%d_%s' % (n, field) for field in account_fields]
    header += [column[0] for column in DEVICE_COLUMNS]
    rows = []
    for ext in extensions:
        row = [_cell(ext.get(column[0])) for column in EXTENSION_COLUMNS]
        row += [_cell((ext.get('voicemail') or {}).get(column[1])) for column in voicemail]
        accs = ext.get('sip_accounts', [])
        for n in range(accounts):
            acc = accs[n] if n < len(accs) else {}
            row += [_cell(acc.get(field, False if acc and field in _ACCOUNT_BOOLEANS else None)) for field in account_fields]
        device = device_of.get(ext['internal_number'], {})
        row += [_cell(device.get(column[1])) for column in DEVICE_COLUMNS]
        rows.append(row)
    out = {EXTENSIONS: _write(header, rows, delimiter)}
    out[PHONEBOOK_CSV] = _write(list(PHONEBOOK_COLUMNS), [[_cell(e.get(c)) for c in PHONEBOOK_COLUMNS]
                                                          for e in document.get('phonebook') or []], delimiter)
    dials = [[ext['internal_number'], d['code'], d['number'], _cell(d.get('name'))]
             for ext in extensions for d in ext.get('speed_dials', [])]
    out[SPEED_DIALS] = _write(list(SPEED_DIAL_COLUMNS), dials, delimiter)
    members = [[queue['internal_number']] + [_cell(member.get(column)) for column in QUEUE_MEMBER_COLUMNS[1:]]
               for queue in document.get('queues') or [] for member in queue.get('members', [])]
    out[QUEUE_MEMBERS] = _write(list(QUEUE_MEMBER_COLUMNS), members, delimiter)
    return out, skipped


def _write(header, rows, delimiter):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator='\r\n')
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
