# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voxplane demo: a desk phone that sets itself up (playbooks/demo.yml, play "A provisioned phone").

Usage: provisioned_phone.py <plan.json> [--unregister]. The plan names the provisioning URL, the
certificate to verify it with, the activation code, the MAC, the SIP domain, Kamailio's address,
the sipp scenario and the phone's port. Like a phone: present the activation code, fetch the
configuration file over HTTPS with the credentials it returned, read the SIP account from the
file and REGISTER with it (sipp). Prints one JSON object: what it fetched and whether the
registration succeeded. With --unregister: REGISTER the same contact with Expires 0.
"""

import base64
import json
import os
import ssl
import subprocess
import sys
import urllib.parse
import urllib.request


def fetch(plan, path, user=None, password=None):
    context = ssl.create_default_context(cafile=plan['cafile'])
    request = urllib.request.Request(plan['url'].rstrip('/') + path)
    if user:
        request.add_header('Authorization', 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode())
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        return answer.status, answer.read().decode('utf-8')


def register(plan, user, password, expires):
    inf = os.path.join(plan['run_dir'], 'provisioned-phone.csv')
    with open(inf, 'w') as handle:
        handle.write('SEQUENTIAL\n%s;%s;[authentication username=%s password=%s];<sip:%s@%s:%d>;%d\n'
                     % (user, plan['domain'], user, password, user, plan['proxy']['address'], plan['port'], expires))
    cmd = ['sipp', '%s:%d' % (plan['proxy']['address'], plan['proxy']['port']), '-sf', plan['scenario'],
           '-i', plan['proxy']['address'], '-p', str(plan['port']), '-m', '1', '-inf', inf, '-timeout', '10s',
           '-timeout_error', '-nostdin', '-trace_err', '-error_file', os.path.join(plan['run_dir'], 'provisioned-phone.err')]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=25, check=False).returncode
    finally:
        os.unlink(inf)  # it held the password


def main(argv):
    with open(argv[1]) as handle:
        plan = json.load(handle)
    state_file = os.path.join(plan['run_dir'], 'provisioned-phone.json')
    if '--unregister' in argv:
        with open(state_file) as handle:
            state = json.load(handle)
        rc = register(plan, state['user'], state['password'], 0)
        os.unlink(state_file)
        print(json.dumps(dict(unregistered=rc == 0)))
        return 0
    status, text = fetch(plan, '/activate?' + urllib.parse.urlencode({'code': plan['code']}))
    credentials = json.loads(text)
    name = [n for n in credentials['files'] if n.endswith('.cfg')][0]
    status, config = fetch(plan, '/' + name, credentials['username'], credentials['password'])
    pairs = dict((k.strip(), v.strip()) for k, _sep, v in
                 (line.partition('=') for line in config.splitlines() if '=' in line and not line.startswith('#')))
    user, password = pairs['account.1.user_name'], pairs['account.1.password']
    rc = register(plan, user, password, 300)
    with open(state_file, 'w') as handle:
        os.chmod(state_file, 0o600)
        json.dump(dict(user=user, password=password), handle)
    again = None
    try:
        fetch(plan, '/activate?' + urllib.parse.urlencode({'code': plan['code']}))
    except urllib.error.HTTPError as refused:
        again = '%d %s' % (refused.code, refused.read().decode().strip())
    print(json.dumps(dict(activated=credentials['username'], file=plan['url'].rstrip('/') + '/' + name,
                          display_name=pairs['account.1.display_name'], user=user, registered=rc == 0,
                          code_again=again)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
