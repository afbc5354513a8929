"""docs/plugins.md runs: its code blocks become a throwaway plugin package, installed into a
temporary folder and audited against the demo CRM; excerpts must match the files they quote."""

from __future__ import annotations

import html
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from plugin_package import crm_audit, install

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
FILE_HEADER = re.compile(r"^# (\S+\.(?:py|toml|yaml))( \(continued\))?$")
EXCERPT_HEADER = re.compile(r"^# excerpt of (\S+)$")


def blocks() -> list[tuple[str, str]]:
    """Every fenced code block of the page: (language, text)."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def package_files() -> dict[str, str]:
    """The files the page's blocks make up, each block appended to its file."""
    files: dict[str, str] = {}
    for _, text in blocks():
        first, _, rest = text.partition("\n")
        m = FILE_HEADER.match(first)
        if m is None:
            continue
        name, continued = m.group(1), bool(m.group(2))
        assert continued == (name in files), f"{first!r}: '(continued)' must follow the block that starts {name}"
        files[name] = files.get(name, "") + (rest if continued else text)
    return files


def test_every_block_is_a_file_or_an_excerpt() -> None:
    found = blocks()
    assert len(found) >= 10
    for lang, text in found:
        first = text.partition("\n")[0]
        assert FILE_HEADER.match(first) or EXCERPT_HEADER.match(first), \
            f"a {lang or 'plain'} block of docs/plugins.md is neither a file nor an excerpt: {first!r}"
    assert {"my_crm_audit_plugin.py", "crm_audit_trail.py", "pyproject.toml", "audit-trail.yaml",
            "jsonrpc-profile.yaml"} <= set(package_files())


def test_excerpts_match_their_files() -> None:
    excerpts = [text for _, text in blocks() if EXCERPT_HEADER.match(text.partition("\n")[0])]
    assert excerpts
    for text in excerpts:
        first, _, rest = text.partition("\n")
        source = ROOT / EXCERPT_HEADER.match(first).group(1)  # type: ignore[union-attr]
        lines = iter(line.strip() for line in source.read_text(encoding="utf-8").splitlines())
        for quoted in (q.strip() for q in rest.splitlines()):
            if not quoted or quoted == "..." or quoted.startswith("# "):
                continue
            assert any(line == quoted for line in lines), f"{source.name}: not found in order: {quoted!r}"


def test_jsonrpc_profile_section_fits_the_example_adapter() -> None:
    spec = importlib.util.spec_from_file_location("jsonrpc_adapter_doc", ROOT / "examples" / "jsonrpc_adapter.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["jsonrpc_adapter_doc"] = mod  # pydantic resolves the module's annotations through it
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    (adapter,) = mod.crm_audit_register_adapters()
    section = yaml.safe_load(package_files()["jsonrpc-profile.yaml"])["adapter"]
    config = adapter.config_model.model_validate(section)
    assert section["type"] == adapter.type == config.type and section["models"]["contacts"] == "res.partner"


# ------------------------------------------------------------ the page's package, installed and run


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment in which the page's package is installed (a --target folder on PYTHONPATH)."""
    base = tmp_path_factory.mktemp("docs_plugin")
    pkg = base / "pkg"
    pkg.mkdir()
    for name, text in package_files().items():
        (pkg / name).write_text(text, encoding="utf-8")
    return {**install(pkg, base / "site"), "CRM_AUDIT_DOCS_PKG": str(pkg)}


@pytest.fixture(scope="module")
def demo_run(installed: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`crm-audit demo` with the page's two probes and every report format; the run's folder."""
    out = tmp_path_factory.mktemp("docs_demo")
    run = crm_audit(installed, "demo", "--only", "robots,audit_trail", "--format", "all", "--out", str(out), "-q")
    assert run.returncode in (0, 1), run.stderr
    return next(out.glob("*/result.json")).parent


def result(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "result.json").read_text(encoding="utf-8"))


def test_the_pages_plugins_are_listed(installed: dict[str, str]) -> None:
    rows = json.loads(crm_audit(installed, "plugins", "--json").stdout)
    probes = {r["id"]: r for r in rows if r["kind"] == "probe"}
    assert probes["audit_trail"]["indicators"] == ["sec.audit_trail"] and probes["audit_trail"]["writes"] is True
    assert probes["robots"]["version"] == "1.0.0"
    assert any(r["kind"] == "reporter" and r["id"] == "counts" for r in rows)


def test_findings_carry_their_probe_and_the_html_filter_finds_them(demo_run: Path) -> None:
    res = result(demo_run)
    trail = next(p for p in res["probes"] if p["probe"] == "audit_trail")
    assert trail["status"] == "ok", trail["reason"]
    assert {f["id"] for f in trail["findings"]} == {"audit_trail.denied_request", "audit_trail.admin_action"}
    assert all(f["probe"] == "audit_trail" for f in trail["findings"])   # the page's code never sets it
    page = (demo_run / "report.html").read_text(encoding="utf-8")
    articles = dict((html.unescape(fid), probe) for probe, fid in re.findall(
        r'<article class="f"[^>]*data-p="([^"]*)"><details[^>]*><summary>.*?<code>([^<]+)</code>', page))
    assert articles["audit_trail.denied_request"] == articles["audit_trail.admin_action"] == "audit_trail"
    assert articles["robots.exposed"] == "robots"
    assert "" not in articles.values()
    assert '<option value="audit_trail">audit_trail</option>' in page


def test_the_plugin_indicator_is_in_the_security_dimension_with_its_weight_and_source(demo_run: Path) -> None:
    nodes = {n["id"]: n for n in result(demo_run)["scoring"]["nodes"]}
    node = nodes["sec.audit_trail"]
    assert node["parent"] == "sec" and node["kind"] == "indicator"
    assert node["weight"] == pytest.approx(0.1)  # the documented weight: "sec.audit_trail gets 0.1"
    assert "`sec.audit_trail` gets 0.1 of the security dimension" in DOC.read_text(encoding="utf-8")
    assert node["source"] == "probe:audit_trail" and node["assessed"] is True
    assert node["actual"] == pytest.approx(0.5)  # the demo CRM logs the admin's create, not the refused one
    assert nodes["sec.transport"]["weight"] == pytest.approx(0.25 * 0.9)  # the others renormalised
    siblings = [n for n in nodes.values() if n["parent"] == "sec"]
    assert sum(n["weight"] for n in siblings) == pytest.approx(1.0)
    assert "plugin indicators (sec.audit_trail 0.1)" in nodes["sec"]["function"]
    page = (demo_run / "report.html").read_text(encoding="utf-8")
    row = re.search(r"<code>sec\.audit_trail</code></td>.*?</tr>", page, re.S)  # the indicator table's row
    assert row is not None and "probe:audit_trail" in row.group(0)


def test_the_plugins_security_findings_are_in_sarif(demo_run: Path) -> None:
    run = json.loads((demo_run / "results.sarif").read_text(encoding="utf-8"))["runs"][0]
    results = {r["ruleId"]: r for r in run["results"]}
    assert "audit_trail.denied_request" in results            # failed: a security finding
    assert "audit_trail.admin_action" not in results          # passed
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "audit_trail.denied_request")
    assert "security" in rule["properties"]["tags"] and rule["properties"]["security-severity"] == "5.5"
    assert results["audit_trail.denied_request"]["properties"]["probe"] == "audit_trail"


def test_the_pages_report_section_draws_the_probe(demo_run: Path) -> None:
    trail = next(p for p in result(demo_run)["probes"] if p["probe"] == "audit_trail")
    page = (demo_run / "report.html").read_text(encoding="utf-8")
    section = re.search(r'<section class="probe" id="probe-\d+" data-probe="audit_trail">(.*?)</section>', page, re.S)
    assert section is not None
    rows = re.findall(r'<tr><td>([^<]+)</td><td class="st-(\w+)">([^<]+)</td></tr>', section.group(1))
    assert sorted((state, html.unescape(seen)) for _, state, seen in rows) == sorted(
        (f["status"], f["title"].split(": ", 1)[-1]) for f in trail["findings"])
    assert {"A denied request", "An admin action"} == {action for action, _, _ in rows}


def test_the_pages_command_runs(installed: dict[str, str]) -> None:
    run = crm_audit(installed, "audit-trail-events")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["denied_request: A denied request", "admin_action: An admin action"]
    assert "audit-trail-events" in crm_audit(installed, "--help").stdout


def test_the_pages_reporter_wrote_its_file(demo_run: Path) -> None:
    counts = dict(line.split() for line in (demo_run / "counts.txt").read_text(encoding="utf-8").splitlines())
    assert counts["medium"] == "1" and counts["critical"] == "0"


def validate_profile(tmp_path: Path, plugins: dict[str, Any]) -> Path:
    profile = {
        "target": {"base_url": "http://127.0.0.1:9"},
        "accounts": [{"name": "admin", "role": "admin"}, {"name": "readonly", "role": "readonly"}],
        "adapter": {"type": "rest", "resources": {"contacts": {"path": "/api/contacts"}}},
        "probes": ["audit_trail"],
        **plugins,
    }
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    return path


def test_the_pages_profile_section_validates(installed: dict[str, str], tmp_path: Path) -> None:
    section = yaml.safe_load(package_files()["audit-trail.yaml"])
    run = crm_audit(installed, "validate", str(validate_profile(tmp_path, section)))
    assert run.returncode == 0, run.stderr
    assert "feeds no indicator" not in run.stderr


def test_a_misspelled_account_fails_validate_with_every_error(installed: dict[str, str], tmp_path: Path) -> None:
    section = yaml.safe_load(package_files()["audit-trail.yaml"])
    section["plugins"]["audit_trail"].update(admin_account="admn", resource="contatcs")
    run = crm_audit(installed, "validate", str(validate_profile(tmp_path, section)))
    assert run.returncode == 2
    errors = run.stderr.splitlines()
    assert any("plugins.audit_trail.admin_account: unknown account 'admn' (accounts: admin, readonly)" in e
               for e in errors), run.stderr
    assert any("plugins.audit_trail.resource: unknown resource 'contatcs'" in e for e in errors), run.stderr
    assert all(e.startswith("crm-audit: error: ") for e in errors) and len(errors) == 2


def test_demo_option_override_is_checked_like_the_profile(installed: dict[str, str], tmp_path: Path) -> None:
    run = crm_audit(installed, "demo", "--only", "audit_trail", "--out", str(tmp_path),
                    "-o", "plugins.audit_trail.admin_account=nosuch", timeout=120)
    assert run.returncode == 2
    assert "plugins.audit_trail.admin_account: unknown account 'nosuch'" in run.stderr
    assert not list(tmp_path.glob("*/result.json"))
