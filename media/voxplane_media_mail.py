# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Voicemail to e-mail: a thread of its own sends the mail of every message whose mail is
pending (doc email.state 'pending' in the directory, so a restart loses none) through the SMTP
relay the media role is given (STARTTLS, implicit TLS or plain; a login when it has a user).

A mail that fails is logged and tried again ``retry_s`` later; its message stays in the
mailbox. A sent mail marks the message (email.state 'sent'); with delete_after, the message and
its file are removed once the mail is out. The thread touches no PJSIP object.
"""

import email.message
import email.utils
import logging
import os
import smtplib
import socket
import ssl
import threading
import time

from ansible_collections.voxplane.pbx.plugins.module_utils import media_prompts
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError

LOG = logging.getLogger('voxplane-media')
# What store.voicemail_message adds to a message's document from its row.
_MESSAGE_COLUMNS = ('id', 'tenant', 'mailbox', 'folder', 'received_at', 'duration_ms', 'file')


class MailSettings(object):
    """The relay: host, port, security ('starttls', 'tls' or 'none'), user and password (empty:
    no login), ca_file (empty: the system's CAs), sender (From), timeout and retry seconds."""

    def __init__(self, host, port=587, security='starttls', user='', password='', ca_file='',
                 sender='voicemail@localhost', timeout_s=20, retry_s=300):
        self.host = host
        self.port = int(port)
        self.security = security
        self.user = user
        self.password = password
        self.ca_file = ca_file
        self.sender = sender
        self.timeout_s = timeout_s
        self.retry_s = retry_s


def build_mail(message, settings, wav):
    """The EmailMessage of a voicemail message (``wav``: its bytes to attach, or None)."""
    mail = message['email']
    subject, body = media_prompts.mail_text(message, message['mailbox'], mail.get('name'), mail.get('language'))
    out = email.message.EmailMessage()
    out['From'] = settings.sender
    out['To'] = mail['to']
    out['Subject'] = subject
    out['Date'] = email.utils.formatdate(localtime=False)
    out['Message-ID'] = email.utils.make_msgid(domain=settings.sender.rpartition('@')[2] or None)
    out.set_content(body)
    if wav is not None:
        out.add_attachment(wav, maintype='audio', subtype='wav', filename='voicemail-%s.wav' % message['id'])
    return out


def send(mail, settings):
    """Hand ``mail`` to the relay; raises OSError or smtplib.SMTPException when it does not take it."""
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    if settings.security == 'tls':
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
    try:
        client.ehlo()
        if settings.security == 'starttls':
            client.starttls(context=context)
            client.ehlo()
        if settings.user:
            client.login(settings.user, settings.password)
        client.send_message(mail)
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


class MailSender(object):
    """The thread that sends pending mails: woken when a message with mail is kept, and every
    ``retry_s`` for the ones that failed."""

    def __init__(self, media, settings, clock=time.time):
        self.media = media
        self.settings = settings
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='voxplane-media-mail', daemon=True)

    def start(self):
        self._thread.start()

    def wake(self):
        self._wake.set()

    def stop(self, timeout=5):
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self):
        while not self._stop.is_set():
            try:
                pause = self.send_pending()
            except Exception:  # pylint: disable=broad-except  # the thread must go on
                LOG.exception('voicemail mail: unexpected error')
                pause = self.settings.retry_s
            self._wake.wait(pause)
            self._wake.clear()

    def send_pending(self):
        """Send every pending mail that is due; the seconds until the next one is."""
        now = self.clock()
        with self.media.read() as txn:
            pending = txn.voicemail_to_mail()
        next_due = self.settings.retry_s
        for message in pending:
            if self._stop.is_set():
                break
            due = message['email'].get('next_try', 0)
            if due > now:
                next_due = min(next_due, due - now)
                continue
            self._send_one(message)
        return max(0.2, next_due)

    def _send_one(self, message):
        mail = dict(message['email'])
        path = self.media.messages.path(message['file'])
        where = 'message %s (mailbox %s of tenant %s) to %s' % (
            message['id'], message['mailbox'], message['tenant'], mail['to'])
        try:
            wav = None
            if mail.get('attach', True):
                with open(path, 'rb') as handle:
                    wav = handle.read()
            send(build_mail(message, self.settings, wav), self.settings)
        except (OSError, smtplib.SMTPException, socket.timeout, ssl.SSLError) as e:
            mail['attempts'] = mail.get('attempts', 0) + 1
            mail['last_error'] = str(e)[:300] or type(e).__name__
            mail['next_try'] = self.clock() + self.settings.retry_s
            LOG.warning('voicemail mail of %s failed (attempt %d): %s; the message stays in the mailbox, next '
                        'try in %d s', where, mail['attempts'], mail['last_error'], self.settings.retry_s)
            self._update(message, mail)
            return False
        mail['state'] = 'sent'
        mail['sent_at'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.clock()))
        mail.pop('next_try', None)
        if mail.get('delete_after'):
            with self.media.write() as txn:
                gone = txn.delete_voicemail(message['tenant'], message['id'])
            if gone is not None and os.path.exists(path):
                os.unlink(path)
            LOG.info('voicemail mail of %s sent; the message is deleted (delete after e-mail)', where)
        else:
            self._update(message, mail)
            LOG.info('voicemail mail of %s sent', where)
        return True

    def _update(self, message, mail):
        doc = dict((k, v) for k, v in message.items() if k not in _MESSAGE_COLUMNS)
        doc['email'] = mail
        try:
            with self.media.write() as txn:
                txn.update_voicemail(message['tenant'], message['id'], doc)
        except DirectoryError as e:
            LOG.error('voicemail mail of message %s: cannot record its state: %s', message['id'], e)
