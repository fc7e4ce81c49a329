# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kamailio on a PostgreSQL directory (docs/cluster.md): the real roles with the directory's
location and password (a passfile), the lab's tenants written through PostgreSQL, a playbook's
change routed within a second, and the database server stopped for 10 s while calls come in at
a steady rate: every call that needs no write routed as before, a playbook fails naming the
server and writes nothing, and everything works again by itself when the server is back."""

import os
import time

import pytest

from lab.kamailio import kamailio_lab, missing_prerequisites
from lab.postgresql import missing_prerequisites as missing_postgresql
from lab.postgresql import postgresql_lab
from lab.wire import sip_request

HERE = os.path.dirname(os.path.abspath(__file__))
CHANGE = os.path.join(HERE, 'postgresql_change.yml')  # a new extension of tenant acme
DDI_13 = '+4930123456013'
OUTAGE = 10.0                                        # seconds without the database server
CALL_RATE = 10                                       # inbound INVITEs a second meanwhile


@pytest.fixture(scope='module')
def cluster():
    reason = missing_prerequisites() or missing_postgresql()
    if reason:
        pytest.skip(reason)
    with postgresql_lab(prefix='voxplane-pg-sip-') as server:
        server.create_database('voxplane')
        bare = server.location('voxplane', password='')          # the password comes from the passfile
        with kamailio_lab(prefix='voxplane-pgsip-', kamailio_directory_path=bare,
                          kamailio_directory_password=server.password, directory_password=server.password,
                          setup=lambda instance: setattr(instance, 'directory_path', server.location('voxplane'))) \
                as kamailio:
            yield server, kamailio


def inbound(kamailio, number):
    uri = 'sip:%s@acme.sip.test' % number
    return sip_request(kamailio.trunk, kamailio.target, 'INVITE', uri, 'sip:+4989111@%s' % kamailio.trunk, uri,
                       timeout=1.0)


def test_the_router_reads_the_directory_with_its_passfile(cluster):
    _server, kamailio = cluster
    settings = open(os.path.join(kamailio.config_dir, 'kemi', 'voxplane_settings.json')).read()
    passfile = os.path.join(kamailio.config_dir, 'directory.pgpass')
    assert 'passfile=%s' % passfile in settings and _server.password not in settings
    assert oct(os.stat(passfile).st_mode & 0o777) == '0o600'


def test_a_playbook_change_is_routed_within_a_second(cluster):
    _server, kamailio = cluster
    before = inbound(kamailio, DDI_13)
    change = kamailio.provision(CHANGE, extension='13')
    ended = time.monotonic()
    assert change.rc == 0 and change.changed == 1, repr(change)
    while time.monotonic() < ended + 5.0:
        line = inbound(kamailio, DDI_13)
        if line != before:
            routed = time.monotonic() - ended
            break
        time.sleep(0.02)
    else:
        pytest.fail('the change was not routed 5 s after the playbook: %s\n%s' % (before, kamailio.log_tail()))
    print('postgresql: change routed %.2f s after the playbook ended (%s -> %s)' % (routed, before, line))
    assert routed < 1.0
    time.sleep(max(0.0, ended + 1.0 - time.monotonic()))
    assert [inbound(kamailio, DDI_13) for _probe in range(6)] == [line] * 6      # every worker


def test_ten_seconds_without_the_database_server(cluster):
    server, kamailio = cluster
    expected = inbound(kamailio, DDI_13)
    unknown = inbound(kamailio, '+4930123456014')
    server.stop()
    answers = []
    try:
        stopped = time.monotonic()
        while time.monotonic() < stopped + OUTAGE:
            started = time.monotonic()
            answers.append((inbound(kamailio, DDI_13), time.monotonic() - started))
            time.sleep(max(0.0, 1.0 / CALL_RATE - (time.monotonic() - started)))
        # a playbook meanwhile: fails naming the server, writes nothing
        change = kamailio.provision(CHANGE, extension='14')
    finally:
        server.start()
    failed = [line for line, _took in answers if line != expected]
    print('postgresql outage: %d calls in %.0f s, %d not routed as before, slowest answer %.0f ms'
          % (len(answers), OUTAGE, len(failed), max(took for _line, took in answers) * 1000))
    assert len(answers) >= OUTAGE * CALL_RATE * 0.8 and failed == []
    assert change.rc != 0 and 'cannot reach the database server' in change.stdout, repr(change)
    # back by itself: the next change is routed as before
    assert inbound(kamailio, '+4930123456014') == unknown                     # nothing was written
    change = kamailio.provision(CHANGE, extension='14')
    assert change.rc == 0 and change.changed == 1, repr(change)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and inbound(kamailio, '+4930123456014') == unknown:
        time.sleep(0.05)
    assert inbound(kamailio, '+4930123456014') == expected                    # as extension 13
