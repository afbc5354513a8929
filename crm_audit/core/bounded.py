"""Bounded reading of one HTTP answer: a total deadline, a byte cap on the decoded body, a JSON depth bound.

Used only by :mod:`crm_audit.core.target`. The body is read in small pieces with ``read1`` (never
"wait for N bytes"), the socket's read timeout is set to ``min(timeout_s, time left)`` before
each piece, and gzip/deflate are decoded here with ``max_length`` so a decompression bomb never
expands past the cap.
"""

from __future__ import annotations

import email.utils
import json
import re
import socket
import time
import zlib
from itertools import accumulate
from typing import Any

from crm_audit.core.errors import CannotRun

CHUNK = 64 * 1024
#: deepest JSON nesting an answer may have (a CRM record is a few levels deep)
MAX_JSON_DEPTH = 200
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class DeadlineHit(CannotRun):
    """The answer did not come in whole before the request's deadline."""


class CapHit(CannotRun):
    """The (decoded) answer is larger than the byte cap."""


class TooDeep(ValueError):
    """The JSON nests deeper than :data:`MAX_JSON_DEPTH` (or than Python can parse)."""


class _Inflater:
    """gzip / deflate decoder whose every call yields at most ``limit`` bytes."""

    def __init__(self, encoding: str) -> None:
        self.gzip = encoding in ("gzip", "x-gzip")
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS if self.gzip else zlib.MAX_WBITS)
        self._first = True
        self._tail = b""

    def feed(self, data: bytes, limit: int) -> bytes:
        buf = self._tail + data
        if self._first and not self.gzip and buf:
            self._first = False
            try:  # "deflate" is zlib-wrapped by the RFC, raw in practice: try both, as browsers do
                out = self._obj.decompress(buf, limit)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._obj.decompress(buf, limit)
        else:
            out = self._obj.decompress(buf, limit)
        self._tail = self._obj.unconsumed_tail
        if self.gzip and self._obj.eof and self._obj.unused_data:  # another gzip member follows
            rest = self._obj.unused_data
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._tail = rest
        return out

    @property
    def pending(self) -> bool:
        return bool(self._tail)


def _socket_of(raw: Any) -> socket.socket | None:
    """The socket under a urllib3 response, to bound each read; None when it cannot be found."""
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if sock is None:
        sock = getattr(getattr(raw, "_connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def read_body(raw: Any, encoding: str | None, declared: str | None, *, deadline: float, read_timeout: float,
              cap: int) -> bytes:
    """Read a urllib3 response body within ``deadline`` (monotonic) and ``cap`` decoded bytes.

    Raises DeadlineHit (deadline passed, or no byte came for ``read_timeout``), CapHit, or what
    urllib3 raises for a broken connection or a body shorter than its Content-Length.
    """
    from urllib3.exceptions import ReadTimeoutError

    enc = (encoding or "").strip().lower()
    inflater = _Inflater(enc) if enc in ("gzip", "x-gzip", "deflate") else None
    if inflater is None and declared and declared.strip().isdigit() and int(declared) > cap:
        raise CapHit(f"declared {int(declared)} bytes")
    sock = _socket_of(raw)
    read = getattr(raw, "read1", None) or raw.read  # read1: one recv, never "wait for N bytes"
    out = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineHit()
        if _at_eof(raw):  # http.client closed the body at its Content-Length or last chunk
            piece = b""
            break
        if sock is not None and sock.fileno() != -1:
            sock.settimeout(min(read_timeout, left))
        try:
            piece = read(CHUNK, decode_content=False)
        except (ReadTimeoutError, TimeoutError):
            raise DeadlineHit() from None
        if inflater is None:
            out += piece
        else:
            data = piece
            while True:  # one compressed piece may expand to many bounded outputs
                out += inflater.feed(data, cap - len(out) + 1)
                data = b""
                if len(out) > cap or not inflater.pending:
                    break
        if len(out) > cap:
            raise CapHit("decompressed" if inflater is not None else "read")
        if not piece:
            break
    return bytes(out)


def _at_eof(raw: Any) -> bool:
    """True once the underlying http.client response has been read to its end (and closed)."""
    fp = getattr(raw, "_fp", None)
    isclosed = getattr(fp, "isclosed", None)
    return fp is None or (bool(isclosed()) if isclosed else False)


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` (TooDeep), never RecursionError."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise TooDeep(f"nested too deep to parse (more than {max_depth} levels)") from None
    if isinstance(data, (dict, list)):
        text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
        if text.count("[") + text.count("{") > max_depth and json_depth(text) > max_depth:
            raise TooDeep(f"nested more than {max_depth} levels deep")
    return data


def json_depth(text: str) -> int:
    """Deepest bracket nesting of valid JSON text (strings ignored)."""
    skeleton = _NOT_BRACKET.sub("", _STRINGS.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in skeleton), default=0)


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
