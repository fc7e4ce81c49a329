# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router's part of the call detail records (kemi/voxplane_cdr.py) through the KSR double:
one dialog variable per call, worked out once per routing decision; restamped by a forward."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import cdr
from conftest import loaded_script, settings_for
from kemi_directory import ECOTEL, OUTSIDE, SINGLE
from ksr_double.ksr_double import KSRDouble
from test_kemi_adapter import failure, from_account, inbound, registered


@pytest.fixture(scope='module')
def recording(tmp_path_factory, directory):
    double = KSRDouble()
    settings = dict(settings_for(directory.path), cdr={'enabled': True})
    with loaded_script(tmp_path_factory.mktemp('kemi-cdr'), settings, double) as module:
        yield module, double


@pytest.fixture
def worker(recording):
    module, double = recording
    double.reset()
    double.pv.clear()
    double.returns.clear()
    router = module.mod_init()
    router.guard.forget()
    return router, double


def stamps(double):
    return [args[1] for name, args in [(c.name, c.args) for c in double.calls] if name == 'pv.sets' and args[0] == cdr.STAMP_VAR]


def test_an_inbound_call_sets_one_variable_with_tenant_direction_caller_and_call_id(worker):
    router, double = worker
    inbound(double, SINGLE, ECOTEL[0])
    double.pv['$ci'] = 'abc@carrier'
    registered(double, 'max.muster')
    router.ksr_request_route(None)
    values = stamps(double)
    assert len(values) == 1, double.call_names()
    fields = cdr.parse_stamp(values[0])
    assert fields['tenant'] == 'acme' and fields['direction'] == 'inbound', fields
    assert fields['caller'] == '+4989555000' and fields['call_key'] == 'abc@carrier', fields
    assert fields['callee'] == SINGLE and fields['reached'] == 'extension:10', fields


def test_the_static_part_is_worked_out_once_per_decision(worker, monkeypatch):
    router, double = worker
    made = []
    real = cdr.leg_stamp
    monkeypatch.setattr(router.records.__class__, '_stamp',
                        lambda self, snap, leg, _real=router.records.__class__._stamp: made.append(leg) or _real(self, snap, leg))
    for call_id in ('1@x', '2@x', '3@x'):
        double.reset()
        inbound(double, SINGLE, ECOTEL[0])
        double.pv['$ci'] = call_id
        registered(double, 'max.muster')
        router.ksr_request_route(None)
        assert cdr.parse_stamp(stamps(double)[0])['call_key'] == call_id
    assert len(made) <= 1 and real is cdr.leg_stamp


def test_an_outbound_call_names_the_account_the_number_and_its_class(worker):
    router, double = worker
    from_account(double, 'max.muster', OUTSIDE)
    double.pv['$ci'] = 'out@phone'
    router.ksr_request_route(None)
    fields = cdr.parse_stamp(stamps(double)[0])
    assert fields['direction'] == 'outbound' and fields['caller_account'] == 'max.muster', fields
    assert fields['caller_extension'] == '10' and fields['reached'] == 'outside:%s' % OUTSIDE, fields
    assert fields['call_class'] == 'national' and fields['trunk'], fields


def test_a_forward_in_the_failure_route_restamps_reached_and_diversion_and_keeps_the_rest(worker):
    router, double = worker
    inbound(double, SINGLE, ECOTEL[0])
    double.pv['$ci'] = 'fw@carrier'
    registered(double, 'max.muster')
    router.ksr_request_route(None)
    first = stamps(double)[0]
    double.reset()
    double.pv[cdr.STAMP_VAR] = first
    failure(double, 'acme|10|0|0|acme/10|', code=486)
    registered(double, 'paul.desk')
    router.ksr_failure_route_call(None)
    values = stamps(double)
    assert len(values) == 1, double.call_names()
    before, after = cdr.parse_stamp(first), cdr.parse_stamp(values[0])
    assert after['reached'] == 'extension:12' and before['reached'] == 'extension:10' and after['diversion'].startswith('10:user-busy'), after
    assert (after['start'], after['caller'], after['call_key'], after['direction']) == \
        (before['start'], before['caller'], before['call_key'], before['direction'])


def test_without_call_records_the_router_sets_nothing(router, ksr):
    inbound(ksr, SINGLE, ECOTEL[0])
    registered(ksr, 'max.muster')
    router.ksr_request_route(None)
    assert stamps(ksr) == [] and ('$ci',) not in ksr.called('pv.get')
