# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field rules (rules.py): good and bad values, most of them from the seed manuals."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import EnvironmentProblem, RuleError

UTC = datetime.timezone.utc
DE = {'country_code': '49', 'national_prefix': '0', 'international_prefix': '00'}


def rejects(fn, value, rule, *args, **kwargs):
    with pytest.raises(RuleError) as info:
        fn(value, *args, **kwargs)
    assert info.value.rule == rule, '%r: %s' % (value, info.value)
    return info.value


# MAC (O2 / ecotel: device = model + MAC) -------------------------------------------------------

@pytest.mark.parametrize('raw', [
    '00:15:65:ab:cd:ef', '00:15:65:AB:CD:EF', '00-15-65-AB-CD-EF', '001565ABCDEF', '001565abcdef',
    ' 00:15:65:ab:cd:ef ', '00:15:65:Ab:cD:eF',
])
def test_mac_accepts_colon_dash_or_no_separator_and_normalises(raw):
    assert rules.mac(raw) == '00:15:65:ab:cd:ef'


@pytest.mark.parametrize('raw', [
    '00:15:65:ab:cd:eg',        # non-hex
    'zz:15:65:ab:cd:ef',        # non-hex
    '00:15:65:ab:cd',           # too short
    '001565abcde',              # 11 digits
    '001565abcdef00',           # 14 digits
    '00:15:65:ab:cd:ef:01',     # 7 groups
    '00:15-65:ab:cd:ef',        # mixed separators
    '00-15-65:ab-cd-ef',        # mixed separators
    '0:015:65:ab:cd:ef',        # wrong grouping
    '0015:65ab:cdef',           # wrong number of separators
    '0015.65ab.cdef',           # Cisco dots are not a separator here
    '00 15 65 ab cd ef',        # spaces
    '',
])
def test_mac_rejects(raw):
    error = rejects(rules.mac, raw, 'mac')
    assert error.field == 'mac'


def test_mac_rejects_non_string():
    assert rejects(rules.mac, 0x001565abcdef, 'type').field == 'mac'


# E.164 and the German length rule (CompanyFlex) -------------------------------------------------

@pytest.mark.parametrize('raw, expected', [
    ('+49 30 1234567', '+49301234567'),
    ('+4930/123456-7', '+49301234567'),
    ('0049 30 1234567', '+49301234567'),
    ('+43 1 234567', '+431234567'),
    ('0043 1 234567', '+431234567'),
    ('+1 (212) 555-0100', '+12125550100'),
])
def test_e164_international_forms(raw, expected):
    assert rules.e164(raw) == expected


@pytest.mark.parametrize('raw, expected', [
    ('030 1234567', '+49301234567'),
    ('(030) 123 456-7', '+49301234567'),
    ('03221 1234567', '+4932211234567'),   # ecotel 032 interim number
    ('0171 1234567', '+491711234567'),     # mobile
])
def test_e164_national_form_needs_the_country_code(raw, expected):
    assert rules.e164(raw, 'number', '49', '0', '00') == expected
    rejects(rules.e164, raw, 'e164')   # without a dial plan a national number is ambiguous


def test_e164_national_form_of_another_country():
    assert rules.e164('01 234567', 'number', '43', '0', '00') == '+431234567'


def test_e164_at_most_15_digits():
    assert rules.e164('+441234567890123') == '+441234567890123'        # 15 digits
    error = rejects(rules.e164, '+4412345678901234', 'e164_length')    # 16 digits
    assert '16' in error.message and '15' in error.message


def test_e164_german_boundary_12_national_digits_14_with_49():
    # CompanyFlex: at most 12 national digits including the area code (without the
    # trunk prefix 0), 14 digits counted with +49.
    twelve = '301234567890'
    assert rules.e164('+49' + twelve) == '+49' + twelve
    assert len(rules.e164('+49' + twelve)) - 1 == 14
    assert rules.e164('0' + twelve, 'number', '49', '0', '00') == '+49' + twelve
    assert rules.e164('0049' + twelve) == '+49' + twelve
    error = rejects(rules.e164, '+49' + twelve + '1', 'e164_length_de')
    assert '13' in error.message and '12' in error.message
    rejects(rules.e164, '0' + twelve + '1', 'e164_length_de', 'number', '49', '0', '00')
    rejects(rules.e164, '0049' + twelve + '1', 'e164_length_de')


def test_e164_german_limit_does_not_apply_to_other_countries():
    assert rules.e164('+43' + '1234567890123') == '+431234567890123'    # 13 national digits, 15 total


@pytest.mark.parametrize('raw', ['+49 030 1234567', '+49 (0)30 1234567', '0049 030 1234567'])
def test_e164_rejects_leading_zero_after_49(raw):
    error = rejects(rules.e164, raw, 'e164')
    assert 'leading 0' in error.message


@pytest.mark.parametrize('raw, rule', [
    ('+0301234567', 'e164'),           # country codes never start with 0
    ('+49 30 CALL-ME', 'e164'),        # letters
    ('30 1234567', 'e164'),            # neither +, 00 nor 0
    ('+49 30', 'e164_length'),         # too short
    ('', 'e164'),
])
def test_e164_rejects(raw, rule):
    assert rejects(rules.e164, raw, rule, 'main_number').field == 'main_number'


# Internal numbers (CompanyFlex: not 77/78, not 110/112, no 5-digit 118xx) ---------------------------

@pytest.mark.parametrize('raw, expected', [
    ('10', '10'), ('100', '100'), ('2000', '2000'), ('999999', '999999'),
    ('1180', '1180'),       # 4-digit 118x is fine: only five-digit 118xx is forbidden
    ('118', '118'), ('118000', '118000'),
    ('11', '11'), ('111', '111'), ('1130', '1130'), ('79', '79'), ('7', None),
    (100, '100'), (' 200 ', '200'),
])
def test_internal_number_accepts(raw, expected):
    if expected is None:
        rejects(rules.internal_number, raw, 'internal_length')
    else:
        assert rules.internal_number(raw) == expected


@pytest.mark.parametrize('raw, rule', [
    ('110', 'internal_forbidden_prefix'), ('1100', 'internal_forbidden_prefix'),
    ('112', 'internal_forbidden_prefix'), ('11234', 'internal_forbidden_prefix'),
    ('77', 'internal_forbidden_prefix'), ('770', 'internal_forbidden_prefix'),
    ('78', 'internal_forbidden_prefix'), ('7800', 'internal_forbidden_prefix'),
    ('11800', 'internal_118'), ('11833', 'internal_118'), ('11899', 'internal_118'),
    ('0100', 'internal_prefix_0'),
    ('10a', 'internal_digits'), ('*78', 'internal_digits'), ('1 00', 'internal_digits'), ('', 'internal_digits'),
    ('1', 'internal_length'), ('1234567', 'internal_length'),
    (True, 'type'), (None, 'type'), (10.0, 'type'),
])
def test_internal_number_rejects(raw, rule):
    error = rejects(rules.internal_number, raw, rule)
    assert error.field == 'internal_number'


def test_internal_number_messages_say_why():
    assert 'emergency' in rejects(rules.internal_number, '112', 'internal_forbidden_prefix').message
    assert 'feature' in rejects(rules.internal_number, '78', 'internal_forbidden_prefix').message
    assert '118' in rejects(rules.internal_number, '11800', 'internal_118').message


# Usernames (CompanyFlex) ----------------------------------------------------------------------

@pytest.mark.parametrize('raw', [
    'max.muster', 'max_muster', 'max-muster', 'mmuster', 'max.muster2', '12345', 'a.b.c', 'm-u_s.t3r', 'a' * 64,
])
def test_username_accepts(raw):
    assert rules.username(raw) == raw


@pytest.mark.parametrize('raw, rule', [
    ('abcd', 'username_length'),        # fewer than five characters
    ('a.b', 'username_length'),
    ('a' * 65, 'username_length'),
    ('müller', 'username_charset'),     # umlaut
    ('jürgen.maier', 'username_charset'),
    ('strauß', 'username_charset'),
    ('Max.Muster', 'username_charset'),  # lowercase only
    ('.abcde', 'username_charset'),     # must start with a letter or digit
    ('abcde.', 'username_charset'),     # must end with a letter or digit
    ('_abcde', 'username_charset'),
    ('abcde-', 'username_charset'),
    ('ab__cd', 'username_charset'),     # a special character needs alphanumerics on both sides
    ('ab._cd', 'username_charset'),
    ('ab..cd', 'username_charset'),
    ('max muster', 'username_charset'),
    ('max@muster', 'username_charset'),
    ('max+muster', 'username_charset'),
])
def test_username_rejects(raw, rule):
    assert rejects(rules.username, raw, rule, 'sip_accounts[0].username').field == 'sip_accounts[0].username'


# DDI ranges and blocks (ecotel: head number + DDI block 0-9) --------------------------------------

@pytest.mark.parametrize('raw, expected', [
    ('0-9', (0, 9, 1)), ('00-99', (0, 99, 2)), ('10-19', (10, 19, 2)), ('000-999', (0, 999, 3)),
    ('5-5', (5, 5, 1)), ('00000-99999', (0, 99999, 5)), (' 0-9 ', (0, 9, 1)),
])
def test_ddi_range_accepts(raw, expected):
    assert rules.ddi_range(raw) == expected


@pytest.mark.parametrize('raw', ['0-99', '9-0', '5', '0-9-9', 'a-b', '0..9', '000000-999999', '-9', ''])
def test_ddi_range_rejects(raw):
    rejects(rules.ddi_range, raw, 'ddi_range')


def test_block_numbers_expand_base_and_ddi():
    assert rules.block_numbers('+4932211234', '0-9') == ['+4932211234%d' % i for i in range(10)]
    numbers = rules.block_numbers('+49301234', '00-99')
    assert len(numbers) == 100 and numbers[0] == '+4930123400' and numbers[5] == '+4930123405'
    assert numbers[-1] == '+4930123499'
    assert rules.block_numbers('+49301234', '10-12') == ['+4930123410', '+4930123411', '+4930123412']


@pytest.mark.parametrize('ddi, ddi_range, inside', [
    ('5', '0-9', True), ('05', '0-9', False), ('10', '0-9', False),
    ('05', '00-99', True), ('5', '00-99', False), ('19', '10-19', True), ('20', '10-19', False),
    ('a', '0-9', False), ('', '0-9', False),
])
def test_ddi_in_range(ddi, ddi_range, inside):
    assert rules.ddi_in_range(ddi, ddi_range) is inside


# Internal ranges --------------------------------------------------------------------------------

@pytest.mark.parametrize('raw', ['100-199', '10-99', '2000-2999', '5-5'])
def test_internal_range_accepts(raw):
    assert rules.internal_range(raw) == raw


@pytest.mark.parametrize('raw', ['100-99', '199-100', '100', '100-1a9', '100 - 199', ''])
def test_internal_range_rejects(raw):
    rejects(rules.internal_range, raw, 'internal_range')


def test_in_internal_ranges():
    ranges = ['100-199', '2000-2099']
    assert rules.in_internal_ranges('150', ranges)
    assert rules.in_internal_ranges('2050', ranges)
    assert not rules.in_internal_ranges('200', ranges)
    assert not rules.in_internal_ranges('1500', ranges)   # four digits are not in 100-199
    assert not rules.in_internal_ranges('20', ranges)
    assert rules.in_internal_ranges('42', [])              # no ranges configured: everything allowed


# Dates, time zones -------------------------------------------------------------------------------

def test_iso_date():
    assert rules.iso_date('2025-03-14') == '2025-03-14'
    assert rules.iso_date(datetime.date(2025, 3, 14)) == '2025-03-14'
    assert rules.iso_date(' 2025-03-14 ') == '2025-03-14'


@pytest.mark.parametrize('raw', ['14.03.2025', '2025-02-30', '2025-13-01', 'morgen', ''])
def test_iso_date_rejects(raw):
    assert rejects(rules.iso_date, raw, 'date').field == 'porting_date'


def test_iso_date_with_a_timestamp_gives_a_date_or_fails():
    try:
        value = rules.iso_date(datetime.datetime(2025, 3, 14, 8, 0))
    except RuleError:
        return
    assert value == '2025-03-14'


@pytest.mark.parametrize('raw', ['Europe/Berlin', 'Europe/Vienna', 'UTC', 'America/New_York'])
def test_timezone_accepts(raw):
    assert rules.timezone(raw) == raw


@pytest.mark.parametrize('raw', ['Mars/Olympus_Mons', 'Berlin', '', '../../etc/passwd', '+01:00'])
def test_timezone_rejects(raw):
    assert rejects(rules.timezone, raw, 'timezone').field == 'timezone'


@pytest.fixture
def without_tz_data(monkeypatch):
    """zoneinfo with no tz folder and no tzdata package, as on a minimal image."""
    import sys
    import zoneinfo
    monkeypatch.setitem(sys.modules, 'tzdata', None)
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    yield
    zoneinfo.reset_tzpath()
    zoneinfo.ZoneInfo.clear_cache()


def test_timezone_without_tz_data_names_the_missing_data_and_what_to_install(without_tz_data):
    with pytest.raises(EnvironmentProblem) as raised:
        rules.timezone('Europe/Berlin')
    message = str(raised.value)
    assert raised.value.missing == 'IANA time zone data'
    assert 'not an IANA time zone' not in message
    assert 'apt-get install tzdata' in message and 'pip install tzdata' in message


def test_porting_activation_without_tz_data_is_the_same_environment_problem(without_tz_data):
    with pytest.raises(EnvironmentProblem):
        rules.porting_activation('2030-01-01', 'Europe/Berlin')


def test_timezone_without_zoneinfo_names_the_module_and_the_python_that_has_it(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'zoneinfo', None)
    with pytest.raises(EnvironmentProblem) as raised:
        rules.timezone('Europe/Berlin')
    assert raised.value.missing == 'the zoneinfo module'
    assert 'Python 3.9 and newer' in str(raised.value) and sys.executable in str(raised.value)


# Digest HA1 and PINs --------------------------------------------------------------------------------

def test_ha1_is_md5_of_user_realm_password():
    expected = hashlib.md5(b'max.muster:acme.voxplane.example:Sommer-2024!').hexdigest()
    assert rules.ha1('max.muster', 'acme.voxplane.example', 'Sommer-2024!') == expected
    # RFC 2617 section 3.5: Mufasa / testrealm@host.com / Circle Of Life
    assert rules.ha1('Mufasa', 'testrealm@host.com', 'Circle Of Life') == '939e7578ed9e3c518a452acee763bce9'
    # non-ASCII passwords are UTF-8 encoded
    assert rules.ha1('max.muster', 'acme.voxplane.example', 'Größe-42!') == hashlib.md5(
        'max.muster:acme.voxplane.example:Größe-42!'.encode('utf-8')).hexdigest()


def test_ha1_value():
    assert rules.ha1_value('939E7578ED9E3C518A452ACEE763BCE9') == '939e7578ed9e3c518a452acee763bce9'
    for bad in ('939e7578ed9e3c518a452acee763bce', '939e7578ed9e3c518a452acee763bcez', 'secret'):
        rejects(rules.ha1_value, bad, 'ha1')


@pytest.mark.parametrize('raw, expected', [('1234', '1234'), (1234, '1234'), ('12345678', '12345678')])
def test_voicemail_pin_accepts(raw, expected):
    assert rules.voicemail_pin(raw) == expected


@pytest.mark.parametrize('raw', ['123', '123456789', '12a4', '', ' 1234'])
def test_voicemail_pin_rejects(raw):
    error = rejects(rules.voicemail_pin, raw, 'pin')
    assert raw not in error.message or raw == ''   # the PIN itself is never echoed


def test_pin_hash_is_salted_with_the_mailbox():
    salt = b'voxplane-voicemail:acme:10'
    assert rules.pin_hash('acme', '10', '4711') == hashlib.pbkdf2_hmac('sha256', b'4711', salt, 20000).hex()
    assert rules.pin_hash('acme', '10', '4711') != rules.pin_hash('acme', '11', '4711')
    assert rules.pin_hash('acme', '10', '4711') != rules.pin_hash('beta', '10', '4711')


# Porting: inactive until 08:00 on the porting day (ecotel: switch-over window 8-12 h) ------------------

PORTING = {'status': 'porting', 'porting_date': '2025-03-14'}   # winter time: 08:00 CET = 07:00 UTC
PORTING_SUMMER = {'status': 'porting', 'porting_date': '2025-07-01'}   # 08:00 CEST = 06:00 UTC


@pytest.mark.parametrize('number, now, expected', [
    (PORTING, datetime.datetime(2025, 3, 13, 12, 0, tzinfo=UTC), 'porting'),       # the day before
    (PORTING, datetime.datetime(2025, 3, 13, 23, 30, tzinfo=UTC), 'porting'),      # 00:30 Berlin on the day
    (PORTING, datetime.datetime(2025, 3, 14, 6, 59, 59, tzinfo=UTC), 'porting'),   # 07:59:59 Berlin
    (PORTING, datetime.datetime(2025, 3, 14, 7, 0, 0, tzinfo=UTC), 'active'),      # 08:00:00 Berlin
    (PORTING, datetime.datetime(2025, 3, 14, 11, 0, tzinfo=UTC), 'active'),
    (PORTING, datetime.datetime(2026, 1, 1, tzinfo=UTC), 'active'),
    (PORTING_SUMMER, datetime.datetime(2025, 7, 1, 5, 59, 59, tzinfo=UTC), 'porting'),
    (PORTING_SUMMER, datetime.datetime(2025, 7, 1, 6, 0, 0, tzinfo=UTC), 'active'),
])
def test_porting_effective_status(number, now, expected):
    assert rules.effective_status(number, 'Europe/Berlin', now=now) == expected


def test_porting_effective_status_in_local_time():
    import zoneinfo
    berlin = zoneinfo.ZoneInfo('Europe/Berlin')
    assert rules.effective_status(PORTING, 'Europe/Berlin', datetime.datetime(2025, 3, 14, 7, 59, tzinfo=berlin)) == 'porting'
    assert rules.effective_status(PORTING, 'Europe/Berlin', datetime.datetime(2025, 3, 14, 8, 0, tzinfo=berlin)) == 'active'
    # the activation hour is local to the tenant: 08:00 EDT in New York is 12:00 UTC
    assert rules.effective_status(PORTING, 'America/New_York', datetime.datetime(2025, 3, 14, 11, 59, tzinfo=UTC)) == 'porting'
    assert rules.effective_status(PORTING, 'America/New_York', datetime.datetime(2025, 3, 14, 12, 0, tzinfo=UTC)) == 'active'


def test_porting_activation_moment():
    moment = rules.porting_activation('2025-03-14', 'Europe/Berlin')
    assert moment == datetime.datetime(2025, 3, 14, 7, 0, tzinfo=UTC)


def test_effective_status_of_other_states_and_of_the_real_clock():
    now = datetime.datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
    assert rules.effective_status({'status': 'active'}, 'Europe/Berlin', now) == 'active'
    assert rules.effective_status({'status': 'inactive', 'porting_date': '2000-01-01'}, 'Europe/Berlin', now) == 'inactive'
    assert rules.effective_status({}, 'Europe/Berlin', now) == 'active'
    assert rules.effective_status({'status': 'porting', 'porting_date': None}, 'Europe/Berlin', now) == 'porting'
    assert rules.effective_status({'status': 'porting', 'porting_date': '2000-01-03'}, 'Europe/Berlin') == 'active'
    assert rules.effective_status({'status': 'porting', 'porting_date': '2999-01-03'}, 'Europe/Berlin') == 'porting'


# Dialled strings with a German dial plan -------------------------------------------------------------

@pytest.mark.parametrize('dialled, expected', [
    ('030123456', '+4930123456'),
    ('004930123456', '+4930123456'),
    ('+4930123456', '+4930123456'),
    ('01711234567', '+491711234567'),
    ('00431234567', '+431234567'),
    ('08001234567', '+498001234567'),
    ('10', None), ('100', None),            # internal numbers
    ('110', None), ('112', None),           # emergency numbers are not outside numbers here
    ('*78', None), ('*72', None), ('#31#030123', None),
    ('', None), (None, None),
    ('0301234567890', '+49301234567890'),   # 12 national digits
    ('03012345678901', None),               # 13 national digits
    ('0049030123456', None),                # leading 0 after 49
    ('0110', None),                         # too short
])
def test_normalise_dialled(dialled, expected):
    assert rules.normalise_dialled(dialled, DE) == expected


def test_is_international():
    assert not rules.is_international('+4930123456', '49')
    assert rules.is_international('+431234567', '49')
    # premium-rate and satellite numbers keep their place at home or abroad
    assert not rules.is_international('+49900123456', '49')
    assert rules.is_international('+8816123456', '49')


@pytest.mark.parametrize('number, country_code, expected', [
    # national: landlines, mobiles, shared-cost 0180 and free 0800 are not premium-rate
    ('+4930123456', '49', 'national'), ('+491711234567', '49', 'national'), ('+491805123456', '49', 'national'),
    ('+498001234567', '49', 'national'), ('+4990612345', '49', 'national'),      # +49 906 Donauwörth
    ('+49911123456', '49', 'national'),                                          # +49 911 Nürnberg
    ('+4315550100', '43', 'national'),
    # international
    ('+4315550100', '49', 'international'), ('+12125550100', '49', 'international'),
    ('+4930123456', '43', 'international'),
    # German premium-rate ranges, at home and abroad (premium wins over international)
    ('+49900123456', '49', 'premium'), ('+4913712345', '49', 'premium'), ('+4913812345', '49', 'premium'),
    ('+4911833', '49', 'premium'), ('+49193010', '49', 'premium'), ('+497001234567', '49', 'premium'),
    ('+49900123456', '43', 'premium'), ('+49900123456', '1', 'premium'),
    # ITU-T E.164 global services
    ('+979123456789', '49', 'premium'), ('+80012345678', '49', 'international'), ('+80812345678', '49', 'premium'),
    ('+870773123456', '49', 'satellite'), ('+8816123456', '49', 'satellite'), ('+88234512345', '49', 'satellite'),
    ('+88351001234', '49', 'satellite'), ('+881612345', '881', 'satellite'),
])
def test_call_class(number, country_code, expected):
    assert rules.call_class(number, country_code) == expected
    assert expected in rules.CALL_CLASSES


def test_every_call_class_but_national_needs_a_permission():
    assert set(rules.CALL_CLASS_PERMISSION) == set(rules.CALL_CLASSES)
    assert rules.CALL_CLASS_PERMISSION == {'national': None, 'international': 'international_calls',
                                           'premium': 'premium_calls', 'satellite': 'satellite_calls'}


@pytest.mark.parametrize('raw, expected', [
    (None, None), ('', None), ('  ', None), (1, 1), (20, 20), ('20', 20), (' 7 ', 7),
    (rules.CALL_LIMIT_MAX, rules.CALL_LIMIT_MAX),
])
def test_call_limit_accepts(raw, expected):
    assert rules.call_limit(raw, 'max_outside_calls') == expected


@pytest.mark.parametrize('raw, rule', [
    (0, 'range'), ('0', 'range'), (-1, 'range'), ('-1', 'type'), (rules.CALL_LIMIT_MAX + 1, 'range'), (True, 'type'),
    (2.5, 'type'), ('many', 'type'), ([3], 'type'),
])
def test_call_limit_refuses(raw, rule):
    with pytest.raises(RuleError) as info:
        rules.call_limit(raw, 'max_outside_calls')
    assert (info.value.field, info.value.rule) == ('max_outside_calls', rule)


# The other field rules ---------------------------------------------------------------------------------

@pytest.mark.parametrize('raw', ['acme', 'acme-gmbh', 'a', 'a1', 'x' * 63])
def test_slug_accepts(raw):
    assert rules.slug(raw) == raw


@pytest.mark.parametrize('raw', ['Acme', '-acme', 'acme-', 'ac_me', 'ac me', 'x' * 64, '', 'müller'])
def test_slug_rejects(raw):
    rejects(rules.slug, raw, 'slug')


def test_hostname():
    assert rules.hostname('ACME.Voxplane.Example.') == 'acme.voxplane.example'
    for bad in ('localhost', 'a..example', '-a.example', 'a_b.example', 'acme.voxplane.example/x', ''):
        rejects(rules.hostname, bad, 'hostname')


def test_address():
    assert rules.address('192.0.2.10') == '192.0.2.10'
    assert rules.address('2001:0db8:0000::1') == '2001:db8::1'
    assert rules.address('SIP.Carrier.Example') == 'sip.carrier.example'
    rejects(rules.address, 'not an address', 'address')
    rejects(rules.address, 'sip_carrier.example', 'address')


def test_address_rejects_a_mistyped_ip():
    rejects(rules.address, '192.0.2.300', 'address')


# The tenant's media server (voicemail): sip:host[:port] -----------------------------------------------

@pytest.mark.parametrize('raw, expected', [
    ('sip:192.0.2.50', 'sip:192.0.2.50:5060'),                       # the port defaults to 5060
    ('sip:192.0.2.50:5080', 'sip:192.0.2.50:5080'),
    ('192.0.2.50', 'sip:192.0.2.50:5060'),                           # sip: may be left out
    ('127.0.0.3:5090', 'sip:127.0.0.3:5090'),
    ('SIP:Media.ACME.Example', 'sip:media.acme.example:5060'),       # scheme and host are case-insensitive
    ('sip:media.acme.example.:5062', 'sip:media.acme.example:5062'),
    (' sip:media.acme.example:5060 ', 'sip:media.acme.example:5060'),
    ('sip:[2001:db8::5]', 'sip:[2001:db8::5]:5060'),                  # IPv6 in brackets
    ('sip:[2001:0DB8:0000::5]:5080', 'sip:[2001:db8::5]:5080'),      # ... in its canonical form
    ('[::1]:5090', 'sip:[::1]:5090'),
    ('sip:media.acme.example:1', 'sip:media.acme.example:1'),
    ('sip:media.acme.example:65535', 'sip:media.acme.example:65535'),
])
def test_sip_server_accepts_and_canonicalises(raw, expected):
    assert rules.sip_server(raw) == expected
    assert rules.sip_server(expected) == expected                    # the canonical form is a fixed point


@pytest.mark.parametrize('raw', [
    '',
    'sip:',
    'sip:media.acme.example:0',              # port out of range
    'sip:media.acme.example:65536',
    'sip:media.acme.example:',               # a colon without a port
    'sip:media.acme.example:abc',
    'sip:media.acme.example:+5060',
    'sip:voicemail@media.acme.example',      # a user part: the server, not a mailbox
    'sip:media.acme.example;transport=tcp',  # URI parameters
    'sip:media.acme.example:5060;lr',
    'sips:media.acme.example',               # another scheme
    'http://media.acme.example',
    'sip:192.0.2.300',                       # a mistyped IP address
    'sip:media_server.acme.example',
    'sip:localhost',                         # one label is no DNS name
    'sip:2001:db8::5',                       # IPv6 without brackets is ambiguous with a port
    'sip:2001:db8::5:5080',
    'sip:[2001:db8::5',                      # unbalanced bracket
    'sip:[2001:db8::5]5080',
    'sip:[2001:db8::5]:',
    'sip:[]',
    'sip:[192.0.2.50]',                      # brackets are for IPv6 only
    'sip:[media.acme.example]:5060',
    'sip:media.acme.example:5060:5061',
])
def test_sip_server_rejects(raw):
    error = rejects(rules.sip_server, raw, 'sip_server')
    assert error.field == 'media_server'
    assert repr(raw.strip()) in error.message


def test_sip_server_names_the_field_it_checks_and_rejects_non_strings():
    assert rejects(rules.sip_server, 'sip:[::1', 'sip_server', 'other').field == 'other'
    assert rejects(rules.sip_server, 5060, 'type').field == 'media_server'
    assert rejects(rules.sip_server, None, 'type').field == 'media_server'


def test_email():
    assert rules.email('max.muster@acme.example') == 'max.muster@acme.example'
    for bad in ('max.muster', 'max@', '@acme.example', 'max muster@acme.example', 'max@acme'):
        rejects(rules.email, bad, 'email')


def test_choice_and_bounded_int():
    assert rules.choice('best', rules.SEAT_PACKAGES, 'seat') == 'best'
    assert 'smart, best' in rejects(rules.choice, 'premium', 'choice', rules.SEAT_PACKAGES, 'seat').message
    assert rules.bounded_int(20, 'ring_time', 5, 300) == 20
    rejects(rules.bounded_int, 4, 'range', 'ring_time', 5, 300)
    rejects(rules.bounded_int, 301, 'range', 'ring_time', 5, 300)
    rejects(rules.bounded_int, True, 'type', 'ring_time', 5, 300)
    rejects(rules.bounded_int, '20', 'type', 'ring_time', 5, 300)


def test_seed_vocabularies():
    assert rules.SEAT_PACKAGES == ('smart', 'best')                            # ecotel
    assert rules.CLIENT_ADDON == 'client_complete'                             # ecotel "Client Complete"
    assert set(rules.ROLES) == {'end_user', 'admin', 'account_admin', 'call_details'}   # Voys


def test_language_of_the_prompts():
    assert rules.LANGUAGES == ('de', 'en')
    assert rules.language('de') == 'de' and rules.language(' en ') == 'en'
    error = rejects(rules.language, 'fr', 'choice')
    assert error.field == 'language' and error.message == "'fr' is not one of de, en"
    rejects(rules.language, 'DE', 'choice')
    assert rejects(rules.language, 7, 'type', 'voicemail.language').field == 'voicemail.language'


# IVR menus, queues, conference rooms, schedules (issue 22) --------------------------------------

@pytest.mark.parametrize('raw, expected', [('1', '1'), (1, '1'), (0, '0'), ('*', '*'), ('#', '#'), (' 9 ', '9')])
def test_a_menu_key_is_a_key_of_a_phone(raw, expected):
    assert rules.menu_key(raw) == expected


@pytest.mark.parametrize('raw', ['10', 'a', '', '**', True, 12])
def test_a_menu_key_is_one_key(raw):
    error = rejects(rules.menu_key, raw, 'type' if raw is True else 'menu_key', 'keys')
    assert error.field == 'keys'


@pytest.mark.parametrize('raw, end, minutes', [('08:00', False, 480), ('8:30', False, 510), ('23:59', False, 1439),
                                               ('00:00', False, 0), ('24:00', True, 1440)])
def test_a_clock_time_is_minutes_after_midnight(raw, end, minutes):
    assert rules.clock_time(raw, 'from', end=end) == minutes
    assert rules.clock_text(minutes) == ('%05s' % raw).replace(' ', '0')


@pytest.mark.parametrize('raw, end', [('24:00', False), ('24:01', True), ('8', False), ('08:60', False), ('8am', False)])
def test_a_clock_time_is_hh_mm_of_one_day(raw, end):
    assert 'HH:MM' in rejects(rules.clock_time, raw, 'clock_time', 'hours[0].from', end=end).message


def test_opening_hours_are_normalised_monday_first():
    assert rules.opening_hours({'days': ['fri', 'Monday', 'tue', 'mon'], 'from': '8:00', 'to': '24:00'}) == \
        {'days': ['mon', 'tue', 'fri'], 'from': '08:00', 'to': '24:00'}
    assert rules.opening_hours({'days': 'sat', 'from': '10:00', 'to': '14:00'})['days'] == ['sat']


@pytest.mark.parametrize('entry, field, rule', [
    ({'days': [], 'from': '08:00', 'to': '17:00'}, 'hours[0].days', 'opening_hours'),
    ({'days': ['feiertag'], 'from': '08:00', 'to': '17:00'}, 'hours[0].days', 'weekday'),
    ({'days': ['mon'], 'from': '18:00', 'to': '08:00'}, 'hours[0].to', 'opening_hours'),
    ({'days': ['mon'], 'from': '08:00', 'to': '08:00'}, 'hours[0].to', 'opening_hours'),
    ({'days': ['mon'], 'to': '08:00'}, 'hours[0].from', 'type'),
    ('mon 8-17', 'hours[0]', 'opening_hours'),
])
def test_opening_hours_that_are_none(entry, field, rule):
    assert rejects(rules.opening_hours, entry, rule, 'hours[0]').field == field


def test_a_conference_pin_follows_the_pin_rule_and_is_stored_salted_by_the_room():
    assert rules.conference_pin(4711) == '4711'
    assert rejects(rules.conference_pin, '47', 'pin').message == 'a conference PIN has 4 to 8 digits'
    rejects(rules.conference_pin, '47a1', 'pin', 'moderator_pin')
    one = rules.conference_pin_hash('acme', '650', '4711')
    assert one == rules.conference_pin_hash('acme', '650', '4711') and len(one) == 64
    assert one != rules.conference_pin_hash('acme', '651', '4711') != rules.conference_pin_hash('beta', '650', '4711')


def test_schedules_and_the_new_destinations_are_services():
    assert rules.service_destination('schedule:hours') == ('schedule', 'hours')
    assert rules.ADDONS == ('client_complete', 'ivr', 'conference')
    assert rules.QUEUE_STRATEGIES == ('ring_all', 'round_robin', 'longest_idle', 'sequential')


def test_an_unquoted_time_read_by_yaml_is_the_same_minutes():
    import yaml
    assert yaml.safe_load('from: 8:30')['from'] == 510         # YAML 1.1: a sexagesimal number
    assert yaml.safe_load('from: 08:30')['from'] == '08:30'    # (not with a leading 0)
    assert rules.clock_time(510, 'from') == 510
    assert rules.opening_hours({'days': ['mon'], 'from': 480, 'to': 1020}) == {'days': ['mon'], 'from': '08:00', 'to': '17:00'}
    rejects(rules.clock_time, 1440, 'clock_time', 'from')
