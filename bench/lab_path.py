# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmarks use the test lab (tests/lab: Kamailio deployed by the role, sipp, the SIP wire,
directories, the fuzzer): ``import lab_path`` first puts tests/ on the path, the one place the
benchmarks name it."""

import os
import sys

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests')
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
