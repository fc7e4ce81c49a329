# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""as-feature-event (feature_events.py): a key pressed on a phone as the feature codes' request,
the NOTIFY bodies and headers. The exchange with a phone: tests/sip/test_feature_keys.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import feature_events as fe

NS = 'xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3"'


def test_a_body_less_subscribe_changes_nothing():
    assert fe.setting_of('', 'acme', '10') is None and fe.setting_of('  \r\n', 'acme', '10') is None


@pytest.mark.parametrize('body, wanted', [
    ('<SetDoNotDisturb %s><device>anna</device><doNotDisturbOn>true</doNotDisturbOn></SetDoNotDisturb>' % NS,
     {'dnd': True}),
    ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<SetDoNotDisturb %s><device>anna</device>'
     '<doNotDisturbOn>False</doNotDisturbOn></SetDoNotDisturb>' % NS, {'dnd': False}),
    ('<SetForwarding %s><device>anna</device><forwardingType>forwardImmediate</forwardingType>'
     '<activateForward>true</activateForward><forwardDN>11</forwardDN></SetForwarding>' % NS,
     {'forwarding': {'unconditional': '11'}}),
    ('<SetForwarding %s><forwardingType>forwardNoAns</forwardingType><activateForward>false</activateForward>'
     '</SetForwarding>' % NS, {'forwarding': {'no_answer': ''}}),
    ('<SetForwarding><forwardingType>forwardBusy</forwardingType><activateForward>true</activateForward>'
     '<forwardDN>+4930123</forwardDN></SetForwarding>', {'forwarding': {'busy': '+4930123'}}),
])
def test_a_key_becomes_the_same_request_as_a_feature_code(body, wanted):
    setting = fe.setting_of(body, 'acme', '10')
    assert (setting.tenant, setting.extension, setting.request) == ('acme', '10', wanted)


@pytest.mark.parametrize('body, why', [
    ('<SetDoNotDisturb><doNotDisturbOn>yes</doNotDisturbOn></SetDoNotDisturb>', 'not true or false'),
    ('<SetDoNotDisturb></SetDoNotDisturb>', 'doNotDisturbOn is missing'),
    ('<SetForwarding><forwardingType>forwardAlways</forwardingType><activateForward>true</activateForward></SetForwarding>',
     'forwardingType'),
    ('<SetForwarding><forwardingType>forwardBusy</forwardingType><activateForward>true</activateForward></SetForwarding>',
     'needs a forwardDN'),
    ('<presence/>', 'not a request of the as-feature-event package'),
    ('<SetDoNotDisturb>', 'not well-formed'),
])
def test_other_bodies_are_bad_requests_that_say_why(body, why):
    with pytest.raises(fe.BadRequest) as info:
        fe.setting_of(body, 'acme', '10')
    assert why in str(info.value)


def test_the_state_and_its_bodies():
    state = fe.state_of({'dnd': True, 'forwarding': {'unconditional': None, 'busy': '+4930555', 'no_answer': None}})
    assert state == {'dnd': True, 'forwards': [['forwardImmediate', None], ['forwardBusy', '+4930555'],
                                               ['forwardNoAns', None]]}
    dnd, immediate, busy, no_answer = [ET.fromstring(b.split('\n', 1)[1]) for b in fe.bodies('a<b', state)]
    ns = '{http://www.ecma-international.org/standards/ecma-323/csta/ed3}'
    assert dnd.tag == ns + 'DoNotDisturbEvent' and dnd.find(ns + 'doNotDisturbOn').text == 'true'
    assert dnd.find(ns + 'device').text == 'a<b'
    assert busy.find(ns + 'forwardStatus').text == 'true' and busy.find(ns + 'forwardTo').text == '+4930555'
    assert immediate.find(ns + 'forwardStatus').text == 'false' and no_answer.find(ns + 'forwardingType').text == 'forwardNoAns'
