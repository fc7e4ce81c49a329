# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: device_password
short_description: The HTTP password of a desk phone at the provisioning server
version_added: 0.2.0
description:
- Derives the password a device authenticates with (HTTP Basic over TLS, user name its MAC as 12 lowercase hex digits)
  at the provisioning server from the provisioning secret and the MAC.
- Hand it to the phone (its provisioning settings, a vendor redirect service) or let the phone get it with an activation
  code (O(voxplane.pbx.device#module:activation_code)).
author: voxplane developers (@voxplane)
positional: mac
options:
  _input:
    description: The provisioning secret (at least 16 characters), the role's C(provisioning_secret).
    type: str
    required: true
  mac:
    description: The device's MAC address, in any spelling the device module takes.
    type: str
    required: true
'''

EXAMPLES = r'''
- name: The credentials of the reception phone
  ansible.builtin.debug:
    msg: "user 805ec0123456, password {{ vault_provisioning_secret | voxplane.pbx.device_password('80:5e:c0:12:34:56') }}"
'''

RETURN = r'''
_value:
  description: The password.
  type: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.voxplane.pbx.plugins.module_utils import provisioning
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError


def device_password(secret, mac):
    """The HTTP password a device authenticates with at the provisioning server (user: its MAC)."""
    try:
        return provisioning.device_password(secret, mac)
    except (ValueError, RuleError) as e:
        raise AnsibleFilterError('device_password: %s' % e)


class FilterModule(object):
    def filters(self):
        return {'device_password': device_password}
