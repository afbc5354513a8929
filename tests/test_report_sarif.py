"""SARIF reporter: validates against the official SARIF 2.1.0 schema; security findings and failed
indicators as results, not-assessed checks as notifications, the verdict in the run's properties."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import report_fixtures as rf  # noqa: E402

from crm_audit.report.sarif_reporter import SarifReporter  # noqa: E402

SCHEMA = Path(__file__).parent.parent / "crm_audit" / "schema" / "sarif-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")  # the OASIS file, not a subset
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=jsonschema.FormatChecker(["date-time"]))


def render(result: Any) -> dict[str, Any]:
    return json.loads(SarifReporter().render(result))


@pytest.mark.parametrize("make", [rf.realistic_result, rf.hostile_result, rf.unscored_result, rf.legacy_result,
                                  rf.low_coverage_result])
def test_sarif_validates(validator: jsonschema.protocols.Validator, make: Any) -> None:
    log = render(make())
    errors = list(validator.iter_errors(log))
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1


SECURITY = {"access.bola.contacts", "backup.endpoint.unauthenticated", "tls.protocol.tls1_0_enabled",
            "hardening.error.stack_trace", "tls.hsts.missing", "hardening.headers.csp_missing"}
INDICATORS = {"indicator.perf.recovery_time", "indicator.bak.rpo", "indicator.svc.response_time"}


def test_only_open_or_waived_security_findings_and_failed_indicators() -> None:
    run = render(rf.realistic_result())["runs"][0]
    ids = [r["ruleId"] for r in run["results"]]
    assert set(ids) == SECURITY | INDICATORS and len(ids) == len(set(ids))
    assert "flows.lead_to_deal.slow_step" not in ids   # not a security finding
    assert "tls.certificate.valid" not in ids          # passed
    assert not {"access.login.limit", "access.tenant.isolation", "access.session.logout"} & set(ids)  # not assessed


def test_rules_levels_and_suppressions() -> None:
    run = render(rf.realistic_result())["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    by_id = {r["id"]: r for r in rules}
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
    assert by_id["access.bola.contacts"]["help"]["text"].startswith("Check object ownership")
    assert by_id["access.bola.contacts"]["helpUri"].startswith("https://owasp.org/")
    assert by_id["access.bola.contacts"]["properties"]["security-severity"] == "9.5"
    levels = {r["ruleId"]: r["level"] for r in run["results"] if r["ruleId"] in SECURITY}
    assert levels == {"access.bola.contacts": "error", "backup.endpoint.unauthenticated": "error",
                      "tls.protocol.tls1_0_enabled": "error", "hardening.error.stack_trace": "warning",
                      "tls.hsts.missing": "warning", "hardening.headers.csp_missing": "note"}
    waived = next(r for r in run["results"] if r["ruleId"] == "hardening.headers.csp_missing")
    assert waived["suppressions"] == [{"kind": "external", "status": "accepted",
                                       "justification": "API only; no browser UI served from this host"}]
    bola = next(r for r in run["results"] if r["ruleId"] == "access.bola.contacts")
    assert bola["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "https://crm.example.test/api/contacts/4711/"
    assert run["invocations"][0]["startTimeUtc"] == "2025-03-14T09:00:00.000000Z"


def test_failed_indicators_are_results_security_only_when_security() -> None:
    run = render(rf.realistic_result())["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    rpo, recovery = rules["indicator.bak.rpo"], rules["indicator.perf.recovery_time"]
    assert "indicator" in rpo["properties"]["tags"] and rpo["properties"]["security-severity"] == "8.0"  # backup probe
    assert "security" not in recovery["properties"]["tags"] and "security-severity" not in recovery["properties"]
    result = next(r for r in run["results"] if r["ruleId"] == "indicator.perf.recovery_time")
    assert result["level"] == "warning" and "Observed: 41 s" in result["message"]["text"]


def test_not_assessed_checks_are_notifications_not_results() -> None:
    result = rf.realistic_result()
    run = render(result)["runs"][0]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    by_id = {n["descriptor"]["id"]: n for n in notes if "descriptor" in n}
    untested = {f.id for f in result.all_findings() if not f.assessed}
    assert set(by_id) == untested == {"access.login.limit", "access.tenant.isolation", "access.session.logout"}
    login = by_id["access.login.limit"]
    assert login["level"] == "note" and login["properties"]["notAssessed"] == "safety"
    assert "run with --allow-disruptive" in login["message"]["text"] and login["properties"]["hint"]
    assert by_id["access.session.logout"]["level"] == "warning"        # status error: the request failed
    assert not untested & {r["ruleId"] for r in run["results"]}


def test_verdict_in_run_properties() -> None:
    props = render(rf.realistic_result())["runs"][0]["properties"]
    assert props["verdict"] == "Not fit" and props["verdictReasons"][0].startswith("1 open critical finding")
    assert props["openCounts"]["critical"] == 1 and props["coverage"] == 0.92
    assert props["dimensionCoverage"]["cost"] == 0.0
    low = render(rf.low_coverage_result())["runs"][0]["properties"]
    assert low["verdict"] == "Inconclusive" and low["grade"] is None and low["coverage"] == 0.41
    assert "verdict" not in render(rf.legacy_result())["runs"][0]["properties"]
