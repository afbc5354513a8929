"""The five CRM record types: their fields, enums and references, in one table.

Schema, validation models and routes are all derived from ``RESOURCES`` so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldSpec:
    """One writable field of a record type."""

    name: str
    kind: str  # "str" | "int" | "float" | "bool" | "datetime"
    required: bool = False
    choices: tuple[str, ...] | None = None
    ref: str | None = None  # resource whose id this field holds (same tenant)


RESOURCES: dict[str, tuple[FieldSpec, ...]] = {
    "contacts": (
        FieldSpec("first_name", "str", required=True),
        FieldSpec("last_name", "str", required=True),
        FieldSpec("email", "str"),
        FieldSpec("phone", "str"),
        FieldSpec("account_id", "int", ref="accounts"),
    ),
    "accounts": (
        FieldSpec("name", "str", required=True),
        FieldSpec("industry", "str"),
        FieldSpec("website", "str"),
        FieldSpec("churned", "bool"),
        FieldSpec("churned_at", "datetime"),
    ),
    "leads": (
        FieldSpec("title", "str", required=True),
        FieldSpec("email", "str"),
        FieldSpec("status", "str", choices=("new", "qualified", "converted", "lost")),
        FieldSpec("source", "str"),
        FieldSpec("converted_opportunity_id", "int", ref="opportunities"),
    ),
    "opportunities": (
        FieldSpec("name", "str", required=True),
        FieldSpec("account_id", "int", ref="accounts"),
        FieldSpec("lead_id", "int", ref="leads"),
        FieldSpec(
            "stage", "str", choices=("prospecting", "qualification", "proposal", "won", "lost")
        ),
        FieldSpec("amount", "float"),
    ),
    "cases": (
        FieldSpec("subject", "str", required=True),
        FieldSpec("contact_id", "int", ref="contacts"),
        FieldSpec("account_id", "int", ref="accounts"),
        FieldSpec("status", "str", choices=("new", "open", "resolved", "closed")),
        FieldSpec("priority", "str", choices=("low", "normal", "high", "urgent")),
        FieldSpec("type", "str", choices=("question", "problem", "complaint")),
        FieldSpec("first_response_at", "datetime"),
        FieldSpec("resolved_at", "datetime"),
        FieldSpec("repeat_of", "int", ref="cases"),
    ),
}

# Defaults applied on create/PUT when a field is absent (others default to null).
DEFAULTS: dict[str, dict[str, object]] = {
    "accounts": {"churned": False},
    "leads": {"status": "new"},
    "opportunities": {"stage": "prospecting"},
    "cases": {"status": "new", "priority": "normal", "type": "question"},
}

COMMON_COLUMNS: tuple[str, ...] = ("id", "tenant_id", "owner_id", "created_at", "updated_at", "tags")

_SQL_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "REAL", "bool": "INTEGER", "datetime": "TEXT"}


def columns(resource: str) -> list[str]:
    """All column names of ``resource`` in API order."""
    return [*COMMON_COLUMNS, *(f.name for f in RESOURCES[resource])]


def schema_sql() -> str:
    """DDL for the record tables (users, tenants and API keys live in ``db.py``)."""
    parts = []
    for name, fields in RESOURCES.items():
        cols = ",\n  ".join(f"{f.name} {_SQL_TYPES[f.kind]}" for f in fields)
        parts.append(
            f"CREATE TABLE {name} (\n"
            "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
            "  tenant_id TEXT NOT NULL,\n"
            "  owner_id INTEGER,\n"
            "  created_at TEXT NOT NULL,\n"
            "  updated_at TEXT NOT NULL,\n"
            "  tags TEXT NOT NULL DEFAULT '[]',\n"
            f"  {cols}\n);\n"
            f"CREATE INDEX {name}_tenant ON {name}(tenant_id, id);\n"
        )
    return "".join(parts)
