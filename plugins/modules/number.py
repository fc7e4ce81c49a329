#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: number
short_description: Manage a phone number or number block of a voxplane tenant
version_added: 0.1.0
description:
  - Creates, updates or removes one number of a tenant, identified by its E.164 number. It is a single
    number, or a block (head number plus a direct-dial range).
  - A block holds its base number and the base followed by each DDI of its range. The block
    V(+49301234567) with O(ddi_range=00-99) holds V(+49301234567) and V(+4930123456700) to V(+4930123456799).
    An extension whose DDI (its internal number when it has none) lies in the range is reached under
    base+DDI, unless it opted out with O(voxplane.pbx.extension#module:assign_all_external_numbers=false).
  - A number belongs to one tenant (numbers are unique across the directory, block members included)
    and reaches one target at a time. Two claims on the same number (this module's O(target) and an
    extension's O(voxplane.pbx.extension#module:external_numbers), or two extensions) fail the task.
  - Options left out keep their stored value; on creation they take the default named in their description.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the number belongs to.
    type: str
    required: true
  number:
    description:
      - The number in E.164 (V(+4930123456)), with the international prefix (V(004930123456)) or in national
        form by the tenant's dial plan (V(030 123456)); spaces, C(-), C(/), C(.) and parentheses are ignored.
        Stored as E.164.
      - For a block, the base number without any DDI.
      - At most 15 digits; German numbers have at most 12 national digits including the area code
        (14 with C(+49)), block members included.
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the number, C(absent) removes it.
      - A number that is the tenant's O(voxplane.pbx.tenant#module:main_number), one of an extension's
        O(voxplane.pbx.extension#module:external_numbers) or its O(voxplane.pbx.extension#module:outbound_caller_id)
        cannot be removed.
      - This is the existence of the object in the directory; the number's lifecycle is O(status).
    type: str
    choices: [present, absent]
    default: present
  ddi_range:
    description:
      - Direct-dial range that makes the number a block, for example V(0-9) or V(00-99). Both ends have the
        same number of digits (at most 5), the first not greater than the last.
      - An empty string makes it a single number. A single number on creation.
    type: str
  status:
    description:
      - Lifecycle of the number. Only active numbers are routed; calls to others are rejected.
        C(porting) numbers are being ported in and turn active by themselves on their O(porting_date).
        C(active) on creation.
    type: str
    choices: [active, inactive, porting]
  porting_date:
    description:
      - Day the number is ported in, as C(YYYY-MM-DD). A porting number turns active by itself at 08:00 of
        that day in the tenant's O(voxplane.pbx.tenant#module:timezone), without anyone acting.
      - Required for status C(porting). A number whose porting day lies ahead must have status C(porting).
      - An empty string clears it.
    type: str
  interim:
    description:
      - Marks an interim number, used while the tenant's own numbers are being ported. Interim numbers are
        active at once, so they need status C(active). V(false) on creation.
    type: bool
  target:
    description:
      - What the number reaches. The internal number of an extension or group, or a destination the PBX answers
        itself, V(voicemail:<internal number>) (that extension's voicemail box, which must be enabled; a caller
        leaves a message), V(voicemail-menu) (the voicemail access menu, where callers enter a mailbox and its PIN,
        to listen from outside) or V(announcement:<name>) (M(voxplane.pbx.announcement), for example outside
        business hours). Not an outside number.
      - For a block, the target of the base number without DDI; the block's other members reach the extensions
        with the matching DDI.
      - When unset, the number reaches the extension that claims it (see the description), or nobody.
      - An empty string clears it.
    type: str
  description:
    description: Free text, for example what the number is printed on. An empty string clears it.
    type: str
'''

EXAMPLES = r'''
- name: The tenant, and the extension and group its numbers reach (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions: [{internal_number: "210", name: Anna Schmidt, voicemail: {enabled: true}}]
      groups: [{internal_number: "200", name: Reception, members: ["210"]}]

- name: A block of 100 numbers whose head number reaches the reception group
  voxplane.pbx.number:
    tenant: acme
    number: "+49301234567"
    ddi_range: "00-99"
    target: "200"
    description: Berlin office

- name: A single number in national form, being ported in on the 1st of June
  voxplane.pbx.number:
    tenant: acme
    number: "040 9876543"
    status: porting
    porting_date: "2025-06-01"

- name: An interim number reaching an extension until the port completes
  voxplane.pbx.number:
    tenant: acme
    number: "+493055501234"
    interim: true
    target: "210"

- name: Stop routing the ported number, keeping it in the directory
  voxplane.pbx.number:
    tenant: acme
    number: "040 9876543"
    status: inactive

- name: A number that leads straight to Anna's voicemail box
  voxplane.pbx.number:
    tenant: acme
    number: "+493055501299"
    target: voicemail:210

- name: A number to call from outside to listen to one's voicemail (asks for the mailbox and its PIN)
  voxplane.pbx.number:
    tenant: acme
    number: "+493055501298"
    target: voicemail-menu

- name: Remove the interim number once the port is complete (interim numbers stay active until then)
  voxplane.pbx.number:
    tenant: acme
    number: "+493055501234"
    state: absent
'''

RETURN = r'''
number:
  description: The number as stored after the task, in the shape this module takes; empty when absent.
  returned: always
  type: dict
  sample:
    tenant: acme
    number: "+49301234567"
    ddi_range: "00-99"
    status: active
    porting_date: null
    interim: false
    target: "200"
    description: Berlin office
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [create number +49301234567 (tenant acme)]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: number +49301234567 (tenant acme), field: ddi_range, rule: ddi_range,
            message: "'0-99': both ends need the same number of digits"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    number=dict(type='str', required=True),
    ddi_range=dict(type='str'),
    status=dict(type='str', choices=list(rules.NUMBER_STATUSES)),
    porting_date=dict(type='str'),
    interim=dict(type='bool'),
    target=dict(type='str'),
    description=dict(type='str'),
)


def main():
    run_object_module('number', ARGUMENT_SPEC)


if __name__ == '__main__':
    main()
