#!/usr/bin/env python
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Add up pytest JUnit XML reports into one closing line.

usage: test_summary.py REPORT.xml [REPORT.xml ...]

Prints one line per report and, last, ``pytest: N passed, N failed, N skipped`` over all of
them (errors count as failed). A missing report counts as nothing run. Exit status 1 if
anything failed, else 0.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET


def counts(path: str) -> dict[str, int]:
    """Return tests/failed/skipped of one JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == 'testsuite' else root.findall('testsuite')
    total = {'tests': 0, 'failed': 0, 'skipped': 0}
    for suite in suites:
        total['tests'] += int(suite.get('tests', 0))
        total['failed'] += int(suite.get('failures', 0)) + int(suite.get('errors', 0))
        total['skipped'] += int(suite.get('skipped', 0))
    return total


def main(paths: list[str]) -> int:
    """Print the per-report lines and the closing line."""
    grand = {'passed': 0, 'failed': 0, 'skipped': 0}
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        if not os.path.exists(path):
            print('  %-12s not run' % name)
            continue
        one = counts(path)
        passed = one['tests'] - one['failed'] - one['skipped']
        grand['passed'] += passed
        grand['failed'] += one['failed']
        grand['skipped'] += one['skipped']
        print('  %-12s %d passed, %d failed, %d skipped' % (name, passed, one['failed'], one['skipped']))
    print('pytest: %(passed)d passed, %(failed)d failed, %(skipped)d skipped' % grand)
    return 1 if grand['failed'] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
