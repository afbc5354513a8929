"""The access probe's section of the HTML report: the role × resource × action matrix, mismatches marked."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from crm_audit.core.model import ProbeResult
from crm_audit.report.section import ReportSection, as_dict, as_list


def access_view(result: ProbeResult) -> dict[str, Any] | None:
    """One table per resource (roles × actions, expected / observed per cell); None without matrix cells."""
    matrix = as_dict(result.artifacts.get("matrix"))
    cells = [as_dict(c) for c in as_list(matrix.get("cells"))]
    if not cells:
        return None
    roles = [str(r) for r in as_list(matrix.get("roles"))] or sorted({str(c.get("role")) for c in cells})
    resources = [str(r) for r in as_list(matrix.get("resources"))] or sorted({str(c.get("resource")) for c in cells})
    actions = [str(a) for a in as_list(matrix.get("actions"))] or sorted({str(c.get("action")) for c in cells})
    index = {(str(c.get("role")), str(c.get("resource")), str(c.get("action"))): c for c in cells}
    tables = []
    for resource in resources:
        used = [a for a in actions if any((r, resource, a) in index for r in roles)]
        if not used:
            continue
        rows = []
        for role in roles:
            row: list[dict[str, Any] | None] = []
            for action in used:
                cell = index.get((role, resource, action))
                if cell is None:
                    row.append(None)
                    continue
                expected = str(cell.get("expected") or "—")
                observed = str(cell.get("observed") or "—")
                mismatch = bool(cell.get("mismatch", expected != observed))
                status = cell.get("status")  # an HTTP status; some probes put a verdict word here
                row.append({"expected": expected, "observed": observed, "mismatch": mismatch,
                            "status": status if isinstance(status, int) and not isinstance(status, bool) else None,
                            "error": observed in ("error", "unknown")})
            rows.append({"role": role, "cells": row})
        tables.append({"resource": resource, "actions": used, "rows": rows})
    mismatches = sum(1 for c in cells if c.get("mismatch"))
    return {"tables": tables, "mismatches": mismatches, "cells": len(cells)}


SECTION = ReportSection(probe="access", template=files(__package__) / "report.html.j2", view=access_view)
