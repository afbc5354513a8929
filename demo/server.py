"""``DemoServer``: start the demo CRM as a child process on a loopback port, and stop it.

Only the standard library, psutil and two small core helpers (``crm_audit.core.net``,
``crm_audit.core.processes``) are imported here, so ``import crm_audit_demo`` stays cheap.
"""

from __future__ import annotations

import atexit
import http.client
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from crm_audit.core.net import free_port
from crm_audit.core.processes import stop_processes
from crm_audit_demo.config import PROTOCOLS, SECRET_ENV_NAMES, generate_secret
from crm_audit_demo.flaws import validate_flaws
from crm_audit_demo.serve import CLEANUP_ENV, HOST, PARENT_PID_ENV

START_TIMEOUT_S = 20.0
STOP_GRACE_S = 5.0
LOG_FILENAME = "server.log"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])
_running: weakref.WeakSet[DemoServer] = weakref.WeakSet()


class DemoServer:
    """Handle on one demo CRM process; a context manager (or call ``start()``/``stop()``).

    After ``start()``: ``base_url`` (e.g. ``https://127.0.0.1:54321``), ``ca_path`` (PEM of the
    test CA, None without TLS), ``pid``, ``env`` (DEMO_* env-var name -> secret), ``flaws``,
    ``data_dir``. The data dir is a temporary directory removed by ``stop()`` unless given.
    """

    def __init__(self, flaws: Iterable[str] = (), delay_ms: int = 0, capacity: int = 16, tls: bool = True,
                 port: int = 0, data_dir: Path | None = None, seed: int = 7, protocol: str = "rest") -> None:
        self.flaws: frozenset[str] = validate_flaws(flaws)
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown demo protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
        self.protocol = protocol
        if capacity < 1 or delay_ms < 0:
            raise ValueError("capacity must be >= 1 and delay_ms >= 0")
        self.delay_ms, self.capacity, self.tls, self.seed = delay_ms, capacity, tls, seed
        self.port = port
        self._own_dir = data_dir is None
        self.data_dir: Path | None = Path(data_dir) if data_dir is not None else None
        self.env: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    # -- public properties -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Scheme, host and port of the running server."""
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}"

    @property
    def ca_path(self) -> Path | None:
        """The test CA certificate (PEM) to verify the server with, or None without TLS."""
        return self.data_dir / "ca.pem" if self.tls and self.data_dir is not None else None

    @property
    def profile_name(self) -> str:
        """The bundled profile that audits this server: demo.yaml (REST) or demo-jsonrpc.yaml."""
        return "demo.yaml" if self.protocol == "rest" else f"demo-{self.protocol}.yaml"

    @property
    def pid(self) -> int | None:
        """Process id of the server process while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> DemoServer:
        """Launch the server process and wait until ``GET /api/health`` answers."""
        if self._proc is not None:
            raise RuntimeError("demo server already started")
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="crm-demo-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {name: generate_secret(name) for name in SECRET_ENV_NAMES}
        attempts = 3 if self.port == 0 else 1
        fixed_port = self.port
        for attempt in range(attempts):
            self.port = fixed_port or free_port(HOST)
            try:
                self._launch()
                self._wait_ready()
                _running.add(self)
                return self
            except _PortInUse:
                self._terminate()
                if attempt == attempts - 1:
                    self.stop()
                    raise RuntimeError(f"demo server: port {self.port} is in use") from None
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Terminate the server (SIGTERM, SIGKILL after 5 s); remove its temp data dir. Idempotent."""
        self._terminate()
        _running.discard(self)
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------
    def _command(self) -> list[str]:
        assert self.data_dir is not None
        cmd = [sys.executable, "-m", "crm_audit_demo", "serve", "--port", str(self.port),
               "--delay-ms", str(self.delay_ms), "--capacity", str(self.capacity),
               "--data-dir", str(self.data_dir), "--seed", str(self.seed)]
        for flaw in sorted(self.flaws):
            cmd += ["--flaw", flaw]
        if not self.tls:
            cmd.append("--no-tls")
        if self.protocol != "rest":
            cmd += ["--protocol", self.protocol]
        return cmd

    def _launch(self) -> None:
        assert self.data_dir is not None
        env = dict(os.environ)
        env.update(self.env)
        env[PARENT_PID_ENV] = str(os.getpid())
        env[CLEANUP_ENV] = "1" if self._own_dir else "0"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._log = self.data_dir / LOG_FILENAME
        (self.data_dir / "ca.pem").unlink(missing_ok=True)
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          env=env, start_new_session=True, close_fds=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                tail = self.log_tail()
                if "address already in use" in tail.lower():
                    raise _PortInUse()
                raise RuntimeError(f"demo server exited with code {self._proc.returncode} during startup:\n{tail}")
            if self._healthy():
                return
            time.sleep(0.05)
        tail = self.log_tail()
        raise RuntimeError(f"demo server not healthy after {START_TIMEOUT_S:.0f} s:\n{tail}")

    def _healthy(self) -> bool:
        context = None
        if self.tls:
            ca = self.ca_path
            if ca is None or not ca.exists():
                return False
            context = ssl.create_default_context(cafile=str(ca))
        conn: http.client.HTTPConnection
        if context is not None:
            conn = http.client.HTTPSConnection(HOST, self.port, timeout=2, context=context)
        else:
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", "/api/health")
            return conn.getresponse().status == 200
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server process wrote to stdout/stderr."""
        if self._log is None or not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_processes([proc], grace_s=STOP_GRACE_S)

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.base_url}" if self.running else "stopped"
        return f"<DemoServer {state} flaws={sorted(self.flaws)}>"


class _PortInUse(Exception):
    """The chosen port was taken between choosing and binding it."""


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()
