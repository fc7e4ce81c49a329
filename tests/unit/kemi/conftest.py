# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the KEMI adapter tests: a real SQLite directory, the script loaded against the
KSR double, and a router whose pv values and KSR returns each test scripts.

kemi/voxplane_kemi.py drops every cached ``ansible_collections.*`` module when it is loaded
(app_python.reload semantics). The loader (lab.kemi) restores the interpreter's modules afterwards,
so that nothing of that leaks into other test modules; inside the tests, code of the
collection is reached through the loaded script (``kemi.routing``, ``kemi.snapshot``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import sqlite3
import time
import types

import pytest

# The KSR double and kemi_directory (with directory_helpers: the real store and reconcile) are
# sibling test folders on pytest.ini's pythonpath; REPO and KEMI_SCRIPT are for the tests.
import kemi_directory
from ksr_double.ksr_double import KSRDouble
from lab import REPO  # noqa: F401  pylint: disable=unused-import
from lab.kemi import KEMI_SCRIPT, loaded_script as lab_loaded_script  # noqa: F401  pylint: disable=unused-import


@contextlib.contextmanager
def loaded_script(folder, settings, double):
    """kemi/voxplane_kemi.py loaded into ``folder`` with ``settings`` and the KSR ``double``
    (lab.kemi.loaded_script); sys.modules and the import path are restored afterwards."""
    with lab_loaded_script(folder, settings, double.module) as module:
        yield module


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
