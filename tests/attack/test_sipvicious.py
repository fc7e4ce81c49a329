# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIPVicious 0.3.3 (Debian's sipvicious) against the deployed server: svmap, svwar, svcrack.

How the tools decide (read from /usr/share/sipvicious/sipvicious/*.py):
- svmap sends one OPTIONS per target and lists every address that answers, with the
  User-Agent or Server header.
- svwar first asks for a random 32-bit username and takes the first line of that reply as
  "the answer for a user that does not exist". An extension "exists" when its reply's first
  line differs from that one (a 401/403/407 means "requires authentication", a 200 "no
  authentication"). Without --force it gives up at once when the random user is already
  challenged ("SIP server replied with an authentication request for an unknown extension");
  with --force, a reply equal to the unknown user's is not in its list of known answers, so it
  logs "We got an unknown response" and stops after the first name. Either way: when real and
  unknown usernames get the same answer, svwar finds nothing.
- svcrack sends a REGISTER without credentials, answers each 401/407 challenge with the next
  password of its dictionary (same Call-ID, the challenge's nonce) and sends another
  unauthenticated REGISTER whenever no challenge is pending (every -t seconds). A 200 is
  "cracked"; it stops after --maximumtime seconds without any reply. 0.3.3 adds "qop=auth"
  even when the challenge offers no qop and then omits nc/cnonce, so against a server without
  qop every answer is malformed and it can never succeed.
svwar and svcrack ignore -b (sipvicious_bound.py binds them to the attacker's address).
"""

import os
import re
import threading
import time

import pytest

from attack_harness import ACME, BAN_FAILURES, BAN_TIME, DICTIONARIES, banned, ban_lines, interesting_lines, \
    missing_tools, note, shown_command, sipvicious
from lab.net import free_port, wait_for
from lab.sipp import password, run_sipp, users_csv

USERS = os.path.join(DICTIONARIES, 'users.txt')
PASSWORDS = os.path.join(DICTIONARIES, 'passwords.txt')
REAL_USERS = ('anna.desk', 'bert.desk')  # accounts of tests/lab/playbooks/tenants.yml at the top of users.txt


@pytest.fixture(autouse=True)
def tools():
    reason = missing_tools()
    if reason:
        pytest.skip(reason)


def _note(title, run):
    note(title, ['$ ' + shown_command(run), 'exit %s after %.1f s' % (run.rc, run.seconds)]
         + interesting_lines(run.stdout) + interesting_lines(run.stderr))


def test_svmap_finds_the_server(kamailio, attacker):
    run = sipvicious('svmap', attacker, ['-p', str(kamailio.port), kamailio.address], timeout=60)
    _note('svmap', run)
    assert run.rc == 0, run
    # svmap's table: | 127.0.0.x:port | <User-Agent or Server header> |
    row = [line for line in run.stdout.splitlines() if '%s:%d' % kamailio.target in line]
    assert row, run


SVWAR_RUNS = {
    # name: (arguments, what svwar's log must show, the first username it probes after its random one)
    # Without --force svwar stops as soon as its random username is challenged.
    'register-dictionary': (['-m', 'REGISTER', '-d', USERS, '--domain', ACME],
                            'SIP server replied with an authentication request for an unknown extension', None),
    'register-dictionary-force': (['-m', 'REGISTER', '-d', USERS, '--domain', ACME, '--force'], 'SIP/2.0 401',
                                  'anna.desk'),
    'invite-dictionary-force': (['-m', 'INVITE', '-d', USERS, '--domain', ACME, '--force'], 'SIP/2.0 407',
                                'anna.desk'),
    # Internal numbers 10-30: acme has 10, 11, 12, 14 and 21-29.
    'invite-range-force': (['-m', 'INVITE', '-e', '10-30', '--domain', ACME, '--force'], 'SIP/2.0 407', '10'),
    # No --domain: the domain is Kamailio's address, which is no tenant's.
    'register-unknown-domain-force': (['-m', 'REGISTER', '-d', USERS, '--force'], 'SIP/2.0 403', 'anna.desk'),
}


@pytest.mark.parametrize('name', sorted(SVWAR_RUNS))
def test_svwar_finds_no_extension(kamailio, attacker, name):
    args, expected, first = SVWAR_RUNS[name]
    run = sipvicious('svwar', attacker, args + ['-t', '0.05', '--maximumtime', '3', '-vv', '-p', str(kamailio.port),
                                                kamailio.address], timeout=60)
    probed = re.findall(r'sending request for (\S+)', run.stderr)
    _note('svwar %s (probed: %s)' % (name, ', '.join(probed) or 'only its random username'), run)
    assert run.rc == 0, run
    assert 'No server response' not in run.stderr, run
    # svwar prints a table "Extension | Authentication" for every extension it believes exists.
    assert 'Extension' not in run.stdout and 'found nothing' in run.stderr, run
    # Its random (unknown) username got the same answer as the real ones.
    assert expected in run.stderr, run
    if first:  # a real account was compared with the unknown one
        assert probed and probed[0] == first, run


class RegisteringPhone(threading.Thread):
    """bert.desk's real phone on its own 127.0.0.x: REGISTER with digest (sipp register_ok.xml),
    again and again, until stopped. Each run is recorded as (start, end, sipp exit code)."""

    def __init__(self, kamailio, address, user='bert.desk', pause=0.3):
        super(RegisteringPhone, self).__init__(daemon=True)
        self.kamailio = kamailio
        self.address = address
        self.port = free_port(address, tcp=False)
        self.inf = users_csv(os.path.join(kamailio.workdir, 'attack-phone-%s.csv' % user),
                             [(user, ACME, password(user))])
        self.pause = pause
        self.runs = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            start = time.monotonic()
            result = run_sipp('register_ok.xml', self.kamailio.target, self.address, self.kamailio.workdir,
                              inf=self.inf, local_port=self.port, timeout=10)
            self.runs.append((start, time.monotonic(), result.rc))
            self.stopping.wait(self.pause)

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def test_svcrack_does_not_find_the_password_and_its_address_is_banned_while_the_phone_registers(kamailio, attacker):
    with open(PASSWORDS) as handle:
        candidates = [line.strip() for line in handle if line.strip()]
    assert candidates.index(password('bert.desk')) >= 30  # the right one comes late
    phone = RegisteringPhone(kamailio, kamailio.pool.take())
    phone.start()
    try:
        assert wait_for(lambda: phone.runs, 15), 'the phone never finished a registration'
        attack_start = time.monotonic()
        run = sipvicious('svcrack', attacker, ['-u', 'bert.desk', '--domain', ACME, '-d', PASSWORDS, '-t', '0.1',
                                               '--maximumtime', '3', '-vv', '-p', str(kamailio.port),
                                               kamailio.address], timeout=150)
        attack_end = time.monotonic()
        # The phone goes on registering after the attack, too.
        wait_for(lambda: len([r for r in phone.runs if r[0] > attack_end]) >= 3, 20)
    finally:
        phone.stop()
        kamailio.kamcmd('ul.rm', 'location', 'bert.desk@' + ACME)
    tried = re.findall(r'trying (\S+)', run.stderr)
    addresses, dump = banned(kamailio)
    lines = ban_lines(kamailio, attacker)
    during = [r for r in phone.runs if r[1] > attack_start and r[0] < attack_end]
    after = [r for r in phone.runs if r[0] > attack_end]
    _note('svcrack (tried %d of %d passwords: %s)' % (len(tried), len(candidates), ' '.join(tried)), run)
    note('ban after svcrack', ['attacker %s in vxban: %s' % (attacker, addresses is not None and attacker in addresses),
                               'log: %s' % ('; '.join(m.group(0) for m in lines) or 'no ban line'),
                               'phone %s: %d registrations during the attack, %d after, failed: %d'
                               % (phone.address, len(during), len(after), len([r for r in phone.runs if r[2]]))])
    explain = '%r\ntried: %s\nvxban: %s\nlog:\n%s' % (run, tried, dump, kamailio.log_tail(30))
    assert run.rc == 0, explain
    assert 'The password for' not in run.stderr and password('bert.desk') not in run.stdout, explain
    assert password('bert.desk') not in tried, explain
    # Banned after the configured number of failures: svcrack got no new challenge after that.
    assert len(tried) <= BAN_FAILURES + 1, explain
    assert addresses is not None, 'no ban table: %s' % dump
    assert attacker in addresses, explain
    assert len(lines) == 1 and lines[0].group(2) == str(BAN_TIME), explain
    # The account's real phone, on another address, registered throughout and afterwards.
    assert all(run[2] == 0 for run in phone.runs), phone.runs
    assert during and len(after) >= 3, (phone.runs, attack_start, attack_end)
