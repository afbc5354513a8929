"""Findings drawn from the scoring: a value-based indicator graded Fail is an open finding.

Findings-based indicators already have their own findings; a measured value (max
concurrency 8 against 50, a churn rate over its ceiling) becomes a finding here, with the
PIA triple as its evidence, so the terminal, the findings list, JUnit, SARIF and the gates
see it like any other.
"""

from __future__ import annotations

from crm_audit.core.model import Evidence, Finding, Severity, Status
from crm_audit.core.scoring_model import Scoring
from crm_audit.scoring.hierarchy import Hierarchy

#: severity of a failed indicator when its hierarchy node does not say
DEFAULT_SEVERITY = "medium"
FAIL_BELOW = 50.0


def failed_indicator_findings(scoring: Scoring, hierarchy: Hierarchy) -> list[Finding]:
    """One open finding per assessed, value-based indicator whose score is graded Fail."""
    out: list[Finding] = []
    for row in scoring.nodes:
        node = hierarchy.nodes.get(row.id)
        if node is None or node.children or node.function is None or node.function.kind == "findings":
            continue
        if not row.assessed or row.score is None or row.score >= FAIL_BELOW:
            continue
        source = row.source or ""
        unit = f" {row.unit}" if row.unit else ""
        observed = "n/a" if row.actual is None else f"{row.actual:.4g}{unit}"
        expected = "n/a" if row.expected is None else f"{'≤' if row.better == 'lower' else '≥'} {row.expected:.4g}{unit}"
        out.append(Finding(
            id=f"indicator.{node.id}",
            title=f"{node.title}: {observed} against {expected} (score {row.score:.1f}, Fail)",
            severity=Severity(node.severity or DEFAULT_SEVERITY),
            status=Status.failed,
            indicator=node.id,
            probe=_first_probe(source),
            evidence=[Evidence(expected=expected, observed=observed,
                               details={"difference": row.difference, "score": row.score,
                                        "function": row.function, "source": source,
                                        **({"evidence": row.evidence} if row.evidence else {})})],
            remediation=(f"Bring {node.title.lower()} to its expectation ({expected}). {node.description}").strip(),
            references=["indicator system: docs/indicators.md"],
        ))
    return out


def _first_probe(source: str) -> str | None:
    """The probe that produced the worst value (the first of ``probe:a, probe:b``), else the source ("evidence")."""
    first = source.split(",", 1)[0].strip()
    return first.split(":", 1)[1] if first.startswith("probe:") else first or None
