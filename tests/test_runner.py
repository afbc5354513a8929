"""Runner: error isolation, timeouts, selection, cleanups, Ctrl-C, redaction of the whole result."""

from __future__ import annotations

import threading
import time

import pytest
from local_http import LocalServer, json_route

import crm_audit.protocols.rest
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import Evidence, Finding, ProbeResult, Status
from crm_audit.core.plugins import PluginError, make_plugin_manager
from crm_audit.core.probe import Probe, ProbeContext, ProbeSkipped
from crm_audit.core.profile import parse_profile
from crm_audit.core.runner import RunOptions, UsageError, run_audit

SECRET = "runner-secret-pw-42"


class OkProbe(Probe):
    id, title, version = "t_ok", "ok", "1.0"

    def run(self, ctx: ProbeContext) -> ProbeResult:
        ex = ctx.target.request("GET", "/ok")
        return ProbeResult(probe=self.id, findings=[Finding(
            id="t.ok", title=f"leaky {SECRET}", status=Status.passed,
            evidence=[Evidence(excerpt=f"Authorization: Bearer {SECRET}", details={"k": SECRET})])],
            artifacts={"raw": f"password={SECRET}", "status": ex.status})


class RaisingProbe(Probe):
    id, title = "t_raise", "raises"

    def run(self, ctx: ProbeContext) -> ProbeResult:
        raise RuntimeError("boom in probe")


class HangingProbe(Probe):
    id, title = "t_hang", "hangs"
    timeout_s = 0.5

    def run(self, ctx: ProbeContext) -> ProbeResult:
        ctx.defer("hang cleanup", lambda: CLEANED.append("hang"))
        while not ctx.cancel.is_set():
            time.sleep(0.05)
        return ProbeResult(probe=self.id)


class SkipProbe(Probe):
    id, title = "t_skip", "skips"

    def run(self, ctx: ProbeContext) -> ProbeResult:
        raise ProbeSkipped("nothing to do here")


CLEANED: list[str] = []


class Plugin:
    @hookimpl
    def crm_audit_register_probes(self):
        return [OkProbe, RaisingProbe, HangingProbe, SkipProbe]


@pytest.fixture()
def env():
    with LocalServer({"/ok": json_route({"ok": True}), "/": json_route({})}) as srv:
        profile = parse_profile(
            f"target: {{base_url: '{srv.base_url}'}}\n"
            "accounts: [{name: a, role: r, auth: {method: basic, username: u, password: '${P}'}}]\n"
            "hierarchy: none\n",
            env={"P": SECRET})
        yield profile, make_plugin_manager([Plugin(), crm_audit.protocols.rest], entry_points=False)


def test_failures_are_isolated_and_the_audit_goes_on(env) -> None:
    profile, reg = env
    CLEANED.clear()
    res = run_audit(profile, reg, RunOptions(only=["t_raise", "t_hang", "t_skip", "t_ok"]))
    by = {p.probe: p for p in res.probes}
    assert by["t_raise"].status == "error" and "RuntimeError: boom in probe" in by["t_raise"].reason
    assert by["t_hang"].status == "error" and "timed out after 0.5 s" in by["t_hang"].reason
    assert by["t_skip"].status == "skipped" and by["t_skip"].reason == "nothing to do here"
    assert by["t_ok"].status == "ok" and by["t_ok"].requests == 1
    assert CLEANED == ["hang"]
    assert res.complete


def test_secrets_never_survive_into_the_result(env) -> None:
    profile, reg = env
    res = run_audit(profile, reg, RunOptions(only=["t_ok"]))
    dumped = res.model_dump_json()
    assert SECRET not in dumped
    assert "[REDACTED]" in dumped


def test_unknown_probe_is_a_usage_error(env) -> None:
    profile, reg = env
    with pytest.raises(UsageError, match="unknown probe 'nope'; known probes: .*t_ok"):
        run_audit(profile, reg, RunOptions(only=["nope"]))


def test_skip_removes_probes(env) -> None:
    profile, reg = env
    res = run_audit(profile, reg, RunOptions(skip=["t_hang", "t_raise", "t_skip"]))
    assert [p.probe for p in res.probes] == ["t_ok"]


def test_ctrl_c_marks_result_incomplete_and_runs_cleanups(env, monkeypatch) -> None:
    profile, reg = env
    CLEANED.clear()
    # deliver KeyboardInterrupt to the waiting main thread, as Ctrl-C would
    real_join = threading.Thread.join
    calls = {"n": 0}

    def join(self, timeout=None):
        calls["n"] += 1
        if self.name == "probe-t_hang" and calls["n"] == 2:
            raise KeyboardInterrupt
        return real_join(self, timeout)

    monkeypatch.setattr(threading.Thread, "join", join)
    HangingProbe.timeout_s = 30
    try:
        res = run_audit(profile, reg, RunOptions(only=["t_hang", "t_ok"]))
    finally:
        HangingProbe.timeout_s = 0.5
    assert not res.complete and "Ctrl-C" in res.incomplete_reason
    assert [p.probe for p in res.probes] == ["t_hang"]
    assert res.probes[0].status == "incomplete"
    assert CLEANED == ["hang"]


def test_duplicate_probe_ids_are_refused() -> None:
    class OtherOk(OkProbe):
        pass

    class Dup:
        @hookimpl
        def crm_audit_register_probes(self):
            return [OtherOk]

    with pytest.raises(PluginError, match="probe 't_ok' is registered twice"):
        make_plugin_manager([Plugin(), Dup()], entry_points=False)


class RunawayProbe(Probe):
    """Ignores ctx.cancel and keeps sending: the Target must stop it after its timeout."""

    id, title = "t_runaway", "runaway"
    timeout_s = 0.5

    def run(self, ctx: ProbeContext) -> ProbeResult:
        while True:
            ctx.target.request("GET", "/ok")
            time.sleep(0.02)


def test_a_timed_out_probe_cannot_keep_sending(env) -> None:
    profile, _ = env

    class P:
        @hookimpl
        def crm_audit_register_probes(self):
            return [RunawayProbe, OkProbe]

    reg = make_plugin_manager([P(), crm_audit.protocols.rest], entry_points=False)
    res = run_audit(profile, reg, RunOptions(only=["t_runaway", "t_ok"]))
    by = {p.probe: p for p in res.probes}
    assert by["t_runaway"].status == "error" and "timed out" in by["t_runaway"].reason
    assert by["t_ok"].requests == 1  # nothing of the runaway probe is counted (or sent) during the next one
