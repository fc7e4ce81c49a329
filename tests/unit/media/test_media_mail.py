# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Voicemail to e-mail (media/voxplane_media_mail.py) without a relay: what a mail holds, a
failure kept and retried after ``retry_s``, delete after e-mail. (The real relay: tests/media.)"""

import os
import smtplib
import wave

import pytest

from directory_helpers import DOMAIN, MEDIA_SERVER, Harness, account, extension, tenant_request
import voxplane_media_mail as mail
import voxplane_media_store as store
from ansible_collections.voxplane.pbx.plugins.module_utils import model, voicemail_flows
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION


class Clock(object):
    now = 1765100000.0

    def __call__(self):
        return self.now


@pytest.fixture
def media(tmp_path):
    if 'email' not in [s.name for s in model.sub_fields(EXTENSION, 'voicemail')]:
        pytest.skip('the extension has no voicemail.email yet (model)')
    pbx = Harness(tmp_path / 'directory.db')
    pbx.apply('acme', tenant_request(media_server=MEDIA_SERVER, language='en'), {EXTENSION: {
        '10': extension(account('anna.desk'), name='Anna', voicemail={'enabled': True, 'email': 'anna@acme.example'}),
    }})
    return store.MediaDirectory(pbx.path, store.Messages(str(tmp_path / 'storage')))


def deposit(media, ms=2000):
    box = media.tenant(DOMAIN).mailbox('10')
    path = box.begin_message(voicemail_flows.Caller('11', 'Bert'), 'user-busy')
    with wave.open(path, 'wb') as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b'\x01\x00' * (8 * ms))
    box.keep_message(path, ms)
    return path


def test_a_pending_mail_is_sent_with_the_wav_and_marked(media, monkeypatch):
    sent = []
    monkeypatch.setattr(mail, 'send', lambda message, settings: sent.append(message))
    path = deposit(media)
    sender = mail.MailSender(media, mail.MailSettings('relay.example', sender='vm@acme.example'), clock=Clock())
    sender.send_pending()
    [message] = sent
    assert (message['To'], message['From']) == ('anna@acme.example', 'vm@acme.example')
    assert message['Subject'] == 'New voicemail from Bert (11) for 10 (2 s)'
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() == open(path, 'rb').read()
    with media.read() as txn:
        assert txn.voicemail_to_mail() == []
        [kept] = txn.voicemail_messages('acme', '10')
    assert kept['email']['state'] == 'sent' and kept['caller'] == '11'
    sender.send_pending()
    assert len(sent) == 1


def test_a_failed_mail_is_kept_logged_and_tried_again_after_retry_s(media, monkeypatch, caplog):
    def refuse(message, settings):
        raise smtplib.SMTPRecipientsRefused({'anna@acme.example': (550, b'no')})
    monkeypatch.setattr(mail, 'send', refuse)
    path = deposit(media)
    clock = Clock()
    sender = mail.MailSender(media, mail.MailSettings('relay.example', retry_s=300), clock=clock)
    assert sender.send_pending() == 300
    assert 'failed (attempt 1)' in caplog.text and 'the message stays in the mailbox' in caplog.text
    with media.read() as txn:
        [pending] = txn.voicemail_to_mail()
    assert pending['email']['attempts'] == 1 and pending['email']['next_try'] == clock.now + 300
    clock.now += 100
    assert sender.send_pending() == pytest.approx(200)  # not due yet: nothing tried
    sent = []
    monkeypatch.setattr(mail, 'send', lambda message, settings: sent.append(message))
    clock.now += 200
    sender.send_pending()
    assert len(sent) == 1 and os.path.exists(path)


def test_delete_after_email(media, monkeypatch):
    media.harness = Harness(media.directory.dialect.path)
    media.harness.apply('acme', None, {EXTENSION: {'10': {'voicemail': {'attach': False, 'delete_after_email': True}}}})
    sent = []
    monkeypatch.setattr(mail, 'send', lambda message, settings: sent.append(message))
    path = deposit(media)
    mail.MailSender(media, mail.MailSettings('relay.example'), clock=Clock()).send_pending()
    assert list(sent[0].iter_attachments()) == [] and '*86' in sent[0].get_body(('plain',)).get_content()
    with media.read() as txn:
        assert txn.voicemail_messages('acme', '10') == []
    assert not os.path.exists(path)
