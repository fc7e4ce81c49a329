# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Prometheus server (Debian's ``prometheus`` package) for the metrics tests: started on a
free loopback port with a configuration and a data folder of its own, scraping the given targets
every second and loading the repository's alert rules (monitoring/prometheus/voxplane-rules.yml);
queried through its HTTP API.

``prometheus_server(targets, root)`` is its whole life as a context manager; ``missing()`` says
what is not installed.
"""

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from lab import REPO
from lab.net import free_port, wait_for

PROMETHEUS = '/usr/bin/prometheus'
PROMTOOL = '/usr/bin/promtool'
MONITORING = os.path.join(REPO, 'monitoring')
RULES = os.path.join(MONITORING, 'prometheus', 'voxplane-rules.yml')
RULE_TESTS = os.path.join(MONITORING, 'prometheus', 'voxplane-rules.test.yml')
DASHBOARD = os.path.join(MONITORING, 'grafana', 'voxplane-dashboard.json')


def missing():
    """Why no Prometheus can run here, or None."""
    for path in (PROMETHEUS, PROMTOOL):
        if not os.path.exists(path):
            return '%s is missing (make deps installs Debian\'s prometheus)' % path
    return None


def scrape(url, timeout=5.0, source=None):
    """GET ``url``: (status, body text); ``source`` binds the client to that local address."""
    if source is None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:
                return reply.status, reply.read().decode('utf-8', 'replace')
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode('utf-8', 'replace')
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request('GET', parts.path or '/')
        reply = conn.getresponse()
        return reply.status, reply.read().decode('utf-8', 'replace')
    finally:
        conn.close()


def metric_names(exposition):
    """The metric names of a Prometheus text exposition (histograms by their base name as well)."""
    names = set()
    for line in exposition.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        name = line.split('{', 1)[0].split(' ', 1)[0]
        names.add(name)
        for suffix in ('_bucket', '_sum', '_count'):
            if name.endswith(suffix):
                names.add(name[:-len(suffix)])
    return names


class Prometheus(object):
    """A running server: ``query(expr)`` (instant vector as {labels tuple: value}), ``wait(...)``."""

    def __init__(self, root, address, port, process):
        self.root = root
        self.address = address
        self.port = port
        self.process = process
        self.url = 'http://%s:%d' % (address, port)

    def api(self, path, **params):
        url = '%s/api/v1/%s?%s' % (self.url, path, urllib.parse.urlencode(params))
        with urllib.request.urlopen(url, timeout=10) as reply:
            answer = json.loads(reply.read().decode('utf-8'))
        if answer.get('status') != 'success':
            raise AssertionError('Prometheus %s: %r' % (path, answer))
        return answer['data']

    def query(self, expr):
        """{frozenset(labels.items()): float} of an instant query."""
        data = self.api('query', query=expr)
        return dict((frozenset(sample['metric'].items()), float(sample['value'][1])) for sample in data['result'])

    def value(self, expr, default=None):
        """The single value of ``expr`` (a query that sums to one sample), or ``default``."""
        result = self.query(expr)
        if not result:
            return default
        assert len(result) == 1, (expr, result)
        return list(result.values())[0]

    def wait_value(self, expr, predicate, timeout=15.0):
        """Wait until ``predicate(value of expr)`` holds; returns the last value seen."""
        seen = []

        def check():
            seen.append(self.value(expr))
            return seen[-1] is not None and predicate(seen[-1])
        wait_for(check, timeout, interval=0.25)
        return seen[-1] if seen else None

    def targets_up(self):
        return [t for t in self.api('targets')['activeTargets'] if t['health'] == 'up']

    def log(self):
        try:
            with open(os.path.join(self.root, 'prometheus.log')) as handle:
                return handle.read()[-4000:]
        except OSError:
            return ''


def config(targets, rules=RULES, interval='1s'):
    """prometheus.yml: one job per (job name, [host:port, ...]) of ``targets``, scraped every ``interval``."""
    lines = ['global:', '  scrape_interval: %s' % interval, '  evaluation_interval: %s' % interval,
             'rule_files:', '  - %s' % json.dumps(rules), 'scrape_configs:']
    for job, addresses in targets:
        lines += ['  - job_name: %s' % json.dumps(job), '    static_configs:',
                  '      - targets: %s' % json.dumps(list(addresses))]
    return '\n'.join(lines) + '\n'


@contextlib.contextmanager
def prometheus_server(targets, root, address='127.0.0.1', timeout=30.0):
    """Prometheus on ``address`` and a free port, config and TSDB below ``root`` (created), scraping
    ``targets`` every second; stopped (SIGTERM, then SIGKILL) and its folder removed at the end."""
    folder = os.path.join(root, 'prometheus')
    os.makedirs(os.path.join(folder, 'data'), exist_ok=True)
    with open(os.path.join(folder, 'prometheus.yml'), 'w') as handle:
        handle.write(config(targets))
    port = free_port(address, udp=False)
    log = open(os.path.join(folder, 'prometheus.log'), 'w')
    process = subprocess.Popen(
        [PROMETHEUS, '--config.file=' + os.path.join(folder, 'prometheus.yml'),
         '--storage.tsdb.path=' + os.path.join(folder, 'data'), '--web.listen-address=%s:%d' % (address, port),
         '--storage.tsdb.retention.time=1h', '--web.enable-lifecycle'],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder)
    server = Prometheus(folder, address, port, process)
    try:
        def ready():
            try:
                return scrape(server.url + '/-/ready', timeout=1.0)[0] == 200
            except OSError:
                return False
        if not wait_for(ready, timeout, interval=0.2):
            raise AssertionError('Prometheus did not get ready\n' + server.log())
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        log.close()
        if os.environ.get('VOXPLANE_SIP_KEEP') != '1':
            shutil.rmtree(folder, ignore_errors=True)
