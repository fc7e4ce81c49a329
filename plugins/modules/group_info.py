#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: group_info
short_description: Read the call groups of a voxplane tenant
version_added: 0.1.0
description:
  - Returns one group of a tenant by its internal number, or all of the tenant's groups.
  - The groups come in exactly the shape M(voxplane.pbx.group) takes, so that feeding one back
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
  internal_number:
    description:
      - Internal number of the group to read.
      - All of the tenant's groups when left out.
    type: str
'''

EXAMPLES = r'''
- name: The tenant and the group these examples read (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions: [{internal_number: "210", name: Anna Schmidt}, {internal_number: "211", name: Ben Weber}]
      groups: [{internal_number: "200", name: Reception, members: ["210", "211"]}]

- name: Read one group
  voxplane.pbx.group_info:
    tenant: acme
    internal_number: "200"
  register: result

- name: Read all groups of the tenant
  voxplane.pbx.group_info:
    tenant: acme
  register: all_groups

- name: Feed them back unchanged (changes nothing)
  voxplane.pbx.group: "{{ item }}"
  loop: "{{ all_groups.groups }}"
'''

RETURN = r'''
exists:
  description:
    - With O(internal_number), whether that group exists; without it, whether the tenant has any groups.
    - V(false) also when the tenant or the directory does not exist.
  returned: always
  type: bool
  sample: true
groups:
  description:
    - The groups, as M(voxplane.pbx.group) takes them, sorted by internal number.
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - tenant: acme
      internal_number: "200"
      name: Reception
      strategy: parallel
      members: ["210", "211"]
      ring_time: 25
      fallback: "100"
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('group')


if __name__ == '__main__':
    main()
