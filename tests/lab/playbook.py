# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-playbook against localhost (connection local) with the collection of this checkout,
and the outcome of a run: ``run_playbook`` and ``PlaybookRun``."""

import json
import os
import re
import subprocess
import sys
import tempfile

from lab import REPO

RECAP = re.compile(r'ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)')
TIMEOUT = 600


class PlaybookRun(object):
    """rc, stdout, stderr and the PLAY RECAP counts (None when there is no recap)."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        match = RECAP.search(proc.stdout)
        self.ok, self.changed, self.unreachable, self.failed, self.skipped = (
            [int(g) for g in match.groups()] if match else [None] * 5)

    def __repr__(self):
        return 'rc=%s changed=%s failed=%s\n%s\n%s' % (
            self.rc, self.changed, self.failed, self.stdout[-8000:], self.stderr[-3000:])


def collections_path():
    """build/collections, where ansible_collections/voxplane/pbx links to this checkout (what
    `make collection` makes; made here when it is missing)."""
    root = os.path.join(REPO, 'build', 'collections')
    link = os.path.join(root, 'ansible_collections', 'voxplane', 'pbx')
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(REPO, os.path.dirname(link)), link)
    return root


def ansible_command(name):
    """ansible-playbook, ansible-doc, ... next to the running Python (the .venv)."""
    return os.path.join(os.path.dirname(sys.executable), name)


def environment(env=None):
    """The environment of an Ansible command run by the lab: this checkout's collection and
    ansible.cfg, no colours, the default callback (tests read its recap)."""
    result = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
                  ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_RETRY_FILES_ENABLED='0',
                  ANSIBLE_STDOUT_CALLBACK='default', ANSIBLE_LOCALHOST_WARNING='0',
                  ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    result.update(env or {})
    return result


def run_playbook(playbook, variables=None, check=False, diff=False, inventory='localhost,', env=None, cwd=None,
                 timeout=TIMEOUT, options=(), interpreter=True):
    """Run ``playbook`` against the hosts of ``inventory`` (localhost by default), each reached
    with a local connection and the running Python (``interpreter=False``: the one ansible.cfg
    names, so that a role may run some tasks with another); ``variables`` go in as a JSON file of
    extra variables (no length limit, any type). Returns a PlaybookRun."""
    variables = dict(variables or {})
    if interpreter:
        variables['ansible_python_interpreter'] = sys.executable
    with tempfile.NamedTemporaryFile('w', prefix='voxplane-vars-', suffix='.json', delete=False) as handle:
        json.dump(variables, handle, indent=1)
    cmd = [ansible_command('ansible-playbook'), '-i', inventory, '-c', 'local', '-e', '@' + handle.name, playbook]
    cmd += ['--check'] if check else []
    cmd += ['--diff'] if diff else []
    cmd += list(options)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or REPO, env=environment(env),
                              timeout=timeout, check=False)
    finally:
        os.unlink(handle.name)
    return PlaybookRun(proc)
