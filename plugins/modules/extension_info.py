#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: extension_info
short_description: Read the extensions (user accounts) of a voxplane tenant
version_added: 0.1.0
description:
  - Returns one extension of a tenant by its internal number, or all of the tenant's extensions.
  - The extensions come in exactly the shape M(voxplane.pbx.extension) takes, so that feeding one back
    into the module changes nothing.
  - SIP passwords (stored as HA1) and voicemail PINs are never returned; the extension module keeps the
    stored secret when a SIP account or the voicemail is given without one.
  - C(dnd) and C(forwarding) show the values in force, including those switched from a phone by feature codes.
  - With O(registration), also whether each SIP account of each extension is registered now, read from
    the running Kamailio (its usrloc, through JSON-RPC), with contact, source address, user agent and expiry.
  - Also returns each mailbox's message counts (RV(mailboxes)), beside the extensions rather than in them, so that
    an extension fed back into M(voxplane.pbx.extension) still changes nothing. Never the messages' audio;
    M(voxplane.pbx.voicemail_message_info) lists and copies the messages.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.info
  - voxplane.pbx.kamailio
options:
  tenant:
    description: The tenant to read from.
    type: str
    required: true
  internal_number:
    description:
      - Internal number of the extension to read.
      - All of the tenant's extensions when left out.
    type: str
  registration:
    description:
      - Whether to report the registration status of every SIP account of the extensions (RV(registrations)).
      - Needs the running Kamailio (O(kamailio_rpc)); fails naming the FIFO when it cannot be asked.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: The tenant and the extension these examples read (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions:
        - {internal_number: "210", name: Anna Schmidt, sip_accounts: [{username: anna.desk, password: "{{ vault_anna_desk }}"}]}

- name: Read one extension
  voxplane.pbx.extension_info:
    tenant: acme
    internal_number: "210"
  register: result

- name: Read all extensions of the tenant
  voxplane.pbx.extension_info:
    tenant: acme
  register: all_extensions

- name: Which of Anna's SIP accounts are registered? (asks Kamailio)
  voxplane.pbx.extension_info:
    tenant: acme
    internal_number: "210"
    registration: true
  register: anna

- name: Feed them back unchanged (changes nothing)
  voxplane.pbx.extension: "{{ item }}"
  loop: "{{ all_extensions.extensions }}"
'''

RETURN = r'''
exists:
  description:
    - With O(internal_number), whether that extension exists; without it, whether the tenant has any extensions.
    - V(false) also when the tenant or the directory does not exist.
  returned: always
  type: bool
  sample: true
extensions:
  description:
    - The extensions, as M(voxplane.pbx.extension) takes them, without secrets, sorted by internal number.
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - tenant: acme
      internal_number: "210"
      name: Anna Schmidt
      email: anna@acme.example.com
      role: end_user
      seat: best
      ddi: "10"
      assign_all_external_numbers: true
      external_numbers: []
      sip_accounts: [{username: anna.desk, kind: desk_phone}, {username: anna.app, kind: softclient}]
      outbound_caller_id: null
      mobile: "+491701234567"
      voicemail: {enabled: true}
      international_calls: false
      ring_time: 20
      forwarding: {unconditional: null, busy: null, no_answer: null, unregistered: "+491701234567"}
      dnd: false
      available: true
      location: berlin
      single_number_reach: false
mailboxes:
  description:
    - The voicemail boxes of the extensions read, those with voicemail enabled or holding messages, sorted by
      internal number; C(new) and C(saved) count the messages in each folder, C(locked) is whether the box is
      locked after wrong PINs (the extension's C(voicemail.locked)).
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - {internal_number: "210", new: 2, saved: 5, locked: false}
registrations:
  description:
    - With O(registration), one entry per SIP account of each extension (in account order), in the shape
      of RV(voxplane.pbx.device_info#module:registrations) with C(internal_number) in place of C(mac).
  returned: when O(registration) is true
  type: list
  elements: dict
  sample:
    - internal_number: "210"
      username: anna.app
      aor: anna.app@acme.pbx.example.com
      registered: false
      status: not registered
      contacts: []
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import voicemail
from ansible_collections.voxplane.pbx.plugins.module_utils.phone_control import registrations
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('extension', lambda state, keys, rpc: registrations(state, 'extension', keys, rpc),
                          also={'mailboxes': voicemail.mailboxes})


if __name__ == '__main__':
    main()
