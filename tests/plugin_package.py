"""A third-party plugin package the way a user has one: its pyproject.toml, pip-installed into a
``--target`` folder, and ``crm-audit`` run with that folder on PYTHONPATH. Shared by the tests that
install one (test_plugins, test_plugin_hooks, test_docs_plugins, test_adapter_package)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def pyproject(name: str, version: str, entry_point: str, module: str) -> str:
    """The pyproject.toml of a one-module distribution whose ``crm_audit`` entry point ``entry_point`` is ``module``."""
    return (f'[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
            f'[project.entry-points.crm_audit]\n{entry_point} = "{module}"\n'
            f'[tool.setuptools]\npy-modules = ["{module}"]\n')


def install(pkg: Path, site: Path) -> dict[str, str]:
    """pip-install the package folder ``pkg`` into ``site``; the environment in which it is importable."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(site), str(pkg)], check=True, timeout=300)
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path}


def crm_audit(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m crm_audit *args`` in ``env``, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "crm_audit", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
