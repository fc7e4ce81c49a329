# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media service's /metrics (docs/operations.md): deployed by its role with
media_metrics_listen, the front answers Prometheus's GET /metrics with its workers alive and its
call slots, in a text promtool parses, and only to media_metrics_allow."""

import os
import re
import subprocess

import pytest

from lab.media import media_lab, missing_prerequisites
from lab.net import free_port, neighbour_address, pick_loopback_address, wait_for
from lab.prometheus import PROMTOOL, scrape


def test_the_deployed_service_serves_metrics_to_the_allow_list_only():
    reason = missing_prerequisites() or (None if os.path.exists(PROMTOOL) else '%s is missing' % PROMTOOL)
    if reason:
        pytest.skip(reason)
    address = pick_loopback_address()
    port = free_port(address, udp=False)
    url = 'http://%s:%d/metrics' % (address, port)
    with media_lab(address=address, max_calls=8, media_metrics_listen='%s:%d' % (address, port),
                   media_metrics_allow=['127.0.0.1/32']) as media:
        assert wait_for(lambda: 'voxplane_media_workers_alive 2' in scrape(url)[1], 15), scrape(url)[1]
        status, body = scrape(url)
        forbidden = scrape(url, source=neighbour_address(address))
        log = media.log_tail()
    assert status == 200, body
    values = dict(re.findall(r'^(voxplane_media_\w+) (\d+)$', body, re.M))
    assert values['voxplane_media_workers'] == '2' and values['voxplane_media_call_slots'] == '8', body
    assert values['voxplane_media_calls_in_progress'] == '0' and values['voxplane_media_calls_refused_total'] == '0', body
    check = subprocess.run([PROMTOOL, 'check', 'metrics'], input=body, capture_output=True, text=True, timeout=30,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert forbidden[0] == 403 and 'voxplane_' not in forbidden[1], (forbidden, log)
