# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane KEMI entry point for Kamailio's app_python3 (cfgengine "python").

A thin adapter: it reads the SIP message through KSR, asks the pure routing core
(plugins/module_utils/routing.py) what to do, and carries the answer out with KSR calls.
Every decision lives in the core, which runs in tests without Kamailio.

Per worker it holds an immutable snapshot of the directory (module_utils/snapshot.py) and
swaps it when the directory generation changes; the generation is polled at most every
``reload_check_ms`` milliseconds (one single-row SELECT), never per request.

Layout (deployed by roles/kamailio into <config_dir>/kemi/):
  voxplane_kemi.py              this file (modparam app_python3 "load")
  voxplane_settings.json        rendered by the role: trusted trunks, directory path, ...
  ansible_collections/voxplane/pbx/plugins/module_utils/*.py   the collection's pure code
"""

import datetime
import ipaddress
import json
import math
import os
import socket
import sys
import time

import KSR  # provided by app_python3 inside Kamailio

HERE = os.path.dirname(os.path.abspath(__file__))

# app_python.reload re-executes this file but keeps sys.modules: drop the collection's
# modules so that a reload also picks up new module_utils code.
for _name in [n for n in sys.modules
              if n in ("ansible_collections", "voxplane_media", "voxplane_metrics", "voxplane_subscriptions", "voxplane_websocket",
                       "voxplane_cdr", "voxplane_cdr_store")
              or n.startswith("ansible_collections.")]:
    del sys.modules[_name]
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# pylint: disable=wrong-import-position
from ansible_collections.voxplane.pbx.plugins.module_utils import cluster, phone_settings, routing, snapshot  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory, dialect_for  # noqa: E402
import voxplane_cdr  # noqa: E402  # call detail records: the one dialog variable per call
import voxplane_media  # noqa: E402  # NAT traversal and the rtpengine media relay
from voxplane_metrics import Metrics, call_labels  # noqa: E402  # Prometheus (xhttp_prom)
from voxplane_subscriptions import Subscriptions, subscriptions  # noqa: E402  # as-feature-event, message-summary
from voxplane_websocket import WebSocket  # noqa: E402  # WebRTC webphones: the WebSocket handshake

# pv_auth_check flags/checks (auth README): the password argument is an HA1; the auth
# username must equal the To user (REGISTER) or the From user (other requests).
_AUTH_PASSWORD_IS_HA1 = 1
_AUTH_CHECK_USER_MATCHES = 1
_AUTH_INVALID_PASSWORD = -2
_AUTH_USER_MISMATCH = -8
# Results that only mean "ask again" (a cached nonce expired, a nonce count spent): a phone
# does this in normal operation, so they neither count as failures nor prompt for a password.
_AUTH_NONCE_EXPIRED = -4
_AUTH_NONCE_REUSED = -6
# auth_challenge flags: qop=auth; stale=true (retry with the same password).
_CHALLENGE_QOP_AUTH = 1
_CHALLENGE_STALE = 16
# htable tables of the cfg: authentication failures per source address and window, banned
# addresses, requests per source address and slot, addresses that authenticated recently,
# outside calls per limit and minute.
_FAILURES = "vxfail"
_BANNED = "vxban"
_REQUESTS = "vxflood"
_KNOWN = "vxknown"
_CALLS_A_MINUTE = "vxrate"
# A cluster (docs/cluster.md): each node's flood count of an address as told to the others.
_REQUESTS_TOLD = "vxfloodn"
# A worker writes an address that authenticates into vxknown at most this often (seconds), and
# trusts a yes read from there this long: the table's expiry is an hour, not seconds.
_KNOWN_REFRESH = 10
# The addresses a worker remembers for that, at most (a scan of many addresses only makes it
# start afresh).
_REMEMBERED_LIMIT = 20000

# Shared-memory variable (cfg: modparam pv shvset) holding the newest generation a worker
# committed by feature code: every worker compares it per request, without SQL.
_COMMITTED_GENERATION = "vx_generation"
# child_init ranks (Kamailio's sr_module.h): SIP workers count from PROC_SIPINIT; PROC_SIPRPC
# and the negative ranks are processes that never route a request.
_PROC_SIPINIT = 1
_PROC_SIPRPC = 127
# A feature code waits at most this long for a playbook's write lock.
_SETTING_BUSY_TIMEOUT_MS = 2000
# While the directory cannot be read, a worker logs the same failure again at most this often.
_UNAVAILABLE_LOG_INTERVAL = 60.0


def _store_headers(leg, headers, branches=None, relays=(), caller=None):
    """Keep the headers the next branches carry in $avp(vx_hdrs) (ksr_branch_route_one adds them):
    the leg's identity, privacy and diversion history, and ``caller``, the From of a leg forwarded
    out (routing.original_caller; None: From shows the identity). ``branches`` maps a branch's
    request URI to the identity, privacy, extra diversion and From of that branch alone (the
    mobile of single number reach). ``relays`` are the request URIs the routing core chose itself
    (trunk, media server); every other branch is a registered contact. The call's original caller
    (``origin``) is kept for the legs a failure route adds."""
    stored = {"identity": leg.identity, "privacy": routing.forwarded_privacy(leg.privacy, caller),
              "diversion": list(leg.diversion), "headers": dict(headers), "branches": branches or {},
              "relays": list(relays), "origin": leg.origin, "caller": caller}
    KSR.pv.sets("$avp(vx_hdrs)", json.dumps(stored))


def _stored_headers():
    return json.loads(KSR.pv.get("$avp(vx_hdrs)") or "{}")


def _kamailio_is_myself(uri):
    """Whether ``uri`` names this server, as Kamailio's core tells (a call into Kamailio)."""
    return KSR.is_myself(uri) > 0


def _load_settings(path=os.path.join(HERE, "voxplane_settings.json")):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        KSR.err("voxplane: cannot read %s: %s\n" % (path, exc))
        return {}


class RoutingClock(object):
    """The time the routing core decides by: which of a schedule's destinations is open, whether a
    porting number is active yet (routing.Decisions remembers decisions for as long as that time
    gives them). The host's clock, unless the router settings name a ``clock_file`` (the role's
    ``kamailio_router_settings``): a test setting (tests/lab sets it) that lets a test fix the time
    of its calls. The file holds one ISO 8601 time with its UTC offset (``2026-12-07T10:00:00+01:00``)
    or epoch seconds, and is read again for every new call, so a test may move the time between
    calls. It moves nothing else: bans, flood windows, nonces, registrations and subscriptions keep
    the host's clock. Refused (the host's clock, an error logged) unless the file is a regular file
    that only its owner may write; every worker logs a warning at start-up when one is set."""

    def __init__(self, path=None):
        self.path = path or None
        self.problem = None
        if self.path:
            KSR.warn("voxplane: routing clock from %s: calls are routed at the time that file says (a test setting)\n"
                     % self.path)

    def now(self):
        real = time.time()
        if self.path is None:
            return real
        try:
            status = os.stat(self.path)
            if not os.path.isfile(self.path) or status.st_mode & 0o022:
                raise ValueError("not a regular file that only its owner may write")
            with open(self.path) as handle:
                text = handle.read().strip()
            try:
                moment = float(text)
            except ValueError:
                stamp = datetime.datetime.fromisoformat(text)
                if stamp.tzinfo is None:
                    raise ValueError("%r has no UTC offset" % text) from None
                moment = stamp.timestamp()
        except (OSError, ValueError) as exc:
            problem = str(exc)
            if problem != self.problem:
                KSR.err("voxplane: routing clock %s ignored, the host's clock used: %s\n" % (self.path, problem))
            self.problem = problem
            return real
        self.problem = None
        return moment


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
            except UnicodeDecodeError:
                # KSR.pv.get cannot hand bytes that are not UTF-8 to Python: the sender's
                # message is at fault, not the router (never for ACK, which gets no reply).
                try:
                    if kind == "request" and KSR.pv.get("$rm") != "ACK":
                        KSR.sl.sl_send_reply(400, "Bad Request: not UTF-8")
                except Exception:  # pylint: disable=broad-except
                    pass
                return 1
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


class DirectoryView(object):
    """The worker's current snapshot, swapped when the directory generation moves. ``path`` is the
    directory's location: a SQLite file or a PostgreSQL connection string (store.dialect_for)."""

    def __init__(self, path, trusted, check_interval, media_service=None):
        self.path = path
        self.trusted = tuple(trusted)
        self.media_service = media_service or None  # the PBX's media service (docs/media.md)
        self.check_interval = check_interval
        self.snapshot = None
        self.generation = None
        self.checked_at = 0.0
        self.confirmed_at = None  # when a poll last found the snapshot current (metrics: its age)
        self._poll = None
        # Since when the directory cannot be read (None: it can), and when that was logged last.
        self._failing_since = None
        self._logged = None

    def _generation(self):
        """The directory generation, one single-row SELECT over one read-only connection per worker
        process (store.GenerationPoll); a storage error names the directory like every other."""
        if self._poll is None:
            self._poll = Directory(self.path).generation_poll()
        return self._poll()

    def _failed(self, where, exc):
        """Log a failure to read the directory: when it starts, then at most once a minute while it
        lasts (a worker checks every reload_check_ms while the database is down)."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if self._logged is None or now - self._logged >= _UNAVAILABLE_LOG_INTERVAL:
            self._logged = now
            _one_line_error(where, exc)

    def _recovered(self):
        if self._failing_since is not None:
            KSR.info("voxplane: directory readable again after %.1f s\n" % (time.monotonic() - self._failing_since))
            self._failing_since = None
            self._logged = None

    def current(self):
        """The snapshot to route with; None while the directory cannot be read."""
        now = time.monotonic()
        if self.snapshot is not None and now - self.checked_at < self.check_interval \
                and (KSR.pvx.shv_get(_COMMITTED_GENERATION) or 0) <= self.generation:
            return self.snapshot
        self.checked_at = now
        try:
            generation = self._generation()
            if generation != self.generation or self.snapshot is None:
                previous = self.snapshot
                started = time.monotonic()
                with Directory(self.path).transaction(write=False, create=False) as txn:
                    # Only the tenants whose generation moved are rebuilt (snapshot.load).
                    self.snapshot = snapshot.load(txn, self.trusted, previous, self.media_service)
                self.generation = self.snapshot.generation
                METRICS.reload_pause(time.monotonic() - started, "partial" if previous is not None else "full")
                KSR.info("voxplane: directory generation %d loaded (%d tenants, %d numbers; %s, %.1f ms)\n"
                         % (self.generation, len(self.snapshot.tenants), len(self.snapshot.numbers),
                            "%d rebuilt" % self.snapshot.rebuilt if previous is not None else "full build",
                            (time.monotonic() - started) * 1000))
            self.confirmed_at = time.monotonic()
            self._recovered()
        except Exception as exc:  # pylint: disable=broad-except
            # Keep routing with the last good snapshot; without one, calls get 503. The next check
            # connects afresh (a SQLite file replaced meanwhile, a database server restarted).
            if self._poll is not None:
                self._poll.close()
            self._failed("directory reload", exc)
        return self.snapshot

    def preload(self):
        """Load the snapshot when the worker starts (child_init), before its first request;
        on failure the first request tries again."""
        started = time.monotonic()
        try:
            with Directory(self.path).transaction(write=False, create=False) as txn:
                self.snapshot = snapshot.load(txn, self.trusted, None, self.media_service)
            self.generation = self.snapshot.generation
            self.checked_at = self.confirmed_at = started
            METRICS.reload_pause(time.monotonic() - started, "start")
            KSR.info("voxplane: directory generation %d loaded at start (%d tenants; %.0f ms)\n"
                     % (self.generation, len(self.snapshot.tenants), (time.monotonic() - started) * 1000))
        except Exception as exc:  # pylint: disable=broad-except
            self.snapshot = self.generation = None
            _one_line_error("directory load at start", exc)

    def committed(self, generation):
        """This worker committed ``generation``: tell every worker (shared memory) to reload."""
        if generation is not None and generation > (KSR.pvx.shv_get(_COMMITTED_GENERATION) or 0):
            KSR.pvx.shv_seti(_COMMITTED_GENERATION, generation)

    def directory(self):
        """The directory for the router's one write path (feature codes)."""
        return Directory(self.path, dialect_for(self.path, lock_timeout_ms=_SETTING_BUSY_TIMEOUT_MS))


# Answers of the pure request checks, by their inputs: a phone sends the same digest uri,
# Request-URI and Contact with every re-registration, so each check runs once per phone, not
# once per request. Bounded: a scan sending ever new values only makes a table start afresh.
_ANSWERS_LIMIT = 20000
_NOT_ASKED = object()


class Guard(object):
    """Bans and limits by source address (docs/security.md). Every request of a source that is
    not exempt looks into the ban table (vxban) and counts in its address's counter of the
    current slot of flood_interval seconds (vxflood); failures count per window (vxfail). All
    are htables in shared memory, so every limit holds whichever worker takes a request.

    An address is *known* while it has passed digest authentication within known_time seconds
    (vxknown): it holds live registrations of valid accounts, or has just proven an account.
    - An unknown address with more than flood_requests requests in a slot, or auth_failures
      failures in a window, is banned for ban_time seconds: no reply at all meanwhile.
    - A known address is never banned: beyond known_flood_requests requests in a slot its
      requests get 503 with Retry-After until the slot ends, and its failures from the
      auth_failures-th of a window on get 503 instead of a new challenge.
    Trusted trunks and the exempt addresses are neither counted nor banned. A request costs a
    look into the ban table and one shared increment."""

    def __init__(self, settings, trusted=(), nodes=None):
        # On a cluster the failure counts and the flood limits are the cluster's (cluster.Cluster).
        self.cluster = nodes or cluster.Cluster()
        self.auth_failures = int(settings.get("auth_failures") or 10)
        self.window = int(settings.get("window") or 60)
        self.ban_time = int(settings.get("time") or 900)
        # The deployment's trusted trunks count even before the first snapshot is loaded.
        self.exempt = frozenset(settings.get("exempt") or ()) | frozenset(trusted)
        self.flood_interval = max(1, int(settings.get("flood_interval") or 2))
        self.flood_requests = max(1, int(settings.get("flood_requests") or 100))
        # A known address never gets less than an unknown one.
        self.known_requests = max(self.flood_requests, int(settings.get("known_flood_requests") or 3000))
        self.flood_step = self.cluster.flood_step(self.flood_requests)
        self.forget()

    def forget(self):
        """Drop what this worker remembers (which addresses it found or made known)."""
        self.exempt_in = None  # the snapshot whose trunks exempt_now includes
        self.exempt_now = self.exempt
        self.known_seen = {}  # address -> when this worker last found it in vxknown
        self.known_written = {}  # address -> when this worker last wrote it there

    def _exempt_with(self, snap):
        """The trusted trunks come with the directory: exempt_now follows the snapshot."""
        self.exempt_in = snap
        self.exempt_now = self.exempt | snap.trusted if snap is not None else self.exempt

    def is_exempt(self, snap, source):
        if snap is not self.exempt_in:
            self._exempt_with(snap)
        return source in self.exempt_now

    def admit(self, snap, source):
        """What to do with a request of ``source``: 0 go on; -1 drop it without a reply (banned,
        or banned now for a flood); n > 0 answer 503 with Retry-After n (a known address over
        its ceiling in this slot). A banned source is not counted, so a ban lifted by RPC ends
        with the next request."""
        if snap is not self.exempt_in:
            self._exempt_with(snap)
        if source in self.exempt_now:
            return 0
        if KSR.htable.sht_get(_BANNED, source) is not None:
            return -1
        now = time.time()
        slot = int(now // self.flood_interval)
        # vxflood has initval 0: one sht_inc creates the slot's item or adds to it, atomically
        # (without initval a missing item is not created: sht_inc answers -255, which the
        # comparison admits, as it does when shared memory is full).
        key = "%s|%d" % (source, slot)
        count = KSR.htable.sht_inc(_REQUESTS, key)
        if self.cluster.enabled:
            count = self._cluster_requests(key, count)
        if count <= self.flood_requests:
            return 0
        if not self.is_known(source, now):
            self.ban(source, "request flood: more than %d requests in %d s"
                     % (self.flood_requests, self.flood_interval))
            return -1
        if count <= self.known_requests:
            return 0
        if count == self.known_requests + 1:  # exactly one request of the slot sees this count
            KSR.warn("voxplane: rate-limited %s: more than %d requests in %d s; answered 503 for the rest of "
                     "the %d s (an address that authenticated recently is never banned)\n"
                     % (source, self.known_requests, self.flood_interval, self.flood_interval))
        return _seconds_until((slot + 1) * self.flood_interval, now)

    def _cluster_requests(self, key, count):
        """A cluster: this node's count of an address in this slot (``count``) is told to the other
        nodes every flood_step requests; from one step on, the others' last told counts are added
        (cluster.Cluster.flood_step). Below a step an address costs no read of the others."""
        if count < self.flood_step:
            return count
        if count % self.flood_step == 0:
            KSR.htable.sht_seti(_REQUESTS_TOLD, self.cluster.own_key(key), count)
        return cluster.total(count, [KSR.htable.sht_get(_REQUESTS_TOLD, other)
                                     for other in self.cluster.other_keys(key)])

    def failed(self, snap, source, why):
        """One authentication failure of ``source``, counted per window (fixed slots of
        ``window`` seconds). 0: answer it as usual (a new challenge, 403, 400); n > 0: answer
        503 with Retry-After n instead (a known address at or beyond auth_failures failures in
        this window). An unknown address is banned at auth_failures failures. A phone retrying
        a stale password every half minute never gets there; a password guesser within
        seconds."""
        if self.is_exempt(snap, source):
            return 0
        now = time.time()
        window = int(now // self.window)
        key = "%s|%d" % (source, window)
        own = self.cluster.own_key(key)  # a cluster: this node's count, replicated to the others
        count = KSR.htable.sht_inc(_FAILURES, own)
        if count < 1:  # a table without initval: sht_inc does not create a missing item (-255)
            KSR.htable.sht_seti(_FAILURES, own, 1)
            count = 1
        if self.cluster.enabled:
            count = cluster.total(count, [KSR.htable.sht_get(_FAILURES, other) for other in self.cluster.other_keys(key)])
        if count <= self.auth_failures:
            KSR.notice("voxplane: authentication failure %d of %s: %s\n" % (count, source, why))
        if count < self.auth_failures:
            return 0
        if not self.is_known(source, now):
            self.ban(source, "%d authentication failures" % count)
            return 0
        if count == self.auth_failures:
            KSR.warn("voxplane: rate-limited authentication failures of %s: %d in %d s; answered 503 for the rest "
                     "of the window (an address that authenticated recently is never banned)\n"
                     % (source, count, self.window))
        return _seconds_until((window + 1) * self.window, now)

    def authenticated(self, source):
        """A request of ``source`` passed digest authentication: the address is known for the
        next known_time seconds (vxknown's autoexpire; every write starts it again). Written
        at most every _KNOWN_REFRESH seconds per address by each worker."""
        now = time.time()
        written = self.known_written.get(source)
        if written is not None and now - written < _KNOWN_REFRESH:
            return
        if source in self.exempt_now:
            return
        KSR.htable.sht_seti(_KNOWN, source, 1)
        if len(self.known_written) >= _REMEMBERED_LIMIT:
            self.known_written.clear()
        self.known_written[source] = now

    def is_known(self, source, now):
        """Whether ``source`` authenticated within known_time seconds (vxknown). Asked only of
        an address over the unknown ceiling or at the failure limit; an answer yes holds in
        this worker for _KNOWN_REFRESH seconds."""
        seen = self.known_seen.get(source)
        if seen is not None and now - seen < _KNOWN_REFRESH:
            return True
        if KSR.htable.sht_get(_KNOWN, source) is None:
            return False
        if len(self.known_seen) >= _REMEMBERED_LIMIT:
            self.known_seen.clear()
        self.known_seen[source] = now
        return True

    def ban(self, source, reason):
        """Put ``source`` into the ban table; logged once per ban, whichever workers find the
        reason at the same time (the table's lock for that key decides who bans)."""
        KSR.htable.sht_lock(_BANNED, source)
        try:
            first = KSR.htable.sht_get(_BANNED, source) is None
            if first:
                KSR.htable.sht_seti(_BANNED, source, 1)
        finally:
            KSR.htable.sht_unlock(_BANNED, source)
        if first:
            KSR.warn("voxplane: banned %s for %d s: %s\n" % (source, self.ban_time, reason))
            METRICS.banned("flood" if reason.startswith("request flood") else "auth_failures")


def media_sources(uri):
    """The addresses the PBX's media service sends from (docs/media.md): the host of its URI (the kamailio
    role's kamailio_media_service, sip:<address>:<port>), and what a DNS name resolves to when the script is
    loaded. Only requests from there may say what a call is for (X-Voxplane-Origin)."""
    if not uri:
        return frozenset()
    host = routing.uri_host(uri)
    found = set([host])
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            found.update(info[4][0] for info in socket.getaddrinfo(host, None))
        except (OSError, UnicodeError) as exc:
            KSR.warn("voxplane: cannot resolve the media service %s: %s\n" % (host, exc))
    return frozenset(found)


# What the media service's calls carry (routing.ORIGIN_HEADER, routing.CALL_HEADER), read as pvs.
_ORIGIN_PV = "$hdr(%s)" % routing.ORIGIN_HEADER
_CALL_PV = "$hdr(%s)" % routing.CALL_HEADER


def _seconds_until(end, now):
    """Whole seconds from ``now`` to ``end`` (a slot's end), at least 1: a Retry-After."""
    return max(1, int(math.ceil(end - now)))


SETTINGS = _load_settings()
VIEW = DirectoryView(SETTINGS.get("directory_path", "/var/lib/voxplane/directory.db"),
                     SETTINGS.get("trusted_trunks", []),
                     (SETTINGS.get("router") or {}).get("reload_check_ms", 500) / 1000.0,
                     SETTINGS.get("media_service"))
CLUSTER = cluster.Cluster(SETTINGS.get("cluster"))
MEDIA_SOURCES = frozenset().union(*[media_sources(uri) for uri in SETTINGS.get("media_services") or [SETTINGS.get("media_service")]])
# The media services place a call per queue member and menu choice: never counted as a flood, never banned.
GUARD = Guard(SETTINGS.get("ban") or {}, list(SETTINGS.get("trusted_trunks", [])) + sorted(MEDIA_SOURCES), CLUSTER)
MEDIA = voxplane_media.Media(SETTINGS.get("media"))
# The PBX's media services: the routing core names the first; with two or more the dispatcher
# set of the cfg picks one per call ({"set": n, "alg": n}; empty: the URI as it is).
MEDIA_SERVICE = SETTINGS.get("media_service") or None
MEDIA_DISPATCHER = SETTINGS.get("media_dispatcher") or {}
WEBSOCKET = WebSocket(SETTINGS.get("websocket"))
METRICS = Metrics(SETTINGS.get("metrics"))
CLOCK = RoutingClock((SETTINGS.get("router") or {}).get("clock_file"))
# Call detail records (roles/kamailio kamailio_cdr): the stamp acc's records carry.
RECORDS = voxplane_cdr.CallRecords(SETTINGS.get("cdr"))
# SIP event subscriptions (as-feature-event, message-summary): SUBSCRIBEs in the workers, NOTIFYs
# from the rtimer process.
SUBSCRIPTIONS = Subscriptions(SETTINGS.get("directory_path", "/var/lib/voxplane/directory.db"))
# This server's own addresses, from the role (older settings files: ask Kamailio per URI).
_is_myself = routing.ServerAddresses(SETTINGS["own_addresses"]).names if SETTINGS.get("own_addresses") \
    else _kamailio_is_myself


def mod_init():
    """Called by app_python3 at startup and after every app_python.reload."""
    return kamailio()


class kamailio:  # pylint: disable=invalid-name  # app_python3 looks the class up by name
    def __init__(self):
        self.view = VIEW
        self.guard = GUARD
        self.media = MEDIA
        self.cluster = CLUSTER
        self.dropped_branches = 0
        self.dialog_tracked = False
        self.digest_uri_answers = {}  # (digest uri, Request-URI) -> digest_uri_matches
        self.contacts_in, self.contact_answers = None, {}  # Contact value -> contact_refusal
        self.source = None  # the request's source address ($si)
        self.method = None  # and its method ($rm), each read once per request
        self.decisions = routing.Decisions()  # the request route's decisions, by their inputs
        self.caller_domain = None  # the calling account's domain (None: from the trunk, or a failure route)
        self.media_sources = MEDIA_SOURCES  # the media service's addresses (X-Voxplane-Origin)
        self.records = RECORDS

    def child_init(self, rank):
        if _PROC_SIPINIT <= rank < _PROC_SIPRPC:  # a SIP worker: the first request need not wait for the load
            self.view.preload()
        return 0

    # Request route -------------------------------------------------------------------

    @_guarded("request")
    def ksr_request_route(self, msg):
        # The last loaded snapshot is enough to know the trusted trunks: no reload check here.
        last = self.view.snapshot
        source = self.source = KSR.pv.get("$si")  # read once per request
        if self.cluster.enabled and KSR.pv.get("$Rp") == self.cluster.port:
            return self._cluster_socket(source)
        verdict = self.guard.admit(last, source)
        if verdict:
            if verdict > 0:  # a known address over its ceiling: told when to come back
                self.media.reply_to_source()
                self._unavailable(verdict)
            return 1  # banned: no reply
        if last is None or not last.is_trusted(source):
            # Every reply, the checks' below too, goes back through the sender's NAT; a
            # carrier's go where its Via says.
            self.media.reply_to_source()
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.sanity.sanity_check(17895, 7) < 0:
            return 1  # sanity already answered
        method = self.method = KSR.pv.get("$rm")
        if method == "SUBSCRIBE":
            return self._subscribe()

        # A REGISTER is never part of a dialog (a To-tag in it means nothing, RFC 3261 10.2) and
        # is answered statelessly, so it has no transaction to find: it skips both lookups.
        if method != "REGISTER":
            if KSR.siputils.has_totag() > 0:
                return self._in_dialog(method)
            if method in ("CANCEL", "ACK"):
                return self._within_its_transaction()
            if KSR.tm.t_check_trans() == 0:
                return 1  # a retransmission of a request whose transaction exists
            if method == "OPTIONS" and not KSR.pv.get("$rU"):
                KSR.sl.sl_send_reply(200, "OK")
                return 1

        snap = self.view.current()
        if snap is None:
            KSR.hdr.append_to_reply("Retry-After: 5\r\n")
            KSR.sl.sl_send_reply(503, "Directory Unavailable")
            return 1
        if method == "REGISTER":
            return self._register(snap)
        if method == "INVITE":
            return self._invite(snap)
        KSR.hdr.append_to_reply("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, UPDATE, INFO, REFER, NOTIFY\r\n")
        KSR.sl.sl_send_reply(405, "Method Not Allowed")
        return 1

    # The cluster socket (docs/cluster.md) -------------------------------------------------

    def _cluster_socket(self, source):
        """A request on the cluster socket: DMQ's KDMQ, or a request another node hands over (a
        call for a phone registered here, and what follows in its transaction and dialog). Only
        the nodes' cluster sockets may send here: anything else is dropped without a reply."""
        if not self.cluster.from_node(source, KSR.pv.get("$sp"), KSR.pv.get("$Rp")):
            KSR.warn("voxplane: dropped a request to the cluster socket from %s:%s, not a node\n"
                     % (source, KSR.pv.get("$sp")))
            return 1
        method = self.method = KSR.pv.get("$rm")
        if method == "KDMQ":
            KSR.dmq.handle_message()
            return 1
        if KSR.siputils.has_totag() > 0:
            return self._in_dialog(method)
        if method in ("CANCEL", "ACK"):
            return self._within_its_transaction()
        if KSR.tm.t_check_trans() == 0:
            return 1
        return self._handed_over(method)

    def _handed_over(self, method):
        """A request another node sends to a phone registered here, along the registration's Path
        (cluster.Cluster.path_header): its Route names this node's cluster socket, with the socket
        the phone registered on and, behind NAT, the phone's address (which loose_route makes the
        next hop). It was authenticated and routed by that node: it is relayed from the phone's
        socket, so that the phone's NAT binding with this node carries it. A call is record-routed
        and tracked here too, so that its in-dialog requests pass this node both ways."""
        route = KSR.pv.get("$hdr(Route)") or ""
        if KSR.rr.loose_route_preloaded() <= 0:
            KSR.sl.sl_send_reply(403, "Not a Path of this node")
            return 1
        socket = cluster.hop_socket(route)
        if socket:
            KSR.pv.sets("$fs", socket)
        self.media.handed_over()
        if method == "INVITE":
            KSR.rr.record_route()
            KSR.dialog.dlg_manage()
        self.media.armed()
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1

    def _in_dialog(self, method):
        """A request with a To-tag. Relayed only inside a dialog this server set up and
        record-routed (the dialog module matches our cookie, Call-ID and both tags): otherwise
        anyone could send an INVITE with a To-tag and a Route naming us or the trunk and have
        it relayed to the carrier without authentication."""
        self.media.detect(method)
        KSR.dialog.dlg_manage()
        if KSR.dialog.is_known_dlg() < 0:
            if method == "ACK":
                return self._within_its_transaction()
            KSR.sl.sl_send_reply(481, "Call/Transaction Does Not Exist")
            return 1
        if KSR.rr.loose_route() > 0:
            self.media.in_dialog(method)
            if method == "INVITE":
                KSR.rr.record_route()
            if KSR.tm.t_relay() < 0:
                KSR.sl.sl_reply_error()
            return 1
        if method == "ACK":
            return self._within_its_transaction()
        KSR.sl.sl_send_reply(404, "Not Here")
        return 1

    def _subscribe(self):
        """The event packages served: as-feature-event and message-summary (voxplane_subscriptions)."""
        event = subscriptions.event_of(KSR.pv.get("$hdr(Event)"))
        if event not in subscriptions.PACKAGES:
            KSR.hdr.append_to_reply("Allow-Events: %s\r\n" % subscriptions.ALLOW_EVENTS)
            KSR.sl.sl_send_reply(489, "Bad Event")
            return 1
        snap = self.view.current()
        if snap is None:
            KSR.sl.sl_send_reply(503, "Directory Unavailable")
            return 1
        self.media.detect("SUBSCRIBE")
        return SUBSCRIPTIONS.subscribe(self, snap, event)

    @staticmethod
    def _within_its_transaction():
        """CANCEL, and the ACK of a negative final reply (hop by hop), go where their INVITE
        transaction went and nowhere else; without a transaction they are dropped."""
        if KSR.tm.t_check_trans() > 0:
            KSR.tm.t_relay()
        return 1

    @staticmethod
    def _unavailable(retry_after):
        """503 with Retry-After (stateless; an ACK gets nothing): a known address over a limit."""
        if KSR.pv.get("$rm") != "ACK":
            KSR.hdr.append_to_reply("Retry-After: %d\r\n" % retry_after)
            KSR.sl.sl_send_reply(503, "Service Unavailable")

    # Authentication ------------------------------------------------------------------

    def _failure(self, snap, why):
        """Count an authentication failure of the source (Guard.failed). True when it has been
        answered here (503: a known address past the failure limit), so the caller sends nothing."""
        retry_after = self.guard.failed(snap, self.source, why)
        if retry_after:
            self._unavailable(retry_after)
            return True
        return False

    def _authenticate(self, snap, domain):
        """Digest-authenticate the request against the directory; the account's username when
        it may go on, else None (the reply is sent).
        An unknown domain gets 403; an unknown account and a wrong password get the same new
        challenge (nothing tells which accounts exist) and count as failures of the source
        address, as does a digest computed for another Request-URI (400); a known address past
        the failure limit gets 503 with Retry-After instead (Guard.failed). An account that
        requires TLS gets 403 over any other transport, once its credentials are proven."""
        user = KSR.pv.get("$au")
        if user is None:
            if snap.by_domain.get(domain) is None:
                if not self._failure(snap, "unknown domain %s" % domain):
                    KSR.sl.sl_send_reply(403, "Unknown domain")
                return None
            KSR.auth.auth_challenge(domain, _CHALLENGE_QOP_AUTH)
            return None
        creds = self.decisions.credentials(snap, domain, user)
        if isinstance(creds, routing.Reject):
            if not self._failure(snap, "unknown domain %s" % domain):
                KSR.sl.sl_send_reply(creds.code, creds.reason)
            return None
        realm, ha1, insecure_refusal = creds
        if ha1 is None:
            if not self._failure(snap, "unknown account %s@%s" % (user, domain)):
                KSR.auth.auth_challenge(realm, _CHALLENGE_QOP_AUTH)
            return None
        rc = KSR.auth.pv_auth_check(realm, ha1, _AUTH_PASSWORD_IS_HA1, _AUTH_CHECK_USER_MATCHES)
        if rc == _AUTH_USER_MISMATCH:
            KSR.sl.sl_send_reply(403, "Account may only use its own identity")
            return None
        if rc in (_AUTH_NONCE_EXPIRED, _AUTH_NONCE_REUSED):
            KSR.auth.auth_challenge(realm, _CHALLENGE_QOP_AUTH | _CHALLENGE_STALE)
            return None
        if rc < 0:
            if not self._failure(snap, "wrong password for %s@%s" % (user, domain)):
                KSR.auth.auth_challenge(realm, _CHALLENGE_QOP_AUTH)
            return None
        uris = (KSR.pv.get("$adu"), KSR.pv.get("$ru"))
        matches = self.digest_uri_answers.get(uris)
        if matches is None:
            matches = routing.remember(self.digest_uri_answers, uris,
                                       routing.digest_uri_matches(uris[0], uris[1], _is_myself), _ANSWERS_LIMIT)
        if not matches:
            if not self._failure(snap, "digest uri is not the Request-URI for %s@%s" % (user, domain)):
                KSR.sl.sl_send_reply(400, "Bad Request: digest uri is not the Request-URI")
            return None
        if insecure_refusal is not None and not routing.secure_transport(KSR.pv.get("$pr")):
            KSR.sl.sl_send_reply(insecure_refusal.code, insecure_refusal.reason)
            return None
        # A valid account proven from this address: it is known (never banned, rate-limited).
        self.guard.authenticated(self.source)
        if self.method != "REGISTER":
            KSR.auth.consume_credentials()  # a relayed request does not carry them on
        return user

    def _register(self, snap):
        domain = (KSR.pv.get("$td") or "").lower()  # host names are case-insensitive
        user = self._authenticate(snap, domain)
        if user is None:
            return 1
        aor = routing.register_target(snap, domain, KSR.pv.get("$tU"), user)
        if isinstance(aor, routing.Reject):
            KSR.sl.sl_send_reply(aor.code, aor.reason)
            return 1
        contact = KSR.pv.get("$(hdr(Contact)[*])") or ""
        if snap is not self.contacts_in:  # the answers depend on the directory's trunks
            self.contacts_in, self.contact_answers = snap, {}
        refusal = self.contact_answers.get(contact, _NOT_ASKED)
        if refusal is _NOT_ASKED:
            refusal = routing.remember(self.contact_answers, contact,
                                       routing.contact_refusal(snap, routing.split_uris([contact]), _is_myself),
                                       _ANSWERS_LIMIT)
        if refusal is not None:
            KSR.sl.sl_send_reply(refusal.code, refusal.reason)
            return 1
        self.media.detect("REGISTER")
        if self.cluster.enabled:
            # Saved with a Path naming this node, which DMQ replicates with the binding: every
            # node sends the phone's calls through this one (cluster.Cluster.path_header).
            path = self.cluster.path_header(cluster.socket_string(KSR.pv.get("$pr"), KSR.pv.get("$Ri"),
                                                                  KSR.pv.get("$Rp")),
                                            KSR.pv.get("$avp(RECEIVED)"))
            KSR.hdr.insert("Path: %s\r\n" % path)
            KSR.textopsx.msg_apply_changes()
        if KSR.registrar.save("location", 0) < 0:
            KSR.sl.sl_reply_error()
        return 1

    # Calls ----------------------------------------------------------------------------

    def _invite(self, snap):
        source = self.source
        dialled = KSR.pv.get("$rU") or ""
        now = CLOCK.now()
        origin = KSR.pv.get(_ORIGIN_PV)
        if origin is not None or KSR.pv.get(_CALL_PV) is not None:
            if source in self.media_sources:
                if origin is not None:
                    return self._from_media(snap, dialled, origin, now)
            else:
                # Only the media service says what a call is for (docs/media.md): anyone else's headers of it
                # are removed, and the call is routed as it would be without them.
                KSR.hdr.remove(routing.ORIGIN_HEADER)
                KSR.hdr.remove(routing.CALL_HEADER)
        if snap.is_trusted(source):
            domain = None
            decision = self.decisions.inbound(snap, dialled, source, now)
            self.records.begin(voxplane_cdr.FROM_TRUNK, None, None, dialled, source)
        else:
            domain = (KSR.pv.get("$fd") or "").lower()
            user = self._authenticate(snap, domain)
            if user is None:
                return 1
            decision = self.decisions.from_account(snap, domain, user, dialled, now)
            self.records.begin(voxplane_cdr.FROM_ACCOUNT, domain, user, dialled, source)
        if decision.__class__ is routing.PhoneSetting:
            return self._phone_setting(decision)
        self.dialog_tracked = False
        self.caller_domain = domain
        self._execute(snap, decision, now, in_failure=False)
        return 1

    def _from_media(self, snap, dialled, origin, now):
        """A call the PBX's media service places for an IVR menu or a queue (routing.route_from_media): no
        authentication (it comes from the service's own address), the tenant from the Request-URI's domain, the
        caller the service's P-Asserted-Identity (else From) with its Privacy. Not remembered (routing.Decisions):
        the original caller differs from call to call."""
        domain = (KSR.pv.get("$rd") or "").lower()
        caller = routing.media_caller(snap, domain, KSR.pv.get("$hdr(P-Asserted-Identity)") or KSR.pv.get("$fu"),
                                      KSR.pv.get("$hdr(Privacy)"))
        plan = routing.route_from_media(snap, domain, dialled, origin, caller, now)
        KSR.hdr.remove(routing.ORIGIN_HEADER)  # between the router and the service: no phone sees it
        self.records.begin(voxplane_cdr.FROM_MEDIA, domain, None, dialled, None, KSR.pv.get(_CALL_PV))
        self.dialog_tracked = False
        self.caller_domain = None
        self._execute(snap, routing.legs(snap, plan, now), now, in_failure=False)
        return 1

    def _phone_setting(self, setting):
        """A feature code: write the setting (phone_settings is the router's one write path),
        make every worker route the next call with it, and answer the phone."""
        outcome = phone_settings.apply(self.view.directory(), setting)
        if outcome.changed:
            self.view.committed(outcome.generation)
        KSR.info("voxplane: feature code of %s/%s %r: %d %s\n"
                 % (setting.tenant, setting.extension, setting.request, outcome.code, outcome.reason))
        KSR.sl.sl_send_reply(outcome.code, outcome.reason)
        return 1

    def _execute(self, snap, legs, now, in_failure):
        """Carry out a decision of the routing core, leg by leg (routing.legs: the same steps the
        route simulator takes): a Ring nobody can ring moves on to the next leg. The legs (and
        their plans) may be shared with other calls (routing.Decisions): read, never changed."""
        for leg in legs:
            plan = leg.plan
            if plan.__class__ is routing.Reject:
                if in_failure:  # the call's dialog counts it (dialog:failed)
                    METRICS.failed_reply(plan.code)
                elif METRICS.enabled:
                    METRICS.rejected(self._call_labels(snap, plan), plan.code)
                self._reply(plan.code, plan.reason, in_failure)
                return
            if in_failure:
                # A previous branch's next hop must not steer this one. (In the request route a
                # leg after the first follows a Ring whose lookups found nothing: nothing is set.)
                KSR.resetdsturi()
            if plan.__class__ is routing.Relay:
                self._track_dialog(in_failure, snap, plan)
                if plan.charge is not None:
                    refusal = self._count_outside_call(snap, plan.charge)
                    if refusal is not None:
                        self._reply(refusal.code, refusal.reason, in_failure)
                        return
                _store_headers(leg, plan.headers, relays=[plan.uri],
                               caller=routing.original_caller(plan, leg.origin, lambda: self._calling_number(snap)))
                KSR.pv.sets("$ru", plan.uri)
                if plan.destination and MEDIA_DISPATCHER and plan.destination == MEDIA_SERVICE:
                    # One of the media services that answer probes (the dispatcher set); the next
                    # one when it does not take the call (ksr_failure_route_call).
                    if KSR.dispatcher.ds_select_dst(MEDIA_DISPATCHER["set"], MEDIA_DISPATCHER["alg"]) < 0:
                        KSR.warn("voxplane: no media service answers its probes\n")
                        self._reply(503, "Media Service Unavailable", in_failure)
                        return
                    KSR.pv.sets("$avp(vx_ds)", "1")
                elif plan.destination:
                    KSR.setdsturi(plan.destination)
                # The leg's own ring time: in the failure route the transaction still holds the
                # INVITE timer of the ring that failed, which would apply to this new branch too
                # and cancel it after the forwarding extension's ring time. None (a call the
                # caller dialled, only ever in the request route): tm's cfg-wide fr_inv_timer.
                if plan.ring_time:
                    KSR.tm.t_set_fr(plan.ring_time * 1000, 0)
                if plan.context:  # an announcement that leads somewhere: the failure route goes on
                    KSR.pv.sets("$avp(vx_ctx)", plan.context)
                self.records.relayed(snap, leg, in_failure, time.time())  # the host clock, never the routing clock
                self._relay(snap, plan, in_failure)
                return
            mobile = plan.mobile
            if mobile is not None and mobile.charge is not None:
                self._track_dialog(in_failure, snap, plan)
                if self._count_outside_call(snap, mobile.charge) is not None:
                    mobile = None  # over a limit: the phones ring, the mobile does not
            if self._ring(plan.uris, mobile):
                self._track_dialog(in_failure, snap, plan)
                branches = {}
                if mobile is not None:
                    caller = routing.original_caller(mobile, leg.origin, lambda: self._calling_number(snap))
                    branches[mobile.uri] = {"identity": mobile.identity, "diversion": list(mobile.diversion),
                                            "privacy": routing.forwarded_privacy(mobile.privacy or leg.privacy, caller),
                                            "caller": caller}
                _store_headers(leg, {}, branches, relays=list(branches))
                KSR.pv.sets("$avp(vx_ctx)", plan.context)
                KSR.tm.t_set_fr(plan.ring_time * 1000, 0)
                self.records.relayed(snap, leg, in_failure, time.time())  # the host clock, never the routing clock
                self._relay(snap, plan, in_failure)
                return

    @staticmethod
    def _calling_number(snap):
        """A call from the trunk: its calling number as E.164, None when anonymous (routing.calling_number
        of the From user, the source address and the Privacy header of the request, which in a failure
        route is the original INVITE). Asked only for a leg forwarded out."""
        return routing.calling_number(snap, KSR.pv.get("$fU") or "", KSR.pv.get("$si"), KSR.pv.get("$hdr(Privacy)"))

    def _call_labels(self, snap, plan):
        """The call's metric labels (voxplane_metrics.call_labels): tenant, direction, trunk."""
        return call_labels(snap, self.caller_domain, self.source, self.source in self.media_sources, plan)

    def _track_dialog(self, in_failure, snap=None, plan=None):
        """Make the call a tracked dialog once it is going to be relayed (not for a call answered
        right away, which so costs no Record-Route and no failure route either): its in-dialog
        requests are relayed, forged ones are not; it counts in the outside-call profiles; the
        uac module keeps the caller's original From in it. In the failure route the dialog
        exists already."""
        if not in_failure and not self.dialog_tracked:
            KSR.rr.record_route()
            KSR.tm.t_on_failure("ksr_failure_route_call")
            KSR.dialog.dlg_manage()
            self.media.armed()
            self.dialog_tracked = True
            if plan is not None and METRICS.enabled:
                METRICS.track(self._call_labels(snap, plan))

    @staticmethod
    def _count_outside_call(snap, charge):
        """Check the outside-call limits of the tenant and extension ``charge`` names (dialog
        profiles: calls now; htable: calls this minute); within them, count this call and
        return None, else return the core's Reject. The minute is the host's, never the routing
        clock's (RoutingClock): a clock file cannot start a new minute's count."""
        limits = routing.outside_call_limits(snap, charge)
        minute = int(time.time() // 60)
        for limit in limits:
            calls_now = calls_this_minute = 0
            if limit.concurrent is not None:
                KSR.dialog.get_profile_size(limit.profile, limit.key, "$var(vx_calls)")
                calls_now = int(KSR.pv.get("$var(vx_calls)") or 0)
            if limit.per_minute is not None:
                # On a cluster each node counts under a key of its own; the limit is the sum.
                key = "%s|%d" % (limit.key, minute)
                calls_this_minute = cluster.total(KSR.htable.sht_get(_CALLS_A_MINUTE, CLUSTER.own_key(key)),
                                                  [KSR.htable.sht_get(_CALLS_A_MINUTE, other)
                                                   for other in CLUSTER.other_keys(key)])
            refusal = limit.refusal(calls_now, calls_this_minute)
            if refusal is not None:
                METRICS.refused(charge[0], limit, calls_now, calls_this_minute)
                KSR.notice("voxplane: outside call of %s/%s refused: %s\n" % (charge[0], charge[1], refusal.reason))
                return refusal
        for limit in limits:
            if limit.concurrent is not None:
                KSR.dialog.set_dlg_profile(limit.profile, limit.key)
            if limit.per_minute is not None:
                key = CLUSTER.own_key("%s|%d" % (limit.key, minute))
                if KSR.htable.sht_inc(_CALLS_A_MINUTE, key) < 1:  # the minute's first call
                    KSR.htable.sht_seti(_CALLS_A_MINUTE, key, 1)
        return None

    @staticmethod
    def _ring(uris, mobile):
        """Point the request at every registered contact of the plan's AORs, and at the mobile
        for single number reach; False if there is nothing to ring.
        With a mobile, the mobile is the request URI (its next hop reset by _execute) and every
        contact a further branch: a branch appended after lookup_uri would copy the first
        contact's next hop ($du: its NAT address or Path), socket and flags, and the mobile
        would be sent to a phone."""
        if mobile is not None:
            KSR.pv.sets("$ru", mobile.uri)
            for uri in uris:
                KSR.registrar.lookup_to_dset("location", uri)
            return True
        first = True
        for uri in uris:
            if first:
                if KSR.registrar.lookup_uri("location", uri) > 0:
                    first = False
            else:
                KSR.registrar.lookup_to_dset("location", uri)
        return not first

    def _relay(self, snap, plan, in_failure):
        """t_relay with the branch route armed. tm runs the branch route for every branch
        inside t_relay, in this process: when it dropped every branch (contacts that lead to a
        trunk), nothing could be sent and the caller gets 480, not tm's 500.
        A tenant that has every call's media relayed marks the call for the branch route."""
        if not in_failure:
            self.media.detect("INVITE")  # the caller's NAT, before its branches are made
        if self.media.rtpengine and routing.forces_media_relay(snap, self.caller_domain, plan):
            self.media.force_relay()
        KSR.tm.t_on_branch("ksr_branch_route_one")
        self.dropped_branches = 0
        if in_failure:
            KSR.tm.t_on_failure("ksr_failure_route_call")
            self.media.armed()
            if KSR.tm.t_relay() < 0:
                if self.dropped_branches:
                    KSR.tm.t_reply(480, "Temporarily Unavailable")
                else:
                    KSR.tm.t_reply(500, "Relay Failed")
        elif KSR.tm.t_relay() < 0:
            if self.dropped_branches:
                KSR.sl.send_reply(480, "Temporarily Unavailable")
            else:
                KSR.sl.sl_reply_error()

    @staticmethod
    def _reply(code, reason, in_failure):
        if in_failure:
            KSR.tm.t_reply(code, reason)
        else:
            KSR.sl.sl_send_reply(code, reason)

    @_guarded("failure")
    def ksr_failure_route_call(self, msg):
        """A call's branches all failed: forward, fall back or answer, as the core says."""
        self.media.failed()
        METRICS.failed_reply()
        if KSR.tm.t_is_canceled() > 0:
            return 1
        if KSR.pv.get("$avp(vx_ds)") == "1" and self._next_media_service():
            return 1
        context = KSR.pv.get("$avp(vx_ctx)")
        if not context:
            return 1  # a relay to a trunk failed: its reply goes back as it is
        code = int(KSR.pv.get("$T_reply_code") or 0)
        outcome = routing.failure_outcome(code, KSR.tm.t_branch_timeout() > 0)
        snap = self.view.current()
        if snap is None:
            return 1
        now = CLOCK.now()
        KSR.pv.sets("$avp(vx_ctx)", "")
        self.caller_domain = None  # the caller's tenant already chose at call time (its flag stays)
        plan = routing.after_reply(snap, context, outcome, now)
        if outcome == 'no_answer' and (plan is None or plan.__class__ is routing.Reject):
            self.records.no_answer()
        if plan is None:
            return 1  # let the callee's own final answer through
        KSR.pv.sets("$ru", KSR.pv.get("$ou"))
        # The headers of the previous branch ($avp(vx_hdrs)) are where the new legs start from.
        self._execute(snap, routing.legs(snap, plan, now, _stored_headers()), now, in_failure=True)
        return 1

    def _next_media_service(self):
        """A call to a media service of the dispatcher set failed: when the service did not take it
        (cluster.media_failover), mark it inactive until it answers a probe again and relay the
        call to the next one. True when the call went on."""
        code = int(KSR.pv.get("$T_reply_code") or 0)
        if not cluster.media_failover(code, KSR.tm.t_branch_timeout() > 0):
            return False
        KSR.dispatcher.ds_mark_dst_state("ip")
        if KSR.dispatcher.ds_next_dst() < 0:
            return False
        KSR.notice("voxplane: media service failed (%d): the call goes to %s\n" % (code, KSR.pv.get("$du")))
        KSR.tm.t_on_branch("ksr_branch_route_one")
        KSR.tm.t_on_failure("ksr_failure_route_call")
        self.media.armed()
        if KSR.tm.t_relay() < 0:
            KSR.tm.t_reply(503, "Media Service Unavailable")
        return True

    @_guarded("branch")
    def ksr_branch_route_one(self, msg):
        """Put the caller identity, privacy, diversion history and extra headers of the plan
        ($avp(vx_hdrs)) on this branch. Lumps added here belong to the branch only; added in
        the request route they would stay with the transaction and every later branch (the
        failure route's forwards) would carry them as well."""
        stored = _stored_headers()
        ruri = KSR.pv.get("$ru")
        if ruri not in stored.get("relays", ()) and self._leads_to_trunk():
            # A registered contact naming a trunk (refused at REGISTER; this also catches older
            # bindings) would take the call to the carrier without the checks of an outside call.
            KSR.warn("voxplane: dropped a branch to %s: a contact may not lead to a trunk\n" % ruri)
            self.dropped_branches += 1
            KSR.set_drop()
            return 1
        if self.cluster.enabled and self.cluster.is_node_uri(KSR.pv.get("$du")):
            # A phone registered with another node (its Path): the call leaves from the cluster
            # socket, where that node takes it as a node's.
            KSR.pv.sets("$fs", self.cluster.socket)
        own = stored.get("branches", {}).get(ruri)
        if own:  # the mobile of single number reach: its own identity, one more diversion
            stored.update(identity=own["identity"], privacy=own["privacy"], caller=own.get("caller"),
                          diversion=own["diversion"] + stored.get("diversion", []))
        if stored.get("identity"):
            KSR.hdr.remove("P-Asserted-Identity")
            KSR.hdr.append("P-Asserted-Identity: %s\r\n" % stored["identity"])
            # The callee sees the public identity in From too, never the caller's SIP account; a
            # leg forwarded out shows the original caller there (routing.original_caller).
            display, uri = routing.from_header(stored.get("caller") or stored["identity"])
            KSR.uac.uac_replace_from(display, uri)
        if stored.get("privacy"):
            KSR.hdr.remove("Privacy")
            KSR.hdr.append("Privacy: id\r\n")
        for entry in stored.get("diversion", ()):  # newest first, as RFC 5806 orders them
            KSR.hdr.append("Diversion: %s\r\n" % entry)
        headers = stored.get("headers", {})
        if routing.MEDIA_HEADER not in headers and KSR.pv.get("$hdr(%s)" % routing.MEDIA_HEADER) is not None:
            # The media service takes its instructions from the router alone, and trusts any
            # INVITE that Kamailio sends: a caller's own header goes on no branch, not even to a
            # contact whose Path leads to the service.
            KSR.hdr.remove(routing.MEDIA_HEADER)
        for name, value in sorted(headers.items()):
            # The plan's header replaces what a caller sent under that name.
            KSR.hdr.remove(name)
            KSR.hdr.append("%s: %s\r\n" % (name, value))
        self.media.branch()
        return 1

    def _leads_to_trunk(self):
        """Whether this branch's next hop (its destination URI, else its request URI) is a
        trusted trunk address."""
        host = KSR.pv.get("$dd") if KSR.pv.get("$du") else KSR.pv.get("$rd")
        snap = self.view.current()
        return snap is not None and snap.is_trusted((host or "").lower().strip("[]"))

    @_guarded("timer")
    def ksr_rtimer_subscriptions(self, msg, *args):
        """rtimer (its own process): NOTIFY the phones of changed DND and forwards and of their
        mailboxes' counts (voxplane_subscriptions)."""
        return SUBSCRIPTIONS.tick()

    @_guarded("timer")
    def ksr_rtimer_cdr(self, msg, *args):
        """rtimer (its own process), every hour: the call records' retention (voxplane_cdr)."""
        return self.records.purge()

    @_guarded("reply")
    def ksr_reply_route(self, msg):
        return 1

    @_guarded("event")
    def ksr_xhttp_event(self, msg, *args):
        """xhttp:request (an HTTP request on a TCP/TLS socket): a scrape on the metrics socket
        (voxplane_metrics), else a webphone's WebSocket upgrade."""
        if METRICS.serves():
            return METRICS.http(self.view)
        return WEBSOCKET.handle()

    @_guarded("event")
    def ksr_dialog_event(self, msg, *args):
        """The dialog module's events (dialog:start, dialog:failed, dialog:end): a call's outcome
        for the metrics (voxplane_metrics)."""
        return METRICS.dialog_event(args[0] if args else "")

    @_guarded("reply")
    def ksr_reply_route_media(self, msg):
        """tm's reply route of a relayed call (voxplane_media: Contact alias, rtpengine answer). A
        reply another node relays comes from the phone's side of that node, which did the NAT part."""
        self.media.reply(self.cluster.enabled and self.cluster.from_node(KSR.pv.get("$si"), KSR.pv.get("$sp"),
                                                                         KSR.pv.get("$Rp")))
        return 1

    def ksr_onsend_route(self, msg):
        # 5.6.3 guard; the cfg also sets kemi.onsend_route_callback="none".
        return 1
