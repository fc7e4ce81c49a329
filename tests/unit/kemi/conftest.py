# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the KEMI adapter tests: a real SQLite directory, the script loaded against the
KSR double, and a router whose pv values and KSR returns each test scripts.

kemi/voxplane_kemi.py drops every cached ``ansible_collections.*`` module when it is loaded
(app_python.reload semantics). The loader below restores sys.modules and sys.path afterwards,
so that nothing of that leaks into other test modules; inside the tests, code of the
collection is reached through the loaded script (``kemi.routing``, ``kemi.snapshot``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import importlib.util
import itertools
import json
import os
import shutil
import sqlite3
import sys
import time
import types

import pytest

UNIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(UNIT))
KEMI_SCRIPT = os.path.join(REPO, 'kemi', 'voxplane_kemi.py')

# directory_helpers (real store + reconcile) and the KSR double live in sibling test folders.
for _path in (os.path.join(UNIT, 'plugins', 'module_utils'), UNIT, os.path.dirname(os.path.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from ksr_double.ksr_double import KSRDouble  # noqa: E402

import kemi_directory  # noqa: E402  (tests/unit/kemi/kemi_directory.py)

_counter = itertools.count()


@contextlib.contextmanager
def loaded_script(folder, settings, double):
    """Copy the script into ``folder`` with ``settings`` (None: no settings file) next to it,
    import it with ``double`` as KSR; yield the module; restore sys.modules/sys.path."""
    os.makedirs(str(folder), exist_ok=True)
    script = os.path.join(str(folder), 'voxplane_kemi.py')
    for name in os.listdir(os.path.dirname(KEMI_SCRIPT)):  # the script and its siblings, as the role deploys them
        if name.endswith('.py'):
            shutil.copyfile(os.path.join(os.path.dirname(KEMI_SCRIPT), name), os.path.join(str(folder), name))
    if settings is not None:
        with open(os.path.join(str(folder), 'voxplane_settings.json'), 'w') as handle:
            json.dump(settings, handle)
    saved_modules, saved_path = dict(sys.modules), list(sys.path)
    try:
        with double.installed():
            spec = importlib.util.spec_from_file_location('voxplane_kemi_under_test_%d' % next(_counter), script)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            yield module
    finally:
        sys.modules.clear()
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path


def settings_for(path, reload_check_ms=500):
    return {'directory_path': str(path), 'trusted_trunks': [kemi_directory.EXTRA_TRUSTED],
            'router': {'reload_check_ms': reload_check_ms}}


@pytest.fixture(scope='module')
def directory(tmp_path_factory):
    """The shared directory (read only for the tests that use it)."""
    return kemi_directory.build(tmp_path_factory.mktemp('kemi-dir') / 'directory.db')


@pytest.fixture(scope='module')
def double():
    return KSRDouble()


@pytest.fixture(scope='module')
def kemi(tmp_path_factory, directory, double):
    """The loaded script (module object), once per test module."""
    with loaded_script(tmp_path_factory.mktemp('kemi-script'), settings_for(directory.path), double) as module:
        yield module


# Every request Kamailio hands the script has a source address.
SOURCE = '203.0.113.50'


@pytest.fixture
def ksr(double):
    """The double, emptied: no calls, no logs, no scripted returns, no pv values but a source
    address ($si)."""
    double.reset()
    double.pv.clear()
    double.pv['$si'] = SOURCE
    double.returns.clear()
    yield double
    double.reset()
    double.pv.clear()
    double.returns.clear()


@pytest.fixture
def router(kemi, ksr):
    """kamailio() of the loaded script, its (module-wide) snapshot already loaded."""
    instance = kemi.mod_init()
    assert instance.view.current() is not None
    # Every test is a fresh worker for the ban and flood bookkeeping (the tests of a module
    # send far more requests from one address within seconds than any phone).
    instance.guard.forget()
    ksr.reset()
    return instance


# A worker of its own: fake clock, traced SQL ------------------------------------------------------

class Clock(object):
    def __init__(self, start=1000.0):
        self.now = start

    def monotonic(self):
        return self.now


@pytest.fixture
def traced_sql(monkeypatch):
    """Every SQL statement of every sqlite3 connection opened from now on."""
    statements = []
    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn
    monkeypatch.setattr(sqlite3, 'connect', connect)
    return statements


def _fresh(folder, db, monkeypatch, reload_check_ms=500):
    """Load the script on its own (own VIEW, own double) with a fake monotonic clock."""
    double = KSRDouble()
    double.pv['$si'] = SOURCE
    context = loaded_script(folder, settings_for(db, reload_check_ms), double)
    module = context.__enter__()
    clock = Clock()
    monkeypatch.setattr(module, 'time', types.SimpleNamespace(monotonic=clock.monotonic, time=time.time))
    return context, module, double, clock


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """load(db) -> (module, double, clock): a worker of its own; several per test are separate
    workers (each its own script copy, VIEW and double)."""
    opened = []

    def load(db, reload_check_ms=500):
        folder = tmp_path / ('kemi' if not opened else 'kemi-%d' % len(opened))
        loaded = _fresh(folder, db, monkeypatch, reload_check_ms)
        opened.append(loaded[0])
        return loaded[1:]
    yield load
    for context in reversed(opened):
        context.__exit__(None, None, None)
