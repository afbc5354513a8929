"""Plugin system: hooks documented, built-ins found via entry points, a third-party plugin installed and run."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

from local_http import LocalServer, json_route
from plugin_package import install, pyproject

from crm_audit.core import hookspecs
from crm_audit.core.plugins import make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]


def hook_names() -> list[str]:
    return [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("crm_audit_")]


def test_every_hook_has_a_docstring_and_is_documented() -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text()
    names = hook_names()
    assert len(names) >= 6
    for name in names:
        assert inspect.getdoc(getattr(hookspecs, name)), f"{name} has no docstring"
        assert f"`{name}(" in doc, f"{name} is not documented in docs/plugins.md"


def test_builtins_are_found_through_entry_points() -> None:
    reg = make_plugin_manager()
    assert not reg.warnings, reg.warnings
    assert "latency" in reg.probes and reg.origin["probe:latency"] == "latency"
    assert {"json", "html"} <= set(reg.reporters)
    assert "rest" in reg.adapters
    assert reg.probes["latency"].__module__ == "crm_audit_plugins.latency"


def test_plugins_command_lists_builtins() -> None:
    out = subprocess.run([sys.executable, "-m", "crm_audit", "plugins", "--json"], capture_output=True, text=True,
                         check=True).stdout
    rows = json.loads(out)
    lat = next(r for r in rows if r["kind"] == "probe" and r["id"] == "latency")
    assert lat["indicators"] == ["perf.response_time_p95", "perf.error_rate"]
    assert lat["writes"] is False and lat["disruptive"] is False
    assert any(r["kind"] == "reporter" and r["id"] == "html" for r in rows)
    assert any(r["kind"] == "adapter" and r["id"] == "rest" for r in rows)


PLUGIN_SRC = '''
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import Finding, ProbeResult, Status
from crm_audit.core.probe import Probe


class PingProbe(Probe):
    id = "thirdparty_ping"
    title = "third-party ping"
    version = "9.9.9"
    indicators = ("sec.hardening",)

    def run(self, ctx):
        ex = ctx.target.request("GET", "/ping")
        return ProbeResult(probe=self.id, findings=[Finding(
            id="thirdparty.ping", title="ping answered " + str(ex.status), status=Status.passed)])


@hookimpl
def crm_audit_register_probes():
    return [PingProbe]
'''


def test_third_party_plugin_is_found_and_run(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "crm_audit_ping.py").write_text(PLUGIN_SRC)
    (pkg / "pyproject.toml").write_text(pyproject("crm-audit-ping", "9.9.9", "ping", "crm_audit_ping"))
    env = install(pkg, tmp_path / "site")
    listed = subprocess.run([sys.executable, "-m", "crm_audit", "plugins"], env=env, capture_output=True,
                            text=True, check=True).stdout
    assert "thirdparty_ping" in listed and "9.9.9" in listed
    with LocalServer({"/ping": json_route({"pong": 1}), "/": json_route({})}) as srv:
        profile = tmp_path / "p.yaml"
        profile.write_text(f"target: {{base_url: '{srv.base_url}'}}\nhierarchy: none\n")
        run = subprocess.run([sys.executable, "-m", "crm_audit", "audit", str(profile), "--only", "thirdparty_ping",
                              "--out", str(tmp_path / "out"), "--format", "json"],
                             env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert "GET /ping" in srv.hits
    result = json.loads(next((tmp_path / "out").glob("*/result.json")).read_text())
    assert result["probes"][0]["probe"] == "thirdparty_ping"
    assert result["probes"][0]["findings"][0]["title"] == "ping answered 200"
    assert result["probes"][0]["findings"][0]["probe"] == "thirdparty_ping"  # filled by the runner, not the plugin
    assert result["plugins"]["crm-audit-ping"] == "9.9.9"
