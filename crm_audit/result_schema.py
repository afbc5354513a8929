"""The JSON Schema of the AuditResult file, generated from the models and shipped beside them.

``python -m crm_audit.result_schema > crm_audit/schema/audit-result.schema.json`` writes it.
Scoring, baseline, waivers and signature are closed records, and each registered probe's
``artifacts_model`` constrains ``artifacts`` of the results whose ``probe`` is that probe's id
(an empty ``artifacts`` always fits: a skipped or failed probe keeps none). The tests validate
real results against the committed file and fail when it differs from what this generates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from crm_audit.core.model import SCHEMA_VERSION, AuditResult

SCHEMA_FILE = "audit-result.schema.json"
_REF = "#/$defs/{model}"


def registered_artifacts_models() -> dict[str, type[BaseModel]]:
    """Probe id → artifacts model of every probe the installed plugins register (built-ins included)."""
    from crm_audit.core.plugins import make_plugin_manager

    return {pid: cls.artifacts_model for pid, cls in sorted(make_plugin_manager().probes.items())
            if cls.artifacts_model is not None}


def generate_schema(artifacts: Mapping[str, type[BaseModel]] | None = None) -> dict[str, Any]:
    """The schema as the models define it (the serialised form, computed fields included).

    ``artifacts`` maps probe ids to their artifacts models; default: the registered probes'.
    """
    models = dict(registered_artifacts_models() if artifacts is None else artifacts)
    inputs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(AuditResult, "serialization")]
    inputs += [(m, "serialization") for m in models.values()]
    keys, top = models_json_schema(inputs, ref_template=_REF)
    defs: dict[str, Any] = top["$defs"]
    root_name = _def_name(keys[(AuditResult, "serialization")])
    schema: dict[str, Any] = dict(defs.pop(root_name))
    rules = [{"if": {"properties": {"probe": {"const": pid}}, "required": ["probe"]},
              "then": {"properties": {"artifacts": {"anyOf": [keys[(model, "serialization")], {"maxProperties": 0}]}}}}
             for pid, model in models.items()]
    if rules:
        defs["ProbeResult"]["allOf"] = rules
    schema["$defs"] = defs
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://crm-audit.invalid/schema/audit-result-{SCHEMA_VERSION}.json"
    schema["title"] = "crm-audit AuditResult"
    return schema


def _def_name(ref: Mapping[str, str]) -> str:
    return ref["$ref"].rsplit("/", 1)[-1]


def shipped_schema() -> dict[str, Any]:
    """The schema file shipped in the package (tests keep it equal to generate_schema())."""
    schema: dict[str, Any] = json.loads((files("crm_audit") / "schema" / SCHEMA_FILE).read_text(encoding="utf-8"))
    return schema


def render_schema(schema: Mapping[str, Any]) -> str:
    """The schema as the committed file holds it: indented, keys sorted, one final newline."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def validate_result(data: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when a result file does not follow the shipped schema."""
    import jsonschema

    jsonschema.validate(data, shipped_schema())


if __name__ == "__main__":  # python -m crm_audit.result_schema > crm_audit/schema/audit-result.schema.json
    print(render_schema(generate_schema()), end="")
