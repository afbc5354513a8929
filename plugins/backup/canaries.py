"""Canary records: tagged records written before a backup, changed after it, checked after restore.

Every canary carries the run's tag, is remembered from the moment it exists, and is deleted
again by :meth:`CanarySet.cleanup` (idempotent, thread-safe; also registered with
``ctx.defer`` so the runner runs it on Ctrl-C, error or timeout). A record is only deleted
after re-reading it and seeing it is still ours: after a restore, an id may belong to
someone else's record.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Literal

from crm_audit.core.adapter import Adapter, IncompleteRead
from crm_audit.core.probe import ProbeContext

Phase = Literal["before_backup", "after_backup"]


@dataclass
class Canary:
    """One canary record and what the drill did with it."""

    id: Any
    phase: Phase
    created: dict[str, Any]
    action: Literal["keep", "modify", "delete"] = "keep"
    at_backup: dict[str, Any] | None = None
    modified_to: dict[str, Any] | None = None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts/lists as {dotted.path: leaf}; lists keep their order."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list):
        if not value:
            out[prefix] = []
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix] = value
    return out


def fill_from(template: Any, values: dict[str, Any]) -> Any:
    """Fill ``{dotted.path}`` placeholders from a flattened record (e.g. ``{contact_obj.email}``)."""
    if isinstance(template, str):
        for key, value in values.items():
            token = "{" + str(key) + "}"
            if token in template:
                template = template.replace(token, "" if value is None else str(value))
        return template
    if isinstance(template, dict):
        return {k: fill_from(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill_from(v, values) for v in template]
    return template


def differences(expected: dict[str, Any], observed: dict[str, Any], volatile: set[str]) -> list[dict[str, Any]]:
    """Fields whose values differ (missing counts as different), ignoring volatile ones."""
    a, b = flatten(expected), flatten(observed)
    out = []
    for key in sorted(set(a) | set(b)):
        parts = key.split(".")
        if key in volatile or any(p in volatile for p in parts):
            continue
        if a.get(key, "<missing>") != b.get(key, "<missing>"):
            out.append({"field": key, "expected": a.get(key, "<missing>"), "observed": b.get(key, "<missing>")})
    return out


class CanarySet:
    """The drill's canaries in one adapter resource, written and cleaned up as one account."""

    def __init__(self, ctx: ProbeContext, resource: str, account: str | None, volatile: list[str],
                 update_body: dict[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.update_body = update_body
        if ctx.adapter is None:  # the runner always builds one; without it no canary could be written or read
            raise RuntimeError("the backup drill's canaries need an adapter (adapter: in the profile)")
        self.adapter: Adapter = ctx.adapter
        self.resource = resource
        self.account = account
        self.volatile = set(volatile)
        self.items: list[Canary] = []
        self.create_errors: list[str] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------ reading
    def read(self, record_id: Any) -> tuple[dict[str, Any] | None, int | None]:
        """The record (None when gone) and the HTTP status; logs in again once on 401."""
        rec, ex = self.adapter.read(self.resource, record_id, self.account)
        if ex.status == 401 and self.account:
            self.ctx.target.forget_token(self.account)
            rec, ex = self.adapter.read(self.resource, record_id, self.account)
        return (rec if ex.ok else None), ex.status

    def is_ours(self, record: dict[str, Any], canary: Canary) -> bool:
        """Still our canary: carries the run tag, or matches what we created field by field."""
        if self.ctx.tag in json.dumps(record, default=str):
            return True
        return not differences(canary.created, record, self.volatile | {"updated_at"})

    # ------------------------------------------------------------ writing
    def create(self, n: int, phase: Phase) -> list[Canary]:
        """Create ``n`` tagged records; each is remembered before anything else can fail."""
        made = []
        for _ in range(n):
            self.ctx.check_cancelled()
            rec, ex = self.adapter.create(self.resource, self.account, self.ctx.tag)
            rid = self.adapter.record_id(rec) if rec else None
            known = {c.id for c in self.items}
            if ex.ok and (rid is None or rid in known):
                rid = self._find_new(known)  # the CRM did not return the record, or the adapter guessed wrong
            if rid is None:
                self.create_errors.append(f"create {self.resource}: {ex.error or f'HTTP {ex.status}'}")
                if ex.ok:  # created but not found: the sweep in cleanup() still finds it by tag
                    continue
                break
            canary = Canary(id=rid, phase=phase, created={})
            with self._lock:
                self.items.append(canary)
            full, _ = self.read(rid)
            canary.created = full or rec or {}
            made.append(canary)
        return made

    def _find_new(self, known: set[Any], cap: int = 1000) -> Any:
        """Id of the tagged record that is not yet a known canary (list filtered by tag when possible)."""
        if self.adapter.supports_tag_filter(self.resource):
            items, _ = self.adapter.list(self.resource, self.account, limit=200, tag=self.ctx.tag)
        else:
            try:
                items = list(self.adapter.iterate(self.resource, self.account, max_records=cap, page_size=100))
            except IncompleteRead:
                return None
        fresh = [i for i in items if self.ctx.tag in json.dumps(i, default=str)
                 and self.adapter.record_id(i) not in known]
        return self.adapter.record_id(fresh[0]) if len(fresh) == 1 else None

    def snapshot(self) -> None:
        """Read every canary as it is right before the backup: what a restore must bring back."""
        for c in self.items:
            rec, _ = self.read(c.id)
            c.at_backup = rec

    def values(self) -> list[str]:
        """Distinctive string values of the canaries (for searching backup files)."""
        out: list[str] = []
        for c in self.items:
            for v in flatten(c.at_backup or c.created).values():
                if isinstance(v, str) and self.ctx.tag in v and v not in out:
                    out.append(v)
        return out or [self.ctx.tag]

    def modify(self, canary: Canary) -> str | None:
        """Update a canary with the adapter's update body; None when it took effect, else why not."""
        body = None
        if self.update_body is not None:
            values = {**flatten(canary.at_backup or canary.created), "id": canary.id, "tag": self.ctx.tag}
            body = fill_from(self.update_body, values)
        rec, ex = self.adapter.update(self.resource, canary.id, self.account, body)
        if not ex.ok:
            return f"update {canary.id}: HTTP {ex.status or ex.error}"
        after, _ = self.read(canary.id)
        if after is None or not differences(canary.at_backup or {}, after, self.volatile):
            return f"update {canary.id} changed nothing visible"
        canary.action, canary.modified_to = "modify", after
        return None

    def delete(self, canary: Canary) -> str | None:
        ex = self.adapter.delete(self.resource, canary.id, self.account)
        if not ex.ok:
            return f"delete {canary.id}: HTTP {ex.status or ex.error}"
        canary.action = "delete"
        return None

    # ------------------------------------------------------------ checking
    def verify(self) -> dict[str, Any]:
        """After a restore: every before-backup canary exactly as at backup; after-backup ones noted.

        A read without a real answer (no answer, 5xx) proves nothing: that canary is ``unreadable``.
        """
        verified: list[Any] = []
        lost: list[Any] = []
        survived: list[Any] = []
        missing: list[dict[str, Any]] = []
        mismatched: list[dict[str, Any]] = []
        unreadable: list[dict[str, Any]] = []
        for c in self.items:
            rec, status = self.read(c.id)
            if rec is None and (status is None or status >= 500):
                unreadable.append({"id": c.id, "phase": c.phase, "status": status})
                continue
            if c.phase == "after_backup":
                (survived if rec is not None and self.is_ours(rec, c) else lost).append(c.id)
                continue
            if rec is None:
                missing.append({"id": c.id, "action": c.action, "status": status})
                continue
            diffs = differences(c.at_backup or {}, rec, self.volatile)
            if diffs:
                mismatched.append({"id": c.id, "action": c.action, "differences": diffs[:10]})
            else:
                verified.append(c.id)
        return {"verified": verified, "missing": missing, "mismatched": mismatched,
                "lost_after_backup": lost, "survived_after_backup": survived, "unreadable": unreadable}

    # ------------------------------------------------------------ cleanup
    def cleanup(self) -> dict[str, Any]:
        """Delete every canary still present (only if still ours) and sweep tagged leftovers.

        Safe to call again: a restore finishing after an interruption can bring canaries back,
        and a second call removes those too.
        """
        with self._lock:
            deleted, gone, not_ours, failed = [], [], [], []
            for c in list(self.items):
                try:
                    rec, _ = self.read(c.id)
                    if rec is None:
                        gone.append(c.id)
                    elif not self.is_ours(rec, c):
                        not_ours.append(c.id)
                    elif self.adapter.delete(self.resource, c.id, self.account).ok:
                        deleted.append(c.id)
                    else:
                        failed.append(c.id)
                except Exception as exc:  # noqa: BLE001 - keep cleaning the others
                    failed.append(f"{c.id}: {type(exc).__name__}")
            swept, left = self._sweep()
            report = {"resource": self.resource, "deleted": deleted + swept, "already_gone": gone,
                      "skipped_not_ours": not_ours, "failed": failed, "left": left,
                      "state": "clean" if not failed and not left else "canaries left behind"}
            return report

    def _sweep(self) -> tuple[list[Any], list[Any]]:
        """Delete tagged records the CRM can list by tag; return (deleted, still present)."""
        if not self.adapter.supports_tag_filter(self.resource):
            return [], []
        deleted: list[Any] = []
        items, ex = self.adapter.list(self.resource, self.account, limit=200, tag=self.ctx.tag)
        for item in items if ex.ok else []:
            rid = self.adapter.record_id(item)
            if self.ctx.tag in json.dumps(item, default=str) and self.adapter.delete(self.resource, rid, self.account).ok:
                deleted.append(rid)
        items, ex = self.adapter.list(self.resource, self.account, limit=200, tag=self.ctx.tag)
        left = [self.adapter.record_id(i) for i in items if self.ctx.tag in json.dumps(i, default=str)] if ex.ok else []
        return deleted, left
