"""Removes secrets from anything the audit keeps: evidence, logs, errors, the result file."""

from __future__ import annotations

import re
import threading
from typing import Any

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
        self._lock = threading.Lock()
        for s in secrets or []:
            self.add(s)

    def add(self, secret: str | bytes | None) -> None:
        """Remember a secret value; values shorter than 4 characters are ignored."""
        if secret is None:
            return
        if isinstance(secret, bytes):
            secret = secret.decode("utf-8", "replace")
        if len(secret) >= 4:
            with self._lock:
                self._secrets.add(secret)

    def redact(self, text: str | None) -> str | None:
        """Return text with every known secret and credential-like pattern masked."""
        if not text:
            return text
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for s in secrets:
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
