# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane.pbx.route_info run in-process as Ansible runs it, over a real SQLite directory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sqlite3

import pytest
import yaml

import module_helpers
from ansible_collections.voxplane.pbx.plugins.module_utils.schema import LATEST_VERSION
from ansible_collections.voxplane.pbx.plugins.modules import route_info

import kemi_directory  # tests/unit/kemi (pytest.ini pythonpath)


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


def test_the_summary_says_it_in_words(directory):
    result = directory.ok('route_info', tenant='acme', caller={'account': 'paul.desk'}, dialled='*78')
    assert result['summary'][0] == '0s: feature code for extension 12: Do Not Disturb on'
    result = directory.ok('route_info', tenant='acme', caller={'account': 'paul.desk'}, dialled='*9210')
    assert result['summary'][0] == '0s: feature code for extension 12: no-answer forward to 10'
    result = directory.ok('route_info', tenant='acme', caller={'account': 'paul.desk'}, dialled='*73')
    assert result['summary'][0] == '0s: feature code for extension 12: unconditional forward off'
    result = directory.ok('route_info', tenant='acme', caller={'account': 'paul.desk'}, dialled='10', registered=[])
    assert result['summary'][0].endswith(': nobody registered, nothing rings'), result['summary']
    assert ' for ' not in result['summary'][0] and 'nobody can ring' not in result['summary'][0]
    assert "{'" not in ' '.join(result['summary'])


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


def test_route_info_presents_a_tenants_number_only_once_the_tenant_holds_it(pbx, monkeypatch):
    monkeypatch.setitem(module_helpers.MODULES, 'route_info', route_info)
    pbx.ok('tenant', name='nordwind', sip_domain='nordwind.voxplane.example', main_number='+4940555010',
           locations=[{'name': 'hq', 'street': 'Speicherstadt 1', 'postal_code': '20457', 'city': 'Hamburg',
                       'emergency_caller_id': '+494055501099'}],
           trunks=[{'name': 'carrier', 'addresses': ['192.0.2.40']}], licences={'seats': {'smart': 2}})
    pbx.ok('extension', tenant='nordwind', internal_number='10', location='hq', outbound_caller_id='main',
           sip_accounts=[{'username': 'hanna.desk', 'password': 'Sommer-2024!'}])

    def presented(dialled):
        step = pbx.ok('route_info', tenant='nordwind', caller={'extension': '10'}, dialled=dialled)['steps'][0]
        return step['identity'], step['privacy']

    # not yet a number of nordwind: an outside call as without a main number, 112 with the trunk's default
    assert presented('030555123') == ('sip:anonymous@anonymous.invalid', True)
    assert presented('112') == ('sip:anonymous@anonymous.invalid', False)
    pbx.ok('number', tenant='nordwind', number='+4940555010', ddi_range='00-99')
    # (10 now has its DDI: 'main' still presents the main number; 112 the location's caller ID)
    assert presented('030555123') == ('<sip:+4940555010@nordwind.voxplane.example>', False)
    assert presented('112') == ('<sip:+494055501099@nordwind.voxplane.example>', False)


def test_a_directory_of_a_newer_schema_is_named_in_the_error(directory):
    conn = sqlite3.connect(directory.path)
    conn.execute("INSERT INTO voxplane_schema (version, description, applied_at) VALUES (99, 'future', 'x')")
    conn.commit()
    conn.close()
    result = directory.run('route_info', tenant='acme', caller={'extension': '12'}, dialled='10')
    assert result.failed and result['msg'] == (
        'directory %s: schema version 99 is newer than this collection understands (%d); upgrade the voxplane.pbx '
        'collection' % (directory.path, LATEST_VERSION))


def tenant_document(directory, name):
    """What tenant_info returns for ``name``, as a file would hold it."""
    info = directory.ok('tenant_info', tenant=name)
    return dict((key, info[key]) for key in ('tenant', 'numbers', 'extensions', 'devices', 'groups'))


@pytest.mark.parametrize('suffix', ['.json', '.yml'])
def test_a_tenant_document_not_applied_yet_is_simulated_without_writing(directory, tmp_path, suffix):
    document = tenant_document(directory, 'acme')
    # The edit under review: the reception group 50 now falls back to Paul (12), not to 13.
    for group in document['groups']:
        if group['internal_number'] == '50':
            group['fallback'] = '12'
    src = tmp_path / ('acme' + suffix)
    src.write_text(json.dumps(document) if suffix == '.json' else yaml.safe_dump(document, allow_unicode=True))
    before = directory.snapshot()
    args = dict(tenant='acme', caller={'extension': '41'}, dialled='50')
    applied = directory.ok('route_info', **args)
    proposed = directory.ok('route_info', src=str(src), **args)
    assert [s['target'] for s in applied['steps']] == ['50', '13']
    assert [s['target'] for s in proposed['steps']] == ['50', '12']
    assert directory.snapshot() == before
    # The other tenants stay as the directory holds them: beta's number is still reachable on-net.
    assert directory.ok('route_info', src=str(src), tenant='acme', caller={'extension': '12'},
                        dialled=kemi_directory.B_MAIN)['steps'][0]['tenant'] == 'beta'


def test_a_document_alone_needs_no_directory(directory, pbx, tmp_path):
    src = tmp_path / 'acme.json'
    src.write_text(json.dumps(tenant_document(directory, 'acme')))
    elsewhere = str(tmp_path / 'none' / 'directory.db')
    result = directory.ok('route_info', directory=elsewhere, src=str(src), tenant='acme', caller={'extension': '12'},
                          dialled='10', answer=['max.app'])
    assert result['final'] == {'code': 200, 'reason': 'OK', 'by': 'max.app'} and result['generation'] == 0
    assert not os.path.exists(os.path.dirname(elsewhere))


def test_a_bad_document_fails_with_every_violation_and_changes_nothing(directory, tmp_path):
    def violations(edit):
        document = tenant_document(directory, 'acme')
        edit(document)
        src = tmp_path / 'acme.json'
        src.write_text(json.dumps(document))
        result = directory.run('route_info', src=str(src), tenant='acme', caller={'extension': '12'}, dialled='10')
        assert result.failed, result
        return sorted((v['object'], v['field'], v['rule']) for v in result['violations'])

    before = directory.snapshot()

    def two_bad_fields(document):
        document['groups'][0]['strategy'] = 'random'
        document['extensions'][0]['ring_time'] = 'long'
    found = violations(two_bad_fields)
    assert [f[:2] for f in found] == [('extension 10 (tenant acme)', 'ring_time'), ('group 50 (tenant acme)', 'strategy')], found

    def no_such_fallback(document):
        document['groups'][0]['fallback'] = '999'
    assert violations(no_such_fallback) == [('group 50 (tenant acme)', 'fallback', 'reference')]
    assert directory.snapshot() == before
    missing = directory.run('route_info', src=str(tmp_path / 'nope.yml'), tenant='acme', caller={'extension': '12'},
                            dialled='10')
    assert missing.failed and missing['msg'].startswith('document %s: src: cannot read it'
                                                        % (tmp_path / 'nope.yml')), missing['msg']


def test_the_diagram_of_a_call_comes_with_the_steps(directory):
    result = directory.ok('route_info', tenant='acme', caller={'extension': '12'}, dialled='50', diagram='mermaid')
    assert set(result['diagram']) == {'graph', 'mermaid'}
    assert result['diagram']['mermaid'].startswith('---\ntitle: "acme: 50"\n---\nflowchart TD\n')
    labels = [node['label'] for node in result['diagram']['graph']['nodes']]
    assert labels[:2] == ['call to 50 from paul.desk', 'ring group 50 Zentrale (10, 11): max.muster, max.app, erika.desk, 30s']
    assert 'diagram' not in directory.ok('route_info', tenant='acme', caller={'extension': '12'}, dialled='50')


def test_tenant_info_draws_the_tenants_call_flows(directory):
    before = directory.snapshot()
    result = directory.ok('tenant_info', tenant='beta', call_flows='mermaid')
    flows = result['call_flows']['flows']
    assert [(f['kind'], f['key'], f['file']) for f in flows] == [
        ('number', '+4315550100', 'number-+4315550100.svg'), ('extension', '100', 'extension-100.svg')]
    assert 'svg' not in flows[0] and flows[0]['mermaid'].count('ring extension 100 Bert Beta') == 1
    assert result['call_flows']['markdown'].startswith('# Call flows of beta\n')
    assert 'call_flows' not in directory.ok('tenant_info', tenant='beta')
    assert directory.ok('tenant_info', tenant='nobody', call_flows='both')['call_flows'] == {'flows': []}
    assert directory.snapshot() == before
    bad = directory.run('tenant_info', tenant='beta', call_flows='png')
    assert bad['failed'] and 'call_flows' in bad['msg']


def test_the_keys_a_caller_presses_at_a_menu(pbx, monkeypatch):
    """digits: the menu step says which key led where, and the flow goes on there (issue 22)."""
    from test_routing_menus import HEAD, build   # the seeds' "Zentrale: 1 Vertrieb, 2 Support, 0 Empfang"
    monkeypatch.setitem(module_helpers.MODULES, 'route_info', route_info)
    build(pbx.path)
    call = dict(tenant='acme', caller={'trunk': True, 'calling_number': '+4989111222'}, dialled=HEAD,
                at='2026-03-02T10:00')
    result = pbx.ok('route_info', digits=['2'], **call)
    assert [s['action'] for s in result['steps']] == ['schedule', 'ivr', 'queue', 'voicemail']
    assert result['summary'][1:3] == ['0s: IVR menu 700 Zentrale: key 2 -> queue 600 Support',
                                      '0s: queue 600 Support (ring_all: 11, 12; max wait 120s): nobody answers, '
                                      'overflow after 120s to voicemail of 10']
    result = pbx.ok('route_info', **dict(call, at='2026-03-02T19:00'))
    assert result['summary'][0] == '0s: schedule hours (Europe/Berlin): closed -> announcement closed'
    result = pbx.run('route_info', digits=['two'], **call)
    assert result.failed and result['violations'][0]['field'] == 'digits[0]'
