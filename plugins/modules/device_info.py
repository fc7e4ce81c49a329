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
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.info
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
'''

EXAMPLES = r'''
- name: Read one device
  voxplane.pbx.device_info:
    tenant: acme
    mac: "80:5e:c0:12:34:56"
  register: result

- name: Read all devices of the tenant
  voxplane.pbx.device_info:
    tenant: acme
  register: all_devices

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
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('device')


if __name__ == '__main__':
    main()
