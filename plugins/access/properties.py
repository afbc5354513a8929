"""Property-level access: mass assignment of owner/tenant fields and of the own user's role/tenant,
and responses that expose password hashes, tokens or secrets.

Mass assignment is judged by what the CRM stored (re-read), never by what it echoed alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from crm_audit.core.adapter import FieldKind, dig, nest
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .common import HINT_WRITES, INDICATOR_ACCESS, AccessRun, Tally, operation_hint, refs, same_value
from .objects import actors, other_tenant_hint, other_tenant_writer
from .persisted import after_denied_create, after_denied_update, create_number

MASS_FIX = ("Accept only an explicit allow-list of writable fields; set owner and tenant on the server "
            "from the authenticated caller, never from the request body.")
_SECRET_KEY = re.compile(r"^(password|passwd|pwd|password_?hash|hashed_?password|pass_?hash|salt|token|access_?token|"
                         r"refresh_?token|auth_?token|api_?key|apikey|api_?secret|secret|client_?secret|secret_?key|"
                         r"private_?key|otp_?secret|totp_?secret|mfa_?secret|reset_?token|session_?key)$", re.I)
_PASSWORD_KEY = re.compile(r"^(password|passwd|pwd|password_?hash|hashed_?password|pass_?hash|salt|otp_?secret|"
                           r"totp_?secret|mfa_?secret)$", re.I)
_HASH_KEY = re.compile(r"^hash$", re.I)
_HASH_VALUE = re.compile(r"^(\$2[aby]?\$|\$argon2|\$[156]\$|pbkdf2_|scrypt\$|bcrypt\$|sha1\$|md5\$|\{SSHA\})")


def check_mass_assignment(run: AccessRun) -> None:
    """Create/update own records with the owner or tenant field set to someone else's."""
    adapter = run.ctx.adapter
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API3", "CWE-915"))
    fid = "access.mass_assignment"
    if adapter is None:
        run.skip(fid, "Mass assignment not tested (no adapter)", NotAssessed.not_configured,
                 "describe the CRM's resources under adapter: in the profile", **kw)
        return
    if not run.ctx.allow_writes:
        run.skip(fid, "Mass assignment not tested (it creates records: writes not allowed)", NotAssessed.safety,
                 HINT_WRITES, **kw)
        return
    a, b = actors(run)
    if a is None:
        run.skip(fid, "Mass assignment not tested (no account may create records)", NotAssessed.needs_account,
                 "add a purpose: general account whose role may create records (access_matrix create: allow)", **kw)
        return
    for res in run.resources():
        run.ctx.check_cancelled()
        _mass_assignment(run, res, a, b)


def _mass_assignment(run: AccessRun, res: str, a: Account, b: Account | None) -> None:
    adapter = run.ctx.adapter
    assert adapter is not None
    fid = f"access.mass_assignment.{res}"
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API3", "CWE-915"), remediation=MASS_FIX)
    what = f"{res}: mass assignment of owner/tenant fields"
    if not run.may(a, res, "create"):
        run.skip(fid, f"{what} not tested ({a.name} may not create {res})", NotAssessed.needs_account,
                 f"add a general account whose role may create {res} (access_matrix create: allow), or set actors.actor",
                 severity=Severity.high, **kw)
        return
    if not (adapter.field_path(res, "owner") or adapter.field_path(res, "tenant")):
        run.skip(fid, f"{what} not tested (no owner or tenant field)", NotAssessed.not_configured,
                 _map_hint(res, "owner") + " and/or " + _map_hint(res, "tenant"), severity=Severity.high, **kw)
        return
    own, oex = run.own_record(res, a)
    if own is None:
        run.unassessed(fid, what, oex, severity=Severity.high, **kw)
        return
    parts = Tally()
    injections = _owner_injection(run, res, a, b, own, parts) + _tenant_injection(run, res, a, own, parts)
    for kind, value in injections:
        change = adapter.field_change(res, kind, value) or {}
        n = create_number()
        rec, ex = run.create(res, a, overrides=change, n=n)
        if rec is not None:
            _judge_stored(run, res, rec, kind, value, a, ex, f"create: {kind} field taken from the request body", parts)
        elif not _refused(run, ex):
            parts.silent.append(ex)
        after_denied_create(run, res, n, ex, f"{a.name} create {res} with another {kind}", cross_tenant=kind == "tenant")
        upd, uex0 = run.own_record(res, a, key=f"mass-{kind}")
        if upd is None:
            parts.silent.append(uex0)
            continue
        _, uex = adapter.update(res, adapter.record_id(upd), a.name, change)
        after_denied_update(run, res, adapter.record_id(upd), a.name, change, upd, uex,
                            f"{a.name} update {res} with another {kind}", cross_tenant=kind == "tenant")
        if run.outcome(uex) == "allowed":
            _judge_stored(run, res, upd, kind, value, a, uex, f"update: {kind} field taken from the request body",
                          parts)
        elif not _refused(run, uex):
            parts.silent.append(uex)
    fields = ", ".join(sorted({str(adapter.field_path(res, k)) for k, _ in injections}))
    parts.judged += [k for k, _ in injections]
    parts.report(run, fid, what=what, bad=f"{res}: {a.name} can set {fields} through the request body",
                 good=f"{res}: {fields} cannot be set through the request body", severity=Severity.high,
                 bad_severity=Severity.critical if any("tenant" in (h.observed or "") for h in parts.hits) else None,
                 **kw)


def _map_hint(res: str, kind: str) -> str:
    return f"map the {kind} field of {res} in the adapter (rest: adapter.resources.{res}.{kind}_field, a dotted path)"


def _refused(run: AccessRun, ex: Exchange) -> bool:
    """A real refusal of a write: denied, not found, or another 4xx (a validation error: the field was not taken)."""
    outcome = run.outcome(ex)
    return outcome in ("denied", "not_found") or (
        outcome == "unknown" and ex.status is not None and 400 <= ex.status < 500)


def _owner_injection(run: AccessRun, res: str, a: Account, b: Account | None, own: dict[str, Any],
                     parts: Tally) -> list[tuple[FieldKind, Any]]:
    """("owner", a colleague's owner value), or why that part cannot be tried."""
    adapter = run.ctx.adapter
    assert adapter is not None  # only via _mass_assignment: check_mass_assignment returns early without one
    path = adapter.field_path(res, "owner")
    if not path:
        parts.untested.append(("owner", NotAssessed.not_configured, _map_hint(res, "owner")))
        return []
    if a.role in run.opts.owner_assignment_roles:
        parts.untested.append(("owner", NotAssessed.not_applicable, f"{a.role} may hand records to others "
                               "(plugins.access.owner_assignment_roles): nothing to test"))
        return []
    peer = b or next((x for x in run.general_accounts() if x.tenant == a.tenant and x is not a
                      and run.may(x, res, "create")), None)
    if peer is None:
        parts.untested.append(("owner", NotAssessed.needs_account, f"add a second general account in tenant "
                               f"{a.tenant or '(none)'} whose role may create {res} (or set actors.peer)"))
        return []
    peer_rec, pex = run.own_record(res, peer)
    if peer_rec is None:
        parts.silent.append(pex)
        return []
    val = adapter.field_value(res, peer_rec, "owner")
    if not isinstance(val, (int, str)) or same_value(val, adapter.field_value(res, own, "owner")):
        parts.untested.append(("owner", NotAssessed.not_configured, f"{res} records of {a.name} and {peer.name} carry "
                               f"no distinct owner at {path}: check the adapter's owner field of {res}"))
        return []
    return [("owner", val)]


def _tenant_injection(run: AccessRun, res: str, a: Account, own: dict[str, Any],
                      parts: Tally) -> list[tuple[FieldKind, Any]]:
    """("tenant", another tenant's value), or why that part cannot be tried."""
    adapter = run.ctx.adapter
    assert adapter is not None  # only via _mass_assignment: check_mass_assignment returns early without one
    path = adapter.field_path(res, "tenant")
    if not path:
        parts.untested.append(("tenant", NotAssessed.not_configured, _map_hint(res, "tenant")))
        return []
    foreign = run.notes.get("foreign", {}).get(res)
    frec = foreign[0] if foreign else None
    if frec is None:
        c = other_tenant_writer(run, a, res)
        if c is None:
            parts.untested.append(("tenant", NotAssessed.needs_account, other_tenant_hint(run, a, res)))
            return []
        frec, fex = run.own_record(res, c)
        if frec is None:
            parts.silent.append(fex)
            return []
    tval = adapter.field_value(res, frec, "tenant")
    if not isinstance(tval, (int, str)) or same_value(tval, adapter.field_value(res, own, "tenant")):
        parts.untested.append(("tenant", NotAssessed.not_configured, f"{res} records of two tenants carry no distinct "
                               f"tenant at {path}: check the adapter's tenant field of {res}"))
        return []
    return [("tenant", tval)]


def _judge_stored(run: AccessRun, res: str, rec: dict[str, Any], kind: FieldKind, value: Any, a: Account, ex: Exchange,
                  observed: str, parts: Tally) -> None:
    """A hit when the stored record holds ``value``; the re-read's exchange when no account could read it back."""
    stored = _stored(run, res, rec, kind, value, a)
    if isinstance(stored, Exchange):
        parts.silent.append(stored)
    elif stored:
        adapter = run.ctx.adapter
        assert adapter is not None  # _stored just read the record back through it
        path = adapter.field_path(res, kind)
        parts.hits.append(ex.evidence(200, expected=f"{path} set by the server", observed=observed))


def _stored(run: AccessRun, res: str, rec: dict[str, Any], kind: FieldKind, value: Any, a: Account) -> bool | Exchange:
    """Whether the stored record (re-read as its creator, else as any account) holds ``value`` as its ``kind``;
    the last re-read's exchange when none of them returned the record."""
    adapter = run.ctx.adapter
    assert adapter is not None
    rid = adapter.record_id(rec)
    names = [a.name] + [x.name for x in sorted(run.general_accounts(), key=lambda x: -run.privilege(x.role))]
    last: Exchange | None = None
    for name in dict.fromkeys(names):
        got, last = adapter.read(res, rid, name)
        if got is not None:
            return same_value(adapter.field_value(res, got, kind), value)
    assert last is not None
    return last


def check_me_mass_assignment(run: AccessRun) -> None:
    """Changing the own user (``update_me``) must not change its role or tenant (verified by re-reading ``me``)."""
    fid = "access.mass_assignment.me"
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API3", "CWE-915", "CWE-269"),
                              remediation=MASS_FIX, severity=Severity.critical)
    what = "Own-user mass assignment (role/tenant)"
    me, update = run.operation("me"), run.operation("update_me")
    if me is None or update is None:
        missing = "me" if me is None else "update_me"
        run.skip(fid, f"{what} not tested (the adapter maps no {missing!r} operation)", NotAssessed.not_configured,
                 operation_hint(missing), **kw)
        return
    if not run.ctx.allow_writes:
        run.skip(fid, f"{what} not tested (it changes a user: writes not allowed)", NotAssessed.safety, HINT_WRITES, **kw)
        return
    a, _ = actors(run)
    if a is None:
        run.skip(fid, f"{what} not tested (no account to act as)", NotAssessed.needs_account,
                 "add a purpose: general account whose role may create records", **kw)
        return
    ops = (me, update)
    mine, mex = run.call(me, None, a.name)
    if not isinstance(mine, dict):
        if run.verdict(mex) == "deny":
            run.skip(fid, f"{what} not tested ({me} answered {run.outcome(mex)})", NotAssessed.not_configured,
                     "check the adapter's 'me' operation: it must read the caller's own user record", **kw)
        else:
            run.unassessed(fid, what, mex, **kw)
        return
    parts = Tally()
    wanted = _me_targets(run, a, me, mine, parts)
    original = {k: dig(mine, k) for k in wanted}
    if wanted:
        # registered before the first change, so an error or Ctrl-C between the change and re-read still restores it
        run.ctx.defer(f"restore {a.name}'s own user record", lambda: _restore_me(run, a, ops, original))
    for fld, value in wanted.items():
        _, ex = run.call(update, nest({fld: value}), a.name)
        run.expect_deny(ex, f"{a.name} {update} own {fld}")
        now, again = run.call(me, None, a.name)
        if not isinstance(now, dict):
            parts.silent.append(again)
        elif same_value(dig(now, fld), value):
            parts.hits.append(ex.evidence(200, expected=f"{fld} unchanged", observed=f"{fld} changed by {update}"))
            _restore_me(run, a, ops, original)
        elif ex.not_assessed is not None:
            parts.silent.append(ex)  # unchanged, but the change may never have reached the application
    names = ", ".join(sorted(wanted))
    parts.judged += list(wanted)
    parts.report(run, fid, what=what, bad=f"A user can change its own {names} (privilege escalation)",
                 good=f"A user cannot change its own {names}", **kw)


def _me_targets(run: AccessRun, a: Account, me: str, mine: dict[str, Any], parts: Tally) -> dict[str, Any]:
    """field -> value to try on the own user: another role's role, another tenant's tenant."""
    rf, tf = run.opts.me_role_field, run.opts.me_tenant_field
    wanted: dict[str, Any] = {}
    top = sorted((x for x in run.general_accounts() if x.role != a.role), key=lambda x: -run.privilege(x.role))
    foreign = next((x for x in run.general_accounts() if x.tenant and a.tenant and x.tenant != a.tenant), None)
    for part, fld, other, missing in (
            ("role", rf, top[0] if top else None, f"add a general account of a role other than {a.role}"),
            ("tenant", tf, foreign, f"add a general account of a tenant other than {a.tenant or '(none)'}")):
        if other is None:
            parts.untested.append((part, NotAssessed.needs_account, missing))
            continue
        if dig(mine, fld) is None:
            parts.untested.append((part, NotAssessed.not_configured, f"set plugins.access.me_{part}_field to the "
                                   f"field of the own user record ({me}) that holds the {part} (a dotted path, "
                                   f"e.g. user_obj.{part})"))
            continue
        theirs, oex = run.call(me, None, other.name)
        if not isinstance(theirs, dict):
            parts.silent.append(oex)
        elif dig(theirs, fld) is not None and not same_value(dig(theirs, fld), dig(mine, fld)):
            wanted[fld] = dig(theirs, fld)
        else:
            parts.untested.append((part, NotAssessed.not_configured, f"{a.name} and {other.name} show no distinct "
                                   f"{fld} in {me}: check plugins.access.me_{part}_field"))
    return wanted


def _restore_me(run: AccessRun, a: Account, ops: tuple[str, str], original: dict[str, Any]) -> None:
    """Put the user's own fields back and check they are back; raises (a failed cleanup) when not."""
    me, update = ops
    now, _ = run.call(me, None, a.name)
    if isinstance(now, dict) and all(same_value(dig(now, k), v) for k, v in original.items()):
        return
    run.call(update, nest(original), a.name)
    now, _ = run.call(me, None, a.name)
    if not (isinstance(now, dict) and all(same_value(dig(now, k), v) for k, v in original.items())):
        raise RuntimeError(f"{a.name}'s own {', '.join(original)} could not be restored: fix it by hand")


def secret_keys(data: Any, prefix: str = "", own: bool = False) -> Iterator[str]:
    """Dotted paths of keys that hold a non-empty secret-looking value (password, hash, token …).

    ``own``: the caller's own user record, where its own API key or token may legitimately
    appear; only password material counts there.
    """
    keys = _PASSWORD_KEY if own else _SECRET_KEY
    if isinstance(data, dict):
        for k, v in data.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, (dict, list)):
                yield from secret_keys(v, p, own)
            elif isinstance(v, str) and v.strip() and (
                    keys.match(str(k)) or (_HASH_KEY.match(str(k)) and _HASH_VALUE.match(v))):
                yield p
    elif isinstance(data, list):
        for _i, v in enumerate(data[:200]):
            yield from secret_keys(v, f"{prefix}[]" if prefix else "[]", own)


def check_exposure(run: AccessRun) -> None:
    """User and record responses must not carry password hashes, tokens or secrets."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API3", "CWE-213", "CWE-200"),
                              remediation="Serialize users and records through an explicit allow-list of fields; "
                                          "never return hashes, tokens or keys.", severity=Severity.high)
    sources: list[tuple[str, str | None, str | None]] = []
    by_role: dict[str, Account] = {}
    for acct in run.general_accounts():
        by_role.setdefault(acct.role, acct)
    me, users = run.operation("me"), run.operation("users.list")
    if me is not None:
        for acct in by_role.values():
            sources.append(("me", me, acct.name))
    if users is not None:
        for acct in sorted(by_role.values(), key=lambda x: -run.privilege(x.role)):
            sources.append(("users", users, acct.name))
    if run.ctx.adapter is not None:
        a = sorted(by_role.values(), key=lambda x: -run.privilege(x.role))
        for res in run.resources():
            if a:
                sources.append((res, None, a[0].name))  # through the adapter's list
    seen: dict[str, list[Evidence]] = {}
    tested: set[str] = set()
    silent: dict[str, Exchange] = {}
    refused: dict[str, Exchange] = {}
    adapter = run.ctx.adapter
    for where, path, caller in sources:
        if where == "users" and "users" in tested:
            continue
        if path is None:
            assert adapter is not None  # sources without a path are the adapter's resources, added only with one
            ex = adapter.list(where, caller, limit=50)[1]
        else:
            ex = run.call(path, {"limit": 50} if where != "me" else None, caller)[1]
        data = ex.json_or_none() if run.verdict(ex) == "allow" else None
        if data is None:
            if run.verdict(ex) == "deny":
                refused.setdefault(where, ex)  # this account may not read it: another may
            else:
                silent.setdefault(where, ex)
            continue
        tested.add(where)
        keys = sorted(set(secret_keys(data, own=where == "me")))
        if keys:  # data_exposure leaves these fields to this check (one report per leak)
            run.notes.setdefault("exposure_keys", set()).update(
                (where, k.rsplit(".", 1)[-1].removesuffix("[]").lower()) for k in keys)
            ev = ex.evidence(0, expected="no secrets", observed=f"secret-looking field(s): {', '.join(keys[:8])}")
            seen.setdefault(where, []).append(ev.model_copy(update={"excerpt": None}))  # never keep the secret itself
    for where in dict.fromkeys(w for w, _, _ in sources):
        fid = f"access.exposure.{where}"
        if where in seen:
            run.add(fid, f"{where} responses expose password hashes, tokens or secrets", status=Status.failed,
                    evidence=seen[where], **kw)
        elif where in silent:
            run.unassessed(fid, f"{where} responses expose no password hashes, tokens or secrets", silent[where], **kw)
        elif where in tested:
            run.add(fid, f"{where} responses expose no password hashes, tokens or secrets", status=Status.passed, **kw)
        else:
            key = {"me": "operation 'me'", "users": "operation 'users.list'"}.get(where, f"mapping of {where}")
            run.skip(fid, f"{where} responses not checked for secrets (no account may read them: "
                     f"{run.outcome(refused[where])})", NotAssessed.not_configured,
                     f"check the adapter's {key}, or add an account that may read it", **kw)
