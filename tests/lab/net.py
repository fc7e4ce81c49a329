# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loopback addresses and ports for the lab's servers and peers, and waiting: every address is
on 127.0.0.0/8, picked at random so that suites running at the same time do not meet."""

import random
import socket
import threading
import time


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


def free_ports(address, count, udp=True, tcp=False):
    """The first of ``count`` consecutive high ports free on address (a server with workers on
    the ports above its own)."""
    for _attempt in range(200):
        base = random.randint(20000, 60000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                for kind, wanted in ((socket.SOCK_DGRAM, udp), (socket.SOCK_STREAM, tcp)):
                    if wanted:
                        s = socket.socket(socket.AF_INET, kind)
                        socks.append(s)
                        s.bind((address, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError('no %d free consecutive ports on %s' % (count, address))


class AddressPool(object):
    """127.0.0.x addresses (2..254) for peers that need one of their own (an attacker: bans are
    per source address), none of them in ``exclude``. Each take() is a fresh address."""

    def __init__(self, exclude):
        self.free = ['127.0.0.%d' % x for x in range(2, 255) if '127.0.0.%d' % x not in set(exclude)]
        random.shuffle(self.free)

    def take(self):
        return self.free.pop()


def wait_for(predicate, timeout, interval=0.1):
    """Poll ``predicate`` until it returns something true or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


class UdpWorker(object):
    """A UDP socket bound to address:port (0: an ephemeral port) served by a thread of its own
    (``_run``, which stops when ``_stop`` is set), for the lab's stand-ins that must answer or
    count while a test goes on. Use it as a context manager: the thread runs inside the block,
    and the socket is closed after it."""

    def __init__(self, address, port=0, timeout=0.05):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, port))
        self.sock.settimeout(timeout)
        self.address, self.port = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
        return False


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
    return wait_for(lambda: udp_bound(address, port), timeout, interval=0.02)
