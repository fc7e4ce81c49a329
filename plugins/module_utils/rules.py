# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field rules: one function per rule, each the only implementation of it.

Every function takes a raw value and returns its normal form, or raises
RuleError naming the field and the rule. They use the standard library only:
the same file runs inside Kamailio's embedded interpreter, where the router
normalises dialled numbers with exactly the code that validated the directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import ipaddress
import re

from ansible_collections.voxplane.pbx.plugins.module_utils.errors import EnvironmentProblem, RuleError, this_python

# Seed rule (CompanyFlex): internal numbers starting with 77 or 78 are feature
# codes, 110 and 112 are emergency numbers, 5-digit 118xx are directory services.
FORBIDDEN_INTERNAL_PREFIXES = ('110', '112', '77', '78')
EMERGENCY_NUMBERS = ('110', '112')

SEAT_PACKAGES = ('smart', 'best')
# Softclients (apps, webphone) need the "best" package or this add-on on a "smart" seat.
CLIENT_ADDON = 'client_complete'
# Add-on licences of the PBX's own services (ecotel: "Zusatzlizenzen, bspw. IVR oder dedizierte Konferenzen"):
# each IVR menu takes one 'ivr' add-on, each conference room one 'conference' add-on, counted like seats.
IVR_ADDON = 'ivr'
CONFERENCE_ADDON = 'conference'
ADDONS = (CLIENT_ADDON, IVR_ADDON, CONFERENCE_ADDON)
PACKAGES_WITH_CLIENT = ('best',)

ROLES = ('end_user', 'admin', 'account_admin', 'call_details')
SIP_ACCOUNT_KINDS = ('desk_phone', 'softclient', 'webphone')
CLIENT_ACCOUNT_KINDS = ('softclient', 'webphone')
# A tenant's calls take rtpengine when a side is behind NAT or the transports differ ('auto'), or
# every call ('always': media always through the PBX, e.g. for recording or a strict firewall).
MEDIA_RELAY_MODES = ('auto', 'always')
NUMBER_STATUSES = ('active', 'inactive', 'porting')
GROUP_STRATEGIES = ('parallel', 'sequential')
# How a queue's media service offers a waiting caller to its logged-in members (docs/media.md):
# all at once, each in turn from where the last call stopped, the one idle longest, or in the
# order of the members (lowest penalty first, then as listed).
QUEUE_STRATEGIES = ('ring_all', 'round_robin', 'longest_idle', 'sequential')
# The keys a caller presses in an IVR menu, in the order a menu lists them.
MENU_KEYS = ('1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '*', '#')
# The days of a schedule's opening hours, Monday first (datetime.weekday()).
WEEKDAYS = ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')
FORWARD_KINDS = ('unconditional', 'busy', 'no_answer', 'unregistered')

# The languages of the prompts a caller hears (voicemail, announcements), as the media service plays
# them; the seed tenants are German hosted PBXs.
LANGUAGES = ('de', 'en')

# Ported numbers switch over in the provider's window 08:00-12:00 on the porting
# day (ecotel); they become routable at its start, in the tenant's time zone.
PORTING_ACTIVATION_HOUR = 8

_USERNAME_RE = re.compile(r'^[a-z0-9]+(?:[._-][a-z0-9]+)*$')
_SLUG_RE = re.compile(r'^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$')
_HOST_LABEL_RE = re.compile(r'^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$')
_DIGITS_RE = re.compile(r'^[0-9]+$')
_EMAIL_RE = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s]+$')
_NUMBER_DECORATION_RE = re.compile(r'[\s\-/().]')


def _text(field, value):
    if not isinstance(value, str):
        raise RuleError(field, 'type', 'must be a string, got %r' % (value,))
    return value.strip()


def slug(value, field='name'):
    """Tenant identifier: lowercase letters, digits and inner hyphens, 1-63 chars."""
    value = _text(field, value)
    if not _SLUG_RE.match(value):
        raise RuleError(field, 'slug',
                        '%r is not a valid identifier (lowercase letters, digits, inner hyphens, at most 63 characters)' % value)
    return value


def hostname(value, field='sip_domain'):
    value = _text(field, value).lower().rstrip('.')
    labels = value.split('.')
    labels_valid = all(_HOST_LABEL_RE.match(label) for label in labels)
    if len(value) > 253 or len(labels) < 2 or not labels_valid or labels[-1].isdigit():
        raise RuleError(field, 'hostname', '%r is not a valid DNS name (at least two labels of letters, digits and inner hyphens)' % value)
    return value


def address(value, field='addresses'):
    """A trunk address: an IP address or a DNS name, normalised."""
    value = _text(field, value)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        return hostname(value, field)
    except RuleError:
        raise RuleError(field, 'address', '%r is neither an IP address nor a DNS name' % value)


def sip_server(value, field='media_server'):
    """A SIP server to send calls to: sip:host[:port] (host an IP address or DNS name,
    IPv6 in brackets); returns the canonical sip:host:port (port 5060 when left out)."""
    raw = _text(field, value)
    text = raw[4:] if raw.lower().startswith('sip:') else raw
    bracketed = text.startswith('[')
    if bracketed:
        host, sep, rest = text[1:].partition(']')
        if not sep or (rest and not rest.startswith(':')):
            raise RuleError(field, 'sip_server', '%r is not sip:host[:port]' % raw)
        port = rest[1:] if rest else '5060'
    elif ':' in text:
        host, _sep, port = text.partition(':')
        if ':' in port:
            raise RuleError(field, 'sip_server', '%r is not sip:host[:port]; an IPv6 address goes in brackets, '
                            'as in sip:[2001:db8::1]:5060' % raw)
    else:
        host, port = text, '5060'
    if '@' in host or not _DIGITS_RE.match(port) or not 0 < int(port) < 65536:
        raise RuleError(field, 'sip_server', '%r is not sip:host[:port] with a port of 1-65535' % raw)
    try:
        host = address(host, field)
    except RuleError:
        raise RuleError(field, 'sip_server', '%r: the host is neither an IP address nor a DNS name' % raw)
    if bracketed != (':' in host):
        raise RuleError(field, 'sip_server', '%r: brackets go around an IPv6 address and only around one' % raw)
    return 'sip:%s:%d' % ('[%s]' % host if ':' in host else host, int(port))


def mac(value, field='mac'):
    """MAC address: accepts ':' or '-' separators or none; returns aa:bb:cc:dd:ee:ff."""
    raw = _text(field, value)
    hexdigits = raw.replace(':', '').replace('-', '')
    separators = len(raw) - len(hexdigits)
    if separators not in (0, 5) or len(hexdigits) != 12 or not all(c in '0123456789abcdefABCDEF' for c in hexdigits):
        raise RuleError(field, 'mac',
                        '%r is not a MAC address (12 hex digits, optionally separated by ":" or "-")' % raw)
    if separators == 5 and not re.match(r'^[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$', raw):
        raise RuleError(field, 'mac', '%r mixes separators or groups; write 12 hex digits in pairs' % raw)
    hexdigits = hexdigits.lower()
    return ':'.join(hexdigits[i:i + 2] for i in range(0, 12, 2))


def e164(value, field='number', country_code=None, national_prefix='0', international_prefix='00'):
    """Normalise a phone number to E.164 (+ and digits).

    Accepts +CC..., the international prefix (00CC...) and, when country_code is
    given, the national form (0AREA...). Spaces, '-', '/', '.' and parentheses
    are ignored. Rules: at most 15 digits (ITU E.164); for Germany (+49) at most
    12 national digits including the area code, 14 with the country code
    (CompanyFlex); the national significant number does not start with 0.
    """
    raw = _text(field, value)
    digits = _NUMBER_DECORATION_RE.sub('', raw)
    if digits.startswith('+'):
        digits = digits[1:]
    elif international_prefix and digits.startswith(international_prefix):
        digits = digits[len(international_prefix):]
    elif country_code and national_prefix and digits.startswith(national_prefix):
        digits = country_code + digits[len(national_prefix):]
    else:
        raise RuleError(field, 'e164', '%r is not an E.164 number (write +<country code><number>)' % raw)
    if not _DIGITS_RE.match(digits):
        raise RuleError(field, 'e164', '%r contains characters other than digits' % raw)
    if digits.startswith('0'):
        raise RuleError(field, 'e164', '%r: a country code never starts with 0' % raw)
    if len(digits) > 15:
        raise RuleError(field, 'e164_length', '%r has %d digits; E.164 allows at most 15' % (raw, len(digits)))
    if digits.startswith('49'):
        national = digits[2:]
        if national.startswith('0'):
            raise RuleError(field, 'e164', '%r: after +49 the area code follows without its leading 0' % raw)
        if len(national) > 12:
            raise RuleError(field, 'e164_length_de',
                            '%r has %d national digits; German numbers have at most 12 including the area code (14 with +49)'
                            % (raw, len(national)))
    if len(digits) < 6:
        raise RuleError(field, 'e164_length', '%r is too short for a subscriber number' % raw)
    return '+' + digits


def ddi_range(value, field='ddi_range'):
    """A block's direct-dial range, e.g. '0-9' or '00-99'. Returns (first, last, width)."""
    raw = _text(field, value)
    parts = raw.split('-')
    if len(parts) != 2 or not all(_DIGITS_RE.match(p) for p in parts):
        raise RuleError(field, 'ddi_range', '%r is not a DDI range like "0-9" or "00-99"' % raw)
    first, last = parts
    if len(first) != len(last):
        raise RuleError(field, 'ddi_range', '%r: both ends need the same number of digits' % raw)
    if int(first) > int(last):
        raise RuleError(field, 'ddi_range', '%r: the range runs backwards' % raw)
    if len(first) > 5:
        raise RuleError(field, 'ddi_range', '%r: direct-dial ranges have at most 5 digits' % raw)
    return int(first), int(last), len(first)


def block_numbers(base, ddi_range_text):
    """Every E.164 number of a block: the base number followed by each DDI."""
    first, last, width = ddi_range(ddi_range_text)
    return [base + str(ddi).zfill(width) for ddi in range(first, last + 1)]


def ddi_in_range(ddi, ddi_range_text):
    first, last, width = ddi_range(ddi_range_text)
    return len(ddi) == width and _DIGITS_RE.match(ddi) is not None and first <= int(ddi) <= last


def internal_number(value, field='internal_number'):
    """An internal number (extension or group): the seed rules of CompanyFlex."""
    raw = value if isinstance(value, str) else (str(value) if isinstance(value, int) and not isinstance(value, bool) else None)
    if raw is None:
        raise RuleError(field, 'type', 'must be a string of digits, got %r' % (value,))
    raw = raw.strip()
    if not _DIGITS_RE.match(raw):
        raise RuleError(field, 'internal_digits', '%r: internal numbers consist of digits only' % raw)
    if not 2 <= len(raw) <= 6:
        raise RuleError(field, 'internal_length', '%r: internal numbers have 2 to 6 digits' % raw)
    if raw.startswith('0'):
        raise RuleError(field, 'internal_prefix_0', '%r: internal numbers must not start with 0, which dials outside lines' % raw)
    for prefix in FORBIDDEN_INTERNAL_PREFIXES:
        if raw.startswith(prefix):
            reason = 'emergency number' if prefix in EMERGENCY_NUMBERS else 'feature codes'
            raise RuleError(field, 'internal_forbidden_prefix',
                            '%r: internal numbers must not start with %s (reserved for %s)' % (raw, prefix, reason))
    if len(raw) == 5 and raw.startswith('118'):
        raise RuleError(field, 'internal_118', '%r: five-digit internal numbers must not start with 118 (directory services)' % raw)
    return raw


def internal_range(value, field='internal_ranges'):
    """An allowed internal number range 'first-last' with equally long ends."""
    raw = _text(field, value)
    parts = raw.split('-')
    if len(parts) != 2 or not all(_DIGITS_RE.match(p) for p in parts) or len(parts[0]) != len(parts[1]):
        raise RuleError(field, 'internal_range', '%r is not a range like "100-199" (equally long ends)' % raw)
    if int(parts[0]) > int(parts[1]):
        raise RuleError(field, 'internal_range', '%r: the range runs backwards' % raw)
    return raw


def in_internal_ranges(number, ranges):
    if not ranges:
        return True
    for text in ranges:
        first, last = text.split('-')
        if len(number) == len(first) and int(first) <= int(number) <= int(last):
            return True
    return False


def username(value, field='username'):
    """SIP username (CompanyFlex): at least 5 characters, lowercase letters and digits,
    '_', '-' and '.' only between letters or digits, no umlauts."""
    raw = _text(field, value)
    if len(raw) < 5:
        raise RuleError(field, 'username_length', '%r: usernames have at least 5 characters' % raw)
    if len(raw) > 64:
        raise RuleError(field, 'username_length', '%r: usernames have at most 64 characters' % raw)
    if not _USERNAME_RE.match(raw):
        raise RuleError(field, 'username_charset',
                        '%r: use lowercase letters and digits; "_", "-" and "." only between them; '
                        'start and end with a letter or digit; no umlauts' % raw)
    return raw


def email(value, field='email'):
    raw = _text(field, value)
    if not _EMAIL_RE.match(raw):
        raise RuleError(field, 'email', '%r is not an e-mail address' % raw)
    return raw


# Destinations the PBX answers itself (docs/media.md), beside internal and outside numbers:
# 'voicemail' (in an extension's forwards: its own mailbox), 'voicemail:<internal number>' (that
# extension's mailbox), 'voicemail-menu' (the voicemail access menu: mailbox, then PIN) and
# 'announcement:<name>'; and 'schedule:<name>', business hours, which the router itself turns into
# the schedule's open or closed destination by the clock (docs/routing.md). IVR menus, queues and
# conference rooms are internal numbers, like extensions and groups.
OWN_VOICEMAIL = 'voicemail'
VOICEMAIL_MENU = 'voicemail-menu'
SERVICE_PREFIXES = ('voicemail', 'announcement', 'schedule')
_NAME_RE = re.compile(r'^[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?$')
# The longest announcement, in seconds (its WAV file is checked and converted by audio.py).
ANNOUNCEMENT_MAX_SECONDS = 300


def object_name(value, field='name'):
    """The name of an object that has no number (an announcement): 1-32 lowercase letters,
    digits, '-' and '_', a letter or digit first and last, so that it can stand in a
    destination ('announcement:closed') and a SIP URI."""
    raw = _text(field, value).strip()
    if not _NAME_RE.match(raw):
        raise RuleError(field, 'object_name', '%r is not a name of 1 to 32 lowercase letters, digits, - and _ '
                        '(a letter or digit first and last)' % raw)
    return raw


_SHA256_RE = re.compile(r'^[0-9a-f]{64}$')


def sha256_hex(value, field):
    """A SHA-256 in lower-case hex (what audio in the directory is referred to by)."""
    raw = _text(field, value).strip().lower()
    if not _SHA256_RE.match(raw):
        raise RuleError(field, 'sha256', '%r is not a SHA-256 (64 hex digits)' % raw)
    return raw


def service_destination(value):
    """(prefix, name) of a destination the PBX answers itself ('voicemail:21' -> ('voicemail',
    '21'), 'voicemail-menu' -> ('voicemail-menu', None), 'schedule:hours' -> ('schedule', 'hours')),
    or None for any other value."""
    if value == VOICEMAIL_MENU:
        return VOICEMAIL_MENU, None
    prefix, sep, name = value.partition(':')
    if sep and prefix in SERVICE_PREFIXES:
        return prefix, name
    return None


def choice(value, choices, field):
    if value not in choices:
        raise RuleError(field, 'choice', '%r is not one of %s' % (value, ', '.join(choices)))
    return value


def menu_key(value, field='keys'):
    """A key of an IVR menu: one of MENU_KEYS ('0'-'9', '*', '#'); a whole number 0-9 (YAML reads an
    unquoted key 1 as a number) is that digit."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    raw = _text(field, value)
    if raw not in MENU_KEYS:
        raise RuleError(field, 'menu_key', '%r is not a key of a phone: one of 0-9, * and # (quote * and # in YAML)' % raw)
    return raw


def clock_time(value, field, end=False):
    """A time of day 'HH:MM' (00:00 to 23:59; with ``end``, 24:00 too: the end of the day), as
    minutes after midnight. A whole number is what YAML 1.1 makes of an unquoted 08:00 (a sexagesimal
    number, 8 * 60 + 0): the same minutes."""
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
        raw = clock_text(value) if 0 <= value <= 1440 else str(value)
    else:
        raw = _text(field, value)
        match = re.match(r'^([0-9]{1,2}):([0-9]{2})$', raw)
        minutes = int(match.group(1)) * 60 + int(match.group(2)) if match and int(match.group(2)) < 60 else None
    if minutes is None or not 0 <= minutes <= (1440 if end else 1439):
        raise RuleError(field, 'clock_time', '%r is not a time of day HH:MM (00:00 to %s; quote it in YAML)'
                        % (raw, '24:00' if end else '23:59'))
    return minutes


def clock_text(minutes):
    """'HH:MM' of minutes after midnight (clock_time's inverse, 1440 is '24:00')."""
    return '%02d:%02d' % divmod(minutes, 60)


def opening_hours(value, field='hours'):
    """One entry of a schedule's opening hours: {days: [mon..sun], from: 'HH:MM', to: 'HH:MM'}, open from
    ``from`` up to (not including) ``to`` on each of the days, in the schedule's time zone. Returns it
    normalised: the days once each, Monday first, the times as HH:MM. Hours past midnight are two entries
    (to 24:00, and from 00:00 on the next day)."""
    if not isinstance(value, dict):
        raise RuleError(field, 'opening_hours', 'an entry of opening hours is {days, from, to}, not %r' % (value,))
    days = value.get('days')
    if isinstance(days, str):
        days = [days]
    if not isinstance(days, list) or not days:
        raise RuleError(field + '.days', 'opening_hours', 'name the days, a list of %s' % ', '.join(WEEKDAYS))
    named = set()
    for day in days:
        day = str(day).strip().lower()[:3] if isinstance(day, str) else day
        if day not in WEEKDAYS:
            raise RuleError(field + '.days', 'weekday', '%r is not a day of the week (%s)' % (day, ', '.join(WEEKDAYS)))
        named.add(day)
    start = clock_time(value.get('from'), field + '.from')
    end = clock_time(value.get('to'), field + '.to', end=True)
    if end <= start:
        raise RuleError(field + '.to', 'opening_hours', '%s is not after %s; hours past midnight are two entries (to 24:00, '
                        'and from 00:00 of the next day)' % (clock_text(end), clock_text(start)))
    return {'days': [day for day in WEEKDAYS if day in named], 'from': clock_text(start), 'to': clock_text(end)}


def language(value, field='language'):
    """The language of the prompts: one of LANGUAGES."""
    return choice(_text(field, value), LANGUAGES, field)


def bounded_int(value, field, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(field, 'type', 'must be an integer, got %r' % (value,))
    if not low <= value <= high:
        raise RuleError(field, 'range', '%d is outside %d..%d' % (value, low, high))
    return value


def iso_date(value, field='porting_date'):
    if isinstance(value, datetime.datetime):
        raise RuleError(field, 'date', '%r is a timestamp; give the day only (YYYY-MM-DD)' % value.isoformat())
    if isinstance(value, datetime.date):
        return value.isoformat()
    raw = _text(field, value)
    try:
        return datetime.date.fromisoformat(raw).isoformat()
    except ValueError:
        raise RuleError(field, 'date', '%r is not a date (YYYY-MM-DD)' % raw)


def _zoneinfo():
    """The standard library's zoneinfo, or the EnvironmentProblem that names its absence."""
    try:
        import zoneinfo
    except ImportError as e:
        raise EnvironmentProblem('the zoneinfo module', '%s cannot import it (%s)' % (this_python(), e),
                                 'It is part of Python 3.9 and newer: run the modules with such a Python '
                                 '(ansible_python_interpreter).')
    return zoneinfo


def time_zone(name):
    """The ZoneInfo of an IANA name. A name that no tz data knows is a RuleError (the value is
    wrong) only when there is tz data at all; without any it is an EnvironmentProblem."""
    zoneinfo = _zoneinfo()
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    try:
        zoneinfo.ZoneInfo('UTC')
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise EnvironmentProblem(
            'IANA time zone data', '%s finds no time zone at all, not even UTC (searched %s and the tzdata '
            'Python package)' % (this_python(), ', '.join(zoneinfo.TZPATH) or 'no folder'),
            'Install the tz data: the tzdata package of the system (Debian/Ubuntu: apt-get install tzdata; '
            'RHEL/Fedora: dnf install tzdata) or the tzdata Python package (pip install tzdata).')
    return None


def timezone(value, field='timezone'):
    raw = _text(field, value)
    if time_zone(raw) is None:
        raise RuleError(field, 'timezone', '%r is not an IANA time zone such as Europe/Berlin' % raw)
    return raw


# The shortest SIP password and voicemail PIN there are (a shorter one is refused without being echoed).
PASSWORD_MIN_LENGTH = 8
PIN_LENGTH = (4, 8)


def voicemail_pin(value, field='voicemail.pin'):
    raw = value if isinstance(value, str) else str(value)
    if not _DIGITS_RE.match(raw) or not PIN_LENGTH[0] <= len(raw) <= PIN_LENGTH[1]:
        raise RuleError(field, 'pin', 'a voicemail PIN has %d to %d digits' % PIN_LENGTH)
    return raw


def conference_pin(value, field='pin'):
    """A conference room's PIN (or moderator PIN): digits, as long as a voicemail PIN."""
    raw = value if isinstance(value, str) else str(value)
    if not _DIGITS_RE.match(raw) or not PIN_LENGTH[0] <= len(raw) <= PIN_LENGTH[1]:
        raise RuleError(field, 'pin', 'a conference PIN has %d to %d digits' % PIN_LENGTH)
    return raw


def conference_pin_hash(tenant, room, pin):
    """A conference room's PIN and moderator PIN are stored hashed, salted with the room (both with the
    same salt, so that the two can be told apart only by value: the media service hashes what a caller
    enters once and compares it with both)."""
    salt = ('voxplane-conference:%s:%s' % (tenant, room)).encode('utf-8')
    return hashlib.pbkdf2_hmac('sha256', pin.encode('utf-8'), salt, 20000).hex()


def ha1(user, realm, password):
    """Digest HA1 = MD5(username:realm:password), the only form a SIP password is stored in."""
    return hashlib.md5(('%s:%s:%s' % (user, realm, password)).encode('utf-8')).hexdigest()


def activation(value, field='activation'):
    """A device's stored activation code: {hash: 64 hex digits, expires_at: epoch seconds, used_at: epoch
    seconds or None}. The code itself is never stored."""
    if not isinstance(value, dict) or not re.match(r'^[0-9a-f]{64}$', str(value.get('hash', ''))):
        raise RuleError(field, 'activation', 'an activation is {hash: SHA-256 hex, expires_at, used_at}')
    times = {}
    for key in ('expires_at', 'used_at'):
        item = value.get(key)
        if item is not None and (isinstance(item, bool) or not isinstance(item, int)):
            raise RuleError(field, 'activation', '%s is epoch seconds' % key)
        times[key] = item
    return dict(hash=value['hash'], **times)


def ha1_value(value, field='ha1'):
    raw = _text(field, value).lower()
    if not re.match(r'^[0-9a-f]{32}$', raw):
        raise RuleError(field, 'ha1', 'an HA1 is 32 hex digits (MD5 of username:realm:password)')
    return raw


def pin_hash_value(value, field='voicemail.pin_hash'):
    """A stored voicemail PIN hash (tenant_info with secrets): 64 hex digits, as pin_hash() makes it."""
    raw = _text(field, value).lower()
    if not re.match(r'^[0-9a-f]{64}$', raw):
        raise RuleError(field, 'pin_hash', 'a PIN hash is 64 hex digits (as tenant_info returns it with secrets)')
    return raw


def phonebook_name(value, field='name'):
    """The name of a phonebook entry: free text (umlauts welcome), 1-100 characters, one line."""
    raw = ' '.join(_text(field, value).split())
    if not raw:
        raise RuleError(field, 'required', 'a phonebook entry needs a name')
    if len(raw) > 100:
        raise RuleError(field, 'length', '%r: at most 100 characters' % raw)
    return raw


def speed_dial_code(value, field='code'):
    """A speed dial code [Kurzwahl] of an extension: 1 to 3 digits."""
    raw = _text(field, str(value) if isinstance(value, int) and not isinstance(value, bool) else value)
    if not _DIGITS_RE.match(raw) or len(raw) > 3:
        raise RuleError(field, 'speed_dial_code', '%r: a speed dial code has 1 to 3 digits' % raw)
    return raw


def pin_hash(tenant, extension, pin):
    """Voicemail PINs are stored hashed; salted with the mailbox so equal PINs differ."""
    salt = ('voxplane-voicemail:%s:%s' % (tenant, extension)).encode('utf-8')
    return hashlib.pbkdf2_hmac('sha256', pin.encode('utf-8'), salt, 20000).hex()


def porting_activation(porting_date, tz_name):
    """The moment (aware datetime) a porting number becomes active by itself."""
    day = datetime.date.fromisoformat(porting_date)
    zone = time_zone(tz_name)
    if zone is None:
        raise RuleError('timezone', 'timezone', '%r is not an IANA time zone such as Europe/Berlin' % tz_name)
    return datetime.datetime(day.year, day.month, day.day, PORTING_ACTIVATION_HOUR, tzinfo=zone)


def effective_status(number, tz_name, now=None):
    """'active' / 'inactive' / 'porting' as of now: a porting number is active
    from its porting day's activation hour on, without anyone acting."""
    status = number.get('status', 'active')
    if status != 'porting':
        return status
    if not number.get('porting_date'):
        return 'porting'
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return 'active' if now >= porting_activation(number['porting_date'], tz_name) else 'porting'


def normalise_dialled(digits, dial_plan):
    """Turn what a caller dialled into E.164 with the tenant's dial plan, or None.

    dial_plan: dict with country_code, national_prefix, international_prefix.
    '+4930...' and '004930...' are international, '030...' national. Anything
    else (an internal number, a feature code) is not an outside number: None.
    """
    if not digits:
        return None
    try:
        return e164(digits, 'dialled', dial_plan['country_code'], dial_plan['national_prefix'], dial_plan['international_prefix'])
    except RuleError:
        return None


def is_international(e164_number, country_code):
    """Whether the number lies outside the tenant's country (the national/abroad split of call_class)."""
    return not e164_number.startswith('+' + country_code)


# Call classes -------------------------------------------------------------------------------------
#
# What calling an outside number costs decides who may call it (fraud: toll fraud runs up calls to
# premium-rate and satellite numbers). call_class() gives one of CALL_CLASSES; every class but
# 'national' needs the permission CALL_CLASS_PERMISSION names on the tenant and on the extension.
#
# Sources:
# - ITU-T E.164 and the ITU list of E.164 assigned country codes, global services:
#   +870 Inmarsat single network access code, +881 Global Mobile Satellite System (Iridium,
#   Globalstar, Thuraya, ...), +882 and +883 International Networks (shared codes of satellite,
#   maritime, in-flight and other networks, priced like satellite calls): all 'satellite';
#   +979 International Premium Rate Service and +808 International Shared Cost Service: 'premium'.
# - National premium-rate ranges, keyed by country code, the digits after it. Germany
#   (Bundesnetzagentur numbering plan): (0)900 premium-rate services, (0)137 and (0)138 mass-call
#   services (televoting), (0)118 directory enquiries (charged), (0)19 online and user-group
#   services, (0)700 personal numbers. Add a country by adding its row.
# A premium-rate number is 'premium' at home and abroad (premium wins over international).
CALL_CLASSES = ('national', 'international', 'premium', 'satellite')
CALL_CLASS_PERMISSION = {'national': None, 'international': 'international_calls', 'premium': 'premium_calls',
                         'satellite': 'satellite_calls'}
SATELLITE_CODES = ('870', '881', '882', '883')
GLOBAL_PREMIUM_CODES = ('979', '808')
PREMIUM_RANGES = {
    '49': ('900', '137', '138', '118', '19', '700'),
}


def call_class(e164_number, country_code):
    """The call class of an outside number in E.164 ('+' and digits) for a tenant in
    ``country_code``: 'national', 'international', 'premium' or 'satellite'."""
    digits = e164_number[1:] if e164_number.startswith('+') else e164_number
    if digits.startswith(SATELLITE_CODES):
        return 'satellite'
    if digits.startswith(GLOBAL_PREMIUM_CODES):
        return 'premium'
    for code, ranges in PREMIUM_RANGES.items():
        if digits.startswith(code) and digits[len(code):].startswith(ranges):
            return 'premium'
    return 'international' if is_international('+' + digits, country_code) else 'national'


# At most this many concurrent outside calls or outside calls a minute can be set as a limit.
CALL_LIMIT_MAX = 100000


def call_limit(value, field):
    """A limit on outside calls: a whole number 1..CALL_LIMIT_MAX, or None for no limit.
    An empty string (the modules' way to clear a field) is no limit too."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and _DIGITS_RE.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(field, 'type', 'must be a whole number of at least 1 (empty: no limit), got %r' % (value,))
    if not 1 <= value <= CALL_LIMIT_MAX:
        raise RuleError(field, 'range', '%d is outside 1..%d; an empty value means no limit' % (value, CALL_LIMIT_MAX))
    return value
