"""The latency probe's section of the HTML report: per endpoint, percentiles and a histogram."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from crm_audit.core.model import ProbeResult
from crm_audit.report import charts
from crm_audit.report.section import ReportSection, as_dict, as_list
from crm_audit.report.view import as_float


def latency_view(result: ProbeResult) -> dict[str, Any] | None:
    """Each endpoint's summary, first-byte times, SLO and histogram chart; None without endpoints."""
    endpoints = []
    for ep in as_list(result.artifacts.get("endpoints")):
        ep = as_dict(ep)
        summary = as_dict(ep.get("summary"))
        slo = as_float(ep.get("slo_p95_ms"))
        p95 = as_float(summary.get("p95"))
        hist = as_dict(ep.get("histogram"))
        markers = [("p50", summary.get("p50"), "mark-p50"), ("p95", p95, "mark-p95")]
        if slo is not None:
            markers.append(("SLO", slo, "mark-slo"))
        endpoints.append({
            "name": str(ep.get("name") or ep.get("path") or "endpoint"),
            "method": str(ep.get("method") or ""),
            "path": str(ep.get("path") or ""),
            "summary": summary,
            "ttfb": as_dict(ep.get("ttfb")) or None,
            "slo": slo,
            "errors": ep.get("errors"),
            "over_slo": slo is not None and p95 is not None and p95 > slo,
            "chart": charts.histogram(as_list(hist.get("edges")), as_list(hist.get("counts")), markers),
        })
    return {"endpoints": endpoints} if endpoints else None


SECTION = ReportSection(probe="latency", template=files(__package__) / "report.html.j2", view=latency_view)
