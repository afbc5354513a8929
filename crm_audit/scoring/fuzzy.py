"""Fuzzy comprehensive evaluation over an ordered grade scale, with a choice of operator.

Membership of a 0–100 score in each grade is the grade's trapezoid (``GradeScale.shapes``);
with the default scale that is full membership inside a band and a linear hand-over 10
points wide centred on each boundary (45–55, 65–75, 85–95), so memberships sum to 1 and the
grade of maximum membership equals the crisp grade (ties go to the better grade).

Levels are combined by B = W ∘ R, W the children's weights renormalised to sum 1, R their
membership rows, with one of the four classic operators M(•, ⊙), b_j = ⊙_i (w_i • r_ij):

- ``M(·,+)``  weighted average: b_j = Σ_i w_i·r_ij (the default; uses every judgment)
- ``M(∧,∨)``  Zadeh max–min: b_j = max_i min(w_i, r_ij) (only the dominant factor counts)
- ``M(·,∨)``  max–product: b_j = max_i w_i·r_ij
- ``M(∧,⊕)``  bounded sum of minima: b_j = min(1, Σ_i min(w_i, r_ij))

B is then normalised to sum 1 (b_j / Σ b), so a level's vector is again a membership row
for the level above; normalising never changes the grade of maximum membership. The
defuzzified score is Σ_j b_j · v_j with v_j the grade's value (``GradeScale.values``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from crm_audit.scoring.grades import DEFAULT_SCALE, GradeScale, shown

_Op = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: operator name → b = op(w (n,), r (n, m)); names as in the literature
OPERATORS: dict[str, _Op] = {
    "M(·,+)": lambda w, r: w @ r,
    "M(∧,∨)": lambda w, r: np.minimum(w[:, None], r).max(axis=0),
    "M(·,∨)": lambda w, r: (w[:, None] * r).max(axis=0),
    "M(∧,⊕)": lambda w, r: np.minimum(1.0, np.minimum(w[:, None], r).sum(axis=0)),
}
#: ASCII spellings accepted for each operator (hierarchy files, command line)
OPERATOR_ALIASES: dict[str, str] = {
    "weighted_average": "M(·,+)", "M(*,+)": "M(·,+)",
    "max_min": "M(∧,∨)", "zadeh": "M(∧,∨)", "M(min,max)": "M(∧,∨)",
    "max_product": "M(·,∨)", "M(*,max)": "M(·,∨)",
    "bounded_sum": "M(∧,⊕)", "M(min,+)": "M(∧,⊕)",
}
DEFAULT_OPERATOR = "M(·,+)"


def operator_name(raw: str) -> str:
    """The canonical name of an operator given by name or ASCII alias; ValueError if unknown."""
    text = str(raw).strip().replace(" ", "")
    if text in OPERATORS:
        return text
    if text in OPERATOR_ALIASES:
        return OPERATOR_ALIASES[text]
    known = ", ".join(f"{k} ({', '.join(a for a, v in OPERATOR_ALIASES.items() if v == k)})" for k in OPERATORS)
    raise ValueError(f"unknown fuzzy operator {raw!r} (one of {known})")


def membership_matrix(scores: np.ndarray, scale: GradeScale = DEFAULT_SCALE) -> np.ndarray:
    """Memberships of many scores: shape (len(scores), number of grades), unnormalised."""
    s = np.clip(np.asarray(scores, dtype=float), 0.0, 100.0)[:, None]
    a, b, c, d = (np.array(x, dtype=float)[None, :] for x in zip(*scale.shapes))
    with np.errstate(divide="ignore", invalid="ignore"):
        rise = np.where(b > a, (s - a) / np.where(b > a, b - a, 1.0), (s >= a).astype(float))
        fall = np.where(d > c, (d - s) / np.where(d > c, d - c, 1.0), (s <= d).astype(float))
    out: np.ndarray = np.clip(np.minimum(rise, fall), 0.0, 1.0)
    return out


def membership(score: float, scale: GradeScale = DEFAULT_SCALE) -> np.ndarray:
    """Membership vector of one score, as shown (rounded), over the scale's grades; sums to 1."""
    row: np.ndarray = membership_matrix(np.array([shown(score)]), scale)[0]
    out: np.ndarray = row / row.sum()
    return out


def compose(weights: npt.ArrayLike, memberships: npt.ArrayLike, operator: str = DEFAULT_OPERATOR) -> np.ndarray:
    """B = W ∘ R with ``operator``, W renormalised to sum 1, B normalised to sum 1."""
    w = np.asarray(weights, dtype=float)
    r = np.asarray(memberships, dtype=float)
    if w.ndim != 1 or r.ndim != 2 or r.shape[0] != w.size or r.shape[1] < 2:
        raise ValueError(f"weights ({w.size}) and membership rows {r.shape} do not match")
    if w.sum() <= 0:
        raise ValueError("weights sum to zero")
    b = OPERATORS[operator_name(operator)](w / w.sum(), r)
    total = b.sum()
    if total <= 0:
        raise ValueError("the composed fuzzy vector is all zero")
    out: np.ndarray = b / total
    return out


def max_membership_grade(vector: npt.ArrayLike, scale: GradeScale = DEFAULT_SCALE) -> str:
    """Grade of maximum membership; a tie goes to the better grade."""
    v = np.asarray(vector, dtype=float)
    return scale.names[int(np.flatnonzero(np.isclose(v, v.max(), rtol=0, atol=1e-12))[0])]


def defuzzify(vector: Sequence[float], scale: GradeScale = DEFAULT_SCALE) -> float:
    """The score a fuzzy vector stands for: Σ_j b_j · value_j over the normalised vector."""
    v = np.asarray(vector, dtype=float)
    return float(v @ np.asarray(scale.values, dtype=float) / v.sum())


def as_dict(vector: Sequence[float], scale: GradeScale = DEFAULT_SCALE) -> dict[str, float]:
    """Membership vector keyed by grade name, for the JSON result."""
    return {grade: float(value) for grade, value in zip(scale.names, vector)}
