# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An IVR menu through the whole PBX: Kamailio (the role, tests/lab/playbooks/tenants.yml), rtpengine
and the media service on one directory (lab.media.pbx_with_media). An outside caller dials a number
whose target is menu 700, hears the menu, presses 1; the media service calls extension 11 back
through Kamailio (X-Voxplane-Origin), Kamailio rings Bert's registered phone, Bert answers, and the
two hear each other's tones through rtpengine and the service's bridge."""

import re
import time

import pytest

from lab import audio
from lab.directories import use_collection
from lab.media import missing_prerequisites, pbx_with_media
from lab.phone import Phone, poll, wait

ACME = 'acme.sip.test'
MENU_NUMBER = '+493099990010'
QUEUE = '680'
MUSIC = (523, 659, 784, 1047)   # media_prompts.TONES['music']


@pytest.fixture(scope='module')
def pbx(tmp_path_factory):
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    with pbx_with_media(prefix='voxplane-ivr-pbx-', kamailio_variables={'kamailio_children': 1}) as (kamailio, media, relay):
        use_collection()
        from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile
        from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory
        with Directory(kamailio.directory_path).transaction() as txn:
            reconcile(txn, 'acme', {'licences': {'seats': {'best': 20}, 'addons': {'ivr': 1}}}, {
                'ivr': {'700': {'name': 'Zentrale', 'keys': {'1': '11'}, 'timeout': 5}},
                # Anna (10) and Cora (12) answer the queue, Anna first; they log in and out from their phones.
                'queue': {QUEUE: {'name': 'Support', 'strategy': 'sequential', 'members': [{'extension': '10'}, {'extension': '12'}],
                                  'member_ring_time': 5, 'wrapup_time': 0, 'max_wait': 60}},
            })
            reconcile(txn, 'acme', None, {'number': {MENU_NUMBER: {'target': '700'}}})
        time.sleep(1.2)  # every worker reloads within reload_check_ms
        folder = tmp_path_factory.mktemp('tones')
        kamailio.tones = audio.write_tones(str(folder / 'tones.wav'), [(0, 300)] + list(audio.SEQUENCE) + [(0, 300)])
        kamailio.other_tones = audio.write_tones(str(folder / 'other.wav'),
                                                 [(0, 300)] + list(audio.OTHER_SEQUENCE) + [(0, 300)])
        yield kamailio, media


def test_a_menu_key_reaches_a_registered_phone_through_kamailio(pbx, tmp_path):
    kamailio, media = pbx
    proxy = '%s:%d' % kamailio.target
    bert = Phone(media.caller, user="bert")
    assert bert.register(proxy, ACME, 'bert-desk-pw', answer=None, username='bert.desk'), kamailio.log_tail(20)
    bert.answer_calls(play=kamailio.other_tones, record_dir=tmp_path)
    caller = Phone(kamailio.trunk, user='+49891234567', port=kamailio.trunk_port)
    call = caller.dial('sip:%s@%s' % (MENU_NUMBER, ACME), proxy, record=tmp_path / 'caller.wav',
                       from_uri='sip:+49891234567@carrier.example')
    assert call.wait_answered(15), (call.final, kamailio.log_tail(20), media.log_tail(20))
    menu = call.wait_heard('%s/en/menu_choose.wav' % media.prompts_dir, timeout=20) or \
        call.wait_heard('%s/de/menu_choose.wav' % media.prompts_dir, timeout=5)
    assert menu, media.log_tail(20)
    call.dtmf('1')
    leg = bert.wait_incoming(1, timeout=15)
    assert leg is not None, (kamailio.log_tail(30), media.log_tail(20))
    assert re.search(r'^X-Voxplane-Origin:', leg.request, re.MULTILINE | re.IGNORECASE) is None  # removed by the router
    assert leg.wait_answered(5) and leg.wait_media(5)
    call.play(kamailio.tones)

    def heard(path, tones):
        try:
            return audio.has_sequence(path, tones)[0]
        except (OSError, ValueError):
            return False
    assert wait(lambda: heard(leg.record_file, audio.SEQUENCE), 15), audio.has_sequence(leg.record_file)[1]
    assert wait(lambda: heard(call.record_file, audio.OTHER_SEQUENCE), 10)
    leg.hangup()
    assert call.wait_ended(10) == (200, 'Normal call clearing'), media.log_tail(10)


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
