"""Exact statistics of raw load rows ``(t, name, ms, ok)``: steps, knee, drift, scalability.

Percentiles come from ``numpy.percentile`` (through ``crm_audit.core.model.percentile``), over every raw row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from crm_audit.core.model import percentile

Row = tuple[float, str, float, bool]


def window(rows: Iterable[Row], t0: float, t1: float) -> list[Row]:
    """Rows completed in [t0, t1)."""
    return [r for r in rows if t0 <= r[0] < t1]


def step_stats(rows: Sequence[Row], users: int, duration_s: float, slo_p95_ms: float,
               max_error_rate: float) -> dict[str, Any]:
    """One row of the load curve; latency percentiles over successful requests only."""
    ok = [r[2] for r in rows if r[3]]
    errors = sum(1 for r in rows if not r[3])
    n = len(rows)
    p50 = percentile(ok, 50) if ok else None
    p95 = percentile(ok, 95) if ok else None
    err = errors / n if n else 1.0
    return {
        "users": users, "duration_s": round(duration_s, 3), "requests": n,
        "rps": round(n / duration_s, 3) if duration_s > 0 else 0.0,
        "p50_ms": _r(p50), "p95_ms": _r(p95), "error_rate": round(err, 6),
        "within_slo": bool(n and p95 is not None and p95 <= slo_p95_ms and err <= max_error_rate),
    }


def ladder(start: int, growth: float, max_users: int, explicit: list[int] | None = None) -> list[int]:
    """User counts per step: explicit, or start, start·growth, … capped at (and ending on) max_users."""
    if explicit:
        return [u for u in explicit if 1 <= u <= max_users]
    out: list[int] = []
    u = float(max(1, start))
    while int(u) < max_users:
        if not out or int(u) > out[-1]:
            out.append(int(u))
        u *= growth
    out.append(max_users)
    return out


def plateaued(steps: list[dict[str, Any]], min_gain: float) -> bool:
    """True when the last step's throughput grew by less than ``min_gain`` over the best earlier step.

    More users then only queue: the CRM is at its capacity knee, and further steps would
    measure the same throughput at a higher latency. ``min_gain`` 0 turns the rule off.
    """
    if min_gain <= 0 or len(steps) < 2:
        return False
    best_before: float = max(s["rps"] for s in steps[:-1])
    last_rps: float = steps[-1]["rps"]
    return last_rps < best_before * (1 + min_gain)


def scalability(steps: list[dict[str, Any]]) -> float | None:
    """Throughput gained per added user between the first step and the last one within the SLO."""
    ok = [s for s in steps if s["within_slo"]]
    if not ok:
        return None
    first, last = steps[0], ok[-1]
    if last["users"] == first["users"]:
        per_user: float | None = round(first["rps"] / first["users"], 3) if first["users"] else None
        return per_user
    gain: float = round((last["rps"] - first["rps"]) / (last["users"] - first["users"]), 3)
    return gain


def sustained_stats(rows: Sequence[Row], users: int, t0: float, t1: float) -> dict[str, Any]:
    """Latency drift (p95 of the second half / first half) and errors of the sustained phase."""
    mid = (t0 + t1) / 2
    first = [r[2] for r in window(rows, t0, mid) if r[3]]
    second = [r[2] for r in window(rows, mid, t1) if r[3]]
    ok = [r[2] for r in rows if r[3]]
    n = len(rows)
    p95a = percentile(first, 95) if first else None
    p95b = percentile(second, 95) if second else None
    return {
        "users": users, "duration_s": round(t1 - t0, 3), "requests": n,
        "rps": round(n / (t1 - t0), 3) if t1 > t0 else 0.0,
        "p50_ms": _r(percentile(ok, 50) if ok else None), "p95_ms": _r(percentile(ok, 95) if ok else None),
        "p95_first_half_ms": _r(p95a), "p95_second_half_ms": _r(p95b),
        "drift": round(p95b / p95a, 4) if p95a and p95b else None,
        "error_rate": round(sum(1 for r in rows if not r[3]) / n, 6) if n else None,
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


#: a step whose throughput reached this share of the rate cap was held back by the cap
RATE_CAP_SHARE = 0.85


def capacity_bound(steps: list[dict[str, Any]], stop_reason: str, max_rps: float | None) -> str | None:
    """Which of the audit's own bounds set the maximum sustainable level, if one did.

    ``rate_limit`` when the best step's throughput reached the rate cap; else, when the ladder
    ended with its last step still within the SLO, the bound that ended it: ``max_users``,
    ``time_limit`` (max_total_s), ``request_budget`` or ``load_generator`` (users did not
    spawn). None when the SLO broke: the CRM, not the audit, set the level.
    """
    ok = [s for s in steps if s["within_slo"]]
    if not ok:
        return None
    if max_rps and ok[-1]["rps"] >= RATE_CAP_SHARE * max_rps:
        return "rate_limit"
    if not steps[-1]["within_slo"]:
        return None
    return {"max_users reached": "max_users", "max_total_s": "time_limit", "request budget": "request_budget",
            "users did not spawn": "load_generator"}.get(stop_reason)
