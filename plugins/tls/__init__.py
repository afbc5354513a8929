"""Built-in ``tls`` probe: protocols, cipher suites, certificate, TLS vulnerabilities, HSTS.

sslyze scans the target's HTTPS endpoint(s) in a worker thread with its own sockets, so the
probe checks scope itself before scanning; the HTTP-side checks (HSTS, redirect, cookies)
go through the audit's Target. Feeds ``sec.transport`` with a 0-100 grade score; the grading
rule is documented in ``docs/tls.md``.
"""

from __future__ import annotations

import time
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_audit.hookspecs import hookimpl
from crm_audit.model import Finding, Measurement, ProbeResult
from crm_audit.probe import Probe, ProbeContext

from . import findings as fnd
from .grade import Grade, grade, overall
from .http_checks import HttpFacts, collect
from .scan import PROTOCOLS, ScanTarget, ServerReport, scan_in_worker

__version__ = "0.1.0"
INDICATOR = "sec.transport"
EXPECTED_SCORE = 80.0  # grade A


class TlsOptions(BaseModel):
    """Options under ``plugins.tls`` in the profile."""

    model_config = ConfigDict(extra="forbid")
    hosts: list[str] = Field(default_factory=list, description="extra host:port endpoints to scan; each must be in scope")
    http_port: int | None = Field(
        None, ge=1, le=65535,
        description="plain-HTTP port whose redirect to HTTPS is checked (default: 80 when the HTTPS port is 443)",
    )
    mozilla_profile: Literal["modern", "intermediate", "old"] = "intermediate"
    timeout_s: float = Field(10.0, gt=0, le=120, description="network timeout of each TLS connection")

    @field_validator("hosts")
    @classmethod
    def _host_ports(cls, v: list[str]) -> list[str]:
        for item in v:
            parse_host_port(item)
        return v


def parse_host_port(item: str, default_port: int = 443) -> tuple[str, int]:
    """'host', 'host:port', '[v6]:port' or an https:// URL → (host, port)."""
    text = item.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if not parts.hostname:
        raise ValueError(f"{item!r} is not host:port")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError(f"{item!r} has an invalid port") from None
    return parts.hostname, port


def _url(host: str, port: int, scheme: str = "https") -> str:
    default = 443 if scheme == "https" else 80
    name = f"[{host}]" if ":" in host else host
    return f"{scheme}://{name}/" if port == default else f"{scheme}://{name}:{port}/"


class TlsProbe(Probe):
    id = "tls"
    title = "TLS and transport security"
    version = __version__
    indicators = (INDICATOR,)
    options_model = TlsOptions
    timeout_s = 300.0

    def run(self, ctx: ProbeContext) -> ProbeResult:
        opts: TlsOptions = ctx.options if isinstance(ctx.options, TlsOptions) else TlsOptions.model_validate(ctx.options or {})
        cfg = ctx.profile.target
        base = urlsplit(cfg.base_url)
        if base.scheme != "https":
            return _plain_http_result(cfg.base_url)

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

        servers: list[dict[str, Any]] = []
        grades: list[Grade] = []
        unscanned: list[str] = []
        for (host, port, url), report in zip(in_scope, reports):
            ctx.check_cancelled()
            if report.error:
                findings.append(fnd.scan_failed(report))
                servers.append(_artifact(report, None, None))
                unscanned.append(f"{host}:{port}")
                continue
            https_url = cfg.base_url if (host, port) == endpoints[0][:2] else url
            http = collect(ctx.target, https_url, _http_url(host, port, opts), report.hsts)
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
            probe=self.id, title=self.title, version=self.version, status=status, reason=reason,
            measurements=measurements, findings=findings,
            artifacts={"servers": servers, "scan_s": round(scan_s, 3), "mozilla_profile": opts.mozilla_profile},
        )


def connections_for_rate(rate_limit_rps: float) -> int:
    """sslyze's connections per server from the profile's rate limit: 1 per 10 req/s, 1 to 5.

    sslyze's handshakes bypass the Target, so this is how the probe keeps to the spirit of
    ``target.rate_limit_rps``; the default 50 req/s gives sslyze's own default of 5.
    """
    return max(1, min(5, int(rate_limit_rps // 10)))


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


def _plain_http_result(base_url: str) -> ProbeResult:
    return ProbeResult(
        probe=TlsProbe.id, title=TlsProbe.title, version=TlsProbe.version,
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


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [TlsProbe]
