"""score_result on synthetic AuditResults: the worked example of docs/scoring.md, the dict
shape, findings, caps, several measurements, evidence and not-assessed indicators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crm_audit.core.model import AuditResult, Finding, Measurement, ProbeResult, Severity, Status, TargetSummary
from crm_audit.scoring import load_evidence, load_hierarchy, score_result
from crm_audit.scoring.evidence import evidence_from_mapping
from crm_audit.scoring.hierarchy import build_hierarchy

EXAMPLE_EVIDENCE = Path(__file__).resolve().parents[1] / "examples" / "evidence.yaml"

NODE_KEYS = {"id", "title", "parent", "children", "depth", "kind", "weight", "global_weight", "effective_weight", "assessed",
             "score", "grade", "membership", "unit", "actual", "expected", "difference", "better", "source",
             "function", "evidence", "capped_by", "findings", "coverage", "grade_withheld", "not_assessed"}


def make_result(*probes: ProbeResult, name: str = "demo") -> AuditResult:
    return AuditResult(
        tool={"name": "crm-audit", "version": "test"}, run_id="run-1",
        target=TargetSummary(name=name, base_url="https://crm.example", scope=["crm.example"]),
        profile_digest="sha256:0", started="2024-05-01T00:00:00Z", probes=list(probes),
    )


def finding(fid: str, indicator: str, severity: Severity, status: Status = Status.failed, **kw) -> Finding:
    return Finding(id=fid, title=fid, severity=severity, status=status, indicator=indicator, **kw)


# The worked example of docs/scoring.md: 2 dimensions × 2 indicators.
WORKED_HIERARCHY = {
    "name": "worked-example", "title": "Worked example", "root": "crm",
    "nodes": [
        {"id": "crm", "title": "CRM", "children": ["perf", "sec"]},
        {"id": "perf", "title": "Performance", "weight": 0.6, "children": ["perf.response_time_p95", "perf.error_rate"]},
        {"id": "sec", "title": "Security", "weight": 0.4, "children": ["sec.transport", "sec.access_control"]},
        {"id": "perf.response_time_p95", "title": "p95", "weight": 0.7, "unit": "ms", "source": "probe:latency",
         "expected": 300, "function": {"type": "lognormal", "p90": 300, "p50": 1000}},
        {"id": "perf.error_rate", "title": "errors", "weight": 0.3, "unit": "ratio", "source": "probe:latency",
         "expected": 0.01, "function": {"type": "linear", "good": 0, "bad": 0.10}},
        {"id": "sec.transport", "title": "TLS", "weight": 0.5, "unit": "findings", "source": "probe:tls",
         "expected": 0, "function": {"type": "findings"}},
        {"id": "sec.access_control", "title": "Access", "weight": 0.5, "unit": "findings", "source": "probe:access",
         "expected": 0, "function": {"type": "findings"}},
    ],
}


def worked_result() -> AuditResult:
    return make_result(
        ProbeResult(probe="latency", measurements=[
            Measurement(indicator="perf.response_time_p95", value=300, unit="ms", label="GET /api/contacts/"),
            Measurement(indicator="perf.response_time_p95", value=1.0, unit="s", label="GET /api/leads/"),
            Measurement(indicator="perf.error_rate", value=0.02, unit="ratio"),
        ]),
        ProbeResult(probe="tls", findings=[
            finding("tls.hsts.missing", "sec.transport", Severity.high),
            finding("tls.cipher.cbc", "sec.transport", Severity.low, Status.warn),
            finding("tls.protocol.tls1_3", "sec.transport", Severity.info, Status.passed),
        ]),
        ProbeResult(probe="access", status="error", reason="login failed"),
    )


def by_id(scoring: dict) -> dict[str, dict]:
    return {n["id"]: n for n in scoring["nodes"]}


def test_worked_example_of_the_docs():
    s = score_result(worked_result(), build_hierarchy(WORKED_HIERARCHY, "<docs>"))
    n = by_id(s)
    p95 = n["perf.response_time_p95"]
    assert p95["score"] == pytest.approx(70.0)  # mean of 90 (300 ms) and 50 (1 s = 1000 ms)
    assert (p95["actual"], p95["expected"], p95["difference"]) == (1000.0, 300.0, 700.0)  # worst endpoint
    assert n["perf.error_rate"]["score"] == pytest.approx(80.0)
    assert n["perf"]["score"] == pytest.approx(0.7 * 70 + 0.3 * 80)  # 73
    tls = n["sec.transport"]
    assert tls["score"] == pytest.approx(70.0)  # 100 − 25 (high) − 5 (low, warn)
    assert (tls["actual"], tls["expected"], tls["difference"]) == (2.0, 0.0, 2.0)
    assert tls["findings"] == ["tls.hsts.missing", "tls.cipher.cbc"]
    assert not n["sec.access_control"]["assessed"]  # access probe errored, no findings
    assert n["sec"]["score"] == pytest.approx(70.0)
    assert s["overall"]["score"] == pytest.approx(0.6 * 73 + 0.4 * 70)  # 71.8
    assert s["overall"]["grade"] == "Good"
    assert s["coverage"] == pytest.approx(0.8)
    assert n["perf.response_time_p95"]["effective_weight"] == pytest.approx(0.42)
    assert n["sec.transport"]["effective_weight"] == pytest.approx(0.4)
    assert n["sec.access_control"]["effective_weight"] is None
    assert n["sec.access_control"]["global_weight"] == pytest.approx(0.2)
    assert n["perf"]["membership"] == pytest.approx({"Excellent": 0, "Good": 0.65, "Pass": 0.35, "Fail": 0})
    assert n["sec"]["membership"] == pytest.approx({"Excellent": 0, "Good": 0.5, "Pass": 0.5, "Fail": 0})
    assert s["overall"]["membership"] == pytest.approx({"Excellent": 0, "Good": 0.59, "Pass": 0.41, "Fail": 0})
    assert s["overall"]["fuzzy_grade"] == "Good"


def test_dict_shape_and_preorder():
    """The serialised shape of the typed scoring (what result.json holds)."""
    s = score_result(worked_result(), build_hierarchy(WORKED_HIERARCHY, "<docs>")).model_dump(mode="json")
    assert list(s) == ["hierarchy", "title", "grades", "overall", "coverage", "min_coverage", "root", "nodes",
                       "not_assessed"]
    assert s["hierarchy"] == "worked-example" and s["root"] == "crm"
    assert s["grades"] == ["Excellent", "Good", "Pass", "Fail"]
    assert set(s["overall"]) == {"score", "grade", "membership", "fuzzy_grade"}
    assert [n["id"] for n in s["nodes"]] == ["crm", "perf", "perf.response_time_p95", "perf.error_rate",
                                           "sec", "sec.transport", "sec.access_control"]
    for node in s["nodes"]:
        assert set(node) == NODE_KEYS
    n = by_id(s)
    assert (n["crm"]["kind"], n["crm"]["parent"], n["crm"]["depth"]) == ("root", None, 0)
    assert n["crm"]["children"] == ["perf", "sec"] and n["sec.transport"]["children"] == []
    assert (n["sec"]["kind"], n["sec"]["parent"], n["sec"]["depth"]) == ("dimension", "crm", 1)
    assert (n["sec.transport"]["kind"], n["sec.transport"]["depth"]) == ("indicator", 2)
    assert n["perf.response_time_p95"]["function"].startswith("log-normal: 90 at 300 ms, 50 at 1000 ms")
    assert "critical finding caps at 20" in n["sec.transport"]["function"]
    assert n["perf.response_time_p95"]["better"] == "lower" and n["perf.response_time_p95"]["source"] == "probe:latency"
    assert n["sec.access_control"]["source"] == "probe:access"
    json.dumps(s, allow_nan=False)  # JSON-able, no NaN/inf


def test_rescored_result_round_trips():
    result = worked_result()
    s = score_result(result, build_hierarchy(WORKED_HIERARCHY, "<docs>"))
    rescored = result.model_copy(update={"scoring": s})
    assert rescored.scoring["overall"]["score"] == s["overall"]["score"]
    assert AuditResult.model_validate_json(rescored.model_dump_json()).scoring == s


def test_findings_indicator_is_assessed_only_by_observed_outcomes():
    """A probe that ran but observed nothing leaves the indicator not assessed, never 100."""
    h = build_hierarchy(WORKED_HIERARCHY, "<docs>")
    ran = by_id(score_result(make_result(ProbeResult(probe="access", status="ok")), h))
    assert not ran["sec.access_control"]["assessed"] and ran["sec.access_control"]["score"] is None
    assert not ran["sec.transport"]["assessed"]  # tls probe absent
    skipped_check = Finding(id="access.login.lockout", title="lockout", indicator="sec.access_control",
                            status=Status.skipped, not_assessed="safety", hint="run with --allow-disruptive")
    only_skipped = by_id(score_result(make_result(ProbeResult(probe="access", findings=[skipped_check])), h))
    node = only_skipped["sec.access_control"]
    assert not node["assessed"] and node["score"] is None
    assert any("access.login.lockout: safety" in r for r in node["not_assessed"]["reasons"])
    assert node["not_assessed"]["hints"] == ["run with --allow-disruptive"]
    passed = finding("access.anonymous.contacts", "sec.access_control", Severity.critical, Status.passed)
    seen = by_id(score_result(make_result(ProbeResult(probe="access", findings=[skipped_check, passed])), h))
    assert seen["sec.access_control"]["score"] == 100.0 and seen["sec.access_control"]["actual"] == 0.0
    probe_skipped = by_id(score_result(make_result(ProbeResult(probe="access", status="skipped", reason="no adapter")), h))
    assert not probe_skipped["sec.access_control"]["assessed"]
    assert "probe access skipped: no adapter" in probe_skipped["sec.access_control"]["not_assessed"]["reasons"]


def test_findings_count_even_if_the_probe_did_not_finish():
    h = build_hierarchy(WORKED_HIERARCHY, "<docs>")
    result = make_result(ProbeResult(probe="access", status="incomplete", findings=[
        finding("access.bola.contacts", "sec.access_control", Severity.high)]))
    assert by_id(score_result(result, h))["sec.access_control"]["score"] == 75.0


def test_waived_and_passed_findings_do_not_penalise():
    h = build_hierarchy(WORKED_HIERARCHY, "<docs>")
    result = make_result(ProbeResult(probe="tls", findings=[
        finding("tls.a", "sec.transport", Severity.high, waiver={"justification": "accepted until Q3", "by": "ciso", "expires": "2099-01-01", "pattern": "tls.a"}),
        finding("tls.b", "sec.transport", Severity.medium, Status.passed),
        finding("tls.c", "sec.transport", Severity.critical, Status.error),
    ]))
    node = by_id(score_result(result, h))["sec.transport"]
    assert node["score"] == 100.0 and node["findings"] == [] and node["capped_by"] is None


def test_critical_finding_caps_a_findings_indicator():
    h = build_hierarchy(WORKED_HIERARCHY, "<docs>")
    result = make_result(ProbeResult(probe="tls", findings=[finding("tls.cert.expired", "sec.transport", Severity.critical)]))
    node = by_id(score_result(result, h))["sec.transport"]
    assert node["score"] == 20.0 and node["capped_by"] == "tls.cert.expired"


def test_critical_finding_caps_a_measured_indicator():
    h = build_hierarchy(WORKED_HIERARCHY, "<docs>")
    result = make_result(ProbeResult(probe="latency", measurements=[
        Measurement(indicator="perf.error_rate", value=0.0, unit="ratio")],
        findings=[finding("latency.errors.500", "perf.error_rate", Severity.critical)]))
    node = by_id(score_result(result, h))["perf.error_rate"]
    assert node["score"] == 20.0 and node["capped_by"] == "latency.errors.500"
    assert node["findings"] == ["latency.errors.500"]


def test_measurements_without_value_are_ignored():
    h = build_hierarchy(WORKED_HIERARCHY, "<docs>")
    result = make_result(ProbeResult(probe="latency", measurements=[
        Measurement(indicator="perf.response_time_p95", value=None, unit="ms")]))
    node = by_id(score_result(result, h))["perf.response_time_p95"]
    assert not node["assessed"] and node["actual"] is None and node["expected"] == 300.0


def test_measurement_expected_used_when_the_hierarchy_gives_none():
    h = build_hierarchy({"root": "r", "nodes": [
        {"id": "r", "title": "R", "children": ["biz.conversion_rate"]},
        {"id": "biz.conversion_rate", "title": "conv", "weight": 1.0, "unit": "ratio", "source": "probe:kpi",
         "better": "higher", "function": {"type": "ratio"}},
    ]}, "<t>")
    with_target = make_result(ProbeResult(probe="kpi", measurements=[
        Measurement(indicator="biz.conversion_rate", value=0.1, unit="ratio", expected=0.2, better="higher")]))
    node = by_id(score_result(with_target, h))["biz.conversion_rate"]
    assert node["score"] == pytest.approx(50.0) and node["expected"] == 0.2
    no_target = make_result(ProbeResult(probe="kpi", measurements=[
        Measurement(indicator="biz.conversion_rate", value=0.1, unit="ratio")]))
    assert not by_id(score_result(no_target, h))["biz.conversion_rate"]["assessed"]


def test_sources_are_tried_in_order_and_evidence_is_marked():
    h = load_hierarchy("default")
    evidence = evidence_from_mapping({"supplied_by": "auditor", "date": "2024-05-02", "indicators": {
        "sec.access_logging": {"value": "fail", "note": "no audit log"},
        "biz.satisfaction": {"value": 86, "supplied_by": "survey team"},
    }})
    measured = make_result(ProbeResult(probe="access", measurements=[
        Measurement(indicator="sec.access_logging", value=1.0, unit="pass/fail", better="higher")]))
    n = by_id(score_result(measured, h, evidence))
    assert n["sec.access_logging"]["score"] == 100.0 and n["sec.access_logging"]["source"] == "probe:access"
    assert n["sec.access_logging"]["evidence"] is None
    sat = n["biz.satisfaction"]
    assert sat["score"] == pytest.approx(86.0) and sat["source"] == "evidence"
    assert sat["evidence"] == {"supplied_by": "survey team", "date": "2024-05-02", "note": None}
    n = by_id(score_result(make_result(), h, evidence))  # no probe value: falls back to evidence
    assert n["sec.access_logging"]["score"] == 0.0 and n["sec.access_logging"]["source"] == "evidence"
    assert n["sec.access_logging"]["evidence"]["note"] == "no audit log"


def test_evidence_units_are_converted():
    h = build_hierarchy({"root": "r", "nodes": [
        {"id": "r", "title": "R", "children": ["svc.response_time"]},
        {"id": "svc.response_time", "title": "support", "weight": 1.0, "unit": "h", "source": "probe:kpi / evidence",
         "function": {"type": "lognormal", "p90": "5 min", "p50": "1 h"}},
    ]}, "<t>")
    ev = evidence_from_mapping({"indicators": {"svc.response_time": "5 min"}})
    node = by_id(score_result(make_result(), h, ev))["svc.response_time"]
    assert node["actual"] == pytest.approx(5 / 60, abs=1e-6) and node["score"] == pytest.approx(90.0)


def test_default_hierarchy_with_example_evidence():
    h = load_hierarchy("default")
    result = make_result(
        ProbeResult(probe="latency", measurements=[Measurement(indicator="perf.response_time_p95", value=250, unit="ms")]),
        ProbeResult(probe="tls", measurements=[Measurement(indicator="sec.transport", value=95, unit="score")]),
        ProbeResult(probe="access"),
    )
    s = score_result(result, h, load_evidence(EXAMPLE_EVIDENCE))
    n = by_id(s)
    assert n["cost.tco"]["score"] == 100.0  # 180k against a 200k budget
    assert n["cost.npv"]["score"] == 100.0 and n["cost.npv"]["actual"] > 0
    assert n["cost.payback"]["actual"] == pytest.approx(2.6)
    assert n["cost.payback"]["score"] == pytest.approx((5 - 2.6) / 4 * 100)
    assert n["cost.roi"]["score"] == pytest.approx(60.0)  # ROI 0.6 against 1.0 (cost-benefit 1:2)
    assert n["svc.vendor_sla"]["score"] == 60.0 and n["func.modules"]["score"] == 60.0
    assert n["cost"]["assessed"] and not n["dq"]["assessed"] and not n["bak"]["assessed"]
    assert n["sec.transport"]["score"] == 95.0  # the TLS grade's score, linear 0-100
    assert not n["sec.access_control"]["assessed"]  # access ran but observed nothing: not assessed
    assert 0 < s["coverage"] < 1
    assert s["overall"]["score"] is not None
    assert s["overall"]["grade"] is None and s["overall"]["fuzzy_grade"] is None  # coverage too low for a grade word
    assert n["crm"]["grade_withheld"].startswith("coverage ")
    json.dumps(s.model_dump(mode="json"), allow_nan=False)


def test_nothing_assessed():
    s = score_result(make_result(), load_hierarchy("security"))
    assert s.overall.model_dump() == {"score": None, "grade": None, "membership": None, "fuzzy_grade": None}
    assert s["coverage"] == 0.0
    assert all(not n["assessed"] for n in s["nodes"])


def test_never_paying_back_scores_zero_without_an_infinite_actual():
    ev = evidence_from_mapping({"cash_flows": [-100, 10, 10], "discount_rate": 0.05})
    node = by_id(score_result(make_result(), load_hierarchy("default"), ev))["cost.payback"]
    assert node["assessed"] and node["score"] == 0.0 and node["actual"] is None


def test_a_critical_access_finding_caps_the_security_dimension():
    """Issue 7: a critical access finding caps the security dimension (cap_if_capped: 40 on 'sec')."""
    h = load_hierarchy("default")
    healthy = make_result(
        ProbeResult(probe="tls", measurements=[Measurement(indicator="sec.transport", value=100, unit="score")]),
        ProbeResult(probe="access"),
    )
    sec_ok = by_id(score_result(healthy, h))["sec"]
    assert sec_ok["score"] == 100.0 and sec_ok["capped_by"] is None
    broken = make_result(
        ProbeResult(probe="tls", measurements=[Measurement(indicator="sec.transport", value=100, unit="score")]),
        ProbeResult(probe="access", findings=[finding("access.bola.contacts", "sec.access_control", Severity.critical)]),
    )
    n = by_id(score_result(broken, h, min_coverage=0))
    assert n["sec.access_control"]["score"] == 20.0            # the indicator's own cap
    assert n["sec"]["score"] == 40.0 and n["sec"]["grade"] == "Fail"
    assert n["sec"]["capped_by"] == "sec.access_control"
    assert n["sec"]["membership"] == {"Excellent": 0.0, "Good": 0.0, "Pass": 0.0, "Fail": 1.0}


def test_a_cap_applies_even_when_the_indicator_already_scored_below_it():
    """Issue 14: six criticals put sec.access_control at 0 (below its cap of 20); the dimension cap must still hold."""
    h = load_hierarchy("default")
    crits = [finding(f"access.bola.r{i}", "sec.access_control", Severity.critical) for i in range(6)]
    result = make_result(
        ProbeResult(probe="tls", measurements=[Measurement(indicator="sec.transport", value=100, unit="score")]),
        ProbeResult(probe="access", findings=crits),
    )
    n = by_id(score_result(result, h, min_coverage=0))
    assert n["sec.access_control"]["score"] == 0.0
    assert n["sec.access_control"]["capped_by"] == "access.bola.r0"
    assert n["sec"]["score"] <= 40.0 and n["sec"]["capped_by"] == "sec.access_control"
    assert n["crm"]["score"] <= 45.0 and n["crm"]["grade"] == "Fail"  # open criticals sink the overall grade too
