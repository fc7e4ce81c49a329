"""The demo tenant's call-flow tests and pictures (playbooks/demo/call_flows.yml and playbooks/call_flows.yml,
also run by `make demo`):
the demo playbook's provisioning play and its call-flow play, real ansible-playbook on the demo
inventory, with the directory in a temporary folder (nothing else of the demo is deployed)."""

import os
import re
import shutil

import pytest

from lab import REPO
from lab import pictures as pictures_lab
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


# ---------------------------------------------------------------------------- call-flow pictures
MERMAID_NODE = re.compile(r'^\s+n\d+\W+"(.*)"\W*$')
MERMAID_EDGE = re.compile(r'-->\|"(.*)"\|')


def mermaid_blocks(page):
    """{title: (node labels, edge labels)} of a review page's Mermaid blocks."""
    flows = {}
    for section in page.split('\n## ')[1:]:
        title, body = section.split('\n', 1)
        block = body.split('```mermaid\n', 1)[1].split('```', 1)[0]
        nodes = [m.group(1) for m in map(MERMAID_NODE.match, block.splitlines()) if m and '-->' not in m.group(0)]
        edges = [part for m in map(MERMAID_EDGE.search, block.splitlines()) if m for part in m.group(1).split(' / ')]
        flows[title] = (nodes, edges)
    return flows


def test_the_demo_draws_its_tenants_call_flows(demo):
    folder, run = demo
    assert run.rc == 0, repr(run)
    page = (folder / 'call-flows' / 'muster-partner.md').read_text()
    flows = mermaid_blocks(page)
    # A number from the trunk, the reception group and every extension, each with its picture.
    assert 'number +49301234567 from the trunk' in flows and 'group 20 from anna.desk' in flows, sorted(flows)
    assert {'extension 11 from bernd.desk', 'extension 12 from anna.desk', 'extension 13 from anna.desk'} <= set(flows)
    pictures = sorted(os.listdir(folder / 'call-flows' / 'muster-partner'))
    assert len(pictures) == len(flows) and 'group-20.svg' in pictures, pictures
    # The reception group's flow: ring times, the forward and its reason, the final answers.
    nodes, edges = flows['group 20 from anna.desk']
    assert 'ring group 20 Zentrale (11, 12): anna.desk, anna.app, bernd.desk, bernd.app, 20s' in nodes, nodes
    assert any(label.startswith('ring extension 13 Cora Weber') for label in nodes), nodes
    assert '200 answered' in nodes and 'no answer after 20s (Diversion no-answer)' in edges, (nodes, edges)
    # Every step of every flow is in its SVG, which parses.
    for title, (nodes, edges) in flows.items():
        link = re.search(r'!\[%s\]\((.*?)\)' % re.escape(title), page).group(1)
        drawn = ' '.join(pictures_lab.svg_texts(str(folder / 'call-flows' / link)))
        for label in nodes + edges:
            assert label in drawn, (title, label, drawn)
    # A headless Chromium renders the group's picture into a screenshot that is not empty.
    png = str(folder / 'group-20.png')
    pictures_lab.render(str(folder / 'call-flows' / 'muster-partner' / 'group-20.svg'), png)
    assert pictures_lab.ink(png) > 2000


def test_the_call_flows_playbook_keeps_the_pictures_in_step_with_the_tenant(demo, tmp_path):
    folder, dummy = demo
    directory = str(tmp_path / 'directory.db')
    shutil.copy(str(folder / 'directory.db'), directory)
    variables = {'tenant': 'muster-partner', 'directory_path': directory, 'call_flows_dest': str(tmp_path / 'review')}
    first = run_playbook('voxplane.pbx.call_flows', variables)
    assert first.rc == 0 and first.changed > 0, repr(first)
    again = run_playbook('voxplane.pbx.call_flows', variables)
    assert again.rc == 0 and again.changed == 0, repr(again)
    # Without the reception group, its picture and its section go.
    change = tmp_path / 'change.yml'
    change.write_text('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
                      '    - voxplane.pbx.number: {directory: "%s", tenant: muster-partner, number: "+49301234567",'
                      ' target: "11"}\n'
                      '    - voxplane.pbx.group: {directory: "%s", tenant: muster-partner, internal_number: "20",'
                      ' state: absent}\n' % (directory, directory))
    assert run_playbook(str(change)).rc == 0
    after = run_playbook('voxplane.pbx.call_flows', variables)
    assert after.rc == 0, repr(after)
    assert not (tmp_path / 'review' / 'muster-partner' / 'group-20.svg').exists()
    assert '## group 20' not in (tmp_path / 'review' / 'muster-partner.md').read_text()
    # A tenant the directory does not hold is named, and nothing is drawn for it.
    missing = run_playbook('voxplane.pbx.call_flows', dict(variables, tenant='muster-partnr'))
    assert missing.rc != 0 and 'tenant muster-partnr does not exist' in missing.stdout, repr(missing)
    assert not (tmp_path / 'review' / 'muster-partnr.md').exists()
