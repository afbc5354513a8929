"""Gates: the pass/fail rules a CI job sets on an audit (score floors, severities, thresholds)."""

from __future__ import annotations

from .model import SEVERITY_ORDER, AuditResult, GateOutcome
from .profile import Gates


def evaluate_gates(result: AuditResult, gates: Gates) -> list[GateOutcome]:
    """Judge the result against every configured gate; an empty list means no gate was set."""
    out: list[GateOutcome] = []
    scoring = result.scoring or {}
    overall = (scoring.get("overall") or {}).get("score")
    if gates.fail_under is not None:
        if overall is None:
            out.append(GateOutcome(gate="fail_under", passed=False, detail="no overall score to compare (nothing scored)"))
        else:
            out.append(GateOutcome(gate="fail_under", passed=overall >= gates.fail_under,
                                   detail=f"overall score {overall:.1f} vs floor {gates.fail_under:g}"))
    nodes = {n["id"]: n for n in scoring.get("nodes", [])}
    for dim, floor in gates.fail_under_dimension.items():
        node = nodes.get(dim)
        score = node.get("score") if node else None
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
    return out
