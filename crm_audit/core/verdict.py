"""The verdict: a decision drawn from the evidence, apart from the score (docs/scoring.md, "Verdict").

Rules, first match decides the word; every rule that holds is listed among the reasons:

1. **Not fit**: any open critical finding, or a dimension capped to Fail.
2. **Inconclusive**: the audit was interrupted, or it was not scored (coverage unknown), or
   coverage of the hierarchy is below ``verdict.min_coverage``, or an essential dimension's
   coverage is below its threshold (``verdict.essential``, security by default).
3. **Fit with conditions**: open high findings, or assessed indicators graded Fail.
4. **Fit**: none of the above.

Not fit and Inconclusive both block: neither is better than the other, so less evidence can
never turn a blocking verdict into a passing one (:func:`rank`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crm_audit.core.model import SEVERITY_ORDER, AuditResult, Finding, Verdict, VerdictWord
from crm_audit.core.profile import VerdictRules

FIT: VerdictWord = "Fit"
CONDITIONS: VerdictWord = "Fit with conditions"
NOT_FIT: VerdictWord = "Not fit"
INCONCLUSIVE: VerdictWord = "Inconclusive"

_RANK: dict[str, int] = {FIT: 2, CONDITIONS: 1, NOT_FIT: 0, INCONCLUSIVE: 0}
#: below this an indicator's or dimension's score is graded Fail (grades.py)
FAIL_BELOW = 50.0


def rank(word: str) -> int:
    """How good a verdict is for release: Fit 2, Fit with conditions 1, Not fit and Inconclusive 0."""
    return _RANK[word]


def open_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Open (failed or warning, not waived) findings by severity, every severity present."""
    counts = {s: 0 for s in reversed(SEVERITY_ORDER)}
    for f in findings:
        if f.is_open:
            counts[f.severity.value] += 1
    return counts


def decide(result: AuditResult, rules: VerdictRules | None = None) -> Verdict:
    """The verdict of ``result`` under ``rules`` (defaults: docs/scoring.md)."""
    rules = rules or VerdictRules()
    findings = result.all_findings()
    counts = open_counts(findings)
    scoring = result.scoring
    nodes = {n.id: n for n in scoring.nodes} if scoring is not None else {}
    dims = [n for n in nodes.values() if n.kind == "dimension"]
    coverage = scoring.coverage if scoring is not None else None
    dim_cov = {d.id: float(d.coverage or 0.0) for d in dims}

    not_fit: list[str] = []
    crit = sorted({f.id for f in findings if f.is_open and f.severity.value == "critical"})
    if crit:
        not_fit.append(f"{counts['critical']} open critical finding(s): {_ids(crit)}")
    for d in dims:
        if d.capped_by and d.score is not None and d.score < FAIL_BELOW:
            not_fit.append(f"{d.title} capped to Fail ({d.score:.1f}) by {d.capped_by}")

    inconclusive: list[str] = []
    if not result.complete:
        inconclusive.append(f"the audit did not finish ({result.incomplete_reason or 'incomplete'})")
    if scoring is None:
        inconclusive.append("not scored against a hierarchy, so coverage is unknown")
    elif coverage is None or coverage < rules.min_coverage:
        inconclusive.append(f"coverage {_pct(coverage)} is below {_pct(rules.min_coverage)}")
    for dim_id, need in rules.essential.items():
        if dim_id in dim_cov and dim_cov[dim_id] < need:
            title = nodes[dim_id].title or dim_id
            inconclusive.append(f"{title} coverage {_pct(dim_cov[dim_id])} is below {_pct(need)}")

    conditions: list[str] = []
    highs = sorted({f.id for f in findings if f.is_open and f.severity.value == "high"})
    if highs:
        conditions.append(f"{counts['high']} open high finding(s): {_ids(highs)}")
    failed = [n for n in nodes.values() if n.kind == "indicator" and n.assessed
              and n.score is not None and n.score < FAIL_BELOW]
    if failed:
        conditions.append(f"{len(failed)} indicator(s) graded Fail: {_ids([n.id for n in failed])}")

    word = NOT_FIT if not_fit else INCONCLUSIVE if inconclusive else CONDITIONS if conditions else FIT
    reasons = not_fit + inconclusive + conditions
    if word == FIT:
        reasons = [f"no open critical or high finding, no indicator graded Fail, coverage {_pct(coverage)}"]
    return Verdict(verdict=word, reasons=reasons, open_counts=counts,
                   coverage=None if coverage is None else round(float(coverage), 6),
                   dimension_coverage={k: round(v, 6) for k, v in dim_cov.items()},
                   rules=rules.model_dump())


def rules_of(result: AuditResult, given: VerdictRules | None = None) -> VerdictRules:
    """The rules to judge ``result`` with: those given, else those it was judged with, else defaults."""
    if given is not None:
        return given
    if result.verdict is not None and result.verdict.rules:
        return VerdictRules.model_validate(result.verdict.rules)
    return VerdictRules()


def finalize(result: AuditResult, hierarchy: Any = None, evidence: Any = None,
             rules: VerdictRules | None = None) -> AuditResult:
    """Score (when a hierarchy is given), draw findings from failed indicators, and decide the verdict.

    The one place that turns a raw result into a judged one: the runner, waivers
    (re-scoring) and ``crm-audit score`` all call it, so the rules cannot drift apart.
    """
    rules = rules_of(result, rules)
    update: dict[str, Any] = {}
    if hierarchy is not None:
        from crm_audit.scoring import failed_indicator_findings, score_result

        scoring = score_result(result, hierarchy, evidence, min_coverage=rules.min_coverage)
        before = {f.id: f.waiver for f in result.indicator_findings if f.waiver is not None}
        drawn = [f.model_copy(update={"waiver": before[f.id]}) if f.id in before else f
                 for f in failed_indicator_findings(scoring, hierarchy)]
        update = {"scoring": scoring, "indicator_findings": drawn}
    judged = result.model_copy(update=update)
    return judged.model_copy(update={"verdict": decide(judged, rules)})


def _ids(ids: list[str], most: int = 5) -> str:
    return ", ".join(ids[:most]) + (f" (+{len(ids) - most} more)" if len(ids) > most else "")


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0%}"
