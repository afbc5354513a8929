"""Gates: the pass/fail rules a CI job sets on an audit (score floors, severities, thresholds,
regressions against a baseline). Waived findings never fail a gate."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from crm_audit.core.errors import InputFileError
from crm_audit.core.model import SEVERITY_ORDER, AuditResult, GateOutcome
from crm_audit.core.profile import Gates, ThresholdGate


def evaluate_gates(result: AuditResult, gates: Gates) -> list[GateOutcome]:
    """Judge the result against every configured gate; an empty list means no gate was set."""
    out: list[GateOutcome] = []
    scoring = result.scoring
    overall = scoring.overall.score if scoring is not None else None
    if gates.fail_under is not None:
        if overall is None:
            out.append(GateOutcome(gate="fail_under", passed=False, detail="no overall score to compare (nothing scored)"))
        else:
            out.append(GateOutcome(gate="fail_under", passed=overall >= gates.fail_under,
                                   detail=f"overall score {overall:.1f} vs floor {gates.fail_under:g}"))
    nodes = {n.id: n for n in scoring.nodes} if scoring is not None else {}
    for dim, floor in gates.fail_under_dimension.items():
        node = nodes.get(dim)
        score = node.score if node else None
        if score is None:
            out.append(GateOutcome(gate=f"fail_under:{dim}", passed=False, detail=f"dimension {dim!r} not scored"))
        else:
            out.append(GateOutcome(gate=f"fail_under:{dim}", passed=score >= floor,
                                   detail=f"{dim} score {score:.1f} vs floor {floor:g}"))
    if gates.fail_on is not None:
        floor_rank = SEVERITY_ORDER.index(gates.fail_on)
        bad = [f for f in result.all_findings()
               if f.status.value == "fail" and f.waiver is None and f.severity.rank >= floor_rank]
        detail = (f"{len(bad)} open finding(s) at or above {gates.fail_on}: "
                  + ", ".join(sorted({f.id for f in bad})[:10])) if bad else f"no open finding at or above {gates.fail_on}"
        out.append(GateOutcome(gate=f"fail_on:{gates.fail_on}", passed=not bad, detail=detail))
    for th in gates.thresholds:
        values = [m for m in result.all_measurements() if m.indicator == th.indicator and m.value is not None]
        if not values:
            out.append(GateOutcome(gate=f"threshold:{th.indicator}", passed=False, detail="not measured"))
            continue
        worst_hi = max(values, key=lambda m: m.value)  # type: ignore[arg-type,return-value]
        worst_lo = min(values, key=lambda m: m.value)  # type: ignore[arg-type,return-value]
        ok, parts = True, []
        if th.max is not None:
            ok &= worst_hi.value <= th.max  # type: ignore[operator]
            parts.append(f"max {worst_hi.value:g}{worst_hi.unit} ({worst_hi.label or th.indicator}) ≤ {th.max:g}")
        if th.min is not None:
            ok &= worst_lo.value >= th.min  # type: ignore[operator]
            parts.append(f"min {worst_lo.value:g}{worst_lo.unit} ({worst_lo.label or th.indicator}) ≥ {th.min:g}")
        out.append(GateOutcome(gate=f"threshold:{th.indicator}", passed=bool(ok), detail="; ".join(parts)))
    out.extend(regression_gates(result, gates))
    if gates.fail_on_verdict is not None:
        out.append(verdict_gate(result, gates.fail_on_verdict))
    if out or gates.min_coverage is not None:  # a CI job that set a gate must not go green on nothing
        out.append(coverage_gate(result, gates))
        out.append(probes_gate(result, gates))
    return out


def coverage_gate(result: AuditResult, gates: Gates) -> GateOutcome:
    """Coverage of the hierarchy at least ``gates.min_coverage`` (default: the verdict's threshold)."""
    floor = gates.min_coverage
    if floor is None:
        rules = result.verdict.rules if result.verdict is not None else {}
        floor = float(rules.get("min_coverage", 0.6))
    coverage = result.scoring.coverage if result.scoring is not None else None
    if coverage is None:
        return GateOutcome(gate="coverage", passed=False, detail="not scored: coverage unknown")
    return GateOutcome(gate="coverage", passed=coverage >= floor,
                       detail=f"coverage {coverage:.0%} vs floor {floor:.0%}")


def probes_gate(result: AuditResult, gates: Gates) -> GateOutcome:
    """Every selected probe finished ok; skipped ones only when listed in ``gates.expected_skips``."""
    allowed = set(gates.expected_skips)
    broken = [f"{p.probe} ({p.status}: {p.reason})" for p in result.probes
              if p.status in ("error", "incomplete") or (p.status == "skipped" and p.probe not in allowed)]
    return GateOutcome(gate="probes", passed=not broken,
                       detail=("probes that did not run to the end: " + "; ".join(broken)) if broken
                       else "every selected probe finished" + (" (expected skips allowed)" if allowed else ""))


def verdict_gate(result: AuditResult, level: str) -> GateOutcome:
    """``not-fit``: fail on Not fit or Inconclusive; ``conditions``: fail on anything but Fit."""
    from crm_audit.core.verdict import rank

    word = result.verdict.verdict if result.verdict is not None else "Inconclusive"
    need = 1 if level == "not-fit" else 2
    reason = (result.verdict.reasons[0] if result.verdict is not None and result.verdict.reasons else "no verdict")
    return GateOutcome(gate=f"verdict:{level}", passed=rank(word) >= need, detail=f"verdict {word}: {reason}")


# ------------------------------------------------------------------ command-line gate syntax


class GateSyntaxError(InputFileError):
    """A --fail-under or --threshold value that cannot be parsed (usage error)."""


def parse_fail_under(values: Iterable[str]) -> tuple[float | None, dict[str, float]]:
    """``70`` → overall floor; ``perf=60`` → floor for the dimension (node id) ``perf``.

    Values may be repeated or comma-separated: ``--fail-under 70,perf=60,sec=80``.
    """
    overall: float | None = None
    dims: dict[str, float] = {}
    for item in values:
        for part in (p.strip() for p in str(item).split(",")):
            if not part:
                continue
            name, _, num = part.rpartition("=")
            score = _score_value(num, part)
            if name:
                dims[name.strip()] = score
            else:
                overall = score
    return overall, dims


def _score_value(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise GateSyntaxError(f"--fail-under {spec!r}: expected SCORE or DIMENSION=SCORE, e.g. 70 or perf=60") from None
    if not 0 <= value <= 100:
        raise GateSyntaxError(f"--fail-under {spec!r}: score must be between 0 and 100")
    return value


_THRESHOLD = re.compile(r"^\s*([A-Za-z0-9_.:-]+)\s*(<=|>=)\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")


def parse_threshold(spec: str) -> ThresholdGate:
    """``perf.response_time_p95<=300`` (every measurement at most 300) or ``INDICATOR>=MIN``."""
    m = _THRESHOLD.match(spec)
    if not m:
        raise GateSyntaxError(f"--threshold {spec!r}: expected INDICATOR<=MAX or INDICATOR>=MIN, "
                              "e.g. perf.response_time_p95<=300")
    indicator, op, num = m.groups()
    try:
        value = float(num)
    except ValueError:
        raise GateSyntaxError(f"--threshold {spec!r}: {num!r} is not a number") from None
    return ThresholdGate(indicator=indicator, **({"max": value} if op == "<=" else {"min": value}))


def merge_gates(profile_gates: Gates, fail_under: Iterable[str] = (), fail_on: str | None = None,
                thresholds: Iterable[str] = (), fail_on_regression: bool | None = None,
                min_coverage: float | None = None, fail_on_verdict: str | None = None) -> Gates:
    """The profile's gates with the command line's on top (same dimension or indicator: CLI wins)."""
    overall, dims = parse_fail_under(fail_under)
    extra = [parse_threshold(t) for t in thresholds]
    replaced = {t.indicator for t in extra}
    update: dict[str, Any] = {
        "fail_under_dimension": {**profile_gates.fail_under_dimension, **dims},
        "thresholds": [t for t in profile_gates.thresholds if t.indicator not in replaced] + extra,
    }
    if overall is not None:
        update["fail_under"] = overall
    if fail_on is not None:
        update["fail_on"] = fail_on
    if fail_on_regression is not None:
        update["fail_on_regression"] = fail_on_regression
    if min_coverage is not None:
        update["min_coverage"] = min_coverage
    if fail_on_verdict is not None:
        update["fail_on_verdict"] = fail_on_verdict
    return profile_gates.model_copy(update=update)


def regression_gates(result: AuditResult, gates: Gates) -> list[GateOutcome]:
    """With ``fail_on_regression``: fail on statistical regressions and on new open findings."""
    if not gates.fail_on_regression:
        return []
    base = result.baseline
    if base is None:
        return [GateOutcome(gate="regression", passed=True,
                            detail="no baseline given (first run?); nothing to compare against")]
    regs = base.regressions
    if regs:
        parts = [f"{r.label or r.indicator} median {r.before:g}→{r.after:g}"
                 f"{r.unit} (+{r.relative_change * 100:.0f}%, p={r.p_value:.1e})"
                 for r in regs]
        detail = f"{len(regs)} regression(s) against run {base.run_id}: " + "; ".join(parts)
    else:
        detail = f"no measurement regressed against run {base.run_id}"
    out = [GateOutcome(gate="regression:measurements", passed=not regs, detail=detail)]
    new_ids = set(base.new_findings)
    new_open = sorted({f.id for f in result.all_findings() if f.id in new_ids and f.is_open
                       and f.severity.value != "info"})
    out.append(GateOutcome(
        gate="regression:findings", passed=not new_open,
        detail=(f"{len(new_open)} new open finding(s) since run {base.run_id}: "
                + ", ".join(new_open[:10]) + (" …" if len(new_open) > 10 else ""))
        if new_open else f"no new open finding since run {base.run_id}"))
    return out
