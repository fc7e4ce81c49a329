# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the module tests: run the collection's modules in-process against a real SQLite directory in tmp_path.

ansible-core 2.19: module arguments go in through
``ansible.module_utils.testing.patch_module_args`` (the old ``basic._ANSIBLE_ARGS``
trick needs a serialization profile). ``main()`` prints the result as JSON on
stdout and leaves through ``SystemExit`` (0: exit_json, 1: fail_json); the tests
read exactly that JSON, after Ansible's no_log masking, as a controller would.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import io
import json
import os
import sqlite3

import pytest

from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from lab import table_rows

from ansible_collections.voxplane.pbx.plugins.modules import (
    announcement, announcement_info, conference, conference_info, device, device_action, device_info, directory_schema,
    extension, extension_info, group, group_info, ivr, ivr_info, number, number_info, queue, queue_info, schedule,
    schedule_info, tenant, tenant_config, tenant_info, voicemail_message, voicemail_message_info,
)

MODULES = dict((m.__name__.rsplit('.', 1)[-1], m) for m in (
    tenant, number, extension, device, group, tenant_info, number_info, extension_info, device_info, group_info,
    directory_schema, tenant_config, device_action, announcement, announcement_info, voicemail_message,
    voicemail_message_info, ivr, ivr_info, queue, queue_info, conference, conference_info, schedule, schedule_info,
))

# What Ansible writes in place of a no_log value it finds in a result.
NO_LOG_MARK = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'


class ModuleResult(dict):
    """The module's JSON result; ``rc`` is the SystemExit code, ``raw`` the printed text
    and ``public_raw`` that text without Ansible's ``invocation`` echo of the arguments."""

    def __init__(self, data, rc, raw):
        super(ModuleResult, self).__init__(data)
        self.rc = rc
        self.raw = raw
        self.public_raw = json.dumps(dict((k, v) for k, v in data.items() if k != 'invocation'), sort_keys=True)

    @property
    def failed(self):
        return bool(self.get('failed'))


def run_module(name, args):
    """Run module ``name`` with ``args``; return its ModuleResult. Each run starts without the
    warnings of an earlier run, as a module process of its own would (Ansible keeps them globally)."""
    module = MODULES[name]
    for pending in ('_global_warnings', '_global_deprecations'):
        getattr(ansible_warnings, pending, {}).clear()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit) as exit_info:
            with patch_module_args(args):
                module.main()
    raw = out.getvalue()
    try:
        data = json.loads(raw)
    except ValueError:
        raise AssertionError('module %s printed no JSON result: %r' % (name, raw))
    rc = exit_info.value.code
    assert (rc == 1) == bool(data.get('failed')), 'exit code %r does not match the result %r' % (rc, data)
    return ModuleResult(data, rc, raw)


class Pbx(object):
    """One directory database file (it need not exist yet) and the modules run against it."""

    def __init__(self, path):
        self.path = str(path)

    def run(self, module_name, /, check=False, diff=False, **args):
        """Run a module against this directory; ``check``/``diff`` set Ansible's check and
        diff mode; ``directory=None`` leaves the directory option out."""
        args.setdefault('directory', self.path)
        if args['directory'] is None:
            del args['directory']
        if check:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        return run_module(module_name, args)

    def ok(self, module_name, /, **args):
        """Run a module that must succeed."""
        result = self.run(module_name, **args)
        assert not result.failed, '%s failed: %s' % (module_name, result.get('msg'))
        return result

    def exists(self):
        return os.path.exists(self.path)

    def snapshot(self):
        """Every row of every table, read with plain sqlite3 (None: no file)."""
        return table_rows(self.path)

    def query(self, sql, params=()):
        conn = sqlite3.connect(self.path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def generation(self):
        return self.query('SELECT generation FROM voxplane_generation WHERE id = 1')[0][0]

    def ha1(self, username):
        rows = self.query('SELECT ha1 FROM sip_accounts WHERE username = ?', (username,))
        return rows[0][0] if rows else None
