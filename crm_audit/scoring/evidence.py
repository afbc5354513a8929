"""Evidence: indicator values no API can show (costs, ROI, surveys, vendor answers).

The auditor supplies them in a YAML or CSV file named by the profile. Each value keeps who
supplied it and when, so the result marks it as evidence rather than measurement. Cash
flows, if given, yield NPV, IRR, payback, discounted payback (``cost.discounted_payback``,
with a discount rate) and ROI (``finance``); a value stated explicitly for one of those
indicators wins over the computed one.

YAML::

    supplied_by: "J. Doe, procurement"
    date: 2024-05-01
    cash_flows: [-100000, 30000, 40000, 50000, 40000]   # year 0 first
    discount_rate: 0.08
    indicators:
      biz.satisfaction: 86                       # shorthand: just the value
      svc.vendor_sla: {value: partial, note: "1 h response, no weekend cover"}
      svc.response_time: {value: "4 min"}         # converted to the indicator's unit
      cost.tco: {value: 180000, expected: 200000, note: "budget 200k"}

CSV: a header with ``indicator,value`` and optionally ``unit,expected,supplied_by,date,note``;
rows ``cash_flow`` (one per year, in order) and ``discount_rate`` carry the cash flows.
Values: numbers, fractions (``3/5``), quantities (``"4 min"``, ``"85 %"``), or the words
pass/partial/fail (also yes/no, met/partly/not met) → 1 / 0.5 / 0.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from crm_audit.core.errors import InputFileError
from crm_audit.core.safeyaml import parse_text, read_file
from crm_audit.scoring import finance
from crm_audit.scoring.units import UnitError, split_quantity

_WORDS: dict[str, float] = {
    "pass": 1.0, "passed": 1.0, "yes": 1.0, "met": 1.0, "true": 1.0, "full": 1.0,
    "partial": 0.5, "partly": 0.5, "partially": 0.5, "partly met": 0.5,
    "fail": 0.0, "failed": 0.0, "no": 0.0, "not met": 0.0, "false": 0.0, "none": 0.0,
}
_ITEM_KEYS = {"value", "unit", "expected", "supplied_by", "date", "note"}
_TOP_KEYS = {"supplied_by", "date", "note", "indicators", "cash_flows", "discount_rate", "currency"}


class EvidenceError(InputFileError):
    """An evidence file that cannot be read; the message names the file and the entry."""


@dataclass(frozen=True)
class EvidenceItem:
    """One supplied (or computed) indicator value."""

    indicator: str
    value: float
    unit: str | None = None
    text: str | None = None
    expected: float | None = None
    supplied_by: str | None = None
    date: str | None = None
    note: str | None = None

    def meta(self) -> dict[str, str | None]:
        """The ``evidence`` entry of a scored node: who supplied it, when, and a note."""
        return {"supplied_by": self.supplied_by, "date": self.date, "note": self.note}


@dataclass(frozen=True)
class Evidence:
    """All evidence of one audit, keyed by indicator id."""

    items: Mapping[str, EvidenceItem] = field(default_factory=dict)
    supplied_by: str | None = None
    date: str | None = None
    note: str | None = None
    path: str | None = None
    cash_flows: tuple[float, ...] | None = None
    discount_rate: float | None = None

    def get(self, indicator: str) -> EvidenceItem | None:
        """The item for ``indicator``, or None."""
        return self.items.get(indicator)


def load_evidence(path: str | Path | None) -> Evidence:
    """Read an evidence file (.yaml/.yml or .csv); None gives an empty Evidence."""
    if path is None:
        return Evidence()
    p = Path(path)
    text = read_file(p, "evidence file", EvidenceError)
    if p.suffix.lower() == ".csv":
        return _from_csv(p, text)
    data = parse_text(text, str(p), EvidenceError).data
    return evidence_from_mapping(data if data is not None else {}, str(p))


def evidence_from_mapping(data: Any, origin: str = "<evidence>") -> Evidence:
    """Build Evidence from the YAML structure (also used by tests and plugins)."""
    if not isinstance(data, Mapping):
        raise EvidenceError(f"{origin}: evidence must be a mapping")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise EvidenceError(f"{origin}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    supplied_by = _text(data.get("supplied_by"))
    date = _text(data.get("date"))
    raw_items = data.get("indicators") or {}
    if not isinstance(raw_items, Mapping):
        raise EvidenceError(f"{origin}: 'indicators' must map indicator ids to values")
    items: dict[str, EvidenceItem] = {}
    for indicator, raw in raw_items.items():
        entry = raw if isinstance(raw, Mapping) else {"value": raw}
        items[str(indicator)] = _item(str(indicator), entry, supplied_by, date, origin)
    flows = _cash_flows(data.get("cash_flows"), origin)
    rate = _rate(data.get("discount_rate"), origin)
    for indicator, item in _computed(flows, rate, supplied_by, date).items():
        items.setdefault(indicator, item)
    return Evidence(items, supplied_by, date, _text(data.get("note")), origin, flows, rate)


def _from_csv(path: Path, text: str) -> Evidence:
    reader = csv.DictReader(text.splitlines())
    fields = set(reader.fieldnames or [])
    if not {"indicator", "value"} <= fields:
        raise EvidenceError(f"{path}: CSV evidence needs the columns 'indicator' and 'value'")
    unknown = fields - _ITEM_KEYS - {"indicator"}
    if unknown:
        raise EvidenceError(f"{path}: unknown CSV column(s) {', '.join(sorted(unknown))}")
    indicators: dict[str, Any] = {}
    flows: list[Any] = []
    rate: Any = None
    for line, row in enumerate(reader, start=2):
        name = (row.get("indicator") or "").strip()
        entry = {k: v for k, v in row.items() if k != "indicator" and v not in (None, "")}
        if not name:
            continue
        if name == "cash_flow":
            flows.append(entry.get("value"))
        elif name == "discount_rate":
            rate = entry.get("value")
        elif name in indicators:
            raise EvidenceError(f"{path}: line {line}: indicator '{name}' given twice")
        else:
            indicators[name] = entry
    data: dict[str, Any] = {"indicators": indicators}
    if flows:
        data["cash_flows"] = flows
    if rate is not None:
        data["discount_rate"] = rate
    return evidence_from_mapping(data, str(path))


def _item(indicator: str, entry: Mapping[str, Any], supplied_by: str | None, date: str | None, origin: str) -> EvidenceItem:
    where = f"{origin}: indicator '{indicator}'"
    unknown = set(entry) - _ITEM_KEYS
    if unknown:
        raise EvidenceError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    if "value" not in entry:
        raise EvidenceError(f"{where}: no value")
    value, unit, text = _value(entry["value"], where)
    unit = _text(entry.get("unit")) or unit
    expected = None
    if entry.get("expected") is not None:
        expected, expected_unit, _ = _value(entry["expected"], where + " expected")
        if expected_unit and unit and expected_unit != unit:
            raise EvidenceError(f"{where}: expected is in {expected_unit} but the value in {unit}")
    return EvidenceItem(
        indicator=indicator,
        value=value,
        unit=unit,
        text=text,
        expected=expected,
        supplied_by=_text(entry.get("supplied_by")) or supplied_by,
        date=_text(entry.get("date")) or date,
        note=_text(entry.get("note")),
    )


def _value(raw: Any, where: str) -> tuple[float, str | None, str | None]:
    """(number, unit, original word) of a supplied value."""
    if isinstance(raw, bool):
        return (1.0 if raw else 0.0), None, "pass" if raw else "fail"
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _WORDS:
            return _WORDS[word], None, word
        if "/" in word:
            try:
                return float(Fraction(word.replace(" ", ""))), None, raw.strip()
            except (ValueError, ZeroDivisionError):
                pass
    try:
        number, unit = split_quantity(raw)
    except UnitError:
        raise EvidenceError(f"{where}: value {raw!r} is not a number, quantity, fraction or pass/partial/fail") from None
    if math.isnan(number):
        raise EvidenceError(f"{where}: value is NaN")
    return number, unit, None


def _cash_flows(raw: Any, origin: str) -> tuple[float, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) < 2:
        raise EvidenceError(f"{origin}: 'cash_flows' must be a list of at least two yearly amounts, year 0 first")
    try:
        return tuple(float(x) for x in raw)
    except (TypeError, ValueError):
        raise EvidenceError(f"{origin}: 'cash_flows' must contain numbers only") from None


def _rate(raw: Any, origin: str) -> float | None:
    if raw is None:
        return None
    try:
        rate = float(raw)
    except (TypeError, ValueError):
        raise EvidenceError(f"{origin}: 'discount_rate' must be a number such as 0.08") from None
    if not -1 < rate < 1:
        raise EvidenceError(f"{origin}: 'discount_rate' {rate} looks wrong: give it as a fraction (0.08 for 8%)")
    return rate


def _computed(flows: tuple[float, ...] | None, rate: float | None, supplied_by: str | None, date: str | None) -> dict[str, EvidenceItem]:
    """NPV, IRR, payback, discounted payback and ROI from the cash flows.

    NPV and discounted payback need a discount rate. With several real IRRs the one closest
    to zero is used and the note lists them all. A payback that never happens is stated as
    "not recovered" (``text`` and note) and scores 0: its value is +∞ inside scoring only,
    and the result's JSON shows ``actual: null`` with that note, never an infinity.
    """
    if flows is None:
        return {}
    note = f"computed from cash flows {list(flows)}"
    out: dict[str, EvidenceItem] = {}
    if rate is not None:
        out["cost.npv"] = EvidenceItem("cost.npv", finance.npv(rate, flows), None, None, 0.0, supplied_by, date,
                                       f"{note} at {rate:.4g} discount rate")
    roots = finance.irr_roots(flows)
    irr = finance.irr(flows)
    if irr is not None:
        irr_note = note
        if len(roots) > 1:
            listed = ", ".join(f"{r:.2%}" for r in roots)
            irr_note += f"; IRR ambiguous: {len(roots)} real roots ({listed}), the one closest to zero is used"
        out["cost.irr"] = EvidenceItem("cost.irr", irr, "ratio", None, rate, supplied_by, date, irr_note)
    out["cost.payback"] = _payback_item("cost.payback", finance.payback_period(flows), note, supplied_by, date)
    if rate is not None:
        out["cost.discounted_payback"] = _payback_item(
            "cost.discounted_payback", finance.discounted_payback(rate, flows),
            f"{note} discounted at {rate:.4g}", supplied_by, date)
    roi = finance.roi(flows)
    if roi is not None:
        out["cost.roi"] = EvidenceItem("cost.roi", roi, "ratio", None, None, supplied_by, date, note + " (undiscounted)")
    return out


def _payback_item(indicator: str, years: float | None, note: str, supplied_by: str | None, date: str | None) -> EvidenceItem:
    """A payback item; not recovered → value +∞ (scores 0), text and note say so."""
    if years is None:
        return EvidenceItem(indicator, math.inf, "years", finance.NOT_RECOVERED, None, supplied_by, date,
                            f"{note}: {finance.NOT_RECOVERED} (the cumulative flow never turns non-negative)")
    return EvidenceItem(indicator, years, "years", None, None, supplied_by, date, note)


def _text(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, (_dt.date, _dt.datetime)):
        return raw.isoformat()
    return str(raw)
