# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.voxplane.pbx`` importable for plain pytest.

The code imports itself as ``ansible_collections.voxplane.pbx.plugins...``, so the repository
root (= the collection root) must appear on the import path as
``<dir>/ansible_collections/voxplane/pbx``: build/collections (pytest.ini's pythonpath), which
``make collection`` links to this tree and lab.playbook makes when it is missing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os

import pytest

from lab import REPO
from lab.playbook import collections_path

collections_path()
importlib.invalidate_caches()  # build/collections may have been made just now

# Guard against a stale copy of the collection (say in ~/.ansible/collections)
# shadowing the working tree.
from ansible_collections.voxplane.pbx.plugins.module_utils import errors as _errors  # noqa: E402

if not os.path.realpath(_errors.__file__).startswith(os.path.realpath(REPO) + os.sep):
    raise ImportError('ansible_collections.voxplane.pbx resolves to %s, not to the working tree %s'
                      % (_errors.__file__, REPO))


# The directory's backends ----------------------------------------------------------------------
# The lab's PostgreSQL server, once per session (per xdist worker), for the tests that ask for it.
from lab.postgresql import postgresql_server  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position

BACKENDS = ['sqlite', 'postgresql']


def pytest_generate_tests(metafunc):
    """Every test of a directory (``pbx``, ``acme``) runs on each backend; one marked
    ``sqlite_only`` (what a SQLite file alone has: its bytes, its folder, WAL) on SQLite only,
    one marked ``postgresql_only`` on PostgreSQL only."""
    if 'backend' in metafunc.fixturenames:
        backends = [b for b in BACKENDS if not metafunc.definition.get_closest_marker(
            '%s_only' % ({'sqlite': 'postgresql', 'postgresql': 'sqlite'}[b]))]
        metafunc.parametrize('backend', backends, indirect=True)


@pytest.fixture
def backend(request):
    return request.param
