"""The load probe's section of the HTML report: the step curve, sustained phase and recovery."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from crm_audit.core.model import ProbeResult
from crm_audit.report import charts
from crm_audit.report.section import ReportSection, as_dict, as_list, kv


def load_view(result: ProbeResult) -> dict[str, Any] | None:
    """The steps with their chart, the maximum sustainable users, sustained and recovery data; None without any."""
    art = result.artifacts
    steps = [as_dict(s) for s in as_list(art.get("steps"))]
    if not steps and not art.get("sustained") and not art.get("recovery"):
        return None
    return {
        "steps": steps,
        "max_users": art.get("max_sustainable_users"),
        "target_users": art.get("target_users"),
        "slo": art.get("slo_p95_ms"),
        "sustained": kv(art.get("sustained")),
        "recovery": kv(art.get("recovery")),
        "chart": charts.load_curve(steps, art.get("slo_p95_ms"), art.get("max_sustainable_users")),
    }


SECTION = ReportSection(probe="load", template=files(__package__) / "report.html.j2", view=load_view)
