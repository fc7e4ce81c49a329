# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The directory connection, shared by every module of the collection.
    DOCUMENTATION = r'''
requirements:
  - Python 3.9 or newer on the host that holds the directory (the module runs there), with the
    standard library's C(sqlite3) and C(zoneinfo) modules.
  - For a directory on PostgreSQL, a PostgreSQL driver for that Python, C(psycopg) (version 3) or
    C(psycopg2) (Debian/Ubuntu C(python3-psycopg2) or C(python3-psycopg), RHEL/Fedora C(python3-psycopg2),
    or C(pip install psycopg[binary])), on the host the module runs on (any host that reaches the database).
  - IANA time zone data on that host, from the system (Debian/Ubuntu/RHEL package C(tzdata)) or
    the C(tzdata) Python package. Without it, or without C(sqlite3), the task fails naming what
    is missing and what to install.
options:
  directory:
    description:
      - Location of the directory database.
      - A file path selects SQLite; the file and its schema are created on first use
        and migrated forward when the collection brings a newer schema. One file on one host is the
        default and the right choice for one SIP server.
      - A PostgreSQL connection string selects PostgreSQL, the choice for several SIP servers sharing one
        directory (see C(docs/cluster.md)), as a URL (V(postgresql://voxplane@db1.example.net:5432/voxplane?sslmode=verify-full))
        or as libpq keyword/value pairs (V(host=db1.example.net port=5432 dbname=voxplane user=voxplane sslmode=verify-full)).
        Every libpq option works (C(sslmode), C(sslrootcert), C(connect_timeout), C(passfile),
        C(options=-csearch_path=...) for a schema of its own, ...). The database must exist (the
        C(voxplane.pbx.postgresql) role creates it); its schema is created and migrated like a file's.
      - The password of a PostgreSQL location comes from O(directory_password), from the location itself (shown
        as C(********) in every message, but not masked in task output, so prefer O(directory_password)), or from
        libpq's own sources, the environment variable E(PGPASSWORD) and the file C(~/.pgpass).
      - Set it once for a play with C(module_defaults) and the action group
        C(group/voxplane.pbx.directory), or with the environment variable E(VOXPLANE_DIRECTORY).
    type: str
    default: /var/lib/voxplane/directory.db
  directory_password:
    description:
      - The password of the PostgreSQL user of a PostgreSQL O(directory), from a vault for example.
        A password in the location itself takes precedence. Ignored for a SQLite file.
      - Can also be set with the environment variable E(VOXPLANE_DIRECTORY_PASSWORD) (libpq's E(PGPASSWORD) and
        C(~/.pgpass) work too).
    type: str
    version_added: 0.3.0
  create_parents:
    description:
      - Whether a new directory file may also create the missing folders of its path.
      - When V(false), a O(directory) in a folder that does not exist fails the task, naming the
        folder, and nothing is created (a typo in the path does not grow a new tree of folders).
      - Modules that only read never create anything; they accept the option so that
        C(module_defaults) can set it for the whole action group.
    type: bool
    default: false
notes:
  - The file must be a voxplane directory, an empty file or a path that does not exist yet. A SQLite
    database of another application, or a file that is not a SQLite database, is refused before
    anything is written; so is a path that is a folder. Likewise a PostgreSQL schema (the first of the
    search path, C(public) unless the location says otherwise) must be empty or hold a voxplane directory.
  - On PostgreSQL, write transactions queue on a lock of their own (as on SQLite), so two playbooks or a playbook
    and a feature code never both commit a state that breaks a rule checked across objects (a licence count, a
    reference); a task that waits for another writer longer than 10 s fails naming the lock. A task run while the
    database server cannot be reached fails naming the server's answer and writes nothing; the SIP servers keep
    routing from their snapshots meanwhile.
  - "Storage errors name the file and the reason, with the operating system's reason where there is
    one, for example \"directory /srv/pbx/directory.db: cannot write: the folder /srv/pbx is read-only (Permission denied)\",
    or the database and the server's reason, with a password masked, for example
    \"directory postgresql://voxplane:********@db1:5432/voxplane: the server refused the login (password authentication failed for user \"voxplane\")\"."
  - Every task runs in one transaction and either writes all of its changes or none.
    A write bumps the directory generation, which the Kamailio router watches to reload its snapshot; every
    SIP node of a cluster sharing a PostgreSQL directory routes the change within a second (C(docs/cluster.md)).
  - The module works on the directory of the host it runs on. To manage the directory of the
    PBX host from a play that targets other hosts, use C(delegate_to) that host, or run the
    play against it.
'''

    # Attributes of a module that changes the directory.
    STATE = r'''
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details:
      - Check mode runs the same code inside the transaction and rolls it back, so the diff is the real one.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details:
      - Secrets (SIP passwords, voicemail PINs) show as set or changed, never as values.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
  action_group:
    description: Use C(group/voxplane.pbx.directory) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - voxplane.pbx.directory
'''

    # Attributes of an *_info module.
    INFO = r'''
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details:
      - The module only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: N/A
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
  action_group:
    description: Use C(group/voxplane.pbx.directory) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - voxplane.pbx.directory
'''
