"""A third-party probe gets what the built-ins get, through hooks alone: its own section of the
HTML report (a template shipped as package data, a view of its artifacts) and its own
``crm-audit`` command. The package is pip-installed into a temporary folder and used through
the real command line, in subprocesses."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest
from plugin_package import crm_audit, install

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "crm-audit-ping"
version = "1.0.0"
dependencies = ["crm-audit"]

[tool.setuptools]
packages = ["crm_audit_ping"]

[tool.setuptools.package-data]
crm_audit_ping = ["*.j2"]

[project.entry-points.crm_audit]
ping = "crm_audit_ping"
"""

PLUGIN = '''
"""ping: times GET / a few times; draws its own report section and adds `crm-audit ping-hello`."""

from __future__ import annotations

from importlib.resources import files

import click

from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import ProbeResult
from crm_audit.core.probe import Probe, ProbeContext
from crm_audit.report.section import ReportSection


class PingProbe(Probe):
    id = "ping"
    title = "Ping the start page"
    version = "1.0.0"
    category = "performance"
    quiet_target = False

    def run(self, ctx: ProbeContext) -> ProbeResult:
        answers = [ctx.target.request("GET", "/") for _ in range(3)]
        return ProbeResult(probe=self.id, artifacts={"pings": [
            {"status": ex.status, "ms": round(ex.elapsed_s * 1000, 1)} for ex in answers]})


def ping_view(result: ProbeResult) -> dict | None:
    pings = result.artifacts.get("pings") or []
    return {"pings": pings, "answered": sum(1 for p in pings if p.get("status"))} if pings else None


@hookimpl
def crm_audit_register_probes():
    return [PingProbe]


@hookimpl
def crm_audit_register_report_sections():
    return [ReportSection(probe="ping", template=files(__package__) / "ping.html.j2", view=ping_view)]


@hookimpl
def crm_audit_register_commands(cli):
    @cli.command("ping-hello")
    @click.option("--name", default="world")
    def ping_hello(name: str) -> None:
        """Say hello from the ping plugin."""
        click.echo(f"ping says hello to {name}")
'''

TEMPLATE = """\
<p class="ping-summary">{{ s.view.answered }} of {{ s.view.pings|length }} pings answered</p>
<ol class="pings">{% for p in s.view.pings %}<li data-status="{{ p.status }}">{{ p.ms|num }} ms</li>{% endfor %}</ol>
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The ping plugin as its own distribution, pip-installed into a --target folder on PYTHONPATH."""
    base = tmp_path_factory.mktemp("ping_plugin")
    pkg = base / "pkg"
    (pkg / "crm_audit_ping").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (pkg / "crm_audit_ping" / "__init__.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    (pkg / "crm_audit_ping" / "ping.html.j2").write_text(TEMPLATE, encoding="utf-8")
    env = install(pkg, base / "site")
    assert (base / "site" / "crm_audit_ping" / "ping.html.j2").is_file()   # the template travels as package data
    return env


def test_the_plugins_command_runs_and_is_listed(installed: dict[str, str]) -> None:
    run = crm_audit(installed, "ping-hello", "--name", "auditor")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "ping says hello to auditor\n"
    listed = crm_audit(installed, "--help")
    assert re.search(r"^\s+ping-hello\s+Say hello from the ping plugin\.", listed.stdout, re.M), listed.stdout
    assert "load-worker" in listed.stdout and "demo" in listed.stdout   # the built-ins' plugin commands still there


def test_without_the_plugin_there_is_no_such_command() -> None:
    run = crm_audit(dict(os.environ), "ping-hello")
    assert run.returncode == 2 and "No such command 'ping-hello'" in run.stderr


def test_the_plugins_probe_draws_its_own_report_section(installed: dict[str, str], tmp_path: Path) -> None:
    run = crm_audit(installed, "demo", "--only", "ping", "--format", "html", "--out", str(tmp_path), "-q")
    assert run.returncode in (0, 1), run.stderr
    folder = next(tmp_path.glob("*/result.json")).parent
    probe = json.loads((folder / "result.json").read_text(encoding="utf-8"))["probes"][0]
    assert probe["probe"] == "ping" and probe["status"] == "ok", probe
    statuses = [p["status"] for p in probe["artifacts"]["pings"]]
    page = (folder / "report.html").read_text(encoding="utf-8")
    section = re.search(r'<section class="probe" id="probe-\d+" data-probe="ping">(.*?)</section>', page, re.S)
    assert section is not None, "no section for the ping probe"
    body = section.group(1)
    assert f'<p class="ping-summary">{sum(1 for s in statuses if s)} of 3 pings answered</p>' in body
    assert re.findall(r'<li data-status="(\d+)">', body) == [str(s) for s in statuses]
    assert "<h4>Artifacts</h4>" not in body   # its own view, not the generic artifact list


def test_the_same_result_re_rendered_without_the_plugin_falls_back_to_the_generic_section(
        installed: dict[str, str], tmp_path: Path) -> None:
    run = crm_audit(installed, "demo", "--only", "ping", "--format", "json", "--out", str(tmp_path), "-q")
    assert run.returncode in (0, 1), run.stderr
    saved = next(tmp_path.glob("*/result.json"))
    out = tmp_path / "again"
    rendered = crm_audit(dict(os.environ), "report", str(saved), "--format", "html", "--out", str(out))
    assert rendered.returncode == 0, rendered.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    section = re.search(r'data-probe="ping">(.*?)</section>', page, re.S)
    assert section is not None and "ping-summary" not in section.group(1)
    assert "<h4>Artifacts</h4>" in section.group(1) and "pings" in section.group(1)


# ---------------------------------------------------------------- in-process: clashes and failures


def _hooked(make):
    """A plugin object whose ``crm_audit_register_commands`` calls ``make(cli)``."""
    from types import SimpleNamespace

    from crm_audit.core.hookspecs import hookimpl

    @hookimpl
    def crm_audit_register_commands(cli) -> None:
        make(cli)

    return SimpleNamespace(crm_audit_register_commands=crm_audit_register_commands)


def test_a_clashing_or_failing_command_plugin_costs_only_its_own_commands() -> None:
    import click

    from crm_audit.core.plugins import make_plugin_manager

    @click.group()
    def cli() -> None:
        """test group"""

    @cli.command("audit")
    def builtin() -> None:
        """the built-in"""

    def good(group) -> None:
        group.add_command(click.Command("hello", callback=lambda: None))

    def clash(group) -> None:
        group.add_command(click.Command("extra", callback=lambda: None))
        group.add_command(click.Command("audit", callback=lambda: None))

    def broken(group) -> None:
        group.add_command(click.Command("half", callback=lambda: None))
        raise RuntimeError("no luck")

    plugins = [_hooked(f) for f in (good, clash, broken)]
    reg = make_plugin_manager(plugins, entry_points=False)
    warnings = reg.register_commands(cli)
    assert sorted(cli.commands) == ["audit", "hello"] and cli.commands["audit"] is builtin
    assert len(warnings) == 2
    assert "command 'audit' is registered twice: by 'crm-audit' and" in warnings[0]
    assert "could not add its commands: RuntimeError: no luck" in warnings[1]


def test_a_failing_view_falls_back_to_the_generic_section_and_a_clash_is_an_error() -> None:
    from crm_audit.core.hookspecs import hookimpl
    from crm_audit.core.model import AuditResult, ProbeResult, TargetSummary
    from crm_audit.core.plugins import PluginError, make_plugin_manager
    from crm_audit.report.html_reporter import HtmlReporter
    from crm_audit.report.section import ReportSection

    def broken_view(result: ProbeResult) -> dict:
        raise KeyError("pings")

    section = ReportSection(probe="ping", template="<p class='never'>{{ s.view }}</p>", view=broken_view)

    class Sections:
        @hookimpl
        def crm_audit_register_report_sections(self):
            return [section]

    reg = make_plugin_manager([Sections()], entry_points=False)
    assert reg.report_sections() == {"ping": section}
    result = AuditResult(run_id="r1", tool={"name": "crm-audit", "version": "0"}, profile_digest="0" * 64,
                         started="2026-01-01T00:00:00+00:00", target=TargetSummary(name="t", base_url="https://crm.example.test", scope=["crm.example.test"]),
                         probes=[ProbeResult(probe="ping", artifacts={"odd": [1, 2]})])
    page = HtmlReporter(sections=reg.report_sections()).render(result)
    body = re.search(r'data-probe="ping">(.*?)</section>', page, re.S).group(1)
    assert "class='never'" not in body and "could not be drawn (KeyError: &#39;pings&#39;)" in body
    assert "<dt>odd</dt><dd>[1, 2]</dd>" in body
    with pytest.raises(PluginError, match="report section of probe 'ping' is registered twice"):
        other = ReportSection(probe="ping", template="", view=broken_view)

        class More:
            @hookimpl
            def crm_audit_register_report_sections(self):
                return [other]

        make_plugin_manager([Sections(), More()], entry_points=False).report_sections()
