"""Tenant and privilege context injection: another tenant's id or an elevated role sent through every channel.

Tenant B creates a canary record (tagged, deleted again through ``ctx.defer``). Tenant A then
asks for B's tenant through query parameters (``tenant_id=…``), headers (``X-Tenant-ID`` …),
body fields on create, and the account's ``context`` (public and underscore-prefixed keys,
for adapters that send one) — each sent as a derived caller: A's own credentials and context
plus the injected values (:class:`~crm_audit.core.adapter.RawCredentials`), so it works over
any adapter. A tenant channel works only when B's canary shows up in A's answers (listed or
read by id) or A's create lands in B's tenant; status codes alone decide nothing. Role
injection (``X-Role: admin``, ``?role=admin``, a context ``role``) counts only when an
admin-only action (``users.list``) that A is refused succeeds.
"""

from __future__ import annotations

from typing import Any

from crm_audit.core.adapter import Caller, RawCredentials
from crm_audit.core.model import Evidence, NotAssessed, Severity
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .common import (
    HINT_WRITES,
    INDICATOR_ACCESS,
    AccessRun,
    Tally,
    operation_hint,
    refs,
    same_value,
)
from .escalation import ADMIN_ROLE
from .persisted import after_denied_create, create_number, find_created, refused, remove

TENANT_PARAMS = ("tenant", "tenant_id", "tenantId", "organization", "organization_id", "org", "org_id", "company",
                 "company_id", "companyId", "workspace_id")
TENANT_HEADERS = ("X-Tenant-ID", "X-Tenant", "X-Organization", "X-Organization-Id", "X-Org-Id", "X-Company",
                  "X-Company-Id", "X-Workspace-Id")
TENANT_CONTEXT = ("tenant", "tenant_id", "company", "company_id", "organization", "organization_id", "org",
                  "_tenant", "_tenant_id", "_company", "_company_id", "_organization", "_org")
ROLE_PARAMS = ("role", "user_role", "is_admin")
ROLE_HEADERS = ("X-Role", "X-User-Role", "X-Roles", "X-Admin")
ROLE_CONTEXT = ("role", "_role", "is_admin", "_is_admin", "superuser", "_superuser")
TENANT_FIX = ("Derive the tenant only from the authenticated session on the server; ignore tenant ids in "
              "headers, query parameters, bodies and per-request context, or check them against the caller's "
              "memberships.")
ROLE_FIX = "Derive roles only from the server-side session; never from headers, parameters or request context."


def check_context_injection(run: AccessRun) -> None:
    """Another tenant's id and an elevated role, sent through every channel, must change nothing."""
    tkw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, severity=Severity.critical, remediation=TENANT_FIX,
                               references=refs("API1", "API5", "CWE-639", "CWE-284"))
    adapter = run.ctx.adapter
    if adapter is None:
        run.skip("access.tenant_injection", "Tenant context injection not tested (no adapter)",
                 NotAssessed.not_configured, "describe the CRM under adapter: in the profile", **tkw)
        return
    _role_injection(run)
    if not run.ctx.allow_writes:
        run.skip("access.tenant_injection", "Tenant context injection not tested (it creates canary records: "
                 "writes not allowed)", NotAssessed.safety, HINT_WRITES, **tkw)
        return
    pair = _tenants(run)
    if pair is None:
        run.skip("access.tenant_injection", "Tenant context injection not tested (one tenant only)",
                 NotAssessed.needs_account, "add an account of a second tenant (accounts[].tenant) whose role may "
                 "create records, beside one of the first tenant", **tkw)
        return
    a, b, res = pair
    canary, cex = run.create(res, b)
    if canary is None:
        run.unassessed("access.tenant_injection", "Tenant context injection", cex, **tkw)
        return
    cid = adapter.record_id(canary)
    value = adapter.field_value(res, canary, "tenant") or b.tenant
    seen = Tally()
    base = _sees(run, res, cid, a.name)
    if isinstance(base, Exchange):
        run.unassessed("access.tenant_injection", "Tenant context injection", base, **tkw)
        return
    if base:
        run.skip("access.tenant_injection", f"Tenant context injection not tested ({a.name} already sees "
                 f"{b.name}'s {res} without injection)", NotAssessed.not_applicable,
                 "fix the tenant isolation findings (access.tenant_leak / access.bola) first", **tkw)
        return
    own_ctx = run.ctx.target.context(a.name)
    theirs_ctx = run.ctx.target.context(b.name)
    channels: list[tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]] = [
        ("headers", {h: str(value) for h in TENANT_HEADERS}, {}, {}),
        ("query", {}, {}, {p: value for p in TENANT_PARAMS}),
    ]
    mine, theirs = run.profile.account(a.name).headers, run.profile.account(b.name).headers
    swapped_headers = {k: theirs[k] for k in mine if k in theirs and theirs[k] != mine[k]}
    if swapped_headers:  # the profile sends a tenant-selecting header per account: B's value as A
        channels.append(("account_headers", swapped_headers, {}, {}))
    if own_ctx:  # the adapter sends a per-request context: B's values under A's keys, then the usual names
        swapped = {k: theirs_ctx.get(k, value) for k in own_ctx}
        channels.append(("context", {}, {**swapped, **{k: value for k in TENANT_CONTEXT}}, {}))
    # a channel the adapter cannot carry (no context, no list parameters) is left out; the title names those tried
    for name, headers, context, params in channels:
        run.ctx.check_cancelled()
        caller = _derived(run, a, headers, context)
        got = _sees(run, res, cid, caller, params)
        if got is None:
            continue
        if isinstance(got, Exchange):
            seen.silent.append(got)
        else:
            seen.judged.append(name)
            if got:
                seen.hits.append(Evidence(request=f"as {a.name} with {name}: {', '.join(list(headers or context or params)[:6])}",
                                          expected=f"only {a.tenant}'s records",
                                          observed=f"{b.name}'s {res}/{cid} ({b.tenant}) returned"))
    _body_channel(run, a, b, res, value, seen)
    seen.report(run, "access.tenant_injection", what="Tenant context injection",
                bad=f"{a.name} reaches tenant {b.tenant} by naming it in the request",
                good=f"naming tenant {b.tenant} in the request does not switch {a.name}'s tenant "
                     f"({', '.join(seen.judged)})", **tkw)


def _tenants(run: AccessRun) -> tuple[Account, Account, str] | None:
    """(A, B, resource): two general accounts of different tenants, B may create the resource."""
    accts = [x for x in run.general_accounts() if x.tenant]
    for b in sorted(accts, key=lambda x: -run.privilege(x.role)):
        for a in accts:
            if a.tenant != b.tenant:
                res = next((r for r in run.resources() if run.may(b, r, "create") and run.may(a, r, "list")), None)
                if res is not None:
                    return a, b, res
    return None


def _derived(run: AccessRun, acct: Account, headers: dict[str, str], context: dict[str, Any]) -> RawCredentials:
    """The account's own credentials and context with ``headers`` and ``context`` laid over them."""
    return RawCredentials(headers={**run.ctx.target.auth_headers(acct.name), **headers},
                          context={**run.ctx.target.context(acct.name), **context}, label=f"{acct.name}+injected")


def _sees(run: AccessRun, res: str, cid: Any, caller: Caller,
          params: dict[str, Any] | None = None) -> bool | Exchange | None:
    """True when the canary ``cid`` is listed or readable by ``caller``; the exchange when neither answer can be
    judged; None when the adapter cannot send ``params``."""
    adapter = run.ctx.adapter
    assert adapter is not None  # check_context_injection returns before its channels run without an adapter
    tag = run.ctx.tag if adapter.supports_tag_filter(res) else None
    try:
        items, lex = adapter.list(res, caller, limit=200, tag=tag, filters=params or None)
    except ValueError:
        return None
    if any(same_value(adapter.record_id(i), cid) and adapter.has_tag(res, i, run.ctx.tag) for i in items):
        return True
    if params:
        return False if run.verdict(lex) in ("allow", "deny") else lex
    got, rex = adapter.read(res, cid, caller)
    if got is not None and same_value(adapter.record_id(got), cid):
        return True
    judged = [x for x in (lex, rex) if run.verdict(x) in ("allow", "deny")]
    return False if judged else rex


def _body_channel(run: AccessRun, a: Account, b: Account, res: str, value: Any, seen: Tally) -> None:
    """A creates a record naming B's tenant in body fields other than the mapped tenant field (that one is
    the mass-assignment check's); a hit when B can read it."""
    adapter = run.ctx.adapter
    assert adapter is not None  # check_context_injection returns before its channels run without an adapter
    if not run.may(a, res, "create"):
        seen.untested.append(("body", NotAssessed.needs_account, f"{a.name} may not create {res}"))
        return
    mapped = set((adapter.field_change(res, "tenant", value) or {}).keys())
    fields = {p: value for p in TENANT_PARAMS if p not in mapped}
    n = create_number()
    rec, ex = run.create(res, a, overrides=fields, n=n)
    if rec is None:  # refused, or not found again: judged by where a record with its number is
        context = f"{a.name} create {res} naming tenant {b.tenant}"
        if refused(run, ex):
            after_denied_create(run, res, n, ex, context, cross_tenant=True)
            seen.judged.append("body")
            return
        found = find_created(run, res, [n])
        if isinstance(found, Exchange):
            seen.silent.append(found)
            return
        seen.judged.append("body")
        theirs = {x.name for x in run.general_accounts() if x.tenant == b.tenant}
        if any(who in theirs for _, who, _ in found):
            seen.hits.append(ex.evidence(200, expected=f"created in {a.tenant}",
                                         observed=f"{context}: stored in {b.tenant}"))
        remove(run, res, found)
        return
    rid = adapter.record_id(rec)
    got, gex = adapter.read(res, rid, b.name)
    if got is not None and same_value(adapter.record_id(got), rid):
        seen.judged.append("body")
        seen.hits.append(ex.evidence(200, expected=f"created in {a.tenant}",
                                     observed=f"{res}/{rid} created by {a.name} is {b.name}'s ({b.tenant})"))
    elif run.verdict(gex) == "deny":
        seen.judged.append("body")
    else:
        seen.silent.append(gex)


def _role_injection(run: AccessRun) -> None:
    """An elevated role in headers, query parameters or context must not open an admin-only action."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, severity=Severity.critical, remediation=ROLE_FIX,
                              references=refs("API5", "CWE-285", "CWE-639"))
    fid = "access.role_injection"
    gate = run.operation("users.list")
    if gate is None:
        run.skip(fid, "Role context injection not tested (no admin-only operation to try)", NotAssessed.not_configured,
                 operation_hint("users.list"), **kw)
        return
    ranked = sorted(run.general_accounts(), key=lambda x: (run.privilege(x.role), bool(ADMIN_ROLE.search(x.role))))
    low = next((x for x in ranked if run.verdict(run.call(gate, {"limit": 1}, x.name)[1]) == "deny"), None) \
        if ranked else None
    if low is None:
        run.skip(fid, f"Role context injection not tested (no account is refused {gate})", NotAssessed.needs_account,
                 f"add a general account of a role that may not call {gate}", **kw)
        return
    top = max(run.general_accounts(), key=lambda x: run.privilege(x.role))
    role = top.role if top.role != low.role else "admin"
    seen = Tally()
    channels: list[tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]] = [
        ("headers", {h: role for h in ROLE_HEADERS}, {}, {}),
        ("query", {}, {}, {p: (True if p == "is_admin" else role) for p in ROLE_PARAMS})]
    if run.ctx.target.context(low.name):
        channels.append(("context", {}, {k: (True if "admin" in k or "super" in k else role) for k in ROLE_CONTEXT}, {}))
    for name, headers, context, params in channels:
        caller = _derived(run, low, headers, context)
        _, ex = run.call(gate, {"limit": 1, **params}, caller)
        v = run.verdict(ex)
        if v == "allow":
            seen.record(name, ex.evidence(200, expected="denied", observed=f"{gate} allowed to {low.name} with "
                                                                           f"{name} naming role {role}"))
        elif v == "deny" or (ex.status is not None and 400 <= ex.status < 500):
            seen.record(name, None)  # refused, or the parameters rejected: no wider access either way
        else:
            seen.record(name, ex)
    seen.report(run, fid, what="Role context injection", bad=f"{low.name} gains admin-only access by naming a role",
                good=f"naming role {role} in the request does not widen {low.name}'s access "
                     f"({', '.join(seen.judged)})", **kw)
