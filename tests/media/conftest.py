# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media service test fixtures: the service deployed by its real role (tests/lab/media.py) with
the tenants of tenants.yml, and the test phone (tests/lab/phone.py); the helpers of the tests
are in media_suite.py.

``media``: one service for the session, SIP accepted from ``media.caller`` (the address the
``phone`` calls from, standing in for Kamailio; the calls the service places go to the same
phone, ``media.kamailio_port``), a short silence timeout, voicemail to e-mail
through ``smtp`` (a real SMTP server, aiosmtpd, STARTTLS and a login) with a short retry. Every
wait is bounded; audio is checked by frequency (tests/lab/audio.py).
"""

import os

import pytest

from lab import audio
from lab.media import media_lab, missing_prerequisites
from lab.net import free_port, neighbour_address, pick_loopback_address
from lab.phone import Phone, hang_up_all
from lab.smtp import SmtpServer
from media_suite import MAIL_RETRY_S, SILENCE_S

# A test value, not a secret of any deployment.
SMTP_PASSWORD = 'smtp-test-password-0815'

HERE = os.path.dirname(os.path.abspath(__file__))
TENANTS = os.path.join(HERE, 'tenants.yml')


@pytest.fixture(autouse=True)
def no_call_left():
    """After each test no call of its phones is up: a failed test must not take the next one's
    call slots."""
    yield
    hang_up_all()


@pytest.fixture(scope='session')
def smtp():
    """The SMTP relay of voicemail to e-mail (STARTTLS, a login), not started: test_mail starts
    and stops it."""
    address = pick_loopback_address()
    server = SmtpServer(address, free_port(address), user='voicemail', password=SMTP_PASSWORD)
    yield server
    server.close()


@pytest.fixture(scope='session')
def media(tmp_path_factory, smtp):
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    # The phone stands in for Kamailio both ways: it sends the service its calls and takes the
    # calls the service places (menus), on a port known before the service is deployed.
    address = pick_loopback_address()
    kamailio_port = free_port(neighbour_address(address))
    with media_lab(prefix='voxplane-media-', address=address,
                   media_kamailio_uri='sip:%s:%d' % (neighbour_address(address), kamailio_port),
                   media_voicemail_silence_s=SILENCE_S, media_smtp_host=smtp.address,
                   media_smtp_port=smtp.port, media_smtp_user=smtp.user, media_smtp_password=smtp.password,
                   media_smtp_ca_file=smtp.certificate, media_smtp_sender='voicemail@acme.media.test',
                   media_smtp_retry_s=MAIL_RETRY_S) as instance:
        run = instance.playbook(TENANTS, {'directory': instance.directory_path, 'media_server': instance.uri})
        assert run.rc == 0, run
        instance.kamailio_port = kamailio_port
        instance.tones = audio.write_tones(str(tmp_path_factory.mktemp('tones') / 'tones.wav'),
                                           [(0, 300)] + list(audio.SEQUENCE) + [(0, 300)])
        instance.other_tones = audio.write_tones(str(tmp_path_factory.mktemp('tones') / 'other.wav'),
                                                 [(0, 300)] + list(audio.OTHER_SEQUENCE) + [(0, 300)])
        yield instance


@pytest.fixture(scope='session')
def phone(media):
    """A phone on the address the service takes SIP from (where Kamailio would be)."""
    return Phone(media.caller, user='kamailio', port=media.kamailio_port)
