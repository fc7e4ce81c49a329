# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a conference room of N participants and M callers in IVR menus cost the media service.

    sudo .venv/bin/python bench/conference_bench.py [--rooms 10,30,60] [--ivr 20,40] [--seconds 20]
                                                   [--service-cpu 0] [--caller-cpu 1] [--json FILE] [--keep]

The media service is deployed by its role (tests/lab/media.py) for the largest run (one worker
process per 4 calls: the PJSIP wheel takes 4 calls a process); every thread of its processes is
pinned to one core (--service-cpu), the phones (pjsua2 processes of 4 calls, tests/lab/
participants.py) to the other (--caller-cpu). G.711 (PCMA), 20 ms frames.

- room N: N participants join one room (no PIN) spread over the workers, so its members talk over
  the room bus; each sends a tone of its own for the whole window (everybody speaks: the most
  mixing). Figures over ``--seconds``: the service's CPU (all its processes) as a share of the
  core and per participant; frames lost as the participants' streams counted them (RTP lost,
  jitter buffer discards and frames it was empty for) against the frames they should have got;
  the room bus's frames that a worker had not sent in time (the service's log). Then participant
  0 alone sends a short tone burst: the mixing delay is when each other participant heard it
  (its recording) minus when it was sent, median and maximum over the participants (it holds
  both RTP hops and the jitter buffers, as a caller hears it).
- ivr M: M callers reach a menu and wait in it for a key (its prompt, then the wait with DTMF
  detection), each sending a tone; the service's CPU and the callers' lost frames as above.

The machine's load average is printed with the figures.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import audio  # noqa: E402
from lab.media import media_lab, missing_prerequisites  # noqa: E402
from lab.participants import Participants  # noqa: E402
from media_service_bench import cpu_seconds, memory_kib, pin, tree  # noqa: E402

TENANTS = os.path.join(HERE, 'conference_tenants.yml')
DOMAIN = 'bench.media.test'
FRAME_MS = 20
BURST_HZ = 2900
BURST_MS = 300


def tone_of(index):
    """A tone of its own for participant ``index`` (never the burst's)."""
    return 300 + (index * 37) % 2400


def lost_frames(before, after):
    pairs = [(before[i], after[i]) for i in before if before[i] and after.get(i)]
    lost = sum(a['lost'] - b['lost'] + (a['discarded_ms'] - b['discarded_ms'] + a['empty_ms'] - b['empty_ms']) / float(FRAME_MS)
               for b, a in pairs)
    return len(pairs), lost


def bus_missing(log):
    frames = missing = 0
    for line in log.splitlines():
        if ': bus ' in line and ' frames, ' in line:
            words = line.split(': bus ', 1)[1].split()
            frames += int(words[0])
            missing += int(words[2])
    return frames, missing


def run(args, media, work, kind, count):
    pids = tree(media.pid())
    offset = media.log_size()
    folder = tempfile.mkdtemp(prefix='%s-%d-' % (kind, count), dir=work)
    number, header = ('800', 'conference;number=%s') if kind == 'room' else ('700', 'ivr;number=%s')
    phones = Participants(media.target, media.caller, count, number, DOMAIN, '', None, folder, header=header)
    result = {'kind': kind, 'calls': count}
    try:
        result['joined'] = phones.join(timeout=30 + count)
        tones = [audio.write_tones(os.path.join(folder, 'tone%d.wav' % i), [(tone_of(i), (args.seconds + 6) * 1000)], amplitude=3000)
                 for i in range(count)]
        phones.speak(tones, gap=0.0, start_in=1.0, hold=2.0)   # everybody speaks from here on
        before, cpu0, peak = phones.rtp(), cpu_seconds(pids), (0, 0)
        end = time.time() + args.seconds
        while time.time() < end:
            time.sleep(min(1.0, max(0.0, end - time.time())))
            peak = max(peak, memory_kib(pids))
        cpu = cpu_seconds(pids) - cpu0
        measured, lost = lost_frames(before, phones.rtp())
        expected = measured * args.seconds * 1000 // FRAME_MS
        result.update({'service_cpu_s': round(cpu, 2), 'core_percent': round(100.0 * cpu / args.seconds, 1),
                       'cpu_ms_per_call_second': round(1000.0 * cpu / (max(result['joined'], 1) * args.seconds), 3),
                       'calls_measured': measured, 'frames_expected': expected, 'frames_lost': round(lost, 1),
                       'lost_percent': round(100.0 * lost / expected, 3) if expected else None,
                       'pss_mib': round(peak[1] / 1024.0, 1)})
        if kind == 'room':
            time.sleep(5.0)   # the tones end
            burst = audio.write_tones(os.path.join(folder, 'burst.wav'), [(BURST_HZ, BURST_MS)])
            sent = phones.speak([burst] + [None] * (count - 1), gap=0.0, start_in=1.0, hold=1.5)
        heard = phones.finish()
    finally:
        phones.close()
    time.sleep(1.0)
    if kind == 'room':
        delays = []
        for index in range(1, count):
            started = heard.get(index, {}).get('record_started')
            if not started:
                continue
            onsets = [at for f, at, ms in audio.tone_segments(heard[index]['record'], [BURST_HZ])
                      if f == BURST_HZ and ms >= BURST_MS // 2 and started + at / 1000.0 > sent - 0.1]
            if onsets:
                delays.append(1000.0 * (started + onsets[0] / 1000.0 - sent))
        frames, missing = bus_missing(media.log_since(offset))
        result.update({'delay_ms_median': round(statistics.median(delays), 1) if delays else None,
                       'delay_ms_max': round(max(delays), 1) if delays else None, 'delay_heard_by': len(delays),
                       'bus_frames': frames, 'bus_frames_missing': missing})
    return result


def summary(results):
    """The table of docs/benchmarks.md: each run, and a room participant's CPU against an IVR
    caller's (the largest IVR run: a call with a prompt and DTMF detection, no mixing)."""
    menus = [r for r in results if r['kind'] == 'ivr']
    baseline = menus[-1]['cpu_ms_per_call_second'] if menus else None
    header = ('run', 'calls', 'core %', 'ms/call-s', 'x IVR', 'lost %', 'delay ms', 'bus miss')
    lines = ['%-6s %5s %8s %10s %8s %10s %12s %8s' % header]
    for r in results:
        ratio = '%.2fx' % (r['cpu_ms_per_call_second'] / baseline) if baseline else '-'
        delay = '%s/%s' % (r.get('delay_ms_median'), r.get('delay_ms_max')) if r['kind'] == 'room' else '-'
        missing = '%d/%d' % (r['bus_frames_missing'], r['bus_frames']) if r['kind'] == 'room' else '-'
        row = (r['kind'], r['calls'], r['core_percent'], r['cpu_ms_per_call_second'], ratio, r['lost_percent'], delay, missing)
        lines.append('%-6s %5d %8.1f %10.2f %8s %10s %12s %8s' % row)
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--rooms', default='10,30,60', help='participants of each room run (comma-separated)')
    parser.add_argument('--ivr', default='20,40', help='callers of each IVR run (comma-separated; empty: none)')
    parser.add_argument('--seconds', type=int, default=20)
    parser.add_argument('--service-cpu', type=int, default=0)
    parser.add_argument('--caller-cpu', type=int, default=1)
    parser.add_argument('--json', help='write the results here as well')
    parser.add_argument('--keep', action='store_true', help='keep the temporary tree (VOXPLANE_SIP_KEEP)')
    args = parser.parse_args(argv)
    rooms = [int(n) for n in args.rooms.split(',') if n]
    menus = [int(n) for n in args.ivr.split(',') if n]
    reason = missing_prerequisites()
    if reason:
        sys.exit('conference_bench: %s' % reason)
    if args.keep:
        os.environ['VOXPLANE_SIP_KEEP'] = '1'
    os.sched_setaffinity(0, {args.caller_cpu})  # the phone processes inherit it
    work = tempfile.mkdtemp(prefix='voxplane-bench-conference-')
    results = []
    with media_lab(prefix='voxplane-bench-conference-', max_calls=max(rooms + menus + [4]), media_log_level='info') as media:
        played = media.playbook(TENANTS, {'directory': media.directory_path, 'media_server': media.uri})
        if played.rc != 0:
            sys.exit('conference_bench: %s failed: %r' % (TENANTS, played))
        time.sleep(2.0)  # every worker is up
        pin(tree(media.pid()), args.service_cpu)
        load = list(os.getloadavg())
        for count in rooms:
            results.append(run(args, media, work, 'room', count))
            print(json.dumps(results[-1]), flush=True)
            time.sleep(3.0)
        for count in menus:
            results.append(run(args, media, work, 'ivr', count))
            print(json.dumps(results[-1]), flush=True)
            time.sleep(3.0)
        load += list(os.getloadavg())
    report = {'machine': {'cpus': os.cpu_count(), 'load_1_5_15_before_and_after': [round(x, 2) for x in load]},
              'seconds': args.seconds, 'results': results}
    print(json.dumps(report, indent=1))
    print(summary(results))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(report, handle, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
