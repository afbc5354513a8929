"""Built-in ``kpi`` probe: the source documents' KPI formulas computed from the CRM's own
records (cases, leads, accounts), each shown with its formula; not assessed when the data
is missing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.core.accounts import admin, name_of
from crm_audit.core.catalogue import CheckSpec, load_checks
from crm_audit.core.crm_data import is_audit_record
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import Measurement, ProbeResult
from crm_audit.core.options import AccountName
from crm_audit.core.probe import Probe, ProbeContext, ProbeSkipped
from crm_audit.report.section import ReportSection

from .artifacts import KpiArtifacts
from .formulas import Metric, account_metrics, case_metrics, lead_metrics

__version__ = "0.1.0"


class CaseFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    created: str = "created_at"
    first_response: str | None = "first_response_at"
    resolved: str | None = "resolved_at"
    status: str | None = "status"
    resolved_statuses: list[str] = Field(default_factory=lambda: ["resolved", "closed", "Closed"])
    type: str | None = "type"
    complaint_types: list[str] = Field(default_factory=lambda: ["complaint"])
    repeat_of: str | None = "repeat_of"
    account: str | None = "account_id"


class LeadFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = "status"
    converted_statuses: list[str] = Field(default_factory=lambda: ["converted", "Converted", "closed"])


class AccountFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    churned: str = "churned"


class KpiOptions(BaseModel):
    """Options under ``plugins.kpi``: where the records are and what their fields are called."""

    model_config = ConfigDict(extra="forbid")
    account: AccountName | None = Field(None, description="account to read as (default: the admin, accounts.admin)")
    max_records: int = Field(5000, ge=1, le=200_000)
    page_size: int = Field(200, ge=1, le=1000)
    cases_resource: str = "cases"
    leads_resource: str = "leads"
    accounts_resource: str = "accounts"
    cases: CaseFields = Field(default_factory=CaseFields)
    leads: LeadFields = Field(default_factory=LeadFields)
    accounts: AccountFields = Field(default_factory=AccountFields)
    expected: dict[str, float] = Field(default_factory=lambda: {
        "svc.response_time": 5 / 60, "svc.resolution_time": 24.0, "svc.resolution_rate": 0.8,
        "svc.repeat_rate": 0.1, "biz.conversion_rate": 0.2, "biz.complaint_rate": 0.02, "biz.churn_rate": 0.05})


_LOWER_BETTER = {"svc.response_time", "svc.resolution_time", "svc.repeat_rate", "biz.complaint_rate", "biz.churn_rate"}


class KpiProbe(Probe):
    id = "kpi"
    title = "Business and support KPIs from CRM records"
    version = __version__
    category = "business"
    indicators = ("svc.response_time", "svc.resolution_time", "svc.resolution_rate", "svc.repeat_rate",
                  "biz.conversion_rate", "biz.complaint_rate", "biz.churn_rate")
    options_model = KpiOptions
    artifacts_model = KpiArtifacts
    timeout_s = 600.0
    #: counts records, times nothing: runs beside the other probes that time nothing
    quiet_target = False

    def run(self, ctx: ProbeContext) -> ProbeResult:
        opts: KpiOptions = ctx.options
        adapter = ctx.adapter
        if adapter is None:
            raise ProbeSkipped("no adapter")
        account = opts.account or name_of(admin(ctx.profile))
        available = set(adapter.resources())

        def records(resource: str) -> list[dict[str, Any]]:
            if resource not in available:
                return []
            return [r for r in adapter.iterate(resource, account, opts.max_records, opts.page_size)
                    if not is_audit_record(r)]

        cases, leads, accounts = records(opts.cases_resource), records(opts.leads_resource), records(opts.accounts_resource)
        metrics: list[Metric] = [*case_metrics(cases, accounts, opts.cases), *lead_metrics(leads, opts.leads),
                                 *account_metrics(accounts, opts.accounts)]
        measurements = []
        for m in metrics:
            if m.value is None:
                continue
            measurements.append(Measurement(
                indicator=m.indicator, value=round(m.value, 6), unit=m.unit, expected=opts.expected.get(m.indicator),
                better="lower" if m.indicator in _LOWER_BETTER else "higher", label=m.name,
                details={"formula": m.formula, "numerator": m.numerator, "denominator": m.denominator,
                         **({"median": m.median} if m.median is not None else {})}))
        return ProbeResult(probe=self.id, measurements=measurements, artifacts={
            "metrics": [{"name": m.name, "indicator": m.indicator, "value": m.value, "unit": m.unit,
                         "expected": opts.expected.get(m.indicator), "formula": m.formula,
                         "numerator": m.numerator, "denominator": m.denominator, "note": m.note} for m in metrics],
            "records": {"cases": len(cases), "leads": len(leads), "accounts": len(accounts)}, "account": account})


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [KpiProbe]


@hookimpl
def crm_audit_register_report_sections() -> list[ReportSection]:
    """The kpi section of the HTML report (its view and template in ``report.py``, read when a report is drawn)."""
    from .report import SECTION

    return [SECTION]


@hookimpl
def crm_audit_register_checks() -> list[CheckSpec]:
    """This probe's check catalogue: every ``checks/*.yaml`` beside this module."""
    return load_checks(__file__)
