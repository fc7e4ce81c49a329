# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a SIPVicious tool with its sockets bound to one source address.

usage: python3 sipvicious_bound.py ADDRESS TOOL [TOOL ARGUMENTS...]   (TOOL: svmap, svwar, svcrack)

SIPVicious 0.3.3 (Debian bookworm) parses -b/--bindingip but svwar and svcrack never pass it
to their scanner: their UDP socket binds to every address, and towards a 127.0.0.x target the
kernel picks 127.0.0.1 as the source. The attack tests need each attacker on its own loopback
address (bans are per source address), so this runs the installed tool unchanged, in this
process, with socket binds to the wildcard address redirected to ADDRESS. Give the tool
``-x ADDRESS`` too, so that its Via header names the address it really sends from.
"""

import os
import runpy
import socket
import sys

TOOLS = ('svmap', 'svwar', 'svcrack')


def main(argv):
    if len(argv) < 2 or argv[1] not in TOOLS:
        sys.stderr.write(__doc__)
        return 2
    address, tool = argv[0], argv[1]
    plain_bind = socket.socket.bind

    def bind(sock, where):
        if sock.family == socket.AF_INET and where[0] in ('', '0.0.0.0'):
            where = (address,) + tuple(where[1:])
        return plain_bind(sock, where)

    socket.socket.bind = bind
    script = os.path.realpath('/usr/bin/' + tool)  # -> /usr/share/sipvicious/sipvicious_<tool>
    sys.argv = [tool] + argv[2:]
    runpy.run_path(script, run_name='__main__')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
