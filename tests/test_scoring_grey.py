"""Grey relational grade against the ideal sequence (ρ = 0.5), and the comparison ranking."""

from __future__ import annotations

import pytest

from crm_audit.scoring.compare import CompareError, compare_scorings
from crm_audit.scoring.grey import grey_relational_grades

# three CRMs × two indicators, already normalised (larger is better); worked by hand:
# ideal (1, 1); Δ = [[0, .5], [.5, 0], [.2, .2]]; Δmin 0, Δmax .5, ρΔmax = .25
# ξ = .25 / (Δ + .25): Δ 0 → 1, Δ .5 → 1/3, Δ .2 → 5/9
TABLE = [[1.0, 0.5], [0.5, 1.0], [0.8, 0.8]]


def test_coefficients_and_unweighted_grades_by_hand():
    grades, xi, ideal = grey_relational_grades(TABLE)
    assert list(ideal) == [1.0, 1.0]
    assert xi.ravel().tolist() == pytest.approx([1, 1 / 3, 1 / 3, 1, 5 / 9, 5 / 9])
    assert grades.tolist() == pytest.approx([2 / 3, 2 / 3, 5 / 9])


def test_weighted_grades_by_hand():
    grades, _, _ = grey_relational_grades(TABLE, weights=[0.7, 0.3])
    assert grades.tolist() == pytest.approx([0.7 + 0.3 / 3, 0.7 / 3 + 0.3, 5 / 9])


def test_rho_changes_the_spread():
    wide, _, _ = grey_relational_grades(TABLE, rho=0.1)
    # ρ = 0.1: ξ(Δ=.5) = .05/.55 = 1/11, ξ(Δ=.2) = .05/.25 = 0.2
    assert wide.tolist() == pytest.approx([(1 + 1 / 11) / 2, (1 + 1 / 11) / 2, 0.2])


def test_identical_sequences_are_fully_related():
    grades, xi, _ = grey_relational_grades([[0.5, 0.7], [0.5, 0.7]])
    assert grades.tolist() == [1.0, 1.0] and xi.min() == 1.0


def test_bad_input():
    with pytest.raises(ValueError):
        grey_relational_grades([])
    with pytest.raises(ValueError):
        grey_relational_grades(TABLE, rho=0)
    with pytest.raises(ValueError):
        grey_relational_grades(TABLE, weights=[1.0])


def scoring(name, overall, leaves, hierarchy="default"):
    nodes = [{"id": "root", "kind": "root", "assessed": True, "score": overall, "global_weight": 1.0}]
    for nid, (score, weight) in leaves.items():
        nodes.append({"id": nid, "kind": "indicator", "assessed": score is not None, "score": score, "global_weight": weight})
    return {"label": name, "scoring": {"hierarchy": hierarchy, "overall": {"score": overall, "grade": "Good", "fuzzy_grade": "Good"},
                                       "coverage": 1.0, "nodes": nodes}}


def test_compare_ranks_by_score_and_grey_grade():
    entries = [
        scoring("A", 85.0, {"x": (100, 0.7), "y": (50, 0.3), "z": (90, 0.0)}),
        scoring("B", 65.0, {"x": (50, 0.7), "y": (100, 0.3), "z": (None, 0.0)}),
        scoring("C", 80.0, {"x": (80, 0.7), "y": (80, 0.3), "z": (70, 0.0)}),
    ]
    out = compare_scorings(entries)
    assert out["indicators"] == ["x", "y"]  # z not assessed for B: left out
    assert out["ideal"] == [1.0, 1.0] and out["rho"] == 0.5
    rows = {r["label"]: r for r in out["results"]}
    assert rows["A"]["grey_grade"] == pytest.approx(0.8, abs=1e-6)
    assert rows["B"]["grey_grade"] == pytest.approx(0.7 / 3 + 0.3, abs=1e-6)
    assert rows["C"]["grey_grade"] == pytest.approx(5 / 9, abs=1e-6)
    assert [rows[k]["rank_score"] for k in "ABC"] == [1, 3, 2]
    assert [rows[k]["rank_grey"] for k in "ABC"] == [1, 3, 2]


def test_compare_ties_share_a_rank():
    entries = [scoring("A", 70.0, {"x": (70, 1.0)}), scoring("B", 70.0, {"x": (70, 1.0)})]
    out = compare_scorings(entries)
    assert [r["rank_score"] for r in out["results"]] == [1, 1]


def test_compare_refuses_mixed_hierarchies():
    with pytest.raises(CompareError, match="different hierarchies"):
        compare_scorings([scoring("A", 1.0, {}), scoring("B", 1.0, {}, hierarchy="security")])
