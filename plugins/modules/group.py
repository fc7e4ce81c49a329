#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: group
short_description: Manage a call group (hunt group) of a voxplane tenant
version_added: 0.1.0
description:
  - Creates, updates or removes one call group, identified by its internal number within its tenant.
  - A call to the group rings its member extensions by its strategy; members on do-not-disturb
    (O(voxplane.pbx.extension#module:dnd)), unavailable (O(voxplane.pbx.extension#module:available) V(false))
    or without a registered device are skipped. When nobody answers (see O(ring_time)), or no member can
    ring, the call goes to the fallback.
  - Options left out keep their stored value; on creation they take the default named in their
    description. A list given replaces the stored list.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the group belongs to.
    type: str
    required: true
  internal_number:
    description:
      - The group's internal number, unique among the tenant's extensions and groups. Digits only, 2 to 6 of
        them; not starting with 0, 110, 112, 77 or 78; no five-digit number starting with 118; within the
        tenant's internal ranges when it has any.
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the group, C(absent) removes it. A group that a number, an extension's
        forwarding or another group's fallback still points at cannot be removed.
    type: str
    choices: [present, absent]
    default: present
  name:
    description: Name of the group, shown to the called members. An empty string clears it.
    type: str
  strategy:
    description:
      - How members are rung. C(parallel) rings all of them at once for O(ring_time) seconds,
        C(sequential) one after another in the order of O(members), each for O(ring_time) seconds.
        Members on do-not-disturb, unavailable or without a registered device are skipped.
        C(parallel) on creation.
    type: str
    choices: [parallel, sequential]
  members:
    description:
      - Internal numbers of the tenant's extensions that belong to the group, each listed once.
        The list replaces the stored one; no members on creation.
      - An extension that is a member of a group cannot be removed.
    type: list
    elements: str
  ring_time:
    description:
      - Ring time in seconds, 5 to 600; a value outside that range is refused. V(30) on creation.
      - With O(strategy=parallel) all members ring together this long, then the call goes to O(fallback).
      - With O(strategy=sequential) it is a per-member ring time. Each member rings this long in turn,
        and the call goes to O(fallback) after the last one, so the caller may wait up to
        O(ring_time) times the number of members that can ring.
    type: int
  fallback:
    description:
      - Where a call goes that no member answered (see O(ring_time)) or that no member could ring,
        the internal number of an extension or another group of the tenant, an outside number (E.164 or
        national form), or a destination the PBX answers itself, V(voicemail:<internal number>) (that
        extension's voicemail box, which must be enabled), V(voicemail-menu) or V(announcement:<name>)
        (M(voxplane.pbx.announcement)). Groups have no voicemail of their own; V(voicemail:<internal number>)
        names the box the group's callers leave messages in.
      - The fallback's Diversion reason is what the whole group did. C(no-answer) when a member rang and
        nobody answered, C(user-busy) when every member that rang was busy, C(unavailable) when no member could ring.
      - No fallback on creation. An empty string clears it.
    type: str
'''

EXAMPLES = r'''
- name: The tenant and the extensions these examples work with (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions:
        - {internal_number: "100", name: Switchboard, voicemail: {enabled: true}}
        - {internal_number: "210", name: Anna Schmidt}
        - {internal_number: "211", name: Ben Weber}

- name: A reception group that rings two extensions at once and falls back to the switchboard
  voxplane.pbx.group:
    tenant: acme
    internal_number: "200"
    name: Reception
    members: ["210", "211"]
    ring_time: 25
    fallback: "100"

- name: Ring the members in turn instead, each of them for 15 seconds
  voxplane.pbx.group:
    tenant: acme
    internal_number: "200"
    strategy: sequential
    ring_time: 15

- name: Callers nobody answered leave a message in the switchboard's voicemail box
  voxplane.pbx.group:
    tenant: acme
    internal_number: "200"
    fallback: voicemail:100

- name: Remove the group
  voxplane.pbx.group:
    tenant: acme
    internal_number: "200"
    state: absent
'''

RETURN = r'''
group:
  description: The group as stored after the task, in the shape this module takes; empty when absent.
  returned: always
  type: dict
  sample:
    tenant: acme
    internal_number: "200"
    name: Reception
    strategy: parallel
    members: ["210", "211"]
    ring_time: 25
    fallback: "100"
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [create group 200 (tenant acme)]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: group 200 (tenant acme), field: members, rule: reference,
            message: "extension 299 does not exist in tenant acme"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    internal_number=dict(type='str', required=True),
    name=dict(type='str'),
    strategy=dict(type='str', choices=list(rules.GROUP_STRATEGIES)),
    members=dict(type='list', elements='str'),
    ring_time=dict(type='int'),
    fallback=dict(type='str'),
)


def main():
    run_object_module('group', ARGUMENT_SPEC)


if __name__ == '__main__':
    main()
