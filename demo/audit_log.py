"""Security audit log: who did what, when, from where.

Kept outside the CRM database (in memory plus an append-only JSON-lines file) so that a
restore never rewrites history.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from pathlib import Path
from typing import Any

from crm_audit_demo.timefmt import iso, utc_now

MAX_ENTRIES = 10_000


class AuditLog:
    """Append-only log; each entry is ``{at, actor, action, target, ip}`` plus its tenant."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        if path is not None:
            path.touch(mode=0o600)
        self._entries: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)
        self._lock = threading.Lock()

    def add(self, actor: str, action: str, target: str, ip: str | None, tenant: str | None) -> None:
        """Record one event; ``tenant`` None means not attributable (e.g. unknown username)."""
        entry = {"at": iso(utc_now()), "actor": actor, "action": action, "target": target,
                 "ip": ip, "tenant": tenant}
        with self._lock:
            self._entries.append(entry)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry) + "\n")

    def recent(self, tenant: str, limit: int) -> list[dict[str, Any]]:
        """Newest-first entries of ``tenant`` (and unattributable ones), without the tenant key."""
        with self._lock:
            entries = list(self._entries)
        selected = [e for e in reversed(entries) if e["tenant"] in (tenant, None)][:limit]
        return [{k: e[k] for k in ("at", "actor", "action", "target", "ip")} for e in selected]
