# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane.pbx.announcement on the controller: read the WAV file ``src`` there and send its bytes.

The module runs on the host that holds the directory; the recording is a file of the playbook or
role, on the controller. This plugin finds it the way Ansible finds files (the role's ``files/``,
then beside the playbook), refuses a file larger than any announcement can be before sending it,
and passes its bytes to the module as base64 (``content``) with ``src`` naming the file it read,
so that the module's messages name it. Everything else, the checks of the audio included, is the
module's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os

from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.voxplane.pbx.plugins.module_utils import audio, model
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError, ValidationFailed


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # no temporary files: the bytes travel in the module's arguments
        args = dict(self._task.args)
        src = args.get('src')
        if src and not boolean(args.get('remote_src', False), strict=False) and args.get('state', 'present') != 'absent':
            try:
                args.update(self._read(src, args))
            except RuleError as e:
                failure = ValidationFailed([e.at(model.describe(model.ANNOUNCEMENT, args.get('name'), args.get('tenant')))])
                result.update(failed=True, changed=False, msg=failure.summary(),
                              violations=[v.as_dict() for v in failure.violations])
                return result
        result.update(self._execute_module(module_args=args, task_vars=task_vars))
        return result

    def _read(self, src, args):
        """``content`` (the file's bytes, base64) and ``src`` (the file that was read) for the module."""
        if args.get('content') is not None:
            raise RuleError('content', 'mutually_exclusive', 'give the WAV file as src or as content, not both')
        try:
            path = self._find_needle('files', src)
        except AnsibleError as e:
            raise RuleError('src', 'file', 'cannot find %s on the controller (%s)' % (src, e.message))
        try:
            error = audio.too_large(os.path.getsize(path), 'src', path)
            if error is not None:
                raise error
            with open(path, 'rb') as handle:
                data = handle.read()
        except (IOError, OSError) as e:
            raise RuleError('src', 'file', 'cannot read %s on the controller (%s)' % (path, e.strerror or e))
        return {'src': path, 'content': base64.b64encode(data).decode('ascii')}
