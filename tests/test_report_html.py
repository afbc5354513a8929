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

from crm_audit.model import Evidence, Finding, ProbeResult, Severity  # noqa: E402
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
                   "E-mail validity", "Business flows", "third-party probe", "evidence file evidence.yaml",
                   "no OpenAPI document published", "ed25519", "SHA256:4mVq1mX2", "2 of 3 failed",
                   "Statistically significant regressions", "SSL 3.0 is enabled", "0.003"]:
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
    assert "Step &#39;attach quote&#39; exceeds 1 s" in section and "third-party probe" in section
