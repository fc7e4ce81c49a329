# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test lab: one place for everything the suites, the benchmarks and the demo start or
talk to. Every suite imports it the same way (``import lab...``: pytest.ini puts tests/ on the
path; bench/ and playbooks/demo/ have one path line each, in ``lab_path.py``).

Modules (docs/architecture.md, "The test lab"):

- ``lab.playbook``     ansible-playbook against localhost with this checkout's collection
- ``lab.net``          loopback addresses, free ports, waiting for a condition or a bound port
- ``lab.wire``         SIP on the wire: one message parser, one digest, one raw UDP peer, probes
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

LAB = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(LAB))
PLAYBOOKS = os.path.join(LAB, 'playbooks')
SCENARIOS = os.path.join(LAB, 'scenarios')
