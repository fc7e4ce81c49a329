#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: conference_info
short_description: Read the conference rooms of a voxplane tenant
version_added: 0.3.0
description:
  - Returns one conference room of a tenant by its internal number, or all of the tenant's rooms.
  - The rooms come in exactly the shape M(voxplane.pbx.conference) takes, without their PINs (which are stored
    only as hashes), so that feeding one back into the module changes nothing; M(voxplane.pbx.tenant_info) with
    O(voxplane.pbx.tenant_info#module:secrets) exports the hashes for a backup.
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
      - Internal number of the room to read.
      - All of the tenant's rooms when left out.
    type: str
'''

EXAMPLES = r'''
- name: The tenant and the room these examples read (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}, addons: {conference: 1}}}
      conferences: [{internal_number: "650", name: Team, max_participants: 20}]

- name: Read one room
  voxplane.pbx.conference_info:
    tenant: acme
    internal_number: "650"
  register: result

- name: Read all rooms of the tenant
  voxplane.pbx.conference_info:
    tenant: acme
  register: all_rooms

- name: Feed them back unchanged (changes nothing, the PINs stay)
  voxplane.pbx.conference: "{{ item }}"
  loop: "{{ all_rooms.conferences }}"
'''

RETURN = r'''
exists:
  description:
    - With O(internal_number), whether that room exists; without it, whether the tenant has any rooms.
    - V(false) also when the tenant or the directory does not exist.
  returned: always
  type: bool
  sample: true
conferences:
  description:
    - The rooms, as M(voxplane.pbx.conference) takes them (without the PINs), sorted by internal number.
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - tenant: acme
      internal_number: "650"
      name: Team
      max_participants: 20
      wait_for_moderator: false
      announce_join_leave: false
      mute_on_entry: false
      end_with_moderator: false
      music: null
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('conference')


if __name__ == '__main__':
    main()
