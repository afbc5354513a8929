#!/usr/bin/env python3
"""Screenshots of the HTML report's first screen at desktop and phone width, for docs/reports.md.

    scripts/report_screenshots.py [RESULT.json] [--out docs/img] [--update-doc]

Renders RESULT.json (for instance a `crm-audit demo --flaw bola` result) or, without one,
the realistic fixture of the reporter tests; opens it in headless Chromium (/usr/bin/chromium)
at 1400×900 and at 390×844 (a phone) and writes the first viewport of each as
report-1400.png and report-390.png. --update-doc rewrites the screenshot block of
docs/reports.md (between its screenshot markers) to show both and name what was rendered.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_report_html_browser import Browser  # noqa: E402  the one DevTools client of this project

from crm_audit.core.model import AuditResult, load_result  # noqa: E402
from crm_audit.report.html_reporter import HtmlReporter  # noqa: E402

#: (file name, width, height, mobile)
VIEWPORTS = (("report-1400.png", 1400, 900, False), ("report-390.png", 390, 844, True))
DOC = ROOT / "docs" / "reports.md"
START, END = "<!-- screenshots:start -->", "<!-- screenshots:end -->"


def fixture_result() -> AuditResult:
    import report_fixtures

    return report_fixtures.realistic_result()


def capture(result: AuditResult, out: Path) -> list[Path]:
    """Write the first viewport of the report at each width; return the PNG paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "report.html"
        page_file.write_text(HtmlReporter().render(result), encoding="utf-8")
        chrome = Browser()
        try:
            for name, width, height, mobile in VIEWPORTS:
                page = chrome.open(page_file.as_uri(), width=width, height=height, mobile=mobile)
                path = out / name
                path.write_bytes(chrome.screenshot(page, width, height, 1))
                written.append(path)
        finally:
            chrome.close()
    return written


def doc_block(source: str, paths: list[Path]) -> str:
    """The Markdown between the screenshot markers."""
    images = "\n".join(f"![First screen at {w} px: verdict, open criticals and highs, score with coverage]"
                       f"(img/{p.name})" for p, (_, w, _, _) in zip(paths, VIEWPORTS))
    return (f"{START}\n{images}\n\n*The first screen at 1400 × 900 and at 390 × 844, {source}; made with "
            f"`scripts/report_screenshots.py --update-doc`.*\n{END}")


def update_doc(source: str, paths: list[Path]) -> None:
    text = DOC.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{DOC}: no {START} … {END} block to update")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + doc_block(source, paths) + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", nargs="?", help="result.json to render (default: the test fixture)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder for the PNGs")
    parser.add_argument("--update-doc", action="store_true", help="rewrite the screenshot block of docs/reports.md")
    args = parser.parse_args(argv)
    if args.result:
        try:
            result = load_result(args.result)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        source = f"rendered from a `{result.target.name}` result (run {result.run_id})"
    else:
        result, source = fixture_result(), "rendered from the reporter tests' realistic fixture"
    paths = capture(result, Path(args.out))
    for path in paths:
        print(path)
    if args.update_doc:
        update_doc(source, paths)
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
