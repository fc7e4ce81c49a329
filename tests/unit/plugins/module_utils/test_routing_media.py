# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The routing core's legs to the media service (docs/media.md): the owner's mailbox with *86,
another extension's box, the voicemail access menu and announcements as destinations of
numbers, forwards and a group's fallback, and the call going on after an announcement that
leads somewhere. A real SQLite directory written through the store and reconcile engine."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from directory_helpers import Harness, account, extension, tenant_request
from ansible_collections.voxplane.pbx.plugins.module_utils import snapshot
from ansible_collections.voxplane.pbx.plugins.module_utils.model import ANNOUNCEMENT, EXTENSION, GROUP, NUMBER
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import (
    MEDIA_HEADER, Reject, Relay, Ring, after_failure, route_from_account, route_inbound,
)

DOMAIN = 'media.voxplane.example'
TRUNK = '192.0.2.77'
MEDIA = 'sip:127.0.0.5:5090'
OWN_SERVER = 'sip:192.0.2.50:5060'
NOW = 1800000000.0
CLOSED, MENU, BOX_21, GROUP_NUMBER, LOOPING = '+4930555100', '+4930555101', '+4930555102', '+4930555103', '+4930555104'
AUDIO = b'RIFF....WAVEfmt '  # any bytes: the router never reads them


def build(path, **tenant):
    harness = Harness(path)
    harness.apply('acme', tenant_request(domain=DOMAIN, smart=10, best=0, trunks=[{'name': 'carrier', 'addresses': [TRUNK]}],
                                         **tenant))
    with harness.directory.transaction() as txn:
        digest = txn.put_audio('acme', AUDIO, 1500)
    harness.apply('acme', None, {
        EXTENSION: {
            '21': extension(account('anna.desk'), voicemail={'enabled': True, 'pin': '4711'}),
            '22': extension(account('bert.desk')),
            '23': extension(account('cora.desk'), forwarding={'no_answer': 'voicemail:21'}),
        },
        ANNOUNCEMENT: {
            'closed': {'audio': digest, 'duration_ms': 1500, 'then': 'voicemail:21'},
            'bye': {'audio': digest, 'duration_ms': 1500},
            'first': {'audio': digest, 'duration_ms': 1500, 'then': 'announcement:second'},
            'second': {'audio': digest, 'duration_ms': 1500, 'then': 'announcement:first'},
        },
    })
    harness.apply('acme', None, {
        GROUP: {'50': {'name': 'Sales', 'members': ['22'], 'fallback': 'announcement:bye'}},
        NUMBER: {CLOSED: {'target': 'announcement:closed'}, MENU: {'target': 'voicemail-menu'},
                 BOX_21: {'target': 'voicemail:21'}, GROUP_NUMBER: {'target': '50'},
                 LOOPING: {'target': 'announcement:first'}},
    })
    return harness


def snap_of(harness, media_service=MEDIA):
    with harness.directory.transaction(write=False) as txn:
        return snapshot.load(txn, (), None, media_service)


@pytest.fixture(scope='module')
def directory(tmp_path_factory):
    return build(tmp_path_factory.mktemp('media') / 'directory.db')


@pytest.fixture(scope='module')
def snap(directory):
    return snap_of(directory)


def media_leg(plan, user, header, destination=MEDIA):
    assert isinstance(plan, Relay), plan
    assert plan.uri == 'sip:%s@%s' % (user, DOMAIN) and plan.destination == destination, plan
    assert plan.headers == {MEDIA_HEADER: header}, plan.headers
    return plan


def inbound(snap, number):
    return route_inbound(snap, number, TRUNK, NOW)


# *86: the owner's own box -----------------------------------------------------------------------------------

def test_the_owner_reaches_the_box_with_star_86_without_a_pin(snap):
    plan = media_leg(route_from_account(snap, DOMAIN, 'anna.desk', '*86', NOW), '*86', 'mailbox;mailbox=21;pin=no')
    assert plan.context is None and '"' not in plan.uri


def test_the_tenant_may_want_the_pin_from_the_owners_phone_too(tmp_path):
    snap = snap_of(build(tmp_path / 'directory.db', voicemail_pin_always=True))
    media_leg(route_from_account(snap, DOMAIN, 'anna.desk', '*86', NOW), '*86', 'mailbox;mailbox=21;pin=yes')


def test_star_86_without_a_box_or_a_media_service(snap, directory):
    plan = route_from_account(snap, DOMAIN, 'bert.desk', '*86', NOW)
    assert isinstance(plan, Reject) and (plan.code, plan.reason) == (404, 'No voicemail box')
    plan = route_from_account(snap_of(directory, media_service=None), DOMAIN, 'anna.desk', '*86', NOW)
    assert isinstance(plan, Reject) and plan.code == 480


# Destinations: numbers ----------------------------------------------------------------------------------------

def test_a_number_to_another_extensions_box(snap):
    plan = media_leg(inbound(snap, BOX_21), '21', 'voicemail;mailbox=21;reason=unconditional')
    assert plan.diversion == ('<sip:21@%s>;reason=unconditional' % DOMAIN,)


def test_a_number_to_the_voicemail_menu_always_asks_for_the_pin(snap):
    media_leg(inbound(snap, MENU), 'voicemail-menu', 'mailbox;pin=yes')


def test_an_announcement_that_leads_somewhere_goes_on_when_it_has_played(snap):
    plan = media_leg(inbound(snap, CLOSED), 'closed', 'announcement;name=closed;then=yes')
    assert plan.context, 'the leg carries where the call stands, for after_failure'
    # The media service played it as early media and answered 480: the call goes on to the box.
    nxt = after_failure(snap, plan.context, 'no_answer', NOW)
    media_leg(nxt, '21', 'voicemail;mailbox=21;reason=unconditional')
    assert nxt.diversion == ('<sip:21@%s>;reason=unconditional' % DOMAIN,)  # no diversion from the announcement


def test_announcements_that_lead_to_each_other_stop_after_one_round(snap):
    first = media_leg(inbound(snap, LOOPING), 'first', 'announcement;name=first;then=yes')
    second = media_leg(after_failure(snap, first.context, 'no_answer', NOW), 'second', 'announcement;name=second;then=yes')
    end = after_failure(snap, second.context, 'no_answer', NOW)
    assert isinstance(end, Reject) and end.code == 480


# Destinations: forwards and a group's fallback ----------------------------------------------------------------

def test_a_forward_to_another_extensions_box_keeps_the_diversion_history(snap):
    ring = route_from_account(snap, DOMAIN, 'anna.desk', '23', NOW)
    assert isinstance(ring, Ring)
    plan = media_leg(after_failure(snap, ring.context, 'no_answer', NOW), '21', 'voicemail;mailbox=21;reason=no-answer')
    assert plan.diversion == ('<sip:21@%s>;reason=no-answer' % DOMAIN, '<sip:23@%s>;reason=no-answer' % DOMAIN)


def test_a_groups_fallback_announcement_plays_and_ends_the_call(snap):
    ring = inbound(snap, GROUP_NUMBER)
    assert isinstance(ring, Ring)
    plan = media_leg(after_failure(snap, ring.context, 'no_answer', NOW), 'bye', 'announcement;name=bye;then=no')
    assert plan.context is None


# The tenant's own media server ---------------------------------------------------------------------------------

def test_a_tenants_own_media_server_takes_its_voicemail_but_not_its_announcements(tmp_path):
    snap = snap_of(build(tmp_path / 'directory.db', media_server=OWN_SERVER))
    media_leg(inbound(snap, BOX_21), '21', 'voicemail;mailbox=21;reason=unconditional', destination=OWN_SERVER)
    media_leg(route_from_account(snap, DOMAIN, 'anna.desk', '*86', NOW), '*86', 'mailbox;mailbox=21;pin=no',
              destination=OWN_SERVER)
    media_leg(inbound(snap, CLOSED), 'closed', 'announcement;name=closed;then=yes')


# Route simulation (route_info) --------------------------------------------------------------------------------

def simulate(snap, dialled, **caller):
    from ansible_collections.voxplane.pbx.plugins.module_utils import callflow
    who = callflow.resolve_caller(snap, 'acme', **(caller or {'trunk': True, 'calling_number': '+4989111'}))
    return callflow.simulate(snap, who, dialled, NOW, callflow.Circumstances(registered=[]))


def test_route_info_predicts_an_announcement_then_the_box(snap):
    flow = simulate(snap, CLOSED)
    assert [s['action'] for s in flow['steps']] == ['announcement', 'voicemail']
    assert flow['steps'][0]['name'] == 'closed' and flow['steps'][0]['then'] is True
    assert flow['steps'][1]['mailbox'] == '21' and flow['final'] == {'code': 200, 'reason': 'OK', 'by': 'voicemail'}
    assert flow['summary'][:2] == ['0s: announcement closed, then on',
                                   '0s: voicemail 21 on %s (Diversion unconditional)' % MEDIA]


def test_route_info_predicts_the_menus(snap):
    flow = simulate(snap, '*86', account='anna.desk')
    assert flow['steps'][0]['action'] == 'mailbox' and flow['steps'][0]['mailbox'] == '21'
    assert flow['final']['code'] == 200 and flow['summary'][0] == '0s: the mailbox menu of 21'
    flow = simulate(snap, MENU)
    assert flow['summary'][0] == '0s: the mailbox menu (mailbox number, then PIN)'


def test_route_info_predicts_a_group_that_ends_with_an_announcement(snap):
    flow = simulate(snap, GROUP_NUMBER)
    assert [s['action'] for s in flow['steps']] == ['ring', 'announcement']
    assert flow['final'] == {'code': 200, 'reason': 'OK', 'by': 'announcement bye'}
