"""CRUD over the five record tables, with tenant scoping expressed as an optional filter.

Authorization is not decided here: callers pass ``tenant=None`` only when a flaw switch
says to ignore tenants. Column names come from ``RESOURCES``, never from requests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from crm_audit_demo.db import Database
from crm_audit_demo.resources import RESOURCES, columns
from crm_audit_demo.timefmt import iso, utc_now

MAX_SQLITE_INT = 2**63 - 1


def _to_api(resource: str, row: Mapping[str, Any]) -> dict[str, Any]:
    record = dict(row)
    record["tags"] = json.loads(record.get("tags") or "[]")
    for spec in RESOURCES[resource]:
        if spec.kind == "bool" and record.get(spec.name) is not None:
            record[spec.name] = bool(record[spec.name])
    return {name: record.get(name) for name in columns(resource)}


def _to_db(name: str, value: Any) -> Any:
    if name == "tags":
        return json.dumps(list(value or []))
    if isinstance(value, bool):
        return int(value)
    return value


class RecordStore:
    """Reads and writes records of any resource in ``RESOURCES``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self, resource: str, tenant: str | None, limit: int, offset: int,
             tag: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """One page of records ordered by id, and the total matching count."""
        where, params = [], []
        if tenant is not None:
            where.append("tenant_id = ?")
            params.append(tenant)
        if tag is not None:
            where.append(f"EXISTS (SELECT 1 FROM json_each({resource}.tags) WHERE value = ?)")
            params.append(tag)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self.db.lock:
            total = self.db.query_one(f"SELECT COUNT(*) AS n FROM {resource}{clause}", params)
            rows = self.db.query(
                f"SELECT * FROM {resource}{clause} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset]
            )
        return [_to_api(resource, r) for r in rows], int(total["n"] if total else 0)

    def get(self, resource: str, record_id: int, tenant: str | None) -> dict[str, Any] | None:
        """The record with ``record_id`` (within ``tenant`` unless None), or None."""
        if not 0 < record_id <= MAX_SQLITE_INT:
            return None
        sql, params = f"SELECT * FROM {resource} WHERE id = ?", [record_id]
        if tenant is not None:
            sql += " AND tenant_id = ?"
            params.append(tenant)
        row = self.db.query_one(sql, params)
        return _to_api(resource, row) if row else None

    def exists(self, resource: str, record_id: int, tenant: str) -> bool:
        """True when ``resource`` has a record ``record_id`` in ``tenant``."""
        return self.get(resource, record_id, tenant) is not None

    def create(self, resource: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a record (``values`` holds tenant_id, owner_id, tags and fields); return it."""
        now = iso(utc_now())
        data = {**values, "created_at": now, "updated_at": now}
        names = [n for n in columns(resource) if n != "id" and n in data]
        sql = f"INSERT INTO {resource} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        with self.db.lock:
            cursor = self.db.execute(sql, [_to_db(n, data[n]) for n in names])
            record = self.get(resource, int(cursor.lastrowid or 0), None)
        assert record is not None
        return record

    def update(self, resource: str, record_id: int, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """Set the given columns (and updated_at) on a record; return it, or None if gone."""
        allowed = set(columns(resource)) - {"id", "created_at", "updated_at"}
        data = {k: v for k, v in values.items() if k in allowed}
        data["updated_at"] = iso(utc_now())
        assignments = ", ".join(f"{name} = ?" for name in data)
        with self.db.lock:
            self.db.execute(
                f"UPDATE {resource} SET {assignments} WHERE id = ?",
                [*(_to_db(n, v) for n, v in data.items()), record_id],
            )
            return self.get(resource, record_id, None)

    def delete(self, resource: str, record_id: int) -> None:
        """Delete a record by id."""
        self.db.execute(f"DELETE FROM {resource} WHERE id = ?", [record_id])
