# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the KSR double itself, and of the placeholder KEMI script run against it."""

import json
import os
import sys

import pytest

from ksr_double.ksr_double import DEFAULT_API_LIST, MEDIA_API_LIST, KSRDouble

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
KEMI_SCRIPT = os.path.join(REPO, 'kemi', 'voxplane_kemi.py')


@pytest.fixture
def double():
    return KSRDouble()


def test_exposes_exactly_the_api_list(double):
    with open(DEFAULT_API_LIST) as handle:
        api = json.load(handle)
    expected = {('%s.%s' % (f['module'], f['name'])) if f['module'] else f['name'] for f in api['functions']}
    assert set(double.functions()) == expected
    ksr = double.module
    for name in expected:
        owner = ksr
        for part in name.split('.'):
            owner = getattr(owner, part)
        assert callable(owner)
    # the modules a router uses are there, and nothing that the cfg does not load
    assert callable(ksr.tm.t_relay) and callable(ksr.registrar.save) and callable(ksr.auth.pv_auth_check)
    assert callable(ksr.nathelper.nat_uac_test)  # nathelper is on by default (NAT traversal)
    assert not hasattr(ksr, 'rtpengine') and not hasattr(ksr, 'dispatcher')


def test_the_media_list_is_the_default_one_plus_the_media_modules(double):
    """api_list_media.json: the role's cfg with the media relay, TLS and secure WebSocket
    loads four modules more (tests/sip/test_nat_media.py checks it against a live Kamailio)."""
    media = KSRDouble(MEDIA_API_LIST)
    extra = set(media.functions()) - set(double.functions())
    assert set(double.functions()) <= set(media.functions())
    assert {name.split('.')[0] for name in extra} == {'rtpengine', 'tls', 'websocket', 'xhttp'}
    assert {'rtpengine.rtpengine_offer', 'rtpengine.rtpengine_answer', 'rtpengine.rtpengine_delete0'} <= extra
    assert media.api['kamailio_version'] == double.api['kamailio_version']


def test_unknown_names_raise_attribute_error_like_kamailio(double):
    ksr = double.module
    with pytest.raises(AttributeError, match=r"^module 'KSR' has no attribute 'nosuchmodule'$"):
        ksr.nosuchmodule  # pylint: disable=pointless-statement
    with pytest.raises(AttributeError, match=r"^module 'KSR.tm' has no attribute 't_relay_typo'$"):
        ksr.tm.t_relay_typo  # pylint: disable=pointless-statement
    with pytest.raises(AttributeError):
        ksr.x.modf  # pylint: disable=pointless-statement
    assert double.calls == []


def test_records_calls_and_scripted_returns(double):
    ksr = double.module
    assert ksr.tm.t_relay() == 1                 # int: success by default
    assert ksr.is_myself_ruri() is False         # bool: False by default
    assert ksr.pvx.xavp_get('x') is None         # xval: None by default
    double.returns['registrar.lookup'] = -1
    assert ksr.registrar.lookup('location') == -1
    double.returns['tm.t_relay'] = lambda: -7
    assert ksr.tm.t_relay() == -7
    ksr.sl.sl_send_reply(404, 'Not Found')
    assert double.called('sl.sl_send_reply') == [(404, 'Not Found')]
    assert double.called('registrar.lookup') == [('location',)]
    assert double.call_names()[:3] == ['tm.t_relay', 'is_myself_ruri', 'pvx.xavp_get']
    ksr.info('hello\n')
    ksr.err('bad\n')
    assert double.logs == [('info', 'hello\n'), ('err', 'bad\n')]
    double.reset()
    assert double.calls == [] and double.logs == []


def test_pv_functions_behave_like_kamailio(double):
    pv = double.module.pv
    assert pv.get('$au') is None                 # unset: None, as in Kamailio
    assert pv.gete('$au') == ''
    assert pv.getw('$au') == '<null>'
    assert pv.getvs('$au', 'dflt') == 'dflt'
    assert pv.getvn('$var(n)', 5) == 5
    assert pv.is_null('$au') is True
    double.pv['$rm'] = 'INVITE'
    assert pv.get('$rm') == 'INVITE'
    assert double.module.is_INVITE() is True and double.module.is_REGISTER() is False
    assert double.module.is_method('INVITE') is True
    pv.sets('$var(x)', 'abc')
    pv.seti('$var(n)', 3)
    assert pv.get('$var(x)') == 'abc' and pv.get('$var(n)') == 3
    pv.unset('$var(x)')
    assert pv.get('$var(x)') is None


def test_argument_checks_match_app_python3(double):
    ksr = double.module
    # measured in Kamailio 5.6.3: SystemError caused by PyArg_ParseTuple's TypeError
    with pytest.raises(SystemError, match='returned a result with an exception set') as info:
        ksr.textops.search(5)
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(SystemError):
        ksr.textops.search()
    with pytest.raises(SystemError):
        ksr.sl.sl_send_reply(200, 'OK', 'extra')
    with pytest.raises(SystemError):
        ksr.maxfwd.process_maxfwd('10')
    assert ksr.maxfwd.process_maxfwd(True) == 1  # bool is an int
    assert ksr.is_OPTIONS(1, 2) is False         # no parameters: extra arguments are ignored
    assert double.called('is_OPTIONS') == [()]
    # failed calls are not recorded (they never reached Kamailio)
    assert double.called('textops.search') == []


def test_installed_makes_import_ksr_return_the_double(double):
    previous = sys.modules.get('KSR')
    with double.installed() as ksr:
        import KSR  # pylint: disable=import-error,import-outside-toplevel
        assert KSR is ksr is double.module
    assert sys.modules.get('KSR') is previous
