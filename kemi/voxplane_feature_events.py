# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The KEMI side of feature-key synchronisation (as-feature-event); the package itself is the
pure ``module_utils/feature_events.py``.

- ``subscribe()`` runs in a SIP worker for a SUBSCRIBE with ``Event: as-feature-event``: it
  authenticates the phone like a call, applies a body (a key pressed on the phone) through
  ``phone_settings.apply`` (the router's one write path, as the feature codes), answers 200 and
  keeps the subscription in shared memory (htable ``vxfes``, one JSON record per Call-ID).
- ``tick()`` runs in the rtimer process every few hundred milliseconds: when the directory
  generation moved (a playbook, tenant_config, a feature code, a key) or a subscription is new,
  it reads the subscribed extensions and NOTIFYs each phone whose DND or forwards differ from
  what it was last told, in its subscription dialog (tm.t_uac_send with the dialog's tags,
  Call-ID and CSeq). So every change reaches the phones within one tick, whoever made it.
"""

import time

import KSR  # provided by app_python3 inside Kamailio

from ansible_collections.voxplane.pbx.plugins.module_utils import feature_events, phone_settings  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory  # noqa: E402

SUBSCRIPTIONS = "vxfes"


def _contact_uri(value):
    value = (value or "").strip()
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0]


class FeatureEvents(object):
    def __init__(self, directory_path):
        self.directory_path = directory_path
        self.generation = None
        self._conn = None

    # ---------------------------------------------------------------- SUBSCRIBE (SIP worker)
    def subscribe(self, router, snap):
        call_id = KSR.pv.get("$ci")
        record = None
        if KSR.siputils.has_totag() > 0:
            text = KSR.htable.sht_get(SUBSCRIPTIONS, call_id)
            if not text:
                KSR.sl.sl_send_reply(481, "Subscription Does Not Exist")
                return 1
            record = feature_events.loads(text)
        domain = (KSR.pv.get("$fd") or "").lower()
        user = router._authenticate(snap, domain)  # pylint: disable=protected-access
        if user is None:
            return 1
        if (KSR.pv.get("$tU") or "") != user or (record is not None and record["username"] != user):
            KSR.sl.sl_send_reply(403, "Subscribe to your own account only")
            return 1
        tenant = snap.by_domain[domain]
        extension = tenant.accounts[user].extension.number
        try:
            setting = feature_events.setting_of(KSR.pv.get("$rb") or "", tenant.name, extension)
        except feature_events.BadRequest as exc:
            KSR.sl.sl_send_reply(400, "Bad Request: %s" % str(exc)[:80])
            return 1
        if setting is not None:
            outcome = phone_settings.apply(router.view.directory(), setting)
            KSR.info("voxplane: as-feature-event of %s/%s %r: %d %s\n"
                     % (tenant.name, extension, setting.request, outcome.code, outcome.reason))
            if outcome.code != 603:
                KSR.sl.sl_send_reply(outcome.code, outcome.reason)
                return 1
            if outcome.changed:
                router.view.committed(outcome.generation)
        expires = feature_events.expires_of(KSR.pv.get("$hdr(Expires)"))
        KSR.hdr.append_to_reply("Expires: %d\r\nContact: <sip:%s>\r\n" % (expires, domain))
        KSR.sl.send_reply(200, "OK")
        if expires == 0:
            KSR.htable.sht_rm(SUBSCRIPTIONS, call_id)
            return 1
        proto = (KSR.pv.get("$pr") or "udp").lower()
        next_hop = "sip:%s:%s%s" % (KSR.pv.get("$si"), KSR.pv.get("$sp"), "" if proto == "udp" else ";transport=" + proto)
        socket = "%s:%s:%s" % (proto, KSR.pv.get("$Ri"), KSR.pv.get("$Rp"))
        if record is None:
            record = feature_events.subscription(tenant.name, extension, user, call_id, KSR.pv.get("$ft"),
                                                 KSR.pv.get("$ltt(s)"), _contact_uri(KSR.pv.get("$hdr(Contact)")),
                                                 next_hop, socket, time.time() + expires)
        else:
            record.update(contact=_contact_uri(KSR.pv.get("$hdr(Contact)")) or record["contact"], next_hop=next_hop,
                          socket=socket, expires_at=time.time() + expires)
            if setting is None:
                record["sent"] = None  # a refresh: tell the phone the state again
        KSR.htable.sht_sets(SUBSCRIPTIONS, call_id, feature_events.dumps(record))
        return 1

    # ---------------------------------------------------------------- NOTIFY (rtimer process)
    def _directory_generation(self):
        """One single-row SELECT over the process's own read-only connection (store.GenerationPoll)."""
        if self._conn is None:
            self._conn = Directory(self.directory_path).generation_poll()
        return self._conn()

    def _subscriptions(self):
        records = {}
        if KSR.htable.sht_iterator_start("vxfe", SUBSCRIPTIONS) < 0:
            return records
        try:
            while KSR.htable.sht_iterator_next("vxfe") >= 0:
                records[KSR.pv.get("$shtitkey(vxfe)")] = KSR.pv.get("$shtitval(vxfe)")
        finally:
            KSR.htable.sht_iterator_end("vxfe")
        return records

    def tick(self):
        records = self._subscriptions()
        if not records:
            return 1
        try:
            generation = self._directory_generation()
        except DirectoryError:
            return 1  # the directory cannot be read now (the router logs why): the next tick tries again
        now = time.time()
        subs = {}
        for call_id, text in records.items():
            record = feature_events.loads(text)
            if record["expires_at"] <= now:
                KSR.htable.sht_rm(SUBSCRIPTIONS, call_id)
                continue
            subs[call_id] = record
        pending = [r for r in subs.values() if r["sent"] is None]
        if generation == self.generation and not pending:
            return 1
        try:
            with Directory(self.directory_path).transaction(write=False, create=False) as txn:
                states = dict((name, txn.load_tenant(name)) for name in set(r["tenant"] for r in subs.values()))
        except DirectoryError:
            return 1
        self.generation = generation
        for call_id, record in subs.items():
            state = states[record["tenant"]]
            extension = state.get("extension", record["extension"])
            if extension is None or state.tenant is None:
                KSR.htable.sht_rm(SUBSCRIPTIONS, call_id)
                continue
            wanted = feature_events.state_of(extension)
            if wanted == record["sent"]:
                continue
            left = max(0, int(record["expires_at"] - now))
            for body in feature_events.bodies(record["username"], wanted):
                headers = feature_events.notify_headers(record, state.tenant["sip_domain"], left)
                KSR.tm.t_uac_send("NOTIFY", record["contact"], record["next_hop"], record["socket"], headers, body)
                record["cseq"] += 1
            record["sent"] = wanted
            KSR.htable.sht_sets(SUBSCRIPTIONS, call_id, feature_events.dumps(record))
        return 1
