"""Indicators a plugin adds: merged into any hierarchy with renormalised weights; value sources recorded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from crm_audit.core.model import AuditResult, Finding, Measurement, ProbeResult, Status, TargetSummary
from crm_audit.core.probe import Probe
from crm_audit.scoring import HierarchyError, load_hierarchy, score_result
from crm_audit.scoring.extend import IndicatorSpec, collect_indicators, fed_indicators, unscored_probe_warnings

TRAIL = IndicatorSpec(id="sec.audit_trail", title="Audit trail", dimension="sec", weight=0.1,
                      source="probe:audit_trail", unit="ratio", expected=1.0, better="higher",
                      function={"type": "linear", "good": 1.0, "bad": 0.0})
PROBES = {"audit_trail"}


def children_sum(h, node_id: str) -> float:
    return math.fsum(h.nodes[k].weight for k in h.nodes[node_id].children)


@pytest.mark.parametrize("name", ["default", "security", "vendor-selection"])
def test_merged_into_every_bundled_hierarchy_with_its_weight(name: str) -> None:
    plain = load_hierarchy(name)
    merged = load_hierarchy(name, known_probes=PROBES, indicators=[TRAIL])
    node = merged.nodes["sec.audit_trail"]
    assert node.parent == "sec" and node.weight == pytest.approx(0.1) and node.probes == ("audit_trail",)
    assert merged.nodes["sec"].children[-1] == "sec.audit_trail"
    assert children_sum(merged, "sec") == pytest.approx(1.0, abs=1e-12)
    for kid in plain.nodes["sec"].children:  # the others keep their proportions
        assert merged.nodes[kid].weight == pytest.approx(plain.nodes[kid].weight * 0.9)
    assert merged.global_weights["sec.audit_trail"] == pytest.approx(plain.global_weights["sec"] * 0.1)
    assert merged.global_weights["perf"] == plain.global_weights["perf"]  # other dimensions untouched
    assert math.fsum(merged.global_weights[n.id] for n in merged.leaves()) == pytest.approx(1.0)
    assert "×0.9 to make room for plugin indicators (sec.audit_trail 0.1)" in merged.nodes["sec"].weighting


def test_equal_and_ahp_weighted_dimensions_are_renormalised_too(tmp_path: Path) -> None:
    path = tmp_path / "h.yaml"
    path.write_text("""
root: r
nodes:
  - {id: r, children: [sec, perf], weights: {ahp: {matrix: [[1, 3], [1/3, 1]]}}}
  - {id: sec, children: [sec.a, sec.b], weights: equal}
  - {id: perf, children: [perf.a, perf.b], weights: {ahp: {matrix: [[1, 2], [1/2, 1]]}}}
  - {id: sec.a, source: "probe:tls", unit: findings, function: {type: findings}}
  - {id: sec.b, source: "probe:tls", unit: findings, function: {type: findings}}
  - {id: perf.a, source: "probe:latency", unit: ms, function: {type: linear, good: 100, bad: 1000}}
  - {id: perf.b, source: "probe:latency", unit: ms, function: {type: linear, good: 100, bad: 1000}}
""")
    speed = TRAIL.model_copy(update={"id": "perf.c", "dimension": "perf", "weight": 0.25})
    h = load_hierarchy(str(path), known_probes=PROBES, indicators=[TRAIL, speed])
    assert [h.nodes[k].weight for k in h.nodes["sec"].children] == pytest.approx([0.45, 0.45, 0.1])
    assert [h.nodes[k].weight for k in h.nodes["perf"].children] == pytest.approx([0.5, 0.25, 0.25])
    assert h.nodes["perf"].ahp is not None and h.consistency().cr < 0.1


def test_a_hierarchy_that_has_the_id_or_lacks_the_dimension_keeps_its_tree() -> None:
    plain = load_hierarchy("default")
    same_id = TRAIL.model_copy(update={"id": "sec.hardening"})
    other = TRAIL.model_copy(update={"id": "ops.trail", "dimension": "ops"})
    assert load_hierarchy("default", known_probes=PROBES, indicators=[same_id, other]).nodes == plain.nodes


def test_bad_specs_are_refused_with_one_line() -> None:
    with pytest.raises(ValidationError, match="must start with its dimension"):
        IndicatorSpec(**{**TRAIL.model_dump(), "id": "audit_trail"})
    with pytest.raises(ValidationError):
        IndicatorSpec(**{**TRAIL.model_dump(), "weight": 1.0})
    with pytest.raises(HierarchyError, match="unknown probe 'audit_trail'"):
        load_hierarchy("default", indicators=[TRAIL])            # its probe is not installed
    heavy = [TRAIL.model_copy(update={"id": f"sec.x{i}", "weight": 0.5}) for i in range(2)]
    with pytest.raises(HierarchyError, match="weigh 1 together"):
        load_hierarchy("default", known_probes=PROBES, indicators=heavy)
    bad_fn = TRAIL.model_copy(update={"function": {"type": "nonsense"}})
    with pytest.raises(HierarchyError, match="plugin indicator 'sec.audit_trail'"):
        load_hierarchy("default", known_probes=PROBES, indicators=[bad_fn])


def test_collect_indicators_from_the_hook() -> None:
    assert collect_indicators(lambda: [[TRAIL], [TRAIL], []]) == [TRAIL]   # the same spec twice is one
    with pytest.raises(HierarchyError, match="declared twice, differently"):
        collect_indicators(lambda: [[TRAIL], [TRAIL.model_copy(update={"weight": 0.2})]])
    with pytest.raises(HierarchyError, match="not IndicatorSpec"):
        collect_indicators(lambda: [[{"id": "sec.x"}]])

    def broken() -> list:
        return [[IndicatorSpec(id="sec.x")]]  # type: ignore[call-arg]

    with pytest.raises(HierarchyError, match="crm_audit_register_indicators failed: ValidationError"):
        collect_indicators(broken)


class Trail(Probe):
    id = "audit_trail"
    indicators = ("sec.audit_trail",)


class Lost(Probe):
    id = "lost"
    indicators = ("ops.nothing",)


def test_probes_that_feed_nothing_are_warned_about() -> None:
    plain, merged = load_hierarchy("default"), load_hierarchy("default", known_probes=PROBES, indicators=[TRAIL])
    assert fed_indicators(merged, "audit_trail", Trail.indicators) == ["sec.audit_trail"]
    assert fed_indicators(plain, "tls", ()) == ["sec.transport"]               # named as the leaf's source
    assert unscored_probe_warnings(merged, [Trail]) == []
    warnings = unscored_probe_warnings(plain, [Trail, Lost])
    assert len(warnings) == 2 and warnings[1].startswith("probe lost feeds no indicator of hierarchy 'default' "
                                                         "(it declares: ops.nothing)")


def result_with(*probes: ProbeResult) -> AuditResult:
    return AuditResult(tool={"name": "crm-audit", "version": "0"}, run_id="r", profile_digest="d", started="s",
                       target=TargetSummary(name="t", base_url="http://t", scope=["t"]), probes=list(probes))


def test_a_value_is_credited_to_the_probe_that_produced_it() -> None:
    h = load_hierarchy("default")
    logging = Measurement(indicator="sec.access_logging", value=1.0, unit="pass/fail", expected=1.0, better="higher")
    nodes = {n["id"]: n for n in score_result(result_with(ProbeResult(probe="audit_trail", measurements=[logging])),
                                              h)["nodes"]}
    assert nodes["sec.access_logging"]["assessed"] and nodes["sec.access_logging"]["source"] == "probe:audit_trail"
    slow = Measurement(indicator="perf.response_time_p95", value=2000.0, unit="ms")
    fast = Measurement(indicator="perf.response_time_p95", value=100.0, unit="ms")
    both = result_with(ProbeResult(probe="latency", measurements=[fast]), ProbeResult(probe="mine", measurements=[slow]))
    row = next(n for n in score_result(both, h)["nodes"] if n["id"] == "perf.response_time_p95")
    assert row["source"] == "probe:mine, probe:latency" and row["actual"] == 2000.0   # the worst value's first


def test_failed_indicator_findings_name_the_producing_probe() -> None:
    from crm_audit.core.verdict import finalize

    h = load_hierarchy("default", known_probes=PROBES, indicators=[TRAIL])
    res = result_with(ProbeResult(probe="audit_trail", measurements=[
        Measurement(indicator="sec.audit_trail", value=0.0, unit="ratio", expected=1.0, better="higher")],
        findings=[Finding(id="audit_trail.x", title="x", indicator="sec.audit_trail", status=Status.failed)]))
    drawn = finalize(res, h).indicator_findings
    assert [(f.id, f.probe) for f in drawn] == [("indicator.sec.audit_trail", "audit_trail")]


def test_validate_warns_about_a_selected_probe_that_feeds_no_indicator(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "perf-only.yaml").write_text("""
root: r
nodes:
  - {id: r, children: [perf]}
  - {id: perf, children: [perf.response_time_p95], weight: 1}
  - {id: perf.response_time_p95, weight: 1, source: "probe:latency", unit: ms,
     function: {type: linear, good: 100, bad: 1000}}
""")
    profile = tmp_path / "p.yaml"
    profile.write_text(f"target: {{base_url: 'http://127.0.0.1:9'}}\nprobes: [latency, tls]\n"
                       f"hierarchy: {tmp_path / 'perf-only.yaml'}\n")
    run = subprocess.run([sys.executable, "-m", "crm_audit", "validate", str(profile)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        "crm-audit: warning: probe tls feeds no indicator of hierarchy 'perf-only' (it declares: sec.transport); "
        "its results are reported but not scored"]
    assert ": ok — target" in run.stdout


def test_rescoring_after_waivers_keeps_the_plugin_indicators() -> None:
    """Waivers re-score the result; the plugins' indicators must stay in the tree they were scored in."""
    from crm_audit.ci.waivers import Waiver
    from crm_audit.core.postprocess import Prepared, postprocess
    from crm_audit.core.profile import Gates

    result = AuditResult(tool={"name": "crm-audit", "version": "t"}, run_id="r",
                         target=TargetSummary(name="t", base_url="http://127.0.0.1:1", scope=["127.0.0.1"]),
                         profile_digest="d", started="2026-01-01T00:00:00+00:00", probes=[
                             ProbeResult(probe="audit_trail", measurements=[
                                 Measurement(indicator="sec.audit_trail", value=0.5, unit="ratio")],
                                 findings=[Finding(id="audit_trail.gap", title="gap", indicator="sec.audit_trail")])])
    merged = load_hierarchy("default", known_probes=PROBES, indicators=[TRAIL])
    result = result.model_copy(update={"scoring": score_result(result, merged)})
    waiver = Waiver.model_validate({"id": "audit_trail.gap", "justification": "accepted for the pilot",
                                    "by": "ciso", "expires": "2999-01-01"})
    out = postprocess(result, Prepared(gates=Gates(), waivers=[waiver], indicators=[TRAIL]))
    node = next(n for n in out.scoring["nodes"] if n["id"] == "sec.audit_trail")
    assert node["assessed"] and node["actual"] == 0.5
