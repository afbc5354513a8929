"""Hardening: CORS, security headers, error leakage, TRACE, version banners, 5xx on denials.

Everything here is read-only: requests carry no body that could change data (the malformed
JSON body cannot be parsed, so nothing is created).
"""

from __future__ import annotations

import re
from typing import Any

from crm_audit.model import Evidence, Severity, Status
from crm_audit.target import Exchange

from .common import INDICATOR_ACCESS, INDICATOR_HARDENING, AccessRun, refs

_TRACE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Python traceback", re.compile(r"Traceback \(most recent call last\)")),
    ("source file path", re.compile(r'File "[^"]+", line \d+')),
    ("SQLSTATE", re.compile(r"SQLSTATE\[?\w*")),
    ("psycopg error", re.compile(r"psycopg2?\.\w+|psycopg\.errors")),
    ("sqlite3 error", re.compile(r"sqlite3\.(Operational|Integrity|Programming)Error")),
    ("Django internals", re.compile(r"django\.(db|core|http|urls|template)\.|You're seeing this error because you have")),
    ("Java stack trace", re.compile(r"\n\s+at [\w$.]+\([\w$]+\.java:\d+\)")),
    (".NET stack trace", re.compile(r"System\.\w+Exception|at \w+(\.\w+)+\(.*\) in .*:line \d+")),
    ("PHP error", re.compile(r"<b>(Fatal error|Warning|Parse error)</b>:|Stack trace:\s*#0")),
    ("SQL syntax error", re.compile(r"You have an error in your SQL syntax|ORA-\d{5}|PG::\w+Error")),
    ("Node stack trace", re.compile(r"\n\s+at \S+ \(/[^)]+\.js:\d+:\d+\)")),
)
_VERSION = re.compile(r"\d+\.\d+")


def check_hardening(run: AccessRun) -> None:
    """Run every hardening check against an authenticated API answer and crafted error requests."""
    acct, path = _sample(run)
    if path is None:
        run.add("access.hardening", "Hardening not tested (no readable API endpoint)", status=Status.skipped,
                severity=Severity.info, indicator=INDICATOR_HARDENING)
        return
    t = run.ctx.target
    base = t.request("GET", path, account=acct)
    _cors(run, acct, path)
    _headers(run, base)
    _banners(run, base)
    _errors(run, acct)
    _trace(run, path)


def _sample(run: AccessRun) -> tuple[str | None, str | None]:
    accts = sorted(run.general_accounts(), key=lambda a: -run.privilege(a.role))
    if run.ctx.adapter is None:
        return (accts[0].name if accts else None), run.opts.me_path
    for res in run.resources():
        path = run.ctx.adapter.resource(res).path
        for a in accts[:3]:
            if run.ctx.target.request("GET", path, account=a.name, params={"limit": 1}).ok:
                return a.name, path
    return None, None


def _cors(run: AccessRun, acct: str | None, path: str) -> None:
    origin = run.opts.cors_origin
    t = run.ctx.target
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-942"),
                              remediation="Allow only the CRM's own front-end origins; never reflect the Origin "
                                          "header together with Access-Control-Allow-Credentials: true.")
    get = t.request("GET", path, account=acct, headers={"Origin": origin})
    pre = t.request("OPTIONS", path, auth=False, headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                                         "Access-Control-Request-Headers": "authorization"})
    bad: list[Evidence] = []
    for ex, kind in ((get, "GET"), (pre, "preflight")):
        acao = ex.headers.get("access-control-allow-origin", "")
        creds = ex.headers.get("access-control-allow-credentials", "").lower() == "true"
        if acao == origin and creds:
            bad.append(ex.evidence(80, expected="no CORS grant for a foreign origin",
                                   observed=f"{kind}: Access-Control-Allow-Origin: {acao}; Allow-Credentials: true"))
    if bad:
        run.add("access.cors.reflected_origin", f"CORS trusts any origin with credentials ({origin} reflected)",
                status=Status.failed, severity=Severity.high, evidence=bad, **kw)
    else:
        seen = get.headers.get("access-control-allow-origin") or pre.headers.get("access-control-allow-origin")
        run.add("access.cors.reflected_origin", "CORS does not grant foreign origins credentialed access"
                + (f" (Allow-Origin: {seen})" if seen else ""), status=Status.passed, severity=Severity.high, **kw)


def _headers(run: AccessRun, ex: Exchange) -> None:
    if ex.status is None:
        return
    h = ex.headers
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING)
    ev = lambda name, seen: [ex.evidence(0, expected=name, observed=seen or "absent")]  # noqa: E731
    xcto = h.get("x-content-type-options", "")
    run.add("access.headers.x_content_type_options",
            "X-Content-Type-Options: nosniff " + ("is set" if xcto.lower() == "nosniff" else "is missing"),
            status=Status.passed if xcto.lower() == "nosniff" else Status.failed, severity=Severity.low,
            evidence=ev("nosniff", xcto), references=refs("API8", "CWE-693"),
            remediation="Send X-Content-Type-Options: nosniff on every response.", **kw)
    xfo, csp = h.get("x-frame-options", ""), h.get("content-security-policy", "")
    framed = xfo.upper() in ("DENY", "SAMEORIGIN") or "frame-ancestors" in csp.lower()
    run.add("access.headers.frame_options",
            "Framing is " + ("forbidden (X-Frame-Options / CSP frame-ancestors)" if framed else "not restricted"),
            status=Status.passed if framed else Status.failed, severity=Severity.low,
            evidence=ev("X-Frame-Options DENY or CSP frame-ancestors", xfo or csp), references=refs("API8", "CWE-1021"),
            remediation="Send X-Frame-Options: DENY or Content-Security-Policy: frame-ancestors 'none'.", **kw)
    cc = h.get("cache-control", "")
    nostore = "no-store" in cc.lower()
    run.add("access.headers.cache_control",
            "Authenticated API answers are " + ("not cached (no-store)" if nostore else "cacheable (no Cache-Control: no-store)"),
            status=Status.passed if nostore else Status.failed, severity=Severity.low,
            evidence=ev("Cache-Control: no-store", cc), references=refs("API8", "CWE-525"),
            remediation="Send Cache-Control: no-store on authenticated API responses.", **kw)
    if run.opts.check_hsts and ex.url.startswith("https://"):
        hsts = h.get("strict-transport-security", "")
        m = re.search(r"max-age=\"?(\d+)", hsts)
        ok = bool(m and int(m.group(1)) > 0)
        run.add("access.headers.hsts", "HSTS is " + ("sent" if ok else "missing") + " on API responses",
                status=Status.passed if ok else Status.failed, severity=Severity.medium,
                evidence=ev("Strict-Transport-Security with max-age", hsts), references=refs("API8", "CWE-319"),
                remediation="Send Strict-Transport-Security: max-age=63072000; includeSubDomains.", **kw)


def _banners(run: AccessRun, ex: Exchange) -> None:
    if ex.status is None:
        return
    shown = []
    for name in ("server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator", "x-runtime-version"):
        v = ex.headers.get(name)
        if v and _VERSION.search(v):
            shown.append(f"{name}: {v}")
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-200"),
                              remediation="Remove version numbers from Server / X-Powered-By headers (or the headers).")
    if shown:
        run.add("access.banner.version", "Response headers reveal software versions", status=Status.failed,
                severity=Severity.low, evidence=[ex.evidence(0, expected="no versions", observed="; ".join(shown))], **kw)
    else:
        run.add("access.banner.version", "Response headers reveal no software versions", status=Status.passed,
                severity=Severity.low, **kw)


def _errors(run: AccessRun, acct: str | None) -> None:
    """A non-integer id and a malformed JSON body must not answer with stack traces."""
    t = run.ctx.target
    tries: list[Exchange] = []
    adapter = run.ctx.adapter
    for res in run.resources()[:2]:
        item = adapter.item_path(res, "not-an-id")
        tries.append(t.request("GET", item, account=acct))
    if run.resources():
        rc = adapter.resource(run.resources()[0])
        tries.append(t.request("POST", rc.path, account=acct, data=b'{"crm-audit": ',
                               headers={"Content-Type": "application/json"}))
    leaks: list[Evidence] = []
    for ex in tries:
        if ex.status is None or ex.status < 400:
            continue
        kinds = [name for name, pat in _TRACE_PATTERNS if pat.search(ex.text[:20000])]
        if kinds:
            leaks.append(ex.evidence(200, expected="a short error message", observed=", ".join(kinds)))
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-209"),
                              remediation="Return generic error bodies; log stack traces on the server only "
                                          "(and turn debug mode off).")
    if leaks:
        run.add("access.errors.stack_trace", "Error responses leak stack traces or internals", status=Status.failed,
                severity=Severity.medium, evidence=leaks, **kw)
    else:
        run.add("access.errors.stack_trace", "Error responses leak no stack traces", status=Status.passed,
                severity=Severity.medium,
                evidence=[Evidence(request="; ".join(f"{x.method} {x.status}" for x in tries))], **kw)


def _trace(run: AccessRun, path: str) -> None:
    ex = run.ctx.target.request("TRACE", path, auth=False, headers={"X-Crm-Audit-Trace": run.ctx.tag})
    on = ex.ok and run.ctx.tag in ex.text
    run.add("access.http.trace", "HTTP TRACE is " + ("enabled (echoes requests)" if on else "disabled"),
            status=Status.failed if on else Status.passed, severity=Severity.low,
            evidence=[ex.evidence(100, expected="405/501", observed=str(ex.status))],
            references=refs("API8", "CWE-693"), indicator=INDICATOR_HARDENING,
            remediation="Disable the TRACE method at the server or proxy.")


def report_deny_errors(run: AccessRun) -> None:
    """One finding for all denials that answered 5xx instead of 401/403/404."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API8", "CWE-755", "CWE-209"),
                              remediation="Deny with 401/403/404; a 500 on a denied path means the check "
                                          "failed by crashing, which may also leak details or leave partial writes.")
    if run.deny_errors:
        run.add("access.errors.server_error_on_deny", f"{len(run.deny_errors)} denied request(s) answered 5xx",
                status=Status.failed, severity=Severity.medium, evidence=run.deny_errors, **kw)
    else:
        run.add("access.errors.server_error_on_deny", "Denied requests answer 401/403/404, not 5xx",
                status=Status.passed, severity=Severity.medium, **kw)
