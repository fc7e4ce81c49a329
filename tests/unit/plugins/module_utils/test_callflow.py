# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The route simulator (callflow.py) over the KEMI adapter tests' directory (kemi_directory.py):
the steps it reports follow the routing core's decisions under the given circumstances."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest

import kemi_directory  # tests/unit/kemi (pytest.ini pythonpath)
from kemi_directory import DOMAIN, ECOTEL, MEDIA_SERVER, MOBILE_45, OUTSIDE, SINGLE
from ansible_collections.voxplane.pbx.plugins.module_utils import callflow, routing
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import ValidationFailed  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory  # noqa: E402

NOW = 1800000000.0


@pytest.fixture(scope='module')
def states(tmp_path_factory):
    path = tmp_path_factory.mktemp('callflow') / 'directory.db'
    kemi_directory.build(path)
    with Directory(str(path)).transaction(write=False, create=False) as txn:
        return txn.load_all()


def flow(states, dialled, caller='paul.desk', dnd=None, registered=None, calling_number='+4940999', **replies):
    snap = callflow.build_snapshot(states, 7, {'acme': dnd} if dnd else None)
    if caller == 'trunk':
        who = callflow.resolve_caller(snap, 'acme', trunk=True, calling_number=calling_number)
    else:
        who = callflow.resolve_caller(snap, 'acme', account=caller)
    return callflow.simulate(snap, who, dialled, NOW, callflow.Circumstances(registered, **replies),
                             setting_outcome=lambda setting: callflow.try_setting(states[setting.tenant], setting))


def rings(result):
    """(target, what rang, ring time, outcome, diversion reason, at) of every ring step."""
    return [(s['target'], s['ringing'], s['ring_time'], s['outcome'], s['reason'], s['at'])
            for s in result['steps'] if s['action'] == 'ring']


def final(result):
    return result['final']['code'], result['final']['reason']


def test_a_parallel_group_nobody_answers_falls_back_after_its_ring_time(states):
    result = flow(states, '50')
    assert rings(result) == [
        ('50', ['max.muster', 'max.app', 'erika.desk'], 30, 'no_answer', None, 0),
        ('13', ['anna.desk'], 20, 'no_answer', 'no-answer', 30),
    ]
    assert result['steps'][1]['diversion'] == ['<sip:50@%s>;reason=no-answer' % DOMAIN]
    assert final(result) == (480, 'Temporarily Unavailable')
    assert result['summary'][0].startswith('0s: ring group 50 Zentrale (10, 11): max.muster, max.app, erika.desk')
    assert result['summary'][-1] == 'final: 480 Temporarily Unavailable'


def test_someone_answering_ends_the_flow_with_200(states):
    result = flow(states, '50', answer=['erika.desk'])
    assert rings(result) == [('50', ['max.muster', 'max.app', 'erika.desk'], 30, 'answered', None, 0)]
    assert result['final'] == {'code': 200, 'reason': 'OK', 'by': 'erika.desk'}


def test_a_sequential_group_skips_members_nobody_can_ring(states):
    # Group 52 rings 60..67 for 10 s each; only 63 is registered.
    result = flow(states, '52', registered=['hunt63'])
    steps = [s for s in result['steps'] if s['action'] == 'ring']
    assert [s['extensions'] for s in steps[:8]] == [[n] for n in kemi_directory.HUNT]
    assert [s['outcome'] for s in steps[:8]] == ['unregistered'] * 3 + ['no_answer'] + ['unregistered'] * 4
    assert [s['at'] for s in steps[:8]] == [0, 0, 0, 0, 10, 10, 10, 10]
    # The fallback learns what the group did: one member rang unanswered.
    assert (steps[8]['target'], steps[8]['reason'], steps[8]['outcome']) == ('13', 'no-answer', 'unregistered')
    assert final(result) == (480, 'Temporarily Unavailable')


def test_busy_phones_take_the_busy_forward_and_a_phone_that_rings_on_makes_it_no_answer(states):
    busy = flow(states, '10', busy=['max.muster', 'max.app'])
    assert rings(busy) == [('10', ['max.muster', 'max.app'], 25, 'busy', None, 0),
                           ('12', ['paul.desk'], 20, 'no_answer', 'user-busy', 0)]
    declined = flow(states, '10', decline=['10'])
    assert rings(declined)[0][3] == 'busy' and declined['steps'][0]['reply'] == 603
    # A decline (6xx) ends the ring at once, even while another phone still rings.
    declined = flow(states, '10', decline=['max.app'])
    assert rings(declined) == [('10', ['max.muster', 'max.app'], 25, 'busy', None, 0),
                               ('12', ['paul.desk'], 20, 'no_answer', 'user-busy', 0)]
    mixed = flow(states, '10', busy=['max.muster'])
    assert rings(mixed) == [('10', ['max.muster', 'max.app'], 25, 'no_answer', None, 0),
                            ('13', ['anna.desk'], 20, 'no_answer', 'no-answer', 25)]


def test_an_unconditional_chain_rings_once_with_every_diversion_newest_first(states):
    result = flow(states, '17')
    assert rings(result) == [('13', ['anna.desk'], 20, 'no_answer', 'unconditional', 0)]
    assert result['steps'][0]['diversion'] == ['<sip:18@%s>;reason=unconditional' % DOMAIN,
                                               '<sip:17@%s>;reason=unconditional' % DOMAIN]


def test_nobody_registered_follows_the_unregistered_forward(states):
    result = flow(states, '22', registered=[])
    assert rings(result) == [('22', [], 20, 'unregistered', None, 0), ('13', [], 20, 'unregistered', 'unavailable', 0)]
    assert final(result) == (480, 'Temporarily Unavailable')


def test_dnd_is_busy_treatment_voicemail_when_enabled(states):
    assert final(flow(states, '12', dnd={'12': True})) == (486, 'Do Not Disturb')
    result = flow(states, '47')
    step = result['steps'][0]
    assert (step['action'], step['uri'], step['destination'], step['reason'], step['ring_time']) == \
        ('voicemail', 'sip:47@%s' % DOMAIN, MEDIA_SERVER, 'do-not-disturb', routing.OUTSIDE_RING_TIME)
    assert result['final']['code'] is None
    assert final(flow(states, '47', answer=['voicemail'])) == (200, 'OK')
    # DND switched off for the call: the phone rings, nobody answers, voicemail takes it.
    assert [s['action'] for s in flow(states, '47', dnd={'47': False})['steps']] == ['ring', 'voicemail']


def test_single_number_reach_rings_the_mobile_with_its_own_identity_and_diversion(states):
    result = flow(states, '45', answer=[MOBILE_45])
    step = result['steps'][0]
    assert step['ringing'] == ['snr.desk', MOBILE_45] and step['mobile'] == MOBILE_45
    assert step['mobile_diversion'] == ['<sip:45@%s>;reason=follow-me' % DOMAIN]
    assert step['mobile_identity'] == '<sip:%s@%s>' % (kemi_directory.BLOCK, DOMAIN)
    assert result['final'] == {'code': 200, 'reason': 'OK', 'by': MOBILE_45}


def test_outside_calls_and_forwards_leave_through_the_trunk(states):
    result = flow(states, '0401234567', caller='max.muster')
    step = result['steps'][0]
    max_caller_id = callflow.build_snapshot(states).tenants['acme'].targets['10'].caller_id
    assert (step['action'], step['uri'], step['identity']) == \
        ('trunk', 'sip:+49401234567@%s:5060' % ECOTEL[0], '<sip:%s@%s>' % (max_caller_id, DOMAIN))
    forwarded = flow(states, '11', busy=['erika.desk'])
    # Erika forwards only unanswered calls out: busy is the final answer.
    assert final(forwarded) == (486, 'Busy Here')
    forwarded = flow(states, '11', answer=[OUTSIDE])
    assert [(s['action'], s['reason']) for s in forwarded['steps']] == [('ring', None), ('trunk', 'no-answer')]
    assert forwarded['steps'][1]['at'] == 20 and forwarded['final']['code'] == 200


def test_an_inbound_call_reaches_the_number_target_keeping_the_callers_identity(states):
    result = flow(states, SINGLE, caller='trunk')
    assert rings(result)[0][:2] == ('10', ['max.muster', 'max.app'])
    assert result['steps'][0]['identity'] is None  # the call keeps the identity it came with
    assert final(flow(states, '+493055500000', caller='trunk')) == (404, 'Number not assigned')


MAIN = '<sip:%s@%s>' % (kemi_directory.BLOCK, DOMAIN)


@pytest.mark.parametrize('caller, calling_number, shown, private', [
    ('trunk', '+4940999', '<sip:+4940999@%s>' % DOMAIN, False),
    ('trunk', '040999', '<sip:+4940999@%s>' % DOMAIN, False),          # normalised in acme's dial plan
    ('trunk', 'anonymous', routing.ANONYMOUS_URI, True),
    ('trunk', None, routing.ANONYMOUS_URI, True),                      # the caller presents no number
    ('max.muster', None, '<sip:+4930123410@%s>' % DOMAIN, False),      # its own number, as on an outside call
    ('anon.desk', None, routing.ANONYMOUS_URI, True),
])
def test_a_forward_out_shows_both_identities(states, caller, calling_number, shown, private):
    # 14 forwards every call to an outside number: the leg presents acme's main number (P-Asserted-Identity)
    # and the original caller (From)
    dialled = kemi_directory.BLOCK + '14' if caller == 'trunk' else '14'
    step = flow(states, dialled, caller=caller, calling_number=calling_number)['steps'][0]
    assert step['action'] == 'trunk' and step['reason'] == 'unconditional'
    assert (step['identity'], step['from_identity'], step['privacy']) == (MAIN, shown, private)
    # the mobile of single number reach as well; the desk phone's branch shows the caller as it came
    dialled = kemi_directory.BLOCK + '45' if caller == 'trunk' else '45'
    step = flow(states, dialled, caller=caller, calling_number=calling_number)['steps'][0]
    assert (step['mobile_identity'], step['mobile_from_identity'], step['mobile_privacy']) == (MAIN, shown, private)
    assert step['from_identity'] == step['identity']


@pytest.mark.parametrize('caller, dialled, shown', [
    ('trunk', kemi_directory.BLOCK + '11', '<sip:+4940999@%s>' % DOMAIN),
    ('max.muster', '11', '<sip:+4930123410@%s>' % DOMAIN),
])
def test_a_forward_of_the_failure_route_shows_the_original_caller(states, caller, dialled, shown):
    # erika (11) does not answer: her no-answer forward leaves through the trunk after 20 s
    step = flow(states, dialled, caller=caller, answer=[OUTSIDE])['steps'][1]
    assert (step['action'], step['reason'], step['at']) == ('trunk', 'no-answer', 20)
    assert (step['identity'], step['from_identity'], step['privacy']) == (MAIN, shown, False)


def test_other_legs_show_their_identity_in_from(states):
    for dialled in ('0401234567', '13', '112'):
        step = flow(states, dialled, caller='max.muster')['steps'][0]
        assert step['identity'] is not None and step['from_identity'] == step['identity']


def test_a_feature_code_is_answered_as_the_router_would_without_writing(states, tmp_path):
    before = dict((name, state.objects('extension')['12']) for name, state in states.items() if name == 'acme')
    result = flow(states, '*7213')
    assert result['steps'] == [{'action': 'feature_code', 'at': 0, 'tenant': 'acme', 'extension': '12',
                                'setting': {'forwarding': {'unconditional': '13'}}}]
    assert final(result) == (603, 'Forward All Calls To 13')
    assert final(flow(states, '*72999'))[0] == 404
    assert final(flow(states, '*7212'))[0] == 482
    assert final(flow(states, '*55')) == (404, 'Unknown feature code *55')
    assert states['acme'].objects('extension')['12'] == before['acme']


@pytest.mark.parametrize('kwargs, field, rule', [
    (dict(account='nobody.here'), 'caller.account', 'reference'),
    (dict(extension='99'), 'caller.extension', 'reference'),
    (dict(extension='40'), 'caller.extension', 'reference'),   # no SIP account
    (dict(trunk=True, source='192.0.2.99'), 'caller.source', 'reference'),
])
def test_a_caller_that_does_not_exist_is_refused_naming_the_field(states, kwargs, field, rule):
    snap = callflow.build_snapshot(states)
    with pytest.raises(ValidationFailed) as info:
        callflow.resolve_caller(snap, 'acme', **kwargs)
    violation = info.value.violations[0]
    assert (violation.obj, violation.field, violation.rule) == ('call (tenant acme)', field, rule)


def test_bad_circumstances_are_refused(states):
    with pytest.raises(ValidationFailed) as info:
        flow(states, '10', answer=['max.app'], busy=['max.app'])
    assert (info.value.violations[0].field, info.value.violations[0].rule) == ('answer', 'conflict')
    with pytest.raises(ValidationFailed) as info:
        flow(states, '10', dnd={'98': True})
    assert (info.value.violations[0].field, info.value.violations[0].rule) == ('dnd', 'reference')
    with pytest.raises(ValidationFailed) as info:
        flow(states, '10', dnd={'10': 'yes'})
    assert (info.value.violations[0].field, info.value.violations[0].rule) == ('dnd', 'type')


def test_the_call_time_is_read_in_the_tenants_timezone():
    assert callflow.call_time('2026-03-01T08:00', 'Europe/Berlin') == callflow.call_time('2026-03-01T07:00:00+00:00', 'UTC')
    with pytest.raises(ValueError):
        callflow.call_time('tomorrow', 'Europe/Berlin')


# The routing core's seam that the adapter and the simulator share -------------------------------

@pytest.mark.parametrize('code, timed_out, outcome', [
    (486, False, 'busy'), (600, False, 'busy'), (603, False, 'busy'), (408, False, 'no_answer'),
    (480, False, 'no_answer'), (487, False, 'no_answer'), (486, True, 'no_answer'), (404, False, 'rejected'),
    (500, False, 'rejected'),
])
def test_a_failed_rings_reply_is_one_outcome(code, timed_out, outcome):
    assert routing.failure_outcome(code, timed_out) == outcome


def test_a_rejection_the_core_adds_nothing_to_goes_back_as_the_callee_gave_it(states):
    snap = callflow.build_snapshot(states)
    context = routing.Context('acme', '12').encode()   # Paul: no forwarding at all
    assert routing.after_reply(snap, context, 'rejected', NOW) is None
    assert repr(routing.after_reply(snap, context, 'busy', NOW)) == 'Reject(486 Busy Here)'


def test_legs_carry_identity_and_diversion_from_the_branch_before(states):
    snap = callflow.build_snapshot(states)
    plan = routing.after_failure(snap, routing.Context('acme', '22').encode(), 'unregistered', NOW)  # -> 13
    before = {'identity': '<sip:+4940999@x>', 'privacy': True, 'diversion': ['<sip:9@x>;reason=no-answer']}
    legs = list(routing.legs(snap, plan, NOW, before))
    assert [type(leg.plan).__name__ for leg in legs] == ['Ring', 'Reject']
    assert legs[0].identity == '<sip:+4940999@x>' and legs[0].privacy is True
    assert legs[0].diversion == ('<sip:22@%s>;reason=unavailable' % DOMAIN, '<sip:9@x>;reason=no-answer')


def test_a_porting_number_rings_from_8_oclock_of_its_porting_day(acme):
    from directory_helpers import SINGLE as PORTING  # noqa: E402  (a number of its own, not in the block)
    acme.apply('acme', None, {'number': {PORTING: {'status': 'porting', 'porting_date': '2030-03-01', 'target': '10'}}})
    with acme.directory.transaction(write=False, create=False) as txn:
        snap = callflow.build_snapshot(txn.load_all())
    with pytest.raises(ValidationFailed):  # this tenant has no trunk to call in from
        callflow.resolve_caller(snap, 'acme', trunk=True)
    inbound = callflow.Caller('acme', source='192.0.2.1', calling_number='+4940999')  # as route_inbound sees it

    def answer(at):
        now = callflow.call_time(at, 'Europe/Berlin')
        return final(callflow.simulate(snap, inbound, PORTING, now, callflow.Circumstances([])))

    assert answer('2030-03-01T07:59') == (404, 'Number not yet ported')
    assert answer('2030-03-01T08:00') == (480, 'Temporarily Unavailable')  # extension 10, nothing registered
