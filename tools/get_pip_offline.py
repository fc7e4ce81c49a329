#!/usr/bin/env python
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip script that ``ansible-test`` downloads.

``ansible-test`` bootstraps pip into every virtual environment it creates (for
the sanity tests) by running ``get-pip-<version>.py`` fetched from
ci-files.testing.ansible.com and cached as
``~/.ansible/test/cache/get_pip_<version>.py``. That host is unreachable here,
but PyPI is: this script does the same job with the interpreter's bundled
``ensurepip`` followed by ``pip install`` of the requested packages.

Two ways to run it:

* ``python tools/get_pip_offline.py --install-shim [ANSIBLE_TEST_PYTHON]`` copies
  this file into the ansible-test cache under the name ansible-test looks for
  (the pip version is read from the installed ansible-test). It does nothing
  when an identical copy is already there.
* ansible-test runs the cached copy as ``get_pip_X_Y.py [pip options] pip==X.Y
  [--no-setuptools] [--no-wheel]``, exactly as it would run the real get-pip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

CACHE_DIR = os.path.expanduser('~/.ansible/test/cache')
GET_PIP_FLAGS = ('--no-setuptools', '--no-wheel')


def bootstrap(argv: list[str]) -> int:
    """Install pip into the running interpreter's environment, like get-pip.py."""
    python = sys.executable
    options = [arg for arg in argv if arg not in GET_PIP_FLAGS]
    env = dict(os.environ)
    env.pop('GET_PIP', None)

    probe = subprocess.run([python, '-c', 'import pip'], env=env, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if probe.returncode != 0:
        subprocess.run([python, '-m', 'ensurepip', '--default-pip'], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    subprocess.run([python, '-m', 'pip', 'install'] + options, env=env, check=True)

    if '--no-setuptools' in argv:
        # get-pip leaves setuptools out on request; ensurepip of Python < 3.12 always adds it.
        subprocess.run([python, '-m', 'pip', 'uninstall', '--yes', '--quiet', 'setuptools'], env=env,
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return 0


def ansible_test_pip_version(python: str) -> str:
    """Return the pip version the given interpreter's ansible-test bootstraps."""
    code = ('import ansible_test._internal.python_requirements as m, inspect; '
            'print(inspect.getsource(m.get_venv_packages))')
    source = subprocess.run([python, '-c', code], check=True, stdout=subprocess.PIPE, text=True).stdout
    match = re.search(r"""pip\s*=\s*['"]([0-9][0-9.]*)['"]""", source)
    if not match:
        raise SystemExit('cannot find the pip version ansible-test bootstraps')
    return match.group(1)


def install_shim(python: str) -> int:
    """Place this file in the ansible-test cache as get_pip_<version>.py, if not already there."""
    version = ansible_test_pip_version(python)
    target = os.path.join(CACHE_DIR, 'get_pip_%s.py' % version.replace('.', '_'))
    with open(__file__, 'rb') as handle:
        wanted = handle.read()
    try:
        with open(target, 'rb') as handle:
            if handle.read() == wanted:
                return 0
    except FileNotFoundError:
        pass
    os.makedirs(CACHE_DIR, exist_ok=True)
    shutil.copyfile(__file__, target + '.tmp')
    os.replace(target + '.tmp', target)
    print('installed offline get-pip shim for pip %s: %s' % (version, target))
    return 0


def main() -> int:
    """Dispatch on the first argument."""
    if sys.argv[1:2] == ['--install-shim']:
        return install_shim(sys.argv[2] if len(sys.argv) > 2 else sys.executable)
    return bootstrap(sys.argv[1:])


if __name__ == '__main__':
    sys.exit(main())
