"""The ahp, score and compare commands, through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_audit.commands.scoring import COMMANDS, ahp, compare, score
from crm_audit.core.model import AuditResult, Finding, Measurement, ProbeResult, Severity, TargetSummary

EXAMPLE_EVIDENCE = str(Path(__file__).resolve().parents[1] / "examples" / "evidence.yaml")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def make_result(name: str, p95_ms: float, finding_severity: Severity | None = None) -> AuditResult:
    findings = [Finding(id="tls.x", title="x", severity=finding_severity, indicator="sec.transport")] if finding_severity else []
    return AuditResult(
        tool={"name": "crm-audit", "version": "test"}, run_id=f"run-{name}",
        target=TargetSummary(name=name, base_url="https://crm.example", scope=["crm.example"]),
        profile_digest="sha256:0", started="2024-05-01T00:00:00Z",
        probes=[
            ProbeResult(probe="latency", measurements=[
                Measurement(indicator="perf.response_time_p95", value=p95_ms, unit="ms", expected=300)]),
            ProbeResult(probe="tls", findings=findings, measurements=[
                Measurement(indicator="sec.transport", value=60 if finding_severity else 100, unit="score")]),
        ],
    )


def save(tmp_path: Path, result: AuditResult, name: str) -> str:
    path = tmp_path / name
    path.write_text(result.model_dump_json(indent=2))  # includes computed fields, as the runner writes
    return str(path)


def one_error_line(output: str) -> bool:
    lines = [line for line in output.splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("crm-audit: error: ") and "Traceback" not in output


def test_commands_exported():
    assert [c.name for c in COMMANDS] == ["ahp", "score", "compare"]


# ---------------------------------------------------------------- ahp

def test_ahp_json(runner, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("criteria: [Experience, Education, Charisma, Age]\n"
                    "matrix:\n  - [1, 4, 3, 7]\n  - [1/4, 1, 1/3, 3]\n  - [1/3, 3, 1, 5]\n  - [1/7, 1/3, 1/5, 1]\n")
    res = runner.invoke(ahp, [str(path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert list(data) == ["criteria", "weights", "lambda_max", "ci", "cr", "consistent", "ri", "ri_table"]
    assert data["criteria"] == ["Experience", "Education", "Charisma", "Age"]
    assert data["weights"] == pytest.approx([0.547, 0.127, 0.270, 0.056], abs=6e-4)
    assert data["consistent"] is True and data["cr"] == pytest.approx(0.044, abs=5e-4)


def test_ahp_table(runner, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("criteria: [speed, safety]\nmatrix: [[1, 3], [1/3, 1]]\n")
    res = runner.invoke(ahp, [str(path)])
    assert res.exit_code == 0
    assert "speed" in res.output and "0.7500" in res.output and "CR = 0.0000" in res.output


def test_ahp_inconsistent_exits_1_naming_the_pair(runner, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("criteria: [a, b, c]\nmatrix: [[1, 3, 5], [1/3, 1, 7], [1/5, 1/7, 1]]\n")
    res = runner.invoke(ahp, [str(path), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["consistent"] is False
    assert "most inconsistent pair" in res.stderr


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("criteria: [a, b]\nmatrix: [[1, 3], [3, 1]]\n", "not reciprocal"),
        ("criteria: [a]\nmatrix: [[1, 3], [1/3, 1]]\n", "criteria"),
        ("matrix: [[1, 3]]\n", "square"),
        ("weights: [1]\n", "matrix"),
        ("matrix: [[1, 3], [1/3, 1\n", "not valid YAML"),
    ],
)
def test_ahp_bad_input_exits_2_with_one_line(runner, tmp_path, text, fragment):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    res = runner.invoke(ahp, [str(path)])
    assert res.exit_code == 2 and fragment in res.output and one_error_line(res.output)


def test_ahp_missing_file(runner, tmp_path):
    res = runner.invoke(ahp, [str(tmp_path / "none.yaml")])
    assert res.exit_code == 2 and one_error_line(res.output)


# ---------------------------------------------------------------- score

def test_score_prints_table_and_writes_nothing(runner, tmp_path):
    path = save(tmp_path, make_result("acme", 250), "a.json")
    before = sorted(p.name for p in tmp_path.iterdir())
    res = runner.invoke(score, [path, "--hierarchy", "security"])
    assert res.exit_code == 0, res.output
    assert "perf.response_time_p95" in res.output and "not assessed" in res.output
    assert "coverage" in res.output.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_score_json_with_evidence(runner, tmp_path):
    path = save(tmp_path, make_result("acme", 250), "a.json")
    res = runner.invoke(score, [path, "--hierarchy", "vendor-selection", "--evidence", EXAMPLE_EVIDENCE, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["hierarchy"] == "vendor-selection"
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["cost.npv"]["evidence"]["supplied_by"] == "J. Doe, procurement"
    assert nodes["cost"]["assessed"]


def test_score_out_writes_the_updated_result_atomically(runner, tmp_path):
    path = save(tmp_path, make_result("acme", 250), "a.json")
    out = tmp_path / "rescored.json"
    res = runner.invoke(score, [path, "--hierarchy", "default", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rescored = AuditResult.model_validate_json(json.dumps(_strip(json.loads(out.read_text()))))
    assert rescored.scoring["hierarchy"] == "default" and rescored.run_id == "run-acme"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    # re-scoring the re-scored file reuses its hierarchy
    again = runner.invoke(score, [str(out), "--json"])
    assert json.loads(again.output)["hierarchy"] == "default"


def _strip(data):
    for probe in data["probes"]:
        for m in probe["measurements"]:
            m.pop("difference", None)
            m.pop("meets_expected", None)
    return data


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--hierarchy", "nonexistent"], "unknown hierarchy"),
        (["--evidence", "/nonexistent/ev.yaml"], "cannot read"),
    ],
)
def test_score_bad_options_exit_2(runner, tmp_path, args, fragment):
    path = save(tmp_path, make_result("acme", 250), "a.json")
    res = runner.invoke(score, [path, *args])
    assert res.exit_code == 2 and fragment in res.output and one_error_line(res.output)


@pytest.mark.parametrize("content, fragment", [("{not json", "not JSON"), ('{"run_id": 1}', "not an AuditResult"), ("[]", "not an AuditResult")])
def test_score_bad_result_file_exit_2(runner, tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content)
    res = runner.invoke(score, [str(path)])
    assert res.exit_code == 2 and fragment in res.output and one_error_line(res.output)


# ---------------------------------------------------------------- compare

def test_compare_table_and_json(runner, tmp_path):
    a = save(tmp_path, make_result("acme", 250), "a.json")
    b = save(tmp_path, make_result("globex", 900, Severity.high), "b.json")
    c = save(tmp_path, make_result("initech", 400), "c.json")
    res = runner.invoke(compare, [a, b, c, "--hierarchy", "default", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    rows = {r["label"]: r for r in data["results"]}
    assert rows["acme"]["rank_score"] == 1 and rows["globex"]["rank_score"] == 3
    assert rows["acme"]["rank_grey"] == 1 and rows["acme"]["grey_grade"] == pytest.approx(1.0)
    assert set(data["indicators"]) == {"perf.response_time_p95", "sec.transport"}
    assert data["rho"] == 0.5
    table = runner.invoke(compare, [a, b, c, "--hierarchy", "default"])
    assert table.exit_code == 0
    assert table.output.index("acme") < table.output.index("initech") < table.output.index("globex")


def test_compare_uses_stored_scoring_and_labels_repeated_targets(runner, tmp_path):
    later = make_result("acme", 600).model_copy(update={"run_id": "run-acme-2"})
    first = runner.invoke(score, [save(tmp_path, make_result("acme", 250), "a.json"), "--out", str(tmp_path / "a2.json")])
    second = runner.invoke(score, [save(tmp_path, later, "b.json"), "--out", str(tmp_path / "b2.json")])
    assert first.exit_code == second.exit_code == 0
    res = runner.invoke(compare, [str(tmp_path / "a2.json"), str(tmp_path / "b2.json"), "--json"])
    assert res.exit_code == 0, res.output
    labels = [r["label"] for r in json.loads(res.output)["results"]]
    assert labels == ["acme (run-acme)", "acme (run-acme-2)"]


def test_compare_refuses_mixed_hierarchies(runner, tmp_path):
    runner.invoke(score, [save(tmp_path, make_result("a", 250), "a.json"), "--hierarchy", "default", "--out", str(tmp_path / "a2.json")])
    runner.invoke(score, [save(tmp_path, make_result("b", 250), "b.json"), "--hierarchy", "security", "--out", str(tmp_path / "b2.json")])
    res = runner.invoke(compare, [str(tmp_path / "a2.json"), str(tmp_path / "b2.json")])
    assert res.exit_code == 2 and "different hierarchies" in res.output and one_error_line(res.output)


def test_compare_usage_errors(runner, tmp_path):
    a = save(tmp_path, make_result("a", 250), "a.json")
    res = runner.invoke(compare, [a])
    assert res.exit_code == 2 and one_error_line(res.output)
    res = runner.invoke(compare, [a, a, "--evidence", EXAMPLE_EVIDENCE])
    assert res.exit_code == 2 and "--hierarchy" in res.output
    res = runner.invoke(compare, [a, a, "--hierarchy", "default", "--evidence", EXAMPLE_EVIDENCE])
    assert res.exit_code == 2 and "one --evidence per result" in res.output


# ---------------------------------------------------------------- issue 21: reference, normalisation, RI, hierarchy CR

def test_compare_against_a_target_profile_with_min_max(runner, tmp_path):
    """Scores: acme p95 250 ms, globex 900 ms, initech 400 ms; target p95 score 100, TLS 100.
    With --normalise benefit, min–max over (target, CRMs) per indicator; the TLS column is
    constant (all 100) → 1. acme is closest to the target on p95, so it ranks first."""
    a = save(tmp_path, make_result("acme", 250), "a.json")
    b = save(tmp_path, make_result("globex", 900), "b.json")
    c = save(tmp_path, make_result("initech", 400), "c.json")
    ref = tmp_path / "target.yaml"
    ref.write_text("perf.response_time_p95: 100\nsec.transport: 100\n")
    res = runner.invoke(compare, [a, b, c, "--hierarchy", "default", "--reference", str(ref),
                                  "--normalise", "benefit", "--rho", "0.4", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["reference"] == "given" and data["rho"] == 0.4
    assert data["normalisation"] == {"perf.response_time_p95": "benefit", "sec.transport": "benefit"}
    assert data["ideal"] == [1.0, 1.0]
    ranks = {r["label"]: r["rank_grey"] for r in data["results"]}
    assert ranks == {"acme": 1, "initech": 2, "globex": 3}
    text = runner.invoke(compare, [a, b, c, "--hierarchy", "default", "--reference", str(ref), "--normalise", "sec.transport=cost"])
    assert text.exit_code == 0 and "against the target profile" in text.output


@pytest.mark.parametrize("args, fragment", [
    (["--normalise", "zscore"], "unknown rule 'zscore'"),
    (["--rho", "0"], "rho must be in (0, 1]"),
    (["--reference", "missing.yaml"], "cannot read"),
    (["--normalise", "nope.id=cost"], "not in the hierarchy"),
])
def test_compare_bad_options_give_one_line_and_exit_2(runner, tmp_path, args, fragment):
    a = save(tmp_path, make_result("acme", 250), "a.json")
    b = save(tmp_path, make_result("globex", 900), "b.json")
    res = runner.invoke(compare, [a, b, "--hierarchy", "default", *args])
    assert res.exit_code == 2 and one_error_line(res.output) and fragment in res.output, res.output


def test_compare_reference_scores_are_checked(runner, tmp_path):
    a = save(tmp_path, make_result("acme", 250), "a.json")
    b = save(tmp_path, make_result("globex", 900), "b.json")
    ref = tmp_path / "target.yaml"
    ref.write_text("perf.response_time_p95: 120\n")
    res = runner.invoke(compare, [a, b, "--reference", str(ref)])
    assert res.exit_code == 2 and one_error_line(res.output) and "from 0 to 100" in res.output


def test_ahp_ri_table_option(runner, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("matrix:\n  - [1, 4, 3, 7]\n  - [1/4, 1, 1/3, 3]\n  - [1/3, 3, 1, 5]\n  - [1/7, 1/3, 1/5, 1]\n")
    res = runner.invoke(ahp, [str(path), "--ri-table", "donegan-dodd", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["ri"] == 0.8286 and data["ri_table"] == "donegan-dodd"
    assert data["cr"] == pytest.approx(data["ci"] / 0.8286)
    bad = runner.invoke(ahp, [str(path), "--ri-table", "saaty1990"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_ahp_of_a_whole_hierarchy(runner):
    res = runner.invoke(ahp, ["security", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [m["node"] for m in data["matrices"]] == ["crm", "sec"] and data["matrices"][0]["global_weight"] == 1.0
    sec = data["matrices"][1]
    assert data["cr"] == pytest.approx((data["matrices"][0]["ci"] + sec["global_weight"] * sec["ci"])
                                       / (1.41 + sec["global_weight"] * 1.24))
    assert data["consistent"] is True
    table = runner.invoke(ahp, ["security", "--ri-table", "saaty2005"])
    assert table.exit_code == 0 and "CR = Σ w·CI / Σ w·RI" in table.output and "saaty2005" in table.output
    missing = runner.invoke(ahp, ["no-such-hierarchy"])
    assert missing.exit_code == 2 and one_error_line(missing.output)


def test_help_of_the_new_options_teaches_with_examples(runner):
    assert "Example: --normalise benefit" in runner.invoke(compare, ["--help"]).output
    assert "crm-audit ahp matrix.yaml --ri-table" in runner.invoke(ahp, ["--help"]).output


def test_score_judges_the_result_again(runner, tmp_path):
    """Issue 14: a re-scored result carries its verdict; the terminal says it."""
    path = save(tmp_path, make_result("acme", 250, Severity.critical), "a.json")
    out = tmp_path / "judged.json"
    res = runner.invoke(score, [path, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "verdict Not fit: 1 open critical finding(s): tls.x" in res.output
    assert json.loads(out.read_text())["verdict"]["verdict"] == "Not fit"


def test_compare_flags_results_resting_on_different_coverage(runner, tmp_path):
    """Issue 14: a ranking of a 7 % audit against a fuller one is flagged, on stderr and in the JSON."""
    full = make_result("acme", 250)
    dq = ProbeResult(probe="data_quality", measurements=[
        Measurement(indicator=f"dq.{k}", value=1.0, unit="ratio") for k in ("completeness", "validity", "uniqueness")])
    full = full.model_copy(update={"probes": full.probes + [dq]})
    thin = make_result("thin", 250)
    thin = thin.model_copy(update={"probes": thin.probes[:1]})
    a = save(tmp_path, full, "a.json")
    b = save(tmp_path, thin, "b.json")
    res = runner.invoke(compare, [a, b, "--hierarchy", "default", "--json"])
    assert res.exit_code == 0
    assert "coverage differs by" in res.stderr
    data = json.loads(res.stdout)
    assert data["coverage_warning"].startswith("coverage differs by")
    same = runner.invoke(compare, [a, a, "--hierarchy", "default", "--json"])
    assert "coverage_warning" not in json.loads(same.stdout)
