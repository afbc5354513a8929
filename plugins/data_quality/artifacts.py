"""The data quality probe's artifacts: the metrics, defect counts and duplicates it found."""

from __future__ import annotations

from typing import Any

from crm_audit.core.artifacts import ProbeArtifacts


class DataQualityArtifacts(ProbeArtifacts):
    """Metrics of one resource read with one account."""

    metrics: Any
    defects: Any
    records: int
    resource: str
    account: str | None = None
    duplicates_by_key: Any = None
