"""JUnit reporter: well-formed XML; the verdict; one failing case per open finding and per failed
indicator; not-assessed checks and indicators skipped with their reason and hint; gates and probes."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import report_fixtures as rf  # noqa: E402

from crm_audit.report.junit_reporter import JunitReporter  # noqa: E402


def parse(result) -> ET.Element:  # type: ignore[no-untyped-def]
    text = JunitReporter().render(result)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text.encode("utf-8"))


def suite(root: ET.Element, name: str) -> ET.Element:
    found = [s for s in root.findall("testsuite") if s.get("name") == name]
    assert len(found) == 1, name
    return found[0]


def outcome(case: ET.Element) -> str:
    children = [c.tag for c in case]
    assert len(children) <= 1
    return children[0] if children else "passed"


def cases(s: ET.Element) -> dict[str, str]:
    return {c.get("name", "").split(":", 1)[0]: outcome(c) for c in s.findall("testcase")}


def test_structure_and_counts_agree() -> None:
    root = parse(rf.realistic_result())
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.findall("testsuite")] == ["verdict", "indicators", "findings", "gates", "probes"]
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in root.findall("testsuite"):
        tcs = s.findall("testcase")
        counted = {"tests": len(tcs), "failures": sum(outcome(c) == "failure" for c in tcs),
                   "errors": sum(outcome(c) == "error" for c in tcs), "skipped": sum(outcome(c) == "skipped" for c in tcs)}
        assert {k: int(s.get(k, -1)) for k in counted} == counted, s.get("name")
        for k in totals:
            totals[k] += counted[k]
        for c in tcs:
            assert c.get("classname") and c.get("name") and float(c.get("time", "x")) >= 0
    assert {k: int(root.get(k, -1)) for k in totals} == totals


def test_one_failing_case_per_open_finding_and_per_failed_indicator() -> None:
    result = rf.realistic_result()
    root = parse(result)
    failing = [c.get("name", "").split(":", 1)[0] for name in ("indicators", "findings")
               for c in suite(root, name).findall("testcase") if outcome(c) == "failure"]
    open_probe_findings = [f.id for p in result.probes for f in p.findings if f.is_open]
    failed_indicators = [f.indicator for f in result.indicator_findings]
    assert sorted(failing) == sorted(open_probe_findings + failed_indicators)
    assert len(failing) == sum(f.is_open for f in result.all_findings())   # each problem counted once


def test_indicators_fail_only_by_their_indicator_finding_when_there_is_a_verdict() -> None:
    result = rf.realistic_result()
    got = cases(suite(parse(result), "indicators"))
    assert len(got) == sum(n["kind"] == "indicator" for n in result.scoring["nodes"])
    assert got["perf.recovery_time"] == got["bak.rpo"] == got["svc.response_time"] == "failure"
    assert got["perf.max_concurrency"] == "passed"     # 61: below its target but not graded Fail
    assert got["sec.access_control"] == "passed"       # its open finding access.bola.contacts is the failing case
    assert got["sec.access_logging"] == got["cost.roi"] == "skipped"
    rpo = next(c for c in suite(parse(result), "indicators").findall("testcase") if c.get("name", "").startswith("bak.rpo"))
    assert rpo.find("failure").get("type") == "high" and "5,400 s" in rpo.find("failure").get("message", "")


def test_without_a_verdict_indicators_fail_below_50_or_missing_target() -> None:
    result = rf.legacy_result()
    root = parse(result)
    assert [s.get("name") for s in root.findall("testsuite")] == ["indicators", "findings", "gates", "probes"]
    indicators = [n for n in result.scoring["nodes"] if n["kind"] == "indicator"]
    got = cases(suite(root, "indicators"))
    assert len(got) == len(indicators)
    assert got["perf.response_time_p95"] == "passed"
    assert got["perf.recovery_time"] == "failure"      # score 44
    assert got["perf.max_concurrency"] == "failure"    # score 61 but 80 < 100 users expected
    assert got["sec.access_logging"] == "skipped"      # not assessed
    assert got["bak.restore_verified"] == "passed"     # pass/fail value, score 100
    for node in indicators:
        if node["assessed"] and node["score"] < 50:
            assert got[node["id"]] == "failure", node["id"]


def test_not_assessed_are_skipped_with_reason_and_hint() -> None:
    root = parse(rf.realistic_result())
    by_name = {c.get("name", "").split(":", 1)[0]: c for s in root.findall("testsuite") for c in s.findall("testcase")}
    login = by_name["access.login.limit"].find("skipped").get("message", "")
    assert "not allowed by the audit's safety settings" in login and "run with --allow-disruptive" in login
    logout = by_name["access.session.logout"]           # status error: not assessed, not a test error
    assert outcome(logout) == "skipped" and "did not answer in time" in logout.find("skipped").get("message", "")
    logging = by_name["sec.access_logging"].find("skipped").get("message", "")
    assert "no evidence given" in logging and "--evidence" in logging


def test_verdict_suite_carries_the_decision() -> None:
    root = parse(rf.realistic_result())
    verdict = suite(root, "verdict")
    (case,) = verdict.findall("testcase")
    assert case.get("name") == "verdict: Not fit" and outcome(case) == "failure"
    assert "access.bola.contacts" in case.find("failure").get("message", "")
    props = {p.get("name"): p.get("value") for p in verdict.iter("property")}
    assert props["verdict"] == "Not fit" and props["open.critical"] == "1" and props["open.high"] == "3"
    assert props["coverage"] == "92 %" and props["coverage.cost"] == "0 %" and props["coverage.sec"] == "90 %"
    low = suite(parse(rf.low_coverage_result()), "verdict")
    assert outcome(low.find("testcase")) == "skipped"   # Inconclusive decides nothing
    assert "(Pass)" not in {p.get("name"): p.get("value") for p in low.iter("property")}["score"]


def test_failed_findings_waivers_gates_and_probes() -> None:
    root = parse(rf.realistic_result())
    findings = suite(root, "findings")
    got = cases(findings)
    assert got["access.bola.contacts"] == "failure"
    assert got["hardening.headers.csp_missing"] == "skipped"  # waived
    assert "tls.certificate.valid" not in got                 # passed checks are not cases
    waived = next(c for c in findings.findall("testcase") if c.get("name", "").startswith("hardening.headers"))
    assert "API only" in waived.find("skipped").get("message", "")
    bola = next(c for c in findings.findall("testcase") if c.get("name", "").startswith("access.bola.contacts"))
    failure = bola.find("failure")
    assert failure.get("type") == "critical" and "GET /api/contacts/4711/" in failure.text
    assert "Check object ownership" in failure.text
    assert list(cases(suite(root, "gates")).values()).count("failure") == 2
    probes = cases(suite(root, "probes"))
    assert probes["evidence"] == "error" and probes["api_surface"] == "skipped" and probes["latency"] == "passed"


def test_hostile_text_is_escaped_and_control_characters_removed() -> None:
    text = JunitReporter().render(rf.hostile_result())
    assert "\x00" not in text and "\x1b" not in text
    root = ET.fromstring(text.encode("utf-8"))  # well-formed despite the control characters
    assert "<script>" not in text
    names = [c.get("name", "") for c in root.iter("testcase")]
    assert any(rf.XSS in n and rf.IMG in n for n in names)
    bodies = "".join(e.text or "" for e in root.iter("failure"))
    assert "\\x00" in bodies and rf.TEMPLATE in bodies


def test_unscored_result_uses_measurements() -> None:
    got = cases(suite(parse(rf.unscored_result()), "indicators"))
    assert got["perf.max_concurrency"] == "failure"     # 80 users < 100 expected
    assert got["perf.throughput_at_slo"] == "passed"
