"""Refused but persisted: every write the access checks see refused is confirmed by re-reading state.

A CRM that answers 401/403/404 (or a denial in a 200 body) and saves the change anyway is
worse than one that says yes: the caller, the log and the audit all believe nothing happened.
After each denied create, update or delete the checks call one of the ``after_denied_*``
helpers here; they re-read as the record's owner or the most privileged account of each
tenant and remember what persisted. A create that persisted is found by the run tag and the
create's own unique number (no id is needed from the refusal): the refused creates of a
resource are looked for in one sweep when the probe reports, and what they stored is removed.
:func:`report_persisted` turns what was seen into one finding per resource.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from crm_audit.core.adapter import Caller, IncompleteRead, flat
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .common import INDICATOR_ACCESS, AccessRun, refs, update_took_effect

FIX = ("Decide authorization before any write and inside the same transaction; a refused request must "
       "leave no row, change or deletion behind (check the order of permission checks and saves, "
       "signals and hooks that write before the view refuses).")
#: numbers given to creates that may be refused, far from the adapters' own counters
_NUMBERS = itertools.count(9_400_001)


@dataclass
class _Seen:
    """What the re-reads after the refusals of one resource showed."""

    confirmed: list[str] = field(default_factory=list)
    hits: list[Evidence] = field(default_factory=list)
    cross: bool = False
    silent: list[Exchange] = field(default_factory=list)


def _seen(run: AccessRun, res: str) -> _Seen:
    seen: _Seen = run.notes.setdefault("persisted", {}).setdefault(res, _Seen())
    return seen


def create_number() -> int:
    """A unique number for a create that may be refused (the record carries it beside the run tag)."""
    return next(_NUMBERS)


def refused(run: AccessRun, ex: Exchange) -> bool:
    """True when the answer is a refusal (denied or not found) the checks must confirm by re-reading."""
    return run.outcome(ex) in ("denied", "not_found")


def after_denied_update(run: AccessRun, res: str, rid: Any, owner: str, body: dict[str, Any], before: dict[str, Any] | None,
                        ex: Exchange, context: str, cross_tenant: bool = False) -> None:
    """Re-read the record as its owner after a refused update: the change must not be there."""
    if not refused(run, ex) or not body:
        return
    seen = _seen(run, res)
    adapter = run.ctx.adapter
    assert adapter is not None  # only reached after a write the adapter sent (its callers check for one)
    after, aex = adapter.read(res, rid, owner)
    for obs in observers(run) if after is None and cross_tenant else ():  # it may have moved to another tenant
        if obs.name != owner and after is None:
            after, _ = adapter.read(res, rid, obs.name)
    if after is None:
        if run.outcome(aex) != "not_found":
            seen.silent.append(aex)
        return
    if update_took_effect(body, before, after):
        seen.hits.append(ex.evidence(200, expected="refused and unchanged",
                                     observed=f"{ex.status}: {context}, yet the record changed"))
        seen.cross |= cross_tenant
    else:
        seen.confirmed.append(context)


def after_denied_delete(run: AccessRun, res: str, rid: Any, owner: str, ex: Exchange, context: str,
                        cross_tenant: bool = False) -> None:
    """Re-read the record as its owner after a refused delete: it must still exist."""
    if not refused(run, ex):
        return
    seen = _seen(run, res)
    adapter = run.ctx.adapter
    assert adapter is not None  # only reached after a write the adapter sent (its callers check for one)
    still, sex = adapter.read(res, rid, owner)
    if still is not None:
        seen.confirmed.append(context)
    elif run.outcome(sex) == "not_found":
        seen.hits.append(ex.evidence(200, expected="refused and kept",
                                     observed=f"{ex.status}: {context}, yet the record is gone"))
        seen.cross |= cross_tenant
    else:
        seen.silent.append(sex)


def after_denied_create(run: AccessRun, res: str, n: int, ex: Exchange, context: str,
                        cross_tenant: bool = False) -> None:
    """Remember a refused create (made with number ``n``); :func:`report_persisted` looks for all of a
    resource's at once (:func:`find_created`, one sweep) and deletes what it finds."""
    if not refused(run, ex):
        return
    _seen(run, res)
    pending = run.notes.setdefault("refused_creates", {})
    if not pending:  # Ctrl-C or an error before the report still removes what the refusals stored
        run.ctx.defer("remove records that refused creates stored", lambda: _sweep(run))
    pending.setdefault(res, []).append((n, ex, context, cross_tenant))


def _sweep(run: AccessRun) -> None:
    """Look once per resource for the records the remembered refused creates stored; judge and remove them."""
    pending: dict[str, list[tuple[int, Exchange, str, bool]]] = run.notes.get("refused_creates") or {}
    while pending:
        res, creates = pending.popitem()
        seen = _seen(run, res)
        found = find_created(run, res, [n for n, *_ in creates])
        if isinstance(found, Exchange):
            seen.silent.append(found)
            continue
        for n, ex, context, cross in creates:
            mine = [(rid, who) for rid, who, m in found if m == n]
            if not mine:
                seen.confirmed.append(context)
                continue
            seen.hits.append(ex.evidence(200, expected="refused and not stored",
                                         observed=f"{ex.status}: {context}, yet {res}/{mine[0][0]} was stored"))
            seen.cross |= cross
            remove(run, res, mine)


def find_created(run: AccessRun, res: str, numbers: list[int]) -> list[tuple[Any, str, int]] | Exchange:
    """(id, who sees it, its number) of every record carrying the run tag and one of ``numbers``, looked for
    as the most privileged account of every tenant; the exchange that kept the search from finishing."""
    adapter = run.ctx.adapter
    assert adapter is not None  # only reached after a write the adapter sent (its callers check for one)
    marks = {n: re.compile(rf"(?<!\d){n}(?!\d)") for n in numbers}
    found: list[tuple[Any, str, int]] = []
    for obs in observers(run):
        try:
            records, last = _tagged(run, res, obs.name)
        except IncompleteRead as exc:
            return exc.exchange
        if records is None:
            if last is not None and run.verdict(last) != "deny":
                return last
            continue
        for rec in records:
            rid, text = adapter.record_id(rec), flat(rec)
            n = next((n for n, mark in marks.items() if mark.search(text)), None)
            if rid is not None and n is not None and all(str(rid) != str(r) for r, _, _ in found):
                found.append((rid, obs.name, n))
    return found


def remove(run: AccessRun, res: str, found: list[tuple[Any, str]] | list[tuple[Any, str, int]]) -> None:
    """Delete records a refused (or anonymous) create left; what cannot be deleted is named as left behind."""
    for rid, who, *_ in found:
        try:
            run.cleanup(res, rid, who)
        except RuntimeError as exc:
            run.notes.setdefault("left_behind", []).append(str(exc))


def observers(run: AccessRun) -> list[Account]:
    """The most privileged general account of each tenant (who sees whatever a refused write left)."""
    best: dict[str | None, Account] = {}
    for acct in run.general_accounts():
        cur = best.get(acct.tenant)
        if cur is None or run.privilege(acct.role) > run.privilege(cur.role):
            best[acct.tenant] = acct
    return list(best.values())


def _tagged(run: AccessRun, res: str, who: Caller) -> tuple[list[dict[str, Any]] | None, Exchange | None]:
    """The run's tagged records of ``res`` that ``who`` sees (None when the list was not allowed)."""
    adapter = run.ctx.adapter
    assert adapter is not None  # only reached after a write the adapter sent (its callers check for one)
    tag = run.ctx.tag
    if adapter.supports_tag_filter(res):
        items, ex = adapter.list(res, who, limit=200, tag=tag)
        return (items if run.outcome(ex) == "allowed" else None), ex
    items, ex = adapter.list(res, who, limit=1)
    if run.outcome(ex) != "allowed":
        return None, ex
    return [r for r in adapter.iterate(res, who, max_records=2000) if adapter.has_tag(res, r, tag)], ex


def report_persisted(run: AccessRun) -> None:
    """One finding per resource whose refusals were re-read: fail when a refused write persisted."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API1", "API5", "CWE-284", "CWE-696"),
                              remediation=FIX)
    _sweep(run)
    for res, seen in (run.notes.get("persisted") or {}).items():
        fid = f"access.persisted_on_deny.{res}"
        if seen.hits:
            sev = Severity.critical if seen.cross else Severity.high
            run.add(fid, f"{res}: refused writes were saved anyway ({len(seen.hits)} of "
                    f"{len(seen.hits) + len(seen.confirmed)} re-read)", status=Status.failed, severity=sev,
                    evidence=seen.hits, **kw)
        elif seen.silent:
            run.unassessed(fid, f"{res}: refused writes leave nothing behind", seen.silent[0],
                           severity=Severity.high, **kw)
        elif seen.confirmed:
            run.add(fid, f"{res}: refused writes leave nothing behind ({len(seen.confirmed)} re-read)",
                    status=Status.passed, severity=Severity.high,
                    evidence=[Evidence(request="; ".join(seen.confirmed)[:500], expected="no change after a refusal")],
                    **kw)
    if not run.notes.get("persisted"):
        run.skip("access.persisted_on_deny", "Refused writes not re-read (no write was refused)",
                 NotAssessed.not_applicable, "run the vertical, objects, anonymous and properties checks with "
                 "--allow-writes and an access matrix that denies some writes", severity=Severity.high, **kw)
