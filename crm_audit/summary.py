"""The terminal's first screen of a result: what to decide, then why (verdict, open findings, coverage)."""

from __future__ import annotations

from crm_audit.core.model import SEVERITY_ORDER, AuditResult, Finding

#: how many open findings the summary names
TOP_FINDINGS = 5


def summary_lines(result: AuditResult) -> list[str]:
    """Verdict and its reasons, open counts by severity, score with coverage, the top open findings."""
    lines: list[str] = []
    v = result.verdict
    if v is not None:
        lines.append(f"{result.target.name}: {v.verdict.upper()} — {v.reasons[0] if v.reasons else ''}".rstrip(" —"))
        lines += [f"  also: {r}" for r in v.reasons[1:4]]
    else:
        lines.append(f"{result.target.name}: no verdict")
    lines.append(score_line(result))
    open_findings = [f for f in result.all_findings() if f.is_open]
    counts = {s: sum(1 for f in open_findings if f.severity.value == s) for s in reversed(SEVERITY_ORDER)}
    sev = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines.append(f"open findings: {len(open_findings)}" + (f" ({sev})" if sev else ""))
    for f in top_open(open_findings):
        lines.append(f"  {f.severity.value:<8} {f.id}  {f.title}"[:160])
    na = result.scoring.not_assessed if result.scoring is not None else []
    if na:
        weight = sum(i.weight or 0.0 for i in na)
        lines.append(f"not assessed: {len(na)} indicator(s), {weight:.0%} of the weight (the report lists why and how to test them)")
    for p in result.probes:
        if p.status in ("error", "incomplete", "skipped"):
            lines.append(f"probe {p.probe}: {p.status}: {p.reason}")
    for w in result.warnings:
        lines.append(f"warning: {w}")
    return lines


def score_line(result: AuditResult) -> str:
    """'score 81.5/100 (Good), coverage 88% — perf 100%, sec 64%, …'; no grade word below the coverage floor."""
    s = result.scoring
    score = s.overall.score if s is not None else None
    if s is None or score is None:
        return "score: not scored"
    grade = s.overall.grade
    text = f"score {score:.1f}/100" + (f" ({grade})" if grade else " (no grade: coverage too low)")
    text += f", coverage {s.coverage or 0:.0%}"
    dims = s.of_kind("dimension")
    if dims:
        text += " — " + ", ".join(f"{d.id} {d.coverage or 0:.0%}" for d in dims)
    return text


def top_open(findings: list[Finding], most: int = TOP_FINDINGS) -> list[Finding]:
    """The most severe open findings first (probe findings before indicator findings of equal severity)."""
    return sorted(findings, key=lambda f: (-f.severity.rank, f.id.startswith("indicator."), f.id))[:most]
