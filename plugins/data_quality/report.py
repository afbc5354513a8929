"""The data_quality probe's section of the HTML report: its metrics with formula, numerator and denominator."""

from __future__ import annotations

from importlib.resources import files

from crm_audit.report.section import ReportSection, metrics_view

SECTION = ReportSection(probe="data_quality", template=files(__package__) / "report.html.j2", view=metrics_view)
