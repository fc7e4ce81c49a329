#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: number_info
short_description: Read the numbers and number blocks of a voxplane tenant
version_added: 0.1.0
description:
  - Returns one number of a tenant by its E.164 number, or all of the tenant's numbers.
  - The numbers come in exactly the shape M(voxplane.pbx.number) takes, so that feeding one back
    into the module changes nothing.
  - The numbers an extension is reached under, and their effective status, are in the
    C(number_plan) of M(voxplane.pbx.tenant_info).
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
  number:
    description:
      - The number to read, in E.164 or national form; for a block, its base number.
      - All of the tenant's numbers when left out.
    type: str
'''

EXAMPLES = r'''
- name: The tenant and the block of numbers these examples read (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      numbers: [{number: "+49301234560", ddi_range: "00-99"}]

- name: Read one number
  voxplane.pbx.number_info:
    tenant: acme
    number: "+49301234560"
  register: result

- name: Read all numbers of the tenant
  voxplane.pbx.number_info:
    tenant: acme
  register: all_numbers

- name: Feed them back unchanged (changes nothing)
  voxplane.pbx.number: "{{ item }}"
  loop: "{{ all_numbers.numbers }}"
'''

RETURN = r'''
exists:
  description:
    - With O(number), whether that number exists; without it, whether the tenant has any numbers.
    - V(false) also when the tenant or the directory does not exist.
  returned: always
  type: bool
  sample: true
numbers:
  description:
    - The numbers, as M(voxplane.pbx.number) takes them, sorted by number.
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - tenant: acme
      number: "+49301234567"
      ddi_range: "00-99"
      status: active
      porting_date: null
      interim: false
      target: "200"
      description: Berlin office
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('number')


if __name__ == '__main__':
    main()
