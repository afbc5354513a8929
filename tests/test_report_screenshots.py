"""docs/reports.md shows the first screen at both widths, as scripts/report_screenshots.py writes it."""

from __future__ import annotations

import importlib.util
import re
import struct
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "reports.md"


def script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("report_screenshots", ROOT / "scripts" / "report_screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_doc_shows_both_screenshots_and_they_are_pngs_of_that_width() -> None:
    shots = script()
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index(shots.START):text.index(shots.END)]
    images = re.findall(r"!\[[^\]]*\]\((img/[^)]+)\)", block)
    assert images == [f"img/{name}" for name, *_ in shots.VIEWPORTS]
    for (name, width, height, _mobile), rel in zip(shots.VIEWPORTS, images):
        data = (DOC.parent / rel).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert struct.unpack(">II", data[16:24]) == (width, height), name


def test_update_doc_rewrites_only_the_block(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    shots = script()
    doc = tmp_path / "reports.md"
    doc.write_text(f"# Reports\n\nbefore\n{shots.START}\nold\n{shots.END}\nafter\n", encoding="utf-8")
    monkeypatch.setattr(shots, "DOC", doc)
    shots.update_doc("rendered from a test", [Path("x/report-1400.png"), Path("x/report-390.png")])
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Reports\n\nbefore\n") and text.endswith("\nafter\n") and "old" not in text
    assert "(img/report-1400.png)" in text and "(img/report-390.png)" in text and "rendered from a test" in text
