# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane media service: the calls the PBX answers itself (voicemail, the mailbox menu,
announcements), deployed by the role voxplane.pbx.media (docs/media.md).

    <venv>/bin/python voxplane_media_service.py settings.json

Layout (deployed by roles/media into <app_dir>):
  voxplane_media_service.py     this file: settings, logging, signals, start-up, the main loop
  voxplane_media_engine.py      PJSIP (pjsua2) carrying out the flows' steps
  voxplane_media_store.py       the directory and the message files as the flows see them
  voxplane_media_mail.py        voicemail to e-mail (a thread of its own)
  voxplane_media_audio.py       WAV files, speech, where each prompt is on disk
  ansible_collections/voxplane/pbx/plugins/module_utils/*.py   the collection's pure code

Start-up: messages whose recording a stop or crash cut off are repaired and kept, then PJSIP
listens. SIGTERM or SIGINT: running recordings are closed and kept, every call is ended, PJSIP
is destroyed, the process exits 0.
"""

import json
import logging
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# pylint: disable=wrong-import-position
from ansible_collections.voxplane.pbx.plugins.module_utils import media_calls, voicemail  # noqa: E402
import voxplane_media_audio  # noqa: E402
import voxplane_media_store  # noqa: E402

LOG = logging.getLogger('voxplane-media')


def load_settings(path):
    with open(path) as handle:
        return json.load(handle)


def read_secret(path):
    if not path:
        return ''
    with open(path) as handle:
        return handle.read().strip()


def dispatcher(media, voicemail_settings, clock=time.time):
    """The engine's dispatch: an INVITE's text -> (flow, language, tenant name, log label)."""
    def dispatch(text):
        request = media_calls.read_invite(text)
        tenant = media.tenant(request.domain)
        flow, language = media_calls.choose_flow(request, tenant, voicemail_settings, clock)
        return flow, language, tenant.name, request.label()
    return dispatch


def build(settings):
    """The service's parts from its settings: (engine, mail sender or None, media directory)."""
    # Imported here: the prompt generator and the tests use the rest without PJSIP.
    import voxplane_media_engine  # pylint: disable=import-outside-toplevel
    import voxplane_media_mail  # pylint: disable=import-outside-toplevel

    messages = voxplane_media_store.Messages(settings['storage_dir'])
    media = voxplane_media_store.MediaDirectory(settings['directory_path'], messages)
    mail = None
    smtp = settings.get('smtp') or {}
    if smtp.get('host'):
        mail = voxplane_media_mail.MailSender(media, voxplane_media_mail.MailSettings(
            smtp['host'], smtp.get('port', 587), smtp.get('security', 'starttls'), smtp.get('user', ''),
            read_secret(smtp.get('password_file')), smtp.get('ca_file', ''), smtp.get('sender', 'voicemail@localhost'),
            smtp.get('timeout_s', 20), smtp.get('retry_s', 300)))
        media.mail_queue = mail
    vm = settings.get('voicemail', {})
    voicemail_settings = voicemail.Settings(
        max_message_ms=vm.get('max_message_s', 180) * 1000, silence_ms=vm.get('silence_s', 5) * 1000,
        max_messages=vm.get('max_messages', 100), max_greeting_ms=vm.get('max_greeting_s', 60) * 1000)
    files = voxplane_media_audio.AudioFiles(
        settings['prompts_dir'], os.path.join(settings['storage_dir'], 'cache'), media.stored_audio,
        settings.get('voices'), settings.get('espeak_ng', '/usr/bin/espeak-ng'), settings.get('sox', '/usr/bin/sox'))
    engine = voxplane_media_engine.Engine(voxplane_media_engine.EngineSettings(
        settings['listen_address'], settings['listen_port'], settings['allowed_sources'],
        settings.get('transports', ['udp']), settings.get('rtp_port_min', 40000), settings.get('rtp_port_max', 40999),
        settings.get('max_calls', 200), vm.get('silence_level', 8), settings.get('pjsip_log_level', 1)),
        dispatcher(media, voicemail_settings), files)
    return engine, mail, media


def main(argv):
    if len(argv) != 2:
        sys.stderr.write('usage: %s settings.json\n' % argv[0])
        return 2
    settings = load_settings(argv[1])
    logging.basicConfig(level=getattr(logging, settings.get('log_level', 'info').upper()), stream=sys.stderr,
                        format='%(asctime)s voxplane-media[%(process)d] %(levelname)s %(message)s')
    stop = []
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_args: stop.append(True))
    engine, mail, media = build(settings)
    kept = media.messages.recover(media)
    if kept:
        LOG.warning('start-up: %d message(s) cut off by the last stop kept', kept)
    if mail is not None:
        mail.start()
    engine.start()
    try:
        engine.run(lambda: bool(stop))
    finally:
        if mail is not None:
            mail.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
