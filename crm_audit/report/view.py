"""Read-only views of an AuditResult that several reporters share.

Indicator rows (the PIA triple per indicator, from the scored hierarchy or, when the result
is not scored, from the raw measurements), the verdict with the score and its coverage,
what was not assessed and why, finding states, which findings are security findings, and
number formatting. Keeping them here makes every format agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_audit.core.model import SEVERITY_ORDER, AuditResult, Finding, NotAssessed, Status
from crm_audit.core.scoring_model import OverallScore, ScoredNode

#: dimensions whose findings are security findings (SARIF's scope): security, and backup & recovery
SECURITY_DIMENSIONS = frozenset({"sec", "bak"})

#: finding states shown and filtered in the reports, most urgent first
STATES = ("open", "waived", "error", "passed", "skipped")

#: severities from most to least severe
SEVERITIES_DESC = tuple(reversed(SEVERITY_ORDER))


def is_security_finding(finding: Finding, dimensions: Mapping[str, str] | None = None) -> bool:
    """True when the finding's indicator belongs to a security dimension (SARIF's scope).

    The dimension is the indicator's in the scored hierarchy (``dimensions``, from
    :func:`indicator_dimensions`), else the indicator id's first part (``sec.audit_trail`` → ``sec``);
    a finding without an indicator is not a security finding.
    """
    if not finding.indicator:
        return False
    dim = (dimensions or {}).get(finding.indicator) or finding.indicator.split(".", 1)[0]
    return dim in SECURITY_DIMENSIONS


def finding_state(finding: Finding) -> str:
    """One of STATES: a failed/warning finding is open unless a waiver accepts it."""
    if finding.status in (Status.failed, Status.warn):
        return "waived" if finding.waiver is not None else "open"
    if finding.status is Status.error:
        return "error"
    if finding.status is Status.skipped:
        return "skipped"
    return "passed"


def findings_sorted(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then open before waived before passed, then by id."""
    return sorted(
        findings,
        key=lambda f: (-f.severity.rank, STATES.index(finding_state(f)), f.id),
    )


def as_float(value: Any) -> float | None:
    """A finite float, or None for anything else (strings such as 'pass', NaN, None)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def meets_expected(actual: Any, expected: Any, better: str | None) -> bool | None:
    """Whether a numeric actual value meets the expected one; None when either is missing."""
    a, e = as_float(actual), as_float(expected)
    if a is None or e is None:
        return None
    return a >= e if better == "higher" else a <= e


@dataclass(frozen=True)
class IndicatorRow:
    """One indicator with its PIA triple and, when scored, its score and weights."""

    id: str
    title: str
    dimension: str
    dimension_title: str
    assessed: bool
    actual: Any = None
    expected: Any = None
    difference: Any = None
    unit: str = ""
    better: str | None = None
    meets: bool | None = None
    score: float | None = None
    grade: str | None = None
    weight: float | None = None
    global_weight: float | None = None
    effective_weight: float | None = None
    source: str | None = None
    function: str | None = None
    capped_by: Any = None
    findings: tuple[str, ...] = field(default_factory=tuple)
    scored: bool = True
    #: why a not-assessed indicator was not assessed, and what would assess it
    reasons: tuple[str, ...] = field(default_factory=tuple)
    hints: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failing(self) -> bool:
        """Assessed and either scored under 50 or missing its expected value."""
        if not self.assessed:
            return False
        low = self.score is not None and self.score < 50
        return low or self.meets is False


def scoring_nodes(result: AuditResult) -> list[ScoredNode]:
    """The scored hierarchy's nodes in pre-order; empty when the result is not scored."""
    return list(result.scoring.nodes) if result.scoring is not None else []


def _dimension_of(node: ScoredNode, by_id: dict[str, ScoredNode]) -> ScoredNode | None:
    seen: set[str] = set()
    current: ScoredNode | None = node
    while current is not None and current.get("id") not in seen:
        seen.add(current["id"])
        if current.get("kind") == "dimension":
            return current
        current = by_id.get(current.get("parent"))
    return None


def indicator_dimensions(result: AuditResult) -> dict[str, str]:
    """Indicator id → id of its dimension in the scored hierarchy (empty when not scored)."""
    nodes = scoring_nodes(result)
    by_id = {n["id"]: n for n in nodes}
    out = {}
    for node in nodes:
        dim = _dimension_of(node, by_id) if node.get("kind") == "indicator" else None
        if dim is not None:
            out[str(node["id"])] = str(dim["id"])
    return out


def _texts(node: ScoredNode, key: str) -> tuple[str, ...]:
    """The node's not_assessed reasons or hints as strings (absent or malformed: none)."""
    block = node.get("not_assessed")
    items = block.get(key) if block is not None else None
    return tuple(str(i) for i in items if i) if isinstance(items, list) else ()


def indicator_rows(result: AuditResult) -> list[IndicatorRow]:
    """Every indicator: the scored hierarchy's leaves, else one row per measurement."""
    nodes = scoring_nodes(result)
    if nodes:
        by_id = {n["id"]: n for n in nodes}
        rows = []
        for node in nodes:
            if node.get("kind") != "indicator":
                continue
            dim = _dimension_of(node, by_id)
            dim_id = dim["id"] if dim else str(node["id"]).split(".", 1)[0]
            difference = node.get("difference")
            if difference is None:
                a, e = as_float(node.get("actual")), as_float(node.get("expected"))
                difference = a - e if a is not None and e is not None else None
            rows.append(
                IndicatorRow(
                    id=str(node["id"]),
                    title=str(node.get("title") or node["id"]),
                    dimension=str(dim_id),
                    dimension_title=str((dim.get("title") if dim else None) or dim_id),
                    assessed=bool(node.get("assessed")),
                    actual=node.get("actual"),
                    expected=node.get("expected"),
                    difference=difference,
                    unit=str(node.get("unit") or ""),
                    better=node.get("better"),
                    meets=meets_expected(node.get("actual"), node.get("expected"), node.get("better")),
                    score=as_float(node.get("score")),
                    grade=node.get("grade"),
                    weight=as_float(node.get("weight")),
                    global_weight=as_float(node.get("global_weight")),
                    effective_weight=as_float(node.get("effective_weight")),
                    source=node.get("source"),
                    function=node.get("function"),
                    capped_by=node.get("capped_by"),
                    findings=tuple(str(f) for f in node.get("findings") or ()),
                    reasons=_texts(node, "reasons"),
                    hints=_texts(node, "hints"),
                )
            )
        return rows
    return [
        IndicatorRow(
            id=m.indicator,
            title=m.label or m.indicator,
            dimension=m.indicator.split(".", 1)[0],
            dimension_title=m.indicator.split(".", 1)[0],
            assessed=m.value is not None,
            actual=m.value,
            expected=m.expected,
            difference=m.difference,
            unit=m.unit,
            better=m.better,
            meets=m.meets_expected,
            scored=False,
        )
        for m in result.all_measurements()
    ]


def overall(result: AuditResult) -> OverallScore:
    """The scoring's overall block (score, grade, membership, fuzzy_grade); all None when not scored."""
    return result.scoring.overall if result.scoring is not None else OverallScore()


#: the phrase shown for each reason a check was not assessed
REASON_TEXT = {
    NotAssessed.safety: "not allowed by the audit's safety settings",
    NotAssessed.needs_account: "needs another account (second tenant or role)",
    NotAssessed.not_configured: "not configured in the profile",
    NotAssessed.not_applicable: "the target has no such feature",
    NotAssessed.request_failed: "the request failed",
    NotAssessed.timed_out: "the target did not answer in time",
    NotAssessed.audit_limit: "cut by the audit's own rate limit, budget or deadline",
    NotAssessed.probe_error: "the probe failed",
    NotAssessed.interrupted: "interrupted before it ran",
}

#: verdict word → CSS class suffix, best to worst (Inconclusive last: it decides nothing)
VERDICT_CLASS = {"Fit": "fit", "Fit with conditions": "cond", "Not fit": "notfit", "Inconclusive": "inconclusive"}


def reason_text(finding: Finding) -> str:
    """Why a not-assessed finding was not assessed, in words ('' for an assessed one)."""
    if finding.not_assessed is None:
        return ""
    return REASON_TEXT.get(finding.not_assessed, finding.not_assessed.value)


def open_findings(result: AuditResult) -> list[Finding]:
    """Open findings (failed or warning, not waived) most severe first, indicator findings included."""
    return [f for f in findings_sorted(result.all_findings()) if finding_state(f) == "open"]


def not_assessed_findings(result: AuditResult) -> list[Finding]:
    """Checks that could not be assessed (status skipped or error), most severe first."""
    return [f for f in findings_sorted(result.all_findings()) if not f.assessed]


def not_assessed_indicators(result: AuditResult) -> list[IndicatorRow]:
    """Indicators of the scored hierarchy that nothing assessed, heaviest first."""
    rows = [r for r in indicator_rows(result) if r.scored and not r.assessed]
    return sorted(rows, key=lambda r: (-(r.global_weight or 0.0), r.id))


def failed_indicators(result: AuditResult) -> dict[str, Finding]:
    """The result's indicator findings by indicator id ("indicator.<id>" or the finding's indicator)."""
    out: dict[str, Finding] = {}
    for finding in result.indicator_findings:
        key = finding.indicator or finding.id.removeprefix("indicator.")
        out.setdefault(key, finding)
    return out


@dataclass(frozen=True)
class DimensionCoverage:
    """One dimension's share of weight assessed, with its score and grade."""

    id: str
    title: str
    coverage: float | None
    score: float | None
    grade: str | None


@dataclass(frozen=True)
class VerdictView:
    """The decision and the measure beside it, as every format shows them."""

    word: str
    css: str
    reasons: tuple[str, ...]
    open_counts: tuple[tuple[str, int], ...]
    coverage: float | None
    min_coverage: float | None
    score: float | None
    grade: str | None
    dimensions: tuple[DimensionCoverage, ...]

    @property
    def reason(self) -> str:
        return self.reasons[0] if self.reasons else ""

    def count(self, severity: str) -> int:
        return dict(self.open_counts).get(severity, 0)


def _min_coverage(rules: dict[str, Any]) -> float | None:
    """The coverage a grade and a decision need, from the verdict's rules."""
    if as_float(rules.get("min_coverage")) is not None:
        return as_float(rules["min_coverage"])
    return next((as_float(v) for k, v in sorted(rules.items()) if "coverage" in k and as_float(v) is not None), None)


def dimension_coverage(result: AuditResult) -> list[DimensionCoverage]:
    """Coverage per dimension: the verdict's figures, else the scored nodes' own."""
    given = result.verdict.dimension_coverage if result.verdict else {}
    out = []
    for node in scoring_nodes(result):
        if node.get("kind") != "dimension":
            continue
        cov = as_float(given.get(str(node["id"]))) if str(node["id"]) in given else as_float(node.get("coverage"))
        out.append(DimensionCoverage(str(node["id"]), str(node.get("title") or node["id"]), cov,
                                     as_float(node.get("score")), node.get("grade")))
    known = {d.id for d in out}
    out += [DimensionCoverage(k, k, as_float(v), None, None) for k, v in given.items() if k not in known]
    return out


def verdict_view(result: AuditResult) -> VerdictView | None:
    """The verdict with the score, grade and coverage beside it; None for a result without one."""
    verdict = result.verdict
    if verdict is None:
        return None
    head = overall(result)
    coverage = verdict.coverage if verdict.coverage is not None else as_float(result.scoring.get("coverage") if result.scoring else None)
    counts = tuple((s, int(verdict.open_counts.get(s, 0))) for s in SEVERITIES_DESC)
    return VerdictView(
        word=verdict.verdict, css=VERDICT_CLASS.get(verdict.verdict, "inconclusive"),
        reasons=tuple(verdict.reasons), open_counts=counts, coverage=coverage,
        min_coverage=_min_coverage(verdict.rules), score=as_float(head.get("score")), grade=head.get("grade"),
        dimensions=tuple(dimension_coverage(result)),
    )


def score_with_coverage(result: AuditResult) -> str:
    """'score 62.3 (Pass), coverage 92 %'; without a grade word when coverage is too low for one."""
    if result.scoring is None:
        return "not scored"
    head = overall(result)
    coverage = as_float(result.scoring.get("coverage"))
    if result.verdict is not None and result.verdict.coverage is not None:
        coverage = result.verdict.coverage
    score = as_float(head.get("score"))
    if score is None:
        return f"nothing assessed, coverage {fmt_pct(coverage)}"
    grade = head.get("grade")
    text = f"score {fmt_num(score)}" + (f" ({grade})" if grade else "") + f", coverage {fmt_pct(coverage)}"
    if not grade:
        needed = _min_coverage(result.verdict.rules) if result.verdict else None
        text += f" (no grade: a grade needs {fmt_pct(needed)} coverage)" if needed is not None else " (no grade)"
    return text


def fmt_num(value: Any) -> str:
    """A compact human number: '—' for missing, thousands separated, few decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    number = as_float(value)
    if number is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(number)
    if magnitude >= 1000:
        text = f"{number:,.0f}"
    elif magnitude >= 100:
        text = f"{number:.1f}"
    elif magnitude >= 1:
        text = f"{number:.2f}"
    elif magnitude == 0:
        return "0"
    else:
        text = f"{number:.3g}"
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fmt_value(value: Any, unit: str = "") -> str:
    """A value with its unit; ratios shown as percentages."""
    if value is None:
        return "—"
    number = as_float(value)
    if unit == "ratio" and number is not None:
        return f"{fmt_num(number * 100)} %"
    text = fmt_num(value)
    return f"{text} {unit}" if unit and number is not None else text


def fmt_diff(value: Any, unit: str = "") -> str:
    """A signed difference; ratio differences in percentage points."""
    number = as_float(value)
    if number is None:
        return "—" if value is None else str(value)
    sign = "+" if number > 0 else ""
    if unit == "ratio":
        return f"{sign}{fmt_num(number * 100)} pp"
    return f"{sign}{fmt_num(number)}{' ' + unit if unit else ''}"


def fmt_pct(value: Any) -> str:
    """A 0..1 share as a percentage."""
    number = as_float(value)
    return "—" if number is None else f"{fmt_num(number * 100)} %"


def clip(text: str | None, limit: int) -> tuple[str, int]:
    """The first ``limit`` characters of text and how many were cut off."""
    if not text:
        return "", 0
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit
