# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directory schema, as forward migrations.

Columns hold what the database itself must enforce or look up: keys,
uniqueness across tenants (SIP domains, numbers, MACs, SIP usernames) and
references between rows. The remaining fields of an object live in ``doc``,
a JSON text column, so that a new optional field needs no migration; a
migration that reshapes documents is an entry here like any other.

Each migration is a list of statements written once in the common subset of
SQL; a dialect may rewrite types (see store.py) but never the meaning.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# (version, description, statements). Append only: a released migration never changes.
MIGRATIONS = [
    (1, 'tenants, numbers, extensions, SIP accounts, devices, groups, generation counter', [
        """CREATE TABLE voxplane_generation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation BIGINT NOT NULL,
            changed_at TEXT NOT NULL
        )""",
        "INSERT INTO voxplane_generation (id, generation, changed_at) VALUES (1, 0, '1970-01-01T00:00:00Z')",
        """CREATE TABLE tenants (
            id {serial},
            name TEXT NOT NULL UNIQUE,
            sip_domain TEXT NOT NULL UNIQUE,
            doc TEXT NOT NULL
        )""",
        """CREATE TABLE extensions (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            internal_number TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant_id, internal_number)
        )""",
        """CREATE TABLE sip_accounts (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            extension_id INTEGER NOT NULL REFERENCES extensions (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            username TEXT NOT NULL,
            kind TEXT NOT NULL,
            ha1 TEXT NOT NULL,
            UNIQUE (tenant_id, username)
        )""",
        """CREATE TABLE call_groups (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            internal_number TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant_id, internal_number)
        )""",
        """CREATE TABLE numbers (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            number TEXT NOT NULL UNIQUE,
            doc TEXT NOT NULL
        )""",
        """CREATE TABLE number_claims (
            e164 TEXT PRIMARY KEY,
            number_id INTEGER NOT NULL REFERENCES numbers (id) ON DELETE CASCADE,
            tenant_id INTEGER NOT NULL REFERENCES tenants (id)
        )""",
        """CREATE TABLE devices (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            mac TEXT NOT NULL UNIQUE,
            doc TEXT NOT NULL
        )""",
        "CREATE INDEX sip_accounts_extension ON sip_accounts (extension_id)",
        "CREATE INDEX number_claims_number ON number_claims (number_id)",
        "CREATE INDEX extensions_tenant ON extensions (tenant_id)",
        "CREATE INDEX numbers_tenant ON numbers (tenant_id)",
        "CREATE INDEX devices_tenant ON devices (tenant_id)",
        "CREATE INDEX call_groups_tenant ON call_groups (tenant_id)",
    ]),
    # The router rebuilds only the tenants whose generation moved (snapshot.py): every write
    # transaction sets the generation it commits on each tenant it touched (store.py).
    (2, 'per-tenant generation: the directory generation that last changed each tenant', [
        "ALTER TABLE tenants ADD COLUMN generation BIGINT NOT NULL DEFAULT 0",
        "UPDATE tenants SET generation = (SELECT generation FROM voxplane_generation WHERE id = 1)",
    ]),
    (3, 'tenant phonebook', [
        """CREATE TABLE phonebook_entries (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            name TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant_id, name)
        )""",
    ]),
    # The registrar reads it with the HA1: an account that may only use TLS (or secure WebSocket).
    (4, 'SIP accounts that require TLS', [
        "ALTER TABLE sip_accounts ADD COLUMN require_tls INTEGER NOT NULL DEFAULT 0",
    ]),
    # The media service's own data (docs/media.md). Messages and a mailbox's greetings and PIN
    # failures are written by the media service, never by a module's reconcile: they are not part
    # of a tenant document. Every change to a mailbox moves voicemail_serial (and the mailbox's
    # serial to it), which is what the message-waiting NOTIFYs follow; the directory generation
    # (the router's reloads) does not move. Announcements are a kind of the directory like the
    # phonebook; their audio, like recorded greetings, is a row of audio (per tenant, by SHA-256).
    (5, 'voicemail messages, mailboxes, audio, announcements', [
        """CREATE TABLE voicemail_messages (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            extension_id INTEGER NOT NULL REFERENCES extensions (id) ON DELETE CASCADE,
            folder TEXT NOT NULL,
            received_at TEXT NOT NULL,
            duration_ms INTEGER NOT NULL,
            file TEXT NOT NULL,
            doc TEXT NOT NULL
        )""",
        "CREATE INDEX voicemail_messages_extension ON voicemail_messages (extension_id, folder)",
        """CREATE TABLE mailboxes (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            extension_id INTEGER NOT NULL UNIQUE REFERENCES extensions (id) ON DELETE CASCADE,
            serial BIGINT NOT NULL,
            doc TEXT NOT NULL
        )""",
        "CREATE INDEX mailboxes_serial ON mailboxes (serial)",
        "CREATE TABLE voicemail_serial (id INTEGER PRIMARY KEY CHECK (id = 1), serial BIGINT NOT NULL)",
        "INSERT INTO voicemail_serial (id, serial) VALUES (1, 0)",
        """CREATE TABLE audio (
            tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            hash TEXT NOT NULL,
            duration_ms INTEGER NOT NULL,
            data {blob} NOT NULL,
            PRIMARY KEY (tenant_id, hash)
        )""",
        """CREATE TABLE announcements (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            name TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant_id, name)
        )""",
        "CREATE INDEX announcements_tenant ON announcements (tenant_id)",
    ]),
    # IVR menus, call queues and conference rooms (keyed by their internal number, which they share with
    # extensions and groups: integrity.py checks that across the tables) and schedules (business hours,
    # keyed by name like announcements). Tables of the directory like call_groups: the media service reads
    # them (docs/media.md); a queue member's login state is a field of its queue's doc.
    (6, 'IVR menus, queues, conference rooms, schedules', [
        """CREATE TABLE ivr_menus (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            internal_number TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant_id, internal_number)
        )""",
        """CREATE TABLE call_queues (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            internal_number TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant_id, internal_number)
        )""",
        """CREATE TABLE conference_rooms (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            internal_number TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant_id, internal_number)
        )""",
        """CREATE TABLE schedules (
            id {serial},
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            name TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant_id, name)
        )""",
        "CREATE INDEX ivr_menus_tenant ON ivr_menus (tenant_id)",
        "CREATE INDEX call_queues_tenant ON call_queues (tenant_id)",
        "CREATE INDEX conference_rooms_tenant ON conference_rooms (tenant_id)",
        "CREATE INDEX schedules_tenant ON schedules (tenant_id)",
    ]),
]

LATEST_VERSION = MIGRATIONS[-1][0]
