"""Built-in ``latency`` probe: response time of the profile's endpoints against their SLOs.

Written exactly as a third-party plugin would be: a Probe subclass and one hookimpl,
registered through the ``crm_audit`` entry-point group.
"""

from __future__ import annotations

import re

import time

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.hookspecs import hookimpl
from crm_audit.model import Finding, Measurement, NotAssessed, ProbeResult, SampleSummary, Severity, Status
from crm_audit.probe import Probe, ProbeContext, ProbeSkipped
from crm_audit.profile import Endpoint
from crm_audit.target import BudgetExceeded

__version__ = "0.3.0"


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
    indicators = ("perf.response_time_p95", "perf.error_rate")
    options_model = LatencyOptions
    timeout_s = 900.0

    def run(self, ctx: ProbeContext) -> ProbeResult:
        opts: LatencyOptions = ctx.options
        endpoints = list(ctx.profile.endpoints)
        writing = [e.name for e in endpoints if e.method.upper() not in ("GET", "HEAD")]
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
        artifacts: list[dict] = []
        total_req = total_err = 0
        cut = False  # the request budget ran out: later endpoints are not sampled
        for ep in endpoints:
            ctx.check_cancelled()
            slo = ep.slo_p95_ms or opts.default_slo_p95_ms
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
                    details={"method": ep.method, "path": ep.path, "ttfb_p95_ms": row["ttfb"]["p95"] if row["ttfb"] else None,
                             "samples_planned": opts.samples},
                ))
                if summ.p95 > slo:
                    findings.append(Finding(
                        id=f"latency.slo_exceeded.{_slug(ep.name)}", title=f"{ep.name}: p95 {summ.p95:.0f} ms over its SLO of {slo:g} ms",
                        severity=Severity.medium, status=Status.failed, indicator="perf.response_time_p95",
                        remediation="Profile the endpoint (database queries, N+1 loads, missing indexes, pagination) "
                                    "and cache or paginate what it returns.",
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
                    remediation="Check the server logs for these failures; an endpoint that fails while idle will fail more under load.",
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
                   status=Status.skipped if reason is NotAssessed.audit_limit else Status.error,
                   not_assessed=reason, hint=hint)


def _sample(ctx: ProbeContext, ep: Endpoint, opts: LatencyOptions):
    """Warm up, then time ``samples`` requests; returns the artifact row, ms samples, errors, evidence.

    Stops early (fewer samples than planned) when the audit's request budget runs out.
    """
    ms: list[float] = []
    ttfb: list[float] = []
    errors = 0
    excerpt = None
    next_at = 0.0
    try:
        for _ in range(opts.warmup):
            ctx.check_cancelled()
            ctx.target.request(ep.method, ep.path, account=ep.account, params=ep.params or None)
        for _ in range(opts.samples):
            ctx.check_cancelled()
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            next_at = time.monotonic() + opts.interval_ms / 1000.0
            ex = ctx.target.request(ep.method, ep.path, account=ep.account, params=ep.params or None)
            if ex.error or ex.status not in ep.expect_status:
                errors += 1
                if excerpt is None:
                    excerpt = ex.evidence(expected=f"status in {ep.expect_status}", observed=str(ex.status or ex.error))
                continue
            ms.append(ex.elapsed_s * 1000.0)
            if ex.ttfb_s is not None:
                ttfb.append(ex.ttfb_s * 1000.0)
    except BudgetExceeded:
        pass  # the caller sees fewer samples than planned and marks the values bounded
    summ = SampleSummary.of(ms).model_dump() if ms else None
    row = {
        "name": ep.name, "method": ep.method, "path": ep.path, "summary": summ,
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
    paths = {e.path for e in known}
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
