"""The load probe's artifacts: the load curve, the sustained phase and the recovery."""

from __future__ import annotations

from typing import Any

from crm_audit.core.artifacts import ProbeArtifacts


class LoadArtifacts(ProbeArtifacts):
    """Steps of the curve (users, rps, p50/p95, error rate, within the SLO), the best step held, recovery."""

    steps: list[dict[str, Any]]
    max_sustainable_users: int
    target_users: int | None = None
    slo_p95_ms: float
    sustained: dict[str, Any] | None = None
    recovery: dict[str, Any] | None = None
