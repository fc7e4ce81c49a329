# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media service test fixtures: the service deployed by its real role (tests/lab/media.py) with
the tenants of tenants.yml, and the test phone (tests/lab/phone.py); the helpers of the tests
are in media_suite.py.

``media``: one service for the session, SIP accepted from ``media.caller`` (the address the
``phone`` calls from, standing in for Kamailio), a short silence timeout and mail retry. Every
wait is bounded; audio is checked by frequency (tests/lab/audio.py).
"""

import os

import pytest

from lab import audio
from lab.media import media_lab, missing_prerequisites
from lab.phone import Phone
from media_suite import MAIL_RETRY_S, SILENCE_S

HERE = os.path.dirname(os.path.abspath(__file__))
TENANTS = os.path.join(HERE, 'tenants.yml')


@pytest.fixture(scope='session')
def media(tmp_path_factory):
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    with media_lab(prefix='voxplane-media-', media_voicemail_silence_s=SILENCE_S,
                   media_smtp_retry_s=MAIL_RETRY_S) as instance:
        run = instance.playbook(TENANTS, {'directory': instance.directory_path, 'media_server': instance.uri})
        assert run.rc == 0, run
        instance.tones = audio.write_tones(str(tmp_path_factory.mktemp('tones') / 'tones.wav'),
                                           [(0, 300)] + list(audio.SEQUENCE) + [(0, 300)])
        yield instance


@pytest.fixture(scope='session')
def phone(media):
    """A phone on the address the service takes SIP from (where Kamailio would be)."""
    return Phone(media.caller, user='kamailio')
