"""Typed scoring of an AuditResult: the scored hierarchy, node by node (``AuditResult.scoring``).

The scoring engine (``crm_audit.scoring.engine.score_result``) builds these records directly;
reporters, gates, the verdict, baseline and compare read them. Fields added in schema 1.1
(coverage, grade_withheld, not_assessed, min_coverage) and 1.2 (children) have defaults, so
results written by earlier versions still load.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crm_audit.core.record import Record

NodeKind = Literal["root", "dimension", "indicator"]


class NotAssessedWhy(Record):
    """Why an indicator was not assessed, and what would assess it."""

    reasons: list[str] = Field(default_factory=list)  #: why, one line each
    hints: list[str] = Field(default_factory=list)  #: what would assess it


class ScoredNode(Record):
    """One node of the scored hierarchy: its weights, score, grade, coverage and PIA triple."""

    id: str  #: node id (an indicator id for a leaf)
    title: str  #: the node's title
    parent: str | None = None  #: the parent's id (None: the root)
    #: ids of the children, in hierarchy order (empty for an indicator); added in 1.2
    children: list[str] = Field(default_factory=list)
    depth: int = 0  #: 0 for the root, 1 for a dimension, …
    kind: NodeKind  #: root, dimension or indicator
    #: local weight among its siblings, product of weights from the root, and the weight it
    #: carried after renormalisation over what was assessed (None: not assessed)
    weight: float
    global_weight: float | None = None  #: product of the local weights from the root
    effective_weight: float | None = None  #: the weight carried after renormalising over what was assessed (None: not assessed)
    #: scored from pass/fail/warn evidence; a node not assessed has no score
    assessed: bool
    score: float | None = None  #: score 0..100 (None: not assessed)
    grade: str | None = None  #: grade word of the score (None: not assessed or withheld)
    #: fuzzy membership per grade name
    membership: dict[str, float] | None = None
    unit: str | None = None  #: the indicator's unit
    actual: float | None = None  #: the measured value (the worst one when several were measured)
    expected: float | None = None  #: the expected value
    difference: float | None = None  #: actual − expected
    better: Literal["lower", "higher"] | None = None  #: lower or higher is better
    #: where the value came from (``probe:latency``, ``evidence``); empty for non-leaves
    source: str = ""
    #: the scoring function or aggregation, described in words
    function: str = ""
    #: the evidence file's metadata (supplied_by, date, …) when the value came from it
    evidence: dict[str, str | None] | None = None
    #: the finding(s) or indicator(s) that capped the score
    capped_by: str | None = None
    #: open finding ids feeding this indicator
    findings: list[str] = Field(default_factory=list)
    #: share (0..1) of the node's global weight that was assessed
    coverage: float | None = None
    #: why the grade word is withheld (coverage below the minimum)
    grade_withheld: str | None = None
    not_assessed: NotAssessedWhy | None = None  #: why an indicator was not assessed, and hints (None: assessed)


class OverallScore(Record):
    """The root's score, its grade (None below the coverage minimum) and fuzzy grade."""

    score: float | None = None  #: the root's score (None: nothing assessed)
    grade: str | None = None  #: its grade word (None below the coverage minimum)
    membership: dict[str, float] | None = None  #: fuzzy membership per grade name
    fuzzy_grade: str | None = None  #: the grade of largest membership


class UnassessedIndicator(Record):
    """An indicator without evidence: its global weight, the reasons and the hints."""

    indicator: str  #: the indicator id
    title: str  #: the indicator's title
    weight: float | None = None  #: its global weight
    reasons: list[str] = Field(default_factory=list)  #: why it was not assessed
    hints: list[str] = Field(default_factory=list)  #: what would assess it


class Scoring(Record):
    """The result scored against one hierarchy (docs/scoring.md)."""

    hierarchy: str  #: name of the hierarchy scored against
    title: str  #: the hierarchy's title
    #: the grade scale's names, best first
    grades: list[str] = Field(default_factory=list)
    overall: OverallScore  #: the root's score and grades
    #: share (0..1) of the hierarchy's weight that was assessed
    coverage: float | None = None
    #: below this coverage no grade word is given
    min_coverage: float | None = None
    root: str  #: id of the root node
    #: every node in pre-order (a parent before its children)
    nodes: list[ScoredNode] = Field(default_factory=list)
    not_assessed: list[UnassessedIndicator] = Field(default_factory=list)  #: every indicator without evidence, with why and how to assess it

    def node(self, node_id: str) -> ScoredNode | None:
        """The node with id ``node_id``, or None."""
        return next((n for n in self.nodes if n.id == node_id), None)

    def of_kind(self, kind: NodeKind) -> list[ScoredNode]:
        """The nodes of one kind (root, dimension, indicator), in pre-order."""
        return [n for n in self.nodes if n.kind == kind]
