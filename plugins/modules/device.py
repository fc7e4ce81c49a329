#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: device
short_description: Manage a desk phone (device) of a voxplane tenant
version_added: 0.1.0
description:
  - Creates, updates or removes one device, identified by its MAC address. A device is a desk phone or DECT base
    of a known model; its lines are SIP accounts of the tenant's extensions.
  - The MAC is unique across all tenants; a phone belongs to one tenant at a time.
  - Options left out keep their stored value; on creation they take the default named in their
    description. A list given replaces the stored list.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the device belongs to.
    type: str
    required: true
  mac:
    description:
      - MAC address of the device, 12 hex digits, in pairs separated by C(:) or C(-) or written without
        separators, in either case. Stored as lowercase V(aa:bb:cc:dd:ee:ff).
      - Unique across all tenants.
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the device, C(absent) removes it. Removing a device leaves its
        SIP accounts with their extensions.
    type: str
    choices: [present, absent]
    default: present
  model:
    description:
      - Model of the device, from the collection's catalogue; it fixes how many lines the device has.
      - Required when the device is created.
    type: str
    choices:
      avm-fritzfon-c6: AVM FRITZ!Fon C6 (via FRITZ!Box), 1 line.
      cisco-8841: Cisco IP Phone 8841, 5 lines.
      fanvil-x4u: Fanvil X4U, 12 lines.
      gigaset-n670: Gigaset N670 IP PRO (DECT), 20 lines.
      grandstream-grp2614: Grandstream GRP2614, 4 lines.
      poly-vvx450: Poly VVX 450, 12 lines.
      snom-d735: Snom D735, 12 lines.
      snom-d785: Snom D785, 12 lines.
      snom-d865: Snom D865, 12 lines.
      yealink-t31p: Yealink T31P, 2 lines.
      yealink-t33g: Yealink T33G, 4 lines.
      yealink-t46u: Yealink T46U, 16 lines.
      yealink-t54w: Yealink T54W, 16 lines.
      yealink-t57w: Yealink T57W, 16 lines.
      yealink-w73p: Yealink W73P (DECT), 10 lines.
  name:
    description: Name of the device, for example where it stands. An empty string clears it.
    type: str
  lines:
    description:
      - Usernames of the SIP accounts the device registers, first line first. Each is a SIP account of
        kind C(desk_phone) of one of the tenant's extensions (see O(voxplane.pbx.extension#module:sip_accounts)),
        and a line of at most one device.
      - At most as many as the model has lines. No lines on creation. The list replaces the stored one;
        an empty list removes every line.
      - A SIP account that is a line of a device cannot be removed from its extension.
    type: list
    elements: str
  location:
    description:
      - Name of the tenant location the device stands at, one of O(voxplane.pbx.tenant#module:locations).
        An empty string clears it.
    type: str
  timezone:
    description:
      - IANA time zone the device shows, such as V(Europe/Berlin); the tenant's time zone when unset.
        An empty string unsets it.
    type: str
  activation_code:
    description:
      - V(true) issues a new one-time activation code for the device and returns it once in RV(activation_code);
        the directory keeps only its SHA-256 hash. A code issued earlier stops working.
      - A phone or a user presenting the code to the provisioning server (C(https://<server>/activate?code=...))
        receives the device's provisioning URL and credentials, once; a used or expired code is refused
        with HTTP 410 and says which. See docs/devices.md.
      - Every run with V(true) issues a new code, so the task then always reports a change.
      - In check mode no code is issued; the diff shows that one would be.
    type: bool
    default: false
  activation_code_hours:
    description: How many hours a new activation code stays valid.
    type: int
    default: 72
'''

EXAMPLES = r'''
- name: The tenant with two locations, and the SIP accounts the phone carries (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant:
        name: acme
        sip_domain: acme.pbx.example.com
        licences: {seats: {smart: 10, best: 2}}
        locations:
          - {name: berlin, street: Friedrichstr. 1, postal_code: "10117", city: Berlin}
          - {name: hamburg, street: Jungfernstieg 7, postal_code: "20354", city: Hamburg}
      extensions:
        - {internal_number: "210", name: Anna Schmidt, sip_accounts: [{username: anna.desk, password: "{{ vault_anna_desk }}"}]}
        - {internal_number: "211", name: Reception, sip_accounts: [{username: reception.desk, password: "{{ vault_reception_desk }}"}]}

- name: A desk phone with two lines, the MAC as printed on the label
  voxplane.pbx.device:
    tenant: acme
    mac: 80-5E-C0-12-34-56
    model: yealink-t33g
    name: Reception desk
    lines: [anna.desk, reception.desk]
    location: berlin

- name: Move the phone to the Hamburg office, keeping its lines
  voxplane.pbx.device:
    tenant: acme
    mac: "805ec0123456"
    location: hamburg

- name: Issue an activation code for the new phone and hand it to its user
  voxplane.pbx.device:
    tenant: acme
    mac: "80:5e:c0:12:34:56"
    activation_code: true
    activation_code_hours: 24
  register: phone

- name: Show the code once
  ansible.builtin.debug:
    msg: "Activation code: {{ phone.activation_code }} (valid until {{ phone.activation_expires_at }})"

- name: Remove the device
  voxplane.pbx.device:
    tenant: acme
    mac: "80:5e:c0:12:34:56"
    state: absent
'''

RETURN = r'''
device:
  description: The device as stored after the task, in the shape this module takes; empty when absent.
  returned: always
  type: dict
  sample:
    tenant: acme
    mac: "80:5e:c0:12:34:56"
    model: yealink-t33g
    name: Reception desk
    lines: [anna.desk, reception.desk]
    location: berlin
    timezone: null
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [create device 80:5e:c0:12:34:56 (tenant acme)]
activation_code:
  description: The new activation code, 16 digits in groups of four, when O(activation_code) issued one (not in check mode).
  returned: when O(activation_code=true)
  type: str
  sample: 4711-0815-2342-1337
activation_expires_at:
  description: When the new activation code expires (UTC).
  returned: when O(activation_code=true)
  type: str
  sample: "2026-11-30T23:00:00Z"
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: device 80:5e:c0:12:34:56 (tenant acme), field: lines, rule: line_count,
            message: "a Yealink T31P has 2 lines, 3 given"}]
'''

import time

from ansible_collections.voxplane.pbx.plugins.module_utils import provisioning
from ansible_collections.voxplane.pbx.plugins.module_utils.catalogue import DEVICE_MODELS
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    mac=dict(type='str', required=True),
    model=dict(type='str', choices=sorted(DEVICE_MODELS)),
    name=dict(type='str'),
    lines=dict(type='list', elements='str'),
    location=dict(type='str'),
    timezone=dict(type='str'),
    activation_code=dict(type='bool', default=False),
    activation_code_hours=dict(type='int', default=provisioning.DEFAULT_ACTIVATION_HOURS),
)


def issue_activation_code(module, request):
    """A new code's hash into the request; the code itself only into the result."""
    issue = request.pop('activation_code', False)
    hours = request.pop('activation_code_hours')
    if not issue:
        return {}
    if hours < 1:
        module.fail_json(msg='device %s (tenant %s): activation_code_hours: a code is valid for at least 1 hour [range]'
                         % (module.params['mac'], module.params['tenant']))
    expires_at = int(time.time()) + hours * 3600
    code = provisioning.new_activation_code()
    request['activation'] = dict(hash=provisioning.activation_hash(code), expires_at=expires_at, used_at=None)
    if module.check_mode:
        code = None
    return dict(activation_code=code, activation_expires_at=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires_at)))


def main():
    run_object_module('device', ARGUMENT_SPEC, prepare=issue_activation_code)


if __name__ == '__main__':
    main()
