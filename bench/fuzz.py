# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIP fuzzer for the voxplane Kamailio: seeded mutations of valid requests over UDP and TCP
(the generator is the lab's, tests/lab/fuzz.py).

    .venv/bin/python bench/fuzz.py --target 127.0.0.20:5060 --source 127.0.0.30 --messages 10000 --seed 7
        [--domain acme.sip.test] [--trunk 127.0.0.21:40000] [--ctl RUN/kamailio_ctl --pid-file RUN/kamailio.pid]
        [--json FILE]

With --ctl and --pid-file the run also reads Kamailio's process tree (main and child pids, from
the pid file and /proc) and its shared memory (kamcmd core.shmmem, after tm has no transaction
left) before and after. Exit status: 0 when no message got a 500 and nothing restarted, 1
otherwise. Loopback only: --target, --source and --trunk must be 127.0.0.0/8 addresses.
The attack suite's fuzz stage runs the same generator (make test: 2,000 messages; make fuzz:
10,000).
"""

import argparse
import ipaddress
import json
import os
import sys

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab.fuzz import Context, format_summary, fuzz  # noqa: E402
from lab.kamailio import process_tree, restarts, settle, shm_used  # noqa: E402


def _loopback(text):
    if not ipaddress.ip_address(text).is_loopback:
        raise argparse.ArgumentTypeError('%s is not a loopback address (127.0.0.0/8)' % text)
    return text


def _address_port(text):
    host, port = text.rsplit(':', 1)
    return _loopback(host), int(port)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--target', type=_address_port, required=True, help='Kamailio ADDRESS:PORT (udp and tcp)')
    parser.add_argument('--source', type=_loopback, default='127.0.0.1',
                        help='the fuzzer\'s address (exempt it from bans: kamailio_ban_exempt)')
    parser.add_argument('--trunk', type=_address_port, help='a trusted trunk ADDRESS:PORT: adds inbound INVITEs')
    parser.add_argument('--domain', default='acme.sip.test')
    parser.add_argument('--messages', type=int, default=int(os.environ.get('VOXPLANE_FUZZ_MESSAGES', 10000)))
    parser.add_argument('--seed', type=int, default=int(os.environ.get('VOXPLANE_FUZZ_SEED', 1)))
    parser.add_argument('--udp-rate', type=float, default=800.0, help='UDP messages per second (default 800)')
    parser.add_argument('--ctl', help='Kamailio ctl socket: shared memory and transactions before/after')
    parser.add_argument('--pid-file', help='Kamailio pid file: process restarts before/after')
    parser.add_argument('--json', help='write the whole result here')
    args = parser.parse_args(argv)
    ctx = Context(args.target, args.source, domain=args.domain, trunk=args.trunk)
    before_tree = process_tree(args.pid_file) if args.pid_file else None
    before_shm = shm_used(args.ctl) if args.ctl else None
    result = fuzz(ctx, args.messages, args.seed, udp_rate=args.udp_rate)
    if args.pid_file:
        after_tree = process_tree(args.pid_file)
        result['restarts'] = restarts(before_tree, after_tree)
    if args.ctl:
        result['settle_seconds'] = settle(args.ctl)
        result['shm_before'], result['shm_after'] = before_shm, shm_used(args.ctl)
        if None not in (result['shm_before'], result['shm_after']):
            result['shm_growth'] = result['shm_after'] - result['shm_before']
    print(format_summary(result))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(result, handle, indent=1)
    return 1 if result['count_500'] or result.get('restarts') else 0


if __name__ == '__main__':
    sys.exit(main())
