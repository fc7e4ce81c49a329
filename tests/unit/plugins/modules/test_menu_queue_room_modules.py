# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane.pbx.ivr, queue, conference and schedule and their _info twins in-process (issue 22): create,
a second run that changes nothing, options left out kept, check mode and the diff (a room's PINs masked,
never their value), refusals naming object, field and rule with nothing written, removal refused while
something names the object, and the _info output fed back unchanged."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from module_helpers import NO_LOG_MARK
from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.modules import conference, ivr, queue, schedule

TENANT = dict(name='acme', sip_domain='acme.voxplane.example',
              licences=dict(seats=dict(smart=5), addons=dict(ivr=1, conference=1)))


@pytest.fixture
def acme(pbx):
    pbx.ok('tenant', **TENANT)
    pbx.ok('extension', tenant='acme', internal_number='10', name='Empfang', voicemail=dict(enabled=True))
    pbx.ok('extension', tenant='acme', internal_number='11', name='Anna')
    pbx.ok('extension', tenant='acme', internal_number='12', name='Ben')
    pbx.ok('group', tenant='acme', internal_number='20', name='Vertrieb', members=['11', '12'])
    return pbx


def zentrale(pbx, **extra):
    return pbx.run('ivr', tenant='acme', internal_number='700', name='Zentrale',
                   keys={'1': '20', '2': '600', '0': '10'}, invalid='10', no_input='voicemail:10', **extra)


def support(pbx, **extra):
    args = dict(tenant='acme', internal_number='600', name='Support', members=[{'extension': '11'}, {'extension': '12'}],
                max_wait=120, overflow='voicemail:10')
    args.update(extra)
    return pbx.run('queue', **args)


# Create, again, check mode, diff ------------------------------------------------------------------------------------

def test_a_queue_then_a_menu_created_and_a_second_run_changes_nothing(acme):
    generation = acme.generation()
    first = support(acme)
    assert first['changed'] and first['changes'] == ['create queue 600 (tenant acme)']
    assert first['queue']['members'] == [{'extension': '11', 'penalty': 0, 'logged_in': True},
                                         {'extension': '12', 'penalty': 0, 'logged_in': True}]
    menu = zentrale(acme)
    assert menu['changed'] and menu['ivr']['keys'] == {'1': '20', '2': '600', '0': '10'}
    assert acme.generation() == generation + 2
    assert not support(acme)['changed'] and not zentrale(acme)['changed']
    assert acme.generation() == generation + 2


def test_check_mode_shows_the_real_diff_and_writes_nothing(acme):
    support(acme)
    before = acme.snapshot()
    result = zentrale(acme, check=True, diff=True)
    assert result['changed'] and acme.snapshot() == before
    assert result['diff']['before'] == {} and result['diff']['after']['keys'] == {'1': '20', '2': '600', '0': '10'}
    assert result['diff']['after_header'] == 'ivr 700 (tenant acme)'


def test_options_left_out_keep_their_value(acme):
    support(acme)
    zentrale(acme)
    result = acme.ok('ivr', tenant='acme', internal_number='700', timeout=8, diff=True)
    assert result['ivr']['keys'] == {'1': '20', '2': '600', '0': '10'} and result['ivr']['timeout'] == 8
    assert result['diff']['before']['timeout'] == 5 and result['diff']['after']['timeout'] == 8
    result = acme.ok('ivr', tenant='acme', internal_number='700', invalid='')
    assert result['ivr']['invalid'] is None


def test_a_queue_members_login_is_kept_when_the_list_is_given_without_it(acme):
    support(acme)
    acme.ok('queue', tenant='acme', internal_number='600',
            members=[{'extension': '11'}, {'extension': '12', 'logged_in': False}])
    result = acme.ok('queue', tenant='acme', internal_number='600',
                     members=[{'extension': '12'}, {'extension': '11', 'penalty': 2}])
    assert result['queue']['members'] == [{'extension': '12', 'penalty': 0, 'logged_in': False},
                                          {'extension': '11', 'penalty': 2, 'logged_in': True}]


# A conference room's PINs ------------------------------------------------------------------------------------------

def test_a_rooms_pins_are_stored_hashed_never_shown_and_masked_in_the_diff(acme):
    result = acme.run('conference', tenant='acme', internal_number='650', name='Team', pin='4711', moderator_pin='9876',
                      wait_for_moderator=True, diff=True)
    assert result['changed'] and '4711' not in result.public_raw and '9876' not in result.public_raw
    assert 'pin' not in result['conference'] and 'pin_hash' not in result['conference']
    assert result['diff']['after']['pin'] == '********' and result['diff']['after']['moderator_pin'] == '********'
    stored = acme.query("SELECT doc FROM conference_rooms")[0][0]
    assert rules.conference_pin_hash('acme', '650', '4711') in stored and '4711' not in stored
    # the same PIN again is no change; a new one shows as changed, never its value
    assert not acme.ok('conference', tenant='acme', internal_number='650', pin='4711')['changed']
    changed = acme.ok('conference', tenant='acme', internal_number='650', pin='1234', diff=True)
    assert changed['diff']['after']['pin'] == '******** (changed)' and changed['diff']['before']['pin'] == '********'
    assert '1234' not in changed.public_raw


def test_a_too_short_pin_is_refused_without_being_echoed(acme):
    result = acme.run('conference', tenant='acme', internal_number='650', pin='12')
    assert result.failed and result['violations'] == [{'object': 'conference 650 (tenant acme)', 'field': 'pin',
                                                       'rule': 'pin', 'message': 'a conference PIN has 4 to 8 digits'}]
    assert NO_LOG_MARK not in result['msg'] and acme.query('SELECT COUNT(*) FROM conference_rooms') == [(0,)]


def test_the_pins_are_no_log_options():
    for option in ('pin', 'moderator_pin', 'pin_hash', 'moderator_pin_hash'):
        assert conference.ARGUMENT_SPEC[option]['no_log'] is True


# Schedules ---------------------------------------------------------------------------------------------------------

def test_a_schedule_and_a_number_that_follows_it(acme):
    result = acme.ok('schedule', tenant='acme', name='office', hours=[
        {'days': ['mon', 'tue', 'wed', 'thu'], 'from': '08:00', 'to': '17:00'},
        {'days': ['friday'], 'from': '8:00', 'to': '14:00'}],
        holidays=['2026-12-25', '2026-12-24'], open='10', closed='voicemail:10')
    assert result['schedule']['hours'][1] == {'days': ['fri'], 'from': '08:00', 'to': '14:00'}
    assert result['schedule']['holidays'] == ['2026-12-24', '2026-12-25']
    acme.ok('number', tenant='acme', number='+49301234500', target='schedule:office')
    refused = acme.run('schedule', tenant='acme', name='office', state='absent')
    assert refused.failed and refused['violations'][0]['rule'] == 'still_referenced'
    assert 'still referenced by number +49301234500 (target)' in refused['msg']


# Refusals --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('module, args, field, rule', [
    ('ivr', dict(internal_number='700', keys={'1': '99'}), 'keys.1', 'reference'),
    ('ivr', dict(internal_number='700', keys={'x': '10'}), 'keys', 'menu_key'),
    ('ivr', dict(internal_number='10', name='Twin'), 'internal_number', 'internal_unique'),
    ('queue', dict(internal_number='600', members=[{'extension': '20'}]), 'members[0].extension', 'reference'),
    ('queue', dict(internal_number='600', strategy='random'), 'strategy', 'choices'),
    ('queue', dict(internal_number='600', max_wait='long'), 'max_wait', 'type'),
    ('conference', dict(internal_number='650', wait_for_moderator=True), 'wait_for_moderator', 'moderator_pin_required'),
    ('schedule', dict(name='office', open='10'), 'closed', 'required'),
    ('schedule', dict(name='office', open='10', closed='10', hours=[{'days': ['mon'], 'from': '18:00', 'to': '08:00'}]),
     'hours[0].to', 'opening_hours'),
])
def test_bad_input_is_refused_naming_object_field_and_rule_and_nothing_is_written(acme, module, args, field, rule):
    before = acme.snapshot()
    result = acme.run(module, tenant='acme', **args)
    assert result.failed and acme.snapshot() == before
    assert [(v['field'], v['rule']) for v in result['violations']] == [(field, rule)], result['violations']


def test_removal_is_refused_while_a_menu_names_the_queue(acme):
    support(acme)
    zentrale(acme)
    result = acme.run('queue', tenant='acme', internal_number='600', state='absent')
    assert result.failed and result['msg'] == ('queue 600 (tenant acme): state: cannot remove it: still referenced by '
                                               'ivr 700 (keys.2) [still_referenced]')
    acme.ok('ivr', tenant='acme', internal_number='700', state='absent')
    assert acme.ok('queue', tenant='acme', internal_number='600', state='absent')['changed']


def test_the_licence_is_checked_like_seats(acme):
    support(acme)
    zentrale(acme)
    result = acme.run('ivr', tenant='acme', internal_number='701')
    assert result.failed and result['violations'][0]['rule'] == 'ivr_licence'


# The _info twins ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('kind, plural, key_option, key', [
    ('ivr', 'ivrs', 'internal_number', '700'), ('queue', 'queues', 'internal_number', '600'),
    ('conference', 'conferences', 'internal_number', '650'), ('schedule', 'schedules', 'name', 'office'),
])
def test_the_info_output_fed_back_changes_nothing(acme, kind, plural, key_option, key):
    support(acme)
    zentrale(acme)
    acme.ok('conference', tenant='acme', internal_number='650', pin='4711')
    acme.ok('schedule', tenant='acme', name='office', hours=[{'days': ['mon'], 'from': '08:00', 'to': '12:00'}],
            open='700', closed='10')
    one = acme.ok('%s_info' % kind, tenant='acme', **{key_option: key})
    assert one['exists'] and len(one[plural]) == 1 and one[plural][0][key_option] == key
    for item in acme.ok('%s_info' % kind, tenant='acme')[plural]:
        again = acme.ok(kind, **item)
        assert not again['changed'], again['diff']
    assert acme.query("SELECT COUNT(*) FROM conference_rooms WHERE doc LIKE '%pin_hash\": \"%'") == [(1,)]
    missing = acme.ok('%s_info' % kind, tenant='acme', **{key_option: '799' if key_option == 'internal_number' else 'x'})
    assert missing['exists'] is False and missing[plural] == []


def test_the_modules_choices_are_the_rules_constants():
    assert queue.ARGUMENT_SPEC['strategy']['choices'] == list(rules.QUEUE_STRATEGIES)
    assert ivr.ARGUMENT_SPEC['keys']['type'] == 'dict' and schedule.ARGUMENT_SPEC['hours']['options']['days']['required']
