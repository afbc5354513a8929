"""Render an AuditResult with the chosen reporters and write each file atomically.

Every report is rendered in memory first, so a reporter that fails writes nothing; each
file is then written to a temporary file in the output folder and moved over the old one
with ``os.replace``, so a reader never sees a half-written report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from crm_audit.core.errors import CannotRun
from crm_audit.core.model import AuditResult
from crm_audit.core.probe import Reporter
from crm_audit.fsutil import write_atomic

ReporterSet = Mapping[str, type[Reporter]] | Iterable[type[Reporter]]


class ReportError(CannotRun):
    """A report could not be rendered or written; the message names the format."""


def reporter_map(reporters: ReporterSet) -> dict[str, type[Reporter]]:
    """Reporters by format, from a Registry's mapping or any iterable of Reporter classes."""
    if isinstance(reporters, Mapping):
        return dict(reporters)
    return {cls.format: cls for cls in reporters}


def select_formats(available: Iterable[str], formats: Sequence[str] | str) -> list[str]:
    """The formats asked for, in order and without duplicates; ``all`` means every one.

    Accepts a list or a comma-separated string; raises ValueError naming unknown formats.
    """
    known = sorted(available)
    if isinstance(formats, str):
        formats = [formats]
    wanted: list[str] = []
    for item in formats:
        for name in (part.strip() for part in item.split(",")):
            if not name:
                continue
            for fmt in known if name == "all" else [name]:
                if fmt not in wanted:
                    wanted.append(fmt)
    unknown = [f for f in wanted if f not in known]
    if unknown:
        raise ValueError(f"unknown report format {', '.join(unknown)}; available: {', '.join(known) or 'none'}")
    if not wanted:
        raise ValueError("no report format given")
    return wanted


def render_reports(
    result: AuditResult,
    reporters: ReporterSet,
    out_dir: str | os.PathLike[str],
    formats: Sequence[str] | str,
) -> list[Path]:
    """Render ``formats`` (or ``all``) of result into out_dir; return the written paths.

    Raises ValueError for an unknown format and ReportError when a reporter fails (then no
    file is written) or a file cannot be written (files already written stay complete).
    """
    by_format = reporter_map(reporters)
    chosen = select_formats(by_format, formats)
    rendered: list[tuple[str, str, str | bytes]] = []
    names: dict[str, str] = {}
    for fmt in chosen:
        cls = by_format[fmt]
        filename = cls.filename or f"report.{fmt}"
        if Path(filename).name != filename or filename in (".", ".."):
            raise ReportError(f"{fmt}: reporter filename {filename!r} is not a plain file name")
        if filename in names:
            raise ReportError(f"{fmt}: writes {filename}, as does {names[filename]}")
        names[filename] = fmt
        try:
            rendered.append((fmt, filename, cls().render(result)))
        except Exception as exc:  # noqa: BLE001 - a reporter plugin may raise anything
            raise ReportError(f"{fmt}: {type(exc).__name__}: {exc}") from exc
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from exc
    written = []
    for fmt, filename, data in rendered:
        path = folder / filename
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise ReportError(f"{fmt}: cannot write {path}: {exc}") from exc
        written.append(path)
    return written
