"""JWT checks: signature really verified, alg none refused, no well-known HMAC secret, expiry, logout.

The account's token is decoded without verification (PyJWT); well-known secrets are tried
offline first (a match proves the server signs with it) and then confirmed with one forged
token. Secret values never appear in evidence: each wordlist entry is named by a label.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any, Callable

import jwt

from crm_audit.adapter import Caller, Credentials
from crm_audit.model import Evidence, NotAssessed, Severity, Status
from crm_audit.profile import Account
from crm_audit.target import Exchange

from .common import INDICATOR_AUTHN, AccessRun, refs
from .login import login_flow

#: (label shown in findings, secret). Public defaults of frameworks, tutorials and CRMs.
DEFAULT_SECRETS: tuple[tuple[str, str], ...] = (
    ("generic word 'secret'", "secret"),
    ("generic word 'changeme'", "changeme"),
    ("jwt.io example secret", "your-256-bit-secret"),
    ("jwt.io example secret (512)", "your-512-bit-secret"),
    ("django-crm 0.9.0 default SECRET_KEY", "&q1&ftrxho9lrzm$$%6!cplb5ac957-9y@t@17u(3yqqb#9xl%"),
    ("generic word 'password'", "password"),
    ("generic word 'secretkey'", "secretkey"),
    ("generic 'secret_key'", "secret_key"),
    ("generic 'jwt_secret'", "jwt_secret"),
    ("generic 'jwtsecret'", "jwtsecret"),
    ("generic 'supersecret'", "supersecret"),
    ("generic 'mysecret'", "mysecret"),
    ("generic 'default'", "default"),
    ("generic 'test'", "test"),
    ("generic 'key'", "key"),
    ("generic '123456'", "123456"),
    ("generic 'admin'", "admin"),
    ("generic 'changeit'", "changeit"),
    ("generic 'your_jwt_secret'", "your_jwt_secret"),
    ("generic 'your-secret-key'", "your-secret-key"),
    ("generic 'secret123'", "secret123"),
    ("generic 'shhhhh'", "shhhhh"),
    ("Django startproject placeholder", "django-insecure-change-me"),
    ("Flask docs example", "dev"),
    ("Rails/Devise example", "CHANGE_ME"),
)

_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(token: str) -> tuple[dict, dict] | None:
    """(header, claims) of a JWT without verifying it, or None when it is not a JWT."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return (header, claims) if isinstance(claims, dict) else None


def _unsigned(header: dict, claims: dict, alg: str) -> str:
    h = dict(header, alg=alg)
    return f"{_b64(json.dumps(h).encode())}.{_b64(json.dumps(claims).encode())}."


def _sign(header: dict, claims: dict, secret: str, alg: str) -> str:
    """An HMAC-signed JWT (done by hand: no key-length warnings, same bytes as any library)."""
    head = _b64(json.dumps(dict(header, alg=alg), separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), _HMAC[alg]).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _verifies(token: str, secret: str, alg: str) -> bool:
    head, body, sig = token.split(".")
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), _HMAC[alg]).digest()
    try:
        given = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    except ValueError:
        return False
    return hmac.compare_digest(mac, given)


def _find_secret(token: str, alg: str, extra: list[str]) -> tuple[str, str] | None:
    """The (label, secret) the token verifies with, trying the wordlist offline."""
    words = list(DEFAULT_SECRETS) + [(f"profile wordlist entry #{i + 1}", s) for i, s in enumerate(extra)]
    for label, word in words:
        if _verifies(token, word, alg):
            return label, word
    return None


class _Prober:
    """Sends one token (as raw credentials) to a protected operation and returns the answer."""

    def __init__(self, account: Account, send: Callable[[Caller], Exchange]) -> None:
        self._send = send
        self.header = account.auth.header or "Authorization"
        self.scheme = account.auth.scheme

    def send(self, token: str) -> Exchange:
        value = (f"{self.scheme} " if self.scheme else "") + token
        return self._send(Credentials(headers={self.header: value}, label="a crafted token"))


def _me_sender(run: AccessRun, path: str) -> Callable[[Caller], Exchange]:
    """GET of the own-user path as an account, raw credentials, or anonymously."""
    def send(who: Caller) -> Exchange:
        if isinstance(who, Credentials):
            return run.ctx.target.request("GET", path, auth=False, headers=dict(who.headers))
        return run.ctx.target.request("GET", path, account=who, auth=who is not None)
    return send


def _protected_path(run: AccessRun, account: Account) -> tuple[Callable[[Caller], Exchange] | None, Exchange | None]:
    """(a request that is allowed with the account's token and denied without, None);
    (None, an exchange that got no usable answer) when none was found and one could not be judged."""
    senders: list[Callable[[Caller], Exchange]] = []
    if run.opts.me_path:
        senders.append(_me_sender(run, run.opts.me_path))
    if run.ctx.adapter is not None:
        adapter = run.ctx.adapter
        senders += [lambda who, r=r: adapter.list(r, who, limit=1)[1] for r in run.resources()]
    silent: Exchange | None = None
    for send in senders[:4]:
        ok = send(account.name)
        anon = send(None)
        if run.outcome(ok) == "allowed" and run.outcome(anon) == "denied":
            return send, None
        silent = silent or next((x for x in (ok, anon) if x.not_assessed is not None), None)
    return None, silent


def check_tokens(run: AccessRun) -> None:
    """All token checks for the first general login account of a non-privileged role."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_AUTHN, references=refs("API2", "CWE-287", "CWE-345"))
    fid = "access.token.jwt"
    accts = [a for a in run.general_accounts() if a.auth.method in ("login", "bearer")]
    accts.sort(key=lambda a: run.privilege(a.role))
    acct = accts[0] if accts else None
    if acct is None:
        run.skip(fid, "Token checks not run (no account with a bearer token)", NotAssessed.needs_account,
                 "add a purpose: general account with auth.method login or bearer", **kw)
        return
    token = run.ctx.target.token(acct)
    parts = _segments(token) if token else None
    if token is None:
        run.skip(fid, f"Token checks not run ({acct.name} has no token)", NotAssessed.not_configured,
                 f"set accounts.{acct.name}.auth.token (bearer) or its login flow", **kw)
        return
    if parts is None:
        run.skip(fid, f"Token checks not run ({acct.name}'s token is not a JWT: nothing to tamper with)",
                 NotAssessed.not_applicable, "nothing to run: JWT checks apply only to JWT bearer tokens", **kw)
        return
    run.ctx.target.redactor.add(token)
    header, claims = parts
    alg = str(header.get("alg", ""))
    path, silent = _protected_path(run, acct)
    if path is None:
        title = "Token checks not run (no endpoint that requires the token was found)"
        if silent is not None:
            run.unassessed(fid, "Token checks: finding an endpoint that requires the token", silent,
                           severity=Severity.critical, **kw)
        else:
            run.skip(fid, title, NotAssessed.not_configured, "set plugins.access.me_path to a GET endpoint that "
                     "answers 2xx with the token and 401/403 without", severity=Severity.critical, **kw)
        return
    probe = _Prober(acct, path)
    head_b64, body_b64, _sig = token.split(".")

    def judge(fid: str, title_ok: str, title_bad: str, forged: str, sev: Severity, cwe: str, fix: str) -> Exchange:
        ex = probe.send(forged)
        run.ctx.target.redactor.add(forged)
        ev = ex.evidence(200, expected="401", observed=str(ex.status))
        if run.outcome(ex) == "allowed":
            run.add(fid, title_bad, status=Status.failed, severity=sev, evidence=[ev], remediation=fix,
                    references=refs("API2", cwe), indicator=INDICATOR_AUTHN)
        elif run.outcome(ex) == "denied":
            run.add(fid, title_ok, status=Status.passed, severity=sev, evidence=[ev], remediation=fix,
                    references=refs("API2", cwe), indicator=INDICATOR_AUTHN)
        else:
            run.unassessed(fid, title_ok, ex, severity=sev, expected="401", remediation=fix,
                           references=refs("API2", cwe), indicator=INDICATOR_AUTHN)
        return ex

    verify_fix = "Verify every token's signature with the server's key and a fixed list of allowed algorithms."
    bad_sig = _b64(secrets.token_bytes(32 if alg.endswith("256") else 48 if alg.endswith("384") else 64))
    judge("access.token.signature_not_verified", "Tokens with a wrong signature are refused",
          "Tokens with a wrong signature are accepted", f"{head_b64}.{body_b64}.{bad_sig}",
          Severity.critical, "CWE-345", verify_fix)
    judge("access.token.signature_stripped", "Tokens without a signature are refused",
          "Tokens with the signature stripped are accepted", f"{head_b64}.{body_b64}.",
          Severity.critical, "CWE-345", verify_fix)
    accepted = None
    unclear: Exchange | None = None
    for variant in ("none", "None", "NONE", "nOnE"):
        ex = probe.send(_unsigned(header, claims, variant))
        if run.outcome(ex) == "allowed":
            accepted = (variant, ex)
            break
        if run.outcome(ex) != "denied":
            unclear = unclear or ex
    none_kw: dict[str, Any] = dict(severity=Severity.critical, remediation=verify_fix, indicator=INDICATOR_AUTHN,
                                   references=refs("API2", "CWE-345", "CWE-347"))
    if accepted:
        run.add("access.token.alg_none", f"Unsigned tokens (alg '{accepted[0]}') are accepted", status=Status.failed,
                evidence=[accepted[1].evidence(200, expected="401", observed=str(accepted[1].status))], **none_kw)
    elif unclear is not None:
        run.unassessed("access.token.alg_none", "Unsigned tokens (alg none) are refused", unclear, expected="401",
                       **none_kw)
    else:
        run.add("access.token.alg_none", "Unsigned tokens (alg none) are refused (401/403 for every spelling)",
                status=Status.passed, **none_kw)

    found = _find_secret(token, alg, run.opts.token_wordlist_extra) if alg in _HMAC else None
    sfix = "Sign tokens with a long random secret kept out of the code and the defaults; rotate it now."
    if found:
        label, word = found
        if len(word) >= 12:
            run.ctx.target.redactor.add(word)
        forged = _sign(header, dict(claims, crm_audit=run.ctx.run_id), word, alg)
        ex = probe.send(forged)
        run.ctx.target.redactor.add(forged)
        ev = ex.evidence(200, expected="401", observed=f"{ex.status} for a token the audit signed itself")
        ev = ev.model_copy(update={"details": {"secret": label, "algorithm": alg}})
        run.add("access.token.default_secret", f"Tokens are signed with a well-known default secret ({label})",
                status=Status.failed, severity=Severity.critical, evidence=[ev], remediation=sfix,
                references=refs("API2", "CWE-798", "CWE-1392", "CWE-345"), indicator=INDICATOR_AUTHN)
    elif alg in _HMAC:  # judged offline: the CRM's own token verifies with none of the known secrets
        run.add("access.token.default_secret", "Token secret is none of the well-known defaults",
                status=Status.passed, severity=Severity.critical, remediation=sfix,
                references=refs("API2", "CWE-798", "CWE-1392"), indicator=INDICATOR_AUTHN)
    else:
        run.skip("access.token.default_secret", f"Token uses {alg or '?'}: no HMAC secret to guess",
                 NotAssessed.not_applicable, f"nothing to run: the token is signed with {alg or 'an unknown algorithm'}, "
                 "not an HMAC secret", severity=Severity.critical, remediation=sfix,
                 references=refs("API2", "CWE-798", "CWE-1392"), indicator=INDICATOR_AUTHN)

    efix = "Issue short-lived access tokens (minutes) with an exp claim and check it on every request."
    if "exp" not in claims:
        claim_ev = Evidence(request=f"decoded token of {acct.name}", expected="an exp claim",
                            observed="claims: " + ", ".join(sorted(map(str, claims))))
        run.add("access.token.no_expiry", "Access tokens carry no expiry (exp claim missing)", status=Status.failed,
                severity=Severity.medium, evidence=[claim_ev], remediation=efix, references=refs("API2", "CWE-613"),
                indicator=INDICATOR_AUTHN)
    else:
        life = None
        if isinstance(claims.get("exp"), (int, float)) and isinstance(claims.get("iat"), (int, float)):
            life = claims["exp"] - claims["iat"]
        run.add("access.token.no_expiry", "Access tokens expire" + (f" (lifetime {life:.0f} s)" if life else ""),
                status=Status.passed, severity=Severity.medium, remediation=efix, references=refs("API2", "CWE-613"),
                indicator=INDICATOR_AUTHN)
        if found:
            now = int(time.time())
            expired = _sign(header, dict(claims, iat=now - 7200, exp=now - 3600), found[1], alg)
            judge("access.token.expired_accepted", "Expired tokens are refused", "Expired tokens are accepted",
                  expired, Severity.high, "CWE-613", efix)
        else:
            run.skip("access.token.expired_accepted", "Expired tokens not tested (the audit cannot sign one)",
                     NotAssessed.not_configured, "to test expiry enforcement, put the CRM's token signing secret in "
                     "plugins.access.token_wordlist_extra (it is never shown)", severity=Severity.high,
                     remediation=efix, references=refs("API2", "CWE-613"), indicator=INDICATOR_AUTHN)
    _check_logout(run, acct, probe)


def _check_logout(run: AccessRun, acct: Account, probe: _Prober) -> None:
    fid = "access.token.valid_after_logout"
    kw: dict[str, Any] = dict(indicator=INDICATOR_AUTHN, references=refs("API2", "CWE-613"), severity=Severity.high,
                              remediation="Revoke the token on logout (deny-list its jti until it expires) "
                                          "or keep access tokens very short-lived.")
    title = "Tokens are revoked on logout"
    if not run.opts.logout_path:
        run.skip(fid, "Logout not tested (plugins.access.logout_path not set)", NotAssessed.not_configured,
                 "set plugins.access.logout_path (POST with the token), or leave it unset when the CRM has no logout",
                 **kw)
        return
    flow = login_flow(run, acct)
    if flow is None or acct.auth.method != "login" or not acct.auth.username or not acct.auth.password:
        run.skip(fid, f"Logout not tested ({acct.name} has no login flow)", NotAssessed.needs_account,
                 f"give {acct.name} auth.method: login with username and password (or set plugins.access.login_path)",
                 **kw)
        return
    lg = flow.send(run, acct.auth.username, acct.auth.password.get_secret_value())
    tok = flow.token(lg)
    if not tok:
        run.unassessed(fid, title + ": a fresh login", lg, **kw)
        return
    before = probe.send(tok)
    out = run.ctx.target.request("POST", run.opts.logout_path, auth=False,
                                 headers={probe.header: (f"{probe.scheme} " if probe.scheme else "") + tok})
    run.ctx.target.forget_token(acct.name)  # a CRM may revoke every token of the user on logout
    if run.outcome(before) != "allowed" or not out.ok:
        run.unassessed(fid, title + f" (token use {before.status}, logout {out.status})",
                       before if run.outcome(before) != "allowed" else out, expected="2xx", **kw)
        return
    after = probe.send(tok)
    ev = after.evidence(200, expected="401 after logout", observed=str(after.status))
    if run.outcome(after) == "allowed":
        run.add(fid, "Tokens stay valid after logout", status=Status.failed, evidence=[ev], **kw)
    elif run.outcome(after) == "denied":
        run.add(fid, title, status=Status.passed, evidence=[ev], **kw)
    else:
        run.unassessed(fid, title, after, expected="401 after logout", **kw)
