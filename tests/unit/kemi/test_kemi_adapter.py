# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kemi/voxplane_kemi.py driven through the KSR double over a real SQLite directory.

Each test scripts the pv values and KSR returns a SIP request would give, runs
``ksr_request_route`` or ``ksr_failure_route_call`` and checks the KSR calls the adapter made
(docs/routing.md). The directory is described in kemi_directory.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import copy
import os
import re
import sqlite3
import sys
import time
import types

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION
from ansible_collections.voxplane.pbx.plugins.module_utils.schema import LATEST_VERSION
from conftest import KEMI_SCRIPT, loaded_script, settings_for
from ksr_double.ksr_double import KSRDouble
import kemi_directory
from kemi_directory import (
    B_MAIN, B_TRUNK, BETA_DOMAIN, BLOCK, DOMAIN, ECOTEL, EXTRA_TRUSTED, GAMMA_DOMAIN, HQ_ECID, HUNT, MOBILE_10,
    MOBILE_45, MOBILE_46, OUTSIDE, PASSWORD, SINGLE, UNKNOWN_DOMAIN,
)

ANONYMOUS = 'sip:anonymous@anonymous.invalid'   # routing.ANONYMOUS_URI: a bare addr-spec (RFC 3325 allows it)
MAX_DDI = '+4930123410'                           # extension 10's own number: DDI 10 of the block
FAILURE_ROUTE = 'ksr_failure_route_call'
BRANCH_ROUTE = 'ksr_branch_route_one'
GENERATION_SQL = 'SELECT generation FROM voxplane_generation WHERE id = 1'
QOP_AUTH = 1                                      # auth_challenge flags: qop=auth


# Helpers -------------------------------------------------------------------------------------

def sip(user, domain=DOMAIN):
    return '<sip:%s@%s>' % (user, domain)


def trunk_uri(user, host=ECOTEL[0], port=5060):
    return 'sip:%s@%s:%d' % (user, host, port)


def new_request(ksr, method, **pv):
    """An out-of-dialog request without a transaction yet; pv given without '$' (rU=...).
    The source address is an ordinary one unless ``si`` says otherwise."""
    ksr.returns.setdefault('siputils.has_totag', -1)
    ksr.returns.setdefault('tm.t_check_trans', -1)
    ksr.pv['$rm'] = method
    ksr.pv['$si'] = '203.0.113.50'
    ksr.pv.update(('$' + name, value) for name, value in pv.items())


def registered(ksr, *users, **kw):
    """Only these accounts have contacts in usrloc."""
    domain = kw.get('domain', DOMAIN)
    uris = set('sip:%s@%s' % (user, domain) for user in users)

    def lookup(table, uri):
        assert table == 'location'
        return 1 if uri in uris else -1
    ksr.returns['registrar.lookup_uri'] = lookup
    ksr.returns['registrar.lookup_to_dset'] = lookup


def from_account(ksr, user, dialled, domain=DOMAIN, source='10.0.0.5'):
    """An INVITE of an authenticated account (pv_auth_check succeeds by default) whose digest
    was computed for its Request-URI."""
    ruri = 'sip:%s@%s' % (dialled, domain)
    new_request(ksr, 'INVITE', si=source, rU=dialled, ru=ruri, adu=ruri, fd=domain, fU=user, au=user)


def inbound(ksr, dialled, source=ECOTEL[1]):
    new_request(ksr, 'INVITE', si=source, rU=dialled, fd='carrier.example', fU='+4989555000')


def failure(ksr, context, code=None, timeout=False, canceled=False):
    ksr.pv.update({'$avp(vx_ctx)': context, '$T_reply_code': code, '$ou': 'sip:+4930999001@pbx.voxplane.example'})
    ksr.returns['tm.t_branch_timeout'] = 1 if timeout else -1
    ksr.returns['tm.t_is_canceled'] = 1 if canceled else -1


def calls(ksr, *names):
    """(name, args) of the calls to these functions, in order."""
    return [(c.name, c.args) for c in ksr.calls if c.name in names]


def failures_of(ksr):
    """The source addresses whose authentication failures were counted (vxfail keys are
    <address>|<window>)."""
    return [key.split('|')[0] for table, key in ksr.called('htable.sht_inc') if table == 'vxfail']


def admission(call):
    """Part of a request's admission check: a look into a table (the ban table first), or the
    count of the source's requests in the shared table vxflood."""
    return call.name == 'htable.sht_get' or (call.name == 'htable.sht_inc' and call.args[0] == 'vxflood')


def ksr_calls(ksr):
    """Every call except reading pv values and the admission check: what the script *did*."""
    return [(c.name, c.args) for c in ksr.calls if c.name != 'pv.get' and not admission(c)]


def errors(ksr):
    return [message for level, message in ksr.logs if level == 'err']


def replies(ksr):
    return ksr.called('sl.sl_send_reply') + ksr.called('tm.t_reply')


def index(ksr, name, args=None):
    for position, call in enumerate(ksr.calls):
        if call.name == name and (args is None or call.args == args):
            return position
    raise AssertionError('%s%s not called: %s' % (name, args or '', ksr.call_names()))


ANY = object()


def relayed(router, ksr):
    """The route armed the branch route before t_relay and changed no header itself (request
    route lumps would stay with the transaction); then tm runs the branch route for the new
    branch, whose header calls follow t_relay."""
    assert ksr.called('tm.t_on_branch') == [(BRANCH_ROUTE,)]
    assert index(ksr, 'tm.t_on_branch') < index(ksr, 'tm.t_relay')
    assert calls(ksr, 'hdr.remove', 'hdr.append') == []
    assert router.ksr_branch_route_one(None) == 1
    assert errors(ksr) == []


def assert_rings(ksr, aors, ring_time, context, identity=None, diversion=()):
    """The request route's Ring: lookups, context, fr timer, t_relay (in this order), then the
    headers of the branch route (run by relayed())."""
    uris = ['sip:' + aor for aor in aors]
    looked_up = [args[1] for args in ksr.called('registrar.lookup_uri') + ksr.called('registrar.lookup_to_dset')]
    for uri in uris:
        assert uri in looked_up, (uri, looked_up)
    if identity is ANY:
        pass
    elif identity:
        assert calls(ksr, 'hdr.remove', 'hdr.append')[:2] == [
            ('hdr.remove', ('P-Asserted-Identity',)), ('hdr.append', ('P-Asserted-Identity: %s\r\n' % identity,))]
    else:
        assert ('P-Asserted-Identity',) not in ksr.called('hdr.remove')
        assert not [a for a in ksr.called('hdr.append') if a[0].startswith('P-Asserted-Identity')]
    assert [a[0] for a in ksr.called('hdr.append') if a[0].startswith('Diversion')] == \
        ['Diversion: %s\r\n' % entry for entry in diversion]
    assert ksr.pv['$avp(vx_ctx)'] == context
    assert ksr.called('tm.t_set_fr') == [(ring_time * 1000, 0)]
    assert ksr.called('tm.t_relay') == [()]
    assert all(index(ksr, name) > index(ksr, 'tm.t_relay') for name in ('hdr.remove', 'hdr.append')
               if ksr.called(name))
    assert index(ksr, 'tm.t_set_fr') < index(ksr, 'tm.t_relay')
    assert index(ksr, 'pv.sets', ('$avp(vx_ctx)', context)) < index(ksr, 'tm.t_relay')
    assert replies(ksr) == []
    assert errors(ksr) == []


def ha1(user, domain=DOMAIN):
    """The HA1 the directory stores for an account."""
    return rules.ha1(user, domain, PASSWORD)


# Loading -------------------------------------------------------------------------------------

def test_loads_settings_and_exposes_the_app_python3_entry_points(kemi, directory):
    assert kemi.SETTINGS['directory_path'] == directory.path
    assert kemi.VIEW.path == directory.path
    assert kemi.VIEW.trusted == (EXTRA_TRUSTED,)
    assert kemi.VIEW.check_interval == 0.5
    router = kemi.mod_init()
    assert isinstance(router, kemi.kamailio) and router.view is kemi.VIEW
    assert router.child_init(1) == 0
    for name in ('ksr_branch_route_one', 'ksr_reply_route', 'ksr_onsend_route'):
        assert getattr(router, name)(None) == 1


def test_without_a_settings_file_one_error_line_and_the_defaults(tmp_path):
    double = KSRDouble()
    with loaded_script(tmp_path / 'kemi', None, double) as module:
        assert module.SETTINGS == {}
        assert module.VIEW.path == '/var/lib/voxplane/directory.db'
        assert module.VIEW.check_interval == 0.5 and module.VIEW.trusted == ()
    errs = [m for level, m in double.logs if level == 'err']
    assert len(errs) == 1 and 'voxplane_settings.json' in errs[0] and errs[0].count('\n') == 1


def test_loading_the_script_leaves_sys_modules_as_it_was(tmp_path, directory):
    before = dict(sys.modules)
    with loaded_script(tmp_path / 'kemi', settings_for(directory.path), KSRDouble()) as module:
        assert sys.modules['ansible_collections.voxplane.pbx.plugins.module_utils.routing'] is module.routing
        assert module.routing is not before.get('ansible_collections.voxplane.pbx.plugins.module_utils.routing')
    assert sys.modules == before


# Request route: the first checks ------------------------------------------------------------

def test_max_forwards_exhausted_is_483(router, ksr):
    new_request(ksr, 'INVITE')
    ksr.returns['maxfwd.process_maxfwd'] = -1
    assert router.ksr_request_route(None) == 1
    assert ksr.called('maxfwd.process_maxfwd') == [(10,)]
    assert ksr_calls(ksr) == [('maxfwd.process_maxfwd', (10,)), ('sl.sl_send_reply', (483, 'Too Many Hops'))]


def test_insane_request_is_left_to_sanity(router, ksr):
    new_request(ksr, 'INVITE')
    ksr.returns['sanity.sanity_check'] = -1
    router.ksr_request_route(None)
    assert [name for name, dummy in ksr_calls(ksr)] == ['maxfwd.process_maxfwd', 'sanity.sanity_check']


def test_options_to_the_server_is_200(router, ksr):
    new_request(ksr, 'OPTIONS')
    router.ksr_request_route(None)
    assert replies(ksr) == [(200, 'OK')]


def test_retransmission_of_an_existing_transaction_is_absorbed(router, ksr):
    new_request(ksr, 'INVITE', si=ECOTEL[0], rU=SINGLE)
    ksr.returns['tm.t_check_trans'] = 0
    router.ksr_request_route(None)
    assert ksr_calls(ksr)[-1] == ('tm.t_check_trans', ())
    assert replies(ksr) == [] and ksr.called('tm.t_relay') == []


@pytest.mark.parametrize('method', ['CANCEL', 'ACK'])
@pytest.mark.parametrize('found', [1, -1])
def test_cancel_and_ack_are_matched_to_their_transaction(router, ksr, method, found):
    new_request(ksr, method, si='10.0.0.5', rU='10', fd=DOMAIN)
    ksr.returns['tm.t_check_trans'] = found
    router.ksr_request_route(None)
    assert ksr.called('tm.t_check_trans') == [()]
    assert ksr.called('tm.t_relay') == ([()] if found > 0 else [])
    assert replies(ksr) == []
    assert not [n for n in ksr.call_names() if n.startswith(('auth.', 'registrar.'))]


def test_subscribe_is_489_and_other_methods_405_with_allow(router, ksr):
    new_request(ksr, 'SUBSCRIBE', rU='10')
    router.ksr_request_route(None)
    assert replies(ksr) == [(489, 'Bad Event')]
    ksr.reset()
    new_request(ksr, 'MESSAGE', rU='10')
    router.ksr_request_route(None)
    assert replies(ksr) == [(405, 'Method Not Allowed')]
    (allow,), = ksr.called('hdr.append_to_reply')
    assert allow.startswith('Allow: INVITE, ACK, BYE, CANCEL') and allow.endswith('\r\n')
    assert index(ksr, 'hdr.append_to_reply') < index(ksr, 'sl.sl_send_reply')


# In-dialog ---------------------------------------------------------------------------------

@pytest.mark.parametrize('method, record_route', [('BYE', False), ('INVITE', True), ('UPDATE', False), ('ACK', False)])
def test_in_dialog_follows_the_route_set(router, ksr, method, record_route):
    ksr.pv['$rm'] = method
    ksr.returns['siputils.has_totag'] = 1
    router.ksr_request_route(None)
    assert ksr_calls(ksr)[2:] == [('siputils.has_totag', ()), ('dialog.dlg_manage', ()), ('dialog.is_known_dlg', ()),
                                  ('rr.loose_route', ())] + \
        ([('rr.record_route', ())] if record_route else []) + [('tm.t_relay', ())]
    assert replies(ksr) == []


@pytest.mark.parametrize('method', ['INVITE', 'BYE', 'MESSAGE', 'OPTIONS'])
def test_an_in_dialog_request_of_a_dialog_we_do_not_know_is_481_and_goes_nowhere(router, ksr, method):
    # A To-tag and a Route naming us (or the trunk) do not make a dialog: an INVITE like this
    # from anywhere would otherwise be relayed to the carrier without authentication.
    ksr.pv['$rm'] = method
    ksr.returns['siputils.has_totag'] = 1
    ksr.returns['dialog.is_known_dlg'] = -1
    router.ksr_request_route(None)
    assert replies(ksr) == [(481, 'Call/Transaction Does Not Exist')]
    assert ksr.called('rr.loose_route') == [] and ksr.called('tm.t_relay') == []


def test_an_ack_outside_any_known_dialog_is_relayed_only_within_its_transaction(router, ksr):
    ksr.pv['$rm'] = 'ACK'
    ksr.returns['siputils.has_totag'] = 1
    ksr.returns['dialog.is_known_dlg'] = -1
    ksr.returns['tm.t_check_trans'] = 1   # the ACK of a negative reply of our transaction
    router.ksr_request_route(None)
    assert ksr.called('tm.t_relay') == [()] and ksr.called('rr.loose_route') == [] and replies(ksr) == []
    ksr.reset()
    ksr.returns['tm.t_check_trans'] = -1  # any other: dropped, no reply
    router.ksr_request_route(None)
    assert ksr.called('tm.t_relay') == [] and replies(ksr) == []


def test_in_dialog_relay_failure_is_answered_by_sl_reply_error(router, ksr):
    ksr.pv['$rm'] = 'BYE'
    ksr.returns['siputils.has_totag'] = 1
    ksr.returns['tm.t_relay'] = -1
    router.ksr_request_route(None)
    assert ksr.called('sl.sl_reply_error') == [()]


def test_in_dialog_without_route_set(router, ksr):
    ksr.returns['siputils.has_totag'] = 1
    ksr.returns['rr.loose_route'] = -1
    ksr.pv['$rm'] = 'ACK'
    ksr.returns['tm.t_check_trans'] = 1
    router.ksr_request_route(None)
    assert ksr.called('tm.t_check_trans') == [()] and ksr.called('tm.t_relay') == [()] and replies(ksr) == []
    ksr.reset()
    ksr.returns['tm.t_check_trans'] = -1
    router.ksr_request_route(None)
    assert ksr.called('tm.t_relay') == [] and replies(ksr) == []
    ksr.reset()
    ksr.pv['$rm'] = 'BYE'
    router.ksr_request_route(None)
    assert replies(ksr) == [(404, 'Not Here')] and ksr.called('tm.t_relay') == []


# REGISTER ----------------------------------------------------------------------------------

def register(ksr, user, domain=DOMAIN, to_user=None, auth=True):
    """A REGISTER; with ``auth`` its digest credentials, computed for its Request-URI."""
    new_request(ksr, 'REGISTER', si='10.0.0.5', td=domain, tU=to_user or user, fd=domain, fU=to_user or user,
                ru='sip:' + domain)
    if auth:
        ksr.pv['$au'] = user
        ksr.pv['$adu'] = 'sip:' + domain


def test_register_without_credentials_is_challenged_with_the_tenant_domain(router, ksr):
    register(ksr, 'max.muster', auth=False)
    router.ksr_request_route(None)
    assert ksr.called('auth.auth_challenge') == [(DOMAIN, QOP_AUTH)]
    assert replies(ksr) == [] and ksr.called('registrar.save') == [] and ksr.called('auth.pv_auth_check') == []


def test_register_to_an_unknown_domain_is_403_without_a_challenge(router, ksr):
    register(ksr, 'max.muster', domain=UNKNOWN_DOMAIN, auth=False)
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'Unknown domain')]
    assert ksr.called('auth.auth_challenge') == []
    ksr.reset()
    ksr.pv['$au'] = 'max.muster'                     # with credentials too
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'Unknown domain')] and ksr.called('auth.pv_auth_check') == []


@pytest.mark.parametrize('user, domain', [('nobody.here', DOMAIN), ('bert.beta', DOMAIN), ('max.muster', BETA_DOMAIN)])
def test_register_of_an_unknown_account_is_challenged_like_a_wrong_password(router, ksr, user, domain):
    # The same answer as a wrong password: nothing tells which accounts exist.
    register(ksr, user, domain=domain)
    router.ksr_request_route(None)
    realm = DOMAIN if domain == DOMAIN else BETA_DOMAIN
    assert ksr.called('auth.auth_challenge') == [(realm, QOP_AUTH)] and replies(ksr) == []
    assert ksr.called('auth.pv_auth_check') == [] and ksr.called('registrar.save') == []
    assert failures_of(ksr) == ['10.0.0.5']


def test_register_with_the_right_password_saves_the_contact(router, ksr):
    register(ksr, 'max.app')
    router.ksr_request_route(None)
    assert ksr.called('auth.pv_auth_check') == [(DOMAIN, ha1('max.app'), 1, 1)]
    assert ksr.called('registrar.save') == [('location', 0)]
    # A REGISTER goes nowhere further: its credentials need not be removed (a call's are).
    assert ksr.called('auth.consume_credentials') == []
    assert replies(ksr) == [] and ksr.called('auth.auth_challenge') == [] and errors(ksr) == []


def test_register_in_the_second_tenant_uses_its_realm(router, ksr):
    register(ksr, 'bert.beta', domain=BETA_DOMAIN)
    router.ksr_request_route(None)
    assert ksr.called('auth.pv_auth_check') == [(BETA_DOMAIN, ha1('bert.beta', BETA_DOMAIN), 1, 1)]
    assert ksr.called('registrar.save') == [('location', 0)]


@pytest.mark.parametrize('rc, flags, failure', [
    (-2, 1, True),     # wrong password: a failure of the source address
    (-1, 1, True),     # any other error
    (-4, 17, False),   # nonce expired: stale=true, the phone retries with its password, no failure
    (-6, 17, False),   # nonce count spent (a replay, or a retransmission): stale=true, no failure
])
def test_register_with_failed_check_is_challenged_again(router, ksr, rc, flags, failure):
    register(ksr, 'max.muster')
    ksr.returns['auth.pv_auth_check'] = rc
    router.ksr_request_route(None)
    assert ksr.called('auth.auth_challenge') == [(DOMAIN, flags)]
    assert ksr.called('auth.consume_credentials') == [] and ksr.called('registrar.save') == [] and replies(ksr) == []
    assert failures_of(ksr) == (['10.0.0.5'] if failure else [])


def test_register_of_another_identity_is_403(router, ksr):
    register(ksr, 'max.muster', to_user='erika.desk')
    ksr.returns['auth.pv_auth_check'] = -8            # auth user is not the To user
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'Account may only use its own identity')]
    assert ksr.called('auth.auth_challenge') == [] and ksr.called('registrar.save') == []


def test_register_target_is_checked_by_the_core_as_well(router, ksr):
    register(ksr, 'max.muster', to_user='erika.desk')   # even should pv_auth_check let it pass
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'Account may only register itself')]
    assert ksr.called('registrar.save') == []


@pytest.mark.parametrize('proto', ['udp', 'tcp', 'ws'])
def test_an_account_that_requires_tls_is_refused_over_other_transports(router, ksr, proto):
    register(ksr, 'tls.desk')
    ksr.pv['$pr'] = proto
    router.ksr_request_route(None)
    assert ksr.called('auth.pv_auth_check') == [(DOMAIN, ha1('tls.desk'), 1, 1)]  # its credentials first
    assert replies(ksr) == [(403, 'TLS required for this account')] and ksr.called('registrar.save') == []
    ksr.reset()
    new_request(ksr, 'INVITE', si='10.0.0.5', fd=DOMAIN, fU='tls.desk', ru='sip:12@' + DOMAIN, rU='12')
    ksr.pv.update({'$au': 'tls.desk', '$adu': 'sip:12@' + DOMAIN, '$pr': proto})
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'TLS required for this account')] and ksr.called('tm.t_relay') == []


@pytest.mark.parametrize('proto', ['tls', 'wss'])
def test_an_account_that_requires_tls_registers_over_tls(router, ksr, proto):
    register(ksr, 'tls.desk')
    ksr.pv['$pr'] = proto
    router.ksr_request_route(None)
    assert replies(ksr) == [] and ksr.called('registrar.save') == [('location', 0)]


def test_an_unknown_password_over_udp_is_challenged_not_told_about_tls(router, ksr):
    # A wrong password for a TLS-only account gets the usual challenge: the 403 needs the password.
    register(ksr, 'tls.desk')
    ksr.pv['$pr'] = 'udp'
    ksr.returns['auth.pv_auth_check'] = -2
    router.ksr_request_route(None)
    assert replies(ksr) == [] and ksr.called('auth.auth_challenge') == [(DOMAIN, QOP_AUTH)]


def test_register_save_failure_answers_the_error(router, ksr):
    register(ksr, 'max.muster')
    ksr.returns['registrar.save'] = -1
    router.ksr_request_route(None)
    assert ksr.called('sl.sl_reply_error') == [()]


def test_register_domain_is_case_insensitive(router, ksr):
    register(ksr, 'max.muster', domain=DOMAIN.upper(), auth=False)
    router.ksr_request_route(None)
    assert replies(ksr) == [] and ksr.called('auth.auth_challenge') == [(DOMAIN, QOP_AUTH)]


# INVITE from a trunk -------------------------------------------------------------------------

@pytest.mark.parametrize('source, dialled', [
    (ECOTEL[0], SINGLE), (ECOTEL[1], '030999001'), (EXTRA_TRUSTED, '4930999001'), (ECOTEL[0], '0049 30 999001'),
])
def test_inbound_from_a_trusted_source_rings_every_aor_without_auth(router, ksr, source, dialled):
    inbound(ksr, dialled, source)
    registered(ksr, 'max.muster', 'max.app')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert not [n for n in ksr.call_names() if n.startswith('auth.')]
    assert ('$au',) not in ksr.called('pv.get')
    assert ksr.called('registrar.lookup_uri') == [('location', 'sip:max.muster@' + DOMAIN)]
    assert ksr.called('registrar.lookup_to_dset') == [('location', 'sip:max.app@' + DOMAIN)]
    assert_rings(ksr, ['max.muster@' + DOMAIN, 'max.app@' + DOMAIN], 25, 'acme|10|0|0|acme/10|')
    assert ksr.called('rr.record_route') == [()]
    assert ksr.called('tm.t_on_failure') == [(FAILURE_ROUTE,)]
    assert index(ksr, 'tm.t_on_failure') < index(ksr, 'tm.t_relay')


def test_inbound_to_a_block_head_rings_the_parallel_group(router, ksr):
    inbound(ksr, BLOCK)
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('registrar.lookup_uri') == [('location', 'sip:max.muster@' + DOMAIN)]
    assert ksr.called('registrar.lookup_to_dset') == [
        ('location', 'sip:max.app@' + DOMAIN), ('location', 'sip:erika.desk@' + DOMAIN)]
    assert_rings(ksr, [], 30, 'acme|50|0|0|acme/50|')


def test_first_aor_not_registered_the_next_one_becomes_the_request_uri(router, ksr):
    inbound(ksr, SINGLE)
    registered(ksr, 'max.app')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('registrar.lookup_uri') == [
        ('location', 'sip:max.muster@' + DOMAIN), ('location', 'sip:max.app@' + DOMAIN)]
    assert ksr.called('registrar.lookup_to_dset') == []
    assert_rings(ksr, [], 25, 'acme|10|0|0|acme/10|')


def test_inbound_to_an_unknown_number_is_404(router, ksr):
    inbound(ksr, '+4930555555')
    router.ksr_request_route(None)
    assert replies(ksr) == [(404, 'Number not assigned')]
    assert ksr.called('tm.t_relay') == []


def test_inbound_to_another_tenants_number_through_its_trunk(router, ksr):
    inbound(ksr, '015550100', source=B_TRUNK)           # beta's dial plan: +43 1 5550100
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert_rings(ksr, ['bert.beta@' + BETA_DOMAIN], 20, 'beta|100|0|0|beta/100|')


def test_nobody_registered_does_not_ring_the_mobile_without_single_number_reach(router, ksr):
    # 10 has a mobile, no single number reach and no unregistered forward: 480, no implicit mobile
    inbound(ksr, SINGLE)
    registered(ksr)
    router.ksr_request_route(None)
    assert len(ksr.called('registrar.lookup_uri')) == 2
    assert replies(ksr) == [(480, 'Temporarily Unavailable')]
    assert ksr.called('tm.t_relay') == [] and ksr.pv.get('$ru') != trunk_uri(MOBILE_10)


def test_single_number_reach_with_nobody_registered_rings_the_mobile_through_the_trunk(router, ksr):
    inbound(ksr, BLOCK + '45')
    registered(ksr)
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('registrar.lookup_to_dset') == [('location', 'sip:snr.desk@' + DOMAIN)]
    assert ksr.pv['$ru'] == trunk_uri(MOBILE_45)
    assert calls(ksr, 'hdr.remove', 'hdr.append') == [
        ('hdr.remove', ('P-Asserted-Identity',)),
        ('hdr.append', ('P-Asserted-Identity: %s\r\n' % sip(BLOCK),)),     # the tenant pays: its main number
        ('hdr.append', ('Diversion: %s;reason=follow-me\r\n' % sip('45'),)),
    ]
    # a ring: ring time and context, so that a failure reaches the failure route
    assert ksr.called('tm.t_set_fr') == [(20000, 0)] and ksr.pv['$avp(vx_ctx)'] == 'acme|45|0|0|acme/45|'
    assert ksr.called('tm.t_relay') == [()] and replies(ksr) == []


def test_single_number_reach_without_accounts_rings_the_mobile(router, ksr):
    from_account(ksr, 'anna.desk', '46')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('registrar.lookup_uri') == [] and ksr.called('registrar.lookup_to_dset') == []
    assert ksr.pv['$ru'] == trunk_uri(MOBILE_46)
    assert [a[0] for a in ksr.called('hdr.append')] == [
        'P-Asserted-Identity: %s\r\n' % sip(BLOCK), 'Diversion: %s;reason=follow-me\r\n' % sip('46')]
    assert ksr.pv['$avp(vx_ctx)'] == 'acme|46|0|0|acme/46|' and ksr.called('tm.t_relay') == [()]


def test_nobody_registered_and_no_forward_is_480(router, ksr):
    from_account(ksr, 'anna.desk', '41')
    registered(ksr)
    router.ksr_request_route(None)
    assert replies(ksr) == [(480, 'Temporarily Unavailable')]
    assert ksr.called('tm.t_relay') == [] and ksr.called('tm.t_set_fr') == []
    # answered at once: no Record-Route, failure route, dialog or next-hop reset to pay for
    for name in ('rr.record_route', 'tm.t_on_failure', 'dialog.dlg_manage', 'resetdsturi'):
        assert ksr.called(name) == [], name


def test_nobody_registered_follows_the_unregistered_forward(router, ksr):
    from_account(ksr, 'anna.desk', '22')
    registered(ksr, 'anna.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert [a[1] for a in ksr.called('registrar.lookup_uri')] == ['sip:ute.desk@' + DOMAIN, 'sip:anna.desk@' + DOMAIN]
    assert [a[0] for a in ksr.called('hdr.append') if a[0].startswith('Diversion')] == \
        ['Diversion: %s;reason=unavailable\r\n' % sip('22')]
    assert ksr.pv['$avp(vx_ctx)'] == 'acme|13|1|0|acme/22,acme/13|'
    assert ksr.called('tm.t_set_fr') == [(20000, 0)] and ksr.called('tm.t_relay') == [()]


def test_unregistered_forward_keeps_the_callers_identity(router, ksr):
    from_account(ksr, 'max.muster', '22')
    registered(ksr, 'anna.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ('hdr.append', ('P-Asserted-Identity: "Max Mustermann" %s\r\n' % sip('10'),)) in ksr_calls(ksr)


def test_unregistered_forward_does_not_pass_on_the_accounts_own_pai(router, ksr):
    from_account(ksr, 'max.muster', '22')
    registered(ksr, 'anna.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('tm.t_relay') == [()]
    assert ('P-Asserted-Identity',) in ksr.called('hdr.remove')


def test_group_nobody_registered_goes_to_the_fallback(router, ksr):
    inbound(ksr, BLOCK)
    registered(ksr, 'anna.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert_rings(ksr, ['anna.desk@' + DOMAIN], 20, 'acme|13|1|0|acme/50,acme/13|',
                 diversion=['%s;reason=unavailable' % sip('50')])


def test_sequential_group_skips_unregistered_members(router, ksr):
    from_account(ksr, 'anna.desk', '52')
    registered(ksr, 'hunt62')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert [a[1] for a in ksr.called('registrar.lookup_uri')] == ['sip:hunt%s@%s' % (n, DOMAIN) for n in HUNT[:3]]
    assert_rings(ksr, ['hunt62@' + DOMAIN], 10, 'acme|52|0|2|acme/52|', identity=ANY)


@pytest.mark.parametrize('who', ['hunt67', 'anna.desk'])
def test_sequential_group_longer_than_seven_reaches_its_last_member_and_fallback(router, ksr, who):
    from_account(ksr, 'max.muster', '52')
    registered(ksr, who)
    router.ksr_request_route(None)
    assert replies(ksr) == [] and ksr.called('tm.t_relay') == [()]


def test_a_sequential_group_member_that_rang_before_unregistered_ones_makes_the_fallback_no_answer(router, ksr):
    # Issue 13: 52 rings hunt60 (no answer), then steps past hunt61..67 (not registered) in the same
    # failure route to its fallback 13: the Diversion says no-answer, not the last step's unavailable.
    failure(ksr, 'acme|52|0|0|acme/52|', code=408, timeout=True)
    registered(ksr, 'anna.desk')
    router.ksr_failure_route_call(None)
    relayed(router, ksr)
    assert [a[1] for a in ksr.called('registrar.lookup_uri')] == \
        ['sip:hunt%s@%s' % (n, DOMAIN) for n in HUNT[1:]] + ['sip:anna.desk@' + DOMAIN]
    assert ksr.pv['$avp(vx_ctx)'] == 'acme|13|1|0|acme/52,acme/13|'
    assert [a[0] for a in ksr.called('hdr.append') if a[0].startswith('Diversion')] == \
        ['Diversion: %s;reason=no-answer\r\n' % sip('52')]
    assert ksr.called('tm.t_set_fr') == [(20000, 0)] and replies(ksr) == []


@pytest.mark.parametrize('code, reason', [(486, 'user-busy'), (603, 'user-busy'), (480, 'no-answer')])
def test_the_fallback_after_a_member_and_unregistered_ones_follows_what_that_member_did(router, ksr, code, reason):
    failure(ksr, 'acme|52|0|0|acme/52', code=code)      # a context of the five-field form
    registered(ksr, 'anna.desk')
    router.ksr_failure_route_call(None)
    relayed(router, ksr)
    assert [a[0] for a in ksr.called('hdr.append') if a[0].startswith('Diversion')] == \
        ['Diversion: %s;reason=%s\r\n' % (sip('52'), reason)]


def test_a_hunt_group_nobody_could_ring_falls_back_as_unavailable(router, ksr):
    from_account(ksr, 'max.muster', '52')
    registered(ksr, 'anna.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert [a[0] for a in ksr.called('hdr.append') if a[0].startswith('Diversion')] == \
        ['Diversion: %s;reason=unavailable\r\n' % sip('52')]


# INVITE from an account ------------------------------------------------------------------------

def test_invite_without_credentials_is_challenged_with_the_from_domain(router, ksr):
    new_request(ksr, 'INVITE', si='10.0.0.5', rU='10', fd=BETA_DOMAIN, fU='bert.beta')
    router.ksr_request_route(None)
    assert ksr.called('auth.auth_challenge') == [(BETA_DOMAIN, QOP_AUTH)]
    assert replies(ksr) == [] and ksr.called('tm.t_relay') == [] and ksr.called('registrar.lookup_uri') == []


def test_invite_from_an_unknown_domain_is_403(router, ksr):
    new_request(ksr, 'INVITE', si='10.0.0.5', rU='10', fd=UNKNOWN_DOMAIN, fU='x')
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'Unknown domain')]


def test_invite_auth_failures(router, ksr):
    from_account(ksr, 'max.muster', '13')
    ksr.returns['auth.pv_auth_check'] = -2
    router.ksr_request_route(None)
    assert ksr.called('auth.pv_auth_check') == [(DOMAIN, ha1('max.muster'), 1, 1)]
    assert ksr.called('auth.auth_challenge') == [(DOMAIN, QOP_AUTH)] and ksr.called('tm.t_relay') == []
    ksr.reset()
    ksr.returns['auth.pv_auth_check'] = -8               # auth user is not the From user
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'Account may only use its own identity')] and ksr.called('tm.t_relay') == []


@pytest.mark.parametrize('digest_uri, accepted', [
    ('sip:13@acme.voxplane.example', True),             # the Request-URI itself
    ('sip:13@ACME.voxplane.example', True),             # host case does not matter
    ('sip:0049301234567@acme.voxplane.example', False),  # computed for another call: replayed
    (None, False),
])
def test_invite_digest_uri_must_be_the_request_uri(router, ksr, digest_uri, accepted):
    from_account(ksr, 'max.muster', '13')
    ksr.pv['$adu'] = digest_uri
    router.ksr_request_route(None)
    if accepted:
        assert ksr.called('auth.consume_credentials') == [()] and ksr.called('tm.t_relay') == [()]
    else:
        assert replies(ksr) == [(400, 'Bad Request: digest uri is not the Request-URI')]
        assert ksr.called('tm.t_relay') == [] and failures_of(ksr) == ['10.0.0.5']


def test_a_digest_uri_naming_this_server_without_a_user_is_accepted(router, ksr):
    from_account(ksr, 'max.muster', '13')
    ksr.pv['$adu'] = 'sip:192.0.2.1:5060'
    ksr.returns['is_myself'] = lambda uri: uri == 'sip:192.0.2.1:5060'
    router.ksr_request_route(None)
    assert ksr.called('tm.t_relay') == [()]


def test_internal_call_presents_name_and_internal_number(router, ksr):
    from_account(ksr, 'max.app', '13')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('auth.consume_credentials') == [()]
    assert_rings(ksr, ['anna.desk@' + DOMAIN], 20, 'acme|13|0|0|acme/13|',
                 identity='"Max Mustermann" %s' % sip('10'))
    assert ksr.called('tm.t_on_failure') == [(FAILURE_ROUTE,)]


def test_outbound_call_goes_to_the_trunk_with_the_callers_number(router, ksr):
    from_account(ksr, 'max.muster', '040 123456')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    assert calls(ksr, 'hdr.remove', 'hdr.append') == [
        ('hdr.remove', ('P-Asserted-Identity',)), ('hdr.append', ('P-Asserted-Identity: %s\r\n' % sip(MAX_DDI),))]
    assert ksr.called('tm.t_relay') == [()]
    assert index(ksr, 'pv.sets', ('$ru', trunk_uri(OUTSIDE))) < index(ksr, 'tm.t_relay')
    assert ksr.called('tm.t_set_fr') == [] and '$avp(vx_ctx)' not in ksr.pv
    assert ksr.called('registrar.lookup_uri') == [] and replies(ksr) == []


def test_anonymous_caller_gets_privacy(router, ksr):
    from_account(ksr, 'erika.desk', '+4940123456')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    assert calls(ksr, 'hdr.remove', 'hdr.append') == [
        ('hdr.remove', ('P-Asserted-Identity',)), ('hdr.append', ('P-Asserted-Identity: %s\r\n' % ANONYMOUS,)),
        ('hdr.remove', ('Privacy',)), ('hdr.append', ('Privacy: id\r\n',))]
    assert ksr.called('tm.t_relay') == [()]


def test_emergency_call_carries_the_location(router, ksr):
    from_account(ksr, 'max.muster', '112')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.pv['$ru'] == trunk_uri('112')
    appended = [a[0] for a in ksr.called('hdr.append')]
    assert appended[0] == 'P-Asserted-Identity: %s\r\n' % sip(HQ_ECID)
    assert appended[1].startswith('X-Emergency-Location: hq; Hauptstra') and appended[1].endswith('\r\n')
    assert ksr.called('tm.t_relay') == [()]


def test_international_call_of_a_forbidden_tenant_is_403(router, ksr):
    from_account(ksr, 'bert.beta', '0049301234567', domain=BETA_DOMAIN)
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'International calls not permitted')] and ksr.called('tm.t_relay') == []


def test_outbound_through_the_tenants_own_trunk_port(router, ksr):
    from_account(ksr, 'bert.beta', '015550999', domain=BETA_DOMAIN)
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.pv['$ru'] == 'sip:+4315550999@%s:5080' % B_TRUNK
    assert ('hdr.append', ('P-Asserted-Identity: %s\r\n' % sip(B_MAIN, BETA_DOMAIN),)) in ksr_calls(ksr)


def test_unknown_dialled_string_is_404(router, ksr):
    from_account(ksr, 'max.muster', '#78')            # ('*78' is a feature code now)
    router.ksr_request_route(None)
    assert replies(ksr) == [(404, 'No such extension or number')]


def test_relay_failure_in_the_request_route_is_sl_reply_error(router, ksr):
    from_account(ksr, 'max.muster', '040 123456')
    ksr.returns['tm.t_relay'] = -1
    router.ksr_request_route(None)
    assert ksr.called('sl.sl_reply_error') == [()]


# The Request-URI user, unescaped by the core ---------------------------------------------------------

def test_an_escaped_plus_from_an_account_goes_out_like_the_plain_number(router, ksr):
    from_account(ksr, 'erika.desk', '%2B4940123456')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE) and replies(ksr) == []


def test_an_escaped_plus_from_the_trunk_reaches_the_number(router, ksr):
    inbound(ksr, '%2B4930999001')                         # SINGLE -> 10
    registered(ksr, 'max.muster')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert_rings(ksr, ['max.muster@' + DOMAIN], 25, 'acme|10|0|0|acme/10|')


@pytest.mark.parametrize('dialled, reason', [
    ('10%2', 'Bad Request: malformed escape in the Request-URI user'),
    ('10%00', 'Bad Request: control character in the Request-URI user'),
    ('%FF10', 'Bad Request: Request-URI user is not UTF-8'),
])
@pytest.mark.parametrize('source', ['account', 'trunk'])
def test_a_request_uri_user_that_does_not_unescape_is_400_not_500(router, ksr, dialled, reason, source):
    if source == 'account':
        from_account(ksr, 'max.muster', dialled)
    else:
        inbound(ksr, dialled)
    router.ksr_request_route(None)
    assert replies(ksr) == [(400, reason)]
    assert ksr.called('tm.t_relay') == [] and errors(ksr) == []


# Forwarding and Diversion ------------------------------------------------------------------------

def test_unconditional_forward_to_outside_adds_one_diversion(router, ksr):
    from_account(ksr, 'anna.desk', '14')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    assert calls(ksr, 'hdr.append')[-1] == ('hdr.append', ('Diversion: %s;reason=unconditional\r\n' % sip('14'),))
    assert len([a for a in ksr.called('hdr.append') if a[0].startswith('Diversion')]) == 1


def test_diversion_headers_one_per_hop_newest_first(router, ksr):
    from_account(ksr, 'max.muster', '17')               # 17 -> 18 -> 13
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert_rings(ksr, ['anna.desk@' + DOMAIN], 20, 'acme|13|2|0|acme/17,acme/18,acme/13|',
                 identity='"Max Mustermann" %s' % sip('10'),
                 diversion=['%s;reason=unconditional' % sip('18'), '%s;reason=unconditional' % sip('17')])
    # identity first, then the history
    appended = [a[0] for a in ksr.called('hdr.append')]
    assert appended[0].startswith('P-Asserted-Identity') and all(a.startswith('Diversion') for a in appended[1:])


# Failure route ---------------------------------------------------------------------------------

def test_busy_follows_the_busy_forward_and_rearms_the_failure_route(router, ksr):
    failure(ksr, 'acme|10|0|0|acme/10', code=486)
    registered(ksr, 'paul.desk')
    assert router.ksr_failure_route_call(None) == 1
    relayed(router, ksr)
    assert ksr.called('pv.sets')[:2] == [('$avp(vx_ctx)', ''), ('$ru', 'sip:+4930999001@pbx.voxplane.example')]
    assert ksr.called('registrar.lookup_uri') == [('location', 'sip:paul.desk@' + DOMAIN)]
    assert ksr.called('hdr.append') == [('Diversion: %s;reason=user-busy\r\n' % sip('10'),)]
    assert ksr.pv['$avp(vx_ctx)'] == 'acme|12|1|0|acme/10,acme/12|'
    assert ksr.called('tm.t_set_fr') == [(20000, 0)]
    assert ksr.called('tm.t_on_failure') == [(FAILURE_ROUTE,)]
    assert ksr.called('tm.t_relay') == [()]
    assert index(ksr, 'tm.t_on_failure') < index(ksr, 'tm.t_relay')
    assert replies(ksr) == [] and ksr.called('sl.sl_reply_error') == []


def test_a_forward_to_outside_in_the_failure_route_carries_only_its_own_identity(router, ksr):
    # anna (13) calls erika (11), who forwards to an outside number on no answer: the new branch
    # presents the tenant's main number, and anna's identity of the first branch is gone.
    from_account(ksr, 'anna.desk', '11')
    registered(ksr, 'erika.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('hdr.append') == [('P-Asserted-Identity: %s\r\n' % sip('13'),)]
    ksr.reset()
    failure(ksr, ksr.pv['$avp(vx_ctx)'], code=408, timeout=True)
    router.ksr_failure_route_call(None)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    relayed(router, ksr)
    assert calls(ksr, 'hdr.remove', 'hdr.append') == [
        ('hdr.remove', ('P-Asserted-Identity',)), ('hdr.append', ('P-Asserted-Identity: %s\r\n' % sip(BLOCK),)),
        ('hdr.append', ('Diversion: %s;reason=no-answer\r\n' % sip('11'),))]


def test_a_forward_in_the_failure_route_keeps_the_identity_and_puts_its_diversion_first(router, ksr):
    # anna (13) calls 16, which forwards to max (10); max is busy and forwards to paul (12).
    from_account(ksr, 'anna.desk', '16')
    registered(ksr, 'max.muster', 'paul.desk')
    router.ksr_request_route(None)
    relayed(router, ksr)
    ksr.reset()
    failure(ksr, ksr.pv['$avp(vx_ctx)'], code=486)
    router.ksr_failure_route_call(None)
    assert ksr.called('registrar.lookup_uri') == [('location', 'sip:paul.desk@' + DOMAIN)]
    relayed(router, ksr)
    assert calls(ksr, 'hdr.remove', 'hdr.append') == [
        ('hdr.remove', ('P-Asserted-Identity',)), ('hdr.append', ('P-Asserted-Identity: %s\r\n' % sip('13'),)),
        ('hdr.append', ('Diversion: %s;reason=user-busy\r\n' % sip('10'),)),
        ('hdr.append', ('Diversion: %s;reason=unconditional\r\n' % sip('16'),))]


def test_busy_600_is_busy_too(router, ksr):
    failure(ksr, 'acme|10|0|0|acme/10', code=600)
    router.ksr_failure_route_call(None)
    assert ksr.pv['$avp(vx_ctx)'] == 'acme|12|1|0|acme/10,acme/12|'


@pytest.mark.parametrize('code, timeout', [(408, True), (None, True), (480, False), (408, False), (487, False)])
def test_no_answer_follows_the_no_answer_forward(router, ksr, code, timeout):
    failure(ksr, 'acme|10|0|0|acme/10', code=code, timeout=timeout)
    router.ksr_failure_route_call(None)
    relayed(router, ksr)
    assert ksr.called('registrar.lookup_uri') == [('location', 'sip:anna.desk@' + DOMAIN)]
    assert ksr.called('hdr.append') == [('Diversion: %s;reason=no-answer\r\n' % sip('10'),)]
    assert ksr.pv['$avp(vx_ctx)'] == 'acme|13|1|0|acme/10,acme/13|'
    assert ksr.called('tm.t_relay') == [()] and ksr.called('tm.t_on_failure') == [(FAILURE_ROUTE,)]


def test_no_answer_forward_to_outside_relays_to_the_trunk(router, ksr):
    failure(ksr, 'acme|11|0|0|acme/11', code=408, timeout=True)
    router.ksr_failure_route_call(None)
    relayed(router, ksr)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    assert calls(ksr, 'hdr.remove', 'hdr.append') == [
        ('hdr.remove', ('P-Asserted-Identity',)), ('hdr.append', ('P-Asserted-Identity: %s\r\n' % sip(BLOCK),)),
        ('hdr.append', ('Diversion: %s;reason=no-answer\r\n' % sip('11'),))]
    assert ksr.pv['$avp(vx_ctx)'] == ''                   # a trunk's failure goes back as it is
    assert ksr.called('tm.t_on_failure') == [(FAILURE_ROUTE,)] and ksr.called('tm.t_relay') == [()]


def test_a_forward_to_outside_in_the_failure_route_rings_for_its_own_ring_time(router, ksr):
    # Issue 13: the transaction's INVITE timer still holds the ring time of 11 (20 s); the trunk
    # leg must get the core's OUTSIDE_RING_TIME, set before it is relayed.
    failure(ksr, 'acme|11|0|0|acme/11', code=408, timeout=True)
    router.ksr_failure_route_call(None)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    assert ksr.called('tm.t_set_fr') == [(30000, 0)]
    assert index(ksr, 'tm.t_set_fr') < index(ksr, 'tm.t_relay')


def test_an_unconditional_forward_to_outside_rings_for_its_own_ring_time(router, ksr):
    from_account(ksr, 'anna.desk', '14')
    router.ksr_request_route(None)
    assert ksr.pv['$ru'] == trunk_uri(OUTSIDE)
    assert ksr.called('tm.t_set_fr') == [(30000, 0)] and index(ksr, 'tm.t_set_fr') < index(ksr, 'tm.t_relay')


def test_a_forward_to_an_extension_in_the_failure_route_rings_for_that_extensions_ring_time(router, ksr):
    # 10 (25 s) forwards busy calls to 12 (20 s)
    failure(ksr, 'acme|10|0|0|acme/10', code=486)
    router.ksr_failure_route_call(None)
    assert ksr.called('tm.t_set_fr') == [(20000, 0)] and index(ksr, 'tm.t_set_fr') < index(ksr, 'tm.t_relay')


def test_sequential_group_moves_to_the_next_member(router, ksr):
    failure(ksr, 'acme|51|0|0|acme/51', code=408, timeout=True)
    router.ksr_failure_route_call(None)
    relayed(router, ksr)
    assert ksr.called('registrar.lookup_uri') == [('location', 'sip:anna.desk@' + DOMAIN)]
    assert ksr.pv['$avp(vx_ctx)'] == 'acme|51|0|1|acme/51|no_answer'   # the first member rang unanswered
    assert ksr.called('tm.t_set_fr') == [(15000, 0)] and ksr.called('hdr.append') == []
    ksr.reset()
    router.ksr_failure_route_call(None)                   # the last member did not answer either
    assert ksr.called('tm.t_reply') == [(480, 'Temporarily Unavailable')] and ksr.called('tm.t_relay') == []


def test_canceled_call_does_nothing(router, ksr):
    failure(ksr, 'acme|10|0|0|acme/10', code=487, canceled=True)
    router.ksr_failure_route_call(None)
    assert ksr_calls(ksr) == [('tm.t_is_canceled', ())]
    assert ksr.pv['$avp(vx_ctx)'] == 'acme|10|0|0|acme/10'


def test_failed_trunk_relay_without_context_does_nothing(router, ksr):
    failure(ksr, '', code=503)
    router.ksr_failure_route_call(None)
    assert ksr_calls(ksr) == [('tm.t_is_canceled', ())]


@pytest.mark.parametrize('context, code, timeout, reply', [
    ('acme|12|0|0|acme/12', 486, False, (486, 'Busy Here')),
    ('acme|12|0|0|acme/12', 480, False, (480, 'Temporarily Unavailable')),
    ('acme|12|0|0|acme/12', 408, True, (480, 'Temporarily Unavailable')),
    ('acme|99|0|0|acme/99', 486, False, (480, 'Temporarily Unavailable')),   # the target has gone
])
def test_nothing_to_forward_to_is_a_final_reply(router, ksr, context, code, timeout, reply):
    failure(ksr, context, code=code, timeout=timeout)
    router.ksr_failure_route_call(None)
    assert ksr.called('tm.t_reply') == [reply]
    assert ksr.called('tm.t_relay') == [] and ksr.called('sl.sl_send_reply') == []


def test_forward_target_not_registered_is_answered_in_the_failure_route(router, ksr):
    failure(ksr, 'acme|10|0|0|acme/10', code=486)
    registered(ksr)                                       # 12 (busy forward) has no contact, no forwards
    router.ksr_failure_route_call(None)
    assert ksr.called('tm.t_reply') == [(480, 'Temporarily Unavailable')] and ksr.called('tm.t_relay') == []


@pytest.mark.parametrize('code', [403, 404, 488, 606])
def test_rejected_lets_the_callees_answer_through(router, ksr, code):
    # (603 was here until it became busy, below)
    failure(ksr, 'acme|10|0|0|acme/10', code=code)
    router.ksr_failure_route_call(None)
    assert replies(ksr) == [] and ksr.called('tm.t_relay') == []
    assert ksr.pv['$avp(vx_ctx)'] == ''


def test_decline_603_from_a_phone_is_busy(router, ksr):
    # a phone's reject key answers 603: the busy forward applies (10: busy -> 12)
    failure(ksr, 'acme|10|0|0|acme/10', code=603)
    registered(ksr, 'paul.desk')
    router.ksr_failure_route_call(None)
    relayed(router, ksr)
    assert ksr.pv['$avp(vx_ctx)'] == 'acme|12|1|0|acme/10,acme/12|'
    assert ksr.called('hdr.append') == [('Diversion: %s;reason=user-busy\r\n' % sip('10'),)]
    assert ksr.called('tm.t_relay') == [()] and replies(ksr) == []


def test_decline_603_without_busy_forward_is_486(router, ksr):
    failure(ksr, 'acme|12|0|0|acme/12', code=603)
    router.ksr_failure_route_call(None)
    assert ksr.called('tm.t_reply') == [(486, 'Busy Here')]


def test_relay_failure_in_the_failure_route_is_500(router, ksr):
    failure(ksr, 'acme|10|0|0|acme/10', code=486)
    ksr.returns['tm.t_relay'] = -1
    router.ksr_failure_route_call(None)
    assert ksr.called('tm.t_reply') == [(500, 'Relay Failed')] and ksr.called('sl.sl_reply_error') == []


# Exceptions ------------------------------------------------------------------------------------

def _boom(*_args):
    raise RuntimeError('registrar\nexploded')


def _assert_one_error_line(ksr, route):
    errs = errors(ksr)
    assert len(errs) == 1, errs
    assert errs[0].count('\n') == 1 and errs[0].endswith('\n')
    assert route in errs[0] and 'RuntimeError: registrar exploded' in errs[0]


def test_exception_in_the_request_route_is_500_and_one_log_line(router, ksr):
    inbound(ksr, SINGLE)
    ksr.returns['registrar.lookup_uri'] = _boom
    assert router.ksr_request_route(None) == 1
    _assert_one_error_line(ksr, 'ksr_request_route')
    assert ksr.called('sl.sl_send_reply') == [(500, 'Server Internal Error')]
    assert ksr.called('tm.t_relay') == [] and ksr.called('tm.t_reply') == []


@pytest.mark.parametrize('in_dialog', [True, False])
def test_exception_for_an_ack_is_logged_and_never_answered(router, ksr, in_dialog):
    ksr.pv['$rm'] = 'ACK'
    ksr.returns['siputils.has_totag'] = 1 if in_dialog else -1
    ksr.returns['rr.loose_route'] = _boom
    ksr.returns['tm.t_check_trans'] = _boom
    assert router.ksr_request_route(None) == 1
    _assert_one_error_line(ksr, 'ksr_request_route')
    assert replies(ksr) == []


def test_exception_from_a_non_str_pv_value_is_500(router, ksr):
    inbound(ksr, SINGLE)
    ksr.pv['$rU'] = 4930999001                            # not a str: the core fails
    router.ksr_request_route(None)
    assert len(errors(ksr)) == 1 and ksr.called('sl.sl_send_reply') == [(500, 'Server Internal Error')]


def test_a_ksr_argument_error_in_the_failure_route_is_t_reply_500(router, ksr):
    failure(ksr, 'acme|10|0|0|acme/10', code=486)
    del ksr.pv['$ou']                                     # KSR.pv.sets('$ru', None): app_python3's SystemError
    router.ksr_failure_route_call(None)
    errs = errors(ksr)
    assert len(errs) == 1 and 'SystemError' in errs[0]
    assert ksr.called('tm.t_reply') == [(500, 'Server Internal Error')] and ksr.called('tm.t_relay') == []


def test_a_failing_500_does_not_escape(router, ksr):
    inbound(ksr, SINGLE)
    ksr.returns['registrar.lookup_uri'] = _boom
    ksr.returns['sl.sl_send_reply'] = _boom
    assert router.ksr_request_route(None) == 1
    assert len(errors(ksr)) == 1


def test_exception_in_the_failure_route_is_t_reply_500(router, ksr):
    failure(ksr, 'acme|10|0|0|acme/10', code=486)
    ksr.returns['registrar.lookup_uri'] = _boom
    assert router.ksr_failure_route_call(None) == 1
    _assert_one_error_line(ksr, FAILURE_ROUTE)
    assert ksr.called('tm.t_reply') == [(500, 'Server Internal Error')] and ksr.called('sl.sl_send_reply') == []


def test_malformed_context_is_t_reply_500(router, ksr):
    failure(ksr, 'garbage', code=486)
    router.ksr_failure_route_call(None)
    assert len(errors(ksr)) == 1 and ksr.called('tm.t_reply') == [(500, 'Server Internal Error')]


# Directory unavailable and snapshot reload -------------------------------------------------------

# (Clock, traced_sql and fresh: conftest.py)


def test_directory_unreadable_at_first_use_is_503_with_retry_after(fresh, tmp_path):
    db = tmp_path / 'later' / 'directory.db'
    module, double, clock = fresh(db)
    router = module.mod_init()
    for method, pv in [('INVITE', {'si': ECOTEL[0], 'rU': SINGLE}), ('REGISTER', {'td': DOMAIN, 'tU': 'x'})]:
        double.reset()
        double.returns.clear()
        double.pv.clear()
        new_request(double, method, **pv)
        router.ksr_request_route(None)
        assert calls(double, 'hdr.append_to_reply', 'sl.sl_send_reply') == [
            ('hdr.append_to_reply', ('Retry-After: 5\r\n',)), ('sl.sl_send_reply', (503, 'Directory Unavailable'))]
        errs = [m for level, m in double.logs if level == 'err']
        if method == 'INVITE':
            assert len(errs) == 1 and 'directory reload' in errs[0] and errs[0].count('\n') == 1
        else:
            assert errs == []     # the same failure again: logged once a minute, not per request
        assert double.called('tm.t_relay') == [] and double.called('auth.auth_challenge') == []
    # the failure route of a call routed before: nothing to decide with, the reply goes back as it is
    double.reset()
    failure(double, 'acme|10|0|0|acme/10', code=486)
    router.ksr_failure_route_call(None)
    assert double.called('tm.t_reply') == [] and double.called('tm.t_relay') == []
    # without a snapshot every request tries again, whatever the interval: the directory appears
    kemi_directory.build(db)
    double.reset()
    double.pv.clear()
    inbound(double, SINGLE)
    router.ksr_request_route(None)
    assert double.called('sl.sl_send_reply') == [] and double.called('tm.t_relay') == [()]
    infos = [m for level, m in double.logs if level == 'info']
    assert len(infos) == 2 and re.match(
        r'^voxplane: directory generation 2 loaded \(2 tenants, \d+ numbers; full build, [\d.]+ ms\)\n$', infos[0])
    assert re.match(r'^voxplane: directory readable again after [\d.]+ s\n$', infos[1])


def test_directory_file_without_schema_is_503(fresh, tmp_path):
    db = tmp_path / 'directory.db'
    db.write_bytes(b'')
    module, double = fresh(db)[:2]
    new_request(double, 'INVITE', si=ECOTEL[0], rU=SINGLE)
    module.mod_init().ksr_request_route(None)
    assert double.called('sl.sl_send_reply') == [(503, 'Directory Unavailable')]
    errs = [m for level, m in double.logs if level == 'err']
    assert len(errs) == 1 and errs[0].endswith(
        'SchemaError: directory %s: schema version 0 needs migrating to %d; run a module or the directory role '
        'first\n' % (db, LATEST_VERSION)), errs


@pytest.mark.parametrize('problem', ['missing', 'newer schema', 'not sqlite'])
def test_every_storage_error_the_router_logs_names_the_directory(fresh, tmp_path, problem):
    db = tmp_path / 'directory.db'
    if problem == 'newer schema':
        kemi_directory.build(db)
        conn = sqlite3.connect(str(db))
        conn.execute("INSERT INTO voxplane_schema (version, description, applied_at) VALUES (99, 'future', 'x')")
        conn.commit()
        conn.close()
    elif problem == 'not sqlite':
        db.write_bytes(b'just some notes, not a database\n' * 4)
    module, double = fresh(db)[:2]
    router = module.mod_init()
    assert router.child_init(1) == 0 and module.VIEW.snapshot is None     # the load at start
    new_request(double, 'INVITE', si=ECOTEL[0], rU=SINGLE)
    router.ksr_request_route(None)                                        # and the reload of a request
    errs = [m for level, m in double.logs if level == 'err']
    assert len(errs) == 2 and all(': directory %s: ' % db in m for m in errs), errs
    reason = {'missing': 'does not exist',
              'newer schema': 'schema version 99 is newer than this collection understands (%d)' % LATEST_VERSION,
              'not sqlite': 'is not a SQLite database'}[problem]
    assert all(reason in m for m in errs), errs


def test_a_forked_worker_opens_its_own_connection(fresh, tmp_path, traced_sql, monkeypatch):
    harness = kemi_directory.build(tmp_path / 'directory.db')
    module, double, clock = fresh(harness.path)
    router = module.mod_init()
    register_gamma(double, router)
    poll = module.VIEW._poll
    first = poll._conn
    clock.now += 1
    register_gamma(double, router)
    assert poll._conn is first                                            # kept open
    real_pid = os.getpid()
    monkeypatch.setattr(os, 'getpid', lambda: real_pid + 1)              # as after Kamailio's fork
    clock.now += 1
    register_gamma(double, router)
    assert poll._conn is not first and poll._pid == real_pid + 1


def register_gamma(double, router):
    double.reset()
    double.pv.clear()
    register(double, 'gina.gamma', domain=GAMMA_DOMAIN, auth=False)
    router.ksr_request_route(None)


def test_reload_after_the_interval_and_no_sql_within_it(fresh, tmp_path, traced_sql):
    harness = kemi_directory.build(tmp_path / 'directory.db')
    del traced_sql[:]
    module, double, clock = fresh(harness.path)
    router = module.mod_init()
    register_gamma(double, router)
    assert double.called('sl.sl_send_reply') == [(403, 'Unknown domain')]
    assert traced_sql[0] == GENERATION_SQL and len(traced_sql) > 1       # first use: generation + load
    assert module.VIEW.generation == 2

    harness.apply('gamma', *kemi_directory.gamma())                       # bumps the generation to 3
    del traced_sql[:]
    clock.now += 0.499                                                     # within reload_check_ms
    register_gamma(double, router)
    assert double.called('sl.sl_send_reply') == [(403, 'Unknown domain')]
    assert traced_sql == []                                                # not a single statement

    clock.now += 0.002                                                     # the interval has passed
    register_gamma(double, router)
    assert double.called('sl.sl_send_reply') == [] and double.called('auth.auth_challenge') == [(GAMMA_DOMAIN, QOP_AUTH)]
    assert traced_sql[0] == GENERATION_SQL and len(traced_sql) > 1
    assert module.VIEW.generation == 3
    infos = [m for level, m in double.logs if level == 'info']
    assert len(infos) == 1 and infos[0].startswith('voxplane: directory generation 3 loaded (3 tenants, ')
    assert '; 1 rebuilt, ' in infos[0]                                     # gamma alone, the others kept

    del traced_sql[:]
    clock.now += 10                                                       # unchanged: one single-row SELECT
    register_gamma(double, router)
    assert traced_sql == [GENERATION_SQL]
    assert double.logs == [] and double.called('auth.auth_challenge') == [(GAMMA_DOMAIN, QOP_AUTH)]


def test_a_sip_worker_loads_the_snapshot_at_start_and_only_changed_tenants_later(fresh, tmp_path, traced_sql):
    harness = kemi_directory.build(tmp_path / 'directory.db')
    module, double, clock = fresh(harness.path)
    router = module.mod_init()
    for rank in (0, -1, -2, 127):                       # main, timer, RPC, SIP-RPC: they route nothing
        assert router.child_init(rank) == 0
    assert module.VIEW.snapshot is None
    del traced_sql[:]
    assert router.child_init(1) == 0                    # the first SIP worker
    assert module.VIEW.generation == 2 and sorted(module.VIEW.snapshot.tenants) == ['acme', 'beta']
    infos = [m for level, m in double.logs if level == 'info']
    assert len(infos) == 1 and infos[0].startswith('voxplane: directory generation 2 loaded at start (2 tenants; ')
    first = module.VIEW.snapshot
    del traced_sql[:]
    register_gamma(double, router)                      # the first request: no load, the generation is fresh
    assert traced_sql == [] and double.called('sl.sl_send_reply') == [(403, 'Unknown domain')]

    harness.apply('gamma', *kemi_directory.gamma())     # generation 3: one new tenant
    del traced_sql[:]
    clock.now += 1
    register_gamma(double, router)
    assert double.called('auth.auth_challenge') == [(GAMMA_DOMAIN, QOP_AUTH)]
    assert module.VIEW.snapshot.rebuilt == 1
    assert module.VIEW.snapshot.tenants['acme'] is first.tenants['acme']
    loads = [sql for sql in traced_sql if sql.startswith('SELECT id, name, sip_domain, doc FROM tenants')]
    assert loads == ["SELECT id, name, sip_domain, doc FROM tenants WHERE name = 'gamma'"]


def test_an_unreadable_directory_at_start_is_logged_and_loaded_by_the_first_request(fresh, tmp_path):
    path = tmp_path / 'directory.db'
    module, double, clock = fresh(str(path))
    router = module.mod_init()
    assert router.child_init(1) == 0
    assert module.VIEW.snapshot is None
    errors = [m for level, m in double.logs if level == 'err']
    assert len(errors) == 1 and errors[0].startswith('voxplane: directory load at start failed at ')
    kemi_directory.build(path)
    clock.now += 1
    register_gamma(double, router)
    assert module.VIEW.generation == 2 and double.called('sl.sl_send_reply') == [(403, 'Unknown domain')]


def test_reload_check_ms_zero_polls_the_generation_per_request(fresh, tmp_path, traced_sql):
    harness = kemi_directory.build(tmp_path / 'directory.db')
    module, double, clock = fresh(harness.path, reload_check_ms=0)
    router = module.mod_init()
    register_gamma(double, router)
    del traced_sql[:]
    register_gamma(double, router)
    register_gamma(double, router)
    assert traced_sql == [GENERATION_SQL, GENERATION_SQL]
    harness.apply('gamma', *kemi_directory.gamma())
    register_gamma(double, router)                                         # same clock reading: still checked
    assert double.called('auth.auth_challenge') == [(GAMMA_DOMAIN, QOP_AUTH)]


def test_a_broken_directory_keeps_the_last_good_snapshot(fresh, tmp_path):
    harness = kemi_directory.build(tmp_path / 'directory.db')
    module, double, clock = fresh(harness.path)
    router = module.mod_init()
    register(double, 'max.muster', auth=False)
    router.ksr_request_route(None)
    assert double.called('auth.auth_challenge') == [(DOMAIN, QOP_AUTH)]
    conn = sqlite3.connect(harness.path)
    conn.execute('DROP TABLE voxplane_generation')
    conn.commit()
    conn.close()
    clock.now += 1
    double.reset()
    router.ksr_request_route(None)
    assert double.called('auth.auth_challenge') == [(DOMAIN, QOP_AUTH)] and double.called('sl.sl_send_reply') == []
    errs = [m for level, m in double.logs if level == 'err']
    assert len(errs) == 1 and 'directory reload' in errs[0] and errs[0].endswith(
        'StorageError: directory %s: database error (no such table: voxplane_generation)\n' % harness.path), errs
    assert module.VIEW.generation == 2 and module.VIEW._poll._conn is None  # reconnects at the next check
    double.reset()
    clock.now += 0.1                                                       # within the interval: quiet
    router.ksr_request_route(None)
    assert double.logs == [] and double.called('auth.auth_challenge') == [(DOMAIN, QOP_AUTH)]


# Every KSR function the script uses exists (in the api list) and is exercised -------------------

def _ksr_references():
    """Qualified names of every KSR.<...> call in the script's source."""
    with open(KEMI_SCRIPT) as handle:
        tree = ast.parse(handle.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            parts, value = [node.func.attr], node.func.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id == 'KSR':
                names.add('.'.join(reversed(parts)))
    return names


# Called only on a node of a cluster or with a dispatcher set of media services: a single server's
# Kamailio does not load dmq, textopsx and dispatcher (tests/unit/kemi/test_kemi_cluster.py, with
# the double of a cluster node, calls each of them).
CLUSTER_ONLY = frozenset(['dmq.handle_message', 'textopsx.msg_apply_changes', 'dispatcher.ds_select_dst',
                          'dispatcher.ds_next_dst', 'dispatcher.ds_mark_dst_state'])
# ... and what a single server has but calls only on a cluster (a handed-over call, a registration's Path).
CLUSTER_CALLS = CLUSTER_ONLY | frozenset(['rr.loose_route_preloaded', 'hdr.insert'])


def test_every_ksr_function_referenced_is_in_the_api_list():
    api = set(KSRDouble().functions())
    referenced = _ksr_references() - CLUSTER_ONLY
    assert len(referenced) > 20
    assert referenced <= api, sorted(referenced - api)


# (pv, returns, route) of enough requests to call every KSR function the script references.
_SCENARIOS = [
    ({'$rm': 'INVITE'}, {'maxfwd.process_maxfwd': -1}, 'request'),
    ({'$rm': 'INVITE'}, {'sanity.sanity_check': -1}, 'request'),
    ({'$rm': 'INVITE'}, {'siputils.has_totag': 1}, 'request'),                       # loose_route, t_relay
    ({'$rm': 'BYE'}, {'siputils.has_totag': 1, 'tm.t_relay': -1}, 'request'),        # sl_reply_error
    ({'$rm': 'MESSAGE', '$rU': '10'}, {}, 'request'),                                # append_to_reply, 405
    ({'$rm': 'REGISTER', '$td': DOMAIN, '$tU': 'max.muster'}, {}, 'request'),        # auth_challenge
    ({'$rm': 'REGISTER', '$td': DOMAIN, '$tU': 'max.muster', '$au': 'max.muster', '$ru': 'sip:' + DOMAIN,
      '$adu': 'sip:' + DOMAIN, '$(hdr(Contact)[*])': '<sip:max.muster@10.0.0.5:5060>'}, {}, 'request'),  # save
    ({'$rm': 'REGISTER', '$td': DOMAIN, '$tU': 'max.muster', '$au': 'max.muster'},
     {'auth.pv_auth_check': -2, 'htable.sht_inc': 10}, 'request'),                  # the failure that bans
    ({'$rm': 'OPTIONS', '$rU': '10'}, {'htable.sht_get': 1}, 'request'),            # a banned source
    ({'$rm': 'INVITE'}, {'siputils.has_totag': 1, 'dialog.is_known_dlg': -1}, 'request'),  # forged: 481
    ({'$rm': 'INVITE', '$si': ECOTEL[0], '$rU': BLOCK, '$du': 'sip:%s:5060' % ECOTEL[0], '$dd': ECOTEL[0]},
     {}, 'request'),                                                                # a contact at a trunk: set_drop
    ({'$rm': 'INVITE', '$si': ECOTEL[0], '$rU': BLOCK}, {}, 'request'),              # lookup_*, t_set_fr
    ({'$rm': 'INVITE', '$si': '10.0.0.5', '$rU': '040123456', '$fd': DOMAIN, '$au': 'erika.desk',
      '$ru': 'sip:040123456@' + DOMAIN, '$adu': 'sip:040123456@' + DOMAIN}, {}, 'request'),  # uac_replace_from
    ({'$rm': 'INVITE', '$si': ECOTEL[0], '$rU': SINGLE}, {'registrar.lookup_uri': _boom}, 'request'),  # err
    ({'$avp(vx_ctx)': 'acme|10|0|0|acme/10', '$T_reply_code': 486, '$ou': 'sip:x@y'},
     {'tm.t_branch_timeout': -1, 'tm.t_is_canceled': -1}, 'failure'),
    ({'$avp(vx_ctx)': 'acme|12|0|0|acme/12', '$T_reply_code': 486, '$ou': 'sip:x@y'},
     {'tm.t_branch_timeout': -1, 'tm.t_is_canceled': -1}, 'failure'),                 # t_reply
    ({'$rm': 'INVITE', '$si': '10.0.0.5', '$rU': '47', '$fd': DOMAIN, '$au': 'anna.desk', '$ru': 'sip:47@' + DOMAIN,
      '$adu': 'sip:47@' + DOMAIN}, {}, 'request'),                                  # setdsturi
    ({'$rm': 'INVITE', '$si': ECOTEL[0], '$rU': BLOCK + '45'}, {}, 'request'),       # the mobile of SNR
    # last: it writes (DND of 10) and publishes the generation (shv_seti)
    ({'$rm': 'INVITE', '$si': '10.0.0.5', '$rU': '*78', '$fd': DOMAIN, '$au': 'max.muster', '$ru': 'sip:*78@' + DOMAIN,
      '$adu': 'sip:*78@' + DOMAIN}, {}, 'request'),
]


def _relay_like_tm(router, double):
    """t_relay as tm does it: the branch route runs for the new branch; a dropped branch
    (set_drop) leaves nothing to send, and t_relay fails."""
    def relay():
        before = len(double.called('set_drop'))
        router.ksr_branch_route_one(None)
        return -1 if len(double.called('set_drop')) > before else 1
    return relay


def test_every_ksr_function_referenced_is_called_with_valid_arguments(tmp_path):
    double = KSRDouble()
    seen = set()
    directory = kemi_directory.build(tmp_path / 'directory.db')     # its own: a scenario writes
    # erika's outside call (a scenario below) counts against limits: dialog profiles, htable
    directory.apply('acme', None, {EXTENSION: {'11': {'max_outside_calls': 5, 'max_outside_calls_per_minute': 10}}})
    with loaded_script(tmp_path / 'kemi', settings_for(directory.path), double) as module:
        router = module.mod_init()
        for pv, returns, route in _SCENARIOS:
            double.pv.clear()
            double.pv['$si'] = '203.0.113.50'
            double.pv.update(pv)
            double.returns.clear()
            double.returns.update({'siputils.has_totag': -1, 'tm.t_check_trans': -1})
            double.returns['tm.t_relay'] = _relay_like_tm(router, double)
            double.returns.update(returns)
            getattr(router, 'ksr_request_route' if route == 'request' else FAILURE_ROUTE)(None)
            seen.update(double.call_names())
            # argument errors of the double (SystemError) would show as an err line naming it
            assert not [m for level, m in double.logs if level == 'err' and 'SystemError' in m]
    assert _ksr_references() - CLUSTER_CALLS - seen == set()


# The edge: bans, undecodable input, contacts, the identity a callee sees ------------------------

def test_a_banned_source_gets_no_reply_and_nothing_else_runs(router, ksr):
    register(ksr, 'max.muster')
    ksr.returns['htable.sht_get'] = lambda table, key: 1 if (table, key) == ('vxban', '10.0.0.5') else None
    router.ksr_request_route(None)
    assert ksr_calls(ksr) == [] and replies(ksr) == []


def test_the_failure_that_reaches_the_limit_bans_the_source_once(router, ksr):
    register(ksr, 'max.muster')
    ksr.returns['auth.pv_auth_check'] = -2
    ksr.returns['htable.sht_inc'] = 10                  # the 10th failure (the default limit)
    router.ksr_request_route(None)
    assert ksr.called('htable.sht_seti') == [('vxban', '10.0.0.5', 1)]
    warnings = [m for level, m in ksr.logs if level == 'warn']
    assert warnings == ['voxplane: banned 10.0.0.5 for 900 s: 10 authentication failures\n']


def test_the_first_failure_creates_the_count(router, ksr):
    register(ksr, 'max.muster')
    ksr.returns['auth.pv_auth_check'] = -2
    ksr.returns['htable.sht_inc'] = -255                # htable: no such item yet
    router.ksr_request_route(None)
    (table, key, value), = ksr.called('htable.sht_seti')
    assert (table, key.split('|')[0], value) == ('vxfail', '10.0.0.5', 1)


def test_failures_are_counted_per_window_of_the_clock(kemi, router, ksr, monkeypatch):
    # A fixed window (ban_window, 60 s): a phone retrying a stale password every 30 s gets two
    # failures a window and is never banned; a guesser gets ten in a second.
    register(ksr, 'max.muster')
    ksr.returns['auth.pv_auth_check'] = -2
    keys = []
    for now in (120.0, 179.9, 180.0):
        monkeypatch.setattr(kemi, 'time', types.SimpleNamespace(time=lambda now=now: now, monotonic=time.monotonic))
        router.ksr_request_route(None)
        keys.append(ksr.called('htable.sht_inc')[-1][1])
    assert keys == ['10.0.0.5|2', '10.0.0.5|2', '10.0.0.5|3']


def test_a_banned_source_is_not_counted_as_a_flood_so_a_lifted_ban_ends_at_once(router, ksr):
    banned = {'10.0.0.5'}
    ksr.returns['htable.sht_get'] = lambda table, key: 1 if table == 'vxban' and key in banned else None
    for _attempt in range(300):  # far beyond the flood share of a worker
        register(ksr, 'max.muster')
        router.ksr_request_route(None)
    assert replies(ksr) == [] and ksr.called('auth.auth_challenge') == [] and ksr.called('htable.sht_seti') == []
    banned.clear()  # kamcmd htable.delete vxban 10.0.0.5
    register(ksr, 'max.muster')
    router.ksr_request_route(None)
    assert ksr.called('registrar.save') == [('location', 0)]


def test_a_ban_another_worker_set_already_is_not_set_or_logged_again(router, ksr):
    ksr.returns['htable.sht_get'] = lambda table, key: 1 if table == 'vxban' else None
    router.guard.ban('10.0.0.5', 'request flood')
    assert ksr.called('htable.sht_lock') == [('vxban', '10.0.0.5')] and ksr.called('htable.sht_unlock') == [('vxban', '10.0.0.5')]
    assert ksr.called('htable.sht_seti') == [] and [m for level, m in ksr.logs if level == 'warn'] == []


@pytest.mark.parametrize('source', [ECOTEL[0], EXTRA_TRUSTED])
def test_trusted_trunks_are_never_banned_nor_flood_checked(router, ksr, source):
    inbound(ksr, SINGLE, source)
    registered(ksr, 'max.muster')
    ksr.returns['htable.sht_get'] = 1
    ksr.returns['htable.sht_inc'] = 10 ** 6
    router.ksr_request_route(None)
    assert ksr.called('htable.sht_get') == [] and ksr.called('htable.sht_inc') == []
    assert ksr.called('tm.t_relay') == [()]


def test_exempt_addresses_from_the_settings_are_never_banned(tmp_path, directory):
    double = KSRDouble()
    settings = dict(settings_for(directory.path), ban={'exempt': ['10.0.0.5'], 'auth_failures': 3, 'time': 60})
    with loaded_script(tmp_path / 'kemi', settings, double) as module:
        router = module.mod_init()
        register(double, 'max.muster')
        double.returns['auth.pv_auth_check'] = -2
        router.ksr_request_route(None)
        assert double.called('htable.sht_get') == [] and double.called('htable.sht_inc') == []
        assert module.GUARD.auth_failures == 3 and module.GUARD.ban_time == 60


def _undecodable(ksr, variable):
    real = ksr.module.pv.get

    def get(name):
        if name == variable:
            raise UnicodeDecodeError('utf-8', b'\xff', 0, 1, 'invalid start byte')
        return real(name)
    return get


@pytest.mark.parametrize('method, variable', [('INVITE', '$rU'), ('REGISTER', '$td'), ('REGISTER', '$au')])
def test_bytes_that_are_not_utf8_are_answered_400_without_an_error_line(router, ksr, method, variable, monkeypatch):
    if method == 'REGISTER':
        register(ksr, 'max.muster')
    else:
        from_account(ksr, 'max.muster', '13')
    monkeypatch.setattr(ksr.module.pv, 'get', _undecodable(ksr, variable))
    router.ksr_request_route(None)
    assert replies(ksr) == [(400, 'Bad Request: not UTF-8')]
    assert errors(ksr) == [] and ksr.called('tm.t_relay') == []


def test_an_undecodable_ack_gets_no_reply(router, ksr, monkeypatch):
    new_request(ksr, 'ACK', si='10.0.0.5')
    monkeypatch.setattr(ksr.module.pv, 'get', _undecodable(ksr, '$si'))
    router.ksr_request_route(None)
    assert replies(ksr) == []


@pytest.mark.parametrize('contact, refused', [
    ('<sip:max.muster@10.0.0.5:5060>', None),
    ('<sip:+44201234567@%s:5100>' % ECOTEL[1], (403, 'Contact points at a trunk')),
    ('<sip:max.muster@10.0.0.5>, <sip:x@%s>' % EXTRA_TRUSTED, (403, 'Contact points at a trunk')),
    ('<sip:max.muster@192.0.2.1:5060>', (403, 'Contact points at this server')),
])
def test_register_refuses_contacts_at_a_trunk_or_at_this_server(router, ksr, contact, refused):
    register(ksr, 'max.muster')
    ksr.pv['$(hdr(Contact)[*])'] = contact
    ksr.returns['is_myself'] = lambda uri: '192.0.2.1' in uri
    router.ksr_request_route(None)
    if refused:
        assert replies(ksr) == [refused] and ksr.called('registrar.save') == []
    else:
        assert replies(ksr) == [] and ksr.called('registrar.save') == [('location', 0)]


def test_a_branch_to_a_contact_at_a_trunk_address_is_dropped(router, ksr):
    inbound(ksr, SINGLE)
    registered(ksr, 'max.muster')
    router.ksr_request_route(None)
    ksr.reset()
    ksr.pv.update({'$ru': 'sip:+44201234567@%s:5100' % ECOTEL[0], '$du': None, '$rd': ECOTEL[0]})
    assert router.ksr_branch_route_one(None) == 1
    assert ksr.called('set_drop') == [()] and ksr.called('hdr.append') == [] and ksr.called('uac.uac_replace_from') == []
    ksr.reset()
    ksr.pv.update({'$ru': 'sip:max.muster@10.0.0.5:5060', '$du': 'sip:%s:5060' % ECOTEL[1], '$dd': ECOTEL[1]})
    router.ksr_branch_route_one(None)                   # the next hop counts, not only the URI
    assert ksr.called('set_drop') == [()]


def test_the_trunk_branch_the_core_chose_is_not_dropped(router, ksr):
    from_account(ksr, 'max.muster', '040 123456')
    router.ksr_request_route(None)
    ksr.reset()
    ksr.pv['$rd'] = ECOTEL[0]
    router.ksr_branch_route_one(None)
    assert ksr.called('set_drop') == []


def test_the_callee_sees_the_public_identity_in_from(router, ksr):
    from_account(ksr, 'max.muster', '040 123456')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('uac.uac_replace_from') == [('', 'sip:%s@%s' % (MAX_DDI, DOMAIN))]


def test_an_internal_callee_sees_name_and_internal_number_in_from(router, ksr):
    from_account(ksr, 'max.app', '13')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('uac.uac_replace_from') == [('"Max Mustermann"', 'sip:10@%s' % DOMAIN)]


def test_an_inbound_call_keeps_the_carriers_from(router, ksr):
    inbound(ksr, SINGLE)
    registered(ksr, 'max.muster')
    router.ksr_request_route(None)
    relayed(router, ksr)
    assert ksr.called('uac.uac_replace_from') == []


def test_every_relayed_call_is_a_tracked_dialog(router, ksr):
    from_account(ksr, 'max.muster', '040 123456')
    router.ksr_request_route(None)
    assert ksr.called('dialog.dlg_manage') == [()]
    assert index(ksr, 'dialog.dlg_manage') < index(ksr, 'tm.t_relay')


def test_when_every_branch_is_dropped_the_caller_gets_480_not_500(router, ksr):
    inbound(ksr, SINGLE)
    registered(ksr, 'max.muster')
    ksr.pv.update({'$ru': 'sip:+44201234567@%s:5100' % ECOTEL[0], '$rd': ECOTEL[0]})

    def relay_running_the_branch_route():
        router.ksr_branch_route_one(None)          # tm runs it inside t_relay
        return -1                                  # and sends nothing: every branch was dropped
    ksr.returns['tm.t_relay'] = relay_running_the_branch_route
    router.ksr_request_route(None)
    assert ksr.called('set_drop') == [()]
    assert ksr.called('sl.send_reply') == [(480, 'Temporarily Unavailable')] and ksr.called('sl.sl_reply_error') == []


# Outside-call limits ---------------------------------------------------------------------------

def _limited(tmp_path, fresh, **fields):
    """A worker over a directory in which paul (12) has these outside-call limits."""
    harness = kemi_directory.build(tmp_path / 'directory.db')
    harness.apply('acme', None, {EXTENSION: {'12': fields}})
    module, double, _clock = fresh(harness.path)
    return module.mod_init(), double


def test_an_outside_call_within_the_limits_is_counted(tmp_path, fresh):
    router, double = _limited(tmp_path, fresh, max_outside_calls=2, max_outside_calls_per_minute=5)
    from_account(double, 'paul.desk', '040 123456')
    router.ksr_request_route(None)
    assert double.called('dialog.get_profile_size') == [('vx_out_ext', 'acme/12', '$var(vx_calls)')]
    assert double.called('dialog.set_dlg_profile') == [('vx_out_ext', 'acme/12')]
    (table, key), = [args for args in double.called('htable.sht_inc') if args[0] != 'vxflood']
    assert table == 'vxrate' and key.startswith('acme/12|')
    assert double.called('tm.t_relay') == [()]


def test_an_outside_call_over_the_limit_is_403_and_not_counted(tmp_path, fresh):
    router, double = _limited(tmp_path, fresh, max_outside_calls=2)
    from_account(double, 'paul.desk', '040 123456')
    double.pv['$var(vx_calls)'] = 2                      # what get_profile_size wrote: two calls up
    router.ksr_request_route(None)
    assert replies(double) == [(403, 'Outside call limit reached: 2 calls at once for extension 12')]
    assert double.called('tm.t_relay') == [] and double.called('dialog.set_dlg_profile') == []


def test_calls_a_minute_are_counted_per_minute(tmp_path, fresh):
    router, double = _limited(tmp_path, fresh, max_outside_calls_per_minute=3)
    from_account(double, 'paul.desk', '040 123456')
    double.returns['htable.sht_get'] = lambda table, key: 3 if table == 'vxrate' else None
    router.ksr_request_route(None)
    assert replies(double) == [(403, 'Outside call limit reached: 3 calls a minute for extension 12')]


def test_an_internal_call_and_an_emergency_call_count_against_nothing(tmp_path, fresh):
    router, double = _limited(tmp_path, fresh, max_outside_calls=1)
    for dialled in ('13', '112'):
        from_account(double, 'paul.desk', dialled)
        double.pv['$var(vx_calls)'] = 1
        router.ksr_request_route(None)
        assert double.called('dialog.get_profile_size') == [] and double.called('tm.t_relay') == [()]
        double.reset()


def test_a_call_answered_right_away_is_no_dialog(router, ksr):
    from_account(ksr, 'max.muster', '41')                # nobody registered, no forward: 480
    registered(ksr)
    router.ksr_request_route(None)
    assert replies(ksr) == [(480, 'Temporarily Unavailable')]
    assert ksr.called('dialog.dlg_manage') == []


def test_a_phone_registering_again_with_the_same_values_is_checked_from_memory(kemi, router, ksr, monkeypatch):
    asked = []
    for check in ('digest_uri_matches', 'contact_refusal'):
        real = getattr(kemi.routing, check)
        monkeypatch.setattr(kemi.routing, check,
                            lambda *args, real=real, check=check: asked.append(check) or real(*args))
    for _attempt in range(3):
        register(ksr, 'max.muster')
        ksr.pv['$(hdr(Contact)[*])'] = '<sip:max.muster@10.0.0.5:5060>'
        router.ksr_request_route(None)
    assert ksr.called('registrar.save') == [('location', 0)] * 3
    assert asked == ['digest_uri_matches', 'contact_refusal']


def test_remembered_contact_answers_follow_the_directory(router, ksr, monkeypatch):
    """A Contact accepted before may point at a trunk address the directory adds later."""
    register(ksr, 'max.muster')
    ksr.pv['$(hdr(Contact)[*])'] = '<sip:max.muster@198.51.100.77:5060>'
    router.ksr_request_route(None)
    assert ksr.called('registrar.save') == [('location', 0)]
    snap = router.view.snapshot
    moved = copy.copy(snap)
    moved.trusted = snap.trusted | {'198.51.100.77'}
    monkeypatch.setattr(router.view, 'snapshot', moved)
    ksr.reset()
    register(ksr, 'max.muster')
    ksr.pv['$(hdr(Contact)[*])'] = '<sip:max.muster@198.51.100.77:5060>'
    router.ksr_request_route(None)
    assert replies(ksr) == [(403, 'Contact points at a trunk')] and ksr.called('registrar.save') == []
