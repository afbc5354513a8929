"""Cipher-suite facts from IANA names: key exchange, forward secrecy, weaknesses.

Kept apart from the sslyze wrapper so the rules are plain functions, testable without a
server, and the same rules feed findings, grade and the benchmark comparison.
"""

from __future__ import annotations

import re

LEGACY_PROTOCOLS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1")

#: weakness tags, in the order reports list them
WEAK_TAGS = ("NULL", "EXPORT", "anonymous", "RC4", "DES", "3DES", "64-bit block", "CBC in TLS <= 1.1", "< 128-bit")

_KX_RE = re.compile(r"^(?:TLS|SSL)_(.+?)_WITH_")

#: RSA-equivalent strength of an (EC)DH group or curve key, in bits (NIST SP 800-57)
_EC_TO_RSA_BITS = ((160, 1024), (224, 2048), (256, 3072), (384, 7680), (521, 15360))


def key_exchange(name: str, protocol: str) -> str:
    """Key-exchange family of a suite: ECDHE, DHE, ECDH, DH, RSA, anon, PSK, SRP or TLS13."""
    if protocol == "TLS 1.3":
        return "TLS13"
    if name.startswith("SSL_CK_"):
        return "RSA"
    m = _KX_RE.match(name)
    part = m.group(1) if m else ""
    if "anon" in part:
        return "anon"
    for family in ("ECDHE", "DHE", "ECDH", "DH", "RSA", "PSK", "SRP"):
        if part == family or part.startswith(family + "_"):
            return family
    return part or "unknown"


def forward_secret(name: str, protocol: str) -> bool:
    """True when the suite uses an ephemeral, authenticated key exchange (or is TLS 1.3)."""
    return key_exchange(name, protocol) in ("ECDHE", "DHE", "TLS13")


def effective_bits(name: str, key_size: int) -> int:
    """Symmetric strength: 3DES counts as 112 bits (meet-in-the-middle), as SSL Labs does."""
    if "3DES" in name or "DES_192_EDE3" in name:
        return 112
    return key_size


def weaknesses(name: str, protocol: str, key_size: int, anonymous: bool) -> tuple[str, ...]:
    """Tags from :data:`WEAK_TAGS` that apply to one accepted suite (empty when sound)."""
    tags: set[str] = set()
    after_with = name.split("_WITH_", 1)[-1]
    if after_with.startswith("NULL") or "_NULL_" in name or key_size == 0:
        tags.add("NULL")
    if "EXPORT" in name:
        tags.add("EXPORT")
    if anonymous or "_anon_" in name:
        tags.add("anonymous")
    if "RC4" in name:
        tags.add("RC4")
    if "3DES" in name or "DES_192_EDE3" in name:
        tags.update(("3DES", "64-bit block"))
    elif re.search(r"(?:^|_)DES(?:40|_64)?_", name):
        tags.update(("DES", "64-bit block"))
    if "IDEA" in name or "RC2" in name:
        tags.add("64-bit block")
    if protocol in LEGACY_PROTOCOLS and "CBC" in name:
        tags.add("CBC in TLS <= 1.1")
    bits = effective_bits(name, key_size)
    if 0 < bits < 128:
        tags.add("< 128-bit")
    return tuple(t for t in WEAK_TAGS if t in tags)


def ec_rsa_equivalent(bits: int) -> int:
    """RSA-equivalent strength of an elliptic-curve key of ``bits`` (X25519 counts as 256)."""
    if bits in (253, 255):
        bits = 256
    if bits in (448, 456):
        bits = 448
    equivalent = 512
    for ec_bits, rsa_bits in _EC_TO_RSA_BITS:
        if bits >= ec_bits:
            equivalent = rsa_bits
    return equivalent
