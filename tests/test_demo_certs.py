"""The demo's certificates appear whole: a server or client polling for ca.pem never reads half of it."""

from __future__ import annotations

import ssl
import stat
import threading
import time
from pathlib import Path

from crm_audit_demo.certs import generate_certs


def test_a_poller_never_reads_a_partial_ca_file(tmp_path: Path) -> None:
    errors: list[str] = []
    loads = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal loads
        ca = tmp_path / "ca.pem"
        while not done.is_set():
            if ca.exists():
                try:
                    ssl.create_default_context(cafile=str(ca))
                    loads += 1
                except FileNotFoundError:
                    pass  # removed by the loop below between exists() and the read
                except ssl.SSLError as exc:  # e.g. NO_CERTIFICATE_OR_CRL_FOUND: a half-written file
                    errors.append(repr(exc))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        for _ in range(4):
            (tmp_path / "ca.pem").unlink(missing_ok=True)
            paths = generate_certs(tmp_path)
            time.sleep(0.2)  # let the poller read the finished file too
    finally:
        done.set()
        poller.join()
    assert not errors, errors[:3]
    assert loads > 0
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.pem", "server.key", "server.pem"]
