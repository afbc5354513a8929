"""Side-by-side probes: the rate limit and request budget hold for all of them together, counted
on the server; writers wait for readers; probes that measure time run alone; Ctrl-C stops all."""

from __future__ import annotations

import _thread
import threading
import time
from typing import Any

import pytest
from local_http import LocalServer

import crm_audit.protocols.rest
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import ProbeResult
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.probe import Probe, ProbeContext
from crm_audit.core.profile import parse_profile
from crm_audit.core.runner import RunOptions, plan_schedule, run_audit
from crm_audit.core.target import BudgetExceeded

#: requests each hammering probe tries to send
TRIES = 20
CLEANED: list[str] = []


class Hits:
    """What the server saw: (monotonic time, probe id from the X-Probe header) per request."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def route(self, h: Any) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.rows.append((time.monotonic(), h.headers.get("X-Probe") or "-"))
        return 200, {"Content-Type": "application/json"}, b"{}"

    def of(self, probe: str) -> list[float]:
        return [t for t, p in self.rows if p == probe]


def hammer(probe: Probe, ctx: ProbeContext) -> ProbeResult:
    """Send TRIES requests as fast as the Target lets this probe (stops when the budget is used up)."""
    sent = 0
    try:
        for _ in range(TRIES):
            ctx.check_cancelled()
            ctx.target.request("GET", "/hit", headers={"X-Probe": probe.id})
            sent += 1
    except BudgetExceeded:
        pass
    return ProbeResult(probe=probe.id, artifacts={"sent": sent})


class SideA(Probe):
    id, title, quiet_target = "side_a", "side a", False
    run = hammer


class SideB(Probe):
    id, title, quiet_target = "side_b", "side b", False
    run = hammer


class SideWriter(Probe):
    id, title, quiet_target, writes = "side_writer", "writes, times nothing", False, True
    run = hammer


class Timed(Probe):
    id, title = "timed", "measures time (quiet_target defaults to True)"
    run = hammer


class Waiter(Probe):
    id, title, quiet_target = "side_waiter", "waits for Ctrl-C", False

    def run(self, ctx: ProbeContext) -> ProbeResult:
        ctx.defer("waiter cleanup", lambda: CLEANED.append(self.id))
        while not ctx.cancel.is_set():
            time.sleep(0.02)
        return ProbeResult(probe=self.id)


class Interrupter(Probe):
    id, title, quiet_target = "side_interrupter", "presses Ctrl-C", False

    def run(self, ctx: ProbeContext) -> ProbeResult:
        ctx.defer("interrupter cleanup", lambda: CLEANED.append(self.id))
        time.sleep(0.3)
        _thread.interrupt_main()  # as Ctrl-C would: KeyboardInterrupt in the waiting main thread
        while not ctx.cancel.is_set():
            time.sleep(0.02)
        return ProbeResult(probe=self.id)


class Plugin:
    @hookimpl
    def crm_audit_register_probes(self) -> list[type[Probe]]:
        return [SideA, SideB, SideWriter, Timed, Waiter, Interrupter]


def audit(rate: float, budget: int, only: list[str]) -> tuple[Any, Hits]:
    hits = Hits()
    with LocalServer({"/hit": hits.route, "/": hits.route}) as srv:
        profile = parse_profile(f"target: {{base_url: '{srv.base_url}', rate_limit_rps: {rate}, "
                                f"request_budget: {budget}}}\nhierarchy: none\n")
        reg = make_plugin_manager([Plugin(), crm_audit.protocols.rest], entry_points=False)
        result = run_audit(profile, reg, RunOptions(only=only))
    return result, hits


def max_in_window(times: list[float], window_s: float) -> int:
    """Most requests the server saw within any window of ``window_s`` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_side_by_side_probes_keep_the_rate_limit_together() -> None:
    rate = 40.0
    result, hits = audit(rate, 10_000, ["timed", "side_writer", "side_a", "side_b"])
    assert [p.probe for p in result.probes] == ["timed", "side_writer", "side_a", "side_b"]  # selection order
    assert [(s.mode, s.probes) for s in result.schedule] == [
        ("concurrent", ["side_writer", "side_a", "side_b"]), ("alone", ["timed"])]
    # every request reached the server, each probe's own count is right
    assert len(hits.rows) == 1 + 4 * TRIES  # + the reachability check
    assert {p.probe: p.requests for p in result.probes} == {p: TRIES for p in ("timed", "side_writer", "side_a", "side_b")}
    # the readers really ran side by side: their requests interleave on the server
    a, b = hits.of("side_a"), hits.of("side_b")
    assert min(b) < max(a) and min(a) < max(b)
    # the writer started after the readers finished; the time-measuring probe ran alone, last
    assert min(hits.of("side_writer")) > max(a + b)
    assert min(hits.of("timed")) > max(a + b + hits.of("side_writer"))
    # the global rate limit held, counted on the server: ≤ rate per second in any window (+1 at an edge)
    times = [t for t, _ in hits.rows]
    assert max_in_window(times, 1.0) <= rate + 1
    assert max_in_window(times, 0.25) <= rate * 0.25 + 1
    assert times[-1] - times[0] >= (len(times) - 1) / rate * 0.95


def test_side_by_side_probes_share_one_request_budget() -> None:
    budget = 40
    usable = budget - min(200, max(10, budget // 20), budget // 2)  # Target.cleanup_reserve is kept back
    result, hits = audit(1000.0, budget, ["side_a", "side_b", "side_writer"])
    assert 2 * TRIES > usable
    assert len(hits.rows) == usable  # the server saw exactly what the budget allows, never more
    assert sum(p.requests for p in result.probes) + 1 == usable  # + the reachability check
    assert sum(p.artifacts["sent"] for p in result.probes) == usable - 1
    assert result.probe("side_writer").requests == 0  # the readers used it all up before it started


def test_ctrl_c_stops_every_side_by_side_probe_and_runs_their_cleanups() -> None:
    CLEANED.clear()
    t0 = time.monotonic()
    result, _ = audit(100.0, 1000, ["side_waiter", "side_interrupter", "timed"])
    assert time.monotonic() - t0 < 10
    assert not result.complete and "Ctrl-C" in (result.incomplete_reason or "")
    assert sorted(p.probe for p in result.probes) == ["side_interrupter", "side_waiter"]  # "timed" never started
    assert {p.status for p in result.probes} == {"incomplete"}
    assert sorted(CLEANED) == ["side_interrupter", "side_waiter"]


def test_plan_puts_probes_that_measure_time_alone() -> None:
    plan = plan_schedule([Timed, SideA, SideB])
    assert plan == [("concurrent", [SideA, SideB]), ("alone", [Timed])]
    assert plan_schedule([Timed, SideA]) == [("alone", [SideA]), ("alone", [Timed])]


@pytest.mark.parametrize("probe", ["latency", "flows", "load", "backup"])
def test_built_in_probes_that_measure_time_run_alone(probe: str) -> None:
    reg = make_plugin_manager()
    assert reg.probes[probe].quiet_target is True


@pytest.mark.parametrize("probe", ["tls", "api_surface", "data_quality", "kpi", "access"])
def test_built_in_probes_that_time_nothing_run_side_by_side(probe: str) -> None:
    reg = make_plugin_manager()
    assert reg.probes[probe].quiet_target is False
