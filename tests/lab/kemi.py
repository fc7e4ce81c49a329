# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The KEMI script loaded in-process the way Kamailio's app_python3 loads it (its folder first
on the import path, its settings file beside it, ``import KSR`` answered by the given module),
for the tests that drive the router with the KSR double (tests/unit/kemi). Everything it
changes in the interpreter (modules, import path) is undone after the block."""

import contextlib
import importlib.util
import itertools
import json
import os
import shutil
import sys

from lab import REPO

KEMI_DIR = os.path.join(REPO, 'kemi')
KEMI_SCRIPT = os.path.join(KEMI_DIR, 'voxplane_kemi.py')

_counter = itertools.count()


@contextlib.contextmanager
def loaded_script(folder, settings, ksr):
    """Copy kemi/*.py into ``folder`` (as the role deploys them) with ``settings`` (None: no
    settings file) next to them, import voxplane_kemi.py with ``ksr`` as the KSR module; yield
    the module; then restore sys.modules and the import path."""
    os.makedirs(str(folder), exist_ok=True)
    script = os.path.join(str(folder), 'voxplane_kemi.py')
    for name in os.listdir(KEMI_DIR):
        if name.endswith('.py'):
            shutil.copyfile(os.path.join(KEMI_DIR, name), os.path.join(str(folder), name))
    if settings is not None:
        with open(os.path.join(str(folder), 'voxplane_settings.json'), 'w') as handle:
            json.dump(settings, handle)
    saved_modules, saved_path = dict(sys.modules), list(sys.path)
    try:
        sys.modules['KSR'] = ksr
        spec = importlib.util.spec_from_file_location('voxplane_kemi_under_test_%d' % next(_counter), script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.clear()
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path
