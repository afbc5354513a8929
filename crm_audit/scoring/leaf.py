"""Scoring one indicator (leaf) from an AuditResult's measurements, findings and evidence.

Sources are tried in the order the hierarchy lists them; the first that yields a score wins.

- ``probe:<id>`` with a value function: every measurement of the indicator (from any probe)
  with a value is converted to the indicator's unit and scored; the indicator's score is the
  **mean** of those scores and its ``actual`` is the value of the **worst**-scoring
  measurement (e.g. the slowest endpoint's p95), so the PIA triple shows what to fix.
- ``probe:<id>`` with a findings function: the open findings (fail/warn, no waiver) whose
  ``Finding.indicator`` is this indicator are penalised by severity; with no finding at all
  the indicator scores 100 if probe ``<id>`` ran with status ``ok``, else it is not assessed.
  ``actual`` is the number of open findings, ``expected`` 0.
- ``evidence``: the evidence file's value for the indicator, marked with who supplied it.

Whatever the function, an open finding of a capped severity (default: critical → 20) caps
the score; ``capped_by`` names it. Expected value: the hierarchy's, else the measurement's
(or evidence's) own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from ..model import AuditResult, Finding, Measurement, Status
from .evidence import Evidence
from .functions import apply_caps
from .hierarchy import Node
from .units import UnitError, convert

_COUNTED = (Status.passed, Status.failed, Status.warn)


@dataclass(frozen=True)
class LeafScore:
    """Outcome of one indicator: its score and the PIA triple."""

    assessed: bool
    score: float | None = None
    actual: float | None = None
    expected: float | None = None
    source: str | None = None
    evidence: dict[str, str | None] | None = None
    capped_by: str | None = None
    findings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def difference(self) -> float | None:
        """actual − expected, when both are known and finite."""
        if self.actual is None or self.expected is None:
            return None
        diff = self.actual - self.expected
        return diff if math.isfinite(diff) else None


@dataclass(frozen=True)
class ResultIndex:
    """An AuditResult's measurements and findings grouped by indicator, and probe statuses."""

    measurements: dict[str, list[Measurement]]
    findings: dict[str, list[Finding]]
    probe_status: dict[str, str]

    @classmethod
    def of(cls, result: AuditResult) -> "ResultIndex":
        measurements: dict[str, list[Measurement]] = defaultdict(list)
        findings: dict[str, list[Finding]] = defaultdict(list)
        for probe in result.probes:
            for m in probe.measurements:
                if m.value is not None and not math.isnan(m.value):
                    measurements[m.indicator].append(m)
            for f in probe.findings:
                if f.indicator and f.status in _COUNTED:
                    findings[f.indicator].append(f)
        return cls(dict(measurements), dict(findings), {p.probe: p.status for p in result.probes})


def score_leaf(node: Node, index: ResultIndex, evidence: Evidence | None = None) -> LeafScore:
    """Score one indicator from the first of its sources that yields a value."""
    fn = node.function
    assert fn is not None, "leaf without a function"
    related = index.findings.get(node.id, [])
    open_findings = [f for f in related if f.is_open]
    open_ids = tuple(dict.fromkeys(f.id for f in open_findings))
    outcome: LeafScore | None = None
    for source in node.sources:
        if source == "evidence":
            outcome = _from_evidence(node, evidence)
        elif fn.kind == "findings":
            outcome = _from_findings(node, source.split(":", 1)[1], related, open_findings, index)
        else:
            outcome = _from_measurements(node, index.measurements.get(node.id, []), source)
        if outcome is not None:
            break
    if outcome is None or outcome.score is None:
        return LeafScore(False, findings=open_ids)
    score, capped_by = apply_caps(outcome.score, open_findings, fn.caps)
    return LeafScore(True, score, outcome.actual, outcome.expected, outcome.source, outcome.evidence, capped_by, open_ids)


def _from_findings(node: Node, probe: str, related: list[Finding], open_findings: list[Finding], index: ResultIndex) -> LeafScore | None:
    if not related and index.probe_status.get(probe) != "ok":
        return None
    fn = node.function
    penalty = fn.penalty(open_findings)  # type: ignore[union-attr]
    return LeafScore(True, fn.score(penalty), float(len(open_findings)), 0.0, f"probe:{probe}")  # type: ignore[union-attr]


def _from_measurements(node: Node, measurements: list[Measurement], source: str) -> LeafScore | None:
    fn = node.function
    scored: list[tuple[float, float, float | None]] = []  # (score, value, expected)
    for m in measurements:
        try:
            value = convert(float(m.value), m.unit, node.unit)  # type: ignore[arg-type]
            own_expected = convert(m.expected, m.unit, node.unit) if m.expected is not None else None
        except UnitError:
            continue
        expected = node.expected if node.expected is not None else own_expected
        score = fn.score(value, expected)  # type: ignore[union-attr]
        if score is not None:
            scored.append((score, value, expected))
    if not scored:
        return None
    mean = sum(s for s, _, _ in scored) / len(scored)
    worst = min(scored, key=lambda row: row[0])
    return LeafScore(True, mean, _finite(worst[1]), worst[2], source)


def _from_evidence(node: Node, evidence: Evidence | None) -> LeafScore | None:
    item = evidence.get(node.id) if evidence is not None else None
    if item is None:
        return None
    try:
        value = convert(item.value, item.unit, node.unit)
        own_expected = convert(item.expected, item.unit, node.unit) if item.expected is not None else None
    except UnitError:
        return None
    expected = node.expected if node.expected is not None else own_expected
    score = node.function.score(value, expected)  # type: ignore[union-attr]
    if score is None:
        return None
    return LeafScore(True, score, _finite(value), expected, "evidence", item.meta())


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
