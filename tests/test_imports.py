"""Start-up cost: which modules the quick commands import, and the command line without scipy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: heavy modules only the commands that use them may import
HEAVY = ("scipy", "sslyze", "fastapi", "jinja2")

#: runs the CLI like the console script, then prints every imported module (also after sys.exit)
PROBE = """
import atexit, json, sys
atexit.register(lambda: sys.__stdout__.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
BLOCK
from crm_audit.cli import main
sys.argv = ["crm-audit"] + json.loads(sys.argv[1])
main()
"""

#: makes ``import scipy`` fail as if scipy were not installed
NO_SCIPY = """
import importlib.abc
class _NoScipy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "scipy" or name.startswith("scipy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoScipy())
"""

PROFILE = """
name: import test
target: {base_url: "https://crm.example.test", rate_limit_rps: 20, request_budget: 500}
accounts:
  - {name: admin, role: admin, auth: {method: login, url: /login, username: a@example.test, password: "${IMPORT_TEST_PW}"}}
endpoints:
  - {name: health, path: /health, slo_p95_ms: 200}
plugins:
  tls: {hosts: ["crm.example.test:8443"], mozilla_profile: modern}
  load: {max_users: 4, step_s: 1}
  latency: {samples: 5}
"""


def run(args: list[str], tmp: Path, block: str = "") -> tuple[subprocess.CompletedProcess, set[str]]:
    env = {**os.environ, "CI": "true", "IMPORT_TEST_PW": "pw"}
    proc = subprocess.run([sys.executable, "-c", PROBE.replace("BLOCK", block), json.dumps(args)],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=120)
    marker = proc.stdout.rfind("\nMODULES ")
    assert marker != -1, proc.stdout + proc.stderr
    mods = set(json.loads(proc.stdout[marker + len("\nMODULES "):].splitlines()[0]))
    return proc, mods


def heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if m.split(".")[0] in HEAVY)


@pytest.fixture()
def profile(tmp_path: Path) -> Path:
    p = tmp_path / "profile.yaml"
    p.write_text(PROFILE, encoding="utf-8")
    return p


def test_version_imports_nothing_heavy(tmp_path: Path) -> None:
    proc, mods = run(["--version"], tmp_path)
    assert proc.returncode == 0 and "crm-audit, version" in proc.stdout
    assert heavy(mods) == []
    # not even the core's own models, the HTTP client or the plugins
    assert not {"pydantic", "requests", "crm_audit.core.model", "crm_audit.core.plugins", "crm_audit_plugins"} & mods


def test_validate_imports_no_scanner_server_or_templates(tmp_path: Path, profile: Path) -> None:
    proc, mods = run(["validate", str(profile)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout
    assert heavy(mods) == []
    # it did discover the plugins and checked their options …
    assert {"crm_audit_plugins.tls", "crm_audit_plugins.load"} <= mods
    # … without the modules that scan, drive Locust or render reports
    assert not {"crm_audit_plugins.tls.run", "crm_audit_plugins.tls.scan", "crm_audit.report.render"} & mods


def test_validate_still_checks_the_tls_options(tmp_path: Path, profile: Path) -> None:
    profile.write_text(PROFILE.replace("mozilla_profile: modern", "mozilla_profile: ancient"), encoding="utf-8")
    proc, _ = run(["validate", str(profile)], tmp_path)
    assert proc.returncode == 2 and "plugins.tls.mozilla_profile" in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["validate", "PROFILE"], ["plugins"]])
def test_command_line_works_without_scipy(tmp_path: Path, profile: Path, args: list[str]) -> None:
    args = [str(profile) if a == "PROFILE" else a for a in args]
    proc, mods = run(args, tmp_path, block=NO_SCIPY)
    assert proc.returncode == 0, proc.stderr
    assert not any(m.split(".")[0] == "scipy" for m in mods)
    if args == ["--help"]:
        assert all(cmd in proc.stdout for cmd in ("audit", "demo", "validate", "score", "compare", "load-worker"))


def test_scoring_needs_no_scipy(tmp_path: Path) -> None:
    """The log-normal scoring curve uses the standard library's normal distribution."""
    code = NO_SCIPY + ("from crm_audit.scoring.functions import _NORM, _Z90\n"
                       "print(round(_Z90, 12), round(_NORM.cdf(_Z90), 12))\n")
    proc = subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1.281551565545", "0.9"]
