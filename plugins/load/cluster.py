"""Locust master and worker processes, driven from the core process through files.

The core process never imports locust (gevent's monkey-patching breaks a process that has
already imported requests). It starts ``python -m locust`` as a headless master plus local
worker subprocesses (remote ones may join: ``crm-audit load-worker``), steers the users
through the control file the generated shape reads, and reads the raw request rows the
master appends to the samples file.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_audit.core.errors import CannotRun
from crm_audit.core.net import free_port
from crm_audit.core.processes import stop_processes

SECRET_ENV = "CRM_AUDIT_LOAD_SECRET"
MIN_SECRET_CHARS = 16
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class LoadRunError(CannotRun, RuntimeError):
    """Locust could not be started or died; the message carries the tail of its log."""


def load_secret(bind_host: str, external_workers: int) -> str:
    """The secret every worker signs its sample reports with (the master drops unsigned ones).

    From ``CRM_AUDIT_LOAD_SECRET`` when set (and required when the master listens beyond
    loopback or waits for workers from elsewhere: they must hold the same value); else a
    fresh random one for this run's local workers. It travels only in the environment.
    """
    secret = os.environ.get(SECRET_ENV, "")
    if secret:
        if len(secret) < MIN_SECRET_CHARS:
            raise LoadRunError(f"{SECRET_ENV} is shorter than {MIN_SECRET_CHARS} characters")
        return secret
    if bind_host not in _LOOPBACK or external_workers:
        where = f"master_bind {bind_host}" if bind_host not in _LOOPBACK else "external_workers"
        raise LoadRunError(f"{where}: workers from other machines must sign their samples: set {SECRET_ENV} "
                           "(the same value, at least 16 characters, for the audit and every crm-audit load-worker)")
    return secrets.token_hex(32)


def write_secret_file(path: Path, data: Any) -> None:
    """Write JSON to a new file readable only by this user (0600), never wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)


def locust_env(headers_file: Path | None, verify: bool | str) -> dict[str, str]:
    """Environment of a Locust process: no proxies, the headers file and the TLS setting."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["CRM_AUDIT_LOAD_VERIFY"] = "0" if verify is False else ("1" if verify is True else str(verify))
    if headers_file is not None:
        env["CRM_AUDIT_LOAD_HEADERS"] = str(headers_file)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def worker_command(locustfile: Path, master_host: str, master_port: int) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(locustfile), "--worker",
            "--master-host", master_host, "--master-port", str(master_port), "--loglevel", "WARNING"]


@dataclass
class Cluster:
    """One headless Locust master plus ``local_workers`` worker processes on this machine."""

    workdir: Path
    locustfile: Path
    headers_file: Path | None
    verify: bool | str
    budget: int
    max_rps: float
    hard_stop_s: float
    local_workers: int = 1
    external_workers: int = 0
    bind_host: str = "127.0.0.1"
    bind_port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _offset: int = 0
    rows: list[tuple[float, str, float, bool]] = field(default_factory=list)

    @property
    def control(self) -> Path:
        return self.workdir / "control.json"

    @property
    def status_path(self) -> Path:
        return self.workdir / "status.json"

    @property
    def samples_path(self) -> Path:
        return self.workdir / "samples.jsonl"

    def start(self, users: int, spawn_rate: float) -> None:
        """Start master and workers; the shape starts at ``users`` once all workers joined."""
        self.set_users(users, spawn_rate)
        self.samples_path.touch()
        port = self.bind_port or free_port(self.bind_host)
        self.bind_port = port
        env = locust_env(self.headers_file, self.verify)
        env[SECRET_ENV] = load_secret(self.bind_host, self.external_workers)
        env.update(CRM_AUDIT_LOAD_CONTROL=str(self.control), CRM_AUDIT_LOAD_STATUS=str(self.status_path),
                   CRM_AUDIT_LOAD_SAMPLES=str(self.samples_path), CRM_AUDIT_LOAD_BUDGET=str(self.budget), CRM_AUDIT_LOAD_MAX_RPS=str(self.max_rps))
        n = self.local_workers + self.external_workers
        master = [sys.executable, "-m", "locust", "-f", str(self.locustfile), "--master", "--headless",
                  "--master-bind-host", self.bind_host, "--master-bind-port", str(port),
                  "--expect-workers", str(n), "--expect-workers-max-wait", "60",
                  "--run-time", f"{int(self.hard_stop_s) + 5}s", "--stop-timeout", "2",
                  "--only-summary", "--loglevel", "WARNING"]
        self._spawn(master, env, "master.log")
        for i in range(self.local_workers):
            self._spawn(worker_command(self.locustfile, "127.0.0.1" if self.bind_host in ("0.0.0.0", "") else self.bind_host, port),
                        env, f"worker{i}.log")

    def _spawn(self, cmd: list[str], env: dict[str, str], log_name: str) -> None:
        log = open(self.workdir / log_name, "ab")
        try:
            self.procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                               cwd=self.workdir, start_new_session=True))
        finally:
            log.close()

    def set_users(self, users: int, spawn_rate: float) -> None:
        _atomic_json(self.control, {"users": int(users), "spawn_rate": float(spawn_rate)})

    def request_stop(self) -> None:
        _atomic_json(self.control, {"stop": True})

    def status(self) -> dict[str, Any]:
        try:
            status: dict[str, Any] = json.loads(self.status_path.read_text(encoding="utf-8"))
            return status
        except (OSError, ValueError):
            return {}

    def alive(self) -> bool:
        return bool(self.procs) and self.procs[0].poll() is None

    def wait_users(self, users: int, timeout_s: float) -> bool:
        """Wait until the master reports ``users`` spawned; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.status().get("users") == users:
                return True
            if not self.alive():
                raise LoadRunError("locust master exited early:\n" + self.log_tail())
            time.sleep(0.05)
        return False

    def read_rows(self) -> list[tuple[float, str, float, bool]]:
        """Rows appended since the last call (also kept in ``self.rows``)."""
        new: list[tuple[float, str, float, bool]] = []
        with open(self.samples_path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # only complete lines
        self._offset += end
        for line in data[:end].splitlines():
            if line.strip():
                new.extend((float(t), str(n), float(ms), bool(ok)) for t, n, ms, ok in json.loads(line))
        self.rows.extend(new)
        return new

    def wait_rows_final(self, timeout_s: float) -> bool:
        """After ``request_stop``: wait until the master has the workers' last rows (or has exited)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.status().get("rows_final") or not self.alive():
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the shape to stop, then make sure every process we started is gone (idempotent).

        Once the master has the workers' last rows (``rows_final``) the processes have nothing
        left to do but print and exit, so they are killed at once instead of waited for.
        """
        if all(p.poll() is not None for p in self.procs):
            return
        if self.workdir.is_dir():
            self.request_stop()
        if self.status().get("rows_final"):
            timeout_s = 0.0
        deadline = time.monotonic() + timeout_s
        for p in self.procs:
            try:
                p.wait(timeout=max(0.0 if timeout_s == 0 else 0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        stop_processes(self.procs, grace_s=0 if timeout_s == 0 else 3)

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for log in sorted(self.workdir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


def _atomic_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ctl")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
