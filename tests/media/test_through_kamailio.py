# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IVR menus through the whole PBX: Kamailio (the role, tests/lab/playbooks/tenants.yml), rtpengine
and the media service on one directory (lab.media.pbx_with_media). Outside callers come from the
trunk's address, phones register with digest; what each side hears is checked by frequency
(lab.audio: the caller sends the test sequence, the phones answer with the other sequence).

- a number whose target is menu 700: the caller hears the menu, presses 1 (RFC 4733); the media
  service calls extension 11 back through Kamailio (X-Voxplane-Origin), Kamailio rings Bert's
  registered phone, Bert answers, the two hear each other through rtpengine and the service;
- business hours with a fixed clock: a number whose target is a schedule (open: menu 700, closed:
  Cora's extension 12). The router takes the time of its calls from the lab's clock file (router
  setting ``clock_file``, docs/routing.md): Monday 10:00 in Berlin the caller hears the menu and
  Cora's phone never rings, Monday 20:00 Cora's phone rings and the caller hears her, no menu;
- direct dial from a menu (``direct_dial``): the caller types Bert's internal number 11 and
  reaches his phone, both hear each other;
- a number pointed at a menu by ``voxplane.pbx.tenant_config`` (a real ansible-playbook run,
  tests/media/ivr_number.yml): the call before it rings Bert, the next call after it is answered
  by the menu;
- queue 680's members log out and in with *45/*44 from their registered phones (the router writes
  the login) and the queue follows, also for a caller already waiting.
"""

import os
import re
import shutil
import tempfile
import time

import pytest

from lab import audio
from lab.directories import use_collection
from lab.media import missing_prerequisites, pbx_with_media
from lab.net import pick_loopback_address
from lab.phone import Phone, poll, wait

ACME = 'acme.sip.test'
HERE = os.path.dirname(os.path.abspath(__file__))
NUMBER_PLAYBOOK = os.path.join(HERE, 'ivr_number.yml')
MENU_NUMBER = '+493099990010'  # menu 700 (1: Bert)
HOURS_NUMBER = '+493099990011'  # schedule office: open menu 700, closed Cora (12)
DIRECT_NUMBER = '+493099990012'  # menu 701, direct dial of internal numbers
DOCUMENT_NUMBER = '+493099990013'  # Bert (11), until the test's tenant_config points it at menu 701
CALLER = '+49891234567'
# Monday 7 December 2026 in Berlin (UTC+1): office hours are Monday to Friday 08:00-17:00.
IN_HOURS = '2026-12-07T10:00:00+01:00'
OUT_OF_HOURS = '2026-12-07T20:00:00+01:00'
QUEUE = '680'
MUSIC = (523, 659, 784, 1047)   # media_prompts.TONES['music']


@pytest.fixture(scope='module')
def pbx(tmp_path_factory):
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    # The routing clock: a file the kamailio user can read and only root can write (the router
    # refuses one others may write), set before the deployment so that Kamailio starts with it.
    clock_dir = tempfile.mkdtemp(prefix='voxplane-clock-')
    os.chmod(clock_dir, 0o755)
    clock = os.path.join(clock_dir, 'clock')
    set_clock(clock, IN_HOURS)
    try:
        with pbx_with_media(prefix='voxplane-ivr-pbx-',
                            kamailio_variables={'kamailio_children': 1,
                                                'kamailio_router_settings': {'clock_file': clock}}) as (kamailio, media, _relay):
            use_collection()
            from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
            from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory
            with Directory(kamailio.directory_path).transaction() as txn:
                reconcile(txn, 'acme', {'licences': {'seats': {'best': 20}, 'addons': {'ivr': 2}}}, {
                    'ivr': {'700': {'name': 'Zentrale', 'keys': {'1': '11'}, 'timeout': 5},
                            '701': {'name': 'Durchwahl', 'keys': {'0': '10'}, 'timeout': 3, 'direct_dial': True}},
                    # Anna (10) and Cora (12) answer the queue, Anna first; they log in and out from their phones.
                    'queue': {QUEUE: {'name': 'Support', 'strategy': 'sequential', 'members': [{'extension': '10'}, {'extension': '12'}],
                                      'member_ring_time': 5, 'wrapup_time': 0, 'max_wait': 60}},
                })
                reconcile(txn, 'acme', None, {'schedule': {'office': {
                    'timezone': 'Europe/Berlin', 'open': '700', 'closed': '12',
                    'hours': [{'days': ['mon', 'tue', 'wed', 'thu', 'fri'], 'from': '08:00', 'to': '17:00'}]}}})
                reconcile(txn, 'acme', None, {'number': {MENU_NUMBER: {'target': '700'},
                                                         HOURS_NUMBER: {'target': 'schedule:office'},
                                                         DIRECT_NUMBER: {'target': '701'},
                                                         DOCUMENT_NUMBER: {'target': '11'}}})
            poll(1.2)  # every worker reloads within reload_check_ms
            folder = tmp_path_factory.mktemp('tones')
            kamailio.tones = audio.write_tones(str(folder / 'tones.wav'), [(0, 300)] + list(audio.SEQUENCE) + [(0, 300)])
            kamailio.other_tones = audio.write_tones(str(folder / 'other.wav'),
                                                     [(0, 300)] + list(audio.OTHER_SEQUENCE) + [(0, 300)])
            kamailio.clock = clock
            yield kamailio, media
    finally:
        shutil.rmtree(clock_dir, ignore_errors=True)


@pytest.fixture(scope='module')
def caller(pbx):
    """An outside caller: a phone on the trunk's address and port, one for the module (the port it
    takes is free again only once PJSIP let go of the transport)."""
    kamailio, _media = pbx
    phone = Phone(kamailio.trunk, user=CALLER, port=kamailio.trunk_port)
    yield phone
    phone.close()


@pytest.fixture
def phones():
    """Opens lab phones for one test; at the end each unregisters and is closed (its port and its
    transport free for the next test)."""
    opened = []

    def open_phone(address, **kwargs):
        phone = Phone(address, **kwargs)
        opened.append(phone)
        return phone
    yield open_phone
    for phone in opened:
        if phone.registered is not None:
            phone.unregister()
        phone.close()


def set_clock(path, moment):
    """The time the router routes the next call at (its clock file, mode 0644)."""
    with open(path + '.new', 'w') as handle:
        handle.write(moment + '\n')
    os.chmod(path + '.new', 0o644)
    os.replace(path + '.new', path)


def heard(path, tones):
    try:
        return audio.has_sequence(path, tones)[0]
    except (OSError, ValueError):
        return False


def menu_prompt(media, call, timeout=20, after_ms=0):
    """Where the caller heard the menu's built-in prompt to its end (the tenant speaks German), or None."""
    return call.wait_heard('%s/de/menu_choose.wav' % media.prompts_dir, timeout=timeout, after_ms=after_ms)


def registered(phones, kamailio, user, tmp_path):
    """A phone registered as <user>.desk on a fresh loopback address that answers every call with the
    other tone sequence and records what it hears."""
    os.makedirs(str(tmp_path / user), exist_ok=True)
    phone = phones(pick_loopback_address(), user=user)
    assert phone.register('%s:%d' % kamailio.target, ACME, '%s-desk-pw' % user, answer=None,
                          username='%s.desk' % user), kamailio.log_tail(20)
    phone.answer_calls(play=kamailio.other_tones, record_dir=tmp_path / user)
    return phone


def outside_call(caller, kamailio, number, record):
    """A call of the outside ``caller`` to ``number``."""
    return caller.dial('sip:%s@%s' % (number, ACME), '%s:%d' % kamailio.target, record=record,
                       from_uri='sip:%s@carrier.example' % CALLER)


def assert_both_hear(kamailio, media, call, leg):
    """The caller sends the test sequence and hears the phone's; the phone hears the caller's."""
    assert leg.wait_answered(5) and leg.wait_media(5)
    call.play(kamailio.tones)
    assert wait(lambda: heard(leg.record_file, audio.SEQUENCE), 15), \
        (audio.has_sequence(leg.record_file)[1], media.log_tail(20))
    assert wait(lambda: heard(call.record_file, audio.OTHER_SEQUENCE), 10), \
        audio.has_sequence(call.record_file, audio.OTHER_SEQUENCE)[1]


def test_a_menu_key_reaches_a_registered_phone_through_kamailio(pbx, caller, phones, tmp_path):
    kamailio, media = pbx
    bert = registered(phones, kamailio, 'bert', tmp_path)
    call = outside_call(caller, kamailio, MENU_NUMBER, tmp_path / 'caller.wav')
    assert call.wait_answered(15), (call.final, kamailio.log_tail(20), media.log_tail(20))
    assert menu_prompt(media, call), media.log_tail(20)
    call.dtmf('1')
    leg = bert.wait_incoming(1, timeout=15)
    assert leg is not None, (kamailio.log_tail(30), media.log_tail(20))
    assert re.search(r'^X-Voxplane-Origin:', leg.request, re.MULTILINE | re.IGNORECASE) is None  # removed by the router
    assert_both_hear(kamailio, media, call, leg)
    leg.hangup()
    assert call.wait_ended(10) == (200, 'Normal call clearing'), media.log_tail(10)


def test_business_hours_with_a_fixed_clock_choose_the_menu_then_the_out_of_hours_extension(pbx, caller, phones, tmp_path):
    kamailio, media = pbx
    cora = registered(phones, kamailio, 'cora', tmp_path)

    # Monday 10:00: open, the menu answers; Cora's phone never rings.
    set_clock(kamailio.clock, IN_HOURS)
    call = outside_call(caller, kamailio, HOURS_NUMBER, tmp_path / 'in-hours.wav')
    assert call.wait_answered(15), (call.final, kamailio.log_tail(20), media.log_tail(20))
    assert menu_prompt(media, call), media.log_tail(20)
    assert cora.incoming == []
    assert not heard(call.record_file, audio.OTHER_SEQUENCE)
    call.hangup()
    call.wait_ended(5)

    # Monday 20:00: closed, Cora's phone rings and the caller hears her, not the menu.
    set_clock(kamailio.clock, OUT_OF_HOURS)
    call = outside_call(caller, kamailio, HOURS_NUMBER, tmp_path / 'out-of-hours.wav')
    leg = cora.wait_incoming(1, timeout=15)
    assert leg is not None, (call.final, kamailio.log_tail(30))
    assert call.wait_answered(10), call.final
    assert_both_hear(kamailio, media, call, leg)
    assert menu_prompt(media, call, timeout=1) is None
    call.hangup()
    call.wait_ended(5)
    set_clock(kamailio.clock, IN_HOURS)


def test_a_menu_with_direct_dial_reaches_the_extension_the_caller_types(pbx, caller, phones, tmp_path):
    kamailio, media = pbx
    bert = registered(phones, kamailio, 'bert', tmp_path)
    call = outside_call(caller, kamailio, DIRECT_NUMBER, tmp_path / 'caller.wav')
    assert call.wait_answered(15), (call.final, kamailio.log_tail(20), media.log_tail(20))
    assert menu_prompt(media, call), media.log_tail(20)
    call.dtmf('11')  # no key of menu 701 (its only key, 0, leads to Anna): Bert's internal number
    leg = bert.wait_incoming(1, timeout=15)
    assert leg is not None, (kamailio.log_tail(30), media.log_tail(20))
    assert_both_hear(kamailio, media, call, leg)
    leg.hangup()
    assert call.wait_ended(10) == (200, 'Normal call clearing'), media.log_tail(10)


def test_a_number_pointed_at_a_menu_by_tenant_config_is_answered_by_the_menu_on_the_next_call(pbx, caller, phones, tmp_path):
    kamailio, media = pbx
    bert = registered(phones, kamailio, 'bert', tmp_path)
    variables = {'directory': kamailio.directory_path, 'tenant': 'acme', 'number': DOCUMENT_NUMBER}

    # Before: the number rings Bert.
    call = outside_call(caller, kamailio, DOCUMENT_NUMBER, tmp_path / 'before.wav')
    leg = bert.wait_incoming(1, timeout=15)
    assert leg is not None, (call.final, kamailio.log_tail(30))
    assert call.wait_answered(10), call.final
    assert_both_hear(kamailio, media, call, leg)
    call.hangup()
    call.wait_ended(5)

    run = kamailio.playbook(NUMBER_PLAYBOOK, dict(variables, target='701'))
    assert run.rc == 0 and run.changed == 1, run
    poll(1.2)  # every worker's next generation check (reload_check_ms)

    # The next call: the media service answers with the menu, Bert's phone does not ring.
    call = outside_call(caller, kamailio, DOCUMENT_NUMBER, tmp_path / 'after.wav')
    assert call.wait_answered(15), (call.final, kamailio.log_tail(20), media.log_tail(20))
    assert menu_prompt(media, call), media.log_tail(20)
    assert len(bert.incoming) == 1, [c.request.split('\r\n', 1)[0] for c in bert.incoming]
    call.hangup()
    call.wait_ended(5)

    run = kamailio.playbook(NUMBER_PLAYBOOK, dict(variables, target='11'))  # as the next run expects it
    assert run.rc == 0 and run.changed == 1, run


def tone_heard(call, frequency, timeout, ms=300):
    """Wait until the call's recording holds ``frequency`` for at least ``ms``."""
    def found():
        try:
            return any(f == frequency and length >= ms for f, _at, length in audio.tone_segments(call.record_file, [frequency]))
        except (OSError, ValueError):
            return False
    return wait(found, timeout)


def feature_code(phone, code, tmp_path):
    """Dial ``code`` from the registered phone; the router's final answer (code, reason)."""
    call = phone.dial('sip:%s@%s' % (code, ACME), record=tmp_path / ('%s-%s.wav' % (phone.user, code.strip('*'))))
    return call.wait_ended(10)


def test_queue_members_log_in_and_out_by_feature_code_and_the_queue_follows(pbx, tmp_path):
    kamailio, media = pbx
    proxy = '%s:%d' % kamailio.target
    tones = {'anna': 600, 'cora': 1450}
    members = {}
    for user in ('anna', 'cora'):
        member = Phone(media.caller, user=user)
        tone = audio.write_tones(str(tmp_path / ('%s.wav' % user)), [(tones[user], 1000)])
        assert member.register(proxy, ACME, '%s-desk-pw' % user, answer='answer', play=tone, username='%s.desk' % user), \
            kamailio.log_tail(20)
        member.answer_record_dir = tmp_path
        members[user] = member
    mia = Phone(media.caller, user='mia')
    assert mia.register(proxy, ACME, 'mia-desk-pw', answer='busy', username='mia.desk')
    anna, cora = members['anna'], members['cora']

    def queue_call(name):
        call = mia.dial('sip:%s@%s' % (QUEUE, ACME), record=tmp_path / ('%s.wav' % name))
        assert call.wait_answered(15), (call.final, kamailio.log_tail(20), media.log_tail(20))
        return call

    def answered(call, member, user, count):
        """``member``'s phone rang (its ``count``-th call) and answered: the caller hears its tone, then it hangs up."""
        leg = member.wait_incoming(count, timeout=15)
        assert leg is not None and leg.wait_answered(5), (kamailio.log_tail(30), media.log_tail(20))
        assert re.search(r'^X-Voxplane-Origin:', leg.request, re.MULTILINE | re.IGNORECASE) is None
        assert tone_heard(call, tones[user], 15), audio.tone_segments(call.record_file, list(tones.values()))
        leg.hangup()
        assert call.wait_ended(10) == (200, 'Normal call clearing'), media.log_tail(10)

    try:
        # Anna logs out: the queue skips her and rings Cora.
        assert feature_code(anna, '*45' + QUEUE, tmp_path) == (603, 'Logged Out Of Queue %s' % QUEUE)
        call = queue_call('caller-anna-out')
        answered(call, cora, 'cora', 1)
        assert anna.incoming == []
        # Anna logs in again: sequential, so she is rung first.
        assert feature_code(anna, '*44' + QUEUE, tmp_path) == (603, 'Logged In To Queue %s' % QUEUE)
        call = queue_call('caller-anna-in')
        answered(call, anna, 'anna', 1)
        assert len(cora.incoming) == 1
        # Both log out (*45 without a number: every queue of theirs); a caller waits with the music and
        # nobody rings; Anna logs in while the caller waits, and the caller's next offer rings her.
        assert feature_code(anna, '*45', tmp_path) == (603, 'Logged Out Of Queue %s' % QUEUE)
        assert feature_code(cora, '*45' + QUEUE, tmp_path) == (603, 'Logged Out Of Queue %s' % QUEUE)
        call = queue_call('caller-waiting')
        assert tone_heard(call, MUSIC[0], 10, ms=200), audio.tone_segments(call.record_file, list(MUSIC))
        poll(3)
        assert len(anna.incoming) == 1 and len(cora.incoming) == 1, media.log_tail(20)
        logged_in = time.monotonic()
        assert feature_code(anna, '*44' + QUEUE, tmp_path) == (603, 'Logged In To Queue %s' % QUEUE)
        leg = anna.wait_incoming(2, timeout=10)
        assert leg is not None, media.log_tail(20)
        print('a waiting caller rang Anna %.2f s after she logged in' % (leg.arrived - logged_in))
        answered(call, anna, 'anna', 2)
        assert len(cora.incoming) == 1
    finally:
        for member in (anna, cora, mia):   # pjsua holds 8 accounts and 8 transports a process: give them back
            member.unregister()
            member.close()
        from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile  # pylint: disable=import-outside-toplevel
        from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory  # pylint: disable=import-outside-toplevel
        with Directory(kamailio.directory_path).transaction() as txn:   # both logged in again, for a later run
            reconcile(txn, 'acme', None, {'queue': {QUEUE: {'members': [{'extension': '10', 'logged_in': True},
                                                                        {'extension': '12', 'logged_in': True}]}}})
