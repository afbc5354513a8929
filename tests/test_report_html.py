"""HTML reporter without a browser: escaping, self-containment, size and content."""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from html import unescape
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import report_fixtures as rf  # noqa: E402

from crm_audit.core.model import Evidence, Finding, ProbeResult, Severity  # noqa: E402
from crm_audit.report.html_reporter import HtmlReporter  # noqa: E402


def render(result) -> str:  # type: ignore[no-untyped-def]
    return HtmlReporter().render(result)


def test_hostile_strings_are_escaped_everywhere() -> None:
    html = render(rf.hostile_result())
    assert html.count("<script") == 1                 # ours only
    assert "<img" not in html and "<textarea" not in html
    assert "onerror=alert(1)>" not in html and "onmouseover='alert(1)'" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert rf.TEMPLATE in html          # printed, never evaluated as a template
    assert 'href="javascript:' not in html


def test_self_contained_with_a_strict_content_security_policy() -> None:
    html = render(rf.realistic_result())
    assert not re.search(r"\s(src|srcset|poster|data|action|formaction)=", html)
    assert not re.search(r"@import|url\(", html)
    links = re.findall(r"<link[^>]*>", html)
    assert links == ['<link rel="icon" href="data:,">']
    assert all(h.startswith(("#", "https://", "http://")) for h in re.findall(r'<a href="([^"]*)"', html))
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    for text in (style, script):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert " style=" not in html   # inline style attributes would be blocked by the policy


def test_main_content_is_present() -> None:
    html = render(rf.realistic_result())
    for needle in ["Fuzzy membership", "Dimension scores", "Indicator hierarchy", "not assessed",
                   "Indicators: actual, expected, difference", "Endpoint latency", "Concurrent load",
                   "TLS configuration", "Access control", "Backup and restore", "Against the baseline",
                   "perf.response_time_p95", "Search deals", "p95 over SLO", "max sustainable 80 users",
                   "TLS 1.0: enabled", "3DES ciphers must not be offered", "canaries verified",
                   "E-mail validity", "Business flows", "sales-rep", "evidence file evidence.yaml",
                   "no OpenAPI document published", "ed25519", "sha256:4d4d4d4d", "2 of 3 failed",
                   "Statistically significant regressions", "tls.protocol.sslv3_enabled", "0.003"]:
        assert needle in html, needle
    assert html.count('<article class="f"') == len(rf.realistic_result().all_findings())


def test_unscored_result_says_so() -> None:
    html = render(rf.unscored_result())
    assert "not scored" in html and "Not scored: no hierarchy in this result." in html
    assert "not signed" in html and 'id="baseline"' not in html
    assert "perf.flow_completion_rate" in html  # indicators from measurements
    assert 'data-probe="backup"' in html and "canaries verified" in html   # nested drill artifacts
    assert "status: 200" in html and "backups_created" in html


def test_tls_plugin_shapes() -> None:
    html = render(rf.realistic_result())
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA (TLS 1.2, 112 bits: 3DES, no forward secrecy)" in html
    assert "Scan error: connection refused" in html and "C: TLS 1.0 offered" in html
    assert "Vulnerability checks" in html and "not retrieved" in html


def test_evidence_is_capped_per_excerpt() -> None:
    finding = Finding(id="access.leak", title="Leak", severity=Severity.high, probe="access",
                      evidence=[Evidence(excerpt="A" * 10_000)])
    html = render(rf.realistic_result(probes=[ProbeResult(probe="access", findings=[finding])]))
    assert "A" * 2000 in html and "A" * 2001 not in html
    assert "8,000 more characters" in html


def test_five_thousand_findings_render_under_five_megabytes() -> None:
    result = rf.many_findings_result(5000, excerpt_chars=1500)
    html = render(result)
    assert len(html.encode("utf-8")) < 5_000_000
    assert html.count('<article class="f"') == 5000
    assert html.count("more characters in result.json") >= 4000   # excerpts were shortened, not dropped
    assert 'id="adv1"' in html                                       # shared advice printed once


@pytest.mark.parametrize("junk", [None, "oops", 42, [], {}, [1, "x", None], {"a": {"b": [1, 2]}}])
def test_malformed_artifacts_never_break_the_report(junk: object) -> None:
    keys = {"latency": ["endpoints"], "load": ["steps", "sustained", "recovery", "slo_p95_ms"],
            "tls": ["servers"], "access": ["matrix"], "backup": ["timeline", "canaries", "rto_s"],
            "data_quality": ["metrics"], "kpi": ["metrics"], "mystery": ["anything"]}
    probes = []
    for probe, names in keys.items():
        art = {name: junk for name in names}
        if probe == "latency":
            art = {"endpoints": [{"name": junk, "summary": junk, "histogram": {"edges": junk, "counts": junk}}]}
        if probe == "access":
            art = {"matrix": {"roles": junk, "cells": [{"role": junk, "expected": junk}, junk]}}
        probes.append(ProbeResult(probe=probe, artifacts=art))
    html = render(rf.realistic_result(probes=probes))
    assert html.rstrip().endswith("</html>")


def test_unknown_probe_drawn_generically() -> None:
    html = render(rf.realistic_result())
    section = html[html.index('data-probe="flows"'):]
    section = section[:section.index("</section>")]
    assert "perf.flow_completion_time" in section and "Lead to deal" in section
    assert "Step &#39;attach quote&#39; exceeds 1 s" in section and "sales-rep" in section


# ---------------------------------------------------------------- the first screen and the fold (issue 14)

def section(html: str, element_id: str, tag: str = "section") -> str:
    """The markup of the element with that id, up to its closing tag (no nesting of the same tag inside)."""
    start = html.index(f'id="{element_id}"')
    return html[start:html.index(f"</{tag}>", start)]


def articles(html: str) -> dict[str, str]:
    """Finding id → its article's markup."""
    out = {}
    for match in re.finditer(r'<article class="f".*?</article>', html, re.S):
        fid = re.search(r"<code>([^<]*)</code>", match.group()).group(1)
        out[unescape(fid)] = match.group()
    return out


def test_verdict_banner_comes_first_with_reason_counts_score_and_coverage() -> None:
    html = render(rf.realistic_result())
    body = html[html.index("<body>"):]
    assert body.index('id="verdict"') < body.index('id="score"') < body.index('id="dimensions"')
    banner = section(html, "verdict")
    assert '<strong class="vword" id="verdict-word">Not fit</strong>' in banner
    assert "A sales rep can read another owner&#39;s contact (access.bola.contacts)" in banner
    assert re.search(r'id="open-critical"><b>1</b> open critical', banner)
    assert re.search(r'id="open-high"><b>3</b> open high', banner)
    assert "Overall score 68.99 (Pass), coverage 92\u00a0%" in banner
    cover = re.findall(r'<span class="cl" title="[^"]*">([^<]*)</span>.*?<span class="cv">([^<]*)</span>', banner, re.S)
    assert [(unescape(t), v) for t, v in cover] == [
        ("Technical performance", "100\u00a0%"), ("Security", "90\u00a0%"), ("Backup & recovery", "100\u00a0%"),
        ("Data quality", "100\u00a0%"), ("Service & support", "100\u00a0%"), ("Cost-benefit", "0\u00a0%")]
    assert 'class="low"' in banner   # cost-benefit is under the coverage a decision needs
    assert '<a href="#not-assessed">3 indicators and 3 checks not assessed</a>' in banner


def test_no_grade_word_when_coverage_is_too_low() -> None:
    html = render(rf.low_coverage_result())
    top = html[html.index('id="verdict"'):html.index('id="dimensions"')]
    assert "Inconclusive" in top and "coverage 41\u00a0% (no grade: a grade needs 60\u00a0% coverage)" in top
    assert not re.search(r"\b(Excellent|Good|Pass|Fail)\b", top)
    assert 'id="overall-grade">not graded<' in top and "Fuzzy membership" not in top


def test_a_result_without_verdict_renders_as_before() -> None:
    html = render(rf.legacy_result())
    assert 'class="decision' not in html and 'id="verdict-word"' not in html
    assert '<div class="verdict" id="verdict">' in html and 'id="overall-grade">Pass<' in html
    assert "Fuzzy membership" in html


def test_open_critical_findings_start_unfolded_however_many_checks_passed() -> None:
    result = rf.passed_checks_result(open_critical=6, passed=195)
    assert len(result.all_findings()) == 201 > 60
    html = render(result)
    found = articles(html)
    open_ids = [f"access.bola.open_{i}" for i in range(6)]
    assert all("<details open>" in found[i] for i in open_ids)
    assert sum("<details open>" in a for a in found.values()) == 6      # passed checks stay folded
    heading = re.search(r'data-sev="critical">\s*<h3>(.*?)</h3>', html, re.S).group(1)
    assert '<span class="gopen">6 open</span>' in heading and "(39 passed)" in heading
    assert "shared advice" not in html.lower()          # 6 open findings share it: under the limit
    assert all("Remediation" not in found[f"access.check_{i}"] for i in range(195))
    assert all("Filter every query" in found[i] for i in open_ids)


def test_the_fold_limit_counts_open_critical_and_high_findings_only() -> None:
    html = render(rf.many_findings_result(400, excerpt_chars=50))
    found = articles(html)
    unfolded = [a for a in found.values() if "<details open>" in a]
    assert len(unfolded) == 60
    assert all('data-st="open"' in a and re.search(r'data-sev="(critical|high)"', a) for a in unfolded)


def test_shared_advice_counts_open_findings_only() -> None:
    html = render(rf.many_findings_result(700, excerpt_chars=50))
    result = rf.many_findings_result(700, excerpt_chars=50)
    open_access = sum(1 for p in result.probes if p.probe == "access" for f in p.findings if f.is_open)
    advice = section(html, "adv1", "div")
    assert f"({open_access:,} open findings)" in advice
    passed = [a for a in articles(html).values() if 'data-st="passed"' in a]
    assert passed and all("Remediation" not in a and "shared advice" not in a for a in passed)


def test_not_assessed_section_lists_indicators_and_checks_with_how_to_assess_them() -> None:
    result = rf.realistic_result()
    html = render(result)
    part = section(html, "not-assessed")
    rows = re.findall(r"<tr><td>(.*?)</tr>", section(part, "na-indicators", "table"), re.S)
    assert len(rows) == 3
    assert "Access logging" in rows[0]  # heaviest first (global weight 0.03)
    assert "add sec.access_logging to the evidence file (crm-audit audit --evidence)" in rows[0]
    assert any("cost.roi must be a number" in r and "fix cost.roi in evidence.yaml" in r for r in rows)
    checks = section(part, "na-checks", "table")
    anchors = {unescape(re.search(r"<code>([^<]*)</code>", a).group(1)): re.search(r'id="(f\d+)"', a).group(1)
               for a in re.findall(r'<article class="f".*?</article>', html, re.S)}
    for fid, hint in [("access.login.limit", "run with --allow-disruptive"),
                      ("access.tenant.isolation", "add an account of a second tenant to the profile"),
                      ("access.session.logout", "raise target.timeout_s")]:
        assert f'<a href="#{anchors[fid]}">' in checks and hint in checks, fid
    assert "not allowed by the audit&#39;s safety settings" in checks
    login = articles(html)["access.login.limit"]
    assert "To assess it: run with --allow-disruptive" in login and "Remediation" not in login
    assert "evidence file evidence.yaml: line 4" in part   # probes that did not complete
    assert 'href="#not-assessed"' in html[:html.index('id="dimensions"')]
