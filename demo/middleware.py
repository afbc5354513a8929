"""Pure ASGI middlewares: response headers, CORS, error pages and the capacity limiter.

Order (outermost first): SecurityHeaders -> Cors -> Errors -> Capacity -> routes, so that
error pages and CORS answers carry the same headers as any other response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("crm_audit_demo")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
NO_STORE = (b"cache-control", b"no-store")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path.startswith("/backups/")


class SecurityHeaders:
    """Adds the security headers (or, per flaws, omits them / adds a version banner)."""

    def __init__(self, app: ASGIApp, *, enabled: bool, hsts: bool, banner: bool) -> None:
        self.app, self.enabled, self.hsts, self.banner = app, enabled, hsts, banner
        if banner:
            import fastapi

            self.powered_by = f"FastAPI/{fastapi.__version__} Python/{platform.python_version()}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        api = _is_api(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-powered-by"]
                present = {k.lower() for k, _ in headers}
                extra: list[tuple[bytes, bytes]] = []
                if self.enabled:
                    extra += [h for h in SECURITY_HEADERS if h[0] not in present]
                    if api and b"cache-control" not in present:
                        extra.append(NO_STORE)
                    if self.hsts and https:
                        extra.append(HSTS)
                if self.banner:
                    extra.append((b"x-powered-by", self.powered_by))
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Cors:
    """With ``reflect`` on (the cors flaw) any Origin is trusted with credentials; with ``any_origin`` (the
    cors-any-origin flaw) every answer says ``Access-Control-Allow-Origin: *`` and preflights allow
    ``Authorization``; else no CORS."""

    ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
    ALLOW_HEADERS = b"Authorization, Content-Type, X-API-Key"

    def __init__(self, app: ASGIApp, *, reflect: bool, any_origin: bool = False) -> None:
        self.app, self.reflect, self.any_origin = app, reflect, any_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin") if scope["type"] == "http" else None
        if not (self.reflect or self.any_origin) or origin is None:
            await self.app(scope, receive, send)
            return
        cors = ([(b"access-control-allow-origin", origin), (b"access-control-allow-credentials", b"true"),
                 (b"vary", b"Origin")] if self.reflect else [(b"access-control-allow-origin", b"*")])
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            requested = _header(scope, b"access-control-request-headers") or self.ALLOW_HEADERS
            await send({"type": "http.response.start", "status": 204 if self.reflect else 200, "headers": cors + [
                (b"access-control-allow-methods", self.ALLOW_METHODS),
                (b"access-control-allow-headers", requested if self.reflect else self.ALLOW_HEADERS),
                (b"access-control-max-age", b"600"),
            ]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + cors
            await send(message)

        await self.app(scope, receive, send_with_cors)


class Errors:
    """Turns unhandled exceptions into 500 JSON ``{"detail": "internal error"}``.

    With ``traces`` on (the stack-traces flaw) the body is the Python traceback instead.
    """

    def __init__(self, app: ASGIApp, *, traces: bool) -> None:
        self.app, self.traces = app, traces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            text = traceback.format_exc()
            log.error("unhandled error on %s %s\n%s", scope.get("method"), scope.get("path"), text)
            if self.traces:
                body, ctype = text.encode(), b"text/plain; charset=utf-8"
            else:
                body, ctype = json.dumps({"detail": "internal error"}).encode(), b"application/json"
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


class Capacity:
    """At most ``capacity`` API requests in flight; each sleeps ``delay_s`` holding its slot.

    ``/api/health`` bypasses it, so liveness checks stay fast under load. Throughput is
    therefore about capacity / delay, and latency grows once clients exceed capacity.
    """

    def __init__(self, app: ASGIApp, *, capacity: int, delay_s: float) -> None:
        self.app, self.delay_s = app, delay_s
        self.slots = asyncio.Semaphore(capacity)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/") or path == "/api/health":
            await self.app(scope, receive, send)
            return
        async with self.slots:
            if self.delay_s > 0:
                await asyncio.sleep(self.delay_s)
            await self.app(scope, receive, send)
