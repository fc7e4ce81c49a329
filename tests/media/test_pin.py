# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PINs over real calls: a wrong one, the right one, three wrong end the call, ten within the hour
lock the mailbox (logged) until the extension module unlocks it; a PIN changed from the menu goes
through the PIN rules; no tenant reaches another tenant's mailbox."""

import json
import os
import sqlite3

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import model, rules
from lab.phone import poll
from media_suite import ACME, BETA, access_call, dial, enter, prompt

HERE = os.path.dirname(os.path.abspath(__file__))


def voicemail_of(media, tenant, number):
    conn = sqlite3.connect(media.directory_path)
    try:
        doc = conn.execute('SELECT e.doc FROM extensions e JOIN tenants t ON t.id = e.tenant_id '
                           'WHERE t.name = ? AND e.internal_number = ?', (tenant, number)).fetchone()[0]
    finally:
        conn.close()
    return json.loads(doc)['voicemail']


def pin_failures(media, tenant, number):
    conn = sqlite3.connect(media.directory_path)
    try:
        row = conn.execute('SELECT m.doc FROM mailboxes m JOIN extensions e ON e.id = m.extension_id '
                           'JOIN tenants t ON t.id = m.tenant_id WHERE t.name = ? AND e.internal_number = ?',
                           (tenant, number)).fetchone()
    finally:
        conn.close()
    return json.loads(row[0]).get('pin_failures', []) if row else []


def model_has(sub_field):
    return sub_field in [s.name for s in model.sub_fields(model.EXTENSION, 'voicemail')]


def test_a_wrong_pin_then_the_right_one_opens_the_mailbox(media, phone, tmp_path):
    call = access_call(phone, media, tmp_path / 'wrong-right.wav')
    heard = enter(call, media, 'enter_mailbox', '11#')
    heard = enter(call, media, 'enter_pin', '1111#', after=heard)
    heard = call.wait_heard(prompt(media, 'invalid_pin'), timeout=10, after_ms=heard)
    assert heard, media.log_tail(10)
    heard = enter(call, media, 'enter_mailbox', '11#', after=heard)
    heard = enter(call, media, 'enter_pin', '2580#', after=heard)
    assert call.wait_heard(prompt(media, 'main_menu'), timeout=15, after_ms=heard), media.log_tail(10)
    call.hangup()
    call.wait_ended(5)
    assert len(pin_failures(media, 'acme', '11')) == 1


def test_three_wrong_pins_end_the_call(media, phone, tmp_path):
    before = len(pin_failures(media, 'acme', '12'))
    call = dial(phone, media, '*86', 'mailbox;mailbox=12;pin=yes', tmp_path / 'three.wav')
    assert call.wait_answered(5)
    heard = 0
    for _attempt in range(3):
        heard = enter(call, media, 'enter_pin', '0000#', after=heard)
        heard = call.wait_heard(prompt(media, 'invalid_pin'), timeout=10, after_ms=heard)
        assert heard, media.log_tail(10)
    assert call.wait_ended(15), 'the service did not end the call after three wrong PINs'
    assert len(pin_failures(media, 'acme', '12')) == before + 3


def test_ten_wrong_pins_within_the_hour_lock_the_mailbox_until_the_module_unlocks_it(media, phone, tmp_path):
    if not model_has('locked'):
        pytest.skip('the extension has no voicemail.locked yet (model)')
    offset = media.log_size()
    wrong = 0
    for call_number in range(4):  # three wrong PINs a call, the tenth in the fourth call
        call = dial(phone, media, '*86', 'mailbox;mailbox=10;pin=yes', tmp_path / ('lock-%d.wav' % call_number))
        assert call.wait_answered(5)
        heard = 0
        for _attempt in range(3):
            heard = enter(call, media, 'enter_pin', '9876#', after=heard)
            wrong += 1
            if wrong == 10:
                break
            heard = call.wait_heard(prompt(media, 'invalid_pin'), timeout=10, after_ms=heard)
            assert heard, media.log_tail(10)
        if wrong == 10:
            assert call.wait_heard(prompt(media, 'mailbox_locked'), timeout=10, after_ms=heard), media.log_tail(10)
        assert call.wait_ended(15)
    assert voicemail_of(media, 'acme', '10')['locked'] is True
    log = media.log_since(offset)
    assert log.count('mailbox 10 of tenant acme locked after 10 wrong PINs') == 1, log[-2000:]
    assert pin_failures(media, 'acme', '10') == []

    # Locked: even the right PIN does not open it.
    call = dial(phone, media, '*86', 'mailbox;mailbox=10;pin=yes', tmp_path / 'locked.wav')
    assert call.wait_answered(5)
    heard = enter(call, media, 'enter_pin', '4711#')
    assert call.wait_heard(prompt(media, 'mailbox_locked'), timeout=10, after_ms=heard)
    call.wait_ended(10)

    run = media.playbook(os.path.join(HERE, 'unlock.yml'), {'directory': media.directory_path})
    assert run.rc == 0 and run.changed == 1, run
    assert voicemail_of(media, 'acme', '10')['locked'] is False
    call = dial(phone, media, '*86', 'mailbox;mailbox=10;pin=yes', tmp_path / 'unlocked.wav')
    assert call.wait_answered(5)
    heard = enter(call, media, 'enter_pin', '4711#')
    assert call.wait_heard(prompt(media, 'main_menu'), timeout=15, after_ms=heard), media.log_tail(10)
    call.hangup()
    call.wait_ended(5)


def test_the_owner_changes_the_pin_through_the_pin_rules(media, phone, tmp_path):
    call = dial(phone, media, '*86', 'mailbox;mailbox=12;pin=no', tmp_path / 'change.wav')
    assert call.wait_answered(5)
    heard = enter(call, media, 'main_menu', '0')
    heard = enter(call, media, 'options_menu', '4', after=heard)
    heard = enter(call, media, 'enter_new_pin', '12#', after=heard)
    heard = enter(call, media, 'repeat_new_pin', '12#', after=heard)
    heard = call.wait_heard(prompt(media, 'pin_refused'), timeout=10, after_ms=heard)
    assert heard, media.log_tail(10)  # two digits: the PIN rule refuses it
    assert rules.pin_hash('acme', '12', '1357') == voicemail_of(media, 'acme', '12')['pin_hash']
    heard = enter(call, media, 'options_menu', '4', after=heard)
    heard = enter(call, media, 'enter_new_pin', '24680#', after=heard)
    heard = enter(call, media, 'repeat_new_pin', '24680#', after=heard)
    assert call.wait_heard(prompt(media, 'pin_changed'), timeout=10, after_ms=heard), media.log_tail(10)
    call.hangup()
    call.wait_ended(5)
    assert voicemail_of(media, 'acme', '12')['pin_hash'] == rules.pin_hash('acme', '12', '24680')
    # The next call knows it (the directory generation moved; the tenant is read again).
    call = dial(phone, media, '*86', 'mailbox;mailbox=12;pin=yes', tmp_path / 'new-pin.wav')
    assert call.wait_answered(5)
    heard = enter(call, media, 'enter_pin', '24680#')
    assert call.wait_heard(prompt(media, 'main_menu'), timeout=15, after_ms=heard), media.log_tail(10)
    call.hangup()
    call.wait_ended(5)


def test_another_tenants_mailbox_cannot_be_reached(media, phone, tmp_path):
    # beta's mailbox 20, named in a call to acme's domain (as the feature code or its URI): 404.
    for user, service in (('*86', 'mailbox;mailbox=20;pin=yes'), ('20', 'voicemail;mailbox=20;reason=user-busy')):
        call = dial(phone, media, user, service, None, domain=ACME)
        assert call.wait_ended(5)[0] == 404
    # acme's access number: mailbox 20 with beta's PIN is a wrong PIN, nothing more.
    call = access_call(phone, media, tmp_path / 'cross.wav')
    heard = enter(call, media, 'enter_mailbox', '20#')
    heard = enter(call, media, 'enter_pin', '9999#', after=heard)
    assert call.wait_heard(prompt(media, 'invalid_pin'), timeout=10, after_ms=heard)
    call.hangup()
    call.wait_ended(5)
    # In its own tenant the same PIN opens it.
    call = access_call(phone, media, tmp_path / 'own.wav', domain=BETA, user='+494099999999')
    heard = enter(call, media, 'enter_mailbox', '20#', language='de')
    heard = enter(call, media, 'enter_pin', '9999#', after=heard, language='de')
    assert call.wait_heard(prompt(media, 'main_menu', 'de'), timeout=15, after_ms=heard), media.log_tail(10)
    call.hangup()
    call.wait_ended(5)
    poll(0.2)
