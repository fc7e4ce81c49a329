# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the media service makes of an INVITE (media_calls.py), the announcement flow, and the
prompt catalogue (media_prompts.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from media_helpers import Caller, Mailbox, Tenant, run
from ansible_collections.voxplane.pbx.plugins.module_utils import media_calls, media_prompts, voicemail_flows
from ansible_collections.voxplane.pbx.plugins.module_utils.media_calls import Refusal, choose_flow, read_invite
from ansible_collections.voxplane.pbx.plugins.module_utils.media_steps import (
    Answer, EarlyMedia, Hangup, Play, Record, StoredAudio,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.rules import LANGUAGES

SETTINGS = voicemail_flows.Settings()


def invite(uri='sip:10@acme.sip.test', media='voicemail;mailbox=10;reason=user-busy', extra=()):
    lines = ['INVITE %s SIP/2.0' % uri, 'Via: SIP/2.0/UDP 127.0.0.20:5060;branch=z9hG4bK1',
             'From: "Bert B." <sip:11@acme.sip.test>;tag=1', 'To: <%s>' % uri, 'Call-ID: c1', 'CSeq: 1 INVITE']
    if media is not None:
        lines.append('X-Voxplane-Media: %s' % media)
    lines += list(extra) + ['Content-Length: 0', '', '']
    return '\r\n'.join(lines)


def clock():
    return 0.0


# ---------------------------------------------------------------------------- reading the INVITE
def test_an_invite_of_the_contract():
    request = read_invite(invite())
    assert (request.user, request.domain, request.service) == ('10', 'acme.sip.test', 'voicemail')
    assert request.params == {'mailbox': '10', 'reason': 'user-busy'}
    assert request.caller == voicemail_flows.Caller('11', 'Bert B.')


def test_the_caller_is_who_p_asserted_identity_names_else_from():
    request = read_invite(invite(extra=['P-Asserted-Identity: "Carrier Kunde" <sip:+4930555@acme.sip.test>,'
                                        ' <tel:+4930555>']))
    assert request.caller == voicemail_flows.Caller('+4930555', 'Carrier Kunde')
    request = read_invite(invite(extra=['P-Asserted-Identity: <tel:+4930777;cpc=ordinary>']))
    assert request.caller == voicemail_flows.Caller('+4930777', None)


@pytest.mark.parametrize('header', [
    'P-Asserted-Identity: "Anonymous" <sip:anonymous@anonymous.invalid>',
    'P-Asserted-Identity: <sip:anonymous@acme.sip.test>',
])
def test_an_anonymous_caller_stays_anonymous(header):
    assert read_invite(invite(extra=[header])).caller == voicemail_flows.Caller()


def test_compact_from_folded_headers_and_case():
    text = invite(media=None, extra=['x-voxplane-media: Mailbox;\r\n PIN=yes']).replace(
        'From: "Bert B." <sip:11@acme.sip.test>;tag=1', 'f: sip:12@acme.sip.test;tag=2')
    request = read_invite(text)
    assert (request.service, request.params, request.caller) == ('mailbox', {'pin': 'yes'}, voicemail_flows.Caller('12'))


def test_the_request_uri_user_is_decoded_and_its_parameters_dropped():
    request = read_invite(invite(uri='sip:%2A86@ACME.sip.test:5060;user=phone', media='mailbox;mailbox=10;pin=no'))
    assert (request.user, request.domain) == ('*86', 'acme.sip.test')


@pytest.mark.parametrize('text, code', [
    (invite(media=None), 400),
    (invite(media='fax;x=1'), 400),
    (invite(extra=['X-Voxplane-Media: mailbox;pin=no']), 400),
    (invite(uri='mailto:a@b'), 416),
    (invite().replace('INVITE sip', 'OPTIONS sip', 1), 400),
    ('garbage', 400),
])
def test_an_invite_the_service_cannot_read_is_refused(text, code):
    with pytest.raises(Refusal) as refused:
        read_invite(text)
    assert refused.value.code == code


# ---------------------------------------------------------------------------- choosing the flow
def tenant():
    return Tenant(mailboxes=[Mailbox('10', language='en'), Mailbox('11', language='de', pin=None)],
                  announcements={'closed': StoredAudio('cd' * 32), 'silent': False}, language='de')


def test_voicemail_leaves_a_message_in_the_mailbox_in_its_language():
    flow, language = choose_flow(read_invite(invite()), tenant(), SETTINGS, clock)
    caller = run(flow, Caller(recordings=[('digit', 2000)]))
    assert language == 'en' and caller.steps[0] == Answer()
    assert [s for s in caller.steps if isinstance(s, Record)]


def test_the_owner_menu_with_and_without_pin():
    flow, language = choose_flow(read_invite(invite(uri='sip:*86@acme.sip.test', media='mailbox;mailbox=10;pin=no')),
                                 tenant(), SETTINGS, clock)
    assert run(flow, Caller(keys=['#'])).played()[0] == 'no_messages'
    flow, _language = choose_flow(read_invite(invite(uri='sip:*86@acme.sip.test', media='mailbox;mailbox=10;pin=yes')),
                                  tenant(), SETTINGS, clock)
    assert run(flow, Caller(keys=['4711', '#'])).played()[0] == 'enter_pin'


def test_the_access_number_speaks_the_tenants_language_until_it_knows_the_mailbox():
    flow, language = choose_flow(read_invite(invite(uri='sip:+4930123456099@acme.sip.test', media='mailbox;pin=yes')),
                                 tenant(), SETTINGS, clock)
    assert language == 'de'
    assert run(flow, Caller(keys=['10', '4711', '#'])).played()[:2] == ['enter_mailbox', 'enter_pin']


@pytest.mark.parametrize('media, code', [
    ('voicemail;mailbox=20;reason=user-busy', 404),    # beta's mailbox: not in this tenant
    ('voicemail;reason=user-busy', 400),
    ('voicemail;mailbox=10;reason=because', 400),
    ('mailbox;mailbox=12;pin=no', 404),
    ('mailbox;mailbox=10;pin=maybe', 400),
    ('mailbox;pin=no', 400),                           # the access number always asks for the PIN
    ('announcement;name=nope;then=no', 404),
    ('announcement;then=no', 400),
    ('announcement;name=closed;then=later', 400),
])
def test_what_the_tenant_does_not_have_is_refused(media, code):
    with pytest.raises(Refusal) as refused:
        choose_flow(read_invite(invite(media=media)), tenant(), SETTINGS, clock)
    assert refused.value.code == code


def test_a_domain_no_tenant_has_is_refused():
    with pytest.raises(Refusal) as refused:
        choose_flow(read_invite(invite(uri='sip:10@nowhere.example')), None, SETTINGS, clock)
    assert refused.value.code == 404


def test_the_log_names_a_call_by_call_id_service_and_caller():
    assert read_invite(invite()).label() == 'call c1 (voicemail 10@acme.sip.test;mailbox=10;reason=user-busy, from 11)'


def test_an_announcement_without_destination_answers_plays_and_hangs_up():
    flow, language = choose_flow(read_invite(invite(uri='sip:closed@acme.sip.test', media='announcement;name=closed;then=no')),
                                 tenant(), SETTINGS, clock)
    steps = run(flow, Caller()).steps
    assert steps == [Answer(), Play([StoredAudio('cd' * 32)]), Hangup()]
    assert language == 'de'


def test_an_announcement_with_a_destination_plays_early_and_hands_the_call_back():
    flow, _language = choose_flow(read_invite(invite(media='announcement;name=closed;then=yes')), tenant(), SETTINGS, clock)
    steps = run(flow, Caller()).steps
    assert steps == [EarlyMedia(), Play([StoredAudio('cd' * 32)]),
                     Hangup(480, 'Temporarily Unavailable', [('Reason', 'SIP;cause=480;text="announcement played"')])]


def test_an_announcement_without_audio_still_hands_the_call_on():
    flow, _language = choose_flow(read_invite(invite(media='announcement;name=silent;then=yes')), tenant(), SETTINGS, clock)
    assert run(flow, Caller()).steps == [EarlyMedia(), Hangup(*media_calls.ANNOUNCEMENT_PLAYED)]


# ---------------------------------------------------------------------------- the prompt catalogue
def test_every_prompt_has_every_language():
    for key, texts in list(media_prompts.PROMPTS.items()) + list(media_prompts.TEMPLATES.items()):
        assert sorted(texts) == sorted(LANGUAGES), key
        assert all(t.strip() for t in texts.values()), key


def test_every_prompt_a_flow_names_is_in_the_catalogue():
    keys = set(media_prompts.prompt_keys())
    with open(voicemail_flows.__file__) as one, open(media_calls.__file__) as other:
        source = one.read() + other.read()
    named = set(re.findall(r"'([a-z_]+)'", source)) & (set(media_prompts.PROMPTS) | set(media_prompts.TONES))
    assert named <= keys
    for key in ('enter_pin', 'beep', 'goodbye', 'number/0', 'number/100'):
        assert key in keys


@pytest.mark.parametrize('new, saved, keys', [
    (0, 0, ['no_messages']),
    (1, 0, ['you_have', 'new_message_one']),
    (2, 0, ['you_have', 'number/2', 'new_messages']),
    (0, 1, ['you_have', 'no_new_messages', 'and', 'saved_message_one']),
    (3, 7, ['you_have', 'number/3', 'new_messages', 'and', 'number/7', 'saved_messages']),
    (250, 0, ['you_have', 'more_than', 'number/100', 'new_messages']),
])
def test_message_counts_are_put_together_from_prompts(new, saved, keys):
    assert media_prompts.message_counts(new, saved) == keys


def test_the_mail_of_a_message_names_caller_length_and_whether_the_recording_is_attached():
    message = {'caller': '+4930555', 'caller_name': 'Bert', 'received_at': '2026-12-07T10:00:00Z', 'duration_ms': 6600,
               'email': {'attach': True}}
    subject, body = media_prompts.mail_text(message, '10', 'Anna', 'en')
    assert subject == 'New voicemail from Bert (+4930555) for 10 (7 s)'
    assert 'Hello Anna' in body and '2026-12-07 10:00:00 UTC' in body and 'attached' in body
    subject, body = media_prompts.mail_text(dict(message, caller=None, email={'attach': False}), '10', None, 'de')
    assert subject == 'Neue Sprachnachricht von Ein anonymer Anrufer für 10 (7 s)'
    assert '*86' in body
