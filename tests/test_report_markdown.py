"""Markdown reporter: a short CI summary, literal text, tables that keep their shape."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import report_fixtures as rf  # noqa: E402

from crm_audit.report.markdown_reporter import MarkdownReporter, md  # noqa: E402


def cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line)) - 1


def test_summary_has_verdict_gates_and_worst_problems() -> None:
    text = MarkdownReporter().render(rf.realistic_result())
    assert text.startswith("## crm-audit: Demo CRM (staging)")
    assert "Pass" in text and "coverage 92 %" in text and "gates: 1 passed, 2 failed" in text
    assert "| **FAIL** | no open critical finding |" in text
    assert "A sales rep can read another owner's contact" in text
    assert "### Probes not completed" in text and "no OpenAPI document published" in text
    assert "1 waived" in text and "2 new findings, 1 fixed" in text
    assert len(text) < 6000


def test_verdict_comes_first_with_reason_counts_and_coverage() -> None:
    text = MarkdownReporter().render(rf.realistic_result())
    head = text[:text.index("### Gates")]
    assert head.index("### Verdict: Not fit") < head.index("score 68.99 (Pass), coverage 92 %")
    assert "**1 open critical finding: A sales rep can read another owner's contact" in head
    assert "Open: **1 critical, 3 high**, 3 medium, 2 low, 0 info" in head
    assert "| Cost-benefit | not assessed | — | 0 % | 0.05 |" in text       # coverage per dimension


def test_no_grade_word_when_coverage_is_too_low() -> None:
    text = MarkdownReporter().render(rf.low_coverage_result())
    assert "### Verdict: Inconclusive" in text
    assert "score 68.99, coverage 41 % (no grade: a grade needs 60 % coverage)" in text
    assert "fuzzy grade" not in text and "(Pass)" not in text


def test_not_assessed_with_reasons_and_hints() -> None:
    text = MarkdownReporter().render(rf.realistic_result())
    section = text[text.index("### Not assessed: 3 indicators, 3 checks"):]
    assert "| Failed-login limit | access.login.limit | not allowed by the audit's safety settings | " \
           "run with --allow-disruptive |" in section
    assert "fix cost.roi in evidence.yaml" in section


def test_a_result_without_verdict_renders_as_before() -> None:
    text = MarkdownReporter().render(rf.legacy_result())
    assert "### Verdict" not in text and "**score 68.99 (Pass), coverage 92 %**" in text


def test_hostile_text_is_literal_and_tables_keep_their_columns() -> None:
    text = MarkdownReporter().render(rf.hostile_result())
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            assert len({cells(ln) for ln in lines}) == 1, block


def test_many_findings_stay_short() -> None:
    text = MarkdownReporter().render(rf.many_findings_result(5000, excerpt_chars=50))
    assert len(text) < 8000 and "more in the full report" in text


def test_md_escapes_inline_syntax() -> None:
    assert md("a|b *c* [d](e) `f` <g>") == "a\\|b \\*c\\* \\[d\\](e) \\`f\\` &lt;g&gt;"
    assert md("x" * 500).endswith("…") and len(md("x" * 500)) == 160
