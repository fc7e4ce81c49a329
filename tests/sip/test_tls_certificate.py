# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS with a certificate the user supplies (kamailio_tls_certificate, kamailio_tls_private_key):
phones see exactly that certificate, and the role makes no self-signed one beside it. (The
role's own self-signed certificate is tested with the NAT lab's TLS phone, test_nat_media.py.)"""

import os
import socket
import ssl
import subprocess

import pytest

from lab.kamailio import kamailio_lab, missing_prerequisites
from lab.net import free_port

NAME = 'pbx.example.test'


def _certificate(instance):
    """A certificate of the user's own for NAME and the instance's address, and a tls listen
    entry on a free port: the role variables of the deployment."""
    cert, key = os.path.join(instance.root, 'pbx.pem'), os.path.join(instance.root, 'pbx.key')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=' + NAME,
                    '-addext', 'subjectAltName=DNS:%s,IP:%s' % (NAME, instance.address), '-keyout', key, '-out', cert],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o644)  # the kamailio user reads the certificate and key from here
    instance.certificate = cert
    instance.tls_port = free_port(instance.address)
    listen = instance.variables()['kamailio_listen'] + [{'proto': 'tls', 'address': instance.address,
                                                         'port': instance.tls_port}]
    return {'kamailio_listen': listen, 'kamailio_tls_certificate': cert, 'kamailio_tls_private_key': key}


@pytest.fixture(scope='module')
def user_certificate():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    with kamailio_lab(prefix='voxplane-tls-', provision=False, setup=_certificate) as instance:
        yield instance


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
