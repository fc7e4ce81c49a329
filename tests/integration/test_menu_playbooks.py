"""IVR menus, queues, conference rooms and schedules with real ansible-playbook runs (issue 22).

The seeds' call flow "Zentrale: 1 Vertrieb, 2 Support, 0 Empfang" behind business hours, and a team room,
built with the modules: a first run creates it, a second changes nothing, check mode shows the diff (a room's
PINs masked) and writes nothing, bad input is refused naming object, field and rule with nothing written,
removing what a menu or schedule names is refused naming the referrer and the field, route_info predicts
"key 2 -> queue 600" and the overflow, and the offline lint (the validate_tenant playbook) judges an export."""

import json
import os

import pytest

from conftest import REPO, db_fingerprint, run_playbook, write_play

VALIDATE = os.path.join(REPO, 'playbooks', 'validate_tenant.yml')

BUILD = """
- name: The tenant and the people the menu leads to
  voxplane.pbx.tenant_config:
    config:
      tenant:
        name: acme
        sip_domain: acme.pbx.test
        licences: {seats: {smart: 5}, addons: {ivr: 1, conference: 1}}
        trunks: [{name: carrier, addresses: [192.0.2.10]}]
      extensions:
        - {internal_number: "10", name: Empfang, voicemail: {enabled: true}}
        - {internal_number: "11", name: Anna}
        - {internal_number: "12", name: Ben}
      groups: [{internal_number: "20", name: Vertrieb, members: ["11", "12"]}]
- name: Support queue
  voxplane.pbx.queue:
    tenant: acme
    internal_number: "600"
    name: Support
    members: [{extension: "11"}, {extension: "12", penalty: 5}]
    max_wait: 120
    overflow: voicemail:10
- name: Team room
  voxplane.pbx.conference:
    tenant: acme
    internal_number: "650"
    name: Team
    pin: "{{ team_pin }}"
    moderator_pin: "8642"
    wait_for_moderator: true
- name: "Zentrale: 1 Vertrieb, 2 Support, 0 Empfang"
  voxplane.pbx.ivr:
    tenant: acme
    internal_number: "700"
    name: Zentrale
    keys:
      "1": "20"
      "2": "600"
      "0": "10"
    invalid: "10"
    no_input: voicemail:10
- name: Business hours
  voxplane.pbx.schedule:
    tenant: acme
    name: office
    hours: [{days: [mon, tue, wed, thu, fri], from: "08:00", to: "17:00"}]
    holidays: ["2026-12-25"]
    open: "700"
    closed: voicemail:10
- name: The head number
  voxplane.pbx.number:
    tenant: acme
    number: "+49301234500"
    target: schedule:office
"""


def play(tmp_path, directory, name, tasks, check=False, diff=False, **variables):
    return run_playbook(write_play(tmp_path, name, tasks), dict(variables, directory=directory), check=check, diff=diff)


@pytest.fixture
def acme(tmp_path):
    directory = str(tmp_path / 'directory.db')
    first = play(tmp_path, directory, 'build', BUILD, team_pin='4711')
    assert first.rc == 0 and first.failed == 0 and first.changed == 6, first
    return directory


def test_a_second_run_changes_nothing_and_the_pin_never_shows(acme, tmp_path):
    again = play(tmp_path, acme, 'build', BUILD, diff=True, team_pin='4711')
    assert again.rc == 0 and again.changed == 0, again
    assert '4711' not in again.stdout and '8642' not in again.stdout


def test_check_mode_shows_the_diff_and_writes_nothing(acme, tmp_path):
    before = db_fingerprint(acme)
    run = play(tmp_path, acme, 'change', """
- voxplane.pbx.ivr: {tenant: acme, internal_number: "700", keys: {"1": "20", "2": "600", "0": "10", "9": "650"}}
- voxplane.pbx.conference: {tenant: acme, internal_number: "650", pin: "{{ team_pin }}"}
""", check=True, diff=True, team_pin='1357')
    assert run.rc == 0 and run.changed == 2, run
    assert db_fingerprint(acme) == before
    diff = [line for line in run.stdout.splitlines() if line.startswith(('+', '-')) and not line.startswith(('+++', '---'))]
    assert any('650' in line and line.startswith('+') and '9' in line for line in diff), run.stdout
    assert any(line.startswith('+') and 'pin' in line and '******** (changed)' in line for line in diff), run.stdout
    assert '1357' not in run.stdout


def test_bad_input_is_refused_naming_object_field_and_rule(acme, tmp_path):
    before = db_fingerprint(acme)
    run = play(tmp_path, acme, 'bad', """
- voxplane.pbx.ivr: {tenant: acme, internal_number: "700", keys: {"3": "99"}}
""")
    assert run.rc != 0 and 'ivr 700 (tenant acme): keys.3: target 99 does not exist in tenant acme [reference]' \
        in run.stdout, run
    run = play(tmp_path, acme, 'bad', """
- voxplane.pbx.queue: {tenant: acme, internal_number: "10", name: Twin}
""")
    assert run.rc != 0 and 'queue 10 (tenant acme): internal_number: 10 is already the number of extension 10 ' \
        '[internal_unique]' in run.stdout, run
    run = play(tmp_path, acme, 'bad', """
- voxplane.pbx.ivr: {tenant: acme, internal_number: "701", name: Second}
""")
    assert run.rc != 0 and '[ivr_licence]' in run.stdout, run
    assert db_fingerprint(acme) == before


def test_removing_what_something_names_is_refused_naming_the_referrer_and_the_field(acme, tmp_path):
    before = db_fingerprint(acme)
    run = play(tmp_path, acme, 'remove', """
- voxplane.pbx.queue: {tenant: acme, internal_number: "600", state: absent}
""")
    assert run.rc != 0 and 'queue 600 (tenant acme): state: cannot remove it: still referenced by ivr 700 (keys.2) ' \
        '[still_referenced]' in run.stdout, run
    run = play(tmp_path, acme, 'remove', """
- voxplane.pbx.ivr: {tenant: acme, internal_number: "700", state: absent}
""")
    assert run.rc != 0 and 'still referenced by schedule office (open)' in run.stdout, run
    assert db_fingerprint(acme) == before


def test_route_info_predicts_the_menu_the_queue_and_its_overflow(acme, tmp_path):
    run = play(tmp_path, acme, 'predict', """
- voxplane.pbx.route_info:
    tenant: acme
    caller: {trunk: true, calling_number: "+49891234567"}
    dialled: "+49301234500"
    at: "2026-03-02T10:00"
    digits: ["2"]
  register: flow
- ansible.builtin.assert:
    that:
      - 'flow.summary[0] == "0s: schedule office (Europe/Berlin): open -> IVR menu 700 Zentrale"'
      - 'flow.summary[1] == "0s: IVR menu 700 Zentrale: key 2 -> queue 600 Support"'
      - flow.steps[3].action == "voicemail" and flow.steps[3].at == 120
- voxplane.pbx.route_info:
    tenant: acme
    caller: {trunk: true}
    dialled: "+49301234500"
    at: "2026-12-25T10:00"
  register: holiday
- ansible.builtin.assert:
    that: 'holiday.summary[0] == "0s: schedule office (Europe/Berlin): closed -> voicemail of 10"'
""")
    assert run.rc == 0 and run.failed == 0, run


def test_an_export_passes_the_lint_and_a_broken_one_fails_it(acme, tmp_path):
    path = str(tmp_path / 'acme.json')
    run = play(tmp_path, acme, 'export', """
- voxplane.pbx.tenant_info: {tenant: acme, format: json, dest: "%s"}
""" % path)
    assert run.rc == 0, run
    lint = run_playbook(VALIDATE, {'tenant_files': [path]})
    assert lint.rc == 0, lint
    with open(path) as handle:
        document = json.load(handle)
    document['ivrs'][0]['keys']['4'] = '98'
    broken = str(tmp_path / 'broken.json')
    with open(broken, 'w') as handle:
        json.dump(document, handle)
    lint = run_playbook(VALIDATE, {'tenant_files': [broken]})
    assert lint.rc != 0 and 'ivr 700 (tenant acme): keys.4: target 98 does not exist in tenant acme [reference]' \
        in lint.stdout, lint
    assert os.path.exists(path)
