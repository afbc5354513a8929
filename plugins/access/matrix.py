"""Vertical (function-level) access: each role × resource × action against the profile's matrix.

Each role acts on a record it created itself; a role that may not create acts on a fresh
record an allowed account of its tenant created. Observed allows of denied actions are
confirmed by their effect (the change or the deletion is visible to the record's owner), so
an API that answers 200 without doing anything is not reported.
"""

from __future__ import annotations

from typing import Any

from crm_audit.model import Severity, Status
from crm_audit.profile import Account

from .common import INDICATOR_ACCESS, AccessRun, refs, update_took_effect, verdict

ACTIONS = ("list", "read", "create", "update", "delete")


def check_vertical(run: AccessRun) -> dict[str, Any] | None:
    """Test every matrix cell; return the ``matrix`` artifact (None without a matrix)."""
    matrix = run.profile.access_matrix
    if not matrix or run.ctx.adapter is None:
        run.add("access.vertical", "Vertical access not tested (the profile has no access_matrix)",
                status=Status.skipped, severity=Severity.info, indicator=INDICATOR_ACCESS)
        return None
    resources = run.resources()
    cells: list[dict[str, Any]] = []
    for role in matrix:
        acct = run.first_of_role(role)
        if acct is None:
            continue
        for res in resources:
            if res not in matrix[role]:
                continue
            run.ctx.check_cancelled()
            cells += _role_resource(run, role, acct, res)
    return {"matrix": {"roles": list(matrix), "resources": resources, "actions": list(ACTIONS), "cells": cells}}


def _cell(run: AccessRun, role: str, res: str, action: str, expected: str | None, observed: str,
          ex: Any, note: str = "") -> dict[str, Any]:
    fid = f"access.vertical.{role}.{res}.{action}"
    base = dict(indicator=INDICATOR_ACCESS, references=refs("API5", "CWE-285"))
    ev = [ex.evidence(200, expected=expected or "?", observed=observed + (f" ({note})" if note else ""))] if ex is not None else []
    if expected is None or observed in ("error", "unknown", "skipped"):
        status = "skipped" if observed == "skipped" or expected is None else "error"
        run.add(fid, f"{role} {action} {res}: {observed}" + (f" ({note})" if note else ""),
                status=Status.skipped if status == "skipped" else Status.error, severity=Severity.info,
                evidence=ev, **base)
    elif expected == observed:
        status = "pass"
        run.add(fid, f"{role} may {'' if expected == 'allow' else 'not '}{action} {res}, as expected",
                status=Status.passed, severity=Severity.high if expected == "deny" else Severity.low, evidence=ev, **base)
    elif expected == "deny":
        status = "fail"
        sev = Severity.high if action in ("create", "update", "delete") else Severity.medium
        run.add(fid, f"{role} can {action} {res} although the access matrix denies it", status=Status.failed,
                severity=sev, evidence=ev, **base,
                remediation=f"Enforce the role check for {action} on {res} on the server, for every role.")
    else:
        status = "fail"
        run.add(fid, f"{role} cannot {action} {res} although the access matrix allows it", status=Status.failed,
                severity=Severity.low, evidence=ev, **base,
                remediation="Either grant the action to the role or correct the expected access matrix.")
    return {"role": role, "resource": res, "action": action, "expected": expected, "observed": observed,
            "status": status, "mismatch": status == "fail"}


def _role_resource(run: AccessRun, role: str, acct: Account, res: str) -> list[dict[str, Any]]:
    adapter = run.ctx.adapter
    assert adapter is not None
    rule = lambda a: run.rule(role, res, a)  # noqa: E731
    out: list[dict[str, Any]] = []
    if not run.ctx.allow_writes:
        items, ex = adapter.list(res, acct.name, limit=1)
        v = verdict(ex) if rule("list") == "allow" else run.expect_deny(ex, f"{role} list {res}")
        out.append(_cell(run, role, res, "list", rule("list"), v, ex))
        for a in ("read", "create", "update", "delete"):
            out.append(_cell(run, role, res, a, rule(a), "skipped", None, "writes not allowed"))
        return out
    # create (own record of the role)
    rec, cex = run.create(res, acct)
    created = rec is not None
    if rule("create") == "deny":
        cv = "allow" if created else run.expect_deny(cex, f"{role} create {res}")
    else:
        cv = "allow" if created else verdict(cex) if verdict(cex) != "allow" else "unknown"
    out.append(_cell(run, role, res, "create", rule("create"), cv, cex))
    owner = acct
    if rec is None:
        owner_acct = run.writer(res, acct.tenant)
        if owner_acct is None:
            for a in ("list", "read", "update", "delete"):
                out.append(_cell(run, role, res, a, rule(a), "skipped", None, "no account can create a record"))
            return out
        owner = owner_acct
        rec, _ = run.create(res, owner)
    rid = adapter.record_id(rec) if rec else None
    # list
    items, lex = adapter.list(res, acct.name, limit=1)
    lv = verdict(lex) if rule("list") == "allow" else run.expect_deny(lex, f"{role} list {res}")
    note = ""
    if lv == "allow" and rule("list") == "deny" and not items:
        lv, note = "deny", "answered 2xx with an empty list"  # filtering everything out is a way to deny
    out.append(_cell(run, role, res, "list", rule("list"), lv, lex, note))
    if rid is None:
        for a in ("read", "update", "delete"):
            out.append(_cell(run, role, res, a, rule(a), "skipped", None, "no record to act on"))
        return out
    # read
    got, rex = adapter.read(res, rid, acct.name)
    rv = verdict(rex) if rule("read") == "allow" else run.expect_deny(rex, f"{role} read {res}")
    note = ""
    if rv == "allow" and (got is None or str(adapter.record_id(got)) != str(rid)):
        rv, note = ("unknown", "2xx without the record") if rule("read") == "allow" else ("deny", "2xx without the record")
    out.append(_cell(run, role, res, "read", rule("read"), rv, rex, note))
    # update
    body = adapter.update_body(res, rid)
    before, _ = adapter.read(res, rid, owner.name)
    _, uex = adapter.update(res, rid, acct.name, body)
    uv = verdict(uex) if rule("update") == "allow" else run.expect_deny(uex, f"{role} update {res}")
    note = ""
    if uv == "allow" and rule("update") == "deny":
        after, _ = adapter.read(res, rid, owner.name)
        if update_took_effect(body, before, after) is False:
            uv, note = "deny", "answered 2xx but the record did not change"
    out.append(_cell(run, role, res, "update", rule("update"), uv, uex, note))
    # delete
    dex = run.delete(res, rid, acct.name)
    dv = verdict(dex) if rule("delete") == "allow" else run.expect_deny(dex, f"{role} delete {res}")
    note = ""
    if dv == "allow" and rule("delete") == "deny":
        still, sex = adapter.read(res, rid, owner.name)
        if still is not None:
            dv, note = "deny", "answered 2xx but the record still exists"
    out.append(_cell(run, role, res, "delete", rule("delete"), dv, dex, note))
    return out
