#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: schedule
short_description: Manage business hours (a time schedule) of a voxplane tenant
version_added: 0.3.0
description:
  - Creates, updates or removes one schedule [Zeitsteuerung], identified by its name within its tenant.
  - A schedule is a destination like an extension, V(schedule:<name>), wherever one is taken (a number's
    O(voxplane.pbx.number#module:target), an extension's O(voxplane.pbx.extension#module:forwarding), a group's
    O(voxplane.pbx.group#module:fallback), a menu's O(voxplane.pbx.ivr#module:keys), a queue's
    O(voxplane.pbx.queue#module:overflow), an announcement's O(voxplane.pbx.announcement#module:then)). The router
    itself sends each call to O(open) while the schedule is open and to O(closed) otherwise, by the time of the call
    in the schedule's time zone; it counts as one forwarding hop.
  - Open means within one of the O(hours) on that day of the week and the day is none of the O(holidays).
  - Options left out keep their stored value; on creation they take the default named in their description.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the schedule belongs to.
    type: str
    required: true
  name:
    description:
      - The schedule's name, unique within the tenant; 1 to 32 lowercase letters, digits, C(-) and C(_), a letter or
        digit first and last (it stands in destinations as V(schedule:<name>)).
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the schedule, C(absent) removes it.
      - A schedule that something still names cannot be removed (rule C(still_referenced)).
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Free text, for example what the hours are for. An empty string clears it.
    type: str
  timezone:
    description:
      - The IANA time zone of O(hours) and O(holidays), for example V(Europe/Berlin).
      - Unset (on creation) or an empty string, the tenant's O(voxplane.pbx.tenant#module:timezone).
    type: str
  hours:
    description:
      - When the schedule is open, a list of days of the week with a time span each; open from O(hours[].from) up
        to (not including) O(hours[].to).
      - Hours past midnight are two entries (to V(24:00), and from V(00:00) on the next day).
      - The list replaces the stored one; no hours on creation (always closed).
    type: list
    elements: dict
    suboptions:
      days:
        description: The days, V(mon), V(tue), V(wed), V(thu), V(fri), V(sat), V(sun) (full names are taken too).
        type: list
        elements: str
        required: true
      from:
        description: When it opens, V(HH:MM) (V(00:00) to V(23:59)).
        type: str
        required: true
      to:
        description: When it closes, V(HH:MM) after O(hours[].from) (up to V(24:00), the end of the day).
        type: str
        required: true
  holidays:
    description:
      - Days on which the schedule is closed all day, as dates (V(YYYY-MM-DD)); the list replaces the stored one.
    type: list
    elements: str
  open:
    description:
      - Where calls go while the schedule is open. An internal number (an extension, a group, a menu, a queue or a
        conference room), V(voicemail:<internal number>), V(voicemail-menu), V(announcement:<name>), another
        V(schedule:<name>) or an outside number the tenant may call.
      - Required on creation.
    type: str
  closed:
    description:
      - Where calls go while the schedule is closed, a destination as in O(open).
      - Required on creation.
    type: str
notes:
  - The router decides by its own clock; M(voxplane.pbx.route_info) predicts a call at any time
    (O(voxplane.pbx.route_info#module:at)).
'''

EXAMPLES = r'''
- name: The tenant, the reception and an announcement for closed hours (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions: [{internal_number: "100", name: Empfang, voicemail: {enabled: true}}]

- name: Office hours; closed on the Christmas holidays; outside them the reception's voicemail
  voxplane.pbx.schedule:
    tenant: acme
    name: office
    description: Mon-Thu 8-17, Fri 8-14
    hours:
      - {days: [mon, tue, wed, thu], from: "08:00", to: "17:00"}
      - {days: [fri], from: "08:00", to: "14:00"}
    holidays: ["2026-12-24", "2026-12-25", "2026-12-26"]
    open: "100"
    closed: voicemail:100

- name: The head number follows the office hours
  voxplane.pbx.number:
    tenant: acme
    number: "+49301234500"
    target: schedule:office

- name: Longer hours on Saturdays, in another time zone
  voxplane.pbx.schedule:
    tenant: acme
    name: office
    timezone: Europe/Vienna
    hours:
      - {days: [mon, tue, wed, thu], from: "08:00", to: "17:00"}
      - {days: [fri], from: "08:00", to: "14:00"}
      - {days: [sat], from: "09:00", to: "12:00"}
'''

RETURN = r'''
schedule:
  description: The schedule as stored after the task, in the shape this module takes; empty when absent.
  returned: always
  type: dict
  sample:
    tenant: acme
    name: office
    description: Mon-Thu 8-17, Fri 8-14
    timezone: null
    hours:
      - {days: [mon, tue, wed, thu], from: "08:00", to: "17:00"}
      - {days: [fri], from: "08:00", to: "14:00"}
    holidays: ["2026-12-24", "2026-12-25", "2026-12-26"]
    open: "100"
    closed: voicemail:100
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [create schedule office (tenant acme)]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: schedule office (tenant acme), field: "hours[0].to", rule: opening_hours,
            message: "06:00 is not after 20:00; hours past midnight are two entries"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module, suboptions

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    name=dict(type='str', required=True),
    description=dict(type='str'),
    timezone=dict(type='str'),
    hours=dict(type='list', elements='dict', options=suboptions('schedule', 'hours')),
    holidays=dict(type='list', elements='str'),
    open=dict(type='str'),
    closed=dict(type='str'),
)


def main():
    run_object_module('schedule', ARGUMENT_SPEC)


if __name__ == '__main__':
    main()
