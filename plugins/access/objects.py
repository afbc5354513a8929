"""Horizontal access (BOLA) and tenant isolation, on records the audit's own accounts created.

Same tenant: user A acts on a record user B (same role) created, only for the actions the
profile marks owner-only (``owner_only_actions``). Other tenant: A reads, updates, deletes
a record created by an account of another tenant — always a finding when it works. Lists:
A's list must not contain the other tenant's tagged record or rows of another tenant.
"""

from __future__ import annotations

from typing import Any

from crm_audit.model import Evidence, Severity, Status
from crm_audit.profile import Account

from .common import INDICATOR_ACCESS, AccessRun, refs, same_value, update_took_effect

BOLA_FIX = ("Check on every by-id request that the record belongs to the caller's tenant and, where the role "
            "is limited to its own records, to the caller; answer 404/403 otherwise.")


def actors(run: AccessRun) -> tuple[Account | None, Account | None]:
    """(A, B): two general accounts of the same non-privileged role and tenant (B may be None)."""
    owner_only = run.opts.owner_only_actions
    roles = list(owner_only) + sorted({a.role for a in run.general_accounts()}, key=run.privilege)
    for role in roles:
        accts = [a for a in run.general_accounts() if a.role == role]
        for a in accts:
            peer = next((b for b in accts if b is not a and b.tenant == a.tenant), None)
            if peer is not None and any(run.may(a, r, "create") for r in run.resources()):
                return a, peer
    writers = sorted((a for a in run.general_accounts() if any(run.may(a, r, "create") for r in run.resources())),
                     key=lambda a: run.privilege(a.role))
    return (writers[0] if writers else None), None


def check_objects(run: AccessRun) -> None:
    """BOLA (same tenant, owner-only actions; other tenant, everything) and list tenant leaks."""
    adapter = run.ctx.adapter
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS)
    if adapter is None or not run.ctx.allow_writes:
        run.add("access.bola", "Object-level access not tested (needs the adapter and allow.writes)",
                status=Status.skipped, severity=Severity.info, **kw)
        return
    a, b = actors(run)
    if a is None:
        run.add("access.bola", "Object-level access not tested (no account may create records)",
                status=Status.skipped, severity=Severity.info, **kw)
        return
    for res in run.resources():
        run.ctx.check_cancelled()
        if not run.may(a, res, "create"):
            continue
        problems: list[Evidence] = []
        checked: list[str] = []
        own_actions = [x for x in run.opts.owner_only_actions.get(a.role, []) if x in ("read", "update", "delete")]
        if b is not None and own_actions and run.may(b, res, "create"):
            for action in own_actions:
                rec, _ = run.create(res, b)
                if rec is None:
                    break
                hit = _attempt(run, res, rec, a, b, action)
                checked.append(f"same-tenant {action}")
                if hit:
                    problems.append(hit)
        others = [c for c in run.general_accounts() if c.tenant and a.tenant and c.tenant != a.tenant]
        c = next((x for x in sorted(others, key=lambda x: -run.privilege(x.role)) if run.may(x, res, "create")), None)
        if c is not None:
            for action in ("read", "update", "delete"):
                rec, _ = run.create(res, c)
                if rec is None:
                    break
                run.notes.setdefault("foreign", {}).setdefault(res, (rec, c))
                hit = _attempt(run, res, rec, a, c, action)
                checked.append(f"cross-tenant {action}")
                if hit:
                    problems.append(hit)
        fid = f"access.bola.{res}"
        if not checked:
            run.add(fid, f"{res}: object-level access not tested (no second account of the same role or tenant)",
                    status=Status.skipped, severity=Severity.info, references=refs("API1", "CWE-639"), **kw)
        elif problems:
            run.add(fid, f"{res}: {a.name} can act on records it must not ({len(problems)} of {len(checked)} attempts)",
                    status=Status.failed, severity=Severity.critical if any("other tenant" in (p.observed or "") for p in problems) else Severity.high,
                    evidence=problems, remediation=BOLA_FIX, references=refs("API1", "CWE-639"), **kw)
        else:
            run.add(fid, f"{res}: other users' and tenants' records are protected ({', '.join(checked)})",
                    status=Status.passed, severity=Severity.high, remediation=BOLA_FIX,
                    references=refs("API1", "CWE-639"), **kw)
        _tenant_leak(run, res, a)


def _attempt(run: AccessRun, res: str, rec: dict, actor: Account, owner: Account, action: str) -> Evidence | None:
    """Evidence when ``actor`` could perform ``action`` on ``owner``'s record (effect confirmed)."""
    adapter = run.ctx.adapter
    assert adapter is not None
    rid = adapter.record_id(rec)
    where = "other tenant" if owner.tenant != actor.tenant else "same tenant"
    context = f"{actor.name} {action} {owner.name}'s {res} ({where})"
    if action == "read":
        got, ex = adapter.read(res, rid, actor.name)
        run.expect_deny(ex, context)
        if ex.ok and got is not None and same_value(adapter.record_id(got), rid) and run.ctx.tag in str(got):
            return ex.evidence(200, expected="403/404", observed=f"{ex.status}: {context}")
        return None
    if action == "update":
        body = adapter.update_body(res, rid)
        before, _ = adapter.read(res, rid, owner.name)
        _, ex = adapter.update(res, rid, actor.name, body)
        run.expect_deny(ex, context)
        if ex.ok:
            after, _ = adapter.read(res, rid, owner.name)
            if update_took_effect(body, before, after) is not False:
                return ex.evidence(200, expected="403/404", observed=f"{ex.status}: {context}, record changed")
        return None
    ex = run.delete(res, rid, actor.name)
    run.expect_deny(ex, context)
    if ex.ok:
        still, sex = adapter.read(res, rid, owner.name)
        if still is None and sex.status in (404, 410):
            return ex.evidence(200, expected="403/404", observed=f"{ex.status}: {context}, record deleted")
    return None


def _tenant_leak(run: AccessRun, res: str, a: Account) -> None:
    """A's lists must hold neither the other tenant's tagged record nor rows of another tenant."""
    adapter = run.ctx.adapter
    assert adapter is not None
    rc = adapter.resource(res)
    fid = f"access.tenant_leak.{res}"
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API1", "CWE-639", "CWE-200"),
                              remediation="Scope every list query to the caller's tenant on the server.")
    foreign = run.notes.get("foreign", {}).get(res)
    own = run.own_record(res, a)
    own_tenant = own.get(rc.tenant_field) if (own and rc.tenant_field) else None
    if foreign is None and own_tenant is None:
        run.add(fid, f"{res}: tenant isolation of lists not tested (one tenant only)", status=Status.skipped,
                severity=Severity.info, **kw)
        return
    found: list[Evidence] = []
    pages = []
    if adapter.config.tag_filter_param:
        pages.append(adapter.list(res, a.name, limit=200, params={adapter.config.tag_filter_param: run.ctx.tag}))
    pages.append(adapter.list(res, a.name, limit=200))
    for items, ex in pages:
        if not ex.ok:
            continue
        if foreign is not None:
            frec, _c = foreign
            fid_val = adapter.record_id(frec)
            marks = [v for v in frec.values() if isinstance(v, str) and run.ctx.tag in v]
            for it in items:
                if same_value(adapter.record_id(it), fid_val) and (not marks or any(m in str(it) for m in marks)):
                    found.append(ex.evidence(200, expected="only the caller's tenant",
                                             observed=f"{res}/{fid_val} of another tenant listed"))
                    break
        if own_tenant is not None and rc.tenant_field:
            alien = {str(it.get(rc.tenant_field)) for it in items
                     if it.get(rc.tenant_field) is not None and not same_value(it.get(rc.tenant_field), own_tenant)}
            if alien:
                found.append(ex.evidence(200, expected=f"{rc.tenant_field} = {own_tenant}",
                                         observed=f"rows of {len(alien)} other tenant(s) listed"))
        if found:
            break
    if found:
        run.add(fid, f"{res}: lists show other tenants' records", status=Status.failed, severity=Severity.critical,
                evidence=found, **kw)
    else:
        run.add(fid, f"{res}: lists show only the caller's tenant", status=Status.passed, severity=Severity.critical, **kw)
