"""The probe suites run over the demo's JSON-RPC face exactly as over REST.

The access, flows, latency, data_quality and kpi probes run against ``DemoServer(protocol="jsonrpc")``
with profiles/demo-jsonrpc.yaml and against the REST demo with profiles/demo.yaml: the probe
statuses and the access findings must match, nothing may fail on the clean demo, and every
access flaw switch must be found over JSON-RPC under the same finding id prefix as over REST
(the table tests/test_access_probe.py holds REST to). Flaws that do not touch the same checks
share one server start; the lockout and login checks run too (disruptive allowed).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_access_probe import EXPECTED

from crm_audit.core.model import AuditResult, Status
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.runner import RunOptions, make_adapter, run_audit
from crm_audit.core.target import Target
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile

pytestmark = pytest.mark.integration

PROBES = ["access", "flows", "latency", "data_quality", "kpi"]
FAILING = (Status.failed, Status.warn, Status.error)
#: access flaws that touch different checks, so each group shares one server start
GROUPS: tuple[tuple[str, ...], ...] = (
    ("bola", "leak-hashes", "unsigned-token", "user-enum", "cors"),
    ("tenant-leak", "default-secret", "no-lockout", "open-registration", "no-security-headers"),
    ("no-role-check", "mass-assignment", "no-expiry", "token-after-logout", "stack-traces", "verbose-banner"),
)
#: access checks only the REST face has: anonymous calls of the operations its OpenAPI document describes
REST_ONLY = ("access.anonymous.api_", "access.anonymous.openapi")


def _audit(server: DemoServer, name: str, probes: list[str]) -> AuditResult:
    profile = demo_profile(server, name)
    plugins = {**profile.plugins, "latency": {"samples": 6, "warmup": 1}}
    profile = profile.model_copy(update={"plugins": plugins, "hierarchy": "none"})
    result = run_audit(profile, make_plugin_manager(),
                       RunOptions(only=probes, allow_writes=True, allow_disruptive=True))
    _assert_no_leftovers(server, name, result.run_id)
    return result


def _assert_no_leftovers(server: DemoServer, name: str, run_id: str) -> None:
    """On the server, through the profile's own adapter: no record tagged with the run id in either tenant."""
    profile = demo_profile(server, name)
    target = Target(profile)
    try:
        adapter = make_adapter(make_plugin_manager(), profile, target)
        assert adapter is not None
        for acct in ("admin", "globex_admin"):
            for res in adapter.resources():
                items, ex = adapter.list(res, acct, limit=200, tag=f"crm-audit-{run_id}")
                assert adapter.classify(ex) == "allowed", ex.text[:300]
                assert items == [], f"{name}: {res} of {acct}'s tenant: audit records left behind"
    finally:
        target.close()


def _findings(result: AuditResult, probe: str) -> dict[str, Status]:
    pr = result.probe(probe)
    assert pr is not None
    return {f.id: f.status for f in pr.findings}


@pytest.fixture(scope="module")
def clean() -> dict[str, AuditResult]:
    with DemoServer(protocol="jsonrpc") as rpc:
        over_rpc = _audit(rpc, "demo-jsonrpc.yaml", PROBES)
    with DemoServer() as rest:
        over_rest = _audit(rest, "demo.yaml", PROBES)
    return {"jsonrpc": over_rpc, "rest": over_rest}


def test_every_suite_has_the_same_status_over_both_faces(clean: dict[str, AuditResult]) -> None:
    statuses = {face: {p.probe: (p.status, p.reason) for p in r.probes} for face, r in clean.items()}
    assert set(statuses["jsonrpc"]) == set(PROBES)
    assert statuses["jsonrpc"] == statuses["rest"]
    assert {s for s, _ in statuses["jsonrpc"].values()} == {"ok"}, statuses["jsonrpc"]


def test_clean_demo_gives_no_failed_access_finding_over_json_rpc(clean: dict[str, AuditResult]) -> None:
    rpc, rest = _findings(clean["jsonrpc"], "access"), _findings(clean["rest"], "access")
    assert [fid for fid, s in rpc.items() if s in FAILING] == []
    # the same checks ran with the same outcome, REST's OpenAPI-described extras aside
    shared = {fid: s for fid, s in rest.items() if not fid.startswith(REST_ONLY)}
    assert {fid: rpc.get(fid) for fid in shared} == shared
    for must in ("access.mass_assignment.me", "access.exposure.me", "access.exposure.users",
                 "access.token.alg_none", "access.token.valid_after_logout", "access.login.user_enumeration",
                 "access.login.no_lockout", "access.registration.privileged", "access.cors.reflected_origin",
                 "access.headers.cache_control", "access.errors.stack_trace", "access.banner.version",
                 "access.logging.failed_login", "access.logging.create"):
        assert rpc[must] == Status.passed, (must, rpc[must])
    skipped = [fid for fid, s in rpc.items() if s == Status.skipped]
    assert skipped == ["access.token.expired_accepted"], skipped  # the audit cannot sign a token: nothing REST-only


def test_other_suites_find_the_same_over_both_faces(clean: dict[str, AuditResult]) -> None:
    for probe in ("flows", "data_quality", "kpi"):
        rpc, rest = _findings(clean["jsonrpc"], probe), _findings(clean["rest"], probe)
        assert rpc == rest, probe
        indicators = {m.indicator for m in clean["rest"].probe(probe).measurements}
        assert {m.indicator for m in clean["jsonrpc"].probe(probe).measurements} == indicators, probe
    flows = clean["jsonrpc"].probe("flows")
    assert flows.measurements and not [f.id for f in flows.findings if f.status in FAILING]


def test_latency_times_real_reads_over_json_rpc(clean: dict[str, AuditResult]) -> None:
    lat = clean["jsonrpc"].probe("latency")
    rows = {r["name"]: r for r in lat.artifacts["endpoints"]}
    rest_rows = {r["name"] for r in clean["rest"].probe("latency").artifacts["endpoints"]}
    assert set(rows) == rest_rows == {"health", "list contacts", "list leads", "list cases", "current user"}
    for name in ("list contacts", "list leads", "list cases", "current user"):
        assert rows[name]["method"] == "POST" and rows[name]["errors"] == 0, rows[name]
        assert rows[name]["summary"]["count"] == 6
    err = next(m for m in lat.measurements if m.indicator == "perf.error_rate")
    assert err.value == 0.0 and err.details["requests"] == 5 * 6


@pytest.fixture(scope="module", params=GROUPS, ids=lambda g: "+".join(g))
def flawed(request: pytest.FixtureRequest) -> tuple[tuple[str, ...], dict[str, Any]]:
    with DemoServer(protocol="jsonrpc", flaws=request.param) as server:
        result = _audit(server, "demo-jsonrpc.yaml", ["access"])
    probe = result.probe("access")
    assert probe is not None and probe.status == "ok", probe and probe.reason
    return request.param, {f.id: f for f in probe.findings}


def test_each_access_flaw_is_found_over_json_rpc_as_over_rest(flawed) -> None:
    flaws, findings = flawed
    prefixes = tuple(p for flaw in flaws for p in EXPECTED[flaw])
    for flaw in flaws:
        for prefix in EXPECTED[flaw]:
            assert any(fid.startswith(prefix) and f.status == Status.failed for fid, f in findings.items()), \
                f"{flaw}: nothing failed under {prefix} over JSON-RPC"
    unrelated = [f"{fid} ({f.status.value}): {f.title}" for fid, f in findings.items()
                 if f.status in FAILING and not fid.startswith(prefixes)]
    assert unrelated == []
    for f in findings.values():
        assert (f.not_assessed is None) == f.assessed, f.id
        if f.status == Status.skipped:
            assert f.hint, f"{f.id}: skipped without a hint"
        if f.status == Status.failed:
            assert f.evidence, f"{f.id} has no evidence"


def test_every_access_flaw_is_in_a_group() -> None:
    grouped = [f for g in GROUPS for f in g]
    assert sorted(grouped) == sorted(EXPECTED) and len(grouped) == len(set(grouped))
