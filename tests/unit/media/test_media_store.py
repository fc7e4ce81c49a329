# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media service's data (media/voxplane_media_store.py) on a real directory, each test on
both backends (a SQLite file and a schema of the lab's PostgreSQL server, conftest's
``backend``): a tenant by its domain, reloaded by generation; the mailbox port over the store,
the mailbox counts and the voicemail serial the message-waiting lamps follow; message files,
their sidecars and the start-up recovery of a recording a crash cut off."""

import json
import os
import wave

import pytest

from directory_helpers import DOMAIN, MEDIA_SERVER, account, extension, harness, tenant_request
import voxplane_media_store as store
from ansible_collections.voxplane.pbx.plugins.module_utils import model, rules, voicemail_flows
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import StoredAudio
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION


class Queue(object):
    woken = 0

    def wake(self):
        self.woken += 1


@pytest.fixture
def media(request, tmp_path, backend):
    pbx = harness(request, tmp_path, backend)
    pbx.apply('acme', tenant_request(media_server=MEDIA_SERVER, language='en'), {EXTENSION: {
        '10': extension(account('anna.desk'), name='Anna', voicemail={'enabled': True, 'pin': '4711'}),
        '11': extension(account('bert.desk'), name='Bert', language='de', voicemail={'enabled': True}),
        '12': extension(account('cora.desk'), name='Cora'),
    }})
    messages = store.Messages(str(tmp_path / 'storage'), clock=lambda: 1765100000.0)
    directory = store.MediaDirectory(pbx.path, messages, mail_queue=Queue())
    directory.harness = pbx
    return directory


def wav(path, ms):
    with wave.open(str(path), 'wb') as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b'\x01\x00' * (8 * ms))


def test_a_tenant_by_its_domain_with_its_mailboxes(media):
    tenant = media.tenant(DOMAIN)
    assert (tenant.name, tenant.language) == ('acme', 'en')
    anna, bert = tenant.mailbox('10'), tenant.mailbox('11')
    assert (anna.number, anna.name, anna.language, anna.locked) == ('10', 'Anna', 'en', False)
    assert anna.pin_hash == rules.pin_hash('acme', '10', '4711')
    assert bert.language == 'de' and bert.pin_hash is None
    assert tenant.mailbox('12') is None and tenant.mailbox('99') is None  # voicemail off, no extension
    assert media.tenant('nowhere.example') is None


def test_a_tenant_is_read_again_only_when_its_generation_moved(media):
    first = media.tenant(DOMAIN).state
    assert media.tenant(DOMAIN).state is first
    media.harness.apply('acme', None, {EXTENSION: {'12': {'voicemail': {'enabled': True}}}})
    tenant = media.tenant(DOMAIN)
    assert tenant.state is not first and tenant.mailbox('12') is not None


def test_a_waiting_queue_callers_tenant_is_read_again_with_its_members_logins_and_dnd(media):
    media.harness.apply('acme', None, {model.QUEUE: {'600': {'name': 'Support', 'strategy': 'sequential', 'members': [
        {'extension': '10'}, {'extension': '11', 'logged_in': False}, {'extension': '12'}]}}})
    tenant = media.tenant(DOMAIN)
    spec, state = tenant.queue('600')
    assert spec.members == [('10', 0), ('12', 0)] and spec.logged_in
    assert tenant.reload().state is tenant.state   # nothing changed: nothing read again
    media.harness.apply('acme', None, {model.QUEUE: {'600': {'members': [
        {'extension': '10'}, {'extension': '11', 'logged_in': True}, {'extension': '12'}]}}, EXTENSION: {'10': {'dnd': True}}})
    again, same_state = tenant.reload().queue('600')
    assert again.members == [('11', 0), ('12', 0)] and same_state is state   # the queue's shared state stays


def test_a_message_from_recording_to_the_directory(media):
    box = media.tenant(DOMAIN).mailbox('10')
    path = box.begin_message(voicemail_flows.Caller('+4930555', 'Bert'), 'user-busy')
    assert path.startswith(os.path.join(media.messages.storage_dir, 'voicemail', 'acme', '10') + os.sep)
    sidecar = json.load(open(path + store.SIDECAR))
    assert (sidecar['caller'], sidecar['reason'], sidecar['received_at']) == ('+4930555', 'user-busy', '2025-12-07T09:33:20Z')
    wav(path, 2500)
    box.keep_message(path, 2500)
    assert not os.path.exists(path + store.SIDECAR)
    [message] = box.messages()
    assert (message['path'], message['folder'], message['duration_ms'], message['caller_name']) == (path, 'new', 2500, 'Bert')
    assert box.counts() == (1, 0)
    box.mark_read(message)
    assert box.counts() == (0, 1)
    box.delete(message)
    assert box.counts() == (0, 0) and not os.path.exists(path)


def test_a_kept_message_moves_the_mailbox_counts_and_the_lamps_serial(media):
    """What the message-waiting lamps follow: keeping, saving and deleting a message each move
    the directory's voicemail serial and stamp that mailbox alone with it; the directory
    generation (the routers' reloads) stays where it was."""
    with media.read() as txn:
        serial, generation = txn.voicemail_serial(), txn.generation()['generation']
    box = media.tenant(DOMAIN).mailbox('10')
    path = box.begin_message(voicemail_flows.Caller('11', 'Bert'), 'no-answer')
    wav(path, 1500)
    box.keep_message(path, 1500)
    with media.read() as txn:
        kept, changed = txn.mailboxes_changed(serial)
        assert kept > serial and changed == {('acme', '10'): {'new': 1, 'saved': 0}}
        assert txn.mailbox_counts('acme') == {'10': {'new': 1, 'saved': 0}}
    [message] = box.messages()
    box.mark_read(message)
    with media.read() as txn:
        saved, changed = txn.mailboxes_changed(kept)
        assert saved > kept and changed == {('acme', '10'): {'new': 0, 'saved': 1}}
    box.delete(message)
    with media.read() as txn:
        deleted, changed = txn.mailboxes_changed(saved)
        assert deleted > saved and changed == {('acme', '10'): {'new': 0, 'saved': 0}}
        assert txn.mailboxes_changed(deleted)[1] == {}
        assert txn.generation()['generation'] == generation
    assert box.counts() == (0, 0)


def test_new_messages_come_first(media):
    box = media.tenant(DOMAIN).mailbox('10')
    for _i in range(3):
        path = box.begin_message(voicemail_flows.Caller(), 'no-answer')
        wav(path, 1200)
        box.keep_message(path, 1200)
    first = box.messages()[0]
    box.save(first)
    assert [m['folder'] for m in box.messages()] == ['new', 'new', 'saved']


def test_a_discarded_recording_leaves_nothing(media):
    box = media.tenant(DOMAIN).mailbox('10')
    path = box.begin_message(voicemail_flows.Caller(), 'no-answer')
    wav(path, 400)
    box.discard_message(path)
    assert os.listdir(os.path.dirname(path)) == [] and box.counts() == (0, 0)


def test_a_message_for_a_mailbox_with_e_mail_is_queued(media):
    if 'email' not in [s.name for s in model.sub_fields(EXTENSION, 'voicemail')]:
        pytest.skip('the extension has no voicemail.email yet (model)')
    media.harness.apply('acme', None, {EXTENSION: {'10': {'voicemail': {'email': 'anna@acme.example'}}}})
    box = media.tenant(DOMAIN).mailbox('10')
    path = box.begin_message(voicemail_flows.Caller('11'), 'no-answer')
    wav(path, 1500)
    box.keep_message(path, 1500)
    with media.read() as txn:
        [pending] = txn.voicemail_to_mail()
    assert pending['email']['to'] == 'anna@acme.example' and pending['email']['attach'] is True
    assert media.mail_queue.woken == 1


def test_greetings_are_kept_as_the_tenants_audio(media):
    box = media.tenant(DOMAIN).mailbox('10')
    path = box.greeting_path('busy')
    wav(path, 2000)
    box.keep_greeting('busy', path, 2000)
    assert not os.path.exists(path)
    greeting = box.greeting('busy')
    assert isinstance(greeting, StoredAudio) and box.greeting('unavailable') is None
    assert media.stored_audio('acme', greeting.hash)[:4] == b'RIFF'


def test_pin_failures_are_kept_per_mailbox(media):
    box = media.tenant(DOMAIN).mailbox('10')
    box.set_pin_failures([1765100000.0, 1765100060.0])
    assert media.tenant(DOMAIN).mailbox('10').pin_failures() == [1765100000.0, 1765100060.0]
    assert media.tenant(DOMAIN).mailbox('11').pin_failures() == []


def test_a_pin_change_goes_through_the_pin_rules(media):
    box = media.tenant(DOMAIN).mailbox('10')
    assert 'voicemail.pin' in box.change_pin('12')
    assert box.change_pin('13579') is None
    assert media.tenant(DOMAIN).mailbox('10').pin_hash == rules.pin_hash('acme', '10', '13579')


def test_a_lock_is_the_extensions_setting_and_logged(media, caplog):
    if 'locked' not in [s.name for s in model.sub_fields(EXTENSION, 'voicemail')]:
        pytest.skip('the extension has no voicemail.locked yet (model)')
    media.tenant(DOMAIN).mailbox('10').lock()
    assert media.tenant(DOMAIN).mailbox('10').locked is True
    assert 'mailbox 10 of tenant acme locked after 10 wrong PINs' in caplog.text


def test_recovery_keeps_a_recording_cut_off_by_a_crash_and_drops_what_is_no_message(media):
    box = media.tenant(DOMAIN).mailbox('10')
    crashed = box.begin_message(voicemail_flows.Caller('11'), 'user-busy')
    wav(crashed, 3000)
    with open(crashed, 'r+b') as handle:  # sizes as PJSIP leaves them until it closes the file
        handle.seek(4)
        handle.write(b'\0\0\0\0')
        handle.seek(40)
        handle.write(b'\0\0\0\0')
    short = box.begin_message(voicemail_flows.Caller(), 'no-answer')
    wav(short, 500)
    lost = box.begin_message(voicemail_flows.Caller(), 'no-answer')  # no audio reached the disk
    scratch = box.greeting_path('busy')
    wav(scratch, 1000)
    assert media.messages.recover(media) == 1
    [message] = box.messages()
    assert (message['path'], message['duration_ms'], message['caller'], message['reason']) == (crashed, 3000, '11', 'user-busy')
    for gone in (short, short + store.SIDECAR, lost + store.SIDECAR, crashed + store.SIDECAR, scratch):
        assert not os.path.exists(gone)
    assert media.messages.recover(media) == 0
