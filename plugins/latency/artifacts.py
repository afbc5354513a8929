"""The latency probe's artifacts: one row per timed endpoint (summary, TTFB, histogram)."""

from __future__ import annotations

from crm_audit.core.artifacts import ProbeArtifacts
from crm_audit.core.model import SampleSummary


class Histogram(ProbeArtifacts):
    """Equal-width histogram of the samples: edges in ms, one more edge than counts."""

    edges: list[float]
    counts: list[int]


class EndpointTiming(ProbeArtifacts):
    """One endpoint's timing: what was sent, its sample summary, time to first byte, failures."""

    name: str
    method: str
    path: str
    #: total time per request (ms); None when no request answered as expected
    summary: SampleSummary | None
    #: time to the first byte (ms), when the transport saw it
    ttfb: SampleSummary | None
    slo_p95_ms: float
    errors: int
    histogram: Histogram


class LatencyArtifacts(ProbeArtifacts):
    """Every sampled endpoint, in profile order."""

    endpoints: list[EndpointTiming]
