"""The ``tls`` probe's work: scan every endpoint with sslyze in one call while the HTTP checks run.

Imported only when the probe runs, so plugin discovery (``--help``, ``validate``) does not
load sslyze, cryptography or the grading rules. All TLS endpoints of the audit — the base
URL and ``plugins.tls.hosts`` — go to sslyze's own concurrent scanner in one call; the
HTTP-side checks of each endpoint (HSTS, cookies, the plain-HTTP redirect port) run through
the Target in threads at the same time, so the probe's time is that of the slowest server,
not the sum.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from crm_audit.core.model import Finding, Measurement, ProbeResult
from crm_audit.core.probe import ProbeContext

from . import EXPECTED_SCORE, INDICATOR, TlsOptions, _url, connections_for_rate, parse_host_port
from . import findings as fnd
from .grade import Grade, grade, overall
from .http_checks import HttpFacts, collect, from_sslyze
from .scan import PROTOCOLS, ScanTarget, ServerReport, scan_in_worker

#: HTTP checks of this many endpoints at most run at once (each is two requests through the Target)
HTTP_CHECK_THREADS = 8


def run_tls(probe: Any, ctx: ProbeContext, opts: TlsOptions) -> ProbeResult:
    """Scan all in-scope endpoints concurrently and judge them; see the module docstring."""
    cfg = ctx.profile.target
    base = urlsplit(cfg.base_url)
    if base.scheme != "https":
        return _plain_http_result(probe, cfg.base_url)

    endpoints = _endpoints(cfg.base_url, opts)
    findings: list[Finding] = []
    in_scope: list[tuple[str, int, str]] = []
    for host, port, url in endpoints:
        if ctx.target.in_scope(url):
            in_scope.append((host, port, url))
        else:
            findings.append(fnd.off_scope(host, port))
    ctx.check_cancelled()
    t0 = time.perf_counter()
    ctx.log(f"scanning {len(in_scope)} TLS endpoint(s) with sslyze")
    with ThreadPoolExecutor(max_workers=max(1, min(HTTP_CHECK_THREADS, len(in_scope))),
                            thread_name_prefix="tls-http") as pool:
        http_jobs = [pool.submit(_http_check, ctx, cfg.base_url if (h, p) == endpoints[0][:2] else url,
                                 _http_url(h, p, opts)) for h, p, url in in_scope]
        reports = scan_in_worker(
            [ScanTarget(h, p) for h, p, _ in in_scope],
            deadline_s=max(60.0, opts.timeout_s * 12),
            cancel=ctx.cancel,
            ca_bundle=cfg.ca_bundle,
            mozilla_profile=opts.mozilla_profile,
            timeout_s=opts.timeout_s,
            max_connections=connections_for_rate(cfg.rate_limit_rps),
        ) if in_scope else []
        scan_s = time.perf_counter() - t0
        facts = [job.result() for job in http_jobs]
    total_s = time.perf_counter() - t0

    servers: list[dict[str, Any]] = []
    grades: list[Grade] = []
    unscanned: list[str] = []
    for (host, port, _target_url), report, http in zip(in_scope, reports, facts):
        ctx.check_cancelled()
        if report.error:
            findings.append(fnd.scan_failed(report))
            servers.append(_artifact(report, None, None))
            unscanned.append(f"{host}:{port}")
            continue
        if http.error:  # the Target could not connect: HSTS as sslyze's own connection saw it
            http.hsts = from_sslyze(report.hsts)
        g = grade(report, http.hsts.max_age if http.hsts and http.hsts.present else None)
        grades.append(g)
        findings.extend(fnd.server_findings(report, http))
        servers.append(_artifact(report, g, http))

    final = overall(grades, unscanned)
    measurements = [_measurement(final, grades, servers, unscanned)] if final else []
    status = "ok"
    reason = None
    if in_scope and not grades:
        status, reason = "error", "no TLS endpoint could be scanned: " + "; ".join(r.error or "" for r in reports)
    elif not in_scope:
        status, reason = "skipped", "no TLS endpoint in scope"
    return ProbeResult(
        probe=probe.id, title=probe.title, version=probe.version, status=status, reason=reason,
        measurements=measurements, findings=findings,
        artifacts={"servers": servers, "scan_s": round(scan_s, 3), "probe_s": round(total_s, 3),
                   "endpoints_scanned": len(in_scope), "mozilla_profile": opts.mozilla_profile},
    )


def _http_check(ctx: ProbeContext, https_url: str, http_url: str | None) -> HttpFacts:
    """One endpoint's HTTP checks in a pool thread; its requests stop once the probe is asked to stop."""
    ctx.target.bind_cancel(ctx.cancel)
    try:
        return collect(ctx.target, https_url, http_url)
    finally:
        ctx.target.bind_cancel(None)


def _endpoints(base_url: str, opts: TlsOptions) -> list[tuple[str, int, str]]:
    base = urlsplit(base_url)
    out = [(base.hostname or "", base.port or 443, _url(base.hostname or "", base.port or 443))]
    for item in opts.hosts:
        host, port = parse_host_port(item)
        if (host, port) not in [(h, p) for h, p, _ in out]:
            out.append((host, port, _url(host, port)))
    return out


def _http_url(host: str, https_port: int, opts: TlsOptions) -> str | None:
    if opts.http_port is not None:
        return _url(host, opts.http_port, "http")
    return _url(host, 80, "http") if https_port == 443 else None


def _plain_http_result(probe: Any, base_url: str) -> ProbeResult:
    return ProbeResult(
        probe=probe.id, title=probe.title, version=probe.version,
        measurements=[Measurement(indicator=INDICATOR, value=0.0, unit="score", expected=EXPECTED_SCORE,
                                  better="higher", label="No TLS: plain HTTP", details={"grade": "F"})],
        findings=[fnd.plain_http_only(base_url)],
        artifacts={"servers": []},
    )


def _measurement(overall: Grade, grades: list[Grade], servers: list[dict[str, Any]],
                 unscanned: list[str]) -> Measurement:
    label = overall.label if len(grades) == 1 else f"{overall.label} (weakest of {len(grades)} endpoints)"
    if unscanned:
        label += f"; capped at {overall.letter}: {', '.join(unscanned)} could not be scanned"
    return Measurement(
        indicator=INDICATOR, value=overall.score, unit="score", expected=EXPECTED_SCORE, better="higher", label=label,
        details={
            "grade": overall.letter,
            "grades": {f"{s['host']}:{s['port']}": s["grade"] for s in servers},
            "sub_scores": {"protocol": overall.protocol, "key_exchange": overall.key_exchange, "cipher": overall.cipher},
            "caps": [f"{letter}: {why}" for letter, why in overall.caps],
            "not_scanned": unscanned,
        },
    )


def _artifact(report: ServerReport, g: Grade | None, http: HttpFacts | None) -> dict[str, Any]:
    """One entry of ``artifacts['servers']`` (the report's TLS summary draws it)."""
    cert = report.certificate
    return {
        "host": report.host,
        "port": report.port,
        "ip": report.ip,
        "error": report.error,
        "grade": g.letter if g else None,  # None: not scanned, not assessed
        "score": g.score if g else None,
        "sub_scores": {"protocol": g.protocol, "key_exchange": g.key_exchange, "cipher": g.cipher} if g else None,
        "caps": [f"{letter}: {why}" for letter, why in g.caps] if g else [],
        "no_a_plus": list(g.no_a_plus) if g else [],
        "protocols": {p: bool(report.protocols.get(p)) for p in PROTOCOLS if p in report.protocols},
        "ciphers": {p: [c.name for c in report.ciphers if c.protocol == p] for p in report.offered},
        "weak_ciphers": [
            {"protocol": c.protocol, "name": c.name, "bits": c.bits, "reasons": list(c.weak)} for c in report.weak_ciphers
        ],
        "forward_secrecy": bool(report.ciphers) and all(c.forward_secret for c in report.ciphers),
        "kx_groups": sorted({c.kx_group for c in report.ciphers if c.kx_group} | set(report.groups)),
        "certificate": None if cert is None else {
            "subject": cert.subject,
            "issuer": cert.issuer,
            "sans": list(cert.sans),
            "not_after": cert.not_after,
            "days_left": cert.days_left,
            "key": cert.key,
            "signature": cert.signature,
            "trusted": cert.trusted,
            "hostname_match": cert.hostname_match,
            "self_signed": cert.self_signed,
            "ocsp_stapled": cert.ocsp_stapled,
        },
        "vulnerabilities": {
            "heartbleed": report.vulns.heartbleed,
            "ccs_injection": report.vulns.ccs_injection,
            "robot": report.vulns.robot,
            "secure_renegotiation": report.vulns.secure_renegotiation,
            "client_renegotiation_dos": report.vulns.client_renegotiation_dos,
            "compression": report.vulns.compression,
            "fallback_scsv": report.vulns.fallback_scsv,
        },
        "hsts": http.hsts.as_artifact() if http and http.hsts else None,
        "redirect": None if http is None or http.redirect is None else {
            "verdict": http.redirect.verdict, "status": http.redirect.status, "location": http.redirect.location,
        },
        "insecure_cookies": list(http.insecure_cookies) if http else [],
        "mozilla": None if report.mozilla is None else {
            "profile": report.mozilla.profile,
            "compliant": report.mozilla.compliant,
            "issues": [f"{k}: {v}" for k, v in sorted(report.mozilla.issues.items())],
        },
        "duration_s": report.duration_s,
    }
