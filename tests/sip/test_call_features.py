# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Forwarding, DND, voicemail, single number reach, groups and feature codes in a real
Kamailio, against docs/routing.md.

The extensions of tests/lab/playbooks/tenants.yml each stand for one behaviour: Gina (27) forwards
every call to Bert (11); Hans (21) forwards unanswered calls after his 5 s ring time to an
outside number; Ida (22) forwards to her mobile while nothing is registered; Jan (23) is on
DND with voicemail (the media server stand-in on kamailio.trunk:media_port); Kai (24) is on
DND without voicemail but with forwards that DND must suppress; Lena (25) has single number
reach; Mia (26) changes her own settings by feature code. Group 61 (parallel) and 62
(sequential, 5 s per member) both count Kai among their members. Group 70 (sequential, 5 s)
rings Quirin (37), skips Rita (39, never registered) and falls back to Bert; Sven (38) rings
5 s, then his no-answer forward rings Tina (36) for her own 8 s. Uwe (31) forwards every call
to an outside number; group 71 (only Rita) falls back to an outside number at once. The legs
forwarded out show the original caller in From and acme's main number in P-Asserted-Identity.

A feature-code test reads the directory back through ``tenant_info`` (read_tenant.yml) and
places the next calls at once: the worker that wrote the change signals every worker through
shared memory, so no call may see the old setting. Each test restores what it changed.
"""

import json
import os

import pytest

from route_check import assert_predicted, from_of, predicted_answer
from lab.calls import ACME, OUTSIDE_CALLER, call, contacts, final_reply, first_invite, inbound, report, requests, scene
from lab.sipp import Listener, Phone, received, statuses
from lab.wire import header, sip_request

HERE = os.path.dirname(os.path.abspath(__file__))

READ_TENANT = os.path.join(HERE, 'read_tenant.yml')
MIA_PLAYBOOK = os.path.join(HERE, 'mia.yml')
ANNA = '"Anna" <sip:10@acme.sip.test>'
MAIN_NUMBER = '<sip:+49301234560@acme.sip.test>'


def diversion(number, reason):
    return '<sip:%s@acme.sip.test>;reason=%s' % (number, reason)


def trunk_uri(kamailio, number):
    return 'INVITE sip:%s@%s:%d SIP/2.0' % (number, kamailio.trunk, kamailio.trunk_port)


def extension_info(kamailio, number):
    """Extension ``number`` of acme as tenant_info reports it (a real ansible-playbook run)."""
    out = os.path.join(kamailio.workdir, 'acme-%s.json' % os.urandom(3).hex())
    run = kamailio.provision(READ_TENANT, out=out)
    assert run.rc == 0, 'read_tenant.yml failed: %r' % (run,)
    with open(out) as handle:
        info = json.load(handle)
    return dict((ext['internal_number'], ext) for ext in info['extensions'])[number]


# ------------------------------------------------------------------------------ forwarding
def test_an_unconditional_forward_rings_the_target_instead_and_records_the_diversion(kamailio):
    bert, gina = Phone(kamailio, 'bert.desk'), Phone(kamailio, 'gina.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '27'), answer=bert, ring=[gina])
    assert_predicted(kamailio, caller, callees, '27', 'anna.desk', answer=bert, ring=[gina])
    explain = report(kamailio, caller=caller, bert=callees['bert.desk'], gina=callees['gina.desk'])
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain
    invite = first_invite(callees['bert.desk'])
    assert header(invite, 'Diversion') == [diversion(27, 'unconditional')], explain
    assert header(invite, 'P-Asserted-Identity') == [ANNA], explain
    # Gina's phone is registered, but an unconditional forward applies before it rings.
    assert requests(callees['gina.desk']) == [], explain


@pytest.mark.parametrize('answer', ['busy', 'decline'])
def test_a_busy_or_declining_phone_is_forwarded_by_the_busy_forward(kamailio, answer):
    # Finn (14) forwards busy calls to +49305559999; a 603 from his phone counts as busy too.
    finn = Phone(kamailio, 'finn.desk')
    phones = {answer: [finn]}
    caller, callees = scene(kamailio, lambda: call(kamailio, 'bert.desk', '14'), trunk='phone_answer.xml', **phones)
    assert_predicted(kamailio, caller, callees, '14', 'bert.desk', far_end='answer', **phones)
    explain = report(kamailio, caller=caller, finn=callees['finn.desk'], trunk=callees['trunk'])
    assert requests(callees['finn.desk']) == ['INVITE', 'ACK'], explain
    invite = first_invite(callees['trunk'])
    assert invite is not None and invite.first_line == trunk_uri(kamailio, '+49305559999'), explain
    assert header(invite, 'Diversion') == [diversion(14, 'user-busy')], explain
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain


def test_a_no_answer_forward_leaves_when_the_extensions_own_ring_time_is_up(kamailio):
    # Hans (21) rings 5 s (the cfg's fr_inv_timer is 60 s: the timer is set per call), then his
    # no-answer forward sends the call out to +49305558888.
    hans = Phone(kamailio, 'hans.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '21', timeout=30), ring=[hans],
                            trunk='phone_answer.xml')
    assert_predicted(kamailio, caller, callees, '21', 'anna.desk', ring=[hans], far_end='answer')
    explain = report(kamailio, caller=caller, hans=callees['hans.desk'], trunk=callees['trunk'])
    assert requests(callees['hans.desk'])[:2] == ['INVITE', 'CANCEL'], explain
    rang, forwarded = first_invite(callees['hans.desk']), first_invite(callees['trunk'])
    assert forwarded is not None and forwarded.first_line == trunk_uri(kamailio, '+49305558888'), explain
    assert header(forwarded, 'Diversion') == [diversion(21, 'no-answer')], explain
    assert 4.0 <= forwarded.time - rang.time <= 6.0, 'rang %.2f s, not 5 s\n%s' % (forwarded.time - rang.time, explain)
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain


def test_a_no_answer_forward_to_an_outside_number_rings_longer_than_the_extensions_ring_time(kamailio):
    # Hans (21) rings 5 s; the trunk leg of his no-answer forward rings 8 s before it answers. It
    # has a ring time of its own (routing.OUTSIDE_RING_TIME), not the 5 s the transaction's INVITE
    # timer still held: no CANCEL, the caller is connected.
    hans = Phone(kamailio, 'hans.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '21', timeout=30), ring=[hans],
                            trunk='phone_answer_late.xml')
    assert_predicted(kamailio, caller, callees, '21', 'anna.desk', ring=[hans], far_end='answer')
    explain = report(kamailio, caller=caller, hans=callees['hans.desk'], trunk=callees['trunk'])
    forwarded = first_invite(callees['trunk'])
    assert forwarded is not None and forwarded.first_line == trunk_uri(kamailio, '+49305558888'), explain
    assert header(forwarded, 'Diversion') == [diversion(21, 'no-answer')], explain
    assert requests(callees['trunk'])[:2] == ['INVITE', 'ACK'], explain        # no CANCEL after 5 s
    assert 'CANCEL' not in requests(callees['trunk']), explain
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain
    answered = [m for m in received(caller, 'SIP/2.0 200') if 'INVITE' in header(m, 'CSeq')[0]][0]
    assert answered.time - forwarded.time >= 7.5, explain


def test_a_forward_to_an_extension_rings_for_that_extensions_own_ring_time(kamailio):
    # Sven (38) rings 5 s; his no-answer forward rings Tina (36) for her 8 s, set in the failure
    # route for the new branch, then the caller hears that nobody answered.
    sven, tina = Phone(kamailio, 'sven.desk'), Phone(kamailio, 'tina.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '38', timeout=30), ring=[sven, tina])
    assert_predicted(kamailio, caller, callees, '38', 'anna.desk', ring=[sven, tina])
    explain = report(kamailio, caller=caller, sven=callees['sven.desk'], tina=callees['tina.desk'])
    rang_sven, rang_tina = first_invite(callees['sven.desk']), first_invite(callees['tina.desk'])
    assert rang_sven is not None and rang_tina is not None, explain
    assert header(rang_tina, 'Diversion') == [diversion(38, 'no-answer')], explain
    assert requests(callees['tina.desk'])[:2] == ['INVITE', 'CANCEL'], explain
    cancelled = received(callees['tina.desk'], 'CANCEL')[0]
    assert 4.0 <= rang_tina.time - rang_sven.time <= 6.5, explain
    assert 7.0 <= cancelled.time - rang_tina.time <= 9.5, 'Tina rang %.2f s, not 8 s\n%s' % (
        cancelled.time - rang_tina.time, explain)
    assert final_reply(caller) == 'SIP/2.0 480 Temporarily Unavailable', explain


def test_an_unregistered_extension_is_forwarded_to_its_unregistered_destination(kamailio):
    # Ida (22) has no registered device: the forward to her mobile applies at once.
    assert contacts(kamailio, 'ida.desk@acme.sip.test') == []
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '22'), trunk='phone_answer.xml')
    assert_predicted(kamailio, caller, callees, '22', 'anna.desk', far_end='answer')
    explain = report(kamailio, caller=caller, trunk=callees['trunk'])
    invite = first_invite(callees['trunk'])
    assert invite is not None and invite.first_line == trunk_uri(kamailio, '+4917012345678'), explain
    assert header(invite, 'Diversion') == [diversion(22, 'unavailable')], explain
    assert header(invite, 'P-Asserted-Identity') == [MAIN_NUMBER], explain
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain


# ------------------------------------------------------------------------------ the original caller
# A leg forwarded out through the trunk carries the original caller in From and the forwarding
# tenant's main number in P-Asserted-Identity (docs/routing.md, "The original caller on a forwarded
# leg"), as the trunk stand-in receives it; route_info predicts both (route_check.py compares From too).

OUTSIDE_FROM = ('', 'sip:%s@%s' % (OUTSIDE_CALLER, ACME))
ANONYMOUS_FROM = ('"Anonymous"', 'sip:anonymous@anonymous.invalid')

# kind -> (what a call from the trunk dials, internal number, where the forward goes, the phones
# of the scene: {'ring'/'busy': [SIP account]}, the Diversion the trunk leg carries)
FORWARD_KINDS = {
    'unconditional': ('+4930123456031', '31', '+49305557711', {}, [diversion(31, 'unconditional')]),
    'busy': ('+4930123456014', '14', '+49305559999', {'busy': ['finn.desk']}, [diversion(14, 'user-busy')]),
    'no_answer': ('+4930123456021', '21', '+49305558888', {'ring': ['hans.desk']}, [diversion(21, 'no-answer')]),
    'unavailable': ('+4930123456022', '22', '+4917012345678', {}, [diversion(22, 'unavailable')]),
    'single_number_reach': ('+4930123456025', '25', '+4917011112222', {'ring': ['lena.desk']},
                            [diversion(25, 'follow-me')]),
    'group_fallback': ('+493099990003', '71', '+49305557722', {}, [diversion(71, 'unavailable')]),
}


def forwarded(kamailio, kind, caller=None, calling=OUTSIDE_CALLER):
    """A call of ``caller`` (a SIP account; None: from the trunk presenting ``calling``) to the
    extension or group of ``kind``; the trunk stand-in answers the forwarded leg. Returns the
    INVITE the trunk received, after holding route_info's prediction against the call."""
    from_trunk, number, target, phones, dummy = FORWARD_KINDS[kind]
    phones = dict((role, [Phone(kamailio, user) for user in users]) for role, users in phones.items())
    dialled = number if caller else from_trunk
    place = (lambda: call(kamailio, caller, number, timeout=30)) if caller else \
        (lambda: inbound(kamailio, from_trunk, timeout=30, calling=calling))
    result, callees = scene(kamailio, place, trunk='phone_answer.xml', **phones)
    assert_predicted(kamailio, result, callees, dialled, caller, trunk=caller is None, far_end='answer',
                     calling_number=calling, **phones)
    explain = report(kamailio, caller=result, trunk=callees['trunk'])
    invite = first_invite(callees['trunk'])
    assert invite is not None and invite.first_line == trunk_uri(kamailio, target), explain
    assert result.rc == 0 and statuses(result)[-3:] == ['200', '200', '200'], explain
    return invite, explain


@pytest.mark.parametrize('kind', sorted(FORWARD_KINDS))
def test_a_call_from_the_trunk_forwarded_out_shows_the_caller_in_from_and_the_tenant_in_pai(kamailio, kind):
    invite, explain = forwarded(kamailio, kind)
    assert from_of(invite) == OUTSIDE_FROM, explain
    assert header(invite, 'P-Asserted-Identity') == [MAIN_NUMBER], explain
    assert header(invite, 'Privacy') == [] and header(invite, 'Diversion') == FORWARD_KINDS[kind][4], explain


@pytest.mark.parametrize('kind', ['unconditional', 'single_number_reach'])
@pytest.mark.parametrize('caller, calling, shown', [
    (None, '03055599999', OUTSIDE_FROM),                     # national, normalised in acme's dial plan
    (None, 'anonymous', ANONYMOUS_FROM),
    ('anna.desk', None, ('', 'sip:+4930123456010@' + ACME)),  # Anna's outside identity: her own number
    ('cora.desk', None, ANONYMOUS_FROM),                      # Cora presents no number outside
])
def test_each_kind_of_caller_is_shown_as_on_a_direct_call(kamailio, kind, caller, calling, shown):
    invite, explain = forwarded(kamailio, kind, caller, calling or OUTSIDE_CALLER)
    assert from_of(invite) == shown, explain
    assert header(invite, 'P-Asserted-Identity') == [MAIN_NUMBER], explain
    # an anonymous caller stays anonymous; the carrier still learns who pays
    assert header(invite, 'Privacy') == (['id'] if shown == ANONYMOUS_FROM else []), explain


# ------------------------------------------------------------------------------ DND and voicemail
def test_dnd_with_voicemail_sends_the_call_to_the_mailbox_on_the_media_server(kamailio):
    jan = Phone(kamailio, 'jan.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '23'), ring=[jan],
                            media='phone_answer.xml')
    assert_predicted(kamailio, caller, callees, '23', 'anna.desk', ring=[jan], far_end='answer')
    explain = report(kamailio, caller=caller, jan=callees['jan.desk'], media=callees['media'])
    assert requests(callees['jan.desk']) == [], explain
    invite = first_invite(callees['media'])
    # The request URI names the mailbox in the tenant's domain; the media server is the next hop.
    assert invite is not None and invite.first_line == 'INVITE sip:23@acme.sip.test SIP/2.0', explain
    assert header(invite, 'Diversion') == [diversion(23, 'do-not-disturb')], explain
    assert header(invite, 'P-Asserted-Identity') == [ANNA], explain
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain


def test_dnd_without_voicemail_is_busy_and_suppresses_every_forward(kamailio):
    # Kai (24) is on DND and forwards unconditionally to Bert and on busy to the trunk: neither
    # forward may apply, his phone must not ring, the caller hears busy.
    kai, bert = Phone(kamailio, 'kai.desk'), Phone(kamailio, 'bert.desk')
    with Listener(kamailio.trunk, kamailio.trunk_port) as trunk:
        caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '24'), ring=[kai, bert])
        inbound_call = inbound(kamailio, '+4930123456024')
    assert_predicted(kamailio, caller, callees, '24', 'anna.desk', ring=[kai, bert])
    assert_predicted(kamailio, inbound_call, {}, '+4930123456024', trunk=True)
    explain = report(kamailio, caller=caller, kai=callees['kai.desk'], bert=callees['bert.desk'])
    assert final_reply(caller) == 'SIP/2.0 486 Do Not Disturb', explain
    assert final_reply(inbound_call) == 'SIP/2.0 486 Do Not Disturb', report(kamailio, inbound=inbound_call)
    assert requests(callees['kai.desk']) == [] and requests(callees['bert.desk']) == [], explain
    assert trunk.datagrams == [], explain


# ------------------------------------------------------------------------------ single number reach
def test_single_number_reach_rings_the_mobile_together_with_the_devices(kamailio):
    lena = Phone(kamailio, 'lena.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '25'), ring=[lena],
                            trunk='phone_answer.xml')
    assert_predicted(kamailio, caller, callees, '25', 'anna.desk', ring=[lena], far_end='answer')
    explain = report(kamailio, caller=caller, lena=callees['lena.desk'], trunk=callees['trunk'])
    desk, mobile = first_invite(callees['lena.desk']), first_invite(callees['trunk'])
    assert desk is not None and mobile is not None, explain
    assert mobile.first_line == trunk_uri(kamailio, '+4917011112222'), explain
    assert abs(mobile.time - desk.time) < 1.0, explain  # in parallel, not after the ring time
    # Each branch carries its own identity: the mobile leg the tenant's number and why it came.
    assert header(mobile, 'P-Asserted-Identity') == [MAIN_NUMBER], explain
    assert header(mobile, 'Diversion') == [diversion(25, 'follow-me')], explain
    assert header(desk, 'P-Asserted-Identity') == [ANNA] and header(desk, 'Diversion') == [], explain
    # The mobile answered: the desk phone is cancelled.
    assert requests(callees['lena.desk'])[:2] == ['INVITE', 'CANCEL'], explain
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain


# ------------------------------------------------------------------------------ groups
def test_a_parallel_group_rings_every_member_at_once_but_not_one_on_dnd(kamailio):
    anna, bert, kai = Phone(kamailio, 'anna.desk'), Phone(kamailio, 'bert.desk'), Phone(kamailio, 'kai.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'cora.desk', '61'), answer=anna, ring=[bert, kai])
    assert_predicted(kamailio, caller, callees, '61', 'cora.desk', answer=anna, ring=[bert, kai])
    explain = report(kamailio, caller=caller, anna=callees['anna.desk'], bert=callees['bert.desk'],
                     kai=callees['kai.desk'])
    assert requests(callees['kai.desk']) == [], explain
    rang_anna, rang_bert = first_invite(callees['anna.desk']), first_invite(callees['bert.desk'])
    assert rang_anna is not None and rang_bert is not None, explain
    assert abs(rang_anna.time - rang_bert.time) < 1.0, explain
    assert requests(callees['bert.desk'])[:2] == ['INVITE', 'CANCEL'], explain
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain


def test_a_sequential_group_rings_one_member_after_the_other_and_skips_one_on_dnd(kamailio):
    # Group 62: Kai (DND, skipped), then Bert for 5 s, then Anna, who answers.
    anna, bert, kai = Phone(kamailio, 'anna.desk'), Phone(kamailio, 'bert.desk'), Phone(kamailio, 'kai.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'cora.desk', '62', timeout=30), answer=anna,
                            ring=[bert, kai])
    assert_predicted(kamailio, caller, callees, '62', 'cora.desk', answer=anna, ring=[bert, kai])
    explain = report(kamailio, caller=caller, anna=callees['anna.desk'], bert=callees['bert.desk'],
                     kai=callees['kai.desk'])
    assert requests(callees['kai.desk']) == [], explain
    assert requests(callees['bert.desk'])[:2] == ['INVITE', 'CANCEL'], explain
    rang_bert, rang_anna = first_invite(callees['bert.desk']), first_invite(callees['anna.desk'])
    assert rang_anna is not None, explain
    assert 4.0 <= rang_anna.time - rang_bert.time <= 6.0, explain
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain


@pytest.mark.parametrize('quirin, reason', [('ring', 'no-answer'), ('busy', 'user-busy'), (None, 'unavailable')])
def test_a_hunt_groups_fallback_says_what_the_whole_group_did(kamailio, quirin, reason):
    # Group 70 rings Quirin (37) for 5 s, moves past Rita (39, never registered) and falls back to
    # Bert (11). The Diversion's reason is what the group did, not what its last step did (Rita:
    # unavailable): no-answer when Quirin rang, user-busy when he was busy, unavailable only when
    # nobody could ring.
    assert contacts(kamailio, 'rita.desk@' + ACME) == [] and contacts(kamailio, 'rita.app@' + ACME) == []
    bert, phones = Phone(kamailio, 'bert.desk'), {}
    if quirin:
        phones[quirin] = [Phone(kamailio, 'quirin.desk')]
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '70', timeout=30), answer=bert, **phones)
    assert_predicted(kamailio, caller, callees, '70', 'anna.desk', answer=bert, **phones)
    explain = report(kamailio, caller=caller, bert=callees['bert.desk'], quirin=callees.get('quirin.desk'))
    invite = first_invite(callees['bert.desk'])
    assert invite is not None and header(invite, 'Diversion') == [diversion(70, reason)], explain
    if quirin == 'ring':
        assert requests(callees['quirin.desk'])[:2] == ['INVITE', 'CANCEL'], explain
        assert 4.0 <= invite.time - first_invite(callees['quirin.desk']).time <= 6.5, explain
    elif quirin == 'busy':
        assert requests(callees['quirin.desk']) == ['INVITE', 'ACK'], explain
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain


# ------------------------------------------------------------------------------ feature codes
def dial(kamailio, code):
    """Mia dials a feature code; the final answer's status line."""
    predicted = predicted_answer(kamailio, 'mia.desk', code)  # before the code changes the directory
    result = call(kamailio, 'mia.desk', code)
    assert result.rc == 0, report(kamailio, feature_code=result)
    assert final_reply(result) == predicted, 'route_info predicted %r' % predicted
    return final_reply(result)


def calls_to_mia(kamailio, count=3):
    """The final answers of ``count`` calls to Mia placed right away, one after the other (two
    workers: every one of them must route with the new setting)."""
    answers = [final_reply(call(kamailio, 'anna.desk', '26')) for dummy in range(count)]
    assert answers == [predicted_answer(kamailio, 'anna.desk', '26')] * count  # nobody registered
    return answers


def test_feature_codes_switch_dnd_and_a_playbook_that_leaves_dnd_out_keeps_it(kamailio):
    try:
        # The calls follow the feature code at once: no worker may still route with the old
        # snapshot (the poll interval alone would leave up to 500 ms).
        assert dial(kamailio, '*78') == 'SIP/2.0 603 Do Not Disturb On'
        assert calls_to_mia(kamailio) == ['SIP/2.0 486 Do Not Disturb'] * 3
        assert extension_info(kamailio, '26')['dnd'] is True
        # A playbook that does not mention dnd keeps the phone's DND...
        run = kamailio.provision(MIA_PLAYBOOK, mia_name='Mia Meier')
        assert run.rc == 0 and run.changed == 1, run
        assert extension_info(kamailio, '26')['dnd'] is True
        assert dial(kamailio, '*79') == 'SIP/2.0 603 Do Not Disturb Off'
        # Mia has no registered phone: without DND a call finds nobody.
        assert calls_to_mia(kamailio) == ['SIP/2.0 480 Temporarily Unavailable'] * 3
        assert extension_info(kamailio, '26')['dnd'] is False
        # ...and one that sets it wins over the phone.
        assert dial(kamailio, '*78') == 'SIP/2.0 603 Do Not Disturb On'
        run = kamailio.provision(MIA_PLAYBOOK, mia_name='Mia Meier', mia_dnd=False)
        assert run.rc == 0 and run.changed == 1, run
        assert extension_info(kamailio, '26')['dnd'] is False
    finally:
        dial(kamailio, '*79')
        kamailio.provision(MIA_PLAYBOOK, mia_name='Mia')


def test_feature_codes_set_and_clear_the_unconditional_forward(kamailio):
    bert = Phone(kamailio, 'bert.desk')
    try:
        assert dial(kamailio, '*7211') == 'SIP/2.0 603 Forward All Calls To 11'
        assert extension_info(kamailio, '26')['forwarding']['unconditional'] == '11'
        caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '26'), answer=bert)
        assert_predicted(kamailio, caller, callees, '26', 'anna.desk', answer=bert)
        explain = report(kamailio, caller=caller, bert=callees['bert.desk'])
        assert header(first_invite(callees['bert.desk']), 'Diversion') == [diversion(26, 'unconditional')], explain
        assert dial(kamailio, '*73') == 'SIP/2.0 603 Forward All Calls Off'
        assert calls_to_mia(kamailio) == ['SIP/2.0 480 Temporarily Unavailable'] * 3
        assert extension_info(kamailio, '26')['forwarding']['unconditional'] is None
    finally:
        dial(kamailio, '*73')


def test_feature_codes_set_and_clear_the_busy_forward(kamailio):
    mia, bert = Phone(kamailio, 'mia.app'), Phone(kamailio, 'bert.desk')
    try:
        assert dial(kamailio, '*9011') == 'SIP/2.0 603 Forward When Busy To 11'
        assert extension_info(kamailio, '26')['forwarding']['busy'] == '11'
        caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '26'), answer=bert, busy=[mia])
        assert_predicted(kamailio, caller, callees, '26', 'anna.desk', answer=bert, busy=[mia])
        explain = report(kamailio, caller=caller, mia=callees['mia.app'], bert=callees['bert.desk'])
        assert requests(callees['mia.app']) == ['INVITE', 'ACK'], explain
        assert header(first_invite(callees['bert.desk']), 'Diversion') == [diversion(26, 'user-busy')], explain
        assert dial(kamailio, '*91') == 'SIP/2.0 603 Forward When Busy Off'
        assert extension_info(kamailio, '26')['forwarding']['busy'] is None
        caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '26'), busy=[mia])
        assert_predicted(kamailio, caller, callees, '26', 'anna.desk', busy=[mia])
        assert final_reply(caller) == 'SIP/2.0 486 Busy Here', report(kamailio, caller=caller)
    finally:
        dial(kamailio, '*91')


def test_feature_codes_set_and_clear_the_no_answer_forward(kamailio):
    mia, bert = Phone(kamailio, 'mia.app'), Phone(kamailio, 'bert.desk')
    try:
        assert dial(kamailio, '*9211') == 'SIP/2.0 603 Forward On No Answer To 11'
        assert extension_info(kamailio, '26')['forwarding']['no_answer'] == '11'
        caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '26', timeout=30), answer=bert,
                                ring=[mia])
        assert_predicted(kamailio, caller, callees, '26', 'anna.desk', answer=bert, ring=[mia])
        explain = report(kamailio, caller=caller, mia=callees['mia.app'], bert=callees['bert.desk'])
        rang, forwarded = first_invite(callees['mia.app']), first_invite(callees['bert.desk'])
        assert forwarded is not None and header(forwarded, 'Diversion') == [diversion(26, 'no-answer')], explain
        assert 4.0 <= forwarded.time - rang.time <= 6.0, explain
        assert dial(kamailio, '*93') == 'SIP/2.0 603 Forward On No Answer Off'
        assert extension_info(kamailio, '26')['forwarding']['no_answer'] is None
        caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '26', timeout=30), ring=[mia])
        assert_predicted(kamailio, caller, callees, '26', 'anna.desk', ring=[mia])
        assert final_reply(caller) == 'SIP/2.0 480 Temporarily Unavailable', report(kamailio, caller=caller)
    finally:
        dial(kamailio, '*93')


def test_a_feature_code_with_an_escaped_hash_is_that_feature_code(kamailio):
    # Phones escape a dialled '#' in the Request-URI: sip:*78%23@acme.sip.test.
    try:
        assert dial(kamailio, '*78%23') == 'SIP/2.0 603 Do Not Disturb On'
        assert calls_to_mia(kamailio, 1) == ['SIP/2.0 486 Do Not Disturb']
        assert dial(kamailio, '*79%23') == 'SIP/2.0 603 Do Not Disturb Off'
        assert extension_info(kamailio, '26')['dnd'] is False
    finally:
        dial(kamailio, '*79')


def test_a_dialled_number_with_an_escaped_plus_goes_out_like_the_plain_one(kamailio):
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '%2B49305557777'), trunk='phone_answer.xml')
    assert_predicted(kamailio, caller, callees, '%2B49305557777', 'anna.desk', far_end='answer')
    explain = report(kamailio, caller=caller, trunk=callees['trunk'])
    invite = first_invite(callees['trunk'])
    assert invite is not None and invite.first_line == trunk_uri(kamailio, '+49305557777'), explain
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain


def test_a_speed_dial_calls_its_number(kamailio):
    # Finn's **1 is Bert (11); **22 is 030 5557777, an outside number through the trunk.
    bert = Phone(kamailio, 'bert.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'finn.desk', '**1'), answer=bert)
    assert_predicted(kamailio, caller, callees, '**1', 'finn.desk', answer=bert)
    explain = report(kamailio, caller=caller, bert=callees['bert.desk'])
    assert caller.rc == 0 and statuses(caller)[-3:] == ['200', '200', '200'], explain
    assert header(first_invite(callees['bert.desk']), 'P-Asserted-Identity') == ['"Finn" <sip:14@acme.sip.test>'], explain

    caller, callees = scene(kamailio, lambda: call(kamailio, 'finn.desk', '**22'), trunk='phone_answer.xml')
    assert_predicted(kamailio, caller, callees, '**22', 'finn.desk', far_end='answer')
    explain = report(kamailio, caller=caller, trunk=callees['trunk'])
    invite = first_invite(callees['trunk'])
    assert invite is not None and invite.first_line == trunk_uri(kamailio, '+49305557777'), explain

    # A code Finn has not set, and Bert, who has no speed dials: 404.
    assert final_reply(call(kamailio, 'finn.desk', '**9')) == 'SIP/2.0 404 No speed dial 9'
    assert final_reply(call(kamailio, 'bert.desk', '**1')) == 'SIP/2.0 404 No speed dial 1'
    assert predicted_answer(kamailio, 'finn.desk', '**9') == 'SIP/2.0 404 No speed dial 9'


def test_an_inbound_number_with_an_escaped_plus_reaches_its_extension(kamailio):
    # +4930123456024 is Kai's DDI; Kai is on DND without voicemail.
    result = inbound(kamailio, '%2B4930123456024')
    assert_predicted(kamailio, result, {}, '%2B4930123456024', trunk=True)
    assert final_reply(result) == 'SIP/2.0 486 Do Not Disturb', report(kamailio, inbound=result)


@pytest.mark.parametrize('user, reason', [
    ('%2B4930123456024%2', 'malformed escape in the Request-URI user'),
    ('%2B4930123456024%00', 'control character in the Request-URI user'),
    ('%2B49301234560%FF24', 'Request-URI user is not UTF-8'),
])
def test_a_request_uri_user_that_does_not_unescape_is_400_not_500(kamailio, user, reason):
    uri = 'sip:%s@%s' % (user, ACME)
    line = sip_request(kamailio.trunk, kamailio.target, 'INVITE', uri, 'sip:%s@carrier.example' % '+493055599999', uri)
    assert line == 'SIP/2.0 400 Bad Request: ' + reason, '%r\n%s' % (line, kamailio.log_tail(20))
    assert predicted_answer(kamailio, None, user, trunk=True) == line


REFUSED_CODES = [
    ('*72999', 'SIP/2.0 404 forwarding.unconditional: '),           # no such internal number
    ('*720044201234567', 'SIP/2.0 403 forwarding.unconditional: '),  # abroad, without permission
    ('*7226', 'SIP/2.0 482 forwarding.unconditional: '),             # to herself
    ('*72', 'SIP/2.0 484 Address Incomplete'),
    ('*79123', 'SIP/2.0 484 Address Incomplete'),
    ('*55', 'SIP/2.0 404 Unknown feature code *55'),
]


def test_a_refused_feature_code_says_why_and_changes_nothing(kamailio):
    before = extension_info(kamailio, '26')
    lines = dict((code, dial(kamailio, code)) for code, dummy in REFUSED_CODES)
    for code, answer in REFUSED_CODES:
        assert lines[code] and lines[code].startswith(answer), (code, lines[code])
    # The reason names the field and the rule that refused the destination.
    assert lines['*72999'].endswith('[reference]') and lines['*720044201234567'].endswith('[international_calls]')
    assert extension_info(kamailio, '26') == before
