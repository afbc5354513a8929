"""Grey relational analysis against the ideal sequence (Deng's grey relational grade).

Rows are alternatives (audited CRMs), columns indicators, values normalised so that larger
is better (scores / 100). The ideal sequence x0 takes each column's best value. With
Δ_k(i) = |x0(i) − x_k(i)|, Δmin and Δmax the smallest and largest Δ over all k and i, the
coefficient is ξ_k(i) = (Δmin + ρ·Δmax) / (Δ_k(i) + ρ·Δmax), ρ = 0.5, and the grade is
γ_k = Σ_i w_i ξ_k(i) (plain mean when no weights are given). If every Δ is 0 all
coefficients are 1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

RHO = 0.5


def grey_relational_grades(
    values: Sequence[Sequence[float]], weights: Sequence[float] | None = None, rho: float = RHO
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grades per row, coefficient matrix, ideal sequence) for larger-is-better values."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError("grey relational analysis needs a non-empty alternatives × indicators table")
    if not 0 < rho <= 1:
        raise ValueError("distinguishing coefficient rho must be in (0, 1]")
    ideal = x.max(axis=0)
    delta = np.abs(ideal[np.newaxis, :] - x)
    d_min, d_max = float(delta.min()), float(delta.max())
    if d_max == 0:
        xi = np.ones_like(delta)
    else:
        xi = (d_min + rho * d_max) / (delta + rho * d_max)
    if weights is None:
        w = np.full(x.shape[1], 1.0 / x.shape[1])
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (x.shape[1],) or w.sum() <= 0:
            raise ValueError("one non-negative weight per indicator, not all zero")
        w = w / w.sum()
    return xi @ w, xi, ideal
