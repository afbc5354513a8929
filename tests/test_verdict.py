"""The verdict rules (docs/scoring.md, "Verdict"): table-driven, and as properties over generated results.

A result is never better than its evidence: turning a pass into a fail never raises a score
or improves the verdict; removing evidence (a pass that becomes not assessed) never improves
the verdict; an interrupted result never beats the same audit complete.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_audit.core.model import (
    AuditResult,
    Finding,
    Measurement,
    NotAssessed,
    ProbeResult,
    Severity,
    Status,
    TargetSummary,
)
from crm_audit.core.profile import VerdictRules
from crm_audit.core.verdict import CONDITIONS, FIT, INCONCLUSIVE, NOT_FIT, finalize, rank
from crm_audit.scoring import load_hierarchy

HIERARCHY = load_hierarchy("default")
FINDINGS_INDICATORS = [n.id for n in HIERARCHY.leaves() if n.function.kind == "findings"]
#: value-based indicators of the default hierarchy with a value that scores well and one that fails
GOOD_BAD: dict[str, tuple[str, float, float, str]] = {
    "perf.response_time_p95": ("latency", 120.0, 5000.0, "ms"),
    "perf.error_rate": ("latency", 0.0, 0.5, "ratio"),
    "perf.max_concurrency": ("load", 80.0, 2.0, "users"),
    "perf.throughput_at_slo": ("load", 300.0, 3.0, "req/s"),
    "sec.transport": ("tls", 100.0, 10.0, "score"),
    "bak.restore_verified": ("backup", 1.0, 0.0, "pass/fail"),
    "dq.completeness": ("data_quality", 1.0, 0.2, "ratio"),
    "dq.validity": ("data_quality", 1.0, 0.2, "ratio"),
    "dq.uniqueness": ("data_quality", 1.0, 0.2, "ratio"),
    "func.api_surface": ("api_surface", 1.0, 0.1, "ratio"),
    "perf.flow_completion_time": ("flows", 1.0, 60.0, "s"),
    "perf.flow_completion_rate": ("flows", 1.0, 0.5, "ratio"),
    "perf.recovery_time": ("load", 5.0, 600.0, "s"),
    "perf.scalability": ("load", 2.0, 0.01, "req/s/user"),
    "bak.freshness": ("backup", 1.0, 1000.0, "h"),
    "bak.rto": ("backup", 60.0, 100000.0, "s"),
    "bak.rpo": ("backup", 60.0, 1e7, "s"),
    "dq.consistency": ("data_quality", 1.0, 0.2, "ratio"),
    "dq.timeliness": ("data_quality", 1.0, 0.1, "ratio"),
    "svc.response_time": ("kpi", 0.01, 100.0, "h"),
    "svc.resolution_time": ("kpi", 1.0, 1000.0, "h"),
    "svc.resolution_rate": ("kpi", 1.0, 0.1, "ratio"),
    "svc.repeat_rate": ("kpi", 0.0, 0.9, "ratio"),
    "biz.conversion_rate": ("kpi", 0.5, 0.01, "ratio"),
    "biz.complaint_rate": ("kpi", 0.0, 0.5, "ratio"),
    "biz.churn_rate": ("kpi", 0.0, 0.9, "ratio"),
}


def result_of(probes: list[ProbeResult], complete: bool = True) -> AuditResult:
    return AuditResult(tool={"name": "crm-audit", "version": "t"}, run_id="r",
                       target=TargetSummary(name="t", base_url="http://127.0.0.1:1", scope=["127.0.0.1"]),
                       profile_digest="d", started="2026-01-01T00:00:00+00:00", probes=probes, complete=complete,
                       incomplete_reason=None if complete else "interrupted by the user (Ctrl-C)")


def check(fid: str, indicator: str, status: Status = Status.passed, severity: Severity = Severity.high,
          reason: NotAssessed | None = None) -> Finding:
    return Finding(id=fid, title=fid, indicator=indicator, status=status, severity=severity, probe="access",
                   not_assessed=reason)


def full_probes(extra: list[Finding] = (), bad: tuple[str, ...] = ()) -> list[ProbeResult]:
    """A healthy, well-covered audit: every findings indicator passed, every listed value good (or bad)."""
    by_probe: dict[str, list[Measurement]] = {}
    for ind, (probe, good, worse, unit) in GOOD_BAD.items():
        value = worse if ind in bad else good
        by_probe.setdefault(probe, []).append(Measurement(indicator=ind, value=value, unit=unit))
    passes = [check(f"access.ok.{i}", ind) for i, ind in enumerate(FINDINGS_INDICATORS) if ind.startswith("sec.")]
    probes = [ProbeResult(probe=p, measurements=ms) for p, ms in by_probe.items()]
    return probes + [ProbeResult(probe="access", findings=passes + list(extra)),
                     ProbeResult(probe="backup", findings=[check("backup.exposure.anonymous", "bak.protection")])]


def judge(probes: list[ProbeResult], complete: bool = True, rules: VerdictRules | None = None) -> AuditResult:
    return finalize(result_of(probes, complete), HIERARCHY, None, rules)


# ------------------------------------------------------------------ table of rules


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("healthy and covered", {}, FIT, "no open critical or high finding"),
    ("an open critical", {"extra": [check("access.bola.contacts", "sec.access_control", Status.failed,
                                          Severity.critical)]}, NOT_FIT, "1 open critical finding(s): access.bola.contacts"),
    ("an open high", {"extra": [check("access.mass.role", "sec.access_control", Status.failed)]},
     CONDITIONS, "1 open high finding(s): access.mass.role"),
    ("a value graded Fail", {"bad": ("perf.max_concurrency",)}, CONDITIONS,
     "1 indicator(s) graded Fail: perf.max_concurrency"),
    ("interrupted", {"complete": False}, INCONCLUSIVE, "the audit did not finish"),
    ("coverage below the floor", {"rules": VerdictRules(min_coverage=0.95)}, INCONCLUSIVE, "is below 95%"),
    ("security coverage below its floor", {"rules": VerdictRules(essential={"sec": 0.99})}, INCONCLUSIVE,
     "Security coverage"),
    ("critical beats inconclusive", {"complete": False, "extra": [
        check("access.bola.leads", "sec.access_control", Status.failed, Severity.critical)]}, NOT_FIT, "open critical"),
]


@pytest.mark.parametrize("name,setup,word,reason", CASES, ids=[c[0] for c in CASES])
def test_verdict_rules(name: str, setup: dict[str, Any], word: str, reason: str) -> None:
    result = judge(full_probes(setup.get("extra", []), setup.get("bad", ())), setup.get("complete", True),
                   setup.get("rules"))
    assert result.verdict is not None
    assert result.verdict.verdict == word, result.verdict.reasons
    assert any(reason in r for r in result.verdict.reasons), result.verdict.reasons


def test_a_failed_value_indicator_becomes_an_open_finding_with_its_pia_triple() -> None:
    result = judge(full_probes(bad=("perf.max_concurrency",)))
    [found] = [f for f in result.indicator_findings if f.indicator == "perf.max_concurrency"]
    assert found.id == "indicator.perf.max_concurrency" and found.is_open and found.probe == "load"
    assert found.evidence[0].observed == "2 users" and found.evidence[0].expected == "≥ 50 users"
    assert found in result.all_findings()
    assert result.verdict.open_counts["medium"] >= 1


def test_no_grade_word_below_the_coverage_floor() -> None:
    only_latency = judge([ProbeResult(probe="latency", measurements=[
        Measurement(indicator="perf.response_time_p95", value=50, unit="ms")])])
    assert only_latency.scoring["overall"]["score"] > 90
    assert only_latency.scoring["overall"]["grade"] is None
    assert only_latency.verdict.verdict == INCONCLUSIVE


@pytest.mark.parametrize("reason", list(NotAssessed))
def test_every_not_assessed_reason_leaves_its_indicator_unassessed(reason: NotAssessed) -> None:
    status = Status.skipped if reason in (NotAssessed.safety, NotAssessed.needs_account, NotAssessed.not_configured,
                                          NotAssessed.not_applicable) else Status.error
    finding = check("access.login.lockout", "sec.login_limit", status, reason=reason)
    assert not finding.assessed and finding.not_assessed is reason
    result = judge([ProbeResult(probe="access", findings=[finding])], rules=VerdictRules(min_coverage=0))
    node = next(n for n in result.scoring["nodes"] if n["id"] == "sec.login_limit")
    assert node["assessed"] is False and node["score"] is None
    assert f"access.login.lockout: {reason.value.replace('_', ' ')}" in node["not_assessed"]["reasons"]
    assert any(i["indicator"] == "sec.login_limit" for i in result.scoring["not_assessed"])


def test_a_value_set_by_the_audits_own_rate_limit_is_not_a_failure() -> None:
    capped = Measurement(indicator="perf.throughput_at_slo", value=18.6, unit="req/s", bounded_by="rate_limit")
    result = judge([ProbeResult(probe="load", measurements=[capped])], rules=VerdictRules(min_coverage=0))
    node = next(n for n in result.scoring["nodes"] if n["id"] == "perf.throughput_at_slo")
    assert not node["assessed"]
    assert any("rate limit" in r for r in node["not_assessed"]["reasons"])
    assert not result.indicator_findings
    met = capped.model_copy(update={"value": 150.0})
    node = next(n for n in judge([ProbeResult(probe="load", measurements=[met])]).scoring["nodes"]
                if n["id"] == "perf.throughput_at_slo")
    assert node["assessed"]  # a bounded value that already meets its expectation is evidence


# ------------------------------------------------------------------ properties


OUTCOMES = st.sampled_from([Status.passed, Status.failed, Status.warn, Status.skipped, Status.error])
SEVERITIES = st.sampled_from(list(Severity))


@st.composite
def audits(draw: st.DrawFn) -> list[ProbeResult]:
    """A generated audit: random checks on every findings indicator, random good/bad values."""
    findings = []
    for i in range(draw(st.integers(0, 14))):
        ind = draw(st.sampled_from(FINDINGS_INDICATORS))
        status = draw(OUTCOMES)
        findings.append(Finding(id=f"chk.{i}", title=f"check {i}", indicator=ind, status=status,
                                severity=draw(SEVERITIES), probe="access"))
    measurements: dict[str, list[Measurement]] = {}
    for ind, (probe, good, bad, unit) in GOOD_BAD.items():
        choice = draw(st.sampled_from(["good", "bad", "none", "bounded"]))
        if choice == "none":
            continue
        value = good if choice == "good" else bad
        measurements.setdefault(probe, []).append(Measurement(
            indicator=ind, value=value, unit=unit, bounded_by="rate_limit" if choice == "bounded" else None))
    probes = [ProbeResult(probe=p, measurements=m) for p, m in measurements.items()]
    order = draw(st.permutations(probes + [ProbeResult(probe="access", findings=findings)]))
    return list(order)


def with_finding(probes: list[ProbeResult], index: int, **update: Any) -> list[ProbeResult]:
    """The same audit with the ``index``-th finding changed."""
    out, seen = [], 0
    for p in probes:
        fs = []
        for f in p.findings:
            fs.append(f.model_copy(update=update) if seen == index else f)
            seen += 1
        out.append(p.model_copy(update={"findings": fs}))
    return out


def passes(probes: list[ProbeResult]) -> list[int]:
    flat = [f for p in probes for f in p.findings]
    return [i for i, f in enumerate(flat) if f.status is Status.passed]


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(audits(), st.data())
def test_a_pass_turned_fail_never_raises_a_score_or_improves_the_verdict(probes: list[ProbeResult],
                                                                         data: st.DataObject) -> None:
    idx = passes(probes)
    if not idx:
        return
    i = data.draw(st.sampled_from(idx))
    before = judge(probes)
    after = judge(with_finding(probes, i, status=Status.failed))
    assert rank(after.verdict.verdict) <= rank(before.verdict.verdict)
    old = {n["id"]: n["score"] for n in before.scoring["nodes"]}
    for n in after.scoring["nodes"]:
        if n["score"] is not None and old[n["id"]] is not None:
            assert n["score"] <= old[n["id"]] + 1e-9, n["id"]


@PROPERTY
@given(audits(), st.data(), st.sampled_from(list(NotAssessed)))
def test_removing_evidence_never_improves_the_verdict(probes: list[ProbeResult], data: st.DataObject,
                                                      reason: NotAssessed) -> None:
    idx = passes(probes)
    if not idx:
        return
    i = data.draw(st.sampled_from(idx))
    before = judge(probes)
    after = judge(with_finding(probes, i, status=Status.error, not_assessed=reason))
    assert rank(after.verdict.verdict) <= rank(before.verdict.verdict)
    assert (after.scoring["coverage"] or 0) <= (before.scoring["coverage"] or 0) + 1e-9


@PROPERTY
@given(audits(), st.data())
def test_an_interrupted_audit_never_beats_the_same_audit_complete(probes: list[ProbeResult],
                                                                 data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(probes)))
    complete = judge(probes)
    partial = judge(probes[:cut], complete=False)
    assert rank(partial.verdict.verdict) <= rank(complete.verdict.verdict)
    assert partial.verdict.verdict in (INCONCLUSIVE, NOT_FIT)


@PROPERTY
@given(audits())
def test_no_grade_word_is_given_below_the_coverage_floor(probes: list[ProbeResult]) -> None:
    result = judge(probes)
    if (result.scoring["coverage"] or 0) < VerdictRules().min_coverage:
        assert result.scoring["overall"]["grade"] is None
        assert result.verdict.verdict in (INCONCLUSIVE, NOT_FIT)
