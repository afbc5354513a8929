"""Login checks: failed-login limit (disruptive), user enumeration, open self-registration.

Logins are sent through the audit's Target with the login flow of the profile's accounts
(path, body template, token path), so the same code fits any CRM the profile describes.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from crm_audit.adapter import Credentials, dig, fill
from crm_audit.model import Evidence, NotAssessed, Severity, Status
from crm_audit.profile import Account
from crm_audit.target import Exchange

from .common import HINT_DISRUPTIVE, HINT_WRITES, INDICATOR_AUTHN, INDICATOR_LOGIN, AccessRun, refs

_LOCK_WORDS = re.compile(r"(?i)lock|too many|attempts|throttl|rate.?limit|try again|slow down|captcha")


@dataclass(frozen=True)
class LoginFlow:
    """Where and how to log in: path, body template ({username} {password}), format, token path."""

    path: str
    body: dict[str, str]
    body_format: str
    token_path: str

    def send(self, run: AccessRun, username: str, password: str) -> Exchange:
        """One login attempt; a token in the answer is added to the redactor at once."""
        run.ctx.target.redactor.add(password)
        body = {k: v.replace("{username}", username).replace("{password}", password) for k, v in self.body.items()}
        kw: dict[str, Any] = {"json": body} if self.body_format == "json" else {"data": body}
        ex = run.ctx.target.request("POST", self.path, auth=False, **kw)
        tok = self.token(ex)
        if tok:
            run.ctx.target.redactor.add(tok)
        return ex

    def token(self, ex: Exchange) -> str | None:
        if not ex.ok:
            return None
        tok = dig(ex.json_or_none(), self.token_path)
        return tok if isinstance(tok, str) and tok else None


def login_flow(run: AccessRun, account: Account | None = None) -> LoginFlow | None:
    """The login flow from the options, else from ``account`` or the first login account."""
    accts = [account] if account is not None and account.auth.method == "login" else []
    accts += [a for a in run.profile.accounts if a.auth.method == "login"]
    base = accts[0].auth if accts else None
    path = run.opts.login_path or (base.url if base else None)
    if not path:
        return None
    return LoginFlow(
        path=path,
        body=run.opts.login_body or (dict(base.body) if base else {"username": "{username}", "password": "{password}"}),
        body_format=run.opts.login_body_format or (base.body_format if base else "json"),
        token_path=base.token_path if base else "access_token",
    )


def _password(account: Account) -> str:
    return account.auth.password.get_secret_value() if account.auth.password else ""


def _wrong_password() -> str:
    return "Wrong-" + secrets.token_urlsafe(12)


def _normal(ex: Exchange, *names: str) -> str:
    """A response body with the tried usernames and volatile values taken out, for comparison."""
    text = ex.text
    for n in names:
        if n:
            text = text.replace(n, "<user>")
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z?|[0-9a-f]{16,}|\d+(\.\d+)?", "#", text)
    return text.strip()


def check_enumeration(run: AccessRun) -> None:
    """Unknown user vs wrong password of a known user must answer the same (CWE-204)."""
    # wrong passwords go only to the dedicated lockout account, or (disruptive) to at most three others
    candidates = [a for a in run.profile.accounts if a.purpose == "lockout" and a.auth.method == "login"]
    if run.ctx.allow_disruptive:
        candidates += [a for a in run.general_accounts() if a.auth.method == "login"]
    candidates = [a for a in candidates if a.auth.username]
    known = candidates[0] if candidates else None
    flow = login_flow(run, known)
    fid = "access.login.user_enumeration"
    title = "Login errors do not reveal which usernames exist"
    kw: dict[str, Any] = dict(indicator=INDICATOR_AUTHN, references=refs("API2", "CWE-204"), severity=Severity.medium,
                              remediation="Answer unknown usernames and wrong passwords with the same status and "
                                          "message (and comparable timing).")
    if flow is None:
        run.skip(fid, title + " (not tested: no login flow)", NotAssessed.not_configured,
                 "set plugins.access.login_path (and login_body), or give an account auth.method: login", **kw)
        return
    if known is None:
        if run.ctx.allow_disruptive:
            run.skip(fid, title + " (not tested: no account logs in with a username)", NotAssessed.needs_account,
                     "add an account with purpose: lockout and auth.method: login (username, password)", **kw)
        else:
            run.skip(fid, title + " (not tested: wrong passwords go only to a purpose: lockout account)",
                     NotAssessed.safety, "add an account with purpose: lockout (auth.method: login), or "
                     + HINT_DISRUPTIVE, **kw)
        return
    unknown: list[str] = []
    u1 = u2 = k1 = None
    user = ""
    for cand in candidates[:3]:
        user = cand.auth.username or ""
        domain = user.split("@", 1)[1] if "@" in user else None
        unknown = [f"crm-audit-{secrets.token_hex(4)}" + (f"@{domain}" if domain else "") for _ in range(2)]
        k1 = flow.send(run, user, _wrong_password())
        if k1.status in (423, 429) or "retry-after" in k1.headers:
            continue  # this account is locked (an earlier lockout test): its answer proves nothing
        u1 = flow.send(run, unknown[0], _wrong_password())
        u2 = flow.send(run, unknown[1], _wrong_password())
        known = cand
        break
    if u1 is None or u2 is None or k1 is None:
        run.unassessed(fid, title + " (every login account is locked right now)", k1,
                       hint="run again once the lockout period has passed", **kw)
        return
    if k1.not_assessed is None:  # the failed login reached the CRM: the access-log check looks for it
        run.notes["failed_login_user"] = user
        run.notes["failed_login_account"] = known.name
    else:
        run.notes["failed_login_silent"] = k1
    silent = next((x for x in (k1, u1, u2) if x.not_assessed is not None), None)
    if silent is not None:
        run.unassessed(fid, title, silent, **kw)
        return
    if u1.ok or k1.ok:
        run.unassessed(fid, title + " (a wrong password was accepted?)", u1 if u1.ok else k1,
                       reason=NotAssessed.request_failed, **kw)
        return
    bodies_stable = _normal(u1, unknown[0]) == _normal(u2, unknown[1]) and u1.status == u2.status
    differs_status = u1.status == u2.status and u1.status != k1.status
    differs_body = bodies_stable and _normal(u1, unknown[0]) != _normal(k1, user)
    timing = {"unknown_user_s": [round(u1.elapsed_s, 4), round(u2.elapsed_s, 4)], "known_user_s": round(k1.elapsed_s, 4)}
    ev = [u1.evidence(200, expected="same answer as for a known user", observed=f"unknown user: {u1.status}"),
          k1.evidence(200, expected="same answer as for an unknown user", observed=f"known user, wrong password: {k1.status}")]
    ev[0] = ev[0].model_copy(update={"details": timing})
    if differs_status or differs_body:
        what = "status" if differs_status else "message"
        run.add(fid, f"Login reveals which usernames exist (different {what} for unknown user and wrong password)",
                status=Status.failed, evidence=ev, **kw)
    else:
        run.add(fid, title, status=Status.passed, evidence=ev, **kw)


def check_lockout(run: AccessRun) -> None:
    """N wrong passwords for the dedicated lockout account must lock, throttle or slow it down."""
    fid = "access.login.no_lockout"
    kw: dict[str, Any] = dict(indicator=INDICATOR_LOGIN, references=refs("API2", "API4", "CWE-307"),
                              severity=Severity.high,
                              remediation="Lock or throttle an account (and source) after a few consecutive failed "
                                          "logins, answer 429 with Retry-After, and log the event.")
    title = "Failed logins are limited"
    acct = next((a for a in run.profile.accounts if a.purpose == "lockout"), None)
    if not run.ctx.allow_disruptive:
        run.skip(fid, "Failed-login limit not tested (disruptive: it locks an account)", NotAssessed.safety,
                 HINT_DISRUPTIVE, **kw)
        return
    if acct is None or acct.auth.method != "login" or not acct.auth.username:
        run.skip(fid, "Failed-login limit not tested (no account with purpose: lockout)", NotAssessed.needs_account,
                 "add a dedicated login account with purpose: lockout (a user the audit may lock)", **kw)
        return
    flow = login_flow(run, acct)
    if flow is None:
        run.skip(fid, "Failed-login limit not tested (no login path)", NotAssessed.not_configured,
                 f"set accounts.{acct.name}.auth.url or plugins.access.login_path", **kw)
        return
    user, pw = acct.auth.username, _password(acct)
    first = flow.send(run, user, pw)  # a success resets earlier failures (e.g. the enumeration check)
    if not first.ok:
        run.unassessed(fid, title + ": the lockout account must log in first", first, expected="200",
                       hint=None if first.not_assessed else "run again once the lockout period has passed"
                       if first.status in (423, 429) else f"check the credentials of account {acct.name}", **kw)
        return
    tries: list[Exchange] = []
    locked_at: int | None = None
    for i in range(run.opts.lockout_attempts):
        run.ctx.check_cancelled()
        ex = flow.send(run, user, _wrong_password())
        tries.append(ex)
        if _protected(ex, tries[0]):
            locked_at = i + 1
            break
    slow = len(tries) > 2 and tries[-1].elapsed_s > max(1.0, 3 * tries[0].elapsed_s)
    final = flow.send(run, user, pw)
    statuses = [t.status for t in tries]
    details = {"attempts": len(tries), "statuses": statuses,
               "elapsed_s": [round(t.elapsed_s, 3) for t in tries], "correct_password_after": final.status}
    last = tries[-1].evidence(200, expected=f"lockout/429 within {run.opts.lockout_attempts} attempts",
                              observed=f"statuses {statuses}; correct password then: {final.status}")
    last = last.model_copy(update={"details": details})
    silent = next((t for t in tries if t.not_assessed is not None), None)
    if locked_at is not None:
        run.add(fid, f"Failed logins are limited (refused after {locked_at} wrong passwords)", status=Status.passed,
                evidence=[last], **kw)
    elif silent is not None:  # a wrong password without an answer: neither a limit nor its absence was seen
        run.unassessed(fid, title, silent, **kw)
    elif slow:
        run.add(fid, "Failed logins are throttled (answers slow down)", status=Status.passed, evidence=[last], **kw)
    elif final.not_assessed is not None:
        run.unassessed(fid, title + ": the correct password afterwards", final, **kw)
    elif not final.ok:
        run.add(fid, f"Failed logins lock the account silently (correct password refused with {final.status})",
                status=Status.passed, evidence=[last], **kw)
    else:
        run.add(fid, f"No limit on failed logins: {len(tries)} wrong passwords, then the right one was accepted",
                status=Status.failed, evidence=[last], **kw)
    if final.ok:
        tok = flow.token(final)
        if tok:
            run.ctx.target.redactor.add(tok)


def _protected(ex: Exchange, first: Exchange) -> bool:
    if ex.status in (423, 429) or "retry-after" in ex.headers:
        return True
    return ex.status != first.status and bool(_LOCK_WORDS.search(ex.text[:500]))


def check_registration(run: AccessRun) -> None:
    """Anonymous self-registration must not hand out access to existing data or admin functions."""
    fid = "access.registration.privileged"
    kw: dict[str, Any] = dict(indicator=INDICATOR_AUTHN, references=refs("API2", "API5", "CWE-269", "CWE-287"),
                              remediation="Disable anonymous self-registration, or give new users no role and no "
                                          "tenant until an administrator approves them.")
    crit = dict(kw, severity=Severity.critical)
    title = "Anonymous self-registration grants no access"
    path = run.opts.register_path
    if not path:
        run.skip(fid, "Self-registration not tested (plugins.access.register_path not set)", NotAssessed.not_configured,
                 "set plugins.access.register_path (and register_body) to the CRM's sign-up endpoint, if it has one",
                 **crit)
        return
    if not run.ctx.allow_writes:
        run.skip(fid, "Self-registration not tested (it creates a user: writes not allowed)", NotAssessed.safety,
                 HINT_WRITES, **crit)
        return
    if not run.opts.user_delete_path and not run.ctx.allow_disruptive:
        # without a way to delete the account, a successful registration leaves a user behind
        run.skip(fid, "Self-registration not tested (a registered user could not be removed again)",
                 NotAssessed.safety, HINT_DISRUPTIVE + ", or set plugins.access.user_delete_path so the audit can "
                 "remove the user it registers", **crit)
        return
    local = f"crm-audit-{secrets.token_hex(5)}"
    email = f"{local}@{run.opts.register_domain}"
    password = "Ca-" + secrets.token_urlsafe(18)
    run.ctx.target.redactor.add(password)
    body = fill(run.opts.register_body, username=email, email=email, local=local, password=password, tag=run.ctx.tag)
    ex = run.ctx.target.request("POST", path, auth=False, json=body)
    if not ex.ok:
        if run.verdict(ex) == "deny":
            run.add(fid, f"Anonymous self-registration is refused ({ex.status})", status=Status.passed,
                    evidence=[ex.evidence(200, expected="401/403/404", observed=str(ex.status))], **crit)
        else:  # no answer, 5xx, or e.g. 400: the body may simply not fit — registration was not shown closed
            run.unassessed(fid, "Anonymous self-registration is refused", ex, expected="401/403/404/405",
                           hint=None if ex.not_assessed else "check plugins.access.register_body against the CRM's "
                           "sign-up form", **crit)
        return
    created = ex.json_or_none()
    uid = created.get("id") if isinstance(created, dict) else None
    if run.opts.user_delete_path and uid is not None:
        upath = run.opts.user_delete_path.replace("{id}", str(uid))
        run.ctx.defer(f"delete registered user {uid}", lambda: _delete_user(run, upath))
    else:
        run.notes.setdefault("left_behind", []).append(f"self-registered user {email} (remove it)")
    ev = [ex.evidence(200, expected="registration refused", observed=f"{ex.status}: account created")]
    flow = login_flow(run)
    if flow is None:
        run.add("access.registration.open", "Anonymous self-registration is open", status=Status.warn,
                severity=Severity.info, evidence=ev, **kw)
        run.skip(fid, title + " (not tested: no login flow to log the new user in)", NotAssessed.not_configured,
                 "set plugins.access.login_path", **crit)
        return
    lg = flow.send(run, email, password)
    tok = flow.token(lg)
    if not tok:
        run.add("access.registration.open", "Anonymous self-registration is open (the new account could not log in)",
                status=Status.warn, severity=Severity.info, evidence=ev, **kw)
        if lg.not_assessed is not None or lg.ok:
            run.unassessed(fid, title + ": logging the new user in", lg, **crit)
        else:
            run.add(fid, f"{title} (the new account cannot log in: {lg.status})", status=Status.passed,
                    evidence=[lg.evidence(200, expected="login refused", observed=str(lg.status))], **crit)
        return
    powers, silent = _registered_powers(run, tok, ev)
    if powers:
        run.add(fid, "Anonymous self-registration grants access: the new account " + " and ".join(powers),
                status=Status.failed, evidence=ev, **crit)
        return
    run.add("access.registration.open", "Anonymous self-registration is open (new account sees no existing data)",
            status=Status.warn, severity=Severity.info, evidence=ev, **kw)
    if silent is not None:
        run.unassessed(fid, title + ": what the new account may read", silent, **crit)
    else:
        run.add(fid, title + " (the new account sees no existing data)", status=Status.passed, evidence=ev, **crit)


def _registered_powers(run: AccessRun, tok: str, ev: list[Evidence]) -> tuple[list[str], Exchange | None]:
    """What the self-registered user may do (appending evidence), and a request that got no usable answer."""
    auth = next((a.auth for a in run.profile.accounts if a.auth.method == "login"), None)
    scheme = auth.scheme if auth else "Bearer"
    hdrs = {(auth.header if auth else None) or "Authorization": (f"{scheme} " if scheme else "") + tok}
    powers: list[str] = []
    silent: Exchange | None = None
    if run.opts.users_path:
        u = run.ctx.target.request("GET", run.opts.users_path, auth=False, headers=hdrs)
        if u.ok:
            powers.append(f"lists users ({run.opts.users_path})")
            ev.append(u.evidence(200, expected="403", observed=f"{u.status} as the self-registered user"))
        elif u.not_assessed is not None:
            silent = u
    adapter = run.ctx.adapter
    if adapter is not None:
        for res in run.resources():
            items, r = adapter.list(res, Credentials(headers=hdrs, label="the self-registered user"), limit=200,
                                    tag=run.ctx.tag)
            if run.outcome(r) == "allowed" and any(adapter.has_tag(res, i, run.ctx.tag) for i in items):
                powers.append(f"reads existing {res}")
                ev.append(r.evidence(200, expected="no existing records", observed="the audit's records"))
                break
            if r.not_assessed is not None:
                silent = silent or r
    return powers, silent


def _delete_user(run: AccessRun, path: str) -> None:
    for a in sorted(run.general_accounts(), key=lambda a: -run.privilege(a.role)):
        ex = run.ctx.target.request("DELETE", path, account=a.name)
        if ex.ok or ex.status in (404, 410):
            return
    raise RuntimeError(f"registered user at {path} could not be deleted")


__all__ = ["LoginFlow", "login_flow", "check_enumeration", "check_lockout", "check_registration"]
