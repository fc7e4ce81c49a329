# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The directory connection, shared by every module of the collection.
    DOCUMENTATION = r'''
options:
  directory:
    description:
      - Location of the directory database.
      - A file path selects SQLite; the file and its schema are created on first use
        and migrated forward when the collection brings a newer schema.
      - Set it once for a play with C(module_defaults) and the action group
        C(group/voxplane.pbx.directory), or with the environment variable E(VOXPLANE_DIRECTORY).
    type: str
    default: /var/lib/voxplane/directory.db
notes:
  - Every task runs in one transaction and either writes all of its changes or none.
    A write bumps the directory generation, which the Kamailio router watches to reload its snapshot.
'''

    # Attributes of a module that changes the directory.
    STATE = r'''
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details:
      - Check mode runs the same code inside the transaction and rolls it back, so the diff is the real one.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details:
      - Secrets (SIP passwords, voicemail PINs) show as set or changed, never as values.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
  action_group:
    description: Use C(group/voxplane.pbx.directory) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - voxplane.pbx.directory
'''

    # Attributes of an *_info module.
    INFO = r'''
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details:
      - The module only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: N/A
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
  action_group:
    description: Use C(group/voxplane.pbx.directory) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - voxplane.pbx.directory
'''
