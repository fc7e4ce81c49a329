# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media service's data: the directory as the flows see it (a tenant by the request's SIP
domain, its mailboxes and announcements) and the message files below the storage folder.

- ``MediaDirectory.tenant(domain)``: the tenant port of media_calls.py. Each call asks for the
  domain's tenant and generation (one indexed row) and reloads the tenant only when its
  generation moved, so a change by any module, tenant_config or a feature code is in effect for
  the next call (the router's mechanism, per tenant).
- ``Mailbox``: the mailbox port of voicemail_flows.py. Messages, counts, greetings and PIN failures
  go through the store's media API; a PIN change and a lock are settings of the extension,
  written through ``phone_settings.apply`` (the router's one write path: reconcile, PIN rules).
- ``Messages``: the files. A message is recorded to ``voicemail/<tenant>/<mailbox>/<time>-<id>.wav``
  with a sidecar ``.json`` holding its metadata until it is kept in the directory; at start-up
  ``recover()`` repairs the header of a recording a crash cut off and keeps it (or drops it when
  it is too short), so a message being recorded when the service stopped is kept up to where it
  was.
"""

import datetime
import json
import logging
import os
import time
import uuid

import voxplane_media_audio as audio

from ansible_collections.voxplane.pbx.plugins.module_utils import conference_flows, ivr_flows, queue_flows, phone_settings, routing, voicemail_flows
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import StoredAudio
from ansible_collections.voxplane.pbx.plugins.module_utils.model import CONFERENCE, EXTENSION, IVR, QUEUE
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

LOG = logging.getLogger('voxplane-media')
SIDECAR = '.json'
# phone_settings.apply answers a setting it wrote with 603 (what a phone's feature code is told).
_SETTING_WRITTEN = 603


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def epoch(text):
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc).timestamp()


class MediaDirectory(object):
    """The directory, read per call with a cache of tenants by generation."""

    def __init__(self, path, messages, mail_queue=None, clock=time.time):
        self.directory = Directory(path)
        self.messages = messages
        self.mail_queue = mail_queue
        self.clock = clock
        self._tenants = {}  # name -> (generation, TenantState)
        self.queues = {}    # QueueSpec.key -> QueueState: what a queue's callers share (no front: this process)
        self.queue_link = None  # the front that keeps the queues' state for every worker (FrontLink)

    def read(self):
        return self.directory.transaction(write=False, create=False)

    def write(self):
        return self.directory.transaction(write=True, create=False)

    def tenant(self, domain):
        """The tenant port (media_calls.py) of the tenant with this SIP domain, or None."""
        with self.read() as txn:
            found = txn.tenant_of_domain(domain)
            if found is None:
                return None
            name, generation = found
            cached = self._tenants.get(name)
            if cached is None or cached[0] != generation:
                cached = self._tenants[name] = (generation, txn.load_tenant(name))
        return Tenant(self, cached[1])

    def stored_audio(self, tenant, digest):
        with self.read() as txn:
            return txn.audio(tenant, digest)


class Tenant(object):
    """media_calls.py's tenant port over one tenant's state."""

    def __init__(self, media, state):
        self.media = media
        self.state = state
        self.name = state.name
        self.language = state.tenant.get('language') or 'de'

    def reload(self):
        """This tenant as the directory has it now (re-read only when its generation moved), or None
        when the directory cannot be read or the tenant is gone."""
        try:
            return self.media.tenant(self.state.tenant['sip_domain'])
        except DirectoryError as e:
            LOG.warning('tenant %s: the directory cannot be read (%s): going on with what was read', self.name, e)
            return None

    def mailbox(self, number):
        extension = self.state.get(EXTENSION, number)
        if extension is None or not extension.get('voicemail', {}).get('enabled'):
            return None
        return Mailbox(self.media, self, extension)

    def announcement(self, name):
        with self.media.read() as txn:
            doc = txn.announcement(self.name, name)
        if doc is None:
            return None
        return StoredAudio(doc['audio']) if doc.get('audio') else False

    def menu(self, number):
        """The ivr_flows.MenuSpec of the IVR menu with this internal number, or None. Its greeting and
        menu announcements become their audio (one without audio, or gone, plays nothing: the
        built-in prompt for the menu); direct dial reaches the tenant's extensions."""
        doc = self.state.get(IVR, number)
        if doc is None:
            return None
        greeting = self.announcement(doc['greeting']) if doc.get('greeting') else None
        menu = self.announcement(doc['menu']) if doc.get('menu') else None
        return ivr_flows.MenuSpec(
            number, doc.get('keys') or {}, greeting=greeting or None, menu=menu or None,
            timeout_ms=int(doc.get('timeout') or 5) * 1000, max_tries=int(doc.get('max_tries') or 3),
            invalid=doc.get('invalid'), no_input=doc.get('no_input'),
            direct_dial=sorted(self.state.objects(EXTENSION)) if doc.get('direct_dial') else ())

    def room(self, number):
        """The conference_flows.RoomSpec of the conference room with this internal number, or None."""
        doc = self.state.get(CONFERENCE, number)
        if doc is None:
            return None
        music = self.announcement(doc['music']) if doc.get('music') else None
        return conference_flows.RoomSpec(
            self.name, number, pin_hash=doc.get('pin_hash'), moderator_pin_hash=doc.get('moderator_pin_hash'),
            max_participants=int(doc.get('max_participants') or 10),
            wait_for_moderator=bool(doc.get('wait_for_moderator')), announce_join_leave=bool(doc.get('announce_join_leave')),
            mute_on_entry=bool(doc.get('mute_on_entry')), end_with_moderator=bool(doc.get('end_with_moderator')),
            music=music or None)

    def queue(self, number):
        """(queue_flows.QueueSpec, its QueueState) of the queue with this internal number, or None. The
        members who take calls now: logged in, not on DND, available (read per call)."""
        doc = self.state.get(QUEUE, number)
        if doc is None:
            return None
        members, logged_in = [], False
        for member in doc.get('members') or ():
            extension = self.state.get(EXTENSION, member['extension'])
            if not member.get('logged_in', True) or extension is None:
                continue
            logged_in = True
            if extension.get('dnd') or extension.get('available') is False:
                continue
            members.append((member['extension'], int(member.get('penalty') or 0)))
        music = self.announcement(doc['music']) if doc.get('music') else None
        spec = queue_flows.QueueSpec(
            self.name, number, members, strategy=doc.get('strategy') or 'ring_all', logged_in=logged_in,
            member_ring_ms=int(doc.get('member_ring_time') or 15) * 1000, wrapup_ms=int(doc.get('wrapup_time') or 0) * 1000,
            max_callers=int(doc.get('max_callers') or 10), max_wait_ms=int(doc.get('max_wait') or 300) * 1000,
            overflow=doc.get('overflow'), no_members=doc.get('no_members'), music=music or None,
            announce_ms=int(doc.get('announce_position') or 0) * 1000)
        if self.media.queue_link is not None:
            return spec, queue_flows.RemoteQueueState(self.media.queue_link.call, spec.key)
        return spec, self.media.queues.setdefault(spec.key, queue_flows.QueueState())


class Mailbox(object):
    """voicemail_flows.py's mailbox port over one extension's mailbox."""

    def __init__(self, media, tenant, extension):
        self.media = media
        self.tenant = tenant.name
        self.number = extension['internal_number']
        self.name = extension.get('name')
        self.language = extension.get('language') or tenant.language
        settings = extension.get('voicemail', {})
        self.pin_hash = settings.get('pin_hash')
        self.locked = bool(settings.get('locked', False))
        self.email = settings.get('email')
        self.attach = settings.get('attach', True)
        self.delete_after_email = settings.get('delete_after_email', False)

    def __repr__(self):
        return 'mailbox %s of tenant %s' % (self.number, self.tenant)

    def _state(self):
        with self.media.read() as txn:
            return txn.mailbox_state(self.tenant, self.number)

    def greeting(self, kind):
        digest = self._state().get('greetings', {}).get(kind)
        return StoredAudio(digest) if digest else None

    def counts(self):
        with self.media.read() as txn:
            counts = txn.mailbox_counts(self.tenant, self.number).get(self.number, {})
        return counts.get('new', 0), counts.get('saved', 0)

    def messages(self):
        with self.media.read() as txn:
            found = txn.voicemail_messages(self.tenant, self.number)
        for message in found:
            message['path'] = self.media.messages.path(message['file'])
        return [m for m in found if m['folder'] == 'new'] + [m for m in found if m['folder'] != 'new']

    # Leaving a message.
    def begin_message(self, caller, reason):
        return self.media.messages.begin(self.tenant, self.number, {
            'caller': caller.number, 'caller_name': caller.name, 'reason': reason,
            'email': self.email, 'attach': self.attach, 'delete_after_email': self.delete_after_email,
            'language': self.language, 'name': self.name})

    def keep_message(self, path, duration_ms):
        self.media.messages.keep(self.media, path, duration_ms)

    def discard_message(self, path):
        self.media.messages.discard(path)

    # The owner's menu.
    def mark_read(self, message):
        with self.media.write() as txn:
            txn.move_voicemail(self.tenant, message['id'], 'saved')

    save = mark_read

    def delete(self, message):
        with self.media.write() as txn:
            gone = txn.delete_voicemail(self.tenant, message['id'])
        if gone is not None:
            self.media.messages.remove(gone['file'])

    def greeting_path(self, kind):
        return self.media.messages.scratch('greeting-%s' % kind)

    def keep_greeting(self, kind, path, duration_ms):
        with open(path, 'rb') as handle:
            data = handle.read()
        with self.media.write() as txn:
            digest = txn.put_audio(self.tenant, data, duration_ms)
            state = txn.mailbox_state(self.tenant, self.number)
            state.setdefault('greetings', {})[kind] = digest
            txn.set_mailbox_state(self.tenant, self.number, state)
        os.unlink(path)

    def discard_greeting(self, path):
        if os.path.exists(path):
            os.unlink(path)

    # PINs.
    def pin_failures(self):
        return [epoch(t) for t in self._state().get('pin_failures', [])]

    def set_pin_failures(self, times):
        with self.media.write() as txn:
            state = txn.mailbox_state(self.tenant, self.number)
            state['pin_failures'] = [iso(t) for t in times]
            txn.set_mailbox_state(self.tenant, self.number, state)

    def lock(self):
        outcome = self._setting({'locked': True}, 'Mailbox Locked')
        self.locked = True
        LOG.warning('mailbox %s of tenant %s locked after %d wrong PINs within %d s (%d %s); an administrator '
                    'unlocks it with the extension module (voicemail.locked: false)', self.number, self.tenant,
                    voicemail_flows.PIN_FAILURES_TO_LOCK, voicemail_flows.PIN_FAILURE_WINDOW_S, outcome.code, outcome.reason)

    def change_pin(self, pin):
        outcome = self._setting({'pin': pin}, 'Voicemail PIN Changed')
        if outcome.code == _SETTING_WRITTEN:
            LOG.info('mailbox %s of tenant %s: PIN changed by its owner', self.number, self.tenant)
            return None
        LOG.info('mailbox %s of tenant %s: new PIN refused: %s', self.number, self.tenant, outcome.reason)
        return outcome.reason

    def _setting(self, voicemail_fields, done):
        setting = routing.PhoneSetting(self.tenant, self.number, {'voicemail': voicemail_fields}, done)
        return phone_settings.apply(self.media.directory, setting)


def _recorded_by(path):
    """The process id of the worker that recorded the message of ``path`` (its sidecar), or None."""
    try:
        with open(path + SIDECAR) as handle:
            return json.load(handle).get('pid')
    except (OSError, ValueError):
        return None


class Messages(object):
    """The message files below ``storage_dir``."""

    def __init__(self, storage_dir, clock=time.time):
        self.storage_dir = storage_dir
        self.clock = clock

    def path(self, relative):
        return os.path.join(self.storage_dir, relative)

    def scratch(self, name):
        folder = os.path.join(self.storage_dir, 'tmp')
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, '%s-%s.wav' % (name, uuid.uuid4().hex[:12]))

    def begin(self, tenant, mailbox, meta):
        """Where a new message of the mailbox is recorded; its metadata waits in a sidecar."""
        now = self.clock()
        folder = os.path.join(self.storage_dir, 'voicemail', tenant, mailbox)
        os.makedirs(folder, exist_ok=True)
        name = '%s-%s.wav' % (time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now)), uuid.uuid4().hex[:12])
        path = os.path.join(folder, name)
        sidecar = dict(meta, tenant=tenant, mailbox=mailbox, received_at=iso(now), pid=os.getpid())
        with open(path + SIDECAR + '.tmp', 'w') as handle:
            json.dump(sidecar, handle, sort_keys=True)
        os.rename(path + SIDECAR + '.tmp', path + SIDECAR)
        return path

    def keep(self, media, path, duration_ms):
        """Keep a recorded message: its row in the directory (and its mail queued); the id."""
        with open(path + SIDECAR) as handle:
            meta = json.load(handle)
        doc = {'caller': meta.get('caller'), 'caller_name': meta.get('caller_name'), 'reason': meta.get('reason')}
        if meta.get('email'):
            doc['email'] = {'state': 'pending', 'to': meta['email'], 'attach': bool(meta.get('attach', True)),
                            'delete_after': bool(meta.get('delete_after_email', False)), 'attempts': 0,
                            'language': meta.get('language') or 'de', 'name': meta.get('name')}
        relative = os.path.relpath(path, self.storage_dir)
        with media.write() as txn:
            message_id = txn.add_voicemail(meta['tenant'], meta['mailbox'], meta['received_at'], duration_ms,
                                           relative, doc)
        os.unlink(path + SIDECAR)
        LOG.info('message %s kept in mailbox %s of tenant %s: %d ms from %s (%s)', message_id, meta['mailbox'],
                 meta['tenant'], duration_ms, meta.get('caller') or 'anonymous', meta.get('reason'))
        if doc.get('email') and media.mail_queue is not None:
            media.mail_queue.wake()
        return message_id

    def discard(self, path):
        for name in (path, path + SIDECAR):
            if os.path.exists(name):
                os.unlink(name)

    def remove(self, relative):
        path = self.path(relative)
        if os.path.exists(path):
            os.unlink(path)

    def recover(self, media, pid=None):
        """At start-up: keep every message whose recording a crash or a stop cut off (its header
        repaired), drop those too short to be one; drop unfinished greeting recordings. With
        ``pid``: only what the worker of that process id was recording (it ended while the
        others go on). The number of messages kept."""
        kept = 0
        root = os.path.join(self.storage_dir, 'voicemail')
        for folder, _dirs, files in os.walk(root):
            for name in sorted(files):
                if not name.endswith('.wav' + SIDECAR):
                    continue
                path = os.path.join(folder, name[:-len(SIDECAR)])
                if pid is not None and _recorded_by(path) != pid:
                    continue
                try:
                    length = audio.repair(path) if os.path.exists(path) else 0
                except (ValueError, OSError) as e:
                    LOG.error('recording %s cannot be read (%s): dropped', path, e)
                    length = 0
                if voicemail_flows.keeps_message(length):
                    try:
                        self.keep(media, path, length)
                        kept += 1
                        LOG.warning('recording %s was cut off by a stop of the service: kept (%d ms)', path, length)
                        continue
                    except Exception as e:  # pylint: disable=broad-except  # a mailbox removed meanwhile
                        LOG.error('recording %s cut off by a stop cannot be kept: %s', path, e)
                self.discard(path)
        scratch = os.path.join(self.storage_dir, 'tmp')
        if pid is None and os.path.isdir(scratch):
            for name in os.listdir(scratch):
                os.unlink(os.path.join(scratch, name))
        return kept
