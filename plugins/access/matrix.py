"""Vertical (function-level) access: each role × resource × action against the profile's matrix.

Each role acts on a record it created itself; a role that may not create acts on a fresh
record an allowed account of its tenant created. Observed allows of denied actions are
confirmed by their effect (the change or the deletion is visible to the record's owner), so
an API that answers 200 without doing anything is not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from crm_audit.core.model import NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .common import HINT_WRITES, INDICATOR_ACCESS, AccessRun, refs, same_value, update_took_effect
from .persisted import after_denied_create, after_denied_delete, after_denied_update, create_number

ACTIONS = ("list", "read", "create", "update", "delete")


def check_vertical(run: AccessRun) -> dict[str, Any] | None:
    """Test every matrix cell; return the ``matrix`` artifact (None without a matrix)."""
    matrix = run.profile.access_matrix
    if not matrix or run.ctx.adapter is None:
        run.skip("access.vertical", "Vertical access not tested (the profile has no access_matrix or adapter)",
                 NotAssessed.not_configured, "set access_matrix (role -> resource -> action -> allow/deny) and "
                 "adapter.resources in the profile", indicator=INDICATOR_ACCESS, references=refs("API5", "CWE-285"))
        return None
    resources = run.resources()
    cells: list[dict[str, Any]] = []
    for role in matrix:
        acct = run.first_of_role(role)
        for res in resources:
            if res not in matrix[role]:
                continue
            run.ctx.check_cancelled()
            if acct is None:
                why = Skip(NotAssessed.needs_account, f"add a purpose: general account of role {role} to accounts")
                cells += [_cell(run, role, res, a, run.rule(role, res, a), why) for a in ACTIONS]
            else:
                cells += _role_resource(run, role, acct, res)
    return {"matrix": {"roles": list(matrix), "resources": resources, "actions": list(ACTIONS), "cells": cells}}


@dataclass(frozen=True)
class Skip:
    """A cell that was not tested: why, and what would test it."""

    reason: NotAssessed
    hint: str


#: what a cell observed: allow / deny; an exchange it cannot be judged by; or a skip
Observed = Literal["allow", "deny", "own"] | Exchange | Skip


def _cell(run: AccessRun, role: str, res: str, action: str, expected: str | None, observed: Observed,
          ex: Exchange | None = None, note: str = "") -> dict[str, Any]:
    fid = f"access.vertical.{role}.{res}.{action}"
    base: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API5", "CWE-285"))
    suffix = f" ({note})" if note else ""
    if expected is None and not isinstance(observed, Skip):
        observed = Skip(NotAssessed.not_configured, f"set access_matrix.{role}.{res}.{action} to allow or deny")
    if isinstance(observed, Skip):
        run.skip(fid, f"{role} {action} {res}: not tested{suffix}", observed.reason, observed.hint,
                 severity=Severity.info, **base)
        return _artifact(role, res, action, expected, "skipped", "skipped")
    if isinstance(observed, Exchange):
        sev = Severity.high if expected == "deny" else Severity.low
        run.unassessed(fid, f"{role} {action} {res}{suffix}", observed, severity=sev,
                       expected=expected, **base)
        return _artifact(role, res, action, expected, "error", "error")
    ev = [ex.evidence(200, expected=expected or "?", observed=observed + suffix)] if ex is not None else []
    if expected == observed:
        may = {"allow": "may ", "deny": "may not ", "own": "may only its own records: "}[expected]
        run.add(fid, f"{role} {may}{action} {res}, as expected",
                status=Status.passed, severity=Severity.high if expected == "deny" else Severity.low, evidence=ev, **base)
        return _artifact(role, res, action, expected, observed, "pass")
    if expected == "deny":
        sev = Severity.high if action in ("create", "update", "delete") else Severity.medium
        run.add(fid, f"{role} can {action} {res} although the access matrix denies it", status=Status.failed,
                severity=sev, evidence=ev, **base,
                remediation=f"Enforce the role check for {action} on {res} on the server, for every role.")
    elif expected == "own" and observed == "allow":
        run.add(fid, f"{role} can {action} other users' {res} although the access matrix allows only its own",
                status=Status.failed, severity=Severity.high, evidence=ev, **base,
                remediation=f"Filter {action} of {res} to the caller's own records on the server.")
    else:
        run.add(fid, f"{role} cannot {action} {res} although the access matrix allows it", status=Status.failed,
                severity=Severity.low, evidence=ev, **base,
                remediation="Either grant the action to the role or correct the expected access matrix.")
    return _artifact(role, res, action, expected, observed, "fail")


def _artifact(role: str, res: str, action: str, expected: str | None, observed: str, status: str) -> dict[str, Any]:
    return {"role": role, "resource": res, "action": action, "expected": expected, "observed": observed,
            "status": status, "mismatch": status == "fail"}


def _decide(run: AccessRun, ex: Exchange, rule: str | None, context: str) -> Observed:
    """allow / deny of a real answer; the exchange itself when it cannot be judged (no answer, 5xx, 3xx, 400 …)."""
    v = run.verdict(ex) if rule == "allow" else run.expect_deny(ex, context)
    return v if v in ("allow", "deny") else ex


def _role_resource(run: AccessRun, role: str, acct: Account, res: str) -> list[dict[str, Any]]:
    adapter = run.ctx.adapter
    assert adapter is not None

    def rule(action: str) -> str | None:
        return run.rule(role, res, action)

    out: list[dict[str, Any]] = []
    if not run.ctx.allow_writes:
        if rule("list") == "own":  # telling own from others' records needs records the audit created
            out.append(_cell(run, role, res, "list", "own", Skip(NotAssessed.safety, HINT_WRITES), note="writes not allowed"))
        else:
            items, ex = adapter.list(res, acct.name, limit=1)
            out.append(_list_cell(run, role, res, rule("list"), items, ex))
        for a in ("read", "create", "update", "delete"):
            out.append(_cell(run, role, res, a, rule(a), Skip(NotAssessed.safety, HINT_WRITES), note="writes not allowed"))
        return out
    # create (own record of the role); a refusal is confirmed by looking for the record
    n = create_number()
    rec, cex = run.create(res, acct, n=n)
    cv: Observed
    if rec is not None:
        cv = "allow"
    else:
        cv = _decide(run, cex, rule("create"), f"{role} create {res}")
        after_denied_create(run, res, n, cex, f"{role} create {res}")
        if cv == "allow":
            cv = cex  # 2xx, but the created record could not be found: nothing to judge by
    out.append(_cell(run, role, res, "create", rule("create"), cv, cex))
    owner = acct
    if rec is None:
        owner_acct = run.writer(res, acct.tenant)
        if owner_acct is None:
            why = Skip(NotAssessed.needs_account, f"add an account of tenant {acct.tenant or '(any)'} whose role may "
                                                  f"create {res} (access_matrix create: allow)")
            for a in ("list", "read", "update", "delete"):
                out.append(_cell(run, role, res, a, rule(a), why, note="no account can create a record"))
            return out
        owner = owner_acct
        rec, oex = run.create(res, owner)
    else:
        oex = cex
    rid = adapter.record_id(rec) if rec else None
    # list
    if rule("list") == "own":
        out.append(_own_cell(run, role, acct, res, "list", rec if owner is acct else None))
    else:
        items, lex = adapter.list(res, acct.name, limit=1)
        out.append(_list_cell(run, role, res, rule("list"), items, lex))
    if rid is None:
        for a in ("read", "update", "delete"):
            out.append(_cell(run, role, res, a, rule(a), oex, oex, note=f"no record to act on: {owner.name}'s create failed"))
        return out
    # read
    if rule("read") == "own":
        out.append(_own_cell(run, role, acct, res, "read", rec if owner is acct else None))
    else:
        got, rex = adapter.read(res, rid, acct.name)
        rv = _decide(run, rex, rule("read"), f"{role} read {res}")
        note = ""
        if rv == "allow" and (got is None or str(adapter.record_id(got)) != str(rid)):
            if rule("read") == "allow" or rex.json_or_none() is None:
                rv, note = rex, "allowed without the record"
            else:
                rv, note = "deny", "allowed without the record"
        out.append(_cell(run, role, res, "read", rule("read"), rv, rex, note))
    # update
    body = adapter.update_changes(res, rid)
    before, _ = adapter.read(res, rid, owner.name)
    _, uex = adapter.update(res, rid, acct.name, body)
    uv = _decide(run, uex, rule("update"), f"{role} update {res}")
    after_denied_update(run, res, rid, owner.name, body, before, uex, f"{role} update {res}")
    note = ""
    if uv == "allow" and rule("update") == "deny":
        after, aex = adapter.read(res, rid, owner.name)
        effect = update_took_effect(body, before, after)
        if effect is False:
            uv, note = "deny", "answered 2xx but the record did not change"
        elif after is None:
            uv, note = aex, "answered 2xx; the owner's re-read shows nothing to compare"
    out.append(_cell(run, role, res, "update", rule("update"), uv, uex, note))
    # delete
    dex = run.delete(res, rid, acct.name)
    dv = _decide(run, dex, rule("delete"), f"{role} delete {res}")
    after_denied_delete(run, res, rid, owner.name, dex, f"{role} delete {res}")
    note = ""
    if dv == "allow" and rule("delete") == "deny":
        still, sex = adapter.read(res, rid, owner.name)
        if still is not None:
            dv, note = "deny", "answered 2xx but the record still exists"
        elif run.outcome(sex) != "not_found":
            dv, note = sex, "answered 2xx; the owner's re-read cannot tell whether the record is gone"
    out.append(_cell(run, role, res, "delete", rule("delete"), dv, dex, note))
    return out


def _list_cell(run: AccessRun, role: str, res: str, expected: str | None, items: list[dict[str, Any]], ex: Exchange) -> dict[str, Any]:
    """The list cell: a 2xx with an empty (readable) list is a way to deny; an unreadable 2xx is not judged."""
    lv = _decide(run, ex, expected, f"{role} list {res}")
    note = ""
    if lv == "allow" and ex.json_or_none() is None:
        lv, note = ex, "2xx that is not a readable list"
    elif lv == "allow" and expected == "deny" and not items:
        lv, note = "deny", "answered 2xx with an empty list"  # filtering everything out is a way to deny
    return _cell(run, role, res, "list", expected, lv, ex, note)


def _own_cell(run: AccessRun, role: str, acct: Account, res: str, action: str, mine: dict[str, Any] | None) -> dict[str, Any]:
    """A list or read cell the matrix marks ``own``: the role's own record yes, a colleague's no.

    Observed ``own`` when the own record is listed/read and a colleague's (same tenant) is
    not; ``allow`` when the colleague's shows too; ``deny`` when not even the own one does.
    """
    adapter = run.ctx.adapter
    assert adapter is not None
    what = f"{role} {action} {res}"
    if mine is None:
        return _cell(run, role, res, action, "own", Skip(NotAssessed.needs_account, f"'own' needs {acct.name} to create "
                     f"{res}: set access_matrix.{role}.{res}.create to allow (or the cell to allow/deny)"))
    colleague = next((x for x in run.general_accounts() if x is not acct and x.tenant == acct.tenant
                      and run.may(x, res, "create")), None)
    if colleague is None:
        return _cell(run, role, res, action, "own", Skip(NotAssessed.needs_account, f"add a second general account "
                     f"in tenant {acct.tenant or '(none)'} whose role may create {res} (its record must stay hidden)"))
    theirs, tex = run.own_record(res, colleague)
    if theirs is None:
        assert tex is not None  # own_record returns the create's exchange whenever it returns no record
        return _cell(run, role, res, action, "own", tex, tex, note=f"{colleague.name}'s record could not be created")
    mid, tid = adapter.record_id(mine), adapter.record_id(theirs)
    if action == "read":
        got, ex = adapter.read(res, mid, acct.name)
        if run.verdict(ex) != "allow" or got is None:
            v = run.verdict(ex)
            return _cell(run, role, res, action, "own", "deny" if v == "deny" else ex, ex, "own record not readable")
        other, oex = adapter.read(res, tid, acct.name)
        ov = run.expect_deny(oex, f"{what} of {colleague.name}")
        if ov == "allow" and other is not None and same_value(adapter.record_id(other), tid):
            return _cell(run, role, res, action, "own", "allow", oex, f"{colleague.name}'s record readable")
        if ov not in ("allow", "deny"):
            return _cell(run, role, res, action, "own", oex, oex)
        return _cell(run, role, res, action, "own", "own", oex, f"{colleague.name}'s record refused")
    tag = run.ctx.tag if adapter.supports_tag_filter(res) else None
    items, ex = adapter.list(res, acct.name, limit=200, tag=tag)
    v = run.expect_deny(ex, what)
    if v != "allow" or ex.json_or_none() is None:
        return _cell(run, role, res, action, "own", "deny" if v == "deny" else ex, ex)
    ids = {str(adapter.record_id(i)) for i in items}
    if str(tid) in ids:
        return _cell(run, role, res, action, "own", "allow", ex, f"{colleague.name}'s record listed")
    if str(mid) not in ids:
        return _cell(run, role, res, action, "own", "deny", ex, "own record not listed")
    return _cell(run, role, res, action, "own", "own", ex, f"own record listed, {colleague.name}'s not")
