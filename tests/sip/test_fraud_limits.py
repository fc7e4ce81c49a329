# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Toll-fraud limits in a real Kamailio (docs/security.md): call classes that need a
permission, and the outside-call limits of an extension (dialog profiles for calls at once,
htable counters for calls a minute).

tests/lab/playbooks/tenants.yml: Olga (28) may have one outside call at once, Pia (29) two a minute; Bert (11)
has no premium-rate or satellite permission (nor has acme). Outside calls leave through the
trunk stand-in on kamailio.trunk:kamailio.trunk_port.
"""

import time

from lab.calls import call, final_reply, report, start_of_a_minute, users_file
from lab.net import wait_udp_bound
from lab.sipp import Listener, finish_sipp, received, start_sipp


def _trunk(kamailio, scenario, calls=1):
    handle = start_sipp(scenario, kamailio.target, kamailio.trunk, kamailio.workdir, local_port=kamailio.trunk_port,
                        calls=calls, timeout=20)
    wait_udp_bound(kamailio.trunk, kamailio.trunk_port)
    return handle


def _ringing_call(kamailio, caller, dialled):
    inf = users_file(kamailio, 'ring', [(caller, 'acme.sip.test', caller.replace('.', '-') + '-pw', dialled)])
    return start_sipp('call_ringing_cancel.xml', kamailio.target, kamailio.address, kamailio.workdir, inf=inf,
                      timeout=20)


def _got_invite(handle):
    try:
        with open(handle['files']['msg'], 'rb') as trace:
            return b'INVITE sip:' in trace.read()
    except OSError:
        return False


def test_a_second_outside_call_while_the_first_rings_is_refused(kamailio):
    start_of_a_minute()
    trunk = _trunk(kamailio, 'phone_ring.xml')
    first = _ringing_call(kamailio, 'olga.desk', '0305550001')
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _got_invite(trunk):
            time.sleep(0.1)
        time.sleep(0.5)
        second = call(kamailio, 'olga.app', '0305550002')
    finally:
        first = finish_sipp(first)
        trunk = finish_sipp(trunk, timeout=5)
    explain = report(kamailio, first=first, second=second, trunk=trunk)
    assert final_reply(second) == 'SIP/2.0 403 Outside call limit reached: 1 calls at once for extension 28', explain
    # The first call really was up at the trunk, and only it: the refused one never left.
    invites = received(trunk, 'INVITE ')
    assert [m.first_line for m in invites] == ['INVITE sip:+49305550001@%s:%d SIP/2.0' % (
        kamailio.trunk, kamailio.trunk_port)], explain
    assert final_reply(first) == 'SIP/2.0 487 Request Terminated', explain


def test_outside_calls_a_minute_are_limited_and_a_refused_call_goes_nowhere(kamailio):
    start_of_a_minute()
    trunk = _trunk(kamailio, 'phone_busy.xml', calls=2)
    try:
        answers = [final_reply(call(kamailio, 'pia.desk', '03055500%02d' % n)) for n in (10, 11)]
    finally:
        trunk = finish_sipp(trunk, timeout=5)
    assert answers == ['SIP/2.0 486 Busy Here'] * 2, report(kamailio, trunk=trunk)
    with Listener(kamailio.trunk, kamailio.trunk_port) as listener:
        third = call(kamailio, 'pia.desk', '0305550012')
        time.sleep(0.3)
    assert final_reply(third) == 'SIP/2.0 403 Outside call limit reached: 2 calls a minute for extension 29', \
        report(kamailio, third=third)
    assert listener.datagrams == []


def test_premium_rate_and_satellite_numbers_need_a_permission(kamailio):
    with Listener(kamailio.trunk, kamailio.trunk_port) as listener:
        premium = call(kamailio, 'bert.desk', '09001234567')
        satellite = call(kamailio, 'bert.desk', '00881612345678')
        time.sleep(0.3)
    assert final_reply(premium) == 'SIP/2.0 403 Premium-rate calls not permitted', report(kamailio, caller=premium)
    assert final_reply(satellite) == 'SIP/2.0 403 Satellite calls not permitted', report(kamailio, caller=satellite)
    assert listener.datagrams == []
