"""score_result: an AuditResult scored against a hierarchy, as the typed ``Scoring`` kept in
``AuditResult.scoring``. Scoring never talks to the target; it reads the result only.
"""

from __future__ import annotations

import math
from typing import Any

from crm_audit.core.model import AuditResult
from crm_audit.core.scoring_model import NotAssessedWhy, OverallScore, ScoredNode, Scoring, UnassessedIndicator
from crm_audit.scoring import fuzzy
from crm_audit.scoring.aggregate import aggregate, coverage
from crm_audit.scoring.evidence import Evidence
from crm_audit.scoring.functions import describe_caps
from crm_audit.scoring.grades import grade_of, shown
from crm_audit.scoring.hierarchy import Hierarchy, Node
from crm_audit.scoring.leaf import LeafScore, ResultIndex, score_leaf

_DIGITS = 6


#: below this coverage no grade word is given (the verdict's default threshold)
DEFAULT_MIN_COVERAGE = 0.6


def score_result(result: AuditResult, hierarchy: Hierarchy, evidence: Evidence | None = None,
                 min_coverage: float = DEFAULT_MIN_COVERAGE) -> Scoring:
    """Score ``result`` against ``hierarchy`` (with optional evidence); see docs/scoring.md.

    Every node carries its ``coverage`` (share of its weight that was assessed); the overall
    score and each dimension get no grade word while their coverage is below ``min_coverage``.
    """
    index = ResultIndex.of(result)
    leaves = {n.id: score_leaf(n, index, evidence) for n in hierarchy.leaves()}
    capped = frozenset(k for k, v in leaves.items() if v.capped_by)
    nodes = aggregate(hierarchy, {k: v.score for k, v in leaves.items()}, capped_leaves=capped)
    root = nodes[hierarchy.root]
    scale = hierarchy.grade_scale
    overall_membership = fuzzy.as_dict(_round_vec(root.membership), scale) if root.membership is not None else None
    covered = {n.id: node_coverage(hierarchy, nodes, n.id) for n in hierarchy.walk()}
    overall_grade = grade_of(root.score, scale) if covered[hierarchy.root] >= min_coverage else None
    dims = set(hierarchy.nodes[hierarchy.root].children)
    out_nodes = []
    for node in hierarchy.walk():
        row = _node_fields(hierarchy, node, nodes[node.id], leaves.get(node.id), capped)
        row["coverage"] = _r(covered[node.id])
        if (node.id in dims or node.id == hierarchy.root) and covered[node.id] < min_coverage and row["grade"]:
            row["grade"] = None
            row["grade_withheld"] = f"coverage {covered[node.id]:.0%} is below {min_coverage:.0%}"
        out_nodes.append(ScoredNode(**row))
    return Scoring(
        hierarchy=hierarchy.name,
        title=hierarchy.title,
        grades=list(scale.names),
        overall=OverallScore(
            score=shown(root.score),
            grade=overall_grade,
            membership=overall_membership,
            fuzzy_grade=(fuzzy.max_membership_grade(root.membership, scale)
                         if root.membership is not None and overall_grade is not None else None),
        ),
        coverage=_r(coverage(hierarchy, nodes)),
        min_coverage=min_coverage,
        root=hierarchy.root,
        nodes=out_nodes,
        not_assessed=[
            UnassessedIndicator(indicator=n.id, title=n.title, weight=_r(hierarchy.global_weights[n.id]),
                                reasons=list(leaves[n.id].reasons), hints=list(leaves[n.id].hints))
            for n in hierarchy.leaves() if not leaves[n.id].assessed
        ],
    )


def node_coverage(hierarchy: Hierarchy, nodes: Any, node_id: str) -> float:
    """Share (0..1) of a node's global weight carried by its assessed indicators."""
    below = [n for n in hierarchy.walk(node_id) if not n.children]
    total = sum(hierarchy.global_weights[n.id] for n in below)
    if total <= 0:
        return 0.0
    return float(sum(hierarchy.global_weights[n.id] for n in below if nodes[n.id].assessed) / total)


def _node_fields(hierarchy: Hierarchy, node: Node, agg: Any, leaf: LeafScore | None,
                 capped: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The fields of one ScoredNode (coverage and a withheld grade are set by the caller)."""
    out: dict[str, Any] = {
        "id": node.id,
        "title": node.title,
        "parent": node.parent,
        "children": list(node.children),
        "depth": node.depth,
        "kind": node.kind,
        "weight": _r(node.weight),
        "global_weight": _r(hierarchy.global_weights[node.id]),
        "effective_weight": _r(agg.effective_weight),
        "assessed": agg.assessed,
        "score": shown(agg.score),
        "grade": grade_of(agg.score, hierarchy.grade_scale),
        "membership": fuzzy.as_dict(_round_vec(agg.membership), hierarchy.grade_scale) if agg.membership is not None else None,
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
        "coverage": None,
        "grade_withheld": None,
        "not_assessed": None,
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
        if not leaf.assessed:
            out["not_assessed"] = NotAssessedWhy(reasons=list(leaf.reasons), hints=list(leaf.hints))
    return out


def _r(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), _DIGITS)


def _round_vec(vector: Any) -> list[float]:
    return [round(float(x), _DIGITS) for x in vector]
