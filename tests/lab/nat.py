# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An office behind a NAT router, built from network namespaces: the one place for this
plumbing, used by the NAT and media tests (tests/sip/test_nat_media.py) and by `make demo`'s
phone behind NAT (playbooks/demo/nat_phone.py; from tests/: `python3 -m lab.nat up|down NAME ...`).

    root namespace ("internet")            router netns                 office netns
    198.18.N.1 Kamailio, rtpengine  --veth--  wan 198.18.N.2  masquerade  lan 10.77.N.1 --veth-- 10.77.N.10, .11
    198.18.N.3 trunk stand-in                 (nft, random ports)                                 baresip phones
    198.18.N.4 webphone (public)

198.18.0.0/15 is not private to nathelper (only RFC 1918 and 100.64/10 are), 10.77.N.0/24 is:
a phone's Contact names a private address, its requests arrive from the router's public one,
from a port the router picked at random. The router's UDP conntrack timeouts are short
(``udp_timeout`` s), so that a binding nobody keeps open closes within a test.

Phones are baresip (Debian's baresip-core) in the office namespace: a config folder each,
auto-answer, a 440 Hz tone (WAV) as the microphone, PCMU only, RTP ports of their own. nft counters
in the office namespace count the RTP each phone sends to and gets from the relay's port range.

The tests take random names and a random 198.18.N.0/24 (several labs at once); the demo a
fixed name and 198.19.77.0/24, so that its Kamailio and rtpengine can listen there.

Needs root, ip (iproute2), nft (nftables), conntrack and baresip. Standard library and the lab
only (the demo runs it without the test venv's packages).
"""

import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import wave

from lab.net import UdpWorker

NFT = shutil.which('nft') or '/usr/sbin/nft'
CONNTRACK = shutil.which('conntrack') or '/usr/sbin/conntrack'
BARESIP = shutil.which('baresip') or '/usr/bin/baresip'
IP = shutil.which('ip') or '/usr/sbin/ip'
BARESIP_MODULES = '/usr/lib/baresip/modules'
PHONE_HOSTS = (10, 11, 12)  # the phones' office addresses: 10.77.N.10, .11, .12


def missing_prerequisites():
    if os.geteuid() != 0:
        return 'needs root (network namespaces)'
    for path in (NFT, CONNTRACK, BARESIP, IP, '/usr/bin/rtpengine'):
        if not os.path.exists(path):
            return '%s is missing (make deps installs it)' % path
    return None


def _run(cmd, check=True, timeout=20, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(cmd), proc.returncode, proc.stderr.strip()))
    return proc


class NatLab(object):
    """The namespaces, links, addresses and the router's NAT; ``down()`` removes them all."""

    def __init__(self, udp_timeout=8, rtp_ports=(0, 0), name=None, public_net=None, office_net=None):
        """name: the host's veth (the namespaces are NAME-r and NAME-o), else a random one;
        public_net/office_net: the first three octets ('198.19.77'), else random 198.18.N and
        10.77.N. udp_timeout: the router's UDP binding timeout in s (None: the kernel's)."""
        tag = '%04x' % random.randint(0, 0xffff)
        self.octet = random.randint(1, 254)
        self.router_ns = name + '-r' if name else 'vxr' + tag
        self.office_ns = name + '-o' if name else 'vxo' + tag
        self.host_link = name or 'vxh' + tag
        self.public_net = public_net + '.' if public_net else '198.18.%d.' % self.octet
        self.kamailio = self.public_net + '1'
        self.router_wan = self.public_net + '2'
        self.trunk = self.public_net + '3'
        self.webphone = self.public_net + '4'
        self.office_net = office_net + '.' if office_net else '10.77.%d.' % self.octet
        self.gateway = self.office_net + '1'
        self.udp_timeout = udp_timeout
        self.relay_ports = rtp_ports  # the relay's port range, for the RTP counters
        self.phones = []

    # ---------------------------------------------------------------- the network
    def up(self):
        ip = IP
        steps = [
            [ip, 'netns', 'add', self.router_ns],
            [ip, 'netns', 'add', self.office_ns],
            [ip, 'link', 'add', self.host_link, 'type', 'veth', 'peer', 'name', 'wan', 'netns', self.router_ns],
            [ip, 'link', 'add', 'lan', 'netns', self.router_ns, 'type', 'veth', 'peer', 'name', 'eth0',
             'netns', self.office_ns],
            [ip, 'addr', 'add', self.kamailio + '/24', 'dev', self.host_link],
            [ip, 'addr', 'add', self.trunk + '/24', 'dev', self.host_link],
            [ip, 'addr', 'add', self.webphone + '/24', 'dev', self.host_link],
            [ip, 'link', 'set', self.host_link, 'up'],
            [ip, '-n', self.router_ns, 'addr', 'add', self.router_wan + '/24', 'dev', 'wan'],
            [ip, '-n', self.router_ns, 'addr', 'add', self.gateway + '/24', 'dev', 'lan'],
            [ip, '-n', self.office_ns, 'addr', 'add', self.office_net + '10/24', 'dev', 'eth0'],
            [ip, '-n', self.office_ns, 'addr', 'add', self.office_net + '11/24', 'dev', 'eth0'],
            [ip, '-n', self.office_ns, 'addr', 'add', self.office_net + '12/24', 'dev', 'eth0'],
        ]
        for ns, links in ((self.router_ns, ('lo', 'wan', 'lan')), (self.office_ns, ('lo', 'eth0'))):
            steps += [[ip, '-n', ns, 'link', 'set', link, 'up'] for link in links]
        steps += [[ip, '-n', self.office_ns, 'route', 'add', 'default', 'via', self.gateway],
                  self.in_router(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])]
        for step in steps:
            _run(step)
        # Port-restricted NAT with random public ports, as home routers and carrier NAT do.
        self.nft(self.router_ns, 'table ip nat {\n chain post {\n  type nat hook postrouting priority 100;\n'
                                 '  oifname "wan" masquerade random\n }\n}\n')
        if self.udp_timeout:
            _run(self.in_router(['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_udp_timeout=%d' % self.udp_timeout,
                                 'net.netfilter.nf_conntrack_udp_timeout_stream=%d' % self.udp_timeout]))
        low, high = self.relay_ports
        # RTP counters per phone, both ways, between its RTP ports and the relay's port range
        # (baresip sends RTP from the interface's first address whatever its SIP address is).
        counters, rules_out, rules_in = '', '', ''
        for host in PHONE_HOSTS:
            first = self.rtp_port(host)
            counters += ' counter rtp_out_%d {}\n counter rtp_in_%d {}\n' % (host, host)
            rules_out += '  ip daddr %s udp sport %d-%d udp dport %d-%d counter name rtp_out_%d\n' % (
                self.kamailio, first, first + 19, low, high, host)
            rules_in += '  ip saddr %s udp dport %d-%d udp sport %d-%d counter name rtp_in_%d\n' % (
                self.kamailio, first, first + 19, low, high, host)
        self.nft(self.office_ns, 'table ip vx {\n%s chain out {\n  type filter hook output priority 0;\n%s }\n'
                                 ' chain in {\n  type filter hook input priority 0;\n%s }\n}\n'
                 % (counters, rules_out, rules_in))
        return self

    @staticmethod
    def rtp_port(host):
        """The first of the 20 RTP ports of the phone at office address .host."""
        return 10000 + 100 * host

    def is_up(self):
        """Both namespaces, the office's counters and the host's veth with its address exist."""
        namespaces = _run([IP, 'netns', 'list'], check=False).stdout.split()
        if self.router_ns not in namespaces or self.office_ns not in namespaces:
            return False
        link = _run([IP, '-o', 'addr', 'show', 'dev', self.host_link], check=False).stdout
        counters = _run(self.in_office([NFT, 'list', 'table', 'ip', 'vx']), check=False).returncode == 0
        return counters and 'inet %s/' % self.kamailio in link and 'inet %s/' % self.trunk in link

    def ensure_up(self):
        """up() unless the lab is up already (a half-built one is removed first): True if it
        built something."""
        if self.is_up():
            return False
        self.down()
        self.up()
        return True

    def down(self):
        """Removes the namespaces (which ends whatever still runs in them) and the veth: True if
        there was something to remove."""
        for phone in list(self.phones):
            phone.stop()
        found = False
        for ns in (self.office_ns, self.router_ns):
            # Processes left in a namespace keep it alive after `ip netns del`: end them first.
            pids = _run([IP, 'netns', 'pids', ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            found = _run([IP, 'netns', 'del', ns], check=False).returncode == 0 or found
        return _run([IP, 'link', 'del', self.host_link], check=False).returncode == 0 or found

    def in_router(self, cmd):
        return [IP, 'netns', 'exec', self.router_ns] + cmd

    def in_office(self, cmd):
        return [IP, 'netns', 'exec', self.office_ns] + cmd

    def nft(self, ns, script):
        _run([IP, 'netns', 'exec', ns, NFT, '-f', '-'], input=script)

    # ---------------------------------------------------------------- observations
    def rtp_counts(self):
        """{'out_10': packets, 'in_10': ..., 'out_11': ..., 'in_11': ...} from the office's counters."""
        out = _run(self.in_office([NFT, '-j', 'list', 'counters'])).stdout
        counts = {}
        for item in json.loads(out)['nftables']:
            counter = item.get('counter')
            if counter:
                counts[counter['name'].replace('rtp_', '')] = counter['packets']
        return counts

    def reset_rtp_counts(self):
        _run(self.in_office([NFT, 'reset', 'counters', 'table', 'ip', 'vx']))

    def public_ports(self, private_address, private_port):
        """The router's public ports now mapped to private_address:private_port (UDP)."""
        out = _run(self.in_router([CONNTRACK, '-L', '-p', 'udp', '-s', private_address, '--sport',
                                   str(private_port)]), check=False).stdout
        ports = set()
        for line in out.splitlines():
            fields = dict(f.split('=', 1) for f in line.split() if '=' in f)
            # The reply direction's dport is the public port (the second dport= field).
            dports = [f.split('=', 1)[1] for f in line.split() if f.startswith('dport=')]
            if len(dports) == 2 and fields:
                ports.add(int(dports[1]))
        return ports

    def forget_bindings(self, private_address):
        """The router forgets the NAT bindings of one office address (as when the router's
        table overflows or the phone is moved): its next packet gets a new public port."""
        _run(self.in_router([CONNTRACK, '-D', '-p', 'udp', '-s', private_address]), check=False)

    # ---------------------------------------------------------------- phones
    def phone(self, workdir, user, domain, secret, proxy, host=10, answer='auto', tls_cafile=None, lifetime=0):
        """A baresip phone at office address .host; with tls_cafile it registers over TLS
        (proxy = the TLS socket) and insists on SRTP; lifetime > 0: it quits by itself after
        that many seconds."""
        phone = Baresip(self, workdir, user, domain, secret, proxy, host, answer, tls_cafile, lifetime)
        self.phones.append(phone)
        return phone


class Baresip(object):
    """One baresip phone in the office namespace, driven by commands over its ctrl_tcp socket
    (netstring JSON, in the office namespace's own loopback)."""

    def __init__(self, lab, workdir, user, domain, secret, proxy, host, answer, tls_cafile, lifetime=0):
        self.lab = lab
        self.settings = (user, domain, secret, proxy, answer, tls_cafile)
        self.lifetime = lifetime
        self.user = user
        self.address = lab.office_net + str(host)
        self.host = host
        self.port = 5060
        self.ctrl_port = 4000 + host
        self.folder = os.path.join(workdir, 'baresip-%s' % user)
        self.log = os.path.join(self.folder, 'out.log')
        os.makedirs(self.folder, exist_ok=True)
        rtp = lab.rtp_port(host)
        config = '\n'.join([
            'poll_method epoll',
            'sip_listen %s:%d' % (self.address, self.port),
            'sip_trans_def udp',
            'call_local_timeout 120',
            'call_max_calls 4',
            'audio_player aubridge,nowhere',
            'audio_source aufile,%s' % self._tone(),
            'audio_alert aubridge,nowhere',
            'rtp_ports %d-%d' % (rtp, rtp + 19),
            'rtp_timeout 0',
            'rtp_stats yes',
            'module_path ' + BARESIP_MODULES,
            'module g711.so',
            'module aufile.so',
            'module aubridge.so',
            'module_app account.so',
            'module_app menu.so',
            'module_app ctrl_tcp.so',
            'module srtp.so',
            'ctrl_tcp_listen 127.0.0.1:%d' % self.ctrl_port]
            + (['sip_cafile %s' % tls_cafile] if tls_cafile else []) + [''])
        with open(os.path.join(self.folder, 'config'), 'w') as handle:
            handle.write(config)
        self.write_account()
        for name in ('contacts', 'uuid'):
            open(os.path.join(self.folder, name), 'a').close()
        self.proc = None

    def write_account(self, regint=3600):
        """The phone's account file; it re-registers every ``regint`` seconds (read at start)."""
        user, domain, secret, proxy, answer, tls_cafile = self.settings
        transport = 'tls' if tls_cafile else 'udp'
        account = ('<sip:%s@%s;transport=%s>;auth_pass=%s;outbound="sip:%s:%d;transport=%s";regint=%d;'
                   'answermode=%s;audio_codecs=PCMU%s\n'
                   % (user, domain, transport, secret, proxy[0], proxy[1], transport, regint, answer,
                      ';mediaenc=srtp-mand' if tls_cafile else ''))
        with open(os.path.join(self.folder, 'accounts'), 'w') as handle:
            handle.write(account)

    def restart(self, regint=3600):
        """Kill the phone (no un-REGISTER: Kamailio keeps its binding) and start it again."""
        if self.proc is not None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=5)
            self.proc = None
        self.write_account(regint)
        return self.start()

    def _tone(self, seconds=120):
        """A 440 Hz tone, 8 kHz mono WAV (baresip's ausine only makes 48 kHz, PCMU needs 8)."""
        path = os.path.join(self.folder, 'tone.wav')
        frames = b''.join(struct.pack('<h', int(8000 * math.sin(2 * math.pi * 440 * n / 8000)))
                          for n in range(8000))
        with wave.open(path, 'wb') as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(8000)
            handle.writeframes(frames * seconds)
        return path

    def start(self):
        self.out = open(self.log, 'ab')
        lifetime = ['-t', str(self.lifetime)] if self.lifetime else []
        self.proc = subprocess.Popen(self.lab.in_office([BARESIP, '-f', self.folder] + lifetime), stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def command(self, command, params='', timeout=5):
        """One ctrl_tcp command ({"command": ..., "params": ...}); the decoded response."""
        payload = json.dumps({'command': command, 'params': params, 'token': 'vx'})
        script = ('import socket,sys\n'
                  's=socket.create_connection(("127.0.0.1",%d),timeout=%d)\n'
                  'd=sys.argv[1].encode()\n'
                  's.sendall(b"%%d:%%s," %% (len(d), d))\n'
                  'buf=b""\n'
                  'while True:\n'
                  '  c=s.recv(65536)\n'
                  '  if not c: break\n'
                  '  buf+=c\n'
                  '  if b\'"response"\' in buf and buf.endswith(b","): break\n'
                  'print(buf.decode("utf-8","replace"))\n' % (self.ctrl_port, timeout))
        proc = _run(self.lab.in_office(['python3', '-c', script, payload]), check=False, timeout=timeout + 5)
        return proc.stdout

    def dial(self, target):
        return self.command('dial', target)

    def hangup(self):
        return self.command('hangup')

    def output(self):
        try:
            with open(self.log, errors='replace') as handle:
                return handle.read()
        except OSError:
            return ''

    def audio_packets(self):
        """(sent, received) RTP packets of the phone's last finished call, from baresip's
        statistics (rtp_stats), or None before one ended."""
        lines = [line.split() for line in self.output().splitlines() if line.startswith('packets:')]
        return (int(lines[-1][1]), int(lines[-1][2])) if lines else None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(timeout=5)
        if self.proc is not None:
            self.out.close()
            self.proc = None
        if self in self.lab.phones:
            self.lab.phones.remove(self)


class RtpPeer(UdpWorker):
    """The trunk side's media: a UDP socket that counts the RTP it gets, and once the first
    packet shows where the relay sends from, sends PCMU back there every 20 ms (symmetric RTP)."""

    def __init__(self, address):
        super(RtpPeer, self).__init__(address, 0, timeout=0.02)
        self.received = 0
        self.sent = 0
        self.sources = set()

    def _run(self):
        target, seq, next_send = None, 0, 0.0
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(2048)
                if len(data) >= 12 and data[0] >> 6 == 2:  # RTP version 2
                    self.received += 1
                    self.sources.add(source[0])
                    target = source
            except socket.timeout:
                pass
            except OSError:
                return
            now = time.monotonic()
            if target is not None and now >= next_send:
                header = struct.pack('!BBHII', 0x80, 0, seq & 0xffff, (seq * 160) & 0xffffffff, 0x5658504c)
                try:
                    self.sock.sendto(header + b'\xff' * 160, target)
                    self.sent += 1
                except OSError:
                    pass
                seq += 1
                next_send = now + 0.02


def main(argv):
    """`up NAME PUBLIC OFFICE RELAY_LOW-HIGH` builds the lab unless it is up; `down NAME [...]`
    removes it. Prints {"changed": bool}."""
    parser = argparse.ArgumentParser(prog='python3 -m lab.nat', description='An office behind a NAT router (netns).')
    parser.add_argument('action', choices=('up', 'down'))
    parser.add_argument('name', help="the host's veth; the namespaces are NAME-r and NAME-o (at most 13 characters)")
    parser.add_argument('public_net', nargs='?', default='198.19.77', help='first three octets of the public side')
    parser.add_argument('office_net', nargs='?', default='10.77.0', help='first three octets of the office')
    parser.add_argument('relay_ports', nargs='?', default='0-0', help="the relay's RTP port range, for the counters")
    parser.add_argument('--udp-timeout', type=int, default=0, help="the router's UDP binding timeout (0: the kernel's)")
    args = parser.parse_args(argv)
    reason = missing_prerequisites()
    if reason:
        sys.stderr.write('lab.nat: %s\n' % reason)
        return 2
    low, high = (int(port) for port in args.relay_ports.split('-'))
    lab = NatLab(udp_timeout=args.udp_timeout or None, rtp_ports=(low, high), name=args.name,
                 public_net=args.public_net, office_net=args.office_net)
    changed = lab.ensure_up() if args.action == 'up' else lab.down()
    print(json.dumps({'changed': changed, 'router': lab.router_ns, 'office': lab.office_ns, 'link': lab.host_link}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
