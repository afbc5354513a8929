"""Built-in ``data_quality`` probe: completeness, validity, uniqueness, consistency and
timeliness of records sampled through the adapter (paginated, bounded, read-only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.core import accounts
from crm_audit.core.catalogue import CheckSpec, load_checks
from crm_audit.core.crm_data import is_audit_record
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import Finding, Measurement, ProbeResult, Severity, Status
from crm_audit.core.options import AccountName
from crm_audit.core.probe import Probe, ProbeContext, ProbeSkipped
from crm_audit.report.section import ReportSection

from .artifacts import DataQualityArtifacts
from .checks import Counts, ReferenceCheck, count_defects

__version__ = "0.1.0"


class DataQualityOptions(BaseModel):
    """Options under ``plugins.data_quality``; field names default to common CRM names."""

    model_config = ConfigDict(extra="forbid")
    account: AccountName | None = Field(None, description="account to read as (default: the admin, accounts.admin)")
    resource: str = "contacts"
    max_records: int = Field(5000, ge=1, le=200_000)
    page_size: int = Field(200, ge=1, le=1000)
    required_fields: list[str] = Field(default_factory=lambda: ["first_name", "last_name", "email"])
    email_field: str | None = "email"
    phone_field: str | None = "phone"
    phone_region: str | None = Field(None, pattern=r"^[A-Z]{2}$",
                                     description="region (ISO 3166 code such as US or GB) to read phone numbers "
                                                 "written without +country code in; without it they count as malformed")
    name_fields: list[str] = Field(default_factory=lambda: ["first_name", "last_name"])
    date_fields: list[str] = Field(default_factory=lambda: ["created_at", "updated_at"])
    duplicate_keys: list[str] = Field(default_factory=lambda: ["email"],
                                      description="which normalized keys define a duplicate: email, phone, name")
    references: list[ReferenceCheck] = Field(
        default_factory=lambda: [ReferenceCheck(field="account_id", resource="accounts")])
    updated_field: str | None = "updated_at"
    timeliness_days: int = Field(365, ge=1)
    expected: dict[str, float] = Field(default_factory=lambda: {
        "completeness": 0.95, "validity": 0.95, "uniqueness": 0.99, "consistency": 0.95, "timeliness": 0.8})


class DataQualityProbe(Probe):
    id = "data_quality"
    title = "Data quality of sampled records"
    version = __version__
    category = "data"
    indicators = ("dq.completeness", "dq.validity", "dq.uniqueness", "dq.consistency", "dq.timeliness")
    options_model = DataQualityOptions
    artifacts_model = DataQualityArtifacts
    timeout_s = 600.0
    #: counts records, times nothing: runs beside the other probes that time nothing
    quiet_target = False

    def run(self, ctx: ProbeContext) -> ProbeResult:
        opts: DataQualityOptions = ctx.options
        if ctx.adapter is None or opts.resource not in ctx.adapter.resources():
            raise ProbeSkipped(f"the adapter has no resource {opts.resource!r}")
        account = opts.account or accounts.name_of(accounts.admin(ctx.profile))
        records = [r for r in ctx.adapter.iterate(opts.resource, account, opts.max_records, opts.page_size)
                   if not is_audit_record(r)]
        if not records:
            raise ProbeSkipped(f"no {opts.resource} readable as {account!r}")
        known_ids: dict[str, set[str]] = {}
        for ref in opts.references:
            if ref.resource in ctx.adapter.resources():
                ids = {str(ctx.adapter.record_id(r))
                       for r in ctx.adapter.iterate(ref.resource, account, opts.max_records, opts.page_size)}
                if len(ids) < opts.max_records:  # a capped listing cannot prove a reference dangles
                    known_ids[ref.resource] = ids
                else:
                    ctx.log(f"{ref.field} not checked: more than {opts.max_records} {ref.resource}")
        counts = count_defects(records, opts, known_ids)
        return _result(self.id, counts, opts, account)


_TEXT = {
    "completeness": ("dq.completeness", "records with every required field present",
                     "Make the required fields mandatory at entry (form and API validation) and back-fill old records."),
    "validity": ("dq.validity", "records whose e-mail, phone and dates are well-formed",
                 "Validate formats at entry; clean existing values (e-mail syntax, E.164 phones, ISO dates)."),
    "uniqueness": ("dq.uniqueness", "records that are not duplicates",
                   "De-duplicate (merge) records and check for an existing record before creating one."),
    "consistency": ("dq.consistency", "references that resolve to an existing record",
                    "Enforce referential integrity (foreign keys) and repair or clear dangling references."),
    "timeliness": ("dq.timeliness", "records updated within the period",
                   "Review stale records: confirm, update or archive them on a schedule."),
}


def _result(probe_id: str, counts: Counts, opts: DataQualityOptions, account: str | None) -> ProbeResult:
    measurements, findings, metrics = [], [], []
    for name, (num, den) in counts.ratios().items():
        indicator, what, fix = _TEXT[name]
        expected = opts.expected.get(name)
        value = None if den == 0 else num / den
        metrics.append({"name": name, "value": value, "expected": expected, "formula": f"{what} / records checked",
                        "numerator": num, "denominator": den})
        if value is None:
            continue
        measurements.append(Measurement(indicator=indicator, value=round(value, 6), unit="ratio", expected=expected,
                                        better="higher", label=f"{opts.resource}: {what}",
                                        details={"numerator": num, "denominator": den}))
        if expected is not None and value < expected:
            findings.append(Finding(
                id=f"data_quality.{name}.{opts.resource}", title=f"{opts.resource}: {name} {value:.1%} below {expected:.0%}",
                severity=Severity.low, status=Status.failed, indicator=indicator, remediation=fix,
                references=["ISO 8000-8 (data quality)"]))
    return ProbeResult(probe=probe_id, measurements=measurements, findings=findings, artifacts={
        "metrics": metrics, "defects": counts.defects, "records": counts.records, "resource": opts.resource,
        "account": account, "duplicates_by_key": counts.duplicates_by_key})


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [DataQualityProbe]


@hookimpl
def crm_audit_register_report_sections() -> list[ReportSection]:
    """The data_quality section of the HTML report (its view and template in ``report.py``, read when a report is drawn)."""
    from .report import SECTION

    return [SECTION]


@hookimpl
def crm_audit_register_checks() -> list[CheckSpec]:
    """This probe's check catalogue: every ``checks/*.yaml`` beside this module."""
    return load_checks(__file__)
