"""Horizontal access (BOLA) and tenant isolation, on records the audit's own accounts created.

Same tenant: user A acts on a record user B (same role) created, only for the actions the
profile marks owner-only (``owner_only_actions``). Other tenant: A reads, updates, deletes
a record created by an account of another tenant — always a finding when it works. Lists:
A's list must not contain the other tenant's tagged record or rows of another tenant.
"""

from __future__ import annotations

from typing import Any

from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .common import HINT_WRITES, INDICATOR_ACCESS, AccessRun, Tally, refs, same_value, update_took_effect
from .persisted import after_denied_delete, after_denied_update

BOLA_FIX = ("Check on every by-id request that the record belongs to the caller's tenant and, where the role "
            "is limited to its own records, to the caller; answer 404/403 otherwise.")


def _peer(run: AccessRun, a: Account) -> Account | None:
    """A colleague of ``a``: another general account of the same role and tenant."""
    return next((b for b in run.general_accounts() if b is not a and b.role == a.role and b.tenant == a.tenant), None)


def actors(run: AccessRun) -> tuple[Account | None, Account | None]:
    """(A, B): the actor and its same-role, same-tenant colleague (B may be None).

    ``actors.actor`` / ``actors.peer`` in the profile win. Otherwise A is, among the general
    accounts that may create some resource: one with a colleague first; then one of a role
    in ``owner_only_actions``; then one with a tenant when another tenant exists (so the
    cross-tenant checks can run); then the least privileged; then profile order.
    """
    a = run.named("actor")
    if a is None:
        writers = [x for x in run.general_accounts() if any(run.may(x, r, "create") for r in run.resources())]
        tenants = {x.tenant for x in run.general_accounts() if x.tenant}
        owner_roles = set(run.opts.owner_only_actions)
        order = {x.name: i for i, x in enumerate(writers)}
        a = min(writers, default=None, key=lambda x: (
            _peer(run, x) is None, x.role not in owner_roles, not (x.tenant and len(tenants) > 1),
            run.privilege(x.role), order[x.name]))
    b = run.named("peer")
    if a is not None and b is None and run.profile.actors.peer is None:
        b = _peer(run, a)
    return a, b


def other_tenant_writer(run: AccessRun, a: Account, res: str) -> Account | None:
    """``actors.other_tenant`` when it may create ``res``; else the most privileged general account of a
    tenant other than ``a``'s that may."""
    named = run.named("other_tenant")
    if named is not None:
        return named if run.may(named, res, "create") and named.tenant != a.tenant else None
    others = [c for c in run.general_accounts() if c.tenant and a.tenant and c.tenant != a.tenant]
    return next((x for x in sorted(others, key=lambda x: -run.privilege(x.role)) if run.may(x, res, "create")), None)


def other_tenant_hint(run: AccessRun, a: Account, res: str) -> str:
    """Exactly what would let a cross-tenant check on ``res`` run."""
    named = run.profile.actors.other_tenant
    if named:
        return (f"actors.other_tenant ({named}) must be of a tenant other than {a.name}'s "
                f"({a.tenant or 'none'}) and its role must be allowed to create {res} (access_matrix create: allow)")
    if not a.tenant:
        return (f"give {a.name} a tenant (accounts[].tenant), or set actors.actor to an account with one; "
                f"then add a general account of another tenant whose role may create {res}")
    return f"add a general account of a tenant other than {a.tenant} whose role may create {res} (or set actors.other_tenant)"


def check_objects(run: AccessRun) -> None:
    """BOLA (same tenant, owner-only actions; other tenant, everything) and list tenant leaks."""
    adapter = run.ctx.adapter
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API1", "CWE-639"))
    leak = "Tenant isolation of lists not tested"
    if adapter is None:
        for fid, what in (("access.bola", "Object-level access not tested"), ("access.tenant_leak", leak)):
            run.skip(fid, what + " (no adapter)", NotAssessed.not_configured,
                     "describe the CRM's resources under adapter: in the profile", **kw)
        return
    if not run.ctx.allow_writes:
        for fid, what in (("access.bola", "Object-level access not tested"), ("access.tenant_leak", leak)):
            run.skip(fid, what + " (it acts on records the audit creates: writes not allowed)", NotAssessed.safety,
                     HINT_WRITES, **kw)
        return
    a, b = actors(run)
    if a is None:
        for fid, what in (("access.bola", "Object-level access not tested"), ("access.tenant_leak", leak)):
            run.skip(fid, what + " (no account may create records)", NotAssessed.needs_account,
                     "add a purpose: general account whose role may create records (access_matrix create: allow)", **kw)
        return
    for res in run.resources():
        run.ctx.check_cancelled()
        if not run.may(a, res, "create"):
            run.skip(f"access.bola.{res}", f"{res}: object-level access not tested ({a.name} may not create {res})",
                     NotAssessed.needs_account, f"add two general accounts of one role and tenant that may create "
                     f"{res} (access_matrix create: allow)", **kw)
            continue
        _bola(run, res, a, b)
        _tenant_leak(run, res, a)


def _bola(run: AccessRun, res: str, a: Account, b: Account | None) -> None:
    """Same-tenant attempts on B's records (owner-only actions) and cross-tenant attempts on C's records."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API1", "CWE-639"))
    tried = Tally()
    untested = tried.untested
    own_actions = [x for x in run.opts.owner_only_actions.get(a.role, []) if x in ("read", "update", "delete")]
    if run.rule(a.role, res, "read") == "own" and "read" not in own_actions:
        own_actions.insert(0, "read")  # access_matrix read: own
    if not own_actions:
        untested.append(("same_tenant", NotAssessed.not_configured,
                         f"if {a.role} may act only on its own records, list those actions in "
                         f"plugins.access.owner_only_actions.{a.role}"))
    elif b is None:
        untested.append(("same_tenant", NotAssessed.needs_account,
                         f"add a second general account of role {a.role} in tenant {a.tenant or '(none)'} "
                         "(or set actors.peer)"))
    elif not run.may(b, res, "create"):
        untested.append(("same_tenant", NotAssessed.needs_account, f"{b.name} may not create {res}: add a second "
                         f"account of role {a.role} in tenant {a.tenant or '(none)'} that may"))
    else:
        for action in own_actions:
            rec, cex = run.create(res, b)
            tried.record(f"same-tenant {action}", _attempt(run, res, rec, a, b, action) if rec else cex)
    c = other_tenant_writer(run, a, res)
    if c is None:
        untested.append(("cross_tenant", NotAssessed.needs_account, other_tenant_hint(run, a, res)))
    else:
        for action in ("read", "update", "delete"):
            rec, cex = run.create(res, c)
            if rec is not None:
                run.notes.setdefault("foreign", {}).setdefault(res, (rec, c))
            else:
                run.notes.setdefault("foreign_failed", {}).setdefault(res, cex)
            tried.record(f"cross-tenant {action}", _attempt(run, res, rec, a, c, action) if rec else cex)
    where = ", ".join(tried.judged)
    tried.report(run, f"access.bola.{res}", what=f"{res}: object-level access",
                 bad=f"{res}: {a.name} can act on records it must not ({len(tried.hits)} of {len(tried.judged)} attempts)",
                 good=f"{res}: other users' and tenants' records are protected ({where})", severity=Severity.high,
                 bad_severity=Severity.critical if any("other tenant" in (p.observed or "") for p in tried.hits) else None,
                 remediation=BOLA_FIX, **kw)


def _attempt(run: AccessRun, res: str, rec: dict[str, Any], actor: Account, owner: Account, action: str) -> Evidence | Exchange | None:
    """Evidence when ``actor`` could perform ``action`` on ``owner``'s record (effect confirmed);
    None when it was refused; the exchange when the outcome cannot be judged (no answer, 5xx,
    an unexpected answer, or an effect that could not be re-read)."""
    adapter = run.ctx.adapter
    assert adapter is not None
    rid = adapter.record_id(rec)
    where = "other tenant" if owner.tenant != actor.tenant else "same tenant"
    context = f"{actor.name} {action} {owner.name}'s {res} ({where})"
    if action == "read":
        got, ex = adapter.read(res, rid, actor.name)
        v = run.expect_deny(ex, context)
        if v == "allow" and got is not None and same_value(adapter.record_id(got), rid) \
                and adapter.has_tag(res, got, run.ctx.tag):
            return ex.evidence(200, expected="denied", observed=f"{ex.status}: {context}")
        if v == "allow" and ex.json_or_none() is not None:
            return None  # allowed without the record: filtered out, a way to deny
        return None if v == "deny" else ex
    if action == "update":
        body = adapter.update_changes(res, rid)
        before, _ = adapter.read(res, rid, owner.name)
        _, ex = adapter.update(res, rid, actor.name, body)
        v = run.expect_deny(ex, context)
        after_denied_update(run, res, rid, owner.name, body, before, ex, context, cross_tenant=where == "other tenant")
        if v != "allow":
            return None if v == "deny" else ex
        after, aex = adapter.read(res, rid, owner.name)
        if after is None:
            return aex  # the effect cannot be seen
        if update_took_effect(body, before, after) is not False:
            return ex.evidence(200, expected="denied", observed=f"{ex.status}: {context}, record changed")
        return None
    ex = run.delete(res, rid, actor.name)
    v = run.expect_deny(ex, context)
    after_denied_delete(run, res, rid, owner.name, ex, context, cross_tenant=where == "other tenant")
    if v != "allow":
        return None if v == "deny" else ex
    still, sex = adapter.read(res, rid, owner.name)
    if still is None and run.outcome(sex) == "not_found":
        return ex.evidence(200, expected="denied", observed=f"{ex.status}: {context}, record deleted")
    return None if still is not None else sex


def _tenant_leak(run: AccessRun, res: str, a: Account) -> None:
    """A's lists must hold neither the other tenant's tagged record nor rows of another tenant."""
    adapter = run.ctx.adapter
    assert adapter is not None
    tenant_path = adapter.field_path(res, "tenant")
    fid = f"access.tenant_leak.{res}"
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API1", "CWE-639", "CWE-200"),
                              remediation="Scope every list query to the caller's tenant on the server.",
                              severity=Severity.critical)
    title = f"{res}: lists show only the caller's tenant"
    foreign = run.notes.get("foreign", {}).get(res)
    own, oex = run.own_record(res, a)
    if own is None and tenant_path:
        run.unassessed(fid, title, oex, **kw)
        return
    own_tenant = adapter.field_value(res, own, "tenant") if own else None
    if foreign is None and own_tenant is None and res in run.notes.get("foreign_failed", {}):
        run.unassessed(fid, title, run.notes["foreign_failed"][res], **kw)
        return
    if foreign is None and own_tenant is None:
        hint = other_tenant_hint(run, a, res) + ("" if tenant_path else f"; or map the tenant field of {res} in the "
                                                 f"adapter (rest: adapter.resources.{res}.tenant_field)")
        run.skip(fid, f"{res}: tenant isolation of lists not tested (one tenant only)", NotAssessed.needs_account,
                 hint, **kw)
        return
    found: list[Evidence] = []
    pages = []
    if adapter.supports_tag_filter(res):
        pages.append(adapter.list(res, a.name, limit=200, tag=run.ctx.tag))
    pages.append(adapter.list(res, a.name, limit=200))
    for items, ex in pages:
        if run.verdict(ex) == "deny":
            continue  # a list A may not read leaks nothing
        if run.verdict(ex) != "allow" or ex.json_or_none() is None:
            run.unassessed(fid, title, ex, expected="the caller's list", **kw)
            return
        if foreign is not None:
            frec, _c = foreign
            fid_val = adapter.record_id(frec)
            marks = [v for v in frec.values() if isinstance(v, str) and run.ctx.tag in v]
            for it in items:
                if same_value(adapter.record_id(it), fid_val) and (not marks or any(m in str(it) for m in marks)):
                    found.append(ex.evidence(200, expected="only the caller's tenant",
                                             observed=f"{res}/{fid_val} of another tenant listed"))
                    break
        if own_tenant is not None:
            theirs = [adapter.field_value(res, it, "tenant") for it in items]
            alien = {str(t) for t in theirs if t is not None and not same_value(t, own_tenant)}
            if alien:
                found.append(ex.evidence(200, expected=f"{tenant_path} = {own_tenant}",
                                         observed=f"rows of {len(alien)} other tenant(s) listed"))
        if found:
            break
    if found:
        run.add(fid, f"{res}: lists show other tenants' records", status=Status.failed, evidence=found, **kw)
    else:
        run.add(fid, title, status=Status.passed, **kw)
