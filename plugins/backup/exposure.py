"""Who can reach backups: the backup endpoints without credentials or as a low-privilege role,
and backup files served from guessable URLs."""

from __future__ import annotations

from typing import Any

from crm_audit.model import Evidence, Finding, Severity, Status

from .content import looks_like_backup
from .operations import Operations, run_http

INDICATOR = "bak.protection"
REFS = ["OWASP API5:2023 Broken Function Level Authorization", "CWE-306", "CWE-530"]


def endpoint_exposure(ctx: Any, ops: Operations, operator: str | None, backup_id: Any, caller: str | None,
                      finding_id: str, who: str, allow_trigger: bool) -> Finding:
    """Call list/download (and trigger, when writes are allowed) as ``caller``; any 2xx is a failure."""
    checks = [("list_backups", ops.list_backups, None), ("download_backup", ops.download_backup, backup_id)]
    if allow_trigger:
        checks.append(("trigger_backup", ops.trigger_backup, None))
    evidence: list[Evidence] = []
    exposed: list[str] = []
    tried = 0
    for name, spec, bid in checks:
        if spec is None or spec.http is None or spec.http.anonymous:
            continue
        if "{id}" in spec.http.path and bid is None:
            continue
        tried += 1
        res = run_http(ctx, name, spec.http, operator, backup_id=bid, account=caller)
        if res.ok:
            exposed.append(name)
        # no excerpt: an exposed download would put backup content (customer data) into the report
        evidence.append(res.evidence.model_copy(update={"expected": "401/403", "observed": f"{res.status}",
                                                        "excerpt": None}))
    title = f"Backup endpoints reachable {who}"
    if not tried:
        return Finding(id=finding_id, title=title, severity=Severity.critical, status=Status.skipped,
                       indicator=INDICATOR, evidence=[Evidence(observed="no HTTP backup operation to call")])
    if exposed:
        return Finding(id=finding_id, title=f"{title}: {', '.join(exposed)}", severity=Severity.critical,
                       status=Status.failed, indicator=INDICATOR, evidence=evidence,
                       remediation="Require an operator/administrator session on every backup endpoint; "
                                   "check the role before any work is done.", references=REFS)
    return Finding(id=finding_id, title=f"Backup endpoints refuse callers {who}", severity=Severity.critical,
                   status=Status.passed, indicator=INDICATOR, evidence=evidence)


def guessable_paths(ctx: Any, paths: list[str]) -> Finding:
    """GET each guessable path anonymously; a body that looks like a backup file is a failure."""
    served: list[Evidence] = []
    plain = False
    for path in paths:
        ctx.check_cancelled()
        ex = ctx.target.request("GET", path, account=None)
        if not ex.ok:
            continue
        is_backup, fmt = looks_like_backup(ex.body, dict(ex.headers))
        if is_backup:
            plain = plain or fmt in ("sqlite", "pg_custom", "sql", "json", "csv", "zip", "gzip")
            served.append(Evidence(request=f"GET {path}  (anonymous)", status=ex.status,
                                   observed=f"{fmt}, {len(ex.body)} bytes", expected="404",
                                   excerpt=None))
    if served:
        return Finding(id="backup.exposure.guessable_path", title="Backup file served anonymously at a guessable URL",
                       severity=Severity.critical if plain else Severity.high, status=Status.failed,
                       indicator=INDICATOR, evidence=served,
                       remediation="Never store backups under the web root; serve them only through an "
                                   "authenticated, audited download.", references=["CWE-530", "CWE-552"])
    return Finding(id="backup.exposure.guessable_path", title="No backup file at guessable URLs",
                   severity=Severity.critical, status=Status.passed, indicator=INDICATOR,
                   evidence=[Evidence(observed=f"{len(paths)} paths tried anonymously, none served a backup",
                                      details={"paths": paths})])
