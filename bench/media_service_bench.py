# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How many voicemail recordings and announcement plays the media service holds on one core,
and what each costs.

    sudo .venv/bin/python bench/media_service_bench.py [--calls 100] [--seconds 30] [--mode record|play|both]
                                                      [--service-cpu 0] [--caller-cpu 1] [--json FILE] [--keep]

The media service is deployed by its role (tests/lab/media.py, daemon mode) for ``--calls``
calls (its front and one worker process per 4 calls: the PJSIP wheel takes 4 calls a process),
and every thread of every one of its processes is pinned to one core (--service-cpu). The
callers are pjsua2 phones in processes of 4 calls each (the same limit), pinned to another core
(--caller-cpu), calling from the address the service takes SIP from (where Kamailio would be).
G.711 (PCMA) both ways, 20 ms frames; 20 new calls a second.

- record: every caller reaches one mailbox, skips the greeting with the hash key and sends a
  continuous 800 Hz tone; once all of them record, ``--seconds`` are measured; then each ends
  its message with the hash key. Lost frames are what the service's own streams counted while
  they recorded (the log line of each recording: RTP packets lost, jitter buffer discards and
  frames it was empty for) against the frames the recordings' lengths need (one per 20 ms); the
  longest gap is the longest stretch below the tone's level inside any stored message.
- play: every caller reaches an announcement of a continuous tone; lost frames are what the
  callers' streams counted (lost, discarded, jitter buffer empty) over the ``--seconds``.

CPU: utime + stime of all the service's processes over the window in which every call is up,
per call-second and as a share of the one core; memory: the service's RSS (all processes) with
the calls up, and its growth over the idle service per call. The machine's load average is
printed with the figures: the service shares the machine with whatever else runs.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import audio  # noqa: E402
from lab.media import media_lab, missing_prerequisites  # noqa: E402

TENANTS = os.path.join(HERE, 'media_tenants.yml')
DOMAIN = 'bench.media.test'
TONE_HZ = 800
FRAME_MS = 20
CALLS_PER_PROCESS = 4      # the PJSIP wheel's (PJSUA_MAX_CALLS), callers and workers alike
RAMP_PER_S = 20
CLK_TCK = os.sysconf('SC_CLK_TCK')
_RECORDING_LINE = re.compile(r'recording ended \((\w+)\) after \d+ ms; over its last (\d+) ms RTP received (\d+) '
                             r'packets, lost (-?\d+), jitter buffer discarded (\d+) ms and was empty for (\d+) ms')


# ---------------------------------------------------------------------------- the service side
def tree(pid):
    """The pids of ``pid`` and its children (the front and its workers)."""
    found = [pid]
    for task in os.listdir('/proc/%d/task' % pid):
        try:
            with open('/proc/%d/task/%s/children' % (pid, task)) as handle:
                found.extend(int(c) for c in handle.read().split())
        except OSError:
            pass
    return found


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/stat' % pid) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / float(CLK_TCK)


def memory_kib(pids):
    """(RSS, PSS) of the processes in KiB: PSS shares the pages they have in common (the PJSIP
    library, Python) out among them."""
    rss = pss = 0
    for pid in pids:
        try:
            with open('/proc/%d/smaps_rollup' % pid) as handle:
                for line in handle:
                    if line.startswith('Rss:'):
                        rss += int(line.split()[1])
                    elif line.startswith('Pss:'):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def pin(pids, cpu, realtime=0):
    """Every thread of every process onto ``cpu`` (and, with ``realtime``, SCHED_RR at that priority)."""
    for pid in pids:
        for task in os.listdir('/proc/%d/task' % pid):
            os.sched_setaffinity(int(task), {cpu})
            if realtime:
                os.sched_setscheduler(int(task), os.SCHED_RR, os.sched_param(realtime))


# ---------------------------------------------------------------------------- a caller process
def caller(args):
    """One caller process: its calls, timed by the epochs it was given; prints its figures as JSON."""
    from lab.phone import Phone, poll, wait  # pylint: disable=import-outside-toplevel  # PJSIP: callers only

    def until(epoch):
        poll(max(0.0, epoch - time.time()))

    phone = Phone(args.address, user='bench%d' % args.index)
    calls = []
    for number in range(args.calls):
        until(args.start + (args.index * CALLS_PER_PROCESS + number) / float(RAMP_PER_S))
        header = ('voicemail;mailbox=10;reason=no-answer' if args.mode == 'record'
                  else 'announcement;name=bench;then=no')
        calls.append(phone.dial('sip:%s@%s' % ('10' if args.mode == 'record' else 'bench', DOMAIN), args.target,
                                headers={'X-Voxplane-Media': header}, play=args.tone, loop=True))
    wait(lambda: all(c.answered() or c.final for c in calls), 20)
    if args.mode == 'record':
        poll(1.0)
        for call in calls:
            call.dtmf('#', gap=0)  # skip the greeting
    until(args.window_start)
    before = [c.rtp() for c in calls]
    until(args.window_end)
    after = [c.rtp() for c in calls]
    if args.mode == 'record':
        for call in calls:
            call.dtmf('#', gap=0)  # end the message
        poll(3.0)
    for call in calls:
        call.hangup()
    wait(lambda: all(c.final for c in calls), 20)
    print(json.dumps({'answered': sum(1 for c in calls if c.answered()),
                      'finals': [c.final for c in calls if not c.answered()],
                      'rtp': [[b, a] for b, a in zip(before, after)]}))
    return 0


def start_callers(args, media, mode, tone, window_start, window_end, start):
    processes = []
    for index in range(int(math.ceil(args.calls / float(CALLS_PER_PROCESS)))):
        count = min(CALLS_PER_PROCESS, args.calls - index * CALLS_PER_PROCESS)
        processes.append(subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, os.path.abspath(__file__), '--caller', '--index', str(index), '--calls', str(count),
             '--mode', mode, '--target', media.target, '--address', media.caller, '--tone', tone or '',
             '--start', repr(start), '--window-start', repr(window_start), '--window-end', repr(window_end)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    return processes


def finish_callers(processes):
    results = []
    for process in processes:
        out, _err = process.communicate(timeout=120)
        line = [x for x in out.splitlines() if x.startswith('{')]
        results.append(json.loads(line[-1]) if line else {'answered': 0, 'finals': ['no result'], 'rtp': []})
    return results


# ---------------------------------------------------------------------------- one run
def run(args, media, mode, tone):
    pids = tree(media.pid())
    idle = memory_kib(pids)
    offset = media.log_size()
    start = time.time() + 4.0  # the callers' PJSIP is up by then
    ramp = args.calls / float(RAMP_PER_S)
    window_start = start + ramp + (5.0 if mode == 'record' else 2.0)
    window_end = window_start + args.seconds
    processes = start_callers(args, media, mode, tone, window_start, window_end, start)
    time.sleep(max(0.0, window_start - time.time()))
    cpu0, peak = cpu_seconds(pids), (0, 0)
    while time.time() < window_end:
        time.sleep(min(1.0, max(0.0, window_end - time.time())))
        peak = max(peak, memory_kib(pids))
    cpu = cpu_seconds(pids) - cpu0
    callers = finish_callers(processes)
    time.sleep(2.0)
    answered = sum(c['answered'] for c in callers)
    result = {'mode': mode, 'calls': args.calls, 'answered': answered, 'seconds': args.seconds,
              'refused': [f for c in callers for f in c['finals']][:5]}
    if mode == 'record':
        ended = [m.groups() for m in _RECORDING_LINE.finditer(media.log_since(offset))]
        messages = media.messages('bench', '10')
        expected = sum(int(g[1]) // FRAME_MS for g in ended)
        # In 20 ms frames: packets lost, and what the jitter buffer discarded or lacked.
        lost = sum(int(g[3]) + (int(g[4]) + int(g[5])) / float(FRAME_MS) for g in ended)
        result.update({
            'recordings': len(ended), 'messages_kept': len(messages), 'ended_by': sorted(set(g[0] for g in ended)),
            'frames_expected': expected, 'packets_received': sum(int(g[2]) for g in ended), 'frames_lost': round(lost, 1),
            'rtp_lost': sum(int(g[3]) for g in ended), 'jitter_buffer_discarded_ms': sum(int(g[4]) for g in ended),
            'jitter_buffer_empty_ms': sum(int(g[5]) for g in ended),
            'lost_percent': round(100.0 * lost / expected, 4) if expected else None,
            'longest_gap_ms': max([audio.gaps(m['path'], threshold=500, start_ms=300, end_ms=m['duration_ms'] - 300)
                                   for m in messages] or [0])})
        media.clear_messages('bench', '10')
    else:
        pairs = [(b, a) for c in callers for b, a in c['rtp'] if a and b]
        expected = len(pairs) * args.seconds * 1000 // FRAME_MS
        lost = sum(a['lost'] - b['lost'] + (a['discarded_ms'] - b['discarded_ms'] + a['empty_ms'] - b['empty_ms'])
                   / float(FRAME_MS) for b, a in pairs)
        result.update({'calls_measured': len(pairs), 'frames_expected': expected,
                       'packets_received': sum(a['received'] - b['received'] for b, a in pairs),
                       'frames_lost': round(lost, 1),
                       'rtp_lost': sum(a['lost'] - b['lost'] for b, a in pairs),
                       'jitter_buffer_discarded_ms': round(sum(a['discarded_ms'] - b['discarded_ms'] for b, a in pairs)),
                       'jitter_buffer_empty_ms': round(sum(a['empty_ms'] - b['empty_ms'] for b, a in pairs)),
                       'lost_percent': round(100.0 * lost / expected, 4) if expected else None})
    result.update({
        'service_processes': len(pids), 'service_cpu_s': round(cpu, 2), 'core_percent': round(100.0 * cpu / args.seconds, 1),
        'cpu_ms_per_call_second': round(1000.0 * cpu / (max(answered, 1) * args.seconds), 3),
        'rss_idle_mib': round(idle[0] / 1024.0, 1), 'rss_calls_mib': round(peak[0] / 1024.0, 1),
        'pss_idle_mib': round(idle[1] / 1024.0, 1), 'pss_calls_mib': round(peak[1] / 1024.0, 1),
        'pss_kib_per_call_over_idle': round((peak[1] - idle[1]) / float(max(answered, 1)), 1),
        'pss_kib_per_call_all': round(peak[1] / float(max(answered, 1)), 1)})
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--calls', type=int, default=100)
    parser.add_argument('--seconds', type=int, default=30)
    parser.add_argument('--mode', choices=['record', 'play', 'both'], default='both')
    parser.add_argument('--service-cpu', type=int, default=0)
    parser.add_argument('--caller-cpu', type=int, default=1)
    parser.add_argument('--realtime', type=int, default=0,
                        help='SCHED_RR priority for the service and the callers (the role: media_realtime_priority)')
    parser.add_argument('--json', help='write the results here as well')
    parser.add_argument('--keep', action='store_true', help='keep the temporary tree (VOXPLANE_SIP_KEEP)')
    # A caller process (started by the bench itself).
    parser.add_argument('--caller', action='store_true', help=argparse.SUPPRESS)
    for name in ('--index', '--target', '--address', '--tone', '--start', '--window-start', '--window-end'):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.caller:
        args.index, args.start = int(args.index), float(args.start)
        args.window_start, args.window_end = float(args.window_start), float(args.window_end)
        args.tone = args.tone or None
        return caller(args)
    reason = missing_prerequisites()
    if reason:
        sys.exit('media_service_bench: %s' % reason)
    if args.keep:
        os.environ['VOXPLANE_SIP_KEEP'] = '1'
    os.sched_setaffinity(0, {args.caller_cpu})  # the callers inherit it
    if args.realtime:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(args.realtime))
    work = tempfile.mkdtemp(prefix='voxplane-bench-media-')
    tone = audio.write_tones(os.path.join(work, 'tone.wav'), [(TONE_HZ, 5000)])
    announcement = audio.write_tones(os.path.join(work, 'announcement.wav'), [(TONE_HZ, (args.seconds + 60) * 1000)])
    results = []
    with media_lab(prefix='voxplane-bench-media-', max_calls=args.calls, media_log_level='info',
                   media_voicemail_max_messages=100000, media_voicemail_max_message_s=args.seconds + 120,
                   media_voicemail_silence_s=60) as media:
        played = media.playbook(TENANTS, {'directory': media.directory_path, 'media_server': media.uri})
        if played.rc != 0:
            sys.exit('media_service_bench: %s failed: %r' % (TENANTS, played))
        media.add_announcement('bench', 'bench', announcement)
        time.sleep(2.0)  # every worker is up
        pin(tree(media.pid()), args.service_cpu, args.realtime)
        load = list(os.getloadavg())
        if args.mode in ('record', 'both'):
            results.append(run(args, media, 'record', tone))
        if args.mode in ('play', 'both'):
            results.append(run(args, media, 'play', None))
        load += list(os.getloadavg())
    report = {'machine': {'cpus': os.cpu_count(), 'load_1_5_15_before_and_after': [round(x, 2) for x in load]},
              'realtime_priority': args.realtime, 'results': results}
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(report, handle, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
