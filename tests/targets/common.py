"""Helpers shared by the real-CRM test targets: step timing, cached venvs, server processes.

Used by ``django_crm`` (0.9.0) and ``django_crm_1x`` (1.35); each keeps only what is its own.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from crm_audit.core.processes import stop_processes

__all__ = ["CACHE_ROOT", "build_venv", "requirements_key", "stop_process", "timed", "verbose_log", "wait_http"]

CACHE_ROOT = Path.home() / ".cache" / "crm-audit"
_MARKER = ".crm-audit-complete"


def verbose_log(prefix: str) -> Callable[[str], None]:
    """A logger that writes ``[prefix] msg`` to stderr only when ``CRM_AUDIT_VERBOSE`` is set."""

    def log(msg: str) -> None:
        if os.environ.get("CRM_AUDIT_VERBOSE", "") not in ("", "0"):
            print(f"[{prefix}] {msg}", file=sys.stderr, flush=True)

    return log


@contextmanager
def timed(timings: dict[str, float], step: str, log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Record a step's wall time in ``timings`` (and log it)."""
    t0 = time.monotonic()
    try:
        yield
    finally:
        timings[step] = round(time.monotonic() - t0, 3)
        if log:
            log(f"{step}: {timings[step]:.2f}s")


def requirements_key(requirements: Path, python_version: str) -> str:
    """Cache key of a venv: hash of the pinned requirements file plus the interpreter's major.minor."""
    h = hashlib.sha256(requirements.read_bytes())
    h.update(python_version.encode())
    return h.hexdigest()[:16]


def build_venv(venv: Path, key: str, create: Callable[[Path], None]) -> Path:
    """Return ``venv``, building it with ``create(venv)`` unless its marker already holds ``key``.

    A file lock serialises concurrent builders; the marker is written last, so a half-built
    venv (killed build) is detected and rebuilt.
    """
    marker = venv / _MARKER
    if marker.exists() and marker.read_text().strip() == key:
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text().strip() == key:
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        create(venv)
        marker.write_text(key + "\n")
    return venv


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, log_path: Path | None, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers below 500 while ``proc`` lives; else raise with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is None or proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-4000:] if log_path and log_path.exists() else ""
    raise RuntimeError(f"server did not become ready at {url}:\n{tail}")


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """Stop one process we started and its whole tree (crm_audit.core.processes): SIGTERM, wait, SIGKILL.

    ``proc`` started with ``start_new_session=True`` also has its process group killed.
    """
    if proc is not None:
        stop_processes([proc], grace_s=timeout)
