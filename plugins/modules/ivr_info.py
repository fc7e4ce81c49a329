#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ivr_info
short_description: Read the IVR menus of a voxplane tenant
version_added: 0.3.0
description:
  - Returns one IVR menu of a tenant by its internal number, or all of the tenant's menus.
  - The menus come in exactly the shape M(voxplane.pbx.ivr) takes, so that feeding one back into the module
    changes nothing.
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
  internal_number:
    description:
      - Internal number of the menu to read.
      - All of the tenant's menus when left out.
    type: str
'''

EXAMPLES = r'''
- name: The tenant and the menu these examples read (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}, addons: {ivr: 1}}}
      extensions: [{internal_number: "100", name: Empfang}, {internal_number: "210", name: Anna Schmidt}]
      ivrs: [{internal_number: "700", name: Zentrale, keys: {"1": "210", "0": "100"}}]

- name: Read one menu
  voxplane.pbx.ivr_info:
    tenant: acme
    internal_number: "700"
  register: result

- name: Read all menus of the tenant
  voxplane.pbx.ivr_info:
    tenant: acme
  register: all_menus

- name: Feed them back unchanged (changes nothing)
  voxplane.pbx.ivr: "{{ item }}"
  loop: "{{ all_menus.ivrs }}"
'''

RETURN = r'''
exists:
  description:
    - With O(internal_number), whether that menu exists; without it, whether the tenant has any menus.
    - V(false) also when the tenant or the directory does not exist.
  returned: always
  type: bool
  sample: true
ivrs:
  description:
    - The menus, as M(voxplane.pbx.ivr) takes them, sorted by internal number.
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - tenant: acme
      internal_number: "700"
      name: Zentrale
      greeting: null
      menu: null
      keys: {"1": "210", "0": "100"}
      timeout: 5
      max_tries: 3
      invalid: null
      no_input: null
      direct_dial: false
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('ivr')


if __name__ == '__main__':
    main()
