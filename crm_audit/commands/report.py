"""``crm-audit report``: re-render reports from a saved AuditResult, offline.

Exit codes: 0 written; 2 usage or input error (bad file, unknown format); 3 a reporter
failed or a file could not be written. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from crm_audit.core import model
from crm_audit.core.errors import CannotRun, UsageError
from crm_audit.core.model import AuditResult
from crm_audit.report.render import ReportError, render_reports


class InputError(UsageError, click.ClickException):
    """A bad result file or option: one line, exit code 2 (click prints it)."""


class RenderError(CannotRun, click.ClickException):
    """A reporter failed or a file could not be written: exit code 3 (click prints it)."""


def load_result(path: str | Path) -> AuditResult:
    """Read a result.json; problems become one-line input errors (exit 2)."""
    try:
        return model.load_result(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None


@click.command("report")
@click.argument("result_file", metavar="RESULT.json")
@click.option("--format", "-f", "formats", default="html", show_default=True, metavar="LIST",
              help="Comma-separated report formats, or 'all' (see `crm-audit plugins`).")
@click.option("--out", "-o", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="Folder to write into; existing reports there are replaced atomically.")
def report(result_file: str, formats: str, out: Path) -> None:
    """Render reports from RESULT.json without contacting the target."""
    from crm_audit.core.plugins import make_plugin_manager

    result = load_result(result_file)
    registry = make_plugin_manager()
    for warning in registry.warnings:
        click.echo(f"crm-audit: warning: {warning}", err=True)
    try:
        paths = render_reports(result, registry.reporters, out, formats)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    except ReportError as exc:
        raise RenderError(str(exc)) from None
    for path in paths:
        click.echo(str(path))


COMMANDS = [report]
