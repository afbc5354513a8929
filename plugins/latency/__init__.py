"""Built-in ``latency`` probe: response time of the profile's endpoints against their SLOs.

An endpoint is an HTTP request (``path``) or an adapter operation (``operation``, e.g. a
read-only RPC call such as ``contacts.search_read``), timed by the exchange the adapter makes;
only read operations are timed.

Written exactly as a third-party plugin would be: a Probe subclass and one hookimpl,
registered through the ``crm_audit`` entry-point group.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.core.adapter import NAMED_OPERATIONS
from crm_audit.core.catalogue import CheckSpec, load_checks
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import (
    Evidence,
    Finding,
    Measurement,
    NotAssessed,
    ProbeResult,
    SampleSummary,
    Severity,
    Status,
)
from crm_audit.core.probe import Probe, ProbeContext, ProbeSkipped
from crm_audit.core.profile import Endpoint
from crm_audit.core.target import BudgetExceeded, Exchange
from crm_audit.report.section import ReportSection

from .artifacts import LatencyArtifacts

__version__ = "0.4.0"


class LatencyOptions(BaseModel):
    """Options under ``plugins.latency`` in the profile."""

    model_config = ConfigDict(extra="forbid")
    samples: int = Field(30, ge=1, le=10_000, description="timed requests per endpoint")
    warmup: int = Field(3, ge=0, le=100, description="untimed requests first (connection set-up, caches)")
    default_slo_p95_ms: float = Field(300.0, gt=0, description="SLO for endpoints that name none")
    discover_openapi: bool = Field(False, description="also time every parameter-free GET in the OpenAPI document")
    max_discovered: int = Field(20, ge=0, le=500)
    max_error_rate: float = Field(0.01, ge=0, le=1)
    histogram_bins: int = Field(20, ge=2, le=200)
    interval_ms: float = Field(0.0, ge=0, le=60_000, description="least time between two samples of an endpoint")


class LatencyProbe(Probe):
    id = "latency"
    title = "Response time"
    version = __version__
    category = "performance"
    indicators = ("perf.response_time_p95", "perf.error_rate")
    options_model = LatencyOptions
    artifacts_model = LatencyArtifacts
    timeout_s = 900.0

    def run(self, ctx: ProbeContext) -> ProbeResult:
        opts: LatencyOptions = ctx.options
        endpoints = list(ctx.profile.endpoints)
        unusable = {e.name: why for e in endpoints if e.operation is not None
                    for why in [_operation_problem(ctx, e)] if why is not None}
        writing = [e.name for e in endpoints if e.operation is None and e.method.upper() not in ("GET", "HEAD")]
        if writing and not ctx.allow_writes:
            # repeated untagged writes would change records the audit did not create
            endpoints = [e for e in endpoints if e.name not in writing]
            ctx.log(f"not timing {', '.join(writing)}: non-GET endpoints need allow.writes")
        if opts.discover_openapi:
            endpoints += discover(ctx, endpoints, opts.max_discovered)
        if not endpoints:
            raise ProbeSkipped("the profile names no endpoints (endpoints:)")
        measurements: list[Measurement] = []
        findings: list[Finding] = []
        artifacts: list[dict[str, Any]] = []
        total_req = total_err = 0
        cut = False  # the request budget ran out: later endpoints are not sampled
        for ep in endpoints:
            ctx.check_cancelled()
            slo = ep.slo_p95_ms or opts.default_slo_p95_ms
            if ep.name in unusable:
                reason, why, hint = unusable[ep.name]
                findings.append(_not_sampled(ep, slo, why, reason, hint))
                continue
            if cut:
                findings.append(_not_sampled(ep, slo, "the request budget ran out before this endpoint",
                                             NotAssessed.audit_limit, "raise target.request_budget or lower samples"))
                continue
            row, ms, errors, excerpt = _sample(ctx, ep, opts)
            sent = len(ms) + errors
            cut = sent < opts.samples
            total_req += sent
            total_err += errors
            artifacts.append(row)
            bound = "request_budget" if cut else None
            if ms:
                summ = SampleSummary.of(ms)
                measurements.append(Measurement(
                    indicator="perf.response_time_p95", value=round(summ.p95, 3), unit="ms", expected=slo,
                    better="lower", label=ep.name, samples=summ, raw_samples=[round(x, 3) for x in ms],
                    bounded_by=bound,
                    details={"method": row["method"], "path": row["path"], "operation": ep.operation,
                             "ttfb_p95_ms": row["ttfb"]["p95"] if row["ttfb"] else None,
                             "samples_planned": opts.samples},
                ))
                if summ.p95 > slo:
                    findings.append(Finding(
                        id=f"latency.slo_exceeded.{_slug(ep.name)}", title=f"{ep.name}: p95 {summ.p95:.0f} ms over its SLO of {slo:g} ms",
                        severity=Severity.medium, status=Status.failed, indicator="perf.response_time_p95",
                    ))
            elif cut:
                findings.append(_not_sampled(ep, slo, "the request budget ran out before a sample answered",
                                             NotAssessed.audit_limit, "raise target.request_budget or lower samples"))
            else:
                findings.append(_not_sampled(ep, slo, f"none of {sent} requests answered as expected",
                                             NotAssessed.request_failed, "make the endpoint answer (see "
                                             f"latency.errors.{_slug(ep.name)}), then re-run"))
            if errors:
                findings.append(Finding(
                    id=f"latency.errors.{_slug(ep.name)}", title=f"{ep.name}: {errors} of {sent} requests failed",
                    severity=Severity.medium if errors / sent > opts.max_error_rate else Severity.low,
                    status=Status.failed, indicator="perf.error_rate", evidence=[excerpt] if excerpt else [],
                ))
        if total_req:
            measurements.append(Measurement(
                indicator="perf.error_rate", value=round(total_err / total_req, 6), unit="ratio",
                expected=opts.max_error_rate, better="lower", label="all sampled endpoints",
                bounded_by="request_budget" if cut else None,
                details={"requests": total_req, "errors": total_err},
            ))
        return ProbeResult(probe=self.id, measurements=measurements, findings=findings,
                           artifacts={"endpoints": artifacts})


def _not_sampled(ep: Endpoint, slo: float, why: str, reason: NotAssessed, hint: str) -> Finding:
    """The endpoint's SLO check, not assessed: no timed sample to judge it by."""
    return Finding(id=f"latency.slo_exceeded.{_slug(ep.name)}", title=f"{ep.name}: p95 against {slo:g} ms not "
                   f"assessed: {why}", severity=Severity.medium, indicator="perf.response_time_p95",
                   status=Status.error if reason is NotAssessed.request_failed else Status.skipped,
                   not_assessed=reason, hint=hint)


def _operation_problem(ctx: ProbeContext, ep: Endpoint) -> tuple[NotAssessed, str, str] | None:
    """Why an operation endpoint cannot be timed (no adapter, not offered, not a read), or None."""
    adapter, name = ctx.adapter, ep.operation or ""
    if adapter is None:
        return NotAssessed.not_configured, "no adapter to call the operation", "describe the CRM under adapter:"
    if not adapter.offers(name):
        return (NotAssessed.not_configured, f"the {adapter.type} adapter has no operation {name!r}",
                f"fix endpoints[{ep.name}].operation (the adapter's operations: docs/plugins.md)")
    safe = NAMED_OPERATIONS.get(name, (False, ""))[0] or any(
        o.name == name and o.safe for o in adapter.discover().operations)
    if not safe:
        return (NotAssessed.safety, f"{name} is not a read operation: repeated calls would change data",
                "time only read operations (list, read, search …)")
    return None


def _send(ctx: ProbeContext, ep: Endpoint) -> tuple[Exchange, bool]:
    """One request of the endpoint and whether it answered as expected (an operation: allowed)."""
    if ep.operation is not None and ctx.adapter is not None:
        _, ex = ctx.adapter.call(ep.operation, dict(ep.params), ep.account)
        return ex, ex.error is None and ctx.adapter.classify(ex) == "allowed"
    ex = ctx.target.request(ep.method, ep.path or "", account=ep.account, params=ep.params or None)
    return ex, ex.error is None and ex.status in ep.expect_status


def _sample(ctx: ProbeContext, ep: Endpoint,
            opts: LatencyOptions) -> tuple[dict[str, Any], list[float], int, Evidence | None]:
    """Warm up, then time ``samples`` requests; returns the artifact row, ms samples, errors, evidence.

    Stops early (fewer samples than planned) when the audit's request budget runs out.
    """
    ms: list[float] = []
    ttfb: list[float] = []
    errors = 0
    excerpt: Evidence | None = None
    next_at = 0.0
    sent_as = (ep.method, ep.path or ep.operation)
    try:
        for _ in range(opts.warmup):
            ctx.check_cancelled()
            _send(ctx, ep)
        for _ in range(opts.samples):
            ctx.check_cancelled()
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            next_at = time.monotonic() + opts.interval_ms / 1000.0
            ex, ok = _send(ctx, ep)
            sent_as = (ex.method, ep.path or ep.operation)
            if not ok:
                errors += 1
                if excerpt is None:
                    expected = f"status in {ep.expect_status}" if ep.operation is None else "an allowed answer"
                    excerpt = ex.evidence(expected=expected, observed=str(ex.status or ex.error))
                continue
            ms.append(ex.elapsed_s * 1000.0)
            if ex.ttfb_s is not None:
                ttfb.append(ex.ttfb_s * 1000.0)
    except BudgetExceeded:
        pass  # the caller sees fewer samples than planned and marks the values bounded
    summ = SampleSummary.of(ms).model_dump() if ms else None
    row: dict[str, Any] = {
        "name": ep.name, "method": sent_as[0], "path": sent_as[1], "summary": summ,
        "ttfb": SampleSummary.of(ttfb).model_dump() if ttfb else None,
        "slo_p95_ms": ep.slo_p95_ms or opts.default_slo_p95_ms, "errors": errors,
        "histogram": histogram(ms, opts.histogram_bins) if ms else {"edges": [], "counts": []},
    }
    return row, ms, errors, excerpt


#: GETs that may change state (log out, refresh or activate): never called repeatedly
_SIDE_EFFECT = re.compile(r"(?i)(^|/)(logout|signout|login|signin|signup|register|refresh|token|activate|"
                          r"reset|forgot|resend|verify|confirm|unsubscribe|delete|remove)([/._-]|$)")


def discover(ctx: ProbeContext, known: list[Endpoint], limit: int) -> list[Endpoint]:
    """Parameter-free GET operations the CRM describes (the adapter's discovery) not yet in the profile.

    Each candidate is requested once (as the first account the profile's endpoints use);
    only those answering 2xx are kept, since an endpoint the audit may not read cannot be timed.
    """
    if ctx.adapter is None or limit <= 0:
        return []
    paths = {e.path for e in known if e.path}
    account = next((e.account for e in known if e.account), None)
    found: list[Endpoint] = []
    for op in (o for o in ctx.adapter.discover().operations if o.described):
        if len(found) >= limit:
            break
        path = op.path or ""
        if op.method != "GET" or not path or op.params or path in paths or _SIDE_EFFECT.search(path):
            continue
        paths.add(path)
        ctx.check_cancelled()
        try:
            ok = ctx.target.request("GET", path, account=account).ok
        except BudgetExceeded:
            break
        if ok:
            found.append(Endpoint(name=f"GET {path}", path=path, account=account))
    return found


def histogram(values: list[float], bins: int) -> dict[str, list[float]]:
    """Equal-width histogram of the samples (edges in ms, len(edges) = len(counts) + 1)."""
    import numpy as np

    counts, edges = np.histogram(values, bins=min(bins, max(1, len(set(values)))))
    return {"edges": [round(float(e), 3) for e in edges], "counts": [int(c) for c in counts]}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")[:60] or "endpoint"


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [LatencyProbe]


@hookimpl
def crm_audit_register_report_sections() -> list[ReportSection]:
    """The latency section of the HTML report (its view and template in ``report.py``, read when a report is drawn)."""
    from .report import SECTION

    return [SECTION]


@hookimpl
def crm_audit_register_checks() -> list[CheckSpec]:
    """This probe's check catalogue: every ``checks/*.yaml`` beside this module."""
    return load_checks(__file__)
