"""Fixtures for the integration tests: real ansible-playbook runs against localhost."""

import hashlib
import os
import sqlite3
import textwrap

import pytest
import yaml

from lab import REPO
from lab.playbook import run_playbook as lab_run_playbook

PLAYBOOKS = os.path.join(REPO, 'tests', 'integration', 'playbooks')


def run_playbook(playbook, extra_vars=None, check=False, diff=False, env=None, inventory='localhost,'):
    """ansible-playbook against localhost (or the hosts of ``inventory``, all reached with a
    local connection), the collection from this checkout; a playbook name without a folder is
    one of tests/integration/playbooks."""
    path = playbook if os.path.isabs(playbook) else os.path.join(PLAYBOOKS, playbook)
    return lab_run_playbook(path, extra_vars, check=check, diff=diff, env=env, inventory=inventory)


# A play of the given tasks against the directory the extra var ``directory`` names.
PLAY = """\
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/voxplane.pbx.directory:
      directory: "{{ directory }}"
  tasks:
%s
"""


def write_play(tmp_path, name, tasks):
    """Write ``tasks`` (YAML text, any indentation) as the play <tmp_path>/<name>.yml; its path."""
    path = tmp_path / ('%s.yml' % name)
    path.write_text(PLAY % textwrap.indent(textwrap.dedent(tasks).strip('\n'), '    '))
    return str(path)


def readme_block(heading, index=0):
    """The ``index``-th YAML code block under the README's ``heading`` (a line starting with #), as text."""
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as handle:
        text = handle.read()
    start = next(i for i, line in enumerate(text.splitlines()) if line.lstrip('#').strip() == heading and line.startswith('#'))
    section = '\n'.join(text.splitlines()[start + 1:])
    section = section.split('\n## ', 1)[0]
    blocks = section.split('```yaml\n')[1:]
    return blocks[index].split('```', 1)[0]


def readme_tour(directory, tour_vars=None):
    """Run the README's tour as written, with its directory replaced by ``directory``; the run."""
    plays = yaml.safe_load(readme_block('A short tour'))
    plays[0]['module_defaults']['group/voxplane.pbx.directory']['directory'] = directory
    path = os.path.join(os.path.dirname(directory), 'tour.yml')
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(plays, handle, sort_keys=False, allow_unicode=True)
    return run_playbook(path, dict({'vault_anna_desk': 'Tour-secret-anna-1'}, **(tour_vars or {})))


def db_fingerprint(path):
    """Content of every table plus the generation: equal iff nothing was written."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        digest = hashlib.sha256()
        for table in tables:
            for row in conn.execute('SELECT * FROM %s ORDER BY 1' % table):
                digest.update(repr(row).encode())
        generation = conn.execute('SELECT generation FROM voxplane_generation').fetchone()[0]
        return digest.hexdigest(), generation
    finally:
        conn.close()


@pytest.fixture
def directory(tmp_path):
    return str(tmp_path / 'directory.db')


@pytest.fixture(scope='module')
def acme_directory(tmp_path_factory):
    """A directory holding the acme acceptance tenant, applied once per module."""
    path = str(tmp_path_factory.mktemp('acme') / 'directory.db')
    run = run_playbook('acme_tenant.yml', {'directory': path})
    assert run.rc == 0 and run.failed == 0, run
    return path, run
