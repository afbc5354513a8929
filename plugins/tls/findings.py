"""ServerReport + HTTP facts → Findings with stable ids, evidence and remediation.

Each check gives one finding per server: ``fail``/``warn`` when the problem is there,
``pass`` when it was checked and is fine, nothing when it does not apply. Remediation and
references come from the probe's catalogue (``checks/tls.yaml``); the remediation names the
nginx and the Apache directive, since those front most CRMs.
"""

from __future__ import annotations

import functools
from typing import Any

from crm_audit.core.catalogue import Catalogue, load_checks
from crm_audit.core.model import Evidence, Finding, NotAssessed, Severity, Status

from .http_checks import HSTS_MOZILLA_AGE, HSTS_PASS_AGE, HttpFacts
from .scan import ServerReport

INDICATOR = "sec.transport"


@functools.lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """This probe's check catalogue (``checks/*.yaml``): remediation and references live there."""
    return Catalogue.of(load_checks(__file__))


def make(
    fid: str,
    title: str,
    status: Status,
    severity: Severity = Severity.info,
    evidence: list[Evidence] | None = None,
    not_assessed: NotAssessed | None = None,
    hint: str | None = None,
) -> Finding:
    """A finding of this probe, with the remediation and references for its id.

    A not-assessed finding (skipped, error) keeps its severity: it is the weight of what is unknown.
    """
    failing = status in (Status.failed, Status.warn)
    unknown = status in (Status.skipped, Status.error)
    spec = catalogue().find(fid)
    return Finding(
        id=fid,
        title=title,
        severity=severity if failing or unknown else Severity.info,
        not_assessed=not_assessed,
        hint=hint,
        status=status,
        indicator=INDICATOR,
        probe="tls",
        evidence=evidence or [],
        remediation=spec.remediation.text() if failing and spec is not None else "",
        references=spec.references.strings() if spec is not None else [],
    )


class _Checks:
    """Collects one server's findings; ``where`` (host:port) goes into every title."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.out: list[Finding] = []

    def check(
        self,
        fid: str,
        failing: bool | None,
        fail_title: str,
        pass_title: str,
        severity: Severity,
        evidence: list[Evidence] | None = None,
        status: Status = Status.failed,
    ) -> None:
        """Add a fail (or ``status``) finding when failing, a pass when False, nothing when None."""
        if failing is None:
            return
        if failing:
            self.out.append(make(fid, f"{fail_title} ({self.where})", status, severity, evidence))
        else:
            self.out.append(make(fid, f"{pass_title} ({self.where})", Status.passed, evidence=evidence))


def _ev(where: str, expected: str | None, observed: str | None, **details: Any) -> Evidence:
    return Evidence(request=f"TLS scan of {where}", expected=expected, observed=observed, details=details)


def plain_http_only(base_url: str) -> Finding:
    """The target is reached over plain http://: tokens and data travel in clear."""
    return make(
        "tls.plain_http_only",
        f"Target uses plain HTTP ({base_url}): credentials and data travel unencrypted",
        Status.failed,
        Severity.high,
        [Evidence(request=f"profile target.base_url = {base_url}", expected="https://", observed="http://")],
    )


def off_scope(host: str, port: int) -> Finding:
    return make(
        "tls.scope.off_scope",
        f"{host}:{port} not scanned: outside the profile's scope",
        Status.skipped,
        Severity.high,
        evidence=[Evidence(expected="host in target.scope", observed=host)],
        not_assessed=NotAssessed.not_configured,
        hint=f"add {host} to target.scope, or remove it from plugins.tls.hosts",
    )


def scan_failed(report: ServerReport) -> Finding:
    """An endpoint the scan could not reach: none of its checks is assessed (and the grade is capped)."""
    where = f"{report.host}:{report.port}"
    timed_out = "timed out" in (report.error or "").lower() or "timeout" in (report.error or "").lower()
    return make(
        "tls.scan.failed",
        f"TLS scan of {where} failed, its TLS checks are not assessed: {report.error}",
        Status.error,
        Severity.high,
        [_ev(where, "a TLS handshake", report.error)],
        not_assessed=NotAssessed.timed_out if timed_out else NotAssessed.request_failed,
        hint=f"make {where} reachable from the auditing machine, or remove it from plugins.tls.hosts",
    )


def server_findings(report: ServerReport, http: HttpFacts | None) -> list[Finding]:
    """All findings for one scanned server."""
    where = f"{report.host}:{report.port}"
    c = _Checks(where)
    _protocol_findings(c, report)
    _cipher_findings(c, report)
    _cert_findings(c, report)
    _vuln_findings(c, report)
    _mozilla_findings(c, report)
    if http is not None:
        _http_findings(c, http)
    return c.out


def _protocol_findings(c: _Checks, r: ServerReport) -> None:
    offered = set(r.offered)
    known = set(r.protocols)
    for proto, fid, sev in (
        ("SSL 2.0", "tls.protocol.ssl2_enabled", Severity.critical),
        ("SSL 3.0", "tls.protocol.ssl3_enabled", Severity.high),
        ("TLS 1.0", "tls.protocol.tls1_0_enabled", Severity.medium),
        ("TLS 1.1", "tls.protocol.tls1_1_enabled", Severity.medium),
    ):
        if proto not in known:
            continue
        suites = [x.name for x in r.ciphers if x.protocol == proto]
        c.check(fid, proto in offered, f"{proto} offered", f"{proto} not offered", sev,
                [_ev(c.where, "not offered", "offered" if proto in offered else "not offered", suites=suites)])
    if known >= {"TLS 1.2", "TLS 1.3"}:
        modern = offered & {"TLS 1.2", "TLS 1.3"}
        c.check("tls.protocol.no_modern_tls", not modern, "Neither TLS 1.2 nor TLS 1.3 offered",
                "TLS 1.2 or TLS 1.3 offered", Severity.high, [_ev(c.where, "TLS 1.2 and/or 1.3", ", ".join(r.offered))])
        c.check("tls.protocol.tls1_3_missing", "TLS 1.3" not in offered, "TLS 1.3 not offered", "TLS 1.3 offered",
                Severity.low, [_ev(c.where, "TLS 1.3 offered", ", ".join(r.offered))], status=Status.warn)


_CIPHER_CHECKS = (
    ("NULL", "tls.cipher.null", Severity.critical, "NULL (unencrypted) cipher suites offered", "No NULL cipher suites"),
    ("EXPORT", "tls.cipher.export", Severity.critical, "EXPORT cipher suites offered", "No EXPORT cipher suites"),
    ("anonymous", "tls.cipher.anonymous", Severity.high, "Anonymous (unauthenticated) cipher suites offered", "No anonymous cipher suites"),
    ("RC4", "tls.cipher.rc4", Severity.high, "RC4 cipher suites offered", "No RC4 cipher suites"),
    ("64-bit block", "tls.cipher.block_64bit", Severity.medium, "64-bit block ciphers (3DES/DES/IDEA) offered (SWEET32)", "No 64-bit block ciphers"),
    ("< 128-bit", "tls.cipher.under_128bit", Severity.medium, "Cipher suites under 128 bits offered", "No cipher suites under 128 bits"),
    ("CBC in TLS <= 1.1", "tls.cipher.cbc_legacy", Severity.low, "CBC cipher suites offered with TLS ≤ 1.1 (BEAST/Lucky13 class)", "No CBC suites with TLS ≤ 1.1"),
)


def _cipher_findings(c: _Checks, r: ServerReport) -> None:
    if not r.ciphers:
        return
    for tag, fid, sev, fail_title, pass_title in _CIPHER_CHECKS:
        hits = [f"{x.protocol} {x.name}" for x in r.ciphers if tag in x.weak]
        c.check(fid, bool(hits), fail_title, pass_title, sev,
                [_ev(c.where, "none offered", f"{len(hits)} offered", suites=hits)] if hits else None)
    no_fs = [f"{x.protocol} {x.name}" for x in r.ciphers if not x.forward_secret]
    all_no_fs = len(no_fs) == len(r.ciphers)
    c.check("tls.cipher.no_forward_secrecy", bool(no_fs),
            "No forward secrecy at all" if all_no_fs else "Some cipher suites lack forward secrecy",
            "Forward secrecy with every cipher suite", Severity.medium if all_no_fs else Severity.low,
            [_ev(c.where, "ECDHE/DHE key exchange only", f"{len(no_fs)} suites without", suites=no_fs)] if no_fs else None)
    weak_dh = [b for b in r.dh_bits if b < 2048]
    if r.dh_bits:
        c.check("tls.kex.weak_dh", bool(weak_dh), f"DH group of {min(r.dh_bits)} bits", "DH groups of 2048 bits or more",
                Severity.high if min(r.dh_bits) < 1024 else Severity.medium, [_ev(c.where, "≥ 2048 bits", f"{r.dh_bits}")])
    groups = {x.kx_group for x in r.ciphers if x.kx_group} | set(r.groups)
    small = sorted(g for g in groups if g.startswith(("secp160", "secp192", "sect163", "sect193", "secp224k1")))
    c.check("tls.kex.weak_group", bool(small), "Elliptic-curve groups under 224 bits offered", "Key-exchange groups of adequate size",
            Severity.low, [_ev(c.where, "≥ 224-bit groups", ", ".join(sorted(groups)))])


def _cert_findings(c: _Checks, r: ServerReport) -> None:
    cert = r.certificate
    if cert is None:
        return
    base = dict(subject=cert.subject, issuer=cert.issuer, sans=list(cert.sans))
    trust_ev = [_ev(c.where, "chain to a trusted root (system store or target.ca_bundle)",
                    f"anchor: {cert.trust_anchor}" if cert.trusted else "no trusted anchor",
                    **base, sslyze_path_validation=cert.path_errors)]
    if cert.self_signed:
        # one problem, one failing finding: a self-signed leaf is not also reported as untrusted
        c.check("tls.cert.self_signed", True, "Self-signed certificate" + ("" if not cert.trusted else " (pinned in target.ca_bundle)"),
                "", Severity.low if cert.trusted else Severity.high, trust_ev, status=Status.warn if cert.trusted else Status.failed)
    else:
        c.check("tls.cert.self_signed", False, "", "Certificate not self-signed", Severity.info)
        c.check("tls.cert.untrusted", not cert.trusted, "Certificate chain not trusted", "Certificate chain trusted",
                Severity.high, trust_ev)
    c.check("tls.cert.hostname_mismatch", not cert.hostname_match, f"Certificate does not match {cert.hostname}",
            f"Certificate matches {cert.hostname}", Severity.high,
            [_ev(c.where, cert.hostname, ", ".join(cert.sans) or "(no subjectAltName)", **base)])
    dates = [_ev(c.where, "valid now", f"{cert.not_before} → {cert.not_after}", days_left=cert.days_left)]
    c.check("tls.cert.expired", cert.expired, f"Certificate expired on {cert.not_after[:10]}", "Certificate not expired",
            Severity.high, dates)
    if cert.not_yet_valid:
        c.check("tls.cert.not_yet_valid", True, f"Certificate not valid before {cert.not_before[:10]}", "", Severity.high, dates)
    if not cert.expired and not cert.not_yet_valid:
        c.check("tls.cert.expires_soon", cert.days_left < 30, f"Certificate expires in {cert.days_left} days",
                f"Certificate valid for {cert.days_left} more days", Severity.medium,
                [_ev(c.where, "≥ 30 days left", f"{cert.days_left} days", not_after=cert.not_after)], status=Status.warn)
    weak = (cert.key_type in ("RSA", "DSA") and cert.key_bits < 2048) or (cert.key_type == "EC" and cert.key_bits < 224)
    c.check("tls.cert.weak_key", weak, f"Weak certificate key: {cert.key}", f"Certificate key {cert.key}", Severity.high,
            [_ev(c.where, "RSA ≥ 2048 bits or EC ≥ 224 bits", cert.key)])
    c.check("tls.cert.sha1_signature", cert.sha1_in_chain, "SHA-1 signature in the certificate chain",
            f"Certificate signature {cert.signature}", Severity.high, [_ev(c.where, "SHA-256 or better", cert.signature)])
    if cert.ocsp_url:
        c.check("tls.ocsp.not_stapled", not cert.ocsp_stapled, "OCSP response not stapled", "OCSP response stapled",
                Severity.info, [_ev(c.where, "stapled OCSP response", "none", ocsp_url=cert.ocsp_url)], status=Status.warn)


def _vuln_findings(c: _Checks, r: ServerReport) -> None:
    v = r.vulns
    c.check("tls.vuln.heartbleed", v.heartbleed, "Vulnerable to Heartbleed (CVE-2014-0160)", "Not vulnerable to Heartbleed",
            Severity.critical)
    c.check("tls.vuln.ccs_injection", v.ccs_injection, "Vulnerable to OpenSSL CCS injection (CVE-2014-0224)",
            "Not vulnerable to CCS injection", Severity.high)
    if v.robot is not None:
        vulnerable = v.robot.startswith("VULNERABLE")
        c.check("tls.vuln.robot", vulnerable if v.robot != "UNKNOWN_INCONSISTENT_RESULTS" else None,
                f"Vulnerable to ROBOT ({v.robot.lower()})", "Not vulnerable to ROBOT",
                Severity.high if v.robot == "VULNERABLE_STRONG_ORACLE" else Severity.medium,
                [_ev(c.where, "NOT_VULNERABLE", v.robot)])
    c.check("tls.vuln.insecure_renegotiation", None if v.secure_renegotiation is None else not v.secure_renegotiation,
            "Insecure renegotiation (no RFC 5746 support)", "Secure renegotiation supported", Severity.high)
    c.check("tls.vuln.client_renegotiation", v.client_renegotiation_dos,
            "Client-initiated renegotiation accepted (DoS)", "Client-initiated renegotiation refused", Severity.medium)
    c.check("tls.vuln.compression", v.compression, "TLS compression enabled (CRIME)", "TLS compression disabled",
            Severity.medium)
    below_13 = [p for p in r.offered if p != "TLS 1.3"]
    if v.fallback_scsv is not None and len(below_13) > 1:
        c.check("tls.vuln.no_fallback_scsv", not v.fallback_scsv, "No downgrade protection (TLS_FALLBACK_SCSV)",
                "Downgrade protection (TLS_FALLBACK_SCSV) supported", Severity.low,
                [_ev(c.where, "TLS_FALLBACK_SCSV honoured", str(v.fallback_scsv), protocols=below_13)])


def _mozilla_findings(c: _Checks, r: ServerReport) -> None:
    m = r.mozilla
    if m is None or m.compliant is None:
        return
    fid = f"tls.mozilla.{m.profile}"
    evidence = [Evidence(request=f"sslyze Mozilla check of {c.where}", expected=f"Mozilla '{m.profile}'",
                         observed=f"{key}: {msg}") for key, msg in sorted(m.issues.items())]
    c.check(fid, not m.compliant, f"Deviates from Mozilla's '{m.profile}' configuration ({len(m.issues)} issue{'s' if len(m.issues) != 1 else ''})",
            f"Complies with Mozilla's '{m.profile}' configuration", Severity.low, evidence)


def _http_findings(c: _Checks, http: HttpFacts) -> None:
    h = http.hsts
    ev = [http.evidence] if http.evidence else []
    if h is None:
        c.out.append(make("tls.hsts.missing", f"HSTS not checked: {http.error} ({c.where})", Status.error,
                          Severity.medium, not_assessed=NotAssessed.request_failed,
                          hint="make the HTTPS URL answer a GET through the audit's client (target.ca_bundle)"))
    else:
        src = {"source": h.source, "header": h.raw}
        hsts_ev = ev + [Evidence(request=f"GET {http.https_url}", expected="Strict-Transport-Security with max-age ≥ 31536000",
                                 observed=h.raw or ("present" if h.present else "absent"), details=src)]
        c.check("tls.hsts.missing", not h.present, "No HSTS header (Strict-Transport-Security)", "HSTS header present",
                Severity.medium, hsts_ev)
        if h.present and h.max_age is not None:
            short = h.max_age < HSTS_PASS_AGE
            title = f"HSTS max-age {h.max_age} s"
            note = "" if h.max_age >= HSTS_MOZILLA_AGE else " (Mozilla asks 63072000)"
            c.check("tls.hsts.short_max_age", short, f"{title} is under one year", f"{title} is at least one year{note}",
                    Severity.low, hsts_ev)
            c.check("tls.hsts.no_include_subdomains", not h.include_subdomains, "HSTS without includeSubDomains",
                    "HSTS includes subdomains", Severity.low, hsts_ev, status=Status.warn)
    if http.error is None:
        names = http.insecure_cookies
        c.check("tls.cookie.not_secure", bool(names) if http.cookies else None,
                f"Cookies without the Secure flag: {', '.join(names)}", "Every cookie has the Secure flag", Severity.medium,
                ev + [Evidence(expected="Secure on every Set-Cookie", observed=", ".join(names) or "all Secure",
                               details={"cookies": http.cookies})])
    else:
        c.out.append(make("tls.cookie.not_secure", f"Cookies not checked: {http.error} ({c.where})", Status.error,
                          Severity.medium, not_assessed=NotAssessed.request_failed,
                          hint="make the HTTPS URL answer a GET through the audit's client (target.ca_bundle)"))
    rd = http.redirect
    if rd is None or rd.verdict == "skipped":
        if rd is not None:
            c.out.append(make("tls.http.no_redirect", f"Plain-HTTP redirect not checked: {rd.reason} ({c.where})",
                              Status.skipped, Severity.medium, not_assessed=NotAssessed.not_configured,
                              hint="set plugins.tls.http_port (and keep that URL in target.scope)"))
        return
    rd_ev = [rd.evidence] if rd.evidence else []
    if rd.verdict == "timed_out":
        c.out.append(make("tls.http.no_redirect", f"Plain-HTTP redirect not assessed: {rd.url} did not answer in time "
                          f"({c.where})", Status.error, Severity.medium, rd_ev, not_assessed=NotAssessed.timed_out,
                          hint="re-run when the plain-HTTP port answers or refuses connections"))
        return
    if rd.verdict == "not_served":
        c.out.append(make("tls.http.no_redirect", f"Plain HTTP not served at {rd.url} ({c.where})", Status.passed,
                          evidence=rd_ev))
        return
    c.check("tls.http.no_redirect", rd.verdict != "redirects",
            f"Plain HTTP does not redirect to HTTPS: {rd.reason}", f"Plain HTTP redirects to {rd.location}", Severity.medium,
            rd_ev + [Evidence(request=f"GET {rd.url}", status=rd.status, expected="301/308 to https://",
                              observed=f"{rd.status} {rd.location or ''}".strip())])
