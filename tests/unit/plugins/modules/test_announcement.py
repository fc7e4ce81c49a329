# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane.pbx.announcement and announcement_info in-process: a WAV file becomes audio in the
directory with the announcement, in one transaction; the same sound is no change; check mode and
the diff (SHA-256 and length, never the bytes); bad files refused naming field and rule with
nothing written; removal refused while something names it. (The controller's side, the action
plugin that reads src there, is tests/integration/test_media_playbooks.py.)"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json

import pytest

from wav_helpers import pcm_wav, tone
from ansible_collections.voxplane.pbx.plugins.module_utils import audio

TENANT = dict(name='acme', sip_domain='acme.voxplane.example', licences=dict(seats=dict(smart=5)))
SUBJECT = 'announcement closed (tenant acme)'


@pytest.fixture
def acme(pbx, tmp_path):
    pbx.ok('tenant', **TENANT)
    pbx.ok('extension', tenant='acme', internal_number='10', name='Anna', voicemail=dict(enabled=True))
    pbx.files = tmp_path
    return pbx


def wav_file(pbx, name, data):
    path = pbx.files / name
    path.write_bytes(data)
    return str(path)


def closed_wav(pbx, frequency=440, rate=44100, channels=2, seconds=0.5):
    return wav_file(pbx, 'closed-%d-%d-%d.wav' % (frequency, rate, channels),
                    pcm_wav(tone(frequency, rate, seconds, 12000, channels), rate, channels))


def rows(pbx, table):
    return pbx.snapshot()[table]


def test_a_wav_file_becomes_the_announcements_audio_in_one_change(acme):
    generation = acme.generation()
    result = acme.ok('announcement', tenant='acme', name='closed', src=closed_wav(acme), description='Closed',
                     then='voicemail:10')
    converted = audio.convert(pcm_wav(tone(440, 44100, 0.5, 12000, 2), 44100, 2))
    assert result['changed'] and result['changes'] == ['create announcement closed (tenant acme)']
    assert result['announcement'] == dict(tenant='acme', name='closed', description='Closed', audio=converted.sha256,
                                          duration_ms=500, then='voicemail:10')
    assert [(r[1], r[2], bytes(r[3])) for r in rows(acme, 'audio')] == [(converted.sha256, 500, converted.wav)]
    assert acme.generation() == generation + 1


def test_the_same_sound_again_is_no_change_whatever_file_it_comes_in(acme):
    acme.ok('announcement', tenant='acme', name='closed', src=closed_wav(acme, rate=8000, channels=1))
    before = acme.snapshot()
    assert not acme.ok('announcement', tenant='acme', name='closed', src=closed_wav(acme, rate=8000, channels=1))['changed']
    # the same tone in stereo (both sides alike) converts to the same audio
    assert not acme.ok('announcement', tenant='acme', name='closed', src=closed_wav(acme, rate=8000, channels=2))['changed']
    assert acme.snapshot() == before


def test_check_mode_shows_the_real_diff_and_writes_nothing(acme):
    before = acme.snapshot()
    content = base64.b64encode(pcm_wav(tone(440, 16000, 0.25), 16000)).decode()
    result = acme.ok('announcement', tenant='acme', name='closed', content=content, check=True, diff=True)
    assert result['changed'] and acme.snapshot() == before
    after = result['diff']['after']
    assert after['duration_ms'] == 250 and len(after['audio']) == 64 and result['diff']['before'] == {}
    # the diff and the whole result name the audio by its SHA-256, never carry the bytes
    assert content not in result.raw and content[:40] not in result.raw
    assert result['invocation']['module_args']['content'] == '(%d characters, not shown)' % len(content)


def test_a_new_recording_replaces_the_old_one_and_the_old_audio_goes(acme):
    first = acme.ok('announcement', tenant='acme', name='closed', src=closed_wav(acme))['announcement']['audio']
    result = acme.ok('announcement', tenant='acme', name='closed', src=closed_wav(acme, frequency=880), diff=True)
    assert result['changed']
    assert result['diff']['before']['audio'] == first and result['diff']['after']['audio'] != first
    assert [r[1] for r in rows(acme, 'audio')] == [result['announcement']['audio']]


def test_content_is_base64_with_any_line_breaks(acme):
    data = pcm_wav(tone(440, 8000, 0.1), 8000)
    text = base64.encodebytes(data).decode()  # 76 characters a line
    assert '\n' in text.strip()
    result = acme.ok('announcement', tenant='acme', name='closed', content=text)
    assert result['announcement']['duration_ms'] == 100
    failed = acme.run('announcement', tenant='acme', name='other', content='not base64!')
    assert failed.failed and failed['violations'][0]['rule'] == 'base64' and failed['violations'][0]['field'] == 'content'


@pytest.mark.parametrize('data, rule, words', [
    (pcm_wav(tone(440, 8000, 0.1), 8000)[:20] + b'\x00' * 30, 'audio_format', 'without a data chunk'),
    (b'ID3\x04' + b'\x00' * 200, 'audio_format', 'is an MP3 file'),
    (pcm_wav([0] * 960, 96000), 'audio_sample_rate', 'a sample rate of 96000 Hz'),
    (pcm_wav([], 8000), 'audio_empty', 'holds no sound'),
])
def test_a_bad_file_is_refused_naming_field_and_rule_and_nothing_is_written(acme, data, rule, words):
    before = acme.snapshot()
    path = wav_file(acme, 'bad.wav', data)
    result = acme.run('announcement', tenant='acme', name='closed', src=path)
    assert result.failed and acme.snapshot() == before
    assert result['violations'] == [dict(object=SUBJECT, field='src', rule=rule, message=result['violations'][0]['message'])]
    assert result['msg'].startswith('%s: src: %s ' % (SUBJECT, path)) and words in result['msg']
    assert result['msg'].endswith('[%s]' % rule)


def test_a_bad_file_and_other_bad_options_are_reported_at_once(acme):
    result = acme.run('announcement', tenant='acme', name='closed', src=wav_file(acme, 'bad.wav', b'no'),
                      then='voicemail:99')
    assert sorted((v['field'], v['rule']) for v in result['violations']) == [('src', 'audio_format'), ('then', 'reference')]


def test_a_file_that_cannot_be_read_is_named(acme):
    result = acme.run('announcement', tenant='acme', name='closed', src=str(acme.files / 'missing.wav'))
    assert result.failed and result['violations'][0]['field'] == 'src' and result['violations'][0]['rule'] == 'file'
    assert 'missing.wav' in result['msg'] and 'No such file' in result['msg']


def test_a_new_announcement_needs_its_recording(acme):
    result = acme.run('announcement', tenant='acme', name='closed', description='Closed')
    assert result['violations'] == [
        dict(object=SUBJECT, field='audio', rule='required', message='is required when the announcement is created')]


def test_an_option_ansible_refuses_does_not_hide_the_recording(acme):
    result = acme.run('announcement', tenant='acme', name='closed', src=closed_wav(acme), descripton='typo')
    assert [(v['field'], v['rule']) for v in result['violations']] == [('descripton', 'unsupported')]


def test_audio_by_its_sha256_reuses_what_the_directory_has(acme):
    first = acme.ok('announcement', tenant='acme', name='closed', src=closed_wav(acme))['announcement']
    result = acme.ok('announcement', tenant='acme', name='holiday', audio=first['audio'], duration_ms=first['duration_ms'])
    assert result['announcement']['audio'] == first['audio'] and len(rows(acme, 'audio')) == 1
    missing = acme.run('announcement', tenant='acme', name='other', audio='0' * 64, duration_ms=100)
    assert [(v['field'], v['rule']) for v in missing['violations']] == [('audio', 'audio_missing')]
    wrong = acme.run('announcement', tenant='acme', name='other', audio=first['audio'], duration_ms=100)
    assert [(v['field'], v['rule']) for v in wrong['violations']] == [('duration_ms', 'audio_duration')]
    mismatch = acme.run('announcement', tenant='acme', name='closed', src=closed_wav(acme, 880), audio=first['audio'])
    assert [(v['field'], v['rule']) for v in mismatch['violations']] == [('audio', 'audio_mismatch')]


def test_removal_is_refused_while_a_number_plays_it_and_then_takes_its_audio(acme):
    acme.ok('announcement', tenant='acme', name='closed', src=closed_wav(acme))
    acme.ok('number', tenant='acme', number='+4930555000', target='announcement:closed')
    before = acme.snapshot()
    result = acme.run('announcement', tenant='acme', name='closed', state='absent')
    assert result.failed and acme.snapshot() == before
    assert result['msg'] == ('%s: state: cannot remove it: still referenced by number +4930555000 (target) '
                             '[still_referenced]' % SUBJECT)
    acme.ok('number', tenant='acme', number='+4930555000', target='')
    removed = acme.ok('announcement', tenant='acme', name='closed', state='absent', diff=True)
    assert removed['changed'] and removed['announcement'] == {} and removed['diff']['after'] == {}
    assert rows(acme, 'audio') == [] and rows(acme, 'announcements') == []


def test_info_returns_what_the_module_takes_and_feeding_it_back_changes_nothing(acme):
    acme.ok('announcement', tenant='acme', name='closed', src=closed_wav(acme), then='10')
    acme.ok('announcement', tenant='acme', name='beep', src=closed_wav(acme, 1000))
    info = acme.ok('announcement_info', tenant='acme')
    assert info['exists'] and [a['name'] for a in info['announcements']] == ['beep', 'closed']
    before = acme.snapshot()
    for item in info['announcements']:
        assert not acme.ok('announcement', **item)['changed']
    assert acme.snapshot() == before
    one = acme.ok('announcement_info', tenant='acme', name='closed')
    assert one['exists'] and one['announcements'] == [info['announcements'][1]]
    assert not acme.ok('announcement_info', tenant='acme', name='nothing')['exists']
    assert 'RIFF' not in json.dumps(info) and not acme.ok('announcement_info', tenant='other')['exists']
