# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""audio.py: which WAV files the PBX takes, and what it makes of them (16-bit PCM, mono, 8000 Hz),
checked with real WAV files written here and measured by frequency."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import struct
import warnings

import pytest

from wav_helpers import amplitude, g711_wav, level_db, pcm_wav, raw_wav, read_samples, tone  # pytest.ini pythonpath
from ansible_collections.voxplane.pbx.plugins.module_utils import audio, rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError

RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000)
AMPLITUDE = 12000


def refused(data, rule, **kwargs):
    with pytest.raises(RuleError) as info:
        audio.convert(data, 'src', 'closed.wav', **kwargs)
    assert info.value.rule == rule, info.value.message
    assert info.value.field == 'src' and info.value.message.startswith('closed.wav ')
    return info.value.message


def converted_samples(data):
    result = audio.convert(data)
    samples, rate, channels = read_samples(result.wav)
    assert (rate, channels) == (8000, 1)
    return samples, result


# What is taken ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('rate', RATES)
@pytest.mark.parametrize('channels', (1, 2))
def test_a_tone_keeps_its_pitch_level_and_length_at_every_rate(rate, channels):
    samples, result = converted_samples(pcm_wav(tone(1000, rate, 0.5, AMPLITUDE, channels), rate, channels))
    assert abs(level_db(samples, 8000, 1000, AMPLITUDE)) < 0.2
    assert level_db(samples, 8000, 2000, AMPLITUDE) < -60  # nothing else in it
    assert result.duration_ms == 500 and len(samples) == 4000


@pytest.mark.parametrize('rate', [r for r in RATES if r > 16000])
def test_what_the_telephone_band_cannot_carry_is_removed_not_folded_back(rate):
    """A 5 kHz tone would come back as a 3 kHz one (8000 - 5000) without the low-pass filter."""
    samples, _result = converted_samples(pcm_wav(tone(5000, rate, 0.5, AMPLITUDE), rate))
    assert level_db(samples, 8000, 3000, AMPLITUDE) < -50
    middle = samples[len(samples) // 4: -len(samples) // 4]  # the tone's abrupt start and end are sound of their own
    assert max(abs(s) for s in middle) < AMPLITUDE / 100


@pytest.mark.parametrize('rate', (16000, 44100, 48000))
def test_the_telephone_band_passes_nearly_flat(rate):
    for frequency, loss in ((300, 0.2), (2000, 0.2), (3000, 0.5), (3400, 2.0)):
        samples, _result = converted_samples(pcm_wav(tone(frequency, rate, 0.5, AMPLITUDE), rate))
        assert abs(level_db(samples, 8000, frequency, AMPLITUDE)) < loss, frequency


def test_stereo_is_mixed_down():
    left, right = tone(440, 44100, 0.5, AMPLITUDE), tone(1000, 44100, 0.5, AMPLITUDE)
    interleaved = [s for pair in zip(left, right) for s in pair]
    samples, _result = converted_samples(pcm_wav(interleaved, 44100, 2))
    assert abs(level_db(samples, 8000, 440, AMPLITUDE / 2)) < 0.2
    assert abs(level_db(samples, 8000, 1000, AMPLITUDE / 2)) < 0.2


@pytest.mark.parametrize('rate', (8000, 44100))
def test_stereo_with_the_same_sound_on_both_sides_is_the_mono_file(rate):
    mono = tone(700, rate, 0.3, AMPLITUDE)
    assert audio.convert(pcm_wav(tone(700, rate, 0.3, AMPLITUDE, 2), rate, 2)).wav == audio.convert(pcm_wav(mono, rate)).wav


@pytest.mark.parametrize('law', ('alaw', 'ulaw'))
@pytest.mark.parametrize('rate', (8000, 16000))
def test_a_law_and_mu_law_are_decoded(law, rate):
    samples, result = converted_samples(g711_wav(tone(800, rate, 0.5, AMPLITUDE), rate, law))
    assert abs(level_db(samples, 8000, 800, AMPLITUDE)) < 0.3
    assert result.duration_ms == 500


def test_g711_decoding_is_the_standard_one():
    """Every code as the ITU-T tables give it (audioop's, where this Python still has it)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        audioop = pytest.importorskip('audioop')
    for code in range(256):
        assert audio._ulaw(code) == struct.unpack('<h', audioop.ulaw2lin(bytes([code]), 2))[0]
        assert audio._alaw(code) == struct.unpack('<h', audioop.alaw2lin(bytes([code]), 2))[0]


def test_8_bit_pcm_is_taken():
    samples, _result = converted_samples(pcm_wav(tone(600, 22050, 0.5, AMPLITUDE), 22050, width=1))
    assert abs(level_db(samples, 8000, 600, AMPLITUDE)) < 0.3


def test_wave_format_extensible_is_taken():
    body = pcm_wav(tone(500, 8000, 0.2), 8000)[44:]
    data = raw_wav((audio.EXTENSIBLE, 1, 8000, 16000, 2, 16), body, extensible=audio.PCM)
    assert audio.convert(data).wav == audio.convert(pcm_wav(tone(500, 8000, 0.2), 8000)).wav


def test_other_chunks_and_odd_sizes_are_skipped():
    body = pcm_wav(tone(500, 8000, 0.2), 8000)[44:]
    chunks = [(b'LIST', b'INFOISFT\x03\x00\x00ab\x00'), (b'cue ', b'\x00' * 5)]
    data = raw_wav((audio.PCM, 1, 8000, 16000, 2, 16), body, before_data=chunks)
    assert audio.convert(data).wav == audio.convert(pcm_wav(tone(500, 8000, 0.2), 8000)).wav


def test_a_streamed_file_with_a_data_size_too_large_is_read_as_far_as_it_goes():
    data = bytearray(pcm_wav(tone(500, 8000, 0.2), 8000))
    data[40:44] = struct.pack('<I', 0xFFFFFFFF)
    assert audio.convert(bytes(data)).duration_ms == 200


# What the engine plays: one canonical file ------------------------------------------------------------

def test_the_result_is_the_canonical_engine_file_and_converting_it_again_changes_nothing():
    result = audio.convert(pcm_wav(tone(1000, 44100, 0.25, AMPLITUDE, 2), 44100, 2))
    assert result.wav[:44] == struct.pack('<4sI4s4sIHHIIHH4sI', b'RIFF', 36 + 4000, b'WAVE', b'fmt ', 16, 1, 1, 8000,
                                          16000, 2, 16, b'data', 4000)
    assert len(result.wav) == 44 + 4000
    assert result.sha256 == hashlib.sha256(result.wav).hexdigest()
    again = audio.convert(result.wav)
    assert (again.wav, again.sha256, again.duration_ms) == (result.wav, result.sha256, 250)
    assert audio.engine_duration_ms(result.wav) == 250


def test_an_engine_file_is_taken_sample_for_sample():
    samples = tone(1234, 8000, 0.1)
    assert read_samples(audio.convert(pcm_wav(samples, 8000)).wav)[0] == samples


def test_the_same_sound_always_gives_the_same_bytes():
    data = pcm_wav(tone(440, 48000, 0.3, AMPLITUDE, 2), 48000, 2)
    assert audio.convert(data).sha256 == audio.convert(data).sha256
    audio._KERNELS.clear()
    assert audio.convert(data).sha256 == audio.convert(bytes(data)).sha256


def test_loud_sound_is_clipped_not_wrapped():
    square = [32767 if (n // 20) % 2 else -32768 for n in range(44100 // 4)]
    samples, _result = converted_samples(pcm_wav(square, 44100))
    assert max(samples) <= 32767 and min(samples) >= -32768
    assert amplitude(samples, 8000, 1102.5) > 30000


def test_engine_duration_refuses_what_is_not_the_engine_format():
    with pytest.raises(RuleError) as info:
        audio.engine_duration_ms(pcm_wav(tone(500, 16000, 0.1), 16000))
    assert info.value.rule == 'audio_format' and 'not the audio the PBX keeps' in info.value.message
    odd = raw_wav((audio.PCM, 1, 8000, 16000, 2, 16), b'\x00\x00' * 10, before_data=[(b'LIST', b'xx')])
    with pytest.raises(RuleError):
        audio.engine_duration_ms(odd)  # the right format, but not the canonical file


# What is refused, naming field and rule --------------------------------------------------------------

@pytest.mark.parametrize('data, what', [
    (b'ID3\x03\x00\x00\x00' + b'\x00' * 100, 'an MP3 file'),
    (b'\xff\xfb\x90\x00' + b'\x00' * 100, 'an MP3 file'),
    (b'OggS' + b'\x00' * 100, 'an Ogg file'),
    (b'fLaC' + b'\x00' * 100, 'a FLAC file'),
    (b'', 'an empty file'),
    (b'hello, this is text', 'not a WAV file'),
])
def test_a_file_that_is_not_a_wav_file_is_refused_saying_what_it_looks_like(data, what):
    message = refused(data, 'audio_format')
    assert what in message and 'give a WAV file' in message


@pytest.mark.parametrize('fmt, words', [
    ((audio.IEEE_FLOAT, 1, 8000, 32000, 4, 32), 'IEEE float'),
    ((audio.PCM, 1, 8000, 24000, 3, 24), '24-bit PCM'),
    ((0x55, 1, 8000, 1000, 1, 0), 'MP3 audio'),
    ((2, 1, 8000, 4000, 256, 4), 'Microsoft ADPCM'),
    ((audio.ALAW, 1, 8000, 16000, 2, 16), 'A-law with 16 bits'),
    ((audio.PCM, 1, 8000, 16000, 4, 16), 'a frame has 4 bytes'),
])
def test_an_encoding_the_pbx_does_not_play_is_refused(fmt, words):
    assert words in refused(raw_wav(fmt, b'\x00' * 64), 'audio_format')


def test_more_than_two_channels_are_refused():
    assert '6 channels' in refused(raw_wav((audio.PCM, 6, 8000, 96000, 12, 16), b'\x00' * 120), 'audio_channels')


@pytest.mark.parametrize('rate', (4000, 7999, 48001, 96000))
def test_a_sample_rate_outside_8000_to_48000_is_refused(rate):
    message = refused(raw_wav((audio.PCM, 1, rate, rate * 2, 2, 16), b'\x00' * 64), 'audio_sample_rate')
    assert '%d Hz' % rate in message and '8000 to 48000 Hz' in message


def test_a_file_without_sound_is_refused():
    refused(pcm_wav([], 8000), 'audio_empty')
    refused(raw_wav((audio.PCM, 1, 8000, 16000, 2, 16), b'\x00'), 'audio_empty')  # half a frame
    assert 'less than 1 ms' in refused(pcm_wav([0, 0, 0], 48000), 'audio_empty')
    assert 'without a data chunk' in refused(b'RIFF\x0c\x00\x00\x00WAVEfmt \x10\x00\x00\x00' +
                                             struct.pack('<HHIIHH', 1, 1, 8000, 16000, 2, 16), 'audio_format')
    assert 'without a format chunk' in refused(b'RIFF\x0c\x00\x00\x00WAVEdata\x02\x00\x00\x00\x00\x00', 'audio_format')


def test_longer_than_the_limit_is_refused():
    assert rules.ANNOUNCEMENT_MAX_SECONDS == 300
    message = refused(pcm_wav([0] * (8000 * 3 + 1), 8000), 'audio_length', max_seconds=3)
    assert '3.0 s long' in message and 'at most 3 s' in message
    assert audio.convert(pcm_wav([0] * 8000 * 3, 8000), max_seconds=3).duration_ms == 3000


def test_a_file_larger_than_any_file_within_the_limit_is_refused_unread():
    limit = audio.max_wav_bytes()
    assert limit == 300 * 48000 * 2 * 2 + 1024 * 1024
    assert audio.too_large(limit) is None
    error = audio.too_large(limit + 1, 'src', 'big.wav')
    assert (error.field, error.rule) == ('src', 'audio_length') and error.message.startswith('big.wav has')
