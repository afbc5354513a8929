"""The JSON Schema of the AuditResult file, generated from the model and shipped beside it."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from crm_audit.core.model import SCHEMA_VERSION, AuditResult

SCHEMA_FILE = "audit-result.schema.json"


def generate_schema() -> dict[str, Any]:
    """The schema as the model defines it (the serialised form, computed fields included)."""
    schema = AuditResult.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://crm-audit.invalid/schema/audit-result-{SCHEMA_VERSION}.json"
    schema["title"] = "crm-audit AuditResult"
    return schema


def shipped_schema() -> dict[str, Any]:
    """The schema file shipped in the package (tests keep it equal to generate_schema())."""
    return json.loads((files("crm_audit") / "schema" / SCHEMA_FILE).read_text(encoding="utf-8"))


def validate_result(data: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when a result file does not follow the schema."""
    import jsonschema

    jsonschema.validate(data, shipped_schema())


if __name__ == "__main__":  # python -m crm_audit.result_schema > crm_audit/schema/audit-result.schema.json
    print(json.dumps(generate_schema(), indent=2, sort_keys=True))
