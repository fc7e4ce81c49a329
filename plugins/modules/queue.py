#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: queue
short_description: Manage a call queue of a voxplane tenant
version_added: 0.3.0
description:
  - Creates, updates or removes one call queue [Warteschlange], identified by its internal number within its tenant.
  - A caller who reaches the queue is answered by the PBX's media service, hears music, and waits until one of the
    queue's logged-in members answers; the members' phones are rung through the router (only their SIP accounts,
    no forwards, no voicemail). Members on do-not-disturb, unavailable, logged out, still in their wrap-up time or
    whose phones answer busy are skipped.
  - Members log in and out with the feature codes C(*44) and C(*45) (with the queue's number, or without one for
    every queue they are a member of), or with O(members[].logged_in).
  - Options left out keep their stored value; on creation they take the default named in their description.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the queue belongs to.
    type: str
    required: true
  internal_number:
    description:
      - The queue's internal number, unique among the tenant's extensions, groups, menus, queues and conference
        rooms (rule C(internal_unique)). Digits only, 2 to 6 of them; not starting with 0, 110, 112, 77 or 78; no
        five-digit number starting with 118; within the tenant's internal ranges when it has any.
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the queue, C(absent) removes it.
      - A queue that a number, a forward, a group's fallback, a menu's key or a schedule still names cannot be removed
        (rule C(still_referenced)).
    type: str
    choices: [present, absent]
    default: present
  name:
    description: The queue's name (for example V(Support)), shown in call flows. An empty string clears it.
    type: str
  strategy:
    description:
      - How a waiting caller is offered to the logged-in members. C(ring_all) rings all of them at once,
        C(round_robin) one after the other starting after the member who took the last call, C(longest_idle)
        the member idle the longest, C(sequential) in the order of O(members) (lowest O(members[].penalty)
        first). C(ring_all) on creation.
      - Each member rings for O(member_ring_time) seconds at a time; members with a lower penalty are tried first.
    type: str
    choices: [ring_all, round_robin, longest_idle, sequential]
  members:
    description:
      - The extensions that take the queue's calls, each listed once. The list replaces the stored one, in its
        order; no members on creation.
      - An extension that is a member of a queue cannot be removed.
    type: list
    elements: dict
    suboptions:
      extension:
        description: Internal number of an extension of the tenant.
        type: str
        required: true
      penalty:
        description:
          - The member's priority, 0 to 100; members with a lower penalty are offered calls first, the others only
            while those are busy. Left out, the member keeps its stored penalty (V(0) for a new member).
        type: int
      logged_in:
        description:
          - Whether the member takes calls now. Members switch it themselves with C(*44) and C(*45), so a member
            given without it keeps its stored state (field ownership, the last writer wins); a new member is
            logged in.
        type: bool
  member_ring_time:
    description: Seconds a member's phones ring before the call is offered to the next, 5 to 300. V(15) on creation.
    type: int
  wrapup_time:
    description: Seconds after a call of the queue before a member is offered the next one, 0 to 600. V(10) on creation.
    type: int
  max_callers:
    description:
      - How many callers may wait at once, 1 to 1000; one more goes to O(overflow) at once. V(10) on creation.
    type: int
  max_wait:
    description:
      - Seconds a caller waits at most, 10 to 7200; then the call goes to O(overflow). V(300) on creation.
    type: int
  overflow:
    description:
      - Where a caller goes after O(max_wait), or at once when O(max_callers) are waiting. An internal number (an
        extension, a group, a menu, another queue or a conference room), V(voicemail:<internal number>),
        V(voicemail-menu), V(announcement:<name>), V(schedule:<name>) or an outside number the tenant may call.
      - Unset (on creation) or an empty string, the caller hears goodbye and the call ends.
    type: str
  no_members:
    description:
      - Where a caller goes at once when no member is logged in. A destination as in O(overflow).
      - Unset (on creation) or an empty string, the caller waits as usual (until O(max_wait)).
    type: str
  music:
    description:
      - An announcement (M(voxplane.pbx.announcement), by its name) played in a loop while the caller waits.
      - Unset (on creation) or an empty string, the media service's built-in music.
    type: str
  announce_position:
    description:
      - Seconds between announcements of the caller's position and the estimated wait, 15 to 3600, or V(0) for
        none. V(0) on creation.
    type: int
notes:
  - M(voxplane.pbx.route_info) predicts a call to the queue, with the member that answers (O(voxplane.pbx.route_info#module:answer))
    or its overflow after O(max_wait).
'''

EXAMPLES = r'''
- name: The tenant and the extensions the queue rings (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions:
        - {internal_number: "100", name: Empfang, voicemail: {enabled: true}}
        - {internal_number: "210", name: Anna Schmidt}
        - {internal_number: "211", name: Ben Weber}
        - {internal_number: "212", name: Cora Berg}

- name: A support queue; Cora helps out while Anna and Ben are busy; after 2 minutes, the voicemail of 100
  voxplane.pbx.queue:
    tenant: acme
    internal_number: "600"
    name: Support
    strategy: longest_idle
    members:
      - {extension: "210"}
      - {extension: "211"}
      - {extension: "212", penalty: 5}
    max_wait: 120
    overflow: voicemail:100
    announce_position: 60

- name: Ben logs out (he could dial *45600 instead)
  voxplane.pbx.queue:
    tenant: acme
    internal_number: "600"
    members:
      - {extension: "210"}
      - {extension: "211", logged_in: false}
      - {extension: "212"}

- name: Remove the queue
  voxplane.pbx.queue:
    tenant: acme
    internal_number: "600"
    state: absent
'''

RETURN = r'''
queue:
  description: The queue as stored after the task, in the shape this module takes; empty when absent.
  returned: always
  type: dict
  sample:
    tenant: acme
    internal_number: "600"
    name: Support
    strategy: longest_idle
    members:
      - {extension: "210", penalty: 0, logged_in: true}
      - {extension: "211", penalty: 0, logged_in: false}
      - {extension: "212", penalty: 5, logged_in: true}
    member_ring_time: 15
    wrapup_time: 10
    max_callers: 10
    max_wait: 120
    overflow: voicemail:100
    no_members: null
    music: null
    announce_position: 60
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [create queue 600 (tenant acme)]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: queue 600 (tenant acme), field: "members[2].extension", rule: reference,
            message: "extension 299 does not exist in tenant acme"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module, suboptions

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    internal_number=dict(type='str', required=True),
    name=dict(type='str'),
    strategy=dict(type='str', choices=list(rules.QUEUE_STRATEGIES)),
    members=dict(type='list', elements='dict', options=suboptions('queue', 'members')),
    member_ring_time=dict(type='int'),
    wrapup_time=dict(type='int'),
    max_callers=dict(type='int'),
    max_wait=dict(type='int'),
    overflow=dict(type='str'),
    no_members=dict(type='str'),
    music=dict(type='str'),
    announce_position=dict(type='int'),
)


def main():
    run_object_module('queue', ARGUMENT_SPEC)


if __name__ == '__main__':
    main()
