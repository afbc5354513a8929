"""Token lifecycle: is a session still accepted after its password changed, or its user was deactivated?

Runs only with ``allow.disruptive`` and a dedicated ``purpose: disposable`` account that logs in
with a password. Everything goes through the adapter's named operations (``change_password``,
``users.deactivate``, ``users.activate``, and ``me`` or a list to test a session) and the auth
plugin point (``Target.credentials``, ``try_login``), so it runs over any protocol. Each change is
confirmed by logging in (the old password refused / the deactivated user refused) before the old
session is judged, and undone afterwards — the original password comes from the profile — and
confirmed by logging in again; whatever could not be undone is named in ``left_behind``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_audit.core import accounts as pick
from crm_audit.core.adapter import Caller, RawCredentials
from crm_audit.core.auth import Credentials
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange, TargetError

from .common import HINT_DISRUPTIVE, INDICATOR_AUTHN, AccessRun, operation_hint, refs
from .login import password_login, try_login
from .tokens import protected_call

PW_CHANGE = "access.token.valid_after_password_change"
DEACTIVATION = "access.token.valid_after_deactivation"

#: the arguments each operation gets unless ``plugins.access.lifecycle_args`` says otherwise
DEFAULT_ARGS: dict[str, dict[str, Any]] = {
    "change_password": {"old_password": "{old}", "new_password": "{new}"},
    "users.deactivate": {"id": "{id}"},
    "users.activate": {"id": "{id}"},
    "users.create": {"username": "{email}", "email": "{email}", "password": "{password}"},
    "users.delete": {"id": "{id}"},
}

Send = Callable[[Caller], Exchange]


def operation_args(run: AccessRun, name: str, **values: Any) -> dict[str, Any]:
    """The arguments of a named operation: its template (profile or default) with ``{name}`` filled in.

    A value that is exactly one placeholder keeps the value's own type (an integer id stays one).
    """
    values.setdefault("tag", run.ctx.tag)

    def fill(v: Any) -> Any:
        if isinstance(v, str):
            if v.startswith("{") and v.endswith("}") and v[1:-1] in values:
                return values[v[1:-1]]
            for k, val in values.items():
                v = v.replace("{" + k + "}", str(val))
            return v
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fill(x) for x in v]
        return v

    args: dict[str, Any] = fill(run.opts.lifecycle_args.get(name, DEFAULT_ARGS.get(name, {})))
    return args


def strong_password() -> str:
    """A random password every sane policy accepts: upper, lower, digit, symbol, 28 characters."""
    return "Ca9-" + secrets.token_urlsafe(18)


def session_of(run: AccessRun, account: Account, creds: Credentials | None, label: str) -> RawCredentials:
    """Credentials kept aside as a caller of their own (the account's later logins do not replace them)."""
    headers = dict(account.headers)
    if creds is not None:
        for value in creds.secret_values():
            run.ctx.target.redactor.add(value)
        headers.update(creds.headers)
        if creds.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in creds.cookies.items())
    return RawCredentials(headers=headers, context=run.ctx.target.context(account.name), label=label)


def _password(account: Account) -> str:
    return account.auth.password.get_secret_value() if account.auth.password else ""


def _login_ex(attempt: Any) -> Exchange:
    ex = attempt.exchange if attempt is not None else None
    return ex or Exchange(method="POST", url="(login)", error="no login request was sent")


def disposable_account(run: AccessRun) -> Account | None:
    """The profile's ``purpose: disposable`` account, if any."""
    return pick.first(run.profile, purpose="disposable")


@dataclass
class _Ctx:
    """What both lifecycle checks share: the disposable account and a call that needs a session."""

    run: AccessRun
    acct: Account
    send: Send
    kw: dict[str, Any]

    def left(self, what: str) -> str:
        """Name something the audit could not undo (artifacts ``left_behind``, the probe's reason)."""
        self.run.notes.setdefault("left_behind", []).append(what)
        return what

    def fresh_session(self, label: str) -> tuple[RawCredentials | None, Exchange | None]:
        """A new login of the disposable account kept as its own caller, and whether it passes ``send``."""
        try:
            creds = self.run.ctx.target.credentials(self.acct, refresh=True)
        except TargetError as exc:
            return None, Exchange(method="POST", url="(login)", error=f"login failed: {exc}")
        session = session_of(self.run, self.acct, creds, label)
        ex = self.send(session)
        return (session, None) if self.run.outcome(ex) == "allowed" else (None, ex)

    def judge(self, fid: str, after: Exchange, what: str, ok: str, bad: str, ev: list[Evidence],
              left: list[str]) -> None:
        """fail when the old session still works, pass when it is refused, else not assessed."""
        tail = f" — left behind: {'; '.join(left)}" if left else ""
        ev = [*ev, after.evidence(200, expected=f"401 (refused) after {what}", observed=str(after.status))]
        outcome = self.run.outcome(after)
        if outcome == "allowed":
            self.run.add(fid, bad + tail, status=Status.failed, evidence=ev, **self.kw)
        elif outcome in ("denied", "not_found"):
            self.run.add(fid, ok + tail, status=Status.passed, evidence=ev, **self.kw)
        else:
            self.run.unassessed(fid, ok + tail, after, expected="401 (refused)", **self.kw)


def _kw(fix: str) -> dict[str, Any]:
    return dict(indicator=INDICATOR_AUTHN, references=refs("API2", "CWE-613", "CWE-324"), severity=Severity.high,
                remediation=fix)


PW_FIX = ("End every session of a user when its password changes: check a per-user credential version (or the "
          "time of the last password change) in each token, or keep access tokens short-lived and revoke refresh "
          "tokens.")
DEACT_FIX = ("Refuse the tokens and sessions of deactivated users: look the user up (or a deny-list) on every "
             "request, or keep access tokens short-lived.")


def check_lifecycle(run: AccessRun) -> None:
    """Old sessions of the disposable account after its password changed and after it was deactivated."""
    acct = disposable_account(run)
    both = ((PW_CHANGE, "Sessions end when the password changes", PW_FIX),
            (DEACTIVATION, "Sessions end when the user is deactivated", DEACT_FIX))

    def skip_all(why: str, reason: NotAssessed, hint: str) -> None:
        for fid, title, fix in both:
            run.skip(fid, f"{title}: not tested ({why})", reason, hint, **_kw(fix))

    if not run.ctx.allow_disruptive:
        skip_all("disruptive: it changes an account's password and deactivates it", NotAssessed.safety,
                 HINT_DISRUPTIVE + ", with a dedicated account of purpose: disposable")
        return
    if acct is None and not any(password_login(run, a) for a in run.profile.accounts):
        skip_all("no account logs in with a password: the CRM's accounts sign in without one",
                 NotAssessed.needs_account, "nothing to change for a CRM without passwords; where it has them, add a "
                 "dedicated account with purpose: disposable whose auth method logs in with a username and password")
        return
    if acct is None:
        skip_all("no purpose: disposable account", NotAssessed.needs_account,
                 "add a dedicated account with purpose: disposable (a user the audit may change the password of "
                 "and deactivate; both are undone) whose auth method logs in with a username and password")
        return
    if not password_login(run, acct):
        skip_all(f"{acct.name} does not log in with a password", NotAssessed.needs_account,
                 f"give the purpose: disposable account {acct.name} an auth method that logs in with a username and "
                 "password (e.g. auth.method: login)")
        return
    send, silent = protected_call(run, acct)
    if send is None:
        for fid, title, fix in both:
            if silent is not None:
                run.unassessed(fid, f"{title}: finding a call that needs a session", silent, **_kw(fix))
            else:
                run.skip(fid, f"{title}: not tested (no call found that needs a session)", NotAssessed.not_configured,
                         operation_hint("me") + ": it must be allowed with a session and refused without",
                         **_kw(fix))
        return
    lc = _Ctx(run, acct, send, {})
    try:
        _password_change(lc)
        run.ctx.check_cancelled()
        _deactivation(lc)
    finally:
        run.ctx.target.forget_token(acct.name)  # later uses log in afresh with the (restored) password


def _password_change(lc: _Ctx) -> None:
    run, acct = lc.run, lc.acct
    kw = lc.kw = _kw(PW_FIX)
    title = "Sessions end when the password changes"
    op = run.operation("change_password")
    if op is None:
        run.skip(PW_CHANGE, f"{title}: not tested (the adapter maps no 'change_password' operation)",
                 NotAssessed.not_configured, operation_hint("change_password") + "; its arguments: "
                 "plugins.access.lifecycle_args.change_password", **kw)
        return
    old_session, bad = lc.fresh_session(f"{acct.name}'s session from before the password change")
    if old_session is None:
        run.unassessed(PW_CHANGE, f"{title}: a fresh session of {acct.name}", bad, expected="allowed", **kw)
        return
    original, new = _password(acct), strong_password()
    run.ctx.target.redactor.add(new)
    user = acct.auth.username or ""
    restore = _PasswordRestore(lc, op, new, original)
    run.ctx.defer(f"restore the password of account {acct.name}", restore.cleanup)
    _, changed = run.call(op, operation_args(run, "change_password", old=original, new=new), acct.name)
    took = try_login(run, acct, user, new)
    if took is None or not took.accepted:
        run.unassessed(PW_CHANGE, f"{title}: the password change did not take effect (the new password does not "
                       f"log in; change answered {changed.status})", changed, expected="allowed",
                       reason=changed.not_assessed or NotAssessed.request_failed,
                       hint=None if changed.not_assessed else "check adapter.operations.change_password and "
                       "plugins.access.lifecycle_args.change_password against the CRM", **kw)
        restore.run()  # confirms the original password still logs in (names it in left_behind if not)
        return
    restore.new_creds = took.credentials
    ev = [changed.evidence(200, expected="password changed", observed=f"{run.outcome(changed)}, HTTP "
                           f"{changed.status}; the new password logs in")]
    after = lc.send(old_session)
    left = restore.run()
    lc.judge(PW_CHANGE, after, "the password change", title,
             "Sessions stay valid after the password changes (the old token is still accepted)", ev, left)


class _PasswordRestore:
    """Sets the disposable account's password back to the profile's, once; confirms it by logging in."""

    def __init__(self, lc: _Ctx, op: str, new: str, original: str) -> None:
        self.lc, self.op, self.new, self.original = lc, op, new, original
        self.done = False
        self.new_creds: Credentials | None = None

    def run(self) -> list[str]:
        """Undo the change; returns what could not be undone (also in ``left_behind``)."""
        if self.done:
            return []
        self.done = True
        run, acct = self.lc.run, self.lc.acct
        user = acct.auth.username or ""
        creds = self.new_creds
        if creds is None:
            got = try_login(run, acct, user, self.new)
            creds = got.credentials if got is not None else None
        if creds is not None:
            who = session_of(run, acct, creds, f"{acct.name} with the audit's temporary password")
            run.call(self.op, operation_args(run, "change_password", old=self.new, new=self.original), who)
        back = try_login(run, acct, user, self.original)
        if back is not None and back.accepted:
            return []
        return [self.lc.left(f"account {acct.name}: its password is still the audit's temporary one "
                             "(set it back as an administrator)")]

    def cleanup(self) -> None:
        """The deferred safety net (Ctrl-C, a broken check): undo if not done yet."""
        left = self.run()
        if left:
            raise RuntimeError(left[0])


def _user_id(run: AccessRun, who: Caller) -> tuple[Any, Exchange | None]:
    """The caller's user id, from its own user record (``me``); (None, why) when unknown."""
    me = run.operation("me")
    if me is None:
        return None, None
    rec, ex = run.call(me, None, who)
    uid = _find_id(rec)
    return uid, (None if uid is not None else ex)


def _find_id(rec: Any) -> Any:
    """The id of a user record, also when the answer wraps it once (``{"user_obj": {…}}``)."""
    if not isinstance(rec, dict):
        return None
    if rec.get("id") is not None:
        return rec["id"]
    inner = [v for v in rec.values() if isinstance(v, dict) and v.get("id") is not None]
    return inner[0]["id"] if len(inner) == 1 else None


def _deactivation(lc: _Ctx) -> None:
    run, acct = lc.run, lc.acct
    kw = lc.kw = _kw(DEACT_FIX)
    title = "Sessions end when the user is deactivated"
    ops = {n: run.operation(n) for n in ("users.deactivate", "users.activate")}
    missing = [n for n, op in ops.items() if op is None]
    if missing:
        run.skip(DEACTIVATION, f"{title}: not tested (the adapter maps no {' and no '.join(map(repr, missing))} "
                 "operation)", NotAssessed.not_configured,
                 "; ".join(operation_hint(n) for n in missing) + "; their arguments: plugins.access.lifecycle_args",
                 **kw)
        return
    from crm_audit.core.accounts import admin

    boss = admin(run.profile, tenant=acct.tenant) or admin(run.profile)
    if boss is None:
        run.skip(DEACTIVATION, f"{title}: not tested (no admin account to deactivate {acct.name})",
                 NotAssessed.needs_account, "add a purpose: general account of an admin role", **kw)
        return
    session, bad = lc.fresh_session(f"{acct.name}'s session from before the deactivation")
    if session is None:
        run.unassessed(DEACTIVATION, f"{title}: a fresh session of {acct.name}", bad, expected="allowed", **kw)
        return
    uid, why = _user_id(run, session)
    if uid is None:
        if why is not None and why.not_assessed is not None:
            run.unassessed(DEACTIVATION, f"{title}: reading {acct.name}'s user id", why, **kw)
        else:
            run.skip(DEACTIVATION, f"{title}: not tested ({acct.name}'s user id is unknown)", NotAssessed.not_configured,
                     operation_hint("me") + " (the caller's own user record, with its id)", **kw)
        return
    user, original = acct.auth.username or "", _password(acct)
    reactivate = _Reactivate(lc, ops["users.activate"] or "", boss.name, uid)
    run.ctx.defer(f"reactivate account {acct.name}", reactivate.cleanup)
    _, off = run.call(ops["users.deactivate"] or "", operation_args(run, "users.deactivate", id=uid), boss.name)
    probe = try_login(run, acct, user, original)
    pex = _login_ex(probe)
    if probe is None or probe.accepted or pex.not_assessed is not None:
        # still logs in, or no answer: the deactivation is not shown to have taken effect
        left = reactivate.run()
        tail = f" — left behind: {'; '.join(left)}" if left else ""
        if off.not_assessed is not None or pex.not_assessed is not None:
            run.unassessed(DEACTIVATION, f"{title}: deactivating {acct.name}{tail}",
                           off if off.not_assessed is not None else pex, **kw)
        else:
            run.unassessed(DEACTIVATION, f"{title}: the deactivation did not take effect ({acct.name} still logs "
                           f"in; deactivate answered {off.status}){tail}", off, expected="login refused",
                           reason=NotAssessed.request_failed, hint="check adapter.operations['users.deactivate'] and "
                           "plugins.access.lifecycle_args['users.deactivate'] against the CRM", **kw)
        return
    ev = [off.evidence(200, expected="user deactivated", observed=f"{run.outcome(off)}, HTTP {off.status}; "
                       f"a new login is then refused ({probe.refused})")]
    after = lc.send(session)
    left = reactivate.run()
    lc.judge(DEACTIVATION, after, "the deactivation", title,
             "Sessions stay valid after the user is deactivated (the old token is still accepted)", ev, left)


class _Reactivate:
    """Activates the disposable account again, once, as the admin; confirms it by logging in."""

    def __init__(self, lc: _Ctx, op: str, admin: str, uid: Any) -> None:
        self.lc, self.op, self.admin, self.uid = lc, op, admin, uid
        self.done = False

    def run(self) -> list[str]:
        if self.done:
            return []
        self.done = True
        run, acct = self.lc.run, self.lc.acct
        run.call(self.op, operation_args(run, "users.activate", id=self.uid), self.admin)
        back = try_login(run, acct, acct.auth.username or "", _password(acct))
        if back is not None and back.accepted:
            return []
        return [self.lc.left(f"account {acct.name} (user id {self.uid}): still deactivated (activate it as an "
                             "administrator)")]

    def cleanup(self) -> None:
        left = self.run()
        if left:
            raise RuntimeError(left[0])


__all__ = [
    "DEACTIVATION",
    "DEFAULT_ARGS",
    "PW_CHANGE",
    "check_lifecycle",
    "disposable_account",
    "operation_args",
    "session_of",
    "strong_password",
]
