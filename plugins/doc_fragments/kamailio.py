# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # How a module reaches the running Kamailio (registration status, remote actions).
    DOCUMENTATION = r'''
options:
  kamailio_rpc:
    description:
      - The JSON-RPC FIFO of the running Kamailio on the host the module runs on, as the
        C(voxplane.pbx.kamailio) role configures it (V(<kamailio_runtime_dir>/kamailio_rpc.fifo)).
      - Can also be set with the environment variable E(VOXPLANE_KAMAILIO_RPC), or for a play with
        C(module_defaults) and the action group C(group/voxplane.pbx.kamailio).
      - The module needs permission to write that FIFO and to create a reply FIFO in its folder
        (root, or a member of the Kamailio group).
    type: str
    default: /run/voxplane-kamailio/kamailio_rpc.fifo
  kamailio_rpc_timeout:
    description:
      - Seconds to wait for each answer of Kamailio. A NOTIFY to a phone that does not answer ends
        with Kamailio's own 408 after its transaction timer (C(kamailio_fr_timer_ms), 5 s by default).
    type: float
    default: 15
notes:
  - Kamailio is asked on the host the module runs on. To ask the Kamailio of another host, run the
    task there (C(delegate_to)).
'''
