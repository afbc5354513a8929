"""The attack-surface finding: ``access.surface.discovered`` and ``artifacts["surface"]``."""

from __future__ import annotations

from typing import Any

from crm_audit.core.model import Evidence, NotAssessed, Severity, Status

from .common import INDICATOR_ACCESS, AccessRun, refs
from .discovery import RETRY_HINT, Surface, discovered_surface


def surface_artifact(surface: Surface) -> dict[str, Any]:
    """The surface as JSON for ``artifacts["surface"]``: operations, who reached what, sample ids."""
    return {
        "source": (surface.discovery.source if surface.discovery else None) or surface.listing,
        "described": bool(surface.discovery and surface.discovery.described),
        "operations": [{"name": o.name, "method": o.method, "path": o.path, "resource": o.resource,
                        "action": o.action, "params": list(o.params), "safe": o.safe, "described": o.described}
                       for o in surface.operations],
        "collections": [o.name for o in surface.collections],
        "items": [o.name for o in surface.items],
        "sample_ids": {k: [str(i) for i in v] for k, v in surface.sample_ids.items()},
        "reach": surface.reach,
        "truncated": surface.truncated,
    }


def check_surface(run: AccessRun) -> dict[str, Any]:
    """Report the discovered surface as an info finding; returns the artifact for ``artifacts["surface"]``."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API9", "CWE-1059"), severity=Severity.info)
    fid = "access.surface.discovered"
    if run.ctx.adapter is None:
        run.skip(fid, "Attack surface not discovered (no adapter)", NotAssessed.not_configured,
                 "describe the CRM under adapter: in the profile", **kw)
        return {}
    surface = discovered_surface(run)
    called = [o for o in surface.collections + surface.items if any(o.name in r for r in surface.reach.values())]
    if not called:
        run.skip(fid, "Attack surface not discovered (no safe operation to call)", NotAssessed.not_configured,
                 "set adapter.openapi (REST) or map resources/operations in the adapter", **kw)
        return surface_artifact(surface)
    answered = [(c, n, o) for c, r in surface.reach.items() for n, o in r.items() if o in ("allowed", "denied",
                                                                                          "not_found")]
    if not answered:
        ex = next(iter(surface.answers.values()), None)
        run.unassessed(fid, "Attack surface discovered", ex, hint=RETRY_HINT, **kw)
        return surface_artifact(surface)
    source = (surface.discovery.source if surface.discovery and surface.discovery.source else surface.listing
              or "the adapter's resources")
    ev = [Evidence(request=f"discover: {source}; each safe operation once as {', '.join(surface.callers)}",
                   observed=_counts(surface), details={"reach": _reach_summary(surface)})]
    run.add(fid, f"Attack surface: {len(surface.operations)} operations ({len(surface.collections)} collections, "
                 f"{len(surface.items)} item reads), reached by {_reach_line(surface)}",
            status=Status.passed, evidence=ev, **kw)
    return surface_artifact(surface)


def _counts(surface: Surface) -> str:
    described = sum(o.described for o in surface.operations)
    unsafe = sum(not o.safe for o in surface.operations)
    text = (f"{len(surface.operations)} operations ({described} from the CRM's own description, {unsafe} unsafe: "
            f"not called); {len(surface.collections)} collections, {len(surface.items)} item reads "
            f"({sum(1 for o in surface.items if surface.sample_ids.get(o.name))} with an id from a list answer)")
    if surface.truncated:
        text += f"; {surface.truncated} more left out (max_surface_operations)"
    return text


def _reach_summary(surface: Surface) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for caller, ops in surface.reach.items():
        tally: dict[str, int] = {}
        for outcome in ops.values():
            tally[outcome] = tally.get(outcome, 0) + 1
        out[caller] = tally
    return out


def _reach_line(surface: Surface) -> str:
    return ", ".join(f"{c} {sum(o == 'allowed' for o in r.values())}" for c, r in surface.reach.items())
