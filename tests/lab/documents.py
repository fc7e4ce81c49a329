# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tenant documents of any size for the directory-scale benchmark and the scale tests.

``big_tenant(n)`` is the tenant of issue 9's targets: n extensions (6-digit internal numbers from
200000), each with a desk-phone and a softclient SIP account (stored HA1s, as a backup holds them),
a desk phone carrying the desk account, and a DDI in one block of 4-digit DDIs; plus ``groups``
call groups of 20 members each. The shape is exactly tenant_info's, so it is what an exported
tenant looks like.
"""

import hashlib
import json

FIRST_EXTENSION = 200000
FIRST_GROUP = 300000


def ha1(user, realm, password):
    return hashlib.md5(('%s:%s:%s' % (user, realm, password)).encode()).hexdigest()


def password(name, ext, kind):
    return 'pw-%s-%s-%s' % (name, ext, kind)


def mac(t, i):
    return '00:15:65:%02x:%02x:%02x' % (t % 256, (i >> 8) & 0xff, i & 0xff)


def big_tenant(extensions, groups=50, name='big', t=0, block='+4930990'):
    """The document of one tenant: ``extensions`` extensions (at most 10,000: 4-digit DDIs in one
    block), ``groups`` groups of 20 members."""
    if extensions > 10000:
        raise ValueError('at most 10,000 extensions (4-digit DDIs of one block)')
    domain = '%s.bench.test' % name
    doc = {
        'tenant': {'name': name, 'sip_domain': domain, 'display_name': 'Bench tenant %s' % name,
                   'licences': {'seats': {'best': extensions}, 'addons': {}},
                   'internal_ranges': [], 'locations': [{'name': 'hq', 'street': 'Hauptstr. 1', 'postal_code': '10115',
                                                        'city': 'Berlin', 'country': 'DE', 'emergency_caller_id': None}]},
        'numbers': [{'number': block, 'ddi_range': '0000-9999' if extensions > 100 else '00-99'}],
        'extensions': [], 'devices': [], 'groups': [], 'phonebook': [],
    }
    width = 4 if extensions > 100 else 2
    for i in range(extensions):
        ext = str(FIRST_EXTENSION + i)
        desk, app = 'u%s.desk' % ext, 'u%s.app' % ext
        doc['extensions'].append({
            'internal_number': ext, 'name': 'User %s %s' % (name, ext), 'seat': 'best', 'ddi': '%0*d' % (width, i),
            'location': 'hq',
            'sip_accounts': [{'username': desk, 'kind': 'desk_phone', 'ha1': ha1(desk, domain, password(name, ext, 'desk'))},
                             {'username': app, 'kind': 'softclient', 'ha1': ha1(app, domain, password(name, ext, 'app'))}],
        })
        doc['devices'].append({'mac': mac(t, i), 'model': 'yealink-t46u', 'name': 'Desk %s' % ext, 'lines': [desk]})
    for g in range(groups):
        members = [str(FIRST_EXTENSION + (g * 20 + k) % max(extensions, 1)) for k in range(min(20, extensions))]
        doc['groups'].append({'internal_number': str(FIRST_GROUP + g), 'name': 'Group %d' % g, 'strategy': 'parallel',
                              'members': sorted(set(members)), 'ring_time': 30})
    return doc


def write(doc, path):
    """JSON or YAML by the file name's ending."""
    if path.endswith('.json'):
        with open(path, 'w', encoding='utf-8') as handle:
            json.dump(doc, handle, ensure_ascii=False)
    else:
        import yaml
        dumper = getattr(yaml, 'CSafeDumper', None) or yaml.SafeDumper
        with open(path, 'w', encoding='utf-8') as handle:
            yaml.dump(doc, handle, Dumper=dumper, allow_unicode=True, sort_keys=False)
    return path
