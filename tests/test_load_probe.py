"""The load probe against the real demo CRM, with real Locust master/worker processes.

The demo serves ``capacity`` API requests at a time, each taking ``delay_ms``; so with
capacity 1 a closed loop of u users sees about u × delay latency, and the largest user
count within a 250 ms p95 SLO falls when the delay grows.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from requests.utils import default_user_agent

from crm_audit.core.net import free_port
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.profile import parse_profile
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile
from crm_audit_plugins.load.cluster import SECRET_ENV, Cluster, LoadRunError, locust_env, worker_command
from crm_audit_plugins.load.locustfile import render_locustfile
from crm_audit_plugins.load.stats import ladder, step_stats

pytestmark = pytest.mark.integration

#: the User-Agent of the audit's own HTTP client (the Target); the load generator sends another
AUDIT_AGENT = default_user_agent()
TASKS = [{"name": "list contacts", "path": "/api/contacts", "account": "sales", "params": {"limit": 5}, "weight": 3},
         {"name": "current user", "path": "/api/me", "account": "readonly", "weight": 1}]
BASE = {"tasks": TASKS, "max_users": 8, "step_s": 1.5, "sustained_s": 1.5, "slo_p95_ms": 250,
        "local_workers": 1, "max_total_s": 30, "target_users": 4, "baseline_samples": 5, "recovery_max_s": 10}
SLACK_S = 8.0
ARTIFACT_KEYS = {"steps", "max_sustainable_users", "target_users", "slo_p95_ms", "sustained", "recovery"}
STEP_KEYS = {"users", "duration_s", "requests", "rps", "p50_ms", "p95_ms", "error_rate", "within_slo"}


class CountingProxy:
    """A plain-HTTP reverse proxy on loopback in front of a demo served without TLS: it forwards
    every request and records (monotonic time, method, path) of each, so a test counts what
    reached the server rather than what the probe says it sent (as tests/test_target.py does)."""

    def __init__(self, upstream_port: int) -> None:
        #: (time, method, path, sent by the load generator rather than the audit's own client)
        self.hits: list[tuple[float, str, str, bool]] = []
        lock, outer = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                generated = self.headers.get("User-Agent", "") != AUDIT_AGENT
                with lock:
                    outer.hits.append((time.monotonic(), self.command, self.path.split("?")[0], generated))
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def task_hits(self, load_only: bool = False) -> list[float]:
        """Times of the hits on the load tasks' paths: all (the probe's baseline and recovery use them
        too, through the Target), or only those the load generator sent."""
        paths = {t["path"] for t in TASKS}
        return sorted(t for t, _, path, generated in self.hits if path in paths and (generated or not load_only))


def _proxied_profile(server, proxy: CountingProxy):
    """The demo profile pointed at the proxy (same host, so the same scope)."""
    return demo_profile(SimpleNamespace(base_url=proxy.base_url, env=server.env, ca_path=None,
                                        profile_name="demo.yaml"))


def _max_in_window(times: list[float], window_s: float) -> int:
    """The most hits in any window of ``window_s`` seconds."""
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window_s:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def _load(profile, workdir: Path | None = None, **opts):
    profile = profile.model_copy(update={"plugins": {"load": {**BASE, **opts}}})
    result = run_audit(profile, make_plugin_manager(), RunOptions(only=["load"], hierarchy="none", workdir=workdir))
    probe = result.probes[0]
    assert probe.status == "ok", probe.reason
    return probe


def _limits(probe):
    return next(m for m in probe.measurements if m.indicator == "perf.max_concurrency").details["limits"]


def _assert_bounded(probe, max_users: int, max_total_s: float, budget: int | None = None):
    lim = _limits(probe)
    assert lim["max_users_requested"] <= max_users and lim["max_users_observed"] <= max_users
    assert lim["load_s"] <= max_total_s + SLACK_S
    assert lim["requests"] <= lim["budget"]
    if budget is not None:
        assert lim["budget"] <= budget
    measured = sum(s["requests"] for s in probe.artifacts["steps"])
    assert 0 < measured <= lim["requests"]  # every measured request was counted against the budget


def test_max_sustainable_concurrency_drops_when_the_demo_is_slower():
    found = {}
    for delay in (40, 150):
        with DemoServer(delay_ms=delay, capacity=1) as server:
            probe = _load(demo_profile(server), min_step_gain=0)  # the SLO alone ends the ladder
        art = probe.artifacts
        assert set(art) == ARTIFACT_KEYS and all(set(s) == STEP_KEYS for s in art["steps"])
        assert [s["users"] for s in art["steps"]] == ladder(1, 2, 8)[: len(art["steps"])]
        assert art["steps"][-1]["within_slo"] is False  # it stopped because the SLO broke
        assert art["recovery"]["recovered"] and art["recovery"]["recovery_s"] < 10
        _assert_bounded(probe, 8, 30)
        found[delay] = art["max_sustainable_users"]
        rps = next(m for m in probe.measurements if m.indicator == "perf.throughput_at_slo").value
        assert rps <= 1000 / delay * 1.15  # capacity 1: at most one request per delay
    assert found[40] > found[150] >= 1, found


def test_ladder_ends_at_the_capacity_knee():
    """Capacity 1 at 40 ms: 2 users already keep it busy (25 req/s); 4 users gain nothing, so the
    ladder ends there although the SLO (1 s here) would allow more users, who would only queue."""
    with DemoServer(delay_ms=40, capacity=1) as server:
        probe = _load(demo_profile(server), start_users=2, slo_p95_ms=1000)
    steps = probe.artifacts["steps"]
    assert [s["users"] for s in steps] == [2, 4] and all(s["within_slo"] for s in steps), steps
    assert steps[1]["rps"] < steps[0]["rps"] * 1.1
    lim = _limits(probe)
    assert lim["stop_reason"] == "throughput plateau" and lim["max_users_requested"] == 4
    m = next(m for m in probe.measurements if m.indicator == "perf.max_concurrency")
    assert m.value == 4 and m.bounded_by is None  # the CRM set the level, not the audit


def test_request_budget_and_time_limit_hold(tmp_path: Path):
    """The budget holds on the server: the requests that reached it are counted there, not by the probe."""
    with DemoServer(delay_ms=20, capacity=4, tls=False) as server, CountingProxy(server.port) as proxy:
        # min_step_gain 0: the knee rule off, so the ladder climbs until the budget or the time limit stops it
        probe = _load(_proxied_profile(server, proxy), workdir=tmp_path, slo_p95_ms=5000, max_requests=60,
                      max_total_s=12, sustained_s=0, min_step_gain=0)
        on_tasks, generated = proxy.task_hits(), proxy.task_hits(load_only=True)
    # its own work folder (headers file with tokens, locustfile) is removed; the audit's workdir is the test's own
    assert list(tmp_path.glob("crm-audit-load-*")) == []
    # the load generator's requests that reached the server stay within max_requests …
    assert 0 < len(generated) <= 60, len(generated)
    # … and the result counts every request of the probe (load, baseline, recovery) that reached it
    assert probe.requests == len(on_tasks), (probe.requests, len(on_tasks))
    lim = _limits(probe)
    assert lim["budget"] == 60 and lim["requests"] <= 60
    assert lim["stop_reason"] in ("request budget", "max_total_s")
    _assert_bounded(probe, 8, 12, budget=60)


def test_too_many_users_need_allow_disruptive():
    with DemoServer(delay_ms=0) as server:
        profile = demo_profile(server).model_copy(update={"plugins": {"load": {**BASE, "max_users": 64}}})
        result = run_audit(profile, make_plugin_manager(),
                           RunOptions(only=["load"], allow_disruptive=False, hierarchy="none"))
    assert result.probes[0].status == "skipped" and "disruptive" in result.probes[0].reason


def test_distributed_master_and_load_worker_give_the_same_result_shape(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "shared-load-secret-for-this-test")  # audit and worker: same environment
    port = free_port()
    with DemoServer(delay_ms=40, capacity=1) as server:
        raw = yaml.safe_load((files("crm_audit_profiles") / "demo.yaml").read_text(encoding="utf-8"))
        raw["plugins"] = {"load": {**BASE, "local_workers": 0, "external_workers": 1,
                                   "master_bind": f"127.0.0.1:{port}"}}
        path = tmp_path / "demo-load.yaml"
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        env = {**os.environ, **server.env, "DEMO_BASE_URL": server.base_url, "DEMO_CA_BUNDLE": str(server.ca_path)}
        profile = parse_profile(path.read_text(), source=str(path), env=env)
        worker = subprocess.Popen([sys.executable, "-m", "crm_audit", "load-worker", str(path),
                                   "--master", f"127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            result = run_audit(profile, make_plugin_manager(), RunOptions(only=["load"], hierarchy="none"))
            code = worker.wait(timeout=30)  # the worker leaves when the master quits
            log = worker.stdout.read()
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    probe = result.probes[0]
    assert probe.status == "ok", (probe.reason, log)
    assert code == 0, log
    assert "load-worker: mix " in log
    assert set(probe.artifacts) == ARTIFACT_KEYS and all(set(s) == STEP_KEYS for s in probe.artifacts["steps"])
    assert _limits(probe)["workers"] == 1
    assert 1 <= probe.artifacts["max_sustainable_users"] <= 8
    assert sum(s["requests"] for s in probe.artifacts["steps"]) > 0
    _assert_bounded(probe, 8, 30)


def test_step_stats_are_exact():
    rows = [(float(i), "x", float(ms), ms != 7) for i, ms in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])]
    st = step_stats(rows, users=2, duration_s=2.0, slo_p95_ms=9.6, max_error_rate=0.2)
    assert st["requests"] == 10 and st["rps"] == 5.0 and st["error_rate"] == 0.1
    assert st["p50_ms"] == 5.0 and st["p95_ms"] == pytest.approx(9.6) and st["within_slo"] is True
    assert ladder(1, 2, 10) == [1, 2, 4, 8, 10] and ladder(3, 2, 12) == [3, 6, 12]


def test_rate_cap_holds():
    """The load phase never exceeds its rate cap (target.rate_limit_rps by default), counted on the server."""
    with DemoServer(delay_ms=0, capacity=16, tls=False) as server, CountingProxy(server.port) as proxy:
        probe = _load(_proxied_profile(server, proxy), steps=[8], sustained_s=0, max_rps=40, step_s=3,
                      max_total_s=20)
        generated = proxy.task_hits(load_only=True)
    step = probe.artifacts["steps"][0]
    assert step["requests"] > 0 and len(generated) >= step["requests"], (step, len(generated))
    # at 40 req/s with 8 users, no 2-second window on the server holds more than 2 × 40 plus one request per user
    busiest = _max_in_window(generated, 2.0)
    assert 40 <= busiest <= 2 * 40 + 8, busiest
    assert _limits(probe)["max_rps"] == 40
    # a request is timed from when it is sent, not from when it queued for the cap: 8 users sharing
    # 40 req/s wait about 200 ms each between requests; none of that may count as latency
    # (if it did, the median would be about 200 ms)
    assert step["p50_ms"] < 50, step
    # sustained_s 0: stability is listed as not assessed, with what would assess it
    drift = next(f for f in probe.findings if f.id == "load.latency_drift")
    assert drift.status.value == "skipped" and drift.not_assessed.value == "not_configured" and "sustained_s" in drift.hint


def test_rate_cap_above_the_rate_limit_needs_allow_disruptive():
    """Without allow.disruptive, target.rate_limit_rps is the ceiling of max_rps: capped, not skipped."""
    with DemoServer(delay_ms=0, capacity=16) as server:
        profile = demo_profile(server)
        profile = profile.model_copy(update={"plugins": {"load": {**BASE, "steps": [2], "sustained_s": 0,
                                                                  "step_s": 1, "max_rps": 5000}}})
        result = run_audit(profile, make_plugin_manager(),
                           RunOptions(only=["load"], hierarchy="none", allow_disruptive=False))
    [probe] = result.probes
    assert probe.status == "ok", probe.reason
    assert _limits(probe)["max_rps"] == profile.target.rate_limit_rps


def _step(users: int, rps: float, within: bool) -> dict:
    return {"users": users, "rps": rps, "within_slo": within}


def test_ladder_stops_when_throughput_stops_growing():
    from crm_audit_plugins.load.stats import capacity_bound, plateaued

    growing = [_step(1, 100, True), _step(2, 190, True), _step(4, 300, True)]
    assert not plateaued(growing, 0.1)
    flat = growing + [_step(8, 320, True)]  # +6.7 % over the best earlier step: the knee
    assert plateaued(flat, 0.1) and not plateaued(flat, 0.05) and not plateaued(flat, 0)
    assert plateaued(growing + [_step(8, 250, True)], 0.1)  # fell back
    assert not plateaued([_step(1, 100, True)], 0.1)
    # the CRM, not the audit, set the level (unless the rate cap did)
    assert capacity_bound(flat, "throughput plateau", 10_000) is None
    assert capacity_bound(flat, "throughput plateau", 330) == "rate_limit"


def test_capacity_bound_names_the_audits_own_limit():
    from crm_audit_plugins.load.stats import capacity_bound

    # the case: throughput levelled off at the profile's rate_limit_rps of 20
    assert capacity_bound([_step(1, 9.8, True), _step(2, 18.6, True), _step(4, 18.7, True)], "max_users reached", 20) \
        == "rate_limit"
    assert capacity_bound([_step(1, 5, True), _step(2, 9, True)], "max_users reached", 100) == "max_users"
    assert capacity_bound([_step(1, 5, True), _step(2, 9, True)], "max_total_s", 100) == "time_limit"
    assert capacity_bound([_step(1, 5, True)], "request budget", 100) == "request_budget"
    # the SLO broke: the CRM set the level, not the audit
    assert capacity_bound([_step(1, 5, True), _step(2, 6, False)], "SLO broken", 100) is None
    assert capacity_bound([_step(1, 5, False)], "SLO broken", 100) is None


@pytest.mark.parametrize("hierarchy", ["default", "security", "vendor-selection"])
def test_stability_definition_and_scoring_agree(hierarchy):
    """perf.stability is p95(second half) / p95(first half), expected ≤ 1.2, in the probe and every bundled hierarchy."""
    from crm_audit.scoring import load_hierarchy
    from crm_audit_plugins.load.probe import STABILITY_MAX_RATIO
    from crm_audit_plugins.load.stats import sustained_stats

    rows = [(0.5, "x", 149.0, True), (1.5, "x", 134.0, True)]  # the case: p95 fell from 149 to 134 ms
    drift = sustained_stats(rows, 4, 0.0, 2.0)["drift"]
    assert drift == pytest.approx(134 / 149, abs=1e-4)
    node = next(n for n in load_hierarchy(hierarchy).leaves() if n.id == "perf.stability")
    assert node.expected == STABILITY_MAX_RATIO == 1.2 and node.better == "lower"
    assert node.function.score(drift) == 100  # p95 fell: the best possible stability
    assert node.function.score(1.2) == pytest.approx(90)  # at the expectation
    assert node.function.score(3.0) == 0


def _health_locustfile(folder: Path, host: str, name: str) -> Path:
    folder.mkdir()
    path = folder / "locustfile.py"
    task = {"name": name, "method": "GET", "path": "/api/health", "account": None, "weight": 1, "expect": [200]}
    path.write_text(render_locustfile(host, [task], hard_stop_s=30), encoding="utf-8")
    return path


def test_master_drops_samples_of_a_worker_without_the_shared_secret(tmp_path, monkeypatch):
    """A worker that joins the master without CRM_AUDIT_LOAD_SECRET adds no row to the samples."""
    monkeypatch.setenv(SECRET_ENV, "the-genuine-load-secret-0123456789")
    with DemoServer() as server:
        cluster = Cluster(workdir=tmp_path, locustfile=_health_locustfile(tmp_path / "m", server.base_url, "genuine"),
                          headers_file=None, verify=str(server.ca_path), budget=400, max_rps=200, hard_stop_s=25,
                          local_workers=1, external_workers=1)
        rogue_file = _health_locustfile(tmp_path / "r", server.base_url, "rogue")
        cluster.start(users=2, spawn_rate=20)
        rogue_env = {**locust_env(None, str(server.ca_path)), SECRET_ENV: "a-wrong-secret-guessed-9876543210"}
        rogue = subprocess.Popen(worker_command(rogue_file, "127.0.0.1", cluster.bind_port), env=rogue_env,
                                 cwd=rogue_file.parent, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            assert cluster.wait_users(2, 60), cluster.log_tail()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (cluster.status().get("rejected_reports") and cluster.rows):
                time.sleep(0.2)
                cluster.read_rows()
        finally:
            cluster.stop()
            if rogue.poll() is None:
                os.kill(rogue.pid, signal.SIGTERM)
            rogue.wait(timeout=10)
        cluster.read_rows()
    names = {row[1] for row in cluster.rows}
    assert names == {"genuine"}, names
    assert cluster.status()["rejected_reports"] >= 1


def test_master_beyond_loopback_or_with_external_workers_needs_the_secret(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    for bind_host, external in (("0.0.0.0", 0), ("127.0.0.1", 1)):
        cluster = Cluster(workdir=tmp_path, locustfile=tmp_path / "none.py", headers_file=None, verify=True, budget=10,
                          max_rps=1, hard_stop_s=5, local_workers=1, external_workers=external, bind_host=bind_host)
        with pytest.raises(LoadRunError, match=SECRET_ENV):
            cluster.start(users=1, spawn_rate=1)
        assert cluster.procs == []  # nothing was started
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(LoadRunError, match="shorter"):
        Cluster(workdir=tmp_path, locustfile=tmp_path / "none.py", headers_file=None, verify=True, budget=10,
                max_rps=1, hard_stop_s=5).start(users=1, spawn_rate=1)
