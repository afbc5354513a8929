"""A hostile CRM for reliability tests: a small real HTTP(S) server on 127.0.0.1 that misbehaves on purpose.

It serves enough of a CRM API for ``crm-audit audit`` (login returning a token, /api/contacts,
/api/accounts, /api/me, /health) and one fault chosen at start-up, applied to the data paths
(the /api/... paths other than login), or to every path for ``storm``, ``ratelimit`` and
``die``. Every fault is also reachable on its own at ``/fault/<name>`` whatever the start-up
fault, so unit tests need one server only.

It runs in its own process (``FaultTarget``), stops when its parent closes its stdin or after
``lifetime_s``, and is stopped by its own PID. TLS certificates come from tests/tls_servers.py,
generated at test time into a temporary folder.
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from crm_audit.core.processes import stop_processes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tls_servers import Issued, _QuietServer, make_ca, make_leaf  # noqa: E402 - shared test PKI and server

FAULTS: dict[str, str] = {
    "none": "a well-behaved CRM",
    "trickle": "data answers trickle one byte every 0.1 s",
    "stall": "data answers send their headers and 10 bytes, then nothing",
    "huge": "data answers are 200 MiB long, without Content-Length, generated as sent",
    "gzip_bomb": "data answers are 1 MiB of gzip that inflates to 1 GiB",
    "deep_json": "data answers are JSON nested 50 000 levels deep",
    "deep_json_login": "the login answer is JSON nested 50 000 levels deep",
    "reset": "after login, data requests get a TCP reset instead of an answer",
    "truncated": "data answers declare 5000 bytes and send 100",
    "storm": "the first two requests of every path answer 503 and 502, then the CRM recovers",
    "ratelimit": "the first request of every path answers 429 with Retry-After (1 s, or an HTTP date in turn)",
    "redirect_loop": "data paths redirect to themselves",
    "offscope_redirect": "data paths redirect to http://example.invalid/",
    "html": "data paths answer an HTML page where JSON is expected",
    "die": "the CRM process exits after its sixth request",
}
#: faults that need the server to speak TLS; the value is the certificate mode
TLS_FAULTS = {"expired": "expired", "handshake": "handshake"}
PASSWORD = "fault-pw-Xq7-secret"
TOKEN = "fault-token-Zr81-abcdefgh"
_TLS_ALERT_HANDSHAKE_FAILURE = b"\x15\x03\x01\x00\x02\x02\x28"


class FaultTarget:
    """The fault server in its own process; ``base_url`` once started, ``ca_path`` for TLS modes."""

    def __init__(self, fault: str, workdir: Path | None = None, lifetime_s: float = 300.0) -> None:
        if fault not in FAULTS and fault not in TLS_FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self.fault = fault
        self.workdir = workdir
        self.lifetime_s = lifetime_s
        self.port = 0
        self.ca_path: Path | None = None
        self._proc: subprocess.Popen[str] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.fault in TLS_FAULTS else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://localhost:{self.port}" if self.fault in TLS_FAULTS else f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultTarget:
        config: dict[str, object] = {"fault": self.fault, "lifetime_s": self.lifetime_s}
        if self.fault == "expired":
            if self.workdir is None:
                raise ValueError("TLS faults need a workdir for the test certificates")
            ca = make_ca(self.workdir)
            leaf: Issued = make_leaf(self.workdir, "expired", ca, valid_from_days=-200, valid_to_days=-2)
            self.ca_path = ca.cert_path
            config["cert"] = [str(leaf.cert_path), str(leaf.key_path)]
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError("fault target did not start")
        self.port = int(line)
        return self

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the server process this object started (by its own PID)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe:
                    pipe.close()
            except OSError:
                pass
        stop_processes([proc])

    def __enter__(self) -> FaultTarget:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- the server (child process)

CONTACTS = [
    {"id": i, "first_name": f"Ann{i}", "last_name": f"Lee{i}", "email": f"ann{i}@example.test",
     "phone": f"+4420700000{i:02d}", "account_id": 1 + i % 3, "created_at": "2026-01-02T03:04:05Z",
     "updated_at": "2026-05-01T00:00:00Z"}
    for i in range(1, 21)
]
ACCOUNTS = [{"id": i, "name": f"Account {i}"} for i in range(1, 4)]
_BOMB: list[bytes] = []
_BOMB_LOCK = threading.Lock()


def gzip_bomb() -> bytes:
    """1 GiB of zeros as gzip (about 1 MiB): one fully flushed deflate segment repeated, built once."""
    with _BOMB_LOCK:
        if not _BOMB:
            mib = bytes(1024 * 1024)
            z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            segment = z.compress(mib) + z.flush(zlib.Z_FULL_FLUSH)  # history reset: the segment repeats
            crc = 0
            for _ in range(1024):
                crc = zlib.crc32(mib, crc)
            header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
            last = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # the final, empty block
            _BOMB.append(header + segment * 1024 + last + struct.pack("<II", crc, (1024 ** 3) & 0xFFFFFFFF))
        return _BOMB[0]


class _State:
    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.lock = threading.Lock()
        self.hits: dict[str, int] = {}
        self.total = 0
        self.limited = 0

    def count(self, path: str) -> tuple[int, int]:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            self.total += 1
            return self.hits[path], self.total


def make_handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        # ---------------------------------------------------------- plumbing
        def _send(self, status: int, body: bytes, ctype: str = "application/json", **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, payload: object, **headers: str) -> None:
            self._send(status, json.dumps(payload).encode(), **headers)

        def _body(self) -> dict:
            try:
                data = json.loads(self.request_body or b"{}")
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}

        # ---------------------------------------------------------- dispatch
        def _any(self) -> None:
            path = self.path.split("?")[0]
            length = int(self.headers.get("Content-Length") or 0)
            self.request_body = self.rfile.read(length) if length else b""  # read first: keep-alive stays in step
            n_path, n_total = state.count(path)
            if path.startswith("/fault/"):
                fault = path.removeprefix("/fault/").split("/")[0]
                return self._fault(fault, n_path, n_total) if hasattr(self, f"_f_{fault}") else self._json(404, {})
            fault = state.fault
            if fault == "die" and n_total > 6:
                os._exit(0)  # the CRM dies mid-audit: the listening socket goes with it
            if fault == "storm" and n_path <= 2:
                return self._json(503 if n_path == 1 else 502, {"detail": "overloaded"})
            if fault == "ratelimit" and n_path == 1:
                return self._fault("ratelimit", n_path, n_total)
            if path == "/api/auth/login" and self.command == "POST":
                return self._login(fault)
            data_path = path.startswith("/api/")
            if data_path and fault not in ("none", "storm", "ratelimit", "die", "deep_json_login"):
                return self._fault(fault, n_path, n_total)
            return self._crm(path)

        def _login(self, fault: str) -> None:
            body = self._body()
            if body.get("password") != PASSWORD:
                return self._json(401, {"detail": "bad credentials"})
            if fault == "deep_json_login":
                return self._send(200, b"[" * 50_000 + b"]" * 50_000)
            self._json(200, {"access_token": TOKEN, "token_type": "bearer"})

        def _crm(self, path: str) -> None:
            if path in ("/", "/health"):
                return self._json(200, {"status": "ok"})
            if not path.startswith("/api/"):
                return self._json(404, {"detail": "not found"})
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._json(401, {"detail": "not authenticated"})
            if path == "/api/me":
                return self._json(200, {"id": 1, "email": "admin@fault.test", "role": "admin"})
            for name, rows in (("contacts", CONTACTS), ("accounts", ACCOUNTS)):
                if path.rstrip("/") == f"/api/{name}":
                    q = dict(p.split("=", 1) for p in (self.path.split("?", 1)[1:] or [""])[0].split("&") if "=" in p)
                    off, lim = int(q.get("offset", 0) or 0), int(q.get("limit", 50) or 50)
                    return self._json(200, {"items": rows[off:off + lim], "total": len(rows)})
                if path.startswith(f"/api/{name}/"):
                    rid = path.rsplit("/", 1)[1]
                    row = next((r for r in rows if str(r["id"]) == rid), None)
                    return self._json(200, row) if row else self._json(404, {"detail": "not found"})
            self._json(404, {"detail": "not found"})

        # ---------------------------------------------------------- faults
        def _fault(self, fault: str, n_path: int, n_total: int) -> None:
            handler: Callable[[int], None] = getattr(self, f"_f_{fault}", lambda n: self._crm("/health"))
            handler(n_path)

        def _f_trickle(self, n: int) -> None:
            body = json.dumps({"items": CONTACTS[:5], "total": 5}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.1)

        def _f_stall(self, n: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"items": [')
            self.wfile.flush()
            self.connection.settimeout(1.0)
            for _ in range(120):  # hold the connection until the client gives up (or 2 min)
                try:
                    if self.connection.recv(1) == b"":
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            self.close_connection = True

        def _f_huge(self, n: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            block = b" " * (1024 * 1024)
            self.wfile.write(b'{"items": [')
            for _ in range(200):
                self.wfile.write(block)
            self.wfile.write(b"]}")

        def _f_gzip_bomb(self, n: int) -> None:
            self._send(200, gzip_bomb(), Content_Encoding="gzip")

        def _f_gzip_ok(self, n: int) -> None:
            body = json.dumps({"items": CONTACTS, "total": len(CONTACTS)}).encode()
            self._send(200, zlib.compress(body, wbits=16 + zlib.MAX_WBITS), Content_Encoding="gzip")

        def _f_deflate_raw(self, n: int) -> None:
            z = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            self._send(200, z.compress(b'{"raw": "deflate"}') + z.flush(), Content_Encoding="deflate")

        def _f_deep_json(self, n: int) -> None:
            self._send(200, b"[" * 50_000 + b"]" * 50_000)

        def _f_reset(self, n: int) -> None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _f_truncated(self, n: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b'{"items": [' + b" " * 89)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def _f_storm(self, n: int) -> None:
            if n <= 2:
                return self._json(503 if n == 1 else 502, {"detail": "overloaded"})
            self._json(200, {"ok": True})

        def _f_ratelimit(self, n: int) -> None:
            if n > 1:
                return self._json(200, {"ok": True})
            with state.lock:
                state.limited += 1
                as_date = state.limited % 2 == 0
            after = email.utils.formatdate(time.time() + 1.5, usegmt=True) if as_date else "1"
            self._json(429, {"detail": "slow down"}, Retry_After=after)

        def _f_redirect_loop(self, n: int) -> None:
            self._send(302, b"", Location=self.path)

        def _f_offscope_redirect(self, n: int) -> None:
            self._send(302, b"", Location="http://example.invalid/steal")

        def _f_html(self, n: int) -> None:
            self._send(200, b"<!doctype html><html><body>Welcome to the CRM</body></html>", ctype="text/html")

        def _f_die(self, n: int) -> None:
            self._json(200, {"ok": True})

        def _f_none(self, n: int) -> None:
            self._json(200, {"ok": True})

        _f_deep_json_login = _f_deep_json

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

    return Handler


class _FaultServer(_QuietServer):
    """tests/tls_servers' quiet threading server; ``handshake`` answers every TLS hello with an alert."""

    handshake_alert = False

    def finish_request(self, request, client_address) -> None:  # type: ignore[override]
        if self.handshake_alert:
            try:
                request.settimeout(2)
                request.recv(4096)
                request.sendall(_TLS_ALERT_HANDSHAKE_FAILURE)
            except OSError:
                pass
            return
        super().finish_request(request, client_address)


def serve(config: dict) -> None:
    """Child-process body: bind, print the port, serve until stdin closes or the lifetime ends."""
    import ssl

    fault = config["fault"]
    server = _FaultServer(("127.0.0.1", 0), make_handler(_State(fault if fault in FAULTS else "none")))
    server.daemon_threads = True
    if fault == "handshake":
        server.handshake_alert = True
    if config.get("cert"):
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*config["cert"])
        server.tls = tls
    gzip_bomb()  # about 0.3 s: built before the port is announced, so no request waits for it
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    print(server.server_address[1], flush=True)
    stop.wait(float(config.get("lifetime_s", 300)))
    os._exit(0)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--serve":
    serve(json.loads(sys.argv[2]))
