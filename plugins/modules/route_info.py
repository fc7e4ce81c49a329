#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: route_info
short_description: Simulate how the router handles a call, step by step
version_added: 0.2.0
description:
  - Runs the KEMI router's own decision code (the routing core) against the directory for one call
    and returns the call flow as data, so that a pipeline can assert how calls are routed before
    (or after) a change goes live.
  - The call is described by its caller (a SIP account, an extension, or the tenant's trunk with a
    calling number), the dialled digits and the circumstances that Kamailio and the phones would
    contribute; which SIP accounts have a registered contact, who is on Do Not Disturb, which
    branch answers, is busy or declines, and the time of the call.
  - Each step says what rings for how long (SIP accounts, the mobile of single number reach), what
    the call is forwarded to and why (the Diversion reason), voicemail or the trunk; the result
    ends with the final SIP answer the caller gets.
  - Reads only; a feature code (V(*78) ...) is tried on a scratch copy of the caller's tenant, so
    its answer is the real one and the directory is not changed.
  - See C(docs/route-simulation.md) in the collection for the rules of the simulation.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.info
options:
  tenant:
    description:
      - The caller's tenant; for a call from the trunk, the tenant whose trunk it arrives on.
    type: str
    required: true
  caller:
    description:
      - Who places the call; exactly one of O(caller.account), O(caller.extension) and O(caller.trunk).
    type: dict
    required: true
    suboptions:
      account:
        description: A SIP account of the tenant (its username).
        type: str
      extension:
        description: An extension of the tenant (internal number); the call comes from its first SIP account.
        type: str
      trunk:
        description: The call comes in from the tenant's trunk (an inbound call to one of the directory's numbers).
        type: bool
        default: false
      calling_number:
        description:
          - With O(caller.trunk), the number the caller presents (the From user as the carrier sends it,
            national or international; normalised to E.164 as the router does).
          - A leg forwarded out presents it in its From (the V(from_identity) of a step of RV(steps)); left
            out, or a value that is no number (V(anonymous)), the caller is anonymous.
        type: str
      source:
        description:
          - With O(caller.trunk), the trunk address the call comes from.
          - Default, the first address of the tenant's preferred trunk.
        type: str
  src:
    description:
      - A tenant document not applied yet, as a file in the shape M(voxplane.pbx.tenant_info) returns,
        read as M(voxplane.pbx.tenant_config) reads its O(voxplane.pbx.tenant_config#module:src) (JSON, or YAML for a name
        ending in C(.yml) or C(.yaml)); the document names its tenant.
      - The simulation runs on the directory with that tenant as the document describes it, in
        place of what the directory holds of it; without a directory, on the document alone.
        Nothing is written; the document is validated with every rule and integrity check of the
        modules (each violation named) in an empty in-memory directory.
      - SIP accounts need no secrets in the document; the simulation authenticates nobody.
      - A relative path is relative to the folder of the playbook when the task runs on the controller (localhost),
        and to the login folder of the remote user on another host; write C({{ playbook_dir }}/...) to say so.
    type: path
  dialled:
    description:
      - The digits the caller dialled (the Request-URI user), as the phone or the carrier sends them;
        an internal number, a feature code, an emergency number, a national or international number.
    type: str
    required: true
    aliases: [number]
  at:
    description:
      - The time of the call, ISO 8601 (V(2026-03-01T09:30), without an offset in the tenant's timezone).
      - It matters where a porting number turns active at its porting date, and for a schedule (business hours,
        M(voxplane.pbx.schedule)), which is open or closed by it.
      - Default, now.
    type: str
  digits:
    description:
      - What the caller presses at the IVR menus the call reaches (M(voxplane.pbx.ivr)), in order, one entry per try;
        a key (V(0) to V(9), V(*), V(#); quote them in YAML), an extension's internal number (where the menu lets
        callers dial one directly), or V(timeout) (no key within the menu's timeout).
      - Each menu step says which key led where, and the flow goes on there, as the media service places that call
        through the router; wrong keys and timeouts count as tries, and after the menu's O(voxplane.pbx.ivr#module:max_tries)
        the call goes to the menu's O(voxplane.pbx.ivr#module:invalid) or O(voxplane.pbx.ivr#module:no_input) destination.
      - Default, none; the flow stops at the first menu (the caller hears it), as it does when the digits run out.
    type: list
    elements: str
  registered:
    description:
      - The SIP accounts that have a registered contact (username, or internal number for all of
        an extension's accounts). An empty list means none.
      - Default, every SIP account is registered.
    type: list
    elements: str
  dnd:
    description:
      - Do Not Disturb switched on (V(true)) or off (V(false)) for the call, by internal number of an
        extension of the tenant; extensions not named keep their stored setting.
    type: dict
  diagram:
    description:
      - Also return the call flow as a picture (RV(diagram)), every way a call to O(dialled) can go, whatever
        O(registered), O(answer), O(busy) and O(decline) say (the step list is the one call they describe).
      - V(mermaid) as Mermaid text (renders in GitHub and GitLab merge requests), V(svg) as SVG drawn by Graphviz's
        C(dot) (package C(graphviz) on the host the module runs on), V(both), or V(none).
    type: str
    choices: [none, mermaid, svg, both]
    default: none
  media_service:
    description:
      - The PBX's media service the live router sends voicemail, the mailbox menus and announcements to
        (the kamailio role's C(kamailio_media_service)), as C(sip:<address>:<port>).
      - V(deployed) (the default) predicts calls as with a media service deployed, without naming its address;
        V(none) as without one (voicemail only where the tenant has a C(media_server) of its own).
    type: str
    default: deployed
  answer:
    description:
      - The branches that answer, by SIP account, internal number, the number a trunk leg calls, or
        V(trunk) / V(voicemail) for any such leg.
      - A member of a queue named here answers the queue's call (the first such member that is logged in, not on
        do-not-disturb and registered, by penalty); else nobody answers the queue and its overflow follows after
        its O(voxplane.pbx.queue#module:max_wait).
      - Default, nobody answers; every phone rings until its ring time runs out.
    type: list
    elements: str
    default: []
  busy:
    description: The branches that answer busy (486), named as in O(answer).
    type: list
    elements: str
    default: []
  decline:
    description: The branches that decline (603), named as in O(answer).
    type: list
    elements: str
    default: []
notes:
  - The simulation assumes no outside-call limit is reached yet (a limit of zero calls refuses
    even so), and that a branch to a registered contact reaches the phone.
  - The far end of a trunk or voicemail leg decides that leg's answer; unless O(answer), O(busy)
    or O(decline) names it, RV(final.code) is V(null).
'''

EXAMPLES = r'''
- name: The tenant the calls are placed in, with the reception group 200 of Anna (210) and Ben (211)
  voxplane.pbx.tenant_config:
    config:
      tenant:
        name: acme
        sip_domain: acme.pbx.example.com
        licences: {seats: {smart: 10, best: 2}}
        trunks: [{name: carrier, addresses: [192.0.2.10]}]
      numbers: [{number: "+49301234560", ddi_range: "00-99"}]
      extensions:
        - {internal_number: "100", name: Switchboard, sip_accounts: [{username: switchboard.desk, password: "{{ vault_switchboard_desk }}"}]}
        - {internal_number: "210", ddi: "10", name: Anna Schmidt, sip_accounts: [{username: anna.desk, password: "{{ vault_anna_desk }}"}]}
        - {internal_number: "211", ddi: "11", name: Ben Weber, sip_accounts: [{username: ben.desk, password: "{{ vault_ben_desk }}"}]}
      groups: [{internal_number: "200", name: Reception, members: ["210", "211"]}]

- name: Anna (210) calls the reception group (200) and nobody answers
  voxplane.pbx.route_info:
    tenant: acme
    caller: {extension: "210"}
    dialled: "200"
  register: flow

- name: Both members ring for 30 s, then the caller hears 480
  ansible.builtin.assert:
    that:
      - flow.steps[0].target_kind == "group" and flow.steps[0].target == "200"
      - flow.steps[0].extensions == ["210", "211"] and flow.steps[0].ring_time == 30
      - flow.final.code == 480

- name: The switchboard calls Anna while she is on the phone
  voxplane.pbx.route_info:
    tenant: acme
    caller: {extension: "100"}
    dialled: "210"
    registered: [anna.desk]
    busy: [anna.desk]
  register: busy_flow

- name: Anna is busy, the caller hears 486
  ansible.builtin.assert:
    that: busy_flow.steps[0].outcome == "busy" and busy_flow.final.code == 486

- name: A call from the carrier to a number of the block that reaches nobody (DDI 42)
  voxplane.pbx.route_info:
    tenant: acme
    caller: {trunk: true, calling_number: "+49891234567"}
    dialled: "+4930123456042"
  register: inbound

- name: The carrier hears 404
  ansible.builtin.assert:
    that: inbound.steps == [] and inbound.final.code == 404

- name: The head number leads to a menu in business hours (see voxplane.pbx.ivr and voxplane.pbx.schedule)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, licences: {seats: {smart: 10, best: 2}, addons: {ivr: 1}}}
      extensions:
        - {internal_number: "100", name: Switchboard, voicemail: {enabled: true}}
      queues:
        - {internal_number: "600", name: Support, members: [{extension: "210"}, {extension: "211"}], max_wait: 120,
           overflow: "voicemail:100"}
      ivrs:
        - {internal_number: "700", name: Zentrale, keys: {"1": "200", "2": "600", "0": "100"}}
      schedules:
        - {name: office, hours: [{days: [mon, tue, wed, thu, fri], from: "08:00", to: "17:00"}], open: "700",
           closed: "voicemail:100"}
      numbers: [{number: "+49301234560", ddi_range: "00-99", target: "schedule:office"}]

- name: A caller on a Monday morning presses 2 and nobody of the support queue answers
  voxplane.pbx.route_info:
    tenant: acme
    caller: {trunk: true, calling_number: "+49891234567"}
    dialled: "+49301234560"
    at: "2026-03-02T09:30"
    digits: ["2"]
  register: menu_flow

- name: The menu leads to the queue, and after 2 minutes to the switchboard's voicemail
  ansible.builtin.assert:
    that:
      - menu_flow.steps | map(attribute='action') | list == ["schedule", "ivr", "queue", "voicemail"]
      - 'menu_flow.summary[1] == "0s: IVR menu 700 Zentrale: key 2 -> queue 600 Support"'
      - menu_flow.steps[3].at == 120 and menu_flow.steps[3].mailbox == "100"

- name: Export the tenant as the document a repository keeps
  voxplane.pbx.tenant_info:
    tenant: acme
    format: yaml
    dest: "{{ playbook_dir }}/tenants/acme.yml"

- name: Prove a call flow of the document (edited in a merge request, not applied yet)
  voxplane.pbx.route_info:
    tenant: acme
    src: "{{ playbook_dir }}/tenants/acme.yml"
    caller: {extension: "210"}
    dialled: "200"
  register: before_merge
'''

RETURN = r'''
steps:
  description:
    - The steps of the call flow, in order.
    - V(action) is V(ring) (SIP accounts, and the mobile of single number reach, in parallel),
      V(voicemail) (a mailbox on the media service, where a caller leaves a message), V(mailbox) (the mailbox
      menu, for the owner with C(*86), or the voicemail access menu), V(announcement) (played by the media
      service, then the call goes on where it leads or ends), V(ivr) (an IVR menu), V(queue) (a call queue),
      V(conference) (a conference room), V(schedule) (business hours, open or closed at O(at)), V(trunk) (out
      through the tenant's trunk) or V(feature_code) (a setting the caller changes).
    - Every step has V(at) (seconds after the call started), V(identity) (P-Asserted-Identity of the
      leg; null keeps the caller's), V(from_identity) (what the leg's From shows, the original caller
      on a leg forwarded out through the trunk, otherwise the same as V(identity)), V(privacy)
      (whether the leg carries a C(Privacy) header of V(id)), V(diversion) (the Diversion entries this step adds,
      newest first), V(diversion_history) (all the leg carries) and V(reason) (the reason of the
      newest entry this step adds, or null).
    - A V(ring) step has V(tenant), V(target), V(target_kind) (extension or group), V(target_name),
      V(extensions) (whose accounts ring), V(accounts), V(ringing) (what rings, the registered accounts
      and the mobile), V(mobile), V(mobile_identity), V(mobile_from_identity) and V(mobile_privacy)
      (what the mobile's branch presents), V(mobile_diversion), V(ring_time), V(outcome) (V(answered),
      V(busy), V(no_answer), V(unregistered)) and V(reply) (what the failure route sees).
    - A V(voicemail) or V(trunk) step has V(uri), V(destination), V(number), V(ring_time) and V(headers); a
      V(voicemail) step on the PBX's own media service also V(mailbox) (it answers, V(final) is V(200)).
    - A V(mailbox) step has V(uri), V(destination), V(mailbox) (null for the access menu), V(pin) and V(headers);
      an V(announcement) step V(uri), V(destination), V(name), V(then) (whether the call goes on after it) and
      V(headers).
    - An V(ivr) step has the menu's V(number), V(name), V(keys), V(choices) (each key's destination in words),
      V(timeout), V(max_tries), V(invalid), V(no_input), V(direct_dial), and of this call V(pressed) (the entries of
      O(digits) it took), V(choice) (V(key), V(direct_dial), V(invalid), V(no_input), or null when the caller
      listens), V(key), V(chosen) (the destination) and V(chosen_words).
    - A V(queue) step has the queue's V(number), V(name), V(strategy), V(members), V(logged_in), V(ready) (who can
      ring now), V(member_ring_time), V(max_wait), V(overflow), V(no_members) (with V(overflow_words),
      V(no_members_words)) and V(outcome) (V(answered) with V(answered_by), V(overflow) after V(max_wait) seconds,
      V(no_members)); a member's ring is a V(ring) step with V(queue_member) true.
    - A V(conference) step has the room's V(number), V(name) and V(max_participants); the media service answers.
    - A V(schedule) step has the schedule's V(name), V(timezone), V(open) (at O(at)), the V(destination) it led to
      and V(destination_words).
  returned: always
  type: list
  elements: dict
  sample:
    - action: ring
      at: 0
      target: "20"
      target_kind: group
      target_name: Zentrale
      ringing: [anna.desk, anna.app, bernd.desk, bernd.app]
      ring_time: 20
      outcome: no_answer
      reason: null
    - action: ring
      at: 20
      target: "13"
      target_kind: extension
      ringing: [cora.desk, cora.app]
      reason: no-answer
    - action: trunk
      at: 40
      number: "+4917012345678"
      identity: "<sip:+49301234567@muster-partner.pbx.example>"
      from_identity: "<sip:+49891234567@muster-partner.pbx.example>"
      privacy: false
      reason: no-answer
final:
  description:
    - The final SIP answer the caller gets; V(code) null where a trunk or voicemail leg's far end decides.
    - V(by) names who answered (200), or the far end.
  returned: always
  type: dict
  contains:
    code:
      description: The SIP response code; null where a trunk or voicemail leg's far end decides.
      type: int
      returned: always
    reason:
      description: The reason phrase, or what decides the answer.
      type: str
      returned: always
    by:
      description: Who answered (a SIP account, a number a trunk leg called, V(voicemail)), or null.
      type: str
      returned: always
  sample: {code: 480, reason: Temporarily Unavailable, by: null}
summary:
  description:
    - The flow in words, one line per step and a last line with the final answer.
    - "Menus, queues and schedules say where the call went, for example V(0s: IVR menu 700 Zentrale: key 2 -> group 202
      Support), V(0s: queue 600 Support (ring_all: 210, 211; max wait 120s): nobody answers, overflow after 120s to
      voicemail of 100), V(0s: schedule office (Europe/Berlin): closed -> announcement closed)."
  returned: always
  type: list
  elements: str
  sample:
    - "0s: ring group 20 Zentrale: anna.desk, anna.app, bernd.desk, bernd.app for 20s: no answer"
    - "20s: ring extension 13 Cora Weber (Diversion no-answer): cora.desk, cora.app for 20s: no answer"
    - "final: 480 Temporarily Unavailable"
diagram:
  description:
    - With O(diagram), every way a call to O(dialled) can go as a picture, each decision of the router once (what rings
      for how long, voicemail, announcements, the trunk, the final answers), with the way there on the arrow (answered,
      busy, no answer after the ring time, nobody registered, and the Diversion reason of a forward).
  returned: when O(diagram) is not V(none)
  type: dict
  contains:
    graph:
      description: The picture as data; V(nodes) (V(id), V(kind), V(label)), V(edges) (V(from), V(to), V(label)), V(truncated).
      type: dict
      returned: always
    mermaid:
      description: A Mermaid flowchart.
      type: str
      returned: when O(diagram) is V(mermaid) or V(both)
    svg:
      description: An SVG drawing of it by Graphviz.
      type: str
      returned: when O(diagram) is V(svg) or V(both)
  sample:
    graph: {nodes: [{id: n0, kind: start, label: call to 200 from anna.desk}], edges: [], truncated: false}
    mermaid: "flowchart TD\n    n0([\"call to 200 from anna.desk\"])\n"
generation:
  description: The directory generation the simulation ran on (0 with O(src) and no directory).
  returned: always
  type: int
  sample: 42
'''

import time

from ansible_collections.voxplane.pbx.plugins.module_utils import callflow, callflow_diagram, tenant_document
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError, StorageError
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import DIRECTORY_ARGS, fail, new_module
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    caller=dict(type='dict', required=True, options=dict(
        account=dict(type='str'),
        extension=dict(type='str'),
        trunk=dict(type='bool', default=False),
        calling_number=dict(type='str'),
        source=dict(type='str'),
    )),
    src=dict(type='path'),
    dialled=dict(type='str', required=True, aliases=['number']),
    at=dict(type='str'),
    digits=dict(type='list', elements='str'),
    registered=dict(type='list', elements='str'),
    dnd=dict(type='dict'),
    media_service=dict(type='str', default='deployed'),
    diagram=dict(type='str', default='none', choices=list(callflow_diagram.DIAGRAM_FORMATS)),
    answer=dict(type='list', elements='str', default=[]),
    busy=dict(type='list', elements='str', default=[]),
    decline=dict(type='list', elements='str', default=[]),
)


def open_directory(params):
    """The directory the simulation runs on: (every tenant's state, generation). The one place
    that says where it comes from: the directory of O(directory), read in one read transaction,
    with the tenant of O(src) in place of what it holds of that tenant."""
    directory = Directory(params['directory'])
    states, generation = {}, 0
    if directory.exists():
        with directory.transaction(write=False, create=False) as txn:
            states, generation = txn.load_all(), txn.generation()['generation']
    elif not params.get('src'):
        raise StorageError(params['directory'], 'does not exist')
    if params.get('src'):
        state = callflow.document_state(tenant_document.read_document(params['src']))
        states[state.name] = state
    return states, generation


def route_info(params):
    """The module's result for ``params`` (its options), without Ansible: tests call it too."""
    states, generation = open_directory(params)
    tenant = params['tenant']
    dnd = {tenant: dict((str(k), v) for k, v in params['dnd'].items())} if params.get('dnd') else None
    media_service = {'deployed': callflow.DEPLOYED_MEDIA_SERVICE, 'none': None}.get(
        params.get('media_service') or 'deployed', params.get('media_service'))
    snap = callflow.build_snapshot(states, generation, dnd, media_service)
    who = params['caller']
    if sum(1 for field in ('account', 'extension') if who.get(field)) + bool(who.get('trunk')) != 1:
        callflow.refuse(tenant, 'caller', 'required', 'name exactly one of caller.account, caller.extension, caller.trunk')
    caller = callflow.resolve_caller(snap, tenant, account=who.get('account'), extension=who.get('extension'),
                                     trunk=who.get('trunk'), calling_number=who.get('calling_number'),
                                     source=who.get('source'))
    now = time.time()
    if params.get('at'):
        try:
            now = callflow.call_time(params['at'], snap.tenants[tenant].timezone)
        except ValueError as e:
            callflow.refuse(tenant, 'at', 'type', str(e))
    circumstances = callflow.Circumstances(params.get('registered'), params.get('answer') or (),
                                           params.get('busy') or (), params.get('decline') or ())
    flow = callflow.simulate(snap, caller, params['dialled'], now, circumstances,
                             setting_outcome=lambda setting: callflow.try_setting(states[setting.tenant], setting),
                             digits=params.get('digits'))
    flow['generation'] = generation
    if params.get('diagram', 'none') != 'none':
        graph = callflow_diagram.explore(snap, caller, params['dialled'], now)
        flow['diagram'] = callflow_diagram.drawn(graph, params['diagram'], '%s: %s' % (tenant, params['dialled']))
    return flow


def main():
    spec = dict(ARGUMENT_SPEC)
    spec.update(DIRECTORY_ARGS)
    module = new_module(spec)
    try:
        result = route_info(module.params)
    except DirectoryError as e:
        fail(module, e)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
