"""The flows probe against the real demo CRM: completion, refs between steps, timings, cleanup."""

from __future__ import annotations

import pytest

from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.profile import Flow
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit.core.target import Target
from crm_audit.protocols.rest import RestAdapter
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo():
    with DemoServer(delay_ms=0) as server:
        yield server


def _tagged_left(profile, tag: str) -> dict[str, int]:
    target = Target(profile)
    adapter = RestAdapter(profile.adapter, target)
    left = {}
    for res in adapter.resources():
        items, ex = adapter.list(res, "admin", limit=200, params={"tag": tag})
        assert ex.ok
        left[res] = sum(1 for i in items if tag in (i.get("tags") or []))
    target.close()
    return left


def test_demo_flow_completes_and_cleans_up(demo):
    profile = demo_profile(demo)
    opts = RunOptions(only=["flows"], hierarchy="none")
    result = run_audit(profile, make_plugin_manager(), opts)
    probe = result.probes[0]
    assert probe.status == "ok", probe.reason
    rate = next(m for m in probe.measurements if m.indicator == "perf.flow_completion_rate")
    assert rate.value == 1.0 and rate.details == {"runs": 3, "completed": 3}
    time_m = next(m for m in probe.measurements if m.indicator == "perf.flow_completion_time")
    assert time_m.expected == 3 and time_m.samples.count == 3 and 0 < time_m.value < 3
    flow = probe.artifacts["flows"][0]
    assert [s["name"] for s in flow["steps"]][:2] == ["create lead", "qualify lead"]
    assert all(s["summary_ms"]["count"] == 3 and s["failures"] == 0 for s in flow["steps"])
    assert not probe.findings
    assert _tagged_left(profile, f"crm-audit-{opts.run_id}") == {r: 0 for r in profile.adapter["resources"]}


def test_the_servers_delay_shows_in_every_step_and_in_the_completion_time():
    """The demo sleeps 150 ms in every API request: each step's time holds it, and a run's time holds all of them."""
    delay_ms = 150
    with DemoServer(delay_ms=delay_ms) as slow:
        profile = demo_profile(slow)
        flow = profile.flows[0].model_copy(update={"runs": 2, "slo_s": 60})
        profile = profile.model_copy(update={"flows": [flow]})
        opts = RunOptions(only=["flows"], hierarchy="none")
        probe = run_audit(profile, make_plugin_manager(), opts).probes[0]
        left = _tagged_left(profile, f"crm-audit-{opts.run_id}")
    assert probe.status == "ok", probe.reason
    steps = probe.artifacts["flows"][0]["steps"]
    assert len(steps) == len(flow.steps) and all(s["failures"] == 0 for s in steps)
    assert all(s["summary_ms"]["min"] >= delay_ms for s in steps), [(s["name"], s["summary_ms"]["min"]) for s in steps]
    time_m = next(m for m in probe.measurements if m.indicator == "perf.flow_completion_time")
    assert time_m.samples.count == 2 and time_m.samples.min >= len(steps) * delay_ms / 1000
    assert left == {r: 0 for r in profile.adapter["resources"]}


def test_broken_step_lowers_completion_rate_and_still_cleans_up(demo):
    profile = demo_profile(demo)
    flow = Flow.model_validate({"name": "broken", "account": "sales", "runs": 2, "slo_s": 5, "steps": [
        {"name": "create account", "action": "create", "resource": "accounts", "save_as": "acc"},
        {"name": "contact at account", "action": "create", "resource": "contacts",
         "body": {"account_id": "{acc.id}"}, "save_as": "c"},
        {"name": "read contact", "action": "read", "ref": "c"},
        {"name": "read missing", "action": "request", "method": "GET", "path": "/api/contacts/999999"},
    ]})
    profile = profile.model_copy(update={"flows": [flow]})
    opts = RunOptions(only=["flows"], hierarchy="none")
    probe = run_audit(profile, make_plugin_manager(), opts).probes[0]
    rate = next(m for m in probe.measurements if m.indicator == "perf.flow_completion_rate")
    assert rate.value == 0.0
    finding = next(f for f in probe.findings if f.id == "flows.incomplete.broken")
    assert "read missing" in finding.title and finding.evidence[0].status == 404
    steps = {s["name"]: s for s in probe.artifacts["flows"][0]["steps"]}
    assert steps["read contact"]["failures"] == 0 and steps["read missing"]["failures"] == 2
    assert _tagged_left(profile, f"crm-audit-{opts.run_id}") == {r: 0 for r in profile.adapter["resources"]}


def test_needs_allow_writes(demo):
    result = run_audit(demo_profile(demo), make_plugin_manager(),
                       RunOptions(only=["flows"], allow_writes=False, hierarchy="none"))
    assert result.probes[0].status == "skipped" and "allow.writes" in result.probes[0].reason
    # the result still lists what was not assessed and how to assess it
    by_indicator = {f.indicator: f for f in result.probes[0].findings}
    assert set(by_indicator) == {"perf.flow_completion_time", "perf.flow_completion_rate"}
    assert all(f.not_assessed.value == "safety" and f.hint == "run with --allow-writes" for f in by_indicator.values())


def test_budget_cut_marks_the_flow_values_bounded(demo):
    profile = demo_profile(demo)
    # room for two of the three runs (one run of the demo flow sends 6 requests, plus the audit's own),
    # after the 10 requests kept back for cleanups
    profile = profile.model_copy(update={"target": profile.target.model_copy(update={"request_budget": 30})})
    opts = RunOptions(only=["flows"], hierarchy="none")
    probe = run_audit(profile, make_plugin_manager(), opts).probes[0]
    assert probe.status == "ok"
    rate = next(m for m in probe.measurements if m.indicator == "perf.flow_completion_rate")
    assert rate.bounded_by == "request_budget" and rate.details["runs_planned"] == 3
    assert rate.details["runs"] < 3


@pytest.mark.parametrize("budget", [14, 17, 20, 25, 30])
def test_records_are_removed_even_when_the_budget_runs_out(demo, budget: int):
    """The cleanup reserve (Target.cleanup_reserve) lets deferred deletes run after a probe spent the rest."""
    profile = demo_profile(demo)
    profile = profile.model_copy(update={"target": profile.target.model_copy(update={"request_budget": budget})})
    opts = RunOptions(only=["flows"], hierarchy="none")
    run_audit(profile, make_plugin_manager(), opts)
    assert _tagged_left(profile, f"crm-audit-{opts.run_id}") == {r: 0 for r in profile.adapter["resources"]}
