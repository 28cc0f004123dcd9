#!/usr/bin/env python3
"""Writes a throwaway test CA and a server certificate it signed (for localhost and 127.0.0.1)
into DIR, for the interop tests over TLS:

    "$VENV/bin/python" make_test_cert.py DIR    ->  DIR/ca.pem DIR/cert.pem DIR/key.pem

Uses the `cryptography` package pinned in requirements.txt (pyOpenSSL's dependency). The
certificate is a proper end-entity certificate (CA:FALSE), signed by a separate CA, so rustls
and OpenSSL clients both accept it when they trust ca.pem.
"""

import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def main(out):
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder()
          .subject_name(name("wamp interop test CA")).issuer_name(name("wamp interop test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    os.makedirs(out, exist_ok=True)
    pem = serialization.Encoding.PEM
    with open(os.path.join(out, "ca.pem"), "wb") as fh:
        fh.write(ca.public_bytes(pem))
    with open(os.path.join(out, "cert.pem"), "wb") as fh:
        fh.write(cert.public_bytes(pem))
    with open(os.path.join(out, "key.pem"), "wb") as fh:
        fh.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_test_cert.py DIR")
    main(sys.argv[1])
