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
from lab.phone import Phone, wait

ACME = 'acme.sip.test'
MENU_NUMBER = '+493099990010'


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
