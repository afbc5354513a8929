"""A throw-away test CA and a server leaf for 127.0.0.1/::1/localhost, and the server TLS contexts.

The leaf is signed by a separate CA (CA:TRUE) because TLS scanners such as sslyze reject a
self-signed leaf that is its own CA. Both are RSA 2048, valid 365 days, regenerated at every start.
"""

from __future__ import annotations

import ipaddress
import ssl
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crm_audit.fsutil import write_atomic

VALIDITY = timedelta(days=365)  # within Mozilla's 366-day limit; a short one trips expiry checks
STRONG_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1"
WEAK_CIPHERS = "ALL:!aNULL:!eNULL:@SECLEVEL=0"


@dataclass(frozen=True)
class CertPaths:
    """Where the CA certificate, the leaf certificate and the leaf key were written."""

    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crm-audit demo"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def generate_certs(directory: Path) -> CertPaths:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` (0600) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("crm-audit demo test CA"))
        .issuer_name(_name("crm-audit demo test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = CertPaths(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server.key")
    # each file appears whole (temp file + rename): the parent polls for ca.pem while this runs
    write_atomic(paths.key, leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()), mode=0o600)
    write_atomic(paths.cert, leaf_cert.public_bytes(serialization.Encoding.PEM))
    write_atomic(paths.ca, ca_cert.public_bytes(serialization.Encoding.PEM))  # last: its presence means all are ready
    return paths


def server_ssl_context(paths: CertPaths, weak: bool = False) -> ssl.SSLContext:
    """TLS 1.2+ with AEAD/ECDHE suites; ``weak`` (the weak-tls flaw) also TLS 1.0/1.1 at SECLEVEL=0."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths.cert, paths.key)
    ctx.options |= ssl.OP_NO_COMPRESSION | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    if weak:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # deliberately deprecated protocols
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers(WEAK_CIPHERS)
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(STRONG_CIPHERS)
        # OpenSSL also offers X448 and secp521r1, which Mozilla's intermediate profile leaves out;
        # Python's ssl can pin only one group, so pin the one every client speaks.
        ctx.set_ecdh_curve("prime256v1")
    return ctx
