# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router's DirectoryView on a PostgreSQL directory: reloads when the generation moves, and
a database server that goes away and comes back (a server of its own, stopped in the test)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

import kemi_directory
from kemi_directory import DOMAIN
from lab.postgresql import missing_prerequisites, postgresql_lab
from test_kemi_adapter import QOP_AUTH, errors, from_account, register, register_gamma, replies

GAMMA_DOMAIN = kemi_directory.GAMMA_DOMAIN


@pytest.fixture(scope='module')
def server():
    """A server of this module's own: the tests stop it."""
    if missing_prerequisites():
        pytest.skip(missing_prerequisites())
    with postgresql_lab(prefix='voxplane-pg-kemi-') as instance:
        yield instance


@pytest.fixture
def harness(server):
    location = server.create_schema()
    yield kemi_directory.build(location)
    if not server.running():
        server.start()
    server.drop_schema(location)


def infos(double):
    return [m for level, m in double.logs if level == 'info']


def test_a_change_is_routed_after_the_interval(fresh, harness):
    module, double, clock = fresh(harness.path)
    router = module.mod_init()
    register_gamma(double, router)
    assert double.called('sl.sl_send_reply') == [(403, 'Unknown domain')] and module.VIEW.generation == 2
    harness.apply('gamma', *kemi_directory.gamma())
    clock.now += 0.501
    register_gamma(double, router)
    assert double.called('auth.auth_challenge') == [(GAMMA_DOMAIN, QOP_AUTH)] and module.VIEW.generation == 3
    assert infos(double)[0].startswith('voxplane: directory generation 3 loaded (3 tenants, ')


def test_a_stopped_database_server_routes_on_from_the_snapshot_and_recovers(fresh, harness, server):
    module, double, clock = fresh(harness.path)
    router = module.mod_init()
    register(double, 'max.muster', auth=False)
    router.ksr_request_route(None)
    assert double.called('auth.auth_challenge') == [(DOMAIN, QOP_AUTH)]

    server.stop()
    logged = []
    for _second in range(10):                          # ten seconds of requests, two checks a second
        for _half in range(2):
            clock.now += 0.5
            double.reset()
            register(double, 'max.muster', auth=False)
            router.ksr_request_route(None)
            assert double.called('auth.auth_challenge') == [(DOMAIN, QOP_AUTH)]
            assert double.called('sl.sl_send_reply') == []
            logged += errors(double)
    assert len(logged) == 1 and 'voxplane: directory reload failed at ' in logged[0]   # once, not per check
    assert server.password not in logged[0]
    # a feature code needs a write: 503, without a traceback
    double.reset()
    from_account(double, 'max.muster', '*78')
    router.ksr_request_route(None)
    (code, reason), = replies(double)
    assert code == 503 and reason.startswith('Directory unavailable: cannot reach the database server')

    server.start()
    harness.apply('gamma', *kemi_directory.gamma())
    clock.now += 0.5
    double.reset()
    register_gamma(double, router)
    assert double.called('auth.auth_challenge') == [(GAMMA_DOMAIN, QOP_AUTH)] and module.VIEW.generation == 3
    assert any(m.startswith('voxplane: directory readable again after ') for m in infos(double))
    assert errors(double) == []
