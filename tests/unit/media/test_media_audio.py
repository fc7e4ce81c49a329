# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media service's audio files (media/voxplane_media_audio.py): WAV headers after a crash, a
silent tail cut off, a recording closed or not, prompt references resolved, prompts generated."""

import os
import shutil
import struct
import wave

import pytest

import voxplane_media_audio as audio
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import Prompt, Recording, Speech, StoredAudio


def wav(path, ms, rate=8000):
    with wave.open(str(path), 'wb') as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b'\x01\x00' * (rate * ms // 1000))
    return str(path)


def as_left_by_a_crash(path, extra=b''):
    """The file as PJSIP's writer leaves it before it is closed: sizes 0 in the header."""
    with open(path, 'r+b') as handle:
        handle.seek(4)
        handle.write(struct.pack('<I', 0))
        handle.seek(40)
        handle.write(struct.pack('<I', 0))
        handle.seek(0, os.SEEK_END)
        handle.write(extra)


def test_duration_and_closed_of_a_complete_file(tmp_path):
    path = wav(tmp_path / 'a.wav', 1500)
    assert audio.duration_ms(path) == 1500 and audio.closed(path)


def test_a_file_cut_off_by_a_crash_is_not_closed_and_its_header_is_repaired(tmp_path):
    path = wav(tmp_path / 'a.wav', 2000)
    as_left_by_a_crash(path, extra=b'\x02')  # half a sample: cut off in the middle of a write
    assert not audio.closed(path)
    assert audio.repair(path) == 2000
    assert audio.closed(path)
    with wave.open(path) as check:
        assert check.getnframes() == 16000


def test_an_empty_or_foreign_file_is_not_closed(tmp_path):
    (tmp_path / 'empty.wav').write_bytes(b'')
    (tmp_path / 'text.wav').write_bytes(b'hello')
    assert not audio.closed(str(tmp_path / 'empty.wav')) and not audio.closed(str(tmp_path / 'text.wav'))
    with pytest.raises(ValueError):
        audio.repair(str(tmp_path / 'text.wav'))


def test_a_silent_tail_is_cut_off(tmp_path):
    path = wav(tmp_path / 'a.wav', 5000)
    assert audio.cut(path, 1300) == 1300
    assert audio.closed(path) and audio.duration_ms(path) == 1300
    assert audio.cut(path, 9000) == 1300  # nothing to cut


def test_tones_are_written_at_the_services_rate(tmp_path):
    path = str(tmp_path / 'beep.wav')
    audio.write_tone(path, ((0, 100), (1000, 400)))
    with wave.open(path) as check:
        assert (check.getframerate(), check.getsampwidth(), check.getnchannels(), check.getnframes()) == (8000, 2, 1, 4000)


def test_prompt_references_are_found_on_disk_and_stored_audio_is_cached(tmp_path):
    prompts = tmp_path / 'prompts'
    (prompts / 'en').mkdir(parents=True)
    wav(prompts / 'en' / 'goodbye.wav', 500)
    stored = {}
    files = audio.AudioFiles(str(prompts), str(tmp_path / 'cache'), lambda tenant, digest: stored.get((tenant, digest)),
                             espeak_ng='/nonexistent/espeak-ng')
    message = wav(tmp_path / 'message.wav', 1000)
    stored[('acme', 'ab' * 32)] = open(message, 'rb').read()
    found = files.files([Prompt('goodbye'), Prompt('missing'), Recording(message), StoredAudio('ab' * 32),
                         StoredAudio('cd' * 32)], 'en', 'acme')
    assert found == [str(prompts / 'en' / 'goodbye.wav'), message,
                     str(tmp_path / 'cache' / 'audio' / 'acme' / ('ab' * 32 + '.wav'))]
    del stored[('acme', 'ab' * 32)]
    assert files.file(StoredAudio('ab' * 32), 'en', 'acme') == found[2]  # from the cache now
    # Speech without a text-to-speech engine: its fallback prompt.
    assert files.file(Speech('Anna is busy.', fallback=Prompt('goodbye')), 'en', 'acme') == found[0]
    assert files.file(Speech('Anna is busy.'), 'en', 'acme') is None


@pytest.mark.skipif(not (shutil.which('espeak-ng') and shutil.which('sox')), reason='needs espeak-ng and sox')
def test_prompts_are_generated_once_and_again_only_when_their_text_changes(tmp_path, monkeypatch):
    from ansible_collections.voxplane.pbx.plugins.module_utils import media_prompts
    monkeypatch.setattr(media_prompts, 'PROMPTS', {'goodbye': {'en': 'Goodbye.', 'de': 'Auf Wiederhören.'}})
    monkeypatch.setattr(media_prompts, 'MAX_SPOKEN_NUMBER', 2)
    out = str(tmp_path / 'prompts')
    written = audio.generate_prompts(out, espeak_ng=shutil.which('espeak-ng'), sox=shutil.which('sox'))
    assert sorted(written) == sorted('%s/%s.wav' % (lang, key) for lang in ('de', 'en')
                                     for key in ('goodbye', 'number/0', 'number/1', 'number/2') + tuple(media_prompts.TONES))
    with wave.open(os.path.join(out, 'de', 'goodbye.wav')) as check:
        assert check.getframerate() == 8000 and check.getnframes() > 2000
    assert audio.generate_prompts(out, espeak_ng=shutil.which('espeak-ng'), sox=shutil.which('sox')) == []
    monkeypatch.setattr(media_prompts, 'PROMPTS', {'goodbye': {'en': 'Bye.', 'de': 'Auf Wiederhören.'}})
    monkeypatch.setattr(media_prompts, 'MAX_SPOKEN_NUMBER', 1)
    assert sorted(audio.generate_prompts(out, espeak_ng=shutil.which('espeak-ng'), sox=shutil.which('sox'))) == [
        'de/number/2.wav', 'en/goodbye.wav', 'en/number/2.wav']
    assert not os.path.exists(os.path.join(out, 'en', 'number', '2.wav'))
