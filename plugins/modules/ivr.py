#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ivr
short_description: Manage an IVR menu (auto attendant) of a voxplane tenant
version_added: 0.3.0
description:
  - Creates, updates or removes one IVR menu, identified by its internal number within its tenant.
  - A caller who reaches the menu (dialled internally, the target of a number, a forward, a group's fallback,
    another menu's key) hears the greeting, then the menu prompt, and presses a key; each key leads to a
    destination. The PBX's media service answers the call and places the call to the chosen destination
    through the router, so the destination's own rules apply (an extension's forwards and voicemail, a group's
    strategy, the tenant's call permissions for an outside number).
  - Each menu takes one C(ivr) add-on licence of the tenant (O(voxplane.pbx.tenant#module:licences)), counted like
    seats; a menu without one left is refused (rule C(ivr_licence)).
  - Options left out keep their stored value; on creation they take the default named in their description.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the menu belongs to.
    type: str
    required: true
  internal_number:
    description:
      - The menu's internal number, unique among the tenant's extensions, groups, menus, queues and conference
        rooms (rule C(internal_unique)). Digits only, 2 to 6 of them; not starting with 0, 110, 112, 77 or 78; no
        five-digit number starting with 118; within the tenant's internal ranges when it has any.
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the menu, C(absent) removes it.
      - A menu that a number, a forward, a group's fallback, another menu's key, a queue or a schedule still names
        cannot be removed (rule C(still_referenced), naming what references it and the field).
    type: str
    choices: [present, absent]
    default: present
  name:
    description: The menu's name (for example V(Zentrale)), shown in call flows. An empty string clears it.
    type: str
  greeting:
    description:
      - An announcement (M(voxplane.pbx.announcement), by its name) the caller hears once, before the menu.
      - Unset (on creation) or an empty string, no greeting.
    type: str
  menu:
    description:
      - An announcement that tells the choices (for example "for sales press 1, for support press 2"), played
        before each try.
      - Unset (on creation) or an empty string, the media service's built-in prompt ("please choose").
    type: str
  keys:
    description:
      - What each key leads to, a mapping of a key (V(0) to V(9), V(*), V(#); quote V(*) and V(#) in YAML, which
        reads V(#) as a comment) to a destination.
      - A destination is an internal number (an extension, a group, another menu, a queue or a conference room),
        V(voicemail:<internal number>) (that extension's box, which must be enabled), V(voicemail-menu),
        V(announcement:<name>), V(schedule:<name>) (M(voxplane.pbx.schedule)) or an outside number (E.164 or
        national form) of a call class the tenant may call.
      - A key may lead to its own menu, which the caller then hears again.
      - The mapping given replaces the stored one; no keys on creation.
    type: dict
  timeout:
    description: Seconds the menu waits for a key after its prompt, 1 to 60. V(5) on creation.
    type: int
  max_tries:
    description:
      - How often the menu is offered, 1 to 10. A wrong key and no key within O(timeout) both count as a try;
        after the last one the call goes to O(invalid) or O(no_input). V(3) on creation.
    type: int
  invalid:
    description:
      - Where the call goes when the last try was a key that leads nowhere. A destination as in O(keys), not
        this menu.
      - Unset (on creation) or an empty string, the caller hears goodbye and the call ends.
    type: str
  no_input:
    description:
      - Where the call goes when the last try passed without a key (a caller who does not press anything). A
        destination as in O(keys), not this menu.
      - Unset (on creation) or an empty string, the caller hears goodbye and the call ends.
    type: str
  direct_dial:
    description:
      - Whether the caller may dial an extension's internal number instead of a key (the menu waits O(timeout)
        after each digit). Only extensions are reached this way. V(false) on creation.
    type: bool
notes:
  - Business hours are a M(voxplane.pbx.schedule) in front of the menu. A number's target V(schedule:hours)
    whose open destination is the menu and whose closed destination is an announcement.
  - M(voxplane.pbx.route_info) predicts the call with the keys a caller presses (its option O(voxplane.pbx.route_info#module:digits)).
'''

EXAMPLES = r'''
- name: The tenant, the extensions and the group the menu leads to (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant:
        name: acme
        sip_domain: acme.pbx.example.com
        licences: {seats: {smart: 10, best: 2}, addons: {ivr: 2}}
      extensions:
        - {internal_number: "100", name: Empfang, voicemail: {enabled: true}}
        - {internal_number: "210", name: Anna Schmidt}
        - {internal_number: "211", name: Ben Weber}
      groups:
        - {internal_number: "201", name: Vertrieb, members: ["210", "211"]}
        - {internal_number: "202", name: Support, members: ["211"]}

- name: "Zentrale: 1 Vertrieb, 2 Support, 0 Empfang"
  voxplane.pbx.ivr:
    tenant: acme
    internal_number: "700"
    name: Zentrale
    keys:
      "1": "201"
      "2": "202"
      "0": "100"
    invalid: "100"
    no_input: voicemail:100

- name: Let callers dial an extension directly and wait a little longer for a key
  voxplane.pbx.ivr:
    tenant: acme
    internal_number: "700"
    direct_dial: true
    timeout: 8

- name: Press star to hear the menu again
  voxplane.pbx.ivr:
    tenant: acme
    internal_number: "700"
    keys:
      "1": "201"
      "2": "202"
      "0": "100"
      "*": "700"

- name: Remove the menu
  voxplane.pbx.ivr:
    tenant: acme
    internal_number: "700"
    state: absent
'''

RETURN = r'''
ivr:
  description: The menu as stored after the task, in the shape this module takes; empty when absent.
  returned: always
  type: dict
  sample:
    tenant: acme
    internal_number: "700"
    name: Zentrale
    greeting: null
    menu: null
    keys: {"1": "201", "2": "202", "0": "100"}
    timeout: 5
    max_tries: 3
    invalid: "100"
    no_input: voicemail:100
    direct_dial: false
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [create ivr 700 (tenant acme)]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: ivr 700 (tenant acme), field: keys.3, rule: reference,
            message: "target 299 does not exist in tenant acme"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    internal_number=dict(type='str', required=True),
    name=dict(type='str'),
    greeting=dict(type='str'),
    menu=dict(type='str'),
    keys=dict(type='dict', no_log=False),
    timeout=dict(type='int'),
    max_tries=dict(type='int'),
    invalid=dict(type='str'),
    no_input=dict(type='str'),
    direct_dial=dict(type='bool'),
)


def main():
    run_object_module('ivr', ARGUMENT_SPEC)


if __name__ == '__main__':
    main()
