#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: announcement_info
short_description: Read the announcements of a voxplane tenant
version_added: 0.2.0
description:
  - Returns one announcement of a tenant by its name, or all of the tenant's announcements.
  - The announcements come in exactly the shape M(voxplane.pbx.announcement) takes, so that feeding one
    back into the module changes nothing. The recording is named by the SHA-256 of the audio the directory
    keeps and its length, never returned itself; M(voxplane.pbx.tenant_info) with
    O(voxplane.pbx.tenant_info#module:audio) exports it.
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
      - Name of the announcement to read.
      - All of the tenant's announcements when left out.
    type: str
'''

EXAMPLES = r'''
- name: The tenant and an announcement these examples read (see voxplane.pbx.announcement)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}

- name: An announcement from a WAV file given as base64 (a 20 ms tone)
  voxplane.pbx.announcement:
    tenant: acme
    name: closed
    content: >-
      UklGRsQAAABXQVZFZm10IBAAAAAHAAEAQB8AAEAfAAABAAgAZGF0YaAAAAB/pZmUlZujsMPwSDMmHBYUFyFKqpqVlZ
      mhrb/gTTcoHRcUFh47rpyVlJifq7zXUzoqHhgUFhwxtp2WlJeeqbnPWz0sIBkVFRsswJ+XlJacp7XLZ0EuIhoVFBkn
      2KOYlJabpLHGf0YxJBsWFBgjWKeZlJWaoq7B50s1JxwWFBcfQKyblZWZoKy92085KR4XFBYdNrGclpSYnqq601c8Kx
      8Y

- name: Read one announcement
  voxplane.pbx.announcement_info:
    tenant: acme
    name: closed
  register: result

- name: Read all announcements of the tenant
  voxplane.pbx.announcement_info:
    tenant: acme
  register: all_announcements

- name: Feed them back unchanged (changes nothing)
  voxplane.pbx.announcement: "{{ item }}"
  loop: "{{ all_announcements.announcements }}"
'''

RETURN = r'''
exists:
  description:
    - With O(name), whether that announcement exists; without it, whether the tenant has any announcements.
    - V(false) also when the tenant or the directory does not exist.
  returned: always
  type: bool
  sample: true
announcements:
  description:
    - The announcements, as M(voxplane.pbx.announcement) takes them, sorted by name.
    - Empty when nothing matched.
  returned: always
  type: list
  elements: dict
  sample:
    - tenant: acme
      name: closed
      description: We are closed; please leave a message
      audio: 7987172fa1373bc1a73631cfba236ceafe624f3485db1ade8602957d45517ad7
      duration_ms: 4200
      then: voicemail:210
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_child_info_module


def main():
    run_child_info_module('announcement')


if __name__ == '__main__':
    main()
