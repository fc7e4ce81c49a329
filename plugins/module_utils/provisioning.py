# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provisioning desk phones: which file a phone asks for, who may have it, and what is in it.

Standard library only: the provisioning server (roles/provisioning, a small HTTP app behind
nginx) imports this file, and so do the filter plugins the controller uses.

Secrets. The directory stores a SIP password only as its digest HA1, but a phone needs it in
clear. Nothing in clear is kept at rest: the password of a SIP account that a provisioned
device carries as a line is *derived* from the tenant-wide provisioning secret,
``HMAC-SHA256(secret, "sip-line" | sip_domain | username)``, which the controller (its vault)
and the provisioning host (a root-owned file) hold and nothing else. The controller sets the
account's password to that value (filter ``voxplane.pbx.line_password``), so the directory
holds its HA1 as for any other password; the provisioning server derives the same value at
request time and serves it only when its HA1 is the stored one (so a password set another way
is never replaced by a guess, and the line is left out with a log line saying why). The HTTP
password of a device is derived the same way from its MAC (``device_password``): a phone
authenticates with HTTP Basic over TLS as user <mac> (12 hex digits) with that password.
Rotating the provisioning secret rotates every derived credential at once.

Activation codes: 16 digits (a phone keypad can enter them), stored only as their SHA-256,
one-time and expiring; presenting one returns the device's provisioning credentials.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import re
import secrets
import time

from ansible_collections.voxplane.pbx.plugins.module_utils import catalogue, rules
from ansible_collections.voxplane.pbx.plugins.module_utils.routing import VOICEMAIL_CODE

# Per vendor family: the file names its firmware asks for (<mac> lowercase hex, <MAC> uppercase),
# and which of them carries the configuration (the others, such as Poly's master file, point to it).
VENDOR_FILES = {
    'Yealink': {'<mac>.cfg': 'yealink.cfg'},
    'Snom': {'<mac>.xml': 'snom.xml'},
    'Poly': {'<mac>.cfg': 'poly-master.cfg', '<mac>-phone.cfg': 'poly-phone.cfg'},
    'Cisco': {'<mac>.xml': 'cisco-mpp.xml', 'SEP<MAC>.cnf.xml': 'cisco-mpp.xml'},
    'Fanvil': {'<mac>.cfg': 'fanvil.cfg'},
    'Grandstream': {'cfg<mac>.xml': 'grandstream.xml'},
    'Gigaset': {'<MAC>.xml': 'gigaset.xml'},
}
# Which templates are XML (checked to parse; values escaped) and which key=value text.
XML_TEMPLATES = ('snom.xml', 'poly-master.cfg', 'poly-phone.cfg', 'cisco-mpp.xml', 'grandstream.xml', 'gigaset.xml')

_PATH_PATTERNS = [
    (re.compile(r'^(?P<mac>[0-9a-f]{12})\.cfg$'), '<mac>.cfg'),
    (re.compile(r'^(?P<mac>[0-9a-f]{12})-phone\.cfg$'), '<mac>-phone.cfg'),
    (re.compile(r'^(?P<mac>[0-9a-f]{12})\.xml$'), '<mac>.xml'),
    (re.compile(r'^(?P<mac>[0-9A-F]{12})\.xml$'), '<MAC>.xml'),
    (re.compile(r'^SEP(?P<mac>[0-9A-F]{12})\.cnf\.xml$'), 'SEP<MAC>.cnf.xml'),
    (re.compile(r'^cfg(?P<mac>[0-9a-f]{12})\.xml$'), 'cfg<mac>.xml'),
]

# Languages a phone shows, by the tenant's country code (English otherwise).
LANGUAGES = {'49': 'German', '43': 'German', '41': 'German', '33': 'French', '39': 'Italian', '34': 'Spanish',
             '31': 'Dutch', '44': 'English', '1': 'English'}

ACTIVATION_DIGITS = 16
DEFAULT_ACTIVATION_HOURS = 72


def parse_path(name):
    """(mac aa:bb:..., file pattern) of a requested file name, or None when it is no phone's file."""
    for pattern, kind in _PATH_PATTERNS:
        match = pattern.match(name)
        if match:
            hexdigits = match.group('mac').lower()
            return ':'.join(hexdigits[i:i + 2] for i in range(0, 12, 2)), kind
    return None


def file_names(device):
    """file pattern -> template name for this device's vendor (empty: the vendor is not provisioned)."""
    vendor = catalogue.DEVICE_MODELS[device['model']]['vendor']
    return VENDOR_FILES.get(vendor, {})


def concrete_name(pattern, mac):
    hexdigits = mac.replace(':', '')
    return pattern.replace('<mac>', hexdigits.lower()).replace('<MAC>', hexdigits.upper())


# ------------------------------------------------------------------------------ secrets
def _derive(secret, *parts):
    if not secret or len(secret) < 16:
        raise ValueError('the provisioning secret must have at least 16 characters')
    digest = hmac.new(secret.encode('utf-8'), '|'.join(parts).encode('utf-8'), hashlib.sha256).digest()
    # 24 characters of base32 (120 bits): letters and digits only, easy on every phone's parser.
    return base64.b32encode(digest).decode('ascii')[:24].lower()


def line_password(secret, sip_domain, username):
    """The SIP password of a provisioned line (see the module docstring)."""
    return _derive(secret, 'sip-line', sip_domain.lower(), username)


def device_user(mac):
    """The HTTP user name of a device: its MAC as 12 lowercase hex digits."""
    return rules.mac(mac).replace(':', '')


def device_password(secret, mac):
    """The HTTP password of a device for the provisioning server."""
    return _derive(secret, 'device', rules.mac(mac))


def check_basic_auth(header, secret, mac):
    """Whether an Authorization header carries this device's credentials (constant-time compare)."""
    if not header or not header.startswith('Basic '):
        return False
    try:
        user, _sep, password = base64.b64decode(header[6:].strip()).decode('utf-8').partition(':')
    except (ValueError, UnicodeDecodeError):
        return False
    ok_user = hmac.compare_digest(user.lower(), device_user(mac))
    ok_password = hmac.compare_digest(password, device_password(secret, mac))
    return ok_user and ok_password


# ------------------------------------------------------------------------------ activation codes
def new_activation_code():
    """16 random digits, shown as four groups of four."""
    digits = ''.join(str(secrets.randbelow(10)) for _i in range(ACTIVATION_DIGITS))
    return '-'.join(digits[i:i + 4] for i in range(0, ACTIVATION_DIGITS, 4))


def activation_hash(code):
    """SHA-256 of the code's digits (separators and spaces ignored): what the directory keeps."""
    digits = re.sub(r'[\s-]', '', str(code))
    return hashlib.sha256(('voxplane-activation|' + digits).encode('ascii', 'replace')).hexdigest()


def activation_state(activation, now=None):
    """'valid', 'used', 'expired' or 'none' for a device's stored activation."""
    now = time.time() if now is None else now
    if not activation or not activation.get('hash'):
        return 'none'
    if activation.get('used_at'):
        return 'used'
    if activation.get('expires_at') is not None and now >= activation['expires_at']:
        return 'expired'
    return 'valid'


# ------------------------------------------------------------------------------ what a phone gets
def phone_settings(state, mac, secret, server, provisioning_url):
    """Everything a template needs for one device: its lines (account, auth name, password,
    display name, label, SIP server), time zone, language, the tenant phonebook, the voicemail
    number and how the phone learns of new messages (``mwi``: catalogue.MWI), and the URL the
    phone fetches its file from. ``server`` is the SIP server host[:port] the phones register at.
    Returns (settings, skipped) where skipped lists (username, why) of lines left out."""
    tenant = state.tenant
    device = state.get('device', mac)
    domain = tenant['sip_domain']
    accounts = state.sip_accounts()
    extensions = state.objects('extension')
    locations = dict((loc['name'], loc) for loc in tenant.get('locations', []))
    host, _sep, port = server.partition(':')
    lines, skipped = [], []
    for index, username in enumerate(device['lines'], 1):
        owner = accounts.get(username)
        if owner is None:
            skipped.append((username, 'no such SIP account'))
            continue
        ext_key, account = owner
        password = line_password(secret, domain, username)
        if not hmac.compare_digest(rules.ha1(username, domain, password), account['ha1']):
            skipped.append((username, 'its password is not the one derived from the provisioning secret '
                                      '(set it with the filter voxplane.pbx.line_password)'))
            continue
        ext = extensions[ext_key]
        display = one_line(ext.get('name')) or ext_key
        lines.append(dict(index=index, username=username, auth_name=username, password=password,
                          display_name=display, label='%s %s' % (ext_key, display) if ext.get('name') else ext_key,
                          internal_number=ext_key, domain=domain, server_host=host, server_port=int(port or 5060)))
    location = locations.get(device.get('location') or '') or {}
    timezone = device.get('timezone') or location.get('timezone') or tenant.get('timezone') or 'Europe/Berlin'
    phonebook = [dict(name=one_line(key), number=entry.get('number'), mobile=entry.get('mobile'),
                      company=one_line(entry.get('company')))
                 for key, entry in sorted(state.objects('phonebook_entry').items())]
    vendor = catalogue.DEVICE_MODELS[device['model']]['vendor']
    settings = dict(
        mac=mac, mac_hex=mac.replace(':', ''), mac_upper=mac.replace(':', '').upper(), model=device['model'],
        vendor=vendor, device_name=one_line(device.get('name')),
        # The message-waiting lamp: the number its message key dials (the voicemail feature code,
        # also the mailbox some vendors subscribe to) and whether the file makes the phone
        # subscribe or wait for unsolicited NOTIFYs (catalogue.MWI, which the router follows).
        voicemail_number=VOICEMAIL_CODE, mwi=catalogue.MWI.get(vendor, catalogue.MWI_SUBSCRIBE),
        tenant=state.name, domain=domain, lines=lines, timezone=timezone, utc_offset=utc_offset(timezone),
        language=LANGUAGES.get(str(tenant.get('country_code')), 'English'), phonebook=phonebook,
        provisioning_url=provisioning_url.rstrip('/') + '/', server_host=host, server_port=int(port or 5060),
    )
    return settings, skipped


def one_line(text):
    """Text for one value of a key/value file: no line breaks or other control characters, which
    would start a key of their own."""
    return ''.join(c if c.isprintable() else ' ' for c in (text or '')).strip()


def utc_offset(timezone):
    """'+01:00' for Europe/Berlin in winter: the offset now (phones without IANA names want it)."""
    try:
        import datetime
        from zoneinfo import ZoneInfo
        offset = datetime.datetime.now(ZoneInfo(timezone)).utcoffset()
    except Exception:  # pylint: disable=broad-except
        return '+00:00'
    minutes = int(offset.total_seconds() // 60)
    sign = '+' if minutes >= 0 else '-'
    return '%s%02d:%02d' % (sign, abs(minutes) // 60, abs(minutes) % 60)


# ------------------------------------------------------------------------------ failures
class FailureCounter(object):
    """Failed requests per source address in a sliding window; an address with ``limit``
    failures within ``window`` seconds is refused for ``ban`` seconds."""

    def __init__(self, limit=10, window=60, ban=300, clock=time.monotonic):
        self.limit, self.window, self.ban = limit, window, ban
        self.clock = clock
        self.failures = {}
        self.banned = {}

    def is_banned(self, address):
        until = self.banned.get(address)
        if until is None:
            return False
        if self.clock() >= until:
            del self.banned[address]
            return False
        return True

    def fail(self, address):
        """Count a failure; True when this one bans the address."""
        now = self.clock()
        recent = [t for t in self.failures.get(address, []) if now - t < self.window]
        recent.append(now)
        self.failures[address] = recent
        if len(recent) >= self.limit:
            self.banned[address] = now + self.ban
            self.failures.pop(address, None)
            return True
        return False
