# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call-flow pictures (callflow_diagram.py) over the KEMI adapter tests' directory (kemi_directory.py):
every way a call can go, drawn from the routing core's decisions, as data, Mermaid and SVG."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shutil
import xml.etree.ElementTree as ET

import pytest

import kemi_directory  # tests/unit/kemi (pytest.ini pythonpath)
from kemi_directory import MEDIA_SERVER, SINGLE
from ansible_collections.voxplane.pbx.plugins.module_utils import callflow, callflow_diagram
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import EnvironmentProblem
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

NOW = 1800000000.0
SVG_TEXT = '{http://www.w3.org/2000/svg}text'


@pytest.fixture(scope='module')
def states(tmp_path_factory):
    path = tmp_path_factory.mktemp('diagram') / 'directory.db'
    kemi_directory.build(path)
    with Directory(str(path)).transaction(write=False, create=False) as txn:
        return txn.load_all()


def explore(states, dialled, caller='paul.desk', media_service=callflow.DEPLOYED_MEDIA_SERVICE):
    snap = callflow.build_snapshot(states, 7, media_service=media_service)
    who = (callflow.resolve_caller(snap, 'acme', trunk=True) if caller == 'trunk'
           else callflow.resolve_caller(snap, 'acme', account=caller))
    return callflow_diagram.explore(snap, who, dialled, NOW)


def arrows(graph):
    """{(from label, to label): arrow label} of a graph."""
    label = dict((node.id, node.label) for node in graph.nodes)
    return dict(((label[a.id], label[b.id]), text) for a, b, text in graph.edges)


def test_a_group_with_a_fallback_draws_each_way_once(states):
    graph = explore(states, '50')
    group = 'ring group 50 Zentrale (10, 11): max.muster, max.app, erika.desk, 30s'
    fallback = 'ring extension 13: anna.desk, 20s'
    assert arrows(graph) == {
        ('call to 50 from paul.desk', group): '',
        (group, '200 answered'): 'answered',
        (group, fallback): 'busy (Diversion user-busy) / no answer after 30s (Diversion no-answer) / '
                           'nobody registered (Diversion unavailable)',
        (fallback, '200 answered'): 'answered',
        (fallback, '486 Busy Here'): 'busy',
        (fallback, '480 Temporarily Unavailable'): 'no answer after 20s / nobody registered',
    }
    # Each decision is one node: both rings lead to the same "200 answered".
    assert [n.label for n in graph.nodes].count('200 answered') == 1 and not graph.truncated


def test_forwards_by_reason_lead_to_their_targets(states):
    # 10: busy -> 12, no answer -> 13, its mobile rings with the desk phones (single number reach).
    found = arrows(explore(states, '10'))
    ring = [label for label in dict(found) if label[0].startswith('ring extension 10 Max Mustermann')][0][0]
    assert (ring, 'ring extension 12 Paul Weiter: paul.desk, 20s') in found
    assert found[(ring, 'ring extension 12 Paul Weiter: paul.desk, 20s')].startswith('busy (Diversion user-busy)')
    assert found[(ring, 'ring extension 13: anna.desk, 20s')].startswith('no answer after 25s (Diversion no-answer)')


def test_voicemail_on_the_tenants_own_media_server_and_a_trunk_leg(states):
    found = arrows(explore(states, '44'))
    ring = 'ring extension 44 Vera Voicemail: vera.desk, 20s'
    assert any(a == ring and b == 'voicemail of 44' and 'no answer after 20s' in text for (a, b), text in found.items())
    # acme's own voicemail server decides its answer, so the picture ends where it answers.
    assert ('voicemail of 44', 'the media server answers') in found
    found = arrows(explore(states, '14'))
    assert ('call to 14 from paul.desk', 'out through the trunk to +4940123456') in found
    assert ('out through the trunk to +4940123456', 'the far end answers') in found
    assert MEDIA_SERVER  # the tenant's own server, not the PBX's media service


def test_an_inbound_number_from_the_trunk(states):
    graph = explore(states, SINGLE, caller='trunk')
    assert graph.nodes[0].label == 'call to %s from the trunk' % SINGLE
    assert graph.nodes[1].label.startswith('ring extension 10 Max Mustermann')


def test_a_rejected_call_is_one_final_node(states):
    found = arrows(explore(states, '999'))
    assert len(found) == 1 and list(found)[0][1].startswith('404')


def test_a_long_chain_is_drawn_up_to_the_bound(states, monkeypatch):
    monkeypatch.setattr(callflow_diagram, 'MAX_NODES', 4)
    graph = explore(states, '52')  # eight members one after another, then the fallback
    assert graph.truncated and len(graph.nodes) <= 5
    assert '%% drawn up to 4 decisions' in callflow_diagram.mermaid(graph)


def test_mermaid_quotes_every_label(states):
    graph = explore(states, '50')
    graph.nodes[1].label = 'ring "the" group'
    text = callflow_diagram.mermaid(graph, title='acme: 50')
    assert text.startswith('---\ntitle: "acme: 50"\n---\nflowchart TD\n')
    assert '    n1["ring #quot;the#quot; group"]' in text
    assert '    n0 --> n1' in text and '    n1 -->|"answered"| n2' in text


@pytest.mark.skipif(not shutil.which('dot'), reason='Graphviz (make deps installs it)')
def test_the_svg_parses_and_draws_every_step(states):
    graph = explore(states, '50')
    root = ET.fromstring(callflow_diagram.svg(graph, title='acme: 50'))
    drawn = ' '.join(''.join(t.itertext()) for t in root.iter(SVG_TEXT))
    for node in graph.nodes:
        assert node.label in drawn, node.label
    for _a, _b, label in graph.edges:
        for part in filter(None, label.split(' / ')):
            assert part in drawn, part


def test_svg_without_graphviz_names_the_package(states, monkeypatch):
    monkeypatch.setattr(callflow_diagram.shutil, 'which', lambda name: None)
    with pytest.raises(EnvironmentProblem) as e:
        callflow_diagram.svg(explore(states, '50'))
    assert 'graphviz' in str(e.value) and 'Mermaid' in str(e.value)
    assert set(callflow_diagram.drawn(explore(states, '50'), 'mermaid')) == {'graph', 'mermaid'}


def test_a_tenants_flows_are_its_numbers_groups_and_extensions(states):
    snap = callflow.build_snapshot(states, 7)
    flows = callflow_diagram.tenant_flows(snap, states['acme'], NOW)
    titles = [title for _kind, _key, title, _graph in flows]
    assert titles[0].startswith('number ') and titles[0].endswith(' from the trunk')
    assert 'group 50 from max.muster' in titles and 'extension 10 from erika.desk' in titles
    assert 'extension 11 from max.muster' in titles  # never a call to oneself
    kinds = [kind for kind, _key, _title, _graph in flows]
    assert kinds == sorted(kinds, key=['number', 'group', 'extension'].index)
    # 40 and 46 have no SIP account; they are drawn as targets all the same.
    assert 'extension 40 from max.muster' in titles


def test_a_tenant_of_one_extension_calls_it_from_its_own_account(states):
    snap = callflow.build_snapshot(states, 7)
    flows = callflow_diagram.tenant_flows(snap, states['beta'], NOW)
    assert [title for _k, _key, title, _g in flows] == ['number +4315550100 from the trunk', 'extension 100 from bert.beta']


def test_the_review_page_links_each_picture():
    page = callflow_diagram.review_page('acme', [('group', '50', 'group 50 from anna.desk', 'flowchart TD\n')], pictures=True)
    assert '## group 50 from anna.desk\n\n![group 50 from anna.desk](acme/group-50.svg)\n\n```mermaid\nflowchart TD\n```' in page
    assert callflow_diagram.file_name('number', '+49 30/1') == 'number-+49_30_1.svg'


# Menus, queues, rooms and schedules (issue 22) -------------------------------------------------------------------

@pytest.fixture(scope='module')
def zentrale(tmp_path_factory):
    """The routing tests' "Zentrale: 1 Vertrieb, 2 Support, 0 Empfang" behind business hours."""
    from test_routing_menus import build
    harness = build(tmp_path_factory.mktemp('diagram-menus') / 'directory.db')
    with harness.directory.transaction(write=False, create=False) as txn:
        return callflow.build_snapshot(txn.load_all(), 8)


def zentrale_graph(snap, dialled):
    from test_routing_menus import MONDAY_10
    return callflow_diagram.explore(snap, callflow.resolve_caller(snap, 'acme', trunk=True), dialled, MONDAY_10)


SCHEDULE = 'schedule hours: mon-fri 08:00-18:00 (Europe/Berlin), closed on 1 holiday'
MENU = 'IVR menu 700 Zentrale'
QUEUE = 'queue 600 Support: ring_all 11, 12, 13, 12s each'


def test_a_schedule_is_drawn_with_both_of_its_ways_at_any_time(zentrale):
    from test_routing_menus import HEAD
    found = arrows(zentrale_graph(zentrale, HEAD))
    assert found[('call to %s from the trunk' % HEAD, SCHEDULE)] == ''
    assert found[(SCHEDULE, MENU)] == 'open' and found[(SCHEDULE, 'announcement closed')] == 'closed'
    kinds = dict((node.label, node.kind) for node in zentrale_graph(zentrale, HEAD).nodes)
    assert (kinds[SCHEDULE], kinds[MENU], kinds[QUEUE]) == ('schedule', 'ivr', 'queue')


def test_a_menu_has_an_arrow_per_key_and_for_wrong_keys_and_no_key(zentrale):
    from test_routing_menus import MENU as MENU_NUMBER
    found = arrows(zentrale_graph(zentrale, MENU_NUMBER))
    assert found[(MENU, 'ring group 20 Vertrieb (11, 12): anna.desk, anna.app, 30s')] == 'key 1'
    assert found[(MENU, QUEUE)] == 'key 2'
    assert found[(MENU, 'ring extension 10 Empfang: empfang.desk, 20s')] == 'key 0 / wrong key, 3 tries'
    assert found[(MENU, 'voicemail of 10')].startswith('no key, 3 tries of 5s')


def test_a_queue_is_drawn_with_its_overflow(zentrale):
    from test_routing_menus import SUPPORT
    found = arrows(zentrale_graph(zentrale, SUPPORT))
    assert found[(QUEUE, '200 answered by a member')] == 'a member answers'
    assert found[(QUEUE, 'voicemail of 10')].startswith('nobody answers within 120s, or 10 callers wait')
    assert ('voicemail of 10', '200 answered by the media service') in found


def test_a_room_and_a_menu_key_that_repeats_it(tmp_path):
    from test_routing_menus import MONDAY_10, TEAM, build
    harness = build(tmp_path / 'directory.db')
    harness.apply('acme', None, {'ivr': {'700': {'keys': {'9': '700', '5': '650'}}}})
    with harness.directory.transaction(write=False, create=False) as txn:
        snap = callflow.build_snapshot(txn.load_all(), 9)
    found = arrows(zentrale_graph(snap, TEAM))
    assert found == {('call to %s from the trunk' % TEAM, 'conference room 650 Team'): '',
                     ('conference room 650 Team', '200 answered by the media service'): ''}
    found = arrows(callflow_diagram.explore(snap, callflow.resolve_caller(snap, 'acme', account='anna.desk'), '700',
                                            MONDAY_10))
    assert found[(MENU, MENU)] == 'key 9: again' and found[(MENU, 'conference room 650 Team')] == 'key 5'
    text = callflow_diagram.mermaid(zentrale_graph(snap, TEAM))
    assert '(("conference room 650 Team"))' in text


def test_the_tenants_flows_include_its_menus_queues_and_rooms(tmp_path):
    from test_routing_menus import MONDAY_10, build
    harness = build(tmp_path / 'directory.db')
    with harness.directory.transaction(write=False, create=False) as txn:
        states = txn.load_all()
    snap = callflow.build_snapshot(states, 8)
    titles = [title for _k, _key, title, _g in callflow_diagram.tenant_flows(snap, states['acme'], MONDAY_10)]
    assert titles.index('group 20 from empfang.desk') < titles.index('ivr 700 from empfang.desk') < \
        titles.index('queue 600 from empfang.desk') < titles.index('conference 650 from empfang.desk') < \
        titles.index('extension 10 from anna.desk')


@pytest.mark.skipif(not shutil.which('dot'), reason='Graphviz (make deps installs it)')
def test_the_svg_of_a_menu_behind_business_hours_draws_every_step(zentrale):
    from test_routing_menus import HEAD
    graph = zentrale_graph(zentrale, HEAD)
    root = ET.fromstring(callflow_diagram.svg(graph, title='acme: head number'))
    drawn = ' '.join(''.join(t.itertext()) for t in root.iter(SVG_TEXT))
    for node in graph.nodes:
        assert node.label in drawn, node.label
