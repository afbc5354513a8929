"""AHP: principal eigenvector, λmax, CI, CR against published worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from crm_audit.scoring.ahp import RANDOM_INDEX, AhpError, ahp_weights, parse_entry


def test_saaty_wealth_of_nations_example():
    """Saaty, T.L. (1980), *The Analytic Hierarchy Process*, McGraw-Hill — the relative
    wealth of nations example (after Saaty & Khouja 1976): US, USSR, China, France, UK,
    Japan, W. Germany. Published eigenvector .427 .230 .021 .052 .052 .123 .094, λmax 7.61,
    CI 0.10, CR 0.08."""
    matrix = [
        [1, 4, 9, 6, 6, 5, 5],
        ["1/4", 1, 7, 5, 5, 3, 4],
        ["1/9", "1/7", 1, "1/5", "1/5", "1/7", "1/5"],
        ["1/6", "1/5", 5, 1, 1, "1/3", "1/3"],
        ["1/6", "1/5", 5, 1, 1, "1/3", "1/3"],
        ["1/5", "1/3", 7, 3, 3, 1, 2],
        ["1/5", "1/4", 5, 3, 3, "1/2", 1],
    ]
    r = ahp_weights(matrix)
    assert r.weights == pytest.approx([0.427, 0.230, 0.021, 0.052, 0.052, 0.123, 0.094], abs=6e-4)
    assert r.lambda_max == pytest.approx(7.61, abs=5e-3)
    assert r.ci == pytest.approx(0.10, abs=5e-3)
    assert r.cr == pytest.approx(0.08, abs=5e-3)
    assert r.consistent


def test_wikipedia_leader_example_criteria():
    """'Analytic hierarchy process – leader example' (English Wikipedia): criteria
    Experience, Education, Charisma, Age weighted .547, .127, .270, .056; CR 0.044."""
    matrix = [
        [1, 4, 3, 7],
        ["1/4", 1, "1/3", 3],
        ["1/3", 3, 1, 5],
        ["1/7", "1/3", "1/5", 1],
    ]
    r = ahp_weights(matrix)
    assert r.weights == pytest.approx([0.547, 0.127, 0.270, 0.056], abs=6e-4)
    assert r.cr == pytest.approx(0.044, abs=5e-4)
    assert r.ci == pytest.approx((r.lambda_max - 4) / 3)
    assert r.cr == pytest.approx(r.ci / 0.90)


def test_consistent_matrix_gives_exact_ratios():
    w = np.array([0.5, 0.25, 0.125, 0.125])
    r = ahp_weights(np.outer(w, 1 / w))
    assert r.weights == pytest.approx(list(w))
    assert r.lambda_max == pytest.approx(4.0)
    assert r.ci == pytest.approx(0.0, abs=1e-9)
    assert r.cr == pytest.approx(0.0, abs=1e-9)


def test_random_index_table_is_saatys():
    assert RANDOM_INDEX == (0, 0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49)


def test_cr_threshold_just_below_and_above():
    below = ahp_weights([[1, 1, 3], [1, 1, 8], ["1/3", "1/8", 1]])
    above = ahp_weights([[1, 2, 5], ["1/2", 1, 7], ["1/5", "1/7", 1]])
    assert 0.09 < below.cr < 0.10 and below.consistent
    assert 0.10 <= above.cr < 0.11 and not above.consistent


def test_most_inconsistent_pair_is_named():
    w = np.array([8.0, 4.0, 2.0, 1.0])
    m = np.outer(w, 1 / w)
    m[0, 3], m[3, 0] = 1 / 8, 8.0  # one judgment reversed
    r = ahp_weights(m)
    assert not r.consistent
    assert r.worst_pair == (0, 3)
    message = r.inconsistency_message(["perf", "sec", "bak", "dq"])
    assert "perf vs dq" in message and "CR" in message and "\n" not in message


def test_small_matrices_are_consistent():
    one = ahp_weights([[1]])
    assert one.weights == (1.0,) and one.cr == 0.0 and one.consistent
    two = ahp_weights([[1, 3], ["1/3", 1]])
    assert two.weights == pytest.approx([0.75, 0.25])
    assert two.cr == 0.0 and two.lambda_max == pytest.approx(2.0)


@pytest.mark.parametrize(
    "matrix, fragment",
    [
        ([[1, 3], [3, 1]], "not reciprocal"),
        ([[1, 3, 1], [1, 1]], "square"),
        ([[1, 12], ["1/12", 1]], "outside Saaty's scale"),
        ([[2, 1], [1, 1]], "diagonal"),
        ([[1, "x"], [1, 1]], "not a number"),
        ([[1, -2], [-0.5, 1]], "positive"),
        ([[1] * 11 for _ in range(11)], "at most 10"),
    ],
)
def test_bad_matrices_are_refused(matrix, fragment):
    with pytest.raises(AhpError, match=fragment):
        ahp_weights(matrix)


def test_rounded_reciprocals_are_accepted():
    r = ahp_weights([[1, 3], [0.33, 1]])
    assert r.weights[0] == pytest.approx(0.75, abs=2e-3)


def test_fraction_entries():
    assert parse_entry("1/3") == pytest.approx(1 / 3)
    assert parse_entry(" 5 ") == 5.0
    assert parse_entry(7) == 7.0


def test_as_dict_shape():
    d = ahp_weights([[1, 3], ["1/3", 1]]).as_dict(["a", "b"])
    assert list(d) == ["criteria", "weights", "lambda_max", "ci", "cr", "consistent", "ri", "ri_table"]
    assert d["criteria"] == ["a", "b"] and d["consistent"] is True
