# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media service deployed by the real role (roles/media, through playbooks/media.yml) into
a temporary tree, on a random 127.0.0.x and a free port, daemon mode: ``media_lab(...)`` is the
whole life of one (deploy, wait until it answers SIP, stop, clean up) as a context manager;
``MediaInstance`` is what it yields (address, port, paths, the control script, its log, the
directory, the stored messages).

``pbx_with_media(...)`` starts the three servers of a call the PBX answers itself: rtpengine,
the media service and Kamailio (``kamailio_media_service`` pointing at the service, rtpengine
in the path), on one directory.

The service's venv (the PJSIP wheel) is kept between runs in VENV (VENV_POSTGRESQL, with the
psycopg wheels too, for a service on a PostgreSQL directory), so that a deployment after the
first installs nothing. Needs root (the service runs as the kamailio user), espeak-ng and
sox: ``missing_prerequisites()`` says what is missing. VOXPLANE_SIP_KEEP=1 keeps the tree.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from lab import PLAYBOOKS, read_text
from lab.directories import use_collection
from lab.kamailio import LabError, kamailio_lab, processes
from lab.net import free_port, free_ports, neighbour_address, pick_loopback_address, wait_for
from lab.playbook import ansible_command, run_playbook
from lab.rtpengine import rtpengine_lab
from lab.wire import options_probe

MEDIA_PLAYBOOK = os.path.join(PLAYBOOKS, 'media.yml')
VENV = '/var/cache/voxplane-lab/media-venv'
VENV_POSTGRESQL = '/var/cache/voxplane-lab/media-venv-postgresql'
START_TIMEOUT = 20


def missing_prerequisites():
    """Why no media service can be started here, or None."""
    if os.geteuid() != 0:
        return 'needs root: the service runs as the kamailio user'
    for path in ('/usr/bin/espeak-ng', '/usr/bin/sox', '/usr/bin/python3.11'):
        if not os.path.exists(path):
            return '%s is missing (make deps installs it)' % path
    if subprocess.run(['getent', 'passwd', 'kamailio'], capture_output=True, check=False).returncode != 0:
        return 'there is no kamailio user (make deps installs kamailio)'
    if not os.path.exists(ansible_command('ansible-playbook')):
        return 'ansible-playbook is not installed next to %s' % sys.executable
    return None


class MediaInstance(object):
    """One media service deployed by the role into a temporary tree."""

    def __init__(self, root, address, kamailio_addresses, directory_path=None, max_calls=8, directory_password=None):
        self.root = root
        self.address = address
        self.max_calls = max_calls
        self.workers = (max_calls + 3) // 4   # the role's: one worker process per 4 calls
        self.port = free_ports(address, self.workers + 1)
        self.kamailio_addresses = list(kamailio_addresses)
        self.directory_path = directory_path or os.path.join(root, 'directory.db')
        self.directory_password = directory_password
        use_collection()
        from ansible_collections.voxplane.pbx.plugins.module_utils import postgresql  # pylint: disable=import-outside-toplevel
        self.on_postgresql = postgresql.is_location(self.directory_path)
        self.config_dir = os.path.join(root, 'etc')
        self.runtime_dir = os.path.join(root, 'run')
        self.log_dir = os.path.join(root, 'log')
        self.log_file = os.path.join(self.log_dir, 'media.log')
        self.storage_dir = os.path.join(root, 'storage')
        self.prompts_dir = os.path.join(root, 'prompts')
        self.control_script = os.path.join(self.config_dir, 'voxplane-media')
        self.pid_file = os.path.join(self.runtime_dir, 'media.pid')
        low = free_ports(address, 20 * self.workers)
        low -= low % 2
        self.rtp_ports = (low, low + 20 * self.workers - 1)

    @property
    def target(self):
        """host:port the service's INVITEs go to."""
        return '%s:%d' % (self.address, self.port)

    @property
    def uri(self):
        return 'sip:%s:%d' % (self.address, self.port)

    def variables(self, **overrides):
        variables = {
            'media_install_packages': False,
            'media_service_mode': 'daemon',
            'media_venv_dir': VENV_POSTGRESQL if self.on_postgresql else VENV,
            'media_config_dir': self.config_dir,
            'media_runtime_dir': self.runtime_dir,
            'media_log_dir': self.log_dir,
            'media_storage_dir': self.storage_dir,
            'media_prompts_dir': self.prompts_dir,
            'media_directory_path': self.directory_path,
            'media_directory_password': self.directory_password or '',
            'media_listen_address': self.address,
            'media_listen_port': self.port,
            'media_kamailio_addresses': self.kamailio_addresses,
            'media_max_calls': self.max_calls,
            'media_rtp_port_min': self.rtp_ports[0],
            'media_rtp_port_max': self.rtp_ports[1],
            'media_log_level': 'debug',
            'media_start_timeout': START_TIMEOUT,
        }
        variables.update(overrides)
        return variables

    def deploy(self, check=False, **overrides):
        return run_playbook(MEDIA_PLAYBOOK, self.variables(**overrides), check=check, cwd=self.root)

    def playbook(self, playbook, variables=None, check=False, diff=False):
        return run_playbook(playbook, variables, check=check, diff=diff, cwd=self.root)

    def control(self, command, timeout=60):
        return subprocess.run([self.control_script, command], capture_output=True, text=True, timeout=timeout,
                              check=False)

    def pid(self):
        try:
            with open(self.pid_file) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        return pid if os.path.exists('/proc/%d' % pid) else None

    def answers(self, timeout=1.0):
        return options_probe(self.address, self.port, timeout=timeout) is not None

    def processes(self):
        """{pid: (name, start time)} of the front and its workers."""
        pid = self.pid()
        return processes(pid) if pid else {}

    def workers_pids(self):
        pid = self.pid()
        return sorted(p for p in self.processes() if p != pid)

    def kill(self, pids=None):
        """SIGKILL to the front and every worker (or to ``pids``), as a crash ends them: nothing
        is closed."""
        victims = list(pids or self.processes())
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        wait_for(lambda: not any(os.path.exists('/proc/' + str(pid)) for pid in victims), 10)

    def log_size(self):
        try:
            return os.path.getsize(self.log_file)
        except OSError:
            return 0

    def log_since(self, offset=0):
        return read_text(self.log_file, offset)

    def log_tail(self, lines=60):
        return '\n'.join(read_text(self.log_file).splitlines()[-lines:])

    def directory(self):
        """The service's directory (store.Directory: SQLite or PostgreSQL), as the test reads it."""
        use_collection()
        from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory  # pylint: disable=import-outside-toplevel
        return Directory(self.directory_path, password=self.directory_password)

    def messages(self, tenant, mailbox=None):
        """The directory's rows of the tenant's messages: dicts of id, mailbox, folder,
        duration_ms, path (absolute), doc."""
        with self.directory().transaction(write=False, create=False) as txn:
            rows = txn._execute(  # pylint: disable=protected-access
                'SELECT v.id, e.internal_number, v.folder, v.duration_ms, v.file, v.doc FROM voicemail_messages v '
                'JOIN tenants t ON t.id = v.tenant_id JOIN extensions e ON e.id = v.extension_id '
                'WHERE t.name = ? ORDER BY v.id', (tenant,)).fetchall()
        found = [{'id': r[0], 'mailbox': r[1], 'folder': r[2], 'duration_ms': r[3],
                  'path': os.path.join(self.storage_dir, r[4]), 'doc': json.loads(r[5])} for r in rows]
        return [m for m in found if mailbox is None or m['mailbox'] == mailbox]

    def add_announcement(self, tenant, name, wav):
        """An announcement of the tenant whose audio is the WAV file ``wav``, written straight into
        the directory (its document: ``audio``, the SHA-256 of its row in ``audio``), as the
        announcement kind of the directory keeps it."""
        with open(wav, 'rb') as handle:
            data = handle.read()
        with self.directory().transaction() as txn:
            digest = txn.put_audio(tenant, data, 0)
            txn._execute('DELETE FROM announcements WHERE name = ? AND tenant_id = (SELECT id FROM tenants WHERE name = ?)',  # pylint: disable=protected-access
                         (name, tenant))
            txn._execute('INSERT INTO announcements (tenant_id, name, doc) SELECT id, ?, ? FROM tenants WHERE name = ?',  # pylint: disable=protected-access
                         (name, json.dumps({'audio': digest}), tenant))
        return digest

    def clear_messages(self, tenant, mailbox):
        """Remove a mailbox's messages (rows and files) directly, as a test's setup."""
        found = self.messages(tenant, mailbox)
        with self.directory().transaction() as txn:
            for message in found:
                txn._execute('DELETE FROM voicemail_messages WHERE id = ?', (message['id'],))  # pylint: disable=protected-access
        for message in found:
            if os.path.exists(message['path']):
                os.unlink(message['path'])

    def stop(self):
        if os.path.exists(self.control_script):
            try:
                self.control('stop', timeout=START_TIMEOUT + 10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


@contextlib.contextmanager
def media_lab(prefix='voxplane-media-', kamailio_addresses=None, address=None, directory_path=None, root=None,
              max_calls=8, directory_password=None, **role_variables):
    """One media service for a suite or a test: deployed by the real role (a temporary tree
    under /tmp unless ``root``, a random 127.0.0.x unless ``address``, a free port), SIP
    accepted from ``kamailio_addresses`` (default: the address next to the service's, where the
    tests' phone calls from: ``instance.caller``), ``max_calls`` at once (one worker per 4, on
    the ports above the service's), on the directory at ``directory_path`` (default:
    one in the tree, created by the directory role; a PostgreSQL location with its password in
    ``directory_password``, which the role writes to the service's passfile). Yields the MediaInstance, answering SIP;
    stops it and removes the tree at the end (kept with VOXPLANE_SIP_KEEP=1). Raises LabError
    when it does not come up."""
    own_root = root is None
    root = root or tempfile.mkdtemp(prefix=prefix)
    os.chmod(root, 0o755)  # the kamailio user must reach the tree below it
    address = address or pick_loopback_address()
    caller = neighbour_address(address)
    instance = MediaInstance(root, address, kamailio_addresses or [caller], directory_path, max_calls, directory_password)
    instance.caller = caller
    try:
        run = instance.deploy(**role_variables)
        instance.first_run = run
        if run.rc != 0:
            raise LabError('the role failed to deploy the media service: %r\n%s' % (run, instance.log_tail()))
        if not wait_for(instance.answers, START_TIMEOUT):
            raise LabError('the media service does not answer SIP on %s\n%s' % (instance.target, instance.log_tail()))
        yield instance
    finally:
        instance.stop()
        if own_root and os.environ.get('VOXPLANE_SIP_KEEP') == '1':
            sys.stderr.write('\nvoxplane lab: kept %s\n' % root)
        elif own_root:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def pbx_with_media(prefix='voxplane-pbx-media-', kamailio_variables=None, **media_variables):
    """rtpengine, the media service and Kamailio on one directory: Kamailio's
    ``kamailio_media_service`` is the service, its rtpengine the relay, the service accepts
    Kamailio's address. Yields (kamailio, media, relay)."""
    root = tempfile.mkdtemp(prefix=prefix)
    os.chmod(root, 0o755)
    for server in ('rtpengine', 'media', 'kamailio'):  # each server's tree, where its role runs
        os.makedirs(os.path.join(root, server))
    try:
        with contextlib.ExitStack() as stack:
            address = pick_loopback_address()
            relay_low = free_port('127.0.0.1')
            relay_low -= relay_low % 2
            relay = stack.enter_context(rtpengine_lab(os.path.join(root, 'rtpengine'), address,
                                                      (relay_low, relay_low + 199)))
            media_address = neighbour_address(neighbour_address(address))
            port = free_port(address)  # Kamailio's, known before the service that calls through it
            media = stack.enter_context(media_lab(
                root=os.path.join(root, 'media'), address=media_address, kamailio_addresses=[address],
                directory_path=os.path.join(root, 'kamailio', 'directory.db'),
                media_kamailio_uri='sip:%s:%d' % (address, port), **media_variables))
            variables = dict({'kamailio_media_service': media.uri,
                              'kamailio_rtpengine_sockets': ['udp:127.0.0.1:%d' % relay.ng_port]},
                             **(kamailio_variables or {}))
            kamailio = stack.enter_context(kamailio_lab(root=os.path.join(root, 'kamailio'), address=address, port=port,
                                                        **variables))
            yield kamailio, media, relay
    finally:
        if os.environ.get('VOXPLANE_SIP_KEEP') == '1':
            sys.stderr.write('\nvoxplane lab: kept %s\n' % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
