"""Scoring commands: ``ahp`` (weights from a comparison matrix), ``score`` (re-score a saved
result, offline) and ``compare`` (rank several audited CRMs). None contacts a target.

Exit codes: 0 done; 1 ``ahp`` found the matrix inconsistent (CR ≥ 0.10); 2 usage or input
error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

import click
import yaml

from ..fsutil import write_atomic
from ..model import AuditResult, load_result
from ..scoring import (
    KNOWN_PROBES,
    AhpError,
    EvidenceError,
    HierarchyError,
    ahp_weights,
    load_evidence,
    load_hierarchy,
    score_result,
)
from ..scoring.compare import CompareError, compare_scorings
from ..scoring.render import COMPARE_HEADERS, SCORING_HEADERS, compare_rows, format_table, overall_line, scoring_rows


class InputError(click.ClickException):
    """A bad input file or option: one line on stderr, exit code 2."""

    exit_code = 2

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
    probes = set(KNOWN_PROBES) | ({p.probe for p in result.probes} if result is not None else set())
    try:
        return load_hierarchy(name, known_probes=probes)
    except HierarchyError as exc:
        raise InputError(str(exc)) from None


def _evidence(path: str | None) -> Any:
    try:
        return load_evidence(path)
    except EvidenceError as exc:
        raise InputError(str(exc)) from None


@click.command("ahp")
@click.argument("matrix_file", metavar="MATRIX.yaml")
@click.option("--json", "as_json", is_flag=True, help="Print weights, λmax, CI, CR as JSON.")
def ahp(matrix_file: str, as_json: bool) -> None:
    """AHP weights of a pairwise-comparison matrix (Saaty 1–9), with λmax, CI and CR.

    The file holds `criteria: [names]` and `matrix:` (full n×n rows; numbers or fractions
    such as 1/3). Exits 1 when CR ≥ 0.10, naming the most inconsistent pair.
    """
    try:
        data = yaml.safe_load(Path(matrix_file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{matrix_file}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{matrix_file}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict) or "matrix" not in data:
        raise InputError(f"{matrix_file}: expected 'criteria: [names]' and 'matrix: [[…], …]'")
    matrix = data["matrix"]
    n = len(matrix) if isinstance(matrix, list) else 0
    criteria = data.get("criteria") or [f"C{i + 1}" for i in range(n)]
    if not isinstance(criteria, list) or len(criteria) != n or len(set(map(str, criteria))) != n:
        raise InputError(f"{matrix_file}: 'criteria' must list {n} distinct names, one per matrix row")
    criteria = [str(c) for c in criteria]
    try:
        result = ahp_weights(matrix)
    except AhpError as exc:
        raise InputError(f"{matrix_file}: {exc}") from None
    if as_json:
        click.echo(json.dumps(result.as_dict(criteria), indent=2))
    else:
        _print_table(("criterion", "weight"), [[c, f"{w:.4f}"] for c, w in zip(criteria, result.weights)])
        verdict = "consistent" if result.consistent else "inconsistent"
        click.echo(f"λmax = {result.lambda_max:.4f}   CI = {result.ci:.4f}   CR = {result.cr:.4f} ({verdict}, threshold 0.10)")
    if not result.consistent:
        click.echo(f"crm-audit: {result.inconsistency_message(criteria)}", err=True)
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
    result = read_result(result_file)
    name = hierarchy_name or (result.scoring or {}).get("hierarchy") or "default"
    scoring = score_result(result, _hierarchy(name, result), _evidence(evidence_file))
    if out_file:
        try:
            write_atomic(out_file, result.model_copy(update={"scoring": scoring}).model_dump_json(indent=2) + "\n")
        except OSError as exc:
            raise InputError(f"--out {out_file}: cannot write: {exc.strerror or exc}") from None
    if as_json:
        click.echo(json.dumps(scoring, indent=2, ensure_ascii=False))
        return
    _print_table(SCORING_HEADERS, scoring_rows(scoring))
    click.echo(overall_line(scoring))


@click.command("compare")
@click.argument("result_files", nargs=-1, required=True, metavar="A.json B.json …")
@click.option("--hierarchy", "hierarchy_name", default=None,
              help="Re-score every result against this hierarchy (name or path) instead of using their stored scoring.")
@click.option("--evidence", "evidence_files", multiple=True,
              help="Evidence file per result, in the same order (repeat; only with --hierarchy).")
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as JSON.")
def compare(result_files: tuple[str, ...], hierarchy_name: str | None, evidence_files: tuple[str, ...], as_json: bool) -> None:
    """Rank audited CRMs by weighted score and by grey relational grade (ρ = 0.5)."""
    if len(result_files) < 2:
        raise InputError("compare needs at least two result files")
    if evidence_files and not hierarchy_name:
        raise InputError("--evidence needs --hierarchy (evidence is applied when re-scoring)")
    if evidence_files and len(evidence_files) != len(result_files):
        raise InputError(f"give one --evidence per result ({len(result_files)}), got {len(evidence_files)}")
    entries = []
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
    try:
        comparison = compare_scorings(entries)
    except CompareError as exc:
        raise InputError(f"{exc}; pass --hierarchy to score them alike") from None
    except (KeyError, TypeError) as exc:
        raise InputError(f"a stored scoring is malformed ({exc}); pass --hierarchy to re-score") from None
    if as_json:
        click.echo(json.dumps(comparison, indent=2, ensure_ascii=False))
        return
    _print_table(COMPARE_HEADERS, compare_rows(comparison))
    n = len(comparison["indicators"])
    click.echo(f"hierarchy {comparison['hierarchy']}; grey relational grade over {n} indicator(s) assessed in every result, ρ = {comparison['rho']}")


COMMANDS = [ahp, score, compare]
