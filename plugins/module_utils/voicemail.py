# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An administrator's view of voicemail: the mailboxes' counts, the messages and their files.

The media service writes the messages (docs/media.md): their metadata in the directory
(``store.Transaction.add_voicemail`` and the rest), their audio as WAV files below its storage
folder (``media_storage_dir`` of the role ``voxplane.pbx.media``). This file reads them for the
``voicemail_message`` modules: which messages a request names, where each one's file is, a copy
of them (WAV and metadata) for a backup or a legal hold, and their removal. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.voxplane.pbx.plugins.module_utils import model
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError, Violation

DEFAULT_STORAGE = '/var/lib/voxplane/media'   # the media role's media_storage_dir
FOLDERS = ('new', 'saved')


def mailboxes(txn, state, keys=None):
    """Each mailbox of the tenant (of the extensions ``keys``): the extensions whose voicemail is enabled
    or that hold messages, with their counts of new and saved messages and whether the box is locked
    (after wrong PINs); never a message's audio. Sorted by internal number."""
    counts = txn.mailbox_counts(state.name)
    extensions = state.objects(model.EXTENSION)
    wanted = sorted(k for k in (extensions if keys is None else keys)
                    if k in extensions and (extensions[k]['voicemail']['enabled'] or k in counts))
    return [dict(internal_number=k, new=counts.get(k, {}).get('new', 0), saved=counts.get(k, {}).get('saved', 0),
                 locked=extensions[k]['voicemail']['locked']) for k in wanted]


def describe(tenant, message_id):
    """How messages name a voicemail message: 'voicemail message 17 (tenant acme)'."""
    return model.describe('voicemail message', message_id, tenant)


def select(txn, tenant, mailbox=None, folder=None, ids=None):
    """The tenant's messages (of one mailbox, one folder, the given ids), oldest first, and the ids of
    those asked for that the tenant does not have (or not in that mailbox)."""
    if ids is None:
        return txn.voicemail_messages(tenant, mailbox, folder), []
    found, missing = [], []
    for message_id in sorted(set(ids)):
        message = txn.voicemail_message(tenant, message_id)
        if message is None or (mailbox is not None and message['mailbox'] != mailbox):
            missing.append(message_id)
        elif folder is None or message['folder'] == folder:
            found.append(message)
    found.sort(key=lambda m: (m['received_at'], m['id']))
    return found, missing


def path_of(storage, message):
    """The message's WAV file: its ``file`` below ``storage`` (an absolute ``file`` as it is). RuleError
    when that is outside the storage folder: then it is not the media service's file, or ``storage``
    is not the folder the service writes to."""
    storage = os.path.realpath(storage)
    path = os.path.realpath(os.path.join(storage, message['file']))
    if os.path.commonpath([storage, path]) != storage:
        raise RuleError('media_storage_dir', 'storage', 'the file of message %s, %s, is not below %s: give the '
                        'media service\'s media_storage_dir' % (message['id'], message['file'], storage))
    return path


def view(storage, message):
    """A message as the modules return it: its metadata and the path of its WAV file on this host."""
    out = dict(message)
    try:
        out['path'] = path_of(storage, message)
    except RuleError:
        out['path'] = None
    return out


def paths(storage, tenant, messages):
    """{id: path} of the messages' files; ValidationFailed-ready violations for those outside ``storage``."""
    found, violations = {}, []
    for message in messages:
        try:
            found[message['id']] = path_of(storage, message)
        except RuleError as e:
            violations.append(e.at(describe(tenant, message['id'])))
    return found, violations


def _same_file(path, data):
    try:
        with open(path, 'rb') as handle:
            return handle.read() == data
    except (IOError, OSError):
        return False


def export_plan(storage, dest, messages):
    """What a copy of the messages into ``dest`` writes: {path: bytes} of each message's WAV file and its
    metadata as JSON beside it (``<dest>/<mailbox>/<name>.wav`` and ``.json``), and the files that are
    missing in the storage folder (listed, not copied)."""
    files, missing = {}, []
    for message in messages:
        source = path_of(storage, message)
        stem = os.path.splitext(os.path.basename(source))[0]
        folder = os.path.join(dest, message['mailbox'])
        try:
            with open(source, 'rb') as handle:
                files[os.path.join(folder, stem + '.wav')] = handle.read()
        except (IOError, OSError):
            missing.append(source)
        metadata = dict(message, audio_file=stem + '.wav')
        files[os.path.join(folder, stem + '.json')] = (json.dumps(metadata, indent=1, sort_keys=True) + '\n').encode('utf-8')
    return files, missing


def write_files(files, check_mode):
    """Write {path: bytes} (mode 0600, folders 0700: voicemail is personal data); the paths whose content
    changed (in check mode: would change)."""
    changed = []
    for path, data in sorted(files.items()):
        if _same_file(path, data):
            continue
        changed.append(path)
        if check_mode:
            continue
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            os.makedirs(folder, 0o700)
        tmp = '%s.tmp-%d' % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.rename(tmp, path)
    return changed


def remove_files(found):
    """Remove the WAV files of deleted messages ({id: path}); what could not be removed (or was not there), with why."""
    problems = []
    for message_id, path in sorted(found.items()):
        try:
            os.remove(path)
        except FileNotFoundError:
            problems.append('message %s: its file %s is not there (is media_storage_dir the media service\'s?)'
                            % (message_id, path))
        except OSError as e:
            problems.append('message %s: cannot remove %s (%s)' % (message_id, path, e.strerror or e))
    return problems


def not_there(tenant, ids, mailbox=None):
    """Violations for message ids the tenant (the mailbox) does not have."""
    where = 'mailbox %s of tenant %s' % (mailbox, tenant) if mailbox else 'tenant %s' % tenant
    return [Violation(describe(tenant, message_id), 'id', 'reference', 'message %s does not exist in %s'
                      % (message_id, where)) for message_id in ids]
