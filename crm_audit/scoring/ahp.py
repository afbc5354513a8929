"""AHP weights from a pairwise-comparison matrix (Saaty's 1–9 scale).

Weights are the principal eigenvector (numpy), normalised to sum 1; λmax its eigenvalue;
CI = (λmax − n)/(n − 1); CR = CI / RI with Saaty's random index. A matrix is consistent
when CR < 0.10. The most inconsistent pair is the judgment a_ij farthest, on a log scale,
from the ratio its weights imply: max |ln(a_ij · w_j / w_i)| — symmetric in i and j, so
judging 3 where the weights say 1/3 counts as much as judging 1/3 where they say 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np

#: Saaty's random consistency index for n = 1..10
RANDOM_INDEX: tuple[float, ...] = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49)
CR_THRESHOLD = 0.10
#: relative tolerance of the reciprocity check (accepts 0.33 written for 1/3)
RECIPROCAL_RTOL = 0.02


class AhpError(ValueError):
    """A comparison matrix that cannot be used: not square, not positive, not reciprocal…"""


@dataclass(frozen=True)
class AhpResult:
    """Weights derived from one comparison matrix, with its consistency figures."""

    weights: tuple[float, ...]
    lambda_max: float
    ci: float
    cr: float
    consistent: bool
    #: (i, j) of the most inconsistent judgment and its deviation |ln(a_ij w_j / w_i)|
    worst_pair: tuple[int, int] | None = None
    worst_deviation: float = 0.0
    worst_judgment: float = 1.0

    def as_dict(self, criteria: Sequence[str] | None = None) -> dict:
        """The JSON shape printed by ``crm-audit ahp --json``."""
        names = list(criteria) if criteria is not None else [str(i + 1) for i in range(len(self.weights))]
        return {
            "criteria": names,
            "weights": list(self.weights),
            "lambda_max": self.lambda_max,
            "ci": self.ci,
            "cr": self.cr,
            "consistent": self.consistent,
        }

    def inconsistency_message(self, criteria: Sequence[str] | None = None) -> str:
        """One line saying CR and which judgment to revisit."""
        text = f"comparison matrix is inconsistent: CR = {self.cr:.3f} ≥ {CR_THRESHOLD:.2f}"
        if self.worst_pair is not None:
            i, j = self.worst_pair
            a = criteria[i] if criteria else f"#{i + 1}"
            b = criteria[j] if criteria else f"#{j + 1}"
            implied = self.weights[i] / self.weights[j]
            text += (
                f"; most inconsistent pair: {a} vs {b} (judged {self.worst_judgment:.3g},"
                f" the weights imply {implied:.3g})"
            )
        return text


def parse_entry(raw: object) -> float:
    """A matrix entry: a number or a fraction string such as ``"1/3"``."""
    if isinstance(raw, bool):
        raise AhpError(f"matrix entry {raw!r} is not a number")
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(Fraction(raw.strip()))
        except (ValueError, ZeroDivisionError):
            pass
    raise AhpError(f"matrix entry {raw!r} is not a number or a fraction like 1/3")


def parse_matrix(rows: object) -> np.ndarray:
    """Check and convert a full n×n reciprocal matrix (numbers or fraction strings)."""
    if not isinstance(rows, (list, tuple)) or not rows:
        raise AhpError("matrix must be a non-empty list of rows")
    n = len(rows)
    values: list[list[float]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != n:
            raise AhpError(f"matrix must be square: row {i + 1} does not have {n} entries")
        values.append([parse_entry(x) for x in row])
    a = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise AhpError("matrix entries must be positive numbers")
    if np.any(a > 9 + 1e-9) or np.any(a < 1 / 9 - 1e-9):
        i, j = map(int, np.argwhere((a > 9 + 1e-9) | (a < 1 / 9 - 1e-9))[0])
        raise AhpError(f"entry ({i + 1},{j + 1}) = {a[i, j]:.4g} is outside Saaty's scale 1/9..9")
    for i in range(n):
        if not math.isclose(a[i, i], 1.0, rel_tol=1e-9):
            raise AhpError(f"diagonal entry ({i + 1},{i + 1}) must be 1, got {a[i, i]:.4g}")
        for j in range(i + 1, n):
            if not math.isclose(a[i, j] * a[j, i], 1.0, rel_tol=RECIPROCAL_RTOL):
                raise AhpError(
                    f"matrix is not reciprocal: entry ({i + 1},{j + 1}) = {a[i, j]:.4g}"
                    f" but ({j + 1},{i + 1}) = {a[j, i]:.4g}, expected {1 / a[i, j]:.4g}"
                )
    return a


def ahp_weights(matrix: object) -> AhpResult:
    """Principal-eigenvector weights of a reciprocal comparison matrix, with λmax, CI and CR.

    ``matrix`` is a list of rows (numbers or fraction strings) or a numpy array. Raises
    ``AhpError`` for a malformed or non-reciprocal matrix, or one larger than 10×10 (Saaty's
    RI table ends there); an inconsistent matrix is returned with ``consistent=False``.
    """
    a = parse_matrix(matrix.tolist() if isinstance(matrix, np.ndarray) else matrix)
    n = a.shape[0]
    if n > len(RANDOM_INDEX):
        raise AhpError(f"at most {len(RANDOM_INDEX)} criteria can be compared (Saaty's RI table), got {n}")
    eigenvalues, eigenvectors = np.linalg.eig(a)
    k = int(np.argmax(eigenvalues.real))
    lambda_max = float(eigenvalues[k].real)
    w = np.abs(eigenvectors[:, k].real)
    w = w / w.sum()
    if n <= 2:
        lambda_max, ci, cr = float(n), 0.0, 0.0  # a reciprocal 1×1 or 2×2 matrix is consistent
    else:
        ci = max(0.0, (lambda_max - n) / (n - 1))
        cr = ci / RANDOM_INDEX[n - 1]
    deviation = np.abs(np.log(a * w[np.newaxis, :] / w[:, np.newaxis]))
    worst: tuple[int, int] | None = None
    worst_dev = 0.0
    worst_judgment = 1.0
    if n > 1:
        upper = np.triu(deviation, k=1)
        i, j = np.unravel_index(int(np.argmax(upper)), upper.shape)
        worst, worst_dev, worst_judgment = (int(i), int(j)), float(upper[i, j]), float(a[i, j])
    return AhpResult(
        weights=tuple(float(x) for x in w),
        lambda_max=lambda_max,
        ci=float(ci),
        cr=float(cr),
        consistent=bool(cr < CR_THRESHOLD),
        worst_pair=worst,
        worst_deviation=worst_dev,
        worst_judgment=worst_judgment,
    )
