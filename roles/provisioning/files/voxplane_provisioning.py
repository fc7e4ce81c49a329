# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane provisioning app: serves each desk phone its configuration file, rendered at request
time from the directory, behind nginx (which terminates TLS, rate-limits and hides everything
but the phone file names and /activate).

Rendered per request rather than written at apply time: a device, its extension or its
accounts change through any module, tenant_config or a feature code, and the next fetch must
show it (within 1 s of the commit) without a separate run; reading one tenant from SQLite and
rendering one template takes milliseconds.

Usage: voxplane_provisioning.py <settings.json>. The settings name the directory, the file with
the provisioning secret, the templates folder, the SIP server, the public URL, the listen
address (loopback) and the failure limits. The pure logic lives in
ansible_collections/voxplane/pbx/plugins/module_utils/provisioning.py, next to this file.
"""

import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jinja2  # noqa: E402  (Debian: python3-jinja2)

from ansible_collections.voxplane.pbx.plugins.module_utils import provisioning  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.model import DEVICE  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import reconcile  # noqa: E402
from ansible_collections.voxplane.pbx.plugins.module_utils.store import Directory  # noqa: E402

LOG = logging.getLogger('voxplane-provisioning')
REALM = 'voxplane provisioning'


class App(object):
    def __init__(self, settings):
        self.settings = settings
        self.directory = Directory(settings['directory_path'])
        with open(settings['secret_file']) as handle:
            self.secret = handle.read().strip()
        provisioning.device_password(self.secret, '00:00:00:00:00:00')  # fails early on a short secret
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(settings['templates_dir']),
            autoescape=lambda name: name in provisioning.XML_TEMPLATES,
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
        limits = settings.get('failures', {})
        self.failures = provisioning.FailureCounter(int(limits.get('limit', 10)), int(limits.get('window', 60)),
                                                    int(limits.get('ban', 300)))
        self.lock = threading.Lock()

    # -------------------------------------------------------------------- answers
    def handle(self, method, path, query, headers, source):
        """(status, content type, body, extra headers, log note)."""
        with self.lock:
            banned = self.failures.is_banned(source)
        if banned:
            return 429, 'text/plain', 'too many failed requests from %s; try again later\n' % source, {}, 'banned'
        if path == '/activate':
            return self.activate(method, query)
        name = path[1:] if path.startswith('/') else path
        parsed = provisioning.parse_path(name) if '/' not in name else None
        if method not in ('GET', 'HEAD') or parsed is None:
            return 404, 'text/plain', 'not found\n', {}, 'no such file'
        mac, pattern = parsed
        found = self.load_device(mac)
        if found is None:
            return self.failed(source, 404, 'not found\n', 'unknown MAC %s' % mac)
        state, device = found
        files = provisioning.file_names(device)
        if pattern not in files:
            return 404, 'text/plain', 'not found\n', {}, 'device %s (%s) does not use %s' % (mac, device['model'], name)
        authorization = headers.get('Authorization')
        challenge = {'WWW-Authenticate': 'Basic realm="%s", charset="UTF-8"' % REALM}
        if not authorization:
            return 401, 'text/plain', 'credentials required\n', challenge, 'no credentials for %s' % mac
        if not provisioning.check_basic_auth(authorization, self.secret, mac):
            status = self.failed(source, 401, 'wrong credentials\n', 'wrong credentials for device %s (tenant %s)'
                                 % (mac, state.name))
            return status[:3] + (challenge, status[4])
        settings, skipped = provisioning.phone_settings(state, mac, self.secret, self.settings['sip_server'],
                                                        self.settings['provisioning_url'])
        for username, why in skipped:
            LOG.warning('device %s (tenant %s): line %s left out: %s', mac, state.name, username, why)
        template = files[pattern]
        body = self.templates.get_template(template).render(settings)
        content_type = 'application/xml' if template in provisioning.XML_TEMPLATES else 'text/plain'
        return 200, content_type + '; charset=utf-8', body, {}, 'device %s (tenant %s) %s' % (mac, state.name, template)

    def failed(self, source, status, text, note):
        with self.lock:
            banned_now = self.failures.fail(source)
        if banned_now:
            LOG.warning('%s: %d failed requests within %d s: refused for %d s', source, self.failures.limit,
                        self.failures.window, self.failures.ban)
        return status, 'text/plain', text, {}, note

    def load_device(self, mac):
        with self.directory.transaction(write=False, create=False) as txn:
            tenant = txn.mac_owner(mac, '')
            if tenant is None:
                return None
            state = txn.load_tenant(tenant)
        device = state.get(DEVICE, mac)
        return (state, device) if device is not None else None

    # -------------------------------------------------------------------- activation codes
    def activate(self, method, query):
        """GET/POST /activate?code=1234-5678-9012-3456: the device's provisioning URL and credentials,
        once. A used or expired code is refused with 410 and says which."""
        code = (query.get('code') or [''])[0]
        if not code:
            return 400, 'text/plain', 'give the activation code: /activate?code=<16 digits>\n', {}, 'activation without code'
        digest = provisioning.activation_hash(code)
        with self.lock:  # one activation at a time: a code is used exactly once
            try:
                with self.directory.transaction(write=True, create=False) as txn:
                    found = txn.device_by_activation(digest)
                    if found is None:
                        raise LookupError()
                    tenant, mac = found
                    state = txn.load_tenant(tenant)
                    activation = state.get(DEVICE, mac).get('activation')
                    status = provisioning.activation_state(activation)
                    if status != 'valid':
                        txn.rollback_at_exit()
                    else:
                        used = dict(activation, used_at=int(time.time()))
                        reconcile(txn, tenant, None, {DEVICE: {mac: {'activation': used}}}, create=False)
            except LookupError:
                return 404, 'text/plain', 'unknown activation code\n', {}, 'unknown activation code'
        if status == 'used':
            return 410, 'text/plain', 'activation code already used\n', {}, 'activation code of %s already used' % mac
        if status == 'expired':
            return 410, 'text/plain', 'activation code expired\n', {}, 'activation code of %s expired' % mac
        device = state.get(DEVICE, mac)
        files = sorted(provisioning.file_names(device))
        body = json.dumps(dict(
            mac=mac, username=provisioning.device_user(mac), password=provisioning.device_password(self.secret, mac),
            provisioning_url=self.settings['provisioning_url'].rstrip('/') + '/',
            files=[provisioning.concrete_name(p, mac) for p in files]), indent=1) + '\n'
        return 200, 'application/json', body, {'Cache-Control': 'no-store'}, 'device %s (tenant %s) activated' % (mac, tenant)


def make_handler(app, trusted_proxies):
    class Handler(BaseHTTPRequestHandler):
        server_version = 'voxplane-provisioning'
        sys_version = ''

        def _source(self):
            peer = self.client_address[0]
            if peer in trusted_proxies and self.headers.get('X-Real-IP'):
                return self.headers['X-Real-IP']
            return peer

        def _serve(self, method):
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if method == 'POST':
                length = min(int(self.headers.get('Content-Length') or 0), 4096)
                query.update(parse_qs(self.rfile.read(length).decode('utf-8', 'replace')))
            source = self._source()
            try:
                status, ctype, body, extra, note = app.handle(method, parts.path, query, self.headers, source)
            except (DirectoryError, OSError, jinja2.TemplateError) as exc:
                status, ctype, body, extra, note = 503, 'text/plain', 'provisioning unavailable\n', {}, str(exc)
            data = body.encode('utf-8')
            self.send_response(status)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(data)))
            self.send_header('Cache-Control', 'no-store')
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            if method != 'HEAD':
                self.wfile.write(data)
            level = logging.INFO if status < 400 else logging.WARNING
            LOG.log(level, '%s %s %s %d %s', source, method, parts.path, status, note)

        def do_GET(self):  # noqa: N802
            self._serve('GET')

        def do_HEAD(self):  # noqa: N802
            self._serve('HEAD')

        def do_POST(self):  # noqa: N802
            self._serve('POST')

        def log_message(self, fmt, *args):  # the access line is logged by _serve
            return

    return Handler


def main(argv):
    with open(argv[1]) as handle:
        settings = json.load(handle)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    app = App(settings)
    server = ThreadingHTTPServer((settings['listen_address'], int(settings['listen_port'])),
                                 make_handler(app, set(settings.get('trusted_proxies', ['127.0.0.1']))))
    server.daemon_threads = True
    LOG.info('serving %s on %s:%s', settings['directory_path'], settings['listen_address'], settings['listen_port'])
    server.serve_forever()


if __name__ == '__main__':
    main(sys.argv)
