# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS with a certificate the user supplies (kamailio_tls_certificate, kamailio_tls_private_key):
phones see exactly that certificate, and the role makes no self-signed one beside it. (The
role's own self-signed certificate is tested with the NAT lab's TLS phone, test_nat_media.py.)"""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile

import pytest

from sip_harness import KamailioInstance, free_port, missing_prerequisites, pick_loopback_address, wait_for_options

NAME = 'pbx.example.test'


@pytest.fixture(scope='module')
def user_certificate():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    root = tempfile.mkdtemp(prefix='voxplane-tls-')
    os.chmod(root, 0o755)  # the kamailio user reads the certificate and key from here
    address = pick_loopback_address()
    cert, key = os.path.join(root, 'pbx.pem'), os.path.join(root, 'pbx.key')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=' + NAME,
                    '-addext', 'subjectAltName=DNS:%s,IP:%s' % (NAME, address), '-keyout', key, '-out', cert],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o644)
    instance = KamailioInstance(root, address, free_port(address))
    instance.tls_port = free_port(address)
    listen = instance.variables()['kamailio_listen'] + [{'proto': 'tls', 'address': address, 'port': instance.tls_port}]
    try:
        run = instance.deploy(kamailio_listen=listen, kamailio_tls_certificate=cert, kamailio_tls_private_key=key)
        assert run.rc == 0, 'the role failed to deploy Kamailio: %r\n%s' % (run, instance.log_tail())
        assert wait_for_options(address, instance.port), instance.log_tail()
        instance.certificate = cert
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_phones_see_the_certificate_the_user_supplied(user_certificate):
    kamailio = user_certificate
    context = ssl.create_default_context(cafile=kamailio.certificate)  # verified: name and chain
    with socket.create_connection((kamailio.address, kamailio.tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as conn:
            served = conn.getpeercert(binary_form=True)
            conn.sendall(b'\r\n\r\n')
            assert conn.recv(16) == b'\r\n'
    with open(kamailio.certificate) as handle:
        assert served == ssl.PEM_cert_to_DER_cert(handle.read())


def test_no_self_signed_certificate_is_made_beside_it(user_certificate):
    made = os.path.join(user_certificate.config_dir, 'tls')
    assert not os.path.exists(os.path.join(made, 'server.pem')), os.listdir(made)
    with open(os.path.join(user_certificate.config_dir, 'tls.cfg')) as handle:
        assert user_certificate.certificate in handle.read()
