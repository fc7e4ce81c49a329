#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: queue_info
short_description: Read the call queues of a voxplane tenant
version_added: 0.3.0
description:
  - Returns one call queue of a tenant by its internal number, or all of the tenant's queues, with each member's
    login state.
  - The queues come in exactly the shape M(voxplane.pbx.queue) takes, so that feeding one back into the module
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
      - Internal number of the queue to read.
      - All of the tenant's queues when left out.
    type: str
'''

EXAMPLES = r'''
- name: The tenant and the queue these examples read (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions: [{internal_number: "210", name: Anna Schmidt}, {internal_number: "211", name: Ben Weber}]
      queues: [{internal_number: "600", name: Support, members: [{extension: "210"}, {extension: "211"}]}]

- name: Read one queue
  voxplane.pbx.queue_info:
    tenant: acme
    internal_number: "600"
  register: result

- name: Who takes calls now
  ansible.builtin.debug:
    msg: "{{ result.queues[0].members | selectattr('logged_in') | map(attribute='extension') | list }}"

- name: Read all queues of the tenant
  voxplane.pbx.queue_info:
    tenant: acme
  register: all_queues

- name: Feed them back unchanged (changes nothing)
  voxplane.pbx.queue: "{{ item }}"
  loop: "{{ all_queues.queues }}"
'''

RETURN = r'''
exists:
  description:
    - With O(internal_number), whether that queue exists; without it, whether the tenant has any queues.
    - V(false) also when the tenant or the directory does not exist.
  returned: always
  type: bool
  sample: true
queues:
  description:
    - The queues, as M(voxplane.pbx.queue) takes them, sorted by internal number.
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - tenant: acme
      internal_number: "600"
      name: Support
      strategy: ring_all
      members:
        - {extension: "210", penalty: 0, logged_in: true}
        - {extension: "211", penalty: 0, logged_in: false}
      member_ring_time: 15
      wrapup_time: 10
      max_callers: 10
      max_wait: 300
      overflow: null
      no_members: null
      music: null
      announce_position: 0
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('queue')


if __name__ == '__main__':
    main()
