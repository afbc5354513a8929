"""Property-level access: mass assignment of owner/tenant fields and of the own user's role/tenant,
and responses that expose password hashes, tokens or secrets.

Mass assignment is judged by what the CRM stored (re-read), never by what it echoed alone.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from crm_audit.model import Evidence, Severity, Status
from crm_audit.profile import Account

from .common import INDICATOR_ACCESS, AccessRun, refs, same_value
from .objects import actors

MASS_FIX = ("Accept only an explicit allow-list of writable fields; set owner and tenant on the server "
            "from the authenticated caller, never from the request body.")
_SECRET_KEY = re.compile(r"^(password|passwd|pwd|password_?hash|hashed_?password|pass_?hash|salt|token|access_?token|"
                         r"refresh_?token|auth_?token|api_?key|apikey|api_?secret|secret|client_?secret|secret_?key|"
                         r"private_?key|otp_?secret|totp_?secret|mfa_?secret|reset_?token|session_?key)$", re.I)
_PASSWORD_KEY = re.compile(r"^(password|passwd|pwd|password_?hash|hashed_?password|pass_?hash|salt|otp_?secret|"
                           r"totp_?secret|mfa_?secret)$", re.I)
_HASH_KEY = re.compile(r"^hash$", re.I)
_HASH_VALUE = re.compile(r"^(\$2[aby]?\$|\$argon2|\$[156]\$|pbkdf2_|scrypt\$|bcrypt\$|sha1\$|md5\$|\{SSHA\})")


def _other_tenant_value(run: AccessRun, res: str, a: Account) -> Any:
    foreign = run.notes.get("foreign", {}).get(res)
    tf = run.ctx.adapter.resource(res).tenant_field if run.ctx.adapter else None
    if foreign and tf:
        return foreign[0].get(tf)
    return None


def check_mass_assignment(run: AccessRun) -> None:
    """Create/update own records with the owner or tenant field set to someone else's."""
    adapter = run.ctx.adapter
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API3", "CWE-915"))
    if adapter is None or not run.ctx.allow_writes:
        run.add("access.mass_assignment", "Mass assignment not tested (needs the adapter and allow.writes)",
                status=Status.skipped, severity=Severity.info, **kw)
        return
    a, b = actors(run)
    if a is None:
        return
    for res in run.resources():
        run.ctx.check_cancelled()
        rc = adapter.resource(res)
        if not run.may(a, res, "create") or not (rc.owner_field or rc.tenant_field):
            continue
        own = run.own_record(res, a)
        if own is None:
            continue
        injections: list[tuple[str, Any, str]] = []
        if rc.owner_field and a.role not in run.opts.owner_assignment_roles:
            peer = b or next((x for x in run.general_accounts() if x.tenant == a.tenant and x is not a
                              and run.may(x, res, "create")), None)
            peer_rec = run.own_record(res, peer) if peer else None
            val = peer_rec.get(rc.owner_field) if peer_rec else None
            if isinstance(val, (int, str)) and not same_value(val, own.get(rc.owner_field)):
                injections.append((rc.owner_field, val, "owner"))
        tval = _other_tenant_value(run, res, a)
        if rc.tenant_field and isinstance(tval, (int, str)) and not same_value(tval, own.get(rc.tenant_field)):
            injections.append((rc.tenant_field, tval, "tenant"))
        if not injections:
            continue
        hits: list[Evidence] = []
        for field, value, what in injections:
            rec, ex = run.create(res, a, overrides={field: value})
            if rec is not None and _stored(run, res, rec, field, value, a):
                hits.append(ex.evidence(200, expected=f"{field} set by the server",
                                        observed=f"create: {what} field {field} taken from the request body"))
            upd = run.own_record(res, a, key=f"mass-{field}")
            if upd is None:
                continue
            rid = adapter.record_id(upd)
            _, uex = adapter.update(res, rid, a.name, {field: value})
            if uex.ok and _stored(run, res, upd, field, value, a):
                hits.append(uex.evidence(200, expected=f"{field} unchanged",
                                         observed=f"update: {what} field {field} taken from the request body"))
        fid = f"access.mass_assignment.{res}"
        fields = ", ".join(sorted({f for f, _, _ in injections}))
        if hits:
            sev = Severity.critical if any("tenant" in (h.observed or "") for h in hits) else Severity.high
            run.add(fid, f"{res}: {a.name} can set {fields} through the request body", status=Status.failed,
                    severity=sev, evidence=hits, remediation=MASS_FIX, **kw)
        else:
            run.add(fid, f"{res}: {fields} cannot be set through the request body", status=Status.passed,
                    severity=Severity.high, remediation=MASS_FIX, **kw)


def _stored(run: AccessRun, res: str, rec: dict, field: str, value: Any, a: Account) -> bool:
    """True when the stored record (re-read as its creator, else as any account) holds ``value``."""
    adapter = run.ctx.adapter
    assert adapter is not None
    rid = adapter.record_id(rec)
    names = [a.name] + [x.name for x in sorted(run.general_accounts(), key=lambda x: -run.privilege(x.role))]
    for name in dict.fromkeys(names):
        got, ex = adapter.read(res, rid, name)
        if got is not None:
            return same_value(got.get(field), value)
    return False


def check_me_mass_assignment(run: AccessRun) -> None:
    """PATCH of the own user must not change its role or tenant (verified by re-reading)."""
    path = run.opts.me_path
    fid = "access.mass_assignment.me"
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API3", "CWE-915", "CWE-269"),
                              remediation=MASS_FIX)
    if not path or not run.ctx.allow_writes:
        run.add(fid, "Own-user mass assignment not tested (no me_path or writes not allowed)",
                status=Status.skipped, severity=Severity.info, **kw)
        return
    a, _ = actors(run)
    if a is None:
        return
    t = run.ctx.target
    me = t.request("GET", path, account=a.name)
    mine = me.json_or_none() if me.ok else None
    if not isinstance(mine, dict):
        run.add(fid, f"Own-user mass assignment not tested ({path} answered {me.status})", status=Status.skipped,
                severity=Severity.info, **kw)
        return
    rf, tf = run.opts.me_role_field, run.opts.me_tenant_field
    wanted: dict[str, Any] = {}
    top = sorted((x for x in run.general_accounts() if x.role != a.role), key=lambda x: -run.privilege(x.role))
    if top and rf in mine:
        other = t.request("GET", path, account=top[0].name).json_or_none()
        if isinstance(other, dict) and other.get(rf) is not None and not same_value(other.get(rf), mine.get(rf)):
            wanted[rf] = other[rf]
    foreign = next((x for x in run.general_accounts() if x.tenant and a.tenant and x.tenant != a.tenant), None)
    if foreign is not None and tf in mine:
        other = t.request("GET", path, account=foreign.name).json_or_none()
        if isinstance(other, dict) and other.get(tf) is not None and not same_value(other.get(tf), mine.get(tf)):
            wanted[tf] = other[tf]
    if not wanted:
        run.add(fid, "Own-user mass assignment not tested (no role/tenant field to try)", status=Status.skipped,
                severity=Severity.info, **kw)
        return
    original = {k: mine.get(k) for k in wanted}
    # registered before the first change, so an error or Ctrl-C between PATCH and re-read still restores it
    run.ctx.defer(f"restore {a.name}'s own user record", lambda: _restore_me(run, a, path, original))
    hits: list[Evidence] = []
    for field, value in wanted.items():
        ex = t.request("PATCH", path, account=a.name, json={field: value})
        now = t.request("GET", path, account=a.name).json_or_none()
        if isinstance(now, dict) and same_value(now.get(field), value):
            hits.append(ex.evidence(200, expected=f"{field} unchanged", observed=f"{field} changed by PATCH {path}"))
            _restore_me(run, a, path, original)
    if hits:
        run.add(fid, f"A user can change its own {', '.join(sorted(wanted))} (privilege escalation)",
                status=Status.failed, severity=Severity.critical, evidence=hits, **kw)
    else:
        run.add(fid, f"A user cannot change its own {', '.join(sorted(wanted))}", status=Status.passed,
                severity=Severity.critical, **kw)


def _restore_me(run: AccessRun, a: Account, path: str, original: dict[str, Any]) -> None:
    """Put the user's own fields back and check they are back; raises (a failed cleanup) when not."""
    t = run.ctx.target
    now = t.request("GET", path, account=a.name).json_or_none()
    if isinstance(now, dict) and all(same_value(now.get(k), v) for k, v in original.items()):
        return
    t.request("PATCH", path, account=a.name, json=original)
    now = t.request("GET", path, account=a.name).json_or_none()
    if not (isinstance(now, dict) and all(same_value(now.get(k), v) for k, v in original.items())):
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
        for i, v in enumerate(data[:200]):
            yield from secret_keys(v, f"{prefix}[]" if prefix else "[]", own)


def check_exposure(run: AccessRun) -> None:
    """User and record responses must not carry password hashes, tokens or secrets."""
    t = run.ctx.target
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API3", "CWE-213", "CWE-200"),
                              remediation="Serialize users and records through an explicit allow-list of fields; "
                                          "never return hashes, tokens or keys.")
    sources: list[tuple[str, str, str | None]] = []
    by_role = {}
    for acct in run.general_accounts():
        by_role.setdefault(acct.role, acct)
    if run.opts.me_path:
        for acct in by_role.values():
            sources.append(("me", run.opts.me_path, acct.name))
    if run.opts.users_path:
        for acct in sorted(by_role.values(), key=lambda x: -run.privilege(x.role)):
            sources.append(("users", run.opts.users_path, acct.name))
    if run.ctx.adapter is not None:
        a = sorted(by_role.values(), key=lambda x: -run.privilege(x.role))
        for res in run.resources():
            if a:
                sources.append((res, run.ctx.adapter.resource(res).path, a[0].name))
    seen: dict[str, list[Evidence]] = {}
    tested: set[str] = set()
    users_done = False
    for where, path, acct in sources:
        if where == "users" and users_done:
            continue
        ex = t.request("GET", path, account=acct, params={"limit": 50} if where != "me" else None)
        if not ex.ok:
            continue
        users_done = users_done or where == "users"
        tested.add(where)
        keys = sorted(set(secret_keys(ex.json_or_none(), own=where == "me")))
        if keys:
            ev = ex.evidence(0, expected="no secrets", observed=f"secret-looking field(s): {', '.join(keys[:8])}")
            seen.setdefault(where, []).append(ev.model_copy(update={"excerpt": None}))  # never keep the secret itself
    for where in sorted(tested):
        fid = f"access.exposure.{where}"
        if where in seen:
            run.add(fid, f"{where} responses expose password hashes, tokens or secrets", status=Status.failed,
                    severity=Severity.high, evidence=seen[where], **kw)
        else:
            run.add(fid, f"{where} responses expose no password hashes, tokens or secrets", status=Status.passed,
                    severity=Severity.high, **kw)
