# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""inventories/cluster and playbooks/site.yml (docs/cluster.md): what each host of the example
inventory gets (the variables as the roles will see them), that site.yml parses and, with the
inventory's placeholder secrets still in place, refuses to run before it touches any host. The
roles deploying such a cluster for real: tests/sip/test_cluster.py (lab.cluster)."""

import json
import os

from conftest import REPO
from lab.playbook import run_playbook

INVENTORY = os.path.join(REPO, 'inventories', 'cluster')
SITE = os.path.join(REPO, 'playbooks', 'site.yml')

SHOW = """\
- hosts: pbx_database:sip_nodes:media_services
  gather_facts: false
  tasks:
    - name: The variables the roles get
      ansible.builtin.copy:
        content: >-
          {%%- set out = {} -%%}
          {%%- for name in present -%%}{%%- set _ = out.update({name: lookup('ansible.builtin.vars', name)}) -%%}{%%- endfor -%%}
          {{ out | to_json }}
        dest: "%s/{{ inventory_hostname }}.json"
        mode: "0644"
      vars:
        wanted: %s
        present: "{{ wanted | select('in', hostvars[inventory_hostname]) | list }}"
"""

NODE_VARIABLES = ['kamailio_cluster_nodes', 'kamailio_cluster_address', 'kamailio_cluster_port', 'kamailio_listen',
                  'kamailio_directory_path', 'kamailio_directory_password', 'kamailio_auth_secret',
                  'kamailio_media_service']
MEDIA_VARIABLES = ['media_listen_address', 'media_listen_port', 'media_kamailio_addresses', 'media_directory_path',
                   'media_directory_password']
DATABASE_VARIABLES = ['postgresql_listen_addresses', 'postgresql_clients', 'postgresql_owner_password',
                      'postgresql_kamailio_password', 'postgresql_media_password', 'postgresql_directory_sslmode']


def host_variables(tmp_path, wanted):
    play = tmp_path / 'show.yml'
    play.write_text(SHOW % (tmp_path, json.dumps(wanted)))
    run = run_playbook(str(play), inventory=INVENTORY)
    assert run.rc == 0, repr(run)
    return {path.stem: json.loads(path.read_text()) for path in tmp_path.glob('*.json')}


def test_three_sip_nodes_in_one_cluster_on_the_private_network(tmp_path):
    nodes = host_variables(tmp_path, NODE_VARIABLES)
    nodes = {name: v for name, v in nodes.items() if name.startswith('sip')}
    assert sorted(nodes) == ['sip1.pbx.example.net', 'sip2.pbx.example.net', 'sip3.pbx.example.net']
    members = [{'id': 1, 'address': '10.0.0.11'}, {'id': 2, 'address': '10.0.0.12'}, {'id': 3, 'address': '10.0.0.13'}]
    for index, (name, variables) in enumerate(sorted(nodes.items())):
        assert variables['kamailio_cluster_nodes'] == members, name      # the same list on every node
        assert variables['kamailio_cluster_address'] == members[index]['address']
        assert variables['kamailio_cluster_port'] == 5090
        public = '192.0.2.1%d' % (index + 1)
        assert [(e['proto'], e['address'], e['port']) for e in variables['kamailio_listen']] == [
            ('udp', public, 5060), ('tcp', public, 5060), ('tls', public, 5061)]
        # The shared directory on the database host, as the Kamailio user, over TLS.
        assert variables['kamailio_directory_path'] == \
            'host=10.0.0.5 port=5432 dbname=voxplane user=voxplane_kamailio sslmode=require'
        assert variables['kamailio_directory_password'].startswith('CHANGE-ME')      # from the vault file
        assert len(variables['kamailio_auth_secret']) >= 32
        assert len(variables['kamailio_media_service']) == 2                        # a dispatcher set


def test_the_database_host_serves_the_private_network(tmp_path):
    database = host_variables(tmp_path, DATABASE_VARIABLES)['db1.pbx.example.net']
    assert database['postgresql_listen_addresses'] == ['10.0.0.5']
    assert database['postgresql_clients'] == ['10.0.0.0/24']
    assert database['postgresql_directory_sslmode'] == 'require'
    assert database['postgresql_owner_password'] != database['postgresql_kamailio_password']
    assert database['postgresql_media_password'] not in (database['postgresql_owner_password'],
                                                         database['postgresql_kamailio_password'])


def test_two_media_services_take_calls_from_the_nodes_and_are_their_dispatcher_set(tmp_path):
    hosts = host_variables(tmp_path, MEDIA_VARIABLES + NODE_VARIABLES)
    services = {name: v for name, v in hosts.items() if name.startswith('media')}
    assert sorted(services) == ['media1.pbx.example.net', 'media2.pbx.example.net']
    uris = hosts['sip1.pbx.example.net']['kamailio_media_service']
    for name, variables in sorted(services.items()):
        # SIP from the nodes' cluster addresses only; each service is one the nodes dispatch to.
        assert variables['media_kamailio_addresses'] == ['10.0.0.11', '10.0.0.12', '10.0.0.13'], name
        assert 'sip:%s:%d' % (variables['media_listen_address'], variables['media_listen_port']) in uris
        assert variables['media_directory_path'] == 'host=10.0.0.5 port=5432 dbname=voxplane user=voxplane_media sslmode=require'
        assert variables['media_directory_password'].startswith('CHANGE-ME')


def test_site_yml_parses_and_refuses_the_placeholder_secrets_before_anything_else(tmp_path):
    syntax = run_playbook(SITE, inventory=INVENTORY, options=['--syntax-check'])
    assert syntax.rc == 0, repr(syntax)
    run = run_playbook(SITE, inventory=INVENTORY)
    assert run.rc != 0 and 'still holds the inventory\'s placeholder' in run.stdout, repr(run)
    # Only the first play ran: no role task was reached.
    assert 'TASK [voxplane.pbx.' not in run.stdout
