"""Scoring commands: ``ahp`` (weights from a comparison matrix), ``score`` (re-score a saved
result, offline) and ``compare`` (rank several audited CRMs). None contacts a target.

Exit codes: 0 done; 1 ``ahp`` found the matrix inconsistent (CR ≥ 0.10); 2 usage or input
error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from crm_audit.core.errors import UsageError
from crm_audit.core.model import AuditResult, load_result
from crm_audit.core.safeyaml import load_file
from crm_audit.fsutil import write_atomic
from crm_audit.scoring import (
    AhpError,
    EvidenceError,
    HierarchyError,
    ahp_weights,
    fuzzy,
    load_evidence,
    load_hierarchy,
    score_result,
)
from crm_audit.scoring.ahp import RI_TABLES
from crm_audit.scoring.grey import NORMALISATIONS, RHO
from crm_audit.scoring.render import (
    COMPARE_HEADERS,
    SCORING_HEADERS,
    compare_rows,
    format_table,
    overall_line,
    scoring_rows,
)


class InputError(UsageError, click.ClickException):
    """A bad input file or option: one line on stderr, exit code 2."""

    def show(self, file: Any = None) -> None:
        click.echo(f"crm-audit: error: {self.format_message()}", err=True)


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Rich table on a terminal, plain aligned text otherwise (pipes, CI logs, tests)."""
    if sys.stdout.isatty():
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:  # pragma: no cover - rich is a dependency
            pass
        else:
            table = Table(*headers, show_lines=False)
            for row in rows:
                table.add_row(*row)
            Console().print(table)
            return
    click.echo(format_table(headers, rows))


def read_result(path: str) -> AuditResult:
    """Load a saved AuditResult JSON; input problems become one-line InputErrors."""
    try:
        return load_result(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _hierarchy(name: str, result: AuditResult | None = None) -> Any:
    """The hierarchy ``name`` with the installed plugins' indicators merged in, as the audit scored it."""
    from crm_audit.core.plugins import make_plugin_manager
    from crm_audit.scoring.extend import collect_indicators

    probes = {p.probe for p in result.probes} if result is not None else set()  # with the installed plugins' probes
    try:
        indicators = collect_indicators(make_plugin_manager().hook.crm_audit_register_indicators)
        return load_hierarchy(name, known_probes=probes, indicators=indicators)
    except HierarchyError as exc:
        raise InputError(str(exc)) from None


def _evidence(path: str | None) -> Any:
    try:
        return load_evidence(path)
    except EvidenceError as exc:
        raise InputError(str(exc)) from None


@click.command("ahp")
@click.argument("matrix_file", metavar="MATRIX.yaml|HIERARCHY")
@click.option("--ri-table", "ri_table", type=click.Choice(list(RI_TABLES)), default=None,
              help="Random-index table for CR: saaty1980 (default), saaty2005, donegan-dodd, cn-textbook. "
                   "Example: crm-audit ahp matrix.yaml --ri-table donegan-dodd. For a hierarchy it overrides its ri_table key.")
@click.option("--json", "as_json", is_flag=True, help="Print weights, λmax, CI, CR (or, for a hierarchy, every matrix and the hierarchy-wide CR) as JSON.")
def ahp(matrix_file: str, ri_table: str | None, as_json: bool) -> None:
    """AHP weights of a pairwise-comparison matrix (Saaty 1–9), with λmax, CI and CR —
    or the consistency of a whole hierarchy.

    A matrix file holds `criteria: [names]` and `matrix:` (full n×n rows; numbers or
    fractions such as 1/3). A hierarchy (a file with `nodes:`, or a bundled name such as
    `security`) gets every AHP matrix listed and the hierarchy-wide
    CR = Σ w·CI / Σ w·RI, w the global weight of the node whose children each matrix compares.
    Exits 1 when CR ≥ 0.10, naming the most inconsistent pair.

    \b
    Examples:
      crm-audit ahp matrix.yaml
      crm-audit ahp matrix.yaml --ri-table saaty2005 --json
      crm-audit ahp security                      # bundled hierarchy: every matrix + hierarchy CR
      crm-audit ahp my-hierarchy.yaml --ri-table cn-textbook
    """
    data = _read_yaml(matrix_file) if Path(matrix_file).is_file() or matrix_file.endswith((".yaml", ".yml")) else None
    if data is None or (isinstance(data, dict) and "nodes" in data):
        _hierarchy_consistency(matrix_file, ri_table, as_json)
        return
    if not isinstance(data, dict) or "matrix" not in data:
        raise InputError(f"{matrix_file}: expected 'criteria: [names]' and 'matrix: [[…], …]' (or a hierarchy with 'nodes:')")
    matrix = data["matrix"]
    n = len(matrix) if isinstance(matrix, list) else 0
    criteria = data.get("criteria") or [f"C{i + 1}" for i in range(n)]
    if not isinstance(criteria, list) or len(criteria) != n or len(set(map(str, criteria))) != n:
        raise InputError(f"{matrix_file}: 'criteria' must list {n} distinct names, one per matrix row")
    criteria = [str(c) for c in criteria]
    try:
        result = ahp_weights(matrix, ri_table or "saaty1980")
    except AhpError as exc:
        raise InputError(f"{matrix_file}: {exc}") from None
    if as_json:
        click.echo(json.dumps(result.as_dict(criteria), indent=2))
    else:
        _print_table(("criterion", "weight"), [[c, f"{w:.4f}"] for c, w in zip(criteria, result.weights)])
        verdict = "consistent" if result.consistent else "inconsistent"
        click.echo(f"λmax = {result.lambda_max:.4f}   CI = {result.ci:.4f}   CR = {result.cr:.4f} "
                   f"({verdict}, threshold 0.10; RI {result.ri:g} from {result.ri_table})")
    if not result.consistent:
        click.echo(f"crm-audit: {result.inconsistency_message(criteria)}", err=True)
        sys.exit(1)


def _read_yaml(path: str) -> Any:
    return load_file(path, "file", InputError).data


def _hierarchy_consistency(name: str, ri_table: str | None, as_json: bool) -> None:
    """Print every AHP matrix of a hierarchy and its hierarchy-wide CR; exit 1 if CR ≥ 0.10."""
    try:
        hierarchy = load_hierarchy(name, ri_table=ri_table)
    except HierarchyError as exc:
        raise InputError(str(exc)) from None
    c = hierarchy.consistency()
    if as_json:
        click.echo(json.dumps({"hierarchy": hierarchy.name, "ri_table": hierarchy.ri_table, **c.as_dict()}, indent=2))
    else:
        rows = [[node, str(n), f"{w:.4f}", f"{ci:.4f}", f"{ri:g}", f"{cr:.4f}"] for node, w, n, ci, ri, cr in c.matrices]
        _print_table(("node", "n", "global weight", "CI", "RI", "CR"), rows)
        verdict = "consistent" if c.consistent else "inconsistent"
        click.echo(f"hierarchy {hierarchy.name}: {len(c.matrices)} AHP matrix(es); CR = Σ w·CI / Σ w·RI = "
                   f"{c.ci:.4f} / {c.ri:.4f} = {c.cr:.4f} ({verdict}, threshold 0.10; RI table {hierarchy.ri_table})")
    if not c.consistent:
        click.echo(f"crm-audit: hierarchy {hierarchy.name} is inconsistent: CR = {c.cr:.3f} ≥ 0.10", err=True)
        sys.exit(1)


@click.command("score")
@click.argument("result_file", metavar="RESULT.json")
@click.option("--hierarchy", "hierarchy_name", default=None,
              help="Hierarchy name (default, security, vendor-selection) or path; default: the one the result was scored with, else 'default'.")
@click.option("--evidence", "evidence_file", default=None, help="Evidence file (YAML or CSV) for indicators no API can show.")
@click.option("--json", "as_json", is_flag=True, help="Print the scoring as JSON.")
@click.option("--out", "out_file", default=None, help="Write the re-scored AuditResult JSON here (atomically).")
def score(result_file: str, hierarchy_name: str | None, evidence_file: str | None, as_json: bool, out_file: str | None) -> None:
    """Re-score a saved audit result against a hierarchy, without contacting the target."""
    from crm_audit.core.verdict import finalize

    result = read_result(result_file)
    name = hierarchy_name or (result.scoring.hierarchy if result.scoring is not None else None) or "default"
    from crm_audit.core.catalogue import check_drawn

    judged = check_drawn(finalize(result, _hierarchy(name, result), _evidence(evidence_file)))
    scoring = judged.scoring
    assert scoring is not None, "finalize with a hierarchy always scores"
    if out_file:
        try:
            write_atomic(out_file, judged.model_dump_json(indent=2) + "\n")
        except OSError as exc:
            raise InputError(f"--out {out_file}: cannot write: {exc.strerror or exc}") from None
    if as_json:
        click.echo(json.dumps(scoring.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    _print_table(SCORING_HEADERS, scoring_rows(scoring))
    member = scoring.overall.membership
    if member:
        h = _hierarchy(name, result)
        value = fuzzy.defuzzify([member[g] for g in h.grade_scale.names], h.grade_scale)
        values = "/".join(f"{v:g}" for v in h.grade_scale.values)
        click.echo(f"fuzzy operator {h.fuzzy_operator}; defuzzified score {value:.1f} (grade values {values})")
    click.echo(overall_line(scoring))
    if judged.verdict is not None:
        click.echo(f"verdict {judged.verdict.verdict}: {'; '.join(judged.verdict.reasons)}")


#: coverages further apart than this make a ranking misleading; compare says so
COVERAGE_GAP = 0.10


@click.command("compare")
@click.argument("result_files", nargs=-1, required=True, metavar="A.json B.json …")
@click.option("--hierarchy", "hierarchy_name", default=None,
              help="Re-score every result against this hierarchy (name or path) instead of using their stored scoring.")
@click.option("--evidence", "evidence_files", multiple=True,
              help="Evidence file per result, in the same order (repeat; only with --hierarchy).")
@click.option("--reference", "reference_file", default=None, metavar="FILE",
              help="Target profile to compare against instead of the ideal: a YAML/JSON mapping of indicator ids to "
                   "target scores 0–100, e.g. '{perf.response_time_p95: 90, sec.transport: 100}'. "
                   "Only indicators in it (and assessed in every result) are used.")
@click.option("--normalise", "normalise", multiple=True, metavar="RULE|ID=RULE",
              help=f"Normalisation of the grey relational analysis, for all indicators (RULE) or one (ID=RULE); repeat. "
                   f"Rules: {', '.join(NORMALISATIONS)} (default none: scores / 100). "
                   "Example: --normalise benefit --normalise cost.tco=cost")
@click.option("--rho", type=float, default=RHO, show_default=True,
              help="Distinguishing coefficient ρ in (0, 1]; smaller spreads the grades. Example: --rho 0.3")
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as JSON.")
def compare(result_files: tuple[str, ...], hierarchy_name: str | None, evidence_files: tuple[str, ...],
            reference_file: str | None, normalise: tuple[str, ...], rho: float, as_json: bool) -> None:
    """Rank audited CRMs by weighted score and by grey relational grade.

    The grey relational grade compares each CRM's indicator scores with a reference
    series: the ideal (best score per indicator) or a target profile (--reference).

    \b
    Examples:
      crm-audit compare a/result.json b/result.json
      crm-audit compare a.json b.json --reference target.yaml --normalise benefit --rho 0.5
      crm-audit compare a.json b.json --hierarchy vendor-selection --evidence a.yaml --evidence b.yaml --json
    """
    if len(result_files) < 2:
        raise InputError("compare needs at least two result files")
    if evidence_files and not hierarchy_name:
        raise InputError("--evidence needs --hierarchy (evidence is applied when re-scoring)")
    if evidence_files and len(evidence_files) != len(result_files):
        raise InputError(f"give one --evidence per result ({len(result_files)}), got {len(evidence_files)}")
    default_rule, per_indicator = _normalise_option(normalise)
    reference = _reference(reference_file) if reference_file else None
    entries: list[dict[str, Any]] = []
    for k, path in enumerate(result_files):
        result = read_result(path)
        if hierarchy_name:
            evidence = _evidence(evidence_files[k]) if evidence_files else None
            scoring = score_result(result, _hierarchy(hierarchy_name, result), evidence)
        elif result.scoring:
            scoring = result.scoring
        else:
            scoring = score_result(result, _hierarchy("default", result))
        entries.append({"label": result.target.name, "file": path, "run_id": result.run_id, "scoring": scoring})
    labels = [e["label"] for e in entries]
    if len(set(labels)) != len(labels):  # same CRM audited twice: tell the runs apart
        for e in entries:
            e["label"] = f"{e['label']} ({e['run_id']})"
    from crm_audit.scoring.compare import CompareError, compare_scorings  # scipy: only when comparing (fast --help)

    try:
        comparison = compare_scorings(entries, rho, reference, default_rule, per_indicator)
    except CompareError as exc:
        hint = "; pass --hierarchy to score them alike" if "different hierarchies" in str(exc) else ""
        raise InputError(f"{exc}{hint}") from None
    except (KeyError, TypeError) as exc:
        raise InputError(f"a stored scoring is malformed ({exc}); pass --hierarchy to re-score") from None
    covs = [float(e["scoring"].get("coverage") or 0.0) for e in entries]
    if max(covs) - min(covs) > COVERAGE_GAP:
        spread = ", ".join(f"{e['label']} {c:.0%}" for e, c in zip(entries, covs))
        comparison["coverage_warning"] = (f"coverage differs by {max(covs) - min(covs):.0%} ({spread}): the scores rest "
                                          "on different evidence; rank by the grey grade over shared indicators, or "
                                          "audit them alike")
        click.echo(f"crm-audit: warning: {comparison['coverage_warning']}", err=True)
    if as_json:
        click.echo(json.dumps(comparison, indent=2, ensure_ascii=False))
        return
    _print_table(COMPARE_HEADERS, compare_rows(comparison))
    n = len(comparison["indicators"])
    against = "the target profile" if reference is not None else "the ideal"
    rules = sorted(set(comparison["normalisation"].values())) or [default_rule]
    click.echo(f"hierarchy {comparison['hierarchy']}; grey relational grade over {n} indicator(s) assessed in every result, "
               f"against {against}, normalisation {'/'.join(rules)}, ρ = {comparison['rho']}")


def _normalise_option(values: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """(rule for all, {indicator: rule}) from repeated --normalise RULE|ID=RULE."""
    default = "none"
    per: dict[str, str] = {}
    for value in values:
        target, _, rule = value.rpartition("=")
        if rule not in NORMALISATIONS:
            raise InputError(f"--normalise {value}: unknown rule {rule!r} (one of {', '.join(NORMALISATIONS)}; or ID=RULE)")
        if target:
            per[target] = rule
        else:
            default = rule
    return default, per


def _reference(path: str) -> dict[str, float]:
    """The --reference target profile: indicator id → target score 0–100."""
    data = _read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path}: a reference is a mapping of indicator ids to target scores 0–100")
    out: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise InputError(f"{path}: reference score of {key} must be a number from 0 to 100, got {value!r}")
        out[str(key)] = float(value)
    return out


COMMANDS = [ahp, score, compare]
