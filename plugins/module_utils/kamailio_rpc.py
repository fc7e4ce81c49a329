# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to the running Kamailio: JSON-RPC over its FIFO, and what the modules ask of it.

Standard library only. The kamailio role loads ``jsonrpcs`` with the FIFO transport
(``<runtime_dir>/kamailio_rpc.fifo``): a client writes one JSON-RPC request naming a reply FIFO
(``reply_name``, created by the client in the same folder) and reads the answer from there.
The binrpc ctl socket (kamcmd) answers the same commands in a text format meant for people;
JSON is what a program should parse.

What is asked:
- registrations: ``ul.lookup location <aor>`` per SIP account (an error "AOR not found" means
  no contact is registered);
- remote actions: ``tm.t_uac_wait_block`` sends a NOTIFY to one registered contact through
  Kamailio's transaction layer and returns the phone's final reply (or tm's own 408 when the
  phone does not answer within fr_timer).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import select
import stat
import time
import uuid

from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError

DEFAULT_RPC_FIFO = '/run/voxplane-kamailio/kamailio_rpc.fifo'
# A reply to a NOTIFY comes within tm's fr_timer (5 s by default) or tm answers 408 itself.
DEFAULT_TIMEOUT = 15.0
_NOT_SET = '[not set]'


class RpcError(DirectoryError):
    """Kamailio cannot be asked (no FIFO, nobody reading it, no answer) or refused a command."""

    def __init__(self, message, code=None):
        super(RpcError, self).__init__(message)
        self.code = code


class FifoRpc(object):
    """JSON-RPC 2.0 over the jsonrpcs FIFO of a local Kamailio."""

    def __init__(self, fifo=DEFAULT_RPC_FIFO, timeout=DEFAULT_TIMEOUT):
        self.fifo = fifo
        self.timeout = timeout

    def _check(self):
        try:
            mode = os.stat(self.fifo).st_mode
        except OSError as e:
            raise RpcError('kamailio rpc %s: %s; is Kamailio running with the voxplane configuration '
                           '(roles/kamailio) on this host?' % (self.fifo, e.strerror))
        if not stat.S_ISFIFO(mode):
            raise RpcError('kamailio rpc %s: is not a FIFO (the jsonrpcs fifo_name of the Kamailio configuration)'
                           % self.fifo)

    def _open_request_fifo(self, deadline):
        # O_NONBLOCK so that a FIFO nobody reads (Kamailio stopped) fails instead of hanging.
        while True:
            try:
                return os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise RpcError('kamailio rpc %s: nobody reads the FIFO (%s); is Kamailio running?'
                                   % (self.fifo, e.strerror))
                time.sleep(0.05)

    def call(self, method, *params):
        """The ``result`` of ``method(params)``; RpcError with Kamailio's code and message on an error."""
        self._check()
        folder = os.path.dirname(self.fifo)
        reply_name = 'voxplane_reply_%s' % uuid.uuid4().hex[:12]
        reply_path = os.path.join(folder, reply_name)
        deadline = time.monotonic() + self.timeout
        try:
            os.mkfifo(reply_path, 0o600)
        except OSError as e:
            raise RpcError('kamailio rpc %s: cannot create a reply FIFO in %s (%s)' % (self.fifo, folder, e.strerror))
        try:
            # Kamailio (its own user) opens the reply FIFO for writing.
            os.chmod(reply_path, 0o666)
            request = dict(jsonrpc='2.0', method=method, params=[str(p) for p in params],
                           reply_name=reply_name, id=1)
            fd = self._open_request_fifo(deadline)
            try:
                os.write(fd, (json.dumps(request) + '\n').encode('utf-8'))
            finally:
                os.close(fd)
            text = self._read_reply(reply_path, deadline, method)
        finally:
            try:
                os.unlink(reply_path)
            except OSError:
                pass
        try:
            reply = json.loads(text)
        except ValueError:
            raise RpcError('kamailio rpc %s: %s answered something that is not JSON: %r' % (self.fifo, method, text[:200]))
        if 'error' in reply:
            error = reply['error'] or {}
            raise RpcError('kamailio rpc %s: %s: %s (%s)' % (self.fifo, method, error.get('message'), error.get('code')),
                           code=error.get('code'))
        return reply.get('result')

    def _read_reply(self, reply_path, deadline, method):
        fd = os.open(reply_path, os.O_RDONLY | os.O_NONBLOCK)
        chunks = []
        writer_seen = False
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RpcError('kamailio rpc %s: no answer to %s within %.0f s' % (self.fifo, method, self.timeout))
                ready = select.select([fd], [], [], min(left, 0.2))[0]
                if not ready:
                    continue
                data = os.read(fd, 65536)
                if data:
                    writer_seen = True
                    chunks.append(data)
                    continue
                # EOF: Kamailio wrote and closed (or has not opened it yet: keep waiting).
                if writer_seen:
                    break
                time.sleep(0.01)
        finally:
            os.close(fd)
        return b''.join(chunks).decode('utf-8', 'replace')


# ------------------------------------------------------------------------------ registrations
def _value(value):
    return None if value in (None, '', _NOT_SET) else value


def _host_port(uri):
    """host:port of a SIP URI such as sip:anna.desk@192.0.2.7:5062;transport=udp."""
    rest = uri.split(':', 1)[1] if ':' in uri else uri
    rest = rest.split('@', 1)[-1]
    return rest.split(';', 1)[0].split('?', 1)[0]


def contact_view(contact, now=None):
    """One usrloc contact (an entry of ul.lookup's Contacts) as the modules report it."""
    now = time.time() if now is None else now
    address = contact.get('Address')
    received = _value(contact.get('Received'))
    expires = contact.get('Expires')
    expires_in = expires if isinstance(expires, int) and expires >= 0 else None
    return dict(
        contact=address,
        # Where the REGISTER came from: the registrar records it (Received) when NAT handling is
        # on; otherwise requests go to the contact's own address, which is then the phone's.
        source=_host_port(received) if received else _host_port(address or ''),
        received=received,
        socket=_value(contact.get('Socket')),
        user_agent=_value(contact.get('User-Agent')) if contact.get('User-Agent') != 'n/a' else None,
        expires_in=expires_in,
        expires_at=(time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now + expires_in))
                    if expires_in is not None else None),
        call_id=_value(contact.get('Call-ID')),
    )


def registration(rpc, username, domain, now=None):
    """Registration status of one SIP account: registered, status text and its contacts."""
    aor = '%s@%s' % (username, domain)
    try:
        result = rpc.call('ul.lookup', 'location', aor)
    except RpcError as e:
        # usrloc answers "AOR not found" for an AOR it never saw and "AOR has no contacts" for
        # one whose last contact was just removed (unregistered, expired).
        if e.code in (404, 500) and ('aor not found' in str(e).lower() or 'aor has no contacts' in str(e).lower()):
            result = {}
        else:
            raise
    contacts = [contact_view(c.get('Contact', c), now) for c in (result or {}).get('Contacts') or []]
    contacts = [c for c in contacts if c['expires_in'] is None or c['expires_in'] > 0]
    return dict(username=username, aor=aor, registered=bool(contacts),
                status='registered' if contacts else 'not registered', contacts=contacts)


# ------------------------------------------------------------------------------ remote actions
def send_notify(rpc, contact, from_uri, to_uri, event):
    """Send one out-of-dialog NOTIFY with ``Event: <event>`` to a registered contact (the dict of
    contact_view) through Kamailio's tm, and wait for the phone's final reply.
    Returns (status code, reason)."""
    headers = ('From: <%s>;tag=%s\r\nTo: <%s>\r\nEvent: %s\r\nSubscription-State: terminated\r\n'
               'Contact: <%s>\r\nContent-Length: 0\r\n') % (from_uri, uuid.uuid4().hex[:10], to_uri, event, from_uri)
    next_hop = contact['received'] or '.'
    socket = contact['socket'] or '.'
    result = rpc.call('tm.t_uac_wait_block', 'NOTIFY', contact['contact'], next_hop, socket, headers)
    return _reply_status(result)


def _reply_status(result):
    """(code, reason) from tm.t_uac_wait_block's answer: {"code": 200, "text": "OK"} or the status line."""
    if isinstance(result, dict):
        code = result.get('code') or result.get('Code')
        reason = result.get('text') or result.get('reason') or result.get('Text') or ''
        if code is None and result.get('status'):
            return _reply_status(result['status'])
        return int(code) if code is not None else None, reason
    if isinstance(result, list) and result:
        return _reply_status(result[0])
    if isinstance(result, str):
        parts = result.strip().split(' ', 2)
        if parts and parts[0].upper().startswith('SIP/'):
            parts = parts[1:]
        try:
            return int(parts[0]), parts[1] if len(parts) > 1 else ''
        except (ValueError, IndexError):
            return None, result.strip()
    return None, repr(result)
