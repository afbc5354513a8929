"""Shared state of one access-probe run: findings, verdicts, accounts, the audit's own records.

Every check module receives an :class:`AccessRun`; it adds findings through it, asks it
for accounts by role/tenant, and creates records only through :meth:`AccessRun.own_record`
(tagged with the run id, deleted again through ``ctx.defer``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from crm_audit.core import accounts as pick
from crm_audit.core.adapter import Adapter, Caller, Operation, classify_http, dig
from crm_audit.core.model import Evidence, Finding, NotAssessed, Severity, Status
from crm_audit.core.probe import ProbeContext
from crm_audit.core.profile import Account, Profile
from crm_audit.core.target import Exchange

from .options import AccessOptions

Verdict = Literal["allow", "deny", "error", "unknown"]

INDICATOR_AUTHN = "sec.authentication"
INDICATOR_LOGIN = "sec.login_limit"
INDICATOR_ACCESS = "sec.access_control"
INDICATOR_HARDENING = "sec.hardening"
INDICATOR_LOGGING = "sec.access_logging"

#: what runs a check that was skipped for safety
HINT_WRITES = "run with --allow-writes (or allow.writes: true in the profile)"
HINT_DISRUPTIVE = "run with --allow-disruptive (or allow.disruptive: true in the profile)"

OWASP = {
    "API1": "OWASP API1:2023 Broken Object Level Authorization",
    "API2": "OWASP API2:2023 Broken Authentication",
    "API3": "OWASP API3:2023 Broken Object Property Level Authorization",
    "API4": "OWASP API4:2023 Unrestricted Resource Consumption",
    "API5": "OWASP API5:2023 Broken Function Level Authorization",
    "API8": "OWASP API8:2023 Security Misconfiguration",
    "API9": "OWASP API9:2023 Improper Inventory Management",
}


def refs(*codes: str) -> list[str]:
    """Reference strings for OWASP API Top 10 2023 codes ("API1") and CWE numbers ("CWE-639")."""
    out = []
    for c in codes:
        out.append(OWASP.get(c, c) if c.startswith("API") else c)
    return out


def slug(text: str) -> str:
    """A stable id fragment: lowercase, non-alphanumerics collapsed to '_'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "root"


#: the adapter's outcome read as an access decision: a not-found hides the record, a way to deny
_DECISION: dict[str, Verdict] = {"allowed": "allow", "denied": "deny", "not_found": "deny", "error": "error",
                                 "unknown": "unknown"}


def verdict(ex: Exchange, adapter: Adapter | None = None) -> Verdict:
    """How an answer reads as an access decision, through ``adapter.classify`` (HTTP rules without one).

    allowed → allow; denied or not found → deny; error → error; anything else → unknown.
    """
    return _DECISION[adapter.classify(ex) if adapter is not None else classify_http(ex)]


def unjudged(ex: Exchange | None, adapter: Adapter | None = None) -> NotAssessed | None:
    """Why an access decision cannot rest on ``ex``; None when it is a real answer to judge.

    No answer (network error, reset, timeout, deadline, byte cap) and 5xx are the
    exchange's own reasons; an answer that is neither allow nor deny (3xx, 400, 409, 422,
    429, an error reported in a 200 body …) is an unexpected answer (``request_failed``).
    ``None`` (no exchange) too.
    """
    if ex is None:
        return NotAssessed.request_failed
    if ex.not_assessed is not None:
        return ex.not_assessed
    return NotAssessed.request_failed if verdict(ex, adapter) in ("unknown", "error") else None


def app_silent(ex: Exchange) -> NotAssessed | None:
    """Why ``ex`` shows nothing of the application: no answer, or a gateway error (502/503/504).

    For checks that read any answer, error pages included (stack traces, TRACE): an
    application's own 500 is evidence there, a proxy's 502 is not.
    """
    if not ex.answered:
        return ex.not_assessed
    return NotAssessed.request_failed if ex.status in (502, 503, 504) else None


def json_body(ex: Exchange) -> Any:
    """The JSON of a 2xx answer; None when the answer is not 2xx or cannot be read as JSON."""
    return ex.json_or_none() if ex.ok else None


#: named operation -> (HTTP method, the option holding its path): the REST shorthand of existing profiles
LEGACY_PATHS: dict[str, tuple[str, str]] = {
    "me": ("GET", "me_path"), "update_me": ("PATCH", "me_path"), "users.list": ("GET", "users_path"),
    "users.delete": ("DELETE", "user_delete_path"), "register": ("POST", "register_path"),
    "audit_log": ("GET", "audit_log_path"),
}

#: the hint for an operation neither the adapter nor the options name
def operation_hint(name: str) -> str:
    """How to map ``name``; worded "map KEY to VALUE" (never "KEY: VALUE"), since the redactor rightly
    hides the value after a key that sounds secret (change_password)."""
    hint = (f"map the adapter's {name!r} operation: set adapter.operations.{name} to 'METHOD /path' for rest, "
            f"to the RPC method for jsonrpc")
    return hint + (f", or for a REST CRM set plugins.access.{LEGACY_PATHS[name][1]}" if name in LEGACY_PATHS else "")


@dataclass
class AccessRun:
    """The probe's working state; checks call its helpers and add findings to it."""

    ctx: ProbeContext
    opts: AccessOptions
    findings: list[Finding] = field(default_factory=list)
    deny_errors: list[Evidence] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    _own: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    _gone: set[tuple[str, str]] = field(default_factory=set)

    # ------------------------------------------------------------------ findings
    def add(self, fid: str, title: str, *, status: Status, severity: Severity, indicator: str,
            evidence: Iterable[Evidence] = (), remediation: str = "", references: Iterable[str] = (),
            not_assessed: NotAssessed | None = None, hint: str | None = None) -> None:
        """Record one check's outcome (pass findings too, so the report shows coverage)."""
        self.findings.append(Finding(
            id=fid, title=title, severity=severity, status=status, indicator=indicator, probe="access",
            evidence=list(evidence)[:5], remediation=remediation, references=list(references),
            not_assessed=not_assessed, hint=hint))

    def skip(self, fid: str, title: str, reason: NotAssessed, hint: str, *, indicator: str,
             severity: Severity = Severity.info, references: Iterable[str] = (), remediation: str = "") -> None:
        """A check that did not run: status skipped, why (``reason``) and exactly what would run it (``hint``)."""
        self.add(fid, title, status=Status.skipped, severity=severity, indicator=indicator, references=references,
                 remediation=remediation, not_assessed=reason, hint=hint)

    def unassessed(self, fid: str, title: str, ex: Exchange | None, *, indicator: str,
                   severity: Severity = Severity.info, references: Iterable[str] = (), remediation: str = "",
                   expected: str | None = None, reason: NotAssessed | None = None, hint: str | None = None) -> None:
        """A check whose deciding request got no answer it can be judged by: status error, never pass or deny.

        The reason is ``reason`` or the exchange's own (no answer, timeout, 5xx, an unexpected
        answer); the exchange is kept as evidence.
        """
        why = reason or unjudged(ex, self.ctx.adapter) or NotAssessed.request_failed
        ev = [ex.evidence(200, expected=expected, observed=f"{ex.error or ex.status} ({why.value})")] if ex is not None else []
        self.add(fid, f"{title} (not assessed: {_why_text(why, ex)})", status=Status.error, severity=severity,
                 indicator=indicator, evidence=ev, references=references, remediation=remediation,
                 not_assessed=why, hint=hint)

    def expect_deny(self, ex: Exchange, context: str) -> Verdict:
        """Verdict of a request that should be refused; a 5xx there is remembered as a finding.

        Also counts what the deny paths showed, so the 5xx-on-deny check knows whether it saw
        any real denial at all (``denials``) or only answers it cannot judge (``silent``).
        """
        v = self.verdict(ex)
        if v == "error" and ex.status is not None and ex.status >= 500 and len(self.deny_errors) < 20:
            self.deny_errors.append(ex.evidence(excerpt_chars=200, expected="401/403/404", observed=f"{ex.status} ({context})"))
        if v == "deny":
            self.notes["denials"] = self.notes.get("denials", 0) + 1
        elif v != "allow" and "silent" not in self.notes:
            self.notes["silent"] = ex  # no answer, or neither allowed nor denied
        return v

    def verdict(self, ex: Exchange) -> Verdict:
        """The access decision an answer shows, as the adapter classifies it."""
        return verdict(ex, self.ctx.adapter)

    def outcome(self, ex: Exchange) -> str:
        """The adapter's classification of an answer (allowed, denied, not_found, error, unknown)."""
        adapter = self.ctx.adapter
        return adapter.classify(ex) if adapter is not None else classify_http(ex)

    @property
    def checks(self) -> set[str]:
        return set(self.opts.checks)

    # ------------------------------------------------------------------ named operations
    def operation(self, name: str) -> str | None:
        """What to call for a named operation (``me``, ``register`` …): the adapter's own mapping, else the
        REST shorthand of the options (``me_path`` → ``GET <path>``) where the adapter can send it; None: neither."""
        adapter = self.ctx.adapter
        if adapter is None:
            return None
        if adapter.offers(name):
            return name
        if name not in LEGACY_PATHS:
            return None
        method, key = LEGACY_PATHS[name]
        path = getattr(self.opts, key)
        request = f"{method} {path}" if path else None
        return request if request is not None and adapter.offers(request) else None

    def call(self, operation: Operation | str, args: dict[str, Any] | None, account: Caller) -> tuple[Any, Exchange]:
        """Call an operation :meth:`operation` returned, through the adapter; (result when allowed, exchange)."""
        adapter = self.ctx.adapter
        assert adapter is not None
        return adapter.call(operation, args, account)

    # ------------------------------------------------------------------ accounts
    @property
    def profile(self) -> Profile:
        return self.ctx.profile

    # every pick goes through crm_audit.core.accounts, the one account picker
    def general_accounts(self) -> list[Account]:
        """Accounts usable for ordinary checks (never the dedicated lockout account)."""
        return pick.accounts(self.profile)

    def first_of_role(self, role: str, tenant: str | None = None, exclude: Iterable[str] = ()) -> Account | None:
        return pick.first(self.profile, role=role, tenant=tenant, exclude=exclude)

    def rule(self, role: str, resource: str, action: str) -> str | None:
        """'allow' / 'deny' / 'own' from the access matrix, or None when the profile does not say."""
        return pick.rule(self.profile, role, resource, action)

    def may(self, account: Account, resource: str, action: str) -> bool:
        """True unless the access matrix denies it (no matrix: assume allowed, verified by doing); 'own' is a may."""
        return pick.may(self.profile, account, resource, action)

    def privilege(self, role: str) -> int:
        """How many allow cells a role has in the matrix (to pick the most privileged role)."""
        return pick.role_privilege(self.profile, role)

    def named(self, key: str) -> Account | None:
        """The account the profile's ``actors.<key>`` names, if any."""
        name = getattr(self.profile.actors, key, None)
        return self.profile.account(name) if name else None

    def writer(self, resource: str, tenant: str | None, exclude: Iterable[str] = ()) -> Account | None:
        """A general account of ``tenant`` whose role may create ``resource``, most privileged first."""
        return pick.most_privileged(self.profile, tenant=tenant, exclude=exclude, resource=resource, action="create")

    def resources(self) -> list[str]:
        adapter = self.ctx.adapter
        if adapter is None:
            return []
        have = adapter.resources()
        if self.opts.resources is not None:
            return [r for r in self.opts.resources if r in have]
        return have

    # ------------------------------------------------------------------ records
    def create(self, resource: str, account: Account, overrides: dict[str, Any] | None = None,
               n: int = 0) -> tuple[dict[str, Any] | None, Exchange]:
        """Create a tagged record as ``account`` and register its deletion (creator first, then admins).

        ``n``: the record's unique number (0: the adapter numbers it); a create that may be refused
        gets one from ``persisted.create_number`` so a record it stored anyway can be found.
        """
        adapter = self.ctx.adapter
        assert adapter is not None
        rec, ex = adapter.create(resource, account.name, self.ctx.tag, n=n, overrides=overrides)
        if rec is not None:
            rid = adapter.record_id(rec)
            if rid is not None:
                self.notes.setdefault("creates", []).append((resource, rid, account.tenant))
                self.ctx.defer(f"delete {resource}/{rid}", lambda: self.cleanup(resource, rid, account.name))
        return rec, ex

    def own_record(self, resource: str, account: Account, key: str = "") -> tuple[dict[str, Any] | None, Exchange | None]:
        """A record ``account`` created in this run (created on first use, cached by ``key``).

        Returns (record, None) when it exists, (None, the create's exchange) when it could not
        be created — the exchange says why (refused, no answer, or created but not found).
        """
        k = (resource, account.name, key)
        if k not in self._own:
            rec, ex = self.create(resource, account)
            if rec is None:
                return None, ex
            self._own[k] = rec
        return self._own[k], None

    def delete(self, resource: str, rid: Any, account: str | None) -> Exchange:
        """DELETE through the adapter, remembering records known to be gone (cleanup skips them)."""
        adapter = self.ctx.adapter
        assert adapter is not None
        ex = adapter.delete(resource, rid, account)
        if self.outcome(ex) == "allowed":  # never ex.ok: an RPC CRM refuses with HTTP 200
            self._gone.add((resource, str(rid)))
        return ex

    def cleanup(self, resource: str, rid: Any, first: str | None) -> None:
        """Delete one of the audit's records: as its creator, else as any account that can."""
        adapter = self.ctx.adapter
        assert adapter is not None
        if (resource, str(rid)) in self._gone:
            return
        names = ([first] if first else []) + [a.name for a in sorted(
            self.general_accounts(), key=lambda a: -self.privilege(a.role)) if a.name != first]
        tried = []
        for name in names:
            ex = adapter.delete(resource, rid, name)
            if self.outcome(ex) == "allowed":
                return
            tried.append(self.outcome(ex))
        for name in names:  # nobody could delete it: fine when nobody can see it either
            got, ex = adapter.read(resource, rid, name)
            if got is not None:
                raise RuntimeError(f"could not delete {resource}/{rid} (answers {sorted(set(map(str, tried)))})")
        return

@dataclass
class Tally:
    """What the attempts of one check showed, to report it in one of three states.

    ``hits``: evidence that something worked that must not (fail); ``judged``: attempts with a
    real answer (pass when nothing hit); ``silent``: attempts without an answer to judge
    (error, when nothing hit); ``untested``: parts that could not be tried at all, as
    (part, reason, hint) — each a skipped ``<id>.<part>`` beside the verdict, or the check's
    own id skipped when no part could run.
    """

    hits: list[Evidence] = field(default_factory=list)
    judged: list[str] = field(default_factory=list)
    silent: list[Exchange | None] = field(default_factory=list)
    untested: list[tuple[str, NotAssessed, str]] = field(default_factory=list)

    def record(self, label: str, outcome: Evidence | Exchange | None) -> None:
        """One attempt: Evidence (it worked), None (refused), or the Exchange that cannot be judged."""
        if isinstance(outcome, Exchange):
            self.silent.append(outcome)
            return
        self.judged.append(label)
        if outcome is not None:
            self.hits.append(outcome)

    def report(self, run: AccessRun, fid: str, *, what: str, bad: str, good: str, severity: Severity,
               bad_severity: Severity | None = None, good_evidence: Iterable[Evidence] = (), **kw: Any) -> None:
        """fail on a hit; error when an attempt could not be judged; pass on what was judged; skipped parts beside."""
        if self.hits:
            run.add(fid, bad, status=Status.failed, severity=bad_severity or severity, evidence=self.hits, **kw)
        elif self.silent:
            run.unassessed(fid, good, self.silent[0], severity=severity, **kw)
        elif self.judged:
            run.add(fid, good, status=Status.passed, severity=severity, evidence=good_evidence, **kw)
        else:
            run.skip(fid, f"{what} not tested", self.untested[0][1], "; ".join(h for _, _, h in self.untested),
                     severity=severity, **kw)
            return
        for part, reason, hint in self.untested:
            run.skip(f"{fid}.{part}", f"{what}: {part.replace('_', ' ')} not tested", reason, hint,
                     severity=severity, **kw)


def _why_text(why: NotAssessed, ex: Exchange | None) -> str:
    if ex is None:
        return "no request could be sent"
    if not ex.answered:
        return f"{ex.method} got no answer: {ex.error or 'no status'}"
    if ex.status is not None and ex.status >= 500:
        return f"{ex.method} answered {ex.status}"
    if why is NotAssessed.request_failed and ex.ok:
        return f"{ex.method} answered {ex.status} with nothing the check can read"
    return f"{ex.method} answered {ex.status}, neither allowed nor denied"


def same_value(a: Any, b: Any) -> bool:
    """Loose equality of API values (ids may come back as int or str)."""
    if a is None or b is None:
        return a is b
    return str(a) == str(b)


def update_took_effect(body: dict[str, Any], before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool | None:
    """True when every field of ``body`` (field paths may be dotted) now holds its value and one changed;
    None: cannot tell."""
    if after is None or not body:
        return None
    if not all(same_value(dig(after, k), v) for k, v in body.items()):
        return False
    if before is not None and all(same_value(dig(before, k), v) for k, v in body.items()):
        return None  # the record already held these values
    return True
