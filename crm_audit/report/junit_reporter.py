"""JUnit XML reporter: indicators, failed findings, gates and probe runs as test cases.

CI systems show JUnit files in their test tabs; each indicator is a test case that fails when
it scores under 50 or misses its expected value and is skipped when not assessed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ..hookspecs import hookimpl
from ..model import AuditResult, Finding, Status
from ..probe import Reporter
from .view import IndicatorRow, clip, findings_sorted, fmt_diff, fmt_num, fmt_value, indicator_rows

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

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.cases if c.outcome == outcome)


def _indicator_case(row: IndicatorRow) -> _Case:
    case = _Case(classname=f"crm-audit.indicators.{row.dimension}", name=f"{row.id}: {row.title}")
    triple = (
        f"actual {fmt_value(row.actual, row.unit)}, expected {fmt_value(row.expected, row.unit)}, "
        f"difference {fmt_diff(row.difference, row.unit)}"
    )
    score = f"score {fmt_num(row.score)}" + (f" ({row.grade})" if row.grade else "")
    if not row.assessed:
        case.outcome, case.message = "skipped", "not assessed"
    elif row.failing:
        reasons = []
        if row.score is not None and row.score < 50:
            reasons.append(f"score {fmt_num(row.score)} < 50")
        if row.meets is False:
            reasons.append("misses the expected value")
        case.outcome, case.kind = "failure", "indicator"
        case.message = "; ".join(reasons) + f" ({triple})"
        lines = [triple, score]
        if row.capped_by:
            lines.append(f"capped by {row.capped_by}")
        if row.findings:
            lines.append("findings: " + ", ".join(row.findings))
        case.body = "\n".join(lines)
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


def _finding_case(finding: Finding) -> _Case:
    case = _Case(
        classname=f"crm-audit.findings.{finding.probe or finding.id.split('.', 1)[0]}",
        name=f"{finding.id}: {finding.title}",
        kind=finding.severity.value,
        body=_evidence_text(finding),
    )
    if finding.waiver is not None:
        w = finding.waiver
        case.outcome = "skipped"
        case.message = f"waived by {w.get('by', '?')} until {w.get('expires', '?')}: {w.get('justification', '')}"
    elif finding.status is Status.error:
        case.outcome, case.message = "error", f"check could not run: {finding.title}"
    else:
        case.outcome, case.message = "failure", f"[{finding.severity.value}] {finding.title}"
    return case


def _suites(result: AuditResult) -> list[_Suite]:
    indicators = _Suite("indicators", [_indicator_case(r) for r in indicator_rows(result)])
    failed = [f for f in findings_sorted(result.all_findings()) if f.status in (Status.failed, Status.error)]
    findings = _Suite("findings", [_finding_case(f) for f in failed])
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
    return [indicators, findings, gates, probes]


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
    """Writes ``junit.xml`` with suites indicators, findings, gates and probes."""

    format = "junit"
    filename = "junit.xml"
    description = "JUnit XML for CI test tabs: indicators, failed findings, gates, probe runs"
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
