# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the directory-core tests: a real SQLite directory in tmp_path,
request builders with seed-flavoured data, and violation assertions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sqlite3

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils.errors import ValidationFailed
from lab import table_rows
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

DOMAIN = 'acme.voxplane.example'
BETA_DOMAIN = 'beta.voxplane.example'
PASSWORD = 'Sommer-2024!'
HQ = {'name': 'hq', 'street': 'Hauptstraße 1', 'postal_code': '10115', 'city': 'Berlin'}
BRANCH = {'name': 'hamburg', 'street': 'Jungfernstieg 7', 'postal_code': '20354', 'city': 'Hamburg'}

# A Berlin block: base +49 30 1234 with the DDI range 00-99 (ecotel: head number + DDI block).
BLOCK = '+49301234'
BLOCK_RANGE = '00-99'
SINGLE = '+4930999001'
INTERIM = '+4932211234567'   # ecotel: free 032 interim number, e.g. 03221 1234567
# The tenant's voicemail server (tenant media_server), which voicemail needs; in canonical form.
MEDIA_SERVER = 'sip:media.acme.voxplane.example:5060'


def tenant_request(domain=DOMAIN, smart=5, best=1, client_complete=0, locations=None, **extra):
    """A tenant with an emergency address and licences (ecotel seats smart/best + add-on)."""
    request = {
        'display_name': 'ACME GmbH',
        'sip_domain': domain,
        'locations': [dict(HQ)] if locations is None else locations,
        'licences': {'seats': {'smart': smart, 'best': best}, 'addons': {'client_complete': client_complete}},
    }
    request.update(extra)
    return request


def account(username, kind='desk_phone', password=PASSWORD):
    acc = {'username': username, 'kind': kind}
    if password is not None:
        acc['password'] = password
    return acc


def extension(*accounts, **fields):
    request = {'name': fields.pop('name', 'Max Mustermann')}
    if accounts:
        request['sip_accounts'] = list(accounts)
    request.update(fields)
    return request


def block(ddi_range=BLOCK_RANGE, **fields):
    return dict({'ddi_range': ddi_range}, **fields)


class Harness(object):
    """One real directory database (a SQLite file, or a PostgreSQL database of the lab's
    server) and the ways the tests use it."""

    def __init__(self, path):
        # ``path``: the directory location, a file path or a PostgreSQL URL.
        self.path = str(path)
        self.directory = Directory(self.path)
        self.backend = self.directory.dialect.name
        # The location as the store's messages show it (a PostgreSQL password masked).
        self.shown = self.directory.dialect.path

    def sql(self, statement, params=()):
        """Run one statement with ``?`` placeholders outside the store (its own connection,
        committed at once): the rows it returns, [] for one that returns none."""
        if self.backend == 'sqlite':
            conn = sqlite3.connect(self.path)
            try:
                rows = conn.execute(statement, params).fetchall()
                conn.commit()
                return rows
            finally:
                conn.close()
        import psycopg  # pylint: disable=import-outside-toplevel
        with psycopg.connect(self.path, autocommit=True) as conn:
            cursor = conn.execute(self.directory.dialect.sql(statement), tuple(params))
            return cursor.fetchall() if cursor.description is not None else []

    def apply(self, tenant, tenant_request=None, children=None, purge=(), whole_tenant=False, audio=None):
        # Provisioning, like the directory role, creates the folder of a new directory.
        with self.directory.transaction(create_parents=True) as txn:
            return reconcile(txn, tenant, tenant_request, children, purge, whole_tenant=whole_tenant, audio=audio)

    def reject(self, tenant, tenant_request=None, children=None, purge=(), whole_tenant=False, audio=None):
        """Run a reconcile that must fail; prove that it wrote nothing; return the violations."""
        before = self.snapshot() or {}
        with pytest.raises(ValidationFailed) as info:
            self.apply(tenant, tenant_request, children, purge, whole_tenant, audio)
        # (a first transaction on a new file leaves an empty file: no tables, no rows)
        assert (self.snapshot() or {}) == before, 'a failed reconcile changed the database'
        for violation in info.value.violations:
            assert violation.obj and violation.field and violation.rule and violation.message, repr(violation)
        return info.value.violations

    def load(self, tenant):
        with self.directory.transaction(write=False, create=False) as txn:
            return txn.load_tenant(tenant)

    def generation(self):
        with self.directory.transaction(write=False, create=False) as txn:
            return txn.generation()['generation']

    def snapshot(self):
        """Every row of every table, read outside the store (None: no file yet)."""
        return table_rows(self.path)


def harness(request, tmp_path, backend=None):
    """A Harness on an empty directory of the backend the test is parametrised with (see
    conftest's ``pbx``): a schema of its own in the lab server's test database, dropped when the
    test ends."""
    backend = backend or getattr(request, 'param', 'sqlite')
    if backend == 'sqlite':
        return Harness(tmp_path / 'directory.db')
    server = request.getfixturevalue('postgresql_server')
    location = server.create_schema()
    request.addfinalizer(lambda: server.drop_schema(location))
    return Harness(location)


def expect(violations, obj, field, rule, *fragments):
    """The one violation on obj/field/rule; its message contains every fragment."""
    found = [v for v in violations if (v.obj, v.field, v.rule) == (obj, field, rule)]
    assert found, 'no violation %s / %s / %s among:\n%s' % (obj, field, rule, '\n'.join(map(str, violations)))
    for v in found:
        text = str(v)
        assert obj in text and field in text and rule in text
        if all(f in v.message for f in fragments):
            return v
    raise AssertionError('message of %s lacks %r: %s' % (rule, fragments, [v.message for v in found]))


def only(violations, obj, field, rule, *fragments):
    """Like expect(), and nothing else was reported."""
    v = expect(violations, obj, field, rule, *fragments)
    assert len(violations) == 1, '\n'.join(map(str, violations))
    return v
