# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cluster of Kamailio nodes on one PostgreSQL directory (docs/cluster.md), every part real:
``kamailio_cluster(nodes=3)`` starts a PostgreSQL server (lab.postgresql), then deploys each
node with ``kamailio_lab()`` (the real directory and kamailio roles) on an address of its own,
all with the same ``kamailio_cluster_nodes``, provisions tenants.yml once (through the first
node's playbook run: they share the directory) and waits until every node routes with it.

    with kamailio_cluster() as cluster:
        a, b, c = cluster.nodes                 # lab.kamailio.KamailioInstance each
        phone = cluster.phone(a, 'bert.desk')   # a phone on an address of its own, registered with a
        cluster.trunk                           # the trunk stand-in's address (trusted by every node)
        cluster.media                           # with media_services=2: lab.media.MediaInstance each

Addresses: each node, the trunk stand-in and the phones get a 127.0.0.x of their own from one
``lab.net.AddressPool`` (a phone at a node's address would look like that node). Each node's
cluster socket is UDP on its own address and a free port. At the end every node is stopped and
the server removed (VOXPLANE_SIP_KEEP=1 keeps the nodes' trees, VOXPLANE_PG_KEEP=1 the server's).
"""

import contextlib
import os
import re
import time

from lab.kamailio import LabError, kamailio_lab
from lab.media import media_lab
from lab.net import AddressPool, free_port, wait_for
from lab.postgresql import postgresql_lab
from lab.sipp import Phone
from lab.wire import wait_for_options

DATABASE = 'voxplane'


class Cluster(object):
    """The running cluster: ``nodes`` (KamailioInstance, in the order of kamailio_cluster_nodes),
    ``server`` (lab.postgresql.PostgresqlServer), ``trunk`` (the trunk stand-in's address, trusted
    by every node; its port is the first node's trunk_port, which tenants.yml names), ``pool``
    (more addresses), ``members`` (the kamailio_cluster_nodes entries), ``media`` (the media
    services, lab.media.MediaInstance, on the same directory)."""

    def __init__(self, server, pool, trunk, members):
        self.server = server
        self.pool = pool
        self.trunk = trunk
        self.members = members
        self.nodes = []
        self.media = []

    @property
    def directory(self):
        """The directory's location with the superuser's password (for playbooks and reads)."""
        return self.server.location(DATABASE)

    def phone(self, node, username, domain='acme.sip.test'):
        """A phone (lab.sipp.Phone) of tenants.yml on an address of its own, registering with ``node``."""
        return Phone(node, username, domain, address=self.pool.take())

    def contacts(self, node, aor):
        """The contacts ``kamcmd ul.lookup`` shows on ``node`` for ``aor``, with their Paths:
        [(address, path or None)]."""
        out = node.kamcmd('ul.lookup', 'location', aor).stdout
        found = []
        for block in out.split('Contact:')[1:]:
            address = re.search(r'Address: (\S+)', block)
            path = re.search(r'Path: (<[^\n]*>)', block)
            if address:
                found.append((address.group(1), path.group(1) if path else None))
        return found

    def wait_for_contact(self, aor, contact, nodes=None, timeout=5.0):
        """Wait until every node of ``nodes`` (default all) holds ``contact`` for ``aor``; the
        seconds it took, None when one did not within ``timeout``."""
        started = time.monotonic()
        nodes = self.nodes if nodes is None else nodes

        def everywhere():
            return all(contact in [c for c, _path in self.contacts(node, aor)] for node in nodes)
        if wait_for(everywhere, timeout, interval=0.02):
            return time.monotonic() - started
        return None

    def restart(self, node, timeout=20):
        """Stop and start ``node`` with its control script; wait until it answers OPTIONS."""
        proc = node.control('restart', timeout=60)
        if proc.returncode != 0:
            raise LabError('restart failed: %s %s\n%s' % (proc.stdout, proc.stderr, node.log_tail()))
        if not wait_for_options(node.address, node.port, timeout=timeout):
            raise LabError('%s did not answer OPTIONS after a restart\n%s' % (node.address, node.log_tail()))

    def dmq_nodes(self, node):
        """What ``kamcmd dmq.list_nodes`` of ``node`` says: [(host, port, status)]."""
        out = node.kamcmd('dmq.list_nodes').stdout
        return re.findall(r'host: (\S+)\s+port: (\d+)\s+resolved_ip: \S+\s+status: (\w+)', out)


@contextlib.contextmanager
def kamailio_cluster(nodes=3, prefix='voxplane-cluster-', server=None, media_services=0, **role_variables):
    """A PostgreSQL server (``server``, else one of its own) and ``nodes`` Kamailio nodes sharing
    its directory, deployed one after the other by the real roles with ``role_variables`` over
    lab.kamailio's; tenants.yml provisioned once, through the first node. ``media_services``: that
    many real media services deployed first by the media role (lab.media.media_lab, each on an
    address of its own, taking calls from every node, on the cluster's PostgreSQL directory with
    the password in its passfile: ``Cluster.media``), the nodes' kamailio_media_service, and the
    tenants without a media_server of their own, so that their calls to the PBX's media service go
    through the dispatcher set. Yields a Cluster; a node or service that does not come up raises
    lab.kamailio.LabError."""
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(postgresql_lab(prefix=prefix + 'pg-'))
        server.create_database(DATABASE)
        pool = AddressPool(exclude=[server.address])
        addresses = [pool.take() for _node in range(nodes)]
        trunk = pool.take()
        members = [{'address': address, 'port': free_port(address, tcp=False)} for address in addresses]
        cluster = Cluster(server, pool, trunk, members)
        bare = server.location(DATABASE, password='')  # the password comes from the role's passfile
        for index in range(media_services):
            cluster.media.append(stack.enter_context(media_lab(
                prefix='%sm%d-' % (prefix, index + 1), address=pool.take(), kamailio_addresses=addresses, max_calls=4,
                directory_path=bare, directory_password=server.password)))
        if media_services:
            role_variables.setdefault('kamailio_media_service', [service.uri for service in cluster.media])
        for index, member in enumerate(members):
            variables = dict(kamailio_directory_path=bare, kamailio_directory_password=server.password,
                             directory_password=server.password, kamailio_cluster_nodes=members,
                             kamailio_cluster_port=member['port'], kamailio_trusted_trunks=[trunk],
                             kamailio_ban_exempt=[member['address']])
            variables.update(role_variables)
            node = stack.enter_context(kamailio_lab(
                prefix='%sn%d-' % (prefix, index + 1), address=member['address'], trunk=trunk, provision=False,
                setup=lambda instance: setattr(instance, 'directory_path', cluster.directory), **variables))
            if not cluster.nodes:  # tenants.yml through the first node: it names that node's trunk port
                extra = {'media_server': ''} if media_services else {}
                result = node.provision(**extra)
                if result.rc != 0:
                    raise LabError('tenants.yml failed: %r' % (result,))
            else:
                node.trunk_port, node.media_port = cluster.nodes[0].trunk_port, cluster.nodes[0].media_port
            if not node.wait_for_directory():
                raise LabError('%s does not route with the tenants\n%s' % (node.address, node.log_tail()))
            cluster.nodes.append(node)
        yield cluster


def node_processes_cpu(node):
    """CPU seconds (user + system) used so far by ``node``'s Kamailio processes (lab.kamailio's
    process tree), for the benchmarks."""
    from lab.kamailio import process_tree  # pylint: disable=import-outside-toplevel
    ticks = os.sysconf('SC_CLK_TCK')
    total = 0
    for pid in process_tree(node.pid_file):
        try:
            with open('/proc/%d/stat' % pid) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / float(ticks)
