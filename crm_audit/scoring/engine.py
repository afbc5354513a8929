"""score_result: an AuditResult scored against a hierarchy, as the JSON-able dict kept in
``AuditResult.scoring``. Scoring never talks to the target; it reads the result only.
"""

from __future__ import annotations

import math
from typing import Any

from ..model import AuditResult
from . import fuzzy
from .aggregate import aggregate, coverage
from .evidence import Evidence
from .functions import describe_caps
from .grades import GRADES, grade_of
from .hierarchy import Hierarchy, Node
from .leaf import LeafScore, ResultIndex, score_leaf

_DIGITS = 6


def score_result(result: AuditResult, hierarchy: Hierarchy, evidence: Evidence | None = None) -> dict[str, Any]:
    """Score ``result`` against ``hierarchy`` (with optional evidence); see docs/scoring.md."""
    index = ResultIndex.of(result)
    leaves = {n.id: score_leaf(n, index, evidence) for n in hierarchy.leaves()}
    capped = frozenset(k for k, v in leaves.items() if v.capped_by)
    nodes = aggregate(hierarchy, {k: v.score for k, v in leaves.items()}, capped_leaves=capped)
    root = nodes[hierarchy.root]
    overall_membership = fuzzy.as_dict(_round_vec(root.membership)) if root.membership is not None else None
    return {
        "hierarchy": hierarchy.name,
        "title": hierarchy.title,
        "grades": list(GRADES),
        "overall": {
            "score": _r(root.score),
            "grade": grade_of(root.score),
            "membership": overall_membership,
            "fuzzy_grade": fuzzy.max_membership_grade(root.membership) if root.membership is not None else None,
        },
        "coverage": _r(coverage(hierarchy, nodes)),
        "root": hierarchy.root,
        "nodes": [_node_dict(hierarchy, node, nodes[node.id], leaves.get(node.id), capped) for node in hierarchy.walk()],
    }


def _node_dict(hierarchy: Hierarchy, node: Node, agg: Any, leaf: LeafScore | None,
               capped: frozenset[str] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": node.id,
        "title": node.title,
        "parent": node.parent,
        "depth": node.depth,
        "kind": node.kind,
        "weight": _r(node.weight),
        "global_weight": _r(hierarchy.global_weights[node.id]),
        "effective_weight": _r(agg.effective_weight),
        "assessed": agg.assessed,
        "score": _r(agg.score),
        "grade": grade_of(agg.score),
        "membership": fuzzy.as_dict(_round_vec(agg.membership)) if agg.membership is not None else None,
        "unit": None,
        "actual": None,
        "expected": None,
        "difference": None,
        "better": None,
        "source": "",
        "function": f"weighted sum of children (weights: {node.weighting})",
        "evidence": None,
        "capped_by": None,
        "findings": [],
    }
    if node.cap_if_capped is not None:
        out["function"] += f"; at most {node.cap_if_capped:g} while an indicator below is capped"
        below = [n.id for n in hierarchy.walk(node.id) if not n.children and n.id in capped]
        if below and agg.score is not None and agg.score <= node.cap_if_capped:
            out["capped_by"] = ", ".join(below)
    if node.kind == "indicator" and leaf is not None and node.function is not None:
        out.update(
            unit=node.unit,
            actual=_r(leaf.actual),
            expected=_r(leaf.expected if leaf.assessed else node.expected),
            difference=_r(leaf.difference),
            better=node.better,
            source=leaf.source or " / ".join(node.sources),
            function=node.function.describe() + describe_caps(node.function.caps),
            evidence=leaf.evidence,
            capped_by=leaf.capped_by,
            findings=list(leaf.findings),
        )
    return out


def _r(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), _DIGITS)


def _round_vec(vector: Any) -> list[float]:
    return [round(float(x), _DIGITS) for x in vector]
