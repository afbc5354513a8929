"""Single-request latency: crm-audit's Target vs curl vs wrk, against one loopback endpoint.

The endpoint answers after a fixed 50 ms (bench/_delay_server.py). Each tool takes 200
sequential samples; the medians are compared (target: Target within 1.5 ms of curl).
Run: python bench/latency_vs_curl_wrk.py
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys

from _common import delay_server, profile_for

from crm_audit.target import Target

N = 200
DELAY_MS = 50


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


def wrk_median_ms(url: str) -> tuple[float, int]:
    """wrk, 1 thread 1 connection, long enough for about N requests; its own 50th percentile."""
    secs = max(1, round(N * (DELAY_MS + 1) / 1000))
    r = subprocess.run(["wrk", "-t1", "-c1", f"-d{secs}s", "--latency", url], capture_output=True, text=True,
                       check=True)
    m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", r.stdout, re.M)
    n = int(re.search(r"(\d+) requests in", r.stdout).group(1))
    val = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return val, n


def main() -> int:
    proc, port = delay_server(DELAY_MS)
    url = f"http://127.0.0.1:{port}/"
    try:
        load_before = os.getloadavg()[0]
        tgt_s, keep_s, fresh_s = interleaved_ms(url)
        tgt, crl, fresh = statistics.median(tgt_s), statistics.median(keep_s), statistics.median(fresh_s)
        wrk, wrk_n = wrk_median_ms(url)
        load_after = os.getloadavg()[0]
    finally:
        proc.terminate()
        proc.wait()
    diff = tgt - crl
    print(f"endpoint delay {DELAY_MS} ms, {N} samples each; load average {load_before:.2f} -> {load_after:.2f}"
          f" on {os.cpu_count()} cores")
    print(f"crm-audit Target median {tgt:.3f} ms")
    print(f"curl keep-alive median {crl:.3f} ms (one process, reused connection)")
    print(f"curl per process median {fresh:.3f} ms (new process and connection per sample)")
    print(f"wrk (c1)       median {wrk:.3f} ms ({wrk_n} requests)")
    print(f"Target - curl keep-alive {diff:+.3f} ms; Target - curl per process {tgt - fresh:+.3f} ms")
    print(f"verdict  {diff:+.3f} ms  -> {'PASS' if abs(diff) <= 1.5 else 'MISS'} (limit 1.5 ms)")
    return 0 if abs(diff) <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
