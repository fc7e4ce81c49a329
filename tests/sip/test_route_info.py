# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane.pbx.route_info through a real ansible-playbook, against the directory the session's
Kamailio routes with, held against a real call: Hans (21) rings 5 s, then his no-answer forward
leaves through the trunk (tests/lab/playbooks/tenants.yml). The per-test predictions of
test_call_features.py and test_router.py call the module's core function (route_check.py);
this shows the module as a playbook runs it gives the same answer."""

import json
import os

import pytest

from route_check import assert_predicted, predict
from lab.calls import call, scene
from lab.sipp import Phone

HERE = os.path.dirname(os.path.abspath(__file__))

ROUTE_INFO = os.path.join(HERE, 'route_info.yml')


def route_info_playbook(kamailio, **call_options):
    out = os.path.join(kamailio.workdir, 'flow-%s.json' % os.urandom(3).hex())
    run = kamailio.provision(ROUTE_INFO, out=out, call=call_options)
    assert run.rc == 0 and run.changed == 1, 'route_info.yml failed: %r' % (run,)  # the copy task only
    with open(out) as handle:
        return json.load(handle)


def test_route_info_in_a_playbook_predicts_the_real_call(kamailio):
    flow = route_info_playbook(kamailio, tenant='acme', caller={'account': 'anna.desk'}, dialled='21',
                               registered=['hans.desk'], answer=['trunk'])
    assert flow['changed'] is False
    assert [(s['action'], s.get('target') or s.get('number'), s['at'], s['reason']) for s in flow['steps']] == \
        [('ring', '21', 0, None), ('trunk', '+49305558888', 5, 'no-answer')]
    assert flow['summary'][-1] == 'final: 200 OK'
    # The module as a playbook runs it and its core function, which the other tests use, agree.
    core = predict(kamailio, '21', 'anna.desk', registered=['hans.desk'], answer=['trunk'])
    assert dict((k, flow[k]) for k in ('steps', 'final', 'summary', 'generation')) == core
    hans = Phone(kamailio, 'hans.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '21', timeout=30), ring=[hans],
                            trunk='phone_answer.xml')
    assert_predicted(kamailio, caller, callees, '21', 'anna.desk', ring=[hans], far_end='answer')


def test_a_prediction_that_differs_from_the_real_call_fails_the_check(kamailio):
    # Finn (14) answers busy and his busy forward goes out through the trunk. Predicted for a
    # phone that only rings, or for Finn on DND, the flow differs and route_check says so.
    finn = Phone(kamailio, 'finn.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'bert.desk', '14'), busy=[finn], trunk='phone_answer.xml')
    assert_predicted(kamailio, caller, callees, '14', 'bert.desk', busy=[finn], far_end='answer')
    with pytest.raises(AssertionError) as ringing:
        assert_predicted(kamailio, caller, callees, '14', 'bert.desk', ring=[finn], far_end='answer')
    assert 'received an INVITE' in str(ringing.value)
    with pytest.raises(AssertionError) as dnd:
        assert_predicted(kamailio, caller, callees, '14', 'bert.desk', busy=[finn], far_end='answer', dnd={'14': True})
    assert 'received an INVITE' in str(dnd.value)


def test_a_decline_ends_the_ring_at_once_while_another_phone_still_rings(kamailio):
    # Finn's desk declines (603) while his app rings: tm cancels the app at once (a 6xx ends every
    # branch) and the busy forward leaves through the trunk, as route_info predicts (no 20 s wait).
    desk, app = Phone(kamailio, 'finn.desk'), Phone(kamailio, 'finn.app')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'bert.desk', '14'), decline=[desk], ring=[app],
                            trunk='phone_answer.xml')
    flow = assert_predicted(kamailio, caller, callees, '14', 'bert.desk', decline=[desk], ring=[app], far_end='answer')
    assert [(s['action'], s['at'], s['reason']) for s in flow['steps']] == [('ring', 0, None), ('trunk', 0, 'user-busy')]


def test_a_busy_phone_beside_one_that_rings_out_is_no_answer(kamailio):
    # Mia (26, ring time 5 s, no forwards): her desk answers busy, her app rings until the ring
    # time is up. tm picks the 408 of the branch that rang out over the 486: no answer, 480.
    desk, app = Phone(kamailio, 'mia.desk'), Phone(kamailio, 'mia.app')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '26', timeout=30), busy=[desk], ring=[app])
    flow = assert_predicted(kamailio, caller, callees, '26', 'anna.desk', busy=[desk], ring=[app])
    assert flow['steps'][0]['outcome'] == 'no_answer' and flow['final']['code'] == 480
