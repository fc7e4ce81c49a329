# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Send one INVITE with the media service's header over UDP from a given address and print the
final answer's status code (the molecule scenario's check of who the service takes calls from).

    python3 sip_invite.py SOURCE_ADDRESS SERVICE_ADDRESS:PORT REQUEST_URI
"""

import socket
import sys
import uuid


def main(source, target, uri):
    host, port = target.rsplit(':', 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.settimeout(5)
    local = sock.getsockname()
    tag = uuid.uuid4().hex
    message = ('INVITE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n'
               'From: <sip:probe@%s>;tag=%s\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n'
               'Contact: <sip:probe@%s:%d>\r\nX-Voxplane-Media: voicemail;mailbox=10;reason=user-busy\r\n'
               'Content-Length: 0\r\n\r\n' % (uri, local[0], local[1], tag, local[0], tag, uri, tag, local[0], local[1]))
    sock.sendto(message.encode(), (host, int(port)))
    while True:
        reply = sock.recv(65535).decode('utf-8', 'replace')
        code = int(reply.split(None, 2)[1])
        if code >= 200:
            print(code)
            return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:]))
