"""Issue 21: the seed methods against worked examples — fuzzy operators and grade scales,
grey relational analysis with a reference series, discounted payback, multi-root IRR,
random-index tables and hierarchy-wide consistency."""

from __future__ import annotations

import numpy as np
import pytest

from crm_audit.scoring import HierarchyError, load_hierarchy
from crm_audit.scoring.aggregate import aggregate
from crm_audit.scoring.ahp import RI_TABLES, ahp_weights, hierarchy_consistency
from crm_audit.scoring.evidence import evidence_from_mapping
from crm_audit.scoring.finance import discounted_payback, irr, irr_roots, npv, payback_period
from crm_audit.scoring.functions import parse_function
from crm_audit.scoring.fuzzy import compose, defuzzify, max_membership_grade, membership, operator_name
from crm_audit.scoring.grades import parse_grade_scale
from crm_audit.scoring.grey import grey_relational_grades, normalise
from crm_audit.scoring.hierarchy import build_hierarchy

FIVE = parse_grade_scale([
    {"name": "优", "floor": 90, "value": 95}, {"name": "良", "floor": 80, "value": 85},
    {"name": "中", "floor": 70, "value": 75}, {"name": "差", "floor": 60, "value": 65},
    {"name": "劣", "floor": 0, "value": 30},
])

# ------------------------------------------------------------------ fuzzy evaluation


def test_published_four_grade_example_where_the_operator_changes_the_grade():
    """SPSSAU's fuzzy comprehensive evaluation case (garment style, reproduced at
    https://blog.51cto.com/u_16099279/8964470): weights A = (0.1, 0.1, 0.15, 0.3, 0.35) for
    花色, 式样, 价格, 耐用度, 舒适度; rows R1 = (.2, .5, .3, 0), R2 = (.1, .3, .5, .1),
    R3 = (0, .1, .6, .3), R4 = (0, .4, .5, .1), R5 = (.5, .3, .2, 0) over 很欢迎/欢迎/一般/不欢迎;
    the case uses the weighted average M(·,+).

    By hand, M(·,+): B = (.205, .320, .390, .085) → 一般. M(∧,∨): b_1 = max(.1, .1, 0, 0, .35)
    = .35, b_2 = max(.1, .1, .1, .3, .3) = .3, b_3 = .3, b_4 = .15 → 很欢迎: Zadeh's operator
    lets the heaviest factor (舒适度, 0.35) decide alone.
    """
    scale = parse_grade_scale([{"name": n, "floor": f} for n, f in (("很欢迎", 75), ("欢迎", 50), ("一般", 25), ("不欢迎", 0))])
    a = [0.1, 0.1, 0.15, 0.3, 0.35]
    r = [[.2, .5, .3, 0], [.1, .3, .5, .1], [0, .1, .6, .3], [0, .4, .5, .1], [.5, .3, .2, 0]]
    b = compose(a, r, "M(·,+)")
    assert b.tolist() == pytest.approx([.205, .320, .390, .085])
    assert max_membership_grade(b, scale) == "一般"
    z = compose(a, r, "M(∧,∨)")
    assert (z * 1.1).tolist() == pytest.approx([.35, .3, .3, .15])  # normalised by Σ = 1.1
    assert max_membership_grade(z, scale) == "很欢迎"


# Five grades 优/良/中/差/劣, four factors. Derived by hand (no published source is quoted):
W5 = [0.4, 0.3, 0.2, 0.1]
R5 = [[0.6, 0.2, 0.2, 0.0, 0.0],
      [0.0, 0.6, 0.3, 0.1, 0.0],
      [0.0, 0.5, 0.4, 0.1, 0.0],
      [0.1, 0.4, 0.3, 0.2, 0.0]]


def test_five_grade_evaluation_with_every_operator_by_hand():
    """Derived by hand (figures not quoted from a publication):

    M(·,+): 优 .4·.6 + .1·.1 = .25; 良 .08 + .18 + .10 + .04 = .40; 中 .08 + .09 + .08 + .03 = .28;
            差 .03 + .02 + .02 = .07; 劣 0 → (.25, .40, .28, .07, 0), Σ = 1 → 良;
            defuzzified with values (95, 85, 75, 65, 30): 23.75 + 34 + 21 + 4.55 = 83.3.
    M(∧,∨): 优 max(.4, 0, 0, .1) = .4; 良 max(.2, .3, .2, .1) = .3; 中 .3; 差 .1; 劣 0 → 优
            (Σ = 1.1, normalised .3636…): the operator changes the grade.
    M(·,∨): (.24, .18, .09, .03, 0) → 优.
    M(∧,⊕): 优 min(1, .4 + .1) = .5; 良 .2 + .3 + .2 + .1 = .8; 中 .8; 差 .3; 劣 0 → tie 良/中,
            the better grade wins → 良.
    """
    b = compose(W5, R5, "M(·,+)")
    assert b.tolist() == pytest.approx([.25, .40, .28, .07, 0])
    assert max_membership_grade(b, FIVE) == "良"
    assert defuzzify(b, FIVE) == pytest.approx(83.3)
    z = compose(W5, R5, "M(∧,∨)")
    assert z.tolist() == pytest.approx(np.array([.4, .3, .3, .1, 0]) / 1.1)
    assert max_membership_grade(z, FIVE) == "优"
    p = compose(W5, R5, "M(·,∨)")
    assert p.tolist() == pytest.approx(np.array([.24, .18, .09, .03, 0]) / .54)
    assert max_membership_grade(p, FIVE) == "优"
    s = compose(W5, R5, "M(∧,⊕)")
    assert s.tolist() == pytest.approx(np.array([.5, .8, .8, .3, 0]) / 2.4)
    assert max_membership_grade(s, FIVE) == "良"


def test_operator_aliases_and_unknown_operator():
    assert operator_name("max_min") == "M(∧,∨)" and operator_name("M(·, +)") == "M(·,+)"
    assert operator_name("bounded_sum") == "M(∧,⊕)" and operator_name("max_product") == "M(·,∨)"
    with pytest.raises(ValueError, match="unknown fuzzy operator"):
        operator_name("average")


def test_five_grade_memberships_are_derived_from_the_floors():
    # bands 10 wide: the hand-over is 10 wide, so 85 is fully 良 and 80 half 良 half 中
    assert membership(85, FIVE).tolist() == [0, 1, 0, 0, 0]
    assert membership(80, FIVE).tolist() == [0, .5, .5, 0, 0]
    assert membership(30, FIVE).tolist() == [0, 0, 0, 0, 1]
    assert FIVE.grade_of(79.96) == "良"  # shown as 80.0
    for s in np.linspace(0, 100, 201):
        assert membership(s, FIVE).sum() == pytest.approx(1.0)
        assert max_membership_grade(membership(s, FIVE), FIVE) == FIVE.grade_of(s)


def _five_grade_hierarchy(operator: str) -> dict:
    leaves = [f"q{i}" for i in range(4)]
    nodes = [{"id": "crm", "title": "CRM", "children": leaves}]
    nodes += [{"id": q, "title": q, "weight": w, "source": "evidence", "unit": "0-100",
               "function": {"type": "linear", "good": 100, "bad": 0}} for q, w in zip(leaves, W5)]
    return {"name": "five", "root": "crm", "fuzzy_operator": operator, "nodes": nodes,
            "grades": [{"name": "优", "floor": 90, "value": 95, "membership": [85, 95, 100, 100]},
                       {"name": "良", "floor": 80, "value": 85, "membership": [75, 85, 85, 95]},
                       {"name": "中", "floor": 70, "value": 75, "membership": [65, 75, 75, 85]},
                       {"name": "差", "floor": 60, "value": 65, "membership": [55, 65, 65, 75]},
                       {"name": "劣", "floor": 0, "value": 30, "membership": [0, 0, 55, 65]}]}


def test_a_hierarchy_declares_its_grade_scale_and_operator():
    """Leaf scores 100, 85, 85, 72 → rows 优, 良, 良, (0, 0, .7, .3, 0). With weights
    (.4, .3, .2, .1): M(·,+) B = (.4, .5, .07, .03, 0) → 良; M(∧,∨) B ∝ (.4, .3, .1, .1, 0) → 优.
    The crisp grade of the weighted score 40 + 25.5 + 17 + 7.2 = 89.7 is 良. (Derived by hand.)"""
    scores = {"q0": 100.0, "q1": 85.0, "q2": 85.0, "q3": 72.0}
    avg = build_hierarchy(_five_grade_hierarchy("weighted_average"), "five.yaml")
    zadeh = build_hierarchy(_five_grade_hierarchy("M(∧,∨)"), "five.yaml")
    a, z = aggregate(avg, scores)["crm"], aggregate(zadeh, scores)["crm"]
    assert a.score == pytest.approx(89.7) and avg.grade_scale.grade_of(a.score) == "良"
    assert a.membership.tolist() == pytest.approx([.4, .5, .07, .03, 0])
    assert max_membership_grade(a.membership, avg.grade_scale) == "良"
    assert (z.membership * 0.9).tolist() == pytest.approx([.4, .3, .1, .1, 0])
    assert max_membership_grade(z.membership, zadeh.grade_scale) == "优"


@pytest.mark.parametrize("patch, fragment", [
    ({"fuzzy_operator": "mean"}, "fuzzy_operator: unknown fuzzy operator"),
    ({"grades": [{"name": "A", "floor": 50}, {"name": "B", "floor": 60}]}, "grades: floors"),
    ({"grades": [{"name": "A", "floor": 50}, {"name": "B", "floor": 10}]}, "the last being 0"),
    ({"grades": [{"name": "A", "floor": 50, "membership": [60, 70, 100, 100]},
                 {"name": "B", "floor": 0, "membership": [0, 0, 40, 50]}]}, "in no grade"),
    ({"grades": [{"name": "A", "floor": 50, "colour": "red"}, {"name": "B", "floor": 0}]}, "unknown key"),
    ({"ri_table": "saaty1990"}, "ri_table: unknown table"),
])
def test_bad_method_keys_give_one_line_naming_the_key(patch, fragment):
    data = {**_five_grade_hierarchy("M(·,+)"), **patch}
    with pytest.raises(HierarchyError, match=fragment) as info:
        build_hierarchy(data, "five.yaml")
    assert "\n" not in str(info.value) and str(info.value).startswith("five.yaml: ")


def test_default_hierarchy_keeps_the_four_grades_and_weighted_average():
    h = load_hierarchy("default")
    assert h.grade_scale.names == ("Excellent", "Good", "Pass", "Fail")
    assert h.grade_scale.floors == (90, 70, 50, 0) and h.fuzzy_operator == "M(·,+)" and h.ri_table == "saaty1980"


# ------------------------------------------------------------------ grey relational analysis

# Three CRMs × three criteria: p95 response time (ms, cost), throughput (req/s, benefit),
# satisfaction (0–100, benefit); the target profile (reference series) is (200, 120, 90).
RAW = [[300, 100, 80], [250, 80, 90], [400, 120, 70]]
TARGET = [200, 120, 90]


def test_grey_ranking_with_a_given_reference_and_min_max_normalisation():
    """Deng's grey relational grade (Deng, J. (1989), "Introduction to grey system theory",
    The Journal of Grey System 1(1):1–24); the figures are derived by hand here, not quoted.

    Min–max over each column *with* the reference: response time (cost) [200, 300, 250, 400]
    → (400 − x)/200 = ref 1, A .5, B .75, C 0; throughput (benefit) [120, 100, 80, 120] → ref 1,
    A .5, B 0, C 1; satisfaction [90, 80, 90, 70] → ref 1, A .5, B 1, C 0.
    Δ: A (.5, .5, .5), B (.25, 1, 0), C (1, 0, 1); Δmin 0, Δmax 1, ρ .5: ξ = .5/(Δ + .5).
    Grades, equal weights: A .5, B (2/3 + 1/3 + 1)/3 = 2/3, C (1/3 + 1 + 1/3)/3 = 5/9 → B, C, A.
    Weights (.5, .3, .2): A .5, B .5·2/3 + .3/3 + .2 = .6333, C .5/3 + .3 + .2/3 = .5333.
    """
    kinds = ["cost", "benefit", "benefit"]
    g, xi, x0 = grey_relational_grades(RAW, reference=TARGET, normalisation=kinds)
    assert x0.tolist() == [1, 1, 1]
    assert xi.ravel().tolist() == pytest.approx([.5, .5, .5, 2 / 3, 1 / 3, 1, 1 / 3, 1, 1 / 3])
    assert g.tolist() == pytest.approx([.5, 2 / 3, 5 / 9])
    weighted, _, _ = grey_relational_grades(RAW, weights=[.5, .3, .2], reference=TARGET, normalisation=kinds)
    assert weighted.tolist() == pytest.approx([.5, .5 * 2 / 3 + .1 + .2, .5 / 3 + .3 + .2 / 3])
    # against the ideal instead (no reference): the min–max columns of the CRMs alone
    ideal, _, best = grey_relational_grades(RAW, normalisation=kinds)
    assert best.tolist() == [1, 1, 1]
    assert ideal.argmax() == 1


def test_normalisations_by_hand():
    table = np.array([[2.0, 10.0], [4.0, 30.0], [6.0, 20.0]])
    assert normalise(table, ["mean", "initial"]).ravel().tolist() == pytest.approx([.5, 1, 1, 3, 1.5, 2])
    assert normalise(table, ["benefit", "cost"]).ravel().tolist() == pytest.approx([0, 1, .5, 0, 1, .5])
    assert normalise(np.array([[3.0], [3.0]]), ["benefit"]).tolist() == [[1.0], [1.0]]
    with pytest.raises(ValueError, match="initial value, which is 0"):
        normalise(np.array([[0.0], [1.0]]), ["initial"])
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise(table, ["zscore", "none"])
    with pytest.raises(ValueError, match="reference series"):
        grey_relational_grades(RAW, reference=[1, 2])


# ------------------------------------------------------------------ finance


def test_discounted_payback_textbook_problem():
    """Ross, Westerfield & Jordan, *Fundamentals of Corporate Finance*, ch. 9, problem
    "Calculating Discounted Payback": inflows $2,800, $3,700, $5,100, $4,300 at 14 %; the
    published answers are 1.96 years (cost $5,200), 2.03 years ($5,400) and 3.65 years ($10,400).
    By hand for $10,400: discounted inflows 2456.14, 2847.03, 3442.35, 2545.95; after three
    years 1654.48 remain, so 3 + 1654.48/2545.95 = 3.65."""
    flows = [2800, 3700, 5100, 4300]
    assert round(discounted_payback(0.14, [-5200, *flows]), 2) == 1.96
    assert round(discounted_payback(0.14, [-5400, *flows]), 2) == 2.03
    assert round(discounted_payback(0.14, [-10400, *flows]), 2) == 3.65


def test_discounted_payback_not_recovered():
    """Same chapter, problem with a $10,000 cost and $2,600 a year for six years: at 0 % it pays
    back in 10000/2600 = 3.85 years; at 15 % the discounted inflows sum to 9,839.66 and the
    cost is never recovered. At 10 % (derived by hand): 5 years recover 9,856.05, year six
    brings 1,467.63, so 5 + 143.95/1467.63 = 5.10 years."""
    flows = [-10000] + [2600] * 6
    assert round(discounted_payback(0.0, flows), 2) == round(payback_period(flows), 2) == 3.85
    assert discounted_payback(0.15, flows) is None
    assert discounted_payback(0.10, flows) == pytest.approx(5 + 143.947 / 1467.63, abs=1e-4)


def test_multi_root_irr_lorie_savage_pump():
    """The Lorie–Savage pump (Lorie & Savage 1955; Brealey, Myers & Allen, *Principles of
    Corporate Finance*, ch. 5, "multiple rates of return"): −1,600 now, +10,000 in year 1,
    −10,000 in year 2 has two IRRs, 25 % and 400 %. numpy-financial's irr() returns the one
    closest to zero: 25 %."""
    flows = [-1600, 10000, -10000]
    assert irr_roots(flows) == pytest.approx((0.25, 4.0))
    assert irr(flows) == pytest.approx(0.25)
    assert all(npv(r, flows) == pytest.approx(0, abs=1e-6) for r in irr_roots(flows))


def test_irr_closest_to_zero_not_the_lowest_and_the_ambiguity_is_flagged():
    """Derived by hand: [-200, 320, -110] has NPV 0 at r = −50 % (−200 + 640 − 440) and at
    r = 10 % (−200 + 290.91 − 90.91). The old rule (lowest root above −99 %) took −50 % and the
    IRR indicator of the default hierarchy (linear, 100 at 0.30, 0 at 0) scored 0; the root
    closest to zero, 10 %, scores 100 · 0.1/0.3 = 33.3."""
    flows = [-200, 320, -110]
    assert irr_roots(flows) == pytest.approx((-0.5, 0.1))
    assert irr(flows) == pytest.approx(0.1)
    ev = evidence_from_mapping({"cash_flows": flows, "discount_rate": 0.08})
    item = ev.get("cost.irr")
    assert item.value == pytest.approx(0.1)
    assert "IRR ambiguous: 2 real roots (-50.00%, 10.00%)" in item.note
    fn = parse_function({"type": "linear", "good": 0.30, "bad": 0}, "ratio")
    assert round(fn.score(item.value), 1) == 33.3


def test_not_recovered_payback_is_explicit_in_evidence():
    ev = evidence_from_mapping({"cash_flows": [-100, 10, 10], "discount_rate": 0.05})
    for key in ("cost.payback", "cost.discounted_payback"):
        item = ev.get(key)
        assert item.text == "not recovered" and "not recovered" in item.note
    assert ev.get("cost.discounted_payback").unit == "years"


# ------------------------------------------------------------------ AHP: RI tables, hierarchy CR

LEADER = [[1, 4, 3, 7], ["1/4", 1, "1/3", 3], ["1/3", 3, 1, 5], ["1/7", "1/3", "1/5", 1]]


def test_random_index_tables():
    """Saaty 2005 (*Theory and Applications of the ANP*, p. 31) and Donegan & Dodd (1991),
    as tabulated in AHPy (PhilipGriffith/AHPy, Compare._compute_consistency_ratio)."""
    assert RI_TABLES["saaty2005"][2:6] == (0.52, 0.89, 1.11, 1.25)
    assert RI_TABLES["donegan-dodd"][2:5] == (0.4914, 0.8286, 1.0591)
    assert RI_TABLES["cn-textbook"][2:6] == (0.52, 0.89, 1.12, 1.26)
    base = ahp_weights(LEADER)
    for name, table in RI_TABLES.items():
        r = ahp_weights(LEADER, name)
        assert r.ri == table[3] and r.ri_table == name
        assert r.cr == pytest.approx(base.ci / table[3]) and r.weights == base.weights
    with pytest.raises(ValueError, match="unknown RI table"):
        ahp_weights(LEADER, "saaty1990")
    assert len(ahp_weights([[1] * 12 for _ in range(12)], "saaty2005").weights) == 12


# The travel-destination example (景色, 费用, 居住, 饮食, 旅途; three destinations) as printed in
# Chinese modelling textbooks (e.g. 姜启源 et al., 数学模型, 高等教育出版社, the AHP chapter).
TRAVEL_A = [[1, "1/2", 4, 3, 3], [2, 1, 7, 5, 5], ["1/4", "1/7", 1, "1/2", "1/3"],
            ["1/3", "1/5", 2, 1, 1], ["1/3", "1/5", 3, 1, 1]]
TRAVEL_B = [
    [[1, 2, 5], ["1/2", 1, 2], ["1/5", "1/2", 1]],
    [[1, "1/3", "1/8"], [3, 1, "1/3"], [8, 3, 1]],
    [[1, 1, 3], [1, 1, 3], ["1/3", "1/3", 1]],
    [[1, 3, 4], ["1/3", 1, 1], ["1/4", 1, 1]],
    [[1, 1, "1/4"], [1, 1, "1/4"], [4, 4, 1]],
]


def test_hierarchy_wide_consistency_of_the_travel_example():
    """Hierarchy CR (Saaty 1980: consistency of a hierarchy) = Σ w·CI / Σ w·RI over all
    matrices, w the global weight of the node whose children a matrix compares. The matrices
    are the textbook's; the figures below are derived here (eigenvector method, Saaty 1980 RI):

    criteria: w = (.264, .476, .054, .098, .109), λmax 5.072, CI .0180, CR .016;
    destinations: CI = .00277, .00077, 0, .00460, 0 (λmax 3.006, 3.002, 3, 3.009, 3).
    Σ w·CI = .0180 + .264·.00277 + .476·.00077 + .098·.00460 = .01957;
    Σ w·RI = 1.12 + (Σ w = 1)·0.58 = 1.70; CR_H = .01957 / 1.70 = .0115 < 0.10.
    """
    top = ahp_weights(TRAVEL_A)
    assert [round(w, 3) for w in top.weights] == [.264, .476, .054, .098, .109]
    assert round(top.lambda_max, 3) == 5.072 and round(top.cr, 3) == 0.016
    subs = [ahp_weights(b) for b in TRAVEL_B]
    assert [round(s.ci, 5) for s in subs] == [.00277, .00077, 0, .00460, 0]
    c = hierarchy_consistency([("goal", 1.0, top)] + [(f"B{i + 1}", w, s) for i, (w, s) in enumerate(zip(top.weights, subs))])
    assert round(c.ci, 5) == .01957 and c.ri == pytest.approx(1.70)
    assert round(c.cr, 4) == .0115 and c.consistent
    assert len(c.matrices) == 6 and c.matrices[0][:3] == ("goal", 1.0, 5)


def test_hierarchy_consistency_of_a_hierarchy_file():
    nodes = [{"id": "goal", "title": "goal", "children": ["B1", "B2", "B3", "B4", "B5"], "weights": {"ahp": {"matrix": TRAVEL_A}}}]
    for i, m in enumerate(TRAVEL_B, start=1):
        kids = [f"B{i}.P{k}" for k in (1, 2, 3)]
        nodes.append({"id": f"B{i}", "title": f"B{i}", "children": kids, "weights": {"ahp": {"matrix": m}}})
        nodes += [{"id": k, "title": k, "source": "evidence", "function": {"type": "linear", "good": 100, "bad": 0}} for k in kids]
    h = build_hierarchy({"name": "travel", "root": "goal", "nodes": nodes}, "travel.yaml")
    assert round(h.consistency().cr, 4) == .0115
    cn = build_hierarchy({"name": "travel", "root": "goal", "ri_table": "cn-textbook", "nodes": nodes}, "travel.yaml")
    assert cn.consistency().ri == pytest.approx(1.12 + 0.52)
    assert cn.nodes["goal"].ahp.ri_table == "cn-textbook"
