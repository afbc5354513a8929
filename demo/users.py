"""Tenants, users and API keys: seeding, lookups and the public (hash-free) user view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_audit_demo.auth import api_key_digest, hash_password
from crm_audit_demo.config import API_KEY_ENV, API_KEY_USER, DEMO_USERS, DemoUser
from crm_audit_demo.db import Database
from crm_audit_demo.timefmt import iso, utc_now

_NAMES = {
    "admin@acme.example": ("Alice", "Adams"),
    "manager@acme.example": ("Martin", "Meyer"),
    "sales@acme.example": ("Sam", "Sellers"),
    "sales2@acme.example": ("Sara", "Sommer"),
    "readonly@acme.example": ("Rita", "Reed"),
    "lockout@acme.example": ("Leo", "Locke"),
    "admin@globex.example": ("Greta", "Gold"),
    "sales@globex.example": ("Gil", "Sanders"),
    "integration@acme.example": ("Integration", "Service"),
    "disposable@acme.example": ("Dana", "Dispo"),
}
_TENANT_NAMES = {"acme": "Acme Corporation", "globex": "Globex Inc."}
PUBLIC_FIELDS = ("id", "username", "email", "first_name", "last_name", "role", "tenant_id", "kind",
                 "active", "created_at", "updated_at")


def seed_identities(db: Database, secrets: Mapping[str, str]) -> None:
    """Insert tenants, the eight login users (ids 1..8), the API key's service user (9) and key."""
    now = iso(utc_now())
    db.insert_rows("tenants", [{"id": t, "name": n} for t, n in _TENANT_NAMES.items()])

    def row(user_id: int, user: DemoUser, kind: str, password_hash: str | None) -> dict[str, Any]:
        first, last = _NAMES[user.username]
        return {"id": user_id, "tenant_id": user.tenant, "username": user.username, "email": user.username,
                "first_name": first, "last_name": last, "role": user.role, "kind": kind,
                "password_hash": password_hash, "active": 1, "created_at": now, "updated_at": now}

    rows = [row(i, u, "person", hash_password(secrets[u.password_env])) for i, u in enumerate(DEMO_USERS, 1)]
    service_id = len(DEMO_USERS) + 1
    rows.append(row(service_id, API_KEY_USER, "service", None))
    db.insert_rows("users", rows)
    db.insert_rows("api_keys", [{"id": 1, "tenant_id": API_KEY_USER.tenant, "user_id": service_id,
                                 "name": "integration", "key_sha256": api_key_digest(secrets[API_KEY_ENV]),
                                 "created_at": now}])


class UserStore:
    """Lookups and the few writes users allow (profile edits, registration)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def by_username(self, username: str) -> dict[str, Any] | None:
        """The active user with that username (already normalized), or None."""
        return self.db.query_one("SELECT * FROM users WHERE username = ? AND active = 1", [username])

    def by_id(self, user_id: int, tenant: str | None = None) -> dict[str, Any] | None:
        """The user with that id (optionally within ``tenant``), or None."""
        if not 0 < user_id < 2**63:
            return None
        sql, params = "SELECT * FROM users WHERE id = ?", [user_id]
        if tenant is not None:
            sql += " AND tenant_id = ?"
            params.append(tenant)
        return self.db.query_one(sql, params)

    def by_api_key(self, key: str) -> dict[str, Any] | None:
        """The active user an API key belongs to, or None."""
        return self.db.query_one(
            "SELECT users.* FROM api_keys JOIN users ON users.id = api_keys.user_id "
            "WHERE api_keys.key_sha256 = ? AND users.active = 1",
            [api_key_digest(key)],
        )

    def list(self, tenant: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """A page of users ordered by id, and the total."""
        where, params = ("WHERE tenant_id = ?", [tenant]) if tenant is not None else ("", [])
        with self.db.lock:
            total = self.db.query_one(f"SELECT COUNT(*) AS n FROM users {where}", params)
            rows = self.db.query(f"SELECT * FROM users {where} ORDER BY id LIMIT ? OFFSET ?",
                                 [*params, limit, offset])
        return rows, int(total["n"] if total else 0)

    def update(self, user_id: int, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """Set profile columns on a user; return the updated row."""
        allowed = {"first_name", "last_name", "role", "tenant_id"}
        data = {k: v for k, v in values.items() if k in allowed}
        data["updated_at"] = iso(utc_now())
        with self.db.lock:
            self.db.execute(f"UPDATE users SET {', '.join(f'{k} = ?' for k in data)} WHERE id = ?",
                            [*data.values(), user_id])
            return self.by_id(user_id)

    def set_password(self, user_id: int, password: str) -> None:
        """Store a new (hashed) password for the user."""
        with self.db.lock:
            self.db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                            [hash_password(password), iso(utc_now()), user_id])

    def set_active(self, user_id: int, active: bool) -> dict[str, Any] | None:
        """Activate or deactivate a user (an inactive user cannot log in); the updated row."""
        with self.db.lock:
            self.db.execute("UPDATE users SET active = ?, updated_at = ? WHERE id = ?",
                            [1 if active else 0, iso(utc_now()), user_id])
            return self.by_id(user_id)

    def delete(self, user_id: int) -> bool:
        """Remove a person user (and nothing else); False when there was none."""
        with self.db.lock:
            cursor = self.db.execute("DELETE FROM users WHERE id = ? AND kind = 'person'", [user_id])
        return bool(cursor.rowcount)

    def create(self, username: str, password: str, role: str, tenant: str, *, plain: bool = False,
               first_name: str | None = None, last_name: str | None = None) -> dict[str, Any]:
        """Insert an active person user; raises ValueError when the username is taken.

        ``plain``: store the password as it is (the plaintext-password flaw), not its hash.
        """
        now = iso(utc_now())
        password_hash = password if plain else hash_password(password)
        with self.db.lock:
            if self.db.query_one("SELECT id FROM users WHERE username = ?", [username]):
                raise ValueError("username already exists")
            cursor = self.db.execute(
                "INSERT INTO users (tenant_id, username, email, first_name, last_name, role, kind, "
                "password_hash, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'person', ?, 1, ?, ?)",
                [tenant, username, username, first_name, last_name, role, password_hash, now, now],
            )
            user = self.by_id(int(cursor.lastrowid or 0))
        assert user is not None
        return user


def public_user(row: Mapping[str, Any], include_hash: bool = False) -> dict[str, Any]:
    """The API view of a user: never the password hash, unless the leak-hashes flaw asks."""
    user = {name: row.get(name) for name in PUBLIC_FIELDS}
    user["active"] = bool(user["active"])
    if include_hash:
        user["password_hash"] = row.get("password_hash")
    return user
