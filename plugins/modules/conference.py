#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: conference
short_description: Manage a conference room of a voxplane tenant
version_added: 0.3.0
description:
  - Creates, updates or removes one conference room [Telefonkonferenz], identified by its internal number within its
    tenant.
  - Whoever reaches the room (dialled internally, the target of a number, a forward, a menu's key) is answered by the
    PBX's media service, asked for the PIN when the room has one, and joins the others in the room.
  - A caller who enters the moderator PIN is a moderator; with O(wait_for_moderator) the others hear music until a
    moderator joins, with O(end_with_moderator) the conference ends when the last moderator leaves.
  - Each room takes one C(conference) add-on licence of the tenant (O(voxplane.pbx.tenant#module:licences)), counted
    like seats; a room without one left is refused (rule C(conference_licence)).
  - The PINs are stored only as salted hashes, like a voicemail PIN; they are never shown, and the diff says only
    whether they are set and whether they change.
  - Options left out keep their stored value; on creation they take the default named in their description.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the room belongs to.
    type: str
    required: true
  internal_number:
    description:
      - The room's internal number, unique among the tenant's extensions, groups, menus, queues and conference rooms
        (rule C(internal_unique)). Digits only, 2 to 6 of them; not starting with 0, 110, 112, 77 or 78; no
        five-digit number starting with 118; within the tenant's internal ranges when it has any.
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the room, C(absent) removes it.
      - A room that a number, a forward, a menu's key or a schedule still names cannot be removed (rule
        C(still_referenced)).
    type: str
    choices: [present, absent]
    default: present
  name:
    description: The room's name (for example V(Team)), shown in call flows. An empty string clears it.
    type: str
  pin:
    description:
      - The PIN callers enter to join, 4 to 8 digits (rule C(pin)). Stored only as a hash.
      - Left out, the stored PIN stays; an empty string removes it (anyone who reaches the room joins). No PIN on
        creation.
    type: str
  moderator_pin:
    description:
      - The PIN that makes a caller a moderator, 4 to 8 digits, not the same as O(pin) (rule C(pin_distinct)). Stored
        only as a hash.
      - Left out, the stored PIN stays; an empty string removes it. No moderator PIN on creation.
    type: str
  pin_hash:
    description:
      - The stored hash of the PIN, as M(voxplane.pbx.tenant_info) exports it with secrets (a backup), instead of O(pin).
    type: str
  moderator_pin_hash:
    description:
      - The stored hash of the moderator PIN, as M(voxplane.pbx.tenant_info) exports it with secrets, instead of
        O(moderator_pin).
    type: str
  max_participants:
    description: How many callers may be in the room at once, 2 to 200. V(10) on creation.
    type: int
  wait_for_moderator:
    description:
      - Whether callers hear music until a moderator has joined. Needs O(moderator_pin) (rule
        C(moderator_pin_required)). V(false) on creation.
    type: bool
  announce_join_leave:
    description: Whether the room hears a tone when someone joins or leaves. V(false) on creation.
    type: bool
  mute_on_entry:
    description: Whether callers who are no moderator join muted (they listen). V(false) on creation.
    type: bool
  end_with_moderator:
    description:
      - Whether the conference ends for everyone when the last moderator leaves. Needs O(moderator_pin) (rule
        C(moderator_pin_required)). V(false) on creation.
    type: bool
  music:
    description:
      - An announcement (M(voxplane.pbx.announcement), by its name) played in a loop while a caller waits for a
        moderator or is alone in the room.
      - Unset (on creation) or an empty string, the media service's built-in music.
    type: str
'''

EXAMPLES = r'''
- name: The tenant, with a conference add-on (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant:
        name: acme
        sip_domain: acme.pbx.example.com
        licences: {seats: {smart: 10, best: 2}, addons: {conference: 1}}

- name: The team's room; it starts when the moderator joins and ends when the moderator leaves
  voxplane.pbx.conference:
    tenant: acme
    internal_number: "650"
    name: Team
    pin: "{{ vault_team_pin }}"
    moderator_pin: "{{ vault_team_moderator_pin }}"
    wait_for_moderator: true
    end_with_moderator: true
    announce_join_leave: true

- name: A number of the tenant leads callers from outside into the room
  voxplane.pbx.number:
    tenant: acme
    number: "+49301234650"
    target: "650"

- name: Anyone may join now (no PIN); the moderator PIN stays
  voxplane.pbx.conference:
    tenant: acme
    internal_number: "650"
    pin: ""
'''

RETURN = r'''
conference:
  description:
    - The room as stored after the task, in the shape this module takes, without its PINs; empty when absent.
  returned: always
  type: dict
  sample:
    tenant: acme
    internal_number: "650"
    name: Team
    max_participants: 10
    wait_for_moderator: true
    announce_join_leave: true
    mute_on_entry: false
    end_with_moderator: true
    music: null
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [create conference 650 (tenant acme)]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: conference 650 (tenant acme), field: pin, rule: pin, message: "a conference PIN has 4 to 8 digits"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    internal_number=dict(type='str', required=True),
    name=dict(type='str'),
    pin=dict(type='str', no_log=True),
    moderator_pin=dict(type='str', no_log=True),
    pin_hash=dict(type='str', no_log=True),
    moderator_pin_hash=dict(type='str', no_log=True),
    max_participants=dict(type='int'),
    wait_for_moderator=dict(type='bool'),
    announce_join_leave=dict(type='bool'),
    mute_on_entry=dict(type='bool'),
    end_with_moderator=dict(type='bool'),
    music=dict(type='str'),
)


def main():
    run_object_module('conference', ARGUMENT_SPEC)


if __name__ == '__main__':
    main()
