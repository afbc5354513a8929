"""Text tables of a Scoring, a comparison and AHP weights, for the terminal.

Rows are built here once; ``format_table`` prints them as plain aligned text, and the CLI
hands the same rows to rich when writing to a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crm_audit.core.scoring_model import Scoring
from crm_audit.scoring.grades import GRADES

SCORING_HEADERS = ("indicator", "weight", "score", "grade", "actual", "expected", "diff", "unit", "note")
COMPARE_HEADERS = ("rank", "result", "score", "grade", "grey grade", "grey rank", "coverage")


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1e5 or (value != 0 and abs(value) < 10 ** -digits):
        return f"{value:.3g}"
    return f"{value:.{digits}f}"


def _value(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def scoring_rows(scoring: Scoring) -> list[list[str]]:
    """One row per node, indented by depth; not-assessed nodes say so."""
    rows = []
    for node in scoring.nodes:
        notes = []
        if not node.assessed:
            notes.append("not assessed")
        if node.capped_by:
            notes.append(f"capped by {node.capped_by}")
        if node.evidence:
            ev = node.evidence
            who = ", ".join(x for x in (ev.get("supplied_by"), ev.get("date")) if x)
            notes.append(f"evidence ({who})" if who else "evidence")
        if node.findings:
            notes.append(f"{len(node.findings)} open finding(s)")
        rows.append([
            "  " * node.depth + node.id,
            f"{node.weight:.3f}",
            _num(node.score),
            node.grade or "–",
            _value(node.actual),
            _value(node.expected),
            _value(node.difference),
            node.unit or "",
            "; ".join(notes),
        ])
    return rows


def overall_line(scoring: Scoring) -> str:
    """'Overall 75.8 (Good), fuzzy grade Good [E 0.36 G 0.44 P 0.06 F 0.14], coverage 23%'."""
    overall = scoring.overall
    coverage = f"coverage {(scoring.coverage or 0.0) * 100:.0f}% of the weight assessed"
    if overall.score is None:
        return f"{scoring.title}: nothing assessed, {coverage}"
    member = overall.membership or {}
    vector = " ".join(f"{g[0]} {member.get(g, 0):.2f}" for g in GRADES)
    return (
        f"{scoring.title}: overall {overall.score:.1f} ({overall.grade}), "
        f"fuzzy grade {overall.fuzzy_grade} [{vector}], {coverage}"
    )


def compare_rows(comparison: Mapping[str, Any]) -> list[list[str]]:
    """Results ordered by weighted-score rank."""
    results = sorted(comparison["results"], key=lambda r: (r["rank_score"] is None, r["rank_score"] or 0))
    return [
        [
            "–" if r["rank_score"] is None else str(r["rank_score"]),
            r["label"],
            _num(r["score"]),
            r["grade"] or "–",
            "–" if r["grey_grade"] is None else f"{r['grey_grade']:.4f}",
            "–" if r["rank_grey"] is None else str(r["rank_grey"]),
            f"{r['coverage'] * 100:.0f}%",
        ]
        for r in results
    ]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns: text left, numbers right."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in rows) and bool(rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _is_number(text: str) -> bool:
    if text in ("–", ""):
        return True
    try:
        float(text.rstrip("%"))
    except ValueError:
        return False
    return True
