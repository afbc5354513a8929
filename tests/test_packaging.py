"""A plain (non-editable) install finds every built-in plugin and the shipped profiles, from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_plain_install_finds_plugins_and_profiles(tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(site), str(ROOT)], check=True)
    assert not (site / "plugins").exists(), "a generic top-level 'plugins' package leaked into site-packages"
    assert (site / "crm_audit_plugins").is_dir() and (site / "crm_audit_profiles" / "demo.yaml").is_file()
    # run from an unrelated directory with only the installed copy importable (no source checkout on the path)
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    code = ("import json, crm_audit, crm_audit_plugins; from crm_audit.core.plugins import make_plugin_manager; "
            "r = make_plugin_manager(); print(json.dumps({'file': crm_audit.__file__, 'warn': r.warnings, "
            "'probes': sorted(r.probes), 'reporters': sorted(r.reporters), "
            "'sections': {k: len(v.source()) for k, v in r.report_sections().items()}}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert info["file"].startswith(str(site)), info["file"]
    assert info["warn"] == []
    source_probes = {p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()}
    assert source_probes <= set(info["probes"])
    assert {"json", "html"} <= set(info["reporters"])
    # each built-in report section's template travels as package data
    shipped = {p.parent.name for p in (ROOT / "plugins").glob("*/report.html.j2")}
    assert shipped and set(info["sections"]) == shipped and all(info["sections"].values())
    # the demo package and the load plugin add their commands to the installed command line
    flaws = subprocess.run([sys.executable, "-m", "crm_audit", "demo", "--flaw", "list"], env=env, cwd=tmp_path,
                           capture_output=True, text=True)
    assert flaws.returncode == 0 and "bola" in flaws.stdout, flaws.stderr
    worker = subprocess.run([sys.executable, "-m", "crm_audit", "load-worker", "--help"], env=env, cwd=tmp_path,
                            capture_output=True, text=True)
    assert worker.returncode == 0 and "--master" in worker.stdout, worker.stderr
    init = subprocess.run([sys.executable, "-m", "crm_audit", "init", str(tmp_path / "p.yaml")], env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
