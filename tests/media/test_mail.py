# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Voicemail to e-mail against a real SMTP server (aiosmtpd, STARTTLS and a login): the mail
arrives with the WAV attached (the caller's tones in it); a relay that is down leaves the message
in the mailbox, logs the failure and the mail goes out once the relay is back; delete after
e-mail."""

import os

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import model
from lab import audio
from lab.net import wait_for
from media_suite import MAIL_RETRY_S, leave_message, prompt

HERE = os.path.dirname(os.path.abspath(__file__))
CORA = 'cora@acme.media.test'


@pytest.fixture(autouse=True)
def mail_settings_exist():
    if 'email' not in [s.name for s in model.sub_fields(model.EXTENSION, 'voicemail')]:
        pytest.skip('the extension has no voicemail.email yet (model)')


def mail_to_cora(media, attach=True, delete_after_email=False):
    run = media.playbook(os.path.join(HERE, 'mail.yml'), {'directory': media.directory_path, 'email': CORA,
                                                          'attach': attach, 'delete_after_email': delete_after_email})
    assert run.rc == 0, run


def deposit(media, phone, tmp_path, name, kept=True):
    call = leave_message(phone, media, tmp_path, mailbox='12', reason='no-answer', name=name)
    assert call.wait_heard(prompt(media, 'message_kept'), timeout=10), media.log_tail(10)
    call.wait_ended(10)
    if not kept:
        return None
    messages = wait_for(lambda: media.messages('acme', '12'), 10)
    assert len(messages) == 1, messages
    return messages[0]


def test_a_message_is_mailed_with_its_wav_attached(media, phone, smtp, tmp_path):
    media.clear_messages('acme', '12')
    mail_to_cora(media)
    smtp.start()
    try:
        before = len(smtp.messages)
        message = deposit(media, phone, tmp_path, 'mailed')
        assert smtp.wait_for_mail(before + 1), media.log_tail(10)
    finally:
        smtp.stop()
    mail = smtp.messages[-1]
    assert smtp.recipients[-1] == [CORA] and mail['To'] == CORA
    assert mail['From'] == 'voicemail@acme.media.test'
    assert mail['Subject'] == 'New voicemail from kamailio for 12 (%d s)' % round(message['duration_ms'] / 1000.0)
    assert ('LOGIN', True) in smtp.logins or ('PLAIN', True) in smtp.logins
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == 'audio/wav'
    wav = tmp_path / 'attached.wav'
    wav.write_bytes(attachment.get_content())
    found, segments = audio.has_sequence(wav)
    assert found, segments
    kept = wait_for(lambda: [m for m in media.messages('acme', '12') if m['doc']['email']['state'] == 'sent'], 10)
    assert kept and os.path.exists(kept[0]['path'])  # kept in the mailbox as well
    media.clear_messages('acme', '12')


def test_a_relay_that_is_down_leaves_the_message_and_the_mail_goes_out_later(media, phone, smtp, tmp_path):
    media.clear_messages('acme', '12')
    mail_to_cora(media)
    offset = media.log_size()
    message = deposit(media, phone, tmp_path, 'relay-down')
    assert wait_for(lambda: 'voicemail mail of message %s ' % message['id'] in media.log_since(offset), 15), \
        media.log_tail(10)
    log = media.log_since(offset)
    assert 'failed (attempt 1)' in log and 'the message stays in the mailbox' in log, log[-1500:]
    [pending] = media.messages('acme', '12')
    assert pending['doc']['email']['state'] == 'pending' and pending['doc']['email']['attempts'] >= 1
    assert os.path.exists(pending['path'])

    before = len(smtp.messages)
    smtp.start()
    try:
        assert smtp.wait_for_mail(before + 1, timeout=MAIL_RETRY_S * 5 + 10), media.log_tail(10)
    finally:
        smtp.stop()
    assert wait_for(lambda: media.messages('acme', '12')[0]['doc']['email']['state'] == 'sent', 10)
    assert [p.get_content_type() for p in smtp.messages[-1].iter_attachments()] == ['audio/wav']
    media.clear_messages('acme', '12')


def test_delete_after_email_without_attachment(media, phone, smtp, tmp_path):
    media.clear_messages('acme', '12')
    mail_to_cora(media, attach=False, delete_after_email=True)
    smtp.start()
    try:
        before = len(smtp.messages)
        deposit(media, phone, tmp_path, 'deleted-after', kept=False)
        assert smtp.wait_for_mail(before + 1), media.log_tail(10)
    finally:
        smtp.stop()
    assert list(smtp.messages[-1].iter_attachments()) == []
    assert '*86' in smtp.messages[-1].get_body(('plain',)).get_content()
    assert wait_for(lambda: media.messages('acme', '12') == [], 10)
    folder = os.path.join(media.storage_dir, 'voicemail', 'acme', '12')
    assert [name for name in os.listdir(folder) if name.endswith('.wav')] == []
    mail_to_cora(media, attach=True, delete_after_email=False)
