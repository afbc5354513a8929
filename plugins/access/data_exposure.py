"""Excessive data exposure (OWASP API3): secrets and other users' data in what low-privilege accounts read.

Each low-privilege account's answers from surface discovery (every discovered collection and
one item each, read once) are searched for fields that carry secrets — by field name (api
keys, tokens, session ids, passwords, private keys) and by value shape (JWTs, password hashes,
PEM private keys, long hex/base64 under a key-like name) — and for e-mail addresses of other
users (the profile's other accounts and the users the admin's user list shows). Evidence names
the request and the field path with a masked value, never the value itself. Password hashes
already reported by the ``exposure`` check (``run.notes["exposure_keys"]``) are not reported twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from crm_audit.core.accounts import ADMIN_ROLES
from crm_audit.core.adapter import Operation
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .common import INDICATOR_ACCESS, AccessRun, refs, slug
from .discovery import ANONYMOUS, RETRY_HINT, Surface, discovered_surface

SECRETS_ID = "access.data_exposure.secrets"
EMAILS_ID = "access.data_exposure.user_emails"
SECRET_FIX = ("Serialize every answer through an explicit allow-list of fields per role; never return API keys, "
              "tokens, session ids, passwords or their hashes; keep integration keys readable only by admins "
              "(and show them once, at creation).")
EMAIL_FIX = ("Return other users' contact details only where the role needs them (a user directory), never "
             "embedded in unrelated answers; serialize nested user objects through a minimal public schema.")

#: field names that hold a credential (compared case-insensitively on the leaf key)
_CREDENTIAL_NAME = re.compile(
    r"^(x_?)?(api_?key|apikey|api_?secret|secret|client_?secret|secret_?key|private_?key|access_?key|"
    r"auth_?token|access_?token|refresh_?token|bearer_?token|id_?token|token|jwt|reset_?token|otp_?secret|"
    r"totp_?secret|mfa_?secret|webhook_?secret|signing_?key|password|passwd|pwd|plain_?password)$", re.I)
#: field names that hold a session id or password hash (high, not critical)
_SESSION_NAME = re.compile(r"^(session_?id|sessionid|session_?key|session_?token|sid|csrf_?token)$", re.I)
_HASH_NAME = re.compile(r"^(password_?hash|hashed_?password|pass_?hash|salt)$", re.I)
#: names under which a long random-looking value is a key
_KEYISH_NAME = re.compile(r"(?i)(key|token|secret|session|signature|credential|auth)")
_NOT_SECRET_NAME = re.compile(r"(?i)^(token_type|key_id|keyid|kid|public_?key|.*_at|.*_count|.*_url|.*_type|"
                              r"has_.*|is_.*|.*_enabled|.*_expires?(_in)?)$")
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$")
_HASH_VALUE = re.compile(r"^(\$2[aby]?\$\d\d\$|\$argon2(id|i|d)?\$|\$[156]\$|pbkdf2_sha\d+\$|scrypt\$|bcrypt\$|"
                         r"sha1\$|md5\$|\{SSHA\})")
_PEM_PRIVATE = re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----")
_RANDOMISH = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9+/=_-]{32,}$|^[0-9a-fA-F]{32,}$")
_MASKED = re.compile(r"^[*•x.\-]{3,}|[*•]{3,}")
#: what a credential's value looks like: one opaque word, not a placeholder
_OPAQUE = re.compile(r"^(?!%.*%$)[^\s{}<>]{6,}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
#: operations that are a user directory by purpose: other users' e-mails are their content, not a leak
_DIRECTORY = re.compile(r"(?i)(^|[/.])(users?|members?|employees?|staff|team_?members)(/?$|/?\{[^}]+\}/?$|\.)")


@dataclass
class Leak:
    """One field that should not have been in the answer."""

    path: str
    kind: str  # credential, token, private_key, password_hash, session, email
    shown: str  # masked value for evidence

    @property
    def severity(self) -> Severity:
        return {"credential": Severity.critical, "token": Severity.critical, "private_key": Severity.critical,
                "password_hash": Severity.high, "session": Severity.high}.get(self.kind, Severity.medium)


@dataclass
class _Found:
    """What one operation showed: evidence per account, the kinds of leak, the worst severity."""

    evidence: list[Evidence] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    severity: Severity = Severity.info


def mask(value: Any) -> str:
    """A value shown without its content: the first 4 characters (fewer for short values) and its length."""
    text = str(value)
    keep = 4 if len(text) >= 16 else 2 if len(text) >= 8 else 0
    return f"{text[:keep]}… ({len(text)} chars)"


def mask_email(value: str) -> str:
    """An e-mail with its local part masked (``a***@example.com``), domain kept to say whose it is."""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def secret_of(key: str, value: Any) -> str | None:
    """What kind of secret ``value`` under field ``key`` is, or None: by name, then by value shape."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if len(text) < 6 or _MASKED.search(text):
        return None
    if _PEM_PRIVATE.search(text):
        return "private_key"
    if _JWT.match(text):
        return "token"
    if _HASH_VALUE.match(text):
        return "password_hash"
    if _NOT_SECRET_NAME.match(key) or not _OPAQUE.match(text):
        return None  # a template or placeholder (``%customer_name%``, ``{{user}}``), prose: no credential
    if _HASH_NAME.match(key):
        return "password_hash"
    if _SESSION_NAME.match(key):
        return "session"
    if _CREDENTIAL_NAME.match(key):
        return "credential"
    if _KEYISH_NAME.search(key) and isinstance(value, str) and _RANDOMISH.match(text):
        return "credential"
    return None


def walk(data: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, str, Any]]:
    """(field path, leaf key, value) of every scalar in a JSON answer; list indexes as ``[]``."""
    if depth > 12:
        return
    if isinstance(data, dict):
        for k, v in data.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(v, (dict, list)):
                yield from walk(v, sub, depth + 1)
            else:
                yield sub, str(k), v
    elif isinstance(data, list):
        for v in data[:500]:
            yield from walk(v, f"{path}[]", depth + 1)


def leaks(data: Any, *, other_emails: set[str], reported: set[str]) -> list[Leak]:
    """The secrets (one per field path) and the lists of other users' e-mails in ``data``.

    An e-mail counts only in a list of user-like objects: a field directly in the elements of an
    array (``users[].email``) that holds at least two other users' addresses. The creator or
    owner nested in a record (``contacts[].created_by.email``) is what a shared record shows,
    not a leak of the user list. Keys in ``reported`` (already reported elsewhere) are left out.
    """
    out: dict[str, Leak] = {}
    mails: dict[str, list[str]] = {}
    for path, key, value in walk(data):
        if path in out:
            continue
        kind = secret_of(key, value)
        if kind is not None and key.lower() not in reported:
            out[path] = Leak(path, kind, mask(value))
        elif isinstance(value, str) and value.strip().lower() in other_emails and path.endswith(f"[].{key}"):
            got = mails.setdefault(path, [])
            if value.strip().lower() not in got:
                got.append(value.strip().lower())
    for path, found in mails.items():
        if len(found) >= 2:
            out[path] = Leak(path, "email", f"{len(found)} addresses, e.g. {mask_email(found[0])}")
    return list(out.values())


def low_privilege(run: AccessRun, surface: Surface) -> list[Account]:
    """The surface's callers whose role is not an administrator's (:data:`ADMIN_ROLES`)."""
    return [a for a in run.general_accounts() if a.name in surface.callers and a.role.lower() not in ADMIN_ROLES]


def user_emails(run: AccessRun, surface: Surface) -> set[str]:
    """E-mails of the CRM's users: the profile's accounts' user names, and e-mails in the admin's user lists."""
    found = {a.auth.username.strip().lower() for a in run.profile.accounts
             if a.auth.username and _EMAIL.match(a.auth.username.strip())}
    admins = [c for c in surface.callers if c != ANONYMOUS and c not in {a.name for a in low_privilege(run, surface)}]
    for op in surface.collections:
        if not directory(surface, op):
            continue
        for caller in admins:
            ex = surface.answer(caller, op)
            if ex is None or run.outcome(ex) != "allowed":
                continue
            for _, key, value in walk(ex.json_or_none()):
                if isinstance(value, str) and _EMAIL.match(value.strip()) and "mail" in key.lower():
                    found.add(value.strip().lower())
    return found


def own_emails(run: AccessRun, surface: Surface, account: Account) -> set[str]:
    """The account's own e-mails: its user name, and what its own-user answer ('me') shows."""
    own = {account.auth.username.strip().lower()} if account.auth.username else set()
    me = surface.named.get("me")
    ex = surface.answer(account.name, me) if me else None
    if ex is not None and run.outcome(ex) == "allowed":
        own |= {v.strip().lower() for _, _, v in walk(ex.json_or_none()) if isinstance(v, str) and _EMAIL.match(v.strip())}
    return own


def directory(surface: Surface, op: Operation) -> bool:
    """True for a user directory (``users.list``, ``GET /api/users``): listing users is its purpose."""
    return surface.named.get("users.list") == op.name or bool(_DIRECTORY.search(op.path or op.name))


def check_data_exposure(run: AccessRun) -> None:
    """Search every discovered answer a low-privilege account got for secrets and lists of other users' e-mails."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API3", "CWE-200", "CWE-213"))
    if run.ctx.adapter is None:
        for fid in (SECRETS_ID, EMAILS_ID):
            run.skip(fid, "Excessive data exposure not tested (no adapter)", NotAssessed.not_configured,
                     "describe the CRM under adapter: in the profile", **kw)
        return
    surface = discovered_surface(run)
    lows = low_privilege(run, surface)
    if not lows:
        for fid in (SECRETS_ID, EMAILS_ID):
            run.skip(fid, "Excessive data exposure not tested (no low-privilege account)", NotAssessed.needs_account,
                     "add a purpose: general account with a non-admin role (e.g. a plain user)", **kw)
        return
    everyone = user_emails(run, surface)
    reported: set[tuple[str, str]] = run.notes.get("exposure_keys", set())
    secrets: dict[str, _Found] = {}
    emails: dict[str, _Found] = {}
    judged, silent = 0, []
    for acct in lows:
        others = everyone - own_emails(run, surface, acct)
        for op in surface.collections + surface.items:
            ex = surface.answer(acct.name, op)
            if ex is None or surface.named.get("me") == op.name:  # the own record: the exposure check's
                continue
            outcome = run.outcome(ex)
            if outcome in ("denied", "not_found"):
                continue
            data = ex.json_or_none() if outcome == "allowed" else None
            if data is None:
                silent.append(ex)
                continue
            judged += 1
            where = op.resource or ("users" if directory(surface, op) else op.name)
            found = leaks(data, other_emails=set() if directory(surface, op) else others,
                          reported={k for w, k in reported if w == where})
            _collect(secrets, op, ex, acct, [f for f in found if f.kind != "email"])
            _collect(emails, op, ex, acct, [f for f in found if f.kind == "email"])
    _report(run, SECRETS_ID, secrets, judged, silent, what="secrets (API keys, tokens, session ids, passwords, "
            "hashes, private keys)", remediation=SECRET_FIX, **kw)
    _report(run, EMAILS_ID, emails, judged, silent, what="other users' e-mail addresses", remediation=EMAIL_FIX, **kw)


def _collect(into: dict[str, _Found], op: Operation, ex: Exchange, acct: Account, found: list[Leak]) -> None:
    if not found:
        return
    entry = into.setdefault(op.name, _Found())
    entry.kinds |= {f.kind for f in found}
    worst = max((f.severity for f in found), key=_rank)
    entry.severity = max(entry.severity, worst, key=_rank)
    shown = "; ".join(f"{f.path}: {f.shown}" + (f" ({f.kind})" if f.kind != "email" else "") for f in found[:6])
    more = f" and {len(found) - 6} more field(s)" if len(found) > 6 else ""
    ev = ex.evidence(0, expected="no such field for this role", observed=f"{len(found)} field(s): {shown}{more}",
                     details={"operation": op.name, "fields": [f.path for f in found[:20]],
                              "kinds": sorted({f.kind for f in found}), "account": acct.name, "role": acct.role})
    entry.evidence.append(ev.model_copy(update={"excerpt": None}))  # never keep the body: it holds the value


def _rank(s: Severity) -> int:
    return [Severity.info, Severity.low, Severity.medium, Severity.high, Severity.critical].index(s)


def _report(run: AccessRun, fid: str, found: dict[str, _Found], judged: int, silent: list[Exchange], *, what: str,
            remediation: str, **kw: Any) -> None:
    """Secrets: one failed finding per operation; e-mails: one for the check, naming the operations."""
    if found and fid == EMAILS_ID:
        roles = sorted({e.details["role"] for f in found.values() for e in f.evidence})  # _collect puts it in every evidence
        names = list(found)
        evidence = [f.evidence[0].model_copy(update={"details": {**f.evidence[0].details, "operations": names}})
                    for f in found.values()]
        run.add(fid, f"{len(names)} operation(s) show lists of other users' e-mail addresses to "
                f"{', '.join(roles)}: {', '.join(names[:6])}{' …' if len(names) > 6 else ''}", status=Status.failed,
                severity=max((f.severity for f in found.values()), key=_rank), evidence=evidence,
                remediation=remediation, **kw)
        return
    for name, entry in found.items():
        roles = sorted({e.details["role"] for e in entry.evidence})
        run.add(f"{fid}.{slug(name)}", f"{name} shows {what.split(' (')[0]} to {', '.join(roles)}: "
                f"{', '.join(sorted(entry.kinds))}", status=Status.failed, severity=entry.severity,
                evidence=entry.evidence, remediation=remediation, **kw)
    if found:
        return
    if judged:
        unread = f" ({len(silent)} other answer(s) could not be read)" if silent else ""
        run.add(fid, f"Low-privilege accounts see no {what} in {judged} answer(s){unread}", status=Status.passed,
                severity=Severity.high if fid == SECRETS_ID else Severity.medium, remediation=remediation, **kw)
    elif silent:
        run.unassessed(fid, f"Low-privilege accounts see no {what}", silent[0], remediation=remediation, hint=RETRY_HINT, **kw)
    else:
        run.skip(fid, f"Excessive data exposure ({what}) not tested: no low-privilege account could read any "
                 "discovered operation", NotAssessed.not_applicable,
                 "check the adapter's resources or set adapter.openapi so discovery finds what users may read",
                 remediation=remediation, **kw)
