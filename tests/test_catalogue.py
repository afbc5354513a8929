"""The check catalogue: loader errors, `crm-audit checks`, docs/checks.md, and that catalogue and
probes agree both ways.

Every finding id the demo emits (REST and JSON-RPC, clean and with every flaw switch, read from
``FLAWS`` at test time) must have a catalogue entry; every catalogue entry must be emitted by the
demo runs or name, with ``emitted_by``, a test that emits it (checked to exist and to mention the
id). The tests named that way that live here emit their ids by running the probe code that builds
the findings.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crm_audit.cli import cli
from crm_audit.commands.checks import DOC_PATH, as_markdown
from crm_audit.core.catalogue import (
    Catalogue,
    CatalogueError,
    CheckSpec,
    apply_catalogue,
    load_checks,
    registry_catalogue,
)
from crm_audit.core.model import AuditResult, Finding, ProbeResult, Severity, Status, TargetSummary
from crm_audit.core.plugins import PluginError, make_plugin_manager

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
- id: demo.thing
  title: A thing is wrong
  severity: high
  category: hardening
  indicator: sec.hardening
  references: {owasp: [API8], cwe: [693], asvs: ["14.4.4"]}
  remediation:
    generic: Fix the thing.
    nginx: "thing off;"
  needs: [writes]
"""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return registry_catalogue(make_plugin_manager())


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


# ------------------------------------------------------------------ loader


def test_a_plugin_loads_its_checks_beside_its_module(tmp_path: Path) -> None:
    module = tmp_path / "myplugin" / "__init__.py"
    _write(module.parent / "checks", "a.yaml", GOOD)
    module.write_text("", encoding="utf-8")
    [spec] = load_checks(module)
    assert spec.id == "demo.thing" and spec.probe == "demo" and spec.needs == ["writes"]
    assert spec.references.strings() == ["OWASP API8:2023 Security Misconfiguration", "CWE-693", "ASVS 14.4.4"]
    assert spec.remediation.text() == "Fix the thing.\nnginx: thing off;"


@pytest.mark.parametrize("edit, line, words", [
    (("severity: high", "severity: severe"), 3, "severity"),
    (("needs: [writes]", "needs: [writes, root_shell]"), 10, "needs[1]"),
    (("  category: hardening\n", "  category: hardening\n  colour: red\n"), 5, "unknown key"),
    (("owasp: [API8]", "owasp: [API11]"), 6, "API11"),
    (("asvs: [\"14.4.4\"]", "asvs: [\"14\"]"), 6, "ASVS"),
    (("id: demo.thing", "id: Demo Thing"), 1, "check id"),
    (("    generic: Fix the thing.\n", ""), 7, "generic"),
])
def test_a_bad_entry_is_one_line_naming_file_and_line(tmp_path: Path, edit: tuple[str, str], line: int,
                                                      words: str) -> None:
    text = "# a comment first\n" + GOOD.replace(*edit)
    folder = _write(tmp_path / "checks", "bad.yaml", text)
    with pytest.raises(CatalogueError) as err:
        load_checks(folder)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{folder / 'bad.yaml'}:{line + 1}:"), msg
    assert words in msg


def test_duplicate_ids_are_an_error_across_files_and_plugins(tmp_path: Path) -> None:
    folder = _write(tmp_path / "checks", "a.yaml", GOOD)
    _write(folder, "b.yaml", "# again\n" + GOOD)
    with pytest.raises(CatalogueError, match=r"b\.yaml:2: check id 'demo\.thing' is defined twice \(first at .*a\.yaml:1\)"):
        load_checks(folder)
    one = load_checks(folder / "a.yaml")
    with pytest.raises(CatalogueError, match="defined twice"):
        Catalogue.of(one + one)


def test_a_plugin_whose_entry_clashes_with_a_built_in_one_is_a_plugin_error(tmp_path: Path) -> None:
    folder = _write(tmp_path / "checks", "clash.yaml", GOOD.replace("demo.thing", "access.bola"))

    class Plugin:
        from crm_audit.core.hookspecs import hookimpl

        @staticmethod
        @hookimpl
        def crm_audit_register_checks() -> list[CheckSpec]:
            return load_checks(folder)

    with pytest.raises(PluginError, match="check id 'access.bola' is defined twice"):
        registry_catalogue(make_plugin_manager(extra_plugins=[Plugin()]))


def test_not_yaml_and_not_a_list(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"x\.yaml:2: not valid YAML"):
        load_checks(_write(tmp_path / "c1", "x.yaml", "- id: a.b\n  title: a: b\n"))
    with pytest.raises(CatalogueError, match=r"y\.yaml:1: expected a YAML list"):
        load_checks(_write(tmp_path / "c2", "y.yaml", "id: a.b\n"))


def test_lookup_is_exact_or_the_longest_dotted_prefix(catalogue: Catalogue) -> None:
    assert catalogue.find("access.bola.contacts").id == "access.bola"
    assert catalogue.find("access.anonymous.openapi").id == "access.anonymous.openapi"
    assert catalogue.find("access.anonymous.openapi_unfilled").id == "access.anonymous.openapi_unfilled"
    assert catalogue.find("access.anonymous.api_users").id == "access.anonymous"
    assert catalogue.find("tls.mozilla.intermediate").id == "tls.mozilla"
    assert catalogue.find("indicator.perf.max_concurrency").id == "indicator"
    assert catalogue.find("access.bolas") is None and catalogue.find("nothing.here") is None


# ------------------------------------------------------------------ applied to results


def _result(*findings: Finding) -> AuditResult:
    return AuditResult(tool={"name": "crm-audit", "version": "0"}, run_id="r", profile_digest="d", started="s",
                       target=TargetSummary(name="t", base_url="https://crm.example", scope=["crm.example"]),
                       probes=[ProbeResult(probe="access", findings=list(findings))])


def test_findings_get_their_check_and_what_the_probe_left_empty(catalogue: Catalogue) -> None:
    bare = Finding(id="access.cors.reflected_origin", title="CORS reflects", severity=Severity.low)
    graded = Finding(id="access.bola.contacts", title="BOLA", severity=Severity.high)
    unknown = Finding(id="access.no_such_check.x", title="?", severity=Severity.low)
    out = apply_catalogue(_result(bare, graded, unknown), catalogue)
    cors, bola, odd = out.probes[0].findings
    assert cors.check == "access.cors.reflected_origin" and cors.severity is Severity.high  # the catalogue's
    assert "Allow only a fixed list of trusted origins" in cors.remediation and "CWE-942" in cors.references
    assert bola.check == "access.bola" and bola.severity is Severity.high  # severity_varies: the probe grades it
    assert odd.check is None and odd.severity is Severity.low
    assert [w for w in out.warnings if "access.no_such_check.x" in w and "no check catalogue entry" in w]


# ------------------------------------------------------------------ crm-audit checks and docs/checks.md


def test_checks_command_lists_and_filters(catalogue: Catalogue) -> None:
    runner = CliRunner()
    everything = runner.invoke(cli, ["checks"])
    assert everything.exit_code == 0, everything.output
    assert f"{len(catalogue)} check(s)" in everything.output
    crit = runner.invoke(cli, ["checks", "--probe", "tls", "--severity", "critical", "--format", "json"])
    rows = json.loads(crit.output)
    assert rows and {r["probe"] for r in rows} == {"tls"} and {r["severity"] for r in rows} == {"critical"}
    assert {r["id"] for r in rows} == {s.id for s in catalogue if s.probe == "tls" and s.severity.value == "critical"}
    tenant = json.loads(runner.invoke(cli, ["checks", "--needs", "second_tenant", "--format", "json"]).output)
    assert "access.tenant_leak" in {r["id"] for r in tenant} and all("second_tenant" in r["needs"] for r in tenant)
    none = json.loads(runner.invoke(cli, ["checks", "--needs", "none", "--format", "json"]).output)
    assert none and all(not r["needs"] for r in none)
    md = runner.invoke(cli, ["checks", "--probe", "backup", "--format", "markdown"])
    assert "## backup" in md.output and "## tls" not in md.output and "| `backup.stale` |" in md.output
    bad = runner.invoke(cli, ["checks", "--probe", "nosuch"])
    assert bad.exit_code == 2 and "nosuch" in bad.output


def test_docs_checks_md_is_generated_from_the_catalogue(catalogue: Catalogue) -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == as_markdown(list(catalogue)), \
        "docs/checks.md is out of date: python -m crm_audit.commands.checks --update-doc"


def test_a_waiver_naming_no_check_is_a_one_line_error(tmp_path: Path, catalogue: Catalogue) -> None:
    from crm_audit.ci.waivers import WaiverError, check_waiver_ids, parse_waivers

    def waivers(*ids: str) -> Any:
        return parse_waivers([{"id": i, "justification": "accepted", "by": "sec", "expires": dt.date(2999, 1, 1)}
                              for i in ids], "w.yaml")

    check_waiver_ids(waivers("access.bola.contacts", "tls.protocol.*", "access.bola", "indicator.perf.x"), catalogue)
    with pytest.raises(WaiverError) as err:
        check_waiver_ids(waivers("tls.protocol.*", "tsl.protocol.tls1_0_enabled"), catalogue, "w.yaml")
    assert str(err.value) == ("w.yaml: waivers[1].id: 'tsl.protocol.tls1_0_enabled' names no check of the catalogue "
                              "(`crm-audit checks` lists them)")
    with pytest.raises(WaiverError, match="'acess.*'"):
        check_waiver_ids(waivers("acess.*"), catalogue, "w.yaml")


# ------------------------------------------------------------------ the demo, every flaw switch


def _demo_audit(protocol: str, flaws: tuple[str, ...], only: list[str] | None, overrides: dict[str, Any],
                shape: Any = None, allow_writes: bool = True, extra_plugins: tuple[object, ...] = ()) -> AuditResult:
    """One in-process audit of a fresh demo server; ``shape`` may change the profile first."""
    from crm_audit.core.runner import RunOptions, run_audit
    from crm_audit_demo import DemoServer
    from crm_audit_demo.profile import demo_profile

    with DemoServer(flaws=flaws, protocol=protocol) as server:
        profile = demo_profile(server)
        plugins = {**profile.plugins, "latency": {"samples": 3, "warmup": 0}}
        for probe, opts in overrides.items():
            plugins[probe] = {**(plugins.get(probe) or {}), **opts}
        profile = profile.model_copy(update={"plugins": plugins})
        if shape is not None:
            profile = shape(profile)
        return run_audit(profile, make_plugin_manager(extra_plugins=extra_plugins),
                         RunOptions(only=only, allow_writes=allow_writes, allow_disruptive=True))


def _strict_flows(profile: Any) -> Any:
    """Every flow with an SLO no run can meet (flows.slo_exceeded)."""
    return profile.model_copy(update={"flows": [f.model_copy(update={"slo_s": 0.0001}) for f in profile.flows]})


def _strict_slos(profile: Any) -> Any:
    """Every flow and every latency endpoint with an SLO no answer can meet (flows.slo_exceeded,
    latency.slo_exceeded: 0.0001 ms, far below any round trip)."""
    return _strict_flows(profile).model_copy(update={
        "endpoints": [e.model_copy(update={"slo_p95_ms": 0.0001}) for e in profile.endpoints]})


def _missing_record_endpoint(profile: Any) -> Any:
    """Only one latency endpoint: a case id that does not exist, which the demo's missing-id-500 flaw answers
    with a 500 on every request (latency.errors)."""
    from crm_audit.core.profile import Endpoint

    return profile.model_copy(update={"endpoints": [Endpoint(name="missing case", path="/api/cases/999999937",
                                                             account="admin", slo_p95_ms=300)]})


def _api_key_only(profile: Any) -> Any:
    """Only the API-key account and no audit-log operation: registration cannot be followed by a
    password login (access.registration.open), no token to tamper with (access.token.jwt), no log to
    read (access.logging)."""
    adapter = dict(profile.adapter)
    adapter["operations"] = {k: v for k, v in (adapter.get("operations") or {}).items() if k != "audit_log"}
    access = {**profile.plugins["access"], "audit_log_path": None, "checks": ["registration", "tokens", "logging"]}
    return profile.model_copy(update={"accounts": [a for a in profile.accounts if a.name == "integration"],
                                      "adapter": adapter, "plugins": {"access": access}})


class _BrokenRegister:
    """A plugin whose adapter breaks when asked for the 'register' operation (access.error)."""

    @staticmethod
    def adapter() -> type:
        from typing import Literal

        from crm_audit.protocols.rest import RestAdapter, RestConfig

        class BrokenConfig(RestConfig):
            type: Literal["broken_rest"] = "broken_rest"  # type: ignore[assignment]

        class BrokenRest(RestAdapter):
            type = "broken_rest"
            config_model = BrokenConfig

            def offers(self, name: str) -> bool:
                if name == "register":
                    raise RuntimeError("broken on purpose")
                return super().offers(name)

        return BrokenRest

    from crm_audit.core.hookspecs import hookimpl

    @hookimpl
    def crm_audit_register_adapters(self) -> list[type]:
        return [self.adapter()]


def _broken_adapter(profile: Any) -> Any:
    access = {**profile.plugins["access"], "checks": ["registration"]}
    return profile.model_copy(update={"adapter": {**profile.adapter, "type": "broken_rest"},
                                      "plugins": {**profile.plugins, "access": access}})


@pytest.fixture(scope="module")
def demo_results() -> dict[str, AuditResult]:
    """Clean and all-flaws audits of both faces, and a few shaped ones for the checks the plain demo
    does not reach. The load ladder does not run (its findings depend on timing: load.yaml names the
    test that emits each from the probe's own judging code); TLS runs on the REST servers only (both
    faces share their TLS)."""
    from crm_audit_demo.flaws import FLAWS

    every = tuple(FLAWS)
    probes = sorted(make_plugin_manager().probes)
    no_load = [p for p in probes if p != "load"]
    no_tls = [p for p in no_load if p != "tls"]
    strict = {"access": {"max_openapi_paths": 0},  # the described operations beyond the cap: not assessed
              "data_quality": {"timeliness_days": 1, "expected": dict.fromkeys(
                  ("completeness", "validity", "uniqueness", "consistency", "timeliness"), 1.0)}}
    return {
        "rest, every flaw": _demo_audit("rest", every, no_load, {}),
        "rest, clean, strict": _demo_audit("rest", (), no_load, strict, _strict_slos),
        "jsonrpc, every flaw": _demo_audit("jsonrpc", every, no_tls, {}),
        "jsonrpc, clean": _demo_audit("jsonrpc", (), no_tls, {}),
        "rest, flows without writes": _demo_audit("rest", (), ["flows"], {}, allow_writes=False),
        "rest, missing id 500, latency": _demo_audit("rest", ("missing-id-500",), ["latency"], {},
                                                     _missing_record_endpoint),
        "rest, open registration, api key only": _demo_audit("rest", ("open-registration",), ["access"], {},
                                                             _api_key_only),
        "rest, broken adapter": _demo_audit("rest", (), ["access"], {}, _broken_adapter,
                                            extra_plugins=(_BrokenRegister(),)),
    }


@pytest.mark.integration
def test_every_id_the_demo_emits_is_in_the_catalogue(demo_results: dict[str, AuditResult],
                                                     catalogue: Catalogue) -> None:
    for name, result in demo_results.items():
        findings = result.all_findings()
        assert findings, name
        missing = sorted({f.id for f in findings if catalogue.find(f.id) is None})
        assert not missing, f"{name}: finding ids without a catalogue entry: {missing}"
        assert all(f.check == catalogue.find(f.id).id for f in findings), name  # type: ignore[union-attr]
        assert not [w for w in result.warnings if "no check catalogue entry" in w], name


@pytest.mark.integration
def test_every_catalogue_check_is_emitted_by_some_test(demo_results: dict[str, AuditResult],
                                                       catalogue: Catalogue) -> None:
    emitted = {f.check for r in demo_results.values() for f in r.all_findings()}
    by_test = {s.id for s in catalogue if s.emitted_by}
    assert not sorted(set(catalogue.checks) - emitted - by_test), "checks no test emits"


def test_each_emitted_by_test_exists_and_names_its_check(catalogue: Catalogue) -> None:
    for spec in catalogue:
        if spec.emitted_by is None:
            continue
        file, test = spec.emitted_by.split("::")
        src = (ROOT / file).read_text(encoding="utf-8")
        m = re.search(rf"^def {test}\(.*?(?=^def |^@|\Z)", src, re.S | re.M)
        assert m, f"{spec.id}: {spec.emitted_by} does not exist"
        named = {lit for lit in re.findall(r"[\"']([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)", m.group(0))
                 if (found := catalogue.find(lit)) is not None and found.id == spec.id}
        assert named, f"{spec.id}: {spec.emitted_by} names no finding id of this check"


@pytest.mark.integration
def test_latency_checks_fail_on_an_unmeetable_slo_and_a_failing_endpoint(demo_results: dict[str, AuditResult]) -> None:
    """The shaped runs above really fail the latency checks (not only skip them): every endpoint of the
    strict run is over its 0.0001 ms SLO, and the missing case answers 500 on every request."""
    strict = {f.id: f for f in demo_results["rest, clean, strict"].probe("latency").findings}
    assert strict["latency.slo_exceeded.list_contacts"].status is Status.failed
    broken = {f.id: f for f in demo_results["rest, missing id 500, latency"].probe("latency").findings}
    assert broken["latency.errors.missing_case"].status is Status.failed
    assert broken["latency.errors.missing_case"].evidence  # the 500 it answered


@pytest.mark.integration
def test_sarif_rules_are_catalogue_checks(demo_results: dict[str, AuditResult], catalogue: Catalogue) -> None:
    from crm_audit.report.sarif_reporter import sarif_log

    run = sarif_log(demo_results["rest, every flaw"])["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert "access.bola" in rules and "access.bola.contacts" not in rules
    assert rules["access.bola"]["shortDescription"]["text"] == catalogue.checks["access.bola"].title
    assert "external/cwe/cwe-639" in rules["access.bola"]["properties"]["tags"]
    assert {r["ruleId"] for r in run["results"]} <= set(rules) <= set(catalogue.checks)


# ------------------------------------------------------------------ checks the demo cannot show


def test_load_findings_of_a_degrading_server(catalogue: Catalogue) -> None:
    """The load probe's verdict on a ladder that breaks its SLO at 4 users, a sustained phase whose
    p95 doubles with 5 % errors, and no recovery: every load check fails (the probe's own judging code)."""
    from crm_audit_plugins.load.options import LoadOptions
    from crm_audit_plugins.load.probe import _result

    opts = LoadOptions(target_users=8, recovery_max_s=1.0)
    steps = [{"users": 1, "rps": 10.0, "p95_ms": 100.0, "within_slo": True, "errors": 0, "requests": 50},
             {"users": 2, "rps": 18.0, "p95_ms": 150.0, "within_slo": True, "errors": 0, "requests": 90},
             {"users": 4, "rps": 19.0, "p95_ms": 900.0, "within_slo": False, "errors": 0, "requests": 95}]
    run = {"steps": steps, "best": steps[1], "limits": {"stop_reason": "slo broken", "max_rps": None},
           "sustained": {"drift": 2.0, "error_rate": 0.05, "p95_first_half_ms": 150.0, "p95_second_half_ms": 300.0,
                         "duration_s": 10.0}}
    recovery = {"recovered": False, "recovery_s": None, "baseline_p50_ms": 20.0, "threshold_ms": 40.0,
                "endpoint": "list_contacts", "samples": []}
    result = _result("load", opts, 500.0, run, {"p50_ms": 20.0}, recovery)
    by_id = {f.id: f for f in result.findings}
    assert by_id["load.capacity_below_target"].status is Status.failed
    assert by_id["load.latency_drift"].status is Status.warn
    assert by_id["load.sustained_errors"].status is Status.failed
    assert by_id["load.no_recovery"].status is Status.failed
    assert {catalogue.find(fid).id for fid in by_id} == {  # type: ignore[union-attr]
        "load.capacity_below_target", "load.latency_drift", "load.sustained_errors", "load.no_recovery"}


def test_tls_findings_of_a_weak_dh_server_without_stapling(catalogue: Catalogue) -> None:
    """The TLS judge on a scan report with a 1024-bit DHE suite and an OCSP responder but no stapled answer."""
    from crm_audit_plugins.tls.cert import CertReport
    from crm_audit_plugins.tls.findings import server_findings
    from crm_audit_plugins.tls.scan import AcceptedCipher, ServerReport

    cert = CertReport(subject="CN=crm.example", issuer="CN=Example CA", sans=("crm.example",),
                      not_before="2026-01-01T00:00:00", not_after="2027-01-01T00:00:00", days_left=200,
                      expired=False, not_yet_valid=False, key_type="RSA", key_bits=2048,
                      signature="sha256WithRSAEncryption", signature_hash="sha256", sha1_in_chain=False,
                      self_signed=False, trusted=True, trust_anchor="Example CA", hostname="crm.example",
                      hostname_match=True, chain_length=2, ocsp_url="http://ocsp.example", ocsp_stapled=False,
                      must_staple=False)
    dhe = AcceptedCipher(protocol="TLS 1.2", name="TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", bits=128, kx="DHE",
                         forward_secret=True, kx_bits=1024)
    report = ServerReport(host="crm.example", port=443, protocols={"TLS 1.2": True, "TLS 1.3": True},
                          ciphers=(dhe,), certificate=cert)
    by_id = {f.id: f for f in server_findings(report, None)}
    assert by_id["tls.kex.weak_dh"].status is Status.failed and "1024" in by_id["tls.kex.weak_dh"].title
    assert by_id["tls.ocsp.not_stapled"].status is Status.warn
    assert catalogue.find("tls.kex.weak_dh").remediation.stacks["nginx"].startswith("ssl_dhparam")  # type: ignore[union-attr]


def test_every_checks_folder_ships_with_the_package() -> None:
    """A plain install carries each plugin's checks/*.yaml and the core's checks.yaml (pyproject package-data)."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    for folder in sorted((ROOT / "plugins").glob("*/checks")):
        assert "checks/*.yaml" in data.get(f"crm_audit_plugins.{folder.parent.name}", []), folder
    assert "checks.yaml" in data["crm_audit.core"]


@pytest.mark.integration
def test_rescoring_keeps_the_check_of_drawn_findings(demo_results: dict[str, AuditResult]) -> None:
    from crm_audit.core.postprocess import rescore

    result = demo_results["rest, every flaw"]
    assert result.indicator_findings and {f.check for f in result.indicator_findings} == {"indicator"}
    again = rescore(result, None)
    assert again.indicator_findings and {f.check for f in again.indicator_findings} == {"indicator"}
