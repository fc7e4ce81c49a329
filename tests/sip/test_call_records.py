# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call detail records written by the real Kamailio (acc with dialog, roles/kamailio) for calls
placed with sipp: answered, busy, not answered, cancelled, forwarded with a Diversion; a bounded
load; a restart with calls up; and cdr_info reading them back through ansible-playbook.

Each test reads the records written after its calls (ids above a mark) from the role's CDR
database (kamailio_cdr_database, below the instance's state folder) with module_utils/cdr.py.
"""

import csv
import datetime
import json
import os
import sqlite3
import time

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import cdr
from lab.calls import call, report, scene
from lab.kamailio import settle
from lab.net import wait_udp_bound
from lab.sipp import Phone, finish_sipp, parse_messages, start_sipp, users_csv
from lab.sipp import password as sip_password

HERE = os.path.dirname(os.path.abspath(__file__))
CDR_INFO = os.path.join(HERE, 'cdr_info.yml')


def cdr_file(kamailio):
    return os.path.join(kamailio.state_dir, 'cdr.sqlite')


def mark(kamailio):
    """The highest record id now (records after it are the next calls')."""
    with sqlite3.connect(cdr_file(kamailio)) as conn:
        return conn.execute('SELECT COALESCE(MAX(id), 0) FROM voxplane_cdr').fetchone()[0]


def records_after(kamailio, since_id, want=None, timeout=10.0):
    """The records with an id above ``since_id`` (waiting up to ``timeout`` s for ``want`` of them)."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(cdr_file(kamailio)) as conn:
            names = ('id', 'start_time', 'end_time', 'duration', 'vx', 'method', 'code', 'reply', 'ended')
            rows = conn.execute('SELECT %s FROM voxplane_cdr WHERE id > ? ORDER BY id' % ', '.join(names),
                                (since_id,)).fetchall()
        found = [cdr.record(dict(zip(names, row))) for row in rows]
        if want is None or len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def talk_call(kamailio, caller, dialled, talk_ms, timeout=20):
    inf = users_csv(os.path.join(kamailio.workdir, 'talk-%s.csv' % os.urandom(3).hex()),
                    [(caller, 'acme.sip.test', sip_password(caller), dialled)])
    return kamailio.sipp('call_talk.xml', inf=inf, timeout=timeout, extra=('-d', str(talk_ms)))


def sent_or_received(result, first):
    return [m for m in parse_messages(result.messages) if m.first_line.startswith(first)]


def test_an_answered_call_is_one_record_with_its_ring_and_talk_time(kamailio):
    before = mark(kamailio)
    bert = Phone(kamailio, 'bert.desk')
    caller, callees = scene(kamailio, lambda: talk_call(kamailio, 'anna.desk', '11', 2000), answer=bert)
    explain = report(kamailio, caller=caller, bert=callees['bert.desk'])
    assert caller.rc == 0, explain
    found = records_after(kamailio, before, want=1)
    assert len(found) == 1, (found, explain)
    rec = found[0]
    assert rec['tenant'] == 'acme' and rec['direction'] == 'internal', rec
    assert rec['disposition'] == 'answered' and rec['end_state'] == 'normal', rec
    assert rec['caller_extension'] == '10' and rec['caller_account'] == 'anna.desk', rec
    assert rec['dialled'] == '11' and rec['reached'] == 'extension:11', rec
    invite = [m for m in parse_messages(caller.messages) if m.direction == 'sent' and m.first_line.startswith('INVITE')]
    answered = [m for m in parse_messages(caller.messages)
                if m.direction == 'received' and m.first_line.startswith('SIP/2.0 200')][0]
    bye = [m for m in parse_messages(caller.messages) if m.direction == 'sent' and m.first_line.startswith('BYE')][0]
    assert abs(rec['talk_seconds'] - (bye.time - answered.time)) <= 1.0, (rec, explain)
    assert abs(rec['ring_seconds'] - (answered.time - invite[1].time)) <= 1.0, (rec, explain)
    assert rec['call_key'] == caller_call_id(caller), rec


def caller_call_id(result):
    sent = [m for m in parse_messages(result.messages) if m.direction == 'sent']
    return [line.split(':', 1)[1].strip() for line in sent[0].text.splitlines()
            if line.lower().startswith('call-id:')][0]


@pytest.mark.parametrize('answer, disposition, code', [('busy', 'busy', 486), ('decline', 'rejected', 603)])
def test_a_busy_or_declining_phone_is_a_record_with_its_code(kamailio, answer, disposition, code):
    before = mark(kamailio)
    bert = Phone(kamailio, 'bert.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '11'), **{answer: [bert]})
    explain = report(kamailio, caller=caller, bert=callees['bert.desk'])
    found = records_after(kamailio, before, want=1)
    assert [(r['disposition'], r['code']) for r in found] == [(disposition, code)], (found, explain)
    assert found[0]['talk_seconds'] == 0.0


def test_a_call_nobody_answers_is_no_answer_after_the_ring_time(kamailio):
    # Mia (26) rings 5 s and has no forward: the caller hears 480 after it.
    before = mark(kamailio)
    mia = Phone(kamailio, 'mia.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '26', timeout=30), ring=[mia])
    explain = report(kamailio, caller=caller, mia=callees['mia.desk'])
    found = records_after(kamailio, before, want=1)
    assert [r['disposition'] for r in found] == ['no_answer'], (found, explain)
    assert 4.0 <= found[0]['ring_seconds'] <= 6.5, found


def test_a_call_the_caller_gives_up_is_cancelled(kamailio):
    before = mark(kamailio)
    bert = Phone(kamailio, 'bert.desk')
    inf = users_csv(os.path.join(kamailio.workdir, 'cancel-%s.csv' % os.urandom(3).hex()),
                    [('anna.desk', 'acme.sip.test', sip_password('anna.desk'), '11')])
    caller, callees = scene(kamailio, lambda: kamailio.sipp('call_ringing_cancel.xml', inf=inf, timeout=20),
                            ring=[bert])
    explain = report(kamailio, caller=caller, bert=callees['bert.desk'])
    found = records_after(kamailio, before, want=1)
    assert [(r['disposition'], r['code']) for r in found] == [('cancelled', 487)], (found, explain)
    assert 2.0 <= found[0]['ring_seconds'] <= 4.5, found


def test_a_forwarded_call_records_what_it_reached_and_the_diversion_reason(kamailio):
    # Gina (27) forwards every call to Bert (11); Sven (38) forwards unanswered calls to Tina (36).
    before = mark(kamailio)
    bert, gina = Phone(kamailio, 'bert.desk'), Phone(kamailio, 'gina.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '27'), answer=bert, ring=[gina])
    explain = report(kamailio, caller=caller)
    found = records_after(kamailio, before, want=1)
    assert len(found) == 1, (found, explain)
    assert found[0]['disposition'] == 'answered' and found[0]['reached'] == 'extension:11', found
    assert found[0]['diversion'] == [{'number': '27', 'reason': 'unconditional'}], found
    before = mark(kamailio)
    sven, tina = Phone(kamailio, 'sven.desk'), Phone(kamailio, 'tina.desk')
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '38', timeout=30), ring=[sven, tina])
    found = records_after(kamailio, before, want=1)
    assert len(found) == 1, (found, report(kamailio, caller=caller))
    rec = found[0]
    assert rec['reached'] == 'extension:36' and rec['diversion'] == [{'number': '38', 'reason': 'no-answer'}], rec
    assert rec['disposition'] == 'no_answer' and 12.0 <= rec['ring_seconds'] <= 15.5, rec


def test_an_outbound_call_names_its_trunk_and_call_class(kamailio):
    before = mark(kamailio)
    caller, callees = scene(kamailio, lambda: call(kamailio, 'anna.desk', '0305551234'), trunk='phone_answer.xml')
    found = records_after(kamailio, before, want=1)
    assert len(found) == 1, (found, report(kamailio, caller=caller, trunk=callees['trunk']))
    rec = found[0]
    assert rec['direction'] == 'outbound' and rec['callee'] == '+49305551234', rec
    assert rec['reached'] == 'outside:+49305551234' and rec['call_class'] == 'national' and rec['trunk'], rec
    assert rec['disposition'] == 'answered', rec


def test_a_load_of_calls_gives_exactly_as_many_records(kamailio, request):
    calls = int(os.environ.get('VOXPLANE_CDR_LOAD_CALLS', '200'))
    before = mark(kamailio)
    bert = Phone(kamailio, 'bert.desk')
    assert bert.register().rc == 0
    phone = start_sipp('phone_answer.xml', kamailio.target, bert.address, kamailio.workdir, local_port=bert.port,
                       calls=calls, timeout=120)
    wait_udp_bound(bert.address, bert.port)
    try:
        inf = users_csv(os.path.join(kamailio.workdir, 'load-%s.csv' % os.urandom(3).hex()),
                        [('anna.desk', 'acme.sip.test', sip_password('anna.desk'), '11')])
        result = kamailio.sipp('call.xml', calls=calls, timeout=120, inf=inf, rate=50,
                               extra=('-l', '20'))
    finally:
        callee = finish_sipp(phone, timeout=3)
        bert.unregister()
    # Every call ends with a record, answered or not; one still ringing ends within its ring time.
    settle(kamailio.ctl_socket, timeout=90)
    found = records_after(kamailio, before, want=calls, timeout=30)
    answered = int(callee.stats.get('SuccessfulCall(C)', 0))   # the phone's: answered, then hung up
    explain = (len(found), calls, result.stats, result.errors[-1500:],
               sorted(set((r['disposition'], r['code']) for r in found)), kamailio.kamcmd('tm.stats').stdout)
    assert len(found) == calls, explain
    assert len(set(r['call_key'] for r in found)) == calls, 'a call written twice'
    assert sum(1 for r in found if r['disposition'] == 'answered') == answered, explain


def test_calls_up_during_a_restart_each_end_with_one_record(kamailio):
    # Five calls talk 8 s; Kamailio restarts 3 s into them (the dialogs are written to the usrloc
    # database at shutdown and loaded at start): every BYE (sipp retransmits it while Kamailio is
    # down) ends its call after the restart, each with exactly one record of the whole talk time.
    calls = 5
    before = mark(kamailio)
    bert = Phone(kamailio, 'bert.desk')
    assert bert.register().rc == 0
    phone = start_sipp('phone_answer.xml', kamailio.target, bert.address, kamailio.workdir, local_port=bert.port,
                       calls=calls, timeout=60)
    wait_udp_bound(bert.address, bert.port)
    try:
        inf = users_csv(os.path.join(kamailio.workdir, 'restart-%s.csv' % os.urandom(3).hex()),
                        [('anna.desk', 'acme.sip.test', sip_password('anna.desk'), '11')])
        talking = start_sipp('call_talk.xml', kamailio.target, kamailio.address, kamailio.workdir, calls=calls,
                             timeout=60, inf=inf, rate=10, extra=('-d', '8000', '-l', str(calls)))
        time.sleep(3.0)
        restarted = kamailio.control('restart')
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert kamailio.wait_for_directory(), kamailio.log_tail()
        result = finish_sipp(talking)
    finally:
        finish_sipp(phone, timeout=5)
        bert.unregister()
    explain = report(kamailio, caller=result)
    found = records_after(kamailio, before, want=calls, timeout=15)
    assert len(found) == calls, (found, explain)
    assert len(set(r['call_key'] for r in found)) == calls, found
    for rec in found:
        assert rec['disposition'] == 'answered' and rec['tenant'] == 'acme', rec
        assert 7.0 <= rec['talk_seconds'] <= 12.0, rec
    time.sleep(2.0)
    assert len(records_after(kamailio, before)) == calls, 'a record written twice'


def test_cdr_info_writes_a_tenants_call_list_as_csv_through_ansible_playbook(kamailio):
    # A call of each tenant; acme's list has acme's and never beta's (Dora, 10 of beta, calls Emil, 20).
    since = time.time() - 1
    bert, emil = Phone(kamailio, 'bert.desk'), Phone(kamailio, 'emil.desk', domain='beta.sip.test')
    scene(kamailio, lambda: talk_call(kamailio, 'anna.desk', '11', 1000), answer=bert)
    scene(kamailio, lambda: call(kamailio, 'dora.desk', '20', domain='beta.sip.test'), answer=emil)
    assert settle(kamailio.ctl_socket) is not None
    time.sleep(0.5)
    csv_out = os.path.join(kamailio.workdir, 'acme-%s.csv' % os.urandom(3).hex())
    summary_out = csv_out + '.json'
    run = kamailio.playbook(CDR_INFO, dict(cdr_database=cdr_file(kamailio), tenant_name='acme', csv_out=csv_out,
                                           summary_out=summary_out,
                                           since=datetime.datetime.fromtimestamp(since, datetime.timezone.utc).isoformat()))
    assert run.rc == 0, run
    with open(csv_out) as handle:
        rows = list(csv.DictReader(handle))
    assert [column[0] for column in cdr.CSV_COLUMNS] == list(rows[0].keys()), rows
    assert [(r['Extension'], r['To'], r['Result'], r['Direction']) for r in rows] == [('10', '11', 'answered', 'internal')], rows
    assert 0.5 <= float(rows[0]['Duration (s)']) <= 2.0, rows
    with open(summary_out) as handle:
        listed = json.load(handle)
    assert listed['count'] == 1 and listed['summary']['answered_ratio'] == 1.0, listed
    assert oct(os.stat(csv_out).st_mode & 0o777) == '0o600'


def test_a_call_whose_end_is_never_seen_across_a_restart_ends_with_an_expired_record():
    # A Kamailio of its own whose dialogs last 6 s (kamailio_max_call_duration): a call is answered,
    # its caller vanishes without a BYE, Kamailio restarts; the dialog loaded at the start expires and
    # acc writes its one record, answered, with end_state expired.
    from lab.kamailio import kamailio_lab, missing_prerequisites  # pylint: disable=import-outside-toplevel
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    with kamailio_lab(prefix='voxplane-cdr-expiry-', kamailio_max_call_duration=6) as kamailio:
        bert = Phone(kamailio, 'bert.desk')
        assert bert.register().rc == 0
        phone = start_sipp('phone_answer.xml', kamailio.target, bert.address, kamailio.workdir, local_port=bert.port,
                           calls=1, timeout=30)
        wait_udp_bound(bert.address, bert.port)
        inf = users_csv(os.path.join(kamailio.workdir, 'gone-%s.csv' % os.urandom(3).hex()),
                        [('anna.desk', 'acme.sip.test', sip_password('anna.desk'), '11')])
        caller = start_sipp('call_talk.xml', kamailio.target, kamailio.address, kamailio.workdir, calls=1, timeout=60,
                            inf=inf, extra=('-d', '60000'))
        time.sleep(2.0)
        caller['proc'].kill()                    # no BYE, ever
        finish_sipp(caller, timeout=5)
        restarted = kamailio.control('restart')
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert kamailio.wait_for_directory(), kamailio.log_tail()
        found = records_after(kamailio, 0, want=1, timeout=20)
        finish_sipp(phone, timeout=3)
        assert len(found) == 1, (found, kamailio.log_tail())
        rec = found[0]
        assert rec['disposition'] == 'answered' and rec['end_state'] == 'expired', rec
        assert rec['tenant'] == 'acme' and rec['caller_account'] == 'anna.desk', rec
        time.sleep(2.0)
        assert len(records_after(kamailio, 0)) == 1, 'a record written twice'
