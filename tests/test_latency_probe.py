"""The latency probe against the real demo CRM: exact percentiles, histogram, SLO, OpenAPI discovery."""

from __future__ import annotations

import numpy as np
import pytest

from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile

pytestmark = pytest.mark.integration


def _run(server, endpoints: list[str], **opts):
    profile = demo_profile(server)
    eps = [e for e in profile.endpoints if e.name in endpoints]
    profile = profile.model_copy(update={"endpoints": eps, "plugins": {"latency": {"samples": 12, "warmup": 1, **opts}}})
    result = run_audit(profile, make_plugin_manager(), RunOptions(only=["latency"], hierarchy="none"))
    probe = result.probes[0]
    assert probe.status == "ok", probe.reason
    return probe


@pytest.fixture(scope="module")
def fast_demo():
    with DemoServer(delay_ms=0) as server:
        yield server


def test_exact_percentiles_histogram_and_no_slo_finding(fast_demo):
    probe = _run(fast_demo, ["list contacts", "current user"], histogram_bins=5)
    rows = {r["name"]: r for r in probe.artifacts["endpoints"]}
    assert set(rows) == {"list contacts", "current user"}
    for m in probe.measurements:
        if m.indicator != "perf.response_time_p95":
            continue
        raw = np.array(m.raw_samples)
        assert len(raw) == m.samples.count == 12
        for pct, got in ((50, m.samples.p50), (90, m.samples.p90), (95, m.samples.p95), (99, m.samples.p99)):
            assert got == pytest.approx(np.percentile(raw, pct), abs=2e-3)
        assert m.samples.min == pytest.approx(raw.min(), abs=1e-3)
        assert m.samples.stdev == pytest.approx(raw.std(ddof=1), abs=2e-3)
        row = rows[m.label]
        assert sum(row["histogram"]["counts"]) == m.samples.count
        assert len(row["histogram"]["edges"]) == len(row["histogram"]["counts"]) + 1
        assert set(row) == {"name", "method", "path", "summary", "ttfb", "slo_p95_ms", "errors", "histogram"}
    assert not [f for f in probe.findings if f.id.startswith("latency.slo_exceeded")]
    err = next(m for m in probe.measurements if m.indicator == "perf.error_rate")
    assert err.value == 0.0 and err.details["requests"] == 24


def test_openapi_discovery_adds_readable_get_endpoints(fast_demo):
    probe = _run(fast_demo, ["list contacts"], samples=3, discover_openapi=True, max_discovered=4)
    names = [r["name"] for r in probe.artifacts["endpoints"]]
    discovered = [n for n in names if n.startswith("GET /")]
    assert 1 <= len(discovered) <= 4
    assert "GET /api/contacts" not in discovered  # already in the profile
    assert all(r["errors"] == 0 for r in probe.artifacts["endpoints"])  # only readable ones kept


def test_slo_finding_when_demo_is_slower_than_the_slo():
    with DemoServer(delay_ms=400) as slow:
        probe = _run(slow, ["health", "list contacts"], samples=5)
    ids = {f.id for f in probe.findings}
    assert "latency.slo_exceeded.list_contacts" in ids  # 400 ms delay > 300 ms SLO
    assert "latency.slo_exceeded.health" not in ids  # /api/health bypasses the delay
    p95 = next(m for m in probe.measurements if m.label == "list contacts")
    assert p95.value >= 400 and p95.meets_expected is False


def test_the_servers_delay_shows_in_time_to_first_byte():
    """The demo sleeps 400 ms before it answers an API request (never /api/health): every
    measured time to first byte of that endpoint holds the delay, and none of health's does."""
    with DemoServer(delay_ms=400) as slow:
        probe = _run(slow, ["health", "list contacts"], samples=5)
    rows = {r["name"]: r for r in probe.artifacts["endpoints"]}
    delayed, health = rows["list contacts"]["ttfb"], rows["health"]["ttfb"]
    assert delayed["count"] == 5 and delayed["min"] >= 400.0, delayed
    assert health["count"] == 5 and health["max"] < 400.0, health
    ttfb_p95 = next(m for m in probe.measurements if m.label == "list contacts").details["ttfb_p95_ms"]
    assert ttfb_p95 == delayed["p95"] >= 400.0


def test_request_budget_cut_marks_values_bounded_and_lists_unsampled_endpoints(fast_demo):
    """A budget that runs out mid-way: the partial p95 says the audit's budget set it; the rest is not assessed."""
    profile = demo_profile(fast_demo)
    eps = [e for e in profile.endpoints if e.name in ("list contacts", "current user")]
    profile = profile.model_copy(update={
        "endpoints": eps, "plugins": {"latency": {"samples": 12, "warmup": 1}},
        "target": profile.target.model_copy(update={"request_budget": 22})})  # 12 for probes, 10 kept for cleanups
    result = run_audit(profile, make_plugin_manager(), RunOptions(only=["latency"], hierarchy="none"))
    probe = result.probes[0]
    assert probe.status == "ok", probe.reason
    assert probe.requests <= 12
    [p95] = [m for m in probe.measurements if m.indicator == "perf.response_time_p95"]
    assert p95.label == eps[0].name and p95.bounded_by == "request_budget"
    assert 0 < p95.samples.count < 12 and p95.details["samples_planned"] == 12
    err = next(m for m in probe.measurements if m.indicator == "perf.error_rate")
    assert err.bounded_by == "request_budget"
    [skipped] = [f for f in probe.findings if not f.assessed]
    assert skipped.id == "latency.slo_exceeded.current_user" and skipped.not_assessed.value == "audit_limit"
    assert "request_budget" in skipped.hint


def test_operation_endpoints_time_reads_through_the_adapter_and_never_repeat_writes(fast_demo):
    """An endpoint may name an adapter operation: a read is timed by its exchange; a write is never sent
    (skipped for safety, with a hint) and an operation the adapter lacks is not assessed — counted on the server."""
    from crm_audit.core.model import NotAssessed, Status
    from crm_audit.core.profile import Endpoint
    from crm_audit.core.target import Target

    profile = demo_profile(fast_demo)
    target = Target(profile)
    try:
        def contacts() -> int:
            return target.request("GET", "/api/contacts", account="admin", params={"limit": 1}).json()["total"]

        before = contacts()
        eps = [Endpoint(name="list contacts op", operation="contacts.list", account="sales", params={"limit": 5}),
               Endpoint(name="create contact op", operation="contacts.create", account="sales"),
               Endpoint(name="no such op", operation="nothing.here", account="sales")]
        prof = profile.model_copy(update={"endpoints": eps, "plugins": {"latency": {"samples": 4, "warmup": 1}}})
        result = run_audit(prof, make_plugin_manager(), RunOptions(only=["latency"], hierarchy="none",
                                                                   allow_writes=True))
        assert contacts() == before  # the write operation was never called
    finally:
        target.close()
    probe = result.probes[0]
    assert probe.status == "ok", probe.reason
    rows = {r["name"]: r for r in probe.artifacts["endpoints"]}
    assert set(rows) == {"list contacts op"}
    assert rows["list contacts op"]["method"] == "GET" and rows["list contacts op"]["summary"]["count"] == 4
    found = {f.id: f for f in probe.findings}
    write = found["latency.slo_exceeded.create_contact_op"]
    assert write.status == Status.skipped and write.not_assessed is NotAssessed.safety and write.hint
    missing = found["latency.slo_exceeded.no_such_op"]
    assert missing.status == Status.skipped and missing.not_assessed is NotAssessed.not_configured and missing.hint


def test_an_endpoint_is_a_path_or_an_operation() -> None:
    from crm_audit.core.profile import Endpoint

    assert Endpoint(name="op", operation="contacts.list").method == "CALL"  # the load mix takes GET paths only
    for bad in ({"name": "neither"}, {"name": "both", "path": "/api/x", "operation": "contacts.list"},
                {"name": "method", "operation": "contacts.list", "method": "GET"}):
        with pytest.raises(ValueError):
            Endpoint(**bad)
