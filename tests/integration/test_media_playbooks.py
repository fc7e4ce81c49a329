"""The modules of the media service's data with real ansible-playbook runs.

voxplane.pbx.announcement: the action plugin reads the WAV file on the controller (beside the playbook,
in its files/ folder, in a role's files/), the module converts and keeps it; a second run changes
nothing, check mode shows the SHA-256 and length and writes nothing, a bad file is refused naming field
and rule with nothing written, removal is refused while a number plays it. A backup restores an
announcement with its recording into an empty directory; a mailbox copied with
voicemail_message_info is fetched to the controller as documented."""

import base64
import os
import sqlite3

import pytest

from conftest import db_fingerprint, write_play
from lab.playbook import run_playbook
from wav_helpers import pcm_wav, tone
from ansible_collections.voxplane.pbx.plugins.module_utils import audio

SETUP = """
- voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.test, licences: {seats: {smart: 5}}}
      extensions: [{internal_number: "10", name: Anna, voicemail: {enabled: true}}]
"""

ANNOUNCE = """
- name: The announcement
  voxplane.pbx.announcement:
    tenant: acme
    name: closed
    description: Closed
    src: "{{ wav }}"
    then: voicemail:10
"""


def wav_bytes(frequency=440, rate=44100, channels=2):
    return pcm_wav(tone(frequency, rate, 0.5, 12000, channels), rate, channels)


def play(tmp_path, directory, name, tasks, check=False, diff=False, options=(), **variables):
    return run_playbook(write_play(tmp_path, name, tasks), dict(variables, directory=directory), check=check, diff=diff,
                        options=options)


def rows(directory, query):
    conn = sqlite3.connect(directory)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


@pytest.fixture
def acme(tmp_path):
    directory = str(tmp_path / 'directory.db')
    run = play(tmp_path, directory, 'setup', SETUP)
    assert run.rc == 0, run
    (tmp_path / 'files').mkdir()
    (tmp_path / 'files' / 'closed.wav').write_bytes(wav_bytes())
    return directory


def test_a_wav_file_from_the_playbooks_files_folder_becomes_the_announcement_once(acme, tmp_path):
    first = play(tmp_path, acme, 'announce', ANNOUNCE, wav='closed.wav')
    assert first.rc == 0 and first.changed == 1, first
    converted = audio.convert(wav_bytes())
    assert rows(acme, 'SELECT hash, duration_ms, data FROM audio') == [(converted.sha256, 500, converted.wav)]
    assert rows(acme, "SELECT json_extract(doc, '$.audio'), json_extract(doc, '$.then') FROM announcements") == [
        (converted.sha256, 'voicemail:10')]
    again = play(tmp_path, acme, 'announce', ANNOUNCE, wav='closed.wav')
    assert again.rc == 0 and again.changed == 0, again


def test_check_mode_shows_the_sha256_and_length_never_the_bytes_and_writes_nothing(acme, tmp_path):
    assert play(tmp_path, acme, 'announce', ANNOUNCE, wav='closed.wav').rc == 0
    before = db_fingerprint(acme)
    (tmp_path / 'files' / 'closed.wav').write_bytes(wav_bytes(880, 48000, 1))
    run = play(tmp_path, acme, 'announce', ANNOUNCE, check=True, diff=True, options=('-vvv',), wav='closed.wav')
    assert run.rc == 0 and run.changed == 1, run
    assert db_fingerprint(acme) == before
    old, new = audio.convert(wav_bytes()).sha256, audio.convert(wav_bytes(880, 48000, 1)).sha256
    diff = [line for line in run.stdout.splitlines() if line.startswith(('+', '-')) and not line.startswith(('+++', '---'))]
    assert diff == ['-    audio: %s' % old, '+    audio: %s' % new], run.stdout
    encoded = base64.b64encode(wav_bytes(880, 48000, 1)).decode()
    assert encoded[100:160] not in run.stdout          # -vvv shows the module's arguments: content by its size
    assert 'content: (%d characters, not shown)' % len(encoded) in run.stdout


def test_a_bad_file_is_refused_naming_field_and_rule_and_nothing_is_written(acme, tmp_path):
    before = db_fingerprint(acme)
    (tmp_path / 'files' / 'loud.wav').write_bytes(pcm_wav([0] * 9600, 96000))
    run = play(tmp_path, acme, 'bad', ANNOUNCE, wav='loud.wav')
    assert run.rc != 0 and run.failed == 1, run
    assert 'announcement closed (tenant acme): src: %s has a sample rate of 96000 Hz; give 8000 to 48000 Hz ' \
           '[audio_sample_rate]' % (tmp_path / 'files' / 'loud.wav') in run.stdout, run
    (tmp_path / 'files' / 'song.mp3').write_bytes(b'ID3\x04' + b'\x00' * 500)
    run = play(tmp_path, acme, 'bad', ANNOUNCE, wav='song.mp3')
    assert run.rc != 0 and 'is an MP3 file' in run.stdout and '[audio_format]' in run.stdout, run
    run = play(tmp_path, acme, 'bad', ANNOUNCE, wav='missing.wav')
    assert run.rc != 0 and "announcement closed (tenant acme): src: cannot find missing.wav on the controller" in run.stdout
    assert '[file]' in run.stdout and 'Traceback' not in run.stdout + run.stderr
    assert db_fingerprint(acme) == before


def test_a_role_finds_its_recording_in_its_files_folder(acme, tmp_path):
    role = tmp_path / 'roles' / 'greeting'
    (role / 'files').mkdir(parents=True)
    (role / 'tasks').mkdir()
    (role / 'files' / 'hello.wav').write_bytes(wav_bytes(660, 16000, 1))
    (role / 'tasks' / 'main.yml').write_text(
        '- voxplane.pbx.announcement: {tenant: acme, name: hello, src: hello.wav}\n')
    path = tmp_path / 'with_role.yml'
    path.write_text('- hosts: localhost\n  gather_facts: false\n  module_defaults:\n'
                    '    group/voxplane.pbx.directory: {directory: "{{ directory }}"}\n  roles: [greeting]\n')
    run = run_playbook(str(path), {'directory': acme})
    assert run.rc == 0 and run.changed == 1, run
    assert rows(acme, 'SELECT hash FROM audio') == [(audio.convert(wav_bytes(660, 16000, 1)).sha256,)]


def test_remote_src_is_read_by_the_module_on_its_host(acme, tmp_path):
    other = tmp_path / 'on-the-host.wav'
    other.write_bytes(wav_bytes(550, 8000, 1))
    run = play(tmp_path, acme, 'remote', """
        - voxplane.pbx.announcement: {tenant: acme, name: remote, src: "{{ wav }}", remote_src: true}
        """, wav=str(other))
    assert run.rc == 0 and run.changed == 1, run


def test_removal_is_refused_while_a_number_plays_it(acme, tmp_path):
    assert play(tmp_path, acme, 'announce', ANNOUNCE, wav='closed.wav').rc == 0
    assert play(tmp_path, acme, 'number', """
        - voxplane.pbx.number: {tenant: acme, number: "+4930555000", target: "announcement:closed"}
        """).rc == 0
    before = db_fingerprint(acme)
    run = play(tmp_path, acme, 'absent', """
        - voxplane.pbx.announcement: {tenant: acme, name: closed, state: absent}
        """)
    assert run.rc != 0 and run.failed == 1, run
    assert ('announcement closed (tenant acme): state: cannot remove it: still referenced by number +4930555000 '
            '(target) [still_referenced]') in run.stdout, run
    assert db_fingerprint(acme) == before
    run = play(tmp_path, acme, 'absent', """
        - voxplane.pbx.number: {tenant: acme, number: "+4930555000", target: ""}
        - voxplane.pbx.announcement: {tenant: acme, name: closed, state: absent}
        """)
    assert run.rc == 0 and run.changed == 2, run
    assert rows(acme, 'SELECT COUNT(*) FROM audio') == [(0,)]
    assert os.path.exists(acme)


def test_a_backup_restores_the_announcement_and_its_recording_into_an_empty_directory(acme, tmp_path):
    assert play(tmp_path, acme, 'announce', ANNOUNCE, wav='closed.wav').rc == 0
    restored = str(tmp_path / 'restored.db')
    run = play(tmp_path, acme, 'backup', """
        - voxplane.pbx.tenant_info: {tenant: acme, secrets: true, format: json, dest: "{{ playbook_dir }}/acme.json"}
        - voxplane.pbx.tenant_config: {src: "{{ playbook_dir }}/acme.json", state: overridden, directory: "{{ restored }}"}
        - voxplane.pbx.tenant_config: {src: "{{ playbook_dir }}/acme.json", state: overridden, directory: "{{ restored }}"}
        """, restored=restored)
    assert run.rc == 0 and run.changed == 2, run     # the export and the first restore; the second changes nothing
    query = 'SELECT hash, duration_ms, data FROM audio'
    assert rows(restored, query) == rows(acme, query) and len(rows(restored, query)) == 1


def test_a_copy_of_a_mailbox_is_fetched_to_the_controller(acme, tmp_path):
    storage = tmp_path / 'media'
    message = storage / 'voicemail' / 'acme' / '10' / '20261207T091403Z-1.wav'
    message.parent.mkdir(parents=True)
    message.write_bytes(wav_bytes(440, 8000, 1))
    conn = sqlite3.connect(acme)
    with conn:
        conn.execute("INSERT INTO voicemail_messages (tenant_id, extension_id, folder, received_at, duration_ms, file, doc) "
                     "SELECT t.id, e.id, 'new', '2026-12-07T09:14:03Z', 500, ?, '{\"caller\": \"+4989123456\"}' "
                     "FROM tenants t JOIN extensions e ON e.tenant_id = t.id WHERE e.internal_number = '10'",
                     (str(message.relative_to(storage)),))
    conn.close()
    run = play(tmp_path, acme, 'hold', """
        - voxplane.pbx.voicemail_message_info:
            {tenant: acme, mailbox: "10", dest: "{{ hold }}", media_storage_dir: "{{ storage }}"}
          register: held
        - ansible.builtin.fetch: {src: "{{ item }}", dest: "{{ playbook_dir }}/fetched/"}
          loop: "{{ held.files }}"
        """, hold=str(tmp_path / 'hold'), storage=str(storage))
    assert run.rc == 0, run
    fetched = tmp_path / 'fetched' / 'localhost' / str(tmp_path / 'hold').lstrip('/') / '10' / message.name
    assert fetched.read_bytes() == message.read_bytes()
    assert '"caller": "+4989123456"' in fetched.with_suffix('.json').read_text()
