# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Voicemail for an administrator, in-process: each mailbox's counts beside the extensions
(extension_info, tenant_info). The messages are written here as the media service writes them:
metadata through the store, a WAV file below its storage folder."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from module_helpers import Pbx
from wav_helpers import pcm_wav, tone
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

PASSWORD = 'Sommer-2024!'


@pytest.fixture
def acme(tmp_path):
    """acme with Anna (10, voicemail) and Ben (11, voicemail off), three messages for Anna, one for Ben,
    and their WAV files below a storage folder; a tenant beta with a message of its own."""
    pbx = Pbx(tmp_path / 'directory.db')
    for name in ('acme', 'beta'):
        pbx.ok('tenant_config', config={
            'tenant': {'name': name, 'sip_domain': '%s.voxplane.example' % name, 'licences': {'seats': {'smart': 5}}},
            'extensions': [{'internal_number': '10', 'name': 'Anna', 'voicemail': {'enabled': True}},
                           {'internal_number': '11', 'name': 'Ben'}]})
    pbx.storage = tmp_path / 'media'
    pbx.ids = {}
    with Directory(pbx.path).transaction() as txn:
        for tenant, mailbox, folder, received, frequency in (
                ('acme', '10', 'new', '2026-12-01T08:00:00Z', 440), ('acme', '10', 'new', '2026-12-02T08:00:00Z', 550),
                ('acme', '10', 'saved', '2025-11-03T08:00:00Z', 660), ('acme', '11', 'saved', '2026-12-04T08:00:00Z', 770),
                ('beta', '10', 'new', '2026-12-05T08:00:00Z', 880)):
            name = 'voicemail/%s/%s/%s.wav' % (tenant, mailbox, received.replace(':', ''))
            message_id = txn.add_voicemail(tenant, mailbox, received, 500, name,
                                           {'caller': '+4989123456', 'caller_name': 'Max', 'reason': 'no-answer'}, folder)
            path = pbx.storage / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pcm_wav(tone(frequency, 8000, 0.5), 8000))
            pbx.ids[(tenant, frequency)] = message_id
    return pbx


def test_each_mailboxs_counts_come_beside_the_extensions_never_in_them(acme):
    acme.ok('extension', tenant='acme', internal_number='10', voicemail={'locked': True})
    everyone = acme.ok('extension_info', tenant='acme')
    assert everyone['mailboxes'] == [dict(internal_number='10', new=2, saved=1, locked=True),
                                     dict(internal_number='11', new=0, saved=1, locked=False)]   # 11: messages, box off
    one = acme.ok('extension_info', tenant='acme', internal_number='10')
    assert one['mailboxes'] == everyone['mailboxes'][:1]
    assert not acme.ok('extension', **one['extensions'][0])['changed']   # the counts are not part of the extension
    document = acme.ok('tenant_info', tenant='acme')
    assert document['mailboxes'] == everyone['mailboxes']
    assert not acme.ok('tenant_config', config=document)['changed']       # nor of a tenant document
    assert acme.ok('extension_info', tenant='nobody')['mailboxes'] == []
    assert 'RIFF' not in json.dumps(everyone) + json.dumps(document)

