"""The flows probe's artifacts: one row per business flow, with per-step times."""

from __future__ import annotations

from crm_audit.core.artifacts import ProbeArtifacts
from crm_audit.core.model import SampleSummary


class StepTiming(ProbeArtifacts):
    """One step of a flow: its action, time over the runs that reached it (ms), and failures."""

    name: str
    action: str
    summary_ms: SampleSummary | None
    failures: int


class FlowRun(ProbeArtifacts):
    """One flow: runs, completed runs, completion time (s) of the completed ones, its steps."""

    name: str
    account: str | None
    runs: int
    completed: int
    completion_rate: float
    slo_s: float
    completion_s: SampleSummary | None
    steps: list[StepTiming]
    #: runs the profile asked for, when the request budget cut them short
    runs_planned: int | None = None


class FlowsArtifacts(ProbeArtifacts):
    """Every flow that ran, in profile order."""

    flows: list[FlowRun]
