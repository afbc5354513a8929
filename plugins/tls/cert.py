"""Certificate analysis: trust, hostname, validity, key and signature, each judged apart.

sslyze validates the chain *and* the hostname *and* the validity dates in one step (its
path validation via cryptography), so a wrong hostname or an expired leaf shows up as
"untrusted". To keep findings precise, trust here means only "the chain is signed up to an
anchor from the system store or the profile's CA bundle"; hostname, dates, key size and
signature algorithm are separate facts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

_DER = Encoding.DER
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


@dataclass(frozen=True)
class CertReport:
    """Plain facts about a server's leaf certificate and chain (JSON-friendly)."""

    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: str
    not_after: str
    days_left: int
    expired: bool
    not_yet_valid: bool
    key_type: str
    key_bits: int
    signature: str
    signature_hash: str | None
    sha1_in_chain: bool
    self_signed: bool
    trusted: bool
    trust_anchor: str | None
    hostname: str
    hostname_match: bool
    chain_length: int
    ocsp_url: str | None
    ocsp_stapled: bool
    must_staple: bool
    #: sslyze's path-validation error per trust store (hostname and dates included)
    path_errors: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Short key description such as ``RSA 2048``."""
        return f"{self.key_type} {self.key_bits}"


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer``'s key verifies ``cert``'s signature (also SHA-1 ones, which cryptography's
    own check refuses: a SHA-1 chain is reported as such, not as untrusted)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    key, sig, tbs = issuer.public_key(), cert.signature, cert.tbs_certificate_bytes
    try:
        algo = cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and algo is not None:
            key.verify(sig, tbs, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algo is not None:
            key.verify(sig, tbs, ec.ECDSA(algo))
        elif isinstance(key, dsa.DSAPublicKey) and algo is not None:
            key.verify(sig, tbs, algo)
        else:
            return False
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject and the certificate's own key verifies its signature."""
    return cert.issuer == cert.subject and _signed_by(cert, cert)


def chain_anchor(chain: list[x509.Certificate], anchors: list[x509.Certificate]) -> str | None:
    """The subject of the anchor that the chain is signed up to, or None when it is not.

    Only signatures and names count; validity dates, key sizes and hostname are judged
    elsewhere. The server's own chain may be incomplete or out of order.
    """
    if not chain:
        return None
    anchor_ders = {a.public_bytes(_DER) for a in anchors}
    current, pool, seen = chain[0], list(chain[1:]), 0
    while seen < 10:
        seen += 1
        if current.public_bytes(_DER) in anchor_ders:
            return current.subject.rfc4514_string()
        for anchor in anchors:
            if anchor.subject == current.issuer and _signed_by(current, anchor):
                return anchor.subject.rfc4514_string()
        nxt = next((c for c in pool if c.subject == current.issuer and c is not current and _signed_by(current, c)), None)
        if nxt is None:
            return None
        pool.remove(nxt)
        current = nxt
    return None


def hostname_matches(cert: x509.Certificate, hostname: str) -> bool:
    """RFC 6125 match of ``hostname`` against the SANs (one left-most wildcard label; no CN fallback)."""
    host = hostname.strip("[]").rstrip(".").lower()
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return ip in sans.get_values_for_type(x509.IPAddress)
    for name in sans.get_values_for_type(x509.DNSName):
        pattern = name.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == pattern[2:] and rest.count(".") >= 1:
                return True
    return False


def san_list(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    out = [str(v) for v in sans.get_values_for_type(x509.DNSName)]
    out += [str(v) for v in sans.get_values_for_type(x509.IPAddress)]
    return tuple(out)


def key_info(cert: x509.Certificate) -> tuple[str, int]:
    """Key type and size in bits, e.g. ("RSA", 2048) or ("EC", 256)."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, 0


def signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algo = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return algo.name if algo else None


def _ocsp_url(cert: x509.Certificate) -> str | None:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for desc in aia:
        if desc.access_method == AuthorityInformationAccessOID.OCSP:
            return str(desc.access_location.value)
    return None


def _must_staple(cert: x509.Certificate) -> bool:
    try:
        feature = cert.extensions.get_extension_for_class(x509.TLSFeature).value
    except x509.ExtensionNotFound:
        return False
    return x509.TLSFeatureType.status_request in feature


def analyze(
    chain: list[x509.Certificate],
    hostname: str,
    anchors: list[x509.Certificate],
    *,
    ocsp_stapled: bool = False,
    path_errors: dict[str, str] | None = None,
    now: dt.datetime | None = None,
) -> CertReport:
    """Judge the chain a server sent for ``hostname`` against ``anchors``."""
    now = now or dt.datetime.now(dt.UTC)
    leaf = chain[0]
    key_type, key_bits = key_info(leaf)
    anchor = chain_anchor(chain, anchors)
    # SHA-1 matters on every certificate the client verifies, not on a self-signed root sent along
    sha1 = any(signature_hash(c) == "sha1" for c in chain if c is leaf or not is_self_signed(c))
    not_after = leaf.not_valid_after_utc
    not_before = leaf.not_valid_before_utc
    return CertReport(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        sans=san_list(leaf),
        not_before=not_before.isoformat(),
        not_after=not_after.isoformat(),
        days_left=int((not_after - now).total_seconds() // 86400),
        expired=now > not_after,
        not_yet_valid=now < not_before,
        key_type=key_type,
        key_bits=key_bits,
        signature=getattr(leaf.signature_algorithm_oid, "_name", leaf.signature_algorithm_oid.dotted_string),
        signature_hash=signature_hash(leaf),
        sha1_in_chain=sha1,
        self_signed=is_self_signed(leaf),
        trusted=anchor is not None,
        trust_anchor=anchor,
        hostname=hostname,
        hostname_match=hostname_matches(leaf, hostname),
        chain_length=len(chain),
        ocsp_url=_ocsp_url(leaf),
        ocsp_stapled=ocsp_stapled,
        must_staple=_must_staple(leaf),
        path_errors=dict(path_errors or {}),
    )


def system_bundle() -> str | None:
    """Path of the system's CA bundle (OpenSSL's default file, else a known location)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, *SYSTEM_BUNDLES):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@lru_cache(maxsize=8)
def _load_pem_file(path: str, mtime: float) -> tuple[x509.Certificate, ...]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few system roots have non-positive serial numbers
        return tuple(x509.load_pem_x509_certificates(Path(path).read_bytes()))


def load_anchors(ca_bundle: str | None, include_system: bool = True) -> list[x509.Certificate]:
    """Trust anchors: the system store plus the profile's CA bundle (PEM, possibly several)."""
    out: list[x509.Certificate] = []
    for path in ([system_bundle()] if include_system else []) + [ca_bundle]:
        if path and Path(path).is_file():
            out.extend(_load_pem_file(path, Path(path).stat().st_mtime))
    return out
