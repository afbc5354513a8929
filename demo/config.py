"""Configuration of one demo CRM instance: accounts, secrets (from env) and knobs.

Secrets travel between the ``DemoServer`` handle and the server process only through
environment variables whose names are part of the contract (see ``DEMO_USERS``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from crm_audit_demo.flaws import validate_flaws


class DemoUser(NamedTuple):
    """One seeded login account: who, which role, which tenant, where its password lives."""

    username: str
    role: str
    tenant: str
    password_env: str


#: the faces the demo serves: REST always; "jsonrpc" adds POST /api/jsonrpc beside it
PROTOCOLS: tuple[str, ...] = ("rest", "jsonrpc")
TENANTS: tuple[str, ...] = ("acme", "globex")
OPERATOR_TENANT = "acme"
ROLES: tuple[str, ...] = ("admin", "manager", "sales", "readonly")

# Order matters: user ids are assigned 1..9 in this order (the API key's service user is 10).
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin@acme.example", "admin", "acme", "DEMO_ADMIN_PASSWORD"),
    DemoUser("manager@acme.example", "manager", "acme", "DEMO_MANAGER_PASSWORD"),
    DemoUser("sales@acme.example", "sales", "acme", "DEMO_SALES_PASSWORD"),
    DemoUser("sales2@acme.example", "sales", "acme", "DEMO_SALES2_PASSWORD"),
    DemoUser("readonly@acme.example", "readonly", "acme", "DEMO_READONLY_PASSWORD"),
    DemoUser("lockout@acme.example", "sales", "acme", "DEMO_LOCKOUT_PASSWORD"),
    DemoUser("admin@globex.example", "admin", "globex", "DEMO_GLOBEX_ADMIN_PASSWORD"),
    DemoUser("sales@globex.example", "sales", "globex", "DEMO_GLOBEX_SALES_PASSWORD"),
    DemoUser("disposable@acme.example", "sales", "acme", "DEMO_DISPOSABLE_PASSWORD"),
)
API_KEY_USER = DemoUser("integration@acme.example", "readonly", "acme", "DEMO_API_KEY")

API_KEY_ENV = "DEMO_API_KEY"
JWT_SECRET_ENV = "DEMO_JWT_SECRET"
BACKUP_KEY_ENV = "DEMO_BACKUP_KEY"
SECRET_ENV_NAMES: tuple[str, ...] = (
    *(u.password_env for u in DEMO_USERS),
    API_KEY_ENV,
    JWT_SECRET_ENV,
    BACKUP_KEY_ENV,
)


def generate_secret(name: str) -> str:
    """A fresh random value suited to the secret named ``name``."""
    if name == BACKUP_KEY_ENV:
        return secrets.token_hex(32)  # 32-byte AES-256 key, hex encoded
    if name == JWT_SECRET_ENV:
        return secrets.token_urlsafe(48)
    if name == API_KEY_ENV:
        return "crm_" + secrets.token_urlsafe(32)
    return secrets.token_urlsafe(18)


def secrets_from_env(env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Read every demo secret from ``env``, generating absent ones; return (secrets, generated names)."""
    values: dict[str, str] = {}
    generated: list[str] = []
    for name in SECRET_ENV_NAMES:
        value = env.get(name, "")
        if not value:
            value = generate_secret(name)
            generated.append(name)
        values[name] = value
    key = values[BACKUP_KEY_ENV]
    if len(bytes.fromhex(key)) != 32:
        raise ValueError(f"{BACKUP_KEY_ENV} must be 64 hex characters (a 32-byte AES key)")
    return values, generated


@dataclass(frozen=True)
class DemoConfig:
    """Everything ``create_app`` needs: flaws, load knobs, data location, seed and secrets."""

    secrets: Mapping[str, str]
    data_dir: Path | None = None  # None: a new temporary directory (in-process use)
    flaws: frozenset[str] = field(default_factory=frozenset)
    delay_ms: int = 0
    capacity: int = 16
    tls: bool = True
    seed: int = 7
    protocol: str = "rest"  # "jsonrpc" adds the JSON-RPC face (POST /api/jsonrpc) beside the REST API

    def __post_init__(self) -> None:
        object.__setattr__(self, "flaws", validate_flaws(self.flaws))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.capacity < 1:
            raise ValueError("capacity must be >= 1")
        if self.delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")

    def has(self, flaw: str) -> bool:
        """True when the flaw switch ``flaw`` is on."""
        return flaw in self.flaws
