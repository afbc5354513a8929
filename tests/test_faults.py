"""End to end against a hostile CRM (tests/fault_target.py): every audit ends in its budget with its result.

Each case runs ``crm-audit audit`` in a subprocess against one fault and checks the exit code,
that result.json was written, the wall time (request_budget × deadline_s, plus the tls scan
limit when that probe runs, plus a margin for start-up and reports), the child's own peak RSS
(wait4), and that no check whose requests failed passes. The cases run three at a time to keep
this file near a minute; scripts/reliability.py runs them one by one for docs/reliability.md.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fault_cases import CASES, MARGIN_S, RSS_LIMIT_MB, Case, Outcome, run_case

BY_FAULT = {c.fault: c for c in CASES}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    base = tmp_path_factory.mktemp("faults")
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {c.fault: pool.submit(run_case, c, base / c.fault) for c in CASES}
        return {fault: f.result() for fault, f in futures.items()}


@pytest.mark.parametrize("fault", list(BY_FAULT))
def test_audit_ends_in_budget_with_its_result(outcomes: dict[str, Outcome], fault: str) -> None:
    case: Case = BY_FAULT[fault]
    out = outcomes[fault]
    where = f"{fault}: exit {out.exit_code}, stderr tail: {out.stderr[-600:]}"
    assert out.exit_code == case.exit_code, where
    assert out.wall_s <= case.budget_s + MARGIN_S, where
    assert out.peak_rss_mb < RSS_LIMIT_MB, f"{fault}: peak RSS {out.peak_rss_mb} MB"
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, where
    if not case.result_written:
        assert out.result is None
        lines = [ln for ln in out.stderr.splitlines() if ln.startswith("crm-audit: error:")]
        assert len(lines) == 1 and "nested too deep" in lines[0], where
        return
    assert out.result is not None, where
    if fault == "deep_json_login":  # the login answer is refused: nothing ran, the result says why
        assert out.result["complete"] is False and "nested too deep" in out.result["incomplete_reason"]
        assert out.result["probes"] == [] and out.result["verdict"]["verdict"] == "Inconclusive"
        lines = [ln for ln in out.stderr.splitlines() if ln.startswith("crm-audit: error:")]
        assert len(lines) == 1 and "nested too deep" in lines[0], where
        return
    assert [p["probe"] for p in out.result["probes"]] == list(case.probes)
    if fault in ("expired", "handshake"):  # the transport problem is said in the result, not only in a probe
        assert any("TLS" in w or "certificate" in w for w in out.result["warnings"]), out.result["warnings"]
    for p in out.result["probes"]:
        assert "RecursionError" not in (p.get("reason") or ""), p["reason"]


@pytest.mark.parametrize("fault", [c.fault for c in CASES if c.no_pass])
def test_no_check_passes_on_failed_requests(outcomes: dict[str, Outcome], fault: str) -> None:
    case = BY_FAULT[fault]
    out = outcomes[fault]
    assert out.result is not None
    for probe in case.no_pass:
        passed = [f["id"] for f in out.findings(probe) if f["status"] == "pass"]
        assert passed == [], f"{fault}: {probe} passed {passed} although its requests failed"


@pytest.mark.parametrize("fault", [c.fault for c in CASES if c.failure])
def test_the_failure_is_recorded_in_evidence(outcomes: dict[str, Outcome], fault: str) -> None:
    case = BY_FAULT[fault]
    assert case.failure in outcomes[fault].failures_seen(), outcomes[fault].failures_seen()


@pytest.mark.parametrize("fault", [c.fault for c in CASES if c.recovered or c.must_fail])
def test_recovered_faults_measure_and_reported_faults_fail(outcomes: dict[str, Outcome], fault: str) -> None:
    case = BY_FAULT[fault]
    out = outcomes[fault]
    assert out.result is not None
    probes = {p["probe"]: p for p in out.result["probes"]}
    for pid in case.recovered:
        assert probes[pid]["status"] == "ok" and probes[pid]["measurements"], (pid, probes[pid].get("reason"))
    failed = {f["id"] for f in out.findings() if f["status"] == "fail"}
    assert set(case.must_fail) <= failed, failed


def test_the_fault_server_itself_stops_by_its_lifetime(tmp_path: Path) -> None:
    import time

    from fault_target import FaultTarget

    ft = FaultTarget("none", lifetime_s=0.5).start()
    try:
        time.sleep(1.5)
        assert not ft.alive()
    finally:
        ft.stop()
