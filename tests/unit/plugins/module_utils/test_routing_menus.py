# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The routing core's half of issue 22 (docs/media.md, "Menus, queues and conference rooms: the contract";
docs/routing.md): calls to IVR menus, queues and conference rooms go to the PBX's media service with
X-Voxplane-Media; schedules choose open or closed by the clock and the remembered decisions never outlive an
opening or closing time; the calls the media service places (X-Voxplane-Origin, route_from_media); the
feature codes *44/*45 through phone_settings. A real SQLite directory written through the store and
reconcile engine, the seeds' "Zentrale: 1 Vertrieb, 2 Support, 0 Empfang" with business hours."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import zoneinfo

import pytest

from directory_helpers import Harness, account, extension, tenant_request
from ansible_collections.voxplane.pbx.plugins.module_utils import phone_settings, snapshot
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    ANNOUNCEMENT, CONFERENCE, EXTENSION, GROUP, IVR, NUMBER, QUEUE, SCHEDULE,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import (
    ANONYMOUS_URI, MEDIA_HEADER, Decisions, PhoneSetting, Reject, Relay, Ring, ScheduleNote, after_failure, after_reply,
    is_member_ring, legs, media_caller, origin_request, parse_origin, route_from_account, route_from_media, route_inbound,
    schedule_choice,
)

DOMAIN = 'zentrale.voxplane.example'
TRUNK = '192.0.2.77'
MEDIA = 'sip:127.0.0.5:5090'
OWN_SERVER = 'sip:192.0.2.50:5060'
MAIN, HEAD, SUPPORT, TEAM, MENU = '+49301234500', '+49301234501', '+49301234502', '+49301234503', '+49301234504'
AUDIO = b'RIFF....WAVEfmt '
BERLIN = zoneinfo.ZoneInfo('Europe/Berlin')


def at(text, zone=BERLIN):
    """Epoch seconds of a wall-clock time in Berlin (2026-03-02 is a Monday)."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


MONDAY_10 = at('2026-03-02T10:00')
MONDAY_20 = at('2026-03-02T20:00')
CHRISTMAS = at('2026-12-25T10:00')        # a Friday, a holiday


def build(path, **tenant):
    harness = Harness(path)
    request = tenant_request(domain=DOMAIN, smart=10, best=1, main_number=MAIN,
                             trunks=[{'name': 'carrier', 'addresses': [TRUNK]}], **tenant)
    request['licences']['addons'].update(ivr=2, conference=1)
    harness.apply('acme', request)
    with harness.directory.transaction() as txn:
        digest = txn.put_audio('acme', AUDIO, 1500)
    harness.apply('acme', None, {
        EXTENSION: {
            '10': extension(account('empfang.desk'), name='Empfang', voicemail={'enabled': True}),
            '11': extension(account('anna.desk'), account('anna.app', kind='softclient'), name='Anna', seat='best'),
            '12': extension(account('ben.desk'), name='Ben', dnd=True),
            '13': extension(account('cora.desk'), name='Cora', forwarding={'unconditional': '10'}),
            '14': extension(name='Dora'),
        },
        ANNOUNCEMENT: {'closed': {'audio': digest, 'duration_ms': 1500, 'then': 'voicemail:10'}},
        NUMBER: {MAIN: {}},
    })
    harness.apply('acme', None, {
        GROUP: {'20': {'name': 'Vertrieb', 'members': ['11', '12']}},
        QUEUE: {'600': {'name': 'Support', 'members': [{'extension': '11'}, {'extension': '12'},
                                                       {'extension': '13', 'logged_in': False}],
                        'max_wait': 120, 'overflow': 'voicemail:10', 'member_ring_time': 12},
                '610': {'name': 'Backoffice', 'members': [{'extension': '11'}]}},
        CONFERENCE: {'650': {'name': 'Team', 'pin': '4711'}},
        IVR: {'700': {'name': 'Zentrale', 'keys': {'1': '20', '2': '600', '0': '10'}, 'invalid': '10',
                      'no_input': 'voicemail:10'}},
        SCHEDULE: {'hours': {'hours': [{'days': ['mon', 'tue', 'wed', 'thu', 'fri'], 'from': '08:00', 'to': '18:00'}],
                             'holidays': ['2026-12-25'], 'open': '700', 'closed': 'announcement:closed'},
                   'nyc': {'timezone': 'America/New_York', 'hours': [{'days': ['mon'], 'from': '09:00', 'to': '17:00'}],
                           'open': '11', 'closed': '10'},
                   'ping': {'open': 'schedule:pong', 'closed': 'schedule:pong'},
                   'pong': {'open': 'schedule:ping', 'closed': 'schedule:ping'}},
    })
    harness.apply('acme', None, {
        NUMBER: {HEAD: {'target': 'schedule:hours'}, SUPPORT: {'target': '600'}, TEAM: {'target': '650'},
                 MENU: {'target': '700'}},
    })
    return harness


def snap_of(harness, media_service=MEDIA):
    with harness.directory.transaction(write=False) as txn:
        return snapshot.load(txn, (), None, media_service)


@pytest.fixture(scope='module')
def directory(tmp_path_factory):
    return build(tmp_path_factory.mktemp('menus') / 'directory.db')


@pytest.fixture(scope='module')
def snap(directory):
    return snap_of(directory)


def media_leg(plan, user, header, destination=MEDIA):
    assert isinstance(plan, Relay), plan
    assert plan.uri == 'sip:%s@%s' % (user, DOMAIN) and plan.destination == destination, plan
    assert plan.headers == {MEDIA_HEADER: header}, plan.headers
    return plan


def inbound(snap, number, now=MONDAY_10):
    return route_inbound(snap, number, TRUNK, now)


def aors(*users):
    return tuple('%s@%s' % (user, DOMAIN) for user in users)


# Menus, queues and rooms go to the media service ----------------------------------------------------------------

@pytest.mark.parametrize('number, user, header', [
    (MENU, '700', 'ivr;number=700'), (SUPPORT, '600', 'queue;number=600'), (TEAM, '650', 'conference;number=650'),
])
def test_a_number_to_a_menu_queue_or_room_reaches_the_media_service_with_the_header(snap, number, user, header):
    plan = media_leg(inbound(snap, number), user, header)
    assert plan.context is None and plan.identity is None and plan.diversion == () and plan.charge is None


def test_an_internal_call_to_a_queue_presents_the_caller(snap):
    plan = media_leg(route_from_account(snap, DOMAIN, 'anna.desk', '600', MONDAY_10), '600', 'queue;number=600')
    assert plan.identity == '"Anna" <sip:11@%s>' % DOMAIN


def test_a_tenants_own_media_server_never_takes_a_menu(tmp_path):
    snap = snap_of(build(tmp_path / 'directory.db', media_server=OWN_SERVER))
    media_leg(inbound(snap, MENU), '700', 'ivr;number=700')


def test_without_a_media_service_a_menu_is_480(directory):
    snap = snap_of(directory, media_service=None)
    plan = inbound(snap, MENU)
    assert isinstance(plan, Reject) and (plan.code, plan.reason) == (480, 'Temporarily Unavailable')
    assert route_from_account(snap, DOMAIN, 'anna.desk', '650', MONDAY_10).code == 480


def test_a_forward_to_a_queue_carries_its_diversion(directory):
    directory.apply('acme', None, {EXTENSION: {'14': {'forwarding': {'unconditional': '600'}}}})
    try:
        plan = media_leg(route_from_account(snap_of(directory), DOMAIN, 'anna.desk', '14', MONDAY_10), '600',
                         'queue;number=600')
        assert plan.diversion == ('<sip:14@%s>;reason=unconditional' % DOMAIN,)
    finally:
        directory.apply('acme', None, {EXTENSION: {'14': {'forwarding': {'unconditional': ''}}}})


# Schedules -------------------------------------------------------------------------------------------------------

def test_a_schedule_leads_to_its_open_destination_in_business_hours(snap):
    plan = media_leg(inbound(snap, HEAD, MONDAY_10), '700', 'ivr;number=700')
    note, = plan.notes
    assert isinstance(note, ScheduleNote) and (note.name, note.open, note.destination) == ('hours', True, '700')
    assert plan.diversion == ()                  # a schedule adds no Diversion of its own


@pytest.mark.parametrize('moment', [MONDAY_20, CHRISTMAS, at('2026-03-07T10:00'), at('2026-03-02T07:59:59'),
                                    at('2026-03-02T18:00')])
def test_a_schedule_is_closed_out_of_hours_on_weekends_and_holidays(snap, moment):
    plan = media_leg(inbound(snap, HEAD, moment), 'closed', 'announcement;name=closed;then=yes')
    assert plan.notes[0].open is False and plan.notes[0].destination == 'announcement:closed'
    # after the announcement the call goes on to the box, as dialled there
    media_leg(after_failure(snap, plan.context, 'no_answer', moment), '10', 'voicemail;mailbox=10;reason=unconditional')


def test_a_schedule_has_a_time_zone_of_its_own(snap):
    tenant = snap.tenants['acme']
    nyc = tenant.schedules['nyc']
    assert nyc.is_open(at('2026-03-02T15:00')) is True       # 09:00 in New York
    assert nyc.is_open(at('2026-03-02T14:59')) is False
    assert tenant.schedules['hours'].timezone == 'Europe/Berlin'   # none of its own: the tenant's


def test_schedules_that_lead_to_each_other_end_as_forwards_do(snap):
    assert route_from_account(snap, DOMAIN, 'anna.desk', '11', MONDAY_10).__class__ is Ring
    tenant = snap.tenants['acme']
    from ansible_collections.voxplane.pbx.plugins.module_utils.routing import Context, _service
    assert _service(snap, tenant, Context('acme', 'x'), ('schedule', 'ping'), MONDAY_10, 'unconditional', None) is None


def test_the_way_not_taken_is_what_the_pictures_draw(snap):
    plan = inbound(snap, HEAD, MONDAY_10)
    other = schedule_choice(snap, plan.notes[0], False, MONDAY_10)
    media_leg(other, 'closed', 'announcement;name=closed;then=yes')


def test_remembered_decisions_never_outlive_an_opening_or_closing_time(snap):
    decisions = Decisions()
    before = decisions.inbound(snap, HEAD, TRUNK, at('2026-03-02T17:59:59'))
    assert routing_user(before) == '700'
    assert snap.stable_period(at('2026-03-02T17:59:59'))[1] == at('2026-03-02T18:00')
    after = decisions.inbound(snap, HEAD, TRUNK, at('2026-03-02T18:00:01'))
    assert routing_user(after) == 'closed'
    assert routing_user(decisions.inbound(snap, HEAD, TRUNK, at('2026-03-03T08:00'))) == '700'


def routing_user(answer):
    return answer[0].plan.uri.split(':', 1)[1].split('@', 1)[0]


def test_the_stable_period_follows_every_clock(snap):
    # Berlin opens at 08:00; New York's 09:00 is 15:00 in Berlin (six hours apart until 8 March)
    assert snap.stable_period(MONDAY_10) == (at('2026-03-02T08:00'), at('2026-03-02T15:00'))
    # a snapshot without schedules and porting numbers: no end
    assert snapshot.Snapshot().stable_period(MONDAY_10) == (float('-inf'), float('inf'))


def test_a_change_of_summer_time_ends_a_stable_period():
    # 29 March 2026: Berlin's clocks go from 02:00 to 03:00 at 01:00 UTC; a schedule opening at 02:30 (a time
    # that day does not have) opens with the jump.
    utc = datetime.timezone.utc
    jump = datetime.datetime(2026, 3, 29, 1, 0, tzinfo=utc).timestamp()
    start, end = snapshot.clock_period(BERLIN, (0, 150), jump - 1800)
    assert end == jump and at('2026-03-29T00:00') <= start <= jump - 1800
    start, end = snapshot.clock_period(BERLIN, (0, 150), jump + 60)
    assert start == jump
    # 25 October 2026: 03:00 back to 02:00 at 01:00 UTC; 02:30 comes twice, both are moments
    first = datetime.datetime(2026, 10, 25, 0, 30, tzinfo=utc).timestamp()
    second = datetime.datetime(2026, 10, 25, 1, 30, tzinfo=utc).timestamp()
    assert snapshot.clock_period(BERLIN, (0, 150), first + 60)[0] == first
    assert snapshot.clock_period(BERLIN, (0, 150), second + 60)[0] == second
    back = datetime.datetime(2026, 10, 25, 1, 0, tzinfo=utc).timestamp()
    assert snapshot.clock_period(BERLIN, (0, 150), second - 60) == (back, second)


# Calls the media service places (X-Voxplane-Origin) ---------------------------------------------------------------

CALLER = '<sip:+4989123456@%s>' % DOMAIN


def from_media(snap, user, origin, now=MONDAY_10, caller=CALLER):
    return route_from_media(snap, DOMAIN, user, origin, caller, now)


def test_the_origin_header_and_what_the_service_asks_for_a_destination():
    assert parse_origin('ivr;number=700;to=target') == ('ivr', '700', 'target')
    assert parse_origin(' Queue ; to=member ; number=600 ') == ('queue', '600', 'member')
    for bad in (None, '', 'ivr', 'ivr;number=700', 'group;number=20;to=target', 'ivr;number=700;to=mobile'):
        assert parse_origin(bad) is None, bad
    assert [origin_request(dest) for dest in ('20', '+4940123', 'voicemail:10', 'voicemail-menu', 'announcement:closed',
                                              'schedule:hours')] == [
        ('target', '20'), ('target', '+4940123'), ('voicemail', '10'), ('voicemail-menu', 'voicemail-menu'),
        ('announcement', 'closed'), ('schedule', 'hours')]


def test_a_menus_choice_of_a_group_rings_it_by_its_strategy_as_the_caller(snap):
    plan = from_media(snap, '20', 'ivr;number=700;to=target')
    assert isinstance(plan, Ring) and plan.aors == aors('anna.desk', 'anna.app')   # Ben is on DND
    assert plan.identity is None and plan.diversion == () and plan.origin == CALLER
    assert not is_member_ring(plan.context)
    # nobody answers: the group's own failure handling (no fallback: 480)
    assert after_reply(snap, plan.context, 'no_answer', MONDAY_10).code == 480


def test_a_choice_of_an_extension_follows_its_forwards(snap):
    plan = from_media(snap, '13', 'ivr;number=700;to=target')               # Cora forwards everything to 10
    assert isinstance(plan, Ring) and plan.aors == aors('empfang.desk')
    assert plan.diversion == ('<sip:13@%s>;reason=unconditional' % DOMAIN,)
    dnd = from_media(snap, '12', 'ivr;number=700;to=target')                # Ben: DND, no voicemail
    assert isinstance(dnd, Reject) and dnd.code == 486


def test_an_outside_choice_needs_the_tenants_permission_and_counts_against_the_tenant(directory, snap):
    plan = from_media(snap, '0401234567', 'queue;number=600;to=target')
    assert isinstance(plan, Relay) and plan.uri == 'sip:+49401234567@%s:5060' % TRUNK
    assert plan.charge == ('acme', None) and plan.identity == '<sip:%s@%s>' % (MAIN, DOMAIN)
    assert plan.forwarded_by == DOMAIN and plan.origin == CALLER           # From: the caller, PAI: who pays
    refused = from_media(snap, '00881612345678', 'ivr;number=700;to=target')
    assert isinstance(refused, Reject) and (refused.code, refused.reason) == (403, 'Satellite calls not permitted')
    directory.apply('acme', {'international_calls': False})
    try:
        plan = from_media(snap_of(directory), '+41441234567', 'ivr;number=700;to=target')
        assert isinstance(plan, Reject) and (plan.code, plan.reason) == (403, 'International calls not permitted')
    finally:
        directory.apply('acme', {'international_calls': True})


def test_a_choice_of_another_menu_or_the_same_one(snap):
    media_leg(from_media(snap, '650', 'ivr;number=700;to=target'), '650', 'conference;number=650')
    loop = from_media(snap, '700', 'ivr;number=700;to=target')
    assert isinstance(loop, Reject) and (loop.code, loop.reason) == (482, 'Loop Detected')
    assert from_media(snap, '99', 'ivr;number=700;to=target').code == 404


def test_a_queue_member_rings_alone_and_its_answer_goes_back(snap):
    plan = from_media(snap, '11', 'queue;number=600;to=member')
    assert isinstance(plan, Ring) and plan.aors == aors('anna.desk', 'anna.app') and plan.mobile is None
    assert plan.ring_time == 12 and is_member_ring(plan.context) and plan.identity is None
    assert after_reply(snap, plan.context, 'busy', MONDAY_10) is None          # 486 goes back as it is
    assert after_reply(snap, plan.context, 'no_answer', MONDAY_10) is None
    # nothing registered: 480, no forward, no voicemail
    assert [getattr(leg.plan, 'code', None) for leg in legs(snap, plan, MONDAY_10)] == [None, 480]


def test_a_member_forwarding_everything_still_rings_itself(snap):
    plan = from_media(snap, '13', 'queue;number=600;to=member')
    assert isinstance(plan, Ring) and plan.aors == aors('cora.desk') and plan.diversion == ()


@pytest.mark.parametrize('user, origin, code, reason', [
    ('12', 'queue;number=600;to=member', 486, 'Do Not Disturb'),
    ('10', 'queue;number=600;to=member', 403, 'Not a member of queue 600'),
    ('11', 'ivr;number=700;to=member', 403, 'Only a queue rings its members'),
    ('20', 'queue;number=600;to=member', 404, 'No such extension'),
    ('14', 'queue;number=610;to=member', 403, 'Not a member of queue 610'),
    ('11', 'queue;number=700;to=member', 404, 'No queue 700'),
    ('11', 'ivr;number=701;to=target', 404, 'No ivr 701'),
    ('11', 'queue;number=600;to=everyone', 400, None),
    ('11', '', 400, None),
    ('%zz', 'ivr;number=700;to=target', 400, 'Bad Request: malformed escape in the Request-URI user'),
    ('11', 'queue;number=600;to=voicemail', 404, 'No voicemail box 11'),
    ('nope', 'ivr;number=700;to=announcement', 404, 'No announcement nope'),
    ('nope', 'ivr;number=700;to=schedule', 404, 'No schedule nope'),
    ('10', 'ivr;number=700;to=voicemail-menu', 404, 'No such service 10'),
])
def test_what_the_router_refuses_the_media_service(snap, user, origin, code, reason):
    plan = from_media(snap, user, origin)
    assert isinstance(plan, Reject) and plan.code == code and (reason is None or plan.reason == reason), plan


def test_an_unknown_domain_is_404(snap):
    assert route_from_media(snap, 'nowhere.example', '11', 'ivr;number=700;to=target', CALLER, MONDAY_10).code == 404


def test_the_pbxs_own_destinations_from_a_menu_or_queue(snap):
    box = media_leg(from_media(snap, '10', 'queue;number=600;to=voicemail'), '10',
                    'voicemail;mailbox=10;reason=unconditional')
    assert box.origin == CALLER
    media_leg(from_media(snap, 'voicemail-menu', 'ivr;number=700;to=voicemail-menu'), 'voicemail-menu', 'mailbox;pin=yes')
    played = media_leg(from_media(snap, 'closed', 'ivr;number=700;to=announcement'), 'closed',
                       'announcement;name=closed;then=yes')
    media_leg(after_failure(snap, played.context, 'no_answer', MONDAY_10), '10', 'voicemail;mailbox=10;reason=unconditional')
    media_leg(from_media(snap, 'hours', 'ivr;number=700;to=schedule', now=MONDAY_20), 'closed',
              'announcement;name=closed;then=yes')
    # open: the menu again, placed as a new call to the media service
    media_leg(from_media(snap, 'hours', 'queue;number=600;to=schedule'), '700', 'ivr;number=700')


@pytest.mark.parametrize('identity, privacy, shown', [
    ('<sip:+4989123456@carrier.example>', None, '<sip:+4989123456@%s>' % DOMAIN),
    ('"Ext" <sip:089123456@carrier.example;user=phone>', None, '<sip:+4989123456@%s>' % DOMAIN),
    ('"Anna" <sip:11@%s>' % DOMAIN, None, '<sip:%s@%s>' % (MAIN, DOMAIN)),    # no number of her own: the main one
    ('<sip:+4989123456@carrier.example>', 'id', ANONYMOUS_URI),
    ('"Anonymous" <sip:anonymous@anonymous.invalid>', None, ANONYMOUS_URI),
    (None, None, ANONYMOUS_URI),
    ('<sip:700@%s>' % DOMAIN, None, ANONYMOUS_URI),
])
def test_the_original_caller_of_a_media_call_never_shows_an_internal_identity(snap, identity, privacy, shown):
    assert media_caller(snap, DOMAIN, identity, privacy) == shown


# Feature codes *44 / *45 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('user, dialled, keys, ask, done', [
    ('anna.desk', '*44600', ('600',), {'logged_in': True}, 'Logged In To Queue 600'),
    ('anna.app', '*45600#', ('600',), {'logged_in': False}, 'Logged Out Of Queue 600'),
    ('anna.desk', '*45', ('600', '610'), {'logged_in': False}, 'Logged Out Of Queues 600, 610'),
    ('cora.desk', '*44', ('600',), {'logged_in': True}, 'Logged In To Queue 600'),
])
def test_queue_codes_are_settings_of_the_queues(snap, user, dialled, keys, ask, done):
    setting = route_from_account(snap, DOMAIN, user, dialled, MONDAY_10)
    assert isinstance(setting, PhoneSetting) and setting.kind == QUEUE and setting.keys == keys
    assert setting.request == ask and setting.done == done


@pytest.mark.parametrize('user, dialled, code, reason', [
    ('empfang.desk', '*44600', 403, 'Not a member of queue 600'),
    ('empfang.desk', '*44', 404, 'Not a member of any queue'),
    ('anna.desk', '*44601', 404, 'No queue 601'),
    ('anna.desk', '*44700', 404, 'No queue 700'),
])
def test_queue_codes_refused(snap, user, dialled, code, reason):
    plan = route_from_account(snap, DOMAIN, user, dialled, MONDAY_10)
    assert isinstance(plan, Reject) and (plan.code, plan.reason) == (code, reason)


def test_a_queue_code_writes_the_members_login_and_keeps_the_rest(tmp_path):
    harness = build(tmp_path / 'directory.db')
    snap = snap_of(harness)
    generation = harness.generation()
    outcome = phone_settings.apply(harness.directory, route_from_account(snap, DOMAIN, 'cora.desk', '*44600', MONDAY_10))
    assert (outcome.code, outcome.reason, outcome.changed) == (603, 'Logged In To Queue 600', True)
    assert outcome.generation == generation + 1
    members = harness.load('acme').get(QUEUE, '600')['members']
    assert [(m['extension'], m['logged_in']) for m in members] == [('11', True), ('12', True), ('13', True)]
    again = phone_settings.apply(harness.directory, route_from_account(snap, DOMAIN, 'cora.desk', '*44600', MONDAY_10))
    assert again.code == 603 and not again.changed and harness.generation() == generation + 1
    outcome = phone_settings.apply(harness.directory, route_from_account(snap, DOMAIN, 'anna.desk', '*45', MONDAY_10))
    assert outcome.reason == 'Logged Out Of Queues 600, 610'
    state = harness.load('acme')
    assert [m['logged_in'] for m in state.get(QUEUE, '600')['members']] == [False, True, True]
    assert state.get(QUEUE, '610')['members'] == [{'extension': '11', 'penalty': 0, 'logged_in': False}]
    # the next snapshot knows it (the router reloads on the generation)
    with harness.directory.transaction(write=False) as txn:
        fresh = snapshot.load(txn, (), snap, MEDIA)
    assert fresh.tenants['acme'].targets['600'].members[0] == ('11', 0, False)


def test_a_queue_code_after_the_queue_changed_behind_the_snapshot(tmp_path):
    harness = build(tmp_path / 'directory.db')
    setting = route_from_account(snap_of(harness), DOMAIN, 'cora.desk', '*44600', MONDAY_10)
    harness.apply('acme', None, {QUEUE: {'600': {'members': [{'extension': '11'}]}}})
    generation = harness.generation()
    outcome = phone_settings.apply(harness.directory, setting)
    assert (outcome.code, outcome.reason) == (403, 'Not a member of queue 600') and harness.generation() == generation
