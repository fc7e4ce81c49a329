#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: tenant_info
short_description: Read a whole tenant from the voxplane directory
version_added: 0.1.0
description:
  - Returns one tenant with all its numbers, extensions, devices, groups, phonebook, announcements, schedules, IVR
    menus, queues and conference rooms, in exactly the shape the modules take, so that feeding the result back into them changes nothing; the whole result is
    also a tenant document for M(voxplane.pbx.tenant_config).
  - Also returns each mailbox's message counts (RV(mailboxes)), beside the document; never the messages.
  - Secrets are returned only with O(secrets), and then as stored (SIP passwords as digest HA1, voicemail and
    conference PINs as salted hashes), never in plain text; modules keep the stored secret when a SIP account,
    voicemail or conference room is given without one.
  - Also returns the number plan the router derives from the tenant, that is which E.164 number reaches which target.
  - With O(dest) the result is a short summary of what was written (RV(files), RV(summary)), not the document.
  - With O(dest) the tenant is written to a file (O(format=yaml) or V(json)) or to CSV files in a folder
    (O(format=csv)); that changes nothing in the directory, and reports C(changed) when a file's content changes.
  - Fails when O(directory) does not exist (a typo in the path), and, with O(dest), when the tenant does not exist
    (naming tenants of similar names); without O(dest) a tenant that does not exist is RV(exists=false), with a
    warning when tenants of similar names exist.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.info
options:
  tenant:
    description: The tenant to read.
    type: str
    required: true
    aliases: [name]
  secrets:
    description:
      - Include the stored secrets (C(ha1) of each SIP account, C(voicemail.pin_hash), a conference room's C(pin_hash) and
        C(moderator_pin_hash)), so that the export restores
        the tenant into an empty directory and its phones register with their old passwords (backups, moves
        between directories). Never plain text.
      - Returned in the result only when the task has C(no_log) (rule C(no_log)); written to O(dest) with mode 0600.
    type: bool
    default: false
  audio:
    description:
      - Include the recordings the announcements play (section C(audio) of the document, each WAV as base64 with
        its SHA-256 and length), so that M(voxplane.pbx.tenant_config) puts them back in a directory that does not
        hold them. Without them such a directory refuses the announcements (rule C(audio_missing)).
      - When left out, the same as O(secrets). A backup (O(secrets=true)) restores into an empty directory, the
        announcements included; a document for a repository (the default) names the audio by its SHA-256 only.
      - Not for O(format=csv), which has no layout for announcements.
    type: bool
  format:
    description:
      - What O(dest) holds. V(yaml) or V(json) write the tenant document to the file O(dest); V(csv) writes
        C(extensions.csv), C(phonebook.csv), C(speed_dials.csv) and C(queue_members.csv) into the folder O(dest) (created
        when missing), in the layouts of docs/tenant-documents.md. Tenant settings, number objects, groups, schedules,
        menus, rooms and the queues' own settings have no CSV layout; export them as YAML or JSON beside it.
    type: str
    choices: [yaml, json, csv]
  dest:
    description:
      - Where to write the export (a file, or a folder for V(csv)); required with O(format).
      - A relative path is relative to the folder of the playbook when the task runs on the controller (localhost),
        and to the login folder of the remote user on another host; write C({{ playbook_dir }}/...) to say so.
    type: path
  csv:
    description: How O(format=csv) writes the files; the same option as M(voxplane.pbx.tenant_config)'s O(voxplane.pbx.tenant_config#module:csv).
    type: dict
    suboptions:
      delimiter:
        description: The column separator (C(;) as Excel's German export writes it).
        type: str
        choices: [';', ',']
        default: ';'
  call_flows:
    description:
      - Also return the tenant's call flows as pictures (RV(call_flows)), each of its numbers as a call from its trunk,
        each group, IVR menu, queue, conference room and extension as a call from another extension, every way such a
        call can go (see
        M(voxplane.pbx.route_info)'s O(voxplane.pbx.route_info#module:diagram)).
      - V(mermaid) as Mermaid text, with a Markdown page for review (it renders in GitHub and GitLab merge requests);
        V(svg) as SVG drawn by Graphviz's C(dot) (package C(graphviz) on the host the module runs on); V(both); V(none).
      - The playbook M(voxplane.pbx.call_flows) writes them as files, one page per tenant.
    type: str
    choices: [none, mermaid, svg, both]
    default: none
  csv_delimiter:
    description:
      - Deprecated, removed in version 1.0.0 of the collection; use O(csv.delimiter), its name in both
        M(voxplane.pbx.tenant_info) and M(voxplane.pbx.tenant_config). Still works, with a deprecation warning.
    type: str
    choices: [';', ',']
'''

EXAMPLES = r'''
- name: The tenant these examples read (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      numbers: [{number: "+49301234560", ddi_range: "00-99"}]
      extensions:
        - {internal_number: "210", ddi: "10", name: Anna Schmidt, sip_accounts: [{username: anna.desk, password: "{{ vault_anna_desk }}"}]}

- name: Read the tenant
  voxplane.pbx.tenant_info:
    tenant: acme
  register: acme

- name: Feed an extension back unchanged (changes nothing)
  voxplane.pbx.extension: "{{ acme.extensions[0] }}"

- name: A backup that restores into an empty directory (HA1s, PIN hashes, the announcements' recordings)
  voxplane.pbx.tenant_info:
    tenant: acme
    secrets: true
    format: json
    dest: "{{ playbook_dir }}/backup/acme.json"

- name: The extensions, phonebook, speed dials and queue members as CSV files for the spreadsheet (comma-separated)
  voxplane.pbx.tenant_info:
    tenant: acme
    format: csv
    csv: {delimiter: ","}
    dest: "{{ playbook_dir }}/export/acme"
'''

RETURN = r'''
exists:
  description: Whether the tenant exists.
  returned: always
  type: bool
tenant:
  description: The tenant, as M(voxplane.pbx.tenant) takes it; empty when it does not exist.
  returned: when O(dest) is not given
  type: dict
numbers:
  description: The tenant's numbers, as M(voxplane.pbx.number) takes them, sorted by number.
  returned: when O(dest) is not given
  type: list
  elements: dict
extensions:
  description: The tenant's extensions, as M(voxplane.pbx.extension) takes them, without secrets, sorted by internal number.
  returned: when O(dest) is not given
  type: list
  elements: dict
devices:
  description: The tenant's devices, as M(voxplane.pbx.device) takes them, sorted by MAC.
  returned: when O(dest) is not given
  type: list
  elements: dict
phonebook:
  description: The tenant's phonebook entries (C(name), C(number), C(mobile), C(company)), sorted by name.
  returned: when O(dest) is not given
  type: list
  elements: dict
announcements:
  description: The tenant's announcements, as M(voxplane.pbx.announcement) takes them, sorted by name.
  returned: when O(dest) is not given
  type: list
  elements: dict
  sample:
    - {name: closed, description: Closed, audio: 7987172fa1373bc1a73631cfba236ceafe624f3485db1ade8602957d45517ad7,
       duration_ms: 4200, then: "voicemail:210"}
schedules:
  description: The tenant's schedules (business hours), as M(voxplane.pbx.schedule) takes them, sorted by name.
  returned: when O(dest) is not given
  type: list
  elements: dict
ivrs:
  description: The tenant's IVR menus, as M(voxplane.pbx.ivr) takes them, sorted by internal number.
  returned: when O(dest) is not given
  type: list
  elements: dict
queues:
  description: The tenant's call queues with each member's login, as M(voxplane.pbx.queue) takes them, sorted by internal number.
  returned: when O(dest) is not given
  type: list
  elements: dict
conferences:
  description:
    - The tenant's conference rooms, as M(voxplane.pbx.conference) takes them, sorted by internal number; their PINs
      only with O(secrets), as C(pin_hash) and C(moderator_pin_hash).
  returned: when O(dest) is not given
  type: list
  elements: dict
audio:
  description:
    - The recordings the announcements play, each as C(sha256), C(duration_ms) and C(wav_base64) (the WAV as the
      directory keeps it, 16-bit PCM, mono, 8000 Hz), sorted by SHA-256.
  returned: when O(audio) is true (or left out with O(secrets=true)) and O(dest) is not given
  type: list
  elements: dict
mailboxes:
  description:
    - The tenant's voicemail boxes (extensions with voicemail enabled or holding messages) with the counts of
      C(new) and C(saved) messages and whether the box is C(locked) after wrong PINs; not part of the document.
  returned: when O(dest) is not given
  type: list
  elements: dict
  sample: [{internal_number: "210", new: 2, saved: 5, locked: false}]
files:
  description: The files written (or, in check mode, that would be written) with O(dest), as absolute paths.
  returned: when O(dest) is given
  type: list
  elements: str
summary:
  description:
    - With O(dest), what was written instead of the document itself; the tenant's name, whether the export holds
      secrets, and how many objects of each kind.
  returned: when O(dest) is given and the tenant exists
  type: dict
  sample: {tenant: acme, secrets: false, numbers: 1, extensions: 1, devices: 0, groups: 0, phonebook: 0, announcements: 0,
           schedules: 0, ivrs: 0, queues: 0, conferences: 0, audio: 0}
csv_skipped:
  description: What the CSV layouts cannot hold, such as a device whose lines belong to several extensions.
  returned: when O(format=csv)
  type: list
  elements: str
groups:
  description: The tenant's groups, as M(voxplane.pbx.group) takes them, sorted by internal number.
  returned: when O(dest) is not given
  type: list
  elements: dict
number_plan:
  description:
    - Every E.164 number of the tenant and the internal number it reaches (null when it reaches nobody),
      with its effective status (a porting number turns active by itself on its porting day).
  returned: when O(dest) is not given
  type: dict
  sample: {"+4930123456710": {target: "210", number: "+49301234567", status: active}}
generation:
  description: The directory generation the data was read at.
  returned: when the directory exists
  type: int
call_flows:
  description:
    - With O(call_flows), the tenant's call flows as pictures; empty when the tenant does not exist.
  returned: when O(call_flows) is not V(none)
  type: dict
  contains:
    flows:
      description:
        - One entry per number, group and extension, sorted by kind and key; V(kind), V(key), V(title), V(file) (a
          file name for its SVG), V(graph) (V(nodes) with V(id), V(kind), V(label); V(edges) with V(from), V(to),
          V(label); V(truncated)), V(mermaid) and V(svg) as O(call_flows) asks.
      type: list
      elements: dict
      returned: always
    markdown:
      description: A Markdown page of every flow as a Mermaid block (linking the SVG files with O(call_flows=both)).
      type: str
      returned: when O(call_flows) is V(mermaid) or V(both)
  sample:
    flows:
      - kind: group
        key: "200"
        title: group 200 from anna.desk
        file: group-200.svg
        graph: {nodes: [{id: n0, kind: start, label: call to 200 from anna.desk}], edges: [], truncated: false}
        mermaid: "flowchart TD\n    n0([\"call to 200 from anna.desk\"])\n"
'''

import difflib
import os
import time

from ansible_collections.voxplane.pbx.plugins.module_utils import callflow_diagram, model, rules, tenant_csv, tenant_document, voicemail
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError, StorageError, ValidationFailed, Violation
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import DIRECTORY_ARGS, fail, new_module, read_tenant
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

EMPTY = dict([('tenant', {}), ('number_plan', {})] + [(section, []) for section, _kind in tenant_document.SECTIONS])


def _write(module, files):
    """Write {path: (text, mode)}; returns whether any content changed (check mode: would)."""
    changed = False
    for path, (text, mode) in sorted(files.items()):
        try:
            with open(path, encoding='utf-8', newline='') as handle:
                same = handle.read() == text
        except (IOError, OSError, UnicodeDecodeError):
            same = False
        if same:
            continue
        changed = True
        if not module.check_mode:
            try:
                if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                    os.makedirs(os.path.dirname(os.path.abspath(path)), 0o755)
                tenant_document.write_atomically(path, text, mode)
            except (IOError, OSError) as e:
                module.fail_json(msg='cannot write %s (%s)' % (path, e.strerror or e))
    return changed


def _did_you_mean(module, name):
    """' (did you mean acme?)' when tenants of similar names exist, else ''."""
    try:
        with Directory(module.params['directory']).transaction(write=False, create=False) as txn:
            names = txn.tenant_names()
    except DirectoryError:
        return ''
    similar = difflib.get_close_matches(name, names, n=3)
    return ' (did you mean %s?)' % ' or '.join(similar) if similar else ''


def _no_flows(params):
    return {'call_flows': {'flows': []}} if params['call_flows'] != 'none' else {}


def _call_flows(module, tenant_name):
    """The tenant's call flows drawn on the whole directory, read in one read transaction."""
    try:
        with Directory(module.params['directory']).transaction(write=False, create=False) as txn:
            states, generation = txn.load_all(), txn.generation()['generation']
        return callflow_diagram.tenant_pictures(states, generation, tenant_name, module.params['call_flows'], time.time())
    except DirectoryError as e:
        fail(module, e)


def main():
    spec = dict(tenant=dict(type='str', required=True, aliases=['name']),
                secrets=dict(type='bool', default=False),
                audio=dict(type='bool'),
                format=dict(type='str', choices=['yaml', 'json', 'csv']),
                dest=dict(type='path'),
                csv=dict(type='dict', options=dict(delimiter=dict(type='str', default=';', choices=[';', ',']))),
                call_flows=dict(type='str', default='none', choices=list(callflow_diagram.DIAGRAM_FORMATS)),
                csv_delimiter=dict(type='str', choices=[';', ','], removed_in_version='1.0.0',
                                   removed_from_collection='voxplane.pbx'))
    spec.update(DIRECTORY_ARGS)
    module = new_module(spec, model.TENANT, 'tenant')
    params = module.params
    subject = model.describe(model.TENANT, params['tenant'])
    if bool(params['format']) != bool(params['dest']):
        fail(module, ValidationFailed([Violation(subject, 'dest' if params['format'] else 'format', 'required',
                                                 'format and dest go together: what to write, and where')]))
    if params['csv_delimiter'] and params['csv']:
        fail(module, ValidationFailed([Violation(subject, 'csv_delimiter', 'mutually_exclusive',
                                                 'csv_delimiter is the old name of csv.delimiter: give one of them')]))
    if params['secrets'] and not params['dest'] and not module.no_log:
        fail(module, ValidationFailed([Violation(subject, 'secrets', 'no_log',
                                                 'the result would carry the stored HA1s and PIN hashes: set no_log: true '
                                                 'on the task, or write them to a file with dest')]))
    if not Directory(params['directory']).exists():
        fail(module, StorageError(params['directory'], 'does not exist: no module has written a directory there '
                                  '(check the path, or the directory of module_defaults)'))
    with_audio = params['secrets'] if params['audio'] is None else params['audio']
    if params['format'] == 'csv':
        with_audio = False  # the CSV layouts have no announcements

    def besides(txn, state):
        return dict(mailboxes=voicemail.mailboxes(txn, state),
                    audio=tenant_document.announcement_audio(txn, state) if with_audio else None)
    state, generation, read = read_tenant(module, params['tenant'], also=besides)
    if state is None or state.tenant is None:
        if params['dest']:
            fail(module, ValidationFailed([Violation(subject, 'tenant', 'reference', 'tenant %s does not exist in directory %s%s; '
                                                     'nothing was written to %s' % (params['tenant'], params['directory'],
                                                                                    _did_you_mean(module, params['tenant']),
                                                                                    os.path.abspath(params['dest'])))]))
        similar = _did_you_mean(module, params['tenant'])
        if similar:  # a typo, most likely: say so (a name nothing resembles is a plain "does not exist")
            module.warn('tenant %s does not exist in directory %s%s' % (params['tenant'], params['directory'], similar))
        module.exit_json(changed=False, exists=False, **dict(EMPTY, mailboxes=[], **_no_flows(params)))
    document = tenant_document.export_document(state, secrets=params['secrets'], recordings=read['audio'])
    result = dict(changed=False, exists=True, generation=generation['generation'])
    if params['call_flows'] != 'none':
        result['call_flows'] = _call_flows(module, state.name)
    mode = 0o600 if params['secrets'] else 0o644
    if params['dest']:
        if params['format'] == 'csv':
            delimiter = params['csv_delimiter'] or (params['csv'] or {}).get('delimiter') or ';'
            texts, skipped = tenant_csv.render(document, delimiter)
            files = dict((os.path.join(params['dest'], tenant_csv.FILE_NAMES[kind]), (text, mode)) for kind, text in texts.items())
            result['csv_skipped'] = skipped
        else:
            files = {params['dest']: (tenant_document.dump(document, params['dest'], params['format']), mode)}
        result['changed'] = _write(module, files)
        result['files'] = sorted(os.path.abspath(path) for path in files)  # where a relative dest went
        # What was written, in numbers: the document itself is in the files, not in the task's output.
        result['summary'] = dict([('tenant', state.name), ('secrets', params['secrets'])] + [
            (section, len(document[section])) for section, _kind in tenant_document.SECTIONS] + [
            ('audio', len(document.get(tenant_document.AUDIO_SECTION, [])))])
        module.exit_json(**result)
    result.update(document)
    result['mailboxes'] = read['mailboxes']
    plan = state.number_plan()[0]
    numbers = state.objects(model.NUMBER)
    tz = state.tenant['timezone']
    try:  # a porting number's status needs the time zone: tz data must be there
        result['number_plan'] = dict(
            (e164, dict(entry, status=rules.effective_status(numbers[entry['number']], tz)))
            for e164, entry in sorted(plan.items()))
    except DirectoryError as e:
        fail(module, e)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
