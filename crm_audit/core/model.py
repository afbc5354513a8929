"""Typed, immutable records that probes return and reporters read.

Probes measure and report findings; they never score. Everything here serialises to the
versioned AuditResult JSON, so a report can be re-rendered later from the JSON alone.
"""

from __future__ import annotations

import math
import statistics
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

SCHEMA_VERSION = "1.1"  # 1.1: verdict, indicator_findings, warnings, not-assessed reasons, bounded_by


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
    waiver: dict[str, Any] | None = None
    #: why the check was not assessed (status skipped or error); None for pass/fail/warn
    not_assessed: NotAssessed | None = None
    #: what would assess it, e.g. "run with --allow-disruptive", "add a second tenant account"
    hint: str | None = None

    @model_validator(mode="after")
    def _reason_follows_status(self) -> "Finding":
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
    def of(cls, samples: Sequence[float]) -> "SampleSummary":
        if not samples:
            raise ValueError("no samples")
        data = sorted(float(s) for s in samples)
        return cls(
            count=len(data),
            min=data[0],
            max=data[-1],
            mean=statistics.fmean(data),
            stdev=statistics.stdev(data) if len(data) > 1 else 0.0,
            p50=percentile(data, 50),
            p90=percentile(data, 90),
            p95=percentile(data, 95),
            p99=percentile(data, 99),
        )


def percentile(sorted_data: Sequence[float], pct: float) -> float:
    """Exact percentile of already sorted data (the 'linear' method of numpy)."""
    if not sorted_data:
        raise ValueError("no samples")
    if len(sorted_data) == 1:
        return float(sorted_data[0])
    rank = (len(sorted_data) - 1) * pct / 100.0
    lo = math.floor(rank)
    hi = math.ceil(rank)
    frac = rank - lo
    return float(sorted_data[lo] + (sorted_data[hi] - sorted_data[lo]) * frac)


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
    scoring: dict[str, Any] | None = None
    #: findings drawn from the scoring: value-based indicators graded Fail
    indicator_findings: list[Finding] = Field(default_factory=list)
    verdict: Verdict | None = None
    #: problems of the audit itself that did not stop it (a failing observer plugin, …)
    warnings: list[str] = Field(default_factory=list)
    gates: list[GateOutcome] = Field(default_factory=list)
    baseline: dict[str, Any] | None = None
    waivers: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None

    def all_findings(self) -> list[Finding]:
        """Every probe's findings, then the findings drawn from failed indicators."""
        return [f for p in self.probes for f in p.findings] + list(self.indicator_findings)

    def all_measurements(self) -> list[Measurement]:
        return [m for p in self.probes for m in p.measurements]

    def probe(self, probe_id: str) -> ProbeResult | None:
        return next((p for p in self.probes if p.probe == probe_id), None)


def load_result(path: str | Path) -> AuditResult:
    """Read a saved result.json; raises ValueError with one line naming the problem."""
    import json

    from pydantic import ValidationError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an AuditResult (expected a JSON object)")
    try:
        return AuditResult.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: not an AuditResult: {where}: {first['msg']}") from None
