"""Access logging: the audit's own failed login and record creation must show up in the CRM's log.

Only runs when the adapter maps the ``audit_log`` operation (or ``plugins.access.audit_log_path``
names a REST log endpoint); entries are matched loosely (the username; the resource name and the
record id in one entry), so any JSON log fits.
"""

from __future__ import annotations

import json
import re
from typing import Any

from crm_audit.core.adapter import dig
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status

from .common import HINT_DISRUPTIVE, HINT_WRITES, INDICATOR_LOGGING, AccessRun, operation_hint, refs


def _entries(data: Any, path: str | None = None) -> list[str]:
    """The log's entries as JSON text: at ``path`` (dotted; '' = the answer), else items / results / entries /
    records."""
    if path is not None:
        items = dig(data, path)
    elif isinstance(data, dict):
        items = next((data[k] for k in ("items", "results", "entries", "records") if k in data), None)
    else:
        items = data
    if not isinstance(items, list):
        return []
    return [json.dumps(i, default=str) if not isinstance(i, str) else i for i in items]


def check_access_log(run: AccessRun) -> None:
    """Find this run's failed login and one created record in the access log."""
    path = run.operation("audit_log")
    kw: dict[str, Any] = dict(indicator=INDICATOR_LOGGING, references=refs("API8", "CWE-778"), severity=Severity.medium,
                              remediation="Log every authentication event and every change of a record with "
                                          "actor, time, action, target and source address; let admins read it.")
    if not path:
        run.skip("access.logging", "Access logging not tested (the adapter maps no 'audit_log' operation)",
                 NotAssessed.not_configured, operation_hint("audit_log"), **kw)
        return
    tenant = None
    user = run.notes.get("failed_login_user")
    acct_name = run.notes.get("failed_login_account")
    if acct_name:
        tenant = run.profile.account(acct_name).tenant
    reader = run.opts.audit_log_account
    if reader is None:
        cands = sorted((a for a in run.general_accounts() if tenant is None or a.tenant == tenant),
                       key=lambda a: -run.privilege(a.role))
        reader = cands[0].name if cands else None
    if reader is None:
        run.skip("access.logging", "Access logging not tested (no account to read the log)", NotAssessed.needs_account,
                 f"set plugins.access.audit_log_account, or add an admin account in tenant {tenant or '(any)'}", **kw)
        return
    data, ex = run.call(path, dict(run.opts.audit_log_params), reader)
    if data is None and run.verdict(ex) != "deny":  # no answer, 5xx, or an answer that is not a log
        for fid, title in (("access.logging.readable", "The access log is readable"),
                           ("access.logging.failed_login", "Failed logins are logged"),
                           ("access.logging.create", "Record creation is logged")):
            run.unassessed(fid, title, ex, expected=f"the log from {path}", **kw)
        return
    if data is None:
        run.add("access.logging.readable", f"The access log cannot be read ({path}: {run.outcome(ex)})",
                status=Status.failed, evidence=[ex.evidence(200)], **kw)
        return
    entries = _entries(data, run.opts.audit_log_items_path)
    run.add("access.logging.readable", f"The access log is readable by {reader} ({len(entries)} entries)",
            status=Status.passed, **kw)
    if user:
        hit = any(user in e and ("fail" in e.lower() or "denied" in e.lower() or "invalid" in e.lower()) for e in entries)
        ev = [Evidence(request=f"{path} (as {reader})", status=ex.status,
                       expected="an entry for the audit's failed login", observed="found" if hit else "not found")]
        run.add("access.logging.failed_login", "Failed logins are " + ("logged" if hit else "not logged"),
                status=Status.passed if hit else Status.failed, evidence=ev, **kw)
    elif run.notes.get("failed_login_silent") is not None:
        run.unassessed("access.logging.failed_login", "Failed logins are logged", run.notes["failed_login_silent"],
                       **kw)
    else:
        run.skip("access.logging.failed_login", "Failed-login logging not tested (the audit sent no failed login "
                 "that reached the CRM)", NotAssessed.needs_account, "run the login check: add an account with "
                 "purpose: lockout (auth.method: login), or " + HINT_DISRUPTIVE, **kw)
    reader_tenant = run.profile.account(reader).tenant
    created = [(r, i) for r, i, t in run.notes.get("creates", []) if t == reader_tenant]
    if created:
        res, rid = created[-1]
        word = re.compile(rf"(?<![\w.-]){re.escape(str(rid))}(?![\w.-])")
        name = run.opts.audit_log_entity_names.get(res, res)
        hit = any(f"{name}/{rid}" in e or (name in e and word.search(e)) for e in entries)
        ev = [Evidence(request=f"{path} (as {reader})", status=ex.status,
                       expected=f"an entry for creating {res}/{rid}", observed="found" if hit else "not found")]
        run.add("access.logging.create", "Record creation is " + ("logged" if hit else "not logged"),
                status=Status.passed if hit else Status.failed, evidence=ev, **kw)
    elif not run.ctx.allow_writes:
        run.skip("access.logging.create", "Record-creation logging not tested (writes not allowed)",
                 NotAssessed.safety, HINT_WRITES, **kw)
    else:
        run.skip("access.logging.create", f"Record-creation logging not tested (the audit created no record in "
                 f"{reader}'s tenant)", NotAssessed.needs_account, f"set plugins.access.audit_log_account to an "
                 f"account of a tenant the audit writes to, or add a writer account in tenant {reader_tenant or '(any)'}",
                 **kw)
