# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane demo: place real SIP traffic against the demo PBX and report what happened.

usage: python3 demo_calls.py PLAN.json          (written by playbooks/demo.yml)
       python3 demo_calls.py --stop RUN_DIR     (playbooks/demo-stop.yml: end leftover phones)

0. stops what an earlier run may have left running (by the pid files in RUN_DIR/pids) and
   removes every binding of the demo accounts (REGISTER with Contact: *);
1. starts the phones: one sipp UAS per SIP account (playbooks/demo/scenarios/phone.xml.j2,
   rendered per phone: rings, answers after its delay unless cancelled) and baresip for the
   accounts whose behaviour should be a real client's (registers itself, auto-answers);
   the carrier stand-in is a sipp UAS on 127.0.0.2:5080;
2. registers the sipp accounts (register.xml, digest auth) and checks with kamcmd that Kamailio
   holds a contact for every account;
3. places the calls one after the other (call_from_account.xml with digest auth,
   call_from_carrier.xml from the trunk address), each a bounded sipp run;
4. stops every process it started, removes the bindings again, reads the message traces and compares each
   call with its expectation: the final code the caller got, which devices received the
   INVITE, who answered, the caller ID the callee saw, the Request-URI at the carrier.

Prints one JSON document: {"ok": bool, "summary": [lines], "registrations": [...], "calls":
[...]}. Exit status 0 when the traffic could be run at all (the playbook asserts "ok"), 3 on
a setup error (a port taken, a phone that does not start), with the error in the JSON.
Everything is bounded in time; traces stay in RUN_DIR/last-run for a look afterwards.
Standard library and the test lab's SIP wire (tests/lab) only.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import wire  # noqa: E402  pylint: disable=wrong-import-position
from lab.sipp import parse_messages  # noqa: E402  pylint: disable=wrong-import-position

SIPP_BUFF = '4194304'
CALL_TIMEOUT = 30  # seconds one call may take, sipp's own -timeout
PHONE_LIFETIME = 240  # seconds: the phones' own upper bound (sipp -timeout, baresip -t)
REGISTER_WAIT = 10
PID_DIR = 'pids'
TRACE_DIR = 'last-run'
ANSI = re.compile(r'\x1b\[[0-9;]*m')


class SetupError(Exception):
    pass


# ------------------------------------------------------------------------------ SIP messages
class Message(wire.Message):
    """One SIP message as a phone saw it: direction 'received' or 'sent'."""

    def __init__(self, direction, text):
        super(Message, self).__init__(text)
        self.direction = direction


def read_sipp_trace(path):
    """Messages of a sipp -trace_msg file, in order (direction 'received' or 'sent')."""
    try:
        with open(path, errors='replace') as handle:
            return parse_messages(handle.read())
    except OSError:
        return []


def read_baresip_trace(path, own_address):
    """Messages of a baresip -s log (libre prints '#', 'UDP src -> dst', the message)."""
    try:
        with open(path, errors='replace') as handle:
            text = handle.read()
    except OSError:
        return []
    messages = []
    pattern = re.compile(r'\x1b\[[0-9;]*m#\r?\n(?:UDP|TCP|TLS) (\S+) -> (\S+)\r?\n(.*?)\x1b\[;?m', re.S)
    for match in pattern.finditer(text):
        messages.append(Message('received' if match.group(2) == own_address else 'sent', match.group(3)))
    return messages


def identity_of(invite):
    """The caller as the called device sees it: P-Asserted-Identity, else From (without tag)."""
    pai = invite.header('p-asserted-identity')
    if pai:
        return pai
    return re.sub(r';tag=[^;]*', '', invite.header('from') or '')


# ------------------------------------------------------------------------------ processes
def port_bound(address, port):
    """Whether some process has the UDP port bound on address (or on 0.0.0.0)."""
    wanted = {'%s:%04X' % (''.join('%02X' % int(o) for o in reversed(address.split('.'))), port),
              '00000000:%04X' % port}
    try:
        with open('/proc/net/udp') as handle:
            return any(line.split()[1] in wanted for line in list(handle)[1:])
    except OSError:
        return False


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
        return ''


def stop_pid(pid, grace=5.0):
    """SIGTERM, then SIGKILL after the grace period. Returns True when it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return True
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            if not pid_alive(pid):
                return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (OSError, ChildProcessError):
        pass
    return not pid_alive(pid)


def stop_leftovers(run_dir):
    """End phones a previous run left behind (by the pid files it wrote), only if the pid still
    runs sipp or baresip on a file of this run directory. Returns what was stopped."""
    stopped = []
    pid_dir = os.path.join(run_dir, PID_DIR)
    if not os.path.isdir(pid_dir):
        return stopped
    for name in sorted(os.listdir(pid_dir)):
        path = os.path.join(pid_dir, name)
        try:
            with open(path) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            pid = None
        if pid and pid_alive(pid):
            line = cmdline(pid)
            if re.search(r'(^|/)(sipp|baresip) ', line) and run_dir in line:
                stop_pid(pid, grace=3.0)
                stopped.append('%s (pid %d)' % (name[:-4] if name.endswith('.pid') else name, pid))
        try:
            os.unlink(path)
        except OSError:
            pass  # a running demo removed it meanwhile
    return stopped


class Process(object):
    """A process of the demo (a phone, or a sipp client while it runs) with a pid file in RUN_DIR/pids."""

    def __init__(self, name, argv, run_dir, log):
        self.name = name
        self.log = log
        self.pid_file = os.path.join(run_dir, PID_DIR, name + '.pid')
        with open(log, 'ab') as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        with open(self.pid_file, 'w') as handle:
            handle.write('%d\n' % self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, grace=5.0):
        if self.alive():
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        try:
            os.unlink(self.pid_file)
        except OSError:
            pass


# ------------------------------------------------------------------------------ the run
class DemoRun(object):
    def __init__(self, plan):
        self.plan = plan
        self.run_dir = plan['run_dir']
        self.traces = os.path.join(self.run_dir, TRACE_DIR)
        self.proxy = '%s:%d' % (plan['proxy']['address'], plan['proxy']['port'])
        self.domain = plan['domain']
        self.sipp = plan.get('sipp') or shutil.which('sipp') or '/usr/bin/sipp'
        self.baresip = plan.get('baresip') or shutil.which('baresip') or '/usr/bin/baresip'
        self.processes = []
        self.accounts = {}
        for ext in plan['extensions']:
            for acc in ext['sip_accounts']:
                self.accounts[acc['username']] = dict(acc, extension=ext['internal_number'], person=ext['name'])
        # Rendered by the playbook: RUN_DIR/phone-NAME.xml (sipp), RUN_DIR/baresip-NAME/ (baresip).
        self.phones = {}
        for phone in plan['phones']:
            phone = dict(phone, address=phone.get('address', plan['phone_address']))
            phone.setdefault('scenario', os.path.join(self.run_dir, 'phone-%s.xml' % phone['name']))
            phone.setdefault('config_dir', os.path.join(self.run_dir, 'baresip-%s' % phone['name']))
            self.phones[phone['name']] = phone
        self.carrier = dict(plan['carrier'])
        self.carrier.setdefault('scenario', os.path.join(self.run_dir, 'phone-%s.xml' % self.carrier['name']))
        self.endpoints = dict(self.phones, **{self.carrier['name']: self.carrier})
        self.registrations = []
        self.results = []
        self.notes = []

    # --- helpers ---------------------------------------------------------------------
    def _sipp(self, scenario, local, name, extra=(), timeout=CALL_TIMEOUT):
        return [self.sipp, self.proxy, '-sf', scenario, '-i', local['address'], '-p', str(local['port']),
                '-nostdin', '-buff_size', SIPP_BUFF, '-timeout', '%ds' % timeout,
                '-trace_msg', '-message_file', os.path.join(self.traces, name + '.msg'),
                '-trace_err', '-error_file', os.path.join(self.traces, name + '.err')] + list(extra)

    def _run(self, argv, name, timeout):
        """Run sipp to completion, bounded; returns its exit status (-9 after a kill). It has a
        pid file meanwhile, so that a later run or demo-stop can end it if this driver dies."""
        client = Process('client', argv, self.run_dir, os.path.join(self.traces, name + '.out'))
        try:
            return client.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return -9
        finally:
            client.stop()

    def _csv(self, name, rows):
        path = os.path.join(self.traces, name + '.csv')
        self._write(path, 'SEQUENTIAL\n' + ''.join(';'.join(str(v) for v in row) + '\n' for row in rows))
        return path

    @staticmethod
    def _write(path, content):
        """Write a file only readable by its owner (phone configurations carry passwords)."""
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(content if content.endswith('\n') else content + '\n')

    def _auth(self, username):
        return '[authentication username=%s password=%s]' % (username, self.accounts[username]['password'])

    # --- 1. phones -------------------------------------------------------------------
    def prepare(self):
        leftovers = stop_leftovers(self.run_dir)
        if leftovers:
            self.notes.append('stopped what an earlier run left running: %s' % ', '.join(leftovers))
        shutil.rmtree(self.traces, ignore_errors=True)
        os.makedirs(self.traces, mode=0o700)
        for relative, content in sorted(self.plan.get('files', {}).items()):
            self._write(os.path.join(self.run_dir, relative), content)
        os.makedirs(os.path.join(self.run_dir, PID_DIR), mode=0o700, exist_ok=True)
        clients = [dict(self.plan[key], name=key) for key in ('registrar_client', 'account_client', 'carrier_client')]
        taken = [e for e in list(self.endpoints.values()) + clients if port_bound(e['address'], e['port'])]
        if taken:
            raise SetupError('UDP port already in use: %s; another program holds it (stop it, or pick other '
                             'ports in playbooks/demo/calls.yml)' % ', '.join(
                                 '%s:%d (%s)' % (e['address'], e['port'], e['name']) for e in taken))

    def start_phones(self):
        for endpoint in list(self.phones.values()) + [self.carrier]:
            name = endpoint['name']
            if endpoint.get('agent') == 'baresip':
                argv = [self.baresip, '-f', endpoint['config_dir'], '-s', '-t', str(PHONE_LIFETIME)]
            else:
                argv = self._sipp(endpoint['scenario'], endpoint, name, timeout=PHONE_LIFETIME)
                argv[1:2] = []  # a UAS has no remote host
            self.processes.append(Process(name, argv, self.run_dir, os.path.join(self.traces, name + '.log')))
        deadline = time.monotonic() + 10
        waiting = list(self.processes)
        while waiting and time.monotonic() < deadline:
            for proc in list(waiting):
                endpoint = self.endpoints[proc.name]
                if not proc.alive():
                    raise SetupError('%s exited at start; see %s' % (proc.name, proc.log))
                if port_bound(endpoint['address'], endpoint['port']):
                    waiting.remove(proc)
            time.sleep(0.05)
        if waiting:
            raise SetupError('not listening after 10 s: %s' % ', '.join(p.name for p in waiting))

    # --- 2. registrations ------------------------------------------------------------
    def _register(self, name, phones, expires):
        """REGISTER the accounts of these phones (digest auth) with their Contact, or with
        expires 0 remove every binding they have (Contact: *)."""
        if not phones:
            return 0
        rows = []
        for phone in phones:
            contact = '<sip:%s@%s:%d>' % (phone['name'], phone['address'], phone['port']) if expires else '*'
            rows.append((phone['name'], self.domain, self._auth(phone['name']), contact, expires))
        argv = self._sipp(self.plan['scenarios']['register'], self.plan['registrar_client'], name,
                          extra=['-inf', self._csv(name, rows), '-m', str(len(rows)), '-timeout_error'], timeout=15)
        return self._run(argv, name, timeout=30)

    def clear_registrations(self, name):
        """Remove every binding of every demo account (an earlier run may have left some)."""
        rc = self._register(name, list(self.phones.values()), 0)
        if rc != 0:
            self.notes.append('removing the registrations (%s) failed: sipp exited with %s' % (name, rc))

    def contacts(self):
        """AoR -> [(contact, user agent)] as Kamailio's usrloc holds them (kamcmd ul.dump)."""
        proc = subprocess.run([self.plan['kamcmd'], '-s', 'unix:' + self.plan['ctl_socket'], 'ul.dump'],
                              capture_output=True, text=True, timeout=10, check=False)
        result, aor, contact = {}, None, None
        for line in proc.stdout.splitlines():
            line = line.strip()
            if line.startswith('AoR: '):
                aor = line[5:]
                result.setdefault(aor, [])
            elif line.startswith('Address: ') and aor:
                contact = line[9:]
            elif line.startswith('User-Agent: ') and aor and contact:
                result[aor].append((contact, line[12:]))
                contact = None
        return result

    @staticmethod
    def _at_port(contact, phone):
        return re.search(r'@%s:%d(?![0-9])' % (re.escape(phone['address']), phone['port']), contact) is not None

    def register(self):
        """REGISTER every sipp phone (baresip registers itself), then wait until Kamailio holds
        a contact for every phone."""
        sipp_phones = [p for p in self.phones.values() if p.get('agent') != 'baresip']
        rc = self._register('register', sipp_phones, 300)
        if rc != 0:  # the router picks up a fresh directory within half a second: one retry
            time.sleep(1.0)
            rc = self._register('register-retry', sipp_phones, 300)
        expected = dict(('%s@%s' % (n, self.domain), p) for n, p in self.phones.items())
        deadline = time.monotonic() + REGISTER_WAIT
        while True:
            held = self.contacts()
            missing = [aor for aor, phone in expected.items()
                       if not any(self._at_port(contact, phone) for contact, _agent in held.get(aor, []))]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for aor, phone in sorted(expected.items(), key=lambda item: item[1]['port']):
            mine = [(c, ua) for c, ua in held.get(aor, []) if self._at_port(c, phone)]
            acc = self.accounts.get(phone['name'], {})
            self.registrations.append(dict(
                account=phone['name'], registered=bool(mine), contact=mine[0][0] if mine else None,
                user_agent=mine[0][1] if mine else None, agent=phone.get('agent', 'sipp'),
                kind=acc.get('kind'), extension=acc.get('extension'), person=acc.get('person'),
                device=phone.get('device')))
        if rc != 0:
            self.notes.append('sipp REGISTER exited with %s (traces: %s/register*.msg)' % (rc, self.traces))

    # --- 3. calls --------------------------------------------------------------------
    def place_calls(self):
        for number, call in enumerate(self.plan['calls'], 1):
            name = 'call%d-%s' % (number, call['name'])
            cid = 'demo-%s-%%u-%%p@%%s' % call['name']
            if call['from'] == self.carrier['name']:
                csv = self._csv(name, [(call['dial'], call.get('caller_number', 'anonymous'))])
                scenario, local = self.plan['scenarios']['call_from_carrier'], self.plan['carrier_client']
            else:
                acc = self.accounts[call['from']]
                csv = self._csv(name, [(call['dial'], self.domain, call['from'], self._auth(call['from']),
                                        acc['person'])])
                scenario, local = self.plan['scenarios']['call_from_account'], self.plan['account_client']
            extra = ['-inf', csv, '-m', '1', '-timeout_error', '-cid_str', cid]
            argv = self._sipp(scenario, local, name, extra=extra)
            started = time.monotonic()
            rc = self._run(argv, name, timeout=CALL_TIMEOUT + 15)
            self.results.append(dict(call=call, trace=name, rc=rc, seconds=round(time.monotonic() - started, 1)))
            time.sleep(0.5)  # let cancelled branches finish (487, ACK) before the next call

    # --- 4. clean up, then read the traces --------------------------------------------
    def finish(self):
        """Stop every phone (baresip unregisters itself), then remove the sipp phones' bindings."""
        for proc in self.processes:
            proc.stop()
        self.clear_registrations('unregister')

    def _messages(self, name):
        endpoint = self.endpoints[name]
        if endpoint.get('agent') == 'baresip':
            return read_baresip_trace(os.path.join(self.traces, name + '.log'),
                                      '%s:%d' % (endpoint['address'], endpoint['port']))
        return read_sipp_trace(os.path.join(self.traces, name + '.msg'))

    def analyse(self):
        seen = dict((name, self._messages(name)) for name in self.endpoints)
        for result in self.results:
            call, expect = result['call'], result['call'].get('expect', {})
            caller = read_sipp_trace(os.path.join(self.traces, result['trace'] + '.msg'))
            invites = [m for m in caller if m.direction == 'sent' and m.method == 'INVITE']
            call_id = invites[-1].call_id if invites else None
            last_cseq = invites[-1].cseq if invites else None
            replies = [m for m in caller if m.direction == 'received' and m.code is not None and m.cseq[1] == 'INVITE']
            flow = [m.code for m in replies]
            finals = [m for m in replies if m.code >= 200 and m.cseq == last_cseq]
            final = finals[0] if finals else None
            answered = None
            if final is not None and final.code == 200:
                contact = final.header('contact') or ''
                for name, endpoint in self.endpoints.items():
                    if re.search(r'@?%s:%d\b' % (re.escape(endpoint['address']), endpoint['port']), contact):
                        answered = name
            devices = []
            for name, messages in seen.items():
                got = [m for m in messages if m.direction == 'received' and m.method == 'INVITE' and m.call_id == call_id]
                if not got:
                    continue
                sent = [m.code for m in messages if m.direction == 'sent' and m.code is not None
                        and m.call_id == call_id and m.cseq[1] == 'INVITE' and m.code >= 200]
                devices.append(dict(device=name, answer=sent[0] if sent else None, caller_id=identity_of(got[0]),
                                    ruri=got[0].uri, diversion=got[0].header('diversion')))
            devices.sort(key=lambda d: list(self.endpoints).index(d['device']))
            result.update(call_id=call_id, flow=flow, final=final.code if final else None,
                          reason=final.reason if final else None, answered_by=answered, devices=devices)
            result['problems'] = self._check(expect, result)
            result['ok'] = not result['problems']

    @staticmethod
    def _check(expect, result):
        problems = []
        if result['final'] != expect.get('final'):
            problems.append('the caller got %s, expected %s' % (result['final'], expect.get('final')))
        rang = sorted(d['device'] for d in result['devices'])
        if 'rang' in expect and rang != sorted(expect['rang']):
            problems.append('rang %s, expected %s' % (', '.join(rang) or 'nothing', ', '.join(sorted(expect['rang'])) or 'nothing'))
        if expect.get('answered_by') and result['answered_by'] != expect['answered_by']:
            problems.append('answered by %s, expected %s' % (result['answered_by'], expect['answered_by']))
        for device in result['devices']:
            if expect.get('caller_id') and expect['caller_id'] not in (device['caller_id'] or ''):
                problems.append('%s saw caller ID %s, expected %s' % (device['device'], device['caller_id'], expect['caller_id']))
            if expect.get('ruri') and device['device'] == result['answered_by'] and device['ruri'] != expect['ruri']:
                problems.append('%s received Request-URI %s, expected %s' % (device['device'], device['ruri'], expect['ruri']))
            if device['device'] == result['answered_by']:
                if device['answer'] != 200:
                    problems.append('%s answered with %s' % (device['device'], device['answer']))
            elif result['final'] == 200 and device['answer'] != 487:
                problems.append('%s was not cancelled after the answer (it sent %s)' % (device['device'], device['answer']))
        return problems

    # --- the report ------------------------------------------------------------------
    def describe(self, name):
        """anna.desk (Anna Schmidt, 11) / the carrier stand-in."""
        if name == self.carrier['name']:
            return 'the carrier stand-in'
        acc = self.accounts.get(name, {})
        return '%s (%s, %s)' % (name, acc.get('person', '?'), acc.get('extension', '?'))

    @staticmethod
    def _agent(user_agent):
        if not user_agent:
            return '?'
        if 'baresip' in user_agent:
            return ' '.join(user_agent.split()[:2])
        return 'sipp' if 'sipp' in user_agent else user_agent

    def summary(self):
        lines = []
        plan = self.plan
        lines.append('Tenant %s (%s), SIP domain %s, Kamailio at %s'
                     % (plan.get('tenant', '?'), plan.get('display_name', ''), self.domain, self.proxy))
        registered = [r for r in self.registrations if r['registered']]
        lines.append('Registrations: %d of %d SIP accounts hold a contact in Kamailio (kamcmd ul.dump)'
                     % (len(registered), len(self.registrations)))
        for reg in self.registrations:
            where = re.sub(r'^sip:[^@]*@', '', reg['contact'] or '')
            lines.append('  %-11s %-3s %-14s %-11s %s' % (
                reg['account'], reg['extension'] or '?', reg['person'] or '?', reg['kind'] or '?',
                ('%s at %s' % (self._agent(reg['user_agent']), where)) if reg['registered'] else 'NOT REGISTERED'))
        for number, result in enumerate(self.results, 1):
            call = result['call']
            lines.append('Call %d, %s: %s' % (number, call['name'], call['title']))
            if call['from'] == self.carrier['name']:
                who = 'The carrier (%s, calling number %s)' % (
                    self.plan['carrier_client']['address'], call.get('caller_number', 'anonymous'))
            else:
                who = self.describe(call['from'])
            lines.append('  %s dialled %s; replies %s; final %s %s: %s' % (
                who, call['dial'], ' '.join(str(c) for c in result['flow']) or 'none',
                result['final'], result['reason'] or '', 'as expected' if result['ok'] else 'NOT AS EXPECTED'))
            states = []
            for device in result['devices']:
                state = {200: 'answered 200', 487: 'cancelled 487'}.get(device['answer'], 'sent %s' % device['answer'])
                states.append('%s (%s)' % (device['device'], state))
            lines.append('  Rang: %s' % (', '.join(states) or 'no device'))
            ids = sorted(set(d['caller_id'] for d in result['devices']))
            if ids:
                lines.append('  Caller ID seen: %s' % ' / '.join(ids))
            for device in result['devices']:
                if device['device'] == self.carrier['name']:
                    lines.append('  Request-URI at the carrier: %s' % device['ruri'])
            for problem in result['problems']:
                lines.append('  PROBLEM: %s' % problem)
        ok = sum(1 for r in self.results if r['ok'])
        lines.append('Result: %d of %d calls as expected, %d of %d accounts registered; traces in %s'
                     % (ok, len(self.results), len(registered), len(self.registrations), self.traces))
        for note in self.notes:
            lines.append('Note: %s' % note)
        return lines

    def report(self):
        ok = bool(self.results) and all(r['ok'] for r in self.results) and all(r['registered'] for r in self.registrations)
        calls = []
        for result in self.results:
            entry = dict((k, v) for k, v in result.items() if k != 'call')
            entry.update(name=result['call']['name'], title=result['call']['title'], dial=result['call']['dial'],
                         caller=result['call']['from'], expect=result['call'].get('expect', {}))
            calls.append(entry)
        return dict(ok=ok, summary=self.summary(), registrations=self.registrations, calls=calls,
                    traces=self.traces, notes=self.notes)


def _terminate(signum, _frame):
    """SIGTERM (a timeout of the playbook) ends the run through its cleanup."""
    raise SystemExit(128 + signum)


def main(argv):
    signal.signal(signal.SIGTERM, _terminate)
    if len(argv) == 3 and argv[1] == '--stop':
        stopped = stop_leftovers(argv[2])
        print(json.dumps(dict(stopped=stopped, changed=bool(stopped))))
        return 0
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1]) as handle:
        plan = json.load(handle)
    run = DemoRun(plan)
    try:
        run.prepare()
        run.clear_registrations('clear')
        try:
            run.start_phones()
            run.register()
            if all(reg['registered'] for reg in run.registrations):
                time.sleep(0.3)
                run.place_calls()
            else:
                run.notes.append('calls skipped: not every account registered (is Kamailio running? see '
                                 'its log, kamailio_log_file)')
        finally:
            run.finish()
    except SetupError as exc:
        print(json.dumps(dict(ok=False, error=str(exc), summary=['Setup failed: %s' % exc], notes=run.notes)))
        return 3
    run.analyse()
    print(json.dumps(run.report(), indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
