#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: tenant_config
short_description: Apply a whole voxplane tenant from one document, in one transaction
version_added: 0.2.0
description:
  - Applies a whole tenant in one task and one transaction, with all rules and integrity checks of the
    single-object modules and the same field ownership rules; a CI pipeline keeps the tenant in git and
    applies it on every merge.
  - The document has exactly the shape M(voxplane.pbx.tenant_info) returns (C(tenant), C(numbers),
    C(extensions), C(devices), C(groups), C(phonebook), C(announcements), C(schedules), C(ivrs), C(queues),
    C(conferences), and C(audio) when it was exported with
    O(voxplane.pbx.tenant_info#module:audio); keys it returns beside them, such as C(number_plan) and C(mailboxes),
    are ignored), so export, edit and apply round-trip with no change. Each object takes the options of its
    module (M(voxplane.pbx.tenant), M(voxplane.pbx.number), M(voxplane.pbx.extension), M(voxplane.pbx.device),
    M(voxplane.pbx.group), M(voxplane.pbx.announcement) with its recording named by O(voxplane.pbx.announcement#module:audio),
    M(voxplane.pbx.schedule), M(voxplane.pbx.ivr), M(voxplane.pbx.queue), M(voxplane.pbx.conference)); a phonebook entry
    has C(name), C(number), C(mobile) and C(company).
  - An announcement whose recording the directory does not hold needs it in the document's C(audio) section
    (each entry C(sha256), C(duration_ms), C(wav_base64)), else it is refused (rule C(audio_missing)); the
    recordings are checked before anything is written and kept with the announcements.
  - A bad document fails with every violation at once, each naming the object, the field and the rule
    (a CSV file, the file, row and column), and changes nothing.
  - Validate a tenant file without any directory (a pre-commit hook, a merge request pipeline) with
    O(state=validated); the playbook C(voxplane.pbx.validate_tenant) does it for a list of files. See
    docs/tenant-documents.md in the collection.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description:
      - The tenant. May be left out when the document names it (C(tenant.name)); must agree with it when both do.
    type: str
    aliases: [name]
  state:
    description:
      - V(merged) adds and changes what the document lists, field by field; fields and objects it leaves out stay as they are.
      - V(replaced) makes each listed object exactly as written (a field left out goes to its default); objects not listed stay.
      - V(overridden) makes the tenant exactly the document, removing the objects it does not list, in dependency order.
      - V(deleted) removes the tenant and everything in it; only its name is read from the document. Refused while a
        number of the tenant is still porting (rule C(porting)), unless O(force).
      - V(validated) judges the document on its own and changes nothing (the lint of a tenant file), that is its shape, every
        field rule and, when it has a C(tenant) section, every integrity check inside the tenant, against an empty
        in-memory directory; O(directory) is neither read nor written, and need not exist. SIP accounts without
        C(password) or C(ha1) are taken as accounts that exist, so an export without secrets (the file a repository
        keeps) passes. A document without a C(tenant) section (a CSV file) is judged by the field rules with the
        default dial plan. Checks against other tenants (a number, MAC or SIP domain another tenant holds) need the
        directory; run the other states in check mode for those.
      - Stored secrets stay unless the document gives new ones; SIP accounts and voicemail PINs are never reset by
        V(replaced) or V(overridden).
    type: str
    choices: [merged, replaced, overridden, deleted, validated]
    default: merged
  config:
    description:
      - The tenant document, inline. Secret values in it (C(password), C(pin), C(ha1), C(pin_hash), C(moderator_pin),
        C(moderator_pin_hash)) are masked in the task's log and output, and the document is not echoed back.
      - Mutually exclusive with O(src).
    type: dict
  src:
    description:
      - A file holding the tenant document, read on the host the task runs on. C(.json) (fastest), C(.yml) or
        C(.yaml) (PyYAML's C loader when libyaml is there), or C(.csv) (see O(csv)).
      - A CSV file holds extensions (with SIP accounts, numbers and device), phonebook entries, speed dials or the
        members of queues in the layouts of docs/tenant-documents.md, and is applied with O(state=merged) only (or
        checked with O(state=validated)).
      - A relative path is relative to the folder of the playbook when the task runs on the controller (localhost),
        and to the login folder of the remote user on another host; write C({{ playbook_dir }}/...) to say so.
      - Mutually exclusive with O(config).
    type: path
  csv:
    description: How O(src) is read as CSV (also for a file whose name does not end in C(.csv)).
    type: dict
    suboptions:
      kind:
        description: The layout; by default recognised from the header row.
        type: str
        choices: [extensions, phonebook, speed_dials, queue_members]
      delimiter:
        description: The column separator; V(auto) takes whichever of C(;) and C(,) separates the header.
        type: str
        choices: [auto, ';', ',']
        default: auto
  force:
    description: With O(state=deleted), remove the tenant even while one of its numbers is still porting.
    type: bool
    default: false
  diff_limit:
    description:
      - How many object changes the diff shows after the counts per kind; it then says how many more there are.
        The counts and the list of changes the module returns are always complete.
    type: int
    default: 20
'''

EXAMPLES = r'''
- name: A small tenant inline (the document has the shape tenant_info returns)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      numbers: [{number: "+49301234560", ddi_range: "00-99"}]
      extensions:
        - internal_number: "210"
          ddi: "10"
          name: Anna Schmidt
          sip_accounts: [{username: anna.desk, password: "{{ vault_anna_desk }}"}]
          speed_dials: [{code: "1", number: "030 1234567", name: Empfang}]
      phonebook: [{name: Jörg Müller, number: "089 123456", company: Müller GmbH}]

- name: Export it once, as the file the repository keeps (no secrets in git; the accounts keep theirs)
  voxplane.pbx.tenant_info:
    tenant: acme
    format: json
    dest: "{{ playbook_dir }}/tenants/acme.json"

- name: Lint the file without any directory (every rule and integrity check inside it; changes nothing)
  voxplane.pbx.tenant_config:
    src: "{{ playbook_dir }}/tenants/acme.json"
    state: validated

- name: Apply the tenant from git, exactly as written (objects it no longer lists are removed)
  voxplane.pbx.tenant_config:
    src: "{{ playbook_dir }}/tenants/acme.json"
    state: overridden
  register: acme

- name: Fail the merge request on more than 50 removals
  ansible.builtin.assert:
    that: acme.counts.extensions.removed <= 50

- name: Export the extensions, phonebook and speed dials as CSV files for the spreadsheet
  voxplane.pbx.tenant_info:
    tenant: acme
    format: csv
    dest: "{{ playbook_dir }}/export/acme"

- name: Import extensions from the portal's CSV (Excel's German export is ';' separated)
  voxplane.pbx.tenant_config:
    tenant: acme
    src: "{{ playbook_dir }}/export/acme/extensions.csv"

- name: Remove a tenant and everything in it (nothing happens when there is no such tenant)
  voxplane.pbx.tenant_config:
    tenant: muster
    state: deleted
'''

RETURN = r'''
tenant:
  description: The tenant's name.
  returned: always
  type: str
  sample: acme
counts:
  description:
    - Per kind (C(tenant), C(numbers), C(extensions), C(devices), C(groups), C(phonebook), C(announcements), C(schedules),
      C(ivrs), C(queues), C(conferences)) how many objects the run
      adds, changes and removes (in check mode, would).
    - With O(state=validated), what applying the document to an empty directory would add.
  returned: success
  type: dict
  sample: {extensions: {added: 1, changed: 0, removed: 2}, tenant: {added: 0, changed: 1, removed: 0}}
changes:
  description: One line per changed object, in the order they are planned.
  returned: success
  type: list
  elements: str
  sample: ["update tenant acme", "delete extension 211 (tenant acme)"]
msg:
  description: With O(state=validated), what was checked.
  returned: when O(state=validated) and the document passes
  type: str
  sample: "tenant acme: the document passes every field rule and integrity check (numbers: 1, extensions: 1)"
diff:
  description:
    - The readable diff (shown with C(--diff)) as C(prepared) text, bounded by O(diff_limit); secrets show as set or changed.
  returned: success
  type: dict
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: "extensions.csv row 4 (extension 780 (tenant acme))", field: internal_number,
            rule: internal_forbidden_prefix, message: "'780': internal numbers must not start with 78"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import model, tenant_csv, tenant_document
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError, ValidationFailed, Violation
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import DIRECTORY_ARGS, fail, in_transaction, new_module
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', aliases=['name']),
    state=dict(type='str', default='merged', choices=list(tenant_document.STATES)),
    config=dict(type='dict'),
    src=dict(type='path'),
    csv=dict(type='dict', options=dict(
        kind=dict(type='str', choices=list(tenant_csv.KINDS)),
        delimiter=dict(type='str', default='auto', choices=['auto', ';', ',']),
    )),
    force=dict(type='bool', default=False),
    diff_limit=dict(type='int', default=20),
)


def _document(module):
    params = module.params
    state = params['state']
    where = 'document %s' % (params['src'] or 'config')
    if params['config'] is not None and params['src']:
        fail(module, ValidationFailed([Violation(where, 'src', 'mutually_exclusive', 'give the document as config or src, not both')]))
    if params['src']:
        document = tenant_document.read_document(params['src'], params['tenant'], params['csv'])
        if document.from_csv and state not in (tenant_document.MERGED, tenant_document.VALIDATED):
            fail(module, ValidationFailed([Violation(where, 'state', 'csv_merged',
                                                     'a CSV file holds some fields of some objects; apply it with state merged')]))
        return document
    if params['config'] is not None:
        return tenant_document.parse_document(params['config'], params['tenant'], 'config')
    if state == tenant_document.DELETED and params['tenant']:
        return tenant_document.parse_document({}, params['tenant'], 'config')
    fail(module, ValidationFailed([Violation(where, 'config', 'required', 'give the tenant document as config or src')]))


def validate(module, document, invocation):
    """state validated: the document judged on its own; no directory is opened."""
    try:
        table = tenant_document.validate_document(document)
    except DirectoryError as e:
        fail(module, e)
    listed = ', '.join('%s: %d' % (section, table[section]['added']) for section, _kind in tenant_document.SECTIONS
                       if table[section]['added'])
    checks = 'every field rule and integrity check' if document.tenant_request is not None else \
        'every field rule (it has no tenant section: the checks across its objects need the directory)'
    module.exit_json(changed=False, tenant=document.tenant_name, counts=table, changes=[], diff={},
                     msg='tenant %s: the document passes %s (%s)' % (document.tenant_name, checks, listed or 'no objects'),
                     invocation={'module_args': invocation})


def main():
    spec = dict(ARGUMENT_SPEC)
    spec.update(DIRECTORY_ARGS)
    module = new_module(spec, model.TENANT, 'tenant',
                        secrets_of=lambda params: tenant_document.secret_values(params.get('config')))
    params = module.params
    document = _document(module)
    state = params['state']
    invocation = dict((k, v) for k, v in params.items() if k != 'config')
    if params['config'] is not None:
        invocation['config'] = 'a tenant document of %d objects (not echoed)' % (
            sum(document.count(kind) for kind in model.CHILD_KINDS) + (document.tenant_request is not None))
    if state == tenant_document.VALIDATED:
        validate(module, document, invocation)
    if state == tenant_document.DELETED and not Directory(params['directory']).exists():
        module.exit_json(changed=False, tenant=document.tenant_name, counts={}, changes=[], diff={},
                         invocation={'module_args': invocation})
    result = in_transaction(module, lambda txn: tenant_document.apply_document(txn, document, state, params['force']))
    module.exit_json(
        changed=result.changed,
        tenant=result.tenant_name,
        counts=tenant_document.counts(result),
        changes=[c.summary(result.tenant_name) for c in result.changes],
        diff={'prepared': tenant_document.diff_text(result, params['diff_limit'])} if result.changed else {},
        invocation={'module_args': invocation},
    )


if __name__ == '__main__':
    main()
