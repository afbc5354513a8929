"""JUnit XML reporter: the verdict, indicators, open findings, gates and probe runs as test cases.

CI systems show JUnit files in their test tabs. There is one failing case per open finding
and one per failed indicator, so the failures count the problems once each; what was not
assessed (an indicator nothing measured, a check that was skipped or could not run) is a
skipped case whose message says why and what would assess it. A result with a verdict gets
a first suite ``verdict`` whose one case fails when the verdict is Not fit.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from crm_audit.core.ci_model import FindingWaiver
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import AuditResult, Finding
from crm_audit.core.probe import Reporter
from crm_audit.report.view import (
    IndicatorRow,
    clip,
    failed_indicators,
    finding_state,
    findings_sorted,
    fmt_diff,
    fmt_num,
    fmt_pct,
    fmt_value,
    indicator_rows,
    reason_text,
    score_with_coverage,
    verdict_view,
)

EVIDENCE_LIMIT = 2000

# Characters XML 1.0 cannot carry at all; target data may contain them (NUL, ESC …).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: object) -> str:
    """Text safe for XML 1.0: characters it cannot carry are written as \\xNN."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


@dataclass
class _Case:
    classname: str
    name: str
    time: float = 0.0
    outcome: str | None = None  # None (passed), "failure", "error", "skipped"
    message: str = ""
    kind: str = ""
    body: str = ""


@dataclass
class _Suite:
    name: str
    cases: list[_Case] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.cases if c.outcome == outcome)


def _not_assessed_message(reasons: list[str], hints: list[str]) -> str:
    text = "not assessed: " + ("; ".join(reasons) if reasons else "no measurement or evidence")
    return text + (" — to assess it: " + "; ".join(hints) if hints else "")


def _indicator_case(row: IndicatorRow, failed: Finding | None, by_rule: bool) -> _Case:
    """An indicator's case: failed when an open indicator finding says so (or, for a result
    without a verdict, when it scores under 50 or misses its expected value)."""
    case = _Case(classname=f"crm-audit.indicators.{row.dimension}", name=f"{row.id}: {row.title}")
    triple = (
        f"actual {fmt_value(row.actual, row.unit)}, expected {fmt_value(row.expected, row.unit)}, "
        f"difference {fmt_diff(row.difference, row.unit)}"
    )
    score = f"score {fmt_num(row.score)}" + (f" ({row.grade})" if row.grade else "")
    if not row.assessed:
        case.outcome, case.message = "skipped", _not_assessed_message(list(row.reasons), list(row.hints))
        return case
    if failed is not None:
        state = finding_state(failed)
        if state == "waived":
            case.outcome, case.message = "skipped", _waived(failed)
            return case
        if state != "open":
            return case
        case.outcome, case.kind = "failure", failed.severity.value
        case.message = f"[{failed.severity.value}] {failed.title} ({triple})"
    elif by_rule and row.failing:
        reasons = []
        if row.score is not None and row.score < 50:
            reasons.append(f"score {fmt_num(row.score)} < 50")
        if row.meets is False:
            reasons.append("misses the expected value")
        case.outcome, case.kind = "failure", "indicator"
        case.message = "; ".join(reasons) + f" ({triple})"
    else:
        return case
    lines = [triple, score]
    if row.capped_by:
        lines.append(f"capped by {row.capped_by}")
    if row.findings:
        lines.append("findings: " + ", ".join(row.findings))
    if failed is not None and failed.remediation:
        lines.append(f"remediation: {failed.remediation}")
    case.body = "\n".join(lines)
    return case


def _orphan_case(finding: Finding) -> _Case:
    """A failed indicator that the scored hierarchy does not list (or a result without scoring)."""
    indicator = finding.indicator or finding.id.removeprefix("indicator.")
    case = _finding_case(finding)
    case.classname, case.name = f"crm-audit.indicators.{indicator.split('.', 1)[0]}", f"{indicator}: {finding.title}"
    return case


def _evidence_text(finding: Finding) -> str:
    lines = []
    for ev in finding.evidence:
        if ev.request:
            lines.append(f"request: {ev.request}")
        if ev.status is not None:
            lines.append(f"status: {ev.status}")
        if ev.expected:
            lines.append(f"expected: {ev.expected}")
        if ev.observed:
            lines.append(f"observed: {ev.observed}")
        if ev.excerpt:
            text, cut = clip(ev.excerpt, EVIDENCE_LIMIT)
            lines.append("excerpt:\n" + text + (f"\n… ({cut} more characters)" if cut else ""))
    if finding.remediation:
        lines.append(f"remediation: {finding.remediation}")
    lines.extend(f"reference: {r}" for r in finding.references)
    return "\n".join(lines)


def _waived(finding: Finding) -> str:
    w: FindingWaiver | dict[str, str] = finding.waiver or {}
    return f"waived by {w.get('by', '?')} until {w.get('expires', '?')}: {w.get('justification', '')}"


def _finding_case(finding: Finding) -> _Case:
    """Open: failure (type = severity); waived: skipped; not assessed: skipped with reason and hint."""
    case = _Case(
        classname=f"crm-audit.findings.{finding.probe or finding.id.split('.', 1)[0]}",
        name=f"{finding.id}: {finding.title}",
        kind=finding.severity.value,
        body=_evidence_text(finding),
    )
    state = finding_state(finding)
    if state == "waived":
        case.outcome, case.message = "skipped", _waived(finding)
    elif not finding.assessed:
        case.outcome = "skipped"
        case.message = _not_assessed_message([reason_text(finding)], [finding.hint] if finding.hint else [])
    elif state == "open":
        case.outcome, case.message = "failure", f"[{finding.severity.value}] {finding.title}"
    return case


def _verdict_suite(result: AuditResult) -> _Suite | None:
    """One case: fails on Not fit, skipped when Inconclusive, passes on Fit (with conditions)."""
    view = verdict_view(result)
    if view is None:
        return None
    case = _Case(classname="crm-audit.verdict", name=f"verdict: {view.word}", kind="verdict")
    lines = [f"verdict: {view.word}", f"overall {score_with_coverage(result)}"]
    lines += [f"open {sev}: {n}" for sev, n in view.open_counts]
    lines += [f"coverage {d.title}: {fmt_pct(d.coverage)}" for d in view.dimensions]
    lines += [f"reason: {r}" for r in view.reasons]
    case.body = "\n".join(lines)
    if view.word == "Not fit":
        case.outcome, case.message = "failure", f"Not fit: {view.reason}"
    elif view.word == "Inconclusive":
        case.outcome, case.message = "skipped", f"Inconclusive: {view.reason}"
    properties = [("verdict", view.word), ("verdict.reason", view.reason), ("coverage", fmt_pct(view.coverage)),
                  ("score", score_with_coverage(result))]
    properties += [(f"open.{sev}", str(n)) for sev, n in view.open_counts]
    properties += [(f"coverage.{d.id}", fmt_pct(d.coverage)) for d in view.dimensions]
    return _Suite("verdict", [case], properties)


def _suites(result: AuditResult) -> list[_Suite]:
    failed = failed_indicators(result)
    by_rule = result.verdict is None   # results from before verdicts: the old rule
    rows = indicator_rows(result)
    indicators = _Suite("indicators", [_indicator_case(r, failed.get(r.id), by_rule) for r in rows])
    listed = {r.id for r in rows}
    indicators.cases += [_orphan_case(f) for key, f in failed.items() if key not in listed]
    probe_findings = findings_sorted(f for p in result.probes for f in p.findings)
    findings = _Suite("findings", [_finding_case(f) for f in probe_findings if finding_state(f) != "passed"])
    gates = _Suite("gates")
    for gate in result.gates:
        case = _Case(classname="crm-audit.gates", name=gate.gate, body=gate.detail)
        if not gate.passed:
            case.outcome, case.kind, case.message = "failure", "gate", gate.detail
        gates.cases.append(case)
    probes = _Suite("probes")
    for probe in result.probes:
        case = _Case(classname="crm-audit.probes", name=probe.probe, time=probe.duration_s)
        if probe.status == "skipped":
            case.outcome, case.message = "skipped", probe.reason or "skipped"
        elif probe.status in ("error", "incomplete"):
            case.outcome, case.kind = "error", probe.status
            case.message = probe.reason or probe.status
        probes.cases.append(case)
    verdict = _verdict_suite(result)
    return ([verdict] if verdict else []) + [indicators, findings, gates, probes]


def _suite_element(suite: _Suite, result: AuditResult) -> ET.Element:
    element = ET.Element(
        "testsuite",
        name=suite.name,
        tests=str(len(suite.cases)),
        failures=str(suite.count("failure")),
        errors=str(suite.count("error")),
        skipped=str(suite.count("skipped")),
        time=f"{sum(c.time for c in suite.cases):.3f}",
        timestamp=xml_text(result.started),
    )
    if suite.properties:
        props = ET.SubElement(element, "properties")
        for name, value in suite.properties:
            ET.SubElement(props, "property", name=xml_text(name), value=xml_text(value))
    for case in suite.cases:
        tc = ET.SubElement(
            element, "testcase", classname=xml_text(case.classname), name=xml_text(case.name), time=f"{case.time:.3f}"
        )
        if case.outcome is None:
            continue
        child = ET.SubElement(tc, case.outcome, message=xml_text(case.message))
        if case.outcome != "skipped":
            child.set("type", xml_text(case.kind or case.outcome))
            child.text = xml_text(case.body) if case.body else None
    return element


class JunitReporter(Reporter):
    """Writes ``junit.xml`` with suites verdict (when the result has one), indicators, findings, gates, probes."""

    format = "junit"
    filename = "junit.xml"
    description = "JUnit XML for CI test tabs: verdict, indicators, open findings, gates, probe runs"
    version = "1.0.0"

    def render(self, result: AuditResult) -> str:
        suites = _suites(result)
        root = ET.Element(
            "testsuites",
            name=xml_text(f"crm-audit {result.target.name}"),
            tests=str(sum(len(s.cases) for s in suites)),
            failures=str(sum(s.count("failure") for s in suites)),
            errors=str(sum(s.count("error") for s in suites)),
            skipped=str(sum(s.count("skipped") for s in suites)),
            time=f"{result.duration_s:.3f}",
        )
        for suite in suites:
            root.append(_suite_element(suite, result))
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


@hookimpl
def crm_audit_register_reporters() -> list[type[Reporter]]:
    return [JunitReporter]
