# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""phone_settings.apply(): the router's one write path (feature codes), against a real SQLite
directory provisioned through reconcile(). The settings come from the routing core
(route_from_account over a snapshot of that directory), as in the KEMI adapter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

import pytest

from directory_helpers import BLOCK, DOMAIN, account, block, extension, tenant_request
from ansible_collections.voxplane.pbx.plugins.module_utils import phone_settings, snapshot
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION, GROUP, NUMBER
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import ABSENT
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import PhoneSetting, route_from_account
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory, dialect_for

NOW = 1800000000


@pytest.fixture
def pbx(pbx):
    """acme: 10 max.muster (may not call abroad), 11 erika.desk (may), 12 vera.desk (voicemail),
    group 50; a trunk and a media server."""
    pbx.apply('acme', tenant_request(main_number=BLOCK, media_server='sip:vm.acme.voxplane.example',
                                     trunks=[{'name': 'ecotel', 'addresses': ['192.0.2.10']}]), {
        NUMBER: {BLOCK: block()},
        EXTENSION: {
            '10': extension(account('max.muster'), name='Max'),
            '11': extension(account('erika.desk'), name='Erika', international_calls=True),
            '12': extension(account('vera.desk'), name='Vera', voicemail={'enabled': True}),
        },
        GROUP: {'50': {'name': 'Zentrale', 'members': ['10', '11']}},
    })
    return pbx


def setting(pbx, user, dialled):
    """What the routing core makes of ``dialled`` from account ``user`` (a PhoneSetting)."""
    with pbx.directory.transaction(write=False, create=False) as txn:
        snap = snapshot.load(txn)
    plan = route_from_account(snap, DOMAIN, user, dialled, NOW)
    assert isinstance(plan, PhoneSetting), plan
    return plan


def dump(pbx):
    """Every row of every table (with the generation row) and, of a SQLite directory, the file's bytes."""
    if pbx.backend != 'sqlite':
        return pbx.snapshot(), pbx.generation()
    with open(pbx.path, 'rb') as handle:
        return pbx.snapshot(), pbx.generation(), handle.read()


def ext(pbx, number):
    return pbx.load('acme').get(EXTENSION, number)


# Each code changes exactly its field ------------------------------------------------------------

# (account, dialled, preset of the extension, field path, value afterwards)
CHANGES = [
    ('max.muster', '*78', None, ('dnd',), True),
    ('max.muster', '*79', {'dnd': True}, ('dnd',), False),
    ('max.muster', '*7211', None, ('forwarding', 'unconditional'), '11'),
    ('max.muster', '*7250#', None, ('forwarding', 'unconditional'), '50'),          # a group
    ('max.muster', '*73', {'forwarding': {'unconditional': '11'}}, ('forwarding', 'unconditional'), None),
    ('max.muster', '*90030555123', None, ('forwarding', 'busy'), '+4930555123'),   # national, stored E.164
    ('max.muster', '*91', {'forwarding': {'busy': '11'}}, ('forwarding', 'busy'), None),
    ('max.muster', '*92+4940123456', None, ('forwarding', 'no_answer'), '+4940123456'),
    ('max.muster', '*93', {'forwarding': {'no_answer': '11'}}, ('forwarding', 'no_answer'), None),
    ('erika.desk', '*920041441234567', None, ('forwarding', 'no_answer'), '+41441234567'),   # may call abroad
    ('vera.desk', '*72voicemail', None, ('forwarding', 'unconditional'), 'voicemail'),
]


@pytest.mark.parametrize('user, dialled, preset, path, value', CHANGES)
def test_a_feature_code_changes_exactly_its_field(pbx, user, dialled, preset, path, value):
    number = {'max.muster': '10', 'erika.desk': '11', 'vera.desk': '12'}[user]
    if preset:
        pbx.apply('acme', None, {EXTENSION: {number: preset}})
    before_state, generation = pbx.load('acme'), pbx.generation()
    wanted = setting(pbx, user, dialled)
    outcome = phone_settings.apply(pbx.directory, wanted)
    assert (outcome.code, outcome.reason, outcome.changed) == (603, wanted.done, True)
    assert outcome.generation == generation + 1 == pbx.generation()
    after_state = pbx.load('acme')
    expected = copy.deepcopy(before_state.get(EXTENSION, number))
    holder = expected
    for key in path[:-1]:
        holder = holder[key]
    assert holder[path[-1]] != value                      # it really changes
    holder[path[-1]] = value
    assert after_state.get(EXTENSION, number) == expected
    # nothing else of the tenant moved
    assert after_state.tenant == before_state.tenant
    for kind in after_state.children:
        others = dict((k, v) for k, v in after_state.objects(kind).items() if (kind, k) != (EXTENSION, number))
        assert others == dict((k, v) for k, v in before_state.objects(kind).items() if (kind, k) != (EXTENSION, number))


def test_a_repeated_code_changes_nothing_and_keeps_the_generation(pbx):
    first = phone_settings.apply(pbx.directory, setting(pbx, 'max.muster', '*7211'))
    assert first.changed and first.generation == pbx.generation()
    before = dump(pbx)
    again = phone_settings.apply(pbx.directory, setting(pbx, 'max.muster', '*7211#'))
    assert (again.code, again.reason, again.changed, again.generation) == (603, 'Forward All Calls To 11', False, None)
    assert dump(pbx) == before


def test_the_done_text_is_the_phones_answer(pbx):
    for dialled, done in [('*78', 'Do Not Disturb On'), ('*79', 'Do Not Disturb Off'), ('*7211', 'Forward All Calls To 11'),
                          ('*73', 'Forward All Calls Off')]:
        assert phone_settings.apply(pbx.directory, setting(pbx, 'max.muster', dialled)).reason == done


# Refused settings: mapped code, field and rule named, nothing written ------------------------------

@pytest.mark.parametrize('user, dialled, code, field, rule', [
    ('max.muster', '*7299', 404, 'forwarding.unconditional', 'reference'),          # no such internal number
    ('max.muster', '*9099', 404, 'forwarding.busy', 'reference'),
    ('max.muster', '*721', 484, 'forwarding.unconditional', 'internal_length'),     # malformed
    ('max.muster', '*92012', 484, 'forwarding.no_answer', 'e164_length'),
    ('max.muster', '*72abc', 484, 'forwarding.unconditional', 'e164'),
    ('max.muster', '*720041441234567', 403, 'forwarding.unconditional', 'international_calls'),   # abroad
    ('max.muster', '*92+41441234567', 403, 'forwarding.no_answer', 'international_calls'),
    ('max.muster', '*7210', 482, 'forwarding.unconditional', 'forward_loop'),       # to itself
    ('max.muster', '*72voicemail', 403, 'forwarding.unconditional', 'voicemail_disabled'),
])
def test_a_refused_setting_names_field_and_rule_and_writes_nothing(pbx, user, dialled, code, field, rule):
    before = dump(pbx)
    outcome = phone_settings.apply(pbx.directory, setting(pbx, user, dialled))
    assert outcome.code == code, outcome
    assert outcome.reason.startswith(field + ': ') and outcome.reason.endswith('[%s]' % rule), outcome
    assert len(outcome.reason) <= 160 and '\n' not in outcome.reason and '\r' not in outcome.reason
    assert (outcome.changed, outcome.generation) == (False, None)
    assert dump(pbx) == before


def test_a_setting_for_an_extension_removed_since_the_snapshot_creates_nothing(pbx):
    stale = setting(pbx, 'max.muster', '*78')
    pbx.apply('acme', None, {GROUP: {'50': {'members': ['11']}}})
    pbx.apply('acme', None, {EXTENSION: {'10': ABSENT}})
    before = dump(pbx)
    outcome = phone_settings.apply(pbx.directory, stale)
    assert outcome.code == 404 and outcome.reason.endswith('[reference]') and '10' in outcome.reason, outcome
    assert not outcome.changed
    assert ext(pbx, '10') is None
    assert dump(pbx) == before


def test_a_setting_of_an_unknown_tenant_is_404(pbx):
    before = dump(pbx)
    outcome = phone_settings.apply(pbx.directory, PhoneSetting('nosuch', '10', {'dnd': True}, 'Do Not Disturb On'))
    assert outcome.code == 404 and not outcome.changed
    assert dump(pbx) == before


# Directory trouble is 503 ---------------------------------------------------------------------

def test_a_missing_directory_is_503_and_creates_no_file(pbx, tmp_path):
    wanted = setting(pbx, 'max.muster', '*78')
    path = str(tmp_path / 'gone' / 'directory.db')
    outcome = phone_settings.apply(Directory(path), wanted)
    assert outcome.code == 503 and outcome.reason.startswith('Directory unavailable') and not outcome.changed
    assert not os.path.exists(os.path.dirname(path))
    path = str(tmp_path / 'missing.db')
    assert phone_settings.apply(Directory(path), wanted).code == 503
    assert not os.path.exists(path)


def test_a_write_lock_held_too_long_is_503(pbx):
    wanted = setting(pbx, 'max.muster', '*78')
    before = dump(pbx)
    with pbx.directory.transaction():                  # a playbook writing: it holds the writers' lock
        outcome = phone_settings.apply(Directory(pbx.path, dialect_for(pbx.path, lock_timeout_ms=50)), wanted)
    assert outcome.code == 503 and 'locked' in outcome.reason and not outcome.changed
    assert dump(pbx) == before


# Phones and playbooks share dnd and forwarding: whoever sets it last wins -------------------------

def test_a_playbook_that_leaves_dnd_out_keeps_the_phones_dnd(pbx):
    assert phone_settings.apply(pbx.directory, setting(pbx, 'max.muster', '*78')).changed
    assert phone_settings.apply(pbx.directory, setting(pbx, 'max.muster', '*7211')).changed
    pbx.apply('acme', None, {EXTENSION: {'10': extension(account('max.muster'), name='Max Neu',
                                                         forwarding={'busy': '11'})}})
    stored = ext(pbx, '10')
    assert (stored['name'], stored['dnd']) == ('Max Neu', True)
    assert stored['forwarding'] == {'unconditional': '11', 'busy': '11', 'no_answer': None, 'unregistered': None}


def test_a_playbook_that_sets_dnd_wins(pbx):
    assert phone_settings.apply(pbx.directory, setting(pbx, 'max.muster', '*78')).changed
    pbx.apply('acme', None, {EXTENSION: {'10': {'dnd': False}}})
    assert ext(pbx, '10')['dnd'] is False
    # and the phone again after it
    assert phone_settings.apply(pbx.directory, setting(pbx, 'max.muster', '*78')).changed
    assert ext(pbx, '10')['dnd'] is True
