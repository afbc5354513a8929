"""Waivers: accepted risks, written down with who accepted them, why, and until when.

A waived finding stays in the result (``Finding.waiver`` says who and why) but no longer
fails a gate or costs score. A waiver past its ``expires`` date stops waiving and is
reported, so an accepted risk is looked at again instead of being forgotten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # pragma: no cover
    from crm_audit.core.catalogue import Catalogue

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crm_audit.core.ci_model import FindingWaiver, WaiverOutcome, WaiversRecord
from crm_audit.core.errors import InputFileError, first_error
from crm_audit.core.model import AuditResult, Finding, Status
from crm_audit.core.safeyaml import load_file

WAIVABLE = (Status.failed, Status.warn)


class WaiverError(InputFileError):
    """The waivers file cannot be read or is invalid; the message names the file and entry."""


class Waiver(BaseModel):
    """One entry of the waivers file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="finding id or fnmatch pattern, e.g. tls.protocol.*")
    target: str | None = Field(None, description="only for this base URL or host (fnmatch pattern allowed)")
    justification: str = Field(min_length=1)
    by: str = Field(min_length=1)
    expires: dt.date

    @field_validator("justification", "by")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    def matches_target(self, base_url: str) -> bool:
        """True when no target is given, or it matches the base URL, host or host:port."""
        if not self.target:
            return True
        parts = urlsplit(base_url)
        candidates = {base_url.rstrip("/"), parts.hostname or "", parts.netloc}
        return any(fnmatchcase(c, self.target.rstrip("/")) for c in candidates if c)

    def matches(self, finding: Finding) -> bool:
        return fnmatchcase(finding.id, self.id)

    def expired(self, today: dt.date) -> bool:
        """A waiver is valid through its ``expires`` day and expired the day after."""
        return today > self.expires

    def summary(self) -> dict[str, Any]:
        """The entry as the fields of a ``WaiverOutcome`` (expires as an ISO date)."""
        return {"id": self.id, "target": self.target, "by": self.by, "expires": self.expires.isoformat(),
                "justification": self.justification}


def load_waivers(path: str | Path) -> list[Waiver]:
    """Read a waivers YAML file: a list of entries, or a mapping with a ``waivers:`` list."""
    p = Path(path)
    return parse_waivers(load_file(p, "waivers file", WaiverError).data, str(p))


def parse_waivers(data: Any, source: str = "<waivers>") -> list[Waiver]:
    """Validate already-parsed waiver data; errors name the entry index and key."""
    if data is None:
        return []
    if isinstance(data, dict):
        if set(data) - {"waivers"}:
            raise WaiverError(f"{source}: expected a list of waivers or a 'waivers:' key, "
                              f"found key(s) {', '.join(sorted(map(str, set(data) - {'waivers'})))}")
        data = data.get("waivers") or []
    if not isinstance(data, list):
        raise WaiverError(f"{source}: expected a list of waivers")
    out: list[Waiver] = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise WaiverError(f"{source}: waivers[{i}]: expected a mapping with id, justification, by, expires")
        try:
            out.append(Waiver.model_validate(entry))
        except ValidationError as exc:
            raise WaiverError(f"{source}: {first_error(exc, f'waivers[{i}]')}") from None
    return out


def check_waiver_ids(waivers: list[Waiver], catalogue: Catalogue, source: str = "<waivers>") -> None:
    """Every waiver's id names a catalogue check or a finding id under one (patterns: some check's
    ids can match); a typo is a :class:`WaiverError` of one line naming the entry."""
    for i, w in enumerate(waivers):
        if not catalogue.names(w.id):
            raise WaiverError(f"{source}: waivers[{i}].id: {w.id!r} names no check of the catalogue "
                              "(`crm-audit checks` lists them)")


def apply_waivers(result: AuditResult, waivers: list[Waiver], today: dt.date | None = None,
                  warn: Callable[[str], None] = lambda msg: None) -> AuditResult:
    """Mark failed/warning findings that a valid waiver matches; record applied, expired, unmatched.

    Sets ``Finding.waiver`` (a ``FindingWaiver``: justification, by, expires, pattern) on each
    waived finding and ``result.waivers`` (a ``WaiversRecord``: applied, expired, unmatched). Calls ``warn`` once
    per expired or unmatched waiver.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    in_target = [w for w in waivers if w.matches_target(result.target.base_url)]
    hits: dict[int, list[str]] = {i: [] for i in range(len(in_target))}

    def waive(findings: list[Finding]) -> list[Finding]:
        out = []
        for f in findings:
            chosen = None
            if f.status in WAIVABLE:
                for i, w in enumerate(in_target):
                    if w.matches(f):
                        hits[i].append(f.id)
                        if chosen is None and not w.expired(today):
                            chosen = w
            if chosen is not None:
                f = f.model_copy(update={"waiver": FindingWaiver(justification=chosen.justification, by=chosen.by,
                                                                 expires=chosen.expires.isoformat(), pattern=chosen.id)})
            out.append(f)
        return out

    probes = [probe.model_copy(update={"findings": waive(probe.findings)}) for probe in result.probes]
    indicator_findings = waive(result.indicator_findings)
    applied: list[WaiverOutcome] = []
    expired: list[WaiverOutcome] = []
    unmatched: list[WaiverOutcome] = []
    for i, w in enumerate(in_target):
        ids = sorted(set(hits[i]))
        if not ids:
            unmatched.append(WaiverOutcome(**w.summary()))
            warn(f"waiver {w.id!r} (by {w.by}) matches no failed or warning finding; remove it if the issue is fixed")
        elif w.expired(today):
            expired.append(WaiverOutcome(**w.summary(), findings=ids))
            warn(f"waiver {w.id!r} (by {w.by}) expired on {w.expires.isoformat()}; "
                 f"{len(ids)} finding(s) count again: {', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}")
        else:
            applied.append(WaiverOutcome(**w.summary(), findings=ids))
    other_target = [WaiverOutcome(**w.summary(), reason="target does not match") for w in waivers if w not in in_target]
    record = WaiversRecord(applied=applied, expired=expired, unmatched=unmatched + other_target)
    return result.model_copy(update={"probes": probes, "indicator_findings": indicator_findings, "waivers": record})
