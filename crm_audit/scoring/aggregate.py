"""Aggregation up the tree: weighted sum and fuzzy composition, renormalised over what was assessed.

The fuzzy vectors use the hierarchy's grade scale and are composed with its fuzzy operator
(``fuzzy.compose``). A node's score is Σ w_c · s_c over its *assessed* children, with their local weights w_c
renormalised to sum 1 (an indicator not assessed hands its weight to its assessed
siblings, in proportion to theirs). A node with no assessed child is itself not assessed,
so the renormalisation happens recursively. Coverage is the sum of the global weights
(products of local weights from the root) of the assessed indicators.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np

from crm_audit.scoring import fuzzy
from crm_audit.scoring.hierarchy import Hierarchy


@dataclass(frozen=True)
class NodeScore:
    """Aggregated outcome of one node."""

    assessed: bool
    score: float | None
    membership: np.ndarray | None
    #: product of renormalised weights from the root; None when not assessed
    effective_weight: float | None


def aggregate(hierarchy: Hierarchy, leaf_scores: Mapping[str, float | None],
              capped_leaves: Collection[str] = ()) -> dict[str, NodeScore]:
    """Score every node from the leaf scores (None or absent = not assessed).

    A node with ``cap_if_capped`` scores at most that while any indicator below it is in
    ``capped_leaves`` (capped by a critical finding); its membership follows the capped score.
    """
    capped = set(capped_leaves)
    scale = hierarchy.grade_scale
    local: dict[str, tuple[float | None, np.ndarray | None]] = {}
    for node in reversed(list(hierarchy.walk())):  # children before parents
        if not node.children:
            s = leaf_scores.get(node.id)
            local[node.id] = (None, None) if s is None else (float(s), fuzzy.membership(s, scale))
            continue
        kids = [k for k in node.children if local[k][0] is not None]
        if not kids:
            local[node.id] = (None, None)
            continue
        w = np.array([hierarchy.nodes[k].weight for k in kids], dtype=float)
        if w.sum() <= 0:  # every assessed child has weight 0: nothing counts
            local[node.id] = (None, None)
            continue
        w = w / w.sum()
        scores = np.array([local[k][0] for k in kids], dtype=float)
        rows = [cast(np.ndarray, local[k][1]) for k in kids]  # an assessed child has its membership
        score, member = float(w @ scores), fuzzy.compose(w, rows, hierarchy.fuzzy_operator)
        if node.cap_if_capped is not None and score > node.cap_if_capped and \
                any(leaf.id in capped for leaf in hierarchy.walk(node.id) if not leaf.children):
            score, member = node.cap_if_capped, fuzzy.membership(node.cap_if_capped, scale)
        local[node.id] = (score, member)

    out: dict[str, NodeScore] = {}
    for node in hierarchy.walk():
        node_score, node_member = local[node.id]
        if node_score is None:
            out[node.id] = NodeScore(False, None, None, None)
            continue
        if node.parent is None:
            eff = 1.0
        else:
            siblings = [k for k in hierarchy.nodes[node.parent].children if local[k][0] is not None]
            total = sum(hierarchy.nodes[k].weight for k in siblings)
            parent_eff = out[node.parent].effective_weight or 0.0
            eff = parent_eff * node.weight / total if total > 0 else 0.0
        out[node.id] = NodeScore(True, node_score, node_member, eff)
    return out


def coverage(hierarchy: Hierarchy, result: Mapping[str, NodeScore]) -> float:
    """Share of the total (global) weight carried by assessed indicators, 0..1."""
    return float(sum(hierarchy.global_weights[n.id] for n in hierarchy.leaves() if result[n.id].assessed))
