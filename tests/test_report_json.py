"""JSON result: validates against the COMMITTED JSON Schema, which must equal the generated one;
the typed parts (scoring, baseline, waivers, signature, probe artifacts) can fail validation;
results of older schema versions load, unknown versions fail with one line; artifacts that do
not fit their probe's model are a warning of the audit, never a crash.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import report_fixtures as rf  # noqa: E402
from local_http import LocalServer, json_route  # noqa: E402

import crm_audit.protocols.rest  # noqa: E402
from crm_audit.commands.report import load_result  # noqa: E402
from crm_audit.core.artifacts import ProbeArtifacts  # noqa: E402
from crm_audit.core.hookspecs import hookimpl  # noqa: E402
from crm_audit.core.model import SCHEMA_VERSION, ProbeResult  # noqa: E402
from crm_audit.core.plugins import make_plugin_manager  # noqa: E402
from crm_audit.core.probe import Probe, ProbeContext  # noqa: E402
from crm_audit.core.profile import parse_profile  # noqa: E402
from crm_audit.core.runner import RunOptions, run_audit  # noqa: E402
from crm_audit.report.json_reporter import JsonReporter  # noqa: E402
from crm_audit.result_schema import generate_schema, render_schema  # noqa: E402

#: the committed file, read from the checkout; a missing file fails every test that needs it
SCHEMA_FILE = Path(__file__).parent.parent / "crm_audit" / "schema" / "audit-result.schema.json"

RESULTS = {"realistic": rf.realistic_result, "hostile": rf.hostile_result, "unscored": rf.unscored_result}


def committed_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def schema_errors(data: dict[str, Any]) -> list[str]:
    schema = committed_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]


def test_committed_schema_is_what_the_models_generate() -> None:
    """Drift fails: regenerate with `python -m crm_audit.result_schema > crm_audit/schema/audit-result.schema.json`."""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(generate_schema())


def test_committed_schema_constrains_the_typed_parts() -> None:
    schema = committed_schema()
    assert schema["$id"].endswith(f"audit-result-{SCHEMA_VERSION}.json")
    for part, model in (("scoring", "Scoring"), ("baseline", "BaselineComparison"), ("waivers", "WaiversRecord"),
                        ("signature", "Signature")):
        assert {"$ref": f"#/$defs/{model}"} in schema["properties"][part]["anyOf"], part
        assert schema["$defs"][model]["additionalProperties"] is False, model
    constrained = {rule["if"]["properties"]["probe"]["const"] for rule in schema["$defs"]["ProbeResult"]["allOf"]}
    built_in = {pid for pid, cls in make_plugin_manager().probes.items() if cls.artifacts_model is not None}
    assert {"latency", "load", "flows", "tls", "access", "backup", "data_quality", "kpi"} <= built_in == constrained


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_json_validates_against_the_committed_schema(name: str) -> None:
    data = json.loads(JsonReporter().render(RESULTS[name]()))
    assert schema_errors(data) == []


def _probe(data: dict[str, Any], probe_id: str) -> dict[str, Any]:
    return next(p for p in data["probes"] if p["probe"] == probe_id)


#: one malformed part each: the schema must name it
BREAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "scoring node key": lambda d: d["scoring"]["nodes"][0].update(scroe=1.0),
    "scoring score type": lambda d: d["scoring"]["overall"].update(score="high"),
    "scoring node kind": lambda d: d["scoring"]["nodes"][1].update(kind="branch"),
    "baseline finding ids": lambda d: d["baseline"]["new_findings"].append({"id": "x"}),
    "baseline regression": lambda d: d["baseline"]["regressions"][0].pop("p_value"),
    "waivers record": lambda d: d["waivers"].update(applied=1),
    "finding waiver": lambda d: next(f for p in d["probes"] for f in p["findings"] if f["waiver"])["waiver"].pop("by"),
    "signature algorithm": lambda d: d["signature"].update(algorithm="rsa"),
    "signature key": lambda d: d["signature"].update(state="signed"),
    "latency artifacts": lambda d: _probe(d, "latency")["artifacts"]["endpoints"][0].update(summary={"p95": "x"}),
    "load artifacts": lambda d: _probe(d, "load")["artifacts"].pop("max_sustainable_users"),
    "tls artifacts": lambda d: _probe(d, "tls")["artifacts"].update(servers="one"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_the_schema_fails_on_malformed_typed_parts(name: str) -> None:
    data = json.loads(JsonReporter().render(rf.realistic_result()))
    assert schema_errors(data) == []
    BREAKS[name](data)
    assert schema_errors(data), f"{name}: not caught by the committed schema"


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_json_loads_back_to_the_same_result(name: str, tmp_path: Path) -> None:
    result = RESULTS[name]()
    path = tmp_path / JsonReporter.filename
    path.write_text(JsonReporter().render(result), encoding="utf-8")
    assert load_result(path) == result


def test_json_is_indented_and_versioned() -> None:
    text = JsonReporter().render(rf.realistic_result())
    assert text.startswith('{\n  "schema_version": "1.2"')
    assert text.endswith("}\n")


def _as_version_1_1(data: dict[str, Any]) -> dict[str, Any]:
    """What crm-audit 1.1 wrote: the same shape, without the scored nodes' children."""
    old = copy.deepcopy(data)
    old["schema_version"] = "1.1"
    for node in old["scoring"]["nodes"]:
        node.pop("children", None)
    return old


def test_a_result_of_schema_1_1_still_loads_and_re_renders(tmp_path: Path) -> None:
    data = json.loads(JsonReporter().render(rf.realistic_result()))
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_as_version_1_1(data)), encoding="utf-8")
    old = load_result(path)
    assert old.schema_version == "1.1"
    assert old.scoring is not None and all(n.children == [] for n in old.scoring.nodes)
    assert old.scoring.overall.score == data["scoring"]["overall"]["score"]
    assert old.baseline is not None and old.baseline.new_findings == data["baseline"]["new_findings"]
    assert JsonReporter().render(old)  # reporters read it as they read a new one


def test_an_unknown_schema_version_fails_with_one_line(tmp_path: Path) -> None:
    data = json.loads(JsonReporter().render(rf.unscored_result()))
    data["schema_version"] = "9.0"
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(Exception) as err:
        load_result(path)
    message = str(err.value)
    assert "\n" not in message and "schema version '9.0'" in message and "1.2" in message


# ------------------------------------------------------------------ artifacts checked by the runner


class GoodArtifacts(ProbeArtifacts):
    rows: list[int]


class DeclaringProbe(Probe):
    """Returns the artifacts the test server gives it, under a declared model."""

    id, title, version = "t_declared", "declares its artifacts", "1.0"
    artifacts_model = GoodArtifacts
    quiet_target = False

    def run(self, ctx: ProbeContext) -> ProbeResult:
        ex = ctx.target.request("GET", "/artifacts")
        return ProbeResult(probe=self.id, artifacts=json.loads(ex.body or b"{}"))


class Plugin:
    @hookimpl
    def crm_audit_register_probes(self) -> list[type[Probe]]:
        return [DeclaringProbe]


@pytest.mark.parametrize("served, misfit", [({"rows": [1, 2]}, False), ({"rows": "two"}, True),
                                            ({"rows": [1], "extra": 1}, True)])
def test_runner_warns_when_artifacts_do_not_fit_their_model(served: dict[str, Any], misfit: bool) -> None:
    with LocalServer({"/artifacts": json_route(served), "/": json_route({})}) as srv:
        profile = parse_profile(f"target: {{base_url: '{srv.base_url}'}}\nhierarchy: none\n")
        reg = make_plugin_manager([Plugin(), crm_audit.protocols.rest], entry_points=False)
        result = run_audit(profile, reg, RunOptions(only=["t_declared"]))
    probe = result.probe("t_declared")
    assert probe is not None and probe.status == "ok" and probe.artifacts == served  # kept as returned
    warned = [w for w in result.warnings if "t_declared: artifacts do not fit GoodArtifacts" in w]
    assert bool(warned) is misfit, result.warnings


def test_a_signed_result_of_schema_1_1_still_verifies_and_loads(tmp_path: Path) -> None:
    """verify checks the bytes as written, so an older signed file verifies; loading types its signature."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from crm_audit.ci.signing import VerificationError, sign_document, verify_file

    key = Ed25519PrivateKey.generate()
    data = json.loads(JsonReporter().render(rf.realistic_result()))
    data.pop("signature")
    signed = sign_document(_as_version_1_1(data), key)
    path = tmp_path / "signed-1.1.json"
    path.write_text(json.dumps(signed, indent=2), encoding="utf-8")
    assert verify_file(path, key.public_key())["algorithm"] == "ed25519"
    loaded = load_result(path)
    assert loaded.signature is not None and loaded.signature.value == signed["signature"]["value"]
    tampered = {**signed, "scoring": {**signed["scoring"], "coverage": 0.99}}
    path.write_text(json.dumps(tampered), encoding="utf-8")
    with pytest.raises(VerificationError):
        verify_file(path, key.public_key())
