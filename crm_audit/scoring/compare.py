"""Ranking several scored audits: by weighted score and by grey relational grade.

Grey relational analysis uses the indicators assessed in every compared result (an
indicator missing anywhere has no common ideal) — and, with a reference series, given in
it — their scores / 100 as the sequences, and their global weights (renormalised over
those indicators) as weights; ρ = 0.5 unless given. The reference is a target profile of
scores (indicator → 0–100), or else the ideal (best per indicator). Each indicator is
normalised by a rule of ``grey.NORMALISATIONS`` (default ``none``).
Ranks are competition ranks (1, 2, 2, 4); 1 is best.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from crm_audit.core.errors import InputFileError
from crm_audit.scoring.grey import NORMALISATIONS, RHO, grey_relational_grades


class CompareError(InputFileError):
    """Results that cannot be compared (no scoring, different hierarchies)."""


def compare_scorings(entries: Sequence[Mapping[str, Any]], rho: float = RHO,
                     reference: Mapping[str, float] | None = None,
                     normalisation: str = "none", per_indicator: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Rank entries ``{"label", "scoring", …}``; extra keys (file, run_id) are carried over.

    ``reference`` maps indicator ids to target scores (0–100); ``normalisation`` is the rule
    for every indicator, ``per_indicator`` overrides it for some.
    """
    if len(entries) < 2:
        raise CompareError("compare needs at least two results")
    names = {e["scoring"]["hierarchy"] for e in entries}
    if len(names) != 1:
        raise CompareError(f"results were scored against different hierarchies ({', '.join(sorted(names))})")
    leaf_maps = [_leaves(e["scoring"]) for e in entries]
    first = entries[0]["scoring"]
    order = [n["id"] for n in first["nodes"] if n["kind"] == "indicator"]
    _check_options(order, rho, reference, normalisation, per_indicator or {})
    common = [i for i in order if all(i in m and m[i]["assessed"] for m in leaf_maps)]
    if reference is not None:
        common = [i for i in common if i in reference]
    kinds = [(per_indicator or {}).get(i, normalisation) for i in common]

    grades: list[float | None] = [None] * len(entries)
    ideal: list[float] = []
    if common:
        table = [[m[i]["score"] / 100.0 for i in common] for m in leaf_maps]
        weights = [leaf_maps[0][i]["global_weight"] for i in common]
        if sum(weights) <= 0:
            weights = None  # type: ignore[assignment]
        ref = [reference[i] / 100.0 for i in common] if reference is not None else None
        try:
            g, _, best = grey_relational_grades(table, weights, rho, ref, kinds)
        except ValueError as exc:
            raise CompareError(str(exc)) from None
        grades = [float(x) for x in g]
        ideal = [float(x) for x in best]

    scores = [e["scoring"]["overall"]["score"] for e in entries]
    rows = []
    score_rank = _ranks(scores)
    grey_rank = _ranks(grades)
    for k, entry in enumerate(entries):
        overall = entry["scoring"]["overall"]
        row = {key: value for key, value in entry.items() if key != "scoring"}
        grade = grades[k]
        row.update(
            score=overall["score"],
            grade=overall["grade"],
            fuzzy_grade=overall.get("fuzzy_grade"),
            coverage=entry["scoring"]["coverage"],
            grey_grade=None if grade is None else round(grade, 6),
            rank_score=score_rank[k],
            rank_grey=grey_rank[k],
        )
        rows.append(row)
    return {
        "hierarchy": next(iter(names)),
        "rho": rho,
        "indicators": common,
        "reference": "given" if reference is not None else "ideal",
        "normalisation": dict(zip(common, kinds)),
        "ideal": [round(x, 6) for x in ideal],
        "results": rows,
    }


def _check_options(order: Sequence[str], rho: float, reference: Mapping[str, float] | None,
                   normalisation: str, per_indicator: Mapping[str, str]) -> None:
    if not 0 < rho <= 1:
        raise CompareError(f"rho must be in (0, 1], got {rho:g}")
    for kind in [normalisation, *per_indicator.values()]:
        if kind not in NORMALISATIONS:
            raise CompareError(f"unknown normalisation {kind!r} (one of {', '.join(NORMALISATIONS)})")
    for what, ids in (("reference", reference or {}), ("normalisation", per_indicator)):
        unknown = [i for i in ids if i not in order]
        if unknown:
            raise CompareError(f"{what} names indicator(s) not in the hierarchy: {', '.join(unknown)}")
    for i, value in (reference or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise CompareError(f"reference score of {i} must be a number from 0 to 100, got {value!r}")


def _leaves(scoring: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {n["id"]: n for n in scoring["nodes"] if n["kind"] == "indicator"}


def _ranks(values: Sequence[float | None]) -> list[int | None]:
    present = [i for i, v in enumerate(values) if v is not None]
    out: list[int | None] = [None] * len(values)
    if present:
        ranks = rankdata(-np.array([values[i] for i in present], dtype=float), method="min")
        for i, r in zip(present, ranks):
            out[i] = int(r)
    return out
