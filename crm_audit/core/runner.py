"""Selects and runs probes, isolates their failures, scores, gates and writes the result.

One probe that raises or hangs becomes a result with status ``error`` and a reason; the
audit goes on. Ctrl-C stops cleanly: cleanups run and a partial result marked incomplete
is still written.

Schedule (docs/plugins.md#schedule): probes that measure no time (``Probe.quiet_target``
False) run first, side by side, each in its own ``run_one``; among them, probes that write
start only once the read-only ones have finished, so data figures never include the audit's
own records. Then every probe that measures time runs alone, in the selection order. The
rate limit and request budget are the shared Target's, so they hold globally; each probe
sees the Target through a ``ProbeTarget`` that counts its own requests. Results keep the
selection order; the phases are recorded in ``AuditResult.schedule``.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from crm_audit import __version__
from crm_audit.core.adapter import Adapter
from crm_audit.core.artifacts import artifacts_misfit
from crm_audit.core.catalogue import apply_catalogue, registry_catalogue
from crm_audit.core.errors import UsageError, first_error
from crm_audit.core.logs import ProbeLog
from crm_audit.core.model import AuditResult, ProbeResult, SchedulePhase, TargetSummary
from crm_audit.core.plugins import Registry
from crm_audit.core.probe import Probe, ProbeContext, ProbeSkipped
from crm_audit.core.profile import Profile, ProfileError
from crm_audit.core.target import BudgetExceeded, Target, TargetError
from crm_audit.core.verdict import finalize


def new_run_id() -> str:
    """A sortable, unique run id such as 20261123T161500Z-3f9a1c."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{secrets.token_hex(3)}"


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def select_probes(registry: Registry, profile: Profile, only: list[str] | None = None,
                  skip: list[str] | None = None) -> list[type[Probe]]:
    """The probes to run, in a stable order; unknown names are a usage error."""
    known = registry.probes
    for name in (only or []) + (skip or []) + (profile.probes or []):
        if name not in known:
            raise UsageError(f"unknown probe {name!r}; known probes: {', '.join(sorted(known))}")
    ids = list(only) if only else (list(profile.probes) if profile.probes else sorted(known))
    return [known[i] for i in ids if i not in set(skip or [])]


def probe_options(probe: type[Probe], profile: Profile) -> Any:
    """Validate ``plugins.<probe id>`` with the probe's options model, against the profile.

    Raises :class:`crm_audit.core.options.OptionErrors` listing every problem, one line each
    naming its key (``plugins.<id>.<key>``).
    """
    from crm_audit.core.options import OptionErrors, option_errors, validate_options

    raw = profile.plugins.get(probe.id, {}) or {}
    try:
        return validate_options(probe.options_model, raw, profile)
    except ValidationError as exc:
        where = f"{profile.source_path}: " if profile.source_path else ""
        raise OptionErrors([f"{where}plugins.{probe.id}.{key}: {msg}" for key, msg in option_errors(exc)]) from None


def check_plugin_sections(registry: Registry, profile: Profile) -> None:
    """Every ``plugins.<id>`` section names a known probe and passes its options model.

    Raises :class:`crm_audit.core.options.OptionErrors` with every problem of every section.
    """
    from crm_audit.core.options import OptionErrors

    lines: list[str] = []
    where = f"{profile.source_path}: " if profile.source_path else ""
    for pid in profile.plugins:
        if pid not in registry.probes:
            lines.append(f"{where}plugins.{pid}: no probe named {pid!r} (known: {', '.join(sorted(registry.probes))})")
            continue
        try:
            probe_options(registry.probes[pid], profile)
        except OptionErrors as exc:
            lines += exc.lines
    if lines:
        raise OptionErrors(lines)


def make_adapter(registry: Registry, profile: Profile, target: Target) -> Adapter | None:
    kind = str(profile.adapter.get("type", "rest"))
    cls = registry.adapters.get(kind)
    if cls is None:
        raise ProfileError(f"adapter.type: no adapter named {kind!r} (known: {', '.join(sorted(registry.adapters))})")
    try:
        return cls(profile.adapter, target)
    except ValidationError as exc:
        raise ProfileError(f"{profile.source_path or '<profile>'}: {first_error(exc, 'adapter')}") from None


@dataclass
class RunOptions:
    only: list[str] | None = None
    skip: list[str] | None = None
    allow_writes: bool | None = None
    allow_disruptive: bool | None = None
    workdir: Path | None = None
    progress: Callable[[str, str, ProbeResult | None], None] = lambda stage, probe, result: None
    cancel: threading.Event = field(default_factory=threading.Event)
    run_id: str = field(default_factory=new_run_id)
    hierarchy: str | None = None


def run_audit(profile: Profile, registry: Registry, opts: RunOptions | None = None) -> AuditResult:
    """Run the selected probes against the profile's target and return the scored result."""
    opts = opts or RunOptions()
    probes = select_probes(registry, profile, opts.only, opts.skip)
    check_plugin_sections(registry, profile)
    options = {p.id: probe_options(p, profile) for p in probes}
    catalogue = registry_catalogue(registry)
    hierarchy = _load_hierarchy(profile, registry, opts.hierarchy)
    evidence = _load_evidence(profile) if hierarchy is not None else None
    target = Target(profile, auth_methods=registry.auth_methods)
    adapter = make_adapter(registry, profile, target)
    started, t0 = utcnow(), time.perf_counter()
    target.check_reachable()
    warnings: list[str] = list(target.warnings)
    interrupted: str | None = None
    try:
        preflight_logins(target, profile)
    except TargetError as exc:  # the target answers but does not let the audit in: a result says so
        interrupted = f"could not start: {exc}"
    observe(warnings, "crm_audit_audit_started", registry.hook.crm_audit_audit_started,
            run_id=opts.run_id, profile=profile, probe_ids=[p.id for p in probes])
    workdir = opts.workdir or Path(os.environ.get("TMPDIR", "/tmp"))
    results: dict[str, ProbeResult] = {}
    schedule: list[SchedulePhase] = []
    contexts: list[ProbeContext] = []
    report_lock = threading.Lock()

    def context(probe_cls: type[Probe]) -> ProbeContext:
        view = ProbeTarget(target)  # shared limits, the probe's own request count
        ctx = ProbeContext(
            run_id=opts.run_id, profile=profile, target=view,
            adapter=make_adapter(registry, profile, view) if adapter is not None else None,
            options=options[probe_cls.id],
            allow_writes=profile.allow.writes if opts.allow_writes is None else opts.allow_writes,
            allow_disruptive=profile.allow.disruptive if opts.allow_disruptive is None else opts.allow_disruptive,
            workdir=workdir, cancel=threading.Event(),
            log=ProbeLog(probe_cls.id, view.redactor.redact),  # logger crm_audit.probe.<id>, redacted
        )
        contexts.append(ctx)
        return ctx

    def started_probe(probe_cls: type[Probe]) -> None:
        with report_lock:
            opts.progress("start", probe_cls.id, None)

    declared = {p.id: p.artifacts_model for p in probes}

    def finished_probe(result: ProbeResult) -> None:
        with report_lock:  # progress and observer hooks never run twice at once
            results[result.probe] = result
            misfit = artifacts_misfit(result.probe, declared.get(result.probe), result.artifacts)
            if misfit:
                warnings.append(misfit)
            opts.progress("done", result.probe, result)
            observe(warnings, "crm_audit_probe_finished", registry.hook.crm_audit_probe_finished,
                    run_id=opts.run_id, result=result)

    for mode, group in plan_schedule(probes):
        if interrupted or opts.cancel.is_set():
            interrupted = interrupted or "interrupted"
            break
        p0 = time.perf_counter()
        jobs = [(probe_cls, context(probe_cls)) for probe_cls in group]
        if mode == "alone":
            (probe_cls, ctx), = jobs
            started_probe(probe_cls)
            result, was_interrupted = run_one(probe_cls, ctx)
            finished_probe(result)
        else:
            was_interrupted = run_side_by_side(jobs, started_probe, finished_probe)
        schedule.append(SchedulePhase(mode=mode, probes=[c.id for c in group if c.id in results],
                                      start_s=round(p0 - t0, 3), duration_s=round(time.perf_counter() - p0, 3)))
        if was_interrupted:
            interrupted = "interrupted by the user (Ctrl-C)"
            break
    for late in contexts:  # cleanups a stopped probe registered after its own cleanup pass
        late.run_cleanups()
    target.close()
    audit = AuditResult(
        tool={"name": "crm-audit", "version": __version__},
        plugins=registry.plugin_versions(),
        run_id=opts.run_id,
        target=TargetSummary(name=profile.name, base_url=profile.target.base_url, scope=profile.target.scope),
        profile_digest=profile.digest,
        started=started,
        finished=utcnow(),
        duration_s=round(time.perf_counter() - t0, 3),
        complete=interrupted is None,
        incomplete_reason=interrupted,
        probes=[results[p.id] for p in probes if p.id in results],
        schedule=schedule,
    )
    audit = apply_catalogue(audit, catalogue)  # catalogue severities count in the verdict
    audit = redact_result(apply_catalogue(finalize(audit, hierarchy, evidence, profile.verdict), catalogue), target)
    observe(warnings, "crm_audit_audit_finished", registry.hook.crm_audit_audit_finished, result=audit)
    return audit.model_copy(update={"warnings": list(audit.warnings) + [target.redactor.redact(w) for w in warnings]})


def observe(warnings: list[str], name: str, hook: Callable[..., Any], **kwargs: Any) -> None:
    """Call an observer hook; a failing observer becomes a warning in the result, never a lost audit."""
    try:
        hook(**kwargs)
    except Exception as exc:  # noqa: BLE001 - observers must not break the audit
        warnings.append(f"observer hook {name} failed: {type(exc).__name__}: {exc}"[:500])


def preflight_logins(target: Target, profile: Profile) -> None:
    """Log every account in once (any auth method), so wrong credentials are found before any probe runs.

    The dedicated lockout account is left alone: its password is the lockout check's to try.
    """
    for acct in profile.accounts:
        if acct.auth.method != "none" and acct.purpose != "lockout":
            target.credentials(acct)


def run_one(probe_cls: type[Probe], ctx: ProbeContext,
            interrupt: threading.Event | None = None) -> tuple[ProbeResult, bool]:
    """Run one probe in a worker thread with its timeout; never raises.

    Ctrl-C reaches it as KeyboardInterrupt in the main thread or, when it runs beside other
    probes in a thread of its own, as ``interrupt`` set by the main thread.

    The runner fills what it knows, whatever the probe returned: the result's ``probe``,
    ``title``, ``version``, ``started``, ``duration_s`` and ``requests``, and every finding's
    ``probe``.
    """
    box: dict[str, Any] = {}
    started = utcnow()
    t0 = time.perf_counter()
    before = ctx.target.requests_made

    hard_stop = threading.Event()

    def work() -> None:
        ctx.target.bind_cancel(hard_stop)  # a probe still running after its grace period cannot send
        try:
            box["result"] = probe_cls().run(ctx)
        except BaseException as exc:  # noqa: BLE001 - isolate every failure
            box["error"] = exc

    th = threading.Thread(target=work, name=f"probe-{probe_cls.id}", daemon=True)
    th.start()
    interrupted = False
    deadline = t0 + probe_cls.timeout_s
    try:
        while th.is_alive() and time.perf_counter() < deadline:
            th.join(0.2)
            if interrupt is not None and interrupt.is_set() and th.is_alive():
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
    timed_out = th.is_alive() and not interrupted
    if interrupted or timed_out:
        ctx.cancel.set()  # asks the probe to stop; its own cleanup may still send requests for a while
        _join_shielded(th, 15 if interrupted else 5)
        if th.is_alive():
            hard_stop.set()
    cleanup_failures = ctx.run_cleanups()
    meta = dict(probe=probe_cls.id, title=probe_cls.title, version=probe_cls.version, started=started,
                duration_s=round(time.perf_counter() - t0, 3), requests=ctx.target.requests_made - before)
    res: ProbeResult
    if interrupted:
        partial = box.get("result")
        res = (partial or ProbeResult(probe=probe_cls.id)).model_copy(
            update={**meta, "status": "incomplete", "reason": "interrupted (Ctrl-C)"})
    elif timed_out:
        res = ProbeResult(**meta, status="error", reason=f"timed out after {probe_cls.timeout_s:g} s")
    elif "error" in box:
        exc = box["error"]
        if isinstance(exc, ProbeSkipped):
            res = ProbeResult(**meta, status="skipped", reason=str(exc) or "not applicable")
        elif isinstance(exc, KeyboardInterrupt):
            res = ProbeResult(**meta, status="incomplete", reason="interrupted")
            interrupted = True
        elif isinstance(exc, (BudgetExceeded, TargetError)):
            res = ProbeResult(**meta, status="error", reason=ctx.target.redactor.redact(str(exc)))
        else:
            reason = f"{type(exc).__name__}: {exc}"
            res = ProbeResult(**meta, status="error", reason=ctx.target.redactor.redact(reason))
    else:
        got = box.get("result")
        if not isinstance(got, ProbeResult):
            res = ProbeResult(**meta, status="error", reason=f"probe returned {type(got).__name__}, not ProbeResult")
        else:
            res = got.model_copy(update=meta)
    if any(f.probe != probe_cls.id for f in res.findings):
        res = res.model_copy(update={"findings": [f.model_copy(update={"probe": probe_cls.id}) for f in res.findings]})
    if cleanup_failures:
        note = ctx.target.redactor.redact("cleanup failed: " + "; ".join(cleanup_failures))
        res = res.model_copy(update={"reason": ((res.reason + "; ") if res.reason else "") + note})
    return res, interrupted


def plan_schedule(probes: list[type[Probe]]) -> list[tuple[Literal["concurrent", "alone"], list[type[Probe]]]]:
    """The phases: every probe with ``quiet_target`` False side by side, then each other probe alone."""
    side = [p for p in probes if not p.quiet_target]
    phases: list[tuple[Literal["concurrent", "alone"], list[type[Probe]]]] = [("concurrent" if len(side) > 1 else "alone", side)] if side else []
    return phases + [("alone", [p]) for p in probes if p.quiet_target]


def run_side_by_side(jobs: list[tuple[type[Probe], ProbeContext]], started: Callable[[type[Probe]], None],
                     finished: Callable[[ProbeResult], None]) -> bool:
    """Run the probes at once, each through ``run_one`` in its own thread: first the read-only
    ones, then those that write. Returns True when Ctrl-C interrupted the phase."""
    interrupt = threading.Event()
    stopped: list[bool] = []

    def one(probe_cls: type[Probe], ctx: ProbeContext, done: threading.Event) -> None:
        try:
            started(probe_cls)
            result, was_interrupted = run_one(probe_cls, ctx, interrupt)
            stopped.append(was_interrupted)
            finished(result)
        finally:
            done.set()

    for wave in ([j for j in jobs if not j[0].writes], [j for j in jobs if j[0].writes]):
        if interrupt.is_set() or not wave:
            continue
        done = [threading.Event() for _ in wave]
        for (probe_cls, ctx), ev in zip(wave, done):
            threading.Thread(target=one, args=(probe_cls, ctx, ev), name=f"side-{probe_cls.id}", daemon=True).start()
        for ev in done:  # an Event, not Thread.join: a Ctrl-C inside join() can mark a running thread stopped
            while not ev.is_set():
                try:
                    ev.wait(0.2)
                except KeyboardInterrupt:
                    interrupt.set()  # each run_one stops its probe, runs its cleanups, keeps the partial result
    return interrupt.is_set() or any(stopped)


class ProbeTarget(Target):
    """One probe's view of the audit's Target: the same sessions, tokens, scope, rate limiter and
    request budget (shared, so they hold for all probes together), but its own request count.

    Every attribute but the two below is read from and written to the shared Target.
    """

    _OWN = frozenset({"_shared", "_own"})
    # set with object.__setattr__ in __init__ (annotations only: no class attributes)
    _shared: Target
    _own: int

    def __init__(self, shared: Target) -> None:  # builds no second client: all state is the shared one's
        object.__setattr__(self, "_shared", shared)
        object.__setattr__(self, "_own", 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._shared, name, value)

    @property
    def requests_made(self) -> int:
        return self._own

    @property
    def budget_left(self) -> int:
        return self._shared.budget_left

    def _spend(self) -> None:
        self._shared._spend()
        with self._count_lock:
            self._own += 1

    def charge(self, n: int) -> None:
        self._shared.charge(n)
        with self._count_lock:
            self._own += max(0, int(n))


def _join_shielded(th: threading.Thread, seconds: float) -> None:
    """Wait for a stopping probe thread; a further Ctrl-C must not skip cleanups and the partial result."""
    deadline = time.perf_counter() + seconds
    while th.is_alive() and time.perf_counter() < deadline:
        try:
            th.join(0.2)
        except KeyboardInterrupt:
            continue


def redact_result(result: AuditResult, target: Target) -> AuditResult:
    """A last pass over everything kept, so no secret reaches a report or the JSON."""
    data = target.redactor.redact_obj(result.model_dump(mode="json"))
    return AuditResult.model_validate(data)


def _load_hierarchy(profile: Profile, registry: Registry, override: str | None) -> Any:
    """The hierarchy to score against, or None when the profile says ``hierarchy: none``."""
    if (override or profile.hierarchy) == "none":
        return None
    try:
        from crm_audit.scoring import HierarchyError, load_hierarchy
    except ImportError:  # scoring not installed in this build
        return None
    try:
        return load_hierarchy(override or profile.hierarchy, known_probes=set(registry.probes),
                              indicators=plugin_indicators(registry))
    except HierarchyError as exc:
        raise ProfileError(f"hierarchy: {exc}") from None


def plugin_indicators(registry: Registry) -> list[Any]:
    """The indicators plugins declare (IndicatorSpec), merged into whichever hierarchy is scored."""
    from crm_audit.scoring import HierarchyError
    from crm_audit.scoring.extend import collect_indicators

    try:
        return collect_indicators(registry.hook.crm_audit_register_indicators)
    except HierarchyError as exc:
        raise ProfileError(f"hierarchy: {exc}") from None


def _load_evidence(profile: Profile) -> Any:
    """The profile's evidence file, read before anything is contacted (errors are profile errors)."""
    if not profile.evidence:
        return None
    from crm_audit.scoring import EvidenceError, load_evidence

    try:
        return load_evidence(profile.evidence)
    except EvidenceError as exc:
        raise ProfileError(f"evidence: {exc}") from None


