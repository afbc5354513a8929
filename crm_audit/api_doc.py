"""Renders the plugin API reference (docs/api.md) from the code, so it cannot drift.

``python -m crm_audit.api_doc > docs/api.md`` writes it; ``python -m crm_audit.api_doc --check``
lists public names without a meaning (exit 1). A member's meaning is, in this order: its ``#:``
comment in the source, its pydantic ``Field(description=…)``, its docstring's first paragraph,
else :data:`NOTES` below (for code whose owners have not written one yet). A test keeps
docs/api.md equal to the output and fails on any undocumented public name.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import importlib
import inspect
import re
import sys
import textwrap
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Section:
    """One part of the reference: a module and the public names of it that plugins use."""

    title: str
    module: str
    names: tuple[str, ...]  # empty: every public class, function and constant defined in the module
    intro: str = ""


SECTIONS: tuple[Section, ...] = (
    Section("Probes and reporters", "crm_audit.core.probe",
            ("Probe", "ProbeContext", "ProbeSkipped", "NoOptions", "Reporter", "CATEGORIES"),
            "A probe subclasses `Probe`, sets its class attributes and implements `run(ctx)`; "
            "`ProbeSkipped` is the one exception a probe raises on purpose (docs/plugins.md)."),
    Section("Target: requests and exchanges", "crm_audit.core.target",
            ("Target", "Exchange", "TargetError", "OutOfScope", "BudgetExceeded", "Cancelled"),
            "Every request goes through `ctx.target.request(…)`, which returns an `Exchange`. Only scope, "
            "budget and cancellation raise (`OutOfScope`, `BudgetExceeded`, `Cancelled`, all `TargetError`s); "
            "network, TLS, deadline and byte-cap problems come back as `Exchange.error` with `Exchange.failure`. "
            "A probe may let a `TargetError` propagate: the runner records an `error` result with its message. "
            "`Exchange.evidence(excerpt_chars=300, expected=…, observed=…, details=…)` turns an exchange into "
            "redacted `Evidence` for a finding; its keyword arguments become the `Evidence` fields of those names.\n\n"
            "**Authentication**: `request(account=name)` authenticates as that account with the auth method "
            "its profile entry names (`accounts[].auth.method`; section \"Authentication\" below); the "
            "credentials are obtained once, renewed before they expire and redacted from everything kept. "
            "An adapter or probe never handles secrets itself."),
    Section("Results", "crm_audit.core.model",
            ("Finding", "Evidence", "Measurement", "SampleSummary", "ProbeResult", "Severity", "Status", "NotAssessed",
             "ASSESSED_STATUSES", "SEVERITY_ORDER", "AuditResult", "Verdict", "GateOutcome", "SchedulePhase",
             "TargetSummary", "load_result"),
            "What a probe returns and a reporter reads. Evidence has three states: pass, fail/warn, or "
            "*not assessed* (status `skipped` or `error` with a `NotAssessed` reason) — never a pass."),
    Section("Scoring records", "crm_audit.core.scoring_model",
            ("Scoring", "ScoredNode", "OverallScore", "NotAssessedWhy", "UnassessedIndicator"),
            "`AuditResult.scoring`: the scored hierarchy as closed, typed records (docs/scoring.md, section 7)."),
    Section("CI records", "crm_audit.core.ci_model",
            ("BaselineComparison", "ScoreChange", "Regression", "RegressionPolicyRecord", "FindingWaiver",
             "WaiversRecord", "WaiverOutcome", "Signature"),
            "`AuditResult.baseline`, `AuditResult.waivers`, `Finding.waiver` and `AuditResult.signature` (docs/ci.md)."),
    Section("Record base", "crm_audit.core.record", ("Record",)),
    Section("Probe artifacts", "crm_audit.core.artifacts", ("ProbeArtifacts", "artifacts_misfit"),
            "A probe declares the model of its `artifacts` as `artifacts_model` (docs/reports.md, \"JSON\")."),
    Section("Profile and accounts", "crm_audit.core.profile", ("Account", "AuthConfig", "Profile", "ProfileError"),
            "Every profile key is in docs/profile.md; these are the parts probes read."),
    Section("Picking accounts", "crm_audit.core.accounts", ()),
    Section("Options checked against the profile", "crm_audit.core.options", ()),
    Section("Authentication", "crm_audit.core.auth",
            ("AuthMethod", "Credentials", "LoginAttempt", "AuthFailed", "json_path", "fill", "compose"),
            "Authentication is a plugin point: an auth method is a class registered with "
            "`crm_audit_register_auth`, picked by `accounts[].auth.method` (docs/plugins.md, \"Authentication\"; "
            "the built-ins in `crm_audit.protocols.auth_methods` are examples)."),
    Section("Adapters", "crm_audit.core.adapter", ("Adapter", "IncompleteRead"),
            "An adapter maps generic resources onto one CRM's API; probes call only these methods. "
            "Every method that talks to the CRM returns the `Exchange` it made, so a probe can judge it."),
    Section("Indicators a plugin adds", "crm_audit.scoring.extend",
            ("IndicatorSpec", "collect_indicators", "merge_indicators", "fed_indicators", "unscored_probe_warnings")),
    Section("Verdict", "crm_audit.core.verdict", ("finalize", "decide", "rank", "open_counts", "rules_of"),
            "The decision drawn from the evidence, apart from the score (docs/scoring.md, \"Verdict\")."),
    Section("Failed indicators as findings", "crm_audit.scoring.indicator_findings", ("failed_indicator_findings",)),
    Section("Reading CRM records", "crm_audit.core.crm_data", (),
            "What probes that judge record contents share (plugins never import each other: these live in the core)."),
    Section("Report sections", "crm_audit.report.section",
            ("ReportSection", "show", "kv", "as_list", "as_dict", "metrics_view"),
            "How a probe's results are drawn in the HTML report, returned by `crm_audit_register_report_sections` "
            "(docs/plugins.md, \"Its own report section and command\"); the helpers read artifacts defensively."),
    Section("Check catalogue", "crm_audit.core.catalogue",
            ("CheckSpec", "References", "Remediation", "Catalogue", "load_checks", "CatalogueError"),
            "One metadata entry per check id, beside its probe (docs/checks.md; docs/plugins.md, \"Checks a plugin "
            "declares\"): returned by `crm_audit_register_checks`, usually as `load_checks(__file__)`."),
    Section("The YAML loader", "crm_audit.core.safeyaml",
            ("load_yaml", "load_file", "read_file", "parse_text", "Loaded", "YamlError", "MAX_CHARS", "MAX_NODES",
             "MAX_DEPTH"),
            "Every YAML file crm-audit reads goes through `load_yaml`; an input file through `load_file`, which "
            "fails with one line `<file>:<line>: not valid YAML: …`. A plugin reading YAML should do the same."),
    Section("Errors and exit codes", "crm_audit.core.errors",
            ("CrmAuditError", "UsageError", "InputFileError", "CannotRun", "first_error", "error_lines", "dotted"),
            "Every error raised on purpose derives from `CrmAuditError`; its class carries the exit code the "
            "command line ends with (2 usage or input, 3 could not run). `first_error` turns a pydantic "
            "ValidationError into one line."),
    Section("Stopping processes", "crm_audit.core.processes", ("stop_processes",),
            "Stopping what a plugin started: the whole process tree, SIGTERM then SIGKILL (psutil)."),
    Section("Free ports", "crm_audit.core.net", ("free_port",)),
    Section("Logging", "crm_audit.core.logs", ("ProbeLog", "configure"),
            "`ctx.log` is a `ProbeLog`; `-v`/`--verbose` on `audit` and `demo` calls `configure`."),
    Section("Hooks", "crm_audit.core.hookspecs", ("hookimpl", "crm_audit_register_probes", "crm_audit_register_reporters",
                                             "crm_audit_register_adapters", "crm_audit_register_auth",
                                             "crm_audit_register_indicators", "crm_audit_register_checks",
                                             "crm_audit_register_report_sections",
                                             "crm_audit_register_commands",
                                             "crm_audit_audit_started", "crm_audit_probe_finished",
                                             "crm_audit_audit_finished"),
            "Decorate a module-level function of the hook's name with `hookimpl` (docs/plugins.md, \"Hooks\")."),
)

#: meanings of public names whose code carries none yet ("Class.member" or "module.name")
NOTES: dict[str, str] = {
    "Probe.id": "unique probe id; used by --only/--skip, `plugins.<id>` and every finding's `probe`",
    "Probe.title": "human title shown in reports",
    "Probe.version": "the probe's version, recorded in the result",
    "Probe.run": "measure the target and return a ProbeResult; raise ProbeSkipped when the probe does not apply",
    "ProbeContext.run_id": "the audit's run id",
    "ProbeContext.profile": "the validated profile",
    "ProbeContext.target": "the HTTP client every request goes through (this probe's view of it)",
    "ProbeContext.adapter": "the profile's adapter, or None",
    "ProbeContext.options": "the probe's options_model instance from `plugins.<id>`, validated against the profile",
    "ProbeContext.allow_writes": "whether the probe may create, change and delete its own tagged records",
    "ProbeContext.allow_disruptive": "whether lockout attempts, restores and heavier load are allowed",
    "ProbeContext.workdir": "a folder for scratch files",
    "ProbeContext.cancel": "set when the audit is interrupted or the probe timed out: stop soon",
    "CrmAuditError.exit_code": "the exit code of the command line when this error ends it",
    "UsageError.exit_code": "2: usage, profile or input file",
    "ProbeLog.probe_id": "the probe whose lines these are",
    "ProbeLog.logger": "the logger named crm_audit.probe. and the probe id",
    "ProbeContext.log": "log a line (INFO; a level as second argument) on the logger named crm_audit.probe. and the probe id, redacted; "
                        "shown with -v",
    "Reporter.format": "the name used with --format",
    "Reporter.filename": "the file it writes in the run's folder",
    "Reporter.description": "one line shown by `crm-audit plugins`",
    "Reporter.version": "the reporter's version",
    "Reporter.render": "the report of an AuditResult as text or bytes; never contacts the target",
    "Target.profile": "the profile the client is bound to",
    "Target.config": "the profile's `target` section (scope, limits, timeouts)",
    "Target.redactor": "masks secrets (tokens, passwords, keys) in anything kept",
    "Target.requests_made": "requests sent so far (by this probe, in a probe's view)",
    "Target.url": "the absolute URL of a path (an absolute URL is returned as it is)",
    "Target.forget_token": "drop an account's cached login token (the next request logs in again)",
    "Target.close": "close the client's connections",
    "Exchange.method": "the HTTP method sent",
    "Exchange.url": "the URL contacted (after redirects followed)",
    "Exchange.status": "the HTTP status, or None when no answer came",
    "Exchange.headers": "the response headers (case-insensitive)",
    "Exchange.body": "the response body, decoded from gzip/deflate, at most target.max_response_bytes",
    "Exchange.elapsed_s": "seconds for the whole exchange (perf_counter around it)",
    "Exchange.ttfb_s": "seconds to the first byte of the answer",
    "Exchange.error": "why no usable answer came back (network, TLS, deadline, byte cap), else None",
    "Exchange.account": "the account the request was sent as (None: anonymous)",
    "Exchange.request_headers": "the headers sent (redact before keeping; evidence() does)",
    "Exchange.request_body": "the body sent",
    "Exchange.redirects": "URLs of the in-scope redirects followed",
    "Exchange.blocked_redirect": "an off-scope redirect that was not followed",
    "Exchange.text": "the body as text (UTF-8, undecodable bytes replaced)",
    "Exchange.json_or_none": "the body as JSON, or None when it is not JSON or there was no answer",
    "Finding.id": "stable check id, e.g. `tls.protocol.tls1_0_enabled`",
    "Finding.title": "one line saying what was found",
    "Finding.severity": "how bad a failed finding is",
    "Finding.status": "the outcome: pass, fail, warn, or not assessed (skipped, error)",
    "Finding.indicator": "the hierarchy indicator it concerns; its dimension makes it a security finding or not",
    "Finding.probe": "the probe that produced it — filled in by the runner",
    "Finding.evidence": "redacted evidence: request, status, excerpt, expected / observed",
    "Finding.remediation": "how to fix it",
    "Finding.references": "OWASP, CWE, RFC … references (URLs become SARIF help links)",
    "Finding.waiver": "the waiver that accepts it (set by the waivers step), else None",
    "Evidence.request": "the redacted request line, e.g. `GET /api/contacts (as sales)`",
    "Evidence.status": "the HTTP status seen",
    "Evidence.excerpt": "a short redacted excerpt of the answer",
    "Evidence.expected": "what the check expected",
    "Evidence.observed": "what it saw",
    "Evidence.details": "any further JSON-able detail",
    "Measurement.indicator": "the indicator id the value belongs to",
    "Measurement.value": "the measured value (None: nothing measured)",
    "Measurement.unit": "its unit (docs/scoring.md, units); converted to the indicator's unit when scored",
    "Measurement.expected": "the expected value (the hierarchy's expected value wins when it gives one)",
    "Measurement.better": "which direction is better: lower or higher",
    "Measurement.label": "what was measured, shown in reports (e.g. an endpoint's name)",
    "Measurement.samples": "summary of the samples behind the value (percentiles)",
    "Measurement.raw_samples": "the samples themselves, when kept",
    "Measurement.details": "any further JSON-able detail",
    "Measurement.difference": "value − expected (computed)",
    "Measurement.meets_expected": "whether the value meets the expected one in the better direction (computed)",
    "SampleSummary.count": "number of samples",
    "SampleSummary.min": "smallest sample",
    "SampleSummary.max": "largest sample",
    "SampleSummary.mean": "arithmetic mean",
    "SampleSummary.stdev": "sample standard deviation (0 for one sample)",
    "SampleSummary.p50": "median",
    "SampleSummary.p90": "90th percentile",
    "SampleSummary.p95": "95th percentile",
    "SampleSummary.p99": "99th percentile",
    "SampleSummary.of": "the summary of a list of samples (exact, linear interpolation)",
    "ProbeResult.probe": "the probe id — filled in by the runner",
    "ProbeResult.title": "the probe's title — filled in by the runner",
    "ProbeResult.version": "the probe's version — filled in by the runner",
    "ProbeResult.status": "ok, error (with reason), skipped (with reason) or incomplete (interrupted)",
    "ProbeResult.reason": "why it errored, was skipped or is incomplete",
    "ProbeResult.started": "when it started (ISO 8601 UTC) — filled in by the runner",
    "ProbeResult.duration_s": "how long it ran — filled in by the runner",
    "ProbeResult.requests": "requests it sent — filled in by the runner",
    "ProbeResult.measurements": "its measured values",
    "ProbeResult.findings": "its check outcomes",
    "ProbeResult.artifacts": "JSON-able data for its report section (tables, timelines …)",
    "Severity.info": "informational",
    "Severity.low": "low",
    "Severity.medium": "medium",
    "Severity.high": "high",
    "Severity.critical": "critical: caps the indicator's score and makes the verdict Not fit while open",
    "Status.passed": "`pass`: the check passed",
    "Status.failed": "`fail`: the check failed",
    "Status.warn": "`warn`: a weakness short of a failure",
    "Status.error": "`error`: tried, but no usable answer (not assessed)",
    "Status.skipped": "`skipped`: not tried — not allowed, not configured, not applicable (not assessed)",
    "model.SEVERITY_ORDER": "severity values from least to most severe",
    "AuditResult.schema_version": "version of the result's JSON schema",
    "AuditResult.tool": "name and version of crm-audit",
    "AuditResult.plugins": "plugin distributions and probes with their versions",
    "AuditResult.run_id": "the run id",
    "AuditResult.target": "name, base URL and scope of the target",
    "AuditResult.profile_digest": "SHA-256 of the profile (no secrets)",
    "AuditResult.started": "when the audit started (ISO 8601 UTC)",
    "AuditResult.finished": "when it finished",
    "AuditResult.duration_s": "how long it ran",
    "AuditResult.complete": "False when the audit was interrupted or could not start",
    "AuditResult.incomplete_reason": "why it is incomplete",
    "AuditResult.probes": "every selected probe's result, in selection order",
    "AuditResult.gates": "the CI gates' outcomes",
    "AuditResult.baseline": "the comparison with --baseline, when given",
    "AuditResult.waivers": "waivers applied, expired and unmatched",
    "AuditResult.signature": "the detached Ed25519 signature, when signed",
    "AuditResult.all_measurements": "every probe's measurements",
    "AuditResult.probe": "one probe's result by id, or None",
    "Verdict.verdict": "Fit, Fit with conditions, Not fit or Inconclusive",
    "Verdict.reasons": "every rule that holds, the deciding one first",
    "GateOutcome.gate": "the gate's name",
    "GateOutcome.passed": "whether it passed",
    "GateOutcome.detail": "what it compared",
    "SchedulePhase.mode": "concurrent (probes side by side) or alone",
    "TargetSummary.name": "the profile's name",
    "TargetSummary.base_url": "where the API lives",
    "TargetSummary.scope": "hosts the audit may contact",
    "AuthConfig.body_format": "login: send the body as JSON or as a form",
    "Profile.account": "the account of that name; KeyError when there is none",
    "Profile.accounts_with_role": "the accounts of a role, in profile order (crm_audit.core.accounts has more)",
    "Adapter.type": "the name the profile's `adapter.type` selects",
    "Adapter.version": "the adapter's version",
    "Adapter.description": "one line shown by `crm-audit plugins`",
    "Adapter.resources": "the generic resources this CRM offers (contacts, leads …)",
    "Adapter.list": "one page of a resource as an account: (records, exchange); `limit`/`offset` page it",
    "Adapter.create": "create a record tagged with `tag` as an account: (record or None, exchange); "
                      "`overrides` replace body fields",
    "Adapter.read": "one record by id as an account: (record or None, exchange)",
    "Adapter.update": "set the chosen fields of a record (default: update_changes) as a caller: (record or None, exchange)",
    "Adapter.delete": "delete a record as an account: the exchange",
    "Adapter.record_id": "the id of a record as the adapter returned it",
    "AuthMethod.name": "what `accounts[].auth.method` names to pick this method",
    "AuthMethod.description": "one line shown by `crm-audit plugins`",
    "AuthMethod.version": "the method's version",
    "AuthMethod.options_model": "pydantic model validating `accounts[].auth.options` (None: takes none)",
    "AuthMethod.password_login": "True when `attempt` works: the lockout and user-enumeration checks use it",
    "AuthMethod.account": "the account this instance logs in",
    "AuthMethod.auth": "the account's `auth` section",
    "AuthMethod.options": "the validated `auth.options` (None without an options_model)",
    "Credentials.headers": "headers added to every request as the account",
    "Credentials.cookies": "cookies sent with every request as the account",
    "Credentials.signer": "called per prepared request to add signature headers (request signing), or None",
    "LoginAttempt.exchange": "the login request's exchange (None: nothing was sent)",
    "LoginAttempt.credentials": "the credentials when the login was accepted, else None",
    "LoginAttempt.accepted": "True when the login was accepted",
    "IncompleteRead.exchange": "the exchange of the page that got no usable answer",
    "hookspecs.hookimpl": "decorator marking a function as a crm-audit hook implementation",
    "model.TargetSummary": "The audited target as the result names it.",
    "SchedulePhase.duration_s": "the phase's length in seconds",
    "AuditResult.scoring": "the scored hierarchy: every node's score, weight, coverage, source and PIA triple "
                           "(None: not scored)",
    "AuditResult.verdict": "the decision drawn from the evidence (None: not judged)",
    "Adapter.raw_config": "the profile's `adapter` section as given",
    "Adapter.config": "the `adapter` section validated by `config_model` (None when the adapter has none)",
    "Adapter.target": "the Target every request of the adapter goes through",
    "Loaded.data": "the loaded document",
    "Loaded.lines": "1-based line of every key path (a tuple of keys and list indexes)",
    "YamlError.problem": "what is wrong, one line of at most 160 characters",
    "YamlError.line": "the 1-based line of the problem, or None",
    "safeyaml.MAX_CHARS": "longest text read (1 MiB)",
    "safeyaml.MAX_NODES": "most nodes after alias expansion",
    "safeyaml.MAX_DEPTH": "deepest nesting",
}


@dataclass(frozen=True)
class Entry:
    """One documented name: how it is written and what it means (empty: undocumented)."""

    name: str
    kind: str
    signature: str
    meaning: str


# ------------------------------------------------------------------ finding meanings


def _first_paragraph(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "").split("\n\n", 1)[0]
    return " ".join(text.split())


def _comments(obj: Any) -> dict[str, str]:
    """``#:`` comments of a class or module, by the name assigned on (or after) them."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.AnnAssign, ast.Assign)):
            continue
        targets: list[ast.expr] = [node.target] if isinstance(node, ast.AnnAssign) else list(node.targets)
        for target in targets:
            name = target.id if isinstance(target, ast.Name) else (
                target.attr if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                and target.value.id == "self" else None)
            if name is None:
                continue
            above: list[str] = []
            i = node.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#:"):
                above.insert(0, lines[i].strip()[2:].strip())
                i -= 1
            trailing = re.search(r"^[^#]*#:\s*(.+)$", lines[node.lineno - 1])  # the line's first comment is #:
            text = " ".join(above) or (trailing.group(1).strip() if trailing else "")
            if text:
                out.setdefault(name, text)
    return out


def _docstring_after(module: Any) -> dict[str, str]:
    """Module constants documented by a string literal right after their assignment."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    body = tree.body
    for here, nxt in zip(body, body[1:]):
        if isinstance(here, (ast.Assign, ast.AnnAssign)) and isinstance(nxt, ast.Expr) \
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
            target = here.targets[0] if isinstance(here, ast.Assign) else here.target
            if isinstance(target, ast.Name):
                out[target.id] = _first_paragraph(nxt.value.value)
    return out


# ------------------------------------------------------------------ signatures and types


def _type_text(annotation: Any) -> str:
    """A short Python spelling of a type: no module prefixes, no quotes, Annotated unwrapped."""
    if annotation is inspect.Parameter.empty:
        return ""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    annotation = getattr(annotation, "__forward_arg__", annotation)
    if isinstance(annotation, type) and not typing.get_args(annotation):
        text = annotation.__name__
    else:
        text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    text = re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", text.replace("typing.", ""))
    text = re.sub(r"Annotated\[([^,\[\]]+), [^\]]*\]", r"\1", text)
    return text.strip("'\"").replace("NoneType", "None")


def _signature(fn: Callable[..., Any], drop_self: bool = True) -> str:
    """``(name: type = default, …) -> type`` of a function, annotations without quotes."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return "(…)"
    parts: list[str] = []
    star_done = False
    for p in sig.parameters.values():
        if drop_self and p.name in ("self", "cls"):
            continue
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        prefix = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        star_done = star_done or p.kind is p.VAR_POSITIONAL
        text = prefix + p.name + (f": {_type_text(p.annotation)}" if p.annotation is not p.empty else "")
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    ret = f" -> {_type_text(sig.return_annotation)}" if sig.return_annotation is not sig.empty else ""
    return f"({', '.join(parts)}){ret}"


def _own_members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties defined on ``cls`` itself (not inherited from pydantic or object)."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_") or name in ("model_config", "model_fields", "model_computed_fields"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property) or inspect.isfunction(value) or hasattr(value, "__wrapped__") \
                or type(value).__name__ == "PydanticDescriptorProxy":
            out.append((name, value))
    return out


def _member_entry(cls: type, name: str, value: Any, comments: dict[str, str]) -> Entry:
    meaning = comments.get(name, "")
    wrapped = getattr(value, "wrapped", value)  # pydantic computed fields wrap their property
    if isinstance(wrapped, property):
        fget = wrapped.fget
        ret = inspect.signature(fget).return_annotation if fget else inspect.Signature.empty
        sig = "" if ret is inspect.Signature.empty else _type_text(ret)
        return Entry(name, "property", sig, meaning or _first_paragraph(fget.__doc__ if fget else None))
    fn = getattr(value, "__func__", value)
    return Entry(f"{name}{_signature(fn)}", "method", "", meaning or _first_paragraph(fn.__doc__))


def class_entries(cls: type) -> list[Entry]:
    """Every public field, attribute, property and method of a class, with its meaning."""
    comments = _comments(cls)
    entries: list[Entry] = []
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return [Entry(m.name, "member", repr(m.value), comments.get(m.name, "")) for m in cls]
    if issubclass(cls, BaseModel):
        for name, info in cls.model_fields.items():
            if info.exclude:
                continue
            entries.append(Entry(name, "field", _type_text(info.annotation), comments.get(name) or info.description or ""))
    elif dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if not f.name.startswith("_"):
                entries.append(Entry(f.name, "field", _type_text(f.type), comments.get(f.name, "")))
    else:
        hints = {k: v for klass in reversed(cls.__mro__) for k, v in vars(klass).get("__annotations__", {}).items()}
        own = vars(cls).get("__annotations__", {})
        for name in own:
            if not name.startswith("_"):
                entries.append(Entry(name, "class attribute", _type_text(hints[name]).removeprefix("ClassVar[")
                                     .removesuffix("]"), comments.get(name, "")))
        init = vars(cls).get("__init__")
        if init is not None:
            for name, text in _comments(init).items():
                comments.setdefault(name, text)
            for name in _init_attributes(init):
                entries.append(Entry(name, "attribute", "", comments.get(name, "")))
    known = {e.name for e in entries}
    for name, value in _own_members(cls):
        if name not in known:
            entries.append(_member_entry(cls, name, value, comments))
    return entries


def _init_attributes(init: Callable[..., Any]) -> list[str]:
    """Public ``self.<name> = …`` attributes set in ``__init__``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        for target in getattr(node, "targets", [getattr(node, "target", None)]):
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self" \
                    and not target.attr.startswith("_") and target.attr not in names:
                names.append(target.attr)
    return names


def module_names(section: Section) -> list[str]:
    """The section's names: those listed, else every public name the module defines."""
    mod = importlib.import_module(section.module)
    if section.names:
        return list(section.names)
    out = []
    for name, value in vars(mod).items():
        if name.startswith("_") or inspect.ismodule(value) or name in ("annotations",):
            continue
        defined_here = getattr(value, "__module__", None) == mod.__name__
        alias = typing.get_origin(value) in (typing.Annotated, typing.Literal)
        if defined_here or (name.isupper() and not callable(value)) or alias:
            out.append(name)
    return out


def _note(section: Section, owner: str, name: str) -> str:
    return NOTES.get(f"{owner}.{name}", "") or NOTES.get(f"{section.module.rsplit('.', 1)[-1]}.{name}", "")


def section_items(section: Section) -> list[tuple[str, str, list[Entry]]]:
    """(name, heading meaning, member entries) for every name of a section; meanings filled from NOTES."""
    mod = importlib.import_module(section.module)
    comments = {**_comments(mod), **_docstring_after(mod)}
    items = []
    for name in module_names(section):
        value = getattr(mod, name)
        if isinstance(value, type):
            members = [dataclasses.replace(e, meaning=e.meaning or _note(section, name, e.name.split("(")[0]))
                       for e in class_entries(value)]
            items.append((name, _first_paragraph(value.__doc__) or _note(section, "", name), members))
        elif callable(value) and not hasattr(value, "__metadata__"):
            doc = _first_paragraph(getattr(value, "__doc__", None))
            meaning = comments.get(name) or (doc if inspect.isfunction(value) else "") or _note(section, "", name)
            sig = _signature(value, drop_self=False) if inspect.isfunction(value) else ""
            items.append((f"{name}{sig}", meaning, []))
        else:
            items.append((name, comments.get(name) or _note(section, "", name), []))
    return items


def undocumented() -> list[str]:
    """Public names of the reference without a meaning ("module.Class.member")."""
    missing = []
    for section in SECTIONS:
        for name, meaning, members in section_items(section):
            if not meaning:
                missing.append(f"{section.module}.{name}")
            missing += [f"{section.module}.{name}.{e.name}" for e in members if not e.meaning]
    return missing


# ------------------------------------------------------------------ rendering


def _cell(text: str) -> str:
    """Table-cell Markdown: RST ``literals`` as `code`, ``<``/``>`` escaped outside code, pipes escaped."""
    text = re.sub(r":(?:class|func|data|meth|attr):", "", text.replace("``", "`").replace("\n", " "))
    parts = re.split(r"(`[^`]*`)", text)
    text = "".join(p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;") for p in parts)
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    """A name or signature as a Markdown code span in a table cell."""
    return "`" + text.replace("|", "\\|") + "`" if text else ""


def render() -> str:
    """The whole reference as Markdown."""
    out = [
        "# Plugin API reference",
        "",
        "Generated from the code by `python -m crm_audit.api_doc` — do not edit by hand; "
        "`tests/test_api_reference.py` keeps it current and fails on any public name without a meaning.",
        "docs/plugins.md walks through writing a plugin with these; docs/profile.md lists every profile key.",
        "",
    ]
    for section in SECTIONS:
        out += [f"## {section.title}", "", f"`{section.module}`" + (f" — {section.intro}" if section.intro else ""), ""]
        plain = [(n, m) for n, m, members in section_items(section) if not members and not _is_class(section, n)]
        if plain:
            out += ["| name | meaning |", "|---|---|", *[f"| {_code(n)} | {_cell(m)} |" for n, m in plain], ""]
        for name, meaning, members in section_items(section):
            if not _is_class(section, name):
                continue
            out += [f"### {name}", "", _cell(meaning).replace("\\|", "|"), ""]
            if members:
                out += ["| name | kind | type | meaning |", "|---|---|---|---|"]
                out += [f"| {_code(e.name)} | {e.kind} | {_code(e.signature)} | {_cell(e.meaning)} |" for e in members]
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def _is_class(section: Section, name: str) -> bool:
    return isinstance(getattr(importlib.import_module(section.module), name.split("(")[0], None), type)


def main(argv: list[str]) -> int:
    """Print the reference, or with --check list the undocumented names (exit 1 when any)."""
    if "--check" in argv:
        missing = undocumented()
        for name in missing:
            print(f"undocumented: {name}")
        return 1 if missing else 0
    print(render(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
