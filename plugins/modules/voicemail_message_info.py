#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: voicemail_message_info
short_description: List the voicemail messages of a voxplane tenant, and copy them for a backup or a legal hold
version_added: 0.2.0
description:
  - For an administrator. Lists the messages callers left in the tenant's mailboxes (all of them, one
    mailbox's, one folder's, or the ones named by id) with their metadata, the path of each one's WAV file on
    this host, and each mailbox's counts (RV(mailboxes)).
  - With O(dest), copies them into a folder on this host, each message as its WAV file and its metadata as JSON
    beside it (C(<dest>/<mailbox>/<name>.wav) and C(.json)), files mode 0600 and folders 0700, as voicemail is
    personal data. A second run copies nothing and reports no change. To bring the copy to the controller, use
    M(ansible.builtin.fetch) on RV(files) (see the examples).
  - The metadata is the media service's, as the directory keeps it (caller, caller's name, time, length,
    Diversion reason, folder, e-mail delivery); the audio is never in the result.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.info
options:
  tenant:
    description: The tenant whose messages to read.
    type: str
    required: true
  mailbox:
    description: The internal number of the extension whose mailbox to read; all mailboxes when left out.
    type: str
  folder:
    description: Only the messages in this folder.
    type: str
    choices: [new, saved]
  id:
    description:
      - Only these messages (their ids). An id the tenant (the O(mailbox)) does not have fails the task (rule
        C(reference)), so that a copy for a legal hold never misses a message silently.
    type: list
    elements: int
  dest:
    description:
      - A folder on this host to copy the messages into (created when missing). A message whose WAV file is
        missing in O(media_storage_dir) is listed in RV(missing_files); its metadata is copied all the same.
      - With O(dest), a tenant or directory that does not exist fails the task.
    type: path
  media_storage_dir:
    description:
      - The media service's storage folder on this host (the role C(voxplane.pbx.media)'s C(media_storage_dir)),
        below which the messages' WAV files are.
    type: path
    default: /var/lib/voxplane/media
'''

EXAMPLES = r'''
- name: The tenant and the mailbox these examples read (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions: [{internal_number: "210", name: Anna Schmidt, voicemail: {enabled: true}}]

- name: Every message of the tenant, and each mailbox's counts
  voxplane.pbx.voicemail_message_info:
    tenant: acme
  register: everything

- name: Anna's new messages
  voxplane.pbx.voicemail_message_info:
    tenant: acme
    mailbox: "210"
    folder: new
  register: fresh

- name: A copy of Anna's mailbox for a legal hold, on the PBX host (WAV and JSON per message)
  voxplane.pbx.voicemail_message_info:
    tenant: acme
    mailbox: "210"
    dest: /tmp/legal-hold/acme
  register: held

- name: Bring the copy to the controller
  ansible.builtin.fetch:
    src: "{{ item }}"
    dest: "{{ playbook_dir }}/legal-hold/"
  loop: "{{ held.files }}"
'''

RETURN = r'''
exists:
  description: Whether the tenant exists (V(false) also when the directory does not).
  returned: always
  type: bool
  sample: true
messages:
  description:
    - The messages, oldest first, each with its C(id), C(tenant), C(mailbox), C(folder) (V(new) or V(saved)),
      C(received_at), C(duration_ms), C(file) (as the media service keeps it, below O(media_storage_dir)),
      C(path) (the WAV file on this host; null when C(file) is not below O(media_storage_dir)) and the media
      service's metadata.
  returned: always
  type: list
  elements: dict
  sample:
    - {id: 17, tenant: acme, mailbox: "210", folder: new, received_at: "2026-12-07T09:14:03Z", duration_ms: 12400,
       caller: "+4989123456", caller_name: Max Muster, reason: no-answer,
       file: voicemail/acme/210/20261207T091403Z-17.wav,
       path: /var/lib/voxplane/media/voicemail/acme/210/20261207T091403Z-17.wav}
mailboxes:
  description:
    - The mailboxes read (extensions with voicemail enabled or holding messages) with the counts of C(new) and
      C(saved) messages and whether the box is C(locked) after wrong PINs.
  returned: always
  type: list
  elements: dict
  sample: [{internal_number: "210", new: 2, saved: 5, locked: false}]
files:
  description: With O(dest), every file of the copy (absolute paths), written now or already there.
  returned: when O(dest) is given
  type: list
  elements: str
  sample: [/tmp/legal-hold/acme/210/20261207T091403Z-17.json, /tmp/legal-hold/acme/210/20261207T091403Z-17.wav]
missing_files:
  description: With O(dest), the messages' WAV files that are not in O(media_storage_dir).
  returned: when O(dest) is given
  type: list
  elements: str
'''

import os

from ansible_collections.voxplane.pbx.plugins.module_utils import model, voicemail
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError, RuleError, StorageError, ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import (
    fail, info_argument_spec, new_module, normalised, open_directory,
)


def main():
    module = new_module(info_argument_spec(
        mailbox=dict(type='str'),
        folder=dict(type='str', choices=list(voicemail.FOLDERS)),
        id=dict(type='list', elements='int'),
        dest=dict(type='path'),
        media_storage_dir=dict(type='path', default=voicemail.DEFAULT_STORAGE),
    ), 'voicemail message', 'id')
    params = module.params
    tenant = normalised(module, model.TENANT, params['tenant'], field='tenant')
    mailbox = params['mailbox'] and normalised(module, model.EXTENSION, params['mailbox'], field='mailbox')
    storage, dest = params['media_storage_dir'], params['dest']
    directory = open_directory(module, for_write=False)
    if directory is None:
        if dest:
            fail(module, StorageError(params['directory'], 'does not exist; nothing was written to %s' % dest))
        module.exit_json(changed=False, exists=False, messages=[], mailboxes=[])
    try:
        with directory.transaction(write=False, create=False) as txn:
            state = txn.load_tenant(tenant)
            if state.tenant is None:
                if dest:
                    fail(module, ValidationFailed([RuleError('tenant', 'reference', 'tenant %s does not exist; nothing was '
                                                             'written to %s' % (tenant, dest)).at(model.describe(model.TENANT, tenant))]))
                module.exit_json(changed=False, exists=False, messages=[], mailboxes=[])
            messages, missing = voicemail.select(txn, tenant, mailbox, params['folder'], params['id'])
            counts = voicemail.mailboxes(txn, state, [mailbox] if mailbox else None)
    except DirectoryError as e:
        fail(module, e)
    if missing:
        fail(module, ValidationFailed(voicemail.not_there(tenant, missing, mailbox)))
    result = dict(changed=False, exists=True, messages=[voicemail.view(storage, m) for m in messages], mailboxes=counts)
    if dest:
        violations = voicemail.paths(storage, tenant, messages)[1]
        if violations:
            fail(module, ValidationFailed(violations))
        files, result['missing_files'] = voicemail.export_plan(storage, dest, messages)
        try:
            result['changed'] = bool(voicemail.write_files(files, module.check_mode))
        except (IOError, OSError) as e:
            module.fail_json(msg='cannot write the copy into %s (%s)' % (dest, e.strerror or e))
        result['files'] = sorted(os.path.abspath(path) for path in files)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
