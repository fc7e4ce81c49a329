# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WAV files for the tests, made here (the standard library's ``wave`` module for PCM, G.711 coded by
the ITU-T reference algorithm, any header by hand), and sound measured by frequency (Goertzel),
never by size. Shared by the unit and integration tests (pytest.ini's pythonpath)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import array
import io
import math
import struct
import sys
import wave


def tone(frequency, rate, seconds=1.0, amplitude=12000, channels=1):
    """A sine tone as a list of 16-bit samples (channels interleaved, the same in each)."""
    samples = [int(round(amplitude * math.sin(2 * math.pi * frequency * n / rate))) for n in range(int(rate * seconds))]
    return [s for s in samples for _channel in range(channels)]


def pcm_wav(samples, rate, channels=1, width=2):
    """A PCM WAV file (bytes) of 16-bit samples, written by the wave module; ``width`` 1 writes 8-bit PCM."""
    if width == 1:
        frames = bytes((s >> 8) + 128 for s in samples)
    else:
        values = array.array('h', samples)
        if sys.byteorder == 'big':
            values.byteswap()
        frames = values.tobytes()
    out = io.BytesIO()
    with wave.open(out, 'wb') as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(frames)
    return out.getvalue()


def _ulaw_code(sample):
    """ITU-T G.711 µ-law of a 16-bit sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), clip) + bias
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _alaw_code(sample):
    """ITU-T G.711 A-law of a 16-bit sample."""
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(abs(sample) >> 3, 0xFFF)
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def raw_wav(fmt_fields, data, before_data=(), extensible=None):
    """A WAV file from its parts: fmt (format, channels, rate, byte rate, block align, bits), the data
    chunk's bytes, chunks (id, body) placed between fmt and data (padded to even size), and for
    WAVE_FORMAT_EXTENSIBLE the sub-format."""
    fmt = struct.pack('<HHIIHH', *fmt_fields)
    if extensible is not None:
        fmt += struct.pack('<HHI', 22, fmt_fields[5], 0) + struct.pack('<H', extensible) + \
            b'\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71'
    chunks = [(b'fmt ', fmt)] + list(before_data) + [(b'data', data)]
    body = b''.join(name + struct.pack('<I', len(part)) + part + (b'\x00' if len(part) % 2 else b'') for name, part in chunks)
    return b'RIFF' + struct.pack('<I', 4 + len(body)) + b'WAVE' + body


def g711_wav(samples, rate, law, channels=1):
    """An A-law (``law`` 'alaw') or µ-law ('ulaw') WAV file of 16-bit samples."""
    encode, tag = (_alaw_code, 6) if law == 'alaw' else (_ulaw_code, 7)
    return raw_wav((tag, channels, rate, rate * channels, channels, 8), bytes(encode(s) for s in samples))


def read_samples(data):
    """(16-bit samples, rate, channels) of a PCM WAV file's bytes, read with the wave module."""
    with wave.open(io.BytesIO(data), 'rb') as handle:
        assert handle.getsampwidth() == 2
        values = array.array('h')
        values.frombytes(handle.readframes(handle.getnframes()))
        if sys.byteorder == 'big':
            values.byteswap()
        return values.tolist(), handle.getframerate(), handle.getnchannels()


def amplitude(samples, rate, frequency):
    """The amplitude of ``frequency`` in the samples (Goertzel over the middle half, Hann-windowed)."""
    middle = samples[len(samples) // 4: len(samples) - len(samples) // 4]
    n = len(middle)
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for i, value in enumerate(middle):
        window = 0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1))
        s1, s2 = value * window + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / (n * 0.5)


def level_db(samples, rate, frequency, reference):
    """How loud ``frequency`` is in the samples against an amplitude of ``reference``, in dB."""
    return 20 * math.log10(max(amplitude(samples, rate, frequency), 1e-9) / reference)
