# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo's drivers use the test lab (tests/lab: the SIP wire, sipp traces, the office behind
NAT): ``import lab_path`` first puts tests/ on the path, the one place the demo names it."""

import os
import sys

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'tests')
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
