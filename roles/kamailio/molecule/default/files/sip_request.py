# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One SIP request over UDP; prints the final reply (status line, then the headers, one a line).

    sip_request.py OPTIONS 127.0.0.61 35061
    sip_request.py REGISTER 127.0.0.61 35061 acme.sip.test

Sent from the server's own address (an ephemeral port), retransmitted like a SIP client would
(every 0.5 s, 3 s at most). Exit status 1 when no final reply came.
"""

import socket
import sys
import uuid


def request(method, address, port, domain):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    local_port = sock.getsockname()[1]
    tag = uuid.uuid4().hex[:10]
    target = 'sip:%s' % domain if domain else 'sip:%s:%d' % (address, port)
    aor = 'sip:probe@%s' % (domain or address)
    message = '\r\n'.join([
        '%s %s SIP/2.0' % (method, target),
        'Via: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bK%s' % (address, local_port, tag),
        'Max-Forwards: 70',
        'From: <%s>;tag=%s' % (aor, tag),
        'To: <%s>' % (aor if method == 'REGISTER' else target),
        'Call-ID: %s@%s' % (uuid.uuid4().hex, address),
        'CSeq: 1 %s' % method,
        'Contact: <sip:probe@%s:%d>' % (address, local_port),
        'Content-Length: 0', '', '']).encode('ascii')
    sock.settimeout(0.5)
    try:
        for _attempt in range(6):
            sock.sendto(message, (address, port))
            try:
                while True:
                    reply = sock.recv(65535).decode('utf-8', 'replace')
                    status = reply.split('\r\n', 1)[0].split(' ')
                    if len(status) > 1 and status[1].isdigit() and int(status[1]) >= 200:
                        return reply.split('\r\n\r\n', 1)[0]
            except socket.timeout:
                continue
    finally:
        sock.close()
    return None


def main(argv):
    method, address, port = argv[1], argv[2], int(argv[3])
    domain = argv[4] if len(argv) > 4 else None
    reply = request(method, address, port, domain)
    if reply is None:
        print('no final reply to %s from %s:%d' % (method, address, port))
        return 1
    print(reply.replace('\r\n', '\n'))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
