"""The KPI probe's artifacts: each business metric with its formula and the records it counted."""

from __future__ import annotations

from crm_audit.core.artifacts import ProbeArtifacts


class KpiMetric(ProbeArtifacts):
    """One metric: its value against the expected one, and how it was computed."""

    name: str
    indicator: str
    value: float | None
    unit: str
    expected: float | None = None
    formula: str
    numerator: float | None = None
    denominator: float | None = None
    note: str | None = None


class KpiArtifacts(ProbeArtifacts):
    """The metrics, the records read per resource and the account used."""

    metrics: list[KpiMetric]
    records: dict[str, int]
    account: str | None = None
