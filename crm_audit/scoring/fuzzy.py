"""Fuzzy comprehensive evaluation over the grade set (Excellent, Good, Pass, Fail).

Membership of a 0–100 score is trapezoidal: full membership inside a band, and a linear
hand-over 10 points wide centred on each boundary (45–55, 65–75, 85–95). Memberships sum to
1 and the grade of maximum membership equals the crisp grade (ties at a boundary go to the
better grade, as the crisp bands do). Levels are combined with the weighted-average operator
M(·, +): B = W · R, W renormalised over the assessed children.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .grades import GRADES

#: boundaries between adjacent grades, best first (Excellent|Good, Good|Pass, Pass|Fail)
BOUNDARIES: tuple[float, ...] = (90.0, 70.0, 50.0)
#: half the width of the linear hand-over around each boundary
HALF_WIDTH = 5.0


def membership(score: float) -> np.ndarray:
    """Membership vector of one score in (Excellent, Good, Pass, Fail); sums to 1."""
    s = float(np.clip(score, 0.0, 100.0))
    # share above each boundary: 0 below boundary-h, 1 above boundary+h, linear between
    above = np.clip((s - np.asarray(BOUNDARIES) + HALF_WIDTH) / (2 * HALF_WIDTH), 0.0, 1.0)
    # grade k holds what is above boundary k (the one below it) but not above boundary k-1
    upper = np.concatenate(([0.0], above))
    lower = np.concatenate((above, [1.0]))
    return lower - upper


def compose(weights: Sequence[float], memberships: Sequence[Sequence[float]]) -> np.ndarray:
    """B = W · R with the weighted-average operator, W renormalised to sum 1."""
    w = np.asarray(weights, dtype=float)
    r = np.asarray(memberships, dtype=float)
    if w.ndim != 1 or r.shape != (w.size, len(GRADES)):
        raise ValueError("weights and membership rows do not match")
    if w.sum() <= 0:
        raise ValueError("weights sum to zero")
    b = (w / w.sum()) @ r
    return b / b.sum()


def max_membership_grade(vector: Sequence[float]) -> str:
    """Grade of maximum membership; a tie goes to the better grade."""
    v = np.asarray(vector, dtype=float)
    return GRADES[int(np.flatnonzero(np.isclose(v, v.max(), rtol=0, atol=1e-12))[0])]


def as_dict(vector: Sequence[float]) -> dict[str, float]:
    """Membership vector keyed by grade name, for the JSON result."""
    return {grade: float(value) for grade, value in zip(GRADES, vector)}
