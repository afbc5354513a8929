"""SARIF reporter: validates against the official SARIF 2.1.0 schema; security findings only."""

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


@pytest.mark.parametrize("make", [rf.realistic_result, rf.hostile_result, rf.unscored_result])
def test_sarif_validates(validator: jsonschema.protocols.Validator, make: Any) -> None:
    log = render(make())
    errors = list(validator.iter_errors(log))
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1


def test_only_open_or_waived_security_findings() -> None:
    run = render(rf.realistic_result())["runs"][0]
    ids = [r["ruleId"] for r in run["results"]]
    assert set(ids) == {"access.bola.contacts", "backup.endpoint.unauthenticated", "tls.protocol.tls1_0_enabled",
                        "hardening.error.stack_trace", "tls.hsts.missing", "hardening.headers.csp_missing"}
    assert "flows.lead_to_deal.slow_step" not in ids   # not a security finding
    assert "tls.certificate.valid" not in ids          # passed


def test_rules_levels_and_suppressions() -> None:
    run = render(rf.realistic_result())["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    by_id = {r["id"]: r for r in rules}
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
    assert by_id["access.bola.contacts"]["help"]["text"].startswith("Check object ownership")
    assert by_id["access.bola.contacts"]["helpUri"].startswith("https://owasp.org/")
    assert by_id["access.bola.contacts"]["properties"]["security-severity"] == "9.5"
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"access.bola.contacts": "error", "backup.endpoint.unauthenticated": "error",
                      "tls.protocol.tls1_0_enabled": "error", "hardening.error.stack_trace": "warning",
                      "tls.hsts.missing": "warning", "hardening.headers.csp_missing": "note"}
    waived = next(r for r in run["results"] if r["ruleId"] == "hardening.headers.csp_missing")
    assert waived["suppressions"] == [{"kind": "external", "status": "accepted",
                                       "justification": "API only; no browser UI served from this host"}]
    bola = next(r for r in run["results"] if r["ruleId"] == "access.bola.contacts")
    assert bola["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "https://crm.example.test/api/contacts/4711/"
    notes = run["invocations"][0].get("toolExecutionNotifications", [])
    assert any("access.login.limit" in n["message"]["text"] for n in notes)
    assert run["invocations"][0]["startTimeUtc"] == "2025-03-14T09:00:00.000000Z"
