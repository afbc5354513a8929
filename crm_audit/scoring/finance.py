"""NPV, IRR, payback period and ROI of a series of yearly cash flows.

Convention: ``cash_flows[0]`` happens now (t = 0, not discounted), ``cash_flows[t]`` at the
end of year t — the convention of numpy-financial, not of Excel's NPV(), which discounts
the first flow too.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.optimize import brentq


def npv(rate: float, cash_flows: Sequence[float]) -> float:
    """Net present value: Σ CF_t / (1 + rate)^t, t from 0."""
    flows = np.asarray(cash_flows, dtype=float)
    if rate <= -1:
        raise ValueError("discount rate must be greater than -100%")
    return float(np.sum(flows / (1.0 + rate) ** np.arange(flows.size)))


def irr(cash_flows: Sequence[float]) -> float | None:
    """Internal rate of return: the rate where NPV = 0 (brentq), None when there is none.

    The bracket is found on a grid from −99% to +1000%; with several sign changes (an
    unusual series) the root nearest to the lowest rate is returned.
    """
    flows = [float(x) for x in cash_flows]
    if len(flows) < 2 or all(x >= 0 for x in flows) or all(x <= 0 for x in flows):
        return None
    grid = np.concatenate((np.linspace(-0.99, 1.0, 400), np.linspace(1.0, 10.0, 200)[1:]))
    values = np.array([npv(r, flows) for r in grid])
    for k in range(grid.size - 1):
        if values[k] == 0:
            return float(grid[k])
        if values[k] * values[k + 1] < 0:
            return float(brentq(npv, grid[k], grid[k + 1], args=(flows,), xtol=1e-12, rtol=1e-12, maxiter=200))
    return None


def payback_period(cash_flows: Sequence[float]) -> float:
    """Years until the cumulative cash flow turns non-negative, interpolated within the year.

    Returns ``math.inf`` when the flows never pay back. With [-100, 30, 40, 50]: after two
    years −30 remain, year three brings 50, so 2 + 30/50 = 2.6 years.
    """
    cumulative = 0.0
    for year, flow in enumerate(float(x) for x in cash_flows):
        previous = cumulative
        cumulative += flow
        if cumulative >= 0:
            return 0.0 if year == 0 else year - 1 + (-previous / flow)
    return math.inf


def roi(cash_flows: Sequence[float]) -> float | None:
    """Return on investment: (Σ inflows − Σ outflows) / Σ outflows, undiscounted."""
    flows = np.asarray(cash_flows, dtype=float)
    cost = -flows[flows < 0].sum()
    if cost <= 0:
        return None
    gain = flows[flows > 0].sum()
    return float((gain - cost) / cost)
