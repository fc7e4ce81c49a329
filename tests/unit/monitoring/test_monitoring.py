# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""monitoring/: the alert rules checked and unit-tested by Debian's promtool, the example scrape
configuration checked, the Grafana dashboard's shape; and the pure parts of the router's metrics
module (kemi/voxplane_metrics.py: dispositions, RPC results). The dashboard's metric names are
compared with a real Kamailio's scrape in tests/sip/test_metrics.py."""

import importlib
import json
import os
import subprocess
import sys

import pytest

from ksr_double.ksr_double import KSRDouble
from lab import REPO
from lab.prometheus import DASHBOARD, PROMTOOL, RULE_TESTS, RULES

PROMETHEUS_DIR = os.path.dirname(RULES)


def _promtool(*args):
    if not os.path.exists(PROMTOOL):
        pytest.skip('%s is missing (make deps installs Debian\'s prometheus)' % PROMTOOL)
    return subprocess.run([PROMTOOL] + list(args), capture_output=True, text=True, cwd=PROMETHEUS_DIR, timeout=60,
                          check=False)


def test_promtool_checks_the_alert_rules():
    run = _promtool('check', 'rules', RULES)
    assert run.returncode == 0 and 'SUCCESS: 5 rules found' in run.stdout, run.stdout + run.stderr


def test_promtool_unit_tests_of_the_alert_rules_pass():
    run = _promtool('test', 'rules', RULE_TESTS)
    assert run.returncode == 0 and 'SUCCESS' in run.stdout, run.stdout + run.stderr


def test_promtool_checks_the_example_scrape_configuration():
    run = _promtool('check', 'config', os.path.join(PROMETHEUS_DIR, 'prometheus.yml'))
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_of_the_issue_is_there_and_unit_tested():
    with open(RULES) as handle:
        rules = handle.read()
    with open(RULE_TESTS) as handle:
        tests = handle.read()
    for alert in ('VoxplaneTenantNoRegistrations', 'VoxplaneCallsFailing', 'VoxplaneTrunkDown', 'VoxplaneSnapshotStale',
                  'VoxplaneKamailioDown'):
        assert 'alert: ' + alert in rules and 'alertname: ' + alert in tests, alert


def test_the_dashboard_is_a_grafana_dashboard_with_a_query_in_every_panel():
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    assert dashboard['uid'] == 'voxplane-pbx' and dashboard['panels']
    ids = [panel['id'] for panel in dashboard['panels']]
    assert len(ids) == len(set(ids))
    for panel in dashboard['panels']:
        assert panel['targets'] and all(target['expr'].strip() for target in panel['targets']), panel['title']
        assert panel['datasource']['uid'] == '${datasource}', panel['title']
    positions = [(p['gridPos']['x'], p['gridPos']['y']) for p in dashboard['panels']]
    assert len(positions) == len(set(positions))  # no panel on top of another


@pytest.fixture(scope='module')
def metrics():
    """kemi/voxplane_metrics.py imported with the KSR double as KSR (its pure functions only)."""
    saved = sys.modules.get('KSR')
    sys.modules['KSR'] = KSRDouble().module
    sys.path.insert(0, os.path.join(REPO, 'kemi'))
    try:
        yield importlib.import_module('voxplane_metrics')
    finally:
        sys.path.remove(os.path.join(REPO, 'kemi'))
        sys.modules.pop('voxplane_metrics', None)
        if saved is None:
            sys.modules.pop('KSR', None)
        else:
            sys.modules['KSR'] = saved


@pytest.mark.parametrize('code,disposition,trunk', [
    (200, 'answered', 'answered'), (486, 'busy', 'refused'), (600, 'busy', 'refused'), (487, 'cancelled', 'cancelled'),
    (408, 'no_answer', 'failed'), (480, 'unavailable', 'refused'), (404, 'rejected', 'refused'),
    (403, 'rejected', 'refused'), (603, 'rejected', 'refused'), (500, 'failed', 'failed'), (503, 'failed', 'failed'),
    (0, 'failed', 'failed'),
])
def test_a_final_reply_code_is_a_disposition_and_a_trunk_result(metrics, code, disposition, trunk):
    assert metrics.disposition(code) == disposition
    assert metrics.trunk_result(code) == trunk


def test_registrations_are_counted_per_domain_from_ul_dump(metrics):
    dump = {'Domains': [{'Domain': {'Domain': 'location', 'AoRs': [
        {'Info': {'AoR': 'anna.desk@acme.sip.test', 'Contacts': [{'Contact': {}}, {'Contact': {}}]}},
        {'Info': {'AoR': 'dora.app@Beta.Sip.Test', 'Contacts': [{'Contact': {}}]}},
        {'Info': {'AoR': 'no-domain', 'Contacts': [{'Contact': {}}]}},
        {'Info': {'AoR': 'gone@acme.sip.test', 'Contacts': []}},
    ]}}]}
    assert metrics.registered_per_domain(dump) == {'acme.sip.test': 2, 'beta.sip.test': 1}
    assert metrics.registered_per_domain(None) == {}


def test_the_calls_in_progress_are_read_from_htable_dump(metrics):
    dump = [{'entry': 3, 'size': 2, 'slot': [{'name': 'a|acme|inbound', 'type': 'int', 'value': 2},
                                             {'name': 'r|acme', 'type': 'int', 'value': 1}]}]
    assert metrics.table_items(dump) == [('a|acme|inbound', 2), ('r|acme', 1)]


def test_metrics_off_cost_nothing(metrics):
    off = metrics.Metrics({})
    assert not off.enabled and off.dialog_event('dialog:start') == 1
    off.track(('acme', 'internal', ''))
    off.rejected(('acme', 'internal', ''), 404)
    assert not off.serves()
