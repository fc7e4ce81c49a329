# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the demo's PJSIP drivers (voicemail.py, ivr.py) share: the way they run.

Each reads its plan (a JSON file the playbook wrote), prepares, runs and always stops its phones,
and prints one JSON report on standard output: ``{"ok", "summary": [lines], "error"?}``. PJSIP
writes its first lines to standard output before its log settings apply, so the report keeps the
real standard output and everything else goes to standard error. SIGTERM (a timeout of the
playbook) ends the run through the same cleanup.
"""

import json
import os
import signal
import sys


class SetupError(Exception):
    """What the driver needs is not there (a prompt file, a registration): the report says so."""


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


def run(argv, usage, make_driver, stop, label):
    """Run ``make_driver(plan)``: prepare(), run(), then ``stop(driver)`` and the phones closed;
    the exit status (0: a report, 2: usage, 3: setup failed, reported as ``label``)."""
    from lab import phone  # pylint: disable=import-outside-toplevel  # PJSIP: the drivers' process only

    signal.signal(signal.SIGTERM, _terminate)
    if len(argv) != 2:
        sys.stderr.write(usage)
        return 2
    with open(argv[1], encoding='utf-8') as handle:
        plan = json.load(handle)
    report_out = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)
    driver = make_driver(plan)
    try:
        driver.prepare()
        try:
            report = driver.run()
        finally:
            stop(driver)
            phone.close_all()
    except (SetupError, OSError) as exc:
        report_out.write(json.dumps(dict(ok=False, error=str(exc), summary=['%s: setup failed: %s' % (label, exc)])) + '\n')
        report_out.flush()
        return 3
    report_out.write(json.dumps(report, indent=1) + '\n')
    report_out.flush()
    return 0
