"""Baseline comparison: findings diff, score changes, and latency regressions judged on real samples."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from crm_audit.ci.baseline import BaselineError, RegressionPolicy, compare, judge_samples, load_baseline
from crm_audit.ci.signing import result_document
from crm_audit.core.model import AuditResult, Finding, ProbeResult, Severity, Status, TargetSummary
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile

SAMPLES = 30


def latency_run(server: DemoServer, registry, endpoints: tuple[str, ...] = ("list contacts",),
                samples: int = SAMPLES) -> AuditResult:
    """One real latency-only audit of the demo CRM, timing just ``endpoints``."""
    prof = demo_profile(server)
    prof = prof.model_copy(update={
        "endpoints": [e for e in prof.endpoints if e.name in endpoints],
        "plugins": {"latency": {"samples": samples, "warmup": 2}},
    })
    return run_audit(prof, registry, RunOptions(only=["latency"]))


@pytest.fixture(scope="module")
def registry():
    return make_plugin_manager()


@pytest.fixture(scope="module")
def fast_server():
    with DemoServer() as srv:
        yield srv


# ------------------------------------------------------------------ the statistics


def test_judge_samples_needs_size_and_significance() -> None:
    rng = random.Random(3)
    base = [100 + 10 * rng.random() for _ in range(30)]
    slow = [x * 1.5 for x in base]
    v = judge_samples(base, slow, "lower", "ms")
    assert v is not None and v["regressed"] and v["p_value"] < 1e-6 and v["relative_change"] > 0.4
    assert not judge_samples(slow, base, "lower", "ms")["regressed"], "faster is not a regression"
    assert judge_samples(base[:5], slow[:5], "lower", "ms") is None, "too few samples are not judged"
    # "higher is better": a drop is the regression
    assert judge_samples(slow, base, "higher", "")["regressed"]
    # a big median move on widely spread samples is not significant → not declared
    wide_a = [1, 2, 3, 50, 60, 70, 80, 90, 100, 2, 3, 95]
    wide_b = [x * 1.3 for x in wide_a]
    w = judge_samples(wide_a, wide_b, "lower", "ms")
    assert w["relative_change"] > 0.2 and w["p_value"] > 0.01 and not w["regressed"]
    # significant and +50 %, but only 3 ms in absolute terms: under the default floor → not declared
    fast = [6 + rng.random() for _ in range(30)]
    tiny = judge_samples(fast, [x + 3 for x in fast], "lower", "ms")
    assert tiny["p_value"] < 0.01 and tiny["relative_change"] > 0.2 and not tiny["regressed"]
    assert judge_samples(fast, [x + 3 for x in fast], "lower", "ms", RegressionPolicy(min_delta_ms=1))["regressed"]
    # the floor is in ms; seconds are converted
    assert not judge_samples([f / 1000 for f in fast], [(x + 3) / 1000 for x in fast], "lower", "s")["regressed"]
    # the threshold is an option
    mild = [x * 1.1 for x in base]
    assert not judge_samples(base, mild, "lower", "ms")["regressed"]
    assert judge_samples(base, mild, "lower", "ms", RegressionPolicy(threshold=0.05, min_delta_ms=0))["regressed"]


def _scoring(**scores: float) -> dict:
    """A scored hierarchy of flat nodes with the given scores (the first one is the root)."""
    nodes = [{"id": nid, "title": nid, "kind": "root" if i == 0 else "dimension", "weight": 1.0, "assessed": True,
              "score": score} for i, (nid, score) in enumerate(scores.items())]
    return {"hierarchy": "h", "title": "h", "root": nodes[0]["id"], "overall": {"score": nodes[0]["score"]}, "nodes": nodes}


def _result(findings: list[Finding], scoring: dict | None = None) -> AuditResult:
    return AuditResult(tool={"name": "crm-audit", "version": "t"}, run_id="now",
                       target=TargetSummary(name="t", base_url="http://127.0.0.1:1", scope=["127.0.0.1"]),
                       profile_digest="d", started="2026-01-01T00:00:00+00:00",
                       probes=[ProbeResult(probe="p", findings=findings)], scoring=scoring)


def test_findings_and_scores_diffed() -> None:
    def f(fid: str, status: Status = Status.failed) -> Finding:
        return Finding(id=fid, title=fid, severity=Severity.high, status=status)

    before = result_document(_result([f("a"), f("b"), f("c", Status.passed)],
                                     _scoring(crm=80.0, sec=60.0)))
    now = _result([f("b"), f("c"), f("d", Status.warn)], _scoring(crm=70.0, sec=60.0, new=5))
    base = compare(now, before)
    assert base["run_id"] == "now"
    assert base["new_findings"] == ["c", "d"] and base["fixed_findings"] == ["a"]
    assert base["unchanged_findings"] == ["b"]
    assert [c.model_dump() for c in base.score_changes] == [{"id": "crm", "before": 80.0, "after": 70.0}]
    assert base["regressions"] == []


def test_load_baseline_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="cannot read baseline"):
        load_baseline(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(BaselineError, match="not JSON"):
        load_baseline(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"a": 1}')
    with pytest.raises(BaselineError, match="not an audit result"):
        load_baseline(tmp_path / "y.json")


# ------------------------------------------------------------------ real samples from the demo CRM


def test_same_server_twice_is_not_a_regression_over_10_pairs(fast_server, registry) -> None:
    # 11 consecutive real runs → 10 (before, after) pairs; each set is 30 timed requests
    runs = [latency_run(fast_server, registry) for _ in range(11)]
    false_alarms = []
    for i in range(10):
        before, after = result_document(runs[i]), runs[i + 1]
        rec = compare(after, before)
        raw = [m.raw_samples for m in after.all_measurements() if m.raw_samples]
        assert raw and len(raw[0]) == SAMPLES, "the probe must keep its raw samples"
        if rec["regressions"]:
            false_alarms.append((i, rec["regressions"]))
    assert not false_alarms, f"noise called a regression: {false_alarms}"


def test_injected_latency_is_a_regression(fast_server, registry) -> None:
    before = result_document(latency_run(fast_server, registry))
    with DemoServer(delay_ms=40) as slow:
        after = latency_run(slow, registry)
    rec = compare(after, before)
    assert [r["label"] for r in rec["regressions"]] == ["list contacts"]
    reg = rec["regressions"][0]
    assert reg["indicator"] == "perf.response_time_p95" and reg["after"] - reg["before"] >= 30
    assert reg["p_value"] < 0.01 and reg["relative_change"] > 0.2


def test_cli_fails_on_regression_against_a_baseline_file(fast_server, registry, tmp_path: Path) -> None:
    base = latency_run(fast_server, registry, endpoints=("list contacts", "current user"))
    base_file = tmp_path / "previous.json"
    base_file.write_text(base.model_dump_json(indent=2))
    proc = subprocess.run([sys.executable, "-m", "crm_audit", "demo", "--only", "latency", "--delay-ms", "40",
                           "--out", str(tmp_path / "out"), "-q", "--baseline", str(base_file),
                           "--fail-on-regression"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "gate regression:measurements: FAILED" in proc.stdout
    result = json.loads(next((tmp_path / "out").glob("*/result.json")).read_text())
    assert result["baseline"]["run_id"] == base.run_id
    assert {r["label"] for r in result["baseline"]["regressions"]} == {"list contacts", "current user"}
    failed = [g["gate"] for g in result["gates"] if not g["passed"]]
    assert failed == ["regression:measurements", "coverage"]  # a latency-only run covers too little to pass
