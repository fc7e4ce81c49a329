# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Kamailio deployed by the real role (roles/kamailio, through playbooks/deploy.yml) into a
temporary tree, on a random 127.0.0.x and a free port, daemon mode with a log file:
``kamailio_lab(**role_variables)`` is the whole life of one (deploy, wait for OPTIONS,
provision tenants.yml, wait until the workers route with it, stop, clean up) as a context
manager; ``KamailioInstance`` is the instance it yields (address, ports, paths, control script,
kamcmd, sipp from its address, log).

Needs root (Kamailio drops to the kamailio user itself, -u/-g), kamailio and sipp:
``missing_prerequisites()`` says what is missing. VOXPLANE_SIP_KEEP=1 keeps the temporary tree.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from lab import PLAYBOOKS, read_text
from lab.net import free_port, neighbour_address, pick_loopback_address
from lab.playbook import ansible_command, run_playbook
from lab.sipp import SIPP, run_sipp
from lab.wire import sip_request, wait_for_options

KAMAILIO = '/usr/sbin/kamailio'
KAMCMD = '/usr/sbin/kamcmd'
DEPLOY_PLAYBOOK = os.path.join(PLAYBOOKS, 'deploy.yml')
TENANTS_PLAYBOOK = os.path.join(PLAYBOOKS, 'tenants.yml')
START_TIMEOUT = 15


def missing_prerequisites():
    """Why no Kamailio can be started here, or None."""
    if os.geteuid() != 0:
        return 'needs root: Kamailio is started as root and drops to the kamailio user (-u/-g)'
    for path in (KAMAILIO, KAMCMD, SIPP, '/usr/bin/python3.11'):
        if not os.path.exists(path):
            return '%s is missing (make deps installs it)' % path
    if not os.path.exists(ansible_command('ansible-playbook')):
        return 'ansible-playbook is not installed next to %s' % sys.executable
    return None


def deploy_role(root, variables, check=False, diff=False):
    """Run the real role (playbooks/deploy.yml: directory and kamailio) with these variables."""
    return run_playbook(DEPLOY_PLAYBOOK, variables, check=check, diff=diff, cwd=root)


def kamcmd(ctl_socket, *command, timeout=10):
    return subprocess.run([KAMCMD, '-s', 'unix:' + ctl_socket] + list(command),
                          capture_output=True, text=True, timeout=timeout, check=False)


# ------------------------------------------------------------------------------ its state
def processes(root_pid):
    """{pid: (name, start time)} of ``root_pid`` and all its descendants (Kamailio forks every
    process from its main one), read from /proc; a restarted or replaced process shows as
    another pid or start time."""
    found, children = {}, {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(')') + 2:].split()
        found[int(entry)] = (stat[stat.index('(') + 1:stat.rindex(')')], int(fields[19]))
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        if pid in found:
            tree[pid] = found[pid]
            todo.extend(children.get(pid, ()))
    return tree


def process_tree(pid_file):
    """processes() of the main process named in ``pid_file`` ({} when there is none)."""
    try:
        with open(pid_file) as handle:
            return processes(int(handle.read().strip()))
    except (OSError, ValueError):
        return {}


def restarts(before, after):
    """How many processes of ``before`` (process_tree) are gone or were replaced in ``after``."""
    return max(len(set(before.items()) - set(after.items())), len(set(after.items()) - set(before.items())))


def rpc_numbers(text):
    """{name: int} of a kamcmd struct reply ('\tused: 2576728' lines)."""
    return {k: int(v) for k, v in re.findall(r'^\s*([\w-]+):\s*(-?\d+)\s*$', text or '', re.M)}


def shm_used(ctl):
    """Kamailio's shared memory in use (kamcmd core.shmmem 'real_used', bytes), or None."""
    return rpc_numbers(kamcmd(ctl, 'core.shmmem').stdout).get('real_used')


def settle(ctl, timeout=45.0, quiet=1.0):
    """Wait until tm holds no transaction (kamcmd tm.stats current 0) for ``quiet`` seconds;
    return the seconds waited (None if it never settled within ``timeout``)."""
    start = time.monotonic()
    calm_since = None
    while time.monotonic() - start < timeout:
        current = rpc_numbers(kamcmd(ctl, 'tm.stats').stdout).get('current')
        if current == 0:
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= quiet:
                return round(time.monotonic() - start, 1)
        else:
            calm_since = None
        time.sleep(0.2)
    return None


# ------------------------------------------------------------------------------ an instance
class KamailioInstance(object):
    """One Kamailio deployed by the role into a temporary tree."""

    def __init__(self, root, address, port, trunk=None, trunk_port=None):
        self.root = root
        self.address = address
        self.port = port
        # The trunk stand-in (a sipp UAS or UAC): the address neighbouring Kamailio's, which
        # tenants.yml makes every tenant's trunk address, hence trusted by the snapshot.
        self.trunk = trunk or neighbour_address(address)
        self.trunk_port = trunk_port or free_port(self.trunk, tcp=False)
        # The media server stand-in (voicemail): a sipp UAS on the trunk's address, another port.
        self.media_port = free_port(self.trunk, tcp=False)
        self.directory_path = os.path.join(root, 'directory.db')
        self.config_dir = os.path.join(root, 'etc')
        self.runtime_dir = os.path.join(root, 'run')
        self.state_dir = os.path.join(root, 'state')
        self.log_file = os.path.join(root, 'kamailio.log')
        self.pid_file = os.path.join(self.runtime_dir, 'kamailio.pid')
        self.ctl_socket = os.path.join(self.runtime_dir, 'kamailio_ctl')
        self.usrloc_db = os.path.join(self.state_dir, 'usrloc.sqlite')
        self.control_script = os.path.join(self.config_dir, 'voxplane-kamailio')
        self.workdir = os.path.join(root, 'sipp')
        os.makedirs(self.workdir, exist_ok=True)

    @property
    def target(self):
        return (self.address, self.port)

    def variables(self, **overrides):
        variables = {
            'kamailio_install_packages': False,
            'kamailio_service_mode': 'daemon',
            'kamailio_config_dir': self.config_dir,
            'kamailio_runtime_dir': self.runtime_dir,
            'kamailio_state_dir': self.state_dir,
            'kamailio_log_file': self.log_file,
            'kamailio_children': 2,
            'kamailio_listen': [
                {'proto': 'udp', 'address': self.address, 'port': self.port},
                {'proto': 'tcp', 'address': self.address, 'port': self.port},
            ],
            'kamailio_trusted_trunks': ['127.0.0.9'],
            'kamailio_directory_path': self.directory_path,
            # The test phones and callers all send from Kamailio's own address, many requests
            # a second and some with wrong passwords on purpose: never ban it. Attack tests
            # use other addresses.
            'kamailio_ban_exempt': [self.address],
        }
        variables.update(overrides)
        return variables

    def deploy(self, check=False, diff=False, **overrides):
        return deploy_role(self.root, self.variables(**overrides), check=check, diff=diff)

    def playbook(self, playbook, variables=None, check=False, diff=False):
        """ansible-playbook ``playbook`` with ``variables``, run in this instance's tree."""
        return run_playbook(playbook, variables, check=check, diff=diff, cwd=self.root)

    def provision(self, playbook=TENANTS_PLAYBOOK, **extra):
        """Run a directory playbook (the lab's tenants.yml by default) against this instance's
        directory, with the trunk stand-in's address and port."""
        variables = {'directory': self.directory_path, 'trunk': self.trunk, 'trunk_port': self.trunk_port,
                     'media_server': 'sip:%s:%d' % (self.trunk, self.media_port)}
        variables.update(extra)
        return self.playbook(playbook, variables)

    def wait_for_directory(self, domain='acme.sip.test', timeout=START_TIMEOUT):
        """Wait until a REGISTER without credentials to ``domain`` is challenged (401), i.e. the
        workers routing it have loaded a snapshot holding that tenant."""
        deadline = time.monotonic() + timeout
        line = None
        while time.monotonic() < deadline:
            uri = 'sip:probe@%s' % domain
            line = sip_request(self.address, self.target, 'REGISTER', 'sip:%s' % domain, uri, uri, timeout=1.0)
            if line and line.startswith('SIP/2.0 401'):
                # Another worker may still hold the old snapshot until its next generation
                # check (reload_check_ms, 500 ms by default): wait that out.
                time.sleep(0.6)
                return line
            time.sleep(0.1)
        return None

    def pid(self):
        try:
            with open(self.pid_file) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        return pid if os.path.exists('/proc/%d' % pid) else None

    def control(self, command, timeout=60):
        return subprocess.run([self.control_script, command], capture_output=True, text=True, timeout=timeout,
                              check=False)

    def kamcmd(self, *command):
        return kamcmd(self.ctl_socket, *command)

    def log_tail(self, lines=60):
        return '\n'.join(read_text(self.log_file).splitlines()[-lines:])

    def log_size(self):
        """Where the log ends now: log_since() of it is what Kamailio logs from here on."""
        try:
            return os.path.getsize(self.log_file)
        except OSError:
            return 0

    def log_since(self, offset=0):
        return read_text(self.log_file, offset)

    def sipp(self, scenario, calls=1, timeout=15, **kwargs):
        return run_sipp(scenario, self.target, self.address, self.workdir, calls=calls, timeout=timeout, **kwargs)

    def stop(self):
        if os.path.exists(self.control_script):
            try:
                self.control('stop', timeout=40)
            except subprocess.TimeoutExpired:
                pass
        pid = self.pid()
        if pid:  # the control script failed: kill by pid file, children first
            children = subprocess.run(['pgrep', '-P', str(pid)], capture_output=True, text=True,
                                      check=False).stdout.split()
            for victim in [pid] + [int(c) for c in children]:
                try:
                    os.kill(victim, signal.SIGKILL)
                except OSError:
                    pass


class LabError(Exception):
    """The lab's Kamailio did not come up: what failed, with the role's output or the log."""


@contextlib.contextmanager
def kamailio_lab(prefix='voxplane-sip-', provision=True, tenants=TENANTS_PLAYBOOK, address=None, trunk=None,
                 root=None, wait_timeout=START_TIMEOUT, setup=None, port=None, **role_variables):
    """One Kamailio for a suite or a test: deployed by the real role with ``role_variables`` over
    KamailioInstance.variables() (a temporary tree under /tmp, a random 127.0.0.x unless
    ``address``, ``port`` or a free one; the trunk stand-in on ``trunk`` or the next address; the tree
    below ``root`` when given, which then stays), started, answering OPTIONS within
    ``wait_timeout`` s; with
    ``provision`` the directory holds ``tenants`` (tenants.yml: acme and beta) and the workers
    route with it. ``setup(instance)``, when given, runs before the deployment (it may write
    files below instance.root or build the directory) and returns more role variables, for
    those that depend on the instance's address or paths. Yields the KamailioInstance; at the
    end stops it (control script, else by pid file) and removes the tree (kept with
    VOXPLANE_SIP_KEEP=1). Raises LabError when it does not come up."""
    own_root = root is None
    root = root or tempfile.mkdtemp(prefix=prefix)
    os.chmod(root, 0o755)  # the kamailio user must reach etc/, run/ and state/ below it
    address = address or pick_loopback_address()
    instance = KamailioInstance(root, address, port or free_port(address), trunk=trunk)
    try:
        if setup is not None:
            role_variables = dict(role_variables, **(setup(instance) or {}))
        run = instance.deploy(**role_variables)
        instance.first_run = run
        if run.rc != 0:
            raise LabError('the role failed to deploy Kamailio: %r\n%s' % (run, instance.log_tail()))
        if not wait_for_options(address, instance.port, timeout=wait_timeout):
            raise LabError('Kamailio did not answer OPTIONS on %s:%d\n%s' % (address, instance.port, instance.log_tail()))
        if provision:
            result = instance.provision(tenants)
            if result.rc != 0:
                raise LabError('%s failed: %r' % (os.path.basename(tenants), result))
            if not instance.wait_for_directory():
                raise LabError('Kamailio does not route with the tenants\n%s' % instance.log_tail())
        yield instance
    finally:
        instance.stop()
        if own_root and os.environ.get('VOXPLANE_SIP_KEEP') == '1':
            sys.stderr.write('\nvoxplane lab: kept %s\n' % root)
        elif own_root:
            shutil.rmtree(root, ignore_errors=True)
