"""Overall TLS grade A+ … F, in the style of SSL Labs' rating guide and testssl.sh's rating.

Score = 30 % protocol + 30 % key exchange + 40 % cipher strength (each 0-100), then caps
for problems that no score should hide. The full rule, with the reasons for each cap, is in
``docs/tls.md``; keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ciphers import ec_rsa_equivalent
from .scan import ServerReport

PROTOCOL_SCORES = {"SSL 2.0": 0, "SSL 3.0": 80, "TLS 1.0": 90, "TLS 1.1": 95, "TLS 1.2": 100, "TLS 1.3": 100}
#: score bands: lowest score for each letter
BANDS = (("A", 80), ("B", 65), ("C", 50), ("D", 35), ("E", 20), ("F", 0))
#: highest score a capped grade may keep
CEILING = {"A": 100, "B": 79, "C": 64, "D": 49, "E": 34, "F": 19}
ORDER = ("A+", "A", "B", "C", "D", "E", "F")
HSTS_A_PLUS_MIN_AGE = 31_536_000  # one year


@dataclass(frozen=True)
class Grade:
    """The letter, the final 0-100 score, the sub-scores and why the grade was capped."""

    letter: str
    score: float
    protocol: float
    key_exchange: float
    cipher: float
    raw_score: float
    caps: tuple[tuple[str, str], ...] = ()
    #: why A+ was not given (empty when it was, or when the grade is below A)
    no_a_plus: tuple[str, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return f"TLS grade {self.letter}"


def _kx_strength_score(bits: int) -> float:
    """SSL Labs' key-exchange table on RSA-equivalent bits."""
    if bits <= 0:
        return 0
    for limit, score in ((512, 20), (1024, 40), (2048, 80), (4096, 90)):
        if bits < limit:
            return score
    return 100


def _cipher_strength_score(bits: int) -> float:
    if bits <= 0:
        return 0
    if bits < 128:
        return 20
    if bits < 256:
        return 80
    return 100


def _server_key_bits(report: ServerReport) -> int | None:
    cert = report.certificate
    if cert is None:
        return None
    if cert.key_type in ("RSA", "DSA"):
        return cert.key_bits
    return ec_rsa_equivalent(cert.key_bits)


def sub_scores(report: ServerReport) -> tuple[float, float, float]:
    """Protocol, key-exchange and cipher-strength scores (0-100 each)."""
    offered = report.offered
    if not offered:
        return 0.0, 0.0, 0.0
    proto = [PROTOCOL_SCORES[p] for p in offered]
    protocol = (max(proto) + min(proto)) / 2

    kx_bits: list[int] = []
    server_bits = _server_key_bits(report)
    if server_bits:
        kx_bits.append(server_bits)
    for c in report.ciphers:
        if c.kx == "anon":
            kx_bits.append(0)
        elif c.kx in ("DHE", "DH") and c.kx_bits:
            kx_bits.append(c.kx_bits)
        elif c.kx in ("ECDHE", "ECDH") and c.kx_bits:
            kx_bits.append(ec_rsa_equivalent(c.kx_bits))
    key_exchange = _kx_strength_score(min(kx_bits)) if kx_bits else 0.0

    bits = [c.bits for c in report.ciphers] or [0]
    cipher = (_cipher_strength_score(max(bits)) + _cipher_strength_score(min(bits))) / 2
    return float(protocol), float(key_exchange), float(cipher)


def caps(report: ServerReport) -> list[tuple[str, str]]:
    """(letter, reason) for every cap that applies; the lowest letter wins."""
    out: list[tuple[str, str]] = []
    cert, v, offered = report.certificate, report.vulns, set(report.offered)
    tags = {t for c in report.ciphers for t in c.weak}
    if cert is not None:
        if cert.expired:
            out.append(("F", "certificate expired"))
        if cert.not_yet_valid:
            out.append(("F", "certificate not yet valid"))
        if not cert.trusted:
            out.append(("F", "certificate self-signed" if cert.self_signed else "certificate not trusted"))
        if not cert.hostname_match:
            out.append(("F", "certificate does not match the host name"))
        if cert.sha1_in_chain:
            out.append(("F", "SHA-1 certificate signature"))
        if cert.key_type in ("RSA", "DSA") and cert.key_bits < 1024:
            out.append(("F", f"{cert.key_type} key under 1024 bits"))
        elif cert.key_type in ("RSA", "DSA") and cert.key_bits < 2048:
            out.append(("B", f"{cert.key_type} key under 2048 bits"))
        elif cert.key_type == "EC" and cert.key_bits < 224:
            out.append(("B", "EC key under 224 bits"))
    if "SSL 2.0" in offered:
        out.append(("F", "SSL 2.0 offered"))
    if tags & {"NULL", "EXPORT", "anonymous"}:
        out.append(("F", "NULL, EXPORT or anonymous cipher suites offered"))
    if v.heartbleed:
        out.append(("F", "vulnerable to Heartbleed"))
    if v.ccs_injection:
        out.append(("F", "vulnerable to OpenSSL CCS injection"))
    if v.robot == "VULNERABLE_STRONG_ORACLE":
        out.append(("F", "vulnerable to ROBOT (strong oracle)"))
    if v.secure_renegotiation is False:
        out.append(("F", "insecure renegotiation"))
    if "SSL 3.0" in offered:
        out.append(("C", "SSL 3.0 offered"))
    if "RC4" in tags:
        out.append(("C", "RC4 offered"))
    if v.compression:
        out.append(("C", "TLS compression (CRIME)"))
    if "64-bit block" in tags:
        out.append(("C", "64-bit block ciphers (SWEET32)"))
    if offered & {"TLS 1.0", "TLS 1.1"}:
        out.append(("B", "TLS 1.0 or 1.1 offered"))
    if report.ciphers and not any(c.forward_secret for c in report.ciphers):
        out.append(("B", "no forward secrecy"))
    if any(b < 2048 for b in report.dh_bits):
        out.append(("B", "DH parameters under 2048 bits"))
    if v.robot == "VULNERABLE_WEAK_ORACLE":
        out.append(("B", "vulnerable to ROBOT (weak oracle)"))
    if "TLS 1.2" not in offered and "TLS 1.3" not in offered and offered:
        out.append(("C", "neither TLS 1.2 nor TLS 1.3 offered"))
    return out


def _letter_for(score: float) -> str:
    for letter, low in BANDS:
        if score >= low:
            return letter
    return "F"


def grade(report: ServerReport, hsts_max_age: int | None) -> Grade:
    """Grade one scanned server; ``hsts_max_age`` is None when no HSTS header was seen."""
    if report.error or not report.offered:
        return Grade("F", 0.0, 0.0, 0.0, 0.0, 0.0, (("F", report.error or "no protocol offered"),))
    p, k, c = sub_scores(report)
    raw = round(0.3 * p + 0.3 * k + 0.4 * c, 1)
    applied = caps(report)
    letter = _letter_for(raw)
    score = raw
    for cap_letter, _ in applied:
        if ORDER.index(cap_letter) > ORDER.index(letter):
            letter = cap_letter
        score = min(score, CEILING[cap_letter])
    no_a_plus: list[str] = []
    if letter == "A":
        if hsts_max_age is None:
            no_a_plus.append("no HSTS header")
        elif hsts_max_age < HSTS_A_PLUS_MIN_AGE:
            no_a_plus.append("HSTS max-age under one year")
        v = report.vulns
        if v.fallback_scsv is False and len([x for x in report.offered if x != "TLS 1.3"]) > 1:
            no_a_plus.append("no TLS_FALLBACK_SCSV")
        if v.client_renegotiation_dos:
            no_a_plus.append("client-initiated renegotiation accepted")
        cert = report.certificate
        if cert is not None and 0 <= cert.days_left < 30:
            no_a_plus.append("certificate expires within 30 days")
        if not no_a_plus:
            letter = "A+"
    return Grade(letter, float(score), p, k, c, raw, tuple(applied), tuple(no_a_plus))


def worst(grades: list[Grade]) -> Grade | None:
    """The weakest of several servers' grades (the audit is as strong as its weakest endpoint)."""
    if not grades:
        return None
    return max(grades, key=lambda g: (ORDER.index(g.letter), -g.score))


#: an endpoint the scan could not reach caps the overall grade here (docs/tls.md, "Grade")
UNSCANNED_CAP = "B"


def overall(grades: list[Grade], unscanned: list[str]) -> Grade | None:
    """The weakest scanned endpoint's grade, capped at B (score ≤ 79) when an endpoint could not be scanned.

    An unreachable endpoint is not assessed (its own checks are errors), but the audit cannot
    certify the transport of a surface it could not see: the grade drops below A. None when no
    endpoint was scanned (sec.transport not assessed).
    """
    weakest = worst(grades)
    if weakest is None or not unscanned:
        return weakest
    cap = (UNSCANNED_CAP, f"not scanned: {', '.join(unscanned)}")
    letter = weakest.letter
    if ORDER.index(UNSCANNED_CAP) > ORDER.index(letter):
        letter = UNSCANNED_CAP
    return Grade(letter, float(min(weakest.score, CEILING[UNSCANNED_CAP])), weakest.protocol, weakest.key_exchange,
                 weakest.cipher, weakest.raw_score, weakest.caps + (cap,), ())
