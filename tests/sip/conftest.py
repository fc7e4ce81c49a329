# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIP test fixtures: the real roles/kamailio renders and starts Kamailio on loopback.

The session fixture ``kamailio`` runs ``ansible-playbook tests/sip/deploy.yml`` against
localhost (connection local, ANSIBLE_COLLECTIONS_PATH = a temporary tree in which
ansible_collections/voxplane/pbx links to this repository) with every path in a fresh
temporary directory, a random 127.0.0.x address and a free high port, daemon mode (pid file)
and a log file. The role starts Kamailio; the fixture waits until it answers OPTIONS (a plain
UDP probe). Then it provisions the directory with ``ansible-playbook tests/sip/tenants.yml``
(tenants acme and beta); their trunk address is the neighbouring 127.0.0.x (``kamailio.trunk``,
port ``kamailio.trunk_port``), where tests run the trunk stand-in sipp: the snapshot trusts a
tenant trunk's addresses, so INVITEs from there are inbound calls. The fixture waits until the
workers route with that directory. At teardown it stops Kamailio through the role's control
script or, failing that, kills it by pid file. Helpers (sipp runner, probes, playbook runner)
live in sip_harness.py.

Needs root (Kamailio drops to the kamailio user itself, -u/-g), kamailio and sipp; without
them the tests are skipped with the reason. VOXPLANE_SIP_KEEP=1 keeps the temporary tree.
"""

import os
import shutil
import sys
import tempfile

import pytest

from sip_harness import KamailioInstance, free_port, missing_prerequisites, pick_loopback_address, wait_for_options


@pytest.fixture(scope='session')
def kamailio():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    root = tempfile.mkdtemp(prefix='voxplane-sip-')
    os.chmod(root, 0o755)  # the kamailio user must reach etc/, run/ and state/ below it
    address = pick_loopback_address()
    instance = KamailioInstance(root, address, free_port(address))
    try:
        run = instance.deploy()
        assert run.rc == 0, 'the role failed to deploy Kamailio: %r\n%s' % (run, instance.log_tail())
        line = wait_for_options(address, instance.port)
        assert line, 'Kamailio did not answer OPTIONS on %s:%d\n%s' % (address, instance.port, instance.log_tail())
        instance.first_run = run
        tenants = instance.provision()
        assert tenants.rc == 0, 'tests/sip/tenants.yml failed: %r' % (tenants,)
        assert instance.wait_for_directory(), 'Kamailio does not route with the tenants\n%s' % instance.log_tail()
        yield instance
    finally:
        instance.stop()
        if os.environ.get('VOXPLANE_SIP_KEEP') == '1':
            sys.stderr.write('\nvoxplane sip: kept %s\n' % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
