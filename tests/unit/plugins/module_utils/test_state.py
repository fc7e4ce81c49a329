# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TenantState (state.py): the number plan and the other derived views."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from directory_helpers import BLOCK, INTERIM, SINGLE, account, block, extension
from ansible_collections.voxplane.pbx.plugins.module_utils.model import DEVICE, EXTENSION, GROUP, NUMBER, TENANT
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import Change
from ansible_collections.voxplane.pbx.plugins.module_utils.state import TenantState


def test_assign_all_external_numbers_gives_each_extension_its_ddi_in_every_block(acme):
    # ecotel: by default every subscriber gets all head numbers with its DDI
    acme.apply('acme', None, {NUMBER: {'+4940555': block('00-99'), '+4932211234': block('0-9'), SINGLE: {'target': '50'},
                                       INTERIM: {'interim': True}},
                              EXTENSION: {'11': extension(ddi='5', external_numbers=[INTERIM]),
                                          '12': extension(assign_all_external_numbers=False)},
                              GROUP: {'50': {'members': ['10', '11']}}})
    state = acme.load('acme')
    plan, conflicts = state.number_plan()
    assert conflicts == []
    numbers_of = state.numbers_of(plan)
    assert numbers_of['10'] == ['+4930123410', '+494055510']
    assert numbers_of['11'] == ['+49322112345', INTERIM]           # DDI 5 in the 0-9 block, plus its interim number
    assert numbers_of['50'] == [SINGLE]
    assert '12' not in numbers_of
    assert plan['+4930123499'] == {'number': BLOCK, 'target': None}   # a free DDI is owned, without target
    assert plan[BLOCK] == {'number': BLOCK, 'target': None}
    assert len(state.owned_numbers()) == (1 + 100) + (1 + 100) + (1 + 10) + 1 + 1


def test_number_plan_reports_every_conflict():
    def ext(key, **fields):
        return dict({'internal_number': key, 'assign_all_external_numbers': True, 'ddi': None,
                     'external_numbers': [], 'sip_accounts': []}, **fields)

    state = TenantState('acme', {'name': 'acme'}, {
        NUMBER: {BLOCK: {'ddi_range': '00-99', 'target': None}, SINGLE: {'ddi_range': None, 'target': '10'}},
        EXTENSION: {'10': ext('10'), '20': ext('20', ddi='10'), '30': ext('30', external_numbers=[SINGLE])},
    })
    plan, conflicts = state.number_plan()
    assert conflicts == [('+4930123410', ['10', '20']), (SINGLE, ['10', '30'])]
    assert plan['+4930123430']['target'] == '30' and plan['+4930123420']['target'] is None


def test_with_changes_leaves_the_original_alone(acme):
    state = acme.load('acme')
    ext10 = state.get(EXTENSION, '10')
    new = state.with_changes([Change(EXTENSION, '10', ext10, None), Change(EXTENSION, '11', None, {'internal_number': '11'}),
                              Change(TENANT, 'acme', state.tenant, dict(state.tenant, display_name='X'))])
    assert sorted(new.objects(EXTENSION)) == ['11'] and new.tenant['display_name'] == 'X'
    assert sorted(state.objects(EXTENSION)) == ['10'] and state.tenant['display_name'] == 'ACME GmbH'


def test_derived_views(acme):
    acme.apply('acme', None, {EXTENSION: {'10': {'sip_accounts': [{'username': 'max.muster'}, account('max.lager')]}},
                              GROUP: {'50': {'members': ['10']}},
                              DEVICE: {'00:15:65:ab:cd:ef': {'model': 'yealink-t46u', 'lines': ['max.muster', 'max.lager']}}})
    state = acme.load('acme')
    assert sorted(state.internal_targets()) == ['10', '50']
    assert state.internal_targets()['50'][0] == GROUP
    assert sorted(state.sip_accounts()) == ['max.lager', 'max.muster'] and state.sip_accounts()['max.lager'][0] == '10'
    assert state.device_lines() == {'max.muster': '00:15:65:ab:cd:ef', 'max.lager': '00:15:65:ab:cd:ef'}
    assert state.location_names() == {'hq'}
    assert not state.is_empty() and TenantState('nobody').is_empty()
    assert acme.load('nobody').tenant is None
