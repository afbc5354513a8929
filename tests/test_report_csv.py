"""CSV reporter: parses back, one row per indicator, no spreadsheet formula injection."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import report_fixtures as rf  # noqa: E402

from crm_audit.report.csv_reporter import COLUMNS, CsvReporter  # noqa: E402


def rows(result) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    text = CsvReporter().render(result)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def test_one_row_per_indicator_with_the_pia_triple() -> None:
    result = rf.realistic_result()
    got = rows(result)
    assert [r["id"] for r in got] == [n["id"] for n in result.scoring["nodes"] if n["kind"] == "indicator"]
    p95 = next(r for r in got if r["id"] == "perf.response_time_p95")
    assert (float(p95["actual"]), float(p95["expected"]), float(p95["difference"])) == (412.0, 500.0, -88.0)
    assert p95["meets_expected"] == "true" and p95["unit"] == "ms" and p95["dimension"] == "perf"
    logging = next(r for r in got if r["id"] == "sec.access_logging")
    assert logging["assessed"] == "false" and logging["score"] == ""
    assert next(r for r in got if r["id"] == "sec.access_control")["findings"] == "access.bola.contacts"
    assert logging["not_assessed"] == "no evidence given for sec.access_logging"
    assert logging["how_to_assess"].startswith("add sec.access_logging to the evidence file")
    assert p95["not_assessed"] == p95["how_to_assess"] == ""


def test_unscored_rows_come_from_measurements() -> None:
    got = rows(rf.unscored_result())
    assert len(got) == len(rf.unscored_result().all_measurements())
    assert {r["score"] for r in got} == {""}


def test_formula_like_text_is_neutralised_but_numbers_are_not() -> None:
    result = rf.realistic_result()
    nodes = [n.model_copy(update={"title": '=HYPERLINK("http://evil.test","x")'}) if n.id == "perf.error_rate" else n
             for n in result.scoring.nodes]
    got = rows(result.model_copy(update={"scoring": result.scoring.model_copy(update={"nodes": nodes})}))
    evil = next(r for r in got if r["id"] == "perf.error_rate")
    assert evil["title"].startswith("'=HYPERLINK")
    assert float(evil["difference"]) < 0   # a negative number stays a number


def test_hostile_labels_round_trip_as_text() -> None:
    got = rows(rf.hostile_result().model_copy(update={"scoring": None}))
    assert rf.HOSTILE in [r["title"] for r in got]            # the flows label, byte for byte
    assert "List contacts " + rf.HOSTILE in [r["title"] for r in got]
    assert all(None not in r and len(r) == len(COLUMNS) for r in got)
