# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark directories, built in-process with the collection's own store and reconcile engine.

Tenant t (name ``t000``, SIP domain ``t000.bench.test``) has extensions 10, 11, ... each with a
desk-phone account ``u<ext>.desk.<tenant>`` and a softclient account ``u<ext>.app.<tenant>``, a Berlin block
``+4930<t-digits>0`` with the DDI range 00-99 whose members reach the extensions (the DDI is the
internal number) and whose head number reaches a reception group 99, and one trunk whose
address is the benchmark's SIP client address (so INVITEs from there are trusted trunk calls).

One reconcile transaction per tenant, as a whole-tenant module run would do it.
"""

import os
import sys

from lab import REPO
from lab.playbook import collections_path

FIRST_EXTENSION = 10
GROUP_NUMBER = '99'
TRUNK_PORT = 5090


def use_collection():
    """Make ``ansible_collections.voxplane.pbx`` (this working tree) importable (build/collections)."""
    base = collections_path()
    if base not in sys.path:
        sys.path.insert(0, base)
    from ansible_collections.voxplane.pbx.plugins.module_utils import errors
    if not os.path.realpath(errors.__file__).startswith(REPO + os.sep):
        raise ImportError('ansible_collections.voxplane.pbx resolves to %s, not to %s' % (errors.__file__, REPO))
    return base


def tenant_name(t):
    return 't%03d' % t


def domain(t):
    return '%s.bench.test' % tenant_name(t)


def block_base(t):
    return '+4930%03d%03d0' % (100 + t // 1000, t % 1000)


def extension_numbers(extensions):
    return [str(FIRST_EXTENSION + e) for e in range(extensions)]


def did(t, ext):
    return block_base(t) + ext


def username(t, ext, kind='desk'):
    """Unique over the whole directory, as real accounts are (no string shared between tenants)."""
    return 'u%s.%s.%s' % (ext, kind, tenant_name(t))


def password(t, ext, kind='desk'):
    return 'pw-%s-%s-%s' % (tenant_name(t), ext, kind)


def build(path, tenants, extensions, trunk_address):
    """Create the directory at path (replacing any old one); returns the number of tenants."""
    from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION, GROUP, NUMBER
    from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
    from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

    if extensions > 89:
        raise ValueError('at most 89 extensions per tenant (10..98; 99 is the group)')
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    directory = Directory(path)
    numbers = extension_numbers(extensions)
    for t in range(tenants):
        name = tenant_name(t)
        base = block_base(t)
        tenant = {
            'display_name': 'Bench tenant %d' % t,
            'sip_domain': domain(t),
            'locations': [{'name': 'hq', 'street': 'Hauptstr. 1', 'postal_code': '10115', 'city': 'Berlin',
                           'emergency_caller_id': base + '00'}],
            'licences': {'seats': {'best': extensions}},
            'trunks': [{'name': 'carrier', 'addresses': [trunk_address], 'port': TRUNK_PORT}],
        }
        exts = {}
        for ext in numbers:
            exts[ext] = {
                'name': 'User %s %s' % (name, ext), 'seat': 'best', 'location': 'hq',
                'sip_accounts': [
                    {'username': username(t, ext, 'desk'), 'password': password(t, ext, 'desk')},
                    {'username': username(t, ext, 'app'), 'password': password(t, ext, 'app'), 'kind': 'softclient'},
                ],
            }
        children = {
            EXTENSION: exts,
            GROUP: {GROUP_NUMBER: {'name': 'Reception', 'members': numbers[:2]}},
            NUMBER: {base: {'ddi_range': '00-99', 'target': GROUP_NUMBER}},
        }
        with directory.transaction() as txn:
            reconcile(txn, name, tenant, children)
    return tenants


def bump_generation(path, t=0):
    """A real change (tenant t's display name) so the generation moves; returns the new generation."""
    import time

    from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
    from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

    directory = Directory(path)
    with directory.transaction() as txn:
        reconcile(txn, tenant_name(t), {'display_name': 'Bench tenant %d (%f)' % (t, time.time())})
    with directory.transaction(write=False, create=False) as txn:
        return txn.generation()['generation']


def set_dnd(path, t, ext, dnd):
    """One extension's DND, committed like a module run (one write transaction); returns the
    seconds the commit took."""
    import time

    from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION
    from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
    from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

    t0 = time.perf_counter()
    with Directory(path).transaction() as txn:
        reconcile(txn, tenant_name(t), None, {EXTENSION: {ext: {'dnd': dnd}}})
    return time.perf_counter() - t0


def set_desk_passwords(path, tenants, extensions, secret):
    """Give the desk-phone accounts of these extensions (every tenant) one password, e.g. the
    baseline script's shared one, so that both scripts accept the same REGISTERs."""
    from ansible_collections.voxplane.pbx.plugins.module_utils.model import EXTENSION
    from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
    from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory

    directory = Directory(path)
    for t in range(tenants):
        accounts = dict((ext, {'sip_accounts': [
            {'username': username(t, ext, 'desk'), 'password': secret},
            {'username': username(t, ext, 'app'), 'password': password(t, ext, 'app'), 'kind': 'softclient'},
        ]}) for ext in extensions)
        with directory.transaction() as txn:
            reconcile(txn, tenant_name(t), None, {EXTENSION: accounts})
