"""The ``load`` probe: baseline, step load until the SLO breaks, sustained phase, recovery.

Bounds (all hold together; the probe's own counters are reported in the
``perf.max_concurrency`` measurement's ``details.limits``):

* users never exceed ``max_users`` (above 32 only with allow.disruptive);
* the load phase ends within ``max_total_s`` (the shape also stops itself, the master has a
  ``--run-time`` cap and the processes are killed if they outlive it);
* requests: the load phase may send at most ``min(max_requests, target budget left −
  reserve)``, where ``reserve`` keeps room for the baseline and recovery requests that go
  through the Target; the master splits that budget into per-worker quotas, so it is a hard cap.
  Load requests bypass the Target, so they are charged to it afterwards via ``Target.charge(n)``
  when the core provides it, and always reported as ``limits.requests``.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from crm_audit.core.model import Finding, Measurement, NotAssessed, ProbeResult, Severity, Status
from crm_audit.core.probe import Probe, ProbeContext, ProbeSkipped

from .artifacts import LoadArtifacts
from .cluster import Cluster, LoadRunError
from .mix import LoadTask
from .options import SAFE_MAX_USERS, LoadOptions
from .prepare import prepare
from .stats import capacity_bound, ladder, plateaued, scalability, step_stats, sustained_stats, window

RECOVERY_INTERVAL_S = 0.2


class LoadProbe(Probe):
    id = "load"
    title = "Behaviour under concurrent load"
    version = "0.1.0"
    category = "performance"
    indicators = ("perf.max_concurrency", "perf.throughput_at_slo", "perf.stability",
                  "perf.recovery_time", "perf.scalability")
    options_model = LoadOptions
    artifacts_model = LoadArtifacts
    timeout_s = 3700.0
    #: measures latency and throughput: runs alone, with no other probe sending
    quiet_target = True

    def run(self, ctx: ProbeContext) -> ProbeResult:
        opts: LoadOptions = ctx.options
        from .mix import task_mix

        tasks = task_mix(ctx.profile, opts.tasks)
        if not tasks:
            raise ProbeSkipped("no load tasks: the profile has no GET endpoints and plugins.load.tasks is empty")
        if opts.max_users > SAFE_MAX_USERS and not ctx.allow_disruptive:
            raise ProbeSkipped(f"max_users {opts.max_users} > {SAFE_MAX_USERS} is disruptive; "
                               "allow it with allow.disruptive or --allow-disruptive")
        base_url = ctx.profile.target.base_url
        if not ctx.target.in_scope(base_url):
            raise ProbeSkipped(f"{base_url} is outside the audit's scope")
        if any(t.method.upper() not in ("GET", "HEAD") for t in tasks) and not ctx.allow_writes:
            raise ProbeSkipped("the task mix writes (non-GET methods) and writes are not allowed (allow.writes)")
        max_rps = opts.max_rps or ctx.profile.target.rate_limit_rps
        if max_rps > ctx.profile.target.rate_limit_rps and not ctx.allow_disruptive:
            # the rate limit is the ceiling without allow.disruptive: cap, do not skip (the value is then bounded)
            ctx.log(f"load: max_rps {max_rps:g} capped at target.rate_limit_rps "
                    f"{ctx.profile.target.rate_limit_rps:g} (more needs allow.disruptive)")
            max_rps = ctx.profile.target.rate_limit_rps
        slo = opts.slo_p95_ms or _mix_slo(ctx, tasks) or 500.0
        reserve = opts.baseline_samples + 2 + int(opts.recovery_max_s / RECOVERY_INTERVAL_S) + 5
        budget = min(opts.max_requests, ctx.target.budget_left - reserve)
        if budget < 10:
            raise ProbeSkipped(f"request budget too small for a load test ({budget} left after reserve)")

        baseline = _baseline(ctx, tasks[0], opts)
        prep = prepare(ctx.profile, ctx.target, opts, ctx.workdir if ctx.workdir.is_dir() else None)
        ctx.defer("remove load-test files (auth headers)", prep.remove)
        bind_host, _, bind_port = opts.master_bind.rpartition(":")
        local = opts.local_workers if opts.local_workers is not None else max(1, min(os.cpu_count() or 1, 4))
        if local + opts.external_workers == 0:
            raise ProbeSkipped("no Locust workers: local_workers and external_workers are both 0")
        cluster = Cluster(workdir=prep.directory, locustfile=prep.locustfile, headers_file=prep.headers_file,
                          verify=prep.verify, budget=budget, max_rps=max_rps, hard_stop_s=opts.max_total_s, local_workers=local,
                          external_workers=opts.external_workers, bind_host=bind_host, bind_port=int(bind_port))
        ctx.defer("stop Locust processes", cluster.stop)
        ctx.log(f"load: mix {prep.digest}, {local} local + {opts.external_workers} external workers, "
                f"budget {budget} requests, SLO p95 {slo:g} ms")
        try:
            run = _drive(ctx, cluster, opts, slo, budget)
            ctx.target.charge(run["limits"]["requests"])
            # the users have stopped and every row is in; the Locust processes exit while recovery is sampled
            recovery = _recovery(ctx, tasks[0], baseline, run["t_stop"], opts) if run["steps"] else None
        finally:
            cluster.stop()
            prep.remove()
        return _result(self.id, opts, slo, run, baseline, recovery)


#: perf.stability: p95 of the sustained phase's second half / its first half; at most this (docs/performance.md)
STABILITY_MAX_RATIO = 1.2

_BOUND_HINT = {
    "rate_limit": "raise target.rate_limit_rps (or plugins.load.max_rps with --allow-disruptive)",
    "max_users": "raise plugins.load.max_users (above 32 with --allow-disruptive)",
    "time_limit": "raise plugins.load.max_total_s or shorten step_s",
    "request_budget": "raise target.request_budget or plugins.load.max_requests",
    "load_generator": "add Locust workers (local_workers, external_workers) or lower spawn_rate",
}


def _stability_not_assessed(opts: LoadOptions, best: dict[str, Any] | None,
                            sustained: dict[str, Any] | None) -> Finding:
    """Why perf.stability has no value: no sustained phase (and why), or too few answers to compare halves."""
    if sustained is not None:
        why, reason, hint = ("a half of the sustained phase had no successful request", NotAssessed.request_failed,
                             "check the load.sustained_errors finding and the server logs")
    elif opts.sustained_s == 0:
        why, reason, hint = "sustained_s is 0", NotAssessed.not_configured, "set plugins.load.sustained_s above 0"
    elif best is None:
        why, reason, hint = ("no load level met the SLO, so there was none to sustain", NotAssessed.not_applicable,
                             "fix the capacity problem first (load.capacity_below_target)")
    else:
        why, reason, hint = ("the load phase's time or request budget ran out before the sustained phase",
                             NotAssessed.audit_limit, "raise plugins.load.max_total_s / max_requests")
    status = Status.error if reason is NotAssessed.request_failed else Status.skipped
    return Finding(id="load.latency_drift", severity=Severity.low, status=status, indicator="perf.stability",
                   title=f"Stability not assessed: {why}", not_assessed=reason, hint=hint)


def _mix_slo(ctx: ProbeContext, tasks: list[LoadTask]) -> float | None:
    by_name = {e.name: e.slo_p95_ms for e in ctx.profile.endpoints if e.slo_p95_ms}
    slos = [by_name[t.name] for t in tasks if t.name in by_name]
    return max(slos) if slos else None


def _baseline(ctx: ProbeContext, task: Any, opts: LoadOptions) -> dict[str, Any]:
    """Idle latency of the first task, sequential, through the Target (after 2 warm-ups)."""
    ms = []
    for i in range(opts.baseline_samples + 2):
        ctx.check_cancelled()
        ex = ctx.target.request(task.method, task.path, account=task.account, params=task.params or None)
        if i >= 2 and not ex.error and ex.status in task.expect_status:
            ms.append(ex.elapsed_s * 1000)
    if not ms:
        raise ProbeSkipped(f"{task.name} fails even without load; fix it before a load test")
    return {"p50_ms": round(statistics.median(ms), 3), "samples": len(ms), "endpoint": task.name}


def _drive(ctx: ProbeContext, cluster: Cluster, opts: LoadOptions, slo: float, budget: int) -> dict[str, Any]:
    """Run the ladder, then the sustained phase; returns steps, sustained and the counters."""
    plan = ladder(opts.start_users, opts.growth, opts.max_users, opts.steps)
    flush_s = 2 * opts.report_interval_s + 0.3
    sustained_s = 2 * opts.step_s if opts.sustained_s is None else opts.sustained_s
    wall0 = time.monotonic()
    cluster.start(plan[0], max(opts.spawn_rate, 1.0))
    if not cluster.wait_users(plan[0], 75 + plan[0] / opts.spawn_rate):
        raise LoadRunError("Locust workers did not start in time:\n" + cluster.log_tail())
    t_load0 = time.monotonic()
    steps: list[dict[str, Any]] = []
    max_users_requested = plan[0]
    max_users_seen = plan[0]
    stop_reason = "max_users reached"

    def remaining() -> float:
        return opts.max_total_s - (time.monotonic() - t_load0)

    def measure(users: int, length: float) -> tuple[float, float]:
        t0 = time.time()
        end = time.monotonic() + length
        while time.monotonic() < end:
            ctx.check_cancelled()
            if not cluster.alive():
                raise LoadRunError("locust master exited during the test:\n" + cluster.log_tail())
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))
        t1 = time.time()
        time.sleep(flush_s)
        cluster.read_rows()
        return t0, t1

    for i, users in enumerate(plan):
        step_cost = opts.step_s + flush_s + users / opts.spawn_rate + 1.5
        if i > 0:
            if remaining() < step_cost:
                stop_reason = "max_total_s"
                break
            if len(cluster.rows) >= budget:
                stop_reason = "request budget"
                break
            cluster.set_users(users, opts.spawn_rate)
            max_users_requested = max(max_users_requested, users)
            if not cluster.wait_users(users, users / opts.spawn_rate + 5):
                stop_reason = "users did not spawn"
                break
        max_users_seen = max(max_users_seen, int(cluster.status().get("users", 0)))
        length = min(opts.step_s, max(0.5, remaining() - flush_s))
        t0, t1 = measure(users, length)
        st = step_stats(window(cluster.rows, t0, t1), users, t1 - t0, slo, opts.max_error_rate)
        steps.append(st)
        ctx.log(f"load: {users} users: {st['rps']} req/s, p95 {st['p95_ms']} ms, errors {st['error_rate']}")
        if not st["within_slo"]:
            stop_reason = "SLO broken"
            break
        if plateaued(steps, opts.min_step_gain):
            stop_reason = "throughput plateau"
            break
    ok_steps = [s for s in steps if s["within_slo"]]
    best = ok_steps[-1] if ok_steps else None
    sustained = None
    if best and sustained_s > 0 and len(cluster.rows) < budget:
        length = min(sustained_s, remaining() - flush_s - best["users"] / opts.spawn_rate - 2)
        if length >= min(opts.step_s, sustained_s):
            cluster.set_users(best["users"], opts.spawn_rate)
            if cluster.wait_users(best["users"], best["users"] / opts.spawn_rate + 5):
                time.sleep(min(1.0, length / 4))  # let the queue of the overloaded step drain
                t0, t1 = measure(best["users"], length)
                sustained = sustained_stats(window(cluster.rows, t0, t1), best["users"], t0, t1)
    cluster.request_stop()
    if not cluster.wait_rows_final(15.0):  # the users have stopped and the last rows are in
        cluster.stop()
    t_stop = time.time()
    load_s = time.monotonic() - t_load0
    cluster.read_rows()
    status = cluster.status()
    return {
        "steps": steps, "best": best, "sustained": sustained, "t_stop": t_stop,
        "limits": {
            "max_users": opts.max_users, "max_users_requested": max_users_requested,
            "max_users_observed": max_users_seen, "max_total_s": opts.max_total_s,
            "load_s": round(load_s, 3), "wall_s": round(time.monotonic() - wall0, 3),
            "budget": budget, "requests": len(cluster.rows),
            "unmeasured_requests": len(cluster.rows) - sum(s["requests"] for s in steps)
            - (sustained["requests"] if sustained else 0), "workers": status.get("workers"),
            "quota_per_worker": status.get("quota_per_worker"), "max_rps": cluster.max_rps,
            "stop_reason": stop_reason,
        },
    }


def _recovery(ctx: ProbeContext, task: Any, baseline: dict[str, Any], t_stop: float,
              opts: LoadOptions) -> dict[str, Any]:
    """Sample latency after the load until 3 samples in a row are within factor × baseline p50."""
    threshold = max(opts.recovery_factor * baseline["p50_ms"], baseline["p50_ms"] + opts.recovery_floor_ms)
    samples: list[list[float]] = []
    streak_start: float | None = None
    streak = 0
    recovered_at: float | None = None
    while time.time() - t_stop < opts.recovery_max_s:
        ctx.check_cancelled()
        t = time.time()
        ex = ctx.target.request(task.method, task.path, account=task.account, params=task.params or None)
        ms = ex.elapsed_s * 1000
        samples.append([round(t - t_stop, 3), round(ms, 3)])
        if not ex.error and ex.status in task.expect_status and ms <= threshold:
            streak_start = t if streak == 0 else streak_start
            streak += 1
            if streak >= 3:
                recovered_at = streak_start
                break
        else:
            streak = 0
        time.sleep(RECOVERY_INTERVAL_S)
    return {
        "baseline_p50_ms": baseline["p50_ms"], "threshold_ms": round(threshold, 3), "endpoint": task.name,
        "recovered": recovered_at is not None,
        "recovery_s": round(max(0.0, recovered_at - t_stop), 3) if recovered_at is not None else None,
        "samples": samples,
    }


def _result(pid: str, opts: LoadOptions, slo: float, run: dict[str, Any], baseline: dict[str, Any],
            recovery: dict[str, Any] | None) -> ProbeResult:
    steps, best, sustained = run["steps"], run["best"], run["sustained"]
    max_users = best["users"] if best else 0
    limits = run["limits"]
    bound = capacity_bound(steps, limits["stop_reason"], limits.get("max_rps"))
    rate_bound = "rate_limit" if bound == "rate_limit" else None
    why = f"; set by the audit's own {bound.replace('_', ' ')}" if bound else ""
    ms: list[Measurement] = [
        Measurement(indicator="perf.max_concurrency", value=max_users, unit="users", expected=opts.target_users,
                    better="higher", label="maximum sustainable concurrent users at SLO" + why, bounded_by=bound,
                    details={"slo_p95_ms": slo, "limits": limits, "baseline": baseline}),
        # throughput is held back by the rate cap, and by a ladder the audit ended before the SLO broke
        Measurement(indicator="perf.throughput_at_slo", value=best["rps"] if best else 0.0, unit="req/s",
                    better="higher", label=f"throughput at {max_users} users" + why, bounded_by=bound,
                    details={"p95_ms": best["p95_ms"] if best else None, "max_rps": limits.get("max_rps")}),
    ]
    scal = scalability(steps)
    if scal is not None:
        first = steps[0]
        ms.append(Measurement(indicator="perf.scalability", value=scal, unit="req/s/user",
                              expected=round(first["rps"] / first["users"], 3) if first["users"] else None,
                              better="higher", label="throughput gained per added user up to the knee"
                              + ("; set by the audit's own rate limit" if rate_bound else ""),
                              bounded_by=rate_bound))
    if sustained and sustained["drift"] is not None:
        ms.append(Measurement(indicator="perf.stability", value=sustained["drift"], unit="ratio",
                              expected=STABILITY_MAX_RATIO, better="lower",
                              label=f"p95 second half / first half over {sustained['duration_s']:g} s at {max_users} users",
                              details={"error_rate": sustained["error_rate"],
                                       "p95_first_half_ms": sustained["p95_first_half_ms"],
                                       "p95_second_half_ms": sustained["p95_second_half_ms"]}))
    if recovery and recovery["recovered"]:
        ms.append(Measurement(indicator="perf.recovery_time", value=recovery["recovery_s"], unit="s",
                              expected=opts.recovery_slo_s, better="lower", label="back within "
                              f"{opts.recovery_factor:g}× baseline after the load"))
    elif recovery:
        ms.append(Measurement(indicator="perf.recovery_time", value=None, unit="s", expected=opts.recovery_slo_s,
                              label=f"not recovered within {opts.recovery_max_s:g} s"))
    findings: list[Finding] = []
    if max_users < opts.target_users and bound is not None:
        findings.append(Finding(
            id="load.capacity_below_target", severity=Severity.medium, status=Status.skipped,
            indicator="perf.max_concurrency", not_assessed=NotAssessed.audit_limit, hint=_BOUND_HINT[bound],
            title=f"capacity not assessed: the audit's own {bound.replace('_', ' ')} stopped the ladder at "
                  f"{max_users} users within p95 {slo:g} ms; {opts.target_users} expected",
        ))
    elif max_users < opts.target_users:
        findings.append(Finding(
            id="load.capacity_below_target", severity=Severity.medium, status=Status.failed,
            indicator="perf.max_concurrency",
            title=f"sustains {max_users} concurrent users within p95 {slo:g} ms; {opts.target_users} expected",
        ))
    if sustained and sustained["drift"] and sustained["drift"] > STABILITY_MAX_RATIO:
        findings.append(Finding(
            id="load.latency_drift", severity=Severity.low, status=Status.warn, indicator="perf.stability",
            title=f"p95 grew {sustained['drift']:.2f}× during the sustained phase"))
    elif not (sustained and sustained["drift"]):
        findings.append(_stability_not_assessed(opts, best, sustained))
    if sustained and (sustained["error_rate"] or 0) > opts.max_error_rate:
        findings.append(Finding(
            id="load.sustained_errors", severity=Severity.medium, status=Status.failed, indicator="perf.stability",
            title=f"{sustained['error_rate']:.1%} errors at a load the CRM sustained briefly"))
    if recovery and not recovery["recovered"]:
        findings.append(Finding(
            id="load.no_recovery", severity=Severity.high, status=Status.failed, indicator="perf.recovery_time",
            title=f"latency not back within {opts.recovery_factor:g}× baseline {opts.recovery_max_s:g} s after the load"))
    artifact = {"steps": steps, "max_sustainable_users": max_users, "target_users": opts.target_users,
                "slo_p95_ms": slo, "sustained": sustained, "recovery": recovery}
    return ProbeResult(probe=pid, measurements=ms, findings=findings, artifacts=artifact)
