"""Reading CRM records as adapters return them: empty values, ISO-8601 times, the audit's own records.

Records follow the adapter's data conventions (docs/plugins.md, "Adapters"): JSON-like dicts,
ISO-8601 date strings, ``None`` for an empty value. Probes that judge record contents (data
quality, KPIs, anything a plugin adds) read them with these helpers, so they agree on what is
blank, what is a time and which records the audit itself created.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: the prefix of the tag every record an audit creates carries (``crm-audit-<run id>``, ``ProbeContext.tag``)
AUDIT_TAG_PREFIX = "crm-audit-"


def blank(value: Any) -> bool:
    """True for an empty value: ``None`` or a string of only white space."""
    return value is None or (isinstance(value, str) and not value.strip())


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 date or date-time as an aware datetime (UTC when it names no zone); None when blank or unreadable."""
    if blank(value):
        return None
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def is_audit_record(record: dict[str, Any]) -> bool:
    """True for a record some audit created (its ``tags`` hold ``crm-audit-<run id>``): never counted as the CRM's data."""
    tags = record.get("tags")
    return isinstance(tags, list) and any(isinstance(t, str) and t.startswith(AUDIT_TAG_PREFIX) for t in tags)
