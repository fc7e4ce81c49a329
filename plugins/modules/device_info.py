#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: device_info
short_description: Read the devices (desk phones) of a voxplane tenant
version_added: 0.1.0
description:
  - Returns one device of a tenant by its MAC address, or all of the tenant's devices.
  - The devices come in exactly the shape M(voxplane.pbx.device) takes, so that feeding one back
    into the module changes nothing.
  - With O(registration), also whether each line of each device is registered now, read from the
    running Kamailio (its usrloc, through JSON-RPC), with contact, source address, user agent and expiry.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.info
  - voxplane.pbx.kamailio
options:
  tenant:
    description: The tenant to read from.
    type: str
    required: true
  mac:
    description:
      - MAC address of the device to read, with C(:), C(-) or no separators.
      - All of the tenant's devices when left out.
    type: str
  registration:
    description:
      - Whether to report the registration status of every line of the devices (RV(registrations)).
      - Needs the running Kamailio (O(kamailio_rpc)); fails naming the FIFO when it cannot be asked.
    type: bool
    default: false
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

- name: The reception phone these examples read (see voxplane.pbx.device)
  voxplane.pbx.device:
    tenant: acme
    mac: 80-5E-C0-12-34-56
    model: yealink-t33g
    lines: [anna.desk, reception.desk]
    location: berlin

- name: Read one device
  voxplane.pbx.device_info:
    tenant: acme
    mac: "80:5e:c0:12:34:56"
  register: result

- name: Read all devices of the tenant
  voxplane.pbx.device_info:
    tenant: acme
  register: all_devices

- name: Is the reception phone registered? (asks Kamailio)
  voxplane.pbx.device_info:
    tenant: acme
    mac: "80:5e:c0:12:34:56"
    registration: true
  register: phone

- name: Show "Registriert" / "Nicht registriert" per line (asks Kamailio)
  ansible.builtin.debug:
    msg: "{{ phone.registrations | map(attribute='status') | list }}"

- name: Feed them back unchanged (changes nothing)
  voxplane.pbx.device: "{{ item }}"
  loop: "{{ all_devices.devices }}"
'''

RETURN = r'''
exists:
  description:
    - With O(mac), whether that device exists; without it, whether the tenant has any devices.
    - V(false) also when the tenant or the directory does not exist.
  returned: always
  type: bool
  sample: true
devices:
  description:
    - The devices, as M(voxplane.pbx.device) takes them, sorted by MAC.
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - tenant: acme
      mac: "80:5e:c0:12:34:56"
      model: yealink-t33g
      name: Reception desk
      lines: [anna.desk, reception.desk]
      location: berlin
      timezone: null
registrations:
  description:
    - With O(registration), one entry per line of each device (in line order) with the device's MAC, the SIP
      account, its address of record, whether it is registered, C(status) V(registered) or V(not registered),
      and its registered contacts.
    - A contact has C(contact) (the registered URI), C(source) (the address the phone registers from, that is
      the one the registrar recorded when NAT handling is on, else the contact's own host and port),
      C(received), C(socket) (Kamailio's local socket), C(user_agent), C(expires_in) (seconds),
      C(expires_at) (UTC) and C(call_id).
  returned: when O(registration) is true
  type: list
  elements: dict
  sample:
    - mac: "80:5e:c0:12:34:56"
      username: anna.desk
      aor: anna.desk@acme.pbx.example.com
      registered: true
      status: registered
      contacts:
        - contact: sip:anna.desk@192.0.2.41:5062
          source: 192.0.2.41:5062
          received: null
          socket: udp:192.0.2.1:5060
          user_agent: Yealink SIP-T33G 124.86.0.75
          expires_in: 284
          expires_at: "2026-11-27T23:30:16Z"
          call_id: 0_1234567@192.0.2.41
    - mac: "80:5e:c0:12:34:56"
      username: reception.desk
      aor: reception.desk@acme.pbx.example.com
      registered: false
      status: not registered
      contacts: []
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.phone_control import registrations
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('device', lambda state, keys, rpc: registrations(state, 'device', keys, rpc))


if __name__ == '__main__':
    main()
