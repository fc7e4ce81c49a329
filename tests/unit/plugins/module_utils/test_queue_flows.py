# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call queues (queue_flows.py): a caller's wait, driven by a scripted caller and a clock it moves,
and the queue's shared state (strategies, wrap-up, the head of the queue), without PJSIP."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from media_helpers import Caller, run
from ansible_collections.voxplane.pbx.plugins.module_utils import queue_flows
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import Bridge, Hangup, Hold, StepResult, Talk

MEMBERS = [('210', 0), ('211', 0), ('212', 5)]


def spec(**overrides):
    values = dict(tenant='acme', number='600', members=MEMBERS, strategy='sequential', member_ring_ms=15000,
                  wrapup_ms=10000, max_callers=10, max_wait_ms=120000, overflow='voicemail:100')
    values.update(overrides)
    return queue_flows.QueueSpec(**values)


class QueueCaller(Caller):
    """A caller whose time passes: a Hold takes its length, a Bridge that rings out its ring time;
    ``members`` says how each member's call ends: (end, code), default rings out (other calls: answered)."""

    def __init__(self, members=None, hang_up_after_s=None, **kwargs):
        super(QueueCaller, self).__init__(**kwargs)
        self.now = 1000.0
        self.members = dict(members or {})
        self.hang_up_after_s = hang_up_after_s
        self.talk_s = 60
        self.state = None
        self.busy_while_talking = None

    def clock(self):
        return self.now

    def answer(self, step):
        if self.hang_up_after_s is not None and self.now - 1000.0 >= self.hang_up_after_s:
            self.gone = True
        if isinstance(step, Hold) and not self.gone:
            self.steps.append(step)
            self.now += step.ms / 1000.0
            return StepResult()
        if isinstance(step, Bridge) and not self.gone:
            self.steps.append(step)
            member = step.origin.endswith('to=member')
            users = (step.user,) + step.also
            answering = [u for u in users if self.members.get(u, (None, 0))[1] == 200]
            user = answering[0] if answering else step.user
            end, code = self.members.get(user, ('timeout', 408) if member else ('ended', 200))
            if end == 'timeout':
                self.now += step.ring_ms / 1000.0
            if end == 'ended' and step.until_answer:
                end = 'answered'
            return StepResult(end=end, code=code, user=user if code == 200 else '')
        if isinstance(step, Talk) and not self.gone:
            self.steps.append(step)
            self.now += self.talk_s
            if self.state is not None:
                self.busy_while_talking = set(self.state.busy)
            return StepResult(end='ended', code=200)
        return super(QueueCaller, self).answer(step)


def flow(caller, queue=None, state=None):
    return queue_flows.wait_in_queue(queue or spec(), state or queue_flows.QueueState(), caller.clock)


def member_calls(caller):
    return [s.user for s in caller.steps if isinstance(s, Bridge) and s.origin.endswith('to=member')]


def test_members_are_tried_in_order_lower_penalty_first_and_the_one_who_answers_is_bridged():
    caller = QueueCaller(members={'211': ('ended', 200)})
    run(flow(caller), caller)
    assert member_calls(caller) == ['210', '211']
    assert caller.bridged()[0] == ('210', 'queue;number=600;to=member')
    assert caller.hangup() == Hangup()
    assert all(s.hold == Hold(['music'], 1).prompts for s in caller.steps if isinstance(s, Bridge))


def test_ring_all_rings_the_free_members_of_the_lowest_penalty_at_once():
    caller = QueueCaller(members={'210': ('ended', 200)})
    state = queue_flows.QueueState()
    run(flow(caller, spec(strategy='ring_all'), state), caller)
    [bridge] = [s for s in caller.steps if isinstance(s, Bridge)]
    assert (bridge.user,) + bridge.also == ('210', '211')
    assert state.last_taken == '210' and state.busy == set()
    assert isinstance(caller.steps[-2], Talk) and caller.hangup() == Hangup()


def test_while_a_member_talks_it_is_busy_and_the_others_are_free():
    caller = QueueCaller(members={'211': ('ended', 200)})
    state = queue_flows.QueueState()
    caller.state = state
    run(flow(caller, spec(strategy='ring_all'), state), caller)
    assert caller.busy_while_talking == {'211'} and state.callers == []
    assert state.wrapup_until['211'] == caller.now + 10 and state.busy == set()


def test_busy_and_dnd_members_are_skipped():
    caller = QueueCaller(members={'210': ('failed', 486), '211': ('failed', 480), '212': ('ended', 200)})
    run(flow(caller), caller)
    assert member_calls(caller) == ['210', '211', '212']


def test_after_max_wait_the_overflow():
    caller = QueueCaller()
    run(flow(caller, spec(max_wait_ms=40000)), caller)
    assert caller.bridged()[-1] == ('100', 'queue;number=600;to=voicemail')
    assert caller.now - 1000.0 <= 40 + 1  # no member rang beyond the queue's max wait
    assert [s.ring_ms for s in caller.steps if isinstance(s, Bridge)][:3] == [15000, 15000, 10000]


def test_without_overflow_goodbye():
    caller = QueueCaller()
    run(flow(caller, spec(max_wait_ms=10000, overflow=None)), caller)
    assert caller.played()[-1] == 'goodbye' and caller.hangup() == Hangup()


def test_nobody_logged_in_goes_to_no_members_at_once():
    caller = QueueCaller()
    run(flow(caller, spec(members=[], logged_in=False, no_members='100')), caller)
    assert caller.bridged() == [('100', 'queue;number=600;to=target')]
    caller = QueueCaller()
    run(flow(caller, spec(members=[], logged_in=False, max_wait_ms=3000)), caller)
    assert isinstance(caller.steps[1], Hold) and caller.bridged()[-1][1].endswith('to=voicemail')


def test_a_full_queue_overflows_at_once():
    state = queue_flows.QueueState()
    state.enter('somebody', 1)
    caller = QueueCaller()
    run(flow(caller, spec(max_callers=1), state), caller)
    assert caller.bridged() == [('100', 'queue;number=600;to=voicemail')]


def test_only_the_head_of_the_queue_is_offered_and_callers_leave_the_queue():
    state = queue_flows.QueueState()
    state.enter('first', 10)
    caller = QueueCaller(hang_up_after_s=5)
    run(flow(caller, spec(), state), caller)
    assert member_calls(caller) == [] and state.callers == ['first']


def test_the_position_is_announced_with_the_estimated_wait():
    state = queue_flows.QueueState()
    state.enter('first', 10)
    state.answered('210', 90)
    caller = QueueCaller(hang_up_after_s=70)
    run(flow(caller, spec(announce_ms=60000), state), caller)
    assert caller.played()[:5] == ['queue_position', 'number/2', 'queue_wait', 'number/3', 'minutes']
    assert caller.played().count('queue_position') == 2


def test_wrapup_keeps_a_member_from_the_next_call():
    state = queue_flows.QueueState()
    queue = spec(members=[('210', 0)], wrapup_ms=30000)
    first = QueueCaller(members={'210': ('ended', 200)})
    run(flow(first, queue, state), first)
    second = QueueCaller(members={'210': ('ended', 200)})
    second.now = first.now
    run(flow(second, queue, state), second)
    offered = [i for i, s in enumerate(second.steps) if isinstance(s, Bridge)][0]
    waited = sum(s.ms for s in second.steps[:offered] if isinstance(s, Hold))
    assert 29000 <= waited <= 31000


def test_strategies_order_the_free_members():
    state = queue_flows.QueueState()
    members = [('210', 0), ('211', 0), ('212', 0), ('213', 1)]
    assert state.free(spec(members=members, strategy='sequential'), 0) == ['210', '211', '212', '213']
    state.last_taken = '211'
    assert state.free(spec(members=members, strategy='round_robin'), 0) == ['212', '210', '211', '213']
    state.idle_since = {'210': 50.0, '211': 10.0}
    assert state.free(spec(members=members, strategy='longest_idle'), 100) == ['212', '211', '210', '213']
    state.busy.add('212')
    assert state.free(spec(members=members, strategy='longest_idle'), 100) == ['211', '210', '213']


def test_a_waiting_caller_sees_members_log_in_and_out():
    """The members who take calls are read again while a caller waits (at most every REFRESH_S): one who
    logs in is offered the caller already waiting, one who logged out is no longer rung."""
    caller = QueueCaller(members={'211': ('ended', 200)})
    # Nobody logged in for the first 3 s, then 210 (who does not answer) and 211; from 20 s on 210 is out.

    def members(now):
        return [] if now < 1003 else ([('210', 0), ('211', 0)] if now < 1020 else [('211', 0)])
    asked = []

    def current():
        asked.append(caller.now)
        return spec(members=members(caller.now), logged_in=bool(members(caller.now)))
    queue = spec(members=[], logged_in=False, max_wait_ms=60000)
    caller.members['210'] = ('timeout', 408)
    run(queue_flows.wait_in_queue(queue, queue_flows.QueueState(), caller.clock, current=current), caller)
    assert member_calls(caller) == ['210', '211']
    first = [s for s in caller.steps if isinstance(s, Bridge)][0]
    assert first.ring_ms == 15000
    assert [s for s in caller.steps if isinstance(s, Hold)][:3] == [Hold(['music'], 1000)] * 3  # the wait before 1003
    assert all(b - a >= queue_flows.REFRESH_S for a, b in zip(asked, asked[1:]))
    assert isinstance(caller.steps[-2], Talk)


def test_a_member_who_logs_out_while_a_caller_waits_is_not_rung_again():
    caller = QueueCaller()   # nobody answers
    state = queue_flows.QueueState()

    def members(now):
        return [('210', 0), ('211', 0)] if now < 1020 else [('211', 0)]

    def current():
        return spec(members=members(caller.now), member_ring_ms=5000, max_wait_ms=60000)
    queue = spec(members=members(1000), member_ring_ms=5000, max_wait_ms=60000, overflow=None)
    run(queue_flows.wait_in_queue(queue, state, caller.clock, current=current), caller)
    times, now = [], 1000.0
    for step in caller.steps:
        if isinstance(step, Bridge) and step.origin.endswith('to=member'):
            times.append((step.user, now))
        now += (step.ms if isinstance(step, Hold) else step.ring_ms if isinstance(step, Bridge) else 0) / 1000.0
    assert ('210', 1000.0) in times and ('210', 1011.0) in times
    assert all(user == '211' for user, at in times if at >= 1021)   # read again within a second of the logout
    assert any(user == '211' for user, at in times if at >= 1021)
