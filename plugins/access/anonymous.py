"""Anonymous access: every resource endpoint and every OpenAPI path without credentials.

Reads go to list and item paths (item ids are the audit's own records); writes go only to
the adapter's resources, on the audit's own records. The resources are checked a few at a
time (``surface_workers``); a collection surface discovery already called anonymously is
judged on that answer, not asked again. OpenAPI paths whose parameters cannot
be filled with an own record are skipped (unless ``read_others``), as are auth, health and
documentation endpoints and the profile's ``public_paths``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from crm_audit.core.adapter import Operation
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.target import Exchange

from .common import HINT_WRITES, INDICATOR_ACCESS, AccessRun, Tally, json_body, refs, slug, update_took_effect
from .persisted import (
    after_denied_create,
    after_denied_delete,
    after_denied_update,
    create_number,
    find_created,
    remove,
)

_PUBLIC = re.compile(r"(?i)(^|/)(auth|login|logout|signin|signup|register|token|refresh|health|healthz|ping|"
                     r"status|openapi|swagger|redoc|docs|schema|forgot-password|reset-password|"
                     r"resend-activation-link|activate)(/|\.|$)")
_PARAM = re.compile(r"\{[^}]+\}")
ANON_FIX = "Require authentication on every non-public endpoint (deny by default)."


def _public(run: AccessRun, path: str) -> bool:
    if any(path.rstrip("/") == p.rstrip("/") for p in run.opts.public_paths):
        return True
    return bool(_PUBLIC.search(path))


def _judge(run: AccessRun, seen: Tally, ex: Exchange, context: str, leaked: Callable[[Exchange], bool | None]) -> None:
    """A hit when an allowed answer leaked (``leaked`` True), nothing on a real denial or a harmless one;
    otherwise (no answer, 5xx, an unexpected or unreadable answer) the request is not judged."""
    v = run.expect_deny(ex, context)
    outcome = leaked(ex) if v == "allow" else False if v == "deny" else None
    label = f"{ex.method} {_path(ex)}: {ex.status if ex.answered else ex.error}"
    hit = ex.evidence(200, expected="denied", observed=f"{ex.status} without credentials") if outcome else None
    seen.record(label, ex if outcome is None else hit)


def _path(ex: Exchange) -> str:
    return urlsplit(ex.url).path


def _listed(ex: Exchange) -> bool | None:
    """A 2xx list leaks when it carries data; None when it cannot be read."""
    data = json_body(ex)
    return None if data is None else has_data(data)


def _asked(run: AccessRun, name: str) -> Exchange | None:
    """The answer surface discovery already got for operation ``name`` without credentials (same request), if
    the surface was built and that request was answered: each anonymous collection call is sent once per run."""
    surface = run.notes.get("surface")
    ex = surface.answer(None, name) if surface is not None else None
    return ex if ex is not None and ex.answered else None


def check_anonymous(run: AccessRun) -> None:
    """No resource or discovered read operation may be allowed without credentials."""
    adapter = run.ctx.adapter
    if adapter is None:
        run.skip("access.anonymous", "Anonymous access not tested (no adapter)", NotAssessed.not_configured,
                 "describe the CRM's resources under adapter: in the profile", indicator=INDICATOR_ACCESS,
                 references=refs("API2", "API5", "CWE-306"))
        return
    records: dict[str, Any] = {}
    resources = run.resources()

    def one(res: str) -> Tally:
        run.ctx.check_cancelled()
        return _resource(run, res, records)

    # the resources are independent: a few at a time (surface_workers); reported in the resources' order
    with ThreadPoolExecutor(max_workers=max(1, min(run.opts.surface_workers, len(resources) or 1)),
                            thread_name_prefix="anonymous") as pool:
        tallies = list(pool.map(one, resources))
    for res, seen in zip(resources, tallies):
        _report(run, f"access.anonymous.{res}", res, seen)
    _discovered(run, {res: records[res] for res in resources if res in records})


def _resource(run: AccessRun, res: str, records: dict[str, Any]) -> Tally:
    """List, and (with writes) read/update/delete of an own record and create, all without credentials."""
    adapter = run.ctx.adapter
    assert adapter is not None  # check_anonymous returns before this without an adapter
    seen = Tally()
    lex = _asked(run, f"{res}.list") or adapter.list(res, None, limit=50)[1]
    _judge(run, seen, lex, f"anonymous list {res}", _listed)
    owner = run.writer(res, None) if run.ctx.allow_writes else None
    if not run.ctx.allow_writes:
        seen.untested.append(("records", NotAssessed.safety, HINT_WRITES))
    elif owner is None:
        seen.untested.append(("records", NotAssessed.needs_account, f"add a general account whose role may create "
                                                                    f"{res} (access_matrix create: allow)"))
    else:
        rec, cex = run.own_record(res, owner, key="anonymous")
        rid = adapter.record_id(rec) if rec else None
        if rid is None:
            seen.silent.append(cex)
        else:
            records[res] = rid
            got, rex = adapter.read(res, rid, None)
            _judge(run, seen, rex, f"anonymous read {res}", lambda ex: adapter.has_tag(res, got, run.ctx.tag)
                   or run.ctx.tag in ex.text)
            _writes(run, seen, res, rid, owner.name)
        n = create_number()
        made, ex = adapter.create(res, None, run.ctx.tag, n=n)
        mid = adapter.record_id(made) if made is not None else None
        if mid is not None:
            run.ctx.defer(f"delete anonymous {res}/{mid}", partial(run.cleanup, res, mid, None))
        _judge(run, seen, ex, f"anonymous create {res}", lambda ex: _stored(run, res, n, made))
        after_denied_create(run, res, n, ex, f"anonymous create {res}")
    return seen


def _writes(run: AccessRun, seen: Tally, res: str, rid: Any, owner: str) -> None:
    """Anonymous update and delete of an own record, each judged by its effect as the owner re-reads it
    (an allowed answer that changed nothing leaks nothing; a refusal that changed something persisted)."""
    adapter = run.ctx.adapter
    assert adapter is not None  # called from _resource, which runs only with an adapter
    body = adapter.update_changes(res, rid)
    before, _ = adapter.read(res, rid, owner)
    _, uex = adapter.update(res, rid, None, body)
    _judge(run, seen, uex, f"anonymous update {res}", lambda ex: _changed(run, res, rid, owner, body, before))
    after_denied_update(run, res, rid, owner, body, before, uex, f"anonymous update {res}")
    dex = run.delete(res, rid, None)
    _judge(run, seen, dex, f"anonymous delete {res}", lambda ex: _gone(run, res, rid, owner))
    after_denied_delete(run, res, rid, owner, dex, f"anonymous delete {res}")


def _changed(run: AccessRun, res: str, rid: Any, owner: str, body: dict[str, Any],
             before: dict[str, Any] | None) -> bool | None:
    """The owner's re-read shows the anonymous change (None: it cannot tell)."""
    adapter = run.ctx.adapter
    assert adapter is not None  # called from _writes, which runs only with an adapter
    after, _ = adapter.read(res, rid, owner)
    return update_took_effect(body, before, after) if body else None


def _gone(run: AccessRun, res: str, rid: Any, owner: str) -> bool | None:
    """The owner's re-read shows the record deleted (None: it cannot tell)."""
    adapter = run.ctx.adapter
    assert adapter is not None  # called from _writes, which runs only with an adapter
    still, sex = adapter.read(res, rid, owner)
    return False if still is not None else True if run.outcome(sex) == "not_found" else None


def _stored(run: AccessRun, res: str, n: int, made: dict[str, Any] | None) -> bool | None:
    """An allowed anonymous create leaks when a record was stored: returned, or found by tag and number
    (and then removed); None when the search could not finish."""
    if made is not None:
        return True
    found = find_created(run, res, [n])
    if isinstance(found, Exchange):
        return None
    remove(run, res, found)
    return bool(found)


def has_data(data: Any) -> bool:
    """True when a JSON answer carries something (a 200 with an empty list leaks nothing)."""
    if isinstance(data, list):
        return bool(data)
    if isinstance(data, dict):
        return any(has_data(v) if isinstance(v, (list, dict)) else v not in (None, "", 0, False)
                   for v in data.values())
    return False


def _report(run: AccessRun, fid: str, what: str, seen: Tally) -> None:
    seen.report(run, fid, what=f"{what}: anonymous access", bad=f"{what}: answers without credentials",
                good=f"{what}: requires authentication", severity=Severity.critical,
                good_evidence=[Evidence(request="; ".join(seen.judged)[:500], expected="401/403")],
                indicator=INDICATOR_ACCESS, references=refs("API2", "API5", "CWE-306", "CWE-862"), remediation=ANON_FIX)


def _discovered(run: AccessRun, records: dict[str, Any]) -> None:
    """Anonymous call of every safe operation the CRM describes that the resource checks did not cover."""
    adapter = run.ctx.adapter
    assert adapter is not None  # check_anonymous returns before this without an adapter
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API2", "API5", "API9", "CWE-306"),
                              remediation=ANON_FIX, severity=Severity.critical)
    surface = run.notes.get("surface")
    found = surface.discovery if surface is not None and surface.discovery is not None else adapter.discover()
    if found.source is not None and not found.described:
        ex = found.exchange
        run.add("access.anonymous.openapi", f"Described operations not tested anonymously (not assessed: "
                f"{found.source} could not be read: {ex.error or ex.status if ex is not None else 'not fetched'})",
                status=Status.error, not_assessed=(ex.not_assessed if ex is not None else None)
                or NotAssessed.request_failed,
                hint=f"check the adapter's API description ({found.source}); the REST adapter fetches it as "
                     "adapter.openapi_account (default: anonymously)", **kw)
        return
    n = 0
    capped: list[str] = []
    unfilled: list[str] = []
    reads = {o.resource: o for o in found.operations if o.resource and o.action == "read"}
    for op in found.operations:
        if not op.safe or op.resource is not None or _public(run, op.path or op.name):
            continue  # writes are tried only on the adapter's resources; those are covered above
        args = _args(run, op, records, reads)
        if args is None:
            unfilled.append(op.name)
            continue
        if n >= run.opts.max_openapi_paths:
            capped.append(op.name)
            continue
        n += 1
        seen = Tally()
        ex = (_asked(run, op.name) if not args else None) or adapter.call(op, args, None)[1]
        _judge(run, seen, ex, f"anonymous {op.name}", _listed)
        norm = _PARAM.sub("{}", op.path).rstrip("/") if op.path else op.name
        _report(run, f"access.anonymous.{slug(norm.replace('{}', 'id'))}", op.name, seen)
    if unfilled:
        hint = ("set plugins.access.read_others: true to try them with id 1" if run.ctx.allow_writes else
                HINT_WRITES + " (ids come from the audit's own records), or set plugins.access.read_others: true")
        run.skip("access.anonymous.openapi_unfilled", f"{len(unfilled)} described operation(s) with parameters not "
                 f"tested anonymously (no own record to fill them): {', '.join(unfilled[:5])}",
                 NotAssessed.not_configured if run.ctx.allow_writes else NotAssessed.safety, hint, **kw)
    if capped:
        run.skip("access.anonymous.openapi_capped", f"{len(capped)} described operation(s) beyond "
                 f"max_openapi_paths={run.opts.max_openapi_paths} not tested anonymously", NotAssessed.audit_limit,
                 f"raise plugins.access.max_openapi_paths to at least {n + len(capped)}", **kw)


def _args(run: AccessRun, op: Operation, records: dict[str, Any], reads: dict[str, Operation]) -> dict[str, Any] | None:
    """Arguments for an operation's parameters from the audit's own records (the operation reads one of
    them by id), or None."""
    if not op.params:
        return {}
    norm = _PARAM.sub("{}", op.path or op.name).rstrip("/")
    for res, rid in records.items():
        read = reads.get(res)
        if read is not None and len(op.params) == 1 and norm == _PARAM.sub("{}", read.path or read.name).rstrip("/"):
            return {op.params[0]: rid}
    if run.opts.read_others:
        return {p: 1 for p in op.params}
    return None
