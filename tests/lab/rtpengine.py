# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rtpengine deployed by the real role (roles/rtpengine, through playbooks/rtpengine.yml) as a
pid-file daemon in a temporary tree, for the NAT and media tests and the media benchmarks:
``deploy_rtpengine`` (and ``stop_rtpengine``), or ``rtpengine_lab`` for both around a block."""

import collections
import contextlib
import os
import subprocess

from lab import PLAYBOOKS
from lab.net import free_port
from lab.playbook import run_playbook

Rtpengine = collections.namedtuple('Rtpengine', 'pid ng_port cli_port control')


def deploy_rtpengine(root, address, ports, log_level=4, log_file=None, http_port=None):
    """rtpengine relaying on ``address`` with the RTP ports (low, high), its control on free
    127.0.0.1 ports, logging to ``log_file`` (else syslog), its HTTP listener (/metrics) on
    127.0.0.1:``http_port`` when given. Returns an Rtpengine (pid, ng port, cli port, control script)."""
    ng_port, cli_port = free_port('127.0.0.1'), free_port('127.0.0.1')
    variables = {
        'rtpengine_install_packages': False, 'rtpengine_service_mode': 'daemon',
        'rtpengine_config_dir': os.path.join(root, 'rtpengine'), 'rtpengine_runtime_dir': os.path.join(root, 'rtp-run'),
        'rtpengine_address': address, 'rtpengine_port_min': ports[0], 'rtpengine_port_max': ports[1],
        'rtpengine_listen_ng': '127.0.0.1:%d' % ng_port, 'rtpengine_listen_cli': '127.0.0.1:%d' % cli_port,
        'rtpengine_delete_delay': 0, 'rtpengine_log_level': log_level, 'rtpengine_log_file': log_file or '',
        'rtpengine_listen_http': '127.0.0.1:%d' % http_port if http_port else '',
    }
    run = run_playbook(os.path.join(PLAYBOOKS, 'rtpengine.yml'), variables, cwd=root)
    if run.rc != 0:
        raise RuntimeError('rtpengine role failed: %r' % (run,))
    with open(os.path.join(root, 'rtp-run', 'rtpengine.pid')) as handle:
        pid = int(handle.read().strip())
    return Rtpengine(pid, ng_port, cli_port, os.path.join(root, 'rtpengine', 'voxplane-rtpengine'))


def stop_rtpengine(relay):
    if relay is not None and os.path.exists(relay.control):
        subprocess.run([relay.control, 'stop'], capture_output=True, timeout=30, check=False)


@contextlib.contextmanager
def rtpengine_lab(root, address, ports, log_level=4, log_file=None, http_port=None):
    """deploy_rtpengine() for the block, stopped at its end."""
    relay = None
    try:
        relay = deploy_rtpengine(root, address, ports, log_level=log_level, log_file=log_file, http_port=http_port)
        yield relay
    finally:
        stop_rtpengine(relay)
