"""The demo tenant's call-flow tests (playbooks/demo/call_flows.yml, also run by `make demo`):
the demo playbook's provisioning play and its call-flow play, real ansible-playbook on the demo
inventory, with the directory in a temporary folder (nothing else of the demo is deployed)."""

import os

import pytest

from lab import REPO
from lab.playbook import run_playbook


def run_demo(tmp_path, *tags):
    variables = {'voxplane_demo_root': str(tmp_path), 'directory_path': str(tmp_path / 'directory.db')}
    return run_playbook(os.path.join(REPO, 'playbooks', 'demo.yml'), variables,
                        inventory=os.path.join(REPO, 'inventories', 'demo'), options=['--tags', ','.join(tags)])


def flat(text):
    """Output with every run of whitespace one space (the YAML callback wraps long lines)."""
    return ' '.join(text.split())


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """The demo tenant provisioned into a temporary directory and its call-flow tests run once."""
    folder = tmp_path_factory.mktemp('demo')
    return folder, run_demo(folder, 'demo_tenant', 'demo_call_flows')


def test_the_demo_tenants_call_flows_hold(demo):
    dummy, run = demo
    assert run.rc == 0 and run.failed == 0, repr(run)
    # The flows were really simulated and shown: the first one's summary is in the output.
    assert '0s: ring group 20 Zentrale (11, 12): anna.desk, anna.app, bernd.desk, bernd.app for 20s: no answer' \
        in flat(run.stdout), run.stdout[-4000:]
    assert '0s: out through the trunk to +491701234567 (Diversion unavailable)' in flat(run.stdout)
    assert 'final: 403 International calls not permitted' in flat(run.stdout)


def test_a_call_flow_test_fails_when_the_tenant_routes_otherwise(demo):
    # The same tests after the reception's ring time became 30 s: the first one must fail.
    folder, dummy = demo
    change = folder / 'change.yml'
    change.write_text('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
                      '    - voxplane.pbx.group: {directory: "%s", tenant: muster-partner, internal_number: "20",'
                      ' ring_time: 30}\n' % (folder / 'directory.db'))
    changed = run_playbook(str(change))
    assert changed.rc == 0, repr(changed)
    run = run_demo(folder, 'demo_call_flows')
    assert run.rc != 0 and run.failed == 1, repr(run)
    assert 'for 30s: no answer' in flat(run.stdout), run.stdout[-4000:]
