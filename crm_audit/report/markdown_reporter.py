"""Markdown reporter: a short summary for CI job pages (verdict, gates, worst problems, what was not assessed)."""

from __future__ import annotations

import re
from collections import Counter

from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import AuditResult
from crm_audit.core.probe import Reporter
from crm_audit.report.view import (
    SEVERITIES_DESC,
    dimension_coverage,
    finding_state,
    findings_sorted,
    fmt_diff,
    fmt_num,
    fmt_pct,
    fmt_value,
    indicator_rows,
    not_assessed_findings,
    not_assessed_indicators,
    reason_text,
    score_with_coverage,
    verdict_view,
)

TOP_FINDINGS = 15
TOP_INDICATORS = 10
TOP_NOT_ASSESSED = 10
TEXT_LIMIT = 160

# Inline Markdown syntax; block syntax (#, -, +, 1.) cannot start a line here.
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text: object, limit: int = TEXT_LIMIT) -> str:
    """Inline Markdown text that renders literally: HTML and Markdown syntax neutralised."""
    value = " ".join(str(text).split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _verdict(result: AuditResult) -> list[str]:
    score = score_with_coverage(result)
    if result.scoring is not None:
        head = result.scoring.overall
        score = f"**{md(score)}**" + (f" (fuzzy grade {md(head.fuzzy_grade)})"
                                      if head.grade and head.fuzzy_grade else "")
    failed = [g for g in result.gates if not g.passed]
    gates = (
        f"gates: {len(result.gates) - len(failed)} passed, {len(failed)} failed" if result.gates else "no gates"
    )
    lines = [f"## crm-audit: {md(result.target.name)}", ""]
    view = verdict_view(result)
    if view is not None:
        lines.append(f"### Verdict: {md(view.word)}")
        lines.append("")
        if view.reason:
            lines += [f"**{md(view.reason)}**", ""]
        rest = ", ".join(f"{n} {s}" for s, n in view.open_counts if s not in ("critical", "high"))
        lines += [f"Open: **{view.count('critical')} critical, {view.count('high')} high**, {rest}", ""]
        lines += [f"- {md(r)}" for r in view.reasons[1:]] + ([""] if view.reasons[1:] else [])
    lines += [f"{score} · {gates}", ""]
    lines.append(
        f"Target {md(result.target.base_url)} · run {md(result.run_id)} · started {md(result.started)}"
        f" · {md(result.tool.get('name', 'crm-audit'))} {md(result.tool.get('version', ''))}"
    )
    lines.append("")
    if not result.complete:
        lines += [f"> **Incomplete audit:** {md(result.incomplete_reason or 'interrupted')}", ""]
    return lines


def _gates(result: AuditResult) -> list[str]:
    if not result.gates:
        return []
    rows = [[("pass" if g.passed else "**FAIL**"), md(g.gate), md(g.detail)] for g in result.gates]
    return ["### Gates", ""] + _table(["outcome", "gate", "detail"], rows)


def _dimensions(result: AuditResult) -> list[str]:
    dims = dimension_coverage(result)
    if not dims:
        return []
    nodes = result.scoring.nodes if result.scoring is not None else []
    weights = {n.id: n.weight if n.global_weight is None else n.global_weight for n in nodes}
    rows = [
        [md(d.title), fmt_num(d.score) if d.score is not None else "not assessed", md(d.grade or "—"),
         fmt_pct(d.coverage), fmt_num(weights.get(d.id))]
        for d in dims
    ]
    return ["### Dimensions", ""] + _table(["dimension", "score", "grade", "coverage", "weight"], rows)


def _findings(result: AuditResult) -> list[str]:
    findings = result.all_findings()
    states = Counter(finding_state(f) for f in findings)
    open_ = [f for f in findings_sorted(findings) if finding_state(f) == "open"]
    by_sev = Counter(f.severity.value for f in open_)
    counts = ", ".join(f"{by_sev.get(s, 0)} {s}" for s in SEVERITIES_DESC)
    lines = [
        f"### Open findings: {len(open_)}",
        "",
        f"{counts} · {states.get('waived', 0)} waived · {states.get('passed', 0)} checks passed",
        "",
    ]
    if open_:
        rows = [[f.severity.value, md(f.title), md(f.id), md(f.indicator or "—")] for f in open_[:TOP_FINDINGS]]
        lines += _table(["severity", "finding", "id", "indicator"], rows)
        if len(open_) > TOP_FINDINGS:
            lines += [f"… and {len(open_) - TOP_FINDINGS} more in the full report.", ""]
    return lines


def _indicators(result: AuditResult) -> list[str]:
    failing = [r for r in indicator_rows(result) if r.failing]
    if not failing:
        return []
    failing.sort(key=lambda r: (r.score if r.score is not None else 101))
    rows = [
        [md(r.title), fmt_value(r.actual, r.unit), fmt_value(r.expected, r.unit), fmt_diff(r.difference, r.unit),
         fmt_num(r.score)]
        for r in failing[:TOP_INDICATORS]
    ]
    lines = [f"### Indicators below target: {len(failing)}", ""]
    return lines + _table(["indicator", "actual", "expected", "difference", "score"], rows)


def _not_assessed(result: AuditResult) -> list[str]:
    indicators, checks = not_assessed_indicators(result), not_assessed_findings(result)
    if not indicators and not checks:
        return []
    lines = [f"### Not assessed: {len(indicators)} indicators, {len(checks)} checks", ""]
    rows = [[md(r.title), md(r.id), md("; ".join(r.reasons) or "no measurement or evidence"),
             md("; ".join(r.hints) or "—")] for r in indicators[:TOP_NOT_ASSESSED]]
    rows += [[md(f.title), md(f.id), md(reason_text(f)), md(f.hint or "—")] for f in checks[:TOP_NOT_ASSESSED]]
    lines += _table(["not assessed", "id", "why not", "how to assess it"], rows)
    more = max(0, len(indicators) - TOP_NOT_ASSESSED) + max(0, len(checks) - TOP_NOT_ASSESSED)
    return lines + ([f"… and {more} more in the full report.", ""] if more else [])


def _probes(result: AuditResult) -> list[str]:
    broken = [p for p in result.probes if p.status != "ok"]
    if not broken:
        return []
    return ["### Probes not completed", ""] + [
        f"- {md(p.probe)}: {p.status} — {md(p.reason or 'no reason given')}" for p in broken
    ] + [""]


def _baseline(result: AuditResult) -> list[str]:
    base = result.baseline
    if not base:
        return []
    new, fixed = base.get("new_findings") or [], base.get("fixed_findings") or []
    lines = ["### Against the baseline", "", f"{len(new)} new findings, {len(fixed)} fixed.", ""]
    regressions = base.get("regressions") or []
    if regressions:
        rows = [
            [md(r.get("label") or r.get("indicator")), fmt_num(r.get("before")), fmt_num(r.get("after")),
             fmt_num(r.get("p_value"))]
            for r in regressions
        ]
        lines += _table(["regression", "before", "after", "p-value"], rows)
    return lines


class MarkdownReporter(Reporter):
    """Writes ``summary.md``: short enough for a CI job summary, details left to the HTML."""

    format = "markdown"
    filename = "summary.md"
    description = "A short Markdown summary for CI job pages"
    version = "1.0.0"

    def render(self, result: AuditResult) -> str:
        lines = _verdict(result)
        for part in (_gates, _dimensions, _findings, _indicators, _not_assessed, _probes, _baseline):
            lines += part(result)
        lines.append("_Full details: report.html; data: result.json._")
        return "\n".join(lines) + "\n"


@hookimpl
def crm_audit_register_reporters() -> list[type[Reporter]]:
    return [MarkdownReporter]
