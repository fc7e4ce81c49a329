# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane media service: the calls the PBX answers itself (voicemail, the mailbox menu,
announcements), deployed by the role voxplane.pbx.media (docs/media.md).

    <venv>/bin/python voxplane_media_service.py settings.json          the front (what runs)
    ... settings.json --worker N --status-port PORT                    a worker (the front starts it)

Layout (deployed by roles/media into <app_dir>):
  voxplane_media_service.py     this file: settings, logging, signals, the front and a worker
  voxplane_media_front.py       the front: one SIP address, calls relayed to worker processes
  voxplane_media_engine.py      a worker's PJSIP (pjsua2) carrying out the flows' steps
  voxplane_media_store.py       the directory and the message files as the flows see them
  voxplane_media_mail.py        voicemail to e-mail (a thread of its own)
  voxplane_media_audio.py       WAV files, speech, where each prompt is on disk
  ansible_collections/voxplane/pbx/plugins/module_utils/*.py   the collection's pure code

Start-up (the front): messages whose recording a stop or crash cut off are repaired and kept,
the mail sender starts, then the workers (max_calls / 4: the PJSIP wheel takes 4 calls a
process). SIGTERM or SIGINT: each worker closes its running recordings and keeps them, ends its
calls and destroys PJSIP; the front waits for them and exits 0.
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
from ansible_collections.voxplane.pbx.plugins.module_utils import media_calls, voicemail_flows  # noqa: E402
import voxplane_media_audio  # noqa: E402
import voxplane_media_front  # noqa: E402
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


def dispatcher(media, limits, clock=time.time):
    """The engine's dispatch: an INVITE's text -> (flow, language, tenant name, log label)."""
    def dispatch(text):
        request = media_calls.read_invite(text)
        tenant = media.tenant(request.domain)
        flow, language = media_calls.choose_flow(request, tenant, limits, clock)
        return flow, language, tenant.name, request.label()
    return dispatch


class _MailNotice(object):
    """A worker's mail queue: the front's mail sender is told there is a mail to send."""

    def __init__(self, link):
        self.link = link

    def wake(self):
        self.link.report(mail=True)


def voicemail_settings(settings):
    vm = settings.get('voicemail', {})
    return voicemail_flows.Settings(
        max_message_ms=vm.get('max_message_s', 180) * 1000, silence_ms=vm.get('silence_s', 5) * 1000,
        max_messages=vm.get('max_messages', 100), max_greeting_ms=vm.get('max_greeting_s', 60) * 1000)


def media_directory(settings):
    messages = voxplane_media_store.Messages(settings['storage_dir'])
    return voxplane_media_store.MediaDirectory(settings['directory_path'], messages)


def workers(settings):
    """How many worker processes take the service's calls at once."""
    return max(1, -(-int(settings.get('max_calls', 40)) // voxplane_media_front.CALLS_PER_WORKER))


def rtp_ports(settings, index):
    """The RTP port range of worker ``index``: its even-aligned share of the service's range."""
    low, high = int(settings.get('rtp_port_min', 40000)), int(settings.get('rtp_port_max', 40999))
    share = ((high - low + 1) // workers(settings)) & ~1
    return low + index * share, low + (index + 1) * share - 1


def run_worker(settings, index, status_port, stop):
    """One worker: a PJSIP engine on the front's port + 1 + index, its calls reported to the front."""
    import voxplane_media_engine  # pylint: disable=import-outside-toplevel  # PJSIP: workers only

    media = media_directory(settings)
    port = int(settings['listen_port']) + 1 + index
    link = voxplane_media_front.FrontLink(status_port, port)
    media.mail_queue = _MailNotice(link)
    media.queue_link = link
    files = voxplane_media_audio.AudioFiles(
        settings['prompts_dir'], os.path.join(settings['storage_dir'], 'cache'), media.stored_audio,
        settings.get('voices'), settings.get('espeak_ng', '/usr/bin/espeak-ng'), settings.get('sox', '/usr/bin/sox'))
    low, high = rtp_ports(settings, index)
    engine = voxplane_media_engine.Engine(
        voxplane_media_engine.EngineSettings(
            settings['listen_address'], port, settings['allowed_sources'],
            front=(settings['listen_address'], int(settings['listen_port'])), rtp_port_min=low, rtp_port_max=high,
            silence_level=settings.get('voicemail', {}).get('silence_level', 8),
            pjsip_log_level=settings.get('pjsip_log_level', 1), kamailio=settings.get('kamailio_uri') or None),
        dispatcher(media, voicemail_settings(settings)), files,
        on_load=link.report, rooms=link)
    parent = os.getppid()
    engine.start()
    # A worker whose front is gone stops too (its port would keep a new front's worker out).
    engine.run(lambda: bool(stop) or os.getppid() != parent)
    return 0


def run_front(settings, settings_path, stop):
    """The front: start-up recovery, the mail sender, the workers and the relay to them."""
    import voxplane_media_mail  # pylint: disable=import-outside-toplevel

    media = media_directory(settings)
    kept = media.messages.recover(media)
    if kept:
        LOG.warning('start-up: %d message(s) cut off by the last stop kept', kept)
    mail = None
    smtp = settings.get('smtp') or {}
    if smtp.get('host'):
        mail = voxplane_media_mail.MailSender(media, voxplane_media_mail.MailSettings(
            smtp['host'], smtp.get('port', 587), smtp.get('security', 'starttls'), smtp.get('user', ''),
            read_secret(smtp.get('password_file')), smtp.get('ca_file', ''), smtp.get('sender', 'voicemail@localhost'),
            smtp.get('timeout_s', 20), smtp.get('retry_s', 300)))
        mail.start()
    count = workers(settings)

    def command(index, status_port):
        return [sys.executable, os.path.abspath(__file__), settings_path, '--worker', str(index),
                '--status-port', str(status_port)]

    front = voxplane_media_front.Front(settings['listen_address'], int(settings['listen_port']), command, count,
                                       on_mail=mail.wake if mail else None, metrics=settings.get('metrics'))
    LOG.info('front on %s:%d: %d workers of %d calls (ports %d-%d), SIP from %s', settings['listen_address'],
             int(settings['listen_port']), count, voxplane_media_front.CALLS_PER_WORKER,
             int(settings['listen_port']) + 1, int(settings['listen_port']) + count,
             ', '.join(settings['allowed_sources']))
    try:
        front.run(lambda: bool(stop), recover_worker=lambda pid: media.messages.recover(media, pid))
    finally:
        if mail is not None:
            mail.stop()
    LOG.info('stopped')
    return 0


def main(argv):
    if len(argv) not in (2, 6) or (len(argv) == 6 and (argv[2], argv[4]) != ('--worker', '--status-port')):
        sys.stderr.write('usage: %s settings.json [--worker N --status-port PORT]\n' % argv[0])
        return 2
    settings = load_settings(argv[1])
    worker = int(argv[3]) if len(argv) == 6 else None
    role = 'worker %d' % worker if worker is not None else 'front'
    logging.basicConfig(level=getattr(logging, settings.get('log_level', 'info').upper()), stream=sys.stderr,
                        format='%(asctime)s voxplane-media[%(process)d] ' + role + ' %(levelname)s %(message)s')
    stop = []
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_args: stop.append(True))
    if worker is not None:
        return run_worker(settings, worker, int(argv[5]), stop)
    return run_front(settings, argv[1], stop)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
