"""Login checks: failed-login limit (disruptive), user enumeration, open self-registration.

Every login goes through the auth plugin point: ``Target.try_login`` with the account's own auth
method (any method with ``password_login``), so the same checks fit a REST login, a JSON-RPC
``auth.login`` call or a form. Registration and the new user's powers go through the adapter's
named operations (``register``, ``users.list``, ``users.delete``).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from crm_audit.core import accounts as pick
from crm_audit.core.adapter import RawCredentials, fill
from crm_audit.core.auth import LoginAttempt
from crm_audit.core.bounded import retry_after_s
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange, TargetError

from .common import HINT_DISRUPTIVE, HINT_WRITES, INDICATOR_AUTHN, INDICATOR_LOGIN, AccessRun, operation_hint, refs

_LOCK_WORDS = re.compile(r"(?i)lock|too many|attempts|throttl|rate.?limit|try again|slow down|captcha")


def password_login(run: AccessRun, account: Account) -> bool:
    """True when the account's auth method logs in with a user name and password (``try_login`` works)."""
    try:
        return bool(run.ctx.target.auth_method(account).password_login) and bool(account.auth.username)
    except TargetError:
        return False


def try_login(run: AccessRun, account: Account, username: str, password: str) -> LoginAttempt | None:
    """One login try through the account's auth method (the password redacted first); None when the
    method cannot try a password (a passwordless ``command`` without a code exchange)."""
    run.ctx.target.redactor.add(password)
    try:
        return run.ctx.target.try_login(account, username, password)
    except NotImplementedError:
        return None


def _sent(attempt: LoginAttempt | None) -> Exchange:
    """The exchange of a login try (a try that sent nothing reads as a failed request)."""
    ex = attempt.exchange if attempt is not None else None
    return ex or Exchange(method="POST", url="(login)", error="no login request was sent")


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
    candidates = pick.accounts(run.profile, purpose="lockout")
    if run.ctx.allow_disruptive:
        candidates += run.general_accounts()
    candidates = [a for a in candidates if password_login(run, a)]
    fid = "access.login.user_enumeration"
    title = "Login errors do not reveal which usernames exist"
    kw: dict[str, Any] = dict(indicator=INDICATOR_AUTHN, references=refs("API2", "CWE-204"), severity=Severity.medium,
                              remediation="Answer unknown usernames and wrong passwords with the same status and "
                                          "message (and comparable timing).")
    if not candidates:
        if run.ctx.allow_disruptive:
            run.skip(fid, title + " (not tested: no account logs in with a username and password)",
                     NotAssessed.needs_account, "add an account with purpose: lockout whose auth method logs in "
                     "with a password (e.g. auth.method: login with username and password)", **kw)
        else:
            run.skip(fid, title + " (not tested: wrong passwords go only to a purpose: lockout account)",
                     NotAssessed.safety, "add an account with purpose: lockout (a password login), or "
                     + HINT_DISRUPTIVE, **kw)
        return
    unknown: list[str] = []
    u1 = u2 = k1 = ka = None
    user = ""
    known = candidates[0]
    tried = 0
    for cand in candidates:
        user = cand.auth.username or ""
        domain = user.split("@", 1)[1] if "@" in user else None
        unknown = [f"crm-audit-{secrets.token_hex(4)}" + (f"@{domain}" if domain else "") for _ in range(2)]
        ka = try_login(run, cand, user, _wrong_password())
        if ka is None:
            continue  # its method tries no passwords
        tried += 1
        k1 = _sent(ka)
        if not _locked(k1):
            u1 = try_login(run, cand, unknown[0], _wrong_password())
            u2 = try_login(run, cand, unknown[1], _wrong_password())
            known = cand
            break
        if tried >= 3:  # this account is locked (an earlier lockout test): its answer proves nothing
            break
    if k1 is None:
        run.skip(fid, title + " (not tested: no account's auth method tries a password)", NotAssessed.needs_account,
                 "add an account with purpose: lockout whose auth method logs in with a username and password", **kw)
        return
    if u1 is None or u2 is None:
        run.unassessed(fid, title + " (every login account is locked right now)", k1,
                       hint="run again once the lockout period has passed", **kw)
        return
    if u1.accepted or u2.accepted or (ka is not None and ka.accepted):
        run.unassessed(fid, title + " (a wrong password was accepted?)", _sent(u1 if u1.accepted else u2 if
                                                                              u2.accepted else ka),
                       reason=NotAssessed.request_failed, **kw)
        return
    ux1, ux2 = _sent(u1), _sent(u2)
    if k1.not_assessed is None:  # the failed login reached the CRM: the access-log check looks for it
        run.notes["failed_login_user"] = user
        run.notes["failed_login_account"] = known.name
    else:
        run.notes["failed_login_silent"] = k1
    silent = next((x for x in (k1, ux1, ux2) if x.not_assessed is not None), None)
    if silent is not None:
        run.unassessed(fid, title, silent, **kw)
        return
    bodies_stable = _normal(ux1, unknown[0]) == _normal(ux2, unknown[1]) and ux1.status == ux2.status
    differs_status = ux1.status == ux2.status and ux1.status != k1.status
    differs_body = bodies_stable and _normal(ux1, unknown[0]) != _normal(k1, user)
    timing = {"unknown_user_s": [round(ux1.elapsed_s, 4), round(ux2.elapsed_s, 4)],
              "known_user_s": round(k1.elapsed_s, 4)}
    ev = [ux1.evidence(200, expected="same answer as for a known user", observed=f"unknown user: {ux1.status}"),
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
    acct = pick.first(run.profile, purpose="lockout")
    if not run.ctx.allow_disruptive:
        run.skip(fid, "Failed-login limit not tested (disruptive: it locks an account)", NotAssessed.safety,
                 HINT_DISRUPTIVE, **kw)
        return
    if acct is None or not password_login(run, acct):
        run.skip(fid, "Failed-login limit not tested (no password-login account with purpose: lockout)",
                 NotAssessed.needs_account, "add a dedicated account with purpose: lockout whose auth method logs in "
                 "with a username and password (a user the audit may lock)", **kw)
        return
    user, pw = acct.auth.username or "", _password(acct)
    first = try_login(run, acct, user, pw)  # a success resets earlier failures (e.g. the enumeration check)
    if first is None:
        run.skip(fid, f"Failed-login limit not tested ({acct.name}'s auth method tries no passwords)",
                 NotAssessed.needs_account, "give the purpose: lockout account an auth method that logs in with a "
                 "username and password", **kw)
        return
    if not first.accepted:
        fex = _sent(first)
        run.unassessed(fid, title + ": the lockout account must log in first", fex, expected="accepted",
                       hint=None if fex.not_assessed else "run again once the lockout period has passed"
                       if _locked(fex) else f"check the credentials of account {acct.name}", **kw)
        return
    tries: list[Exchange] = []
    locked_at: int | None = None
    for i in range(run.opts.lockout_attempts):
        run.ctx.check_cancelled()
        ex = _sent(try_login(run, acct, user, _wrong_password()))
        tries.append(ex)
        if _protected(ex, tries[0]):
            locked_at = i + 1
            break
    lock_seen = time.monotonic()
    slow = len(tries) > 2 and tries[-1].elapsed_s > max(1.0, 3 * tries[0].elapsed_s)
    final = try_login(run, acct, user, pw) or LoginAttempt(None, refused="no login try")
    fex = _sent(final)
    statuses = [t.status for t in tries]
    details = {"attempts": len(tries), "statuses": statuses, "elapsed_s": [round(t.elapsed_s, 3) for t in tries],
               "correct_password_after": "accepted" if final.accepted else (final.refused or fex.status)}
    last = tries[-1].evidence(200, expected=f"lockout/429 within {run.opts.lockout_attempts} attempts",
                              observed=f"statuses {statuses}; correct password then: "
                                       f"{'accepted' if final.accepted else 'refused'}")
    last = last.model_copy(update={"details": details})
    silent = next((t for t in tries if t.not_assessed is not None), None)
    locked = False
    if locked_at is not None:
        locked = True
        run.add(fid, f"Failed logins are limited (refused after {locked_at} wrong passwords)", status=Status.passed,
                evidence=[last], **kw)
    elif silent is not None:  # a wrong password without an answer: neither a limit nor its absence was seen
        run.unassessed(fid, title, silent, **kw)
    elif slow:
        run.add(fid, "Failed logins are throttled (answers slow down)", status=Status.passed, evidence=[last], **kw)
    elif fex.not_assessed is not None:
        run.unassessed(fid, title + ": the correct password afterwards", fex, **kw)
    elif not final.accepted:
        locked = True
        run.add(fid, f"Failed logins lock the account silently (correct password refused: {final.refused})",
                status=Status.passed, evidence=[last], **kw)
    else:
        run.add(fid, f"No limit on failed logins: {len(tries)} wrong passwords, then the right one was accepted",
                status=Status.failed, evidence=[last], **kw)
    _judge_owner_lock(run, acct, locked, tries[-1], final, lock_seen)


def _announced(ex: Exchange) -> float | None:
    """The lock's length the answer announces: a Retry-After header, else a retry_after number in the JSON body."""
    got = retry_after_s(ex.headers.get("retry-after")) if ex.answered else None
    if got is not None:
        return got
    m = re.search(r'"retry_?after"\s*:\s*(\d+(?:\.\d+)?)', ex.text[:4000], re.I)
    return float(m.group(1)) if m else None


def _judge_owner_lock(run: AccessRun, acct: Account, locked: bool, locking: Exchange, final: LoginAttempt,
                      lock_seen: float) -> None:
    """``access.login.lockout_denies_owner``: a lock must not refuse the owner's correct password for longer than
    ``lockout_max_s``; measured by retrying the correct password (bounded waits) until it is accepted."""
    fid = "access.login.lockout_denies_owner"
    kw: dict[str, Any] = dict(indicator=INDICATOR_LOGIN, references=refs("API2", "API4", "CWE-645", "CWE-400"),
                              severity=Severity.medium,
                              remediation="Throttle (growing delays, per account and source) or lock only for a "
                                          "short time (a minute or so), and let the owner unlock by e-mail; a long "
                                          "lock lets anyone who knows a username keep its owner out.")
    limit = run.opts.lockout_max_s
    title = f"A lock does not keep the owner out for more than {limit:g} s"
    if not locked:
        run.skip(fid, title + " (not tested: no lock appeared)", NotAssessed.not_applicable,
                 "nothing to run: the failed-login check saw no lock that could refuse the correct password",
                 **kw)
        return
    user, pw = acct.auth.username or "", _password(acct)
    waited = sum(locking.retry_waits_s)  # the client already waited out a short Retry-After
    attempt, ex = final, _sent(final)
    announced = _announced(ex) or _announced(locking)
    polls: list[dict[str, Any]] = [{"t_s": 0.0, "status": ex.status, "accepted": attempt.accepted}]
    schedule = _poll_times(limit, announced)
    while not attempt.accepted:
        if ex.not_assessed is not None or not ex.answered:  # no answer: a timeout is not a lock
            run.unassessed(fid, title + ": the correct password during the lock", ex,
                           hint="run again when the login answers (a timeout is not a lock)", **kw)
            return
        if not schedule:
            break
        at = schedule.pop(0)
        delay = lock_seen + at - time.monotonic()
        if delay > 0 and run.ctx.cancel.wait(delay):
            run.ctx.check_cancelled()
        attempt = try_login(run, acct, user, pw) or LoginAttempt(None, refused="no login try")
        ex = _sent(attempt)
        polls.append({"t_s": round(time.monotonic() - lock_seen, 2), "status": ex.status,
                      "accepted": attempt.accepted})
    elapsed = time.monotonic() - lock_seen
    details = {"polls": polls, "announced_s": announced, "client_waited_s": round(waited, 2), "limit_s": limit}
    ev = [ex.evidence(200, expected=f"the correct password accepted within {limit:g} s of the lock",
                      observed=("accepted" if attempt.accepted else "refused") + f" after {elapsed:.1f} s",
                      details=details)]
    if attempt.accepted:
        took = elapsed if len(polls) > 1 else waited
        run.add(fid, f"{title} (correct password accepted again after ~{took:.1f} s"
                     + (f"; lock announced for {announced:g} s" if announced is not None else "") + ")",
                status=Status.passed, evidence=ev, **kw)
    else:
        run.add(fid, f"Account denial of service: the lock refuses the correct password for more than {limit:g} s "
                     f"(still refused after {elapsed:.0f} s" + (f"; announced {announced:g} s" if announced else "")
                     + ")", status=Status.failed, evidence=ev, **kw)


def _poll_times(limit: float, announced: float | None) -> list[float]:
    """When to retry the correct password (seconds after the lock): at the announced end when it lies within the
    limit, else doubling from 1 s; always once just past the limit. At most 8 tries."""
    times: list[float] = []
    if announced is not None and announced <= limit:
        times.append(announced + 0.5)
    elif announced is None:
        t = 1.0
        while t < limit and len(times) < 6:
            times.append(t)
            t *= 2
    times.append(limit + 0.5)
    return sorted(set(times))[:8]


def _locked(ex: Exchange) -> bool:
    """The answer says the account or caller is locked or throttled right now — or the client had to wait on
    one: the Target honours a short Retry-After by waiting and retrying (waits of 1 s or more are those)."""
    waited = ex.attempts > 1 and any(w >= 1.0 for w in ex.retry_waits_s)
    return ex.status in (423, 429) or "retry-after" in ex.headers or waited


def _protected(ex: Exchange, first: Exchange) -> bool:
    """A lock or throttle: 423/429/Retry-After, or an answer unlike the first wrong password's that says so
    (a protocol that answers every error with 200, such as JSON-RPC, differs only in its body)."""
    if _locked(ex):
        return True
    differs = ex.status != first.status or _normal(ex) != _normal(first)
    return differs and bool(_LOCK_WORDS.search(ex.text[:500]))


def check_registration(run: AccessRun) -> None:
    """Anonymous self-registration must not hand out access to existing data or admin functions."""
    fid = "access.registration.privileged"
    kw: dict[str, Any] = dict(indicator=INDICATOR_AUTHN, references=refs("API2", "API5", "CWE-269", "CWE-287"),
                              remediation="Disable anonymous self-registration, or give new users no role and no "
                                          "tenant until an administrator approves them.")
    crit = dict(kw, severity=Severity.critical)
    title = "Anonymous self-registration grants no access"
    op = run.operation("register")
    if op is None:
        run.skip(fid, "Self-registration not tested (the adapter maps no 'register' operation)",
                 NotAssessed.not_configured, operation_hint("register") + ", if the CRM has self-registration",
                 **crit)
        return
    if not run.ctx.allow_writes:
        run.skip(fid, "Self-registration not tested (it creates a user: writes not allowed)", NotAssessed.safety,
                 HINT_WRITES, **crit)
        return
    remove = run.operation("users.delete")
    if remove is None and not run.ctx.allow_disruptive:
        # without a way to delete the account, a successful registration leaves a user behind
        run.skip(fid, "Self-registration not tested (a registered user could not be removed again)",
                 NotAssessed.safety, HINT_DISRUPTIVE + ", or " + operation_hint("users.delete")
                 + " so the audit can remove the user it registers", **crit)
        return
    local = f"crm-audit-{secrets.token_hex(5)}"
    email = f"{local}@{run.opts.register_domain}"
    password = "Ca-" + secrets.token_urlsafe(18)
    run.ctx.target.redactor.add(password)
    args = fill(run.opts.register_body, username=email, email=email, local=local, password=password, tag=run.ctx.tag)
    created, ex = run.call(op, args, None)
    if run.outcome(ex) != "allowed":
        if run.verdict(ex) == "deny":
            run.add(fid, f"Anonymous self-registration is refused ({_answer(run, ex)})", status=Status.passed,
                    evidence=[ex.evidence(200, expected="refused", observed=_answer(run, ex))], **crit)
        else:  # no answer, 5xx, or e.g. 400: the body may simply not fit — registration was not shown closed
            run.unassessed(fid, "Anonymous self-registration is refused", ex, expected="refused",
                           hint=None if ex.not_assessed else "check plugins.access.register_body against the CRM's "
                           "sign-up form", **crit)
        return
    uid = created.get("id") if isinstance(created, dict) else None
    if uid is None and remove is not None:  # the answer names no id (django-crm): look the user up
        from .passwords import find_user_id
        uid = find_user_id(run, email)
    if remove is not None and uid is not None:
        run.ctx.defer(f"delete registered user {uid}", lambda: _delete_user(run, remove, uid))
    else:
        run.notes.setdefault("left_behind", []).append(f"self-registered user {email} (remove it)")
    ev = [ex.evidence(200, expected="registration refused", observed=f"{_answer(run, ex)}: account created")]
    via, lg = None, None
    for cand in (a for a in run.profile.accounts if password_login(run, a)):
        lg = try_login(run, cand, email, password)
        if lg is not None:
            via = cand
            break
    if via is None or lg is None:
        run.add("access.registration.open", "Anonymous self-registration is open", status=Status.warn,
                severity=Severity.info, evidence=ev, **kw)
        run.skip(fid, title + " (not tested: no password login to log the new user in)", NotAssessed.needs_account,
                 "give an account an auth method that logs in with a username and password (e.g. auth.method: login)",
                 **crit)
        return
    lex = _sent(lg)
    if lg.credentials is None:
        run.add("access.registration.open", "Anonymous self-registration is open (the new account could not log in)",
                status=Status.warn, severity=Severity.info, evidence=ev, **kw)
        if lex.not_assessed is not None:
            run.unassessed(fid, title + ": logging the new user in", lex, **crit)
        else:
            run.add(fid, f"{title} (the new account cannot log in: {lg.refused})", status=Status.passed,
                    evidence=[lex.evidence(200, expected="login refused", observed=str(lg.refused))], **crit)
        return
    for value in lg.credentials.secret_values():
        run.ctx.target.redactor.add(value)
    headers = dict(lg.credentials.headers)
    if lg.credentials.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in lg.credentials.cookies.items())
    who = RawCredentials(headers=headers, context=run.ctx.target.context(via.name), label="the self-registered user")
    powers, silent = _registered_powers(run, who, ev)
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


def _answer(run: AccessRun, ex: Exchange) -> str:
    """How an answer reads, for titles: the adapter's outcome and the HTTP status."""
    return f"{run.outcome(ex)}, HTTP {ex.status}"


def _registered_powers(run: AccessRun, who: RawCredentials, ev: list[Evidence]) -> tuple[list[str], Exchange | None]:
    """What the self-registered user may do (appending evidence), and a request that got no usable answer."""
    powers: list[str] = []
    silent: Exchange | None = None
    users = run.operation("users.list")
    if users is not None:
        _, u = run.call(users, {"limit": 50}, who)
        if run.outcome(u) == "allowed":
            powers.append(f"lists users ({users})")
            ev.append(u.evidence(200, expected="refused", observed=f"{_answer(run, u)} as the self-registered user"))
        elif u.not_assessed is not None:
            silent = u
    adapter = run.ctx.adapter
    if adapter is not None:
        for res in run.resources():
            items, r = adapter.list(res, who, limit=200, tag=run.ctx.tag)
            if run.outcome(r) == "allowed" and any(adapter.has_tag(res, i, run.ctx.tag) for i in items):
                powers.append(f"reads existing {res}")
                ev.append(r.evidence(200, expected="no existing records", observed="the audit's records"))
                break
            if r.not_assessed is not None:
                silent = silent or r
    return powers, silent


def _delete_user(run: AccessRun, operation: str, uid: Any) -> None:
    for a in sorted(run.general_accounts(), key=lambda a: -run.privilege(a.role)):
        _, ex = run.call(operation, {"id": uid}, a.name)
        if run.outcome(ex) in ("allowed", "not_found"):
            return
    raise RuntimeError(f"registered user {uid} could not be deleted ({operation})")


__all__ = ["password_login", "try_login", "check_enumeration", "check_lockout", "check_registration"]
