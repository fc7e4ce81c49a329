#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: voicemail_message
short_description: Delete voicemail messages of a voxplane tenant, or move them between folders
version_added: 0.2.0
description:
  - For an administrator. The messages callers leave are written by the PBX's media service, their metadata
    in the directory, their audio as WAV files below its storage folder (O(media_storage_dir)). This module
    removes messages (O(state=absent)), the WAV file with the metadata, or moves them between the folders
    C(new) and C(saved) (O(folder)), which is what the owner's message-waiting lamp shows.
  - The messages are named by their ids, as M(voxplane.pbx.voicemail_message_info) lists them; one task takes
    any number of them. With O(mailbox), every one of them must be a message of that mailbox.
  - Removing a message that does not exist (any more) is no change; moving one is refused (rule C(reference)).
    A message's file outside O(media_storage_dir) is refused (rule C(storage)) before anything is written.
  - To keep a copy first (a backup, a legal hold), use M(voxplane.pbx.voicemail_message_info) with
    O(voxplane.pbx.voicemail_message_info#module:dest).
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the messages belong to.
    type: str
    required: true
  id:
    description: The ids of the messages, one or a list.
    type: list
    elements: int
    required: true
  mailbox:
    description: The internal number of the extension whose mailbox the messages must be in.
    type: str
  state:
    description:
      - V(absent) removes the messages, the metadata from the directory and the WAV files from O(media_storage_dir)
        (after the directory's change is committed; a file that cannot be removed is a warning).
      - V(present) keeps them, in O(folder) when it is given.
    type: str
    choices: [present, absent]
    default: present
  folder:
    description: With O(state=present), the folder the messages are moved to.
    type: str
    choices: [new, saved]
  media_storage_dir:
    description:
      - The media service's storage folder on this host (the role C(voxplane.pbx.media)'s C(media_storage_dir)),
        below which the messages' WAV files are.
    type: path
    default: /var/lib/voxplane/media
'''

EXAMPLES = r'''
- name: The tenant and the mailbox these examples work with (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions: [{internal_number: "210", name: Anna Schmidt, voicemail: {enabled: true}}]

- name: Anna's saved messages
  voxplane.pbx.voicemail_message_info:
    tenant: acme
    mailbox: "210"
    folder: saved
  register: saved

- name: Mark them as new again
  voxplane.pbx.voicemail_message:
    tenant: acme
    mailbox: "210"
    id: "{{ saved.messages | map(attribute='id') | list }}"
    folder: new

- name: Remove the messages received before 2026 (the WAV files too)
  voxplane.pbx.voicemail_message:
    tenant: acme
    mailbox: "210"
    id: "{{ saved.messages | selectattr('received_at', 'lt', '2026') | map(attribute='id') | list }}"
    state: absent
'''

RETURN = r'''
messages:
  description:
    - The messages named, as M(voxplane.pbx.voicemail_message_info) returns them, as they are after the task;
      with O(state=absent) the ones removed, as they were.
  returned: success
  type: list
  elements: dict
  sample:
    - {id: 17, tenant: acme, mailbox: "210", folder: saved, received_at: "2026-12-07T09:14:03Z", duration_ms: 12400,
       caller: "+4989123456", file: voicemail/acme/210/20261207T091403Z-17.wav,
       path: /var/lib/voxplane/media/voicemail/acme/210/20261207T091403Z-17.wav}
changes:
  description: One line per message the task removed or moved.
  returned: always
  type: list
  elements: str
  sample: [delete voicemail message 17 (tenant acme)]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: voicemail message 17 (tenant acme), field: id, rule: reference,
            message: "message 17 does not exist in mailbox 210 of tenant acme"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import model, voicemail
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import ValidationFailed
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import (
    DIRECTORY_ARGS, in_transaction, new_module, normalised,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    id=dict(type='list', elements='int', required=True),
    mailbox=dict(type='str'),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    folder=dict(type='str', choices=list(voicemail.FOLDERS)),
    media_storage_dir=dict(type='path', default=voicemail.DEFAULT_STORAGE),
)


def main():
    spec = dict(ARGUMENT_SPEC)
    spec.update(DIRECTORY_ARGS)
    module = new_module(spec, 'voicemail message', 'id')
    params = module.params
    tenant = normalised(module, model.TENANT, params['tenant'], field='tenant')
    mailbox = params['mailbox'] and normalised(module, model.EXTENSION, params['mailbox'], field='mailbox')
    storage, absent = params['media_storage_dir'], params['state'] == 'absent'
    if not Directory(params['directory']).exists():
        if absent:
            module.exit_json(changed=False, messages=[], changes=[], diff=[])
        module.fail_json(msg='directory %s: does not exist' % params['directory'])

    def work(txn):
        messages, missing = voicemail.select(txn, tenant, mailbox, None, params['id'])
        if missing and not absent:
            raise ValidationFailed(voicemail.not_there(tenant, missing, mailbox))
        files, violations = voicemail.paths(storage, tenant, messages) if absent else ({}, [])
        if violations:
            raise ValidationFailed(violations)
        changed = []
        for message in messages:
            if absent:
                txn.delete_voicemail(tenant, message['id'])
                changed.append((message, None))
            elif params['folder'] and message['folder'] != params['folder']:
                txn.move_voicemail(tenant, message['id'], params['folder'])
                changed.append((message, dict(message, folder=params['folder'])))
        return changed, files, messages

    changed, files, messages = in_transaction(module, work)
    if absent and changed and not module.check_mode:
        for problem in voicemail.remove_files(dict((m['id'], files[m['id']]) for m, _after in changed)):
            module.warn(problem)
    after = dict((before['id'], moved) for before, moved in changed if moved is not None)
    module.exit_json(
        changed=bool(changed),
        messages=[voicemail.view(storage, after.get(m['id'], m)) for m in messages],
        changes=['%s %s' % ('delete' if moved is None else 'update', voicemail.describe(tenant, before['id']))
                 for before, moved in changed],
        diff=[dict(before_header=voicemail.describe(tenant, before['id']), before=voicemail.view(storage, before),
                   after_header=voicemail.describe(tenant, before['id']) + (' (absent)' if moved is None else ''),
                   after=voicemail.view(storage, moved) if moved is not None else {})
              for before, moved in changed],
    )


if __name__ == '__main__':
    main()
