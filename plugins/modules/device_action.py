#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: device_action
short_description: Resync or restart a desk phone of a voxplane tenant remotely
version_added: 0.2.0
description:
  - Sends the device's vendor's NOTIFY for O(action) (V(resync) fetches the configuration again, V(restart)
    restarts the phone) through the running Kamailio to every contact the device's lines have registered,
    and reports which contacts acknowledged it (a 2xx reply).
  - The Event header per vendor is in the collection's catalogue (docs/devices.md); for example Yealink and
    Snom take C(check-sync;reboot=false) and C(check-sync;reboot=true), Cisco MPP C(resync) and C(reboot).
  - A device without registered contacts gets nothing; the task reports that and changes nothing.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.kamailio
options:
  tenant:
    description: The tenant the device belongs to.
    type: str
    required: true
  mac:
    description: MAC address of the device, with C(:), C(-) or no separators.
    type: str
    required: true
  action:
    description:
      - V(resync) makes the phone fetch its configuration from the provisioning server again.
      - V(restart) makes it restart (and fetch its configuration while starting).
    type: str
    required: true
    choices: [resync, restart]
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details:
      - Check mode reads the registered contacts and reports what would be sent; it sends nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
  action_group:
    description: Use C(group/voxplane.pbx.directory) or C(group/voxplane.pbx.kamailio) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - voxplane.pbx.directory
      - voxplane.pbx.kamailio
'''

EXAMPLES = r'''
# These ask the running Kamailio: run them on its host (delegate_to), where the FIFO is.
- name: Make the reception phone fetch its configuration now (asks Kamailio)
  voxplane.pbx.device_action:
    tenant: acme
    mac: "80:5e:c0:12:34:56"
    action: resync
  register: resync

- name: Restart it (asks Kamailio)
  voxplane.pbx.device_action:
    tenant: acme
    mac: "80:5e:c0:12:34:56"
    action: restart
  register: restart

- name: Insist that the phone acknowledged (asks Kamailio)
  ansible.builtin.assert:
    that: restart.acknowledged > 0
    fail_msg: "no contact of the phone acknowledged the restart: {{ restart.contacts }}"
'''

RETURN = r'''
event:
  description: The Event header sent (or that would be sent, in check mode).
  returned: success
  type: str
  sample: check-sync;reboot=true
contacts:
  description:
    - One entry per registered contact of the device's lines (a contact registered for several lines once).
    - C(sent) is false in check mode; C(code) and C(reason) are the phone's final reply (or Kamailio's 408
      when the phone did not answer); C(acknowledged) is true for a 2xx reply.
  returned: success
  type: list
  elements: dict
  sample:
    - username: anna.desk
      contact: sip:anna.desk@192.0.2.41:5062
      source: 192.0.2.41:5062
      sent: true
      code: 200
      reason: OK
      acknowledged: true
acknowledged:
  description: How many contacts acknowledged.
  returned: success
  type: int
  sample: 1
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import model
from ansible_collections.voxplane.pbx.plugins.module_utils.catalogue import REMOTE_ACTIONS
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError, RuleError, ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.phone_control import device_action
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import (
    KAMAILIO_RPC_ARGS, fail, info_argument_spec, kamailio_rpc, new_module, normalised, read_tenant,
)


def main():
    spec = info_argument_spec(mac=dict(type='str', required=True),
                              action=dict(type='str', required=True, choices=list(REMOTE_ACTIONS)))
    spec.update(KAMAILIO_RPC_ARGS)
    module = new_module(spec, model.DEVICE, 'mac')
    params = module.params
    tenant_name = normalised(module, model.TENANT, params['tenant'], field='tenant')
    subject = model.describe(model.DEVICE, params['mac'], tenant_name)
    state = read_tenant(module, tenant_name)[0]
    if state is None or state.tenant is None:
        module.fail_json(msg='%s: the tenant %s does not exist' % (subject, tenant_name))
    mac = normalised(module, model.DEVICE, params['mac'], field='mac', tenant=state.tenant)
    subject = model.describe(model.DEVICE, mac, tenant_name)
    if state.get(model.DEVICE, mac) is None:
        module.fail_json(msg='%s: does not exist' % subject)
    try:
        event, contacts = device_action(state, mac, params['action'], kamailio_rpc(module), send=not module.check_mode)
    except RuleError as e:
        fail(module, ValidationFailed([e.at(subject)]))
    except DirectoryError as e:
        fail(module, e)
    if not contacts:
        module.warn('%s: none of its lines is registered; nothing sent' % subject)
    module.exit_json(changed=bool(contacts), event=event, contacts=contacts,
                     acknowledged=sum(1 for c in contacts if c['acknowledged']))


if __name__ == '__main__':
    main()
