# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call detail records in PostgreSQL (the directory's database, a real server from tests/lab): the
kamailio role with kamailio_cdr_database on PostgreSQL, Kamailio's acc writing through db_postgres,
and the "call details only" role: a PostgreSQL role with SELECT on voxplane_cdr alone, with which
cdr_info reads the tenant's calls and a directory module fails."""

import json
import os
import secrets

import pytest

from lab.calls import call, report, scene
from lab.kamailio import kamailio_lab, missing_prerequisites, settle
from lab.postgresql import missing_prerequisites as missing_postgresql
from lab.postgresql import postgresql_lab
from lab.sipp import Phone

HERE = os.path.dirname(os.path.abspath(__file__))
CDR_ONLY = os.path.join(HERE, 'cdr_only.yml')


@pytest.fixture(scope='module')
def pbx():
    reason = missing_prerequisites() or missing_postgresql()
    if reason:
        pytest.skip(reason)
    with postgresql_lab(prefix='voxplane-pg-cdr-') as server:
        server.create_database('voxplane')
        bare = server.location('voxplane', password='')
        with kamailio_lab(prefix='voxplane-pgcdr-', kamailio_directory_path=bare,
                          kamailio_directory_password=server.password, directory_password=server.password,
                          kamailio_cdr_database=bare, kamailio_cdr_password=server.password,
                          setup=lambda instance: setattr(instance, 'directory_path', server.location('voxplane'))) \
                as kamailio:
            yield server, kamailio


def test_kamailio_writes_the_records_into_postgresql_and_a_select_only_role_reads_them(pbx):
    server, kamailio = pbx
    bert = Phone(kamailio, 'bert.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '11'), answer=bert)
    assert caller.rc == 0, report(kamailio, caller=caller)
    assert settle(kamailio.ctl_socket) is not None
    rows = server.sql("SELECT tenant, method FROM voxplane_cdr", dbname='voxplane')
    assert rows == [('acme', 'BYE')], (rows, kamailio.log_tail())
    password = secrets.token_hex(10)
    server.sql("CREATE ROLE calls_reader LOGIN PASSWORD '%s'" % password)
    server.sql('GRANT CONNECT ON DATABASE voxplane TO calls_reader')
    server.sql('GRANT USAGE ON SCHEMA public TO calls_reader', dbname='voxplane')
    server.sql('GRANT SELECT ON voxplane_cdr TO calls_reader', dbname='voxplane')
    out = os.path.join(kamailio.workdir, 'cdr-only.json')
    run = kamailio.playbook(CDR_ONLY, dict(cdr_database=server.location('voxplane', user='calls_reader', password=''),
                                           reader_password=password, out=out))
    assert run.rc == 0, run
    with open(out) as handle:
        got = json.load(handle)
    calls = got['calls']
    assert calls['count'] == 1 and calls['records'][0]['disposition'] == 'answered', calls
    assert calls['records'][0]['caller_account'] == 'anna.desk', calls
    assert got['directory'].get('failed') is True, got['directory']
    # The role sees no table of the directory (information_schema lists only what it may use), so the
    # directory modules refuse the database outright; a table it could name would be permission denied.
    msg = got['directory']['msg']
    assert 'not a voxplane directory' in msg or 'permission denied' in msg, got['directory']
    assert password not in json.dumps(got)
