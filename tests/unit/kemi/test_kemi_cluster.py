# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The KEMI adapter on a node of a cluster (docs/cluster.md), through the KSR double of a cluster
node (api_list_cluster.json: dmq, dmq_usrloc, path, textopsx and dispatcher loaded): the cluster
socket (KDMQ, calls another node hands over, strangers), the Path a REGISTER is saved with, the
branch to another node, replies relayed by a node, counters of the whole cluster and the media
services' dispatcher set. The decisions themselves: tests/unit/plugins/module_utils/test_cluster.py;
three real nodes: tests/sip/test_cluster.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from conftest import loaded_script, settings_for
from ksr_double.ksr_double import DEFAULT_API_LIST, KSRDouble
import kemi_directory
from kemi_directory import DOMAIN, ECOTEL
from test_kemi_adapter import CLUSTER_ONLY, _ksr_references

CLUSTER_API_LIST = os.path.join(os.path.dirname(DEFAULT_API_LIST), 'api_list_cluster.json')
ME, PEER, OTHER = ('10.0.0.12', 5090), ('10.0.0.11', 5090), ('10.0.0.13', 5090)
CLUSTER = {'node_id': 2, 'address': ME[0], 'port': ME[1],
           'nodes': [{'id': 1, 'address': PEER[0], 'port': PEER[1]}, {'id': 2, 'address': ME[0], 'port': ME[1]},
                     {'id': 3, 'address': OTHER[0], 'port': OTHER[1]}]}
SIP_PORT = 5060
MEDIA = ['sip:10.0.1.1:5080', 'sip:10.0.1.2:5080']
PHONE_SOCKET = 'udp:192.0.2.5:5060'


@pytest.fixture(scope='module')
def cluster_directory(tmp_path_factory):
    """kemi_directory's, acme without a media server of its own (its calls go to the PBX's)."""
    directory = kemi_directory.build(tmp_path_factory.mktemp('kemi-cluster-dir') / 'directory.db')
    directory.apply('acme', {'media_server': ''})
    return directory


@pytest.fixture(scope='module')
def cluster_double():
    return KSRDouble(api_list=CLUSTER_API_LIST)


@pytest.fixture(scope='module')
def node(tmp_path_factory, cluster_directory, cluster_double):
    settings = dict(settings_for(cluster_directory.path), cluster=CLUSTER, media_service=MEDIA[0], media_services=MEDIA,
                    media_dispatcher={'set': 1, 'alg': 4}, media={'nat': True})
    with loaded_script(tmp_path_factory.mktemp('kemi-cluster'), settings, cluster_double) as module:
        yield module


@pytest.fixture
def ksr(cluster_double):
    cluster_double.reset()
    cluster_double.pv.clear()
    cluster_double.returns.clear()
    yield cluster_double
    cluster_double.reset()
    cluster_double.pv.clear()
    cluster_double.returns.clear()


@pytest.fixture
def router(node, ksr):
    instance = node.mod_init()
    assert instance.view.current() is not None
    instance.guard.forget()
    ksr.reset()
    return instance


def request(ksr, method, source, source_port=40000, local_port=SIP_PORT, **pv):
    ksr.returns.setdefault('siputils.has_totag', -1)
    ksr.returns.setdefault('tm.t_check_trans', -1)
    ksr.pv.update({'$rm': method, '$si': source, '$sp': source_port, '$Rp': local_port})
    ksr.pv.update(('$' + name, value) for name, value in pv.items())


def from_node(ksr, method, node=PEER, **pv):
    request(ksr, method, node[0], node[1], ME[1], **pv)


def replies(ksr):
    return ksr.called('sl.sl_send_reply') + ksr.called('tm.t_reply')


def warnings(ksr):
    return [message for level, message in ksr.logs if level == 'warn']


# The cluster socket --------------------------------------------------------------------------

def test_kdmq_from_a_node_goes_to_dmq(router, ksr):
    from_node(ksr, 'KDMQ')
    assert router.ksr_request_route(None) == 1
    assert ksr.called('dmq.handle_message') == [()]
    # Before any check of a phone's request: no ban table, no flood count, no reply.
    assert not ksr.called('htable.sht_get') and not ksr.called('htable.sht_inc') and replies(ksr) == []


@pytest.mark.parametrize('source, port, method', [
    ('203.0.113.9', 5090, 'KDMQ'),        # a stranger
    (PEER[0], 40000, 'KDMQ'),              # a node's address, but not its cluster socket (a phone there)
    ('203.0.113.9', 5090, 'INVITE'),
])
def test_anything_else_on_the_cluster_socket_is_dropped_without_a_reply(router, ksr, source, port, method):
    request(ksr, method, source, port, ME[1])
    assert router.ksr_request_route(None) == 1
    assert ksr.called('dmq.handle_message') == [] and replies(ksr) == [] and ksr.called('tm.t_relay') == []
    assert warnings(ksr) == ['voxplane: dropped a request to the cluster socket from %s:%s, not a node\n'
                             % (source, port)]


def test_a_kdmq_on_the_sip_port_is_a_phones_request(router, ksr):
    """The SIP port is not the cluster socket: a KDMQ there is any request of an unknown method."""
    request(ksr, 'KDMQ', PEER[0], PEER[1], SIP_PORT, rU='usrloc')
    router.ksr_request_route(None)
    assert ksr.called('dmq.handle_message') == []
    assert replies(ksr) == [(405, 'Method Not Allowed')]


def test_a_call_another_node_hands_over_is_relayed_from_the_phones_socket(router, ksr):
    route = '<sip:%s:%d;lr;vxs=%s>' % (ME[0], ME[1], PHONE_SOCKET)
    from_node(ksr, 'INVITE', **{'hdr(Route)': route})
    assert router.ksr_request_route(None) == 1
    names = [c.name for c in ksr.calls if c.name != 'pv.get']
    assert names.index('rr.loose_route_preloaded') < names.index('tm.t_relay')
    assert ksr.pv['$fs'] == PHONE_SOCKET
    assert ksr.called('rr.record_route') == [()] and ksr.called('dialog.dlg_manage') == [()]
    assert ksr.called('tm.t_on_reply') == [('ksr_reply_route_media',)]
    assert ksr.called('isbflagset') == [] and ksr.called('setbflag') == []   # the phone is not behind NAT
    # No authentication: the node that handed it over did that.
    assert ksr.called('auth.pv_auth_check') == [] and ksr.called('auth.auth_challenge') == [] and replies(ksr) == []


def test_a_handed_over_call_to_a_phone_behind_nat_is_its_nated_branch(router, ksr):
    route = '<sip:%s:%d;lr;vxs=%s;received=sip:198.51.100.7:40000>' % (ME[0], ME[1], PHONE_SOCKET)
    from_node(ksr, 'INVITE', **{'hdr(Route)': route})
    # loose_route's path callback sets the next hop from the received parameter
    ksr.returns['rr.loose_route_preloaded'] = lambda: ksr.pv.update({'$du': 'sip:198.51.100.7:40000'}) or 1
    router.ksr_request_route(None)
    assert ksr.called('setbflag') == [(7,)]           # the reply route aliases the phone's Contact here
    assert ksr.called('tm.t_relay') == [()]


def test_a_request_on_the_cluster_socket_without_our_route_is_refused(router, ksr):
    from_node(ksr, 'INVITE')
    ksr.returns['rr.loose_route_preloaded'] = -1
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'Not a Path of this node')] and ksr.called('tm.t_relay') == []


def test_a_handed_over_message_is_relayed_without_a_dialog(router, ksr):
    from_node(ksr, 'NOTIFY', **{'hdr(Route)': '<sip:%s:%d;lr;vxs=%s>' % (ME[0], ME[1], PHONE_SOCKET)})
    router.ksr_request_route(None)
    assert ksr.called('tm.t_relay') == [()] and ksr.called('rr.record_route') == []
    assert ksr.called('dialog.dlg_manage') == []


@pytest.mark.parametrize('method', ['CANCEL', 'ACK'])
def test_cancel_and_ack_from_a_node_follow_their_transaction(router, ksr, method):
    from_node(ksr, method)
    ksr.returns['tm.t_check_trans'] = 1
    router.ksr_request_route(None)
    assert ksr.called('tm.t_relay') == [()] and replies(ksr) == []


def test_an_in_dialog_request_from_a_node_needs_a_dialog_here(router, ksr):
    from_node(ksr, 'BYE')
    ksr.returns['siputils.has_totag'] = 1
    ksr.returns['dialog.is_known_dlg'] = -1
    router.ksr_request_route(None)
    assert replies(ksr) == [(481, 'Call/Transaction Does Not Exist')]
    ksr.reset()
    ksr.returns['dialog.is_known_dlg'] = 1
    router.ksr_request_route(None)
    assert ksr.called('rr.loose_route') == [()] and ksr.called('tm.t_relay') == [()]


def test_a_retransmission_from_a_node_is_absorbed(router, ksr):
    from_node(ksr, 'INVITE')
    ksr.returns['tm.t_check_trans'] = 0
    router.ksr_request_route(None)
    assert ksr.called('tm.t_relay') == [] and replies(ksr) == []


# Registrations -------------------------------------------------------------------------------

def register(ksr, user, source='198.51.100.70', **pv):
    request(ksr, 'REGISTER', source, 40000, SIP_PORT, td=DOMAIN, tU=user, fd=DOMAIN, fU=user, au=user,
            ru='sip:' + DOMAIN, adu='sip:' + DOMAIN, pr='udp', Ri='192.0.2.5', **pv)
    ksr.pv['$(hdr(Contact)[*])'] = '<sip:%s@%s:40000>' % (user, source)


def test_a_registration_is_saved_with_a_path_naming_this_node(router, ksr):
    register(ksr, 'max.muster')
    router.ksr_request_route(None)
    assert ksr.called('hdr.insert') == [('Path: <sip:10.0.0.12:5090;lr;vxs=udp:192.0.2.5:5060>\r\n',)]
    names = [c.name for c in ksr.calls]
    assert names.index('hdr.insert') < names.index('textopsx.msg_apply_changes') < names.index('registrar.save')


def test_a_phone_behind_nat_has_its_address_in_the_path(router, ksr):
    register(ksr, 'max.muster', **{'avp(RECEIVED)': 'sip:198.51.100.70:40000'})
    ksr.returns['nathelper.nat_uac_test'] = 1
    router.ksr_request_route(None)
    assert ksr.called('nathelper.fix_nated_register') == [()]
    assert ksr.called('hdr.insert') == [
        ('Path: <sip:10.0.0.12:5090;lr;vxs=udp:192.0.2.5:5060;received=sip:198.51.100.70:40000>\r\n',)]


# Calls to a phone registered with another node ------------------------------------------------

def test_the_branch_to_another_node_leaves_from_the_cluster_socket(router, ksr):
    request(ksr, 'INVITE', ECOTEL[1], 5060, SIP_PORT, rU=kemi_directory.SINGLE, fd='carrier.example',
            fU='+4989555000')
    ksr.returns['registrar.lookup_uri'] = lambda table, uri: ksr.pv.update(
        {'$du': 'sip:%s:%d;lr;vxs=udp:10.0.0.11:5060' % PEER, '$dd': PEER[0]}) or 1
    router.ksr_request_route(None)
    assert ksr.called('tm.t_relay') == [()]
    router.ksr_branch_route_one(None)
    assert ksr.pv['$fs'] == 'udp:10.0.0.12:5090'


def test_a_branch_to_a_phone_stays_on_its_socket(router, ksr):
    request(ksr, 'INVITE', ECOTEL[1], 5060, SIP_PORT, rU=kemi_directory.SINGLE, fd='carrier.example',
            fU='+4989555000', du='sip:198.51.100.7:40000', dd='198.51.100.7')
    router.ksr_branch_route_one(None)
    assert '$fs' not in ksr.pv


def test_a_reply_relayed_by_another_node_gets_no_alias_here(router, ksr):
    ksr.pv.update({'$si': PEER[0], '$sp': PEER[1], '$Rp': ME[1], '$hdr(Contact)': '<sip:max@10.1.1.1:5060>'})
    ksr.returns['isbflagset'] = 1
    router.ksr_reply_route_media(None)
    assert ksr.called('nathelper.set_contact_alias') == []
    ksr.pv.update({'$si': '198.51.100.7', '$sp': 40000, '$Rp': SIP_PORT})
    router.ksr_reply_route_media(None)
    assert ksr.called('nathelper.set_contact_alias') == [()]


# Protection for the whole cluster --------------------------------------------------------------

def test_authentication_failures_are_counted_per_node_and_added_up(router, ksr):
    register(ksr, 'max.muster')
    ksr.returns['auth.pv_auth_check'] = -2
    ksr.returns['htable.sht_inc'] = lambda table, key: 4 if table == 'vxfail' else 1
    others = {}
    ksr.returns['htable.sht_get'] = lambda table, key: others.get((table, key))
    window = None
    router.ksr_request_route(None)
    (table, key), = [args for args in ksr.called('htable.sht_inc') if args[0] == 'vxfail']
    window = key.split('|')[1]
    assert key == '198.51.100.70|%s|n2' % window
    # the other nodes' counts are read: 4 here, 3 and 2 there are 9 (one below the limit of 10) ...
    assert [args for args in ksr.called('htable.sht_get') if args[0] == 'vxfail'] == [
        ('vxfail', '198.51.100.70|%s|n1' % window), ('vxfail', '198.51.100.70|%s|n3' % window)]
    assert ksr.called('htable.sht_seti') == []
    # ... and with 3 and 3 it is the tenth: banned (the ban is replicated by the table)
    ksr.reset()
    others.update({('vxfail', '198.51.100.70|%s|n1' % window): 3, ('vxfail', '198.51.100.70|%s|n3' % window): 3})
    router.ksr_request_route(None)
    assert ksr.called('htable.sht_seti') == [('vxban', '198.51.100.70', 1)]
    assert 'voxplane: banned 198.51.100.70 for 900 s: 10 authentication failures\n' in warnings(ksr)


def test_a_nodes_flood_count_is_told_every_step_and_the_others_added(router, ksr):
    register(ksr, 'max.muster', source='198.51.100.8')
    step = router.guard.flood_step
    assert step == 16                                   # 100 requests a slot over 3 nodes, told at 1/2 of a share
    count = {'n': step - 1}
    ksr.returns['htable.sht_inc'] = lambda table, key: count['n'] if table == 'vxflood' else 1
    router.ksr_request_route(None)                      # below a step: nothing told, nothing read

    def told():
        return [args for args in ksr.called('htable.sht_seti') if args[0] == 'vxfloodn']
    assert told() == [] and not [a for a in ksr.called('htable.sht_get') if a[0] == 'vxfloodn']
    ksr.reset()
    count['n'] = step
    router.ksr_request_route(None)
    (table, key, value), = told()
    assert table == 'vxfloodn' and key.startswith('198.51.100.8|') and key.endswith('|n2') and value == step
    assert [a[1].rsplit('|', 1)[1] for a in ksr.called('htable.sht_get') if a[0] == 'vxfloodn'] == ['n1', 'n3']
    # 40 here and 40 + 30 told by the others: 110 > 100, an unknown address is banned
    ksr.reset()
    count['n'] = 40
    ksr.returns['htable.sht_get'] = lambda table, key: {'n1': 40, 'n3': 30}.get(key.rsplit('|', 1)[1]) \
        if table == 'vxfloodn' else None
    router.ksr_request_route(None)
    assert ('vxban', '198.51.100.8', 1) in ksr.called('htable.sht_seti') and replies(ksr) == []


def test_outside_calls_a_minute_count_on_every_node(tmp_path):
    """erika (11) may make 2 outside calls a minute: 1 here and 1 on node 3 are 2, the third is refused."""
    double = KSRDouble(api_list=CLUSTER_API_LIST)
    directory = kemi_directory.build(tmp_path / 'directory.db')
    directory.apply('acme', None, {'extension': {'11': {'max_outside_calls_per_minute': 2}}})
    settings = dict(settings_for(directory.path), cluster=CLUSTER)
    with loaded_script(tmp_path / 'kemi', settings, double) as module:
        router = module.mod_init()
        ruri = 'sip:040123456@' + DOMAIN
        request(double, 'INVITE', '10.0.0.5', 40000, SIP_PORT, rU='040123456', ru=ruri, adu=ruri, fd=DOMAIN,
                fU='erika.desk', au='erika.desk')
        told = {}
        double.returns['htable.sht_get'] = lambda table, key: told.get(key) if table == 'vxrate' else None
        router.ksr_request_route(None)
        (table, key), = [args for args in double.called('htable.sht_inc') if args[0] == 'vxrate']
        assert key.endswith('|n2') and double.called('tm.t_relay') == [()]
        told[key] = 1
        told[key[:-1] + '3'] = 1
        double.reset()
        request(double, 'INVITE', '10.0.0.5', 40000, SIP_PORT, rU='040123456', ru=ruri, adu=ruri, fd=DOMAIN,
                fU='erika.desk', au='erika.desk')
        router.ksr_request_route(None)
        assert double.called('sl.sl_send_reply') == [
            (403, 'Outside call limit reached: 2 calls a minute for extension 11')]
        assert not [args for args in double.called('htable.sht_inc') if args[0] == 'vxrate']


# The media services: a dispatcher set ----------------------------------------------------------

def to_voicemail(ksr):
    """max.muster calls dora (47: DND and voicemail): a call to the PBX's media service."""
    ruri = 'sip:47@' + DOMAIN
    request(ksr, 'INVITE', '10.0.0.5', 40000, SIP_PORT, rU='47', ru=ruri, adu=ruri, fd=DOMAIN, fU='max.muster',
            au='max.muster')


def test_a_call_to_the_media_service_picks_one_of_the_set(router, ksr):
    to_voicemail(ksr)
    router.ksr_request_route(None)
    assert ksr.called('dispatcher.ds_select_dst') == [(1, 4)] and ksr.called('setdsturi') == []
    assert ksr.pv['$avp(vx_ds)'] == '1' and ksr.called('tm.t_relay') == [()]


def test_without_a_media_service_answering_probes_the_call_gets_503(router, ksr):
    to_voicemail(ksr)
    ksr.returns['dispatcher.ds_select_dst'] = -1
    router.ksr_request_route(None)
    assert replies(ksr) == [(503, 'Media Service Unavailable')] and ksr.called('tm.t_relay') == []
    assert warnings(ksr) == ['voxplane: no media service answers its probes\n']


def media_failure(ksr, code, timeout=False):
    ksr.pv.update({'$avp(vx_ds)': '1', '$T_reply_code': code, '$du': MEDIA[1]})
    ksr.returns['tm.t_branch_timeout'] = 1 if timeout else -1
    ksr.returns['tm.t_is_canceled'] = -1


@pytest.mark.parametrize('code, timeout', [(408, True), (503, False), (500, False)])
def test_a_media_service_that_does_not_take_the_call_is_replaced_by_the_next(router, ksr, code, timeout):
    media_failure(ksr, code, timeout)
    router.ksr_failure_route_call(None)
    assert ksr.called('dispatcher.ds_mark_dst_state') == [('ip',)] and ksr.called('dispatcher.ds_next_dst') == [()]
    assert ksr.called('tm.t_on_branch') == [('ksr_branch_route_one',)]
    assert ksr.called('tm.t_on_failure') == [('ksr_failure_route_call',)] and ksr.called('tm.t_relay') == [()]


def test_the_media_services_own_answer_is_passed_on(router, ksr):
    media_failure(ksr, 486)
    router.ksr_failure_route_call(None)
    assert ksr.called('dispatcher.ds_next_dst') == [] and ksr.called('tm.t_relay') == []


def test_when_no_media_service_is_left_the_failure_is_passed_on(router, ksr):
    media_failure(ksr, 408, timeout=True)
    ksr.returns['dispatcher.ds_next_dst'] = -1
    router.ksr_failure_route_call(None)
    assert ksr.called('tm.t_relay') == [] and replies(ksr) == []


def test_a_single_media_service_is_used_as_it_is(tmp_path, cluster_directory):
    double = KSRDouble(api_list=CLUSTER_API_LIST)
    settings = dict(settings_for(cluster_directory.path), media_service=MEDIA[0], media_services=MEDIA[:1],
                    media_dispatcher={})
    with loaded_script(tmp_path / 'kemi', settings, double) as module:
        router = module.mod_init()
        to_voicemail(double)
        router.ksr_request_route(None)
    assert double.called('setdsturi') == [(MEDIA[0],)] and double.called('dispatcher.ds_select_dst') == []


# The double --------------------------------------------------------------------------------------

def test_every_cluster_function_the_script_uses_is_a_cluster_nodes():
    """What the script calls only on a cluster (or with a media dispatcher set) is in the cluster
    node's api list, and the tests above call each of those."""
    default = set(KSRDouble().functions())
    cluster = set(KSRDouble(api_list=CLUSTER_API_LIST).functions())
    referenced = _ksr_references()
    assert referenced <= cluster, sorted(referenced - cluster)
    assert referenced - default == CLUSTER_ONLY
