"""AHP weights from a pairwise-comparison matrix (Saaty's 1–9 scale).

Weights are the principal eigenvector (numpy), normalised to sum 1; λmax its eigenvalue;
CI = (λmax − n)/(n − 1); CR = CI / RI with a random-index table (``RI_TABLES``; Saaty's
1980 table by default). A matrix is consistent when CR < 0.10. The most inconsistent pair is the judgment a_ij farthest, on a log scale,
from the ratio its weights imply: max |ln(a_ij · w_j / w_i)| — symmetric in i and j, so
judging 3 where the weights say 1/3 counts as much as judging 1/3 where they say 3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from crm_audit.core.errors import InputFileError

#: Saaty's random consistency index for n = 1..10 (Saaty 1980, *The Analytic Hierarchy Process*)
RANDOM_INDEX: tuple[float, ...] = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49)
#: random-index tables by name, RI for n = 1, 2, …; n ≤ 2 is always consistent (RI 0)
RI_TABLES: dict[str, tuple[float, ...]] = {
    # Saaty (1980), The Analytic Hierarchy Process, McGraw-Hill
    "saaty1980": RANDOM_INDEX,
    # Saaty (2005), Theory and Applications of the Analytic Network Process, RWS Publications, p. 31
    "saaty2005": (0.0, 0.0, 0.52, 0.89, 1.11, 1.25, 1.35, 1.40, 1.45, 1.49, 1.52, 1.54, 1.56, 1.58, 1.59),
    # Donegan & Dodd (1991), "A note on Saaty's random indexes", Math. Comput. Modelling 15(10):135-137
    "donegan-dodd": (0.0, 0.0, 0.4914, 0.8286, 1.0591, 1.1797, 1.2519, 1.3171, 1.3733, 1.4055,
                     1.4213, 1.4497, 1.4643, 1.4822, 1.4969),
    # the table most Chinese AHP textbooks print
    "cn-textbook": (0.0, 0.0, 0.52, 0.89, 1.12, 1.26, 1.36, 1.41, 1.46, 1.49, 1.52, 1.54, 1.56, 1.58, 1.59),
}
DEFAULT_RI_TABLE = "saaty1980"
CR_THRESHOLD = 0.10
#: relative tolerance of the reciprocity check (accepts 0.33 written for 1/3)
RECIPROCAL_RTOL = 0.02


class AhpError(InputFileError):
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
    #: the random index used for CR, and the table it came from
    ri: float = 0.0
    ri_table: str = DEFAULT_RI_TABLE

    def as_dict(self, criteria: Sequence[str] | None = None) -> dict[str, Any]:
        """The JSON shape printed by ``crm-audit ahp --json``."""
        names = list(criteria) if criteria is not None else [str(i + 1) for i in range(len(self.weights))]
        return {
            "criteria": names,
            "weights": list(self.weights),
            "lambda_max": self.lambda_max,
            "ci": self.ci,
            "cr": self.cr,
            "consistent": self.consistent,
            "ri": self.ri,
            "ri_table": self.ri_table,
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


def ri_table_name(name: str) -> str:
    """Check a random-index table name; AhpError naming the known ones if unknown."""
    if name not in RI_TABLES:
        raise AhpError(f"unknown RI table {name!r} (one of {', '.join(RI_TABLES)})")
    return name


def ahp_weights(matrix: object, ri_table: str = DEFAULT_RI_TABLE) -> AhpResult:
    """Principal-eigenvector weights of a reciprocal comparison matrix, with λmax, CI and CR.

    ``matrix`` is a list of rows (numbers or fraction strings) or a numpy array; CR uses
    the random index of ``ri_table`` (a key of RI_TABLES). Raises ``AhpError`` for a
    malformed or non-reciprocal matrix, or one larger than the RI table (10×10 for Saaty
    1980, 15×15 for the others); an inconsistent matrix is returned with ``consistent=False``.
    """
    table = RI_TABLES[ri_table_name(ri_table)]
    a = parse_matrix(matrix.tolist() if isinstance(matrix, np.ndarray) else matrix)
    n = a.shape[0]
    if n > len(table):
        raise AhpError(f"at most {len(table)} criteria can be compared (RI table {ri_table}), got {n}")
    eigenvalues, eigenvectors = np.linalg.eig(a)
    k = int(np.argmax(eigenvalues.real))
    lambda_max = float(eigenvalues[k].real)
    w = np.abs(eigenvectors[:, k].real)
    w = w / w.sum()
    if n <= 2:
        lambda_max, ci, cr = float(n), 0.0, 0.0  # a reciprocal 1×1 or 2×2 matrix is consistent
    else:
        ci = max(0.0, (lambda_max - n) / (n - 1))
        cr = ci / table[n - 1]
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
        ri=float(table[n - 1]),
        ri_table=ri_table,
    )


@dataclass(frozen=True)
class HierarchyConsistency:
    """Consistency of a whole hierarchy: CR_H = Σ w·CI / Σ w·RI over its comparison matrices.

    Each matrix is weighted by the global weight of the node whose children it compares
    (1 for the root), as in Saaty's consistency of a hierarchy. Nodes whose children's
    weights are given directly hold no judgments and do not count.
    """

    ci: float
    ri: float
    cr: float
    consistent: bool
    #: (node id, global weight, n, CI, RI, CR) of every comparison matrix, in hierarchy order
    matrices: tuple[tuple[str, float, int, float, float, float], ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON form printed by ``crm-audit ahp HIERARCHY --json``."""
        return {
            "ci": self.ci, "ri": self.ri, "cr": self.cr, "consistent": self.consistent,
            "matrices": [dict(zip(("node", "global_weight", "n", "ci", "ri", "cr"), m)) for m in self.matrices],
        }


def hierarchy_consistency(matrices: Sequence[tuple[str, float, AhpResult]]) -> HierarchyConsistency:
    """CR of a hierarchy from its matrices given as (node id, node's global weight, result)."""
    rows = tuple((node, float(w), len(r.weights), r.ci, r.ri, r.cr) for node, w, r in matrices)
    ci = math.fsum(w * c for _, w, _, c, _, _ in rows)
    ri = math.fsum(w * i for _, w, _, _, i, _ in rows)
    cr = ci / ri if ri > 0 else 0.0
    return HierarchyConsistency(ci, ri, cr, cr < CR_THRESHOLD, rows)
