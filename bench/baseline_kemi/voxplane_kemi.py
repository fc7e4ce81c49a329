# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark baseline: a minimal KEMI script for app_python3, no directory, no routing core.

bench/run.py deploys it with the real roles/kamailio (same cfg, same modules, same command
line) by pointing ``kamailio_kemi_src_dir`` at this folder; the role installs the
KEMI script under the fixed name voxplane_kemi.py, hence this file's name.

It does what the voxplane router does for the benchmark's requests, with constants instead
of lookups: digest auth of one account with a fixed HA1 (any other account: one shared
password, realm = To domain, for the many-accounts run), registrar save; an INVITE for the
one known DID goes to the fixed AOR (lookup, record-route, t_relay), any other gets 480 after
a lookup miss; in-dialog requests follow loose_route.

With ``kamailio_router_settings: {bench_checks: true}`` (rendered into
voxplane_settings.json next to this file) it first runs the same request hygiene as the
voxplane router (max-forwards, sanity, transaction checks), which separates the cost of those
standard checks from the cost of voxplane's own routing.
"""

import json
import os

import KSR  # provided by app_python3 inside Kamailio

REALM = "bench.test"
USER = "bench"
HA1 = "ed46ba1a085e7f41aa38e850339cfcb2"  # md5("bench:bench.test:bench-secret")
SHARED_PASSWORD = "bench-shared-secret"  # every other account, any domain (realm = To domain)
CALLEE_DID = "+4930100000040"
CALLEE_AOR = "sip:bench@bench.test"


def _checks_enabled():
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "voxplane_settings.json")) as handle:
            return bool((json.load(handle).get("router") or {}).get("bench_checks"))
    except (OSError, ValueError):
        return False


CHECKS = _checks_enabled()


def mod_init():
    return kamailio()


# app_python3 looks the class up by this name.
class kamailio:  # pylint: disable=invalid-name
    def __init__(self):
        pass

    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if CHECKS:
            if KSR.maxfwd.process_maxfwd(10) < 0:
                KSR.sl.sl_send_reply(483, "Too Many Hops")
                return 1
            if KSR.sanity.sanity_check(17895, 7) < 0:
                return 1
        method = KSR.pv.get("$rm")
        if KSR.siputils.has_totag() > 0:
            if KSR.rr.loose_route() > 0:
                KSR.tm.t_relay()
            elif method == "ACK" and KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if method in ("CANCEL", "ACK"):
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if CHECKS and KSR.tm.t_check_trans() == 0:
            return 1
        if method == "REGISTER":
            user, realm = KSR.pv.get("$au"), KSR.pv.get("$td")
            if user is None:
                KSR.auth.auth_challenge(realm, 0)
                return 1
            if user == USER and realm == REALM:
                rc = KSR.auth.pv_auth_check(REALM, HA1, 1, 1)  # the password argument is an HA1
            else:
                rc = KSR.auth.pv_auth_check(realm, SHARED_PASSWORD, 0, 1)  # a plain password
            if rc < 0:
                KSR.auth.auth_challenge(realm, 0)
                return 1
            KSR.auth.consume_credentials()
            if KSR.registrar.save("location", 0) < 0:
                KSR.sl.sl_reply_error()
            return 1
        if method == "INVITE":
            aor = CALLEE_AOR if KSR.pv.get("$rU") == CALLEE_DID else "sip:%s@%s" % (KSR.pv.get("$rU"), REALM)
            if KSR.registrar.lookup_uri("location", aor) < 0:
                KSR.sl.sl_send_reply(480, "Temporarily Unavailable")
                return 1
            KSR.rr.record_route()
            if KSR.tm.t_relay() < 0:
                KSR.sl.sl_reply_error()
            return 1
        if method == "OPTIONS":
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        KSR.sl.sl_send_reply(405, "Method Not Allowed")
        return 1

    def ksr_reply_route(self, msg):
        return 1

    def ksr_onsend_route(self, msg):
        return 1
