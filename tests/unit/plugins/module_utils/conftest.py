# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from directory_helpers import BLOCK, account, block, extension, harness, tenant_request  # pytest.ini pythonpath
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION, NUMBER


@pytest.fixture
def pbx(request, tmp_path, backend):
    """An empty directory, once on each backend: a SQLite file that does not exist yet, and an
    empty schema of the lab's PostgreSQL server."""
    return harness(request, tmp_path, backend)


@pytest.fixture
def acme(pbx):
    """Tenant acme: a Berlin block +49 30 1234 00-99 and extension 10 with a desk phone account."""
    pbx.apply('acme', tenant_request(), {
        NUMBER: {BLOCK: block()},
        EXTENSION: {'10': extension(account('max.muster'), email='max.muster@acme.example')},
    })
    return pbx
