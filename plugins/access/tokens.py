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
from collections.abc import Callable
from typing import Any

import jwt

from crm_audit.core.adapter import Caller, RawCredentials
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange, TargetError

from .common import INDICATOR_AUTHN, AccessRun, refs

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


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(header, claims) of a JWT without verifying it, or None when it is not a JWT."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return (header, claims) if isinstance(claims, dict) else None


def _unsigned(header: dict[str, Any], claims: dict[str, Any], alg: str) -> str:
    h = dict(header, alg=alg)
    return f"{_b64(json.dumps(h).encode())}.{_b64(json.dumps(claims).encode())}."


def _sign(header: dict[str, Any], claims: dict[str, Any], secret: str, alg: str) -> str:
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
    """Sends one token, presented the way the account's auth method presents its own, to a protected operation."""

    def __init__(self, run: AccessRun, account: Account, send: Callable[[Caller], Exchange]) -> None:
        self._run, self._account, self._send = run, account, send

    def send(self, token: str) -> Exchange:
        target = self._run.ctx.target
        headers = target.present_token(self._account, token)
        return self._send(RawCredentials(headers=headers, context=target.context(self._account.name),
                                         label="a crafted token"))


def _protected_path(run: AccessRun, account: Account) -> tuple[Callable[[Caller], Exchange] | None, Exchange | None]:
    """(a call that is allowed with the account's token and denied without, None);
    (None, an exchange that got no usable answer) when none was found and one could not be judged."""
    senders: list[Callable[[Caller], Exchange]] = []
    me = run.operation("me")
    if me is not None:
        senders.append(lambda who: run.call(me, None, who)[1])
    if run.ctx.adapter is not None:
        adapter = run.ctx.adapter

        def lister(r: str) -> Callable[[Caller], Exchange]:
            return lambda who: adapter.list(r, who, limit=1)[1]

        senders += [lister(r) for r in run.resources()]
    silent: Exchange | None = None
    for send in senders[:4]:
        ok = send(account.name)
        anon = send(None)
        if run.outcome(ok) == "allowed" and run.outcome(anon) == "denied":
            return send, None
        silent = silent or next((x for x in (ok, anon) if x.not_assessed is not None), None)
    return None, silent


#: a call allowed with the account's session and refused without (the lifecycle checks use it too)
protected_call = _protected_path


def _token_account(run: AccessRun) -> tuple[Account | None, str | None]:
    """The least privileged general account whose credentials hold a token, and that token."""
    for a in sorted(run.general_accounts(), key=lambda a: run.privilege(a.role)):
        try:
            token = run.ctx.target.token(a)
        except TargetError:
            continue
        if token:
            return a, token
    return None, None


def check_tokens(run: AccessRun) -> None:
    """All token checks for the first general login account of a non-privileged role."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_AUTHN, references=refs("API2", "CWE-287", "CWE-345"))
    fid = "access.token.jwt"
    acct, token = _token_account(run)
    if acct is None or token is None:
        run.skip(fid, "Token checks not run (no account's credentials hold a token)", NotAssessed.needs_account,
                 "add a purpose: general account whose auth method yields a token (login, bearer, oauth2 …)", **kw)
        return
    parts = _segments(token)
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
            run.skip(fid, title, NotAssessed.not_configured, "map the adapter's 'me' operation (adapter.operations.me), "
                     "which must be allowed with the token and refused without", severity=Severity.critical, **kw)
        return
    probe = _Prober(run, acct, path)
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
    target = run.ctx.target
    try:
        tok = target.token(acct, refresh=True)  # a session of its own, so the logout ends nothing else
    except TargetError as exc:
        run.unassessed(fid, title + f": a fresh login ({exc})", None, **kw)
        return
    if not tok:
        run.unassessed(fid, title + ": a fresh login gave no token", None, **kw)
        return
    before = probe.send(tok)
    out = target.logout(acct.name)  # through the account's auth method (auth.logout); drops its credentials
    if out is None:
        run.skip(fid, f"Logout not tested ({acct.name}'s auth method has no way to log out)",
                 NotAssessed.not_configured, f"set accounts.{acct.name}.auth.logout (the logout request), or leave it "
                 "unset when the CRM has no logout" + (" (plugins.access.logout_path is no longer used)"
                                                       if run.opts.logout_path else ""), **kw)
        return
    if run.outcome(before) != "allowed" or run.outcome(out) != "allowed":
        run.unassessed(fid, title + f" (token use {run.outcome(before)}, logout {run.outcome(out)})",
                       before if run.outcome(before) != "allowed" else out, expected="allowed", **kw)
        return
    after = probe.send(tok)
    ev = after.evidence(200, expected="401 after logout", observed=str(after.status))
    if run.outcome(after) == "allowed":
        run.add(fid, "Tokens stay valid after logout", status=Status.failed, evidence=[ev], **kw)
    elif run.outcome(after) == "denied":
        run.add(fid, title, status=Status.passed, evidence=[ev], **kw)
    else:
        run.unassessed(fid, title, after, expected="401 after logout", **kw)
