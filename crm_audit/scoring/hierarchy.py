"""Indicator hierarchies: load a YAML file, validate it, resolve every node's weight.

A hierarchy file is a flat list of nodes; a node with ``children`` is the root or a
dimension, a node without is an indicator (leaf)::

    name: default
    title: CRM evaluation (balanced)
    root: crm
    nodes:
      - id: crm
        title: CRM overall
        children: [perf, sec]
        weights: {ahp: {matrix: [[1, 2], [1/2, 1]]}}   # or a `weight:` on each child, or `equal`
      - id: perf
        title: Technical performance
        children: [perf.response_time_p95, perf.error_rate]
      - id: perf.response_time_p95
        title: Endpoint response time (p95)
        weight: 0.7
        unit: ms
        source: probe:latency            # or evidence, or "probe:access / evidence" (tried in order)
        expected: 300                    # the SLO or target; a quantity such as "15 min" is converted
        better: lower
        function: {type: lognormal, p90: 300, p50: 1000}
      …

Optional top-level keys: ``grades`` (an ordered grade scale, best first, see
``grades.parse_grade_scale``; default Excellent/Good/Pass/Fail), ``fuzzy_operator`` (one of
``fuzzy.OPERATORS``; default M(·,+)) and ``ri_table`` (one of ``ahp.RI_TABLES``; default
saaty1980)::

    grades:
      - {name: 优, floor: 90, value: 95}
      - {name: 良, floor: 80, value: 85}
      - {name: 中, floor: 70, value: 75}
      - {name: 差, floor: 60, value: 65}
      - {name: 劣, floor: 0, value: 30}
    fuzzy_operator: "M(∧,∨)"          # or max_min; M(·,+) weighted_average, M(·,∨) max_product, M(∧,⊕) bounded_sum
    ri_table: cn-textbook

Validation at load gives one ``HierarchyError`` line naming the file and the node (or the
key) for: a duplicate id, a missing child, a cycle, a node reachable twice or not at all, an unknown
probe, children's weights that do not sum to 1 within 1e-9, an inconsistent AHP matrix
(CR ≥ 0.10), and a malformed scoring function.
"""

from __future__ import annotations

import importlib.resources
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from crm_audit.core.errors import InputFileError
from crm_audit.core.model import SEVERITY_ORDER
from crm_audit.core.safeyaml import parse_text, read_file
from crm_audit.scoring import fuzzy
from crm_audit.scoring.ahp import (
    DEFAULT_RI_TABLE,
    RI_TABLES,
    AhpError,
    AhpResult,
    HierarchyConsistency,
    ahp_weights,
    hierarchy_consistency,
)
from crm_audit.scoring.functions import FunctionSpecError, ScoringFunction, parse_function
from crm_audit.scoring.grades import DEFAULT_SCALE, GradeScale, GradeScaleError, parse_grade_scale
from crm_audit.scoring.units import UnitError, check_unit, parse_quantity

WEIGHT_TOLERANCE = 1e-9
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TOP_KEYS = {"name", "title", "description", "root", "nodes", "grades", "fuzzy_operator", "ri_table"}
_NODE_KEYS = {"id", "title", "description", "children", "weight", "weights", "unit", "source", "expected", "better", "function",
              "cap_if_capped", "severity"}
_LEAF_ONLY = {"unit", "source", "expected", "better", "function", "severity"}

Kind = Literal["root", "dimension", "indicator"]


class HierarchyError(InputFileError):
    """A hierarchy that cannot be used; the one-line message names the file and the node."""


@dataclass(frozen=True)
class Node:
    """One node of the hierarchy with its resolved local weight."""

    id: str
    title: str
    kind: Kind
    parent: str | None
    children: tuple[str, ...]
    weight: float
    depth: int
    description: str = ""
    unit: str | None = None
    sources: tuple[str, ...] = ()
    expected: float | None = None
    better: Literal["lower", "higher"] | None = None
    function: ScoringFunction | None = None
    #: how the children's weights were obtained (non-leaves): "given", "equal" or "AHP …"
    weighting: str = ""
    ahp: AhpResult | None = None
    #: dimensions: the score is at most this while any indicator below is capped (critical finding)
    cap_if_capped: float | None = None
    #: indicators: severity of the finding drawn when the indicator is graded Fail
    severity: str = "medium"

    @property
    def probes(self) -> tuple[str, ...]:
        """Probe ids among the sources, in order."""
        return tuple(s.split(":", 1)[1] for s in self.sources if s.startswith("probe:"))


@dataclass(frozen=True)
class Hierarchy:
    """A validated hierarchy; ``nodes`` keyed by id, tree given by ``children``."""

    name: str
    title: str
    root: str
    nodes: Mapping[str, Node]
    description: str = ""
    path: str | None = None
    global_weights: Mapping[str, float] = field(default_factory=dict)
    #: the ordered grade scale of crisp and fuzzy grades
    grade_scale: GradeScale = DEFAULT_SCALE
    #: the fuzzy composition operator, a key of fuzzy.OPERATORS
    fuzzy_operator: str = fuzzy.DEFAULT_OPERATOR
    #: the random-index table of every AHP matrix, a key of ahp.RI_TABLES
    ri_table: str = DEFAULT_RI_TABLE

    def consistency(self) -> HierarchyConsistency:
        """Hierarchy-wide CR over every AHP matrix, each weighted by its node's global weight."""
        return hierarchy_consistency([(n.id, self.global_weights[n.id], n.ahp) for n in self.walk() if n.ahp is not None])

    def walk(self, start: str | None = None) -> Iterator[Node]:
        """Nodes in pre-order (a parent before its children, children in file order)."""
        stack = [start or self.root]
        while stack:
            node = self.nodes[stack.pop()]
            yield node
            stack.extend(reversed(node.children))

    def leaves(self) -> list[Node]:
        """Indicators in pre-order."""
        return [n for n in self.walk() if n.kind == "indicator"]


def hierarchies_dir() -> Path | Traversable:
    """Folder of the bundled hierarchies (installed package, or the source checkout)."""
    try:
        return importlib.resources.files("crm_audit_profiles") / "hierarchies"
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "profiles" / "hierarchies"


def available_hierarchies() -> list[str]:
    """Names of the bundled hierarchies."""
    folder = hierarchies_dir()
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_hierarchy(name_or_path: str | Path, known_probes: set[str] | frozenset[str] | None = None,
                   ri_table: str | None = None, indicators: Sequence[Any] = ()) -> Hierarchy:
    """Load a bundled hierarchy by name (``default``) or a hierarchy file by path, validated.

    ``known_probes`` adds probe ids (a registry's, e.g. plugins registered in code) to the
    installed plugins' ones (:func:`installed_probes`) a ``source`` may name;
    ``ri_table`` overrides the file's ``ri_table`` key; ``indicators`` (plugins'
    ``extend.IndicatorSpec``) are merged in by ``extend.merge_indicators``.
    """
    origin, text = _read(str(name_or_path))
    data = parse_text(text, origin, HierarchyError).data
    probes = installed_probes() | frozenset(known_probes or ())
    if ri_table is not None and isinstance(data, Mapping):
        data = {**data, "ri_table": ri_table}
    tree = build_hierarchy(data, origin, probes, default_name=Path(origin).stem)
    if not indicators:
        return tree
    from crm_audit.scoring.extend import merge_indicators

    return merge_indicators(tree, indicators, probes)


def _read(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    shown = name_or_path if len(name_or_path) <= 120 else name_or_path[:119] + "…"
    looks_like_path = path.suffix in (".yaml", ".yml") or "/" in name_or_path or "\\" in name_or_path
    try:
        is_file = path.is_file()
    except OSError:  # a name too long for the file system, for one: not a file
        is_file = False
    if looks_like_path or is_file:
        return str(path), read_file(path, "hierarchy", HierarchyError)
    if not _NAME.match(name_or_path) or len(name_or_path) > 200:
        raise HierarchyError(f"{shown!r}: not a hierarchy name or file")
    resource = hierarchies_dir() / f"{name_or_path}.yaml"
    if not resource.is_file():
        names = ", ".join(available_hierarchies())
        raise HierarchyError(f"{name_or_path}: unknown hierarchy (bundled: {names}; or give a path to a .yaml file)")
    return f"hierarchies/{name_or_path}.yaml", resource.read_text(encoding="utf-8")


def installed_probes() -> frozenset[str]:
    """The ids of the probes the installed plugins register: what a ``source: probe:<id>`` may name."""
    from crm_audit.core.plugins import make_plugin_manager

    return frozenset(make_plugin_manager().probes)


def build_hierarchy(data: Any, origin: str, known_probes: frozenset[str] | None = None,
                    default_name: str = "custom") -> Hierarchy:
    """Validate the parsed YAML of a hierarchy and resolve it into a ``Hierarchy`` (probes: installed ones by default)."""
    if known_probes is None:
        known_probes = installed_probes()
    if not isinstance(data, Mapping):
        raise HierarchyError(f"{origin}: a hierarchy must be a mapping with 'nodes'")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise HierarchyError(f"{origin}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise HierarchyError(f"{origin}: 'nodes' must be a non-empty list")
    scale, operator, ri_table = _method_keys(data, origin)
    specs = _index_nodes(raw_nodes, origin)
    children = {nid: _children(spec, nid, specs, origin) for nid, spec in specs.items()}
    _check_cycles(children, origin)
    root = _find_root(data.get("root"), children, origin)
    parents = _check_tree(root, children, origin)

    nodes: dict[str, Node] = {}
    weights = {root: 1.0}
    weighting: dict[str, tuple[str, AhpResult | None]] = {}
    for nid, kids in children.items():
        if kids:
            local, how, ahp = _child_weights(nid, specs[nid], kids, specs, origin, ri_table)
            weights.update(local)
            weighting[nid] = (how, ahp)
        elif "weights" in specs[nid]:
            raise HierarchyError(f"{origin}: node '{nid}': 'weights' given but the node has no children")

    depth = {root: 0}
    order = [root]
    for nid in order:
        for kid in children[nid]:
            depth[kid] = depth[nid] + 1
            order.append(kid)

    for nid in order:
        spec = specs[nid]
        kind: Kind = "root" if nid == root else ("dimension" if children[nid] else "indicator")
        common: dict[str, Any] = dict(
            id=nid,
            title=str(spec.get("title") or nid),
            kind=kind,
            parent=parents.get(nid),
            children=tuple(children[nid]),
            weight=weights[nid],
            depth=depth[nid],
            description=str(spec.get("description") or ""),
        )
        if kind == "indicator":
            nodes[nid] = Node(**common, **_leaf_fields(nid, spec, known_probes, origin))
        else:
            extra = set(spec) & _LEAF_ONLY
            if extra:
                raise HierarchyError(f"{origin}: node '{nid}': {', '.join(sorted(extra))} only apply to indicators (nodes without children)")
            how, ahp = weighting[nid]
            cap = spec.get("cap_if_capped")
            if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float)) or not 0 <= cap <= 100):
                raise HierarchyError(f"{origin}: node '{nid}': cap_if_capped must be a number from 0 to 100")
            nodes[nid] = Node(**common, weighting=how, ahp=ahp, cap_if_capped=None if cap is None else float(cap))

    global_weights = {root: 1.0}
    for nid in order:
        for kid in children[nid]:
            global_weights[kid] = global_weights[nid] * weights[kid]
    name = str(data.get("name") or default_name)
    return Hierarchy(
        name=name,
        title=str(data.get("title") or name),
        root=root,
        nodes=nodes,
        description=str(data.get("description") or ""),
        path=origin,
        global_weights=global_weights,
        grade_scale=scale,
        fuzzy_operator=operator,
        ri_table=ri_table,
    )


def _method_keys(data: Mapping[str, Any], origin: str) -> tuple[GradeScale, str, str]:
    """The optional ``grades``, ``fuzzy_operator`` and ``ri_table`` keys, validated."""
    scale = DEFAULT_SCALE
    if data.get("grades") is not None:
        try:
            scale = parse_grade_scale(data["grades"])
        except GradeScaleError as exc:
            raise HierarchyError(f"{origin}: grades: {exc}") from None
    try:
        operator = fuzzy.operator_name(data.get("fuzzy_operator") or fuzzy.DEFAULT_OPERATOR)
    except ValueError as exc:
        raise HierarchyError(f"{origin}: fuzzy_operator: {exc}") from None
    ri_table = str(data.get("ri_table") or DEFAULT_RI_TABLE)
    if ri_table not in RI_TABLES:
        raise HierarchyError(f"{origin}: ri_table: unknown table {ri_table!r} (one of {', '.join(RI_TABLES)})")
    return scale, operator, ri_table


def _index_nodes(raw_nodes: list[Any], origin: str) -> dict[str, Mapping[str, Any]]:
    specs: dict[str, Mapping[str, Any]] = {}
    for position, spec in enumerate(raw_nodes, start=1):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("id"), str) or not spec["id"].strip():
            raise HierarchyError(f"{origin}: node #{position}: must be a mapping with a string 'id'")
        nid = spec["id"]
        if nid in specs:
            raise HierarchyError(f"{origin}: node '{nid}': duplicate id")
        unknown = set(spec) - _NODE_KEYS
        if unknown:
            raise HierarchyError(f"{origin}: node '{nid}': unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        specs[nid] = spec
    return specs


def _children(spec: Mapping[str, Any], nid: str, specs: Mapping[str, Any], origin: str) -> list[str]:
    kids = spec.get("children") or []
    if not isinstance(kids, list) or not all(isinstance(k, str) for k in kids):
        raise HierarchyError(f"{origin}: node '{nid}': 'children' must be a list of node ids")
    for kid in kids:
        if kid not in specs:
            raise HierarchyError(f"{origin}: node '{nid}': child '{kid}' is not defined")
    if len(set(kids)) != len(kids):
        dup = next(k for k in kids if kids.count(k) > 1)
        raise HierarchyError(f"{origin}: node '{nid}': child '{dup}' listed twice")
    return list(kids)


def _check_cycles(children: Mapping[str, list[str]], origin: str) -> None:
    """Depth-first search with colours; the first back edge found is reported as a cycle."""
    colour: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in children:
        if colour.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(children[start]))]
        colour[start] = 1
        path.append(start)
        while stack:
            nid, it = stack[-1]
            kid = next(it, None)
            if kid is None:
                colour[nid] = 2
                path.pop()
                stack.pop()
            elif colour.get(kid) == 1:
                cycle = path[path.index(kid):] + [kid]
                raise HierarchyError(f"{origin}: node '{kid}': cycle {' → '.join(cycle)}")
            elif not colour.get(kid):
                colour[kid] = 1
                path.append(kid)
                stack.append((kid, iter(children[kid])))


def _find_root(declared: Any, children: Mapping[str, list[str]], origin: str) -> str:
    is_child = {kid for kids in children.values() for kid in kids}
    if declared is not None:
        if declared not in children:
            raise HierarchyError(f"{origin}: root '{declared}' is not defined")
        if declared in is_child:
            raise HierarchyError(f"{origin}: node '{declared}': the root cannot be another node's child")
        return str(declared)
    tops = [nid for nid in children if nid not in is_child]
    if len(tops) != 1:
        raise HierarchyError(f"{origin}: cannot tell the root: nodes {', '.join(tops)} are nobody's child; set 'root:'")
    return tops[0]


def _check_tree(root: str, children: Mapping[str, list[str]], origin: str) -> dict[str, str]:
    parents: dict[str, str] = {}
    for nid, kids in children.items():
        for kid in kids:
            if kid in parents:
                raise HierarchyError(f"{origin}: node '{kid}': child of both '{parents[kid]}' and '{nid}'")
            parents[kid] = nid
    reachable = {root}
    queue = [root]
    while queue:
        for kid in children[queue.pop()]:
            reachable.add(kid)
            queue.append(kid)
    for nid in children:
        if nid not in reachable:
            raise HierarchyError(f"{origin}: node '{nid}': not reachable from root '{root}'")
    return parents


def _child_weights(nid: str, spec: Mapping[str, Any], kids: list[str], specs: Mapping[str, Mapping[str, Any]], origin: str,
                   ri_table: str = DEFAULT_RI_TABLE) -> tuple[dict[str, float], str, AhpResult | None]:
    """Local weights of ``nid``'s children: per-child ``weight``, ``weights: equal`` or AHP."""
    given = [k for k in kids if "weight" in specs[k]]
    mode = spec.get("weights")
    where = f"{origin}: node '{nid}'"
    if mode is not None:
        if given:
            raise HierarchyError(f"{where}: children's weights given twice ('weights' here and 'weight' on '{given[0]}')")
        if mode == "equal":
            return {k: 1.0 / len(kids) for k in kids}, "equal", None
        if not isinstance(mode, Mapping) or set(mode) != {"ahp"} or not isinstance(mode["ahp"], Mapping):
            raise HierarchyError(f"{where}: 'weights' must be 'equal' or {{ahp: {{matrix: [[…]]}}}}")
        return _ahp_weights(where, mode["ahp"], kids, ri_table)
    if len(given) != len(kids):
        missing = next(k for k in kids if k not in given)
        raise HierarchyError(f"{origin}: node '{missing}': no 'weight' (and parent '{nid}' gives no 'weights')")
    values: dict[str, float] = {}
    for k in kids:
        w = specs[k]["weight"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise HierarchyError(f"{origin}: node '{k}': weight must be a number ≥ 0, got {w!r}")
        values[k] = float(w)
    total = math.fsum(values.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise HierarchyError(f"{where}: children's weights sum to {total:.12g}, not 1 (within {WEIGHT_TOLERANCE:g})")
    return values, "given", None


def _ahp_weights(where: str, spec: Mapping[str, Any], kids: list[str], ri_table: str = DEFAULT_RI_TABLE) -> tuple[dict[str, float], str, AhpResult]:
    unknown = set(spec) - {"matrix", "criteria"}
    if unknown:
        raise HierarchyError(f"{where}: unknown AHP key(s) {', '.join(sorted(map(str, unknown)))}")
    criteria = spec.get("criteria", kids)
    if list(criteria) != kids:
        raise HierarchyError(f"{where}: AHP criteria {list(criteria)} must list the children in order: {kids}")
    matrix = spec.get("matrix")
    if not isinstance(matrix, list) or len(matrix) != len(kids):
        raise HierarchyError(f"{where}: AHP matrix must have one row per child ({len(kids)})")
    try:
        result = ahp_weights(matrix, ri_table)
    except AhpError as exc:
        raise HierarchyError(f"{where}: AHP {exc}") from None
    if not result.consistent:
        raise HierarchyError(f"{where}: AHP {result.inconsistency_message(kids)}")
    how = f"AHP (λmax {result.lambda_max:.3f}, CI {result.ci:.3f}, CR {result.cr:.3f})"
    return dict(zip(kids, result.weights)), how, result


def _leaf_fields(nid: str, spec: Mapping[str, Any], known_probes: frozenset[str], origin: str) -> dict[str, Any]:
    where = f"{origin}: node '{nid}'"
    sources = _sources(spec.get("source"), where, known_probes)
    if "function" not in spec:
        raise HierarchyError(f"{where}: an indicator needs a scoring 'function'")
    unit = spec.get("unit")
    try:
        unit = check_unit(str(unit)) if unit is not None else None
    except UnitError as exc:
        raise HierarchyError(f"{where}: unit: {exc}") from None
    severity = spec.get("severity", "medium")
    if severity not in SEVERITY_ORDER:
        raise HierarchyError(f"{where}: severity: expected one of {', '.join(SEVERITY_ORDER)}, got {str(severity)[:40]!r}")
    better = spec.get("better")
    try:
        function = parse_function(spec["function"], unit, better)
    except FunctionSpecError as exc:
        raise HierarchyError(f"{where}: {exc}") from None
    if function.kind == "findings" and sources != tuple(s for s in sources if s.startswith("probe:")):
        raise HierarchyError(f"{where}: a findings-based indicator takes probe sources only, not evidence")
    expected = None
    if spec.get("expected") is not None:
        try:
            expected = parse_quantity(spec["expected"], unit)
        except UnitError as exc:
            raise HierarchyError(f"{where}: expected: {exc}") from None
    return dict(unit=unit, sources=sources, expected=expected, better=function.better, function=function,
                severity=severity)


def _sources(raw: Any, where: str, known_probes: frozenset[str]) -> tuple[str, ...]:
    if raw is None:
        raise HierarchyError(f"{where}: an indicator needs a 'source' (probe:<id> or evidence)")
    items = raw if isinstance(raw, list) else str(raw).split("/")
    out: list[str] = []
    for item in items:
        text = str(item).strip()
        if text == "evidence":
            out.append(text)
        elif text.startswith("probe:"):
            probe = text.split(":", 1)[1].strip()
            if probe not in known_probes:
                raise HierarchyError(f"{where}: unknown probe '{probe}' (known: {', '.join(sorted(known_probes))})")
            out.append(f"probe:{probe}")
        else:
            raise HierarchyError(f"{where}: source {text!r} must be 'probe:<id>' or 'evidence'")
    if not out:
        raise HierarchyError(f"{where}: empty 'source'")
    return tuple(out)
