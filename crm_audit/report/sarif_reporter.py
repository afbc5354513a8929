"""SARIF 2.1.0 reporter: the security findings and failed indicators, for code-scanning dashboards.

Security findings are those whose indicator belongs to a security dimension (``sec`` or
``bak``, by the scored hierarchy, else by the indicator id: ``view.is_security_finding``), so a
third-party probe's findings are in scope when their indicator is; failed indicators (the
result's indicator findings) are results too. Each check of the catalogue (docs/checks.md) with a
result becomes a rule (a finding without a catalogue check: its own id) whose help is the
remediation and whose title, tags and references come from the catalogue entry; severity maps to the SARIF level and, for security findings, to GitHub's
``security-severity``. Waived findings stay in the log with an accepted suppression. Checks
that were not assessed are not results: they are tool execution notifications of the
run's invocation, with the reason and what would assess them. The run's properties carry
the verdict, the score with its coverage, and the coverage per dimension.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urljoin

from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import AuditResult, Finding, Severity, Status
from crm_audit.core.probe import Reporter
from crm_audit.report.view import (
    clip,
    finding_state,
    findings_sorted,
    indicator_dimensions,
    is_security_finding,
    not_assessed_findings,
    overall,
    reason_text,
    verdict_view,
)

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
MESSAGE_LIMIT = 1000

LEVELS = {
    Severity.critical: "error",
    Severity.high: "error",
    Severity.medium: "warning",
    Severity.low: "note",
    Severity.info: "note",
}
SECURITY_SEVERITY = {
    Severity.critical: "9.5",
    Severity.high: "8.0",
    Severity.medium: "5.5",
    Severity.low: "3.0",
    Severity.info: "0.0",
}


def _level(finding: Finding) -> str:
    """The severity's level; a warning-status finding is at most a SARIF warning."""
    level = LEVELS[finding.severity]
    return "warning" if finding.status is Status.warn and level == "error" else level


def _utc(stamp: str | None) -> str | None:
    """An ISO timestamp as SARIF's UTC date-time, or None when it cannot be read."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uri(base_url: str, finding: Finding) -> str:
    """Where the finding was observed: the request's URL when evidence names one, else the target."""
    for ev in finding.evidence:
        parts = (ev.request or "").split()
        candidate = parts[1] if len(parts) > 1 else (parts[0] if parts else "")
        if candidate.startswith(("/", "http://", "https://")):
            return quote(urljoin(base_url, candidate), safe=":/?#[]@!$&'()*+,;=%-._~")
    return quote(base_url, safe=":/?#[]@!$&'()*+,;=%-._~") or "."


def _message(finding: Finding) -> str:
    text = finding.title
    ev = finding.evidence[0] if finding.evidence else None
    if ev is not None:
        if ev.expected:
            text += f" Expected: {ev.expected}."
        if ev.observed:
            text += f" Observed: {ev.observed}."
    return clip(text, MESSAGE_LIMIT)[0]


def rule_id(finding: Finding) -> str:
    """The SARIF rule of a finding: its catalogue check (``access.bola`` for ``access.bola.contacts``),
    else its own id."""
    return finding.check or finding.id


def _catalogue_check(check_id: str | None) -> Any:
    """The installed catalogue's entry for a check id; None when unknown or the catalogue cannot load."""
    if check_id is None:
        return None
    try:
        from crm_audit.core.catalogue import registry_catalogue

        return registry_catalogue(_registry()).checks.get(check_id)
    except Exception:  # noqa: BLE001 - a report is still written from the finding's own fields
        return None


@functools.lru_cache(maxsize=1)
def _registry() -> Any:
    from crm_audit.core.plugins import make_plugin_manager

    return make_plugin_manager()


def _rule(finding: Finding, security: bool) -> dict[str, Any]:
    """A rule per check: metadata from the catalogue entry when the finding has one, else from the finding."""
    spec = _catalogue_check(finding.check)
    kinds = (["security"] if security else []) + (["indicator"] if finding.id.startswith("indicator.") else [])
    tags = kinds + [t for t in (finding.probe, finding.indicator, spec.category if spec else None) if t]
    if spec is not None:
        tags += [f"external/cwe/cwe-{n}" for n in spec.references.cwe]
    severity = spec.severity if spec is not None and spec.severity_varies is None else finding.severity
    properties: dict[str, Any] = {"tags": list(dict.fromkeys(tags))}
    if security:
        properties["security-severity"] = SECURITY_SEVERITY[severity]
    references = spec.references.strings() if spec is not None else list(finding.references)
    rule: dict[str, Any] = {
        "id": rule_id(finding),
        "name": rule_id(finding),
        "shortDescription": {"text": spec.title if spec is not None else finding.title or finding.id},
        "help": {"text": (spec.remediation.text() if spec is not None else finding.remediation)
                 or "No remediation recorded."},
        "defaultConfiguration": {"level": LEVELS[severity]},
        "properties": properties,
    }
    links = [r for r in references if r.startswith(("https://", "http://"))]
    if links:
        rule["helpUri"] = links[0]
    if references:
        rule["help"]["markdown"] = rule["help"]["text"] + "\n\n" + "\n".join(f"- {r}" for r in references)
    return rule


def _result(finding: Finding, rule_index: int, base_url: str) -> dict[str, Any]:
    digest = hashlib.sha256(f"{base_url}\n{finding.id}\n{_uri(base_url, finding)}".encode()).hexdigest()
    entry: dict[str, Any] = {
        "ruleId": rule_id(finding),
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": _level(finding),
        "message": {"text": _message(finding)},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": _uri(base_url, finding)}},
                "logicalLocations": [
                    {"name": finding.indicator or finding.id, "fullyQualifiedName": finding.id, "kind": "resource"}
                ],
            }
        ],
        "fingerprints": {"crmAuditFinding/v1": digest},
        "properties": {"severity": finding.severity.value, "status": finding.status.value, "probe": finding.probe},
    }
    if finding.waiver is not None:
        suppression: dict[str, Any] = {"kind": "external", "status": "accepted"}
        if finding.waiver.get("justification"):
            suppression["justification"] = str(finding.waiver["justification"])
        entry["suppressions"] = [suppression]
    return entry


def _check_notification(finding: Finding) -> dict[str, Any]:
    """A not-assessed check: why, and what would assess it; never a result."""
    text = f"{finding.id}: not assessed ({reason_text(finding)}): {finding.title}."
    if finding.hint:
        text += f" To assess it: {finding.hint}"
    properties: dict[str, Any] = {"notAssessed": finding.not_assessed.value if finding.not_assessed else None,
                                  "severity": finding.severity.value, "probe": finding.probe}
    if finding.hint:
        properties["hint"] = finding.hint
    return {"level": "warning" if finding.status is Status.error else "note",
            "descriptor": {"id": finding.id},
            "message": {"text": clip(text, MESSAGE_LIMIT)[0]},
            "properties": properties}


def _notifications(result: AuditResult) -> list[dict[str, Any]]:
    notes = []
    for probe in result.probes:
        if probe.status in ("error", "incomplete"):
            notes.append({"level": "error", "message": {"text": f"{probe.probe}: {probe.reason or probe.status}"}})
    return notes + [_check_notification(f) for f in not_assessed_findings(result)]


def _in_scope(finding: Finding, dimensions: dict[str, str]) -> bool:
    """Open or waived, and a security finding or a failed indicator."""
    return finding_state(finding) in ("open", "waived") and (
        is_security_finding(finding, dimensions) or finding.id.startswith("indicator."))


def _verdict_properties(result: AuditResult) -> dict[str, Any]:
    view = verdict_view(result)
    if view is None:
        return {}
    return {"verdict": view.word, "verdictReasons": list(view.reasons), "openCounts": dict(view.open_counts),
            "coverage": view.coverage, "dimensionCoverage": {d.id: d.coverage for d in view.dimensions}}


def sarif_log(result: AuditResult) -> dict[str, Any]:
    """The SARIF log as a dict (one run)."""
    dimensions = indicator_dimensions(result)
    findings = [f for f in findings_sorted(result.all_findings()) if _in_scope(f, dimensions)]
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for finding in findings:
        if rule_id(finding) not in index:
            index[rule_id(finding)] = len(rules)
            rules.append(_rule(finding, is_security_finding(finding, dimensions)))
    invocation: dict[str, Any] = {"executionSuccessful": result.complete}
    for key, stamp in (("startTimeUtc", result.started), ("endTimeUtc", result.finished)):
        if _utc(stamp):
            invocation[key] = _utc(stamp)
    notes = _notifications(result)
    if notes:
        invocation["toolExecutionNotifications"] = notes
    head = overall(result)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": result.tool.get("name", "crm-audit"),
                "version": result.tool.get("version", "0"),
                "rules": rules,
            },
            "extensions": [{"name": name, "version": version} for name, version in sorted(result.plugins.items())],
        },
        "automationDetails": {"id": f"crm-audit/{result.target.name}/{result.run_id}"},
        "invocations": [invocation],
        "results": [_result(f, index[rule_id(f)], result.target.base_url) for f in findings],
        "properties": {
            "target": result.target.name,
            "baseUrl": result.target.base_url,
            "profileDigest": result.profile_digest,
            "score": head.get("score"),
            "grade": head.get("grade"),
            "scoreCoverage": result.scoring.coverage if result.scoring is not None else None,
            **_verdict_properties(result),
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


class SarifReporter(Reporter):
    """Writes ``results.sarif``: security findings and failed indicators as SARIF 2.1.0."""

    format = "sarif"
    filename = "results.sarif"
    description = "Security findings and failed indicators as SARIF 2.1.0 (code-scanning dashboards)"
    version = "1.0.0"

    def render(self, result: AuditResult) -> str:
        return json.dumps(sarif_log(result), indent=2, ensure_ascii=False) + "\n"


@hookimpl
def crm_audit_register_reporters() -> list[type[Reporter]]:
    return [SarifReporter]
