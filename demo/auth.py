"""Authentication primitives: password hashes, JWT access tokens, revocation, login lockout.

Kept free of FastAPI so each rule (and each flaw switch bending it) is testable on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import jwt

from crm_audit_demo.config import JWT_SECRET_ENV, DemoConfig

TOKEN_TTL_S = 900
LOCKOUT_THRESHOLD = 5
LOCKOUT_WINDOW_S = 15 * 60
#: short on purpose: long enough to stop guessing, short enough not to keep the owner out (hard-lockout: 15 min)
LOCKOUT_DURATION_S = 1
HARD_LOCKOUT_S = 15 * 60
WELL_KNOWN_SECRET = "secret"

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """Salted scrypt hash as ``scrypt$N$r$p$<salt b64>$<hash b64>``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str | None) -> bool:
    """True when ``password`` matches ``encoded``; a None hash never matches (costs the same)."""
    try:
        _, n, r, p, salt, digest = (encoded or _DUMMY_HASH).split("$")
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return encoded is not None and hmac.compare_digest(actual, base64.b64decode(digest))


# A fixed, valid hash so unknown users cost one scrypt like known ones (no timing oracle).
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def api_key_digest(key: str) -> str:
    """How API keys are stored: hex SHA-256 of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int
    username: str
    tenant: str
    role: str
    via: str  # "token" | "api_key"
    jti: str | None = None
    exp: int | None = None


class AuthError(Exception):
    """Authentication failed; ``detail`` is the client-facing reason."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TokenService:
    """Issues and checks HS256 access tokens; remembers revoked token ids until they expire."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.key = WELL_KNOWN_SECRET if config.has("default-secret") else config.secrets[JWT_SECRET_ENV]
        self._revoked: dict[str, float] = {}
        #: user id -> how many times its sessions were ended (a password change); tokens carry it as "gen"
        self._generation: dict[str, int] = {}
        self._lock = threading.Lock()

    def issue(self, user_id: int, tenant: str, role: str) -> str:
        """A signed token for the user (no ``exp`` under the ``no-expiry`` flaw)."""
        now = int(time.time())
        claims: dict[str, Any] = {"sub": str(user_id), "tenant": tenant, "role": role, "iat": now,
                                  "jti": uuid.uuid4().hex}
        with self._lock:
            gen = self._generation.get(str(user_id), 0)
        if gen:
            claims["gen"] = gen
        if not self.config.has("no-expiry"):
            claims["exp"] = now + TOKEN_TTL_S
        return jwt.encode(claims, self.key, algorithm="HS256")

    def decode(self, token: str) -> dict[str, Any]:
        """Verified claims of ``token``; raises AuthError (invalid, expired or revoked)."""
        check_exp = not self.config.has("no-expiry")
        try:
            header = jwt.get_unverified_header(token)
            if str(header.get("alg", "")).lower() == "none" and self.config.has("unsigned-token"):
                claims = self._decode_unsigned(token)
                if check_exp and claims.get("exp") is not None and float(claims["exp"]) < time.time():
                    raise jwt.ExpiredSignatureError("expired")
            else:
                claims = jwt.decode(
                    token, self.key, algorithms=["HS256"],
                    options={"require": ["sub", "iat", "jti", *(["exp"] if check_exp else [])],
                             "verify_exp": check_exp},
                )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
            raise AuthError("invalid token") from exc
        if not all(isinstance(claims.get(k), str) for k in ("sub", "tenant", "role")):
            raise AuthError("invalid token")
        if claims.get("jti") and self.is_revoked(str(claims["jti"])):
            raise AuthError("token revoked")
        with self._lock:
            current = self._generation.get(str(claims["sub"]), 0)
        if claims.get("gen", 0) != current:
            raise AuthError("token revoked")
        return claims

    def end_sessions(self, user_id: int) -> None:
        """Reject every token issued to the user so far (after a password change)."""
        with self._lock:
            self._generation[str(user_id)] = self._generation.get(str(user_id), 0) + 1

    @staticmethod
    def _decode_unsigned(token: str) -> dict[str, Any]:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not isinstance(claims, dict):
            raise ValueError("claims must be an object")
        return claims

    def revoke(self, jti: str, exp: int | None) -> None:
        """Reject ``jti`` from now on (kept until its expiry, forever without one)."""
        with self._lock:
            now = time.time()
            self._revoked = {j: e for j, e in self._revoked.items() if e > now}
            self._revoked[jti] = float(exp) if exp is not None else math.inf

    def is_revoked(self, jti: str) -> bool:
        """True when ``jti`` was revoked by logout."""
        with self._lock:
            return jti in self._revoked


class LoginGuard:
    """Counts consecutive failed logins per username and locks the username for a while.

    After ``LOCKOUT_THRESHOLD`` consecutive failures within ``LOCKOUT_WINDOW_S`` the username
    is locked for ``LOCKOUT_DURATION_S`` (any password, right or wrong, is then refused).
    Unknown usernames are counted too, so lockout does not reveal which accounts exist.
    """

    def __init__(self, enabled: bool = True, duration_s: float = LOCKOUT_DURATION_S) -> None:
        self.enabled = enabled
        self.duration_s = duration_s
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str) -> int | None:
        """Seconds until ``username`` may try again, or None when it is not locked."""
        if not self.enabled:
            return None
        with self._lock:
            until = self._locked_until.get(username)
            now = time.monotonic()
            if until is None or until <= now:
                self._locked_until.pop(username, None)
                return None
            return max(1, math.ceil(until - now))

    def failed(self, username: str) -> None:
        """Record one failed attempt; lock the username when the threshold is reached."""
        if not self.enabled:
            return
        with self._lock:
            now = time.monotonic()
            attempts = self._failures.setdefault(username, deque())
            attempts.append(now)
            while attempts and attempts[0] < now - LOCKOUT_WINDOW_S:
                attempts.popleft()
            if len(attempts) >= LOCKOUT_THRESHOLD:
                self._locked_until[username] = now + self.duration_s
                attempts.clear()

    def succeeded(self, username: str) -> None:
        """A successful login resets the failure count."""
        with self._lock:
            self._failures.pop(username, None)
