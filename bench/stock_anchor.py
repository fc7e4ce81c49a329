# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The native anchor of the benchmarks: Debian's stock Kamailio configuration, as an operator who
skipped voxplane would run it.

bench/stock_cfg/kamailio.cfg is /etc/kamailio/kamailio.cfg as the Debian package ``kamailio``
(5.6.3-2) ships it, byte for byte. ``render`` applies the changes of CHANGES to it, each an
exact text replacement that must match exactly once (docs/benchmarks.md lists them), and the
defines of DEFINES go on the command line (``-A``), as the file's own header says to enable
them. The subscribers live in SQLite, in tables made with Kamailio's own schema
(/usr/share/kamailio/db_sqlite), with plain passwords (the cfg's ``calculate_ha1 yes``), the
file in SQLite's write-ahead-log mode (make_database).

``StockInstance`` starts it like the role starts the router (same binary, ``-x fm -X fm``,
the same shared and private memory, the kamailio user, one UDP worker) and offers what
bench/sip_bench.Server needs of an instance.
"""

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = os.path.join(HERE, 'stock_cfg', 'kamailio.cfg')
SCHEMA = '/usr/share/kamailio/db_sqlite'
KAMAILIO = '/usr/sbin/kamailio'
KAMCMD = '/usr/sbin/kamcmd'

# The cfg's own switches (its header): digest auth against the subscriber table, registrations
# kept in the database (db_mode 2, written back by the usrloc timer), NAT detection and media
# relay with rtpengine (its WITH_RTPENGINE, instead of rtpproxy), flood detection (pike + ipban).
# WITH_MYSQL is the file's switch for "modules use a database" (DBURL, db module): with the
# change below it loads db_sqlite.
DEFINES = ('WITH_MYSQL', 'WITH_AUTH', 'WITH_USRLOCDB', 'WITH_NAT', 'WITH_RTPENGINE', 'WITH_ANTIFLOOD')

# (what, shipped text, replacement); {listen}, {aliases}, {db}, {ctl} are filled in by render.
CHANGES = (
    ('db_sqlite instead of db_mysql', 'loadmodule "db_mysql.so"', 'loadmodule "db_sqlite.so"'),
    ('the database URL: the SQLite file', '#!trydef DBURL "mysql://kamailio:kamailiorw@localhost/kamailio"',
     '#!trydef DBURL "sqlite://{db}"'),
    ('one UDP worker (children), like the router and the baseline', '\nchildren=8\n', '\nchildren=1\n'),
    ('the listen address and the domains served (the bench accounts\' domains) as aliases',
     '# listen=udp:10.0.0.10:5060', 'listen=udp:{listen}\n{aliases}'),
    ('the control socket in the instance\'s runtime directory (path)',
     '# modparam("ctl", "binrpc", "unix:/run/kamailio/kamailio_ctl")', 'modparam("ctl", "binrpc", "unix:{ctl}")'),
    ('pike density: 60000 requests per 2 s from one address (shipped: 16), so that the load generator is '
     'not banned; still checked on every request', 'modparam("pike", "reqs_density_per_unit", 16)',
     'modparam("pike", "reqs_density_per_unit", 60000)'),
    ('usrloc timer every 1 s (shipped: 60 s), the bench\'s value for every server: each run pays for its own '
     'write-back of the registrations to the database', 'modparam("usrloc", "timer_interval", 60)',
     'modparam("usrloc", "timer_interval", 1)'),
)


def render(address, port, db_path, ctl_socket, domains, shipped=SHIPPED):
    """The anchor's cfg text: the shipped file with CHANGES applied; raises if the shipped text
    of a change is not found exactly once (another Kamailio release)."""
    with open(shipped) as handle:
        text = handle.read()
    values = dict(listen='%s:%d' % (address, port), db=db_path, ctl=ctl_socket,
                  aliases='\n'.join('alias="%s"' % d for d in sorted(set(domains))))
    for what, old, new in CHANGES:
        if text.count(old) != 1:
            raise ValueError('%s: %r is not in the shipped cfg exactly once' % (what, old))
        text = text.replace(old, new.format(**values))
    return text


def make_database(path, accounts, schema=SCHEMA):
    """The SQLite database of the cfg: Kamailio's version, subscriber and location tables, and
    ``accounts`` (user, domain, password) as subscribers."""
    with sqlite3.connect(path) as db:
        # Write-ahead log (a property of the file, kept by every later connection): the worker's
        # credential reads go on while the usrloc timer writes registrations back. In SQLite's
        # default rollback journal they fail with "database is locked" (the REGISTER gets a new
        # 401), which no database server the cfg is written for would do.
        db.execute('PRAGMA journal_mode=WAL')
        for name in ('standard-create.sql', 'auth_db-create.sql', 'usrloc-create.sql'):
            with open(os.path.join(schema, name)) as handle:
                db.executescript(handle.read())
        db.executemany('INSERT OR REPLACE INTO subscriber (username, domain, password) VALUES (?, ?, ?)',
                       sorted(set(accounts)))
    return path


class Started(object):
    def __init__(self, rc, output):
        self.rc = rc
        self.output = output

    def __repr__(self):
        return 'rc=%d %s' % (self.rc, self.output[-2000:])


class StockInstance(object):
    """One Kamailio running the stock cfg in ``root`` (what sip_bench.Server asks of an instance)."""

    def __init__(self, root, address, port, accounts, domains, shm_mb=64, pkg_mb=8):
        self.root = root
        self.address = address
        self.port = port
        self.accounts = accounts
        self.domains = domains
        self.shm_mb, self.pkg_mb = shm_mb, pkg_mb
        self.config_dir = os.path.join(root, 'etc')
        self.runtime_dir = os.path.join(root, 'run')
        self.state_dir = os.path.join(root, 'state')
        self.cfg = os.path.join(self.config_dir, 'kamailio.cfg')
        self.db_path = os.path.join(self.state_dir, 'kamailio.sqlite')
        self.ctl_socket = os.path.join(self.runtime_dir, 'kamailio_ctl')
        self.pid_file = os.path.join(self.runtime_dir, 'kamailio.pid')
        self.log_file = os.path.join(root, 'kamailio.log')
        self.workdir = os.path.join(root, 'sipp')
        self.process = None
        for folder in (self.config_dir, self.runtime_dir, self.state_dir, self.workdir):
            os.makedirs(folder, exist_ok=True)

    @property
    def target(self):
        return (self.address, self.port)

    def command(self):
        argv = [KAMAILIO, '-f', self.cfg, '-P', self.pid_file, '-Y', self.runtime_dir, '-u', 'kamailio',
                '-g', 'kamailio', '-m', str(self.shm_mb), '-M', str(self.pkg_mb), '-x', 'fm', '-X', 'fm']
        for define in DEFINES:
            argv += ['-A', define]
        return argv

    def deploy(self, **_ignored):
        """Write the cfg and the database, check the cfg, start Kamailio (like the role: a clean
        environment, the foreground creator detached, logging to a file); wait for its ctl."""
        with open(self.cfg, 'w') as handle:
            handle.write(render(self.address, self.port, self.db_path, self.ctl_socket, self.domains))
        make_database(self.db_path, self.accounts)
        shutil.chown(self.state_dir, 'kamailio', 'kamailio')
        shutil.chown(self.db_path, 'kamailio', 'kamailio')
        shutil.chown(self.runtime_dir, 'kamailio', 'kamailio')
        env = dict(PATH='/usr/sbin:/usr/bin:/sbin:/bin', LANG='C.UTF-8')
        check = subprocess.run(self.command() + ['-c'], capture_output=True, text=True, env=env, check=False)
        if check.returncode != 0:
            return Started(check.returncode, check.stdout + check.stderr)
        with open(self.log_file, 'ab') as log:
            self.process = subprocess.Popen(self.command() + ['-DD', '-E'], stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.pid() and self.kamcmd('core.uptime').returncode == 0:
                return Started(0, '')
            time.sleep(0.1)
        return Started(1, self.log_tail())

    def pid(self):
        try:
            with open(self.pid_file) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        return pid if os.path.exists('/proc/%d' % pid) else None

    def kamcmd(self, *command):
        return subprocess.run([KAMCMD, '-s', 'unix:' + self.ctl_socket] + list(command), capture_output=True,
                              text=True, timeout=10, check=False)

    def log_tail(self, lines=60):
        try:
            with open(self.log_file, errors='replace') as handle:
                return '\n'.join(handle.read().splitlines()[-lines:])
        except OSError:
            return ''

    def stop(self):
        """SIGTERM to the main process (by pid file), SIGKILL to what is left after 10 s."""
        pid = self.pid()
        if not pid:
            return
        children = [int(c) for c in subprocess.run(['pgrep', '-P', str(pid)], capture_output=True, text=True,
                                                   check=False).stdout.split()]
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return
        try:
            if self.process is not None:
                self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for victim in [pid] + children:
            try:
                os.kill(victim, signal.SIGKILL)
            except OSError:
                pass


def changed_lines(text, shipped=SHIPPED):
    """The lines of ``text`` that are not in the shipped file (for the tests and the docs)."""
    with open(shipped) as handle:
        original = set(handle.read().splitlines())
    return [line for line in text.splitlines() if line not in original and not re.match(r'^alias="', line)]
