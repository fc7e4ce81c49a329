# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The KEMI side of the SIP event subscriptions the router serves: feature-key synchronisation
(``as-feature-event``) and the message-waiting lamp (``message-summary``). What is package
specific is pure: ``module_utils/subscriptions.py`` (the record, the NOTIFY headers),
``feature_events.py``, ``message_summary.py``.

- ``subscribe()`` runs in a SIP worker for a SUBSCRIBE of a package served: it authenticates
  the phone like a call, lets it subscribe to its own account only (message-summary: or its own
  mailbox, ``*86``), applies an as-feature-event body (a key pressed on the phone) through
  ``phone_settings.apply`` (the router's one write path), answers 200 and keeps the subscription
  in shared memory (htable ``vxsubs``, one JSON record per package and Call-ID, persisted in the
  usrloc database across restarts), then counts the change in ``vxsubn``.
- ``tick()`` runs in the rtimer process every few hundred milliseconds. It costs two single-row
  SELECTs (the directory generation, the voicemail serial) and one shared-memory read when nothing
  happened. When the generation moved (a playbook, tenant_config, a feature code, a key), the
  voicemail serial moved (a message arrived, was heard, saved or deleted), a subscription is new
  or refreshed, or Kamailio has just started, it reads the subscriptions and NOTIFYs each phone
  whose state differs from what it was last told, in its subscription dialog (tm.t_uac_send with
  the dialog's tags, Call-ID and CSeq); the first tick after a start tells every subscription its
  state. For mailboxes that changed it also sends an out-of-dialog NOTIFY to every registered
  contact of their accounts whose device's provisioned file asks for unsolicited MWI
  (``message_summary.unsolicited_accounts``), unless that account subscribed; the contacts come
  from usrloc's memory (registrar.reg_fetch_contacts), never from a SIP request.
"""

import time
import uuid

import KSR  # provided by app_python3 inside Kamailio

from ansible_collections.voxplane.pbx.plugins.module_utils import (  # noqa: E402
    feature_events, message_summary, phone_settings, routing, subscriptions,
)
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory  # noqa: E402

SUBSCRIPTIONS = "vxsubs"
CHANGES = "vxsubn"
CHANGES_KEY = "n"
# The voicemail serial whose changes the unsolicited phones were told (kept in SUBSCRIPTIONS,
# so that after a restart they learn what changed while Kamailio was down).
SERIAL_KEY = "mwi:serial"
ITERATOR = "vxsub"
CONTACTS = "vxmwi"  # $ulc profile of the contacts of an unsolicited account
# How often the tick reads every subscription even when nothing changed, to drop expired ones.
SWEEP_SECONDS = 60


def _contact_uri(value):
    value = (value or "").strip()
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0]


def _stored_serial(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


class Subscriptions(object):
    def __init__(self, directory_path):
        self.directory_path = directory_path
        self.generation = None
        self.serial = None
        self.changes = None
        self.started = False  # the first tick tells every subscription its state
        self.next_sweep = 0.0
        self.unsolicited = {}  # tenant -> (tenant generation, SIP domain, {extension: [usernames]})
        self.told = {}  # (tenant, extension) -> the state unsolicited phones of that box were told
        self._poll = None  # store.GenerationPoll, opened in the process that ticks

    # ---------------------------------------------------------------- SUBSCRIBE (SIP worker)
    def subscribe(self, router, snap, event):
        call_id = KSR.pv.get("$ci")
        key = subscriptions.key(event, call_id)
        known = None
        if KSR.siputils.has_totag() > 0:
            known = subscriptions.loads(KSR.htable.sht_get(SUBSCRIPTIONS, key))
            if known is None:
                KSR.sl.sl_send_reply(481, "Subscription Does Not Exist")
                return 1
        domain = (KSR.pv.get("$fd") or "").lower()
        user = router._authenticate(snap, domain)  # pylint: disable=protected-access
        if user is None:
            return 1
        target = routing.request_user(KSR.pv.get("$tU") or "")
        if event == message_summary.EVENT:
            allowed = not isinstance(target, routing.Reject) and message_summary.may_subscribe(target, user)
        else:
            allowed = target == user
        if not allowed or (known is not None and known["username"] != user):
            KSR.sl.sl_send_reply(403, "Subscribe to your own account only")
            return 1
        tenant = snap.by_domain[domain]
        extension = tenant.accounts[user].extension.number
        setting = None
        if event == feature_events.EVENT:
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
        expires = subscriptions.expires_of(KSR.pv.get("$hdr(Expires)"))
        KSR.hdr.append_to_reply("Expires: %d\r\nContact: <sip:%s>\r\n" % (expires, domain))
        KSR.sl.send_reply(200, "OK")
        KSR.htable.sht_lock(SUBSCRIPTIONS, key)
        try:
            if expires == 0:
                KSR.htable.sht_rm(SUBSCRIPTIONS, key)
                return 1
            proto = (KSR.pv.get("$pr") or "udp").lower()
            next_hop = "sip:%s:%s%s" % (KSR.pv.get("$si"), KSR.pv.get("$sp"),
                                        "" if proto == "udp" else ";transport=" + proto)
            socket = "%s:%s:%s" % (proto, KSR.pv.get("$Ri"), KSR.pv.get("$Rp"))
            contact = _contact_uri(KSR.pv.get("$hdr(Contact)"))
            # Re-read under the lock: the rtimer process may have NOTIFYed (and counted the CSeq) meanwhile.
            record = subscriptions.loads(KSR.htable.sht_get(SUBSCRIPTIONS, key)) or known
            if record is None:
                record = subscriptions.subscription(event, tenant.name, domain, extension, user, call_id,
                                                    KSR.pv.get("$ft"), KSR.pv.get("$ltt(s)"), contact, next_hop,
                                                    socket, time.time() + expires,
                                                    resource="sip:%s@%s" % (target, domain))
            else:
                record.update(contact=contact or record["contact"], next_hop=next_hop, socket=socket,
                              expires_at=time.time() + expires)
                if setting is None:
                    record["sent"] = None  # a refresh: tell the phone the state again
            KSR.htable.sht_sets(SUBSCRIPTIONS, key, subscriptions.dumps(record))
        finally:
            KSR.htable.sht_unlock(SUBSCRIPTIONS, key)
        KSR.htable.sht_inc(CHANGES, CHANGES_KEY)  # the tick looks at the subscriptions again
        return 1

    # ---------------------------------------------------------------- NOTIFY (rtimer process)
    def _directory_state(self):
        """(directory generation, voicemail serial): two single-row SELECTs on the process's own
        read-only connection (store.GenerationPoll, SQLite or PostgreSQL); the serial is None for a
        directory without voicemail (schema before 5)."""
        if self._poll is None:
            self._poll = Directory(self.directory_path).generation_poll()
        return self._poll(), self._poll.voicemail_serial()

    def _records(self, now):
        """{key: (stored text, record)} of every live subscription; expired and damaged ones are
        removed. The iterator holds the table's slot locks: everything is read first."""
        texts = {}
        if KSR.htable.sht_iterator_start(ITERATOR, SUBSCRIPTIONS) < 0:
            return {}
        try:
            while KSR.htable.sht_iterator_next(ITERATOR) >= 0:
                name = KSR.pv.get("$shtitkey(%s)" % ITERATOR)
                if subscriptions.is_subscription_key(name):
                    texts[name] = KSR.pv.get("$shtitval(%s)" % ITERATOR)
        finally:
            KSR.htable.sht_iterator_end(ITERATOR)
        records = {}
        for name, text in texts.items():
            record = subscriptions.loads(text)
            if record is None or record.get("event") not in subscriptions.PACKAGES or record["expires_at"] <= now:
                self._replace(name, text, None)
                continue
            records[name] = (text, record)
        return records

    @staticmethod
    def _replace(name, text, record, sends=()):
        """Under the key's lock: if the stored record is still ``text``, send ``sends`` (NOTIFY
        arguments) and store ``record`` (None: remove it). A SUBSCRIBE that changed it meanwhile
        wins (the next tick sees it: the worker counted the change)."""
        KSR.htable.sht_lock(SUBSCRIPTIONS, name)
        try:
            if KSR.htable.sht_get(SUBSCRIPTIONS, name) != text:
                return False
            for args in sends:
                KSR.tm.t_uac_send(*args)
            if record is None:
                KSR.htable.sht_rm(SUBSCRIPTIONS, name)
            else:
                KSR.htable.sht_sets(SUBSCRIPTIONS, name, subscriptions.dumps(record))
            return True
        finally:
            KSR.htable.sht_unlock(SUBSCRIPTIONS, name)

    def tick(self):
        now = time.time()
        try:
            generation, serial = self._directory_state()
        except DirectoryError:
            return 1  # the directory cannot be read now (the router logs why): the next tick tries again
        changes = KSR.htable.sht_get(CHANGES, CHANGES_KEY)
        first = not self.started
        mailboxes_moved = serial is not None and serial != self.serial
        sweep = now >= self.next_sweep
        if not (first or mailboxes_moved or generation != self.generation or changes != self.changes or sweep):
            return 1
        records = self._records(now)
        by_event = {}
        for name, (text, record) in records.items():
            by_event.setdefault(record["event"], []).append((name, text, record))
        features = by_event.get(feature_events.EVENT, [])
        summaries = by_event.get(message_summary.EVENT, [])
        try:
            serial, changed, states, counts, unsolicited = self._read(features, summaries, first, generation, serial,
                                                                      mailboxes_moved)
        except DirectoryError:
            return 1  # the directory cannot be read now: nothing was told, the next tick tries again
        self.changes = changes
        if sweep:
            self.next_sweep = now + SWEEP_SECONDS
        self._notify_features(features, states, first, generation != self.generation, now)
        self._notify_summaries(summaries, changed, counts, first, now)
        self._notify_unsolicited(unsolicited, changed, set((r["tenant"], r["username"]) for _n, _t, r in summaries))
        if serial is not None and serial != self.serial:
            KSR.htable.sht_sets(SUBSCRIPTIONS, SERIAL_KEY, str(serial))
        self.generation, self.serial, self.started = generation, serial, True
        return 1

    def _read(self, features, summaries, first, generation, serial, mailboxes_moved):
        """What this tick tells, read in one read transaction: (serial, changed mailboxes, tenant
        states of the feature subscriptions, counts of the message-summary ones, unsolicited contacts)."""
        changed, states, counts, unsolicited = {}, {}, {}, {}
        with Directory(self.directory_path).transaction(write=False, create=False) as txn:
            if mailboxes_moved:
                since = self.serial if self.started else _stored_serial(KSR.htable.sht_get(SUBSCRIPTIONS, SERIAL_KEY))
                serial, changed = txn.mailboxes_changed(since)
            if features and (first or generation != self.generation or any(r["sent"] is None for _n, _t, r in features)):
                states = dict((name, txn.load_tenant(name)) for name in set(r["tenant"] for _n, _t, r in features))
            for _name, _text, record in summaries:
                box = (record["tenant"], record["extension"])
                if box not in changed and box not in counts and (first or record["sent"] is None):
                    counts[box] = txn.mailbox_counts(*box).get(record["extension"])
            if changed:
                unsolicited = self._unsolicited(txn, changed)
        return serial, changed, states, counts, unsolicited

    def _notify_features(self, features, states, first, moved, now):
        for name, text, record in features:
            if not (first or moved or record["sent"] is None):
                continue
            state = states.get(record["tenant"])
            extension = state.get("extension", record["extension"]) if state is not None else None
            if extension is None or state.tenant is None:
                self._replace(name, text, None)  # the extension or tenant is gone
                continue
            wanted = feature_events.state_of(extension)
            if wanted != record["sent"] or first:
                self._send(name, text, record, wanted, feature_events.bodies(record["username"], wanted), now)

    def _notify_summaries(self, summaries, changed, counts, first, now):
        for name, text, record in summaries:
            box = (record["tenant"], record["extension"])
            if box in changed:
                wanted = message_summary.state_of(changed[box])
            elif box in counts:
                wanted = message_summary.state_of(counts[box])
            else:
                continue
            if wanted != record["sent"] or first:
                self._send(name, text, record, wanted, [message_summary.body(wanted, record["domain"])], now)

    def _send(self, name, text, record, wanted, bodies, now):
        """NOTIFY ``bodies`` in the subscription's dialog, each with the next CSeq."""
        record = dict(record)
        left = max(0, int(record["expires_at"] - now))
        sends = []
        for body in bodies:
            sends.append(("NOTIFY", record["contact"], record["next_hop"], record["socket"],
                          subscriptions.notify_headers(record, left), body))
            record["cseq"] += 1
        record["sent"] = wanted
        self._replace(name, text, record, sends)

    def _unsolicited(self, txn, changed):
        """{(tenant, extension): (domain, [usernames])} of the changed mailboxes' accounts that
        want unsolicited NOTIFYs; per tenant, what its devices ask for is read again only when
        the tenant's generation moved."""
        generations = txn.tenant_generations()
        wanted = {}
        for tenant, extension in changed:
            if tenant not in generations:
                continue
            cached = self.unsolicited.get(tenant)
            if cached is None or cached[0] != generations[tenant]:
                state = txn.load_tenant(tenant)
                if state.tenant is None:
                    continue
                cached = (generations[tenant], state.tenant["sip_domain"], message_summary.unsolicited_accounts(state))
                self.unsolicited[tenant] = cached
            users = cached[2].get(extension)
            if users:
                wanted[(tenant, extension)] = (cached[1], users)
        return wanted

    def _notify_unsolicited(self, unsolicited, changed, subscribed):
        for box, (domain, users) in sorted(unsolicited.items()):
            state = message_summary.state_of(changed[box])
            if self.told.get(box) == state:
                continue
            self.told[box] = state
            body = message_summary.body(state, domain)
            for username in users:
                if (box[0], username) in subscribed:
                    continue  # it subscribed: it is told in its dialog
                for contact, next_hop, socket in self._contacts(username, domain):
                    headers = message_summary.unsolicited_headers(username, domain, uuid.uuid4().hex[:16],
                                                                  "%s@%s" % (uuid.uuid4().hex, domain))
                    KSR.tm.t_uac_send("NOTIFY", contact, next_hop, socket, headers, body)

    @staticmethod
    def _contacts(username, domain):
        """(contact, next hop, socket) of every registered contact of an account, from usrloc's
        memory: the next hop is where the REGISTER came from behind NAT (received), else the
        first Path entry, else the contact itself ('')."""
        if KSR.registrar.reg_fetch_contacts("location", "sip:%s@%s" % (username, domain), CONTACTS) < 0:
            return []
        found = []
        try:
            for i in range(int(KSR.pv.get("$(ulc(%s=>count))" % CONTACTS) or 0)):
                contact = KSR.pv.get("$(ulc(%s=>addr)[%d])" % (CONTACTS, i))
                if not contact:
                    continue
                path = KSR.pv.get("$(ulc(%s=>path)[%d])" % (CONTACTS, i)) or ""
                next_hop = KSR.pv.get("$(ulc(%s=>received)[%d])" % (CONTACTS, i)) or _contact_uri(path.split(",", 1)[0])
                found.append((contact, next_hop or "", KSR.pv.get("$(ulc(%s=>socket)[%d])" % (CONTACTS, i)) or ""))
        finally:
            KSR.registrar.reg_free_contacts(CONTACTS)
        return found
