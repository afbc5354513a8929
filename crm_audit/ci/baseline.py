"""Baseline comparison: what changed since a previous run of the same audit.

Findings are compared by id; scores node by node; measurements that kept their raw samples
(latency) are judged statistically, so that noise does not make a CI gate flaky: a change is
a regression only when the median moved the wrong way by more than a relative threshold
(default 20 %) *and* by more than an absolute floor (10 ms), *and* a one-sided Mann-Whitney U
test says the new samples are slower (p < 0.01). The floor is there because a loaded machine
really does get slower between two runs — a true shift the test rightly calls significant, but
not a change of the target (measured: two runs of the same server 5.6 → 11.2 ms, p = 3e-6).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_audit.core.ci_model import BaselineComparison, Regression, RegressionPolicyRecord, ScoreChange
from crm_audit.core.errors import InputFileError
from crm_audit.core.model import AuditResult
from crm_audit.core.safeyaml import load_file
from crm_audit.core.scoring_model import Scoring

FAILING = ("fail", "warn")


class BaselineError(InputFileError):
    """The baseline file cannot be read or is not an audit result."""


@dataclass(frozen=True)
class RegressionPolicy:
    """When a change of a sampled measurement counts as a regression."""

    threshold: float = 0.20      # relative change of the median, in the bad direction
    alpha: float = 0.01          # one-sided Mann-Whitney U significance level
    min_delta_ms: float = 10.0   # absolute floor for time units (ms; converted for s): smaller
                                 # shifts are what a busy shared CI runner does between two runs
    min_samples: int = 8         # fewer samples on either side: not judged


def load_baseline(path: str | Path) -> dict[str, Any]:
    """A previous run's result.json, as plain data (older schema versions are fine)."""
    p = Path(path)
    data = load_file(p, "baseline", BaselineError, as_json=True).data
    if not isinstance(data, dict) or not isinstance(data.get("probes"), list) or "run_id" not in data:
        raise BaselineError(f"{p}: not an audit result (expected the result.json of an earlier run)")
    return data


def judge_samples(before: Sequence[float], after: Sequence[float], better: str = "lower", unit: str = "",
                  policy: RegressionPolicy = RegressionPolicy()) -> dict[str, Any] | None:
    """Compare two sample sets; returns the figures and ``regressed``, or None if too few samples."""
    if len(before) < policy.min_samples or len(after) < policy.min_samples:
        return None
    from scipy.stats import mannwhitneyu

    m_before, m_after = statistics.median(before), statistics.median(after)
    worse = (m_after - m_before) if better == "lower" else (m_before - m_after)
    relative = worse / abs(m_before) if m_before else (float("inf") if worse > 0 else 0.0)
    # H1: the new samples are stochastically worse (greater when lower is better)
    alternative = "greater" if better == "lower" else "less"
    p_value = float(mannwhitneyu(list(after), list(before), alternative=alternative).pvalue)
    floor = _abs_floor(unit, policy)
    regressed = relative > policy.threshold and worse > floor and p_value < policy.alpha
    return {"before": round(m_before, 4), "after": round(m_after, 4), "relative_change": round(relative, 4),
            "p_value": p_value, "regressed": bool(regressed)}


def _abs_floor(unit: str, policy: RegressionPolicy) -> float:
    return {"ms": policy.min_delta_ms, "s": policy.min_delta_ms / 1000.0}.get(unit, 0.0)


def compare(current: AuditResult, baseline: dict[str, Any],
            policy: RegressionPolicy = RegressionPolicy()) -> BaselineComparison:
    """The ``result.baseline`` record: new/fixed/unchanged findings, score changes, regressions.

    ``baseline`` is the earlier result as plain JSON data, so results of older schema versions compare too.
    """
    now = _failing_ids([f.model_dump(mode="json") for f in current.all_findings()])
    before = _failing_ids([f for p in baseline.get("probes") or [] for f in (p.get("findings") or [])])
    run_id, started = baseline.get("run_id"), baseline.get("started")
    return BaselineComparison(
        run_id=None if run_id is None else str(run_id),
        started=None if started is None else str(started),
        new_findings=sorted(now - before),
        fixed_findings=sorted(before - now),
        unchanged_findings=sorted(now & before),
        score_changes=_score_changes(current.scoring, baseline.get("scoring") or {}),
        regressions=_regressions(current, baseline, policy),
        policy=RegressionPolicyRecord(threshold=policy.threshold, alpha=policy.alpha, min_delta_ms=policy.min_delta_ms),
    )


def _failing_ids(findings: list[dict[str, Any]]) -> set[str]:
    return {str(f.get("id")) for f in findings if isinstance(f, dict) and f.get("status") in FAILING}


def _score_changes(now: Scoring | None, before: dict[str, Any]) -> list[ScoreChange]:
    """Nodes of the current scoring whose score moved against the baseline's (raw JSON) scoring."""
    old = {n.get("id"): n.get("score") for n in before.get("nodes") or [] if isinstance(n, dict)}
    out = []
    for node in now.nodes if now is not None else []:
        nid, after = node.id, node.score
        prev = old.get(nid)
        prev = float(prev) if isinstance(prev, (int, float)) and not isinstance(prev, bool) else None
        if nid in old and (prev is None) != (after is None) or (
                prev is not None and after is not None and abs(after - prev) >= 0.05):
            out.append(ScoreChange(id=nid, before=prev, after=after))
    return out


def _regressions(current: AuditResult, baseline: dict[str, Any], policy: RegressionPolicy) -> list[Regression]:
    old: dict[tuple[str, str, str], dict[str, Any]] = {}
    for p in baseline.get("probes") or []:
        for m in p.get("measurements") or []:
            if isinstance(m, dict) and m.get("raw_samples"):
                old.setdefault((str(p.get("probe")), str(m.get("indicator")), str(m.get("label") or "")), m)
    out = []
    for p in current.probes:
        for m in p.measurements:
            prev = old.get((p.probe, m.indicator, m.label or ""))
            if prev is None or not m.raw_samples:
                continue
            verdict = judge_samples(prev["raw_samples"], m.raw_samples, m.better, m.unit, policy)
            if verdict and verdict.pop("regressed"):
                out.append(Regression(indicator=m.indicator, label=m.label, probe=p.probe, unit=m.unit,
                                      statistic="median", **verdict,
                                      samples=[len(prev["raw_samples"]), len(m.raw_samples)]))
    return out
