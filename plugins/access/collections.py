"""Unbounded collections (OWASP API4): a page size the API ignores, or a large answer with no paging at all.

For each discovered collection that a caller could read (the most privileged first), one more
request asks for a single item per page — through ``adapter.list(limit=1)`` for the adapter's
resources, else the operation with the adapter's page-size parameter set to 1 — and compares
its arrays of records with the default answer discovery already holds. The page size is
honoured when an array that held several records shrank to at most one; it is ignored when none
of them did. An answer that shows no paging at all (no ``total``, ``next``, ``per_page`` …) is
judged only on arrays holding every record of one of the adapter's resources (``/api/dashboard/``
→ ``contacts``: as many as the contacts list itself showed, two or more); aggregates and short
"recent" lists are not collections to page. A collection whose default answer holds at most one
record cannot show it and is left out (named in the title).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_audit.core.adapter import Adapter, Operation
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.target import Exchange

from .answers import collection_stem, records_of
from .common import INDICATOR_HARDENING, AccessRun, refs, slug
from .discovery import ANONYMOUS, RETRY_HINT, Surface, discovered_surface

FID = "access.collections.page_size_ignored"
FIX = ("Page every collection on the server: honour the page-size parameter, cap it (e.g. 100), and apply a "
       "default page size when the caller sends none; never return a whole table in one answer.")


def page_args(adapter: Adapter, size: int) -> dict[str, Any]:
    """The arguments that ask an operation for ``size`` items per page, in the adapter's own parameter names.

    Read from the profile's ``adapter:`` section as given (``raw_config``, part of the Adapter contract), with
    the documented defaults (docs/profile.md, "adapter.pagination"): a ``pagination`` section (REST) names
    its style and parameters; otherwise ``limit_param`` / ``offset_param`` (JSON-RPC), else limit/offset."""
    cfg = adapter.raw_config if isinstance(adapter.raw_config, Mapping) else {}
    pagination = cfg.get("pagination")
    if isinstance(pagination, Mapping):  # REST: the profile's adapter.pagination
        style = pagination.get("style") or "limit_offset"
        if style == "page":
            return {pagination.get("page_size_param") or "page_size": size,
                    pagination.get("page_param") or "page": pagination.get("first_page", 1)}
        if style == "limit_offset":
            return {pagination.get("limit_param") or "limit": size, pagination.get("offset_param") or "offset": 0}
        return {}
    return {cfg.get("limit_param") or "limit": size, cfg.get("offset_param") or "offset": 0}


def arrays(data: Any, path: str = "", depth: int = 0) -> dict[str, int]:
    """Path → length of every array of records (objects with an ``id``, or an empty array) in an answer, not
    inside records, three levels deep; lists of choices, buckets and placeholders (no ids) are left out."""
    out: dict[str, int] = {}
    if depth > 3:
        return out
    if isinstance(data, list):
        first = next((d for d in data if isinstance(d, dict)), None)
        if not data or (first is not None and any(str(k).lower() in ("id", "uuid", "pk") for k in first)):
            out[path or "[]"] = len(data)  # an empty list may be an empty page of records
        return out
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(arrays(v, f"{path}.{k}" if path else str(k), depth + 1))
    return out


def main_arrays(op: Operation, found: dict[str, int]) -> dict[str, int]:
    """The arrays that are the collection's own records: those named after it (``/api/tasks/`` → ``tasks``,
    ``contacts`` → ``contact_obj_list``), else every array (a dashboard's ``contacts``, ``leads`` …)."""
    stem = collection_stem(op)
    named = {k: n for k, n in found.items() if stem and stem in k.rsplit(".", 1)[-1].lower()}
    return named or found


#: keys that show an answer is one page of a longer collection (a bare count or total does not)
_PAGING_KEYS = frozenset({"next", "previous", "prev", "limit", "offset", "page", "per_page", "page_size",
                          "page_number", "has_more", "num_pages", "total_pages", "next_page", "cursor"})


def paged(body: Any) -> bool:
    """True when an answer says it is a page: ``next``, ``limit``, ``per_page`` … at its top, or in a nested
    object that holds a list too (``{"documents_active": {"next": …, "documents_active": […]}}``)."""
    if not isinstance(body, dict):
        return False
    keys = set(body) | {k for v in body.values() if isinstance(v, dict) and any(isinstance(x, list)
                                                                                 for x in v.values()) for k in v}
    return bool({str(k).lower() for k in keys} & _PAGING_KEYS)


def every_record(run: AccessRun, surface: Surface, caller: str | None, found: dict[str, int]) -> dict[str, int]:
    """The arrays of an unpaged answer that hold every record of one of the adapter's resources: named after it
    and at least as long as that resource's own (paged) list answered the same caller (two records or more)."""
    out: dict[str, int] = {}
    for col in surface.collections:
        if not col.resource or col.action != "list":
            continue
        ex = surface.answer(caller, col)
        if ex is None or run.outcome(ex) != "allowed":
            continue
        seen = len(records_of(col, _body(ex)))
        stem = collection_stem(col)
        for key, n in found.items():
            if stem and stem in key.rsplit(".", 1)[-1].lower() and n >= max(2, seen):
                out[key] = n
    return out


def _failed_answers(run: AccessRun, surface: Surface) -> list[Exchange]:
    """Discovery's collection answers that got no usable answer (no status, 5xx, an error in the body)."""
    return [ex for op in surface.collections for caller in surface.callers
            if (ex := surface.answer(caller, op)) is not None and run.outcome(ex) in ("error", "unknown")
            and ex.not_assessed is not None]


def _caller(surface: Surface, op: Operation) -> str | None:
    """The first caller (most privileged first) whose default answer of ``op`` was allowed."""
    for caller in surface.callers:
        if surface.reach.get(caller, {}).get(op.name) == "allowed":
            return caller
    return None


def _one_per_page(run: AccessRun, op: Operation, caller: str | None) -> Exchange:
    adapter = run.ctx.adapter
    assert adapter is not None
    if op.resource and op.action == "list":
        return adapter.list(op.resource, caller, limit=1)[1]
    return adapter.call(op, page_args(adapter, 1), caller)[1]


def _body(ex: Exchange) -> Any:
    data = ex.json_or_none()
    return data.get("result") if isinstance(data, dict) and "jsonrpc" in data else data


def check_collections(run: AccessRun) -> None:
    """Ask each readable collection for one item per page; a page size ignored is a finding, with the sizes."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API4", "CWE-770"), remediation=FIX)
    adapter = run.ctx.adapter
    if adapter is None:
        run.skip(FID, "Collection paging not tested (no adapter)", NotAssessed.not_configured,
                 "describe the CRM under adapter: in the profile", **kw)
        return
    surface = discovered_surface(run)
    hits: list[tuple[Operation, Evidence, int]] = []
    judged: list[str] = []
    small: list[str] = []
    silent: list[Exchange] = []
    for op in surface.collections:
        caller = _caller(surface, op)
        default = surface.answer(caller, op) if caller else None
        body = _body(default) if default is not None else None
        if op.resource or paged(body):
            full = main_arrays(op, arrays(body))
        else:  # no paging at all: judged only where it returns every record of one of the adapter's resources
            full = every_record(run, surface, caller, arrays(body))
        if not full:
            continue  # not a list of records (a status, the own user, an aggregate …): nothing to page
        if max(full.values()) <= 1:
            small.append(op.name)
            continue
        run.ctx.check_cancelled()
        if run.ctx.target.budget_left < run.opts.surface_budget_reserve:
            break
        who = None if caller == ANONYMOUS else caller
        ex = _one_per_page(run, op, who)
        if run.outcome(ex) != "allowed" or ex.json_or_none() is None:
            silent.append(ex)
            continue
        one = {k: n for k, n in arrays(_body(ex)).items() if k in full}
        judged.append(op.name)
        many = [k for k, n in full.items() if n > 1]
        if any(one.get(k, 0) <= 1 for k in many) or not any(one.get(k, 0) > 1 for k in many):
            continue  # an array that held several records was paged down to one (or is gone)
        big = max(many, key=lambda k: one.get(k, 0))
        assert default is not None  # without a default answer ``full`` is empty and the loop moved on above
        sizes = {"default": {"items": full[big], "bytes": len(default.body)},
                 "one_per_page": {"items": one[big], "bytes": len(ex.body)}}
        ev = ex.evidence(0, expected="at most 1 item when 1 is asked for",
                         observed=f"{one[big]} items in {big} ({len(ex.body)} bytes); the default answer held "
                                  f"{sizes['default']['items']} ({len(default.body)} bytes)",
                         details={"operation": op.name, "array": big, "sizes": sizes, "account": caller})
        hits.append((op, ev.model_copy(update={"excerpt": None}), len(ex.body)))
    for op, ev, size in hits:
        severity = Severity.high if size >= run.opts.large_collection_bytes else Severity.medium
        run.add(f"{FID}.{slug(op.name)}", f"{op.name} ignores the page size: {ev.details['sizes']['one_per_page']['items']} "
                f"items ({size} bytes) when 1 was asked for", status=Status.failed, severity=severity, evidence=[ev],
                **kw)
    if hits:
        return
    note = f"; too few records to tell: {', '.join(small)}" if small else ""
    if judged:
        run.add(FID, f"{len(judged)} collection(s) honour a page size of 1{note}", status=Status.passed,
                severity=Severity.medium, evidence=[Evidence(request="; ".join(judged)[:500],
                                                             expected="at most 1 item per page")], **kw)
    elif silent or (failed := _failed_answers(run, surface)):
        run.unassessed(FID, f"Collections honour the page size{note}", (silent or failed)[0],
                       severity=Severity.medium, hint=RETRY_HINT, **kw)
    else:
        run.skip(FID, f"Collection paging not tested: no readable collection with more than one record{note}",
                 NotAssessed.not_applicable, "seed at least two records in a collection an account may read",
                 severity=Severity.medium, **kw)
