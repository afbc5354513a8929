"""Helpers shared by the benchmarks: start a loopback server, build a profile for it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from crm_audit.profile import Profile

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def delay_server(delay_ms: float) -> tuple[subprocess.Popen, int]:
    """Start bench/_delay_server.py; the caller terminates it (by this Popen)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "_delay_server.py"), str(port), str(delay_ms)])
    wait_port(port)
    return proc, port


def profile_for(base_url: str, path: str = "/", slo_ms: float = 100_000) -> Profile:
    return Profile.model_validate({
        "name": "bench", "target": {"base_url": base_url, "rate_limit_rps": 10_000, "request_budget": 10_000_000,
                                    "health_path": path},
        "endpoints": [{"name": "bench", "path": path, "slo_p95_ms": slo_ms}],
    })
