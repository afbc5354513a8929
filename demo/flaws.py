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
