"""Indicators a plugin adds to whichever hierarchy the profile chooses.

A plugin returns :class:`IndicatorSpec` objects from the ``crm_audit_register_indicators``
hook. Each is added as a leaf under its ``dimension`` with its ``weight`` as local weight;
the dimension's other children are scaled by ``1 − Σ weights added`` so they keep their
proportions and the children still sum to 1 (given, equal and AHP weights alike; the
dimension's ``weighting`` text says so). The dimension's own weight, and so every other
dimension's score, is unchanged. A hierarchy that already defines the id keeps its own node
(a hand-tuned copy wins); one without the dimension is left as it is, and ``crm-audit
validate`` warns about a selected probe that then feeds no indicator.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crm_audit.scoring.hierarchy import Hierarchy, HierarchyError, Node, _leaf_fields


class IndicatorSpec(BaseModel):
    """One indicator a plugin declares: the keys of a hierarchy leaf plus where it goes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="indicator id, '<dimension>.<name>' (e.g. sec.audit_trail)")
    title: str = Field(description="shown in reports")
    dimension: str = Field(description="id of the node it is added under (sec, perf, bak, dq, func, svc, biz, cost)")
    weight: float = Field(gt=0, lt=1, description="its local weight in that dimension; the others share the rest")
    source: str = Field(description="'probe:<id>', 'evidence', or several tried in order ('probe:x / evidence')")
    function: dict[str, Any] = Field(description="scoring function, as in a hierarchy file (docs/scoring.md)")
    unit: str | None = Field(None, description="unit of its values (docs/scoring.md, units)")
    expected: float | str | None = Field(None, description="the expected value; a quantity such as '15 min' is converted")
    better: Literal["lower", "higher"] | None = Field(None, description="which direction is better")
    severity: Literal["info", "low", "medium", "high", "critical"] = Field(
        "medium", description="severity of the finding drawn when the indicator is graded Fail")
    description: str = Field("", description="what it measures and why the expected value")

    @model_validator(mode="after")
    def _id_in_dimension(self) -> IndicatorSpec:
        """The id starts with its dimension, as every indicator id does (docs/indicators.md)."""
        if not self.id.startswith(self.dimension + "."):
            raise ValueError(f"id {self.id!r} must start with its dimension '{self.dimension}.'")
        return self

    def leaf(self) -> dict[str, Any]:
        """The hierarchy-file keys of this indicator's leaf."""
        keys = ("unit", "source", "expected", "better", "function", "severity")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


def collect_indicators(hook: Callable[[], list[Any]]) -> list[IndicatorSpec]:
    """Call the ``crm_audit_register_indicators`` hook; every spec once, else a HierarchyError."""
    try:
        batches = hook()
    except (ValidationError, TypeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise HierarchyError(f"a plugin's crm_audit_register_indicators failed: {type(exc).__name__}: {first}") from None
    seen: dict[str, IndicatorSpec] = {}
    for batch in batches:
        for spec in batch or []:
            if not isinstance(spec, IndicatorSpec):
                raise HierarchyError(f"crm_audit_register_indicators returned {type(spec).__name__}, not IndicatorSpec")
            if spec.id in seen and seen[spec.id] != spec:
                raise HierarchyError(f"plugin indicator '{spec.id}' is declared twice, differently")
            seen[spec.id] = spec
    return list(seen.values())


def merge_indicators(hierarchy: Hierarchy, specs: Sequence[IndicatorSpec], known_probes: frozenset[str]) -> Hierarchy:
    """``hierarchy`` with the plugin indicators added and weights renormalised (module docstring)."""
    groups: dict[str, list[IndicatorSpec]] = defaultdict(list)
    for spec in specs:
        home = hierarchy.nodes.get(spec.dimension)
        if spec.id not in hierarchy.nodes and home is not None and home.children:
            groups[spec.dimension].append(spec)
    if not groups:
        return hierarchy
    nodes: dict[str, Node] = dict(hierarchy.nodes)
    for dim, group in groups.items():
        added = math.fsum(s.weight for s in group)
        if added >= 1:
            raise HierarchyError(f"plugin indicators under '{dim}' weigh {added:g} together; they must leave "
                                 "some weight to the dimension's own indicators (less than 1)")
        keep = 1.0 - added
        home = nodes[dim]
        for kid in home.children:
            nodes[kid] = replace(nodes[kid], weight=nodes[kid].weight * keep)
        for spec in group:
            fields = _leaf_fields(spec.id, spec.leaf(), known_probes, f"plugin indicator '{spec.id}'")
            nodes[spec.id] = Node(id=spec.id, title=spec.title, kind="indicator", parent=dim, children=(),
                                  weight=spec.weight, depth=home.depth + 1, description=spec.description, **fields)
        listed = ", ".join(f"{s.id} {s.weight:g}" for s in group)
        nodes[dim] = replace(home, children=home.children + tuple(s.id for s in group),
                             weighting=f"{home.weighting}; ×{keep:g} to make room for plugin indicators ({listed})")
    return replace(hierarchy, nodes=nodes, global_weights=_global_weights(hierarchy.root, nodes))


def _global_weights(root: str, nodes: dict[str, Node]) -> dict[str, float]:
    out = {root: 1.0}
    stack = [root]
    while stack:
        nid = stack.pop()
        for kid in nodes[nid].children:
            out[kid] = out[nid] * nodes[kid].weight
            stack.append(kid)
    return out


def fed_indicators(hierarchy: Hierarchy, probe_id: str, declared: Iterable[str]) -> list[str]:
    """Indicators of ``hierarchy`` a probe feeds: those it declares, and those naming it as a source."""
    wanted = set(declared)
    return [n.id for n in hierarchy.leaves() if n.id in wanted or probe_id in n.probes]


def unscored_probe_warnings(hierarchy: Hierarchy, probes: Iterable[Any]) -> list[str]:
    """One line per probe class that feeds no indicator of ``hierarchy`` (its results go unscored)."""
    out = []
    for probe in probes:
        if not fed_indicators(hierarchy, probe.id, probe.indicators):
            declared = ", ".join(probe.indicators) or "none"
            out.append(f"probe {probe.id} feeds no indicator of hierarchy '{hierarchy.name}' (it declares: {declared}); "
                       "its results are reported but not scored")
    return out
