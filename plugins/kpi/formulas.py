"""The KPI formulas of the source documents (seed 003), as pure functions over records."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from typing import Any

from crm_audit.core.crm_data import blank, parse_time


@dataclass(frozen=True)
class Metric:
    """One KPI: value (None = not assessed), its formula and the counts behind it."""

    name: str
    indicator: str
    value: float | None
    unit: str
    formula: str
    numerator: float | None = None
    denominator: float | None = None
    median: float | None = None
    note: str = ""


def _ratio(name: str, indicator: str, num: int, den: int, formula: str, missing: str) -> Metric:
    if den == 0:
        return Metric(name, indicator, None, "ratio", formula, num, den, note=missing)
    return Metric(name, indicator, num / den, "ratio", formula, num, den)


def _hours(name: str, indicator: str, deltas: list[float], formula: str, missing: str) -> Metric:
    if not deltas:
        return Metric(name, indicator, None, "h", formula, note=missing)
    return Metric(name, indicator, statistics.fmean(deltas), "h", formula, sum(deltas), len(deltas),
                  median=statistics.median(deltas))


def _field(record: dict[str, Any], name: str | None) -> Any:
    return record.get(name) if name else None


def case_metrics(cases: list[dict[str, Any]], accounts: list[dict[str, Any]], f: Any,
                 now: dt.datetime | None = None) -> list[Metric]:
    """Support response time, resolution time, resolution rate, repeat rate, complaint rate.

    A case is resolved when its status says so (or, for CRMs without a status field, when it
    has a resolution time); resolution times in the future are planned dates, not facts, and
    are left out.
    """
    now = now or dt.datetime.now(dt.UTC)
    responses, resolutions = [], []
    resolved = repeats = 0
    complaining: set[str] = set()
    have_repeat_field = bool(f.repeat_of) and any(f.repeat_of in c for c in cases)
    have_type_field = bool(f.type) and any(f.type in c for c in cases)
    for c in cases:
        created = parse_time(_field(c, f.created))
        first = parse_time(_field(c, f.first_response))
        done = parse_time(_field(c, f.resolved))
        if done is not None and done > now:
            done = None
        is_resolved = (str(c.get(f.status)) in f.resolved_statuses) if f.status and f.status in c else done is not None
        resolved += is_resolved
        if created and first and created <= first <= now:
            responses.append((first - created).total_seconds() / 3600)
        if is_resolved and created and done and done >= created:
            resolutions.append((done - created).total_seconds() / 3600)
        if not blank(_field(c, f.repeat_of)):
            repeats += 1
        if str(_field(c, f.type)) in f.complaint_types and not blank(_field(c, f.account)):
            complaining.add(str(_field(c, f.account)))
    n = len(cases)
    out = [
        _hours("support response time", "svc.response_time", responses,
               "mean(first response time − time submitted) over cases with a first response",
               "no case has both a submission and a first-response time"),
        _hours("resolution time", "svc.resolution_time", resolutions,
               "mean(time resolved − time submitted) over resolved cases", "no case has a resolution time"),
        _ratio("problem resolution rate", "svc.resolution_rate", resolved, n,
               "resolved cases / submitted cases", "no cases"),
        _ratio("problem repeat rate", "svc.repeat_rate", repeats, n if have_repeat_field else 0,
               "repeated problems / submitted cases", "cases carry no repeat reference"),
    ]
    customers = len(accounts)
    out.append(_ratio("complaint rate", "biz.complaint_rate", len(complaining),
                      customers if (have_type_field and cases) else 0,
                      "customers (accounts) with a complaint case / all customers",
                      "cases carry no type, or there are no accounts"))
    return out


def lead_metrics(leads: list[dict[str, Any]], f: Any) -> list[Metric]:
    """Conversion (close) rate = leads converted to deals / leads."""
    converted = sum(1 for lead in leads if str(lead.get(f.status)) in f.converted_statuses)
    return [_ratio("lead conversion rate", "biz.conversion_rate", converted, len(leads),
                   "leads converted to deals / leads", "no leads")]


def account_metrics(accounts: list[dict[str, Any]], f: Any) -> list[Metric]:
    """Churn rate = lost customers / all customers, when accounts carry a churn flag."""
    flagged = [a for a in accounts if f.churned in a]
    churned = sum(1 for a in flagged if a.get(f.churned) in (True, "true", "True", 1, "1", "yes"))
    return [_ratio("churn rate", "biz.churn_rate", churned, len(flagged),
                   "lost customers / all customers", "accounts carry no churn flag")]
