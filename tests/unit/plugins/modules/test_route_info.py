# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane.pbx.route_info run in-process as Ansible runs it, over a real SQLite directory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

import pytest

import module_helpers
from ansible_collections.voxplane.pbx.plugins.modules import route_info

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'kemi'))

import kemi_directory  # noqa: E402


@pytest.fixture
def directory(pbx, monkeypatch):
    monkeypatch.setitem(module_helpers.MODULES, 'route_info', route_info)
    kemi_directory.build(pbx.path)
    return pbx


def test_the_flow_comes_back_as_data_and_nothing_is_written(directory):
    before = directory.snapshot()
    result = directory.ok('route_info', tenant='acme', caller={'extension': '12'}, dialled='50',
                          answer=['anna.desk'])
    assert result['changed'] is False and result['generation'] == directory.generation()
    assert [(s['action'], s['target'], s['outcome']) for s in result['steps']] == \
        [('ring', '50', 'no_answer'), ('ring', '13', 'answered')]
    assert result['final'] == {'code': 200, 'reason': 'OK', 'by': 'anna.desk'}
    assert result['summary'][-1] == 'final: 200 OK'
    # A feature code is tried on a scratch copy, never on the directory.
    result = directory.ok('route_info', tenant='acme', caller={'account': 'paul.desk'}, dialled='*78')
    assert result['final']['code'] == 603 and result['final']['reason'] == 'Do Not Disturb On'
    assert directory.snapshot() == before


def test_circumstances_given_in_yaml_shapes(directory):
    # dnd keys as YAML writes them (numbers), an ISO time, the trunk as caller.
    result = directory.ok('route_info', tenant='acme', caller={'trunk': True, 'calling_number': '+4940999'},
                          dialled=kemi_directory.SINGLE, dnd={10: True}, at='2026-03-01T09:30', registered=[])
    assert result['final'] == {'code': 486, 'reason': 'Do Not Disturb', 'by': None}


@pytest.mark.parametrize('args, message', [
    (dict(caller={'account': 'ghost.desk'}), 'call (tenant acme): caller.account: SIP account ghost.desk does not exist'),
    (dict(caller={'account': 'paul.desk', 'trunk': True}), 'call (tenant acme): caller: name exactly one of'),
    (dict(caller={}), 'call (tenant acme): caller: name exactly one of'),
    (dict(caller={'account': 'paul.desk'}, at='soon'), "call (tenant acme): at: 'soon' is no ISO 8601"),
    (dict(caller={'account': 'paul.desk'}, tenant='nope'), 'call (tenant nope): tenant: tenant nope does not exist'),
])
def test_a_bad_call_description_fails_naming_the_field(directory, args, message):
    args = dict(dict(tenant='acme', dialled='10'), **args)
    result = directory.run('route_info', **args)
    assert result.failed and result['msg'].startswith(message), result['msg']


def test_a_missing_directory_is_an_error_and_stays_missing(pbx, monkeypatch):
    monkeypatch.setitem(module_helpers.MODULES, 'route_info', route_info)
    result = pbx.run('route_info', tenant='acme', caller={'extension': '10'}, dialled='11')
    assert result.failed and pbx.path in result['msg'] and 'does not exist' in result['msg']
    assert not pbx.exists()
