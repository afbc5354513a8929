"""Waivers: accepted risks, written down with who accepted them, why, and until when.

A waived finding stays in the result (``Finding.waiver`` says who and why) but no longer
fails a gate or costs score. A waiver past its ``expires`` date stops waiving and is
reported, so an accepted risk is looked at again instead of being forgotten.
"""

from __future__ import annotations

import datetime as dt
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crm_audit.core.model import AuditResult, Finding, Status
from crm_audit.core.safeyaml import YamlError, load_yaml

WAIVABLE = (Status.failed, Status.warn)


class WaiverError(ValueError):
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
        return {"id": self.id, "target": self.target, "by": self.by, "expires": self.expires.isoformat(),
                "justification": self.justification}


def load_waivers(path: str | Path) -> list[Waiver]:
    """Read a waivers YAML file: a list of entries, or a mapping with a ``waivers:`` list."""
    p = Path(path)
    try:
        data = load_yaml(p.read_text(encoding="utf-8")).data
    except UnicodeDecodeError:
        raise WaiverError(f"{p}: not UTF-8 text") from None
    except OSError as exc:
        raise WaiverError(f"{p}: cannot read waivers file: {exc.strerror or exc}") from None
    except YamlError as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise WaiverError(f"{p}: invalid YAML{where}: {exc.problem}") from None
    return parse_waivers(data, str(p))


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
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"]) or "entry"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            raise WaiverError(f"{source}: waivers[{i}].{loc}: {msg}") from None
    return out


def apply_waivers(result: AuditResult, waivers: list[Waiver], today: dt.date | None = None,
                  warn: Callable[[str], None] = lambda msg: None) -> AuditResult:
    """Mark failed/warning findings that a valid waiver matches; record applied, expired, unmatched.

    Sets ``Finding.waiver`` = {"justification", "by", "expires", "pattern"} on each waived
    finding and ``result.waivers`` = {"applied", "expired", "unmatched"}. Calls ``warn`` once
    per expired or unmatched waiver.
    """
    today = today or dt.datetime.now(dt.timezone.utc).date()
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
                f = f.model_copy(update={"waiver": {"justification": chosen.justification, "by": chosen.by,
                                                    "expires": chosen.expires.isoformat(), "pattern": chosen.id}})
            out.append(f)
        return out

    probes = [probe.model_copy(update={"findings": waive(probe.findings)}) for probe in result.probes]
    indicator_findings = waive(result.indicator_findings)
    applied, expired, unmatched = [], [], []
    for i, w in enumerate(in_target):
        ids = sorted(set(hits[i]))
        if not ids:
            unmatched.append(w.summary())
            warn(f"waiver {w.id!r} (by {w.by}) matches no failed or warning finding; remove it if the issue is fixed")
        elif w.expired(today):
            expired.append({**w.summary(), "findings": ids})
            warn(f"waiver {w.id!r} (by {w.by}) expired on {w.expires.isoformat()}; "
                 f"{len(ids)} finding(s) count again: {', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}")
        else:
            applied.append({**w.summary(), "findings": ids})
    other_target = [{**w.summary(), "reason": "target does not match"} for w in waivers if w not in in_target]
    record = {"applied": applied, "expired": expired, "unmatched": unmatched + other_target}
    return result.model_copy(update={"probes": probes, "indicator_findings": indicator_findings, "waivers": record})
