"""The ``flows`` probe: ordered steps with references between them, timed per step and per run.

Step references: ``save_as: lead`` keeps the record a step returned; a later step with
``ref: lead`` acts on that record; strings in ``body`` and ``path`` may use ``{lead.id}``
(any field of a saved record). Completion rate = completed runs / runs; completion time is
the wall time of a completed run (perf_counter around its steps).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.core.adapter import Adapter
from crm_audit.core.errors import CrmAuditError
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
from crm_audit.core.profile import Flow, FlowStep
from crm_audit.core.target import BudgetExceeded

from .artifacts import FlowsArtifacts

_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_]+)\}")
WRITE_ACTIONS = {"create", "update", "delete"}


class FlowsOptions(BaseModel):
    """Options under ``plugins.flows``."""

    model_config = ConfigDict(extra="forbid")
    runs: int | None = Field(None, ge=1, le=1000, description="runs per flow; default: each flow's own runs")
    default_slo_s: float = Field(5.0, gt=0, description="SLO of flows that name none")
    only: list[str] = Field(default_factory=list, description="names of the flows to run (default: all)")


class StepFailed(CrmAuditError):
    def __init__(self, step: FlowStep, message: str, evidence: Evidence | None = None) -> None:
        super().__init__(message)
        self.step, self.evidence = step, evidence


@dataclass
class RunOutcome:
    completed: bool
    total_s: float
    step_s: dict[str, float] = field(default_factory=dict)
    failure: StepFailed | None = None


class FlowsProbe(Probe):
    id = "flows"
    title = "Business flows"
    version = "0.1.0"
    category = "performance"
    indicators = ("perf.flow_completion_time", "perf.flow_completion_rate")
    writes = True
    options_model = FlowsOptions
    artifacts_model = FlowsArtifacts
    timeout_s = 900.0

    def run(self, ctx: ProbeContext) -> ProbeResult:
        opts: FlowsOptions = ctx.options
        flows = [f for f in ctx.profile.flows if not opts.only or f.name in opts.only]
        if not flows:
            raise ProbeSkipped("the profile names no flows (flows:)")
        if not ctx.allow_writes and any(_writes(s) for f in flows for s in f.steps):
            return _not_run(self, "flows create and change records; allow them with allow.writes or --allow-writes",
                            NotAssessed.safety, "run with --allow-writes")
        if ctx.adapter is None:
            raise ProbeSkipped("no adapter configured")
        measurements: list[Measurement] = []
        findings: list[Finding] = []
        rows: list[dict[str, Any]] = []
        cut = False  # the request budget ran out: the runs so far are all there is
        for flow in flows:
            runs = opts.runs or flow.runs
            slo = flow.slo_s or opts.default_slo_s
            outcomes: list[RunOutcome] = []
            for _ in range(0 if cut else runs):
                ctx.check_cancelled()
                try:
                    outcomes.append(run_flow(ctx, flow))
                except BudgetExceeded:
                    cut = True
                    break
            if not outcomes:
                findings.append(_flow_not_run(flow, slo))
                continue
            m, f, row = _summarise(flow, outcomes, slo)
            if len(outcomes) < runs:
                m = [x.model_copy(update={"bounded_by": "request_budget",
                                          "details": {**x.details, "runs_planned": runs}}) for x in m]
                row["runs_planned"] = runs
            measurements += m
            findings += f
            rows.append(row)
        return ProbeResult(probe=self.id, measurements=measurements, findings=findings, artifacts={"flows": rows})


def _flow_not_run(flow: Flow, slo: float) -> Finding:
    """A flow the request budget left no room for: its completion is not assessed."""
    slug = "".join(c if c.isalnum() else "_" for c in flow.name.lower()).strip("_")[:60] or "flow"
    return Finding(id=f"flows.incomplete.{slug}", title=f"{flow.name}: not run, the request budget ran out",
                   severity=Severity.medium, status=Status.skipped, indicator="perf.flow_completion_rate",
                   not_assessed=NotAssessed.audit_limit, hint="raise target.request_budget or lower plugins.flows.runs")


def _not_run(probe: Probe, reason: str, why: NotAssessed, hint: str) -> ProbeResult:
    """The probe did not run: skipped, with one not-assessed finding per indicator saying what would run it."""
    findings = [Finding(id=f"flows.{ind.split('.', 1)[1]}", title=f"{ind} not assessed: {reason}", indicator=ind,
                        status=Status.skipped, not_assessed=why, hint=hint) for ind in probe.indicators]
    return ProbeResult(probe=probe.id, status="skipped", reason=reason, findings=findings)


def _writes(step: FlowStep) -> bool:
    return step.action in WRITE_ACTIONS or (step.action == "request" and (step.method or "GET").upper() != "GET")


def run_flow(ctx: ProbeContext, flow: Flow) -> RunOutcome:
    """Act out one run of the flow; stops at the first failed step."""
    saved: dict[str, tuple[str | None, dict[str, Any], bool]] = {}
    step_s: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        for step in flow.steps:
            ctx.check_cancelled()
            ts = time.perf_counter()
            _do_step(ctx, flow, step, saved)
            step_s[step.name] = time.perf_counter() - ts
    except StepFailed as exc:
        return RunOutcome(False, time.perf_counter() - t0, step_s, exc)
    return RunOutcome(True, time.perf_counter() - t0, step_s)


def _do_step(ctx: ProbeContext, flow: Flow, step: FlowStep, saved: dict[str, tuple[str | None, dict[str, Any], bool]]) -> None:
    adapter, account = ctx.adapter, flow.account
    assert adapter is not None  # FlowsProbe.run skips the probe without an adapter before any flow runs
    resource = step.resource
    record_id = None
    if step.ref:
        if step.ref not in saved:
            raise StepFailed(step, f"step {step.name!r} refers to {step.ref!r}, which no earlier step saved")
        ref_resource, ref_record, created = saved[step.ref]
        if step.action in ("update", "delete") and not created:
            raise StepFailed(step, f"step {step.name!r} would change {step.ref!r}, which this flow did not create")
        resource = resource or ref_resource
        record_id = adapter.record_id(ref_record)
    body = _fill(step.body, saved) if step.body else None
    record: dict[str, Any] | None = None
    if step.action in ("create", "read", "update", "delete", "list"):
        if not resource:
            raise StepFailed(step, f"step {step.name!r} names no resource")
        if step.action == "create":
            record, ex = adapter.create(resource, account, ctx.tag, overrides=body)
            if record is not None and adapter.record_id(record) is not None:
                rid = adapter.record_id(record)
                ctx.defer(f"delete {resource} {rid} (flow {flow.name})",
                          partial(_delete, adapter, resource, rid, account))
        elif step.action == "read":
            record, ex = adapter.read(resource, _need(step, record_id), account)
        elif step.action == "update":
            record, ex = adapter.update(resource, _need(step, record_id), account, body)
        elif step.action == "delete":
            ex = adapter.delete(resource, _need(step, record_id), account)
        else:  # list
            items, ex = adapter.list(resource, account, limit=10)
    else:  # request
        path = _fill(step.path or "", saved)
        ex = ctx.target.request(step.method or "GET", path, account=account, json=body)
        data = ex.json_or_none()
        record = data if isinstance(data, dict) else None
    if not ex.ok or (step.action == "create" and record is None):
        raise StepFailed(step, f"{step.name}: {ex.status or ex.error}",
                         ex.evidence(expected="2xx", observed=str(ex.status or ex.error)))
    if step.save_as and record is not None:
        saved[step.save_as] = (resource, record, step.action == "create")


def _delete(adapter: Adapter, resource: str, record_id: Any, account: str | None) -> None:
    ex = adapter.delete(resource, record_id, account)
    if not (ex.ok or ex.status == 404):
        raise RuntimeError(f"DELETE {resource}/{record_id} answered {ex.status or ex.error}")


def _need(step: FlowStep, record_id: Any) -> Any:
    if record_id is None:
        raise StepFailed(step, f"step {step.name!r} needs ref: the record to act on")
    return record_id


def _fill(value: Any, saved: dict[str, tuple[str | None, dict[str, Any], bool]]) -> Any:
    """Replace {name.field} with the saved record's field (whole-string refs keep their type)."""
    if isinstance(value, str):
        m = _REF.fullmatch(value)
        if m and m.group(1) in saved:
            return saved[m.group(1)][1].get(m.group(2))
        return _REF.sub(lambda k: str(saved[k.group(1)][1].get(k.group(2))) if k.group(1) in saved else k.group(0),
                        value)
    if isinstance(value, dict):
        return {k: _fill(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, saved) for v in value]
    return value


def _summarise(flow: Flow, outcomes: list[RunOutcome], slo: float) -> tuple[list[Measurement], list[Finding], dict[str, Any]]:
    done = [o for o in outcomes if o.completed]
    rate = len(done) / len(outcomes)
    times = [o.total_s for o in done]
    summ = SampleSummary.of(times) if times else None
    step_rows = []
    for step in flow.steps:
        vals = [o.step_s[step.name] * 1000 for o in outcomes if step.name in o.step_s]
        fails = sum(1 for o in outcomes if o.failure and o.failure.step.name == step.name)
        step_rows.append({"name": step.name, "action": step.action,
                          "summary_ms": SampleSummary.of(vals).model_dump() if vals else None, "failures": fails})
    ms = [Measurement(indicator="perf.flow_completion_rate", value=round(rate, 6), unit="ratio", expected=1.0,
                      better="higher", label=flow.name, details={"runs": len(outcomes), "completed": len(done)})]
    if summ:
        ms.append(Measurement(indicator="perf.flow_completion_time", value=round(summ.p95, 4), unit="s",
                              expected=slo, better="lower", label=flow.name, samples=summ,
                              raw_samples=[round(t, 4) for t in times],
                              details={"statistic": "p95 of completed runs",
                                       "steps_ms": {r["name"]: r["summary_ms"] for r in step_rows}}))
    findings: list[Finding] = []
    slug = "".join(c if c.isalnum() else "_" for c in flow.name.lower()).strip("_")[:60] or "flow"
    failed = [o for o in outcomes if not o.completed]
    if failed:
        first = failed[0].failure
        assert first is not None  # run_flow sets the failure on every run that did not complete
        findings.append(Finding(
            id=f"flows.incomplete.{slug}", severity=Severity.high if not done else Severity.medium,
            status=Status.failed, indicator="perf.flow_completion_rate",
            title=f"{flow.name}: {len(failed)} of {len(outcomes)} runs failed (first at step {first.step.name!r})",
            evidence=[first.evidence] if first and first.evidence else [],
        ))
    if summ and summ.p95 > slo:
        findings.append(Finding(
            id=f"flows.slo_exceeded.{slug}", severity=Severity.medium, status=Status.failed,
            indicator="perf.flow_completion_time",
            title=f"{flow.name}: p95 completion {summ.p95:.2f} s over its SLO of {slo:g} s",
        ))
    row = {"name": flow.name, "account": flow.account, "runs": len(outcomes), "completed": len(done),
           "completion_rate": rate, "slo_s": slo, "completion_s": summ.model_dump() if summ else None,
           "steps": step_rows}
    return ms, findings, row
