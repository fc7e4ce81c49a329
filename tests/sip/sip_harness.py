# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIP test harness helpers (used by tests/sip/conftest.py and the tests).

Helpers: ``run_sipp`` / ``start_sipp`` + ``finish_sipp`` (bounded: -m, -timeout,
-timeout_error, -buff_size 4194304, and a subprocess timeout), ``parse_messages`` /
``header`` / ``received`` / ``statuses`` (read sipp's -trace_msg file), ``Phone`` (a directory
account that registers and then runs a UAS scenario on its contact port), ``Listener`` (a
silent UDP socket that records what reaches it), ``sip_request`` / ``options_probe`` (one
request from a plain UDP socket, for polling), ``deploy_role`` / ``run_playbook`` (any extra
variables, --check), ``kamcmd``.

Needs root (Kamailio drops to the kamailio user itself, -u/-g), kamailio and sipp. Every
address is on 127.0.0.0/8. VOXPLANE_SIP_KEEP=1 keeps the temporary tree for a post-mortem.
"""

import collections
import csv
import datetime
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

from playbook_run import PlaybookRun

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(REPO, 'tests', 'sip')
SCENARIOS = os.path.join(HERE, 'scenarios')
DEPLOY_PLAYBOOK = os.path.join(HERE, 'deploy.yml')
TENANTS_PLAYBOOK = os.path.join(HERE, 'tenants.yml')
KAMAILIO = '/usr/sbin/kamailio'
KAMCMD = '/usr/sbin/kamcmd'
SIPP = shutil.which('sipp') or '/usr/bin/sipp'


def password(username):
    """The password tests/sip/tenants.yml gives a SIP account: anna.desk -> anna-desk-pw."""
    return username.replace('.', '-') + '-pw'


PLAYBOOK_TIMEOUT = 600
START_TIMEOUT = 15


def _ansible_playbook():
    candidate = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    return candidate if os.path.exists(candidate) else shutil.which('ansible-playbook')


def missing_prerequisites():
    if os.geteuid() != 0:
        return 'needs root: Kamailio is started as root and drops to the kamailio user (-u/-g)'
    for path in (KAMAILIO, KAMCMD, SIPP, '/usr/bin/python3.11'):
        if not os.path.exists(path):
            return '%s is missing (make deps installs it)' % path
    if not _ansible_playbook():
        return 'ansible-playbook is not installed next to %s' % sys.executable
    return None


# ------------------------------------------------------------------------------ addresses
def pick_loopback_address():
    """A random 127.0.0.x (x in 20..250), so parallel sessions do not collide."""
    return '127.0.0.%d' % random.randint(20, 250)


def neighbour_address(address):
    """The next 127.0.0.x after ``address`` (x at most 254)."""
    head, last = address.rsplit('.', 1)
    return '%s.%d' % (head, int(last) + 1 if int(last) < 254 else int(last) - 1)


def free_port(address, udp=True, tcp=True):
    """A high port free for both UDP and TCP on address."""
    for _attempt in range(50):
        port = random.randint(20000, 60000)
        socks = []
        try:
            if udp:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((address, port))
            if tcp:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((address, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError('no free port on %s' % address)


# ------------------------------------------------------------------------------ the role
def collections_path(root):
    """<root>/collections/ansible_collections/voxplane/pbx -> the repository."""
    base = os.path.join(root, 'collections')
    link = os.path.join(base, 'ansible_collections', 'voxplane', 'pbx')
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO, link)
    return base


def deploy_role(root, variables, check=False, diff=False):
    """Run the real role (tests/sip/deploy.yml) against localhost with these variables."""
    return run_playbook(root, DEPLOY_PLAYBOOK, variables, check=check, diff=diff)


def deploy_rtpengine(root, address, ports, log_level=4):
    """rtpengine through the real role (tests/sip/rtpengine.yml), a pid-file daemon under root
    relaying on address with the RTP ports (low, high); (pid, ng port, control script)."""
    ng_port, cli_port = free_port('127.0.0.1'), free_port('127.0.0.1')
    variables = {
        'rtpengine_install_packages': False, 'rtpengine_service_mode': 'daemon',
        'rtpengine_config_dir': os.path.join(root, 'rtpengine'), 'rtpengine_runtime_dir': os.path.join(root, 'rtp-run'),
        'rtpengine_address': address, 'rtpengine_port_min': ports[0], 'rtpengine_port_max': ports[1],
        'rtpengine_listen_ng': '127.0.0.1:%d' % ng_port, 'rtpengine_listen_cli': '127.0.0.1:%d' % cli_port,
        'rtpengine_delete_delay': 0, 'rtpengine_log_level': log_level,
    }
    run = run_playbook(root, os.path.join(HERE, 'rtpengine.yml'), variables)
    if run.rc != 0:
        raise RuntimeError('rtpengine role failed: %r' % (run,))
    with open(os.path.join(root, 'rtp-run', 'rtpengine.pid')) as handle:
        pid = int(handle.read().strip())
    return pid, ng_port, os.path.join(root, 'rtpengine', 'voxplane-rtpengine')


def run_playbook(root, playbook, variables, check=False, diff=False):
    """ansible-playbook against localhost (connection local) with the collection linked under
    <root>/collections and these extra variables (a JSON vars file)."""
    vars_file = os.path.join(root, 'vars-%s.json' % uuid.uuid4().hex[:8])
    with open(vars_file, 'w') as handle:
        json.dump(variables, handle, indent=1)
    cmd = [_ansible_playbook(), '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', '@' + vars_file, playbook]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(root), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_STDOUT_CALLBACK='default',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, timeout=PLAYBOOK_TIMEOUT,
                          check=False)
    return PlaybookRun(proc)


# ------------------------------------------------------------------------------ probes
def sip_request(local_ip, target, method, ruri, from_uri, to_uri, headers=(), timeout=2.0):
    """Send one request over UDP from an ephemeral port of local_ip; return the first final
    status line (or the last provisional one when no final came, or None). Only for polling and
    probes: the tests proper use sipp scenarios."""
    address, port = target
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((local_ip, 0))
        sock.settimeout(timeout)
        lport = sock.getsockname()[1]
        tag, callid, branch = uuid.uuid4().hex[:8], uuid.uuid4().hex, 'z9hG4bK' + uuid.uuid4().hex[:12]
        fields = (method, ruri, local_ip, lport, branch, from_uri, tag, to_uri, callid, method, local_ip, lport,
                  ''.join(h + '\r\n' for h in headers))
        msg = ('%s %s SIP/2.0\r\n'
               'Via: SIP/2.0/UDP %s:%d;branch=%s;rport\r\n'
               'Max-Forwards: 70\r\n'
               'From: <%s>;tag=%s\r\n'
               'To: <%s>\r\n'
               'Call-ID: %s\r\n'
               'CSeq: 1 %s\r\n'
               'Contact: <sip:probe@%s:%d>\r\n'
               '%s'
               'Content-Length: 0\r\n\r\n') % fields
        sock.sendto(msg.encode(), (address, port))
        deadline = time.monotonic() + timeout
        provisional = None
        while time.monotonic() < deadline:
            try:
                data = sock.recvfrom(65535)[0].decode('utf-8', 'replace')
            except socket.timeout:
                break
            line = data.split('\r\n', 1)[0]
            if callid not in data:
                continue
            if not line.startswith('SIP/2.0 1'):
                return line
            provisional = line
        return provisional
    finally:
        sock.close()


def options_probe(address, port, timeout=2.0, user=None):
    """Send one OPTIONS over UDP from an ephemeral loopback port; return the status line or None."""
    ruri = 'sip:%s%s:%d' % ((user + '@') if user else '', address, port)
    line = sip_request(address, (address, port), 'OPTIONS', ruri, 'sip:probe@%s' % address, ruri, timeout=timeout)
    return None if line is None or line.startswith('SIP/2.0 1') else line


def wait_for_options(address, port, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = options_probe(address, port, timeout=1.0)
        if line and line.startswith('SIP/2.0 200'):
            return line
        time.sleep(0.2)
    return None


def kamcmd(ctl_socket, *command, timeout=10):
    proc = subprocess.run([KAMCMD, '-s', 'unix:' + ctl_socket] + list(command),
                          capture_output=True, text=True, timeout=timeout, check=False)
    return proc


# ------------------------------------------------------------------------------ sipp
SippResult = collections.namedtuple('SippResult', 'rc stats stdout errors messages cmd')


def users_csv(path, rows):
    """An -inf file. Each row: (user, domain, password, *more): field0 user, field1 domain,
    field2 the whole [authentication ...] keyword (sipp 3.6.1 quirk), field3... the rest."""
    with open(path, 'w') as handle:
        handle.write('SEQUENTIAL\n')
        for user, domain, secret, *more in rows:
            fields = [user, domain, '[authentication username=%s password=%s]' % (user, secret)] + list(more)
            handle.write(';'.join(fields) + '\n')
    return path


SipMessage = collections.namedtuple('SipMessage', 'direction first_line text time')


def _trace_time(stamp):
    """The epoch seconds of a sipp -trace_msg separator's '2026-11-22 06:29:11.360507', or None."""
    try:
        return datetime.datetime.strptime(stamp.strip(), '%Y-%m-%d %H:%M:%S.%f').timestamp()
    except ValueError:
        return None


def parse_messages(text):
    """Split a sipp -trace_msg file into SipMessage(direction 'sent'/'received', first line,
    the whole message text, epoch time sipp logged it). Headers: header(message, name)."""
    messages = []
    parts = re.split(r'\n-{20,} ?([^\n]*)\n', '\n' + text)
    for stamp, chunk in zip(parts[1::2], parts[2::2]):
        head, sep, body = chunk.partition('\n')
        if not sep:
            continue
        direction = 'received' if ' received' in head else 'sent' if ' sent' in head else None
        if direction is None:
            continue
        body = body.lstrip('\n').replace('\r\n', '\n')
        first = body.split('\n', 1)[0].strip()
        if first:
            messages.append(SipMessage(direction, first, body, _trace_time(stamp)))
    return messages


def header(message, name):
    """Every value of header ``name`` (case-insensitive, compact forms not expanded) in a SipMessage."""
    values = []
    head = message.text.split('\n\n', 1)[0]
    for line in head.split('\n')[1:]:
        key, sep, value = line.partition(':')
        if sep and key.strip().lower() == name.lower():
            values.append(value.strip())
    return values


def received(result, what):
    """The messages sipp received whose first line starts with ``what`` ('INVITE', 'SIP/2.0 4', ...)."""
    return [m for m in parse_messages(result.messages) if m.direction == 'received' and m.first_line.startswith(what)]


def statuses(result):
    """Status codes sipp received, in order, as strings ('401', '200', ...), provisional ones left out."""
    return [m.first_line.split()[1] for m in parse_messages(result.messages)
            if m.direction == 'received' and m.first_line.startswith('SIP/2.0') and not m.first_line.split()[1].startswith('1')]


def sipp_command(scenario, target, local_ip, workdir, calls=1, timeout=15, local_port=None, inf=None,
                 rate=None, extra=()):
    """The bounded sipp command line (-m, -timeout + -timeout_error, -buff_size 4194304)."""
    tag = '%s-%s' % (os.path.splitext(os.path.basename(scenario))[0], uuid.uuid4().hex[:6])
    files = dict(stat=os.path.join(workdir, tag + '.stat.csv'), err=os.path.join(workdir, tag + '.err.log'),
                 msg=os.path.join(workdir, tag + '.msg.log'))
    cmd = [SIPP, '%s:%d' % target,
           '-sf', scenario if os.path.isabs(scenario) else os.path.join(SCENARIOS, scenario),
           '-i', local_ip, '-p', str(local_port or free_port(local_ip, tcp=False)),
           '-m', str(calls), '-timeout', '%ds' % timeout, '-timeout_error',
           '-buff_size', '4194304', '-nostdin',
           '-trace_stat', '-stf', files['stat'], '-fd', '1',
           '-trace_err', '-error_file', files['err']]
    if calls <= 20:
        cmd += ['-trace_msg', '-message_file', files['msg']]
    if inf:
        cmd += ['-inf', inf]
    if rate:
        cmd += ['-r', str(rate)]
    cmd += list(extra)
    return cmd, files


def _read(path):
    try:
        with open(path, errors='replace') as handle:
            return handle.read()
    except OSError:
        return ''


def _last_stats(path):
    text = _read(path)
    rows = list(csv.reader(io.StringIO(text), delimiter=';'))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def sipp_result(proc_rc, stdout, cmd, files):
    return SippResult(proc_rc, _last_stats(files['stat']), stdout, _read(files['err']), _read(files['msg']), cmd)


def run_sipp(scenario, target, local_ip, workdir, calls=1, timeout=15, **kwargs):
    """Run sipp to completion; returns SippResult(rc, stats, stdout, errors, messages, cmd).

    rc 0: every call succeeded; 1: at least one failed; 97/99/-1/-2: see sipp(1).
    stats: the last row of -trace_stat (e.g. stats['SuccessfulCall(C)']).
    """
    cmd, files = sipp_command(scenario, target, local_ip, workdir, calls=calls, timeout=timeout, **kwargs)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=timeout + 15, check=False, cwd=workdir)
        rc, out = proc.returncode, proc.stdout.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired as exc:
        rc, out = -999, (exc.stdout or b'').decode('utf-8', 'replace') + '\n[subprocess timeout]'
    return sipp_result(rc, out, cmd, files)


def start_sipp(scenario, target, local_ip, workdir, calls=1, timeout=15, **kwargs):
    """Start sipp in the background; finish with finish_sipp(handle)."""
    cmd, files = sipp_command(scenario, target, local_ip, workdir, calls=calls, timeout=timeout, **kwargs)
    out = open(os.path.join(workdir, os.path.basename(files['stat']) + '.out'), 'w+b')
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    return dict(proc=proc, cmd=cmd, files=files, out=out, timeout=timeout)


def finish_sipp(handle, timeout=None):
    """Wait for a start_sipp() process (at most ``timeout`` seconds, by default its own -timeout
    plus 15), kill it when it is still running, and return its SippResult."""
    proc = handle['proc']
    try:
        rc = proc.wait(timeout=handle['timeout'] + 15 if timeout is None else timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait(timeout=5)
    handle['out'].seek(0)
    out = handle['out'].read().decode('utf-8', 'replace')
    handle['out'].close()
    return sipp_result(rc, out, handle['cmd'], handle['files'])


def udp_bound(address, port):
    """Whether some process has a UDP socket bound to address:port (from /proc/net/udp, without
    touching the port)."""
    wanted = '%s:%04X' % (socket.inet_aton(address)[::-1].hex().upper(), port)
    try:
        with open('/proc/net/udp') as handle:
            return any(line.split()[1] == wanted for line in handle.readlines()[1:])
    except OSError:
        return False


def wait_udp_bound(address, port, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if udp_bound(address, port):
            return True
        time.sleep(0.02)
    return False


class Phone(object):
    """A SIP account of tests/sip/tenants.yml acting as a phone: ``register()`` binds the
    contact <sip:user@kamailio.address:port> (register_ok.xml from that port), then ``start()``
    runs a UAS scenario (phone_answer.xml, phone_ring.xml) on the same port, where Kamailio
    sends the calls for that contact."""

    def __init__(self, kamailio, username, domain='acme.sip.test'):
        self.kamailio = kamailio
        self.username = username
        self.domain = domain
        self.port = free_port(kamailio.address, tcp=False)

    @property
    def aor(self):
        return '%s@%s' % (self.username, self.domain)

    def __repr__(self):
        return 'Phone(%s on %s:%d)' % (self.aor, self.kamailio.address, self.port)

    def register(self):
        inf = users_csv(os.path.join(self.kamailio.workdir, 'phone-%s-%d.csv' % (self.username, self.port)),
                        [(self.username, self.domain, password(self.username))])
        return self.kamailio.sipp('register_ok.xml', inf=inf, local_port=self.port, timeout=10)

    def start(self, scenario, timeout=20):
        """Run a UAS scenario on the registered port; returns once sipp listens there."""
        handle = start_sipp(scenario, self.kamailio.target, self.kamailio.address, self.kamailio.workdir,
                            local_port=self.port, timeout=timeout)
        wait_udp_bound(self.kamailio.address, self.port)
        return handle

    def unregister(self):
        """Drop every contact of the AOR (kamcmd ul.rm), so that later tests do not ring it."""
        self.kamailio.kamcmd('ul.rm', 'location', self.aor)


class Listener(object):
    """A bare UDP socket on address:port that records every datagram (and answers none): proves
    that nothing was sent there, e.g. to the trunk stand-in during an on-net call."""

    def __init__(self, address, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, port))
        self.sock.settimeout(0.05)
        self.datagrams = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recvfrom(65535)[0].decode('utf-8', 'replace'))
            except socket.timeout:
                continue
            except OSError:
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
        return False


# ------------------------------------------------------------------------------ Kamailio
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

    def provision(self, playbook=TENANTS_PLAYBOOK, **extra):
        """Run a directory playbook (tests/sip/tenants.yml by default) against this instance's
        directory, with the trunk stand-in's address and port."""
        variables = {'directory': self.directory_path, 'trunk': self.trunk, 'trunk_port': self.trunk_port,
                     'media_server': 'sip:%s:%d' % (self.trunk, self.media_port)}
        variables.update(extra)
        return run_playbook(self.root, playbook, variables)

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
        return '\n'.join(_read(self.log_file).splitlines()[-lines:])

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
