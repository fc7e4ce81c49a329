# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rtpengine's ng protocol for the molecule verify step: ping, offer an SDP, delete the call.

    python3 ng_request.py 127.0.0.1:PORT

Prints {"ping": ..., "offer_address": ..., "offer_port": ..., "delete": ...} as JSON.
Standard library only.
"""

import json
import re
import socket
import sys


def bencode(value):
    if isinstance(value, int):
        return b'i%de' % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b'%d:%s' % (len(value), value)
    if isinstance(value, list):
        return b'l' + b''.join(bencode(item) for item in value) + b'e'
    return b'd' + b''.join(bencode(key) + bencode(value[key]) for key in sorted(value)) + b'e'


def bdecode(data, pos=0):
    """(value, next position) of the bencoded value at pos; strings as str."""
    kind = data[pos:pos + 1]
    if kind == b'i':
        end = data.index(b'e', pos)
        return int(data[pos + 1:end]), end + 1
    if kind in (b'l', b'd'):
        pos, items = pos + 1, []
        while data[pos:pos + 1] != b'e':
            item, pos = bdecode(data, pos)
            items.append(item)
        return (items if kind == b'l' else dict(zip(items[0::2], items[1::2]))), pos + 1
    colon = data.index(b':', pos)
    length = int(data[pos:colon])
    return data[colon + 1:colon + 1 + length].decode('utf-8', 'replace'), colon + 1 + length


def request(sock, target, cookie, command):
    sock.sendto(cookie + b' ' + bencode(command), target)
    while True:
        head, _sep, body = sock.recv(65536).partition(b' ')
        if head == cookie:
            return bdecode(body)[0]


def main(argv):
    host, port = argv[1].rsplit(':', 1)
    target = (host, int(port))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3.0)
    sdp = ('v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n'
           'm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n')
    ping = request(sock, target, b'1', {'command': 'ping'})
    offer = request(sock, target, b'2', {'command': 'offer', 'call-id': 'molecule-1', 'from-tag': 'a',
                                         'sdp': sdp, 'replace': ['origin', 'session-connection']})
    deleted = request(sock, target, b'3', {'command': 'delete', 'call-id': 'molecule-1', 'from-tag': 'a'})
    body = offer.get('sdp', '')
    address = re.search(r'^c=IN IP4 (\S+)', body, re.M)
    media = re.search(r'^m=audio (\d+)', body, re.M)
    print(json.dumps({'ping': ping.get('result'), 'offer_result': offer.get('result'),
                      'offer_address': address.group(1) if address else None,
                      'offer_port': int(media.group(1)) if media else None, 'delete': deleted.get('result')}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
