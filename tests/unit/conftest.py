# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.voxplane.pbx`` importable for plain pytest.

The code imports itself as ``ansible_collections.voxplane.pbx.plugins...``,
so the repository root (= the collection root) must appear on sys.path as
``<dir>/ansible_collections/voxplane/pbx``. ``make collection`` builds that
tree in build/collections; when it is not there (tests run standalone), a
private symlink tree in a temporary directory is used instead and removed at
exit. Nothing is written into the repository.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import atexit
import os
import sys
import tempfile

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
_SUFFIX = os.path.join('ansible_collections', 'voxplane', 'pbx')


def _collections_dir():
    built = os.path.join(REPO, 'build', 'collections')
    link = os.path.join(built, _SUFFIX)
    if os.path.isdir(link) and os.path.realpath(link) == REPO:
        return built
    root = tempfile.mkdtemp(prefix='voxplane-collections-')
    namespace = os.path.join(root, 'ansible_collections', 'voxplane')
    os.makedirs(namespace)
    link = os.path.join(namespace, 'pbx')
    os.symlink(REPO, link)

    def _cleanup():
        # Remove the link itself first, never what it points to.
        if os.path.islink(link):
            os.unlink(link)
        for path in (namespace, os.path.dirname(namespace), root):
            try:
                os.rmdir(path)
            except OSError:
                pass
    atexit.register(_cleanup)
    return root


COLLECTIONS_DIR = _collections_dir()
if COLLECTIONS_DIR not in sys.path:
    sys.path.insert(0, COLLECTIONS_DIR)

# Guard against a stale copy of the collection (say in ~/.ansible/collections)
# shadowing the working tree.
from ansible_collections.voxplane.pbx.plugins.module_utils import errors as _errors  # noqa: E402

if not os.path.realpath(_errors.__file__).startswith(REPO + os.sep):
    raise ImportError('ansible_collections.voxplane.pbx resolves to %s, not to the working tree %s'
                      % (_errors.__file__, REPO))
