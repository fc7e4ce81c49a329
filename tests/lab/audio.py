# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audio for the media tests and the media bench: WAV files of known tone sequences, and
checks by frequency, never by size.

- ``write_tones(path, tones)``: a WAV (8 kHz, 16 bit, mono) of ((frequency Hz, ms), ...); 0 Hz is
  silence.
- ``tone_segments(path, frequencies)``: the stretches of the file where one of ``frequencies``
  carries nearly all the energy (per 20 ms window, the DFT bin Goertzel computes), as
  (frequency, start ms, length ms).
- ``has_sequence(path, tones)``: whether the tones of a sequence appear in that order, each
  about as long as sent (G.711 and the jitter buffer on the way allowed for).
- ``find(reference, path)``: where a reference recording (a prompt) is heard in a file, by
  normalised cross-correlation, and how well it matches (1.0: the same samples); ``heard``
  the same piece by piece, which a dropped or stretched frame on the way does not spoil.
- ``gaps(path)``: the longest stretch of near-silence inside a file of continuous sound.
"""

import struct
import wave

import numpy

RATE = 8000
WINDOW_MS = 20
# A window counts as a tone when the tone's frequency holds this share of its energy.
TONE_SHARE = 0.6
# Frequencies of the test sequences: none is a DTMF frequency or a harmonic of another.
SEQUENCE = ((500, 400), (0, 100), (1100, 400), (0, 100), (1700, 400), (0, 100), (800, 400))
# A second sequence for the other side of a call, apart from the first and from the ringing tone.
OTHER_SEQUENCE = ((600, 400), (0, 100), (1450, 400), (0, 100), (1900, 400), (0, 100), (350, 400))


def write_tones(path, tones, rate=RATE, amplitude=10000):
    """Write a WAV file of the tones ((frequency, ms), ...), each faded in and out over 5 ms."""
    frames = []
    for frequency, ms in tones:
        count = rate * ms // 1000
        t = numpy.arange(count)
        signal = numpy.sin(2 * numpy.pi * frequency * t / rate) if frequency else numpy.zeros(count)
        fade = min(rate // 200, count // 2)
        if fade:
            ramp = numpy.linspace(0.0, 1.0, fade)
            signal[:fade] *= ramp
            signal[-fade:] *= ramp[::-1]
        frames.append((signal * amplitude).astype('<i2'))
    data = numpy.concatenate(frames) if frames else numpy.zeros(0, dtype='<i2')
    with wave.open(str(path), 'wb') as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data.tobytes())
    return path


def read(path):
    """(samples as float64, rate) of a 16-bit mono WAV file; a header a crash left wrong is
    read by the bytes on disk."""
    with open(str(path), 'rb') as handle:
        raw = handle.read()
    if raw[:4] != b'RIFF' or raw[8:12] != b'WAVE':
        raise ValueError('%s: not a WAV file' % path)
    position, rate = 12, RATE
    while position + 8 <= len(raw):
        name, size = raw[position:position + 4], struct.unpack('<I', raw[position + 4:position + 8])[0]
        if name == b'fmt ':
            rate = struct.unpack('<I', raw[position + 12:position + 16])[0]
        if name == b'data':
            body = raw[position + 8:]
            body = body[:len(body) - len(body) % 2]
            return numpy.frombuffer(body, dtype='<i2').astype(numpy.float64), rate
        position += 8 + size + (size & 1)
    raise ValueError('%s: no data chunk' % path)


def duration_ms(path):
    samples, rate = read(path)
    return len(samples) * 1000 // rate


def _tone_power(windows, rate, frequency):
    """|X(f)|^2 of each window (rows): the single DFT bin Goertzel computes, for all windows at once."""
    n = numpy.arange(windows.shape[1])
    return numpy.abs(windows @ numpy.exp(-2j * numpy.pi * frequency * n / rate)) ** 2


DROPOUT_MS = 60


def tone_segments(path, frequencies, window_ms=WINDOW_MS, share=TONE_SHARE):
    """[(frequency, start ms, length ms)] of the stretches where one of ``frequencies`` dominates."""
    samples, rate = read(path)
    size = rate * window_ms // 1000
    count = len(samples) // size
    windows = samples[:count * size].reshape(count, size)
    energy = numpy.einsum('ij,ij->i', windows, windows)
    # A pure tone of the bin's frequency has |X|^2 = N * energy / 2: its share is 1.
    shares = numpy.array([_tone_power(windows, rate, f) * 2.0 / (size * numpy.maximum(energy, 1e-9))
                          for f in frequencies]) if frequencies else numpy.zeros((0, count))
    segments = []
    for index in range(count):
        found = None
        if energy[index] > size * 100.0 ** 2 and len(frequencies):  # quieter than amplitude ~100: silence
            best = int(numpy.argmax(shares[:, index]))
            if shares[best, index] >= share:
                found = frequencies[best]
        at = index * window_ms
        if segments and segments[-1][0] == found and segments[-1][1] + segments[-1][2] == at:
            segments[-1][2] += window_ms
        else:
            segments.append([found, at, window_ms])
    # A frame or two lost on the way (a jitter buffer that ran empty) splits a tone: one tone
    # again when the same frequency goes on after at most DROPOUT_MS.
    joined = []
    for segment in segments:
        if (segment[0] is not None and len(joined) >= 2 and joined[-1][0] is None and joined[-1][2] <= DROPOUT_MS and
                joined[-2][0] == segment[0]):
            gap = joined.pop()
            joined[-1][2] += gap[2] + segment[2]
        else:
            joined.append(segment)
    return [tuple(s) for s in joined if s[0] is not None]


def has_sequence(path, tones=SEQUENCE, tolerance_ms=80):
    """Whether the non-silent tones of ``tones`` are heard in that order, one right after the
    other, each within ``tolerance_ms`` of its length. The segments found, for the message."""
    wanted = [(f, ms) for f, ms in tones if f]
    segments = [s for s in tone_segments(path, sorted(set(f for f, _ms in wanted))) if s[2] >= 2 * WINDOW_MS]
    for first in range(len(segments) - len(wanted) + 1):
        run = segments[first:first + len(wanted)]
        if all(s[0] == f and abs(s[2] - ms) <= tolerance_ms for s, (f, ms) in zip(run, wanted)):
            return True, segments
    return False, segments


def find(reference, path, start_ms=0):
    """(position in ms, match 0..1) of the best place ``reference`` (a WAV file) is heard in
    ``path`` from ``start_ms`` on."""
    ref, _rate = read(reference)
    heard, rate = read(path)
    skip = rate * start_ms // 1000
    heard = heard[skip:]
    if len(heard) < len(ref) or not len(ref):
        return None, 0.0
    size = 1
    while size < len(heard) + len(ref):
        size *= 2
    correlation = numpy.fft.irfft(numpy.fft.rfft(heard, size) * numpy.conj(numpy.fft.rfft(ref, size)), size)
    correlation = correlation[:len(heard) - len(ref) + 1]
    # The energy of each stretch of ``heard`` as long as the reference, for the normalisation.
    squares = numpy.concatenate(([0.0], numpy.cumsum(heard * heard)))
    energy = squares[len(ref):] - squares[:len(heard) - len(ref) + 1]
    norm = numpy.sqrt(numpy.maximum(energy, 1e-9) * float(numpy.dot(ref, ref)))
    score = correlation / norm
    best = int(numpy.argmax(score))
    return (skip + best) * 1000 // rate, float(score[best])


def heard(reference, path, start_ms=0, chunk_ms=200, slack_ms=300, match=0.9):
    """(where ``reference`` ends in ``path`` in ms, the share of its sounding 200 ms pieces that
    were heard). Piece by piece, each near where it belongs (within ``slack_ms``): a jitter buffer
    that dropped or stretched a frame shifts what follows, which spoils a match of the whole."""
    position, _score = find(reference, path, start_ms)
    if position is None:
        return None, 0.0
    ref, rate = read(reference)
    samples, _rate = read(path)
    size, slack = rate * chunk_ms // 1000, rate * slack_ms // 1000
    start = rate * position // 1000
    pieces = found = 0
    for offset in range(0, len(ref) - size + 1, size):
        piece = ref[offset:offset + size]
        energy = float(numpy.dot(piece, piece))
        if energy < size * 300.0 ** 2:  # a pause of the speech: nothing to recognise
            continue
        pieces += 1
        low, high = max(0, start + offset - slack), min(len(samples), start + offset + size + slack)
        stretch = samples[low:high]
        if len(stretch) < size:
            continue
        correlation = numpy.correlate(stretch, piece, mode='valid')
        squares = numpy.concatenate(([0.0], numpy.cumsum(stretch * stretch)))
        norms = numpy.sqrt(numpy.maximum(squares[size:] - squares[:-size], 1e-9) * energy)
        if float(numpy.max(correlation / norms)) >= match:
            found += 1
    return position + len(ref) * 1000 // rate, (found / float(pieces)) if pieces else 0.0


def gaps(path, threshold=200, start_ms=0, end_ms=None, window_ms=10):
    """The longest run (ms) of windows quieter than ``threshold`` (RMS) between ``start_ms`` and
    ``end_ms``: in a recording of continuous sound, the longest stretch that was lost."""
    samples, rate = read(path)
    size = rate * window_ms // 1000
    end = len(samples) if end_ms is None else min(len(samples), rate * end_ms // 1000)
    longest = current = 0
    for start in range(rate * start_ms // 1000, end - size + 1, size):
        window = samples[start:start + size]
        if numpy.sqrt(numpy.mean(window * window)) < threshold:
            current += window_ms
            longest = max(longest, current)
        else:
            current = 0
    return longest
