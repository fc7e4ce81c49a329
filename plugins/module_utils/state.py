# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tenant's whole state in memory, and what is derived from it.

The number plan (which E.164 number reaches which internal target) is
derived here once; validation, tenant_info, the route simulator and the
KEMI router all use this one derivation.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    CHILD_KINDS, DEVICE, EXTENSION, INTERNAL_KINDS, NUMBER, QUEUE, TENANT,
)


class TenantState(object):
    """The tenant object and its children, each kind a dict keyed by its key field."""

    def __init__(self, name, tenant=None, children=None):
        self.name = name
        self.tenant = tenant
        self.children = dict((kind, dict((children or {}).get(kind, {}))) for kind in CHILD_KINDS)

    def objects(self, kind):
        return self.children[kind]

    def get(self, kind, key):
        if kind == TENANT:
            return self.tenant
        return self.children[kind].get(key)

    def with_changes(self, changes):
        """A new state with the planned changes applied (this one is left as is)."""
        new = TenantState(self.name, self.tenant, self.children)
        for change in changes:
            if change.kind == TENANT:
                new.tenant = change.after
            elif change.after is None:
                new.children[change.kind].pop(change.key, None)
            else:
                new.children[change.kind][change.key] = change.after
        return new

    def is_empty(self):
        return not any(self.children.values())

    # Derived views -------------------------------------------------------

    def internal_targets(self):
        """internal number -> (kind, object) for the objects with an internal number: extensions,
        groups, IVR menus, queues and conference rooms (model.INTERNAL_KINDS)."""
        targets = {}
        for kind in INTERNAL_KINDS:
            for key, obj in self.children[kind].items():
                targets.setdefault(key, (kind, obj))
        return targets

    def queues_of(self, extension):
        """The internal numbers of the queues ``extension`` is a member of, sorted."""
        return sorted(key for key, queue in self.children[QUEUE].items()
                      if any(m['extension'] == extension for m in queue['members']))

    def owned_numbers(self):
        """Every E.164 number the tenant holds -> the key of its number object."""
        owned = {}
        for key, number in self.children[NUMBER].items():
            owned[key] = key
            if number.get('ddi_range'):
                for e164 in rules.block_numbers(key, number['ddi_range']):
                    owned[e164] = key
        return owned

    def number_plan(self):
        """(plan, conflicts): plan maps every owned E.164 number to
        {'number': key of its number object, 'target': internal number or None};
        conflicts lists (e164, [targets]) where one number has two targets."""
        owned = self.owned_numbers()
        plan = dict((e164, {'number': key, 'target': None}) for e164, key in owned.items())
        claims = {}
        for key, number in self.children[NUMBER].items():
            if number.get('target'):
                claims.setdefault(key, []).append(number['target'])
        # Each block's range parsed once: (base, first, last, width).
        blocks = [(key,) + rules.ddi_range(n['ddi_range']) for key, n in self.children[NUMBER].items() if n.get('ddi_range')]
        for ext_key, ext in sorted(self.children[EXTENSION].items()):
            mine = set(ext.get('external_numbers') or ())
            if ext.get('assign_all_external_numbers', True):
                ddi = ext.get('ddi') or ext_key
                value = int(ddi)
                for base, first, last, width in blocks:
                    if len(ddi) == width and first <= value <= last:
                        mine.add(base + ddi)
            for e164 in mine:
                if e164 in owned and ext_key not in claims.get(e164, []):
                    claims.setdefault(e164, []).append(ext_key)
        conflicts = []
        for e164, targets in sorted(claims.items()):
            if len(targets) > 1:
                conflicts.append((e164, sorted(targets)))
            plan[e164]['target'] = targets[0]
        return plan, conflicts

    def numbers_of(self, plan=None):
        """internal number -> sorted E.164 numbers that route to it."""
        plan = plan if plan is not None else self.number_plan()[0]
        result = {}
        for e164, entry in plan.items():
            if entry['target']:
                result.setdefault(entry['target'], []).append(e164)
        for numbers in result.values():
            numbers.sort()
        return result

    def sip_accounts(self):
        """username -> (extension key, account) over all extensions."""
        accounts = {}
        for key, ext in self.children[EXTENSION].items():
            for acc in ext['sip_accounts']:
                accounts.setdefault(acc['username'], (key, acc))
        return accounts

    def location_names(self):
        return set(loc['name'] for loc in (self.tenant or {}).get('locations', []))

    def device_lines(self):
        """username -> MAC of the device that carries it as a line."""
        lines = {}
        for mac, device in self.children[DEVICE].items():
            for user in device['lines']:
                lines.setdefault(user, mac)
        return lines
