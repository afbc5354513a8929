"""Read-only views of an AuditResult that several reporters share.

Indicator rows (the PIA triple per indicator, from the scored hierarchy or, when the result
is not scored, from the raw measurements), finding states, which findings are security
findings, and number formatting. Keeping them here makes every format agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..model import SEVERITY_ORDER, AuditResult, Finding, Status

SECURITY_PROBES = frozenset({"tls", "access", "backup"})
SECURITY_PREFIXES = ("tls.", "access.", "backup.", "hardening.")

#: finding states shown and filtered in the reports, most urgent first
STATES = ("open", "waived", "error", "passed", "skipped")

#: severities from most to least severe
SEVERITIES_DESC = tuple(reversed(SEVERITY_ORDER))


def is_security_finding(finding: Finding) -> bool:
    """True for findings of the security probes or with a security id prefix (SARIF's scope)."""
    return finding.probe in SECURITY_PROBES or finding.id.startswith(SECURITY_PREFIXES)


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

    @property
    def failing(self) -> bool:
        """Assessed and either scored under 50 or missing its expected value."""
        if not self.assessed:
            return False
        low = self.score is not None and self.score < 50
        return low or self.meets is False


def scoring_nodes(result: AuditResult) -> list[dict[str, Any]]:
    """The scored hierarchy's nodes in pre-order; empty when the result is not scored."""
    if not result.scoring:
        return []
    nodes = result.scoring.get("nodes") or []
    return [n for n in nodes if isinstance(n, dict) and n.get("id") is not None]


def _dimension_of(node: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    seen: set[str] = set()
    current: dict[str, Any] | None = node
    while current is not None and current.get("id") not in seen:
        seen.add(current["id"])
        if current.get("kind") == "dimension":
            return current
        current = by_id.get(current.get("parent"))  # type: ignore[arg-type]
    return None


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
                    dimension_title=str((dim or {}).get("title") or dim_id),
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


def overall(result: AuditResult) -> dict[str, Any]:
    """The scoring's overall block (score, grade, membership, fuzzy_grade), or {}."""
    if not result.scoring:
        return {}
    block = result.scoring.get("overall")
    return block if isinstance(block, dict) else {}


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
