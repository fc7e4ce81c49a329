# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audio the PBX plays: WAV files checked and converted to what the media engine plays.

The media service plays 16-bit PCM, mono, 8000 Hz WAV files (docs/media.md). What a user gives
(an announcement's WAV) is checked here, once: a RIFF/WAVE file of 8- or 16-bit PCM, A-law or
µ-law, mono or stereo, 8000 to 48000 Hz, at most ``rules.ANNOUNCEMENT_MAX_SECONDS`` long; then
decoded, mixed down to mono and resampled to 8000 Hz, and written as one canonical WAV (a 44-byte
header, then the samples), so that the same sound always gives the same bytes and the same SHA-256.

Plain Python, standard library only: this runs on the host that holds the directory, whose Python
may be 3.13, which has no ``audioop``. The resampler is a windowed-sinc low-pass filter in integer
arithmetic (the same result on every host), evaluated only at the output samples; it keeps the
telephone band (300-3400 Hz) and removes what would fold back into it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import array
import hashlib
import math
import operator
import struct
import sys
from fractions import Fraction

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError

ENGINE_RATE = 8000          # what the media engine plays: 16-bit PCM, mono, 8000 Hz
LOWEST_RATE, HIGHEST_RATE = 8000, 48000
CHANNELS = (1, 2)

PCM, IEEE_FLOAT, ALAW, MULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_FORMAT_NAMES = {PCM: 'PCM', IEEE_FLOAT: 'IEEE float', ALAW: 'A-law', MULAW: 'µ-law', 2: 'Microsoft ADPCM',
                 0x11: 'IMA ADPCM', 0x31: 'GSM 6.10', 0x55: 'MP3', 0x50: 'MPEG'}
_ACCEPTED = 'RIFF/WAVE of 8- or 16-bit PCM, A-law or µ-law'

# Room for the chunks a WAV file may carry beside its samples (LIST/INFO, cue points, ...).
_OTHER_CHUNKS = 1024 * 1024


def max_wav_bytes(seconds=None):
    """The size of the largest WAV file that can pass the checks: the longest sound at the highest
    rate in stereo 16 bit, plus room for other chunks. A file larger than this is too long
    whatever it holds (the controller refuses to send it)."""
    seconds = rules.ANNOUNCEMENT_MAX_SECONDS if seconds is None else seconds
    return seconds * HIGHEST_RATE * 2 * 2 + _OTHER_CHUNKS


class Wav(object):
    """A WAV file's format and samples as read: ``encoding`` (PCM, ALAW, MULAW), ``channels``,
    ``rate``, ``bits`` per sample, ``frames`` and ``samples`` (the bytes of the data chunk, whole
    frames only)."""

    __slots__ = ('encoding', 'channels', 'rate', 'bits', 'frames', 'samples')

    def __init__(self, encoding, channels, rate, bits, frames, samples):
        self.encoding = encoding
        self.channels = channels
        self.rate = rate
        self.bits = bits
        self.frames = frames
        self.samples = samples

    @property
    def duration_ms(self):
        return int(round(self.frames * 1000.0 / self.rate))

    def describe(self):
        return '%s %d bit, %s, %d Hz, %.1f s' % (_FORMAT_NAMES.get(self.encoding, self.encoding), self.bits,
                                                 'mono' if self.channels == 1 else 'stereo', self.rate,
                                                 self.frames / float(self.rate))


def _what_else(data):
    """What a file that is not a WAV file looks like it is, for the message."""
    if data[:3] == b'ID3' or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return 'an MP3 file'
    for magic, name in ((b'OggS', 'an Ogg file'), (b'fLaC', 'a FLAC file'), (b'FORM', 'an AIFF file'),
                        (b'RIFX', 'a big-endian RIFF file'), (b'RF64', 'an RF64 file')):
        if data.startswith(magic):
            return name
    if data[4:8] == b'ftyp':
        return 'an MP4/M4A file'
    if not data:
        return 'an empty file'
    return 'not a WAV file'


def read_wav(data, field='src', subject='the file'):
    """The Wav in ``data`` (a WAV file's bytes); RuleError naming ``field`` when it is not one the
    PBX can play: rules audio_format, audio_channels, audio_sample_rate, audio_empty. Messages begin
    with ``subject`` (the file's name)."""
    def refuse(rule, text, *values):
        raise RuleError(field, rule, '%s %s' % (subject, text % values))
    if not isinstance(data, (bytes, bytearray)):
        refuse('audio_format', 'is not the bytes of a WAV file')
    data = bytes(data)
    if len(data) < 12 or data[:4] != b'RIFF' or data[8:12] != b'WAVE':
        refuse('audio_format', 'is %s (%d bytes); give a WAV file (%s), for example converted with '
               '"sox in.mp3 -r 8000 -c 1 -b 16 out.wav"', _what_else(data), len(data), _ACCEPTED)
    fmt = None
    samples = None
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack('<I', data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]  # a writer that streamed may leave size too large: what is there
        if chunk == b'fmt ' and fmt is None:
            fmt = body
        elif chunk == b'data' and samples is None:
            samples = body
            if fmt is not None:
                break
        pos += 8 + size + (size & 1)  # chunks are padded to an even size
    if fmt is None or len(fmt) < 16:
        refuse('audio_format', 'is a RIFF/WAVE file without a format chunk ("fmt "); give a WAV file (%s)', _ACCEPTED)
    if samples is None:
        refuse('audio_format', 'is a RIFF/WAVE file without a data chunk: it holds no sound')
    encoding, channels, rate, _byte_rate, block_align, bits = struct.unpack('<HHIIHH', fmt[:16])
    if encoding == EXTENSIBLE and len(fmt) >= 26:
        encoding = struct.unpack('<H', fmt[24:26])[0]  # the first two bytes of the SubFormat GUID
    if encoding not in (PCM, ALAW, MULAW):
        refuse('audio_format', 'is %s audio (WAV format %d); give %s', _FORMAT_NAMES.get(encoding, 'compressed'),
               encoding, _ACCEPTED)
    if encoding == PCM and bits not in (8, 16):
        refuse('audio_format', 'is %d-bit PCM; give 8- or 16-bit PCM, A-law or µ-law', bits)
    if encoding != PCM and bits != 8:
        refuse('audio_format', 'is %s with %d bits per sample; A-law and µ-law have 8', _FORMAT_NAMES[encoding], bits)
    if channels not in CHANNELS:
        refuse('audio_channels', 'has %d channels; give mono or stereo', channels)
    if not LOWEST_RATE <= rate <= HIGHEST_RATE:
        refuse('audio_sample_rate', 'has a sample rate of %d Hz; give %d to %d Hz', rate, LOWEST_RATE, HIGHEST_RATE)
    frame = channels * bits // 8
    if block_align != frame:
        refuse('audio_format', 'says a frame has %d bytes, but %d channel(s) of %d bits take %d', block_align, channels,
               bits, frame)
    frames = len(samples) // frame
    if frames == 0:
        refuse('audio_empty', 'holds no sound (its data chunk has no samples)')
    return Wav(encoding, channels, rate, bits, frames, samples[:frames * frame])


# G.711 (ITU-T): every 8-bit code and the 16-bit sample it stands for, as audioop decoded them.
def _ulaw(code):
    code = ~code & 0xFF
    sample = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return 0x84 - sample if code & 0x80 else sample - 0x84


def _alaw(code):
    code ^= 0x55
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    sample = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return sample if code & 0x80 else -sample


def _byte_tables(decode):
    """(low bytes, high bytes): bytes.translate tables that turn 8-bit codes into little-endian 16-bit samples."""
    values = [decode(code) & 0xFFFF for code in range(256)]
    return bytes(v & 0xFF for v in values), bytes(v >> 8 for v in values)


_TABLES = {ALAW: _byte_tables(_alaw), MULAW: _byte_tables(_ulaw), PCM: _byte_tables(lambda code: (code - 128) << 8)}


def _linear(wav):
    """The samples as signed 16-bit values (an array of 'h', channels interleaved)."""
    if wav.bits == 8:  # 8-bit PCM (unsigned), A-law, µ-law: a table lookup per byte
        low, high = _TABLES[wav.encoding]
        wide = bytearray(2 * len(wav.samples))
        wide[0::2] = wav.samples.translate(low)
        wide[1::2] = wav.samples.translate(high)
        raw = bytes(wide)
    else:
        raw = wav.samples
    values = array.array('h')
    values.frombytes(raw)
    if sys.byteorder == 'big':
        values.byteswap()
    return values


# The low-pass filter: a Kaiser-windowed sinc, cut off at _CUTOFF_HZ, _ZEROS zero crossings of the
# output rate on each side; its taps are integers scaled by 2 ** _SHIFT.
_CUTOFF_HZ = 3800.0
_ZEROS = 8
_KAISER_BETA = 7.0
_SHIFT = 16
_KERNELS = {}


def _bessel_i0(x):
    total, term, k = 1.0, 1.0, 1
    while term > 1e-12 * total:
        term *= (x / (2.0 * k)) ** 2
        total += term
        k += 1
    return total


def _kernels(rate):
    """(up, down, [(first input sample, integer taps)] per output phase) for ``rate`` -> ENGINE_RATE.
    Output sample m lies at input position m * down / up; outputs m and m + up share their taps."""
    if rate not in _KERNELS:
        ratio = Fraction(ENGINE_RATE, rate)
        up, down = ratio.numerator, ratio.denominator
        step = rate / float(ENGINE_RATE)
        half = int(math.ceil(_ZEROS * step))
        fc = _CUTOFF_HZ / rate  # cycles per input sample
        norm = _bessel_i0(_KAISER_BETA)
        scale = 1 << _SHIFT
        phases = []
        for p in range(up):
            position = Fraction(p * down, up)
            base = position.numerator // position.denominator
            offset = float(position - base)
            weights = []
            for k in range(-half + 1, half + 1):
                t = k - offset
                x = t / (half + 1)
                window = _bessel_i0(_KAISER_BETA * math.sqrt(max(0.0, 1.0 - x * x))) / norm
                sinc = 2 * fc * (math.sin(2 * math.pi * fc * t) / (2 * math.pi * fc * t) if t else 1.0)
                weights.append(sinc * window)
            total = sum(weights)
            taps = [int(round(w / total * scale)) for w in weights]
            taps[half - 1] += scale - sum(taps)  # the taps add up to exactly 1: silence and DC pass unchanged
            phases.append((base - half + 1, taps))
        _KERNELS[rate] = (up, down, phases)
    return _KERNELS[rate]


def _resample(mono, rate, shift):
    """``mono`` (a list of ints, each ``2 ** (shift - _SHIFT)`` times a sample) at ``rate`` as a list of
    16-bit samples at ENGINE_RATE."""
    up, down, phases = _kernels(rate)
    width = len(phases[0][1])
    pad = width + down
    padded = [0] * pad + mono + [0] * pad
    count = (len(mono) * up + down // 2) // down  # rounded: the output lasts as long as the input
    out = [0] * count
    rounding = 1 << (shift - 1)
    mul = operator.mul
    for p, (first, taps) in enumerate(phases):
        n = len(range(p, count, up))
        if n:
            start = first + pad
            out[p::up] = [(sum(map(mul, taps, padded[b:b + width])) + rounding) >> shift
                          for b in range(start, start + n * down, down)]
    return out


def _clip(values):
    return [-32768 if v < -32768 else 32767 if v > 32767 else v for v in values]


def engine_samples(wav):
    """The sound of a Wav as 16-bit mono samples at ENGINE_RATE (an array of 'h')."""
    values = _linear(wav)
    stereo = wav.channels == 2
    if wav.rate == ENGINE_RATE:
        if not stereo:
            return values
        return array.array('h', [(a + b) >> 1 for a, b in zip(values[0::2], values[1::2])])
    mono = list(map(operator.add, values[0::2], values[1::2])) if stereo else values.tolist()
    return array.array('h', _clip(_resample(mono, wav.rate, _SHIFT + (1 if stereo else 0))))


def write_wav(samples):
    """The canonical WAV file of 16-bit mono ENGINE_RATE samples (an array of 'h'): a 44-byte header
    (RIFF, fmt of 16 bytes, data), then the samples, little-endian."""
    if sys.byteorder == 'big':
        samples = array.array('h', samples)
        samples.byteswap()
    body = samples.tobytes()
    header = struct.pack('<4sI4s4sIHHIIHH4sI', b'RIFF', 36 + len(body), b'WAVE', b'fmt ', 16, PCM, 1, ENGINE_RATE,
                         ENGINE_RATE * 2, 2, 16, b'data', len(body))
    return header + body


class Converted(object):
    """What the engine plays: the canonical WAV bytes, their SHA-256, the duration in ms, and the
    format the source had (for messages)."""

    __slots__ = ('wav', 'sha256', 'duration_ms', 'source')

    def __init__(self, wav, duration_ms, source):
        self.wav = wav
        self.sha256 = hashlib.sha256(wav).hexdigest()
        self.duration_ms = duration_ms
        self.source = source


def too_large(size, field='src', subject='the file', max_seconds=None):
    """RuleError audio_length for a file of ``size`` bytes that is larger than any WAV file of at most
    ``max_seconds`` can be (checked before the file is read or sent anywhere), else None."""
    max_seconds = rules.ANNOUNCEMENT_MAX_SECONDS if max_seconds is None else max_seconds
    if size <= max_wav_bytes(max_seconds):
        return None
    return RuleError(field, 'audio_length', '%s has %d bytes, more than a WAV file of %d s can have (%d); an '
                     'announcement is at most %d s' % (subject, size, max_seconds, max_wav_bytes(max_seconds), max_seconds))


def convert(data, field='src', subject='the file', max_seconds=None):
    """A WAV file's bytes checked and converted to what the engine plays (Converted); RuleError
    naming ``field`` when the file is not a WAV file the PBX can play (read_wav's rules) or is longer
    than ``max_seconds`` (rules.ANNOUNCEMENT_MAX_SECONDS; rule audio_length). Messages begin with
    ``subject`` (the file's name)."""
    max_seconds = rules.ANNOUNCEMENT_MAX_SECONDS if max_seconds is None else max_seconds
    error = too_large(len(data), field, subject, max_seconds) if isinstance(data, (bytes, bytearray)) else None
    if error is not None:
        raise error
    wav = read_wav(data, field, subject)
    if wav.frames > max_seconds * wav.rate:
        raise RuleError(field, 'audio_length', '%s is %.1f s long; an announcement is at most %d s'
                        % (subject, wav.frames / float(wav.rate), max_seconds))
    samples = engine_samples(wav)
    if len(samples) < ENGINE_RATE // 1000:
        raise RuleError(field, 'audio_empty', '%s holds less than 1 ms of sound' % subject)
    return Converted(write_wav(samples), samples_duration_ms(len(samples)), wav.describe())


def samples_duration_ms(count):
    """The duration of ``count`` samples at ENGINE_RATE in whole milliseconds (rounded)."""
    return (count * 1000 + ENGINE_RATE // 2) // ENGINE_RATE


def engine_duration_ms(data, field='wav_base64', subject='the audio'):
    """The duration of a WAV file that is already what the engine plays (the canonical form write_wav
    makes, as the directory keeps it); RuleError audio_format for anything else."""
    wav = read_wav(data, field, subject)
    if (wav.encoding, wav.channels, wav.rate, wav.bits) != (PCM, 1, ENGINE_RATE, 16) or \
            write_wav(_linear(wav)) != bytes(data):
        raise RuleError(field, 'audio_format', '%s is %s, not the audio the PBX keeps (16-bit PCM, mono, %d Hz, '
                        'as exported from a directory)' % (subject, wav.describe(), ENGINE_RATE))
    return samples_duration_ms(wav.frames)
