"""HTML reporter: one self-contained page (inline CSS, inline SVG, a little inline JS).

Nothing is fetched from anywhere: a Content-Security-Policy allows only the page's own
style and script (by hash), so even a string that escaped escaping could not run. All data
goes through Jinja's autoescaping; evidence excerpts are capped so that a result with
thousands of findings still renders to a few megabytes. Each probe's section is drawn by its
own plugin (``crm_audit_register_report_sections``, :mod:`crm_audit.report.section`); this
module reads no plugin's artifacts itself.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

if TYPE_CHECKING:  # pragma: no cover
    from jinja2 import Environment, Template

from crm_audit.core.ci_model import BaselineComparison, Signature
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import AuditResult, Evidence, Finding, Severity
from crm_audit.core.probe import Reporter
from crm_audit.core.scoring_model import ScoredNode, Scoring
from crm_audit.report import charts
from crm_audit.report.section import ReportSection, kv, probe_sections, show
from crm_audit.report.view import (
    SEVERITIES_DESC,
    STATES,
    as_float,
    clip,
    finding_state,
    findings_sorted,
    fmt_diff,
    fmt_num,
    fmt_pct,
    fmt_value,
    indicator_rows,
    not_assessed_findings,
    not_assessed_indicators,
    overall,
    reason_text,
    score_with_coverage,
    scoring_nodes,
    verdict_view,
)

EVIDENCE_LIMIT = 2000        # characters of one excerpt at most
EVIDENCE_FLOOR = 120         # … and at least, however many findings there are
PAGE_BUDGET = 3_800_000      # bytes the findings may take in all, markup included
FINDING_MARKUP = 600         # bytes of markup one finding takes besides its excerpts
OPEN_FINDINGS_UP_TO = 60     # open critical and high findings start unfolded, this many at most
SHARED_ADVICE = 20           # remediation shared by more findings is printed once and linked


def _nb(text: str) -> str:
    """Keep a number and its unit on one line ("92 %" never wraps before the sign)."""
    return str(text).replace(" %", "\u00a0%")


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    """The Jinja environment, built on first use (jinja2 is imported only when a report is rendered)."""
    from jinja2 import Environment, PackageLoader  # only when a report is rendered (fast start-up)

    env = Environment(
        loader=PackageLoader("crm_audit.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_num, val=fmt_value, diff=fmt_diff, pct=fmt_pct, show=show, nb=_nb)
    return env


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> Template:
    """A plugin's section template, compiled once in the report's environment (its filters and ``_macros.j2``)."""
    return _environment().from_string(source)


def _sections(result: AuditResult, report_sections: Mapping[str, ReportSection]) -> list[dict[str, Any]]:
    """Each probe's section with the template that draws it: its plugin's, else the generic one."""
    drawn = probe_sections(result.probes, dict(report_sections))
    return [{**d, "template": _compiled(d["section"].source()) if d["section"] else "probe_generic.j2"} for d in drawn]


def _asset(name: str) -> str:
    env = _environment()
    source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
    return source.strip() + "\n"


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def grade_class(grade: Any, grades: list[str]) -> str:
    """CSS class g0 (best) … g3 (worst) for a grade by its place in the grade list."""
    if grade is None or grade not in grades:
        return "gx"
    if len(grades) == 1:
        return "g0"
    return f"g{round(grades.index(grade) * 3 / (len(grades) - 1))}"


@dataclass
class EvidenceView:
    request: str | None
    status: int | None
    expected: str | None
    observed: str | None
    excerpt: str
    cut: int
    details: list[tuple[str, str]]


@dataclass
class Advice:
    """Remediation and references that many findings share, printed once."""

    anchor: str
    remediation: str
    references: list[tuple[str, str | None]]
    count: int = 0


@dataclass
class FindingView:
    f: Finding
    state: str
    anchor: str
    evidence: list[EvidenceView]
    references: list[tuple[str, str | None]]
    advice: Advice | None = None
    open: bool = False
    reason: str = ""  #: why it was not assessed ('' for pass, fail and warn)


def _evidence(ev: Evidence, limit: int) -> EvidenceView:
    excerpt, cut = clip(ev.excerpt, limit)
    return EvidenceView(ev.request, ev.status, ev.expected, ev.observed, excerpt, cut, kv(ev.details))


def _reference(ref: str) -> tuple[str, str | None]:
    """A reference and, only for http(s) URLs, the link target (never javascript: and the like)."""
    href = ref if ref.startswith(("https://", "http://")) else None
    return ref, href


def _finding_views(result: AuditResult) -> tuple[list[FindingView], list[Advice]]:
    """Findings most severe first with capped evidence, and the advice many open ones share.

    Only open findings count: towards the fold limit (the first OPEN_FINDINGS_UP_TO open
    critical and high findings start unfolded, however many checks passed) and towards
    shared advice (remediation is printed for open findings only).
    """
    findings = findings_sorted(result.all_findings())
    texts = [ev.excerpt[:EVIDENCE_LIMIT] for f in findings for ev in f.evidence if ev.excerpt]
    raw = sum(len(t) for t in texts)
    growth = max(1.0, sum(len(escape(t).encode()) for t in texts) / raw) if raw else 1.0
    excerpts = len(texts)
    budget = max(0, PAGE_BUDGET - FINDING_MARKUP * len(findings)) / growth
    limit = max(EVIDENCE_FLOOR, min(EVIDENCE_LIMIT, int(budget // max(excerpts, 1))))
    states = [finding_state(f) for f in findings]
    shared = Counter((f.remediation, tuple(f.references)) for f, st in zip(findings, states)
                     if st == "open" and (f.remediation or f.references))
    advice: dict[tuple[str, tuple[str, ...]], Advice] = {}
    views = []
    unfolded = 0
    for i, (f, state) in enumerate(zip(findings, states), 1):
        key = (f.remediation, tuple(f.references))
        tip = None
        if state == "open" and shared.get(key, 0) > SHARED_ADVICE:
            if key not in advice:
                advice[key] = Advice(f"adv{len(advice) + 1}", f.remediation, [_reference(r) for r in f.references])
            tip = advice[key]
            tip.count += 1
        unfold = state == "open" and f.severity.rank >= Severity.high.rank and unfolded < OPEN_FINDINGS_UP_TO
        unfolded += unfold
        views.append(FindingView(f, state, f"f{i}", [_evidence(ev, limit) for ev in f.evidence],
                                 [] if tip else [_reference(r) for r in f.references], tip, open=unfold,
                                 reason=reason_text(f)))
    return views, list(advice.values())


@dataclass
class Group:
    """The findings of one severity; its heading counts the open ones."""

    severity: str
    views: list[FindingView]

    @property
    def open(self) -> int:
        return sum(1 for v in self.views if v.state == "open")

    @property
    def others(self) -> list[tuple[str, int]]:
        """How many findings that are not open the group holds, e.g. [("waived", 1), ("passed", 24)]."""
        label = {"error": "not assessed", "skipped": "not assessed"}
        counts = Counter(label.get(v.state, v.state) for v in self.views if v.state != "open")
        return [(s, counts[s]) for s in ("waived", "not assessed", "passed") if counts.get(s)]


def _not_assessed(result: AuditResult, views: list[FindingView]) -> dict[str, Any]:
    """The untested indicators with reasons and hints, the untested checks (linked) and probes that did not run."""
    anchors = {id(v.f): v.anchor for v in views}
    checks = [{"f": f, "anchor": anchors.get(id(f)), "reason": reason_text(f)} for f in not_assessed_findings(result)]
    return {"indicators": not_assessed_indicators(result), "checks": checks,
            "probes": [p for p in result.probes if p.status != "ok"]}


def _tree(nodes: list[ScoredNode], root_id: Any) -> dict[str, Any] | None:
    children: dict[Any, list[ScoredNode]] = {}
    for node in nodes:
        children.setdefault(node.get("parent"), []).append(node)
    seen: set[Any] = set()

    def build(node: ScoredNode) -> dict[str, Any]:
        seen.add(node["id"])
        kids = [build(k) for k in children.get(node["id"], []) if k["id"] not in seen]
        return {"node": node, "children": kids}

    root = next((n for n in nodes if n["id"] == root_id), None) or next(
        (n for n in nodes if n.get("kind") == "root" or n.get("parent") is None), None)
    return build(root) if root is not None else None


def _signature(sig: Signature | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(sig, Signature):
        sig = sig.model_dump(mode="json")
    if not sig:
        return {"signed": False, "state": "not signed", "fingerprint": None, "algorithm": None}
    state = sig.get("state") or sig.get("status")
    if state is None:
        verified = sig.get("verified")
        state = "verified" if verified is True else "signature invalid" if verified is False else \
            "signed (check with crm-audit verify)"
    return {"signed": True, "state": str(state), "fingerprint": sig.get("key_fingerprint"),
            "algorithm": sig.get("algorithm")}


def _entries(items: Any) -> list[dict[str, Any]]:
    """Baseline finding lists hold ids or finding dicts; show both alike."""
    out = []
    for item in items or []:
        if isinstance(item, dict):
            out.append({"id": str(item.get("id", "")), "title": str(item.get("title") or ""),
                        "severity": str(item.get("severity") or "")})
        else:
            out.append({"id": str(item), "title": "", "severity": ""})
    return out


def _baseline(base: BaselineComparison | dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(base, BaselineComparison):
        base = base.model_dump(mode="json")
    if not base:
        return None
    changes = []
    for change in base.get("score_changes") or []:
        before, after = as_float(change.get("before")), as_float(change.get("after"))
        delta = after - before if before is not None and after is not None else None
        changes.append({**change, "delta": delta,
                        "cls": "" if not delta else "better" if delta > 0 else "worse"})
    return {
        "new": _entries(base.get("new_findings")),
        "fixed": _entries(base.get("fixed_findings")),
        "changes": changes,
        "regressions": [r for r in base.get("regressions") or [] if isinstance(r, dict)],
        "other": [(k, show(v)) for k, v in base.items()
                  if k not in ("new_findings", "fixed_findings", "score_changes", "regressions")],
    }


def _dim_note(node: ScoredNode) -> str:
    note = f"weight {fmt_num(node.get('global_weight', node.get('weight')))}"
    return note + (f", coverage {fmt_pct(node['coverage'])}" if as_float(node.get("coverage")) is not None else "")


def build_context(result: AuditResult, report_sections: Mapping[str, ReportSection] | None = None) -> dict[str, Any]:
    """Everything the templates draw, computed from the result and the probes' report sections."""
    scoring: Scoring | dict[str, Any] = result.scoring or {}
    grades = [str(g) for g in scoring.get("grades") or []]
    head = overall(result)
    nodes = scoring_nodes(result)
    dims = [n for n in nodes if n.get("kind") == "dimension"]
    membership = head.get("membership") if isinstance(head.get("membership"), dict) else None
    findings, advice = _finding_views(result)
    groups = [Group(sev, [v for v in findings if v.f.severity.value == sev]) for sev in SEVERITIES_DESC]
    states = Counter(v.state for v in findings)
    open_by_sev = Counter(v.f.severity.value for v in findings if v.state == "open")
    sections = _sections(result, report_sections or {})
    anchors: dict[str, list[FindingView]] = {}
    for view in findings:
        anchors.setdefault(view.f.probe or "", []).append(view)
    css, js = _asset("style.css"), _asset("filter.js.j2")
    csp = (f"default-src 'none'; style-src {_csp_hash(css)}; script-src {_csp_hash(js)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return {
        "r": result,
        "scored": result.scoring is not None,
        "scoring": scoring,
        "head": head,
        "grades": grades,
        "gcls": lambda g: grade_class(g, grades),
        "gauge": charts.gauge(head.get("score")),
        "membership": membership,
        "membership_chart": charts.bars(
            [{"label": g, "value": (as_float(membership.get(g)) or 0.0) * 100, "cls": grade_class(g, grades)}
             for g in (grades or list(membership))], maximum=100.0, width=380.0) if membership else None,
        "dims": dims,
        "dim_chart": charts.bars(
            [{"label": f"{d.get('title') or d['id']}", "value": d.get("score") if d.get("assessed", True) else None,
              "cls": grade_class(d.get("grade"), grades),
              "note": _dim_note(d)} for d in dims]) if dims else None,
        "tree": _tree(nodes, scoring.get("root")) if nodes else None,
        "indicators": indicator_rows(result),
        "findings": findings,
        "advice": advice,
        "groups": [g for g in groups if g.views],
        "verdict": verdict_view(result),
        "score_line": score_with_coverage(result),
        "not_assessed": _not_assessed(result, findings),
        "states": [(s, states.get(s, 0)) for s in STATES],
        "open_by_sev": [(s, open_by_sev.get(s, 0)) for s in SEVERITIES_DESC],
        "finding_probes": sorted({v.f.probe for v in findings if v.f.probe}),
        "by_probe": anchors,
        "sections": sections,
        "failed_gates": [g for g in result.gates if not g.passed],
        "sig": _signature(result.signature),
        "baseline": _baseline(result.baseline),
        "css": Markup(css),  # our own packaged stylesheet, not data
        "js": Markup(js),    # our own packaged script, not data
        "csp": csp,
    }


class HtmlReporter(Reporter):
    """Writes ``report.html``: the full audit, readable on screen, on a phone and printed."""

    format = "html"
    filename = "report.html"
    description = "Self-contained HTML report with charts, hierarchy, findings and evidence"
    version = "1.0.0"

    def __init__(self, sections: Mapping[str, ReportSection] | None = None) -> None:
        #: the probes' report sections by probe id; None: those of the installed plugins
        self.sections = sections

    def render(self, result: AuditResult) -> str:
        sections = self.sections if self.sections is not None else installed_report_sections()
        return _environment().get_template("report.html.j2").render(build_context(result, sections))


def installed_report_sections() -> dict[str, ReportSection]:
    """The report sections the installed plugins register (``crm_audit_register_report_sections``)."""
    from crm_audit.core.plugins import make_plugin_manager

    return make_plugin_manager().report_sections()


@hookimpl
def crm_audit_register_reporters() -> list[type[Reporter]]:
    return [HtmlReporter]
