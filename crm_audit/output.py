"""Where a run's files go: one new folder per run, every file written atomically."""

from __future__ import annotations

from pathlib import Path

from .model import AuditResult
from .plugins import Registry
from .runner import UsageError

DEFAULT_FORMATS = ("json", "html")


def parse_formats(spec: str | None, registry: Registry) -> list[str]:
    """'html,junit' or 'all' → format names; unknown names are a usage error."""
    if not spec:
        return list(DEFAULT_FORMATS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if names == ["all"]:
        return sorted(registry.reporters)
    unknown = [n for n in names if n not in registry.reporters]
    if unknown:
        raise UsageError(f"unknown format(s) {', '.join(unknown)}; available: all, {', '.join(sorted(registry.reporters))}")
    if "json" not in names:
        names.insert(0, "json")  # the result itself is always kept
    return names


def run_folder(base: Path, run_id: str) -> Path:
    """A new folder for this run; an existing one is never reused (nothing is overwritten)."""
    folder = base / run_id
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def write_reports(result: AuditResult, registry: Registry, folder: Path, formats: list[str]) -> list[Path]:
    """Render each format into the folder, atomically (temp file + rename)."""
    from .report.render import render_reports

    return render_reports(result, registry.reporters, folder, formats)
