"""The base of the typed records inside an AuditResult (scoring, baseline, waivers, signature).

Each record is a frozen pydantic model that rejects unknown keys, so the JSON Schema generated
from it can fail on a malformed result. Up to schema 1.1 these parts were plain dicts; a record
can still be read like one (``node["score"]``, ``overall.get("grade")``) so that templates and
readers written against those dicts keep working; new code reads attributes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """A frozen, closed record that also answers read-only mapping lookups by field name."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def __getitem__(self, key: str) -> Any:
        """The field ``key``; KeyError when the record has no such field (as a dict would)."""
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when the record has no such field (as a dict would)."""
        return getattr(self, key) if key in type(self).model_fields else default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in type(self).model_fields

    def keys(self) -> list[str]:
        """The field names, in declaration order."""
        return list(type(self).model_fields)

    def items(self) -> Iterator[tuple[str, Any]]:
        """(field name, value) pairs, in declaration order."""
        return ((k, getattr(self, k)) for k in type(self).model_fields)
