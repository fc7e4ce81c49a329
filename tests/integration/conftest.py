"""Fixtures for the integration tests: real ansible-playbook runs against localhost."""

import hashlib
import os
import shutil
import sqlite3
import textwrap

import pytest
import yaml

from lab import REPO
from lab.playbook import run_playbook as lab_run_playbook
# The session's PostgreSQL server, for the suites on both backends.
from lab.postgresql import postgresql_server  # noqa: F401  pylint: disable=unused-import

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


def sql(location, statement):
    """The rows of ``statement`` (no parameters) in the directory at ``location``: a SQLite file or a
    postgresql:// location (a schema of the lab's server)."""
    if location.startswith('postgresql://'):
        import psycopg  # requirements/test.txt; only the PostgreSQL runs need it
        with psycopg.connect(location) as conn:
            return [tuple(row) for row in conn.execute(statement)]
    conn = sqlite3.connect(location)
    try:
        return [tuple(row) for row in conn.execute(statement)]
    finally:
        conn.close()


def db_fingerprint(location):
    """Content of every table plus the generation: equal iff nothing was written."""
    if location.startswith('postgresql://'):
        tables = sql(location, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                               "ORDER BY 1")
    else:
        tables = sql(location, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    digest = hashlib.sha256()
    for (table,) in tables:
        for row in sql(location, 'SELECT * FROM %s ORDER BY 1' % table):
            digest.update(repr(row).encode())
    return digest.hexdigest(), sql(location, 'SELECT generation FROM voxplane_generation')[0][0]


# The directory suites run once on each backend (docs/cluster.md): the fixtures below give the
# module's tests a directory on the backend of the module's run.
BACKENDS = ('sqlite', 'postgresql')


@pytest.fixture(scope='module', params=BACKENDS)
def backend(request):
    return request.param


def new_location(request, backend, folder):
    """An empty directory on ``backend``: a SQLite file below ``folder`` that does not exist yet,
    or a new schema of the lab's PostgreSQL server (dropped when ``request``'s scope ends)."""
    if backend == 'sqlite':
        return str(folder / 'directory.db')
    server = request.getfixturevalue('postgresql_server')
    location = server.create_schema()
    request.addfinalizer(lambda: server.drop_schema(location))
    return location


def acme_on(location):
    """Apply the acme acceptance tenant to ``location``; the run."""
    run = run_playbook('acme_tenant.yml', {'directory': location})
    assert run.rc == 0 and run.failed == 0, run
    return run


@pytest.fixture
def directory(tmp_path):
    return str(tmp_path / 'directory.db')


@pytest.fixture(scope='module')
def acme_directory(request, backend, tmp_path_factory):
    """A directory holding the acme acceptance tenant, applied once per module and backend."""
    path = new_location(request, backend, tmp_path_factory.mktemp('acme'))
    return path, acme_on(path)


@pytest.fixture
def acme_copy(request, backend, acme_directory, tmp_path):
    """A directory of its own holding the acme tenant, for a test that changes it: a copy of the
    module's SQLite file, or the tenant applied to a new PostgreSQL schema."""
    if backend == 'sqlite':
        path = str(tmp_path / 'directory.db')
        shutil.copy(acme_directory[0], path)
        return path
    path = new_location(request, backend, tmp_path)
    acme_on(path)
    return path


@pytest.fixture
def empty_directory(request, backend, tmp_path):
    """An empty directory on the backend of the module's run."""
    return new_location(request, backend, tmp_path / 'new')
