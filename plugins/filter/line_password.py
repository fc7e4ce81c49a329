# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: line_password
short_description: The SIP password of a line of a provisioned desk phone
version_added: 0.2.0
description:
- Derives the SIP password of a SIP account that a provisioned device carries as a line from the provisioning secret
  (HMAC-SHA256 of the SIP domain and the user name), 24 letters and digits.
- Give it as the account's O(voxplane.pbx.extension#module:sip_accounts[].password); the directory keeps its HA1
  only, and the provisioning server (role C(voxplane.pbx.provisioning)), which holds the same secret, derives the
  same password when the phone fetches its file. No password in clear is stored anywhere.
author: voxplane developers (@voxplane)
positional: sip_domain, username
options:
  _input:
    description: The provisioning secret (at least 16 characters), the role's C(provisioning_secret).
    type: str
    required: true
  sip_domain:
    description: The tenant's SIP domain.
    type: str
    required: true
  username:
    description: The SIP account's user name.
    type: str
    required: true
'''

EXAMPLES = r'''
- name: Anna's desk phone account, provisioned
  voxplane.pbx.extension:
    tenant: acme
    internal_number: "210"
    sip_accounts:
      - username: anna.desk
        password: "{{ vault_provisioning_secret | voxplane.pbx.line_password('acme.pbx.example.com', 'anna.desk') }}"
'''

RETURN = r'''
_value:
  description: The password.
  type: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.voxplane.pbx.plugins.module_utils import provisioning


def line_password(secret, sip_domain, username):
    """The SIP password of a line of a provisioned device (provisioning.line_password)."""
    try:
        return provisioning.line_password(secret, sip_domain, username)
    except ValueError as e:
        raise AnsibleFilterError('line_password: %s' % e)


class FilterModule(object):
    def filters(self):
        return {'line_password': line_password}
