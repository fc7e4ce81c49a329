#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: schedule_info
short_description: Read the schedules (business hours) of a voxplane tenant
version_added: 0.3.0
description:
  - Returns one schedule of a tenant by its name, or all of the tenant's schedules.
  - The schedules come in exactly the shape M(voxplane.pbx.schedule) takes, so that feeding one back into the module
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
  name:
    description:
      - Name of the schedule to read.
      - All of the tenant's schedules when left out.
    type: str
'''

EXAMPLES = r'''
- name: The tenant and the schedule these examples read (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions: [{internal_number: "100", name: Empfang, voicemail: {enabled: true}}]
      schedules:
        - {name: office, hours: [{days: [mon, tue, wed, thu, fri], from: "08:00", to: "17:00"}], open: "100",
           closed: "voicemail:100"}

- name: Read one schedule
  voxplane.pbx.schedule_info:
    tenant: acme
    name: office
  register: result

- name: Read all schedules of the tenant
  voxplane.pbx.schedule_info:
    tenant: acme
  register: all_schedules

- name: Feed them back unchanged (changes nothing)
  voxplane.pbx.schedule: "{{ item }}"
  loop: "{{ all_schedules.schedules }}"
'''

RETURN = r'''
exists:
  description:
    - With O(name), whether that schedule exists; without it, whether the tenant has any schedules.
    - V(false) also when the tenant or the directory does not exist.
  returned: always
  type: bool
  sample: true
schedules:
  description:
    - The schedules, as M(voxplane.pbx.schedule) takes them, sorted by name.
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - tenant: acme
      name: office
      description: null
      timezone: null
      hours: [{days: [mon, tue, wed, thu, fri], from: "08:00", to: "17:00"}]
      holidays: []
      open: "100"
      closed: voicemail:100
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('schedule')


if __name__ == '__main__':
    main()
