# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for provisioned desk phones: the credentials derived from the provisioning secret."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.voxplane.pbx.plugins.module_utils import provisioning
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError


def line_password(secret, sip_domain, username):
    """The SIP password of a line of a provisioned device."""
    try:
        return provisioning.line_password(secret, sip_domain, username)
    except ValueError as e:
        raise AnsibleFilterError('line_password: %s' % e)


def device_password(secret, mac):
    """The HTTP password a device authenticates with at the provisioning server (user: its MAC)."""
    try:
        return provisioning.device_password(secret, mac)
    except (ValueError, RuleError) as e:
        raise AnsibleFilterError('device_password: %s' % e)


class FilterModule(object):
    def filters(self):
        return {'line_password': line_password, 'device_password': device_password}
