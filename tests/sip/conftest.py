# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIP test fixtures: the session's Kamailio, from the lab (tests/lab/kamailio.py).

``kamailio``: the real roles/kamailio renders and starts Kamailio on a random 127.0.0.x and a
free high port, daemon mode (pid file) and a log file in a temporary tree; the lab waits until
it answers OPTIONS, provisions tests/lab/playbooks/tenants.yml (tenants acme and beta, whose
trunk address is the neighbouring 127.0.0.x: ``kamailio.trunk``, port ``kamailio.trunk_port``,
where tests run the trunk stand-in sipp) and waits until the workers route with it. At teardown
it stops Kamailio and removes the tree (VOXPLANE_SIP_KEEP=1 keeps it).

Needs root (Kamailio drops to the kamailio user itself, -u/-g), kamailio and sipp; without
them the tests are skipped with the reason.
"""

import pytest

from lab.kamailio import kamailio_lab, missing_prerequisites


@pytest.fixture(scope='session')
def kamailio():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    with kamailio_lab(prefix='voxplane-sip-') as instance:
        yield instance
