"""The server process: build the app, the TLS context and run uvicorn on 127.0.0.1.

Runs in the child that ``DemoServer`` starts (``python -m crm_audit_demo serve``), so load
tests hit a process of its own. Secrets come from the environment, never argv.
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

HOST = "127.0.0.1"
PARENT_PID_ENV = "DEMO_PARENT_PID"
CLEANUP_ENV = "DEMO_CLEANUP_DATA_DIR"  # "1": the data dir is the parent's temp dir; remove it if orphaned
SECRETS_FILENAME = "secrets.env"


def _watch_parent(parent_pid: int, orphaned: threading.Event, stop: Callable[[], None]) -> None:
    """Call ``stop`` once the process that started this server is gone (checked every second)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                orphaned.set()
                stop()
                return

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _write_generated(data_dir: Path, values: Mapping[str, str], names: Iterable[str]) -> Path:
    path = data_dir / SECRETS_FILENAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(f"{name}={values[name]}\n" for name in names)
    return path


def run(port: int, flaws: Iterable[str] = (), delay_ms: int = 0, capacity: int = 16, tls: bool = True,
        data_dir: Path | None = None, seed: int = 7, env: Mapping[str, str] | None = None,
        protocol: str = "rest") -> None:
    """Serve the demo CRM until SIGTERM/SIGINT."""
    import jwt.warnings
    import uvicorn

    from crm_audit_demo.app import create_app
    from crm_audit_demo.certs import generate_certs, server_ssl_context
    from crm_audit_demo.config import DemoConfig, secrets_from_env

    # default-secret signs with a 6-byte key on purpose; PyJWT would warn on every request.
    warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = os.environ if env is None else env
    orphaned = threading.Event()
    directory = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="crm-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    values, generated = secrets_from_env(env)
    if generated:
        path = _write_generated(directory, values, generated)
        print(f"crm-audit demo: generated {len(generated)} secret(s) into {path}", file=sys.stderr)
    config = DemoConfig(secrets=values, data_dir=directory, flaws=frozenset(flaws), delay_ms=delay_ms,
                        capacity=capacity, tls=tls, seed=seed, protocol=protocol)
    factory: Callable[..., ssl.SSLContext] | None = None
    if tls:
        context = server_ssl_context(generate_certs(directory), weak=config.has("weak-tls"))
        factory = lambda _config, _default: context  # noqa: E731
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(
        app, host=HOST, port=port, ssl_context_factory=factory,
        server_header=config.has("verbose-banner"), date_header=True,
        access_log=False, log_level="warning", timeout_graceful_shutdown=2,
        backlog=2048, timeout_keep_alive=15,
    ))
    if env.get(PARENT_PID_ENV, "").isdigit():
        # should_exit (not a signal): uvicorn re-raises caught signals, which would skip the cleanup.
        _watch_parent(int(env[PARENT_PID_ENV]), orphaned, lambda: setattr(server, "should_exit", True))
    print(f"crm-audit demo: serving {'https' if tls else 'http'}://{HOST}:{port} data={directory}",
          file=sys.stderr, flush=True)
    server.run()
    if orphaned.is_set() and env.get(CLEANUP_ENV) == "1":
        shutil.rmtree(directory, ignore_errors=True)
