"""CSV reporter: one row per indicator with its PIA triple, score and weights, for spreadsheets.

Rows only, no summary: the verdict is in the other formats; a not-assessed indicator's row
says why and what would assess it.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import AuditResult
from crm_audit.core.probe import Reporter
from crm_audit.report.view import IndicatorRow, as_float, indicator_rows

COLUMNS = (
    "id", "title", "dimension", "assessed", "actual", "expected", "difference", "unit",
    "better", "meets_expected", "score", "grade", "weight", "global_weight",
    "effective_weight", "source", "function", "findings", "not_assessed", "how_to_assess",
)

# A cell starting with one of these is run as a formula by spreadsheet programs.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _cell(value: Any) -> str:
    """Plain text of a value; text that a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    if text.startswith(_FORMULA_START) and as_float(text) is None:
        return "'" + text
    return text


def _row(row: IndicatorRow) -> list[str]:
    values = {
        "id": row.id, "title": row.title, "dimension": row.dimension,
        "assessed": row.assessed, "actual": row.actual, "expected": row.expected,
        "difference": row.difference, "unit": row.unit, "better": row.better,
        "meets_expected": row.meets, "score": row.score, "grade": row.grade,
        "weight": row.weight, "global_weight": row.global_weight,
        "effective_weight": row.effective_weight, "source": row.source,
        "function": row.function, "findings": " ".join(row.findings),
        "not_assessed": "; ".join(row.reasons), "how_to_assess": "; ".join(row.hints),
    }
    return [_cell(values[c]) for c in COLUMNS]


class CsvReporter(Reporter):
    """Writes ``indicators.csv``: a header row then one row per indicator (RFC 4180)."""

    format = "csv"
    filename = "indicators.csv"
    description = "Indicators with actual / expected / difference, score and weights as CSV"
    version = "1.0.0"

    def render(self, result: AuditResult) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in indicator_rows(result):
            writer.writerow(_row(row))
        return buffer.getvalue()


@hookimpl
def crm_audit_register_reporters() -> list[type[Reporter]]:
    return [CsvReporter]
