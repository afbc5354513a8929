"""Throughput of the load probe vs wrk and vs raw Locust at the same concurrency, in one run.

Scenarios, each against a server started here on 127.0.0.1:

1. server-bound: bench/_delay_server.py answering after a fixed 20 ms (cheap asyncio server, so
   the server, not the CPU, sets the pace): goal probe ≥ 0.95 × wrk;
2. static page served by nginx: CPU-bound on the load generator, so the goal is probe ≥ 0.95 ×
   raw Locust (the same FastHttpUser, users and worker processes, with none of the probe's
   bookkeeping); wrk (C, epoll) is shown for scale.

For each: one probe step of USERS users for STEP_S seconds (``steps: [USERS]``, no SLO, the
probe's ``max_rps`` far above anything the generator reaches, so no cap sets the figure), run
in a child process of its own so that process's CPU time and peak RSS (ru_maxrss) belong to
that scenario alone; then raw Locust (master + the same number of workers, ``--reset-stats``
after the ramp) and ``wrk -cUSERS`` for the same time.
Run: python bench/load_vs_wrk.py [--update-doc]   (nginx and wrk must be installed)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import HERE, ROOT, delay_server, free_port, machine_line, update_block, utc_now, wait_port

USERS = 16
STEP_S = 10
#: each scenario alternates probe, raw Locust and wrk this many times (the machine is shared:
#: alternating lets all three see the same background load); the medians are compared
ROUNDS = 3
WORKERS = int(os.environ.get("BENCH_WORKERS", max(1, min(os.cpu_count() or 1, 4))))
#: the probe's rate cap in this benchmark: far above what one machine's Locust reaches
NO_CAP_RPS = 10_000_000
GOALS = {"server": ("wrk", 0.95), "static": ("locust", 0.95)}

RAW_LOCUSTFILE = '''
from locust import FastHttpUser, constant, task

class Raw(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get(PATH, name="raw")
'''


def probe_child(base_url: str, path: str) -> dict[str, Any]:
    """Runs in its own process: one probe step; prints the step and this process's CPU and peak RSS."""
    from crm_audit.core.plugins import make_plugin_manager
    from crm_audit.core.profile import Profile
    from crm_audit.core.runner import RunOptions, run_audit

    profile = Profile.model_validate({
        "name": "bench", "target": {"base_url": base_url, "rate_limit_rps": 10_000, "request_budget": 100_000_000,
                                    "health_path": path},
        "allow": {"disruptive": True},  # max_rps above target.rate_limit_rps (the Target's own ceiling)
        "endpoints": [{"name": "bench", "path": path, "slo_p95_ms": 100_000}],
        "plugins": {"load": {"steps": [USERS], "max_users": USERS, "step_s": STEP_S, "sustained_s": 0,
                             "slo_p95_ms": 100_000, "max_total_s": STEP_S + 30, "max_requests": 50_000_000,
                             "max_rps": NO_CAP_RPS, "local_workers": WORKERS, "baseline_samples": 3,
                             "recovery_max_s": 3}},
    })
    w0 = time.perf_counter()
    res = run_audit(profile, make_plugin_manager(), RunOptions(only=["load"], hierarchy="none"))
    wall = time.perf_counter() - w0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the Locust master and workers, reaped
    probe = res.probes[0]
    assert probe.status == "ok", probe.reason
    step = probe.artifacts["steps"][0]
    limits = probe.measurements[0].details["limits"]
    return {"rps": step["rps"], "p50": step["p50_ms"], "p95": step["p95_ms"], "errors": step["error_rate"],
            "max_rps": limits["max_rps"], "bounded_by": probe.measurements[0].bounded_by,
            "core_cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": wall, "core_maxrss_mb": ru.ru_maxrss / 1024,
            "locust_cpu_ms_per_1k": (kids.ru_utime + kids.ru_stime) * 1e6 / max(1, limits["requests"])}


def probe_rps(base_url: str, path: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", base_url, path],
                         capture_output=True, text=True, check=True, cwd=HERE)
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_locust_rps(base_url: str, path: str) -> tuple[float, float]:
    """Plain Locust: master + WORKERS workers, USERS users, STEP_S s after the ramp; its own req/s, and
    the CPU milliseconds its processes spent per 1000 requests."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    work = Path(tempfile.mkdtemp(prefix="bench-locust-"))
    try:
        lf = work / "raw_locustfile.py"
        lf.write_text(RAW_LOCUSTFILE.replace("PATH", repr(path)), encoding="utf-8")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        common = [sys.executable, "-m", "locust", "-f", str(lf), "--loglevel", "WARNING"]
        master = subprocess.Popen(common + ["--master", "--headless", "-H", base_url, "-u", str(USERS), "-r", "1000",
                                            "-t", f"{STEP_S + 1}s", "--reset-stats", "--expect-workers", str(WORKERS),
                                            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                                            "--csv", str(work / "raw"), "--only-summary"],
                                  cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers = [subprocess.Popen(common + ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                                    cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(WORKERS)]
        try:
            master.wait(timeout=STEP_S + 90)
        finally:
            for p in [master, *workers]:
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=10)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(work / "raw_stats.csv", newline="", encoding="utf-8") as fh:
            row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
        cpu_s = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        return float(row["Requests/s"]), cpu_s * 1e6 / max(1, int(row["Request Count"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


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


def scenario(name: str, base_url: str, path: str) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    probes, raws, wrks, raw_cpu = [], [], [], []
    for _ in range(ROUNDS):
        probes.append(probe_rps(base_url, path))
        rps, cpu = raw_locust_rps(base_url, path)
        raws.append(rps)
        raw_cpu.append(cpu)
        wrks.append(wrk_rps(base_url + path))
    probe = sorted(probes, key=lambda p: p["rps"])[len(probes) // 2]  # the median run, with its latency and RSS
    raw, wrk = statistics.median(raws), statistics.median(wrks)
    row = {"name": name, "probe": probe, "locust": raw, "wrk": wrk, "load_before": load0,
           "load_after": os.getloadavg()[0], "runs": {"probe": [p["rps"] for p in probes], "locust": raws, "wrk": wrks},
           "cpu_per_1k": {"probe": statistics.median(p["locust_cpu_ms_per_1k"] for p in probes),
                          "locust": statistics.median(raw_cpu)}}
    peer, need = GOALS[name]
    row["ratio_wrk"] = probe["rps"] / wrk if wrk else 0.0
    row["ratio_locust"] = probe["rps"] / raw if raw else 0.0
    row["goal"] = f"≥ {need} × {peer}"
    row["met"] = row[f"ratio_{peer}"] >= need
    print(f"{name}: probe {probe['rps']:.1f} req/s (p50 {probe['p50']} ms, p95 {probe['p95']} ms, cap "
          f"{probe['max_rps']:g}, bounded_by {probe['bounded_by']}), raw Locust {raw:.1f}, wrk {wrk:.1f}; "
          f"probe/wrk {row['ratio_wrk']:.2f}, probe/Locust {row['ratio_locust']:.2f} -> "
          f"{'PASS' if row['met'] else 'MISS'} ({row['goal']}); core process: CPU {probe['core_cpu_s']:.2f} s over "
          f"{probe['wall_s']:.1f} s, peak RSS {probe['core_maxrss_mb']:.0f} MB", flush=True)
    return row


def markdown(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [f"Measured {utc_now()} by `python bench/load_vs_wrk.py --update-doc`; {machine}. "
             f"{USERS} users / connections, {STEP_S} s per measurement, {WORKERS} Locust worker process(es) + 1 "
             f"master for both the probe and raw Locust, wrk -t{min(USERS, os.cpu_count() or 1)} -c{USERS}; the "
             f"probe's max_rps {NO_CAP_RPS:g} (no cap reached). Each scenario alternates the three {ROUNDS} times; "
             "the table shows medians, the runs are listed below it.", "",
             "| target | load average | load probe | raw Locust | wrk | probe / Locust | probe / wrk | raw Locust / wrk | "
             "goal | Locust CPU per 1000 requests (probe / raw) | core process CPU / wall | core peak RSS |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    labels = {"server": "server-bound: fixed 20 ms delay (asyncio server)", "static": "static page, nginx (1 worker)"}
    for r in rows:
        p = r["probe"]
        lines.append(f"| {labels[r['name']]} | {r['load_before']:.2f} → {r['load_after']:.2f} | {p['rps']:.1f} req/s "
                     f"(p50 {p['p50']} ms, p95 {p['p95']} ms) | {r['locust']:.1f} req/s | {r['wrk']:.1f} req/s | "
                     f"{r['ratio_locust']:.3f} | {r['ratio_wrk']:.3f} | {r['locust'] / r['wrk']:.3f} | {r['goal']} — "
                     f"{'**met**' if r['met'] else '**missed**'} | {r['cpu_per_1k']['probe']:.0f} ms / "
                     f"{r['cpu_per_1k']['locust']:.0f} ms | {p['core_cpu_s']:.2f} s / {p['wall_s']:.1f} s | "
                     f"{p['core_maxrss_mb']:.0f} MB |")
    lines.append("")
    for r in rows:
        runs = r["runs"]
        lines.append(f"Runs, {labels[r['name']]}: probe " + ", ".join(f"{x:.0f}" for x in runs["probe"])
                     + "; raw Locust " + ", ".join(f"{x:.0f}" for x in runs["locust"])
                     + "; wrk " + ", ".join(f"{x:.0f}" for x in runs["wrk"]) + " req/s.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update-doc", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("BASE_URL", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(probe_child(*args.child)))
        return 0
    load_before = os.getloadavg()[0]
    rows = []
    proc, port = delay_server(20)
    try:
        rows.append(scenario("server", f"http://127.0.0.1:{port}", "/"))
    finally:
        proc.terminate()
        proc.wait()
    proc, port, root = nginx_static()
    try:
        rows.append(scenario("static", f"http://127.0.0.1:{port}", "/index.html"))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)
    section = markdown(rows, machine_line(load_before, os.getloadavg()[0]))
    print(section)
    if args.update_doc:
        update_block(ROOT / "docs" / "benchmarks.md", "load-vs-wrk", section)
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
