# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics (docs/operations.md "Metrics"): a Kamailio of the lab deployed by the role
with ``kamailio_metrics_listen`` (xhttp_prom), scraped by a real Prometheus server (Debian's
package, tests/lab/prometheus.py) every second, which also loads the repository's alert rules.

Registrations, calls (sipp phones, the trunk stand-in), a ban and an outside call over its limit
move the per-tenant counters and gauges, read back through Prometheus's HTTP API; the metrics
socket answers only the allow-list and only /metrics; the Grafana dashboard
(monitoring/grafana/voxplane-dashboard.json) names only metrics this Kamailio really exports.
"""

import json
import os
import re
import socket
import subprocess

import pytest

from lab.calls import ACME, BETA, call, inbound, report, scene, start_of_a_minute, users_file
from lab.kamailio import kamailio_lab, missing_prerequisites
from lab.net import free_port, wait_for
from lab.prometheus import DASHBOARD, PROMTOOL, metric_names, missing, prometheus_server, scrape
from lab.rtpengine import rtpengine_lab
from lab.sipp import Phone, finish_sipp, start_sipp

KEMI_METRICS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            'kemi', 'voxplane_metrics.py')
CALLS = 'kamailio_voxplane_calls_total{tenant="%s",direction="%s",disposition="%s"}'


@pytest.fixture(scope='module')
def metrics_lab():
    reason = missing_prerequisites() or missing()
    if reason:
        pytest.skip(reason)

    def setup(instance):
        instance.metrics_port = free_port(instance.address, udp=False)
        # Prometheus and urllib connect from 127.0.0.1 (the loopback route's source address);
        # the trunk stand-in's address is not allowed.
        instance.metrics_variables = {'kamailio_metrics_listen': '%s:%d' % (instance.address, instance.metrics_port),
                                      'kamailio_metrics_allow': ['127.0.0.1/32']}
        return instance.metrics_variables

    with kamailio_lab(prefix='voxplane-metrics-', setup=setup) as kamailio:
        kamailio.metrics_url = 'http://%s:%d/metrics' % (kamailio.address, kamailio.metrics_port)
        with prometheus_server([('voxplane-kamailio', ['%s:%d' % (kamailio.address, kamailio.metrics_port)])],
                               kamailio.root) as prometheus:
            yield kamailio, prometheus


def _value(prometheus, expr):
    return prometheus.value(expr, default=0.0)


def _wait(prometheus, expr, expected, kamailio, timeout=15.0):
    seen = prometheus.wait_value(expr, lambda v: v == expected, timeout=timeout)
    assert seen == expected, '%s: %r, expected %r\n%s' % (expr, seen, expected, kamailio.log_tail(30))


def test_the_metrics_socket_answers_only_the_allow_list_and_only_metrics(metrics_lab):
    kamailio, prometheus = metrics_lab
    status, body = scrape(kamailio.metrics_url)
    assert status == 200, body
    assert 'kamailio_voxplane_sip_accounts{tenant="acme"}' in body
    assert 'kamailio_voxplane_registered_contacts{tenant="beta"}' in body
    assert re.search(r'^kamailio_core_rcv_requests ', body, re.M), body[-2000:]  # Kamailio's own statistics
    # The trunk stand-in's address is not in kamailio_metrics_allow: 403, no metrics.
    status, body = scrape(kamailio.metrics_url, source=kamailio.trunk)
    assert status == 403 and 'kamailio_' not in body
    status, body = scrape(kamailio.metrics_url.replace('/metrics', '/status'))
    assert status == 404 and 'kamailio_' not in body
    # The SIP TCP socket serves no metrics (an HTTP request there is the WebSocket policy's: 403).
    status, body = scrape('http://%s:%d/metrics' % (kamailio.address, kamailio.port))
    assert status == 403 and 'kamailio_' not in body
    # Prometheus (from 127.0.0.1) scrapes it.
    assert wait_for(prometheus.targets_up, 15), prometheus.log()


def test_the_role_with_metrics_is_idempotent(metrics_lab):
    kamailio = metrics_lab[0]
    pid = kamailio.pid()
    again = kamailio.deploy(**kamailio.metrics_variables)
    assert again.rc == 0 and again.changed == 0, repr(again)
    assert kamailio.pid() == pid


def _held_inbound(kamailio, dialled, seconds):
    """An inbound call from the trunk stand-in that stays up ``seconds`` after the answer (started)."""
    inf = users_file(kamailio, 'held', [('+493055599999', ACME, 'unused', dialled)])
    return start_sipp('call_noauth_held.xml', kamailio.target, kamailio.trunk, kamailio.workdir, inf=inf,
                      timeout=seconds + 15, extra=['-d', str(int(seconds * 1000))])


def _flood(kamailio, source, count):
    """``count`` OPTIONS from ``source`` within a moment: more than kamailio_flood_requests bans it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    port = sock.getsockname()[1]
    for n in range(count):
        sock.sendto(('OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-flood%d\r\n'
                     'From: <sip:flood@%s>;tag=f%d\r\nTo: <sip:%s>\r\nCall-ID: flood%d@%s\r\nCSeq: 1 OPTIONS\r\n'
                     'Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n'
                     % (kamailio.address, kamailio.port, source, port, n, source, n, kamailio.address, n, source)
                     ).encode(), kamailio.target)
    sock.close()


@pytest.fixture(scope='module')
def traffic(metrics_lab):
    """Registrations and calls with the metrics they move: {name: (before, after)} from Prometheus."""
    kamailio, prometheus = metrics_lab
    assert wait_for(prometheus.targets_up, 15), prometheus.log()
    watched = {
        'registered': 'kamailio_voxplane_registered_contacts{tenant="acme"}',
        'internal_answered': CALLS % ('acme', 'internal', 'answered'),
        'internal_busy': CALLS % ('acme', 'internal', 'busy'),
        'internal_rejected': CALLS % ('acme', 'internal', 'rejected'),
        'inbound_answered': CALLS % ('acme', 'inbound', 'answered'),
        # A number nobody holds: the tenant is not known (both tenants share the trunk's address).
        'inbound_rejected': CALLS % ('unknown', 'inbound', 'rejected'),
        'outbound_answered': CALLS % ('acme', 'outbound', 'answered'),
        'onnet_answered': CALLS % ('acme', 'on-net', 'answered'),
        'trunk_answered': 'kamailio_voxplane_trunk_calls_total{tenant="acme",trunk="carrier",result="answered"}',
        'trunk_failed': 'kamailio_voxplane_trunk_calls_total{tenant="acme",trunk="carrier",result="failed"}',
        'refused': 'kamailio_voxplane_outside_calls_refused_total{tenant="acme",limit="extension_per_minute"}',
        'bans': 'kamailio_voxplane_bans_total{reason="flood"}',
    }
    before = dict((name, _value(prometheus, expr)) for name, expr in watched.items())
    found = {'watched': watched, 'before': before, 'results': {}}
    results = found['results']

    # Two phones of acme register: the gauge follows usrloc at the next scrape.
    anna, bert = Phone(kamailio, 'anna.desk'), Phone(kamailio, 'bert.app')
    assert anna.register().rc == 0 and bert.register().rc == 0
    found['registered_with_two'] = prometheus.wait_value(watched['registered'], lambda v: v == before['registered'] + 2)
    anna.unregister()
    bert.unregister()
    found['registered_after'] = prometheus.wait_value(watched['registered'], lambda v: v == before['registered'])

    desk = Phone(kamailio, 'anna.desk')
    results['internal'] = scene(kamailio, lambda: call(kamailio, 'bert.desk', '10'), answer=desk)[0]
    results['busy'] = scene(kamailio, lambda: call(kamailio, 'bert.desk', '10'), busy=[Phone(kamailio, 'anna.desk')])[0]
    results['rejected'] = call(kamailio, 'bert.desk', '20')  # 404: only beta has 20
    results['inbound'] = scene(kamailio, lambda: inbound(kamailio, '+4930123456010'),
                               answer=Phone(kamailio, 'anna.desk'))[0]
    results['inbound_404'] = inbound(kamailio, '+493055500000')
    results['outbound'] = scene(kamailio, lambda: call(kamailio, 'anna.desk', '0305551234'), trunk='phone_answer.xml')[0]
    results['onnet'] = scene(kamailio, lambda: call(kamailio, 'anna.desk', '+494099999999'),
                             answer=Phone(kamailio, 'dora.desk', domain=BETA))[0]
    # Pia may place two outside calls a minute: the trunk stand-in is not running, so both fail at
    # the trunk (5 s each, the transaction's timer); the third is refused by her limit, within the
    # same minute of the clock.
    start_of_a_minute(needed=30)
    results['pia'] = [call(kamailio, 'pia.desk', '0305551234', timeout=15) for dummy in range(3)]

    # A call held up for 6 s: the calls in progress of acme (inbound) show it, then not.
    phone = Phone(kamailio, 'anna.desk')
    assert phone.register().rc == 0
    answering = phone.start('phone_answer.xml', timeout=30)
    held = _held_inbound(kamailio, '+4930123456010', 6)
    active = 'kamailio_voxplane_active_calls{tenant="acme",direction="inbound"}'
    found['active_during'] = prometheus.wait_value(active, lambda v: v == 1, timeout=5)
    results['held'] = finish_sipp(held, timeout=30)
    finish_sipp(answering, timeout=5)
    phone.unregister()
    found['active_after'] = prometheus.wait_value(active, lambda v: v == 0, timeout=10)

    # A flood from an address that never authenticated bans it.
    _flood(kamailio, '127.0.0.%d' % (int(kamailio.address.rsplit('.', 1)[1]) % 200 + 2 + 50), 150)

    expected = {'internal_answered': 1, 'internal_busy': 1, 'internal_rejected': 1, 'inbound_answered': 2,
                'inbound_rejected': 1, 'outbound_answered': 1, 'onnet_answered': 1, 'trunk_answered': 1,
                'trunk_failed': 2, 'refused': 1, 'bans': 1}
    for name, delta in expected.items():
        prometheus.wait_value(watched[name], lambda v, n=name, d=delta: v == before[n] + d, timeout=10)
    found['after'] = dict((name, _value(prometheus, expr)) for name, expr in watched.items())
    found['expected'] = expected
    found['exposition'] = scrape(kamailio.metrics_url)[1]
    return found


def test_registrations_move_the_tenants_gauge(metrics_lab, traffic):
    kamailio = metrics_lab[0]
    before = traffic['before']['registered']
    assert traffic['registered_with_two'] == before + 2, kamailio.log_tail(30)
    assert traffic['registered_after'] == before
    assert _value(metrics_lab[1], 'kamailio_voxplane_sip_accounts{tenant="acme"}') > 30


def test_calls_count_by_tenant_direction_and_disposition(metrics_lab, traffic):
    kamailio = metrics_lab[0]
    explain = report(kamailio, **dict((k, v) for k, v in traffic['results'].items() if not isinstance(v, list)))
    moved = dict((name, traffic['after'][name] - traffic['before'][name]) for name in traffic['expected'])
    counted = '\n'.join(line for line in traffic['exposition'].splitlines() if '_calls_' in line)
    assert moved == traffic['expected'], '%r\n%s\n%s' % (moved, counted, explain)


def test_a_call_in_progress_shows_while_it_lasts(metrics_lab, traffic):
    assert traffic['active_during'] == 1, metrics_lab[0].log_tail(30)
    assert traffic['active_after'] == 0
    assert traffic['results']['held'].rc == 0


def test_the_snapshot_and_ban_gauges(metrics_lab, traffic):
    kamailio, prometheus = metrics_lab
    import sqlite3
    with sqlite3.connect(kamailio.directory_path) as db:
        generation = db.execute('SELECT generation FROM voxplane_generation').fetchone()[0]
    assert _value(prometheus, 'kamailio_voxplane_snapshot_generation') == generation
    assert 0 <= _value(prometheus, 'kamailio_voxplane_snapshot_age_seconds') < 5
    assert _value(prometheus, 'sum(kamailio_voxplane_reload_pause_seconds_count)') >= 1
    assert _value(prometheus, 'kamailio_voxplane_banned_addresses') >= 1
    # The rule group loaded by this Prometheus is the repository's, and none of its alerts fires here.
    rules = prometheus.api('rules')['groups']
    assert [group['name'] for group in rules] == ['voxplane'], rules
    firing = [alert for alert in prometheus.api('alerts')['alerts'] if alert['state'] == 'firing']
    assert firing == [], firing


_PROMQL_WORDS = frozenset(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless',
                           'offset', 'bool', 'le', 'inf', 'nan'])


def dashboard_metrics(dashboard):
    """The metric names the dashboard's queries (panels' targets, template variables) name."""
    exprs = [target['expr'] for panel in dashboard['panels'] for target in panel.get('targets', ())]
    for variable in dashboard.get('templating', {}).get('list', ()):
        query = variable.get('query')
        if isinstance(query, dict):
            exprs.append(re.sub(r'^label_values\((.*),\s*\w+\)$', r'\1', query['query']))
    names = set()
    for expr in exprs:
        text = re.sub(r'"[^"]*"', '', expr)                         # label values
        text = re.sub(r'\{[^}]*\}', '', text)                       # label matchers
        text = re.sub(r'\b(by|without|on|ignoring)\s*\([^)]*\)', '', text)  # grouping labels
        text = re.sub(r'\[[^\]]*\]', '', text)                      # ranges
        for match in re.finditer(r'\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?', text):
            word, call_ = match.group(1), match.group(2)
            if call_ or word.lower() in _PROMQL_WORDS or word.startswith('$'):
                continue
            names.add(word)
    return names


def test_the_dashboard_names_only_metrics_of_a_real_scrape(metrics_lab, traffic):
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    named = dashboard_metrics(dashboard)
    assert 'kamailio_voxplane_calls_total' in named and len(named) >= 12, named
    exported = metric_names(traffic['exposition']) | {'up'}  # up: Prometheus's own, per target
    assert named <= exported, sorted(named - exported)


def test_every_ksr_function_of_the_metrics_module_is_exported_by_this_kamailio(metrics_lab):
    """voxplane_metrics.py calls xhttp_prom, jsonrpcs and htable through KSR: each exists in the
    running Kamailio's KEMI API (app_python.api_list), as the router's own calls are checked."""
    kamailio = metrics_lab[0]
    with open(KEMI_METRICS) as handle:
        source = handle.read()
    used = set(re.findall(r'\bKSR\.((?:[a-z_0-9]+\.)?[a-z_0-9]+)\(', source))
    listing = kamailio.kamcmd('app_python.api_list').stdout
    exported = set()
    for module, name in re.findall(r'"module":\s*"([^"]*)",\s*"name":\s*"([^"]*)"', listing):
        exported.add('%s.%s' % (module, name) if module else name)
    if not exported:  # the text listing of kamcmd
        for module, name in re.findall(r'module: (\S*)\s+name: (\S+)', listing):
            exported.add('%s.%s' % (module, name) if module else name)
    assert len(exported) > 50, listing[:2000]
    assert used <= exported, sorted(used - exported)


def test_rtpengine_deployed_with_its_http_listener_serves_metrics_prometheus_can_parse(metrics_lab, tmp_path):
    """The rtpengine role's rtpengine_listen_http: GET /metrics answers, and promtool accepts the text."""
    kamailio = metrics_lab[0]
    if not os.path.exists('/usr/bin/rtpengine'):
        pytest.skip('rtpengine is missing (make deps installs rtpengine-daemon)')
    os.chmod(str(tmp_path), 0o755)
    http_port = free_port('127.0.0.1', udp=False)
    low = free_port(kamailio.address, tcp=False)
    with rtpengine_lab(str(tmp_path), kamailio.address, (30000 + low % 20000, 30000 + low % 20000 + 99), http_port=http_port):
        url = 'http://127.0.0.1:%d/metrics' % http_port
        assert wait_for(lambda: _answers(url), 10), url
        status, body = scrape(url)
    assert status == 200 and 'rtpengine' in body, body[:2000]
    check = subprocess.run([PROMTOOL, 'check', 'metrics'], input=body, capture_output=True, text=True, timeout=30,
                           check=False)
    # promtool exits 1 for lint remarks about names (rtpengine's own); a parse error is another text.
    assert 'error while linting' not in check.stderr and 'text format parsing error' not in check.stderr, check.stderr


def _answers(url):
    try:
        return scrape(url, timeout=1.0)[0] == 200
    except OSError:
        return False
