# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane KEMI entry point for Kamailio's app_python3 (cfgengine "python").

TEMPORARY PLACEHOLDER. This adapter only proves the plumbing (role, cfg, reload, usrloc,
tests/sip). The real router replaces the routing below with a thin KSR adapter over the pure
routing core in plugins/module_utils. Until then:
  * in-dialog requests: loose_route + t_relay
  * OPTIONS: 200
  * REGISTER: digest auth against ONE HARD-CODED TEST CREDENTIAL (see below), save("location")
  * INVITE: lookup("location") + t_relay, with a failure route
Every handler is guarded: an exception logs one line and answers 500.

Layout (deployed by roles/kamailio into <config_dir>/kemi/):
  voxplane_kemi.py              this file (modparam app_python3 "load")
  voxplane_settings.json        rendered by the role: trusted trunks, directory path, ...
  ansible_collections/voxplane/pbx/plugins/module_utils/*.py   the collection's pure code,
                                importable as an implicit namespace package.
"""

import json
import os
import sys

import KSR  # provided by app_python3 inside Kamailio

HERE = os.path.dirname(os.path.abspath(__file__))

# app_python.reload re-executes this file but keeps sys.modules: drop the collection's
# modules so that a reload also picks up new module_utils code.
for _name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
    del sys.modules[_name]
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# The collection's pure code, as an implicit namespace package below HERE (the real router
# imports ...module_utils.routing the same way).
from ansible_collections.voxplane.pbx.plugins import module_utils  # noqa: E402  pylint: disable=wrong-import-position


def _load_settings(path=os.path.join(HERE, "voxplane_settings.json")):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        KSR.err("voxplane: cannot read %s: %s\n" % (path, exc))
        return {}


SETTINGS = _load_settings()

# TEMPORARY: one hard-coded test credential, to be replaced by the directory lookup.
TEMPORARY_TEST_USER = "voxtest"
TEMPORARY_TEST_PASSWORD = "voxtest-secret"

# pv_auth_check return codes (auth module README)
_AUTH_INVALID_PASSWORD = -2
_AUTH_USER_MISMATCH = -8


def _one_line_error(where, exc):
    """Log an exception as exactly one line: where, type, message, innermost frame."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    loc = "%s:%d" % (os.path.basename(tb.tb_frame.f_code.co_filename), tb.tb_lineno) if tb else "?"
    text = str(exc).replace("\n", " ")
    KSR.err("voxplane: %s failed at %s: %s: %s\n" % (where, loc, type(exc).__name__, text))


def _guarded(kind):
    """Wrap a route: an exception logs one line and answers 500 (never for ACK)."""

    def decorate(func):
        def wrapper(self, msg, *args):
            try:
                return func(self, msg, *args)
            except Exception as exc:  # pylint: disable=broad-except
                try:
                    _one_line_error(func.__name__, exc)
                    if kind == "request" and KSR.pv.get("$rm") != "ACK":
                        KSR.sl.sl_send_reply(500, "Server Internal Error")
                    elif kind == "failure":
                        KSR.tm.t_reply(500, "Server Internal Error")
                except Exception:  # pylint: disable=broad-except
                    pass
                return 1

        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper

    return decorate


def mod_init():
    """Called by app_python3 at startup and after every app_python.reload."""
    KSR.info("voxplane: KEMI placeholder loaded; module_utils from %s\n" % ", ".join(module_utils.__path__))
    return kamailio()


# app_python3 looks the class up by this name.
class kamailio:  # pylint: disable=invalid-name
    def __init__(self):
        self.settings = SETTINGS

    def child_init(self, rank):
        return 0

    @_guarded("request")
    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.sanity.sanity_check(17895, 7) < 0:
            return 1  # sanity already answered
        method = KSR.pv.get("$rm")

        if KSR.siputils.has_totag() > 0:
            return self._in_dialog(method)

        if method == "CANCEL":
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if method == "ACK":
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        # absorb retransmissions of requests with an existing transaction
        if KSR.tm.t_check_trans() == 0:
            return 1

        if method == "OPTIONS":
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        if method == "REGISTER":
            return self._register()
        if method == "INVITE":
            return self._invite()
        KSR.sl.sl_send_reply(405, "Method Not Allowed")
        return 1

    def _in_dialog(self, method):
        if KSR.rr.loose_route() > 0:
            if KSR.tm.t_relay() < 0:
                KSR.sl.sl_reply_error()
            return 1
        if method == "ACK":
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        KSR.sl.sl_send_reply(404, "Not Here")
        return 1

    def _register(self):
        # TEMPORARY: hard-coded credential instead of the directory.
        realm = KSR.pv.get("$td")
        if KSR.pv.get("$au") is None:
            KSR.auth.auth_challenge(realm, 0)
            return 1
        if KSR.pv.get("$au") != TEMPORARY_TEST_USER:
            KSR.sl.sl_send_reply(403, "Forbidden")
            return 1
        rc = KSR.auth.pv_auth_check(realm, TEMPORARY_TEST_PASSWORD, 0, 1)
        if rc in (_AUTH_INVALID_PASSWORD, _AUTH_USER_MISMATCH):
            KSR.sl.sl_send_reply(403, "Forbidden")
            return 1
        if rc < 0:
            KSR.auth.auth_challenge(realm, 0)
            return 1
        KSR.auth.consume_credentials()
        if KSR.registrar.save("location", 0) < 0:
            KSR.sl.sl_reply_error()
        return 1

    def _invite(self):
        KSR.rr.record_route()
        rc = KSR.registrar.lookup("location")
        if rc < 0:
            KSR.sl.sl_send_reply(404 if rc == -1 else 480, "Not Found" if rc == -1 else "Temporarily Unavailable")
            return 1
        KSR.tm.t_on_branch("ksr_branch_route_one")
        KSR.tm.t_on_failure("ksr_failure_route_invite")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1

    @_guarded("branch")
    def ksr_branch_route_one(self, msg):
        return 1

    @_guarded("failure")
    def ksr_failure_route_invite(self, msg):
        if KSR.tm.t_is_canceled() > 0:
            return 1
        KSR.info("voxplane: INVITE to %s failed with %s\n" % (KSR.pv.get("$ru"), KSR.pv.get("$T_reply_code")))
        return 1

    @_guarded("reply")
    def ksr_reply_route(self, msg):
        return 1

    def ksr_onsend_route(self, msg):
        # 5.6.3 guard; the cfg also sets kemi.onsend_route_callback="none".
        return 1
