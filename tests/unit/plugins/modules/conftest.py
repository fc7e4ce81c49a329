# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the module tests (helpers in module_helpers.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from module_helpers import Pbx  # tests/unit/plugins/modules (pytest.ini pythonpath)
from ansible_collections.voxplane.pbx.plugins.module_utils import runner


@pytest.fixture(autouse=True)
def default_directory(tmp_path_factory, monkeypatch):
    """Safety net: no test may reach /var/lib/voxplane. The option's default points to a
    path that must never appear, and VOXPLANE_DIRECTORY starts unset."""
    default = tmp_path_factory.mktemp('default-location') / 'must-not-appear' / 'directory.db'
    monkeypatch.setitem(runner.DIRECTORY_ARGS['directory'], 'default', str(default))
    monkeypatch.delenv('VOXPLANE_DIRECTORY', raising=False)
    yield default
    assert not default.parent.exists(), 'a module used the default directory location'


@pytest.fixture
def pbx(tmp_path):
    """An empty directory: the database file does not exist yet."""
    return Pbx(tmp_path / 'directory.db')
