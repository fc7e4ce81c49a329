# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calls and phones of the lab's tenants (playbooks/tenants.yml), for the router's SIP tests and
the attack suite.

A Kamailio of lab.kamailio routes with playbooks/tenants.yml. Phones are sipp
instances: register_ok.xml binds <sip:user@kamailio.address:port>, then a UAS scenario
(phone_answer.xml answers, phone_ring.xml rings until cancelled, phone_busy.xml answers 486)
runs on that port. Callers run call.xml (authenticated: 407, then credentials) from
kamailio.address or call_noauth.xml from the trunk stand-in. Every assertion reads what sipp
really sent and received (-trace_msg).
"""

import concurrent.futures
import os
import re
import time

from lab.net import wait_udp_bound
from lab.sipp import finish_sipp, header, parse_messages, password, received, run_sipp, start_sipp, users_csv

ACME = 'acme.sip.test'
BETA = 'beta.sip.test'
OUTSIDE_CALLER = '+493055599999'  # who calls in through the trunk stand-in


def report(kamailio, **results):
    """What the sipp instances sent and received and Kamailio's log tail, for a failed assertion."""
    parts = []
    for name, result in sorted(results.items()):
        if result is None:
            continue
        parts.append('=== %s: rc=%s stats=%s\n--- errors\n%s\n--- messages\n%s' % (
            name, result.rc, {k: v for k, v in result.stats.items() if k.endswith('(C)')},
            result.errors[-2000:], result.messages[-5000:]))
    parts.append('=== kamailio log\n' + kamailio.log_tail(40))
    return '\n'.join(parts)


def users_file(kamailio, name, rows):
    """A sipp -inf file of (user, domain, password, more...) rows in the session's work folder."""
    return users_csv(os.path.join(kamailio.workdir, '%s-%s.csv' % (name, os.urandom(3).hex())), rows)


def register(kamailio, user, domain=ACME, secret=None):
    """REGISTER (register_any.xml): 401 challenge answered with ``secret`` (default: the account's
    password); returns the SippResult, whose statuses() are the final answers in order."""
    inf = users_file(kamailio, 'reg', [(user, domain, secret or password(user))])
    return kamailio.sipp('register_any.xml', inf=inf, timeout=10)


def start_of_a_minute(needed=15):
    """Wait, when fewer than ``needed`` seconds of the clock's current minute are left, until the
    next minute begins: the router counts outside calls a minute per minute of the clock, so calls
    meant to share one minute must not straddle two."""
    if 60 - time.time() % 60 < needed:
        time.sleep(60 - time.time() % 60 + 0.5)


def call(kamailio, caller, dialled, domain=ACME, timeout=20):
    """An authenticated call (call.xml) from ``caller`` of ``domain`` to the dialled string."""
    inf = users_file(kamailio, 'call', [(caller, domain, password(caller), dialled)])
    return kamailio.sipp('call.xml', inf=inf, timeout=timeout)


def inbound(kamailio, dialled, source=None, timeout=20, calling=OUTSIDE_CALLER):
    """A call without credentials (call_noauth.xml) to sip:<dialled>@acme.sip.test, from the trunk
    stand-in's address unless ``source`` says otherwise, presenting ``calling`` (the From user)."""
    inf = users_file(kamailio, 'in', [(calling, ACME, 'unused', dialled)])
    return run_sipp('call_noauth.xml', kamailio.target, source or kamailio.trunk, kamailio.workdir, inf=inf,
                    timeout=timeout)


def final_reply(result):
    """The last final status line the caller received ('SIP/2.0 404 Number not assigned'), or None."""
    lines = [m.first_line for m in parse_messages(result.messages)
             if m.direction == 'received' and m.first_line.startswith('SIP/2.0') and m.first_line[8] != '1']
    return lines[-1] if lines else None


def requests(result):
    """The methods of the requests a UAS received, in order."""
    return [m.first_line.split()[0] for m in parse_messages(result.messages)
            if m.direction == 'received' and not m.first_line.startswith('SIP/2.0')]


def first_invite(result):
    invites = received(result, 'INVITE ')
    return invites[0] if invites else None


def register_all(phones):
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(phones))) as pool:
        return list(pool.map(lambda phone: phone.register(), phones))


def scene(kamailio, place_call, answer=None, ring=(), trunk=None, busy=(), media=None, decline=()):
    """Register the phones ``answer`` (answers, phone_answer.xml), ``ring`` (rings until
    cancelled, phone_ring.xml), ``busy`` (answers 486, phone_busy.xml) and ``decline`` (answers
    603, phone_decline.xml), start them, start
    the trunk stand-in (``trunk``: a UAS scenario on kamailio.trunk:trunk_port) and the media
    server stand-in (``media``: a UAS scenario on kamailio.trunk:media_port), place the call
    (``place_call()`` -> SippResult) and collect everything. Returns (caller result,
    {username or 'trunk': result}). The phones' contacts are removed afterwards."""
    phones = ([answer] if answer else []) + list(ring) + list(busy) + list(decline)
    handles = {}
    try:
        for phone, result in zip(phones, register_all(phones)):
            assert result.rc == 0, 'registering %r failed\n%s' % (phone, report(kamailio, register=result))
        for phone in phones:
            if phone is answer:
                scenario = 'phone_answer.xml'
            else:
                scenario = 'phone_busy.xml' if phone in busy else 'phone_decline.xml' if phone in decline \
                    else 'phone_ring.xml'
            handles[phone.username] = phone.start(scenario)
        if trunk:
            handles['trunk'] = start_sipp(trunk, kamailio.target, kamailio.trunk, kamailio.workdir,
                                          local_port=kamailio.trunk_port, timeout=20)
            wait_udp_bound(kamailio.trunk, kamailio.trunk_port)
        if media:
            handles['media'] = start_sipp(media, kamailio.target, kamailio.trunk, kamailio.workdir,
                                          local_port=kamailio.media_port, timeout=20)
            wait_udp_bound(kamailio.trunk, kamailio.media_port)
        caller = place_call()
    finally:
        # The callees end right after the caller; one that got nothing is killed after a moment.
        results = {name: finish_sipp(handle, timeout=3) for name, handle in handles.items()}
        for phone in phones:
            phone.unregister()
    return caller, results


def contacts(kamailio, aor):
    """The contact addresses `kamcmd ul.lookup location <aor>` shows (empty when none)."""
    proc = kamailio.kamcmd('ul.lookup', 'location', aor)
    return re.findall(r'Address: (\S+)', proc.stdout) if proc.returncode == 0 else []


def via_is_kamailio(kamailio, message):
    return header(message, 'Via')[0].startswith('SIP/2.0/UDP %s:%d;' % kamailio.target)
