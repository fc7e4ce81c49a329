# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics of the KEMI router (voxplane_kemi.py), served by Kamailio's xhttp_prom.

The cfg declares every metric (roles/kamailio: modparam xhttp_prom prom_counter / prom_gauge /
prom_histogram, names without the "kamailio_" prefix that xhttp_prom adds); this module moves
them. Where a request is handled, a counter costs one KSR call at the moment its outcome is
known, and nothing runs for a REGISTER:

- a call the router relays carries its labels in one dialog variable ($dlg_var(vx_m):
  tenant|direction|trunk), set when the call becomes a tracked dialog, and the failure route
  keeps the code of a failed call ($dlg_var(vx_code)); the dialog module's events
  (ksr_dialog_event: dialog:start, dialog:failed, dialog:end) count its outcome and keep the
  calls in progress (htable vxmet, in shared memory);
- a call the router answers itself (404, 403, 480 ...) counts where it answers;
- a ban, an outside call refused by a limit and a snapshot build count where they happen.

Gauges are computed when Prometheus scrapes (ksr_xhttp_event on the metrics socket): the
registered contacts per tenant from usrloc (the RPC ul.dump, run inside Kamailio), the calls in
progress from vxmet, the banned addresses from htable.stats, the snapshot's generation and age.

Settings (voxplane_settings.json "metrics"): address, port (the metrics socket; empty address:
metrics off) and allow (the networks that may scrape; anything else gets 403).
"""

import ipaddress
import json
import time

import KSR  # provided by app_python3 inside Kamailio

# The dialog variable holding a call's labels, the htable of calls in progress (cfg).
DIALOG_LABELS = "$dlg_var(vx_m)"
_FINAL_CODE = "$dlg_var(vx_code)"  # the code of the call's last failed branch set (failure route)
_RELAYED = "$dlg_var(vx_media)"  # voxplane_media: "1" when rtpengine relays the call's media
_IN_PROGRESS = "vxmet"
_BANNED = "vxban"

DIRECTIONS = ("internal", "inbound", "outbound", "on-net")
UNKNOWN = "unknown"


def disposition(code):
    """A call's disposition from its final reply code (docs/operations.md)."""
    code = int(code or 0)
    if 200 <= code < 300:
        return "answered"
    if code in (486, 600):
        return "busy"
    if code == 487:
        return "cancelled"
    if code == 408:
        return "no_answer"
    if code == 480:
        return "unavailable"
    if 400 <= code < 500 or code >= 600:
        return "rejected"
    return "failed"


def trunk_result(code):
    """What a call through a trunk says about the trunk: answered; refused (the carrier answered
    with a 4xx or 6xx: it is up); cancelled (the caller gave up); failed (no answer at all, 408,
    or a 5xx: the trunk may be down)."""
    code = int(code or 0)
    if 200 <= code < 300:
        return "answered"
    if code == 487:
        return "cancelled"
    if code == 408 or 500 <= code < 600 or code == 0:
        return "failed"
    return "refused"


def _context_tenant(context):
    return context.split("|", 1)[0] if context else None


def call_labels(snap, caller_domain, source, from_media, plan):
    """(tenant, direction, trunk) of a call the router is carrying out ``plan`` for (routing.Ring,
    Relay or Reject). ``caller_domain``: the calling account's SIP domain (None: from a trunk or a
    media service); ``from_media``: placed by the PBX's media service. The tenant is the calling
    account's (internal, outbound, on-net: a number of another tenant reached without the trunk),
    else the called one's (inbound; a media service's call: internal, or outbound through the
    trunk). ``trunk``: the trunk's name when the call leaves through one, else ''."""
    kind = plan.__class__.__name__
    caller = snap.by_domain.get(caller_domain) if caller_domain else None
    target = None
    if kind == "Ring":
        target = snap.tenants.get(_context_tenant(plan.context))
    elif kind == "Relay":
        if plan.charge is not None:
            target = snap.tenants.get(plan.charge[0])
        else:
            target = snap.by_domain.get(_uri_host(plan.uri)) or snap.tenants.get(_context_tenant(plan.context))
    trunk = ""
    if kind == "Relay":
        host = _uri_host(plan.uri)
        for tenant in (target, caller):
            if tenant is not None and tenant.trunk is not None and host in tenant.trunk_addresses:
                trunk = tenant.trunk["name"]
                target = tenant
                break
    if caller is not None:
        if trunk:
            return caller.name, "outbound", trunk
        if target is not None and target is not caller:
            return caller.name, "on-net", ""
        return caller.name, "internal", ""
    if from_media:
        return (target.name if target is not None else UNKNOWN), ("outbound" if trunk else "internal"), trunk
    if target is None:
        holders = snap.trunk_sources.get(source) or ()
        target = holders[0] if len(holders) == 1 else None
    return (target.name if target is not None else UNKNOWN), "inbound", trunk


def _uri_host(uri):
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    hostport = rest.split(";", 1)[0].split("?", 1)[0].rpartition("@")[2]
    if hostport.startswith("["):
        return hostport[1:hostport.find("]")].lower() if "]" in hostport else ""
    return hostport.split(":", 1)[0].lower()


def registered_per_domain(dump):
    """{domain: contacts} from ul.dump's JSON result (usrloc with use_domain: AOR user@domain)."""
    counts = {}
    for domain in (dump or {}).get("Domains") or ():
        for record in (domain.get("Domain") or {}).get("AoRs") or ():
            info = record.get("Info") or {}
            aor = info.get("AoR") or ""
            contacts = len(info.get("Contacts") or ())
            if "@" in aor and contacts:
                host = aor.rpartition("@")[2].lower()
                counts[host] = counts.get(host, 0) + contacts
    return counts


def table_items(dump):
    """[(name, value)] of htable.dump's JSON result."""
    items = []
    for slot in dump or ():
        for item in slot.get("slot") or ():
            items.append((item.get("name"), item.get("value")))
    return items


def _networks(allow):
    nets = []
    for entry in allow or ():
        nets.append(ipaddress.ip_network(entry, strict=False))
    return tuple(nets)


class Metrics(object):
    """The router's metrics in one worker. ``enabled`` False (no metrics socket): every method
    returns at once, and the cfg declares no metric."""

    def __init__(self, settings):
        settings = settings or {}
        self.address = (settings.get("address") or "").strip("[]")
        self.port = int(settings.get("port") or 0)
        self.enabled = bool(self.address and self.port)
        self.allow = _networks(settings.get("allow") or ())
        self.allowed = {}  # source address -> bool, per worker

    # Where a counter moves (SIP workers) ---------------------------------------------------

    def track(self, labels):
        """A call becomes a tracked dialog: its labels go with it (one KSR call)."""
        if self.enabled:
            KSR.pv.sets(DIALOG_LABELS, "|".join(labels))

    def rejected(self, labels, code):
        """A call the router answered itself with ``code`` (no dialog)."""
        if self.enabled:
            KSR.xhttp_prom.counter_inc_l3("voxplane_calls_total", 1, labels[0], labels[1], disposition(code))

    def failed_reply(self, code=None):
        """The failure route of a tracked call: keep the reply code (``code``: the router's own
        answer there, else the failed branches' $T_reply_code) for dialog:failed."""
        if self.enabled:
            KSR.pv.sets(_FINAL_CODE, str(code if code is not None else KSR.pv.get("$T_reply_code") or 0))

    def refused(self, tenant, limit, calls_now, calls_this_minute):
        """An outside call refused by one of the tenant's or an extension's limits (routing.Limit)."""
        if self.enabled:
            scope = "tenant" if limit.profile == "vx_out_tenant" else "extension"
            kind = "concurrent" if limit.concurrent is not None and calls_now >= limit.concurrent else "per_minute"
            KSR.xhttp_prom.counter_inc_l2("voxplane_outside_calls_refused_total", 1, tenant, scope + "_" + kind)

    def banned(self, reason):
        """An address was banned (reason: flood or auth_failures)."""
        if self.enabled:
            KSR.xhttp_prom.counter_inc_l1("voxplane_bans_total", 1, reason)

    def reload_pause(self, seconds, kind):
        """A worker built a snapshot (kind: start, full, partial) and routed nothing meanwhile."""
        if self.enabled:
            KSR.xhttp_prom.histogram_observe_l1("voxplane_reload_pause_seconds", "%.6f" % seconds, kind)

    def dialog_event(self, event):
        """dialog:start (answered), dialog:failed (a final reply >= 300), dialog:end (hung up or
        timed out) of a call that carries labels."""
        if not self.enabled:
            return 1
        labels = KSR.pv.get(DIALOG_LABELS)
        if not labels:
            return 1
        tenant, direction, trunk = (labels.split("|") + ["", "", ""])[:3]
        if event == "dialog:end":
            KSR.htable.sht_dec(_IN_PROGRESS, "a|%s|%s" % (tenant, direction))
            if KSR.pv.get(_RELAYED) == "1":
                KSR.htable.sht_dec(_IN_PROGRESS, "r|%s" % tenant)
            return 1
        if event == "dialog:start":
            code = 200
            KSR.htable.sht_inc(_IN_PROGRESS, "a|%s|%s" % (tenant, direction))
            if KSR.pv.get(_RELAYED) == "1":
                KSR.htable.sht_inc(_IN_PROGRESS, "r|%s" % tenant)
        elif event == "dialog:failed":
            # The event runs with a message of the dialog module's own: the failure route kept the
            # final reply's code (failed_reply).
            code = KSR.pv.get(_FINAL_CODE) or 0
        else:
            return 1
        KSR.xhttp_prom.counter_inc_l3("voxplane_calls_total", 1, tenant, direction, disposition(code))
        if trunk:
            KSR.xhttp_prom.counter_inc_l3("voxplane_trunk_calls_total", 1, tenant, trunk, trunk_result(code))
        return 1

    # The metrics socket (the TCP worker that takes the scrape) ------------------------------

    def serves(self):
        """Whether this HTTP request came in on the metrics socket."""
        return self.enabled and int(KSR.pv.get("$Rp") or 0) == self.port \
            and (KSR.pv.get("$Ri") or "").strip("[]") == self.address

    def _is_allowed(self, source):
        answer = self.allowed.get(source)
        if answer is None:
            try:
                address = ipaddress.ip_address(source)
                answer = any(address in net for net in self.allow)
            except ValueError:
                answer = False
            if len(self.allowed) > 1000:
                self.allowed.clear()
            self.allowed[source] = answer
        return answer

    def http(self, view):
        """xhttp:request on the metrics socket: 403 for a source outside the allow-list, 404 for
        any path but /metrics, else the gauges computed now and the whole exposition."""
        KSR.set_reply_close()
        source = (KSR.pv.get("$si") or "").strip("[]")
        if not self._is_allowed(source):
            KSR.notice("voxplane: metrics scrape from %s refused: not in the allow-list\n" % source)
            KSR.xhttp.xhttp_reply(403, "Forbidden", "text/plain", "not allowed\n")
            return 1
        if KSR.pv.get("$rm") != "GET" or KSR.xhttp_prom.check_uri() <= 0:
            KSR.xhttp.xhttp_reply(404, "Not Found", "text/plain", "only /metrics here\n")
            return 1
        try:
            self.scrape(view)
        except Exception as exc:  # pylint: disable=broad-except
            # The counters are still worth serving; the gauges of this scrape stay as they were.
            KSR.err("voxplane: metrics gauges failed: %s: %s\n" % (type(exc).__name__, str(exc).replace("\n", " ")))
        KSR.xhttp_prom.dispatch()
        return 1

    @staticmethod
    def _rpc(method, *params):
        """An RPC inside Kamailio (jsonrpcs, no transport): its result, or None."""
        request = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params:
            request["params"] = list(params)
        KSR.jsonrpcs.exec(json.dumps(request))
        body = KSR.pv.get("$jsonrpl(body)")
        if not body:
            return None
        return json.loads(body).get("result")

    def scrape(self, view):
        """Set the gauges from what Kamailio holds now."""
        snap = view.current()
        if view.generation is not None:
            KSR.xhttp_prom.gauge_set_l0("voxplane_snapshot_generation", str(view.generation))
        # Seconds since this worker last found its snapshot to be the directory's newest: grows
        # while the directory cannot be read (the router routes with the last good snapshot).
        confirmed = view.confirmed_at
        age = time.monotonic() - confirmed if confirmed is not None else -1
        KSR.xhttp_prom.gauge_set_l0("voxplane_snapshot_age_seconds", "%.3f" % age)
        if snap is None:
            return
        registered = registered_per_domain(self._rpc("ul.dump"))
        in_progress = dict((name, value) for name, value in table_items(self._rpc("htable.dump", _IN_PROGRESS)))
        for tenant in snap.tenants.values():
            name = tenant.name
            KSR.xhttp_prom.gauge_set_l1("voxplane_registered_contacts", str(registered.get(tenant.domain, 0)), name)
            KSR.xhttp_prom.gauge_set_l1("voxplane_sip_accounts", str(len(tenant.accounts)), name)
            for direction in DIRECTIONS:
                calls = max(0, int(in_progress.get("a|%s|%s" % (name, direction)) or 0))
                KSR.xhttp_prom.gauge_set_l2("voxplane_active_calls", str(calls), name, direction)
            relayed = max(0, int(in_progress.get("r|%s" % name) or 0))
            KSR.xhttp_prom.gauge_set_l1("voxplane_media_relay_calls", str(relayed), name)
        banned = 0
        for table in self._rpc("htable.stats") or ():
            if table.get("name") == _BANNED:
                banned = int(table.get("all") or 0)
        KSR.xhttp_prom.gauge_set_l0("voxplane_banned_addresses", str(banned))
