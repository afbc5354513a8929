"""Realistic AuditResults for the reporter tests: every artifact type, scoring, gates,
baseline, waivers, a signature and a verdict with not-assessed checks and indicators; a
hostile variant whose target-derived strings try to inject markup; an unscored one; one
without a verdict (as results were before verdicts); one whose coverage is too low for a
grade; one with many passed checks (the fold and count cases); one with thousands of findings.

Run ``python tests/report_fixtures.py OUT.json`` to write the realistic result to a file.
"""

from __future__ import annotations

import random
import sys
from typing import Any

from crm_audit.core.model import (
    AuditResult,
    Evidence,
    Finding,
    GateOutcome,
    Measurement,
    NotAssessed,
    ProbeResult,
    SampleSummary,
    Severity,
    Status,
    TargetSummary,
    Verdict,
)

XSS = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
QUOTE = "' onmouseover='alert(1)' x='"
TEMPLATE = "{{7*7}}"
CLOSERS = "</title></style></svg></pre></textarea>"
HOSTILE = f"{XSS}{IMG}{QUOTE}{TEMPLATE}{CLOSERS}"
HOSTILE_PARTS = (XSS, IMG, QUOTE, TEMPLATE)
CONTROL = "\x00\x1b[31m\x07"

GRADES = ["Excellent", "Good", "Pass", "Fail"]
MIN_COVERAGE = 0.6

#: why the fixture's unassessed indicators were not assessed, and what would assess them
NOT_ASSESSED = {
    "sec.access_logging": {"reasons": ["no evidence given for sec.access_logging"],
                           "hints": ["add sec.access_logging to the evidence file (crm-audit audit --evidence)"]},
    "cost.roi": {"reasons": ["evidence file evidence.yaml: line 4: cost.roi must be a number"],
                 "hints": ["fix cost.roi in evidence.yaml"]},
    "cost.payback": {"reasons": ["no evidence given for cost.payback"],
                     "hints": ["add cost.payback to the evidence file (crm-audit audit --evidence)"]},
}


def grade_of(score: float | None) -> str | None:
    if score is None:
        return None
    return "Excellent" if score >= 85 else "Good" if score >= 70 else "Pass" if score >= 50 else "Fail"


# (dimension id, title, weight, [(indicator id, title, weight, unit, actual, expected, better, score, source)])
DIMENSIONS: list[tuple[str, str, float, list[tuple[Any, ...]]]] = [
    ("perf", "Technical performance", 0.25, [
        ("perf.response_time_p95", "Response time p95", 0.3, "ms", 412.0, 500.0, "lower", 88.0, "probe:latency"),
        ("perf.error_rate", "Error rate", 0.15, "ratio", 0.004, 0.01, "lower", 92.0, "probe:latency"),
        ("perf.max_concurrency", "Max sustainable users", 0.25, "users", 80, 100, "higher", 61.0, "probe:load"),
        ("perf.throughput_at_slo", "Throughput at SLO", 0.15, "req/s", 142.5, 120.0, "higher", 90.0, "probe:load"),
        ("perf.recovery_time", "Recovery after load", 0.15, "s", 41.0, 30.0, "lower", 44.0, "probe:load"),
    ]),
    ("sec", "Security", 0.3, [
        ("sec.transport", "Transport encryption", 0.3, "findings", 2, 0, "lower", 55.0, "probe:tls"),
        ("sec.authentication", "Authentication", 0.2, "findings", 0, 0, "lower", 100.0, "probe:access"),
        ("sec.access_control", "Access control", 0.3, "findings", 1, 0, "lower", 20.0, "probe:access"),
        ("sec.hardening", "Hardening", 0.1, "findings", 3, 0, "lower", 62.0, "probe:access"),
        ("sec.access_logging", "Access logging", 0.1, "pass/fail", None, None, None, None, "evidence"),
    ]),
    ("bak", "Backup & recovery", 0.15, [
        ("bak.restore_verified", "Restore verified", 0.4, "pass/fail", 1.0, 1.0, "higher", 100.0, "probe:backup"),
        ("bak.rto", "Recovery time objective", 0.3, "s", 312.0, 600.0, "lower", 95.0, "probe:backup"),
        ("bak.rpo", "Recovery point objective", 0.3, "s", 5400.0, 3600.0, "lower", 48.0, "probe:backup"),
    ]),
    ("dq", "Data quality", 0.15, [
        ("dq.completeness", "Completeness", 0.3, "ratio", 0.962, 0.95, "higher", 87.0, "probe:data_quality"),
        ("dq.validity", "Validity", 0.3, "ratio", 0.91, 0.98, "higher", 58.0, "probe:data_quality"),
        ("dq.uniqueness", "Uniqueness", 0.4, "ratio", 0.997, 0.99, "higher", 96.0, "probe:data_quality"),
    ]),
    ("svc", "Service & support", 0.1, [
        ("svc.resolution_rate", "Resolution rate", 0.5, "ratio", 0.83, 0.8, "higher", 79.0, "probe:kpi"),
        ("svc.response_time", "First response time", 0.5, "h", 3.2, 1.0, "lower", 35.0, "probe:kpi"),
    ]),
    ("cost", "Cost-benefit", 0.05, [
        ("cost.roi", "Return on investment", 0.5, "ratio", None, 1.0, "higher", None, "evidence"),
        ("cost.payback", "Payback period", 0.5, "years", None, 3.0, "lower", None, "evidence"),
    ]),
]


def scoring(title_suffix: str = "", node_title: str = "") -> dict[str, Any]:
    """A scored default hierarchy in pre-order, with not-assessed leaves and one whole dimension."""
    nodes: list[dict[str, Any]] = []
    root = {"id": "crm", "title": "CRM quality" + title_suffix, "parent": None, "depth": 0, "kind": "root",
            "weight": 1.0, "global_weight": 1.0, "effective_weight": 1.0, "assessed": True, "findings": []}
    nodes.append(root)
    dim_scores = []
    assessed_weight = 0.0
    for dim_id, dim_title, dim_w, indicators in DIMENSIONS:
        scored = [(w, s) for (_, _, w, *_rest, s, _src) in indicators if s is not None]
        dim_score = sum(w * s for w, s in scored) / sum(w for w, _ in scored) if scored else None
        dim_coverage = round(sum(w for w, _ in scored) / sum(i[2] for i in indicators), 4)
        if dim_score is not None:
            dim_scores.append((dim_w, dim_score))
            assessed_weight += dim_w * sum(w for w, _ in scored)
        nodes.append({"id": dim_id, "title": dim_title + (node_title if dim_id == "sec" else ""), "parent": "crm",
                      "depth": 1, "kind": "dimension", "weight": dim_w, "global_weight": dim_w,
                      "effective_weight": dim_w if dim_score is not None else 0.0, "assessed": dim_score is not None,
                      "score": dim_score, "grade": grade_of(dim_score), "coverage": dim_coverage, "findings": []})
        for ind_id, title, w, unit, actual, expected, better, score, source in indicators:
            numeric = isinstance(actual, (int, float)) and isinstance(expected, (int, float))
            nodes.append({
                "id": ind_id, "title": title, "parent": dim_id, "depth": 2, "kind": "indicator", "weight": w,
                "global_weight": round(w * dim_w, 4), "effective_weight": round(w * dim_w, 4) if score is not None else 0,
                "assessed": score is not None, "score": score, "grade": grade_of(score),
                "membership": None, "unit": unit, "actual": actual, "expected": expected,
                "difference": actual - expected if numeric else None, "better": better, "source": source,
                "function": "lognormal(90@expected, 50@2×expected)" if unit == "ms" else "linear",
                "evidence": None, "capped_by": "access.bola.contacts" if ind_id == "sec.access_control" else None,
                "findings": ["access.bola.contacts"] if ind_id == "sec.access_control" else [],
                "coverage": 1.0 if score is not None else 0.0,
                **({"not_assessed": NOT_ASSESSED[ind_id]} if ind_id in NOT_ASSESSED else {}),
            })
    total = sum(w * s for w, s in dim_scores) / sum(w for w, _ in dim_scores)
    root.update(score=total, grade=grade_of(total), coverage=round(assessed_weight, 4))
    return {
        "hierarchy": "default", "title": "Default CRM hierarchy", "grades": GRADES,
        "overall": {"score": total, "grade": grade_of(total),
                    "membership": {"Excellent": 0.18, "Good": 0.46, "Pass": 0.27, "Fail": 0.09},
                    "fuzzy_grade": "Good"},
        "coverage": round(assessed_weight, 4), "root": "crm", "nodes": nodes,
    }


def _summary(p50: float, spread: float, n: int = 400) -> SampleSummary:
    rng = random.Random(int(p50))
    return SampleSummary.of([max(1.0, rng.lognormvariate(0, spread) * p50) for _ in range(n)])


def _histogram(summary: SampleSummary, buckets: int = 14) -> dict[str, Any]:
    rng = random.Random(int(summary.p50 * 10))
    lo, hi = 0.0, summary.p99 * 1.2
    edges = [round(lo + (hi - lo) * i / buckets, 1) for i in range(buckets + 1)]
    counts = []
    for i in range(buckets):
        mid = (edges[i] + edges[i + 1]) / 2
        counts.append(max(0, int(300 * pow(2.718, -((mid - summary.p50) / (summary.p50 * 0.6)) ** 2) + rng.randint(0, 4))))
    return {"edges": edges, "counts": counts}


def latency_probe(name_suffix: str = "") -> ProbeResult:
    endpoints = []
    measurements = []
    for name, method, path, p50, slo in [
        ("List contacts" + name_suffix, "GET", "/api/contacts/", 180.0, 500.0),
        ("Create lead", "POST", "/api/leads/", 260.0, 800.0),
        ("Search deals", "GET", "/api/deals/?q=acme", 430.0, 500.0),
    ]:
        s = _summary(p50, 0.35)
        endpoints.append({
            "name": name, "method": method, "path": path, "summary": s.model_dump(),
            "ttfb": _summary(p50 * 0.8, 0.3).model_dump(), "slo_p95_ms": slo, "errors": 1 if "deals" in path else 0,
            "histogram": _histogram(s),
        })
        measurements.append(Measurement(indicator="perf.response_time_p95", value=s.p95, unit="ms", expected=slo,
                                        label=name, samples=s))
    measurements.append(Measurement(indicator="perf.error_rate", value=0.004, unit="ratio", expected=0.01,
                                    label="errors while sampling"))
    return ProbeResult(probe="latency", title="Endpoint latency", version="1.2.0", started="2025-03-14T09:00:05+00:00",
                       duration_s=94.2, requests=1200, measurements=measurements, artifacts={"endpoints": endpoints})


def load_probe() -> ProbeResult:
    steps = []
    for users, rps, p50, p95 in [(10, 38.0, 120, 210), (20, 74.5, 130, 260), (40, 121.0, 160, 330),
                                 (60, 138.2, 210, 430), (80, 142.5, 280, 495), (100, 139.0, 420, 860),
                                 (120, 128.4, 640, 1420)]:
        steps.append({"users": users, "duration_s": 60.0, "requests": int(rps * 60), "rps": rps, "p50_ms": p50,
                      "p95_ms": p95, "error_rate": 0.0 if users < 100 else 0.021, "within_slo": p95 <= 500})
    return ProbeResult(
        probe="load", title="Concurrent load", version="1.0.3", duration_s=520.0, requests=41000,
        measurements=[
            Measurement(indicator="perf.max_concurrency", value=80, unit="users", expected=100, better="higher"),
            Measurement(indicator="perf.throughput_at_slo", value=142.5, unit="req/s", expected=120, better="higher"),
            Measurement(indicator="perf.recovery_time", value=41.0, unit="s", expected=30.0),
        ],
        artifacts={"steps": steps, "max_sustainable_users": 80, "target_users": 100, "slo_p95_ms": 500.0,
                   "sustained": {"users": 80, "duration_s": 600, "p95_drift": 0.07, "error_rate": 0.001},
                   "recovery": {"baseline_p95_ms": 210, "recovered_after_s": 41.0}},
    )


def tls_probe(host: str = "crm.example.test") -> ProbeResult:
    findings = [
        Finding(id="tls.protocol.tls1_0_enabled", title="TLS 1.0 is enabled", severity=Severity.high,
                indicator="sec.transport", probe="tls",
                evidence=[Evidence(request=f"TLS handshake {host}:443 (TLS 1.0)", observed="handshake accepted",
                                   expected="handshake refused")],
                remediation="Disable TLS 1.0 and 1.1 on the load balancer; offer TLS 1.2 and 1.3 only.",
                references=["https://wiki.mozilla.org/Security/Server_Side_TLS", "CWE-327"]),
        Finding(id="tls.hsts.missing", title="No HSTS header", severity=Severity.medium, indicator="sec.transport",
                probe="tls", evidence=[Evidence(request="GET /", status=200, observed="no Strict-Transport-Security")],
                remediation="Send Strict-Transport-Security: max-age=31536000; includeSubDomains.",
                references=["https://owasp.org/www-project-secure-headers/"]),
        Finding(id="tls.certificate.valid", title="Certificate is valid and trusted", severity=Severity.info,
                status=Status.passed, indicator="sec.transport", probe="tls"),
    ]
    server = {
        "host": host, "port": 443, "grade": "B",
        "protocols": {"SSL 3.0": False, "TLS 1.0": True, "TLS 1.1": False, "TLS 1.2": True, "TLS 1.3": True},
        "weak_ciphers": ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"],
        "certificate": {"subject": f"CN={host}", "issuer": "CN=Example CA R3", "not_after": "2025-06-01T00:00:00Z",
                        "days_left": 79, "key": "RSA 2048", "signature": "sha256WithRSAEncryption",
                        "trusted": True, "hostname_match": True},
        "hsts": None,
        "mozilla": {"profile": "intermediate", "compliant": False,
                    "issues": ["TLS 1.0 must not be offered", "3DES ciphers must not be offered"]},
    }
    # the tls plugin's richer shape: weak ciphers as dicts, grade caps, vulnerability checks
    api = {
        "host": "api." + host, "port": 8443, "grade": "C", "error": None, "caps": ["C: TLS 1.0 offered"],
        "protocols": {"TLS 1.0": True, "TLS 1.2": True, "TLS 1.3": False},
        "weak_ciphers": [{"protocol": "TLS 1.2", "name": "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "bits": 112,
                          "reasons": ["3DES", "no forward secrecy"]}],
        "certificate": None, "hsts": {"max_age": 300, "include_subdomains": False, "preload": False},
        "mozilla": None, "vulnerabilities": {"heartbleed": False, "robot": False, "secure_renegotiation": True},
    }
    broken = {"host": "legacy." + host, "port": 443, "error": "connection refused", "protocols": {}}
    return ProbeResult(probe="tls", title="TLS configuration", version="2.0.1", duration_s=12.5, requests=0,
                       findings=findings, artifacts={"servers": [server, api, broken]})


def access_probe(role: str = "sales_rep") -> ProbeResult:
    roles, resources, actions = ["anonymous", role, "manager", "admin"], ["contacts", "leads", "users"], \
        ["list", "read", "create", "delete"]
    cells = []
    for r in roles:
        for res in resources:
            for a in actions:
                expected = "deny" if r == "anonymous" or (res == "users" and r != "admin") or \
                    (a == "delete" and r == role) else "allow"
                observed = expected
                if r == role and res == "contacts" and a == "read":
                    expected, observed = "deny", "allow"   # other owner's record: BOLA
                if r == "anonymous" and res == "users" and a == "list":
                    observed = "error"
                cells.append({"role": r, "resource": res, "action": a, "expected": expected, "observed": observed,
                              "status": 500 if observed == "error" else (200 if observed == "allow" else 403),
                              "mismatch": expected != observed})
    findings = [
        Finding(id="access.bola.contacts", title="A sales rep can read another owner's contact",
                severity=Severity.critical, indicator="sec.access_control", probe="access",
                evidence=[Evidence(request="GET /api/contacts/4711/", status=200, expected="403 or 404",
                                   observed="200 with the record",
                                   excerpt='{"id": 4711, "owner": "other.rep", "email": "j.doe@example.test", '
                                           '"phone": "[REDACTED]"}')],
                remediation="Check object ownership on every read; filter querysets by the requesting user.",
                references=["https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/",
                            "CWE-639"]),
        Finding(id="hardening.headers.csp_missing", title="No Content-Security-Policy header", severity=Severity.low,
                indicator="sec.hardening", probe="access",
                evidence=[Evidence(request="GET /", status=200, observed="header absent")],
                remediation="Add a restrictive Content-Security-Policy.",
                waiver={"justification": "API only; no browser UI served from this host", "by": "sec-team",
                        "expires": "2025-12-31", "pattern": "hardening.headers.csp_missing"}),
        Finding(id="hardening.error.stack_trace", title="Server error leaks a stack trace", severity=Severity.medium,
                indicator="sec.hardening", probe="access",
                evidence=[Evidence(request="GET /api/users/?limit=-1", status=500,
                                   excerpt="Traceback (most recent call last):\n  File \"/app/crm/views.py\", line 88,"
                                           " in list\n    raise ValueError(limit)\nValueError: -1")],
                remediation="Turn DEBUG off and return a generic error body."),
        Finding(id="access.auth.token_expiry", title="Expired tokens are refused", severity=Severity.info,
                status=Status.passed, indicator="sec.authentication", probe="access"),
        Finding(id="access.login.limit", title="Failed-login limit", severity=Severity.medium,
                status=Status.skipped, indicator="sec.authentication", probe="access",
                not_assessed=NotAssessed.safety, hint="run with --allow-disruptive",
                evidence=[Evidence(observed="disruptive checks not allowed by the profile")]),
        Finding(id="access.tenant.isolation", title="Tenant isolation", severity=Severity.critical,
                status=Status.skipped, indicator="sec.access_control", probe="access",
                not_assessed=NotAssessed.needs_account, hint="add an account of a second tenant to the profile"),
        Finding(id="access.session.logout", title="Logout ends the session", severity=Severity.high,
                status=Status.error, indicator="sec.authentication", probe="access",
                not_assessed=NotAssessed.timed_out, hint="raise target.timeout_s or check the server's logout path",
                evidence=[Evidence(request="POST /api/auth/logout/", observed="no answer within 10 s")]),
    ]
    return ProbeResult(probe="access", title="Access control", version="1.4.0", duration_s=33.0, requests=212,
                       findings=findings,
                       artifacts={"matrix": {"roles": roles, "resources": resources, "actions": actions,
                                             "cells": cells}})


def backup_probe() -> ProbeResult:
    return ProbeResult(
        probe="backup", title="Backup and restore", version="0.9.0", duration_s=640.0, requests=58,
        measurements=[Measurement(indicator="bak.rto", value=312.0, unit="s", expected=600.0),
                      Measurement(indicator="bak.rpo", value=5400.0, unit="s", expected=3600.0)],
        findings=[Finding(id="backup.endpoint.unauthenticated", title="Backup download needs no authentication",
                          severity=Severity.high, indicator="bak.protection", probe="backup",
                          evidence=[Evidence(request="GET /admin/backups/latest.sql.gz", status=200)],
                          remediation="Protect backup endpoints; require admin role and MFA.")],
        artifacts={"backup": {  # the drill's record, as plugins/backup/drill.py nests it
            "timeline": [{"event": "canaries written", "t_s": 0.0}, {"event": "backup started", "t_s": 4.2},
                         {"event": "backup finished", "t_s": 96.0}, {"event": "restore started", "t_s": 110.0},
                         {"event": "service back", "t_s": 402.0}, {"event": "canaries verified", "t_s": 422.0}],
            "rto_s": 312.0, "rpo_s": 5400.0,
            "canaries": {"written": 25, "restored": 25, "fields_checked": 175, "mismatches": 0}},
            "cleanup": {"state": "clean", "canaries": None}},
    )


def metrics_probe(probe: str, label: str = "") -> ProbeResult:
    if probe == "kpi":
        metrics = [{"name": "Resolution rate" + label, "indicator": "biz.resolution_rate", "unit": "ratio",
                    "value": 0.83, "expected": 0.8, "formula": "resolved / submitted", "numerator": 415,
                    "denominator": 500},
                   {"name": "First response time (h)", "indicator": "svc.response_time", "unit": "h", "value": 3.2,
                    "expected": 1.0, "formula": "mean(first_response - submitted)", "numerator": None,
                    "denominator": 500}]
        return ProbeResult(probe=probe, title="Kpi", version="1.0.0", duration_s=8.0, requests=60,
                           artifacts={"metrics": metrics, "records": {"cases": 500, "leads": 0, "accounts": 0},
                                      "account": "analyst"})
    else:
        metrics = [{"name": "Completeness", "value": 0.962, "expected": 0.95, "formula": "present / required",
                    "numerator": 4810, "denominator": 5000},
                   {"name": "E-mail validity", "value": 0.91, "expected": 0.98, "formula": "valid / present",
                    "numerator": 910, "denominator": 1000}]
    return ProbeResult(probe=probe, title=probe.replace("_", " ").title(), version="1.0.0", duration_s=8.0,
                       requests=60, artifacts={"metrics": metrics, "defects": {}, "records": 5000,
                                               "resource": "contacts", "account": "analyst"})


def flows_probe(label: str = "Lead to deal") -> ProbeResult:
    """A probe the reporters do not know: drawn generically."""
    return ProbeResult(
        probe="flows", title="Business flows", version="0.3.0", duration_s=44.0, requests=90,
        measurements=[Measurement(indicator="perf.flow_completion_time", value=2.8, unit="s", expected=3.0,
                                  label=label, samples=_summary(2.6, 0.2, 30)),
                      Measurement(indicator="perf.flow_completion_rate", value=0.97, unit="ratio", expected=0.99,
                                  better="higher", label=label)],
        findings=[Finding(id="flows.lead_to_deal.slow_step", title="Step 'attach quote' exceeds 1 s",
                          severity=Severity.low, indicator="perf.flow_completion_time", probe="flows")],
        artifacts={"flows": [{"name": label, "account": "sales-rep", "runs": 30, "completed": 29,
                              "completion_rate": 0.9667, "slo_s": 3.0, "completion_s": _summary(2.6, 0.2, 29).model_dump(),
                              "steps": [{"name": "attach quote", "action": "create", "summary_ms": None, "failures": 1}]}]},
    )


def other_probes() -> list[ProbeResult]:
    return [
        ProbeResult(probe="evidence", title="Auditor evidence", status="error",
                    reason="evidence file evidence.yaml: line 4: cost.roi must be a number"),
        ProbeResult(probe="api_surface", title="API surface", status="skipped", reason="no OpenAPI document published"),
    ]


# (indicator id, severity, probe, title, observed, expected): value-based indicators graded Fail
FAILED_INDICATORS = [
    ("perf.recovery_time", Severity.medium, "load", "Recovery after load", "41 s", "≤ 30 s"),
    ("bak.rpo", Severity.high, "backup", "Recovery point objective", "5,400 s", "≤ 3,600 s"),
    ("svc.response_time", Severity.low, "kpi", "First response time", "3.2 h", "≤ 1 h"),
]


def indicator_findings() -> list[Finding]:
    """Findings drawn from the value-based indicators graded Fail."""
    return [Finding(id=f"indicator.{ind}", title=f"{title} graded Fail", severity=sev, status=Status.failed,
                    indicator=ind, probe=probe, evidence=[Evidence(expected=expected, observed=observed)],
                    remediation=f"Bring {title.lower()} to {expected}.")
            for ind, sev, probe, title, observed, expected in FAILED_INDICATORS]


def make_verdict(result: AuditResult, word: str | None = None, reasons: list[str] | None = None) -> Verdict:
    """The verdict the documented rules would give: open criticals decide, too little coverage is Inconclusive."""
    open_ = [f for f in result.all_findings() if f.is_open]
    counts = {sev.value: sum(1 for f in open_ if f.severity is sev) for sev in reversed(list(Severity))}
    scored = result.scoring or {}
    coverage = scored.get("coverage")
    dims = {n["id"]: n["coverage"] for n in scored.get("nodes", []) if n.get("kind") == "dimension"}
    if word is None:
        word = ("Inconclusive" if coverage is None or coverage < MIN_COVERAGE else
                "Not fit" if counts["critical"] else "Fit with conditions" if counts["high"] else "Fit")
    if reasons is None:
        crit = [f for f in open_ if f.severity is Severity.critical]
        reasons = ([f"{len(crit)} open critical finding{'s' if len(crit) != 1 else ''}: "
                    + f"{crit[0].title} ({crit[0].id})" + (f" and {len(crit) - 1} more" if len(crit) > 1 else "")]
                   if crit else [])
        reasons += [f"{counts['high']} open high findings", f"coverage {coverage:.0%} of the hierarchy's weight"
                    if coverage is not None else "not scored"]
    return Verdict(verdict=word, reasons=reasons, open_counts=counts, coverage=coverage, dimension_coverage=dims,
                   rules={"min_coverage": MIN_COVERAGE, "max_open_critical": 0, "max_open_high_for_fit": 0})


def realistic_result(**overrides: Any) -> AuditResult:
    """A complete, plausible audit of a demo CRM."""
    probes = [latency_probe(), load_probe(), tls_probe(), access_probe(), backup_probe(),
              metrics_probe("data_quality"), metrics_probe("kpi"), flows_probe(), *other_probes()]
    scored = scoring()
    data: dict[str, Any] = dict(
        tool={"name": "crm-audit", "version": "0.1.0"},
        plugins={p.probe: p.version for p in probes if p.version},
        run_id="20250314T090000Z-7f3a",
        target=TargetSummary(name="Demo CRM (staging)", base_url="https://crm.example.test/",
                             scope=["crm.example.test"]),
        profile_digest="sha256:9c4f2e1b7a0d5e3f8a6b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f",
        started="2025-03-14T09:00:00+00:00", finished="2025-03-14T09:41:12+00:00", duration_s=2472.0,
        probes=probes, scoring=scored,
        gates=[GateOutcome(gate="score >= 60", passed=True, detail=f"overall {scored['overall']['score']:.1f} >= 60"),
               GateOutcome(gate="no open critical finding", passed=False,
                           detail="1 open critical finding: access.bola.contacts"),
               GateOutcome(gate="no regression against baseline", passed=False,
                           detail="perf.response_time_p95 regressed (p = 0.003)")],
        baseline={"run_id": "20250301T090000Z-1c2d", "new_findings": ["access.bola.contacts", "tls.hsts.missing"],
                  "fixed_findings": ["tls.protocol.sslv3_enabled"],
                  "score_changes": [{"id": "crm", "before": 74.2, "after": round(scored["overall"]["score"], 1)}, {"id": "bak", "before": 70.0,
                                                                                   "after": 77.8}],
                  "regressions": [{"indicator": "perf.response_time_p95", "label": "Search deals", "probe": "latency",
                                   "unit": "ms", "before": 388.0, "after": 471.0, "relative_change": 0.2139,
                                   "p_value": 0.003, "samples": [200, 200]}]},
        waivers={"applied": [{"id": "hardening.headers.*", "by": "sec-team", "expires": "2025-12-31",
                              "justification": "API only; no browser UI served from this host",
                              "findings": ["hardening.headers.csp_missing"]}], "expired": [], "unmatched": []},
        signature={"algorithm": "ed25519", "key_fingerprint": "sha256:" + "4d" * 32,
                   "signed_at": "2025-03-08T09:30:00+00:00", "value": "Zm9vYmFy" * 11},
    )
    data["indicator_findings"] = indicator_findings()
    data.update(overrides)
    result = AuditResult(**data)
    if "verdict" in overrides:
        return result
    return result.model_copy(update={"verdict": make_verdict(result)})


def hostile_result() -> AuditResult:
    """Target-derived strings everywhere try to break out of their context."""
    base = realistic_result()
    hostile_finding = Finding(
        id="access.bola." + HOSTILE, title="Record title " + HOSTILE, severity=Severity.high, indicator="sec.access_control",
        probe="access",
        evidence=[Evidence(request="GET /api/contacts/?q=" + HOSTILE, status=200, expected=HOSTILE, observed=HOSTILE,
                           excerpt=f'{{"name": "{HOSTILE}", "ctl": "{CONTROL}"}}', details={"header": HOSTILE})],
        remediation="Fix " + HOSTILE, references=["javascript:alert(1)", HOSTILE, "https://example.test/?" + IMG],
        waiver=None,
    )
    waived = Finding(id="hardening.banner", title="Banner " + HOSTILE, severity=Severity.low, probe="access",
                     waiver={"justification": HOSTILE, "by": IMG, "expires": TEMPLATE, "pattern": HOSTILE})
    untested = Finding(id="access.untested." + HOSTILE, title="Untested " + HOSTILE, severity=Severity.high,
                       status=Status.skipped, probe="access", not_assessed=NotAssessed.safety, hint="run " + HOSTILE)
    access = access_probe(role=HOSTILE)
    access = access.model_copy(update={"findings": [*access.findings, hostile_finding, waived, untested]})
    probes = [latency_probe(name_suffix=" " + HOSTILE), load_probe(), tls_probe(host="h" + HOSTILE), access,
              backup_probe(), metrics_probe("kpi", label=HOSTILE), flows_probe(label=HOSTILE),
              ProbeResult(probe="x" + HOSTILE, title=HOSTILE, status="error", reason=HOSTILE + CONTROL)]
    return AuditResult.model_validate({**dict(base), **{
        "target": TargetSummary(name="CRM " + HOSTILE, base_url="https://crm.example.test/" + IMG, scope=[HOSTILE]),
        "probes": probes,
        "scoring": hostile_scoring(),
        "gates": [GateOutcome(gate=HOSTILE, passed=False, detail=HOSTILE)],
        "baseline": {"new_findings": [HOSTILE], "fixed_findings": [HOSTILE],
                     "score_changes": [{"id": HOSTILE, "before": 1, "after": 2}],
                     "regressions": [{"indicator": HOSTILE, "label": HOSTILE, "probe": HOSTILE, "unit": IMG,
                                      "before": 1, "after": 2, "relative_change": 1.0, "p_value": 0.01}]},
        "signature": {"algorithm": "ed25519", "key_fingerprint": IMG, "signed_at": HOSTILE, "value": HOSTILE},
        "incomplete_reason": HOSTILE, "complete": False,
        "indicator_findings": [*base.indicator_findings, Finding(
            id="indicator.perf.response_time_p95", title="p95 of " + HOSTILE, severity=Severity.medium,
            indicator="perf.response_time_p95", probe="latency", evidence=[Evidence(expected=IMG, observed=HOSTILE)])],
        "verdict": base.verdict.model_copy(update={  # type: ignore[union-attr]
            "reasons": ["1 open critical finding: " + HOSTILE, IMG],
            "dimension_coverage": {**base.verdict.dimension_coverage, HOSTILE: 0.5}}),  # type: ignore[union-attr]
    }})


def hostile_scoring() -> dict[str, Any]:
    scored = scoring(title_suffix=HOSTILE, node_title=" " + HOSTILE)
    for node in scored["nodes"]:
        if "not_assessed" in node:
            node["not_assessed"] = {"reasons": ["reason " + HOSTILE], "hints": ["hint " + IMG]}
    return scored


def unscored_result() -> AuditResult:
    """Measurements and findings but no scoring, gates, baseline or signature; the backup
    drill's artifacts in its nested shape ({"backup": {...}, "cleanup": {...}})."""
    base = realistic_result(scoring=None, gates=[], baseline=None, signature=None, waivers=None,
                            indicator_findings=[], verdict=None)
    probes = []
    for probe in base.probes:
        if probe.probe == "backup":
            record = probe.artifacts["backup"]
            drill = {**record, "timeline": [{**e, "status": 200} for e in record["timeline"]],
                     "backups_created": ["b-20250314"], "notes": []}
            probe = probe.model_copy(update={"artifacts": {"backup": drill, "cleanup": {"state": "clean"}}})
        probes.append(probe)
    return base.model_copy(update={"probes": probes})


def legacy_result() -> AuditResult:
    """A scored result as written before verdicts: no verdict, no indicator findings, no coverage per node."""
    scored = scoring()
    scored["nodes"] = [{k: v for k, v in n.items() if k not in ("coverage", "not_assessed")} for n in scored["nodes"]]
    return realistic_result(scoring=scored, indicator_findings=[], verdict=None)


def low_coverage_result() -> AuditResult:
    """Too little assessed for a grade: no overall or security grade, and the verdict is Inconclusive."""
    scored = scoring()
    scored["coverage"] = 0.41
    scored["overall"] = {**scored["overall"], "grade": None, "fuzzy_grade": None, "membership": None}
    for node in scored["nodes"]:
        if node["kind"] in ("root", "dimension"):
            node["coverage"] = 0.41 if node["kind"] == "root" else min(node["coverage"], 0.35)
            node["grade"] = None
    result = realistic_result(scoring=scored, verdict=None)
    return result.model_copy(update={"verdict": make_verdict(result, reasons=[
        "coverage 41 % is below the 60 % a decision needs", "1 open critical finding: access.bola.contacts"])})


def passed_checks_result(open_critical: int = 6, passed: int = 195) -> AuditResult:
    """Issue 14's case: a few open criticals among many passed checks sharing one remediation."""
    advice = "Filter every query by the requesting user's tenant."
    findings = [Finding(id=f"access.bola.open_{i}", title=f"Contact {i} readable by another tenant",
                        severity=Severity.critical, probe="access", indicator="sec.access_control",
                        evidence=[Evidence(request=f"GET /api/contacts/{i}/", status=200, expected="403",
                                           observed="200")], remediation=advice)
                for i in range(open_critical)]
    findings += [Finding(id=f"access.check_{i}", title=f"Check {i} holds", severity=SEVERITIES[i % 5],
                         status=Status.passed, probe="access", indicator="sec.access_control", remediation=advice)
                 for i in range(passed)]
    access = ProbeResult(probe="access", title="Access control", version="1.4.0", findings=findings)
    return realistic_result(probes=[latency_probe(), access], indicator_findings=[])


SEVERITIES = list(Severity)


def many_findings_result(count: int = 5000, excerpt_chars: int = 1500) -> AuditResult:
    """A result with ``count`` findings, each with a sizeable evidence excerpt."""
    rng = random.Random(7)
    body = ('{"id": %d, "name": "Contact %d", "email": "c%d@example.test", "notes": "' + "lorem ipsum " * 200)
    findings = []
    for i in range(count):
        sev = SEVERITIES[i % len(SEVERITIES)]
        findings.append(Finding(
            id=f"access.bola.record_{i}", title=f"Record {i} readable by another tenant", severity=sev,
            status=Status.failed if i % 7 else Status.passed, indicator="sec.access_control", probe="access",
            evidence=[Evidence(request=f"GET /api/contacts/{i}/", status=200, expected="403", observed="200",
                               excerpt=(body % (i, i, i))[:excerpt_chars] + "<&>\"'" * rng.randint(0, 20))],
            remediation="Filter every query by tenant.",
            references=["https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/"],
        ))
    access = ProbeResult(probe="access", title="Access control", version="1.4.0", findings=findings)
    return realistic_result(probes=[latency_probe(), access], indicator_findings=[])


if __name__ == "__main__":  # pragma: no cover - writes a sample for docs and manual checks
    target = sys.argv[1] if len(sys.argv) > 1 else "result.json"
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(realistic_result().model_dump_json(indent=2))
