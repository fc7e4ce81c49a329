# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Announcements in whole-tenant documents (tenant_info exports them, tenant_config applies them, the
offline lint and the route simulator accept them), and backups that carry their audio."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import stat

import pytest

from module_helpers import Pbx
from wav_helpers import pcm_wav, tone
from ansible_collections.voxplane.pbx.plugins.module_utils import audio, callflow, tenant_document

PASSWORD = 'Sommer-2024!'
TENANT = {'name': 'acme', 'sip_domain': 'acme.voxplane.example', 'licences': {'seats': {'smart': 5}}}


def announcement_wav(frequency=440):
    return audio.convert(pcm_wav(tone(frequency, 16000, 0.3), 16000))


@pytest.fixture
def acme(tmp_path):
    """acme with extension 10 (voicemail), the announcement 'closed' (then voicemail:10) and a number that plays it."""
    pbx = Pbx(tmp_path / 'directory.db')
    pbx.ok('tenant_config', config={
        'tenant': TENANT, 'numbers': [{'number': '+49301234'}],
        'extensions': [{'internal_number': '10', 'name': 'Anna', 'voicemail': {'enabled': True},
                        'sip_accounts': [{'username': 'anna.desk', 'password': PASSWORD}]},
                       {'internal_number': '11', 'name': 'Ben'}]})
    content = base64.b64encode(pcm_wav(tone(440, 16000, 0.3), 16000)).decode()
    pbx.ok('announcement', tenant='acme', name='closed', content=content, description='Closed', then='voicemail:10')
    pbx.ok('number', tenant='acme', number='+49301234', target='announcement:closed')
    pbx.digest = announcement_wav().sha256
    return pbx


def export(pbx, tmp_path, name, **options):
    path = str(tmp_path / name)
    result = pbx.ok('tenant_info', tenant='acme', format='json', dest=path, **options)
    with open(path) as handle:
        return json.load(handle), result, path


def test_tenant_info_exports_the_announcements_and_feeding_them_back_changes_nothing(acme):
    result = acme.ok('tenant_info', tenant='acme')
    assert result['announcements'] == [dict(name='closed', tenant='acme', description='Closed', audio=acme.digest,
                                            duration_ms=300, then='voicemail:10')]
    assert 'audio' not in result  # a document for a repository names the audio by its SHA-256 only
    before = acme.snapshot()
    assert not acme.ok('tenant_config', config=result, state='overridden')['changed']
    assert acme.snapshot() == before


def test_a_backup_carries_the_audio_and_restores_into_an_empty_directory(acme, tmp_path):
    document, result, path = export(acme, tmp_path, 'backup.json', secrets=True)
    assert result['summary']['announcements'] == 1 and result['summary']['audio'] == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    wav = announcement_wav().wav
    assert document['audio'] == [dict(sha256=acme.digest, duration_ms=300, wav_base64=base64.b64encode(wav).decode())]
    empty = Pbx(tmp_path / 'restored.db')
    restored = empty.ok('tenant_config', src=path, state='overridden')
    assert restored['counts']['announcements'] == {'added': 1, 'changed': 0, 'removed': 0}
    assert empty.snapshot()['audio'] == [(1, acme.digest, 300, wav)]
    assert empty.ok('announcement_info', tenant='acme')['announcements'] == acme.ok('announcement_info', tenant='acme')['announcements']
    assert not empty.ok('tenant_config', src=path, state='overridden')['changed']


def test_audio_is_its_own_choice(acme, tmp_path):
    assert 'audio' not in export(acme, tmp_path, 'keys.json', secrets=True, audio=False)[0]
    document, result, path = export(acme, tmp_path, 'audio.json', audio=True)
    assert len(document['audio']) == 1 and stat.S_IMODE(os.stat(path).st_mode) == 0o644
    # without dest, into the result
    assert acme.ok('tenant_info', tenant='acme', audio=True)['audio'] == document['audio']


def test_a_document_without_the_audio_fails_in_a_directory_that_lacks_it(acme, tmp_path):
    document = export(acme, tmp_path, 'plain.json')[0]
    document['extensions'] = [dict(e, sip_accounts=[dict(a, password=PASSWORD) for a in e['sip_accounts']])
                              for e in document['extensions']]
    empty = Pbx(tmp_path / 'other.db')
    result = empty.run('tenant_config', config=document, state='overridden')
    assert result.failed and (empty.snapshot() or {}).get('tenants', []) == []   # nothing written
    assert [(v['object'], v['field'], v['rule']) for v in result['violations']] == [
        ('announcement closed (tenant acme)', 'audio', 'audio_missing')]
    assert 'tenant_info audio: true' in result['msg']


def test_the_lint_and_the_route_simulator_take_the_audio_as_there(acme, tmp_path):
    path = export(acme, tmp_path, 'plain.json')[1]['files'][0]
    lint = acme.ok('tenant_config', src=path, state='validated', directory=str(tmp_path / 'nowhere' / 'x.db'))
    assert 'announcements: 1' in lint['msg']
    state = callflow.document_state(tenant_document.read_document(path))
    assert state.objects('announcement')['closed']['audio'] == acme.digest


def test_a_documents_audio_is_checked_entry_by_entry_all_at_once(acme, tmp_path):
    document = export(acme, tmp_path, 'backup.json', secrets=True)[0]
    good = document['audio'][0]
    document['audio'] = [
        dict(good, sha256='f' * 64),                                             # not the file's hash
        dict(good, sha256=audio.convert(pcm_wav(tone(500, 8000, 0.1), 8000)).sha256,
             wav_base64=base64.b64encode(pcm_wav(tone(500, 16000, 0.1), 16000)).decode()),   # not the kept format
        dict(good, wav_base64='***'),                                            # not base64
        dict(good, duration_ms=999),                                             # not its length
        dict(good, volume=3),                                                    # no such field
        'a text',
    ]
    result = Pbx(tmp_path / 'other.db').run('tenant_config', config=document, state='overridden')
    rules = [(v['field'], v['rule']) for v in result['violations']]
    assert rules == [('sha256', 'audio_hash'), ('wav_base64', 'audio_format'), ('wav_base64', 'base64'),
                     ('duration_ms', 'audio_duration'), ('volume', 'unsupported'), ('audio[5]', 'type')]
    assert result['violations'][0]['object'] == 'audio ffffffffffff... (tenant acme)'


def test_removing_an_announcement_with_a_document_removes_its_audio(acme):
    document = acme.ok('tenant_info', tenant='acme')
    document['numbers'][0]['target'] = ''
    document['announcements'] = []
    result = acme.ok('tenant_config', config=document, state='overridden', diff=True)
    assert result['counts']['announcements'] == {'added': 0, 'changed': 0, 'removed': 1}
    assert '- announcement closed (tenant acme)' in result['diff']['prepared']
    assert acme.snapshot()['audio'] == []


def test_the_diff_of_a_document_names_the_audio_by_its_sha256(acme):
    document = acme.ok('tenant_info', tenant='acme', audio=True)
    other = announcement_wav(880)
    document['audio'].append(dict(sha256=other.sha256, duration_ms=300, wav_base64=base64.b64encode(other.wav).decode()))
    document['announcements'][0]['audio'] = other.sha256
    result = acme.ok('tenant_config', config=document, check=True, diff=True)
    assert '    audio: "%s" -> "%s"' % (acme.digest, other.sha256) in result['diff']['prepared']
    assert other.wav[:60] not in result.raw.encode() and 'UklGR' not in result['diff']['prepared']
