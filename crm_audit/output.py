"""Where a run's files go: one new folder per run, every file written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from crm_audit.core.errors import UsageError
from crm_audit.core.model import AuditResult
from crm_audit.core.plugins import Registry

DEFAULT_FORMATS = ("json", "html")


def parse_formats(spec: str | None, registry: Registry) -> list[str]:
    """'html,junit' or 'all' → format names, json always first; unknown names are a usage error."""
    from crm_audit.report.render import select_formats

    try:
        names = select_formats(registry.reporters, spec or ",".join(DEFAULT_FORMATS))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return ["json"] + [n for n in names if n != "json"]  # the result itself is always kept


def check_output_base(base: Path) -> None:
    """Make sure results can be written before the audit runs (a usage error otherwise)."""
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {base}: cannot create the folder: {exc.strerror or exc}") from None
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"--out {base}: the folder is not writable")


def run_folder(base: Path, run_id: str) -> Path:
    """A new folder for this run; an existing one is never reused (nothing is overwritten)."""
    folder = base / run_id
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def write_reports(result: AuditResult, registry: Registry, folder: Path, formats: list[str]) -> tuple[list[Path], str | None]:
    """Write result.json first, then each other format, atomically; returns (paths, error or None).

    A failing reporter never costs the result itself: the JSON is on disk before any other
    reporter runs, and any report can be re-rendered from it later (`crm-audit report`).
    """
    from crm_audit.report.render import ReportError, render_reports

    paths = render_reports(result, registry.reporters, folder, ["json"])
    others = [f for f in formats if f != "json"]
    try:
        paths += render_reports(result, registry.reporters, folder, others) if others else []
    except ReportError as exc:
        return paths, str(exc)
    return paths, None
