"""django-crm 0.9.0's 13 confirmed flaws → the audit's check ids that report them (one mapping for tests and docs).

Numbers 1–10 are those of /work/shared/domain/django-crm-facts.md; its item 11 is split into
11 (no login throttling), 12 (CORS ``*`` with ``Authorization``) and 13 (the unpaginated
dashboard). Used by tests/test_django_crm_audit.py (each flaw asserted by id, and no failed
finding outside this table) and by ``bench/audit_wall.py --update-doc`` (the scorecard in
docs/targets.md).

A pattern ending in ``.`` is a prefix (one finding per operation, e.g. every missing-id 500);
any other pattern is an exact finding id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["EXTRAS", "FLAWS", "MEASURED", "Flaw", "matches", "scorecard", "unexplained"]


@dataclass(frozen=True)
class Flaw:
    number: int
    title: str
    checks: tuple[str, ...]
    #: "found" (a failed finding) or "not_assessed" (skipped, with this NotAssessed reason)
    expected: str = "found"
    reason: str | None = None


FLAWS: dict[int, Flaw] = {f.number: f for f in (
    Flaw(1, "Anonymous signup creates an active ADMIN (POST /api/auth/register/)",
         ("access.registration.privileged",)),
    Flaw(2, "JWTs signed with the hard-coded default SECRET_KEY: a forged {id: 1} token is accepted",
         ("access.token.default_secret",)),
    Flaw(3, "Tokens never expire: no exp claim, still valid after a password change and after deactivation",
         ("access.token.no_expiry", "access.token.valid_after_password_change",
          "access.token.valid_after_deactivation")),
    Flaw(4, "500 instead of 403/404 on deny paths and missing ids",
         ("access.errors.server_error_on_deny", "access.errors.server_error_on_missing_id.")),
    Flaw(5, "Any USER reads GET /api/api-settings/ (API keys, every user's e-mail); lists leak users' e-mails",
         ("access.data_exposure.secrets.get_api_api_settings", "access.data_exposure.user_emails")),
    Flaw(6, "Plain HTTP only (no TLS, no redirect, no HSTS)", ("tls.plain_http_only",)),
    Flaw(7, "No tenants: no organisation scoping, every ADMIN sees everything",
         ("access.tenant_leak.", "access.tenant_injection"), expected="not_assessed", reason="needs_account"),
    Flaw(8, "A USER promotes itself to ADMIN (PUT /api/users/<own id>/ {role: ADMIN})", ("access.self_escalation",)),
    Flaw(9, "Any USER updates another user's lead (PUT /api/leads/<id>/ has no owner check)", ("access.bola.leads",)),
    Flaw(10, "POST /api/users/ stores the password in plain text (the user cannot log in)",
         ("access.password.storage",)),
    Flaw(11, "No login throttling: wrong passwords unlimited, the right one still accepted",
         ("access.login.no_lockout",)),
    Flaw(12, "CORS answers Access-Control-Allow-Origin: * and allows the Authorization header",
         ("access.cors.any_origin",)),
    Flaw(13, "GET /api/dashboard/ ignores the page size (unpaginated)",
         ("access.collections.page_size_ignored.get_api_dashboard",)),
)}

#: failed findings of the --allow-disruptive audit (tls, flows, access) that are real but not among the 13,
#: each replayed by hand against a running 0.9.0 (the line says what came back)
EXTRAS: dict[str, str] = {
    "access.login.user_enumeration": "POST /api/auth/login/ unknown e-mail → 400 'user not avaliable in our "
                                     "records', known e-mail + wrong password → 400 'Email and password doesnot match'",
    "access.errors.server_error_on_malformed_body.leads_create": "POST /api/leads/ with the create body wrapped "
                                                                 "in a JSON array → 500 HTML 'Server Error (500)'",
    "access.errors.existence_oracle.contacts": "user1 GET /api/contacts/<admin1's id>/ → 403 'You do not have "
                                               "Permission…', GET /api/contacts/999999937/ → 404 'Not found.'",
    "access.errors.existence_oracle.accounts": "user1 GET /api/accounts/<admin1's id>/ → 403, "
                                               "GET /api/accounts/999999937/ → 404",
    "access.headers.cache_control": "GET /api/contacts/?limit=1 as admin1 → 200 with customer data and no "
                                    "Cache-Control header",
}

#: failed findings of the other probes that describe the deployment or the seeded data, not a flaw of the code
MEASURED: dict[str, str] = {
    "data_quality.": "the seeded data's defects (a bad phone, a bad e-mail, a duplicate contact)",
    "api_surface.json_errors": "GET /api/contacts/crm-audit-no-such-path → 404 text/html, not a JSON error",
    "backup.content.plaintext": "the profile's pg_dump writes an unencrypted custom-format dump",
    "latency.slo_exceeded.": "a p95 over the profile's SLO: depends on the host's load",
    "indicator.": "an indicator scored below its target (from the findings and measurements above)",
}


def matches(finding_id: str, patterns: Iterable[str]) -> bool:
    return any(finding_id.startswith(p) if p.endswith(".") else finding_id == p for p in patterns)


def _field(f: Any, name: str) -> Any:
    """A finding's field, from a Finding model or from its result.json dict; enums as their value."""
    v = f.get(name) if isinstance(f, dict) else getattr(f, name, None)
    return getattr(v, "value", v)


def scorecard(findings: Iterable[Any]) -> dict[int, dict[str, Any]]:
    """Per flaw: ``status`` found / not_assessed / missed, the failed (or not assessed) finding ids, and for
    not assessed the reasons and hints the audit gave."""
    found = list(findings)
    out: dict[int, dict[str, Any]] = {}
    for n, flaw in FLAWS.items():
        mine = [f for f in found if matches(_field(f, "id"), flaw.checks)]
        failed = [_field(f, "id") for f in mine if _field(f, "status") in ("fail", "failed")]
        skipped = [f for f in mine if _field(f, "status") == "skipped" and _field(f, "not_assessed")]
        if failed:
            out[n] = {"status": "found", "ids": failed}
        elif skipped and not [f for f in mine if _field(f, "status") in ("pass", "passed")]:
            out[n] = {"status": "not_assessed", "ids": [_field(f, "id") for f in skipped],
                      "reasons": sorted({_field(f, "not_assessed") for f in skipped}),
                      "hints": sorted({_field(f, "hint") for f in skipped if _field(f, "hint")})}
        else:
            out[n] = {"status": "missed", "ids": [_field(f, "id") for f in mine]}
    return out


def unexplained(findings: Iterable[Any], *, measured: bool = False) -> list[str]:
    """Failed finding ids that are neither one of the 13 flaws nor a confirmed extra (nor, with ``measured``,
    a finding about the deployment or the seeded data)."""
    known = [p for f in FLAWS.values() for p in f.checks] + list(EXTRAS) + (list(MEASURED) if measured else [])
    return sorted(_field(f, "id") for f in findings
                  if _field(f, "status") in ("fail", "failed") and not matches(_field(f, "id"), known))
