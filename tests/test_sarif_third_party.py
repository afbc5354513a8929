"""SARIF scope is declared, not guessed: a finding is a security finding when its indicator is in a
security dimension (sec, bak), whoever's probe wrote it; id prefixes and probe names do not count."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import report_fixtures as rf  # noqa: E402

from crm_audit.core.model import AuditResult, Finding, ProbeResult, Severity, Status  # noqa: E402
from crm_audit.report.sarif_reporter import SarifReporter  # noqa: E402
from crm_audit.report.view import indicator_dimensions, is_security_finding  # noqa: E402

THIRD_PARTY = ProbeResult(probe="audit_trail", findings=[
    Finding(id="audit_trail.denied_request", title="A denied request is not logged", severity=Severity.medium,
            indicator="sec.audit_trail", probe="audit_trail"),
    Finding(id="audit_trail.admin_action", title="An admin action is logged", status=Status.passed,
            indicator="sec.audit_trail", probe="audit_trail"),
    Finding(id="tls.lookalike", title="Not a security finding: no indicator", severity=Severity.high, probe="tls"),
    Finding(id="ops.runbook", title="A non-security finding", severity=Severity.high, indicator="ops.runbook",
            probe="audit_trail"),
])


def with_probe(result: AuditResult, *probes: ProbeResult) -> AuditResult:
    return result.model_copy(update={"probes": [*result.probes, *probes]})


def run_of(result: AuditResult) -> dict[str, Any]:
    return json.loads(SarifReporter().render(result))["runs"][0]


def test_a_third_party_security_finding_is_a_result_with_security_tags() -> None:
    for result in (with_probe(rf.realistic_result(), THIRD_PARTY), with_probe(rf.unscored_result(), THIRD_PARTY)):
        run = run_of(result)
        ids = {r["ruleId"] for r in run["results"]}
        assert "audit_trail.denied_request" in ids
        assert not {"audit_trail.admin_action", "tls.lookalike", "ops.runbook"} & ids
        rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "audit_trail.denied_request")
        assert rule["properties"]["tags"] == ["security", "audit_trail", "sec.audit_trail"]
        assert rule["properties"]["security-severity"] == "5.5"


def test_the_scored_hierarchy_decides_the_dimension() -> None:
    result = rf.realistic_result()
    dims = indicator_dimensions(result)
    assert dims["sec.transport"] == "sec" and dims["bak.rpo"] == "bak" and dims["perf.recovery_time"] == "perf"
    moved = Finding(id="x.y", title="t", indicator="weird.name", probe="p")
    assert not is_security_finding(moved, dims)
    assert is_security_finding(moved, {**dims, "weird.name": "sec"})    # placed under sec by the hierarchy
    assert not is_security_finding(Finding(id="access.bola.x", title="t", probe="access"), dims)  # no indicator


def test_an_errored_third_party_probe_is_a_notification() -> None:
    crashed = ProbeResult(probe="audit_trail", status="error", reason="RuntimeError: boom")
    notes = run_of(with_probe(rf.realistic_result(), crashed))["invocations"][0]["toolExecutionNotifications"]
    assert {"level": "error", "message": {"text": "audit_trail: RuntimeError: boom"}} in notes
