# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The outcome of one ansible-playbook run, shared by the integration and SIP tests."""

import re

RECAP = re.compile(r'ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)')


class PlaybookRun(object):
    """rc, stdout, stderr and the PLAY RECAP counts (None when there is no recap)."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        match = RECAP.search(proc.stdout)
        self.ok, self.changed, self.unreachable, self.failed, self.skipped = (
            [int(g) for g in match.groups()] if match else [None] * 5)

    def __repr__(self):
        return 'rc=%s changed=%s failed=%s\n%s\n%s' % (
            self.rc, self.changed, self.failed, self.stdout[-8000:], self.stderr[-3000:])
