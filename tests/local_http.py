"""A tiny real HTTP server on 127.0.0.1 for core tests (scope, redirects, redaction, errors)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


class LocalServer:
    """Serve ``routes`` (path → handler) on a free loopback port until ``stop()``."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _any(self) -> None:
                path = self.path.split("?")[0]
                outer.hits.append(f"{self.command} {self.path}")
                route = outer.routes.get(path)
                if route is None:
                    status, headers, body = 404, {"Content-Type": "application/json"}, b'{"detail":"not found"}'
                else:
                    status, headers, body = route(self)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def json_route(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Route:
    body = json.dumps(payload).encode()
    return lambda h: (status, {"Content-Type": "application/json", **(headers or {})}, body)


def redirect_route(location: str, status: int = 302) -> Route:
    return lambda h: (status, {"Location": location}, b"")
