"""Reading list answers: a collection's own records, told apart from the lists of choices beside them.

Shared by surface discovery (ids to fill item paths) and the unbounded-collections check (which
arrays a page size should bound).
"""

from __future__ import annotations

import re
from typing import Any

from crm_audit.core.adapter import Operation

#: keys under which list answers usually keep their records
_ITEM_KEYS = ("items", "results", "data", "records", "rows", "objects", "entries", "list")
_PARAM = re.compile(r"\{[^}]+\}")


def main_records(data: Any) -> list[dict[str, Any]]:
    """The records of a list answer: the list itself, a usual key, else the longest list of objects in it."""
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if not isinstance(data, dict):
        return []
    for k in _ITEM_KEYS:
        v = data.get(k)
        if isinstance(v, list) and any(isinstance(d, dict) for d in v):
            return [d for d in v if isinstance(d, dict)]
    best: list[dict[str, Any]] = []
    for arr in record_arrays(data):
        if len(arr) > len(best):
            best = arr
    return best


def collection_stem(op: Operation) -> str:
    """What a collection's own arrays are named after: its resource, its path's last segment or its RPC
    model, singular (``/api/api-settings/`` → ``api_setting``); '' when too short to tell."""
    base = (op.resource or _PARAM.sub("", op.path or "").rstrip("/").rsplit("/", 1)[-1]
            or op.name.rpartition(".")[0]).replace("-", "_").lower()
    stem = base[:-1] if base.endswith("s") else base
    return stem if len(stem) >= 3 else ""


def records_of(op: Operation, data: Any) -> list[dict[str, Any]]:
    """The collection's own records in an answer: the longest array named after it (even an empty one: then
    there are none), else :func:`main_records` when no array is named after it."""
    stem = collection_stem(op)
    named: list[list[Any]] = []
    if stem and isinstance(data, dict):
        for key, value in data.items():
            inner = value.items() if isinstance(value, dict) else [(key, value)]
            named.extend(v for k, v in inner if isinstance(v, list) and stem in str(k).lower())
    if named:
        return [d for d in max(named, key=len) if isinstance(d, dict)]
    return main_records(data)


def record_arrays(data: Any, depth: int = 0) -> list[list[dict[str, Any]]]:
    """Every list of objects in an answer (two levels deep): the arrays a page size should bound."""
    out: list[list[dict[str, Any]]] = []
    if depth > 2:
        return out
    if isinstance(data, list):
        objs = [d for d in data if isinstance(d, dict)]
        if objs:
            out.append(objs)
        return out
    if isinstance(data, dict):
        for v in data.values():
            out.extend(record_arrays(v, depth + 1))
    return out
