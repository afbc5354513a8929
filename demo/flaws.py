"""Flaw switches of the demo CRM: names, one-line descriptions, validation.

The names are a contract: the CLI's ``--flaw`` choices and every probe test use them.
"""

from __future__ import annotations

from collections.abc import Iterable

FLAWS: dict[str, str] = {
    "bola": "by-id endpoints ignore ownership and tenant (sales reads/updates/deletes others' and other-tenant records)",
    "tenant-leak": "list endpoints return the rows of all tenants",
    "no-role-check": "DELETE on records skips the role/ownership check (readonly can delete)",
    "mass-assignment": "create/update honour owner_id/tenant_id; PATCH /api/me honours role/tenant_id",
    "leak-hashes": "user objects include password_hash",
    "unsigned-token": "tokens with alg 'none' are accepted",
    "default-secret": "tokens are signed with the well-known secret 'secret'",
    "no-expiry": "issued tokens carry no exp and exp is not checked",
    "token-after-logout": "logout does not revoke the token",
    "no-lockout": "no limit on failed logins",
    "user-enum": "login answers 404 'unknown user' vs 401 'wrong password'",
    "open-registration": "POST /api/auth/register anonymously creates an active admin of tenant acme",
    "cors": "any Origin is reflected in Access-Control-Allow-Origin with credentials allowed",
    "stack-traces": "unhandled errors and non-integer ids answer 500 with a Python traceback",
    "no-security-headers": "no security headers (HSTS, CSP, X-Frame-Options, nosniff, Referrer-Policy, Cache-Control)",
    "verbose-banner": "Server: uvicorn and X-Powered-By: FastAPI/<ver> Python/<ver> headers",
    "backup-public": "backup list/trigger/download need no auth; GET /backups/latest.db serves the newest backup",
    "restore-loses-table": "restore reports success but leaves the cases table empty",
    "stale-backups": "the pre-existing nightly backup is 10 days old instead of 2 hours",
    "plain-backup": "backups are the plain SQLite file, not encrypted",
    "weak-tls": "TLS 1.0/1.1 and weak (SECLEVEL=0, CBC, non-PFS) cipher suites are offered",
    "no-hsts": "no Strict-Transport-Security header",
    "settings-leak": "GET /api/settings/integrations (JSON-RPC settings.search_read) is readable by any user, with "
                     "full API keys and every user's e-mail",
    "no-pagination": "GET /api/dashboard (JSON-RPC dashboard.search_read) ignores limit/offset and returns everything",
    "public-metadata": "anonymous GET /api/status (JSON-RPC system.status) shows version, database and tenant list; "
                       "JSON-RPC system.listMethods answers anonymously",
    "self-escalation": "PUT/PATCH /api/users/{id} (JSON-RPC users.write) on the caller's own user honours role and tenant_id",
    "hidden-privilege": "GET /api/me (JSON-RPC users.me) does not show the caller's role, yet PUT/PATCH "
                        "/api/users/{id} (JSON-RPC users.write) on the caller's own user honours it",
    "tenant-header": "an X-Tenant-ID header or ?tenant_id= query parameter switches the caller's tenant",
    "tenant-context": "JSON-RPC: a _tenant or tenant_id key in params.context switches the caller's tenant",
    "persist-on-deny": "a forbidden create (or one into another tenant), update or delete answers 403 but is saved",
    "token-after-password-change": "changing the password (POST /api/me/password) leaves the user's earlier tokens "
                                   "valid",
    "token-after-deactivation": "tokens of a deactivated user (POST /api/users/{id}/deactivate) are still accepted",
    "plaintext-password": "POST /api/users (JSON-RPC users.create) stores the password unhashed (the new user cannot "
                          "log in) and echoes it in the answer",
    "missing-id-500": "by-id record endpoints answer 500 (an unhandled lookup error) for ids that do not exist",
    "body-shape-500": "record bodies of the wrong shape (wrong field types, oversized values, an array, a wrong "
                      "content type) answer 500 instead of 422",
    "existence-oracle": "a record of another tenant answers 403 'not yours' where an absent id answers 404",
    "cors-any-origin": "Access-Control-Allow-Origin: * on every answer, and preflights allow the Authorization header",
    "insecure-cookies": "the session cookie set on login lacks Secure, HttpOnly and SameSite",
    "hard-lockout": "after 5 failed logins the account is locked for 15 minutes, the correct password included",
}


def validate_flaws(names: Iterable[str]) -> frozenset[str]:
    """Return the flaw names as a frozenset; raise ValueError naming the valid ones on a typo."""
    chosen = frozenset(names)
    unknown = sorted(chosen - FLAWS.keys())
    if unknown:
        raise ValueError(
            f"unknown demo flaw(s): {', '.join(unknown)}; valid flaws: {', '.join(FLAWS)}"
        )
    return chosen
