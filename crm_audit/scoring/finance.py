"""NPV, IRR, simple and discounted payback, and ROI of a series of yearly cash flows.

Convention: ``cash_flows[0]`` happens now (t = 0, not discounted), ``cash_flows[t]`` at the
end of year t — the convention of numpy-financial, not of Excel's NPV(), which discounts
the first flow too.

IRR: NPV(r) = Σ CF_t · x^t with x = 1/(1 + r) is a polynomial in x; its real roots x > 0
are every IRR above −100 % (numpy's ``roots``, each polished by Newton steps). A series
with several sign changes can have several; ``irr`` then returns the root **closest to
zero** (numpy-financial's rule; of two equally close, the higher) and ``irr_roots`` lists
them all so the ambiguity can be shown.

Payback: a series that never recovers its outlay has no payback period; the functions
return None (``NOT_RECOVERED`` is the word shown for it), never ``math.inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: what a payback that never happens is called in notes and JSON
NOT_RECOVERED = "not recovered"


def npv(rate: float, cash_flows: Sequence[float]) -> float:
    """Net present value: Σ CF_t / (1 + rate)^t, t from 0."""
    flows = np.asarray(cash_flows, dtype=float)
    if rate <= -1:
        raise ValueError("discount rate must be greater than -100%")
    return float(np.sum(flows / (1.0 + rate) ** np.arange(flows.size)))


def irr_roots(cash_flows: Sequence[float]) -> tuple[float, ...]:
    """Every real IRR above −100 %, ascending; () when the flows do not change sign."""
    flows = np.trim_zeros(np.asarray(cash_flows, dtype=float), "b")
    if flows.size < 2 or np.all(flows >= 0) or np.all(flows <= 0):
        return ()
    poly = flows[::-1]  # highest power of x first
    deriv = np.polyder(poly)
    found: list[float] = []
    for x in np.roots(poly):
        if abs(x.imag) > 1e-8 * max(1.0, abs(x)) or x.real <= 0:
            continue
        x = float(x.real)
        for _ in range(3):  # Newton polish on the polynomial; keep only improvements
            slope = np.polyval(deriv, x)
            if slope == 0:
                break
            better = x - np.polyval(poly, x) / slope
            if better <= 0 or abs(np.polyval(poly, better)) >= abs(np.polyval(poly, x)):
                break
            x = float(better)
        rate = 1.0 / x - 1.0
        if not any(abs(rate - r) <= 1e-9 * max(1.0, abs(r)) for r in found):
            found.append(rate)
    return tuple(sorted(found))


def irr(cash_flows: Sequence[float]) -> float | None:
    """The IRR closest to zero (numpy-financial's rule; of two equally close, the higher); None if none."""
    roots = irr_roots(cash_flows)
    if not roots:
        return None
    return min(roots, key=lambda r: (abs(r), -r))


def _payback(flows: Sequence[float]) -> float | None:
    cumulative = 0.0
    for year, flow in enumerate(float(x) for x in flows):
        previous = cumulative
        cumulative += flow
        if cumulative >= 0:
            return 0.0 if year == 0 else year - 1 + (-previous / flow)
    return None


def payback_period(cash_flows: Sequence[float]) -> float | None:
    """Years until the cumulative cash flow turns non-negative, interpolated within the year.

    None when it never does (not recovered). With [-100, 30, 40, 50]: after two years −30
    remain, year three brings 50, so 2 + 30/50 = 2.6 years.
    """
    return _payback(cash_flows)


def discounted_payback(rate: float, cash_flows: Sequence[float]) -> float | None:
    """Payback of the flows discounted at ``rate`` (CF_t / (1 + rate)^t); None if not recovered.

    Interpolated within the year like ``payback_period``: [-10400, 2800, 3700, 5100, 4300]
    at 14 %: the discounted flows recover all but 1654.48 after three years, and year four
    brings 2545.95, so 3 + 1654.48/2545.95 = 3.65 years.
    """
    if rate <= -1:
        raise ValueError("discount rate must be greater than -100%")
    flows = np.asarray(cash_flows, dtype=float)
    return _payback(flows / (1.0 + rate) ** np.arange(flows.size))


def roi(cash_flows: Sequence[float]) -> float | None:
    """Return on investment: (Σ inflows − Σ outflows) / Σ outflows, undiscounted."""
    flows = np.asarray(cash_flows, dtype=float)
    cost = -flows[flows < 0].sum()
    if cost <= 0:
        return None
    gain = flows[flows > 0].sum()
    return float((gain - cost) / cost)
