"""Grey relational analysis (Deng's grey relational grade) against a reference series.

Rows are alternatives (audited CRMs), columns criteria (indicators). Each column is first
normalised by its own rule (``NORMALISATIONS``), computed over the column *with* the
reference value when one is given (so the reference is normalised alike):

- ``none``: values as they are (crm-audit's scores / 100 are already comparable);
- ``benefit``: min–max, larger is better: (x − min) / (max − min);
- ``cost``: min–max, smaller is better: (max − x) / (max − min);
- ``mean``: x / mean of the column;
- ``initial``: x / the column's first value (the reference's, or the first alternative's).

A constant column normalises to 1 under min–max. The reference series x0 is the given one,
or else the ideal: each column's largest normalised value (so ``mean`` and ``initial``
assume larger is better; use ``cost`` for smaller-is-better criteria). With
Δ_k(i) = |x0(i) − x_k(i)|, Δmin and Δmax over all k and i, the coefficient is
ξ_k(i) = (Δmin + ρ·Δmax) / (Δ_k(i) + ρ·Δmax), ρ in (0, 1] (0.5 by default), and the grade
γ_k = Σ_i w_i ξ_k(i), weights renormalised to sum 1 (equal when none are given). If every Δ
is 0 all coefficients are 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RHO = 0.5
NORMALISATIONS: tuple[str, ...] = ("none", "benefit", "cost", "mean", "initial")


def normalise(table: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
    """Normalise each column of ``table`` by its rule in ``kinds`` (one per column)."""
    x = np.asarray(table, dtype=float)
    if len(kinds) != x.shape[1]:
        raise ValueError(f"one normalisation per criterion ({x.shape[1]}), got {len(kinds)}")
    out = np.empty_like(x)
    for i, kind in enumerate(kinds):
        col = x[:, i]
        if kind == "none":
            out[:, i] = col
        elif kind in ("benefit", "cost"):
            span = col.max() - col.min()
            if span == 0:
                out[:, i] = 1.0
            else:
                out[:, i] = (col - col.min()) / span if kind == "benefit" else (col.max() - col) / span
        elif kind in ("mean", "initial"):
            base = col.mean() if kind == "mean" else col[0]
            if base == 0:
                raise ValueError(f"criterion #{i + 1}: cannot normalise by its {kind} value, which is 0")
            out[:, i] = col / base
        else:
            raise ValueError(f"unknown normalisation {kind!r} (one of {', '.join(NORMALISATIONS)})")
    return out


def grey_relational_grades(
    values: Sequence[Sequence[float]],
    weights: Sequence[float] | None = None,
    rho: float = RHO,
    reference: Sequence[float] | None = None,
    normalisation: str | Sequence[str] = "none",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grades per row, coefficient matrix, normalised reference series).

    ``reference`` is the series to compare against (raw, normalised with the columns); without
    it the ideal per column is used. ``normalisation`` is one rule for every column or one per
    column.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError("grey relational analysis needs a non-empty alternatives × indicators table")
    if not np.all(np.isfinite(x)):
        raise ValueError("grey relational analysis needs finite values")
    if not 0 < rho <= 1:
        raise ValueError("distinguishing coefficient rho must be in (0, 1]")
    kinds = [normalisation] * x.shape[1] if isinstance(normalisation, str) else list(normalisation)
    if reference is not None:
        ref = np.asarray(reference, dtype=float)
        if ref.shape != (x.shape[1],) or not np.all(np.isfinite(ref)):
            raise ValueError(f"the reference series needs one finite value per indicator ({x.shape[1]})")
        both = normalise(np.vstack([ref, x]), kinds)
        x0, xn = both[0], both[1:]
    else:
        xn = normalise(x, kinds)
        x0 = xn.max(axis=0)
    delta = np.abs(x0[np.newaxis, :] - xn)
    d_min, d_max = float(delta.min()), float(delta.max())
    if d_max == 0:
        xi = np.ones_like(delta)
    else:
        xi = (d_min + rho * d_max) / (delta + rho * d_max)
    if weights is None:
        w = np.full(x.shape[1], 1.0 / x.shape[1])
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (x.shape[1],) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("one non-negative weight per indicator, not all zero")
        w = w / w.sum()
    return xi @ w, xi, x0
