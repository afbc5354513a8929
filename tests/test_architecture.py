"""The import direction: the core does not know its plugins, plugins do not know each other,
and the core's modules import each other without a circle. A small AST scan, no dependency.

For the direction rules every import counts, wherever it is. For the circle, module-level
imports count, also those under ``if TYPE_CHECKING:``: a circle is an error when at least one
of its imports runs when the module is imported (``adapter`` importing ``hookspecs`` to
register the REST adapter closed a circle through the annotations of ``hookspecs`` and
``probe``). Two classes that only name each other in annotations (``Target`` and
``AuthMethod``) are not an import order; imports inside a function run late, on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: directory → import name of the packages in this distribution (pyproject's package-dir)
PACKAGES = {"crm_audit": "crm_audit", "plugins": "crm_audit_plugins", "demo": "crm_audit_demo"}


def module_name(path: Path, root: Path) -> str:
    """The import name of a source file under root (``plugins/load/probe.py`` → ``crm_audit_plugins.load.probe``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    parts[0] = PACKAGES.get(parts[0], parts[0])
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path, module_level_only: bool = False, typing_only: bool | None = None) -> set[str]:
    """Every module a file imports (relative imports resolved), optionally only its module-level ones.

    ``typing_only``: True keeps only the imports under ``if TYPE_CHECKING:``, False only the others.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(node: ast.Import | ast.ImportFrom, for_typing: bool) -> None:
        if typing_only is not None and for_typing != typing_only:
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            return
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        found.add(base)
        found.update(f"{base}.{alias.name}" for alias in node.names)

    def visit(body: list[ast.stmt], for_typing: bool) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                add(node, for_typing)
            elif isinstance(node, ast.If):
                visit(node.body, for_typing or "TYPE_CHECKING" in ast.unparse(node.test))
                visit(node.orelse, for_typing)
            elif isinstance(node, (ast.Try, ast.With)):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []), for_typing)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body, for_typing)
            elif not module_level_only:
                for child in ast.walk(node):
                    if isinstance(child, (ast.Import, ast.ImportFrom)):
                        add(child, for_typing)

    visit(tree.body, False)
    return found


def sources(root: Path, directory: str) -> list[Path]:
    return sorted((root / directory).rglob("*.py"))


def core_imports_of_plugins(root: Path) -> list[str]:
    """Each import of a built-in plugin or of the demo CRM by a module of the core package."""
    bad = []
    for path in sources(root, "crm_audit"):
        for target in sorted(imports(path, root)):
            if target.split(".")[0] in ("crm_audit_plugins", "crm_audit_demo"):
                bad.append(f"{module_name(path, root)} imports {target}")
    return bad


def plugin_cross_imports(root: Path) -> list[str]:
    """Each import of one plugin package by another (``crm_audit_plugins.kpi`` → ``crm_audit_plugins.data_quality``)."""
    bad = []
    for path in sources(root, "plugins"):
        mine = module_name(path, root).split(".")
        if len(mine) < 2:
            continue
        for target in sorted(imports(path, root)):
            parts = target.split(".")
            if parts[0] == "crm_audit_plugins" and len(parts) > 1 and parts[1] != mine[1]:
                bad.append(f"{'.'.join(mine)} imports {target}")
    return bad


def core_cycles(root: Path) -> list[list[str]]:
    """The import circles among the modules of ``crm_audit/core`` with at least one import that runs
    at import time (module-level, not under ``TYPE_CHECKING``): one circle through each such import."""
    files = {module_name(p, root): p for p in sources(root, "crm_audit/core") if p.name != "__init__.py"}

    def edges(path: Path, typing_only: bool | None) -> list[str]:
        return sorted(t for t in imports(path, root, module_level_only=True, typing_only=typing_only) if t in files)

    graph = {mod: edges(p, None) for mod, p in files.items()}
    runtime = {mod: edges(p, False) for mod, p in files.items()}
    cycles: list[list[str]] = []
    for start in sorted(files):
        for nxt in runtime[start]:
            back = _path(graph, nxt, start)  # a way back closes a circle through this runtime import
            if back is not None and not any(set(c) == set([start] + back) for c in cycles):
                cycles.append([start] + back)
    return cycles


def _path(graph: dict[str, list[str]], start: str, goal: str) -> list[str] | None:
    """The shortest import path from start to goal (breadth first), or None."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        mod = queue.pop(0)
        if mod == goal:
            path = [mod]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])  # type: ignore[arg-type]
            return path[::-1]
        for nxt in graph[mod]:
            if nxt not in previous:
                previous[nxt] = mod
                queue.append(nxt)
    return None


def test_the_core_imports_no_plugin_and_not_the_demo() -> None:
    assert core_imports_of_plugins(ROOT) == []


def test_plugins_do_not_import_each_other() -> None:
    assert plugin_cross_imports(ROOT) == []


def test_the_core_has_no_import_circle() -> None:
    assert [" → ".join(c) for c in core_cycles(ROOT)] == []


def test_every_built_in_probe_says_what_it_judges() -> None:
    """Probes carry a category instead of the core keeping lists of probe ids."""
    from crm_audit.core.plugins import make_plugin_manager
    from crm_audit.core.probe import CATEGORIES

    built_in = {pid: cls for pid, cls in make_plugin_manager().probes.items()
                if cls.__module__.startswith("crm_audit_plugins.")}
    assert set(built_in) == {p.parent.name for p in (ROOT / "plugins").glob("*/__init__.py")}
    assert {pid: cls.category for pid, cls in built_in.items() if cls.category not in CATEGORIES[:-1]} == {}


def plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("rule, files, expected", [
    (core_imports_of_plugins,
     {"crm_audit/__init__.py": "", "crm_audit/commands/load.py": "def f():\n    from crm_audit_plugins.load import x\n"},
     ["crm_audit.commands.load imports crm_audit_plugins.load", "crm_audit.commands.load imports crm_audit_plugins.load.x"]),
    (core_imports_of_plugins, {"crm_audit/cli.py": "import crm_audit_demo\n"}, ["crm_audit.cli imports crm_audit_demo"]),
    (plugin_cross_imports,
     {"plugins/__init__.py": "", "plugins/kpi/__init__.py": "", "plugins/kpi/formulas.py": "from ..data_quality import checks\n"},
     ["crm_audit_plugins.kpi.formulas imports crm_audit_plugins.data_quality",
      "crm_audit_plugins.kpi.formulas imports crm_audit_plugins.data_quality.checks"]),
    (plugin_cross_imports, {"plugins/kpi/__init__.py": "from .formulas import f\nfrom crm_audit.core import model\n"}, []),
])
def test_the_rules_catch_a_planted_violation(tmp_path: Path, rule, files, expected) -> None:
    assert rule(plant(tmp_path, files)) == expected


def test_a_planted_circle_is_found_also_through_type_checking_imports(tmp_path: Path) -> None:
    checking = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from crm_audit.core.{} import X\n"
    plant(tmp_path, {
        "crm_audit/core/adapter.py": "from crm_audit.core.hookspecs import hookimpl\n",   # the one that runs
        "crm_audit/core/hookspecs.py": checking.format("probe"),
        "crm_audit/core/probe.py": checking.format("adapter"),
        "crm_audit/core/late.py": "def f():\n    from crm_audit.core import late2\n",     # runs late: no circle
        "crm_audit/core/late2.py": "from crm_audit.core import late\n",
        "crm_audit/core/target.py": checking.format("auth"),                               # annotations only
        "crm_audit/core/auth.py": checking.format("target"),
    })
    assert core_cycles(tmp_path) == [["crm_audit.core.adapter", "crm_audit.core.hookspecs", "crm_audit.core.probe",
                                      "crm_audit.core.adapter"]]
