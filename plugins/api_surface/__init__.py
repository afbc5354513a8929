"""Built-in ``api_surface`` probe: functional coverage (which CRM modules the API offers) and
API quality (a published OpenAPI document, working pagination, JSON errors). Read-only."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.core import accounts
from crm_audit.core.catalogue import CheckSpec, load_checks
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import Evidence, Finding, Measurement, NotAssessed, ProbeResult, Severity, Status
from crm_audit.core.options import AccountName
from crm_audit.core.probe import Probe, ProbeContext, ProbeSkipped

__version__ = "0.1.0"


class ApiSurfaceOptions(BaseModel):
    """Options under ``plugins.api_surface``."""

    model_config = ConfigDict(extra="forbid")
    account: AccountName | None = Field(None, description="account to read as (default: the admin, accounts.admin)")
    required_modules: list[str] = Field(
        default_factory=lambda: ["contacts", "accounts", "leads", "opportunities", "cases"],
        description="generic resources a CRM is expected to offer (the adapter maps them)")
    missing_path: str | None = Field(None, description="a path that must not exist (error format check); "
                                     "default: <first resource path>/crm-audit-no-such-path")


class ApiSurfaceProbe(Probe):
    id = "api_surface"
    title = "Functional coverage and API surface"
    version = __version__
    category = "inventory"
    indicators = ("func.modules", "func.api_surface")
    options_model = ApiSurfaceOptions
    timeout_s = 120.0
    #: reads the API's shape, times nothing: runs beside the other probes that time nothing
    quiet_target = False

    def run(self, ctx: ProbeContext) -> ProbeResult:
        opts: ApiSurfaceOptions = ctx.options
        adapter = ctx.adapter
        if adapter is None:
            raise ProbeSkipped("no adapter")
        account = opts.account or accounts.name_of(accounts.admin(ctx.profile))
        findings: list[Finding] = []
        present: list[str] = []
        missing: list[str] = []
        unanswered: list[str] = []
        why: NotAssessed | None = None
        offered = set(adapter.resources())
        for module in opts.required_modules:
            if module not in offered:
                missing.append(module)
                continue
            _, ex = adapter.list(module, account, limit=1, offset=0)
            if ex.not_assessed is not None and not ex.ok:  # no answer or a 5xx: neither present nor missing
                unanswered.append(module)
                why = why or ex.not_assessed
                continue
            (present if ex.ok else missing).append(module)
        modules_status = Status.failed if missing else Status.error if unanswered else Status.passed
        findings.append(Finding(
            id="api_surface.modules", indicator="func.modules", severity=Severity.low, status=modules_status,
            not_assessed=why if modules_status is Status.error else None,
            hint="re-run when these modules answer: " + ", ".join(unanswered) if unanswered else None,
            title=f"{len(present)} of {len(opts.required_modules)} required CRM modules answer over the API"
                  + (f" (missing: {', '.join(missing)})" if missing else "")
                  + (f" (no usable answer: {', '.join(unanswered)})" if unanswered else ""),
            evidence=[Evidence(expected=", ".join(opts.required_modules), observed=", ".join(present) or "none")]))
        checks = self._surface_checks(ctx, account, present, opts)
        for check_id, ok, title, ev, na in checks:
            status = Status.error if na is not None else Status.passed if ok else Status.failed
            findings.append(Finding(id=f"api_surface.{check_id}", indicator="func.api_surface",
                                    title=title if na is None else f"{check_id} not assessed: no usable answer",
                                    severity=Severity.low, status=status, evidence=ev, not_assessed=na,
                                    hint="re-run when the API answers" if na is not None else None))
        judged = [c for c in checks if c[4] is None]
        passed = sum(1 for c in judged if c[1])
        measurements = []
        if not unanswered:  # a module without an answer is neither present nor missing
            measurements.append(Measurement(
                indicator="func.modules", value=round(len(present) / max(1, len(opts.required_modules)), 6),
                unit="pass/partial/fail", expected=1.0, better="higher",
                label=f"{len(present)}/{len(opts.required_modules)} modules present",
                details={"present": present, "missing": missing}))
        if judged:
            measurements.append(Measurement(
                indicator="func.api_surface", value=round(passed / len(judged), 6), unit="ratio", expected=1.0,
                better="higher", label=f"{passed}/{len(judged)} API checks passed",
                details={c[0]: c[1] for c in judged}))
        return ProbeResult(probe=self.id, measurements=measurements, findings=findings)

    def _surface_checks(self, ctx: ProbeContext, account: str | None, present: list[str],
                        opts: ApiSurfaceOptions) -> list[tuple[str, bool, str, list[Evidence], NotAssessed | None]]:
        """(check id, passed, title, evidence, why not assessed) per API check."""
        out: list[tuple[str, bool, str, list[Evidence], NotAssessed | None]] = []
        adapter = ctx.adapter
        assert adapter is not None  # run() raises ProbeSkipped before calling this without an adapter
        found = adapter.discover()
        described = [op for op in found.operations if op.described]
        doc_na = found.exchange.not_assessed if (found.exchange is not None and not found.described) else None
        out.append(("openapi", found.described, f"API description ({found.source or 'none configured'}) "
                    + (f"published ({len(described)} operations)"
                       if found.described else "not found"),
                    [found.exchange.evidence(120)] if found.exchange is not None else [], doc_na))
        if present:
            module = present[0]
            one, ex1 = adapter.list(module, account, limit=1, offset=0)
            two, ex2 = adapter.list(module, account, limit=1, offset=1)
            limit_ok = ex1.ok and len(one) <= 1
            out.append(("pagination_limit", limit_ok, f"{module}: a page size of 1 "
                        + ("is respected" if limit_ok else f"returned {len(one)} rows"), [ex1.evidence(120)],
                        ex1.not_assessed))
            ids = (adapter.record_id(one[0]) if one else None, adapter.record_id(two[0]) if two else None)
            offset_ok = ex2.ok and (not two or ids[0] != ids[1])
            out.append(("pagination_offset", offset_ok, f"{module}: the next page " +
                        ("moves on" if offset_ok else "repeats the first one"), [ex2.evidence(120)],
                        ex1.not_assessed or ex2.not_assessed))
        missing = opts.missing_path
        if missing is None:  # under the API, not the site root (which may be an HTML app)
            listing = next((op for op in found.operations if present and op.resource == present[0]
                            and op.action == "list" and op.path), None)
            base = listing.path if listing is not None else ""
            missing = (base or "").rstrip("/") + "/crm-audit-no-such-path"
        ex = ctx.target.request("GET", missing, account=account)
        json_error = ex.status == 404 and ex.json_or_none() is not None
        out.append(("json_errors", json_error, f"an unknown path answers {ex.status}"
                    + (" with a JSON error" if json_error else " without a JSON error body"), [ex.evidence(160)],
                    ex.not_assessed))
        return out



@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [ApiSurfaceProbe]


@hookimpl
def crm_audit_register_checks() -> list[CheckSpec]:
    """This probe's check catalogue: every ``checks/*.yaml`` beside this module."""
    return load_checks(__file__)
