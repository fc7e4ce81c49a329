# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Menus, queues, conference rooms and schedules in whole-tenant documents (issue 22): tenant_config applies
them with every rule, tenant_info exports them (a room's PIN hashes only with secrets) and feeding the export
back changes nothing, the offline lint (state validated) judges them, and the queue members' CSV layout."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from module_helpers import Pbx
from ansible_collections.voxplane.pbx.plugins.module_utils import rules

PIN, MODERATOR = '4711', '9876'


def document():
    """The seeds' "Zentrale: 1 Vertrieb, 2 Support, 0 Empfang", behind business hours, with a team room."""
    return {
        'tenant': {'name': 'acme', 'sip_domain': 'acme.voxplane.example',
                   'licences': {'seats': {'smart': 5}, 'addons': {'ivr': 1, 'conference': 1}}},
        'numbers': [{'number': '+49301234500', 'target': 'schedule:office'}, {'number': '+49301234650', 'target': '650'}],
        'extensions': [{'internal_number': '10', 'name': 'Empfang', 'voicemail': {'enabled': True}},
                       {'internal_number': '11', 'name': 'Anna'}, {'internal_number': '12', 'name': 'Ben'}],
        'groups': [{'internal_number': '20', 'name': 'Vertrieb', 'members': ['11', '12']}],
        'queues': [{'internal_number': '600', 'name': 'Support', 'members': [{'extension': '11'}, {'extension': '12'}],
                    'max_wait': 120, 'overflow': 'voicemail:10'}],
        'conferences': [{'internal_number': '650', 'name': 'Team', 'pin': PIN, 'moderator_pin': MODERATOR,
                         'wait_for_moderator': True}],
        'ivrs': [{'internal_number': '700', 'name': 'Zentrale', 'keys': {1: '20', '2': '600', '0': '10'},
                  'invalid': '10'}],
        'schedules': [{'name': 'office', 'hours': [{'days': ['mon', 'tue', 'wed', 'thu', 'fri'], 'from': '08:00',
                                                    'to': '17:00'}], 'open': '700', 'closed': 'voicemail:10'}],
    }


@pytest.fixture
def acme(tmp_path):
    pbx = Pbx(tmp_path / 'directory.db')
    result = pbx.ok('tenant_config', config=document())
    assert result['counts']['ivrs'] == {'added': 1, 'changed': 0, 'removed': 0}
    assert result['counts']['schedules']['added'] == result['counts']['queues']['added'] == 1
    return pbx


def test_a_document_with_menus_applies_once_and_its_secrets_never_show(acme):
    again = acme.run('tenant_config', config=document())
    assert not again['changed'] and PIN not in again.raw and MODERATOR not in again.raw
    room = json.loads(acme.query('SELECT doc FROM conference_rooms')[0][0])
    assert room['pin_hash'] == rules.conference_pin_hash('acme', '650', PIN)


def test_the_export_fed_back_changes_nothing_and_keeps_the_pins(acme):
    exported = acme.ok('tenant_info', tenant='acme')
    assert [m['internal_number'] for m in exported['ivrs']] == ['700'] and exported['ivrs'][0]['keys'] == \
        {'1': '20', '2': '600', '0': '10'}
    assert exported['queues'][0]['members'][0] == {'extension': '11', 'penalty': 0, 'logged_in': True}
    assert 'pin_hash' not in exported['conferences'][0] and exported['schedules'][0]['name'] == 'office'
    before = acme.snapshot()
    assert not acme.ok('tenant_config', config=exported, state='overridden')['changed']
    assert not acme.ok('tenant_config', config=exported, state='replaced')['changed']
    assert acme.snapshot() == before                    # the PINs stayed


def test_a_backup_with_secrets_restores_the_pins_into_an_empty_directory(acme, tmp_path):
    path = str(tmp_path / 'backup.json')
    acme.ok('tenant_info', tenant='acme', secrets=True, format='json', dest=path)
    with open(path) as handle:
        backup = json.load(handle)
    assert backup['conferences'][0]['pin_hash'] == rules.conference_pin_hash('acme', '650', PIN)
    restored = Pbx(tmp_path / 'restored.db')
    restored.ok('tenant_config', src=path)
    assert restored.query('SELECT doc FROM conference_rooms') == acme.query('SELECT doc FROM conference_rooms')
    assert not restored.ok('tenant_config', src=path)['changed']


def test_a_document_whose_menu_leads_nowhere_is_refused_with_the_path_of_the_field(tmp_path):
    pbx = Pbx(tmp_path / 'directory.db')
    broken = document()
    broken['ivrs'][0]['keys']['3'] = '99'
    broken['queues'][0]['members'].append({'extension': '13'})
    result = pbx.run('tenant_config', config=broken)
    assert result.failed
    assert not pbx.exists() or pbx.query('SELECT COUNT(*) FROM tenants') == [(0,)]  # nothing written
    found = set((v['object'], v['field'], v['rule']) for v in result['violations'])
    assert ('ivr 700 (tenant acme)', 'keys.3', 'reference') in found
    assert ('queue 600 (tenant acme)', 'members[2].extension', 'reference') in found


def test_the_lint_judges_menus_without_a_directory(tmp_path):
    pbx = Pbx(tmp_path / 'never.db')
    passed = pbx.ok('tenant_config', config=document(), state='validated')
    assert 'ivrs: 1' in passed['msg'] and not pbx.exists()
    broken = document()
    broken['schedules'][0]['closed'] = 'announcement:closed'
    broken['tenant']['licences']['addons']['ivr'] = 0
    result = pbx.run('tenant_config', config=broken, state='validated')
    found = set((v['object'], v['field'], v['rule']) for v in result['violations'])
    assert found == {('schedule office (tenant acme)', 'closed', 'reference'),
                     ('ivr 700 (tenant acme)', 'internal_number', 'ivr_licence')}, result['violations']
    assert not pbx.exists()


def test_an_unknown_field_of_a_menu_is_refused_naming_it(tmp_path):
    broken = document()
    broken['ivrs'][0]['colour'] = 'blue'
    result = Pbx(tmp_path / 'directory.db').run('tenant_config', config=broken, state='validated')
    assert [(v['object'], v['field'], v['rule']) for v in result['violations']] == [
        ('ivr 700 (tenant acme)', 'colour', 'unsupported')]


# The queue members' CSV layout ------------------------------------------------------------------------------------

def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding='utf-8')
    return str(path)


def test_queue_members_from_a_csv_file_keep_a_members_login_when_the_column_is_missing(acme, tmp_path):
    acme.ok('queue', tenant='acme', internal_number='600', members=[{'extension': '11'},
                                                                    {'extension': '12', 'logged_in': False}])
    path = write(tmp_path, 'queue_members.csv', 'queue;extension;penalty\n600;12;0\n600;10;5\n600;11;1\n')
    result = acme.ok('tenant_config', tenant='acme', src=path)
    assert result['changed'] and result['counts']['queues']['changed'] == 1
    members = acme.ok('queue_info', tenant='acme', internal_number='600')['queues'][0]['members']
    assert members == [{'extension': '12', 'penalty': 0, 'logged_in': False},
                       {'extension': '10', 'penalty': 5, 'logged_in': True},
                       {'extension': '11', 'penalty': 1, 'logged_in': True}]
    # exported, the file applies again without a change
    folder = str(tmp_path / 'export')
    acme.ok('tenant_info', tenant='acme', format='csv', dest=folder)
    with open(os.path.join(folder, 'queue_members.csv'), encoding='utf-8') as handle:
        assert handle.read().splitlines() == ['queue;extension;penalty;logged_in', '600;12;0;false', '600;10;5;true',
                                              '600;11;1;true']
    assert not acme.ok('tenant_config', tenant='acme', src=os.path.join(folder, 'queue_members.csv'))['changed']


def test_a_queue_members_file_is_refused_by_row_and_column(acme, tmp_path):
    path = write(tmp_path, 'members.csv', 'queue,extension,logged_in\n600,11,ja\n600,99,vielleicht\n')
    result = acme.run('tenant_config', tenant='acme', src=path)
    found = set((v['object'], v['field'], v['rule']) for v in result['violations'])
    assert ('members.csv row 3 (queue 600)', 'logged_in', 'type') in found
    result = acme.run('tenant_config', tenant='acme', src=write(tmp_path, 'm2.csv', 'queue,extension\n600,11\n600,99\n'))
    assert [(v['object'], v['field'], v['rule']) for v in result['violations']] == [
        ('m2.csv row 3 (queue 600 (tenant acme))', 'extension', 'reference')]


def test_an_export_without_secrets_passes_the_lint_its_rooms_moderator_pin_taken_as_there(acme, tmp_path):
    path = str(tmp_path / 'acme.json')
    acme.ok('tenant_info', tenant='acme', format='json', dest=path)   # no pin hashes: the room waits for a moderator
    assert acme.ok('tenant_config', src=path, state='validated')['changed'] is False
    # into an empty directory it is refused: the moderator PIN is not in the document
    empty = Pbx(tmp_path / 'empty.db').run('tenant_config', src=path)
    assert [(v['field'], v['rule']) for v in empty['violations']] == [('wait_for_moderator', 'moderator_pin_required')]
