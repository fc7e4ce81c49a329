# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sipp in the lab: bounded runs (``run_sipp``, ``start_sipp`` + ``finish_sipp``: -m, -timeout,
-timeout_error, -buff_size 4194304 and a subprocess timeout), their -trace_msg files read back
(``parse_messages``, ``header``, ``received``, ``statuses``), a directory account acting as a
phone (``Phone``) and a silent UDP socket that records what reaches it (``Listener``).
Scenarios live in tests/lab/scenarios."""

import collections
import csv
import datetime
import io
import os
import re
import shutil
import socket
import subprocess
import uuid

from lab import SCENARIOS, read_text
from lab.net import UdpWorker, free_port, wait_udp_bound
from lab.wire import Message, header  # noqa: F401  (the tests read traces with header())  pylint: disable=unused-import

SIPP = shutil.which('sipp') or '/usr/bin/sipp'


def password(username):
    """The password tests/lab/playbooks/tenants.yml gives a SIP account: anna.desk -> anna-desk-pw."""
    return username.replace('.', '-') + '-pw'


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


class TracedMessage(Message):
    """A Message of a sipp -trace_msg file, with ``direction`` ('sent'/'received') and ``time``
    (the epoch seconds sipp logged it at, or None)."""

    def __init__(self, direction, text, time):
        super(TracedMessage, self).__init__(text)
        self.direction = direction
        self.time = time


def _trace_time(stamp):
    """The epoch seconds of a sipp -trace_msg separator's '2026-11-22 06:29:11.360507', or None."""
    try:
        return datetime.datetime.strptime(stamp.strip(), '%Y-%m-%d %H:%M:%S.%f').timestamp()
    except ValueError:
        return None


def parse_messages(text):
    """Split a sipp -trace_msg file into TracedMessages (direction, time, and everything a
    Message has). Headers: header(message, name) or message.all(name)."""
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
        if body.split('\n', 1)[0].strip():
            messages.append(TracedMessage(direction, body, _trace_time(stamp)))
    return messages


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


def _last_stats(path):
    text = read_text(path)
    rows = list(csv.reader(io.StringIO(text), delimiter=';'))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def sipp_result(proc_rc, stdout, cmd, files):
    return SippResult(proc_rc, _last_stats(files['stat']), stdout, read_text(files['err']), read_text(files['msg']), cmd)


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


class Phone(object):
    """A SIP account of the lab's tenants.yml acting as a phone: ``register()`` binds the
    contact <sip:user@address:port> (register_ok.xml from that port), then ``start()`` runs a UAS
    scenario (phone_answer.xml, phone_ring.xml) on the same port, where Kamailio sends the calls
    for that contact. ``address`` is the phone's own 127.0.0.x (default: Kamailio's address, as
    the single-server suites use); ``kamailio`` is the server it registers with."""

    def __init__(self, kamailio, username, domain='acme.sip.test', address=None):
        self.kamailio = kamailio
        self.username = username
        self.domain = domain
        self.address = address or kamailio.address
        self.port = free_port(self.address, tcp=False)

    @property
    def aor(self):
        return '%s@%s' % (self.username, self.domain)

    @property
    def contact(self):
        return 'sip:%s@%s:%d' % (self.username, self.address, self.port)

    def __repr__(self):
        return 'Phone(%s on %s:%d)' % (self.aor, self.address, self.port)

    def register(self):
        inf = users_csv(os.path.join(self.kamailio.workdir, 'phone-%s-%d.csv' % (self.username, self.port)),
                        [(self.username, self.domain, password(self.username))])
        return run_sipp('register_ok.xml', self.kamailio.target, self.address, self.kamailio.workdir, inf=inf,
                        local_port=self.port, timeout=10)

    def start(self, scenario, timeout=20):
        """Run a UAS scenario on the registered port; returns once sipp listens there."""
        handle = start_sipp(scenario, self.kamailio.target, self.address, self.kamailio.workdir,
                            local_port=self.port, timeout=timeout)
        wait_udp_bound(self.address, self.port)
        return handle

    def unregister(self):
        """Drop every contact of the AOR (kamcmd ul.rm), so that later tests do not ring it."""
        self.kamailio.kamcmd('ul.rm', 'location', self.aor)


class Listener(UdpWorker):
    """A bare UDP socket on address:port that records every datagram (and answers none): proves
    that nothing was sent there, e.g. to the trunk stand-in during an on-net call."""

    def __init__(self, address, port):
        super(Listener, self).__init__(address, port)
        self.datagrams = []

    def _run(self):
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recvfrom(65535)[0].decode('utf-8', 'replace'))
            except socket.timeout:
                continue
            except OSError:
                return
