"""Weighted aggregation with renormalisation over assessed nodes, and fuzzy composition."""

from __future__ import annotations

import numpy as np
import pytest

from crm_audit.scoring.aggregate import aggregate, coverage
from crm_audit.scoring.fuzzy import compose, max_membership_grade, membership
from crm_audit.scoring.grades import grade_of
from crm_audit.scoring.hierarchy import build_hierarchy


def leaf(nid, weight):
    return {"id": nid, "title": nid, "weight": weight, "unit": "ratio", "source": "evidence",
            "function": {"type": "linear", "good": 1, "bad": 0}}


@pytest.fixture
def tree():
    """root → A (0.6: a1 0.5, a2 0.3, a3 0.2), B (0.4: b1 0.25, b2 0.75)."""
    return build_hierarchy({"root": "root", "nodes": [
        {"id": "root", "title": "R", "children": ["A", "B"]},
        {"id": "A", "title": "A", "weight": 0.6, "children": ["a1", "a2", "a3"]},
        {"id": "B", "title": "B", "weight": 0.4, "children": ["b1", "b2"]},
        leaf("a1", 0.5), leaf("a2", 0.3), leaf("a3", 0.2), leaf("b1", 0.25), leaf("b2", 0.75),
    ]}, "<test>")


def test_all_assessed_is_plain_weighted_sum(tree):
    scores = {"a1": 80, "a2": 60, "a3": 100, "b1": 40, "b2": 100}
    out = aggregate(tree, scores)
    assert out["A"].score == pytest.approx(0.5 * 80 + 0.3 * 60 + 0.2 * 100)  # 78
    assert out["B"].score == pytest.approx(0.25 * 40 + 0.75 * 100)  # 85
    assert out["root"].score == pytest.approx(0.6 * 78 + 0.4 * 85)
    assert coverage(tree, out) == pytest.approx(1.0)
    assert out["a2"].effective_weight == pytest.approx(0.6 * 0.3)


def test_not_assessed_weight_is_spread_over_assessed_siblings(tree):
    scores = {"a1": 80, "a2": None, "a3": 100, "b1": 40, "b2": 100}
    out = aggregate(tree, scores)
    assert not out["a2"].assessed and out["a2"].score is None and out["a2"].effective_weight is None
    # a2's 0.3 is shared by a1 and a3 in proportion 0.5 : 0.2
    assert out["A"].score == pytest.approx((0.5 * 80 + 0.2 * 100) / 0.7)
    assert out["a1"].effective_weight == pytest.approx(0.6 * 0.5 / 0.7)
    assert coverage(tree, out) == pytest.approx(1 - 0.6 * 0.3)
    assigned = sum(n.effective_weight for k, n in out.items() if k in scores and n.assessed)
    assert assigned == pytest.approx(1.0)


def test_dimension_with_nothing_assessed_is_not_assessed(tree):
    out = aggregate(tree, {"a1": 80, "a2": 60, "a3": 100})
    assert not out["B"].assessed and out["B"].score is None
    assert out["root"].score == pytest.approx(out["A"].score)  # B's 0.4 went to A
    assert out["A"].effective_weight == pytest.approx(1.0)
    assert coverage(tree, out) == pytest.approx(0.6)


def test_nothing_assessed(tree):
    out = aggregate(tree, {})
    assert not out["root"].assessed and out["root"].score is None and out["root"].membership is None
    assert coverage(tree, out) == 0.0


# ---------------------------------------------------------------- fuzzy

@pytest.mark.parametrize(
    "score, expected",
    [
        (100, [1, 0, 0, 0]), (95, [1, 0, 0, 0]), (92, [0.7, 0.3, 0, 0]), (90, [0.5, 0.5, 0, 0]),
        (85, [0, 1, 0, 0]), (80, [0, 1, 0, 0]), (72, [0, 0.7, 0.3, 0]), (70, [0, 0.5, 0.5, 0]),
        (65, [0, 0, 1, 0]), (50, [0, 0, 0.5, 0.5]), (46, [0, 0, 0.1, 0.9]), (45, [0, 0, 0, 1]), (0, [0, 0, 0, 1]),
    ],
)
def test_membership_is_trapezoidal_around_the_boundaries(score, expected):
    m = membership(score)
    assert m == pytest.approx(expected)
    assert m.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("score", [0, 12.5, 49.9, 50, 50.1, 69.9, 70, 89.99, 90, 99])
def test_max_membership_agrees_with_the_crisp_grade(score):
    assert max_membership_grade(membership(score)) == grade_of(score)


def test_grade_bands():
    assert [grade_of(s) for s in (100, 90, 89.9, 70, 69.9, 50, 49.9, 0)] == [
        "Excellent", "Excellent", "Good", "Good", "Pass", "Pass", "Fail", "Fail"]
    assert grade_of(None) is None


def test_composition_is_weighted_average_and_renormalised():
    r = [membership(70), membership(80)]  # (0, .5, .5, 0) and (0, 1, 0, 0)
    b = compose([0.7, 0.3], r)
    assert b == pytest.approx([0, 0.65, 0.35, 0])
    assert compose([7, 3], r) == pytest.approx(b)  # weights renormalised


def test_fuzzy_vector_is_composed_level_by_level(tree):
    scores = {"a1": 70, "a2": 80, "a3": None, "b1": 50, "b2": 95}
    out = aggregate(tree, scores)
    ra = compose([0.5, 0.3], [membership(70), membership(80)])
    rb = compose([0.25, 0.75], [membership(50), membership(95)])
    assert out["A"].membership == pytest.approx(ra)
    assert out["root"].membership == pytest.approx(compose([0.6, 0.4], [ra, rb]))
    assert out["root"].membership.sum() == pytest.approx(1.0)
    assert isinstance(out["root"].membership, np.ndarray)
