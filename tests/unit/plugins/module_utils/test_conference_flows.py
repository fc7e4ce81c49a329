# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Conference rooms (conference_flows.py): a caller's way in, driven by a scripted caller, and the
room's rules (who hears whom, music, the end with the moderator), without PJSIP."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from media_helpers import Caller, run
from ansible_collections.voxplane.pbx.plugins.module_utils import conference_flows, rules
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import Conference, Hangup, StepResult


def room(pin='1234', moderator_pin='9876', **flags):
    return conference_flows.RoomSpec('acme', '650', rules.conference_pin_hash('acme', '650', pin) if pin else None,
                                     rules.conference_pin_hash('acme', '650', moderator_pin) if moderator_pin else None,
                                     **flags)


class _RoomCaller(Caller):
    """A scripted caller whose Conference step ends as ``conference`` says."""

    def __init__(self, conference='hangup', **kwargs):
        super(_RoomCaller, self).__init__(**kwargs)
        self.conference = conference

    def answer(self, step):
        if isinstance(step, Conference):
            self.steps.append(step)
            self.gone = self.conference == 'hangup'
            return StepResult(end=self.conference, hung_up=self.gone)
        return super(_RoomCaller, self).answer(step)


def joined(caller):
    steps = [s for s in caller.steps if isinstance(s, Conference)]
    return [(s.moderator, s.muted) for s in steps]


def test_the_pin_makes_a_participant_and_the_moderator_pin_a_moderator():
    assert joined(run(conference_flows.enter(room()), _RoomCaller(keys=['1234']))) == [(False, False)]
    assert joined(run(conference_flows.enter(room()), _RoomCaller(keys=['9876']))) == [(True, False)]


def test_participants_join_muted_when_the_room_says_so_moderators_never():
    spec = room(mute_on_entry=True)
    assert joined(run(conference_flows.enter(spec), _RoomCaller(keys=['1234']))) == [(False, True)]
    assert joined(run(conference_flows.enter(spec), _RoomCaller(keys=['9876']))) == [(True, False)]


def test_three_wrong_pins_end_the_call():
    caller = run(conference_flows.enter(room()), _RoomCaller(keys=['1111', '', 'timeout']))
    assert joined(caller) == [] and caller.played().count('invalid_pin') == 3 and caller.hangup() == Hangup()


def test_a_wrong_pin_then_the_right_one():
    caller = run(conference_flows.enter(room()), _RoomCaller(keys=['1111', '1234']))
    assert caller.played() == ['conference_pin', 'invalid_pin', 'conference_pin'] and joined(caller) == [(False, False)]


def test_a_room_without_pins_lets_everybody_in_at_once():
    caller = run(conference_flows.enter(room(pin=None, moderator_pin=None)), _RoomCaller())
    assert caller.played() == [] and joined(caller) == [(False, False)]


def test_with_only_a_moderator_pin_an_empty_entry_is_a_participant():
    spec = room(pin=None)
    assert joined(run(conference_flows.enter(spec), _RoomCaller(keys=['']))) == [(False, False)]
    assert joined(run(conference_flows.enter(spec), _RoomCaller(keys=['9876']))) == [(True, False)]
    assert joined(run(conference_flows.enter(spec), _RoomCaller(keys=['1234', '', '']))) == [(False, False)]


def test_a_full_room_and_an_ended_room_are_said_and_hung_up():
    caller = run(conference_flows.enter(room(pin=None, moderator_pin=None)), _RoomCaller(conference='full'))
    assert caller.played() == ['conference_full', 'goodbye'] and caller.hangup() == Hangup()
    caller = run(conference_flows.enter(room(pin=None, moderator_pin=None)), _RoomCaller(conference='ended'))
    assert caller.played() == ['conference_ended', 'goodbye'] and caller.hangup() == Hangup()


def test_everybody_hears_everybody_else_and_not_itself():
    state = conference_flows.RoomState(room())
    for member in 'abc':
        assert state.join(member)
    assert state.links() == {('a', 'b'), ('a', 'c'), ('b', 'a'), ('b', 'c'), ('c', 'a'), ('c', 'b')}
    assert state.music() == set()


def test_a_caller_alone_in_the_room_hears_music():
    state = conference_flows.RoomState(room())
    state.join('a')
    assert state.music() == {'a'}
    state.join('b')
    assert state.music() == set()


def test_a_muted_member_hears_and_is_not_heard():
    state = conference_flows.RoomState(room())
    state.join('a')
    state.join('b', muted=True)
    assert state.links() == {('a', 'b')}


def test_music_until_the_moderator_joins_then_the_room_talks():
    state = conference_flows.RoomState(room(wait_for_moderator=True))
    state.join('a')
    state.join('b')
    assert state.links() == set() and state.music() == {'a', 'b'}
    state.join('m', moderator=True)
    assert state.music() == set() and ('a', 'b') in state.links() and ('m', 'a') in state.links()


def test_the_room_ends_with_its_last_moderator_when_it_says_so():
    state = conference_flows.RoomState(room(end_with_moderator=True))
    state.join('m1', moderator=True)
    state.join('m2', moderator=True)
    state.join('a')
    assert state.leave('m1') == []
    assert state.leave('m2') == ['a'] and state.ended and not state.join('b')
    state = conference_flows.RoomState(room())
    state.join('m1', moderator=True)
    state.join('a')
    assert state.leave('m1') == [] and not state.ended


def test_max_participants():
    state = conference_flows.RoomState(room(max_participants=2))
    assert state.join('a') and state.join('b') and not state.join('c')
    state.leave('a')
    assert state.join('c')


def test_join_and_leave_tones_go_to_the_others_when_the_room_says_so():
    state = conference_flows.RoomState(room(announce_join_leave=True))
    state.join('a')
    state.join('b')
    assert state.announce_to('b') == {'a'}
    assert conference_flows.RoomState(room()).announce_to('a') == set()


# ---------------------------------------------------------------------------- rooms across workers
def join(rooms, member, worker, moderator=False, muted=False, **rules):
    rules.setdefault('max_participants', 10)
    return rooms.handle({'t': 'join', 'key': 'acme/650', 'tenant': 'acme', 'number': '650', 'member': member,
                         'worker': worker, 'bus': ['127.0.0.1', worker + 1000], 'moderator': moderator, 'muted': muted,
                         'rules': rules})


def test_a_room_spans_workers_each_is_told_the_whole_table():
    rooms = conference_flows.Rooms()
    assert join(rooms, 'a', 1)[0] == (1, {'t': 'joined', 'key': 'acme/650', 'member': 'a', 'ok': True, 'count': 1})
    replies = join(rooms, 'b', 2)
    assert replies[0][1]['ok'] and replies[0][1]['count'] == 2
    tables = dict(replies[1:])
    assert sorted(tables) == [1, 2]
    table = tables[2]
    assert table['members'] == [['a', 1, ['127.0.0.1', 1001], False, False], ['b', 2, ['127.0.0.1', 1002], False, False]]
    assert table['sources'] == ['a', 'b'] and table['music'] == [] and table['ended'] == []


def test_the_room_is_full_across_workers_and_a_member_id_joins_once():
    rooms = conference_flows.Rooms()
    for index, member in enumerate('abc'):
        join(rooms, member, index, max_participants=3)
    refused = join(rooms, 'd', 5, max_participants=3)
    assert refused == [(5, {'t': 'joined', 'key': 'acme/650', 'member': 'd', 'ok': False, 'count': 3})]
    assert join(rooms, 'a', 1, max_participants=4)[0][1]['ok'] is False


def test_the_last_moderator_leaving_ends_the_room_on_every_worker():
    rooms = conference_flows.Rooms()
    join(rooms, 'm', 1, moderator=True, end_with_moderator=True)
    join(rooms, 'p', 2, end_with_moderator=True)
    join(rooms, 'q', 3, end_with_moderator=True)
    replies = rooms.handle({'t': 'leave', 'key': 'acme/650', 'member': 'm'})
    assert sorted(w for w, _m in replies) == [1, 2, 3]
    assert all(m['ended'] == ['p', 'q'] and m['members'] == [] for _w, m in replies)
    assert rooms.rooms == {} and rooms.where == {}


def test_tones_and_music_and_the_muted_across_workers():
    rooms = conference_flows.Rooms()
    first = join(rooms, 'a', 1, announce_join_leave=True)
    assert first[1][1]['music'] == ['a'] and first[1][1]['tone'] is None
    replies = join(rooms, 'b', 2, muted=True, announce_join_leave=True)
    table = replies[1][1]
    assert table['tone'] == ['joined', ['a']] and table['sources'] == ['a'] and table['music'] == []
    left = rooms.handle({'t': 'leave', 'key': 'acme/650', 'member': 'a'})
    assert [w for w, _m in left] == [1, 2] and left[0][1]['tone'] == ['left', ['b']]


def test_a_worker_that_ended_takes_its_members_out_and_the_others_are_told():
    rooms = conference_flows.Rooms()
    join(rooms, 'a', 1)
    join(rooms, 'b', 2)
    join(rooms, 'c', 2)
    replies = rooms.worker_gone(2)
    assert replies and all(w == 1 for w, _m in replies)
    assert replies[-1][1]['members'] == [['a', 1, ['127.0.0.1', 1001], False, False]]
    assert rooms.handle({'t': 'nonsense'}) == []
