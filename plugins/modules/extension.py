#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: extension
short_description: Manage an extension (a person's user account) of a voxplane tenant
version_added: 0.1.0
description:
  - Creates, updates or removes one extension, identified by its internal number within its tenant.
  - An extension owns several SIP accounts (desk phone, softclient, webphone) which all ring
    together, takes a licence seat, and is reached from outside through its external numbers.
  - Options left out keep their stored value; on creation they take the default named in their
    description. A list given replaces the stored list.
  - Do-not-disturb and the forwards can also be switched from a phone by feature codes
    (C(*78)/C(*79) do-not-disturb on/off, C(*72<number>)/C(*73) unconditional forward on/off,
    C(*90<number>)/C(*91) busy forward, C(*92<number>)/C(*93) no-answer forward). A playbook that
    leaves O(dnd) or a forward out never undoes what was set by phone; a playbook that sets it
    overwrites it (the last writer wins).
  - SIP passwords are stored only as the digest HA1 of C(username:sip_domain:password);
    voicemail PINs only as a salted hash.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the extension belongs to.
    type: str
    required: true
  internal_number:
    description:
      - The internal number, unique among the tenant's extensions and groups. Digits only, 2 to 6 of them;
        not starting with 0, 110, 112, 77 or 78; no five-digit number starting with 118; within the
        tenant's internal ranges when it has any.
    type: str
    required: true
    aliases: [extension]
  state:
    description:
      - C(present) creates or updates the extension, C(absent) removes it. An extension that a number,
        a group or another extension's forwarding still points at cannot be removed.
    type: str
    choices: [present, absent]
    default: present
  name:
    description: Display name, shown to colleagues as caller name. An empty string clears it.
    type: str
  email:
    description: E-mail address of the person. An empty string clears it.
    type: str
  role:
    description:
      - Portal role. C(end_user) on creation.
    type: str
    choices: [end_user, admin, account_admin, call_details]
  seat:
    description:
      - Licence package the extension takes a seat of. C(smart) on creation.
    type: str
    choices: [smart, best]
  ddi:
    description:
      - Direct-dial suffix of the extension within the tenant's number blocks; the internal number when unset.
        Internal and external number need not match.
    type: str
  assign_all_external_numbers:
    description:
      - Reach the extension under every number block of the tenant whose DDI range contains its DDI
        (the portals' "assign all external numbers"). V(true) on creation.
    type: bool
  external_numbers:
    description:
      - Further numbers of the tenant (E.164 or national form) that reach this extension. A number reaches one target only.
    type: list
    elements: str
  sip_accounts:
    description:
      - The SIP accounts of the extension; they all ring in parallel. The list replaces the stored one.
      - An account given without O(sip_accounts[].password) or O(sip_accounts[].ha1) keeps its stored credential.
    type: list
    elements: dict
    suboptions:
      username:
        description:
          - SIP username, unique within the tenant's domain. At least 5 characters, lowercase letters and digits,
            C(_), C(-) and C(.) only between letters or digits, no umlauts.
        type: str
        required: true
      password:
        description: Password, at least 8 characters; stored as HA1 only.
        type: str
      ha1:
        description: The digest HA1 instead of the password, 32 hex digits.
        type: str
      kind:
        description:
          - What registers with the account. C(softclient) and C(webphone) need the C(best) seat or the
            C(client_complete) add-on. C(desk_phone) for a new account when unset.
        type: str
        choices: [desk_phone, softclient, webphone]
      require_tls:
        description:
          - The account registers and calls only over TLS or secure WebSocket (WebRTC); over UDP or
            TCP its requests get C(403 TLS required for this account), once its credentials are proven.
          - V(false) for a new account when unset; an account given without it keeps its setting.
        type: bool
  outbound_caller_id:
    description:
      - Number presented on outside calls; V(main) for the tenant's main number, V(anonymous) to withhold it,
        or one of the extension's own numbers. When unset, the extension's first number, else the main number.
        An empty string unsets it.
    type: str
  mobile:
    description:
      - Mobile number (E.164 or national form) for O(single_number_reach) and as a forward destination.
        An empty string clears it, which fails while O(single_number_reach) is on.
    type: str
  single_number_reach:
    description:
      - Whether O(mobile) rings together with the extension's SIP accounts (single number reach);
        the mobile leg leaves through the tenant's trunk. V(false) on creation.
      - Needs O(mobile) (rule C(mobile_required)). The mobile must be a number the extension may call;
        an international, premium-rate or satellite number needs O(international_calls), O(premium_calls)
        or O(satellite_calls) of the extension and of the tenant (rules C(international_calls),
        C(premium_calls), C(satellite_calls)); an O(emergency_only) extension has no single number reach.
    type: bool
  voicemail:
    description:
      - Voicemail box of the extension.
      - Voicemail, when enabled, takes calls while O(dnd) is on, busy, no-answer and unregistered calls
        for which no forward of that kind is set, and calls forwarded to V(voicemail).
      - Those calls go to the PBX's media service (role C(voxplane.pbx.media)), or to the tenant's own
        O(voxplane.pbx.tenant#module:media_server) when it has one, with the request URI
        C(sip:<internal number>@<sip_domain of the tenant>). The owner listens to the messages by
        dialling C(*86) from one of the extension's SIP accounts, or through a number whose target is
        V(voicemail-menu) (see docs/media.md).
    type: dict
    suboptions:
      enabled:
        description: Whether the extension has a voicemail box. V(false) on creation.
        type: bool
      pin:
        description:
          - PIN of the box, 4 to 8 digits; stored as a salted hash only. The owner can change it in the box's menu.
        type: str
      pin_hash:
        description:
          - The stored hash of the PIN, as M(voxplane.pbx.tenant_info) returns it with O(voxplane.pbx.tenant_info#module:secrets)
            (64 hex digits); restores a backup without knowing the PIN. Ignored when O(voicemail.pin) is given.
        type: str
      locked:
        description:
          - Whether the box is locked. The media service locks it after 10 wrong PINs within an hour; V(false)
            unlocks it. V(false) on creation.
        type: bool
      email:
        description:
          - An address that gets each new message by e-mail (through the SMTP relay of the role C(voxplane.pbx.media));
            an empty string switches it off. None on creation.
        type: str
      attach:
        description: Whether the e-mail carries the message as a WAV file. V(true) on creation.
        type: bool
      delete_after_email:
        description:
          - Whether a message is removed from the box once its e-mail was sent (it stays when the mail fails).
            V(false) on creation.
        type: bool
  speed_dials:
    description:
      - The extension's speed dials [Kurzwahl], as a list that replaces the stored one (an empty list removes them all).
      - Each code once per extension (rule C(unique)); the number is an internal number of the tenant
        (rule C(reference)) or an outside number, normalised to E.164 with the tenant's dial plan.
    type: list
    elements: dict
    suboptions:
      code:
        description: The speed dial code, 1 to 3 digits (rule C(speed_dial_code)).
        type: str
        required: true
      number:
        description: The number it calls.
        type: str
        required: true
      name:
        description: What the phone shows for it.
        type: str
  international_calls:
    description:
      - Whether the extension may dial international numbers (the tenant needs
        O(voxplane.pbx.tenant#module:international_calls) too). V(false) on creation.
    type: bool
  premium_calls:
    description:
      - Whether the extension may call premium-rate numbers (the tenant needs
        O(voxplane.pbx.tenant#module:premium_calls) too; see there which numbers are premium-rate).
        V(false) on creation.
    type: bool
  satellite_calls:
    description:
      - Whether the extension may call satellite and other global networks (C(+870), C(+881), C(+882),
        C(+883); the tenant needs O(voxplane.pbx.tenant#module:satellite_calls) too). V(false) on creation.
    type: bool
  emergency_only:
    description:
      - When V(true), the extension may call only internal numbers and the emergency numbers C(110) and
        C(112), nothing outside, whatever its other permissions (a lobby or lift phone). V(false) on creation.
      - Such an extension cannot forward to an outside number nor have single number reach to its mobile
        (rule C(emergency_only)).
    type: bool
  max_outside_calls:
    description:
      - The most calls to outside numbers (through a trunk) the extension may have at the same time.
        A whole number of at least 1; an empty string removes the limit. No limit on creation.
      - The tenant's O(voxplane.pbx.tenant#module:max_outside_calls) applies as well.
    type: raw
  max_outside_calls_per_minute:
    description:
      - The most calls to outside numbers the extension may start within a minute.
        A whole number of at least 1; an empty string removes the limit. No limit on creation.
    type: raw
  ring_time:
    description:
      - Seconds the extension rings before the no-answer treatment, 5 to 300; a value outside that
        range is refused. V(20) on creation.
      - It also is how long a call forwarded to this extension rings it. A forward to an outside number
        or to voicemail rings for 30 seconds of its own, whatever the forwarding extension's O(ring_time).
    type: int
  forwarding:
    description:
      - Call forwarding. Each destination is an internal number, an outside number (E.164 or national form),
        V(voicemail) (the extension's own box), V(voicemail:<internal number>) (another extension's box),
        V(voicemail-menu) or V(announcement:<name>) (M(voxplane.pbx.announcement)); an empty string switches
        that forward off, a left-out one stays as it is.
      - Forwards can also be switched from a phone by feature codes (C(*72<number>)/C(*73) unconditional,
        C(*90<number>)/C(*91) busy, C(*92<number>)/C(*93) no answer); a left-out forward keeps what was
        set by phone, one that is given overwrites it.
      - An outside destination must be a number the extension may call; an international, premium-rate
        or satellite number needs O(international_calls), O(premium_calls) or O(satellite_calls) of the
        extension and of the tenant (rules C(international_calls), C(premium_calls), C(satellite_calls));
        an O(emergency_only) extension forwards to internal destinations only (rule C(emergency_only)).
      - Without a forward of a kind, busy, no-answer and unregistered calls reach the voicemail when it is enabled.
    type: dict
    suboptions:
      unconditional:
        description: Forward every call.
        type: str
      busy:
        description: Forward when the extension is busy.
        type: str
      no_answer:
        description: Forward when nobody answers within O(ring_time).
        type: str
      unregistered:
        description: Forward when no device of the extension is registered, for example to the mobile on the switch-over day.
        type: str
  dnd:
    description:
      - Do not disturb. Calls to the extension neither ring its devices or its mobile nor follow its forwards;
        they go to the voicemail when it is enabled, otherwise they get busy treatment. Groups skip the extension.
        V(false) on creation.
      - Also switched from a phone with the feature codes C(*78) (on) and C(*79) (off). A task that leaves
        O(dnd) out keeps the stored value, so a playbook that does not mention it never undoes a DND set
        by phone; a task that sets it overwrites it (the last writer wins).
    type: bool
  available:
    description:
      - Whether the extension is available (reachable). V(false) takes the extension out of the groups it is a
        member of; they skip it when they ring. V(true) on creation.
    type: bool
  location:
    description: Name of the tenant location the person works at; emergency calls carry it. An empty string clears it.
    type: str
  language:
    description:
      - The language of the prompts the extension's callers hear (its voicemail), when it is not the tenant's
        (O(voxplane.pbx.tenant#module:language)).
      - V(de) or V(en) (rule C(choice)). Unset on creation, which is the tenant's language. An empty string unsets it.
    type: str
'''

EXAMPLES = r'''
- name: The tenant these examples work in, with its location and media server (see voxplane.pbx.tenant)
  voxplane.pbx.tenant:
    name: acme
    sip_domain: acme.pbx.example.com
    licences: {seats: {smart: 10, best: 2}}
    locations: [{name: berlin, street: Friedrichstr. 1, postal_code: "10117", city: Berlin}]
    media_server: sip:media.acme.pbx.example.com

- name: Its block of numbers +49 30 1234560-00 ... -99 (see voxplane.pbx.number)
  voxplane.pbx.number:
    tenant: acme
    number: "+49301234560"
    ddi_range: "00-99"

- name: An extension with a desk phone and an app, reachable under the tenant's block with DDI 10
  voxplane.pbx.extension:
    tenant: acme
    internal_number: "210"
    ddi: "10"
    name: Anna Schmidt
    email: anna@acme.example.com
    seat: best
    sip_accounts:
      - username: anna.desk
        password: "{{ vault_anna_desk_password }}"
      - username: anna.app
        kind: softclient
        password: "{{ vault_anna_app_password }}"
    mobile: "0170 1234567"
    forwarding:
      unregistered: "0170 1234567"
    voicemail:
      enabled: true
      pin: "{{ vault_anna_pin }}"
    location: berlin

- name: Ring the mobile together with the desk phone and the app (single number reach)
  voxplane.pbx.extension:
    tenant: acme
    internal_number: "210"
    mobile: "0170 1234567"
    single_number_reach: true

- name: A lobby phone that calls colleagues and the emergency numbers, nothing outside
  voxplane.pbx.extension:
    tenant: acme
    internal_number: "290"
    name: Lobby
    emergency_only: true
    sip_accounts:
      - username: lobby.desk
        password: "{{ vault_lobby_desk_password }}"

- name: At most two outside calls at once and five a minute; no premium-rate numbers
  voxplane.pbx.extension:
    tenant: acme
    internal_number: "210"
    max_outside_calls: 2
    max_outside_calls_per_minute: 5
    premium_calls: false

- name: Switch do-not-disturb on, leaving everything else as it is
  voxplane.pbx.extension:
    tenant: acme
    internal_number: "210"
    dnd: true

- name: Remove the lobby extension again, with its SIP account
  voxplane.pbx.extension:
    tenant: acme
    internal_number: "290"
    state: absent
'''

RETURN = r'''
extension:
  description: The extension as stored after the task, without secrets, in the shape this module takes; empty when absent.
  returned: always
  type: dict
  sample:
    tenant: acme
    internal_number: "210"
    name: Anna Schmidt
    email: anna@acme.example.com
    role: end_user
    seat: best
    ddi: "10"
    assign_all_external_numbers: true
    external_numbers: []
    sip_accounts: [{username: anna.desk, kind: desk_phone}, {username: anna.app, kind: softclient}]
    outbound_caller_id: null
    mobile: "+491701234567"
    voicemail: {enabled: true, locked: false, email: null, attach: true, delete_after_email: false}
    international_calls: false
    premium_calls: false
    satellite_calls: false
    emergency_only: false
    max_outside_calls: 2
    max_outside_calls_per_minute: null
    ring_time: 20
    forwarding: {unconditional: null, busy: null, no_answer: null, unregistered: "+491701234567"}
    dnd: false
    available: true
    location: berlin
    single_number_reach: true
    language: null
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [create extension 210 (tenant acme)]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: extension 780 (tenant acme), field: internal_number, rule: internal_forbidden_prefix,
            message: "'780': internal numbers must not start with 78 (reserved for feature codes)"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module, suboptions

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    internal_number=dict(type='str', required=True, aliases=['extension']),
    name=dict(type='str'),
    email=dict(type='str'),
    role=dict(type='str', choices=list(rules.ROLES)),
    seat=dict(type='str', choices=list(rules.SEAT_PACKAGES)),
    ddi=dict(type='str'),
    assign_all_external_numbers=dict(type='bool'),
    external_numbers=dict(type='list', elements='str'),
    sip_accounts=dict(type='list', elements='dict', options=suboptions('extension', 'sip_accounts')),
    outbound_caller_id=dict(type='str'),
    mobile=dict(type='str'),
    voicemail=dict(type='dict', options=suboptions('extension', 'voicemail')),
    speed_dials=dict(type='list', elements='dict', options=suboptions('extension', 'speed_dials')),
    international_calls=dict(type='bool'),
    premium_calls=dict(type='bool'),
    satellite_calls=dict(type='bool'),
    emergency_only=dict(type='bool'),
    max_outside_calls=dict(type='raw'),
    max_outside_calls_per_minute=dict(type='raw'),
    ring_time=dict(type='int'),
    forwarding=dict(type='dict', options=suboptions('extension', 'forwarding')),
    dnd=dict(type='bool'),
    available=dict(type='bool'),
    location=dict(type='str'),
    single_number_reach=dict(type='bool'),
    language=dict(type='str'),
)


def main():
    run_object_module('extension', ARGUMENT_SPEC)


if __name__ == '__main__':
    main()
