"""Throughput of the load probe vs wrk at the same concurrency, and the core process's cost.

1. server-bound: bench/_delay_server.py answering after a fixed 20 ms (cheap asyncio server,
   so the server, not the CPU, sets the pace): probe ≥ 0.9 × wrk's req/s expected.
2. static page served by nginx on 127.0.0.1: probe ≥ 0.25 × wrk expected (CPU-bound: here
   the load generator's efficiency shows).
For each: one probe step at U users for STEP_S seconds (steps=[U], no SLO), then wrk -cU
for the same time. Core-process CPU time and peak RSS are taken around the probe run.
Run: python bench/load_vs_wrk.py  (nginx must be installed; wrk: apt-get install -y wrk)
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import delay_server, free_port, profile_for, wait_port

from crm_audit.plugins import make_plugin_manager
from crm_audit.runner import RunOptions, run_audit

USERS = 16
STEP_S = 10
WORKERS = int(os.environ.get("BENCH_WORKERS", max(1, min(os.cpu_count() or 1, 4))))


def probe_rps(base_url: str, path: str) -> dict:
    profile = profile_for(base_url, path).model_copy(update={"plugins": {"load": {
        "steps": [USERS], "max_users": USERS, "step_s": STEP_S, "sustained_s": 0, "slo_p95_ms": 100_000,
        "max_total_s": STEP_S + 30, "max_requests": 5_000_000, "local_workers": WORKERS, "baseline_samples": 3,
        "recovery_max_s": 3}}})
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.perf_counter()
    res = run_audit(profile, make_plugin_manager(), RunOptions(only=["load"], hierarchy="none"))
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    probe = res.probes[0]
    assert probe.status == "ok", probe.reason
    step = probe.artifacts["steps"][0]
    return {"rps": step["rps"], "p50": step["p50_ms"], "p95": step["p95_ms"], "errors": step["error_rate"],
            "core_cpu_s": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime), "wall_s": wall,
            "core_maxrss_mb": r1.ru_maxrss / 1024}


def wrk_rps(url: str) -> float:
    threads = min(USERS, os.cpu_count() or 1)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{USERS}", f"-d{STEP_S}s", url], capture_output=True,
                         text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def nginx_static() -> tuple[subprocess.Popen, int, Path]:
    root = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    (root / "index.html").write_text("<html><body>static page for the load benchmark</body></html>\n")
    root.chmod(0o755)  # nginx's worker runs as an unprivileged user
    (root / "index.html").chmod(0o644)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(f"""
worker_processes 1; daemon off; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port}; root {root}; keepalive_requests 1000000; }} }}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(root)])
    wait_port(port)
    return proc, port, root


def report(name: str, probe: dict, wrk: float, need: float) -> bool:
    ratio = probe["rps"] / wrk if wrk else 0.0
    ok = ratio >= need
    print(f"{name}: probe {probe['rps']:.1f} req/s (p50 {probe['p50']} ms, p95 {probe['p95']} ms, errors "
          f"{probe['errors']}), wrk {wrk:.1f} req/s, ratio {ratio:.2f} (need {need}) -> {'PASS' if ok else 'MISS'}")
    print(f"   core process during the probe: CPU {probe['core_cpu_s']:.2f} s over {probe['wall_s']:.1f} s wall, "
          f"peak RSS {probe['core_maxrss_mb']:.0f} MB")
    return ok


def main() -> int:
    print(f"{USERS} users / connections, {STEP_S} s per measurement, {WORKERS} Locust worker process(es), "
          f"wrk threads {min(USERS, os.cpu_count() or 1)}, {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.2f}")
    results = []
    proc, port = delay_server(20)
    try:
        url = f"http://127.0.0.1:{port}/"
        p = probe_rps(f"http://127.0.0.1:{port}", "/")
        w = wrk_rps(url)
    finally:
        proc.terminate()
        proc.wait()
    results.append(report("server-bound (20 ms fixed delay)", p, w, 0.9))
    proc, port, root = nginx_static()
    try:
        p = probe_rps(f"http://127.0.0.1:{port}", "/index.html")
        w = wrk_rps(f"http://127.0.0.1:{port}/index.html")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)
    results.append(report("static nginx page", p, w, 0.25))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
