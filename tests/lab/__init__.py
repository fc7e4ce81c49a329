# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test lab: one place for everything the suites, the benchmarks and the demo start or
talk to. Every suite imports it the same way (``import lab...``: pytest.ini puts tests/ on the
path; bench/ and playbooks/demo/ have one path line each, in ``lab_path.py``).

Modules (docs/architecture.md, "The test lab"):

- ``lab.playbook``     ansible-playbook against localhost with this checkout's collection
- ``lab.net``          loopback addresses, free ports, waiting for a condition or a bound port
- ``lab.wire``         SIP on the wire: one message parser, one digest, one raw UDP peer, probes
- ``lab.mwi``          the message-waiting lamp as a phone sees it: a raw subscriber, NOTIFY bodies
- ``lab.sipp``         sipp runs and traces, a registered phone, a listening socket
- ``lab.kamailio``     a Kamailio deployed by the real role (``kamailio_lab()``), provisioned
- ``lab.calls``        calls and phones of the SIP tests' tenants (tenants.yml)
- ``lab.rtpengine``    rtpengine deployed by the real role
- ``lab.nat``          an office behind a masquerading NAT router (namespaces), baresip phones, RTP
- ``lab.fuzz``         the SIP fuzzer's message generator and runner
- ``lab.directories``  large benchmark directories built with the collection's own engine
- ``lab.documents``    tenant documents of any size (tenant_config, the scale benchmark)

Data: ``playbooks/`` (deploy, tenants, rtpengine: the playbooks the lab runs) and ``scenarios/``
(sipp scenarios).
"""

import os
import sqlite3

LAB = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(LAB))
PLAYBOOKS = os.path.join(LAB, 'playbooks')
SCENARIOS = os.path.join(LAB, 'scenarios')


def table_rows(path):
    """Every row of every table of the directory at ``path`` (a SQLite file, read with plain
    sqlite3, or a PostgreSQL location, read with psycopg), sorted, so that two reads compare equal
    when nothing was written; None when there is no file ({} for a database without tables)."""
    if path.startswith('postgresql://'):
        return _postgresql_rows(path)
    if not os.path.exists(path):
        return None
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return dict((t, sorted(conn.execute('SELECT * FROM "%s"' % t).fetchall(), key=repr)) for t in tables)
    finally:
        conn.close()


def _postgresql_rows(location):
    import psycopg  # pylint: disable=import-outside-toplevel
    with psycopg.connect(location, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute('SELECT table_name FROM information_schema.tables '
                                             'WHERE table_schema = current_schema() ORDER BY table_name')]
        return dict((t, sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                                for row in conn.execute('SELECT * FROM "%s"' % t)), key=repr)) for t in tables)


def read_text(path, offset=0):
    """The text of a file from byte ``offset`` on (invalid UTF-8 replaced), '' when it cannot be read."""
    try:
        with open(path, 'rb') as handle:
            handle.seek(offset)
            return handle.read().decode('utf-8', 'replace')
    except OSError:
        return ''
