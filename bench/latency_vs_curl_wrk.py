"""Single-request latency: crm-audit's Target vs curl vs wrk, against one loopback endpoint.

The endpoint (bench/_delay_server.py) answers after a fixed 50 ms, then, in the same run,
at once (0 ms: what is left is the client's own cost per request). Each tool takes 200
sequential samples; the medians are compared (goal: Target within 1 ms of curl keep-alive).
``--update-doc`` writes the figures into docs/benchmarks.md (block ``latency``).
Run: python bench/latency_vs_curl_wrk.py [--update-doc]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys

from _common import ROOT, delay_server, machine_line, profile_for, update_block, utc_now

from crm_audit.core.target import Target

N = 200
DELAYS_MS = (50, 0)
#: goal of issue 18: Target's median at most this much above curl keep-alive's
LIMIT_MS = 1.0


def target_cpu_ms(url: str, n: int = 500) -> float:
    """CPU milliseconds this process spends per Target request (the client's own cost)."""
    t = Target(profile_for(url))
    for _ in range(5):
        t.request("GET", "/")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(n):
        t.request("GET", "/")
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    t.close()
    return ((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)) / n * 1000


def interleaved_ms(url: str) -> tuple[list[float], list[float], list[float]]:
    """Target, curl keep-alive and curl fresh-process samples, taken in alternating blocks of 10
    so all three see the same background load.

    Target reuses its keep-alive connection, as probes do. ``curl URL URL …`` (one process)
    reuses its connection too: the like-for-like peer. One curl process per sample opens a
    new connection each time, as people use it. Both report curl's own time_total.
    """
    t = Target(profile_for(url))
    for _ in range(3):
        t.request("GET", "/")
    tgt: list[float] = []
    keep: list[float] = []
    fresh: list[float] = []
    fmt = "%{time_total}\\n"
    for _ in range(N // 10):
        tgt += [t.request("GET", "/").elapsed_s * 1000 for _ in range(10)]
        r = subprocess.run(["curl", "-s", "--noproxy", "*", "-w", fmt] + ["-o", "/dev/null", url] * 10,
                           capture_output=True, text=True, check=True)
        keep += [float(x) * 1000 for x in r.stdout.split()]
        for _ in range(10):
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "--noproxy", "*", url],
                               capture_output=True, text=True, check=True)
            fresh.append(float(r.stdout) * 1000)
    t.close()
    return tgt, keep, fresh


def wrk_median_ms(url: str, delay_ms: float) -> tuple[float, int]:
    """wrk, 1 thread 1 connection, long enough for about N requests; its own 50th percentile."""
    secs = max(1, round(N * (delay_ms + 1) / 1000))
    r = subprocess.run(["wrk", "-t1", "-c1", f"-d{secs}s", "--latency", url], capture_output=True, text=True,
                       check=True)
    m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", r.stdout, re.M)
    n = int(re.search(r"(\d+) requests in", r.stdout).group(1))
    val = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return val, n


def measure(delay_ms: float) -> dict[str, float]:
    proc, port = delay_server(delay_ms)
    url = f"http://127.0.0.1:{port}/"
    try:
        load_before = os.getloadavg()[0]
        tgt_s, keep_s, fresh_s = interleaved_ms(url)
        wrk, wrk_n = wrk_median_ms(url, delay_ms)
        cpu = target_cpu_ms(url)
        load_after = os.getloadavg()[0]
    finally:
        proc.terminate()
        proc.wait()
    row = {"delay_ms": delay_ms, "target": statistics.median(tgt_s), "curl_keep": statistics.median(keep_s),
           "curl_fresh": statistics.median(fresh_s), "wrk": wrk, "wrk_n": wrk_n, "target_cpu_ms": cpu,
           "load_before": load_before, "load_after": load_after}
    row["diff"] = row["target"] - row["curl_keep"]
    print(f"delay {delay_ms:g} ms, {N} samples each; load average {load_before:.2f} -> {load_after:.2f}: "
          f"Target {row['target']:.3f}, curl keep-alive {row['curl_keep']:.3f}, curl per process "
          f"{row['curl_fresh']:.3f}, wrk {wrk:.3f} ms ({wrk_n} requests); Target - curl keep-alive "
          f"{row['diff']:+.3f} ms; Target CPU per request {cpu:.3f} ms", flush=True)
    return row


def markdown(rows: list[dict[str, float]], machine: str) -> str:
    lines = [f"Measured {utc_now()} by `python bench/latency_vs_curl_wrk.py --update-doc`; {machine}. "
             f"{N} samples per tool; Target and curl in alternating blocks of 10 so they share the background load.",
             "", "| endpoint delay | load average | crm-audit Target | curl keep-alive (`curl URL URL …`) | "
             "curl, one process per sample | wrk -t1 -c1 (its p50) | Target − curl keep-alive | Target CPU per request |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        verdict = "met" if r["diff"] <= LIMIT_MS else "missed"
        lines.append(f"| {r['delay_ms']:g} ms | {r['load_before']:.2f} → {r['load_after']:.2f} | {r['target']:.3f} ms | "
                     f"{r['curl_keep']:.3f} ms | {r['curl_fresh']:.3f} ms | {r['wrk']:.3f} ms | "
                     f"{r['diff']:+.3f} ms (goal ≤ +{LIMIT_MS:g} ms: **{verdict}**) | {r['target_cpu_ms']:.3f} ms |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update-doc", action="store_true")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = [measure(d) for d in DELAYS_MS]
    section = markdown(rows, machine_line(load_before, os.getloadavg()[0]))
    print(section)
    if args.update_doc:
        update_block(ROOT / "docs" / "benchmarks.md", "latency", section)
    return 0 if all(r["diff"] <= LIMIT_MS for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
