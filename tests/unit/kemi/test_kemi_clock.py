# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The routing clock (kemi RoutingClock): the host's clock, or the time a test's clock file says
(router setting clock_file), read again for every call; a file others may write is refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time


def test_without_a_clock_file_the_router_routes_at_the_hosts_time(kemi):
    assert abs(kemi.RoutingClock(None).now() - time.time()) < 5


def test_a_clock_file_fixes_the_time_and_is_read_again_for_every_call(kemi, double, tmp_path):
    path = tmp_path / 'clock'
    path.write_text('2026-12-07T10:00:00+01:00\n')
    os.chmod(str(path), 0o644)
    double.reset()
    clock = kemi.RoutingClock(str(path))
    assert any('routing clock from' in line for _level, line in double.logs), double.logs
    assert clock.now() == 1796634000.0  # 09:00 UTC
    path.write_text('1796670000')  # epoch seconds: 19:00 UTC
    assert clock.now() == 1796670000.0


def test_a_clock_file_others_may_write_or_without_an_offset_is_ignored(kemi, double, tmp_path):
    path = tmp_path / 'clock'
    path.write_text('2026-12-07T10:00:00+01:00')
    os.chmod(str(path), 0o666)
    double.reset()
    clock = kemi.RoutingClock(str(path))
    assert abs(clock.now() - time.time()) < 5
    assert any('ignored' in line and 'only its owner may write' in line for _level, line in double.logs), double.logs
    os.chmod(str(path), 0o644)
    path.write_text('2026-12-07T10:00:00')  # local time of what?
    assert abs(clock.now() - time.time()) < 5
    assert any('has no UTC offset' in line for _level, line in double.logs), double.logs
    os.unlink(str(path))
    assert abs(clock.now() - time.time()) < 5
