"""Typed, immutable records that probes return and reporters read.

Probes measure and report findings; they never score. Everything here serialises to the
versioned AuditResult JSON, so a report can be re-rendered later from the JSON alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from crm_audit.core.ci_model import BaselineComparison, FindingWaiver, Signature, WaiversRecord
from crm_audit.core.scoring_model import Scoring

#: 1.1: verdict, indicator_findings, warnings, not-assessed reasons, bounded_by;
#: 1.2: scoring, baseline, waivers, signature and Finding.waiver typed (closed records), scored nodes list their children
SCHEMA_VERSION = "1.2"
#: result files of these versions still load (their parts have the same shape; new fields default)
READABLE_VERSIONS = ("1.0", "1.1", "1.2")


class Severity(str, Enum):
    """How bad a failed finding is; ordered from info to critical."""

    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return SEVERITY_ORDER.index(self.value)


SEVERITY_ORDER = ["info", "low", "medium", "high", "critical"]


class Status(str, Enum):
    """Outcome of one check: pass, fail, warn, error (the check could not run), skipped."""

    passed = "pass"
    failed = "fail"
    warn = "warn"
    error = "error"
    skipped = "skipped"


class NotAssessed(str, Enum):
    """Why a check or indicator was not assessed: it is never a pass and never scores 100."""

    safety = "safety"  #: needs --allow-writes or --allow-disruptive
    needs_account = "needs_account"  #: a second tenant, a second role or a dedicated account
    not_configured = "not_configured"  #: the profile lacks an operation, path, resource or option
    not_applicable = "not_applicable"  #: the target has no such feature (nothing to judge)
    request_failed = "request_failed"  #: network error, 5xx, malformed or unexpected answer
    timed_out = "timed_out"  #: the target did not answer in time
    audit_limit = "audit_limit"  #: the audit's own rate limit, request budget, deadline or byte cap
    probe_error = "probe_error"  #: the probe itself failed
    interrupted = "interrupted"  #: Ctrl-C or the probe's time limit stopped it first


#: outcomes that are evidence (pass, fail, warn); skipped and error are *not assessed*
ASSESSED_STATUSES = ("pass", "fail", "warn")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Evidence(_Frozen):
    """What was sent and seen, already redacted by the Target before it is kept."""

    request: str | None = None
    status: int | None = None
    excerpt: str | None = None
    expected: str | None = None
    observed: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Finding(_Frozen):
    """One check's outcome with a stable id, e.g. ``tls.protocol.tls1_0_enabled``."""

    id: str
    title: str
    severity: Severity = Severity.info
    status: Status = Status.failed
    indicator: str | None = None
    probe: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    remediation: str = ""
    references: list[str] = Field(default_factory=list)
    waiver: FindingWaiver | None = None
    #: why the check was not assessed (status skipped or error); None for pass/fail/warn
    not_assessed: NotAssessed | None = None
    #: what would assess it, e.g. "run with --allow-disruptive", "add a second tenant account"
    hint: str | None = None
    #: the catalogue check this finding is an outcome of (``access.bola`` for ``access.bola.contacts``);
    #: set when the result is finalised, None when no catalogue entry covers the id
    check: str | None = None

    @model_validator(mode="after")
    def _reason_follows_status(self) -> Finding:
        """Skipped and error outcomes always carry a reason; pass/fail/warn never do."""
        if self.status in (Status.skipped, Status.error) and self.not_assessed is None:
            default = NotAssessed.not_configured if self.status is Status.skipped else NotAssessed.request_failed
            object.__setattr__(self, "not_assessed", default)
        elif self.status not in (Status.skipped, Status.error) and self.not_assessed is not None:
            object.__setattr__(self, "not_assessed", None)
        return self

    @property
    def assessed(self) -> bool:
        """True for pass, fail and warn: an outcome the audit actually observed."""
        return self.status.value in ASSESSED_STATUSES

    @property
    def is_open(self) -> bool:
        """A failed or warning finding that no waiver accepts."""
        return self.status in (Status.failed, Status.warn) and self.waiver is None


class SampleSummary(_Frozen):
    """Exact order statistics of a sample set (linear interpolation between ranks)."""

    count: int
    min: float
    max: float
    mean: float
    stdev: float
    p50: float
    p90: float
    p95: float
    p99: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> SampleSummary:
        """The summary of ``samples``; percentiles by ``numpy.percentile`` (linear interpolation)."""
        import numpy as np  # imported here: the CLI starts without numpy

        if not len(samples):
            raise ValueError("no samples")
        data = [float(s) for s in samples]
        p50, p90, p95, p99 = (float(p) for p in np.percentile(data, [50, 90, 95, 99]))
        return cls(count=len(data), min=min(data), max=max(data), mean=statistics.fmean(data),
                   stdev=statistics.stdev(data) if len(data) > 1 else 0.0, p50=p50, p90=p90, p95=p95, p99=p99)


def percentile(data: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile of ``data`` (sorted or not) by ``numpy.percentile``, linear interpolation."""
    import numpy as np

    if not len(data):
        raise ValueError("no samples")
    return float(np.percentile(np.asarray(data, dtype=float), pct))


class Measurement(_Frozen):
    """A measured value of one indicator: the PIA triple (actual / expected / difference)."""

    indicator: str
    value: float | None
    unit: str = ""
    expected: float | None = None
    better: Literal["lower", "higher"] = "lower"
    label: str = ""
    samples: SampleSummary | None = None
    raw_samples: list[float] | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    #: the audit's own bound this value ran into ("rate_limit", "request_budget", "time_limit",
    #: "byte_cap"): the CRM was not shown to be worse than the value, so a value that misses
    #: its expectation because of it is not assessed rather than failed
    bounded_by: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        """Accept a serialised measurement: its computed fields are derived again, not read."""
        if isinstance(data, dict) and ("difference" in data or "meets_expected" in data):
            data = {k: v for k, v in data.items() if k not in ("difference", "meets_expected")}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def difference(self) -> float | None:
        if self.value is None or self.expected is None:
            return None
        return self.value - self.expected

    @computed_field  # type: ignore[prop-decorator]
    @property
    def meets_expected(self) -> bool | None:
        if self.value is None or self.expected is None:
            return None
        if self.better == "lower":
            return self.value <= self.expected
        return self.value >= self.expected


ProbeStatus = Literal["ok", "error", "skipped", "incomplete"]


class ProbeResult(_Frozen):
    """All a probe returns: measurements, findings and artifacts for the report."""

    probe: str
    title: str = ""
    version: str = ""
    status: ProbeStatus = "ok"
    reason: str | None = None
    started: str | None = None
    duration_s: float = 0.0
    requests: int = 0
    measurements: list[Measurement] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    artifacts: dict[str, Any] = Field(default_factory=dict)


class GateOutcome(_Frozen):
    """One gate's verdict, listed in the output and the report."""

    gate: str
    passed: bool
    detail: str


VerdictWord = Literal["Fit", "Fit with conditions", "Not fit", "Inconclusive"]


class Verdict(_Frozen):
    """The decision drawn from the evidence (docs/scoring.md, "Verdict"); the score is a measure."""

    verdict: VerdictWord
    reasons: list[str] = Field(default_factory=list)
    #: open (failed or warning, not waived) findings by severity
    open_counts: dict[str, int] = Field(default_factory=dict)
    #: share of the hierarchy's weight that was assessed (None: not scored)
    coverage: float | None = None
    #: coverage per dimension (first-level node) of the hierarchy
    dimension_coverage: dict[str, float] = Field(default_factory=dict)
    #: the thresholds the verdict was judged with
    rules: dict[str, Any] = Field(default_factory=dict)


class TargetSummary(_Frozen):
    name: str
    base_url: str
    scope: list[str]


class SchedulePhase(_Frozen):
    """One phase of the audit's schedule: probes run side by side, or one probe alone on a quiet target."""

    mode: Literal["concurrent", "alone"]
    #: probe ids of the phase, in the order of the results
    probes: list[str]
    #: seconds from the start of the audit to the start of the phase, and the phase's length
    start_s: float = 0.0
    duration_s: float = 0.0


class AuditResult(_Frozen):
    """The whole audit, versioned; every reporter reads only this."""

    schema_version: str = SCHEMA_VERSION
    tool: dict[str, str]
    plugins: dict[str, str] = Field(default_factory=dict)
    run_id: str
    target: TargetSummary
    profile_digest: str
    started: str
    finished: str | None = None
    duration_s: float = 0.0
    complete: bool = True
    incomplete_reason: str | None = None
    probes: list[ProbeResult] = Field(default_factory=list)
    #: how the probes ran: probes that measure no time side by side, the others alone (docs/plugins.md)
    schedule: list[SchedulePhase] = Field(default_factory=list)
    scoring: Scoring | None = None
    #: findings drawn from the scoring: value-based indicators graded Fail
    indicator_findings: list[Finding] = Field(default_factory=list)
    verdict: Verdict | None = None
    #: problems of the audit itself that did not stop it (a failing observer plugin, …)
    warnings: list[str] = Field(default_factory=list)
    gates: list[GateOutcome] = Field(default_factory=list)
    baseline: BaselineComparison | None = None
    waivers: WaiversRecord | None = None
    signature: Signature | None = None

    def all_findings(self) -> list[Finding]:
        """Every probe's findings, then the findings drawn from failed indicators."""
        return [f for p in self.probes for f in p.findings] + list(self.indicator_findings)

    def all_measurements(self) -> list[Measurement]:
        return [m for p in self.probes for m in p.measurements]

    def probe(self, probe_id: str) -> ProbeResult | None:
        return next((p for p in self.probes if p.probe == probe_id), None)


def load_result(path: str | Path) -> AuditResult:
    """Read a saved result.json; raises ValueError with one line naming the problem.

    Results of schema 1.0 and 1.1 load: their scoring, baseline, waivers and signature have
    the shape 1.2 types, and fields added since take their defaults. A newer or unknown
    ``schema_version`` is refused with one line rather than read wrongly.
    """
    from pydantic import ValidationError

    from crm_audit.core.errors import InputFileError, first_error
    from crm_audit.core.safeyaml import load_file

    data = load_file(path, "result", as_json=True).data  # InputFileError is a ValueError
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an AuditResult (expected a JSON object)")
    version = data.get("schema_version")
    if version is not None and str(version) not in READABLE_VERSIONS:
        raise ValueError(f"{path}: not an AuditResult this crm-audit reads: schema version {str(version)[:20]!r} "
                         f"(reads {', '.join(READABLE_VERSIONS)}); use the crm-audit version that wrote it")
    try:
        return AuditResult.model_validate(data)
    except ValidationError as exc:
        raise InputFileError(f"{path}: not an AuditResult: {first_error(exc)}") from None
