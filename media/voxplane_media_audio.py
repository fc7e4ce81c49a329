# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audio files of the media service: WAV headers (length, repair after a crash, cutting a
silent tail), speech from text (espeak-ng, resampled with sox to the service's 8 kHz), tones,
and where each prompt reference of a step (media_steps) is found on disk.

Also the deploy-time prompt generator the media role runs (standard library only, no PJSIP):

    python3 voxplane_media_audio.py prompts --out DIR [--espeak-ng PATH --sox PATH --voice de=de ...]

speaks every prompt of media_prompts in every language into DIR/<language>/<key>.wav, writes the
tones, and keeps DIR/manifest.json so that a second run regenerates only what changed. Prints
one JSON object: changed, generated (the files written).
"""

import argparse
import hashlib
import json
import logging
import math
import os
import struct
import subprocess
import sys
import tempfile
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# pylint: disable=wrong-import-position
from ansible_collections.voxplane.pbx.plugins.module_utils import media_prompts  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import (  # noqa: E402
    Prompt, Recording, Speech, StoredAudio,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.rules import LANGUAGES  # noqa: E402

LOG = logging.getLogger('voxplane-media')

# Every file the service plays or records: 8 kHz, 16 bit, mono PCM (the conference bridge's rate,
# G.711's), so nothing is resampled per call.
RATE = 8000
SAMPLE_BYTES = 2
# espeak-ng voice per language.
DEFAULT_VOICES = {'de': 'de', 'en': 'en-gb'}
SPEECH_TIMEOUT_S = 10
# A prompt folder's manifest: what each file was made from.
MANIFEST = 'manifest.json'


# ---------------------------------------------------------------------------- WAV headers
def _data_chunk(handle):
    """(offset of the data chunk's size field, offset of its first byte, bytes per second) of a
    RIFF/WAVE file, read from its chunks (whatever sizes its header claims)."""
    head = handle.read(12)
    if len(head) < 12 or head[:4] != b'RIFF' or head[8:12] != b'WAVE':
        raise ValueError('not a WAV file')
    rate_bytes = None
    while True:
        chunk = handle.read(8)
        if len(chunk) < 8:
            raise ValueError('no data chunk')
        name, size = chunk[:4], struct.unpack('<I', chunk[4:])[0]
        if name == b'data':
            return handle.tell() - 4, handle.tell(), rate_bytes
        body = handle.read(size + (size & 1))
        if name == b'fmt ' and len(body) >= 16:
            rate_bytes = struct.unpack('<I', body[8:12])[0]


def closed(path):
    """Whether a recording's writer has closed the file: its header then says how much audio
    follows (while it records, PJSIP leaves the sizes 0 and writes the file in 4 KB pieces)."""
    try:
        with open(path, 'rb') as handle:
            size_at, start, _rate_bytes = _data_chunk(handle)
            handle.seek(size_at)
            claimed = struct.unpack('<I', handle.read(4))[0]
            end = handle.seek(0, os.SEEK_END)
    except (OSError, ValueError, struct.error):
        return False
    return claimed == end - start


def duration_ms(path):
    """The length of a WAV file's audio (its data as it is on disk), in milliseconds."""
    with open(path, 'rb') as handle:
        _size_at, start, rate_bytes = _data_chunk(handle)
        end = handle.seek(0, os.SEEK_END)
    return int((end - start) * 1000 // (rate_bytes or RATE * SAMPLE_BYTES))


def repair(path):
    """Make the header of a WAV file cut off by a crash say what the file holds (the RIFF and
    data sizes a writer sets only when it closes the file); the audio's length in ms."""
    with open(path, 'r+b') as handle:
        size_at, start, rate_bytes = _data_chunk(handle)
        end = handle.seek(0, os.SEEK_END)
        data = (end - start) - (end - start) % SAMPLE_BYTES
        handle.truncate(start + data)
        handle.seek(4)
        handle.write(struct.pack('<I', start + data - 8))
        handle.seek(size_at)
        handle.write(struct.pack('<I', data))
    return int(data * 1000 // (rate_bytes or RATE * SAMPLE_BYTES))


def cut(path, keep_ms):
    """Cut a WAV file after ``keep_ms`` (the silent tail of a recording); its new length in ms."""
    with open(path, 'r+b') as handle:
        _size_at, start, rate_bytes = _data_chunk(handle)
        keep = int(keep_ms * (rate_bytes or RATE * SAMPLE_BYTES) // 1000)
        keep -= keep % SAMPLE_BYTES
        end = handle.seek(0, os.SEEK_END)
        if start + keep < end:
            handle.truncate(start + keep)
    return repair(path)


def write_tone(path, parts):
    """A WAV file of tones: ((frequency Hz, ms), ...), frequency 0 is silence."""
    frames = bytearray()
    for frequency, ms in parts:
        count = RATE * ms // 1000
        fade = min(80, count // 2)  # no click at either end
        for i in range(count):
            gain = min(1.0, i / float(fade or 1), (count - i) / float(fade or 1))
            value = int(12000 * gain * math.sin(2 * math.pi * frequency * i / RATE)) if frequency else 0
            frames += struct.pack('<h', value)
    _write_atomically(path, bytes(frames))


def _write_atomically(path, frames):
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix='.wav')
    os.close(fd)
    try:
        with wave.open(tmp, 'wb') as out:
            out.setnchannels(1)
            out.setsampwidth(SAMPLE_BYTES)
            out.setframerate(RATE)
            out.writeframes(frames)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------- speech
class SpeechError(Exception):
    pass


def speak(text, voice, path, espeak_ng='/usr/bin/espeak-ng', sox='/usr/bin/sox'):
    """Speak ``text`` with espeak-ng in ``voice`` into the WAV file ``path`` (8 kHz, 16 bit, mono).
    The text goes in on stdin, so that it is never read as an option."""
    folder = os.path.dirname(path)
    with tempfile.TemporaryDirectory(dir=folder, prefix='.speech-') as work:
        raw = os.path.join(work, 'raw.wav')
        final = os.path.join(work, 'final.wav')
        for command, stdin in (([espeak_ng, '-v', voice, '--stdin', '-w', raw], text),
                               ([sox, raw, '-r', str(RATE), '-c', '1', '-b', '16', final, 'norm', '-3'], None)):
            try:
                done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=SPEECH_TIMEOUT_S,
                                      check=False)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise SpeechError('%s: %s' % (command[0], e))
            if done.returncode != 0:
                raise SpeechError('%s failed (%d): %s' % (command[0], done.returncode, done.stderr.strip()[-300:]))
        os.chmod(final, 0o644)
        os.rename(final, path)


# ---------------------------------------------------------------------------- prompt files
def prompt_path(prompts_dir, language, key):
    return os.path.join(prompts_dir, language, key + '.wav')


class AudioFiles(object):
    """Where a step's prompt references are on disk (media_steps): built-in prompts in the
    deployed prompts folder; speech and the tenants' stored audio in a cache below the storage
    folder, made at first use. ``stored_audio(tenant, hash)`` gives a stored audio's bytes."""

    def __init__(self, prompts_dir, cache_dir, stored_audio, voices=None, espeak_ng='/usr/bin/espeak-ng',
                 sox='/usr/bin/sox'):
        self.prompts_dir = prompts_dir
        self.cache_dir = cache_dir
        self.stored_audio = stored_audio
        self.voices = dict(DEFAULT_VOICES, **(voices or {}))
        self.espeak_ng = espeak_ng
        self.sox = sox

    def files(self, references, language, tenant):
        """The files of ``references`` in order; one that cannot be found is logged and left out."""
        found = []
        for reference in references:
            path = self.file(reference, language, tenant)
            if path:
                found.append(path)
        return found

    def file(self, reference, language, tenant):
        if isinstance(reference, Prompt):
            path = prompt_path(self.prompts_dir, language, reference.key)
            if os.path.exists(path):
                return path
            LOG.error('prompt %s (%s) is missing: %s', reference.key, language, path)
            return None
        if isinstance(reference, Recording):
            if os.path.exists(reference.path):
                return reference.path
            LOG.error('recording %s is missing', reference.path)
            return None
        if isinstance(reference, Speech):
            return self._speech(reference, language, tenant)
        if isinstance(reference, StoredAudio):
            return self._stored(reference, tenant)
        raise TypeError('not a prompt reference: %r' % (reference,))

    def _speech(self, speech, language, tenant):
        voice = self.voices.get(language, language)
        digest = hashlib.sha256(('%s\0%s' % (voice, speech.text)).encode('utf-8')).hexdigest()
        path = os.path.join(self.cache_dir, 'speech', language, digest + '.wav')
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                speak(speech.text, voice, path, self.espeak_ng, self.sox)
            except (SpeechError, OSError) as e:
                LOG.error('cannot speak %r (%s): %s', speech.text, language, e)
                return self.file(speech.fallback, language, tenant) if speech.fallback else None
        return path

    def _stored(self, audio, tenant):
        path = os.path.join(self.cache_dir, 'audio', tenant, audio.hash + '.wav')
        if not os.path.exists(path):
            data = self.stored_audio(tenant, audio.hash)
            if data is None:
                LOG.error('audio %s of tenant %s is not in the directory', audio.hash, tenant)
                return None
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.tmp-', suffix='.wav')
            with os.fdopen(fd, 'wb') as handle:
                handle.write(data)
            os.rename(tmp, path)
        return path


# ---------------------------------------------------------------------------- deploy time
def _wanted(voices):
    """{relative path: (kind, what it is made from)} of every file a prompts folder holds."""
    wanted = {}
    for language in LANGUAGES:
        for key, text in media_prompts.spoken_texts(language).items():
            wanted['%s/%s.wav' % (language, key)] = ('speech', voices.get(language, language), text)
        for key, parts in media_prompts.TONES.items():
            wanted['%s/%s.wav' % (language, key)] = ('tone', [list(p) for p in parts])
    return wanted


def generate_prompts(out, voices=None, espeak_ng='/usr/bin/espeak-ng', sox='/usr/bin/sox'):
    """Make every prompt file below ``out`` that is missing or was made from something else;
    remove the ones no longer in the catalogue. The relative paths it wrote."""
    voices = dict(DEFAULT_VOICES, **(voices or {}))
    manifest_path = os.path.join(out, MANIFEST)
    try:
        with open(manifest_path) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        manifest = {}
    wanted = _wanted(voices)
    written = []
    for relative, source in sorted(wanted.items()):
        path = os.path.join(out, relative)
        if manifest.get(relative) == list(source) and os.path.exists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if source[0] == 'tone':
            write_tone(path, source[1])
        else:
            speak(source[2], source[1], path, espeak_ng, sox)
        manifest[relative] = list(source)
        written.append(relative)
    for relative in sorted(set(manifest) - set(wanted)):
        path = os.path.join(out, relative)
        if os.path.exists(path):
            os.unlink(path)
        del manifest[relative]
        written.append(relative)
    if written or not os.path.exists(manifest_path):
        with open(manifest_path + '.tmp', 'w') as handle:
            json.dump(manifest, handle, indent=0, sort_keys=True)
        os.rename(manifest_path + '.tmp', manifest_path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description='Generate the media service prompts (espeak-ng, sox).')
    sub = parser.add_subparsers(dest='command', required=True)
    prompts = sub.add_parser('prompts')
    prompts.add_argument('--out', required=True)
    prompts.add_argument('--espeak-ng', default='/usr/bin/espeak-ng')
    prompts.add_argument('--sox', default='/usr/bin/sox')
    prompts.add_argument('--voice', action='append', default=[], help='language=espeak-ng voice')
    args = parser.parse_args(argv)
    voices = dict(v.split('=', 1) for v in args.voice)
    try:
        written = generate_prompts(args.out, voices, args.espeak_ng, args.sox)
    except (SpeechError, OSError) as e:
        print(json.dumps({'changed': False, 'failed': True, 'msg': str(e)}))
        return 1
    print(json.dumps({'changed': bool(written), 'generated': written}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
