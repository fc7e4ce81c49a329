#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: tenant
short_description: Manage a tenant (a company) of the voxplane directory
version_added: 0.1.0
description:
  - Creates, updates or removes one tenant with its SIP domain, dial plan, locations with
    emergency address, licences, trunks, allowed internal number ranges and the media server
    its voicemail boxes live on.
  - Options left out keep their stored value; on creation they take the default named in
    their description. A list given replaces the stored list.
  - A tenant can only be removed once it has no numbers, extensions, devices or groups.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  name:
    description:
      - The tenant's identifier (slug), lowercase letters, digits and inner hyphens.
    type: str
    required: true
    aliases: [slug]
  state:
    description:
      - C(present) creates or updates the tenant, C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  display_name:
    description:
      - The company name as people read it. An empty string clears it.
    type: str
  sip_domain:
    description:
      - The tenant's SIP domain, unique across the directory. Phones register in it and it is
        the digest realm of the tenant's SIP passwords.
      - Required when the tenant is created.
    type: str
  country_code:
    description:
      - Country code of the dial plan, without C(+). V(49) on creation.
    type: str
  national_prefix:
    description:
      - Trunk prefix that starts a national number. V(0) on creation.
    type: str
  international_prefix:
    description:
      - Prefix that starts an international number. V(00) on creation.
    type: str
  timezone:
    description:
      - IANA time zone of the tenant; porting numbers activate at 08:00 of their porting day in it.
        V(Europe/Berlin) on creation.
    type: str
  main_number:
    description:
      - The tenant's main number in E.164 (or national form), one of its own numbers. Extensions
        whose O(voxplane.pbx.extension#module:outbound_caller_id) is V(main) (or that have no number of
        their own) present it on outside calls, forwards to outside numbers carry it as
        P-Asserted-Identity, and emergency calls present it where their location has no emergency caller ID.
        An empty string clears it.
      - It may name a number that no tenant holds yet, so that a playbook creates the tenant first and
        its numbers afterwards (see EXAMPLES); the task then warns, and calls present the number only
        once it is a number of this tenant (until then as if the tenant had no main number).
        A number of another tenant is refused (rule C(reference)).
    type: str
  international_calls:
    description:
      - Whether the tenant may dial international numbers at all (extensions also need their own
        permission). V(true) on creation.
    type: bool
  premium_calls:
    description:
      - Whether the tenant may call premium-rate numbers at all (extensions also need their own
        O(voxplane.pbx.extension#module:premium_calls)). V(false) on creation.
      - Premium-rate numbers are the national ones of the tenant's own country and of other countries
        the collection knows (for Germany C(+49 900), C(+49 137), C(+49 138), C(+49 118), C(+49 19),
        C(+49 700)) and the global services C(+979) (international premium rate) and C(+808)
        (international shared cost), at home and abroad alike.
    type: bool
  satellite_calls:
    description:
      - Whether the tenant may call satellite and other global networks at all, the ITU-T E.164 codes
        C(+870), C(+881), C(+882) and C(+883) (extensions also need their own
        O(voxplane.pbx.extension#module:satellite_calls)). V(false) on creation.
    type: bool
  max_outside_calls:
    description:
      - The most calls to outside numbers (through a trunk) the whole tenant may have at the same time.
        A whole number of at least 1; an empty string removes the limit. No limit on creation.
      - The router refuses an outside call beyond it; a limit of the extension applies as well.
    type: raw
  max_outside_calls_per_minute:
    description:
      - The most calls to outside numbers the whole tenant may start within a minute.
        A whole number of at least 1; an empty string removes the limit. No limit on creation.
    type: raw
  locations:
    description:
      - The tenant's sites. Emergency calls carry the caller's location.
      - The list replaces the stored one. A location still used by an extension or device cannot be removed.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the location, unique within the tenant.
        type: str
        required: true
      street:
        description: Street and house number of the emergency address.
        type: str
        required: true
      postal_code:
        description: Postal code of the emergency address.
        type: str
        required: true
      city:
        description: City of the emergency address.
        type: str
        required: true
      country:
        description: ISO country code of the emergency address.
        type: str
        default: DE
      emergency_caller_id:
        description:
          - Number presented on emergency calls from this location; the tenant's main number when unset.
          - One of the tenant's own numbers, a single number or a member of one of its blocks (rule
            C(own_number)). A number that no tenant holds yet is accepted with a warning, so that the
            numbers may follow the tenant in a playbook; emergency calls present it only once it is a
            number of this tenant, until then the tenant's main number. A number of another tenant is refused.
        type: str
  licences:
    description:
      - Booked licences. Every extension takes a seat of its package while one is free;
        softclient and webphone accounts need the C(best) package or the C(client_complete) add-on.
      - The value replaces the stored licences.
    type: dict
    suboptions:
      seats:
        description: Seats per package, a mapping of package name to count. Packages are C(smart) and C(best).
        type: dict
      addons:
        description: Add-on licences, a mapping of add-on name to count. The add-on is C(client_complete).
        type: dict
  trunks:
    description:
      - Trunks to the public network. Their addresses are trusted for inbound calls; outbound calls
        leave through the preferred trunk. The list replaces the stored one.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the trunk, unique within the tenant.
        type: str
        required: true
      addresses:
        description: IP addresses or DNS names of the trunk's gateway; the first one receives outbound calls.
        type: list
        elements: str
        required: true
      port:
        description: SIP port of the gateway.
        type: int
        default: 5060
  preferred_trunk:
    description:
      - Name of the trunk outbound calls use. Required when the tenant has more than one trunk.
    type: str
  internal_ranges:
    description:
      - Allowed internal number ranges such as V(100-199). Empty means any valid internal number.
      - The list replaces the stored one.
    type: list
    elements: str
  media_server:
    description:
      - SIP URI of the tenant's voicemail (media) server, V(sip:host[:port]) with an IP address or
        DNS name as host (an IPv6 address in brackets, such as V(sip:[2001:db8::5]:5080)); the
        C(sip:) prefix may be left out. Stored in the canonical form V(sip:host:port), port V(5060)
        when left out.
      - Calls to a voicemail box go to this server with the request URI
        C(sip:<internal number>@<sip_domain>) of the extension.
      - Without it, the PBX's own media service (role C(voxplane.pbx.media)) answers the tenant's
        voicemail calls; with it, those calls go to this server instead (announcements are always
        played by the PBX's media service).
      - Unset on creation. An empty string clears it.
    type: str
  media_relay:
    description:
      - When the tenant's calls take the media relay (rtpengine, where the Kamailio role deploys one).
      - V(auto) relays a call when a side is behind NAT or the two sides' transports differ
        (TLS and SRTP on one side only); V(always) relays every call of the tenant, its phones'
        calls and the calls to them, even between two phones on public addresses.
      - V(auto) on creation.
    type: str
    choices: [auto, always]
  language:
    description:
      - The language of the prompts the tenant's callers hear (voicemail, announcements of the media service),
        unless an extension names its own (O(voxplane.pbx.extension#module:language)).
      - V(de) on creation.
    type: str
    choices: [de, en]
  voicemail_pin_always:
    description:
      - Whether the owner of a voicemail box is asked for the PIN also when calling it (C(*86)) from one of
        the extension's own SIP accounts. Through a number whose target is V(voicemail-menu) the PIN is
        always asked. V(false) on creation.
    type: bool
'''

EXAMPLES = r'''
# The tenant comes first, with its main number and its locations' emergency caller IDs; the numbers
# they name follow in the next task (the tenant task warns that it does not hold them yet).
- name: Create a tenant with two locations, licences and its main number
  voxplane.pbx.tenant:
    name: acme
    display_name: ACME GmbH
    sip_domain: acme.pbx.example.com
    main_number: "+4930123456700"
    locations:
      - name: berlin
        street: Friedrichstr. 1
        postal_code: "10117"
        city: Berlin
        emergency_caller_id: "+4930123456701"
      - name: hamburg
        street: Jungfernstieg 7
        postal_code: "20354"
        city: Hamburg
    licences:
      seats: {smart: 20, best: 5}
      addons: {client_complete: 5}
    trunks:
      - name: carrier-a
        addresses: [192.0.2.10]
    preferred_trunk: carrier-a
    internal_ranges: ["100-299"]

- name: Give the tenant the block of 100 numbers they belong to (see voxplane.pbx.number)
  voxplane.pbx.number:
    tenant: acme
    number: "+49301234567"
    ddi_range: "00-99"

- name: Point the tenant's voicemail at its media server (port 5060)
  voxplane.pbx.tenant:
    name: acme
    media_server: sip:media.acme.pbx.example.com

- name: Limit outside calls against toll fraud; no premium-rate or satellite numbers
  voxplane.pbx.tenant:
    name: acme
    max_outside_calls: 20
    max_outside_calls_per_minute: 30
    premium_calls: false
    satellite_calls: false

- name: Remove the limit of outside calls a minute again
  voxplane.pbx.tenant:
    name: acme
    max_outside_calls_per_minute: ""

- name: Before the tenant goes, clear its main number and emergency caller IDs ...
  voxplane.pbx.tenant:
    name: acme
    main_number: ""
    locations:
      - name: berlin
        street: Friedrichstr. 1
        postal_code: "10117"
        city: Berlin
      - name: hamburg
        street: Jungfernstieg 7
        postal_code: "20354"
        city: Hamburg

- name: ... and remove everything in it (here its numbers)
  voxplane.pbx.number:
    tenant: acme
    number: "+49301234567"
    state: absent

- name: Remove the tenant, now that nothing is left in it
  voxplane.pbx.tenant:
    name: acme
    state: absent
'''

RETURN = r'''
tenant:
  description: The tenant as stored after the task, in the shape this module takes; empty when absent.
  returned: always
  type: dict
  sample:
    name: acme
    display_name: ACME GmbH
    sip_domain: acme.pbx.example.com
    country_code: "49"
    national_prefix: "0"
    international_prefix: "00"
    timezone: Europe/Berlin
    main_number: "+4930123456700"
    international_calls: true
    premium_calls: false
    satellite_calls: false
    max_outside_calls: 20
    max_outside_calls_per_minute: null
    locations: [{name: berlin, street: Friedrichstr. 1, postal_code: "10117", city: Berlin, country: DE, emergency_caller_id: null}]
    licences: {seats: {smart: 20, best: 5}, addons: {client_complete: 5}}
    trunks: [{name: carrier-a, addresses: [192.0.2.10], port: 5060}]
    preferred_trunk: carrier-a
    internal_ranges: ["100-299"]
    media_server: "sip:media.acme.pbx.example.com:5060"
    language: de
    voicemail_pin_always: false
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [update tenant acme]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: tenant acme, field: sip_domain, rule: hostname, message: "'acme' is not a valid DNS name"}]
'''

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module, suboptions

ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True, aliases=['slug']),
    display_name=dict(type='str'),
    sip_domain=dict(type='str'),
    country_code=dict(type='str'),
    national_prefix=dict(type='str'),
    international_prefix=dict(type='str'),
    timezone=dict(type='str'),
    main_number=dict(type='str'),
    international_calls=dict(type='bool'),
    premium_calls=dict(type='bool'),
    satellite_calls=dict(type='bool'),
    max_outside_calls=dict(type='raw'),
    max_outside_calls_per_minute=dict(type='raw'),
    locations=dict(type='list', elements='dict', options=suboptions('tenant', 'locations')),
    licences=dict(type='dict', options=suboptions('tenant', 'licences')),
    trunks=dict(type='list', elements='dict', options=suboptions('tenant', 'trunks')),
    preferred_trunk=dict(type='str'),
    internal_ranges=dict(type='list', elements='str'),
    media_server=dict(type='str'),
    media_relay=dict(type='str', choices=list(rules.MEDIA_RELAY_MODES)),
    language=dict(type='str', choices=list(rules.LANGUAGES)),
    voicemail_pin_always=dict(type='bool'),
)


def main():
    run_object_module('tenant', ARGUMENT_SPEC)


if __name__ == '__main__':
    main()
