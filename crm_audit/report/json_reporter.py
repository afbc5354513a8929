"""JSON reporter: the AuditResult itself, so any other report can be re-rendered from it."""

from __future__ import annotations

from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import AuditResult
from crm_audit.core.probe import Reporter


class JsonReporter(Reporter):
    """Writes ``result.json``: the versioned AuditResult, validated by its JSON Schema."""

    format = "json"
    filename = "result.json"
    description = "The AuditResult as JSON (the source every other report can be rebuilt from)"
    version = "1.0.0"

    def render(self, result: AuditResult) -> str:
        return result.model_dump_json(indent=2) + "\n"


@hookimpl
def crm_audit_register_reporters() -> list[type[Reporter]]:
    return [JsonReporter]
