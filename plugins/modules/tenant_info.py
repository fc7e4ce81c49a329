#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: tenant_info
short_description: Read a whole tenant from the voxplane directory
version_added: 0.1.0
description:
  - Returns one tenant with all its numbers, extensions, devices and groups, in exactly the shape
    the modules take, so that feeding the result back into them changes nothing.
  - Secrets (SIP passwords as HA1, voicemail PINs) are never returned; modules keep the stored
    secret when a SIP account or voicemail is given without one.
  - Also returns the number plan the router derives from the tenant, that is which E.164 number reaches which target.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.info
options:
  tenant:
    description: The tenant to read.
    type: str
    required: true
    aliases: [name]
'''

EXAMPLES = r'''
- name: Read the tenant
  voxplane.pbx.tenant_info:
    tenant: acme
  register: acme

- name: Feed an extension back unchanged
  voxplane.pbx.extension: "{{ acme.extensions[0] }}"
'''

RETURN = r'''
exists:
  description: Whether the tenant exists.
  returned: always
  type: bool
tenant:
  description: The tenant, as M(voxplane.pbx.tenant) takes it; empty when it does not exist.
  returned: always
  type: dict
numbers:
  description: The tenant's numbers, as M(voxplane.pbx.number) takes them, sorted by number.
  returned: always
  type: list
  elements: dict
extensions:
  description: The tenant's extensions, as M(voxplane.pbx.extension) takes them, without secrets, sorted by internal number.
  returned: always
  type: list
  elements: dict
devices:
  description: The tenant's devices, as M(voxplane.pbx.device) takes them, sorted by MAC.
  returned: always
  type: list
  elements: dict
groups:
  description: The tenant's groups, as M(voxplane.pbx.group) takes them, sorted by internal number.
  returned: always
  type: list
  elements: dict
number_plan:
  description:
    - Every E.164 number of the tenant and the internal number it reaches (null when it reaches nobody),
      with its effective status (a porting number turns active by itself on its porting day).
  returned: always
  type: dict
  sample: {"+4930123456710": {target: "210", number: "+49301234567", status: active}}
generation:
  description: The directory generation the data was read at.
  returned: when the directory exists
  type: int
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import model, rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import DIRECTORY_ARGS, fail, new_module, read_tenant

EMPTY = dict(tenant={}, numbers=[], extensions=[], devices=[], groups=[], number_plan={})


def main():
    spec = dict(tenant=dict(type='str', required=True, aliases=['name']))
    spec.update(DIRECTORY_ARGS)
    module = new_module(spec, model.TENANT, 'tenant')
    state, generation = read_tenant(module, module.params['tenant'])
    if state is None or state.tenant is None:
        module.exit_json(changed=False, exists=False, **EMPTY)
    result = dict(changed=False, exists=True, tenant=model.public(model.TENANT, state.tenant),
                  generation=generation['generation'])
    for kind in model.CHILD_KINDS:
        objects = state.objects(kind)
        result[model.PLURAL[kind]] = [model.public(kind, objects[key]) for key in sorted(objects)]
    plan = state.number_plan()[0]
    numbers = state.objects(model.NUMBER)
    tz = state.tenant['timezone']
    try:  # a porting number's status needs the time zone: tz data must be there
        result['number_plan'] = dict(
            (e164, dict(entry, status=rules.effective_status(numbers[entry['number']], tz)))
            for e164, entry in sorted(plan.items()))
    except DirectoryError as e:
        fail(module, e)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
