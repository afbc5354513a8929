"""Password storage, judged from outside: a user created through the API with a known password.

With ``allow.disruptive`` (and writes) an admin creates one tagged user with a random strong
password through the adapter's ``users.create`` operation, then: the password echoed in the
answer is a finding; a user the CRM lists as active who cannot log in with the password it was
just given is the *symptom* of a password stored in plain or reversible form (or not as the
verifier the login checks) — reported as a symptom with its evidence, never as a proof. The
user is always deleted again (``users.delete``) and looked up once more to confirm it is gone;
one that could not be removed is named in ``left_behind``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from crm_audit.core.accounts import admin
from crm_audit.core.model import NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .common import (
    HINT_DISRUPTIVE,
    HINT_WRITES,
    INDICATOR_AUTHN,
    AccessRun,
    operation_hint,
    refs,
)
from .lifecycle import disposable_account, operation_args, strong_password
from .login import password_login, try_login

STORAGE = "access.password.storage"
ECHOED = "access.password.echoed"

_STORE_KW: dict[str, Any] = dict(
    indicator=INDICATOR_AUTHN, severity=Severity.high, references=refs("API2", "CWE-256", "CWE-257", "CWE-916"),
    remediation="Store passwords only through the framework's password hasher (Argon2id, scrypt, bcrypt or PBKDF2 "
                "with a per-user salt), on every path that sets one (sign-up, admin create, reset, change).")
_ECHO_KW: dict[str, Any] = dict(
    indicator=INDICATOR_AUTHN, severity=Severity.medium, references=refs("API3", "CWE-200", "CWE-256"),
    remediation="Never return a password (or its hash) in an answer: leave the field out of the user "
                "serializer's output (write-only).")

#: how many pages of users.list are searched for the created user
MAX_PAGES = 5
PAGE = 100


def _users_in(data: Any) -> Iterator[dict[str, Any]]:
    """Every user-like dict (one with an e-mail or a username) anywhere in an answer."""
    if isinstance(data, dict):
        if "email" in data or "username" in data:
            yield data
        for v in data.values():
            if isinstance(v, (dict, list)):
                yield from _users_in(v)
    elif isinstance(data, list):
        for v in data:
            yield from _users_in(v)


def _is(user: dict[str, Any], email: str) -> bool:
    return any(str(user.get(k, "")).lower() == email for k in ("email", "username", "login"))


def _active(user: dict[str, Any] | None) -> bool | None:
    """Whether the CRM says the user is active (``is_active``, ``active``, ``status``); None: it does not say."""
    if not isinstance(user, dict):
        return None
    for key in ("is_active", "active", "enabled"):
        v = user.get(key)
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
    status = user.get("status")
    if isinstance(status, str) and status.lower() in ("active", "inactive", "disabled"):
        return status.lower() == "active"
    return None


def _lookup(run: AccessRun, who: str, email: str) -> tuple[dict[str, Any] | None, Exchange | None]:
    """The user with that e-mail as ``users.list`` shows it to ``who``; (None, the last exchange) when absent."""
    op = run.operation("users.list")
    if op is None:
        return None, None
    last: Exchange | None = None
    for page in range(MAX_PAGES):
        data, last = run.call(op, {"limit": PAGE, "offset": page * PAGE}, who)
        if run.outcome(last) != "allowed":
            return None, last
        users = list(_users_in(data))
        hit = next((u for u in users if _is(u, email)), None)
        if hit is not None or len(users) < PAGE:
            return hit, last
    return None, last


def find_user_id(run: AccessRun, email: str) -> Any:
    """The id of the user with that e-mail (or username) in ``users.list``, as the admin sees it; None: not found.

    For CRMs whose create or sign-up answers carry no id (django-crm): the user can still be removed.
    """
    boss = admin(run.profile)
    if boss is None:
        return None
    found, _ = _lookup(run, boss.name, email.lower())
    return found.get("id") if found else None


def _login_account(run: AccessRun) -> Account | None:
    """An account whose auth method can try the new user's password (the disposable one first)."""
    cands = [disposable_account(run), *run.general_accounts()]
    return next((a for a in cands if a is not None and password_login(run, a)), None)


class _Removal:
    """Deletes the created user once (as the admin) and confirms it is gone; deferred as a safety net too."""

    def __init__(self, run: AccessRun, who: str, email: str) -> None:
        self.run, self.who, self.email = run, who, email
        self.uid: Any = None
        self.done = False
        #: False once the CRM refused the create (nothing to look for when no list can show it)
        self.maybe_created = True

    def remove(self) -> list[str]:
        """Delete and look again; returns what is left in the CRM (also in ``left_behind``)."""
        if self.done:
            return []
        self.done = True
        run = self.run
        if self.uid is None:
            found, lex = _lookup(run, self.who, self.email)
            if found is None and lex is not None and run.outcome(lex) == "allowed":
                return []  # not listed: nothing was created
            self.uid = found.get("id") if found else None
        if self.uid is None:
            if not self.maybe_created:
                return []
            return self._left(f"user {self.email} created by the audit (its id is unknown: remove it)")
        op = run.operation("users.delete")
        assert op is not None
        _, ex = run.call(op, operation_args(run, "users.delete", id=self.uid), self.who)
        still, lex = _lookup(run, self.who, self.email)
        gone = still is None and (run.outcome(lex) == "allowed" if lex is not None
                                  else run.outcome(ex) in ("allowed", "not_found"))
        if gone:
            return []
        return self._left(f"user {self.email} (id {self.uid}) created by the audit: delete answered "
                          f"{run.outcome(ex)} (HTTP {ex.status}); remove it")

    def _left(self, what: str) -> list[str]:
        self.run.notes.setdefault("left_behind", []).append(what)
        return [what]

    def cleanup(self) -> None:
        left = self.remove()
        if left:
            raise RuntimeError(left[0])


def check_passwords(run: AccessRun) -> None:
    """Create a user with a known password; echoed password, and whether it can log in with it."""
    title = "Passwords set through the API are stored as a verifier (the new user logs in)"
    etitle = "Answers do not echo a password set through the API"

    def skip_both(why: str, reason: NotAssessed, hint: str) -> None:
        run.skip(STORAGE, f"Password storage not tested ({why})", reason, hint, **_STORE_KW)
        run.skip(ECHOED, f"Password echo not tested ({why})", reason, hint, **_ECHO_KW)

    if not run.ctx.allow_disruptive or not run.ctx.allow_writes:
        skip_both("disruptive: it creates a user", NotAssessed.safety,
                  HINT_DISRUPTIVE + ("" if run.ctx.allow_writes else "; and " + HINT_WRITES))
        return
    if _login_account(run) is None:
        skip_both("no account logs in with a password, so a password set through the API cannot be tried",
                  NotAssessed.needs_account, "give an account (ideally the purpose: disposable one) an auth method "
                  "that logs in with a username and password; nothing to run for a CRM without passwords")
        return
    missing = [n for n in ("users.create", "users.delete") if run.operation(n) is None]
    if missing:
        skip_both(f"the adapter maps no {' and no '.join(map(repr, missing))} operation", NotAssessed.not_configured,
                  "; ".join(operation_hint(n) for n in missing) + " (users.delete, so the user is removed again); "
                  "the arguments: plugins.access.lifecycle_args")
        return
    boss = admin(run.profile)
    if boss is None:
        skip_both("no admin account to create a user", NotAssessed.needs_account,
                  "add a purpose: general account of an admin role")
        return
    local = f"crm-audit-{secrets.token_hex(5)}"
    email = f"{local}@{run.opts.register_domain}"
    password = strong_password()
    run.ctx.target.redactor.add(password)
    removal = _Removal(run, boss.name, email)
    run.ctx.defer(f"delete the user {email} the audit created", removal.cleanup)
    created, ex = run.call(run.operation("users.create") or "", operation_args(
        run, "users.create", email=email, local=local, password=password), boss.name)
    removal.maybe_created = run.outcome(ex) not in ("denied", "not_found")
    try:
        _judge(run, boss, email, password, created, ex, removal, title, etitle)
    finally:
        removal.remove()


def _judge(run: AccessRun, boss: Account, email: str, password: str, created: Any, ex: Exchange,
           removal: _Removal, title: str, etitle: str) -> None:
    if run.outcome(ex) != "allowed":
        for fid, t, kw in ((STORAGE, title, _STORE_KW), (ECHOED, etitle, _ECHO_KW)):
            run.unassessed(fid, f"{t}: creating a user as {boss.name}", ex, expected="allowed",
                           reason=ex.not_assessed or NotAssessed.request_failed,
                           hint=None if ex.not_assessed else "check adapter.operations['users.create'] and "
                           "plugins.access.lifecycle_args['users.create'] against the CRM", **kw)
        return
    echoed = password in ex.text
    ev = ex.evidence(300, expected="no password in the answer",
                     observed="the password sent appears in the answer" if echoed else "no password in the answer")
    run.add(ECHOED, "The create-user answer echoes the password it was sent" if echoed else etitle,
            status=Status.failed if echoed else Status.passed, evidence=[ev], **_ECHO_KW)
    record = created if isinstance(created, dict) and _is(created, email) else None
    listed, lex = _lookup(run, boss.name, email)
    removal.uid = (listed or {}).get("id") or (record or {}).get("id") or (
        created.get("id") if isinstance(created, dict) else None)
    active = _active(listed) if _active(listed) is not None else _active(record)
    via = _login_account(run)
    assert via is not None  # checked before the user was created
    attempt = try_login(run, via, email, password)
    for value in (attempt.credentials.secret_values() if attempt is not None and attempt.credentials else []):
        run.ctx.target.redactor.add(value)  # the new user's session never reaches evidence
    lex2 = attempt.exchange if attempt is not None else None
    if attempt is None or lex2 is None or lex2.not_assessed is not None:
        run.unassessed(STORAGE, f"{title}: logging the new user in", lex2, **_STORE_KW)
        return
    details = {"listed_active": active, "login": "accepted" if attempt.accepted else attempt.refused}
    lev = lex2.evidence(200, expected="the new user logs in with the password it was given",
                        observed="accepted" if attempt.accepted else f"refused ({attempt.refused})")
    lev = lev.model_copy(update={"details": details})
    evidence = [ex.evidence(200, expected="user created", observed=f"HTTP {ex.status}"), lev]
    if lex is not None and listed is not None:
        evidence.append(lex.evidence(200, expected="the new user, active", observed=f"listed, active: {active}"))
    if attempt.accepted:
        run.add(STORAGE, title, status=Status.passed, evidence=evidence, **_STORE_KW)
    elif active is True:
        run.add(STORAGE, "Symptom of a password stored in plain or reversible form (or not as the verifier the login "
                "checks): a user created active through the API cannot log in with the password it was given",
                status=Status.failed, evidence=evidence, **_STORE_KW)
    elif active is False:
        run.skip(STORAGE, f"{title}: not judged (the CRM creates the user inactive, so its login is refused anyway)",
                 NotAssessed.not_applicable, "nothing to run: users created through the API start inactive",
                 **_STORE_KW)
    else:
        run.unassessed(STORAGE, f"{title}: the new user cannot log in, and the CRM does not say whether it is "
                       "active", lex2, reason=NotAssessed.request_failed,
                       hint=operation_hint("users.list") + " (the audit reads the new user's active flag from it)",
                       **_STORE_KW)


__all__ = ["ECHOED", "STORAGE", "check_passwords", "find_user_id"]
