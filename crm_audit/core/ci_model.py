"""Typed CI records of an AuditResult: the baseline comparison, the waivers and the signature.

Built by ``crm_audit.ci.baseline.compare``, ``crm_audit.ci.waivers.apply_waivers`` and
``crm_audit.ci.signing.sign_result``; the gates, the terminal summary and the reporters read them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crm_audit.core.record import Record


class ScoreChange(Record):
    """A node whose score moved by 0.05 or more (or became / stopped being assessed)."""

    id: str  #: node id
    before: float | None = None  #: score in the baseline (None: not assessed)
    after: float | None = None  #: score now (None: not assessed)


class Regression(Record):
    """A sampled measurement whose median got significantly worse than the baseline's."""

    indicator: str  #: indicator id
    label: str = ""  #: the measurement's label (endpoint name)
    probe: str  #: the probe that measured it
    unit: str = ""  #: unit of before and after
    statistic: str = "median"  #: what was compared (median)
    before: float  #: the baseline's median
    after: float  #: the median now
    relative_change: float  #: relative change in the bad direction
    #: one-sided Mann-Whitney U p-value
    p_value: float
    #: sample counts: [baseline, now]
    samples: list[int] = Field(default_factory=list)


class RegressionPolicyRecord(Record):
    """The thresholds the regressions were judged with."""

    threshold: float  #: relative change of the median that counts
    alpha: float  #: one-sided significance level
    min_delta_ms: float  #: absolute floor for time units (ms)


class BaselineComparison(Record):
    """What changed since the baseline run: findings by id, scores by node, sampled measurements."""

    run_id: str | None = None  #: the baseline's run id
    started: str | None = None  #: when the baseline run started
    new_findings: list[str] = Field(default_factory=list)  #: ids failing or warning now, not in the baseline
    fixed_findings: list[str] = Field(default_factory=list)  #: ids failing in the baseline, not now
    unchanged_findings: list[str] = Field(default_factory=list)  #: ids failing in both
    score_changes: list[ScoreChange] = Field(default_factory=list)  #: nodes whose score moved
    regressions: list[Regression] = Field(default_factory=list)  #: sampled measurements that got significantly worse
    policy: RegressionPolicyRecord | None = None  #: the thresholds regressions were judged with


class FindingWaiver(Record):
    """The waiver that accepts a finding (``Finding.waiver``): who, why, until when, which entry."""

    justification: str  #: why the risk is accepted
    by: str  #: who accepted it
    #: ISO date through which the waiver holds
    expires: str
    #: the waiver's id pattern that matched the finding
    pattern: str


class WaiverOutcome(Record):
    """One waivers-file entry and what it did in this audit."""

    id: str  #: finding id or fnmatch pattern
    target: str | None = None  #: base URL or host it is limited to
    by: str  #: who accepted the risk
    expires: str  #: ISO date through which it holds
    justification: str  #: why the risk is accepted
    #: ids of the findings it matched (applied and expired entries)
    findings: list[str] = Field(default_factory=list)
    #: why an entry did not apply, e.g. "target does not match"
    reason: str | None = None


class WaiversRecord(Record):
    """The waivers applied, expired (the findings count again) and unmatched."""

    applied: list[WaiverOutcome] = Field(default_factory=list)  #: valid waivers that matched findings
    expired: list[WaiverOutcome] = Field(default_factory=list)  #: waivers past their date (the findings count again)
    unmatched: list[WaiverOutcome] = Field(default_factory=list)  #: waivers that matched nothing, or another target


class Signature(Record):
    """The detached Ed25519 signature over the canonical result (docs/ci.md)."""

    algorithm: Literal["ed25519"]  #: always ed25519
    #: ``sha256:<hex>`` of the raw public key
    key_fingerprint: str
    signed_at: str  #: when it was signed (ISO 8601, UTC)
    #: base64 of the 64-byte signature
    value: str
