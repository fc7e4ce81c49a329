# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Announcements in the directory core: their audio kept with the change that names it (reconcile's
``audio``), removed with the change that stops using it, and the rules across objects (integrity):
audio that is there and as long as said, destinations that exist, removals that are blocked."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from directory_helpers import BLOCK, expect, extension, only  # pytest.ini pythonpath
from wav_helpers import pcm_wav, tone
from ansible_collections.voxplane.pbx.plugins.module_utils import audio
from ansible_collections.voxplane.pbx.plugins.module_utils.model import ANNOUNCEMENT, EXTENSION, GROUP, NUMBER
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import ABSENT
from ansible_collections.voxplane.pbx.plugins.module_utils.store import MAILBOX_GREETINGS


def sound(frequency=440, seconds=0.2):
    """{sha256: (wav, duration)} of a converted tone, and its SHA-256."""
    converted = audio.convert(pcm_wav(tone(frequency, 16000, seconds), 16000))
    return {converted.sha256: (converted.wav, converted.duration_ms)}, converted.sha256


def ann(name, tenant='acme'):
    return 'announcement %s (tenant %s)' % (name, tenant)


def announcement(digest, kept, **fields):
    return dict({'audio': digest, 'duration_ms': kept[digest][1]}, **fields)


def audio_rows(pbx):
    return sorted((row[1], row[2]) for row in pbx.snapshot()['audio'])  # tenant_id, hash, duration_ms, data


@pytest.fixture
def closed(acme):
    """acme with the announcement 'closed' (a 440 Hz tone), its audio kept with it."""
    kept, digest = sound()
    acme.apply('acme', None, {ANNOUNCEMENT: {'closed': announcement(digest, kept, description='Closed')}}, audio=kept)
    acme.closed = digest
    return acme


def test_the_audio_is_kept_with_the_announcement_in_one_change(acme):
    kept, digest = sound()
    generation = acme.generation()
    acme.apply('acme', None, {ANNOUNCEMENT: {'closed': announcement(digest, kept)}}, audio=kept)
    assert audio_rows(acme) == [(digest, 200)]
    assert acme.load('acme').objects(ANNOUNCEMENT)['closed']['audio'] == digest
    assert acme.generation() == generation + 1


def test_an_announcement_whose_audio_is_not_there_is_refused_and_nothing_is_kept(acme):
    kept, digest = sound()
    only(acme.reject('acme', None, {ANNOUNCEMENT: {'closed': announcement(digest, kept)}}),
         ann('closed'), 'audio', 'audio_missing', digest[:12], 'tenant_info audio: true')
    # a change that fails for another reason keeps none of the audio it brought
    violations = acme.reject('acme', None, {ANNOUNCEMENT: {'closed': announcement(digest, kept, then='299')}}, audio=kept)
    only(violations, ann('closed'), 'then', 'reference', 'target 299 does not exist')


def test_the_duration_is_the_audios(closed):
    only(closed.reject('acme', None, {ANNOUNCEMENT: {'other': {'audio': closed.closed, 'duration_ms': 5000}}}),
         ann('other'), 'duration_ms', 'audio_duration', 'is 200 ms long, not 5000')
    only(closed.reject('acme', None, {ANNOUNCEMENT: {'other': {'audio': closed.closed}}}),
         ann('other'), 'duration_ms', 'audio_duration', 'not None')
    # another announcement may use the same audio, named by its SHA-256 and length
    closed.apply('acme', None, {ANNOUNCEMENT: {'other': {'audio': closed.closed, 'duration_ms': 200}}})
    assert audio_rows(closed) == [(closed.closed, 200)]


def test_audio_nothing_uses_any_more_goes_with_the_change_that_stopped_using_it(closed):
    kept, new = sound(880, 0.3)
    closed.apply('acme', None, {ANNOUNCEMENT: {'closed': announcement(new, kept)}}, audio=kept)
    assert audio_rows(closed) == [(new, 300)]                       # the 440 Hz tone is gone
    closed.apply('acme', None, {ANNOUNCEMENT: {'holiday': announcement(new, kept)}})
    closed.apply('acme', None, {ANNOUNCEMENT: {'closed': ABSENT}})
    assert audio_rows(closed) == [(new, 300)]                       # 'holiday' still plays it
    closed.apply('acme', None, {ANNOUNCEMENT: {'holiday': ABSENT}})
    assert audio_rows(closed) == []


def test_audio_a_mailbox_greeting_uses_stays(closed):
    closed.apply('acme', None, {EXTENSION: {'10': {'voicemail': {'enabled': True}}}})
    with closed.directory.transaction() as txn:
        txn.set_mailbox_state('acme', '10', {MAILBOX_GREETINGS: {'unavailable': closed.closed}})
    closed.apply('acme', None, {ANNOUNCEMENT: {'closed': ABSENT}})
    assert audio_rows(closed) == [(closed.closed, 200)]
    with closed.directory.transaction() as txn:
        assert txn.audio_in_use('acme') == set([closed.closed])
        assert txn.prune_audio('acme', [closed.closed]) == set()


def test_audio_given_that_nothing_names_is_not_kept(closed):
    kept, unused = sound(1000)
    closed.apply('acme', None, {ANNOUNCEMENT: {'closed': {'description': 'Closed today'}}}, audio=kept)
    assert audio_rows(closed) == [(closed.closed, 200)]


def test_an_unchanged_announcement_writes_nothing(closed):
    before, generation = closed.snapshot(), closed.generation()
    kept = {closed.closed: (audio.convert(pcm_wav(tone(440, 16000, 0.2), 16000)).wav, 200)}
    result = closed.apply('acme', None, {ANNOUNCEMENT: {'closed': announcement(closed.closed, kept)}}, audio=kept)
    assert not result.changed and closed.snapshot() == before and closed.generation() == generation


def test_removing_the_tenant_removes_its_audio(closed):
    closed.apply('acme', ABSENT, {}, purge=(ANNOUNCEMENT, EXTENSION, GROUP, NUMBER))
    assert closed.snapshot()['audio'] == []


# As a destination --------------------------------------------------------------------------------

def test_an_announcement_is_a_destination_wherever_one_is_taken(closed):
    closed.apply('acme', None, {
        EXTENSION: {'10': {'forwarding': {'no_answer': 'announcement:closed'}}, '11': extension()},
        GROUP: {'50': {'members': ['11'], 'fallback': 'announcement:closed'}},
        NUMBER: {BLOCK: {'target': 'announcement:closed'}},
        ANNOUNCEMENT: {'closed': {'then': '10'},
                       'intro': {'audio': closed.closed, 'duration_ms': 200, 'then': 'announcement:closed'}},
    })
    violations = closed.reject('acme', None, {ANNOUNCEMENT: {'closed': ABSENT}})
    for by in ('extension 10 (forwarding.no_answer)', 'group 50 (fallback)', 'number %s (target)' % BLOCK,
               'announcement intro (then)'):
        expect(violations, ann('closed'), 'state', 'still_referenced', 'still referenced by ' + by)
    assert len(violations) == 4


def test_where_it_leads_must_exist_and_not_be_itself(closed):
    only(closed.reject('acme', None, {ANNOUNCEMENT: {'closed': {'then': 'announcement:closed'}}}),
         ann('closed'), 'then', 'forward_loop')
    only(closed.reject('acme', None, {ANNOUNCEMENT: {'closed': {'then': 'voicemail:10'}}}),
         ann('closed'), 'then', 'voicemail_disabled')
    only(closed.reject('acme', None, {NUMBER: {BLOCK: {'target': 'announcement:gone'}}}),
         'number %s (tenant acme)' % BLOCK, 'target', 'reference', 'announcement gone does not exist')
