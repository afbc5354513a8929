"""Gates: command-line syntax, judging a result, and the CLI's exit codes against a real local target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from local_http import LocalServer, json_route

from crm_audit.ci.gates import GateSyntaxError, evaluate_gates, merge_gates, parse_fail_under, parse_threshold
from crm_audit.core.model import AuditResult, Finding, Measurement, ProbeResult, Severity, Status, TargetSummary
from crm_audit.core.profile import Gates, ThresholdGate


def make_result(findings: list[Finding] = (), measurements: list[Measurement] = (),
                scoring: dict | None = None, baseline: dict | None = None) -> AuditResult:
    return AuditResult(tool={"name": "crm-audit", "version": "t"}, run_id="r1",
                       target=TargetSummary(name="t", base_url="http://127.0.0.1:1", scope=["127.0.0.1"]),
                       profile_digest="d", started="2026-01-01T00:00:00+00:00",
                       probes=[ProbeResult(probe="p", findings=list(findings), measurements=list(measurements))],
                       scoring=scoring, baseline=baseline)


# ------------------------------------------------------------------ syntax


def test_fail_under_overall_and_dimensions() -> None:
    assert parse_fail_under(["70"]) == (70.0, {})
    assert parse_fail_under(["70,perf=60", "sec=80"]) == (70.0, {"perf": 60.0, "sec": 80.0})
    assert parse_fail_under([]) == (None, {})
    for bad in ("high", "perf=", "101", "perf=-1"):
        with pytest.raises(GateSyntaxError, match="--fail-under"):
            parse_fail_under([bad])


def test_threshold_syntax() -> None:
    assert parse_threshold("perf.response_time_p95<=300") == ThresholdGate(indicator="perf.response_time_p95", max=300)
    assert parse_threshold(" kpi.completeness >= 0.95 ") == ThresholdGate(indicator="kpi.completeness", min=0.95)
    for bad in ("perf<300", "perf.x=3", "<=3", "perf.x<=abc"):
        with pytest.raises(GateSyntaxError, match="--threshold"):
            parse_threshold(bad)


def test_command_line_overrides_profile_gates() -> None:
    prof = Gates(fail_under=50, fail_under_dimension={"perf": 40, "sec": 70}, fail_on="high",
                 thresholds=[ThresholdGate(indicator="a", max=1), ThresholdGate(indicator="b", min=2)])
    g = merge_gates(prof, ["perf=90"], "low", ["a<=5"], True)
    assert g.fail_under == 50 and g.fail_under_dimension == {"perf": 90, "sec": 70}
    assert g.fail_on == "low" and g.fail_on_regression is True
    assert {(t.indicator, t.max, t.min) for t in g.thresholds} == {("a", 5, None), ("b", None, 2)}
    assert merge_gates(prof) == prof


# ------------------------------------------------------------------ judging


def test_every_gate_judged_and_waived_findings_do_not_fail() -> None:
    scoring = {"hierarchy": "h", "title": "h", "root": "crm", "overall": {"score": 72.0, "grade": "Good"},
               "nodes": [{"id": "crm", "title": "CRM", "kind": "root", "weight": 1.0, "assessed": True, "score": 72.0,
                          "parent": None},
                         {"id": "perf", "title": "Performance", "kind": "dimension", "weight": 1.0, "assessed": True,
                          "score": 55.0, "parent": "crm"}]}
    high = Finding(id="tls.weak", title="weak", severity=Severity.high, status=Status.failed)
    waived = Finding(id="access.x", title="x", severity=Severity.critical, status=Status.failed,
                     waiver={"justification": "j", "by": "b", "expires": "2099-01-01", "pattern": "access.x"})
    lat = Measurement(indicator="perf.response_time_p95", value=420.0, unit="ms", label="list")
    res = make_result([high, waived], [lat], scoring)
    gates = Gates(fail_under=70, fail_under_dimension={"perf": 60, "nope": 1}, fail_on="critical",
                  thresholds=[ThresholdGate(indicator="perf.response_time_p95", max=300),
                              ThresholdGate(indicator="perf.missing", max=1)])
    out = {g.gate: g for g in evaluate_gates(res, gates)}
    assert out["fail_under"].passed
    assert not out["fail_under:perf"].passed and "55.0" in out["fail_under:perf"].detail
    assert not out["fail_under:nope"].passed
    assert out["fail_on:critical"].passed, "a waived critical finding must not fail the gate"
    assert not out["threshold:perf.response_time_p95"].passed and "420" in out["threshold:perf.response_time_p95"].detail
    assert not out["threshold:perf.missing"].passed
    out2 = {g.gate: g for g in evaluate_gates(res, Gates(fail_on="high"))}
    assert not out2["fail_on:high"].passed and "tls.weak" in out2["fail_on:high"].detail


def test_regression_gates_read_the_baseline_record() -> None:
    new = Finding(id="access.new", title="n", severity=Severity.medium, status=Status.failed)
    base = {"run_id": "old", "new_findings": ["access.new"], "fixed_findings": [], "unchanged_findings": [],
            "score_changes": [], "regressions": [{"indicator": "perf.response_time_p95", "label": "list",
                                                  "before": 10.0, "after": 40.0, "p_value": 1e-6,
                                                  "relative_change": 3.0, "unit": "ms", "probe": "latency"}]}
    out = {g.gate: g for g in evaluate_gates(make_result([new], baseline=base), Gates(fail_on_regression=True))}
    assert not out["regression:measurements"].passed and "list" in out["regression:measurements"].detail
    assert not out["regression:findings"].passed and "access.new" in out["regression:findings"].detail
    clean = {**base, "regressions": [], "new_findings": []}
    judged = evaluate_gates(make_result([new], baseline=clean), Gates(fail_on_regression=True))
    assert all(g.passed for g in judged if g.gate.startswith("regression"))
    assert {g.gate: g.passed for g in judged}["coverage"] is False  # unscored: a set gate never passes on nothing
    assert evaluate_gates(make_result([new], baseline=base), Gates()) == []


# ------------------------------------------------------------------ CLI, for real


PROFILE = """
name: gates test
target: {{base_url: "{url}", health_path: /ping, rate_limit_rps: 1000}}
endpoints:
  - {{name: ping, path: /ping, slo_p95_ms: 1000}}
plugins:
  latency: {{samples: 12, warmup: 1}}
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crm_audit", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def local_profile(tmp_path_factory: pytest.TempPathFactory):
    with LocalServer({"/ping": json_route({"ok": True})}) as srv:
        path = tmp_path_factory.mktemp("gates") / "profile.yaml"
        path.write_text(PROFILE.format(url=srv.base_url), encoding="utf-8")
        yield path


def test_cli_gate_passes_exit_0_and_fails_exit_1(local_profile: Path, tmp_path: Path) -> None:
    ok = run_cli("audit", str(local_profile), "--only", "latency", "--out", str(tmp_path / "a"), "-q",
                 "--fail-under", "50,perf=50", "--fail-on", "low", "--threshold", "perf.error_rate<=0",
                 "--min-coverage", "5")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "gate fail_under:perf: passed" in ok.stdout
    assert "gate coverage: passed" in ok.stdout
    thin = run_cli("audit", str(local_profile), "--only", "latency", "--out", str(tmp_path / "c"), "-q",
                   "--fail-on", "low")
    assert thin.returncode == 1, thin.stdout + thin.stderr  # latency alone covers too little to pass any gate
    assert "gate coverage: FAILED" in thin.stdout and "vs floor 60%" in thin.stdout
    bad = run_cli("audit", str(local_profile), "--only", "latency", "--out", str(tmp_path / "b"), "-q",
                  "--fail-under", "50", "--threshold", "perf.response_time_p95<=0.0001",
                  "--threshold", "perf.error_rate>=0.5")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "gate threshold:perf.response_time_p95: FAILED" in bad.stdout
    assert "gate threshold:perf.error_rate: FAILED" in bad.stdout
    assert "3 gate(s) failed" in bad.stdout
    result = json.loads(next((tmp_path / "b").glob("*/result.json")).read_text())
    failed = sorted(g["gate"] for g in result["gates"] if not g["passed"])
    assert failed == ["coverage", "threshold:perf.error_rate", "threshold:perf.response_time_p95"]


def test_cli_bad_gate_syntax_is_a_usage_error(local_profile: Path, tmp_path: Path) -> None:
    bad = run_cli("audit", str(local_profile), "--only", "latency", "--out", str(tmp_path), "--fail-under", "perf=lots")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "--fail-under 'perf=lots'" in bad.stderr
    assert not list(tmp_path.iterdir()), "nothing may run (or be written) before the options are valid"


def test_prepare_reads_options_before_the_audit(tmp_path: Path) -> None:
    from crm_audit.core.postprocess import PostOptions, prepare
    from crm_audit.core.profile import parse_profile
    from crm_audit.core.runner import UsageError

    prof = parse_profile(PROFILE.format(url="http://127.0.0.1:9") + "gates: {fail_under: 40}\n", source="p.yaml")
    p = prepare(prof, PostOptions(fail_under=("perf=55",), regression_threshold=0.5))
    assert p.gates.fail_under == 40 and p.gates.fail_under_dimension == {"perf": 55}
    assert p.policy.threshold == 0.5 and p.policy.alpha == 0.01
    with pytest.raises(UsageError, match="needs --baseline"):
        prepare(prof, PostOptions(fail_on_regression=True))
    with pytest.raises(UsageError, match="cannot read baseline"):
        prepare(prof, PostOptions(baseline=tmp_path / "none.json"))
    with pytest.raises(UsageError, match="cannot read private key"):
        prepare(prof, PostOptions(sign_key=tmp_path / "none.key"))


def test_a_set_gate_fails_when_a_probe_did_not_finish() -> None:
    from crm_audit.core.postprocess import Prepared, postprocess

    ok = make_result()
    broken = ok.model_copy(update={"probes": ok.probes + [ProbeResult(probe="tls", status="error", reason="boom")]})
    gates = Gates(fail_on="critical", min_coverage=0)
    assert all(g.passed for g in postprocess(ok, Prepared(gates=gates)).gates if g.gate != "coverage")
    out = postprocess(broken, Prepared(gates=gates)).gates
    probes_gate = next(g for g in out if g.gate == "probes")
    assert not probes_gate.passed and "tls (error: boom)" in probes_gate.detail
    assert postprocess(broken, Prepared(gates=Gates())).gates == []  # no gate set: nothing judged


def test_a_skipped_probe_fails_the_probes_gate_unless_expected() -> None:
    from crm_audit.core.postprocess import Prepared, postprocess

    ok = make_result()
    skipped = ok.model_copy(update={"probes": ok.probes + [ProbeResult(probe="backup", status="skipped",
                                                                       reason="no operations")]})
    gate = next(g for g in postprocess(skipped, Prepared(gates=Gates(fail_on="high"))).gates if g.gate == "probes")
    assert not gate.passed and "backup (skipped: no operations)" in gate.detail
    allowed = Gates(fail_on="high", expected_skips=["backup"])
    gate = next(g for g in postprocess(skipped, Prepared(gates=allowed)).gates if g.gate == "probes")
    assert gate.passed


def test_verdict_gate_levels() -> None:
    from crm_audit.core.model import Verdict

    def judged(word: str) -> AuditResult:
        return make_result().model_copy(update={"verdict": Verdict(verdict=word, reasons=["because"])})

    for word, not_fit_gate, conditions_gate in [("Fit", True, True), ("Fit with conditions", True, False),
                                                ("Not fit", False, False), ("Inconclusive", False, False)]:
        out = {g.gate: g.passed for g in evaluate_gates(judged(word), Gates(fail_on_verdict="not-fit"))}
        assert out["verdict:not-fit"] is not_fit_gate, word
        out = {g.gate: g.passed for g in evaluate_gates(judged(word), Gates(fail_on_verdict="conditions"))}
        assert out["verdict:conditions"] is conditions_gate, word
