"""ctx.log goes to stdlib logging: logger crm_audit.probe.<id>, the probe id in every record, secrets redacted,
shown with -v and silent without."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from local_http import LocalServer, json_route

import crm_audit.protocols.rest
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.logs import configure
from crm_audit.core.model import ProbeResult
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.probe import Probe, ProbeContext
from crm_audit.core.profile import parse_profile
from crm_audit.core.runner import RunOptions, run_audit

SECRET = "log-secret-pw-9137"
REPO = Path(__file__).resolve().parents[1]


class LoggingProbe(Probe):
    id, title, version = "t_log", "logs", "1.0"

    def run(self, ctx: ProbeContext) -> ProbeResult:
        ctx.target.request("GET", "/ok")
        ctx.log(f"logging in with password {SECRET} as u")
        ctx.log(f"raw header Authorization: Basic dTp{SECRET}")
        ctx.log("a debug detail", logging.DEBUG)
        return ProbeResult(probe=self.id)


class Plugin:
    @hookimpl
    def crm_audit_register_probes(self):
        return [LoggingProbe]


PROFILE = """
target: {base_url: "%s"}
accounts: [{name: a, role: r, auth: {method: basic, username: u, password: "${P}"}}]
hierarchy: none
"""


def _audit() -> None:
    """One audit with the logging probe only; the password is a declared secret of the profile."""
    registry = make_plugin_manager([Plugin(), crm_audit.protocols.rest], entry_points=False)
    with LocalServer({"/ok": json_route({"ok": True}), "/": json_route({})}) as srv:
        result = run_audit(parse_profile(PROFILE % srv.base_url, env={"P": SECRET}), registry,
                           RunOptions(only=["t_log"]))
    assert result.probe("t_log").status == "ok"


@pytest.fixture()
def shown():
    out = io.StringIO()
    yield out
    configure(0)


def test_probe_log_lines_carry_the_probe_id_and_no_secret(shown: io.StringIO) -> None:
    configure(1, stream=shown)
    _audit()
    lines = shown.getvalue().splitlines()
    assert "crm-audit: INFO t_log: logging in with password [REDACTED] as u" in lines
    assert any(line.startswith("crm-audit: INFO t_log: raw header") for line in lines)
    assert SECRET not in shown.getvalue()
    assert "debug detail" not in shown.getvalue()  # -v is INFO; -vv adds DEBUG


def test_debug_with_vv_and_silent_by_default(shown: io.StringIO) -> None:
    configure(2, stream=shown)
    _audit()
    assert "crm-audit: DEBUG t_log: a debug detail" in shown.getvalue()
    configure(0)
    quiet = io.StringIO()
    handler = logging.StreamHandler(quiet)
    logging.getLogger().addHandler(handler)  # what would reach any handler an embedding program installs
    try:
        _audit()
    finally:
        logging.getLogger().removeHandler(handler)
    assert "t_log" not in quiet.getvalue() and SECRET not in quiet.getvalue()


@pytest.mark.integration
def test_cli_verbose_shows_probe_logs_on_stderr(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "crm_audit", "demo", "--only", "tls", "-v", "--quiet",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert proc.returncode in (0, 1), proc.stderr
    assert "crm-audit: INFO tls: scanning 1 TLS endpoint(s) with sslyze" in proc.stderr, proc.stderr
