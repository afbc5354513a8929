"""Scoring one indicator (leaf) from an AuditResult's measurements, findings and evidence.

Sources are tried in the order the hierarchy lists them; the first that yields a score wins.

- ``probe:<id>`` with a value function: every measurement of the indicator (from any probe)
  with a value is converted to the indicator's unit and scored; the indicator's score is the
  **mean** of those scores and its ``actual`` is the value of the **worst**-scoring
  measurement (e.g. the slowest endpoint's p95), so the PIA triple shows what to fix. Its
  ``source`` names the probes that produced the values (``probe:<id>``, the worst value's
  first, comma-separated), not the source the hierarchy declares.
- ``probe:<id>`` with a findings function: the open findings (fail/warn, no waiver) whose
  ``Finding.indicator`` is this indicator are penalised by severity. The indicator is
  assessed only when at least one pass/fail/warn finding feeds it: a probe that ran but
  observed nothing (every check skipped or failed to get an answer) leaves it *not
  assessed*, never 100. ``actual`` is the number of open findings, ``expected`` 0.
- A measurement marked ``bounded_by`` (the audit's own rate limit, budget or time bound
  set the value) counts only when it meets its expectation; otherwise the CRM was not
  shown to be worse than the value, and the measurement is not assessed.

An indicator that is not assessed carries the reasons (skipped or failed checks with their
``not_assessed`` reason, a probe that was skipped, errored, interrupted or not run) and the
hints that say how to assess it.
- ``evidence``: the evidence file's value for the indicator, marked with who supplied it.

Whatever the function, an open finding of a capped severity (default: critical → 20) caps
the score; ``capped_by`` names it. Expected value: the hierarchy's, else the measurement's
(or evidence's) own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from crm_audit.core.model import AuditResult, Finding, Measurement, Status
from crm_audit.scoring.evidence import Evidence
from crm_audit.scoring.functions import apply_caps
from crm_audit.scoring.hierarchy import Node
from crm_audit.scoring.units import UnitError, convert

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
    #: not assessed: why, and what would assess it
    reasons: tuple[str, ...] = field(default_factory=tuple)
    hints: tuple[str, ...] = field(default_factory=tuple)

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
    #: skipped or errored checks by indicator: the evidence that is missing
    unassessed: dict[str, list[Finding]] = field(default_factory=dict)
    #: why a probe produced nothing, by probe id ("skipped: needs --allow-writes")
    probe_reason: dict[str, str] = field(default_factory=dict)
    complete: bool = True
    #: by indicator, the probe that produced each entry of ``measurements`` (same order)
    producers: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, result: AuditResult) -> ResultIndex:
        measurements: dict[str, list[Measurement]] = defaultdict(list)
        producers: dict[str, list[str]] = defaultdict(list)
        findings: dict[str, list[Finding]] = defaultdict(list)
        unassessed: dict[str, list[Finding]] = defaultdict(list)
        for probe in result.probes:
            for m in probe.measurements:
                if m.value is not None and not math.isnan(m.value):
                    measurements[m.indicator].append(m)
                    producers[m.indicator].append(probe.probe)
            for f in probe.findings:
                if f.indicator and f.status in _COUNTED:
                    findings[f.indicator].append(f)
                elif f.indicator:
                    unassessed[f.indicator].append(f)
        reasons = {p.probe: f"{p.status}" + (f": {p.reason}" if p.reason else "")
                   for p in result.probes if p.status != "ok"}
        return cls(dict(measurements), dict(findings), {p.probe: p.status for p in result.probes},
                   dict(unassessed), reasons, result.complete, dict(producers))


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
            outcome = _from_measurements(node, index.measurements.get(node.id, []),
                                         index.producers.get(node.id, []))
        if outcome is not None:
            break
    if outcome is None or outcome.score is None:
        reasons, hints = _why_not_assessed(node, index)
        return LeafScore(False, findings=open_ids, reasons=reasons, hints=hints)
    score, capped_by = apply_caps(outcome.score, open_findings, fn.caps)
    return LeafScore(True, score, outcome.actual, outcome.expected, outcome.source, outcome.evidence, capped_by, open_ids)


def _why_not_assessed(node: Node, index: ResultIndex) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The reasons an indicator has no evidence, and the hints that would give it some."""
    reasons: list[str] = []
    hints: list[str] = []
    for f in index.unassessed.get(node.id, []):
        why = f.not_assessed.value.replace("_", " ") if f.not_assessed else f.status.value
        reasons.append(f"{f.id}: {why}")
        if f.hint:
            hints.append(f.hint)
    for m in index.measurements.get(node.id, []):
        if m.bounded_by:
            reasons.append(f"{m.label or m.indicator}: {m.value:g} {m.unit} was set by the audit's own {m.bounded_by.replace('_', ' ')}")
    for probe in node.probes:
        if probe in index.probe_reason:
            reasons.append(f"probe {probe} {index.probe_reason[probe]}")
        elif probe not in index.probe_status:
            reasons.append(f"probe {probe} did not run" + ("" if index.complete else " (audit interrupted)"))
            hints.append(f"run the {probe} probe")
        elif not reasons:
            reasons.append(f"probe {probe} ran but observed nothing for this indicator")
    if "evidence" in node.sources and not reasons:
        reasons.append("no evidence file value")
        hints.append(f"give {node.id} in the evidence file (profile key evidence)")
    return tuple(dict.fromkeys(reasons)), tuple(dict.fromkeys(hints))


def _from_findings(node: Node, probe: str, related: list[Finding], open_findings: list[Finding], index: ResultIndex) -> LeafScore | None:
    if not any(f.assessed for f in related):
        return None  # nothing observed: not assessed, never 100
    fn = node.function
    penalty = fn.penalty(open_findings)  # type: ignore[union-attr]
    return LeafScore(True, fn.score(penalty), float(len(open_findings)), 0.0, f"probe:{probe}")  # type: ignore[union-attr]


def _from_measurements(node: Node, measurements: list[Measurement], producers: list[str]) -> LeafScore | None:
    fn = node.function
    scored: list[tuple[float, float, float | None, str]] = []  # (score, value, expected, producing probe)
    for m, probe in zip(measurements, producers):
        try:
            value = convert(float(m.value), m.unit, node.unit)  # type: ignore[arg-type]
            own_expected = convert(m.expected, m.unit, node.unit) if m.expected is not None else None
        except UnitError:
            continue
        expected = node.expected if node.expected is not None else own_expected
        if m.bounded_by and not _meets(value, expected, node.better or m.better):
            continue  # the audit's own bound set this value: no evidence against the CRM
        score = fn.score(value, expected)  # type: ignore[union-attr]
        if score is not None:
            scored.append((score, value, expected, probe))
    if not scored:
        return None
    mean = sum(row[0] for row in scored) / len(scored)
    worst = min(scored, key=lambda row: row[0])
    probes = dict.fromkeys([worst[3]] + [row[3] for row in scored])
    return LeafScore(True, mean, _finite(worst[1]), worst[2], ", ".join(f"probe:{p}" for p in probes))


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


def _meets(value: float, expected: float | None, better: str) -> bool:
    """True when ``value`` meets ``expected`` in the indicator's direction (no expectation: False)."""
    if expected is None:
        return False
    return value <= expected if better == "lower" else value >= expected


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
