"""The check catalogue: one metadata entry per check id, beside the probe that emits it.

A plugin ships its entries as YAML files in a ``checks/`` folder beside its module and
registers them with one line (``crm_audit_register_checks``, returning :func:`load_checks`
of ``__file__``). Findings carry the check id, or the check id plus ``.`` plus an instance
suffix (check ``access.bola``, finding ``access.bola.contacts``); :meth:`Catalogue.find`
maps a finding id to its check. Reports, SARIF rules, waivers, gates and ``docs/checks.md``
read the catalogue, so title, severity, references and remediation have one home.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crm_audit.core.errors import InputFileError, error_lines, first_error
from crm_audit.core.model import AuditResult, Finding, Severity, Status
from crm_audit.core.safeyaml import load_file

#: what a check may need before it can run (a subset per entry)
Need = Literal["writes", "disruptive", "second_tenant", "second_role", "admin_account", "openapi"]
NEEDS: tuple[str, ...] = ("writes", "disruptive", "second_tenant", "second_role", "admin_account", "openapi")

#: OWASP API Security Top 10 2023 titles, for the reference strings of a finding
OWASP_API_2023: dict[str, str] = {
    "API1": "Broken Object Level Authorization",
    "API2": "Broken Authentication",
    "API3": "Broken Object Property Level Authorization",
    "API4": "Unrestricted Resource Consumption",
    "API5": "Broken Function Level Authorization",
    "API6": "Unrestricted Access to Sensitive Business Flows",
    "API7": "Server Side Request Forgery",
    "API8": "Security Misconfiguration",
    "API9": "Improper Inventory Management",
    "API10": "Unsafe Consumption of APIs",
}

#: how a stack key of ``remediation`` is written in a finding
STACK_NAMES: dict[str, str] = {"apache": "Apache", "django": "Django", "fastapi": "FastAPI", "express": "Express",
                               "postgresql": "PostgreSQL", "sqlite": "SQLite", "rails": "Rails", "spring": "Spring"}

_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_SLUG = re.compile(r"^[a-z][a-z0-9-]*$")
_EMITTED_BY = re.compile(r"^tests/[\w/]+\.py::\w+$")
CORE_CHECKS = Path(__file__).with_name("checks.yaml")


class CatalogueError(InputFileError):
    """A catalogue file or entry is invalid; the message is one line naming the file and YAML line."""


class References(BaseModel):
    """Where a check is described: OWASP API Top 10 2023 codes, CWE numbers, ASVS requirements, links."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    owasp: list[str] = Field(default_factory=list, description="OWASP API Security Top 10 2023 codes: API1 … API10")
    cwe: list[int] = Field(default_factory=list, description="CWE numbers")
    asvs: list[str] = Field(default_factory=list, description="OWASP ASVS 4 requirement numbers, e.g. 8.3.1")
    links: list[str] = Field(default_factory=list, description="further references (URLs, RFCs)")

    @field_validator("owasp")
    @classmethod
    def _owasp_known(cls, v: list[str]) -> list[str]:
        for code in v:
            if code not in OWASP_API_2023:
                raise ValueError(f"{code!r} is not an OWASP API 2023 code (API1 … API10)")
        return v

    @field_validator("asvs")
    @classmethod
    def _asvs_shape(cls, v: list[str]) -> list[str]:
        for req in v:
            if not re.fullmatch(r"\d+\.\d+\.\d+", str(req)):
                raise ValueError(f"{req!r} is not an ASVS requirement number such as 8.3.1")
        return v

    def strings(self) -> list[str]:
        """The references as a finding lists them: "OWASP API1:2023 …", "CWE-639", "ASVS 4.1.1", links."""
        return ([f"OWASP {c}:2023 {OWASP_API_2023[c]}" for c in self.owasp] + [f"CWE-{n}" for n in self.cwe]
                + [f"ASVS {r}" for r in self.asvs] + list(self.links))


class Remediation(BaseModel):
    """What to change: ``generic`` advice, and optional advice per stack (django, nginx, apache …)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    generic: str = Field(min_length=1, description="what to change, whatever the stack")

    @model_validator(mode="after")
    def _stacks_are_text(self) -> Remediation:
        for key, value in (self.model_extra or {}).items():
            if not _SLUG.match(key) or not isinstance(value, str) or not value.strip():
                raise ValueError(f"stack {key!r}: expected a lowercase stack name with non-empty text")
        return self

    @property
    def stacks(self) -> dict[str, str]:
        """Per-stack advice by stack name."""
        return dict(self.model_extra or {})

    def text(self) -> str:
        """Generic advice, then one line per stack ("Apache: …"), as a finding's remediation."""
        return "\n".join([self.generic.strip()] + [f"{STACK_NAMES.get(k, k)}: {v.strip()}"
                                                   for k, v in self.stacks.items()])


class CheckSpec(BaseModel):
    """One check's metadata entry (docs/checks.md lists them all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(description="check id; a finding's id is this or this plus '.' plus an instance suffix")
    title: str = Field(min_length=1, description="generic title; a finding's own title may be more specific")
    severity: Severity = Field(description="default severity of a failed outcome")
    severity_varies: str | None = Field(None, description="by what the probe grades the severity (it then wins)")
    category: str = Field(description="access-control, authentication, transport, backup, performance …")
    indicator: str | None = Field(None, description="the hierarchy indicator its outcomes feed")
    references: References = Field(default_factory=References, description="OWASP API 2023, CWE, ASVS, links")
    remediation: Remediation = Field(description="generic advice and advice per stack")
    needs: list[Need] = Field(default_factory=list, description="what it needs to run at all")
    emitted_by: str | None = Field(None, description="tests/<file>.py::<test> that emits it, when the demo cannot")
    #: the file the entry came from (set by the loader, not written in YAML)
    source: str | None = Field(None, exclude=True)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"{v!r} is not a check id such as access.bola (lowercase, dotted, probe first)")
        return v

    @field_validator("category")
    @classmethod
    def _category_shape(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"{v!r} is not a category such as access-control (lowercase, hyphenated)")
        return v

    @field_validator("emitted_by")
    @classmethod
    def _emitted_by_shape(cls, v: str | None) -> str | None:
        if v is not None and not _EMITTED_BY.match(v):
            raise ValueError(f"{v!r} is not tests/<file>.py::<test>")
        return v

    @property
    def probe(self) -> str:
        """The probe (or core part) the check belongs to: the first part of its id."""
        return self.id.split(".", 1)[0]


def load_checks(where: str | Path) -> list[CheckSpec]:
    """Every entry of ``checks/*.yaml`` beside a plugin module (pass ``__file__``) or in a folder.

    A file path reads its ``checks/`` sibling folder; a folder is read as it is, or its
    ``checks/`` sub-folder when it has one; a single ``.yaml`` file is read alone. Raises
    :class:`CatalogueError` with one line naming the file and YAML line.
    """
    p = Path(where)
    if p.is_file() and p.suffix in (".yaml", ".yml"):
        files = [p]
    else:
        folder = p.parent / "checks" if p.is_file() else (p / "checks" if (p / "checks").is_dir() else p)
        files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    out: list[CheckSpec] = []
    for f in files:
        out += _read_file(f)
    _no_duplicates(out)
    return out


def _read_file(path: Path) -> list[CheckSpec]:
    loaded = load_file(path, "check catalogue", CatalogueError)
    data = loaded.data
    if data is None:
        return []
    if not isinstance(data, list):
        raise CatalogueError(f"{path}:1: expected a YAML list of check entries")
    out: list[CheckSpec] = []
    for i, entry in enumerate(data):
        line = loaded.lines.get((i,), 1)
        if not isinstance(entry, dict):
            raise CatalogueError(f"{path}:{line}: entry {i + 1}: expected a mapping with id, title, severity …")
        name = entry.get("id", f"entry {i + 1}")
        try:
            spec = CheckSpec.model_validate({**entry, "source": None})
        except ValidationError as exc:
            loc = error_lines(exc)[0][0]
            where = loaded.lines.get((i, *loc)) or loaded.lines.get((i, *loc[:1])) or line
            raise CatalogueError(f"{path}:{where}: {name}: {first_error(exc) if loc else first_error(exc, 'entry')}") from None
        out.append(spec.model_copy(update={"source": f"{path}:{line}"}))
    return out


def _no_duplicates(specs: Iterable[CheckSpec]) -> None:
    seen: dict[str, CheckSpec] = {}
    for spec in specs:
        if spec.id in seen:
            raise CatalogueError(f"{spec.source}: check id {spec.id!r} is defined twice (first at {seen[spec.id].source})")
        seen[spec.id] = spec


@dataclass(frozen=True)
class Catalogue:
    """Every known check by id; :meth:`find` maps a finding id to its check."""

    #: every check by its id, sorted by id
    checks: dict[str, CheckSpec] = field(default_factory=dict)

    @classmethod
    def of(cls, specs: Iterable[CheckSpec]) -> Catalogue:
        """A catalogue of ``specs``; a duplicate id is a :class:`CatalogueError`."""
        specs = list(specs)
        _no_duplicates(specs)
        return cls({s.id: s for s in sorted(specs, key=lambda s: s.id)})

    def __len__(self) -> int:
        return len(self.checks)

    def __iter__(self) -> Iterator[CheckSpec]:
        return iter(self.checks.values())

    def find(self, finding_id: str) -> CheckSpec | None:
        """The check of a finding id: the exact id, else the longest catalogue id that is a dotted prefix."""
        parts = finding_id.split(".")
        for n in range(len(parts), 0, -1):
            spec = self.checks.get(".".join(parts[:n]))
            if spec is not None:
                return spec
        return None

    def names(self, pattern: str) -> bool:
        """True when ``pattern`` (a waiver id, perhaps with fnmatch wildcards) can name a finding of some check.

        Without wildcards it must be a check id or a finding id under one; with them, the text
        before the first wildcard must start a check id or lie under one (``tls.protocol.*``,
        ``access.bola.*``, ``*``).
        """
        if not any(c in pattern for c in "*?["):
            return self.find(pattern) is not None
        prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        return any(cid.startswith(prefix) or prefix.startswith(cid + ".") for cid in self.checks)


@functools.lru_cache(maxsize=1)
def core_checks() -> tuple[CheckSpec, ...]:
    """The core's own checks (``crm_audit/core/checks.yaml``): findings drawn from the scoring."""
    return tuple(load_checks(CORE_CHECKS))


def check_drawn(result: AuditResult) -> AuditResult:
    """``result`` with its findings drawn from the scoring given their core check (``indicator``), as the
    audit gives them; for re-scoring, which draws them again (probe findings are left as they are)."""
    core = Catalogue.of(core_checks())
    return result.model_copy(update={"indicator_findings": [apply_check(f, core) for f in result.indicator_findings]})


def collect_catalogue(hook: Callable[[], list[list[CheckSpec]]]) -> Catalogue:
    """The core's checks plus every plugin's (``crm_audit_register_checks``); duplicates are an error."""
    specs = list(core_checks())
    for batch in hook() or []:
        for spec in batch or []:
            if not isinstance(spec, CheckSpec):
                raise CatalogueError(f"crm_audit_register_checks returned {type(spec).__name__}, not CheckSpec")
            specs.append(spec)
    return Catalogue.of(specs)


def registry_catalogue(registry: Any) -> Catalogue:
    """The catalogue of a plugin registry (cached on it: plugins register their checks once).

    A broken entry or a duplicate id is a :class:`crm_audit.core.plugins.PluginError`
    (one line naming the file and YAML line).
    """
    cached = getattr(registry, "_catalogue", None)
    if cached is None:
        from crm_audit.core.plugins import PluginError

        try:
            cached = collect_catalogue(registry.hook.crm_audit_register_checks)
        except CatalogueError as exc:
            raise PluginError(f"check catalogue: {exc}") from None
        object.__setattr__(registry, "_catalogue", cached)
    return cached


def apply_check(finding: Finding, catalogue: Catalogue) -> Finding:
    """The finding with its check id, and what the probe left empty filled from the catalogue.

    Title and references fill in when the probe gave none, remediation too on a failed or
    warning outcome; the catalogue's severity wins on every outcome but a pass unless the
    entry says ``severity_varies`` (then the probe grades it). A finding whose id no entry
    covers is returned unchanged.
    """
    spec = catalogue.find(finding.id)
    if spec is None:
        return finding
    update: dict[str, Any] = {"check": spec.id}
    if not finding.title:
        update["title"] = spec.title
    if not finding.remediation and finding.status in (Status.failed, Status.warn):
        update["remediation"] = spec.remediation.text()
    if not finding.references:
        update["references"] = spec.references.strings()
    if spec.severity_varies is None and finding.status is not Status.passed:
        update["severity"] = spec.severity
    if not finding.indicator and spec.indicator:
        update["indicator"] = spec.indicator
    return finding.model_copy(update=update)


def apply_catalogue(result: AuditResult, catalogue: Catalogue) -> AuditResult:
    """Every finding of ``result`` with its check; finding ids without an entry become a result warning
    (one per probe, naming the ids)."""
    missing: set[str] = set()

    def fill(findings: list[Finding]) -> list[Finding]:
        out = []
        for f in findings:
            g = apply_check(f, catalogue)
            if g.check is None:
                missing.add(f.id)
            out.append(g)
        return out

    probes = [p.model_copy(update={"findings": fill(list(p.findings))}) for p in result.probes]
    drawn = fill(list(result.indicator_findings))
    warnings = list(result.warnings)
    by_probe: dict[str, list[str]] = {}
    for fid in sorted(missing):
        by_probe.setdefault(fid.split(".", 1)[0], []).append(fid)
    for probe, ids in sorted(by_probe.items()):
        more = f" (+{len(ids) - 8} more)" if len(ids) > 8 else ""
        line = (f"{len(ids)} finding id(s) of {probe} have no check catalogue entry (docs/checks.md; its plugin "
                f"should add them): {', '.join(ids[:8])}{more}")
        if line not in warnings:
            warnings.append(line)
    return result.model_copy(update={"probes": probes, "indicator_findings": drawn, "warnings": warnings})
