# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attack suite fixtures: a Kamailio of its own, from the lab's kamailio_lab as in tests/sip
(the real roles/kamailio, a random 127.0.0.x, a free port, daemon mode, a log file, provisioned
with tests/lab/playbooks/tenants.yml), so that the bans this suite provokes never touch the SIP
suite's server.

Its abuse settings are attack_harness.role_variables(): 10 authentication failures in 60 s or
more than 100 requests in 2 s ban an unknown address for 900 s, an address that authenticated
recently gets 503 above 3000 requests in 2 s instead; the fuzzer's and the prober's addresses
are in kamailio_ban_exempt (the fuzz stage tests the parser and the router, not the
ban). Attackers get their own 127.0.0.x (fixture ``attacker``), never Kamailio's address nor the
trunk stand-in's. At the end of the run the suite's report (tool runs, fuzz counts) is printed
and written to build/test-results/attack-summary.txt (VOXPLANE_ATTACK_SUMMARY overrides the path).

Environment: VOXPLANE_FUZZ_MESSAGES (default 2000), VOXPLANE_FUZZ_SEED (default 1),
VOXPLANE_SIP_KEEP=1 keeps the temporary tree.
"""

import os

import pytest

from attack_harness import REPORT, results_dir, role_variables
from lab.kamailio import LabError, kamailio_lab, missing_prerequisites
from lab.net import AddressPool

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ('test_sipvicious.py', 'test_defences.py', 'test_office.py', 'test_fuzz.py')


def pytest_collection_modifyitems(items):
    """The SIPVicious runs first, the fuzz stage last (it checks the process tree and memory).
    Only this suite's items move, within the places they already hold."""
    def rank(item):
        return ORDER.index(os.path.basename(str(item.path)))

    slots = [i for i, item in enumerate(items) if os.path.dirname(str(item.path)) == HERE
             and os.path.basename(str(item.path)) in ORDER]
    ordered = sorted((items[i] for i in slots), key=rank)
    for slot, item in zip(slots, ordered):
        items[slot] = item


class Deployment(object):
    """The session's Kamailio, or why it did not come up (reported by the first test only)."""

    def __init__(self):
        self.instance = None
        self.error = None
        self.reported = False


def _attack_variables(instance):
    """Addresses for the attackers (none of Kamailio's, the trunk's, 127.0.0.1 nor the role's
    default trusted 127.0.0.9), two of them exempt from bans (the fuzzer and the prober), and
    the abuse settings the tests count with."""
    instance.pool = AddressPool(exclude={instance.address, instance.trunk, '127.0.0.1', '127.0.0.9'})
    instance.fuzzer = instance.pool.take()
    instance.prober = instance.pool.take()
    return role_variables(exempt=[instance.fuzzer, instance.prober])


@pytest.fixture(scope='session')
def deployment():
    state = Deployment()
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    try:
        with kamailio_lab(prefix='voxplane-attack-', setup=_attack_variables) as instance:
            state.instance = instance
            yield state
    except LabError as exc:
        state.error = str(exc)
        yield state


@pytest.fixture
def kamailio(deployment):  # pylint: disable=redefined-outer-name
    """The suite's KamailioInstance (lab.kamailio) with ``pool`` (attacker
    addresses), ``fuzzer`` and ``prober`` (the two exempt addresses)."""
    if deployment.error:
        if not deployment.reported:
            deployment.reported = True
            pytest.fail(deployment.error, pytrace=False)
        pytest.skip('the attack suite\'s Kamailio is not running: see the first error')
    return deployment.instance


@pytest.fixture
def attacker(kamailio):  # pylint: disable=redefined-outer-name
    """A fresh 127.0.0.x for one attacker (not Kamailio's, not the trunk's, not exempt)."""
    return kamailio.pool.take()


def pytest_terminal_summary(terminalreporter):
    if not REPORT:
        return
    lines = []
    for title, body in REPORT:
        lines.append('== ' + title)
        lines.extend('   ' + line for line in body)
    path = os.environ.get('VOXPLANE_ATTACK_SUMMARY') or os.path.join(results_dir(), 'attack-summary.txt')
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
    except OSError:
        path = None
    terminalreporter.write_sep('-', 'attack suite report' + (' (%s)' % os.path.relpath(path) if path else ''))
    for line in lines:
        terminalreporter.write_line(line)
