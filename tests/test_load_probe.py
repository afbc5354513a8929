"""The load probe against the real demo CRM, with real Locust master/worker processes.

The demo serves ``capacity`` API requests at a time, each taking ``delay_ms``; so with
capacity 1 a closed loop of u users sees about u × delay latency, and the largest user
count within a 250 ms p95 SLO falls when the delay grows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from crm_audit.demo_profile import demo_profile
from crm_audit.plugins import make_plugin_manager
from crm_audit.profile import parse_profile
from crm_audit.runner import RunOptions, run_audit
from crm_audit_plugins.load.cluster import free_port
from crm_audit_plugins.load.stats import ladder, step_stats

from crm_audit.demo import DemoServer

pytestmark = pytest.mark.integration

TASKS = [{"name": "list contacts", "path": "/api/contacts", "account": "sales", "params": {"limit": 5}, "weight": 3},
         {"name": "current user", "path": "/api/me", "account": "readonly", "weight": 1}]
BASE = {"tasks": TASKS, "max_users": 8, "step_s": 1.5, "sustained_s": 1.5, "slo_p95_ms": 250,
        "local_workers": 1, "max_total_s": 30, "target_users": 4, "baseline_samples": 5, "recovery_max_s": 10}
SLACK_S = 8.0
ARTIFACT_KEYS = {"steps", "max_sustainable_users", "target_users", "slo_p95_ms", "sustained", "recovery"}
STEP_KEYS = {"users", "duration_s", "requests", "rps", "p50_ms", "p95_ms", "error_rate", "within_slo"}


def _load(profile, **opts):
    profile = profile.model_copy(update={"plugins": {"load": {**BASE, **opts}}})
    result = run_audit(profile, make_plugin_manager(), RunOptions(only=["load"], hierarchy="none"))
    probe = result.probes[0]
    assert probe.status == "ok", probe.reason
    return probe


def _limits(probe):
    return next(m for m in probe.measurements if m.indicator == "perf.max_concurrency").details["limits"]


def _assert_bounded(probe, max_users: int, max_total_s: float, budget: int | None = None):
    lim = _limits(probe)
    assert lim["max_users_requested"] <= max_users and lim["max_users_observed"] <= max_users
    assert lim["load_s"] <= max_total_s + SLACK_S
    assert lim["requests"] <= lim["budget"]
    if budget is not None:
        assert lim["budget"] <= budget
    measured = sum(s["requests"] for s in probe.artifacts["steps"])
    assert 0 < measured <= lim["requests"]  # every measured request was counted against the budget


def test_max_sustainable_concurrency_drops_when_the_demo_is_slower():
    found = {}
    for delay in (40, 150):
        with DemoServer(delay_ms=delay, capacity=1) as server:
            probe = _load(demo_profile(server), min_step_gain=0)  # the SLO alone ends the ladder
        art = probe.artifacts
        assert set(art) == ARTIFACT_KEYS and all(set(s) == STEP_KEYS for s in art["steps"])
        assert [s["users"] for s in art["steps"]] == ladder(1, 2, 8)[: len(art["steps"])]
        assert art["steps"][-1]["within_slo"] is False  # it stopped because the SLO broke
        assert art["recovery"]["recovered"] and art["recovery"]["recovery_s"] < 10
        _assert_bounded(probe, 8, 30)
        found[delay] = art["max_sustainable_users"]
        rps = next(m for m in probe.measurements if m.indicator == "perf.throughput_at_slo").value
        assert rps <= 1000 / delay * 1.15  # capacity 1: at most one request per delay
    assert found[40] > found[150] >= 1, found


def test_ladder_ends_at_the_capacity_knee():
    """Capacity 1 at 40 ms: 25 req/s whatever the users; the second step gains nothing, so the ladder
    ends there (the SLO of 250 ms would have allowed more users, who would only queue)."""
    with DemoServer(delay_ms=40, capacity=1) as server:
        probe = _load(demo_profile(server))
    steps = probe.artifacts["steps"]
    assert [s["users"] for s in steps] == [1, 2] and all(s["within_slo"] for s in steps), steps
    assert steps[1]["rps"] < steps[0]["rps"] * 1.1
    lim = _limits(probe)
    assert lim["stop_reason"] == "throughput plateau" and lim["max_users_requested"] == 2
    m = next(m for m in probe.measurements if m.indicator == "perf.max_concurrency")
    assert m.value == 2 and m.bounded_by is None  # the CRM set the level, not the audit


def test_request_budget_and_time_limit_hold():
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    before = set(tmp.glob("crm-audit-load-*"))
    with DemoServer(delay_ms=20, capacity=4) as server:
        probe = _load(demo_profile(server), slo_p95_ms=5000, max_requests=60, max_total_s=12, sustained_s=0)
    assert set(tmp.glob("crm-audit-load-*")) <= before  # headers file (tokens) and locustfile removed
    lim = _limits(probe)
    assert lim["budget"] == 60 and lim["requests"] <= 60
    assert lim["stop_reason"] in ("request budget", "max_total_s")
    _assert_bounded(probe, 8, 12, budget=60)


def test_too_many_users_need_allow_disruptive():
    with DemoServer(delay_ms=0) as server:
        profile = demo_profile(server).model_copy(update={"plugins": {"load": {**BASE, "max_users": 64}}})
        result = run_audit(profile, make_plugin_manager(),
                           RunOptions(only=["load"], allow_disruptive=False, hierarchy="none"))
    assert result.probes[0].status == "skipped" and "disruptive" in result.probes[0].reason


def test_distributed_master_and_load_worker_give_the_same_result_shape(tmp_path):
    port = free_port()
    with DemoServer(delay_ms=40, capacity=1) as server:
        raw = yaml.safe_load((files("crm_audit_profiles") / "demo.yaml").read_text(encoding="utf-8"))
        raw["plugins"] = {"load": {**BASE, "local_workers": 0, "external_workers": 1,
                                   "master_bind": f"127.0.0.1:{port}"}}
        path = tmp_path / "demo-load.yaml"
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        env = {**os.environ, **server.env, "DEMO_BASE_URL": server.base_url, "DEMO_CA_BUNDLE": str(server.ca_path)}
        profile = parse_profile(path.read_text(), source=str(path), env=env)
        worker = subprocess.Popen([sys.executable, "-m", "crm_audit", "load-worker", str(path),
                                   "--master", f"127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            result = run_audit(profile, make_plugin_manager(), RunOptions(only=["load"], hierarchy="none"))
            code = worker.wait(timeout=30)  # the worker leaves when the master quits
            log = worker.stdout.read()
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    probe = result.probes[0]
    assert probe.status == "ok", (probe.reason, log)
    assert code == 0, log
    assert "load-worker: mix " in log
    assert set(probe.artifacts) == ARTIFACT_KEYS and all(set(s) == STEP_KEYS for s in probe.artifacts["steps"])
    assert _limits(probe)["workers"] == 1
    assert 1 <= probe.artifacts["max_sustainable_users"] <= 8
    assert sum(s["requests"] for s in probe.artifacts["steps"]) > 0
    _assert_bounded(probe, 8, 30)


def test_step_stats_are_exact():
    rows = [(float(i), "x", float(ms), ms != 7) for i, ms in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])]
    st = step_stats(rows, users=2, duration_s=2.0, slo_p95_ms=9.6, max_error_rate=0.2)
    assert st["requests"] == 10 and st["rps"] == 5.0 and st["error_rate"] == 0.1
    assert st["p50_ms"] == 5.0 and st["p95_ms"] == pytest.approx(9.6) and st["within_slo"] is True
    assert ladder(1, 2, 10) == [1, 2, 4, 8, 10] and ladder(3, 2, 12) == [3, 6, 12]


def test_rate_cap_holds():
    """The load phase never exceeds its rate cap (target.rate_limit_rps by default), measured from the request rows."""
    with DemoServer(delay_ms=0, capacity=16) as server:
        probe = _load(demo_profile(server), steps=[8], sustained_s=0, max_rps=40, step_s=3, max_total_s=20)
    step = probe.artifacts["steps"][0]
    assert step["requests"] > 0 and step["rps"] <= 40 * 1.15, step
    assert _limits(probe)["max_rps"] == 40
    # a request is timed from when it is sent, not from when it queued for the cap: 8 users sharing
    # 40 req/s wait about 200 ms each between requests; none of that may count as latency
    assert step["p50_ms"] < 50 and step["within_slo"], step
    # sustained_s 0: stability is listed as not assessed, with what would assess it
    drift = next(f for f in probe.findings if f.id == "load.latency_drift")
    assert drift.status.value == "skipped" and drift.not_assessed.value == "not_configured" and "sustained_s" in drift.hint


def _step(users: int, rps: float, within: bool) -> dict:
    return {"users": users, "rps": rps, "within_slo": within}


def test_ladder_stops_when_throughput_stops_growing():
    from crm_audit_plugins.load.stats import capacity_bound, plateaued

    growing = [_step(1, 100, True), _step(2, 190, True), _step(4, 300, True)]
    assert not plateaued(growing, 0.1)
    flat = growing + [_step(8, 320, True)]  # +6.7 % over the best earlier step: the knee
    assert plateaued(flat, 0.1) and not plateaued(flat, 0.05) and not plateaued(flat, 0)
    assert plateaued(growing + [_step(8, 250, True)], 0.1)  # fell back
    assert not plateaued([_step(1, 100, True)], 0.1)
    # the CRM, not the audit, set the level (unless the rate cap did)
    assert capacity_bound(flat, "throughput plateau", 10_000) is None
    assert capacity_bound(flat, "throughput plateau", 330) == "rate_limit"


def test_capacity_bound_names_the_audits_own_limit():
    from crm_audit_plugins.load.stats import capacity_bound

    # the case: throughput levelled off at the profile's rate_limit_rps of 20
    assert capacity_bound([_step(1, 9.8, True), _step(2, 18.6, True), _step(4, 18.7, True)], "max_users reached", 20) \
        == "rate_limit"
    assert capacity_bound([_step(1, 5, True), _step(2, 9, True)], "max_users reached", 100) == "max_users"
    assert capacity_bound([_step(1, 5, True), _step(2, 9, True)], "max_total_s", 100) == "time_limit"
    assert capacity_bound([_step(1, 5, True)], "request budget", 100) == "request_budget"
    # the SLO broke: the CRM set the level, not the audit
    assert capacity_bound([_step(1, 5, True), _step(2, 6, False)], "SLO broken", 100) is None
    assert capacity_bound([_step(1, 5, False)], "SLO broken", 100) is None


@pytest.mark.parametrize("hierarchy", ["default", "security", "vendor-selection"])
def test_stability_definition_and_scoring_agree(hierarchy):
    """perf.stability is p95(second half) / p95(first half), expected ≤ 1.2, in the probe and every bundled hierarchy."""
    from crm_audit.scoring import load_hierarchy
    from crm_audit_plugins.load.probe import STABILITY_MAX_RATIO
    from crm_audit_plugins.load.stats import sustained_stats

    rows = [(0.5, "x", 149.0, True), (1.5, "x", 134.0, True)]  # the case: p95 fell from 149 to 134 ms
    drift = sustained_stats(rows, 4, 0.0, 2.0)["drift"]
    assert drift == pytest.approx(134 / 149, abs=1e-4)
    node = next(n for n in load_hierarchy(hierarchy).leaves() if n.id == "perf.stability")
    assert node.expected == STABILITY_MAX_RATIO == 1.2 and node.better == "lower"
    assert node.function.score(drift) == 100  # p95 fell: the best possible stability
    assert node.function.score(1.2) == pytest.approx(90)  # at the expectation
    assert node.function.score(3.0) == 0
