"""Scoring: indicator hierarchy (weights given or by AHP), scoring functions, weighted and
fuzzy aggregation, evidence, and grey relational comparison. Never talks to the target.
"""

from __future__ import annotations

from crm_audit.scoring.ahp import AhpError, AhpResult, ahp_weights
from crm_audit.scoring.engine import score_result
from crm_audit.scoring.evidence import Evidence, EvidenceError, EvidenceItem, load_evidence
from crm_audit.scoring.grades import GRADES, grade_of
from crm_audit.scoring.hierarchy import Hierarchy, HierarchyError, Node, available_hierarchies, load_hierarchy
from crm_audit.scoring.indicator_findings import failed_indicator_findings

__all__ = [
    "AhpError",
    "AhpResult",
    "Evidence",
    "EvidenceError",
    "EvidenceItem",
    "GRADES",
    "Hierarchy",
    "HierarchyError",
    "Node",
    "ahp_weights",
    "available_hierarchies",
    "failed_indicator_findings",
    "grade_of",
    "load_evidence",
    "load_hierarchy",
    "score_result",
]
