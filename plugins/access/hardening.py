"""Hardening: CORS, cookie flags, security headers, error leakage, TRACE, version banners, 5xx on denials.

Everything here is read-only: requests carry no body that could change data (the malformed
JSON body cannot be parsed, so nothing is created); the cookie check logs in once with a
general account's own (correct) password.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.target import Exchange

from .common import INDICATOR_ACCESS, INDICATOR_HARDENING, AccessRun, app_silent, refs
from .login import password_login, try_login

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
    """Run every hardening check against an authenticated API answer and crafted error requests.

    The answer judged is the adapter's own allowed list call (a REST GET, or the POST of an RPC
    call); CORS replays that very request with a foreign Origin, so it fits any protocol.
    """
    acct, base, silent = _sample(run)
    if base is None:
        title = "Hardening not tested (no readable API endpoint)"
        kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8"))
        if silent is not None:
            run.unassessed("access.hardening", "Hardening: finding a readable API endpoint", silent, **kw)
        else:
            run.skip("access.hardening", title, NotAssessed.not_configured, "check the adapter's resources: no "
                     "account could list any of them", **kw)
        return
    _cors(run, acct, base)
    check_cookies(run, [base])
    _headers(run, base)
    _banners(run, base)
    _errors(run, acct)
    _trace(run, urlsplit(base.url).path)


def _sample(run: AccessRun) -> tuple[str | None, Exchange | None, Exchange | None]:
    """(account, an allowed list call of it, None), or (None, None, an exchange that got no usable answer)."""
    accts = sorted(run.general_accounts(), key=lambda a: -run.privilege(a.role))
    if run.ctx.adapter is None:
        return None, None, None
    silent: Exchange | None = None
    for res in run.resources():
        for a in accts[:3]:
            _, ex = run.ctx.adapter.list(res, a.name, limit=1)
            if run.outcome(ex) == "allowed" and ex.ok:
                return a.name, ex, None
            silent = silent or (ex if ex.not_assessed is not None else None)
    return None, None, silent


def _replay(run: AccessRun, acct: str | None, ex: Exchange, headers: dict[str, str]) -> Exchange:
    """The request of ``ex`` (a read) sent again as ``acct`` with extra ``headers``."""
    ctype = ex.request_headers.get("Content-Type") or ex.request_headers.get("content-type")
    extra = {**({"Content-Type": ctype} if ctype and ex.request_body else {}), **headers}
    return run.ctx.target.request(ex.method, ex.url, account=acct, headers=extra, data=ex.request_body or None)


def _cors(run: AccessRun, acct: str | None, base: Exchange) -> None:
    """A foreign origin must get neither credentialed access (reflected Origin with credentials: high) nor the
    right to send the Authorization header from any origin (``*`` or a reflected Origin in the preflight: medium)."""
    origin = run.opts.cors_origin
    t = run.ctx.target
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-942"), severity=Severity.high,
                              remediation="Allow only the CRM's own front-end origins; never reflect the Origin "
                                          "header together with Access-Control-Allow-Credentials: true.")
    get = _replay(run, acct, base, {"Origin": origin})
    pre = t.request("OPTIONS", base.url, auth=False, headers={
        "Origin": origin, "Access-Control-Request-Method": base.method,
        "Access-Control-Request-Headers": "authorization, content-type"})
    bad: list[Evidence] = []
    for ex, kind in ((get, base.method), (pre, "preflight")):
        acao = ex.headers.get("access-control-allow-origin", "")
        creds = ex.headers.get("access-control-allow-credentials", "").lower() == "true"
        if acao == origin and creds:
            bad.append(ex.evidence(80, expected="no CORS grant for a foreign origin",
                                   observed=f"{kind}: Access-Control-Allow-Origin: {acao}; Allow-Credentials: true"))
    title = "CORS does not grant foreign origins credentialed access"
    silent = next((x for x in (get, pre) if x.not_assessed is not None), None)
    if bad:
        run.add("access.cors.reflected_origin", f"CORS trusts any origin with credentials ({origin} reflected)",
                status=Status.failed, evidence=bad, **kw)
    elif silent is not None:
        run.unassessed("access.cors.reflected_origin", title, silent, **kw)
    else:
        seen = get.headers.get("access-control-allow-origin") or pre.headers.get("access-control-allow-origin")
        run.add("access.cors.reflected_origin", title + (f" (Allow-Origin: {seen})" if seen else ""),
                status=Status.passed, **kw)
    _cors_any_origin(run, origin, pre, get)


def _cors_any_origin(run: AccessRun, origin: str, pre: Exchange, get: Exchange) -> None:
    """``access.cors.any_origin``: the preflight lets any origin send ``Authorization`` (a script on any site
    that holds a token, or tricks a user into pasting one, may then call the API from the browser)."""
    fid = "access.cors.any_origin"
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-942", "CWE-346"),
                              severity=Severity.medium,
                              remediation="List the front-end origins explicitly (no '*', no reflected Origin) in "
                                          "the CORS configuration, e.g. CORS_ALLOWED_ORIGINS instead of "
                                          "CORS_ORIGIN_ALLOW_ALL in django-cors-headers.")
    title = "CORS lets no foreign origin send the Authorization header"
    if app_silent(pre) is not None:
        run.unassessed(fid, title, pre, hint="run again when the target answers the preflight (OPTIONS)", **kw)
        return
    acao = pre.headers.get("access-control-allow-origin", "")
    allowed = [h.strip().lower() for h in pre.headers.get("access-control-allow-headers", "").split(",")]
    any_origin = acao in ("*", origin)
    granted = pre.ok and any_origin and "authorization" in allowed
    grant = (f"preflight {pre.status}: Access-Control-Allow-Origin: {acao or '(none)'}; Access-Control-Allow-Headers: "
             f"{pre.headers.get('access-control-allow-headers', '(none)')}")
    ev = [pre.evidence(0, expected=f"no grant for {origin} with Authorization", observed=grant,
                       details={"simple_request_allow_origin": get.headers.get("access-control-allow-origin")})]
    if granted:
        who = "any origin ('*')" if acao == "*" else f"any origin ({origin} reflected)"
        run.add(fid, f"CORS lets {who} send the Authorization header (preflight allows it)", status=Status.failed,
                evidence=ev, **kw)
    else:
        run.add(fid, title + (f" (Allow-Origin: {acao})" if acao else ""), status=Status.passed, evidence=ev, **kw)


#: cookie names that carry a session or a CSRF token
_SESSION_COOKIE = re.compile(r"(?i)sess|sid$|^sid|auth|token|jwt|remember|login|connect\.sid|phpsessid|jsessionid")
_CSRF_COOKIE = re.compile(r"(?i)csrf|xsrf")
#: splits a folded Set-Cookie header between cookies (not inside an Expires date)
_COOKIE_SPLIT = re.compile(r",\s*(?=[^;,=\s]+=)")


def set_cookies(ex: Exchange) -> list[tuple[str, dict[str, str]]]:
    """The cookies an answer sets: (name, attributes lower-cased → value); never their values."""
    raw = ex.headers.get("set-cookie", "") if ex.answered else ""
    out: list[tuple[str, dict[str, str]]] = []
    for part in _COOKIE_SPLIT.split(raw) if raw else []:
        pieces = [p.strip() for p in part.split(";")]
        name = pieces[0].split("=", 1)[0].strip()
        if not name:
            continue
        attrs: dict[str, str] = {}
        for p in pieces[1:]:
            k, _, v = p.partition("=")
            attrs[k.strip().lower()] = v.strip()
        out.append((name, attrs))
    return out


def check_cookies(run: AccessRun, seen: list[Exchange]) -> None:
    """Session and CSRF cookies (set on a login or an authenticated answer) need ``Secure`` over HTTPS,
    ``HttpOnly`` (session cookies) and ``SameSite``; not assessed when no such cookie is ever set."""
    fid = "access.cookies.flags"
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-614", "CWE-1004", "CWE-1275"),
                              severity=Severity.medium,
                              remediation="Set session cookies with Secure; HttpOnly; SameSite=Lax (or Strict), and "
                                          "CSRF cookies with Secure; SameSite (e.g. SESSION_COOKIE_SECURE, "
                                          "CSRF_COOKIE_SECURE, SESSION_COOKIE_SAMESITE in Django).")
    exchanges = list(seen)
    who = next((a for a in run.general_accounts() if password_login(run, a)), None)
    if who is not None:
        tried = try_login(run, who, who.auth.username or "", who.auth.password.get_secret_value()
                          if who.auth.password else "")
        if tried is not None and tried.exchange is not None:
            exchanges.insert(0, tried.exchange)
    https = run.ctx.target.url("/").startswith("https://")
    problems: list[Evidence] = []
    judged: list[str] = []
    for ex in exchanges:
        for name, attrs in set_cookies(ex):
            session, csrf = bool(_SESSION_COOKIE.search(name)), bool(_CSRF_COOKIE.search(name))
            if not (session or csrf):
                continue
            judged.append(name)
            missing = []
            if https and "secure" not in attrs:
                missing.append("Secure")
            if session and not csrf and "httponly" not in attrs:
                missing.append("HttpOnly")
            if not attrs.get("samesite") or attrs.get("samesite", "").lower() == "none" and "secure" not in attrs:
                missing.append("SameSite")
            if missing:
                flags = ", ".join(k if not v else f"{k}={v}" for k, v in attrs.items() if k not in ("expires",
                                                                                                  "max-age"))
                problems.append(ex.evidence(0, expected="Secure (over HTTPS), HttpOnly (session), SameSite",
                                            observed=f"{'session' if session and not csrf else 'CSRF'} cookie {name} "
                                                     f"without {', '.join(missing)} (attributes: {flags or 'none'})",
                                            details={"cookie": name, "missing": missing, "https": https}))
    if problems:
        names = sorted({e.details["cookie"] for e in problems})
        run.add(fid, f"Cookies without security flags: {', '.join(names)}"
                     + ("" if https else " (plain HTTP: Secure not judged)"), status=Status.failed,
                evidence=problems, **kw)
    elif judged:
        run.add(fid, f"Session/CSRF cookies carry their flags ({', '.join(sorted(set(judged)))})"
                     + ("" if https else "; plain HTTP: Secure not judged"), status=Status.passed, **kw)
    else:
        run.skip(fid, "Cookie flags not assessed (no session or CSRF cookie is set on login or API answers)",
                 NotAssessed.not_applicable, "nothing to run: the API sets no session or CSRF cookie", **kw)


def _headers(run: AccessRun, ex: Exchange) -> None:
    """Security headers of an authenticated 2xx answer (any other answer is not the one to judge)."""
    h = ex.headers
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING)
    checks: list[tuple[str, str, bool, str, str, Severity, str, str]] = []  # id, title, ok, expected, seen, sev, cwe, fix
    xcto = h.get("x-content-type-options", "")
    checks.append(("access.headers.x_content_type_options",
                   "X-Content-Type-Options: nosniff " + ("is set" if xcto.lower() == "nosniff" else "is missing"),
                   xcto.lower() == "nosniff", "nosniff", xcto, Severity.low, "CWE-693",
                   "Send X-Content-Type-Options: nosniff on every response."))
    xfo, csp = h.get("x-frame-options", ""), h.get("content-security-policy", "")
    framed = xfo.upper() in ("DENY", "SAMEORIGIN") or "frame-ancestors" in csp.lower()
    checks.append(("access.headers.frame_options",
                   "Framing is " + ("forbidden (X-Frame-Options / CSP frame-ancestors)" if framed else "not restricted"),
                   framed, "X-Frame-Options DENY or CSP frame-ancestors", xfo or csp, Severity.low, "CWE-1021",
                   "Send X-Frame-Options: DENY or Content-Security-Policy: frame-ancestors 'none'."))
    cc = h.get("cache-control", "")
    nostore = "no-store" in cc.lower()
    checks.append(("access.headers.cache_control",
                   "Authenticated API answers are " + ("not cached (no-store)" if nostore else
                                                       "cacheable (no Cache-Control: no-store)"),
                   nostore, "Cache-Control: no-store", cc, Severity.low, "CWE-525",
                   "Send Cache-Control: no-store on authenticated API responses."))
    if run.opts.check_hsts and ex.url.startswith("https://"):
        hsts = h.get("strict-transport-security", "")
        m = re.search(r"max-age=\"?(\d+)", hsts)
        ok = bool(m and int(m.group(1)) > 0)
        checks.append(("access.headers.hsts", "HSTS is " + ("sent" if ok else "missing") + " on API responses", ok,
                       "Strict-Transport-Security with max-age", hsts, Severity.medium, "CWE-319",
                       "Send Strict-Transport-Security: max-age=63072000; includeSubDomains."))
    for fid, title, ok, expected, seen, sev, cwe, fix in checks:
        more: dict[str, Any] = dict(severity=sev, references=refs("API8", cwe), remediation=fix, **kw)
        if not ex.ok:
            run.unassessed(fid, f"Security header {expected}", ex, expected="2xx", **more)
            continue
        run.add(fid, title, status=Status.passed if ok else Status.failed,
                evidence=[ex.evidence(0, expected=expected, observed=seen or "absent")], **more)


def _banners(run: AccessRun, ex: Exchange) -> None:
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-200"), severity=Severity.low,
                              remediation="Remove version numbers from Server / X-Powered-By headers (or the headers).")
    if app_silent(ex) is not None:
        run.unassessed("access.banner.version", "Response headers reveal no software versions", ex, **kw)
        return
    shown = []
    for name in ("server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator", "x-runtime-version"):
        v = ex.headers.get(name)
        if v and _VERSION.search(v):
            shown.append(f"{name}: {v}")
    if shown:
        run.add("access.banner.version", "Response headers reveal software versions", status=Status.failed,
                evidence=[ex.evidence(0, expected="no versions", observed="; ".join(shown))], **kw)
    else:
        run.add("access.banner.version", "Response headers reveal no software versions", status=Status.passed, **kw)


def trace_kinds(ex: Exchange) -> list[str]:
    """What kinds of stack trace or internals an answer shows (empty: none)."""
    return [name for name, pat in _TRACE_PATTERNS if pat.search(ex.text[:20000])]


def _errors(run: AccessRun, acct: str | None) -> None:
    """A non-integer id and a malformed JSON body must not answer with stack traces."""
    t = run.ctx.target
    tries: list[Exchange] = []
    adapter = run.ctx.adapter
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-209"), severity=Severity.medium,
                              remediation="Return generic error bodies; log stack traces on the server only "
                                          "(and turn debug mode off).")
    title = "Error responses leak no stack traces"
    if adapter is None or not run.resources():
        run.skip("access.errors.stack_trace", title + " (not tested: no resource to send bad requests to)",
                 NotAssessed.not_configured, "describe the CRM's resources under adapter: in the profile", **kw)
        return
    for res in run.resources()[:2]:
        tries.append(adapter.read(res, "not-an-id", acct)[1])
    # where the adapter lists records (a collection, or the RPC endpoint): a malformed body goes there
    path = urlsplit(adapter.list(run.resources()[0], acct, limit=1)[1].url).path
    tries.append(t.request("POST", path, account=acct, data=b'{"crm-audit": ',
                           headers={"Content-Type": "application/json"}))
    leaks: list[Evidence] = list(run.notes.get("trace_leaks") or [])  # the robustness probes' error answers
    for ex in tries:
        if ex.status is None or ex.status < 400:
            continue
        kinds = trace_kinds(ex)
        if kinds:
            leaks.append(ex.evidence(200, expected="a short error message", observed=", ".join(kinds)))
    silent = next((x for x in tries if app_silent(x) is not None), None)
    if leaks:
        run.add("access.errors.stack_trace", "Error responses leak stack traces or internals", status=Status.failed,
                evidence=leaks, **kw)
    elif silent is not None:  # the application's own error answer was not seen
        run.unassessed("access.errors.stack_trace", title, silent, **kw)
    else:
        run.add("access.errors.stack_trace", title, status=Status.passed,
                evidence=[Evidence(request="; ".join(f"{x.method} {x.status}" for x in tries))], **kw)


def _trace(run: AccessRun, path: str) -> None:
    ex = run.ctx.target.request("TRACE", path, auth=False, headers={"X-Crm-Audit-Trace": run.ctx.tag})
    on = ex.ok and run.ctx.tag in ex.text
    kw: dict[str, Any] = dict(references=refs("API8", "CWE-693"), indicator=INDICATOR_HARDENING, severity=Severity.low,
                              remediation="Disable the TRACE method at the server or proxy.")
    if not on and app_silent(ex) is not None:
        run.unassessed("access.http.trace", "HTTP TRACE is disabled", ex, expected="405/501", **kw)
        return
    run.add("access.http.trace", "HTTP TRACE is " + ("enabled (echoes requests)" if on else "disabled"),
            status=Status.failed if on else Status.passed,
            evidence=[ex.evidence(100, expected="405/501", observed=str(ex.status))], **kw)


def report_deny_errors(run: AccessRun) -> None:
    """One finding for all denials that answered 5xx instead of 401/403/404 — and a pass only on real denials."""
    fid = "access.errors.server_error_on_deny"
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API8", "CWE-755", "CWE-209"),
                              severity=Severity.medium,
                              remediation="Deny with 401/403/404; a 500 on a denied path means the check "
                                          "failed by crashing, which may also leak details or leave partial writes.")
    title = "Denied requests answer 401/403/404, not 5xx"
    if run.deny_errors:
        run.add(fid, f"{len(run.deny_errors)} denied request(s) answered 5xx",
                status=Status.failed, evidence=run.deny_errors, **kw)
    elif run.notes.get("denials"):
        run.add(fid, title + f" ({run.notes['denials']} denials seen)", status=Status.passed, **kw)
    elif run.notes.get("silent") is not None:
        run.unassessed(fid, title, run.notes["silent"], **kw)
    else:
        run.skip(fid, title + " (no request that must be refused was sent)", NotAssessed.not_applicable,
                 "nothing to run: no request of this audit was meant to be refused", **kw)
