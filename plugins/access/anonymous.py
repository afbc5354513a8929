"""Anonymous access: every resource endpoint and every OpenAPI path without credentials.

Reads go to list and item paths (item ids are the audit's own records); writes go only to
the adapter's resources, on the audit's own records. OpenAPI paths whose parameters cannot
be filled with an own record are skipped (unless ``read_others``), as are auth, health and
documentation endpoints and the profile's ``public_paths``.
"""

from __future__ import annotations

import re
from typing import Any

from crm_audit.model import Evidence, Severity, Status

from .common import INDICATOR_ACCESS, AccessRun, refs, slug

_PUBLIC = re.compile(r"(?i)(^|/)(auth|login|logout|signin|signup|register|token|refresh|health|healthz|ping|"
                     r"status|openapi|swagger|redoc|docs|schema|forgot-password|reset-password|"
                     r"resend-activation-link|activate)(/|\.|$)")
_PARAM = re.compile(r"\{[^}]+\}")
ANON_FIX = "Require authentication on every non-public endpoint (deny by default)."


def _public(run: AccessRun, path: str) -> bool:
    if any(path.rstrip("/") == p.rstrip("/") for p in run.opts.public_paths):
        return True
    return bool(_PUBLIC.search(path))


def check_anonymous(run: AccessRun) -> None:
    """No resource or API path may answer 2xx without credentials."""
    adapter = run.ctx.adapter
    t = run.ctx.target
    covered: set[str] = set()
    records: dict[str, Any] = {}
    for res in run.resources():
        run.ctx.check_cancelled()
        rc = adapter.resource(res)
        covered.add(rc.path.rstrip("/"))
        hits: list[Evidence] = []
        tried: list[str] = []
        ex = t.request("GET", rc.path, auth=False)
        tried.append(f"GET {rc.path}: {ex.status}")
        if run.expect_deny(ex, f"anonymous list {res}") == "allow" and has_data(ex.json_or_none()):
            hits.append(ex.evidence(200, expected="401/403", observed=f"{ex.status} without credentials"))
        owner = run.writer(res, None) if run.ctx.allow_writes else None
        rec = run.own_record(res, owner, key="anonymous") if owner else None
        rid = adapter.record_id(rec) if rec else None
        if rid is not None:
            records[res] = rid
            item = adapter.item_path(res, rid)
            covered.add(_PARAM.sub("{}", (rc.item_path or rc.path.rstrip("/") + "/{id}")).rstrip("/"))
            ex = t.request("GET", item, auth=False)
            tried.append(f"GET {item}: {ex.status}")
            if run.expect_deny(ex, f"anonymous read {res}") == "allow" and run.ctx.tag in ex.text:
                hits.append(ex.evidence(200, expected="401/403", observed=f"{ex.status} without credentials"))
            ex = t.request(rc.update_method, item, auth=False, json=adapter.update_body(res, rid))
            tried.append(f"{rc.update_method} {item}: {ex.status}")
            if run.expect_deny(ex, f"anonymous update {res}") == "allow":
                hits.append(ex.evidence(200, expected="401/403", observed=f"{ex.status} without credentials"))
            ex = run.delete(res, rid, None)
            tried.append(f"DELETE {item}: {ex.status}")
            if run.expect_deny(ex, f"anonymous delete {res}") == "allow":
                hits.append(ex.evidence(200, expected="401/403", observed=f"{ex.status} without credentials"))
        if run.ctx.allow_writes:
            body = adapter.resource(res).create
            ex = t.request("POST", rc.path, auth=False, json={**_filled(run, body), **(
                {adapter.config.tag_field: [run.ctx.tag]} if adapter.config.tag_field else {})})
            tried.append(f"POST {rc.path}: {ex.status}")
            if run.expect_deny(ex, f"anonymous create {res}") == "allow":
                hits.append(ex.evidence(200, expected="401/403", observed=f"{ex.status} without credentials"))
                made = ex.json_or_none()
                mid = adapter.record_id(made) if isinstance(made, dict) else None
                if mid is not None:
                    run.ctx.defer(f"delete anonymous {res}/{mid}", lambda r=res, m=mid: run.cleanup(r, m, None))
        _report(run, f"access.anonymous.{res}", res, hits, tried)
    _openapi(run, covered, records)


def has_data(data: Any) -> bool:
    """True when a JSON answer carries something (a 200 with an empty list leaks nothing)."""
    if isinstance(data, list):
        return bool(data)
    if isinstance(data, dict):
        return any(has_data(v) if isinstance(v, (list, dict)) else v not in (None, "", 0, False)
                   for v in data.values())
    return False


def _filled(run: AccessRun, body: dict) -> dict:
    from crm_audit.adapter import fill
    return fill(body, tag=run.ctx.tag, n=0)


def _report(run: AccessRun, fid: str, what: str, hits: list[Evidence], tried: list[str]) -> None:
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API2", "API5", "CWE-306", "CWE-862"),
                              remediation=ANON_FIX)
    if hits:
        run.add(fid, f"{what}: answers without credentials", status=Status.failed, severity=Severity.critical,
                evidence=hits, **kw)
    else:
        ev = Evidence(request="; ".join(tried)[:500], expected="401/403")
        run.add(fid, f"{what}: requires authentication", status=Status.passed, severity=Severity.critical,
                evidence=[ev], **kw)


def _openapi(run: AccessRun, covered: set[str], records: dict[str, Any]) -> None:
    """Anonymous GET of every documented path not already covered by the resources."""
    adapter = run.ctx.adapter
    if adapter is None or not hasattr(adapter, "openapi_paths"):
        return
    paths = sorted({p for m, p in adapter.openapi_paths() if m == "GET"})
    n = 0
    for path in paths:
        if n >= run.opts.max_openapi_paths:
            break
        norm = _PARAM.sub("{}", path).rstrip("/")
        if norm in covered or _public(run, path):
            continue
        concrete = _concrete(run, path, records)
        if concrete is None:
            continue
        n += 1
        ex = run.ctx.target.request("GET", concrete, auth=False)
        hits = []
        if run.expect_deny(ex, "anonymous GET") == "allow" and has_data(ex.json_or_none()):
            hits.append(ex.evidence(200, expected="401/403", observed=f"{ex.status} without credentials"))
        _report(run, f"access.anonymous.{slug(norm.replace('{}', 'id'))}", f"GET {path}", hits,
                [f"GET {concrete}: {ex.status}"])


def _concrete(run: AccessRun, path: str, records: dict[str, Any]) -> str | None:
    """The path with its parameters filled from the audit's own records, or None."""
    params = _PARAM.findall(path)
    if not params:
        return path
    adapter = run.ctx.adapter
    norm = _PARAM.sub("{}", path).rstrip("/")
    for res, rid in records.items():
        if norm == adapter.resource(res).path.rstrip("/") + "/{}":  # exactly the item path of an own record
            return _PARAM.sub(str(rid), path)
    if run.opts.read_others:
        return _PARAM.sub("1", path)
    return None
