# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real SMTP server for the voicemail mails (aiosmtpd): STARTTLS with a self-signed
certificate made for it, a login required over TLS, every mail it takes kept as an
email.message.Message. ``start()`` and ``stop()`` as often as a test needs (a relay that is
down); the address and port stay.

    server = SmtpServer('127.0.0.31', port, user='voicemail', password='...')
    server.start(); ...; server.messages; server.stop(); server.close()
"""

import email
import email.policy
import os
import shutil
import ssl
import subprocess
import tempfile

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from lab.net import wait_for


class _Handler(object):
    def __init__(self, server):
        self.server = server

    async def handle_DATA(self, _server, _session, envelope):
        self.server.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.server.recipients.append(list(envelope.rcpt_tos))
        return '250 OK'


class SmtpServer(object):
    """aiosmtpd on ``address``:``port`` with STARTTLS and a required login."""

    def __init__(self, address, port, user, password):
        self.address = address
        self.port = port
        self.user = user
        self.password = password
        self.messages = []
        self.recipients = []
        self.logins = []
        # A folder of its own that the media service's user can reach (its certificate).
        self.root = tempfile.mkdtemp(prefix='voxplane-smtp-')
        os.chmod(self.root, 0o755)
        self.certificate = os.path.join(self.root, 'smtp.crt')
        self.key = os.path.join(self.root, 'smtp.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj',
                        '/CN=%s' % address, '-addext', 'subjectAltName=IP:%s' % address, '-keyout', self.key,
                        '-out', self.certificate], capture_output=True, check=True, timeout=60)
        os.chmod(self.certificate, 0o644)  # the media service checks the relay with it
        self.controller = None

    def _authenticate(self, _server, _session, _envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (self.user, self.password)
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok)

    def start(self):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        self.controller = Controller(_Handler(self), hostname=self.address, port=self.port, tls_context=context,
                                     require_starttls=True, authenticator=self._authenticate, auth_required=True)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def close(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def wait_for_mail(self, count=1, timeout=30):
        return wait_for(lambda: len(self.messages) >= count, timeout)
