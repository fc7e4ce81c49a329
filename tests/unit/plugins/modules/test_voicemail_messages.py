# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Voicemail for an administrator, in-process: each mailbox's counts beside the extensions
(extension_info, tenant_info), the messages listed and copied for a backup or a legal hold
(voicemail_message_info with dest), removed or moved (voicemail_message) with check mode and diff.
The messages are written here as the media service writes them: metadata through the store, a WAV
file below its storage folder."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from module_helpers import Pbx
from wav_helpers import pcm_wav, tone
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

PASSWORD = 'Sommer-2024!'


@pytest.fixture
def acme(tmp_path):
    """acme with Anna (10, voicemail) and Ben (11, voicemail off), three messages for Anna, one for Ben,
    and their WAV files below a storage folder; a tenant beta with a message of its own."""
    pbx = Pbx(tmp_path / 'directory.db')
    for name in ('acme', 'beta'):
        pbx.ok('tenant_config', config={
            'tenant': {'name': name, 'sip_domain': '%s.voxplane.example' % name, 'licences': {'seats': {'smart': 5}}},
            'extensions': [{'internal_number': '10', 'name': 'Anna', 'voicemail': {'enabled': True}},
                           {'internal_number': '11', 'name': 'Ben'}]})
    pbx.storage = tmp_path / 'media'
    pbx.ids = {}
    with Directory(pbx.path).transaction() as txn:
        for tenant, mailbox, folder, received, frequency in (
                ('acme', '10', 'new', '2026-12-01T08:00:00Z', 440), ('acme', '10', 'new', '2026-12-02T08:00:00Z', 550),
                ('acme', '10', 'saved', '2025-11-03T08:00:00Z', 660), ('acme', '11', 'saved', '2026-12-04T08:00:00Z', 770),
                ('beta', '10', 'new', '2026-12-05T08:00:00Z', 880)):
            name = 'voicemail/%s/%s/%s.wav' % (tenant, mailbox, received.replace(':', ''))
            message_id = txn.add_voicemail(tenant, mailbox, received, 500, name,
                                           {'caller': '+4989123456', 'caller_name': 'Max', 'reason': 'no-answer'}, folder)
            path = pbx.storage / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pcm_wav(tone(frequency, 8000, 0.5), 8000))
            pbx.ids[(tenant, frequency)] = message_id
    return pbx


def listing(pbx, **options):
    return pbx.ok('voicemail_message_info', tenant='acme', media_storage_dir=str(pbx.storage), **options)


def test_each_mailboxs_counts_come_beside_the_extensions_never_in_them(acme):
    acme.ok('extension', tenant='acme', internal_number='10', voicemail={'locked': True})
    everyone = acme.ok('extension_info', tenant='acme')
    assert everyone['mailboxes'] == [dict(internal_number='10', new=2, saved=1, locked=True),
                                     dict(internal_number='11', new=0, saved=1, locked=False)]   # 11: messages, box off
    one = acme.ok('extension_info', tenant='acme', internal_number='10')
    assert one['mailboxes'] == everyone['mailboxes'][:1]
    assert not acme.ok('extension', **one['extensions'][0])['changed']   # the counts are not part of the extension
    document = acme.ok('tenant_info', tenant='acme')
    assert document['mailboxes'] == everyone['mailboxes']
    assert not acme.ok('tenant_config', config=document)['changed']       # nor of a tenant document
    assert acme.ok('extension_info', tenant='nobody')['mailboxes'] == []
    assert 'RIFF' not in json.dumps(everyone) + json.dumps(document)


def test_the_messages_are_listed_oldest_first_with_their_files(acme):
    result = listing(acme)
    assert [(m['mailbox'], m['folder'], m['received_at']) for m in result['messages']] == [
        ('10', 'saved', '2025-11-03T08:00:00Z'), ('10', 'new', '2026-12-01T08:00:00Z'),
        ('10', 'new', '2026-12-02T08:00:00Z'), ('11', 'saved', '2026-12-04T08:00:00Z')]
    first = result['messages'][0]
    assert first['caller'] == '+4989123456' and first['duration_ms'] == 500 and first['tenant'] == 'acme'
    assert first['path'] == str(acme.storage / first['file']) and os.path.exists(first['path'])
    assert result['mailboxes'][0] == dict(internal_number='10', new=2, saved=1, locked=False)
    assert [m['id'] for m in listing(acme, mailbox='10', folder='new')['messages']] == [
        acme.ids[('acme', 440)], acme.ids[('acme', 550)]]
    assert listing(acme, mailbox='10')['mailboxes'] == result['mailboxes'][:1]


def test_an_id_of_another_tenant_or_mailbox_is_not_there(acme):
    theirs = acme.ids[('beta', 880)]
    result = acme.run('voicemail_message_info', tenant='acme', id=[theirs], media_storage_dir=str(acme.storage))
    assert result['violations'] == [dict(object='voicemail message %d (tenant acme)' % theirs, field='id', rule='reference',
                                         message='message %d does not exist in tenant acme' % theirs)]
    bens = acme.ids[('acme', 770)]
    result = acme.run('voicemail_message', tenant='acme', mailbox='10', id=bens, folder='new')
    assert 'does not exist in mailbox 10 of tenant acme' in result['msg'] and result['violations'][0]['rule'] == 'reference'


def test_a_copy_for_a_legal_hold_has_each_wav_and_its_metadata_and_is_written_once(acme, tmp_path):
    dest = tmp_path / 'hold'
    check = listing(acme, mailbox='10', dest=str(dest), check=True)
    assert check['changed'] and not dest.exists()
    result = listing(acme, mailbox='10', dest=str(dest))
    assert result['changed'] and len(result['files']) == 6 and result['missing_files'] == []
    for message in result['messages']:
        stem = os.path.splitext(os.path.basename(message['file']))[0]
        wav, meta = dest / '10' / (stem + '.wav'), dest / '10' / (stem + '.json')
        assert wav.read_bytes() == open(message['path'], 'rb').read()
        assert json.loads(meta.read_text()) == dict((k, v) for k, v in message.items() if k != 'path') | {
            'audio_file': stem + '.wav'}
        assert stat.S_IMODE(wav.stat().st_mode) == 0o600 and stat.S_IMODE((dest / '10').stat().st_mode) == 0o700
    again = listing(acme, mailbox='10', dest=str(dest))
    assert not again['changed'] and again['files'] == result['files']


def test_a_missing_wav_is_listed_and_its_metadata_copied(acme, tmp_path):
    first = listing(acme, mailbox='11')['messages'][0]
    os.remove(first['path'])
    result = listing(acme, mailbox='11', dest=str(tmp_path / 'hold'))
    assert result['missing_files'] == [first['path']] and len(result['files']) == 1


def test_a_copy_of_a_tenant_that_does_not_exist_fails_and_writes_nothing(acme, tmp_path):
    result = acme.run('voicemail_message_info', tenant='acmee', dest=str(tmp_path / 'hold'))
    assert result.failed and 'tenant acmee does not exist' in result['msg'] and not (tmp_path / 'hold').exists()
    assert not acme.ok('voicemail_message_info', tenant='acmee')['exists']


def test_removing_messages_in_check_mode_shows_them_and_keeps_everything(acme):
    before, files = acme.snapshot(), sorted(str(p) for p in acme.storage.rglob('*.wav'))
    ids = [acme.ids[('acme', 440)], acme.ids[('acme', 660)]]
    result = acme.ok('voicemail_message', tenant='acme', mailbox='10', id=ids, state='absent',
                     media_storage_dir=str(acme.storage), check=True, diff=True)
    assert result['changed'] and result['changes'] == ['delete voicemail message %d (tenant acme)' % i for i in sorted(
        ids, key=lambda i: {ids[0]: 1, ids[1]: 0}[i])]
    assert result['diff'][0]['before']['received_at'] == '2025-11-03T08:00:00Z' and result['diff'][0]['after'] == {}
    assert acme.snapshot() == before and sorted(str(p) for p in acme.storage.rglob('*.wav')) == files


def test_removing_messages_removes_metadata_and_files_and_again_is_no_change(acme):
    ids = [acme.ids[('acme', 440)], acme.ids[('acme', 660)]]
    paths = [m['path'] for m in listing(acme, id=ids)['messages']]
    result = acme.ok('voicemail_message', tenant='acme', id=ids, state='absent', media_storage_dir=str(acme.storage))
    assert result['changed'] and sorted(m['id'] for m in result['messages']) == sorted(ids)
    assert not any(os.path.exists(p) for p in paths)
    assert acme.ok('extension_info', tenant='acme', internal_number='10')['mailboxes'] == [
        dict(internal_number='10', new=1, saved=0, locked=False)]
    again = acme.ok('voicemail_message', tenant='acme', id=ids, state='absent', media_storage_dir=str(acme.storage))
    assert not again['changed'] and again['messages'] == []


def test_moving_messages_between_folders(acme):
    anna_new = [acme.ids[('acme', 440)], acme.ids[('acme', 550)]]
    result = acme.ok('voicemail_message', tenant='acme', mailbox='10', id=anna_new, folder='saved', diff=True)
    assert result['changed'] and [d['after']['folder'] for d in result['diff']] == ['saved', 'saved']
    assert [m['folder'] for m in result['messages']] == ['saved', 'saved']
    assert not acme.ok('voicemail_message', tenant='acme', mailbox='10', id=anna_new, folder='saved')['changed']
    assert acme.ok('tenant_info', tenant='acme')['mailboxes'][0] == dict(internal_number='10', new=0, saved=3, locked=False)


def test_a_file_outside_the_storage_folder_is_refused_before_anything_is_written(acme, tmp_path):
    with Directory(acme.path).transaction() as txn:
        odd = txn.add_voicemail('acme', '10', '2026-12-09T08:00:00Z', 500, '../../elsewhere.wav', {}, 'new')
    before = acme.snapshot()
    result = acme.run('voicemail_message', tenant='acme', id=odd, state='absent', media_storage_dir=str(acme.storage))
    assert result.failed and result['violations'][0]['rule'] == 'storage' and 'media_storage_dir' in result['msg']
    assert acme.snapshot() == before
    assert listing(acme, id=[odd])['messages'][0]['path'] is None


def test_a_file_that_is_not_there_is_a_warning(acme, tmp_path):
    message = acme.ids[('acme', 440)]
    result = acme.ok('voicemail_message', tenant='acme', id=message, state='absent', media_storage_dir=str(tmp_path / 'x'))
    assert result['changed'] and 'is not there (is media_storage_dir' in json.dumps(result['warnings'])


def test_nothing_to_remove_without_a_directory(tmp_path):
    assert not Pbx(tmp_path / 'none.db').ok('voicemail_message', tenant='acme', id=[1], state='absent')['changed']
    assert not (tmp_path / 'none.db').exists()
