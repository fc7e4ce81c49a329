# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's EXAMPLES, run as they are written, in their order, with ansible-playbook.

The EXAMPLES block of each module is read from its source, parsed as YAML and run as the
tasks of one play against a real SQLite directory of its own (module_defaults give the
directory; an example that names the default /var/lib/voxplane/directory.db gets the test's
path instead). All plays run in one ansible-playbook call, each on a local host of its own, so
that one module's failing example does not stop the others.
Secrets the examples take from the user's vault (``{{ vault_... }}``) get test values.

Every module's examples stand alone: they start from an empty directory and create what they
use. They are run a second time on top of the README's tour (the tenant a new user has after
it), where they must pass too, but for the tenant module's, which end by removing the tenant.
An example whose name says it changes nothing must report no change.

A failing example is a documentation bug: fix the example in the module, not this test.

Examples whose name ends with "(asks Kamailio)" read from or send through the running Kamailio
(registration status, device_action); there is none here, so they are left out of these plays.
tests/sip/test_phones.py runs the same module calls against a real Kamailio.
"""

import ast
import os
import re
import shutil

import pytest
import yaml

from conftest import REPO, readme_tour, run_playbook

from ansible_collections.voxplane.pbx.plugins.module_utils.store import DEFAULT_LOCATION

MODULES_DIR = os.path.join(REPO, 'plugins', 'modules')
MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith('.py') and not name.startswith('_'))
# The modules whose examples also run on top of the README's tour: all but the tenant's (they remove it).
AFTER_TOUR_EXCEPT = ('tenant',)
VAULT_VARIABLE = re.compile(r'\{\{\s*(vault_\w+)\s*\}\}')
ASKS_KAMAILIO = '(asks Kamailio)'


def runnable(module):
    """Whether any example of the module runs without Kamailio."""
    return any(not t.get('name', '').endswith(ASKS_KAMAILIO) for t in yaml.safe_load(module_examples(module)))


def module_examples(module):
    """The EXAMPLES string of plugins/modules/<module>.py, read without importing the module."""
    with open(os.path.join(MODULES_DIR, module + '.py')) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'EXAMPLES' for t in node.targets):
            return node.value.value
    raise AssertionError('plugins/modules/%s.py has no EXAMPLES' % module)


def secret_values(text):
    """A test value for every vault variable the examples use: 4 digits for a PIN (a PIN of its own for
    each variable: a conference room's PIN and moderator PIN must differ)."""
    names = sorted(set(VAULT_VARIABLE.findall(text)))
    return dict((name, '47%02d' % (11 + i) if 'pin' in name else 'Test-%s-9fK2' % name.replace('_', '-'))
                for i, name in enumerate(names))


def example_tasks(module, directory):
    """The module's examples as tasks; one that names the default directory gets ``directory``."""
    tasks = yaml.safe_load(module_examples(module))
    assert isinstance(tasks, list) and tasks, 'EXAMPLES of %s is not a list of tasks' % module
    tasks = [t for t in tasks if not t.get('name', '').endswith(ASKS_KAMAILIO)]
    for task in tasks:
        for value in task.values():
            if isinstance(value, dict) and value.get('directory') == DEFAULT_LOCATION:
                value['directory'] = directory
    return tasks


def split_output(stdout, separator):
    """Name -> what ansible-playbook printed under its ``PLAY [name]`` or ``TASK [name]`` line."""
    outputs = {}
    for block in re.split(r'\n(?=%s \[)' % separator, stdout)[1:]:
        outputs[re.match(r'%s \[(.*?)\] \*' % separator, block).group(1)] = block
    return outputs


class ExamplesRun(object):
    """One ansible-playbook run: a play per module, each on a host of its own (all local), so
    that a failing example stops only its module's play."""

    def __init__(self, root, start=None, modules=None):
        """``start``: a directory file every play starts from (None: an empty directory)."""
        self.modules = modules or RUNNABLE
        self.tasks, plays, secrets = {}, [], {}
        for module in self.modules:
            directory = os.path.join(root, module + '.db')
            if start is not None:
                shutil.copyfile(start, directory)
            self.tasks[module] = example_tasks(module, directory)
            secrets.update(secret_values(module_examples(module)))
            plays.append({'name': 'EXAMPLES of voxplane.pbx.%s' % module, 'hosts': host(module),
                          'gather_facts': False, 'tasks': self.tasks[module],
                          'module_defaults': {'group/voxplane.pbx.directory': {'directory': directory}}})
        playbook = os.path.join(root, 'examples.yml')
        with open(playbook, 'w') as handle:
            yaml.safe_dump(plays, handle, sort_keys=False)
        self.run = run_playbook(playbook, secrets, inventory=','.join(host(m) for m in self.modules) + ',')
        self.plays = split_output(self.run.stdout, 'PLAY')

    def recap(self, module):
        """ok/changed/failed counts of the module's host, None when it has no recap line."""
        match = re.search(r'^%s\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)' % host(module),
                          self.run.stdout, re.M)
        return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, match.groups()))) if match else None


def host(module):
    return 'examples_' + module


RUNNABLE = [m for m in MODULES if runnable(m)]


@pytest.fixture(scope='module')
def examples(tmp_path_factory):
    return ExamplesRun(str(tmp_path_factory.mktemp('examples')))


@pytest.fixture(scope='module')
def examples_after_tour(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('after-tour'))
    tour = readme_tour(os.path.join(root, 'tour.db'))
    assert tour.rc == 0 and tour.failed == 0, tour
    return ExamplesRun(root, start=os.path.join(root, 'tour.db'), modules=AFTER_TOUR)


AFTER_TOUR = [m for m in RUNNABLE if m not in AFTER_TOUR_EXCEPT]


@pytest.mark.parametrize('module', RUNNABLE)
def test_examples_run_from_an_empty_directory(module, examples):
    check_examples(module, examples)


@pytest.mark.parametrize('module', AFTER_TOUR)
def test_examples_run_on_top_of_the_readme_tour(module, examples_after_tour):
    check_examples(module, examples_after_tour)


def check_examples(module, examples):
    recap = examples.recap(module)
    play = examples.plays.get('EXAMPLES of voxplane.pbx.%s' % module, '')
    assert recap and recap['failed'] == 0 and recap['unreachable'] == 0, (
        'an example of %s failed:\n%s\n%s' % (module, play[-6000:], examples.run.stderr[-3000:]))
    outputs = split_output(play, 'TASK')
    for task in examples.tasks[module]:
        assert task['name'] in outputs, 'example %r of %s did not run:\n%s' % (task['name'], module, play)
        if 'changes nothing' in task['name']:
            assert 'changed: [%s]' % host(module) not in outputs[task['name']], (
                'example %r of %s says it changes nothing but changed:\n%s' % (task['name'], module, outputs[task['name']]))


def test_every_example_uses_fully_qualified_module_names():
    """What the examples call is this collection's modules (or ansible.builtin), by FQCN."""
    for module in MODULES:
        for task in yaml.safe_load(module_examples(module)):
            actions = [k for k in task if k not in ('name', 'register', 'loop', 'when', 'vars', 'check_mode',
                                                    'diff', 'delegate_to', 'no_log', 'tags', 'loop_control')]
            assert len(actions) == 1 and re.match(r'^(voxplane\.pbx|ansible\.builtin)\.\w+$', actions[0]), (
                '%s: example %r: %s' % (module, task.get('name'), actions))
