"""Issue 21: scores are exact at control points, and the grade shown is the grade of the
score shown (JSON, terminal), for every scoring function of every bundled hierarchy."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_audit.core.model import AuditResult, Measurement, ProbeResult, TargetSummary
from crm_audit.scoring import available_hierarchies, load_hierarchy, score_result
from crm_audit.scoring.evidence import evidence_from_mapping
from crm_audit.scoring.grades import SCORE_DECIMALS, grade_of, shown
from crm_audit.scoring.render import scoring_rows

HIERARCHIES = {name: load_hierarchy(name) for name in available_hierarchies()}
LEAVES = [(name, leaf.id) for name, h in HIERARCHIES.items() for leaf in h.leaves()]
VALUED = [(name, nid) for name, nid in LEAVES if HIERARCHIES[name].nodes[nid].function.kind != "findings"]


def _result(measurements: list[Measurement], probe: str) -> AuditResult:
    return AuditResult(
        tool={"name": "crm-audit", "version": "test"}, run_id="run-1",
        target=TargetSummary(name="t", base_url="https://crm.example", scope=["crm.example"]),
        profile_digest="sha256:0", started="2024-05-01T00:00:00Z",
        probes=[ProbeResult(probe=probe, measurements=measurements)],
    )


def _grade_by_floors(scoring: dict, score: float) -> str:
    """The grade of a displayed score, from the default floors (independent of grade_of)."""
    floors = dict(zip(scoring["grades"], (90, 70, 50, 0)))
    return next(g for g in scoring["grades"] if score >= floors[g])


@pytest.mark.parametrize("name, nid", LEAVES)
def test_every_bundled_function_scores_exactly_at_its_control_points(name, nid):
    fn = HIERARCHIES[name].nodes[nid].function
    for value, expected in fn.control_points():
        assert fn.score(value) == expected, (nid, value)
        assert grade_of(fn.score(value)) == grade_of(expected)


def test_docs_example_300_ms_scores_90_and_is_excellent():
    h = load_hierarchy("default")
    fn = h.nodes["perf.response_time_p95"].function
    assert fn.score(300.0) == 90.0 and grade_of(fn.score(300.0)) == "Excellent"
    assert fn.score(1000.0) == 50.0
    scoring = score_result(_result([Measurement(indicator="perf.response_time_p95", value=0.3, unit="s")], "latency"), h)
    node = next(n for n in scoring["nodes"] if n["id"] == "perf.response_time_p95")
    assert node["score"] == 90.0 and node["grade"] == "Excellent"
    # 0.99 between 1 (100) and 0.90 (0) is exactly 90, not 89.99999999999997
    assert h.nodes["perf.flow_completion_rate"].function.score(0.99) == 90.0


def test_the_grade_is_taken_from_the_shown_score():
    assert SCORE_DECIMALS == 1
    assert shown(89.96) == 90.0 and grade_of(89.96) == "Excellent"
    assert shown(89.94) == 89.9 and grade_of(89.94) == "Good"
    assert shown(-0.01) == 0.0 and shown(float("inf")) is None and grade_of(None) is None


def _value_strategy(fn):
    points = [v for v, _ in fn.control_points()]
    top = max([abs(v) for v in points] + [1.0]) * 3
    anywhere = st.floats(min_value=0, max_value=top, allow_nan=False)
    if not points:
        return anywhere
    near = st.sampled_from(points).flatmap(lambda v: st.sampled_from([v, v * (1 + 1e-12), v * (1 - 1e-12), v * 1.0005]))
    return st.one_of(near, anywhere)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leaf=st.sampled_from(VALUED), data=st.data())
def test_the_grade_shown_is_the_grade_of_the_displayed_score(leaf, data):
    name, nid = leaf
    h = HIERARCHIES[name]
    node = h.nodes[nid]
    value = data.draw(_value_strategy(node.function), label="value")
    if node.probes:
        result = _result([Measurement(indicator=nid, value=value, unit=node.unit)], node.probes[0])
        evidence = None
    else:
        result, evidence = _result([], "latency"), evidence_from_mapping({"indicators": {nid: {"value": value}}})
    scoring = score_result(result, h, evidence)
    row = next(n for n in scoring["nodes"] if n["id"] == nid)
    if not row["assessed"]:
        return
    assert row["score"] == round(row["score"], SCORE_DECIMALS)
    assert row["grade"] == _grade_by_floors(scoring, row["score"])
    for n in scoring["nodes"]:  # dimensions and root too, whenever a grade is given
        if n["score"] is not None and n["grade"] is not None:
            assert n["grade"] == _grade_by_floors(scoring, n["score"])
    text = next(r for r in scoring_rows(scoring) if r[0].strip() == nid)  # the terminal table
    assert text[3] == _grade_by_floors(scoring, float(text[2]))
