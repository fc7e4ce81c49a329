# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cluster.py: which requests come from a node, the Path a registration is saved with, the
counters of the whole cluster and when a media service's call goes to the next one. The nodes
really doing it: tests/sip/test_cluster.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from urllib.parse import unquote

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import cluster

SETTINGS = {'node_id': 2, 'address': '10.0.0.12', 'port': 5090,
            'nodes': [{'id': 1, 'address': '10.0.0.11', 'port': 5090}, {'id': 2, 'address': '10.0.0.12', 'port': 5090},
                      {'id': 3, 'address': '10.0.0.13', 'port': 5091}]}
NODE = cluster.Cluster(SETTINGS)
SINGLE = cluster.Cluster({})


def test_a_single_server_has_no_cluster():
    assert not SINGLE.enabled and SINGLE.socket is None and repr(SINGLE) == 'Cluster(single)'
    assert not SINGLE.from_node('10.0.0.11', 5090, 5090)
    assert SINGLE.path_header('udp:192.0.2.5:5060', 'sip:198.51.100.7:40000') is None
    assert SINGLE.own_key('10.0.0.9|27') == '10.0.0.9|27' and SINGLE.other_keys('10.0.0.9|27') == []
    assert cluster.Cluster(None).enabled is False


def test_the_node_knows_itself_and_the_others():
    assert NODE.enabled and NODE.node_id == 2 and NODE.socket == 'udp:10.0.0.12:5090'
    assert NODE.node_ids == (1, 2, 3) and NODE.others == (1, 3)
    assert NODE.peers == frozenset([('10.0.0.11', 5090), ('10.0.0.13', 5091)])
    assert repr(NODE) == 'Cluster(node 2 of [1, 2, 3])'


@pytest.mark.parametrize('source, port, local_port, expected', [
    ('10.0.0.11', 5090, 5090, True),           # node 1's cluster socket to ours
    ('10.0.0.13', '5091', 5090, True),         # ports may come as text
    ('10.0.0.13', 5090, 5090, False),          # node 3's address, but not its cluster port: a phone there
    ('10.0.0.11', 5090, 5060, False),          # to our SIP port: not the cluster socket
    ('10.0.0.12', 5090, 5090, False),          # ourselves is no other node
    ('203.0.113.9', 5090, 5090, False),
    ('10.0.0.11', None, 5090, False),
])
def test_a_request_is_a_nodes_only_from_a_cluster_socket_to_ours(source, port, local_port, expected):
    assert NODE.from_node(source, port, local_port) is expected


@pytest.mark.parametrize('uri, expected', [
    ('sip:10.0.0.11:5090;lr;vxs=udp:10.0.0.11:5060', True),
    ('<sip:10.0.0.13:5091;lr;received=sip:198.51.100.7:40000>', True),
    ('sip:10.0.0.13:5090;lr', False),
    ('sip:10.0.0.12:5090;lr', False),          # our own socket (path_check_local skips it anyway)
    ('sip:bert@203.0.113.9:5060', False),
    ('tel:+4930123', False),
    ('sip:10.0.0.11:x;lr', False),
    ('', False),
    (None, False),
])
def test_a_next_hop_that_is_another_node(uri, expected):
    assert NODE.is_node_uri(uri) is expected


def test_the_path_names_this_nodes_cluster_socket_and_the_phones_socket():
    assert NODE.path_header('udp:192.0.2.5:5060') == '<sip:10.0.0.12:5090;lr;vxs=udp:192.0.2.5:5060>'


def test_a_phone_behind_nat_has_its_address_in_the_path_as_the_path_module_reads_it():
    path = NODE.path_header('tcp:192.0.2.5:5060', 'sip:198.51.100.7:40000;transport=tcp')
    assert path == '<sip:10.0.0.12:5090;lr;vxs=tcp:192.0.2.5:5060;received=sip:198.51.100.7:40000%3Btransport%3Dtcp>'
    received = [p.split('=', 1)[1] for p in path.strip('<>').split(';') if p.startswith('received=')][0]
    assert unquote(received) == 'sip:198.51.100.7:40000;transport=tcp'
    # The node relays the phone's calls from the socket named in the Route it consumes.
    assert cluster.hop_socket(path) == 'tcp:192.0.2.5:5060'


@pytest.mark.parametrize('route, expected', [
    ('<sip:10.0.0.12:5090;lr;vxs=udp:192.0.2.5:5060>', 'udp:192.0.2.5:5060'),
    ('<sip:10.0.0.12:5090;lr;VXS=udp:[2001:db8::5]:5060>, <sip:edge.example.net;lr>', 'udp:[2001:db8::5]:5060'),
    ('sip:10.0.0.12:5090;lr;vxs=udp:192.0.2.5:5060?x=y', 'udp:192.0.2.5:5060'),
    ('<sip:10.0.0.12:5090;lr>', None),
    ('<sip:10.0.0.12:5090;lr;vxs=>', None),
    ('', None),
    (None, None),
])
def test_the_socket_of_a_handed_over_call(route, expected):
    assert cluster.hop_socket(route) == expected


@pytest.mark.parametrize('proto, address, port, expected', [
    ('udp', '192.0.2.5', 5060, 'udp:192.0.2.5:5060'),
    ('TCP', '192.0.2.5', '5060', 'tcp:192.0.2.5:5060'),
    ('wss', '192.0.2.5', 8443, 'tls:192.0.2.5:8443'),   # a webphone's WebSocket runs on the TLS socket
    ('ws', '192.0.2.5', 8080, 'tcp:192.0.2.5:8080'),
    ('udp', '2001:db8::5', 5060, 'udp:[2001:db8::5]:5060'),
    (None, '192.0.2.5', 5060, 'udp:192.0.2.5:5060'),
])
def test_socket_strings(proto, address, port, expected):
    assert cluster.socket_string(proto, address, port) == expected


def test_cluster_counters_are_per_node_keys_added_up():
    assert NODE.own_key('203.0.113.9|27') == '203.0.113.9|27|n2'
    assert NODE.other_keys('203.0.113.9|27') == ['203.0.113.9|27|n1', '203.0.113.9|27|n3']
    assert cluster.total(4, [3, None]) == 7
    assert cluster.total(None, ['2', '']) == 2


@pytest.mark.parametrize('flood_requests, nodes, step', [(100, 3, 16), (100, 1, 50), (10, 3, 1), (1, 3, 1)])
def test_the_flood_step(flood_requests, nodes, step):
    settings = dict(SETTINGS, nodes=SETTINGS['nodes'][:nodes])
    assert cluster.Cluster(settings).flood_step(flood_requests) == step


@pytest.mark.parametrize('code, timed_out, expected', [
    (408, True, True), (408, False, True), (500, False, True), (503, False, True), (599, False, True),
    (0, True, True), (404, False, False), (486, False, False), (603, False, False), (480, False, False),
    (200, False, False),
])
def test_a_media_service_that_does_not_take_the_call_is_skipped(code, timed_out, expected):
    assert cluster.media_failover(code, timed_out) is expected
