"""Unauthenticated metadata: what an anonymous caller learns about the system itself.

Judged on every anonymous answer: the ones surface discovery got for each discovered operation,
the profile's ``metadata_paths`` (REST adapters; GET each once), and an RPC API's method listing
(``system.listMethods`` …, asked only of adapters that call methods by name). A version string
(``version``, ``python``, ``database`` … holding ``1.2``-like text) or a tenant / database /
organisation list in an allowed answer is a finding; so is an answer of any status whose text
names SQL, tables or internal access rules and groups. A public OpenAPI/Swagger document or
method listing alone is reported as an info note, not a failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from crm_audit.core.adapter import Operation
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.target import Exchange

from .common import INDICATOR_HARDENING, AccessRun, refs, slug
from .discovery import ANONYMOUS, LISTING_METHODS, RETRY_HINT, discovered_surface

VERSION_ID = "access.metadata.version"
TENANTS_ID = "access.metadata.tenants"
ERRORS_ID = "access.metadata.errors"
DESCRIPTION_ID = "access.metadata.api_description"
FIX = ("Answer anonymous callers with nothing about the system: no versions, no tenant, database or "
       "organisation lists, no SQL or rule names in errors; put status details behind authentication.")

_VERSION_KEY = re.compile(r"(?i)^(version|server_?version|app_?version|api_?version|product_?version|build|release|"
                          r"python|python_?version|django|django_?version|php|php_?version|node|ruby|java|framework|"
                          r"database|db|db_?version|database_?version|engine|server|server_?info|os|platform)$")
_VERSION_VALUE = re.compile(r"\d+\.\d+")
_TENANT_KEY = re.compile(r"(?i)^(tenants?|tenant_?list|databases|dbs|db_?list|database_?list|organi[sz]ations|"
                         r"companies|schemas|instances)$")
_INTERNALS = re.compile(
    r"(?i)(\bSELECT\b[^\n]{1,200}\bFROM\b|\bINSERT INTO\b|\bUPDATE\b[^\n]{1,80}\bSET\b|syntax error at or near|"
    r"relation \\?\"[^\"\\]+\\?\" does not exist|no such table|no such column|SQLSTATE|ORA-\d{5}|sqlite3\.\w+Error|"
    r"psycopg2?\.|pymysql|IntegrityError|duplicate key value violates|\bir\.rule\b|record rules?\b|"
    r"access rules?\b.{0,40}\bgroups?\b|\bres\.groups\b|permission group|required groups?:)")
_DOC_PATH = re.compile(r"(?i)(openapi|swagger|api-docs|/docs|/schema|redoc)")
_SEVERITY = {VERSION_ID: Severity.low, TENANTS_ID: Severity.medium, ERRORS_ID: Severity.medium}


def _scalars(data: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every key in ``data``, nested dicts and lists followed a bounded depth."""
    if depth > 8:
        return
    if isinstance(data, dict):
        for k, v in data.items():
            sub = f"{path}.{k}" if path else str(k)
            yield sub, str(k), v
            if isinstance(v, (dict, list)):
                yield from _scalars(v, sub, depth + 1)
    elif isinstance(data, list):
        for v in data[:200]:
            yield from _scalars(v, f"{path}[]", depth + 1)


def versions(data: Any) -> list[str]:
    """Field paths that hold a version string (``version: 1.2.3``, ``python: 3.11``)."""
    return [p for p, k, v in _scalars(data) if isinstance(v, str) and _VERSION_KEY.match(k)
            and _VERSION_VALUE.search(v)]


def tenant_lists(data: Any) -> list[str]:
    """Field paths that list tenants, databases or organisations (a non-empty list under such a key)."""
    return [p for p, k, v in _scalars(data) if _TENANT_KEY.match(k) and isinstance(v, list) and v]


def internals(text: str) -> str | None:
    """The first phrase of an answer that names SQL, tables, internal rules or groups; None when none does."""
    m = _INTERNALS.search(text[:100_000])
    return m.group(0)[:80] if m else None


def _anonymous_answers(run: AccessRun) -> list[tuple[str, Exchange]]:
    """(operation, exchange) of every anonymous request: discovery's, then the metadata paths not yet covered."""
    adapter = run.ctx.adapter
    assert adapter is not None
    surface = discovered_surface(run)
    out: list[tuple[str, Exchange]] = []
    seen_paths: set[str] = set()
    for op in surface.collections + surface.items:
        ex = surface.answer(ANONYMOUS, op)
        if ex is not None and not _DOC_PATH.search(op.path or ""):
            out.append((op.name, ex))
        if op.path:
            seen_paths.add(op.path.rstrip("/"))
    for path in run.opts.metadata_paths:
        name = f"GET {path}"
        if path.rstrip("/") in seen_paths or not adapter.offers(name):
            continue
        run.ctx.check_cancelled()
        if run.ctx.target.budget_left < run.opts.surface_budget_reserve:
            break
        out.append((name, adapter.call(Operation(name=name, method="GET", path=path, safe=True), None, None)[1]))
    return out


def _body(ex: Exchange) -> Any:
    data = ex.json_or_none()
    return data.get("result") if isinstance(data, dict) and "jsonrpc" in data else data


def check_metadata(run: AccessRun) -> None:
    """Anonymous answers must not name versions, tenants or internals; a public API description is a note."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-200", "CWE-497"),
                              remediation=FIX)
    if run.ctx.adapter is None:
        for fid in (VERSION_ID, TENANTS_ID, ERRORS_ID):
            run.skip(fid, "Unauthenticated metadata not tested (no adapter)", NotAssessed.not_configured,
                     "describe the CRM under adapter: in the profile", severity=_SEVERITY[fid], **kw)
        return
    answers = _anonymous_answers(run)
    listing = _listing(run)
    if listing is not None:
        answers.append(listing)
    hits: dict[str, list[tuple[str, Evidence]]] = {VERSION_ID: [], TENANTS_ID: [], ERRORS_ID: []}
    judged: dict[str, list[str]] = {VERSION_ID: [], TENANTS_ID: [], ERRORS_ID: []}
    silent: list[Exchange] = []
    for name, ex in answers:
        if not ex.answered or (ex.status or 0) in (502, 503, 504):
            silent.append(ex)
            continue
        phrase = internals(ex.text)
        judged[ERRORS_ID].append(name)
        if phrase:
            hits[ERRORS_ID].append((name, _evidence(ex, name, f"names internals: {phrase!r}")))
        if run.outcome(ex) != "allowed":
            continue
        data = _body(ex)
        for fid, found in ((VERSION_ID, versions(data)), (TENANTS_ID, tenant_lists(data))):
            judged[fid].append(name)
            if found:
                hits[fid].append((name, _evidence(ex, name, f"field(s) {', '.join(found[:6])}")))
    titles = {VERSION_ID: ("shows version strings", "no version strings"),
              TENANTS_ID: ("lists tenants, databases or organisations", "no tenant, database or organisation lists"),
              ERRORS_ID: ("names SQL, tables or internal rules", "no SQL, table or internal rule names")}
    for fid in (VERSION_ID, TENANTS_ID, ERRORS_ID):
        bad, good = titles[fid]
        for name, ev in hits[fid]:
            run.add(f"{fid}.{slug(name)}", f"{name} {bad} to anonymous callers", status=Status.failed,
                    severity=_SEVERITY[fid], evidence=[ev], **kw)
        if hits[fid]:
            continue
        if judged[fid]:
            run.add(fid, f"Anonymous callers get {good} ({len(judged[fid])} answer(s))", status=Status.passed,
                    severity=_SEVERITY[fid], evidence=[Evidence(request="; ".join(judged[fid])[:500],
                                                                expected="nothing about the system")], **kw)
        elif silent:
            run.unassessed(fid, f"Anonymous callers get {good}", silent[0], severity=_SEVERITY[fid], hint=RETRY_HINT, **kw)
        else:
            run.skip(fid, f"Unauthenticated metadata ({good}) not tested: no anonymous answer to read",
                     NotAssessed.not_applicable, "REST: set adapter.openapi or plugins.access.metadata_paths; RPC: "
                     "an adapter that offers the CRM's own methods by name (a method listing such as "
                     f"{LISTING_METHODS[0]}, a status call) lets discovery find what anonymous callers can read",
                     severity=_SEVERITY[fid], **kw)
    _describe(run, listing)


def _evidence(ex: Exchange, name: str, observed: str) -> Evidence:
    return ex.evidence(300, expected="nothing about the system without credentials", observed=observed,
                       details={"operation": name})


def _listing(run: AccessRun) -> tuple[str, Exchange] | None:
    """An RPC method listing asked anonymously (adapters that call methods by name); None for others."""
    adapter = run.ctx.adapter
    assert adapter is not None
    for name in LISTING_METHODS:
        if adapter.offers(name):
            result, ex = adapter.call(name, None, None)
            if run.outcome(ex) in ("allowed", "denied") or name == LISTING_METHODS[-1]:
                return name, ex
    return None


def _describe(run: AccessRun, listing: tuple[str, Exchange] | None) -> None:
    """The info note on the API's own description: public or not (never a failure on its own)."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API9"), severity=Severity.info)
    surface = discovered_surface(run)
    found = surface.discovery
    if found is not None and found.source and found.exchange is not None:
        ex = found.exchange
        who = ex.account or "anonymous callers"
        if found.described:
            run.add(DESCRIPTION_ID, f"API description {found.source} is readable by {who} "
                    f"({sum(o.described for o in found.operations)} described operations; a note, not a flaw)", status=Status.passed,
                    evidence=[ex.evidence(0).model_copy(update={"excerpt": None})], **kw)
        else:
            run.unassessed(DESCRIPTION_ID, f"API description {found.source}", ex, hint=RETRY_HINT, **kw)
        return
    if listing is not None:
        name, ex = listing
        outcome = run.outcome(ex)
        if outcome in ("allowed", "denied", "not_found"):
            state = "answers anonymous callers (a note, not a flaw)" if outcome == "allowed" else \
                "refuses anonymous callers"
            run.add(DESCRIPTION_ID, f"Method listing {name} {state}", status=Status.passed,
                    evidence=[ex.evidence(200 if outcome != "allowed" else 0, details={"operation": name})], **kw)
        else:
            run.unassessed(DESCRIPTION_ID, f"Method listing {name}", ex, hint=RETRY_HINT, **kw)
        return
    run.skip(DESCRIPTION_ID, "API description not checked (the adapter's discover reads no description and it "
             "offers no method listing)", NotAssessed.not_configured,
             "REST: set adapter.openapi to the CRM's OpenAPI/Swagger document; RPC: let the adapter offer the CRM's "
             f"method listing ({', '.join(LISTING_METHODS)}) by name", **kw)
