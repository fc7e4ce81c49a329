# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end plumbing checks: the role's Kamailio, the KEMI script, sipp.

Every test talks to the session's Kamailio on a random 127.0.0.x address and high port; every
sipp run is bounded (-m, -timeout, -timeout_error, subprocess timeout). The routing behaviour
itself (REGISTER, calls, reload of the directory) is tested in test_router.py.
"""

import hashlib
import importlib.util
import os
import shutil
import sqlite3

from lab import REPO
from lab.sipp import Phone
from lab.wire import options_probe, wait_for_options


def _explain(result, kamailio):
    return 'sipp rc=%s stats=%s\n--- errors\n%s\n--- messages\n%s\n--- kamailio log\n%s' % (
        result.rc, result.stats, result.errors[-3000:], result.messages[-4000:], kamailio.log_tail())


def _contacts(kamailio, aor):
    proc = kamailio.kamcmd('ul.lookup', 'location', aor)
    text = proc.stdout + proc.stderr
    return '' if proc.returncode != 0 or text.startswith('error:') else proc.stdout


def _db_rows(kamailio, domain):
    conn = sqlite3.connect('file:%s?mode=ro' % kamailio.usrloc_db, uri=True, timeout=5)
    try:
        return conn.execute('SELECT username, contact FROM location WHERE domain = ?', (domain,)).fetchall()
    finally:
        conn.close()


def test_options_gets_200(kamailio):
    result = kamailio.sipp('options.xml')
    assert result.rc == 0, _explain(result, kamailio)
    assert result.stats.get('SuccessfulCall(C)') == '1', _explain(result, kamailio)


def test_registration_survives_a_restart(kamailio):
    # A directory account (tests/lab/playbooks/tenants.yml); REGISTER details are in test_router.py.
    phone = Phone(kamailio, 'dora.app', 'beta.sip.test')
    result = phone.register()
    assert result.rc == 0, _explain(result, kamailio)
    contact = 'sip:dora.app@%s:%d' % (kamailio.address, phone.port)
    try:
        before = kamailio.pid()
        proc = kamailio.control('restart')
        assert proc.returncode == 0, proc.stdout + proc.stderr + kamailio.log_tail()
        assert kamailio.pid() and kamailio.pid() != before
        assert wait_for_options(kamailio.address, kamailio.port), kamailio.log_tail()
        # usrloc (db_mode 2, write-back) flushed the contact to the role's SQLite file at shutdown ...
        assert _db_rows(kamailio, 'beta.sip.test') == [('dora.app', contact)]
        # ... and preloaded the location table from it at start
        assert contact in _contacts(kamailio, phone.aor)
    finally:
        phone.unregister()


def test_api_list_matches_the_committed_ksr_double_data(kamailio):
    path = os.path.join(REPO, 'tests', 'unit', 'ksr_double', 'regenerate.py')
    spec = importlib.util.spec_from_file_location('voxplane_ksr_regenerate', path)
    regenerate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regenerate)
    live = regenerate.build(regenerate.DEFAULT_KAMCMD, 'unix:' + kamailio.ctl_socket)
    with open(regenerate.DEFAULT_OUTPUT) as handle:
        committed = handle.read()
    assert regenerate.render(live) == committed, (
        'tests/unit/ksr_double/api_list.json is stale: with a Kamailio from roles/kamailio running, '
        'run `python3 tests/unit/ksr_double/regenerate.py --ctl unix:<ctl socket>`')


def _tree_digest(root):
    digest = hashlib.sha256()
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            st = os.stat(path)
            digest.update(('%s %o %d %d %d\n' % (os.path.relpath(path, root), st.st_mode, st.st_uid, st.st_gid,
                                                 st.st_mtime_ns)).encode())
    return digest.hexdigest()


def test_role_is_idempotent_and_check_mode_changes_nothing(kamailio):
    pid = kamailio.pid()
    before = _tree_digest(kamailio.config_dir)
    second = kamailio.deploy()
    assert second.rc == 0 and second.changed == 0, repr(second)
    check = kamailio.deploy(check=True, diff=True)
    assert check.rc == 0 and check.changed == 0, repr(check)
    assert _tree_digest(kamailio.config_dir) == before
    assert kamailio.pid() == pid  # neither run restarted Kamailio


def _kemi_copy(kamailio, name, edit):
    src = os.path.join(REPO, 'kemi')
    dst = os.path.join(kamailio.root, name)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__'))
    path = os.path.join(dst, 'voxplane_kemi.py')
    with open(path) as handle:
        text = handle.read()
    with open(path, 'w') as handle:
        handle.write(edit(text))
    return dst


def test_kemi_change_is_reloaded_without_restart_and_a_syntax_error_changes_nothing(kamailio):
    live_script = os.path.join(kamailio.config_dir, 'kemi', 'voxplane_kemi.py')
    pid = kamailio.pid()

    # 1. a changed script: the role reloads it (app_python.reload), the pid stays
    marker = 'OK reloaded-%d' % os.getpid()
    changed = _kemi_copy(kamailio, 'kemi-changed',
                         lambda text: text.replace('KSR.sl.sl_send_reply(200, "OK")',
                                                   'KSR.sl.sl_send_reply(200, "%s")' % marker))
    try:
        run = kamailio.deploy(kamailio_kemi_src_dir=changed)
        assert run.rc == 0 and 'Reload the KEMI scripts' in run.stdout, repr(run)
        assert 'Restart Kamailio (daemon)] ***\nchanged' not in run.stdout
        assert kamailio.pid() == pid
        line = options_probe(kamailio.address, kamailio.port)
        assert line == 'SIP/2.0 200 %s' % marker, '%r\n%s' % (line, kamailio.log_tail())

        # 2. a syntax error: the play fails, the live files stay, Kamailio keeps answering
        with open(live_script) as handle:
            live_before = handle.read()
        broken = _kemi_copy(kamailio, 'kemi-broken', lambda text: text + '\ndef broken(:\n')
        run = kamailio.deploy(kamailio_kemi_src_dir=broken)
        assert run.rc != 0 and 'compile check failed' in run.stdout, repr(run)
        with open(live_script) as handle:
            assert handle.read() == live_before
        assert kamailio.pid() == pid
        assert options_probe(kamailio.address, kamailio.port) == 'SIP/2.0 200 %s' % marker
    finally:
        # 3. back to the repository's script
        run = kamailio.deploy()
        assert run.rc == 0, repr(run)
    assert options_probe(kamailio.address, kamailio.port) == 'SIP/2.0 200 OK'
    assert kamailio.pid() == pid
