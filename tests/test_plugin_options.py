"""Probe options checked against the profile, every problem reported, -o overrides, and what the runner fills in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from local_http import LocalServer, json_route
from pydantic import BaseModel, ConfigDict, ValidationError

from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import Finding, ProbeResult, Status
from crm_audit.core.options import (
    AccountName,
    OptionErrors,
    ResourceName,
    ScopedPath,
    apply_overrides,
    validate_options,
)
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.probe import Probe, ProbeContext
from crm_audit.core.profile import ProfileError, parse_profile
from crm_audit.core.runner import check_plugin_sections, probe_options, run_one
from crm_audit.core.target import Target

PROFILE = parse_profile("""
target: {base_url: "https://crm.example.test", scope: [crm.example.test, "*.cdn.example.test"]}
accounts: [{name: admin, role: admin}, {name: viewer, role: readonly}]
adapter: {type: rest, resources: {contacts: {path: /api/contacts}, leads: {path: /api/leads}}}
""", source="p.yaml")


class Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: AccountName | None = None
    resource: ResourceName = "contacts"
    log_path: ScopedPath = "/log"


def test_names_are_checked_against_the_profile() -> None:
    ok = validate_options(Opts, {"account": "viewer", "resource": "leads",
                                 "log_path": "https://x.cdn.example.test/log"}, PROFILE)
    assert (ok.account, ok.resource, ok.log_path) == ("viewer", "leads", "https://x.cdn.example.test/log")
    with pytest.raises(ValidationError) as caught:
        validate_options(Opts, {"account": "nosuch", "resource": "cases", "log_path": "https://evil.test/x"}, PROFILE)
    messages = [e["msg"] for e in caught.value.errors()]
    assert messages == ["Value error, unknown account 'nosuch' (accounts: admin, viewer)",
                        "Value error, unknown resource 'cases' (adapter.resources: contacts, leads)",
                        "Value error, host 'evil.test' is outside target.scope "
                        "['crm.example.test', '*.cdn.example.test']"]


def test_without_a_profile_the_types_accept_any_name() -> None:
    assert Opts.model_validate({"account": "anyone", "resource": "anything"}).account == "anyone"
    with pytest.raises(ValidationError):
        Opts.model_validate({"log_path": "bad\npath"})  # control characters never pass


class OptsProbe(Probe):
    id = "opts"
    options_model = Opts


def test_every_problem_of_every_section_is_listed_with_its_key() -> None:
    class Plugin:
        @staticmethod
        @hookimpl
        def crm_audit_register_probes() -> list[type[Probe]]:
            return [OptsProbe]

    reg = make_plugin_manager(extra_plugins=[Plugin()])
    profile = PROFILE.model_copy(update={"plugins": {
        "opts": {"account": "nosuch", "resource": "cases", "typo": 1}, "latency": {"samples": 0}, "nope": {}}})
    with pytest.raises(OptionErrors) as caught:
        check_plugin_sections(reg, profile)
    assert caught.value.lines == [
        "p.yaml: plugins.opts.account: unknown account 'nosuch' (accounts: admin, viewer)",
        "p.yaml: plugins.opts.resource: unknown resource 'cases' (adapter.resources: contacts, leads)",
        "p.yaml: plugins.opts.typo: unknown option",
        "p.yaml: plugins.latency.samples: Input should be greater than or equal to 1",
        f"p.yaml: plugins.nope: no probe named 'nope' (known: {', '.join(sorted(reg.probes))})",
    ]
    assert str(caught.value).startswith(caught.value.lines[0] + " (and 4 more problems")
    assert isinstance(caught.value, ProfileError)  # exit code 2 wherever it is raised
    with pytest.raises(OptionErrors, match="plugins.opts.account: unknown account"):
        probe_options(OptsProbe, profile)


def test_overrides_set_nested_keys_with_yaml_values() -> None:
    profile = PROFILE.model_copy(update={"plugins": {"latency": {"samples": 5, "warmup": 1}}})
    got = apply_overrides(profile, ["plugins.latency.samples=2", "plugins.access.checks=[anonymous, matrix]",
                                    "plugins.backup.operations.health.http.path=/up", "plugins.x.flag=true",
                                    "plugins.x.text=a=b", "plugins.x.none="])
    assert got.plugins["latency"] == {"samples": 2, "warmup": 1}
    assert got.plugins["access"] == {"checks": ["anonymous", "matrix"]}
    assert got.plugins["backup"] == {"operations": {"health": {"http": {"path": "/up"}}}}
    assert got.plugins["x"] == {"flag": True, "text": "a=b", "none": None}
    assert profile.plugins == {"latency": {"samples": 5, "warmup": 1}}  # the original is untouched
    for bad in ("latency.samples=2", "plugins.latency=2", "plugins.latency.samples", "plugins..x=1"):
        with pytest.raises(ProfileError, match="expected plugins.<probe>.<key>=<value>"):
            apply_overrides(profile, [bad])
    with pytest.raises(ProfileError, match="not valid YAML"):
        apply_overrides(profile, ["plugins.x.y=[unclosed"])


class Sloppy(Probe):
    id = "sloppy"
    title = "Sloppy"
    version = "2.0.0"

    def run(self, ctx: ProbeContext) -> ProbeResult:
        return ProbeResult(probe="whatever", findings=[
            Finding(id="a", title="a", status=Status.passed), Finding(id="b", title="b", probe="other")])


def test_the_runner_fills_what_it_knows(tmp_path: Path) -> None:
    ctx = ProbeContext(run_id="r", profile=PROFILE, target=Target(PROFILE), adapter=None, options=None,
                       allow_writes=False, allow_disruptive=False, workdir=tmp_path)
    result, interrupted = run_one(Sloppy, ctx)
    assert not interrupted and result.status == "ok"
    assert (result.probe, result.title, result.version) == ("sloppy", "Sloppy", "2.0.0")
    assert [f.probe for f in result.findings] == ["sloppy", "sloppy"]
    assert result.started and result.requests == 0


def test_audit_accepts_option_overrides(tmp_path: Path) -> None:
    with LocalServer({"/": json_route({}), "/api/ping": json_route({"ok": 1})}) as srv:
        profile = tmp_path / "p.yaml"
        profile.write_text(f"target: {{base_url: '{srv.base_url}'}}\nhierarchy: none\n"
                           "endpoints: [{name: ping, path: /api/ping}]\nplugins: {latency: {samples: 50}}\n")
        base = [sys.executable, "-m", "crm_audit", "audit", str(profile), "--only", "latency", "--out",
                str(tmp_path / "out"), "--format", "json", "-q"]
        bad = subprocess.run(base + ["-o", "plugins.latency.samples=0", "-o", "plugins.latency.nosuch=1"],
                             capture_output=True, text=True)
        assert bad.returncode == 2
        assert "plugins.latency.samples: Input should be greater than or equal to 1 (and 1 more problem" in bad.stderr
        assert not any("/api/ping" in h for h in srv.hits)
        run = subprocess.run(base + ["-o", "plugins.latency.samples=4", "-o", "plugins.latency.warmup=1"],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert sum(1 for h in srv.hits if h.startswith("GET /api/ping")) == 5  # 1 warm-up + 4 samples, not 50
    result = json.loads(next((tmp_path / "out").glob("*/result.json")).read_text())
    assert result["probes"][0]["probe"] == "latency" and result["probes"][0]["status"] == "ok"


def test_validate_lists_every_problem(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("target: {base_url: 'http://127.0.0.1:9'}\nprobes: [latency, nosuch]\n"
                       "plugins: {latency: {samples: 0, bogus: 1}, backup: {account: nobody}}\n")
    run = subprocess.run([sys.executable, "-m", "crm_audit", "validate", str(profile)], capture_output=True, text=True)
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert lines[0].startswith("crm-audit: error: unknown probe 'nosuch'")
    assert lines[1:] == [f"crm-audit: error: {profile}: plugins.latency.samples: Input should be greater than or equal to 1",
                         f"crm-audit: error: {profile}: plugins.latency.bogus: unknown option",
                         f"crm-audit: error: {profile}: plugins.backup.account: unknown account 'nobody' (accounts: none)"]
