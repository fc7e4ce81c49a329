# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call detail records, the router's part: one dialog variable per call (module_utils/cdr.py).

Kamailio's acc module writes the record when the dialog ends (cdr_enable, cdr_extra, the table
voxplane_cdr: roles/kamailio). The router only says what it knows and Kamailio does not: the
tenant, direction, caller, dialled number, what the call reached, its diversion chain, trunk and
call class. That is one ``$dlg_var(vx)`` set when a call is relayed; the static part of it is
worked out once per routing decision (the legs routing.Decisions remembers) and reused by every
call that takes the same legs. A failure route that forwards the call rewrites the variable with
the forward's leg; one that ends a ringing call without answer marks it ``no_answer``.
"""

import KSR  # provided by app_python3 inside Kamailio

from ansible_collections.voxplane.pbx.plugins.module_utils import cdr, routing, rules

# Kinds of new calls (CallRecords.begin).
FROM_ACCOUNT, FROM_TRUNK, FROM_MEDIA = 0, 1, 2


class CallRecords(object):
    """The stamps of one worker. ``begin`` (cheap: it keeps its arguments) for every new call routed;
    ``relayed`` when a leg of it is relayed; ``no_answer`` when its failure route ends it unanswered."""

    LIMIT = 8192

    def __init__(self, settings):
        settings = settings or {}
        self.enabled = bool(settings.get('enabled'))
        self.database = settings.get('database')
        self.password = settings.get('password') or None
        self.retention_days = settings.get('retention_days') or 0
        self.snap = None
        self.stamps = {}  # leg -> (Stamp, caller number or None: from the request)
        self.call = None  # (kind, domain, user, dialled, source, call key or None)
        # A SQLite file: this worker's connection (acc's, shared with sqlops' vxcdr) still needs
        # synchronous=NORMAL (no fsync per record; the cfg's comment).
        self.untuned = self.enabled and not (self.database or '').startswith(('postgresql://', 'postgres://'))

    def begin(self, kind, domain, user, dialled, source, call_key=None):
        self.call = (kind, domain, user, dialled, source, call_key)

    def relayed(self, snap, leg, in_failure, now):
        """Stamp the call's dialog for ``leg`` (the request route: a new call) or restamp it (a failure
        route: a forward)."""
        if not self.enabled:
            return
        if self.untuned:
            self._tune()
        if in_failure:
            value = KSR.pv.get(cdr.STAMP_VAR)
            fields = cdr.parse_stamp(value)
            if fields is None:
                return
            tenant = snap.tenants.get(fields['tenant'])
            stamp = cdr.leg_stamp(snap, leg, tenant, fields['direction'], fields['caller_extension'],
                                  fields['caller_account'], fields['dialled'], fields['callee'],
                                  fields['trunk'] if fields['direction'] == 'inbound' else '')
            KSR.pv.sets(cdr.STAMP_VAR, cdr.restamp(value, stamp))
            return
        if snap is not self.snap or len(self.stamps) >= self.LIMIT:
            self.snap, self.stamps = snap, {}
        known = self.stamps.get(leg)
        kind = self.call[0]
        if known is None or kind == FROM_MEDIA:
            known = self._stamp(snap, leg)
            if kind != FROM_MEDIA:  # a media call's legs are made afresh for each call: not kept
                self.stamps[leg] = known
        stamp, caller = known
        if kind == FROM_TRUNK:
            caller = KSR.pv.get("$fU")
        KSR.pv.sets(cdr.STAMP_VAR, cdr.stamp_value(stamp, now, caller, self.call[5] or KSR.pv.get("$ci")))

    def no_answer(self):
        """The call ends here after ringing unanswered (its final reply may be a 480 of the router's)."""
        if self.enabled:
            value = cdr.restamp(KSR.pv.get(cdr.STAMP_VAR), outcome='no_answer')
            if value is not None:
                KSR.pv.sets(cdr.STAMP_VAR, value)

    def _tune(self):
        """Once per worker: synchronous=NORMAL on the CDR connection (WAL: a commit no longer waits for
        an fsync; a crash of Kamailio loses nothing, a power loss may lose the last records)."""
        self.untuned = False
        if KSR.sqlops.sql_query("vxcdr", "PRAGMA synchronous=NORMAL", "vxcdr") < 0:
            KSR.warn("voxplane: call records: cannot set synchronous=NORMAL on %s\n" % self.database)
        KSR.sqlops.sql_result_free("vxcdr")

    def purge(self):
        """The retention (rtimer, every hour): delete the records older than retention_days."""
        if not (self.enabled and self.database and self.retention_days):
            return 1
        import voxplane_cdr_store  # pylint: disable=import-outside-toplevel  # only the timer process needs it
        try:
            gone = voxplane_cdr_store.purge(self.database, self.retention_days, self.password)
        except Exception as exc:  # pylint: disable=broad-except  # logged; the next hour tries again
            KSR.err("voxplane: call records: retention of %s failed: %s\n" % (self.database, exc))
            return 1
        if gone:
            KSR.info("voxplane: call records: %d older than %s days deleted\n" % (gone, self.retention_days))
        return 1

    def _stamp(self, snap, leg):
        kind, domain, user, dialled, source, _key = self.call
        if kind == FROM_TRUNK:
            e164 = routing._inbound_e164(snap, routing.request_user(dialled) if dialled else '', source)  # pylint: disable=protected-access
            entry = snap.numbers.get(e164) if e164 else None
            tenant = entry.tenant if entry is not None else None
            trunk = ''
            if tenant is not None:
                for candidate in snap.trunk_sources.get(source, ()):
                    if candidate is tenant and tenant.trunk is not None:
                        trunk = tenant.trunk.get('name', '')
            return cdr.leg_stamp(snap, leg, tenant, 'inbound', dialled=dialled, callee=e164 or dialled,
                                 trunk=trunk), None
        tenant = snap.by_domain.get(domain)
        if kind == FROM_MEDIA:
            return cdr.leg_stamp(snap, leg, tenant, 'internal', dialled=dialled), ''
        account = tenant.accounts.get(user) if tenant is not None else None
        ext = account.extension if account is not None else None
        direction, callee = 'outbound', dialled
        if tenant is not None:
            if dialled in tenant.targets or dialled.startswith('*'):
                direction = 'internal'
            elif dialled in rules.EMERGENCY_NUMBERS:
                direction = 'outbound'
            else:
                e164 = rules.normalise_dialled(dialled, tenant.dial_plan)
                entry = snap.numbers.get(e164) if e164 else None
                callee = e164 or dialled
                if entry is not None and not cdr.reached(tenant, leg.plan).startswith('outside:'):
                    direction = 'internal' if entry.tenant is tenant else 'on-net'
        stamp = cdr.leg_stamp(snap, leg, tenant, direction, ext.number if ext is not None else '', user, dialled,
                              callee)
        return stamp, cdr.caller_number(leg.origin)
