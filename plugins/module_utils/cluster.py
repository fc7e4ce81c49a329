# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cluster of SIP nodes (docs/cluster.md): what the KEMI router decides on a node that shares
its registrations, bans and counters with others over Kamailio's DMQ.

- **Which requests come from a node.** Every node has a cluster socket (UDP, a private address):
  the KDMQ requests of DMQ and the calls one node hands another for a phone registered there go
  between cluster sockets only. A request is a node's when it comes from a node's cluster socket
  (address and port) to this node's cluster socket; anything else is a phone's or a trunk's,
  whatever its address.
- **The Path of a registration.** A node saves every registration with a Path naming its own
  cluster socket (``path_header``), which DMQ replicates with the binding: another node sends a
  call for the phone to that node, which relays it to the phone from the socket the phone
  registered on (the ``vxs`` parameter) and to the phone's NAT address when it has one (the
  ``received`` parameter), so that the NAT binding the phone holds with that node keeps working.
  The node itself skips its own hop (registrar ``path_check_local``).
- **Counters of the whole cluster.** A counter (authentication failures, outside calls a minute)
  is kept per node under a key of its own (``<key>|n<node id>``), replicated, and read as the sum
  over the nodes: no two nodes ever write one key, so no count is lost when two nodes count at
  the same moment. The per-request flood counter stays per node; a node tells the others its
  count of an address every ``flood_step`` requests of a slot, so that an address flooding all
  nodes is banned at its cluster total, at most ``flood_step`` per other node late.
- **The media services** (two or more: a dispatcher set): a call the chosen service did not
  answer goes to the next one (``media_failover``).

On a single server (no cluster settings) every key is the plain key and nothing is replicated.

Pure (standard library only).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from urllib.parse import quote

# The Path URI parameter naming the socket the phone registered on (Kamailio's socket string,
# proto:address:port), which the node that took the registration relays the phone's calls from.
SOCKET_PARAM = 'vxs'
# A node is told another's flood count every this share of the limit, per node: with N nodes an
# address is banned at most (N - 1) * step requests after its cluster total passed the limit.
_FLOOD_SHARE = 2


class Cluster(object):
    """This node and the others, from the router settings' ``cluster`` section (the kamailio role
    renders it): ``{"node_id": 2, "address": "10.0.0.12", "port": 5090, "nodes": [{"id": 1,
    "address": "10.0.0.11", "port": 5090}, ...]}``. Empty or missing: a single server."""

    def __init__(self, settings=None):
        settings = settings or {}
        nodes = [(int(n['id']), str(n['address']), int(n['port'])) for n in settings.get('nodes') or ()]
        self.enabled = bool(nodes)
        self.node_id = int(settings.get('node_id') or 0)
        self.address = settings.get('address') or None
        self.port = int(settings.get('port') or 0)
        self.node_ids = tuple(sorted(node_id for node_id, _address, _port in nodes))
        self.others = tuple(node_id for node_id in self.node_ids if node_id != self.node_id)
        # (address, port) of every other node's cluster socket.
        self.peers = frozenset((address, port) for node_id, address, port in nodes if node_id != self.node_id)
        self.socket = 'udp:%s:%d' % (self.address, self.port) if self.enabled else None

    def __repr__(self):
        return 'Cluster(node %s of %s)' % (self.node_id, list(self.node_ids)) if self.enabled else 'Cluster(single)'

    # Who sends ----------------------------------------------------------------------------

    def from_node(self, source, source_port, local_port):
        """Whether a request came from another node: from a node's cluster socket to this node's
        cluster port (``$si``, ``$sp``, ``$Rp``)."""
        if not self.enabled or source_port is None or local_port is None:
            return False
        return int(local_port) == self.port and (source, int(source_port)) in self.peers

    def is_node_uri(self, uri):
        """Whether a next hop (``$du``: a Path's first URI) is another node's cluster socket."""
        if not self.enabled or not uri:
            return False
        hostport = _hostport(uri)
        return hostport is not None and hostport in self.peers

    # The Path of a registration -------------------------------------------------------------

    def path_header(self, registered_socket, received=None):
        """The Path header value a REGISTER is saved with: this node's cluster socket, loose
        routing, the socket it arrived on (``$Rn`` style ``proto:address:port``) and, for a phone
        behind NAT, its received URI (``sip:address:port``, escaped as the path module reads
        it). None on a single server."""
        if not self.enabled:
            return None
        params = ['lr']
        if registered_socket:
            params.append('%s=%s' % (SOCKET_PARAM, registered_socket))
        if received:
            params.append('received=%s' % quote(received, safe=':@[]'))
        return '<sip:%s:%d;%s>' % (self.address, self.port, ';'.join(params))

    # Counters of the whole cluster ----------------------------------------------------------

    def own_key(self, key):
        """The key this node counts ``key`` under (the key itself on a single server)."""
        return '%s|n%d' % (key, self.node_id) if self.enabled else key

    def other_keys(self, key):
        """The keys the other nodes count ``key`` under (none on a single server)."""
        return ['%s|n%d' % (key, node_id) for node_id in self.others]

    def flood_step(self, flood_requests):
        """Every how many requests of a slot a node tells the others its count of an address."""
        return max(1, int(flood_requests) // (_FLOOD_SHARE * max(1, len(self.node_ids))))


def socket_string(proto, address, port):
    """Kamailio's name of a local socket (``udp:10.0.0.5:5060``, ``udp:[2001:db8::5]:5060``) from
    a request's ``$pr``, ``$Ri`` and ``$Rp``; a WebSocket's is its TCP or TLS socket."""
    proto = {'ws': 'tcp', 'wss': 'tls'}.get((proto or 'udp').lower(), (proto or 'udp').lower())
    address = '[%s]' % address if ':' in (address or '') and not address.startswith('[') else address
    return '%s:%s:%s' % (proto, address, port)


def total(own, others):
    """A cluster counter: this node's count and the others' (None or '' when a node has none)."""
    return int(own or 0) + sum(int(value or 0) for value in others)


def hop_socket(route_uri):
    """The socket a node relays a handed-over call from: the ``vxs`` parameter of the Route URI
    this node just consumed (its own Path entry), or None."""
    for param in _params(route_uri):
        name, _sep, value = param.partition('=')
        if name.strip().lower() == SOCKET_PARAM and value:
            return value.strip()
    return None


def media_failover(code, timed_out):
    """Whether a call the chosen media service did not take goes to the next one: no reply at
    all, 408, or any 5xx (the service is gone, overloaded or broken). A 4xx or 6xx the service
    chose (404 no such mailbox, 486, 603) is its answer and is passed on."""
    return bool(timed_out) or code == 408 or 500 <= int(code or 0) < 600


# ---------------------------------------------------------------------------------------------
def _params(uri):
    """The URI parameters of ``<sip:...;a=b;lr>`` or ``sip:...;a=b``, without headers."""
    text = (uri or '').strip()
    if text.startswith('<'):
        text = text[1:text.find('>')] if '>' in text else text[1:]
    text = text.split('?', 1)[0]
    return [p for p in text.split(';')[1:] if p]


def _hostport(uri):
    """(host, port) of a SIP URI (``sip:host:port;params``, in angle brackets or not); the port
    5060 when none is given; None when it is not a SIP URI."""
    text = (uri or '').strip()
    if text.startswith('<'):
        text = text[1:text.find('>')] if '>' in text else text[1:]
    scheme, sep, rest = text.partition(':')
    if not sep or scheme.lower() not in ('sip', 'sips'):
        return None
    rest = rest.split(';', 1)[0].split('?', 1)[0]
    rest = rest.rsplit('@', 1)[-1]
    if rest.startswith('['):
        host, _sep, tail = rest[1:].partition(']')
        port = tail[1:] if tail.startswith(':') else ''
    else:
        host, _sep, port = rest.partition(':')
    try:
        return host.lower(), int(port) if port else 5060
    except ValueError:
        return None
