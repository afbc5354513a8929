"""JSON reporter: the AuditResult validates against its JSON Schema and loads back unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import report_fixtures as rf  # noqa: E402

from crm_audit.commands.report import load_result  # noqa: E402
from crm_audit.core.model import AuditResult  # noqa: E402
from crm_audit.report.json_reporter import JsonReporter  # noqa: E402

SCHEMA_FILE = Path(__file__).parent.parent / "crm_audit" / "schema" / "audit-result.schema.json"


def result_schema() -> dict[str, Any]:
    """The shipped schema; generated from the model (serialised form) when not written yet."""
    if SCHEMA_FILE.exists():
        return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return AuditResult.model_json_schema(mode="serialization")


RESULTS = {"realistic": rf.realistic_result, "hostile": rf.hostile_result, "unscored": rf.unscored_result}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_json_validates_against_the_result_schema(name: str) -> None:
    schema = result_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    data = json.loads(JsonReporter().render(RESULTS[name]()))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_json_loads_back_to_the_same_result(name: str, tmp_path: Path) -> None:
    result = RESULTS[name]()
    path = tmp_path / JsonReporter.filename
    path.write_text(JsonReporter().render(result), encoding="utf-8")
    assert load_result(path) == result


def test_json_is_indented_and_versioned() -> None:
    text = JsonReporter().render(rf.realistic_result())
    assert text.startswith('{\n  "schema_version": "1.1"')
    assert text.endswith("}\n")
