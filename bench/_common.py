"""Helpers shared by the benchmarks: start a loopback server, build a profile for it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from crm_audit.core.profile import Profile

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


# --------------------------------------------------------------------------- figures in docs/

ROOT = HERE.parent


def machine_line(load_before: float, load_after: float) -> str:
    """The machine and its load average around a measurement (every figure in docs/ carries one)."""
    import platform

    return (f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}; "
            f"load average {load_before:.2f} before / {load_after:.2f} after")


def update_block(doc: Path, name: str, text: str) -> None:
    """Replace what lies between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in ``doc``.

    The markers must already be in the document (a script never invents where its figures go).
    """
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    body = doc.read_text(encoding="utf-8")
    i, j = body.find(start), body.find(end)
    if i == -1 or j == -1 or j < i:
        raise SystemExit(f"{doc}: markers {start} … {end} not found")
    doc.write_text(body[: i + len(start)] + "\n" + text.strip() + "\n" + body[j:], encoding="utf-8")


def utc_now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
