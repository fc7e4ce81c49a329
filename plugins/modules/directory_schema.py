#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: directory_schema
short_description: Create the voxplane directory database and migrate its schema forward
version_added: 0.1.0
description:
  - Makes sure the directory database exists and carries the newest schema this collection knows,
    applying the missing forward migrations in one transaction.
  - Every other module does the same on first use; this module makes it an explicit step of a
    deployment (the C(voxplane.pbx.directory) role runs it) and reports the schema version and generation.
  - Fails without changing anything when the database carries a newer schema than the collection knows.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options: {}
'''

EXAMPLES = r'''
- name: Create or migrate the directory
  voxplane.pbx.directory_schema:
    directory: /var/lib/voxplane/directory.db
'''

RETURN = r'''
schema_version:
  description: The schema version after the task (in check mode, the version it would have).
  returned: always
  type: int
  sample: 1
migrated_from:
  description: The schema version before the task; 0 for a new directory.
  returned: always
  type: int
  sample: 0
generation:
  description: The directory's change counter.
  returned: always
  type: int
  sample: 42
'''

from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import DIRECTORY_ARGS, fail, new_module, open_directory
from ansible_collections.voxplane.pbx.plugins.module_utils.schema import LATEST_VERSION


def main():
    module = new_module(dict(DIRECTORY_ARGS))
    directory = open_directory(module, for_write=True)
    try:
        with directory.transaction(write=True, create_parents=module.params['create_parents']) as txn:
            before = LATEST_VERSION if txn.migrated_from is None else txn.migrated_from
            generation = txn.generation()['generation']
            if module.check_mode:
                txn.rollback_at_exit()
    except DirectoryError as e:
        fail(module, e)
    module.exit_json(changed=before != LATEST_VERSION, schema_version=LATEST_VERSION,
                     migrated_from=before, generation=generation)


if __name__ == '__main__':
    main()
