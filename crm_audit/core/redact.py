"""Removes secrets from anything the audit keeps: evidence, logs, errors, the result file.

A declared secret is masked in its plain form and in the encoded forms a server or a client
may echo it in: base64 and base64url (padded or not, alone or anywhere inside a longer base64
text such as ``user:secret`` in a Basic header or a JWT payload), URL-encoded (quote,
quote_plus, lower-case escapes, twice), JSON- and HTML-escaped, and hex. Redact *before*
cutting a text: a secret cut in half is no longer recognised.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from typing import Any, overload
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"

_HEADER_RE = re.compile(
    r"(?im)^((?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|"
    r"x-auth-token|x-csrftoken)\s*:\s*)[^\r\n]+"
)
_JSON_KEY_RE = re.compile(
    r"""(?i)((?<![A-Za-z0-9_])["']?(?:[a-z0-9_]*_)?(?:password|passwd|pwd|secret|token|api_?key|apikey|jwt|"""
    r"""private_key|salt|hash|authorization|session(?:id)?|otp)(?:_[a-z0-9_]*)?"""
    r"""["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,&;}]+)"""
)
_QUERY_RE = re.compile(
    r"(?i)([?&](?:token|access_token|api_?key|apikey|key|password|secret|sig|signature|"
    r"session|sessionid|auth)=)[^&#\s\"']+"
)
_USERINFO_RE = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER_RE = re.compile(r"(?i)\b(bearer|jwt|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")


class Redactor:
    """Known secret values plus patterns for credentials that were never declared."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: set[str] = set()
        self._forms: set[str] = set()
        self._ordered: list[str] = []
        self._lock = threading.Lock()
        for s in secrets or []:
            self.add(s)

    def add(self, secret: str | bytes | None) -> None:
        """Remember a secret value and its encoded forms; values shorter than 4 characters are ignored."""
        if secret is None:
            return
        if isinstance(secret, bytes):
            secret = secret.decode("utf-8", "replace")
        if len(secret) < 4 or secret in self._secrets:
            return
        forms = encoded_forms(secret)
        with self._lock:
            self._secrets.add(secret)
            self._forms |= forms
            self._ordered = sorted(self._forms, key=len, reverse=True)

    @overload
    def redact(self, text: str) -> str: ...
    @overload
    def redact(self, text: None) -> None: ...
    def redact(self, text: str | None) -> str | None:
        """Return text with every known secret (in any of its forms) and credential-like pattern masked."""
        if not text:
            return text
        with self._lock:
            forms = self._ordered
        for s in forms:
            if s in text:
                text = text.replace(s, MASK)
        text = _USERINFO_RE.sub(lambda m: m.group(1) + MASK + "@", text)
        text = _HEADER_RE.sub(lambda m: m.group(1) + MASK, text)
        text = _QUERY_RE.sub(lambda m: m.group(1) + MASK, text)
        text = _JWT_RE.sub(MASK, text)
        text = _BEARER_RE.sub(lambda m: m.group(1) + " " + MASK, text)
        text = _JSON_KEY_RE.sub(_mask_value, text)
        return text

    def redact_obj(self, obj: Any) -> Any:
        """Redact every string inside a JSON-like structure (dict keys stay as they are)."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.redact_obj(v) for v in obj]
        return obj


def _mask_value(m: re.Match[str]) -> str:
    value = m.group(2)
    if value in ('""', "''", "null", "None", "true", "false") or value == MASK or value == f'"{MASK}"':
        return m.group(0)
    quote = value[0] if value[:1] in "\"'" else ""
    return f"{m.group(1)}{quote}{MASK}{quote}"


MIN_FORM_CHARS = 6  # a shorter encoded fragment would mask unrelated text


def encoded_forms(secret: str) -> set[str]:
    """The plain secret and every encoded form :class:`Redactor` masks (fragments under 6 characters left out)."""
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    escaped |= {e.replace("/", "\\/") for e in escaped}
    texts = {secret} | escaped | {html.escape(secret), html.escape(secret, quote=False)}
    forms = set(texts)
    for t in {secret} | escaped:
        raw = t.encode("utf-8")
        forms |= _base64_forms(raw)
        forms |= {raw.hex(), raw.hex().upper()}
    for q in (quote(secret, safe=""), quote(secret), quote_plus(secret), quote(quote(secret, safe=""), safe="")):
        forms |= {q, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), q)}
    return {f for f in forms if f == secret or len(f) >= MIN_FORM_CHARS}


def _base64_forms(raw: bytes) -> set[str]:
    """base64 and base64url of ``raw``: whole (padded and not) and, for each of the three byte alignments,
    the characters that depend on ``raw`` alone, which appear in any base64 text that contains it."""
    out: set[str] = set()
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode()
        core = enc[-(-8 * k // 6):(8 * (k + len(raw))) // 6]
        whole = [enc, enc.rstrip("=")] if k == 0 else []
        for text in [core, *whole]:
            out |= {text, text.translate(_URLSAFE)}
    return out


_URLSAFE = str.maketrans("+/", "-_")
