"""render_reports and the `report` command: plugin discovery, formats, atomic files."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
import report_fixtures as rf  # noqa: E402

from crm_audit.commands import COMMANDS  # noqa: E402
from crm_audit.commands.report import report  # noqa: E402
from crm_audit.core.plugins import make_plugin_manager  # noqa: E402
from crm_audit.core.probe import Reporter  # noqa: E402
from crm_audit.report import (  # noqa: E402
    csv_reporter,
    html_reporter,
    json_reporter,
    junit_reporter,
    markdown_reporter,
    sarif_reporter,
)
from crm_audit.report.render import ReportError, render_reports, select_formats  # noqa: E402

MODULES = [json_reporter, html_reporter, junit_reporter, markdown_reporter, sarif_reporter, csv_reporter]
FILES = {"csv": "indicators.csv", "html": "report.html", "json": "result.json", "junit": "junit.xml",
         "markdown": "summary.md", "sarif": "results.sarif"}


@pytest.fixture()
def reporters() -> dict[str, type[Reporter]]:
    """The reporters as the plugin manager collects them from the modules' hooks."""
    return make_plugin_manager(extra_plugins=MODULES, entry_points=False).reporters


def test_every_module_registers_its_reporter(reporters: dict[str, type[Reporter]]) -> None:
    assert {fmt: cls.filename for fmt, cls in reporters.items()} == FILES
    assert all(cls.description and cls.version for cls in reporters.values())


def test_installed_entry_points_provide_every_format() -> None:
    registry = make_plugin_manager()
    assert set(FILES) <= set(registry.reporters), registry.warnings


def test_all_formats_written(reporters: dict[str, type[Reporter]], tmp_path: Path) -> None:
    paths = render_reports(rf.realistic_result(), reporters, tmp_path / "out", "all")
    assert [p.name for p in paths] == [FILES[f] for f in sorted(FILES)]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(FILES.values())   # no temp files left
    assert json.loads((tmp_path / "out" / "result.json").read_text())["run_id"] == rf.realistic_result().run_id


def test_format_selection() -> None:
    assert select_formats(FILES, "html,junit") == ["html", "junit"]
    assert select_formats(FILES, ["json", "html, json"]) == ["json", "html"]
    assert select_formats(FILES, "all") == sorted(FILES)
    with pytest.raises(ValueError, match="unknown report format pdf; available: csv, html"):
        select_formats(FILES, "html,pdf")
    with pytest.raises(ValueError):
        select_formats(FILES, " , ")


class Broken(Reporter):
    format, filename = "broken", "broken.txt"

    def render(self, result):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")


def test_a_failing_reporter_writes_nothing(reporters: dict[str, type[Reporter]], tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("old report")
    with pytest.raises(ReportError, match="broken: RuntimeError: boom"):
        render_reports(rf.realistic_result(), {**reporters, "broken": Broken}, tmp_path, "html,broken")
    assert os.listdir(tmp_path) == ["report.html"]
    assert (tmp_path / "report.html").read_text() == "old report"


def test_clashing_or_unsafe_filenames_are_refused(reporters: dict[str, type[Reporter]], tmp_path: Path) -> None:
    clash = type("Clash", (Reporter,), {"format": "clash", "filename": "report.html", "render": lambda s, r: "x"})
    escape = type("Escape", (Reporter,), {"format": "escape", "filename": "../x.txt", "render": lambda s, r: "x"})
    with pytest.raises(ReportError, match="writes report.html"):
        render_reports(rf.realistic_result(), {**reporters, "clash": clash}, tmp_path, "html,clash")
    with pytest.raises(ReportError, match="not a plain file name"):
        render_reports(rf.realistic_result(), {"escape": escape}, tmp_path, "escape")
    assert os.listdir(tmp_path) == []


def test_unwritable_folder_is_a_report_error(reporters: dict[str, type[Reporter]], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReportError, match="cannot create the output folder"):
        render_reports(rf.realistic_result(), reporters, blocker, "json")


def test_readers_never_see_a_half_written_report(reporters: dict[str, type[Reporter]], tmp_path: Path) -> None:
    result = rf.many_findings_result(1500, excerpt_chars=800)
    render_reports(result, reporters, tmp_path, "html")
    target, stop, seen = tmp_path / "report.html", threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            seen.append(target.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(8):
            render_reports(result, reporters, tmp_path, "html")
    finally:
        stop.set()
        reader.join()
    assert seen and all(data.rstrip().endswith(b"</html>") for data in seen)
    assert os.listdir(tmp_path) == ["report.html"]


def test_report_command(tmp_path: Path) -> None:
    from crm_audit.cli import cli

    assert report in COMMANDS and cli.get_command(None, "report") is report  # wired into `crm-audit`
    source = tmp_path / "result.json"
    source.write_text(rf.realistic_result().model_dump_json(indent=2))
    runner = CliRunner()
    done = runner.invoke(report, [str(source), "--format", "html,junit,sarif", "--out", str(tmp_path / "r")])
    assert done.exit_code == 0, done.output
    assert sorted(os.listdir(tmp_path / "r")) == ["junit.xml", "report.html", "results.sarif"]
    done = runner.invoke(report, [str(source), "--format", "all", "--out", str(tmp_path / "all")])
    assert done.exit_code == 0 and len(os.listdir(tmp_path / "all")) >= 6
    bad = runner.invoke(report, [str(source), "--format", "pdf", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "unknown report format pdf" in bad.output
    (tmp_path / "broken.json").write_text('{"run_id": 1}')
    broken = runner.invoke(report, [str(tmp_path / "broken.json")])
    assert broken.exit_code == 2 and "not an AuditResult" in broken.output
    missing = runner.invoke(report, [str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_the_reporter_example_in_the_docs_works(tmp_path: Path) -> None:
    doc = (Path(__file__).parent.parent / "docs" / "reports.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Writing a reporter"):]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    module = type(sys)("docs_text_reporter")
    exec(compile(code, "docs/reports.md", "exec"), module.__dict__)
    registry = make_plugin_manager(extra_plugins=[module], entry_points=False)
    paths = render_reports(rf.realistic_result(), registry.reporters, tmp_path, "text")
    lines = paths[0].read_text().splitlines()
    assert "critical\taccess.bola.contacts\tA sales rep can read another owner's contact" in lines
    assert len(lines) == sum(f.is_open for f in rf.realistic_result().all_findings())
