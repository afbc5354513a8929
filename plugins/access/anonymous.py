"""Anonymous access: every resource endpoint and every OpenAPI path without credentials.

Reads go to list and item paths (item ids are the audit's own records); writes go only to
the adapter's resources, on the audit's own records. OpenAPI paths whose parameters cannot
be filled with an own record are skipped (unless ``read_others``), as are auth, health and
documentation endpoints and the profile's ``public_paths``.
"""

from __future__ import annotations

import re
from typing import Any, Callable
from urllib.parse import urlsplit

from crm_audit.model import Evidence, NotAssessed, Severity, Status
from crm_audit.target import Exchange

from .common import HINT_WRITES, INDICATOR_ACCESS, AccessRun, Tally, json_body, refs, slug

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
    """A hit when a 2xx leaked (``leaked`` True), nothing on a real denial or a harmless 2xx;
    otherwise (no answer, 5xx, an unexpected or unreadable answer) the request is not judged."""
    v = run.expect_deny(ex, context)
    outcome = leaked(ex) if v == "allow" else False if v == "deny" else None
    label = f"{ex.method} {_path(ex)}: {ex.status if ex.answered else ex.error}"
    hit = ex.evidence(200, expected="401/403", observed=f"{ex.status} without credentials") if outcome else None
    seen.record(label, ex if outcome is None else hit)


def _path(ex: Exchange) -> str:
    return urlsplit(ex.url).path


def _listed(ex: Exchange) -> bool | None:
    """A 2xx list leaks when it carries data; None when it cannot be read."""
    data = json_body(ex)
    return None if data is None else has_data(data)


def check_anonymous(run: AccessRun) -> None:
    """No resource or API path may answer 2xx without credentials."""
    adapter = run.ctx.adapter
    if adapter is None:
        run.skip("access.anonymous", "Anonymous access not tested (no adapter)", NotAssessed.not_configured,
                 "describe the CRM's resources under adapter: in the profile", indicator=INDICATOR_ACCESS,
                 references=refs("API2", "API5", "CWE-306"))
        return
    covered: set[str] = set()
    records: dict[str, Any] = {}
    for res in run.resources():
        run.ctx.check_cancelled()
        _resource(run, res, covered, records)
    _openapi(run, covered, records)


def _resource(run: AccessRun, res: str, covered: set[str], records: dict[str, Any]) -> None:
    """List, and (with writes) read/update/delete of an own record and create, all without credentials."""
    adapter = run.ctx.adapter
    t = run.ctx.target
    rc = adapter.resource(res)
    covered.add(rc.path.rstrip("/"))
    seen = Tally()
    _judge(run, seen, t.request("GET", rc.path, auth=False), f"anonymous list {res}", _listed)
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
            item = adapter.item_path(res, rid)
            covered.add(_PARAM.sub("{}", (rc.item_path or rc.path.rstrip("/") + "/{id}")).rstrip("/"))
            _judge(run, seen, t.request("GET", item, auth=False), f"anonymous read {res}",
                       lambda ex: run.ctx.tag in ex.text)
            _judge(run, seen, t.request(rc.update_method, item, auth=False, json=adapter.update_body(res, rid)),
                       f"anonymous update {res}", lambda ex: True)
            _judge(run, seen, run.delete(res, rid, None), f"anonymous delete {res}", lambda ex: True)
        ex = t.request("POST", rc.path, auth=False, json={**_filled(run, rc.create), **(
            {adapter.config.tag_field: [run.ctx.tag]} if adapter.config.tag_field else {})})
        _judge(run, seen, ex, f"anonymous create {res}", lambda ex: True)
        if ex.ok:
            made = ex.json_or_none()
            mid = adapter.record_id(made) if isinstance(made, dict) else None
            if mid is not None:
                run.ctx.defer(f"delete anonymous {res}/{mid}", lambda r=res, m=mid: run.cleanup(r, m, None))
    _report(run, f"access.anonymous.{res}", res, seen)


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


def _report(run: AccessRun, fid: str, what: str, seen: Tally) -> None:
    seen.report(run, fid, what=f"{what}: anonymous access", bad=f"{what}: answers without credentials",
                good=f"{what}: requires authentication", severity=Severity.critical,
                good_evidence=[Evidence(request="; ".join(seen.judged)[:500], expected="401/403")],
                indicator=INDICATOR_ACCESS, references=refs("API2", "API5", "CWE-306", "CWE-862"), remediation=ANON_FIX)


def _openapi(run: AccessRun, covered: set[str], records: dict[str, Any]) -> None:
    """Anonymous GET of every documented path not already covered by the resources."""
    adapter = run.ctx.adapter
    if adapter is None or not hasattr(adapter, "openapi_paths"):
        return
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API2", "API5", "API9", "CWE-306"),
                              remediation=ANON_FIX, severity=Severity.critical)
    doc = getattr(getattr(adapter, "config", None), "openapi", None)
    paths = sorted({p for m, p in adapter.openapi_paths() if m == "GET"})
    if doc and not paths:
        run.add("access.anonymous.openapi", f"Documented paths not tested anonymously (not assessed: {doc} could not "
                "be read or lists no GET path)", status=Status.error, not_assessed=NotAssessed.request_failed,
                hint=f"check adapter.openapi ({doc}) — it must answer the OpenAPI/Swagger JSON anonymously", **kw)
        return
    n = 0
    capped: list[str] = []
    unfilled: list[str] = []
    for path in paths:
        norm = _PARAM.sub("{}", path).rstrip("/")
        if norm in covered or _public(run, path):
            continue
        concrete = _concrete(run, path, records)
        if concrete is None:
            unfilled.append(path)
            continue
        if n >= run.opts.max_openapi_paths:
            capped.append(path)
            continue
        n += 1
        seen = Tally()
        _judge(run, seen, run.ctx.target.request("GET", concrete, auth=False), "anonymous GET", _listed)
        _report(run, f"access.anonymous.{slug(norm.replace('{}', 'id'))}", f"GET {path}", seen)
    if unfilled:
        hint = ("set plugins.access.read_others: true to try them with id 1" if run.ctx.allow_writes else
                HINT_WRITES + " (ids come from the audit's own records), or set plugins.access.read_others: true")
        run.skip("access.anonymous.openapi_unfilled", f"{len(unfilled)} documented path(s) with parameters not tested "
                 f"anonymously (no own record to fill them): {', '.join(unfilled[:5])}",
                 NotAssessed.not_configured if run.ctx.allow_writes else NotAssessed.safety, hint, **kw)
    if capped:
        run.skip("access.anonymous.openapi_capped", f"{len(capped)} documented path(s) beyond "
                 f"max_openapi_paths={run.opts.max_openapi_paths} not tested anonymously", NotAssessed.audit_limit,
                 f"raise plugins.access.max_openapi_paths to at least {n + len(capped)}", **kw)


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
