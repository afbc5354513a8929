"""Who can reach backups: the backup endpoints without credentials or as a low-privilege role,
and backup files served from guessable URLs."""

from __future__ import annotations

from typing import Any

from crm_audit.core.adapter import dig
from crm_audit.core.model import Evidence, Finding, NotAssessed, Severity, Status
from crm_audit.core.probe import ProbeContext

from .content import looks_like_backup
from .operations import Operations, run_http

INDICATOR = "bak.protection"
REFS = ["OWASP API5:2023 Broken Function Level Authorization", "CWE-306", "CWE-530"]


def endpoint_exposure(ctx: ProbeContext, ops: Operations, operator: str | None, backup_id: Any, caller: str | None,
                      finding_id: str, who: str, allow_trigger: bool, created: list[Any] | None = None) -> Finding:
    """Call list/download (and trigger, when writes are allowed) as ``caller``; any 2xx is a failure.

    A refusal counts only when the CRM really answered (a status below 500 other than 2xx); a call
    that got no answer or a 5xx leaves the check not assessed. Backups an exposed trigger created
    are appended to ``created`` so the probe deletes them with its own.
    """
    checks = [("list_backups", ops.list_backups, None), ("download_backup", ops.download_backup, backup_id)]
    if allow_trigger:
        checks.append(("trigger_backup", ops.trigger_backup, None))
    evidence: list[Evidence] = []
    exposed: list[str] = []
    unanswered: list[tuple[str, NotAssessed]] = []
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
            if name == "trigger_backup" and created is not None:
                new_id = dig(res.data, spec.p_id_field)
                if new_id is not None:
                    created.append(new_id)
        elif res.not_assessed is not None:
            unanswered.append((name, res.not_assessed))
        # no excerpt: an exposed download would put backup content (customer data) into the report
        assert res.evidence is not None  # run_http always keeps the exchange's evidence
        evidence.append(res.evidence.model_copy(update={"expected": "401/403", "observed": f"{res.status or res.error}",
                                                        "excerpt": None}))
    title = f"Backup endpoints reachable {who}"
    if not tried:
        return Finding(id=finding_id, title=f"{title}: not checked", severity=Severity.critical,
                       status=Status.skipped, indicator=INDICATOR, not_assessed=NotAssessed.not_configured,
                       hint="describe list_backups / download_backup as HTTP operations in plugins.backup.operations",
                       evidence=[Evidence(observed="no HTTP backup operation to call")])
    if exposed:
        return Finding(id=finding_id, title=f"{title}: {', '.join(exposed)}", severity=Severity.critical,
                       status=Status.failed, indicator=INDICATOR, evidence=evidence,
                       remediation="Require an operator/administrator session on every backup endpoint; "
                                   "check the role before any work is done.", references=REFS)
    if unanswered:
        names = ", ".join(n for n, _ in unanswered)
        return Finding(id=finding_id, title=f"{title}: not assessed, no usable answer from {names}",
                       severity=Severity.critical, status=Status.error, indicator=INDICATOR, evidence=evidence,
                       not_assessed=unanswered[0][1],
                       hint="re-run when the backup endpoints answer (a refusal must be a real 401/403, not a 5xx)")
    return Finding(id=finding_id, title=f"Backup endpoints refuse callers {who}", severity=Severity.critical,
                   status=Status.passed, indicator=INDICATOR, evidence=evidence)


def guessable_paths(ctx: ProbeContext, paths: list[str]) -> Finding:
    """GET each guessable path anonymously; a body that looks like a backup file is a failure.

    A pass needs a real answer for every path: a path that got no answer or a 5xx leaves the
    check not assessed (unless another path already served a backup).
    """
    served: list[Evidence] = []
    unanswered: list[Evidence] = []
    why: NotAssessed | None = None
    plain = False
    for path in paths:
        ctx.check_cancelled()
        ex = ctx.target.request("GET", path, account=None)
        if ex.not_assessed is not None:
            why = why or ex.not_assessed
            unanswered.append(ex.evidence(excerpt_chars=120, expected="404", observed=str(ex.status or ex.error)))
            continue
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
    if unanswered:
        return Finding(id="backup.exposure.guessable_path",
                       title=f"Guessable backup URLs not assessed: {len(unanswered)} of {len(paths)} paths gave no usable answer",
                       severity=Severity.critical, status=Status.error, indicator=INDICATOR, evidence=unanswered[:5],
                       not_assessed=why, hint="re-run when the site answers every path (404 for a missing file, not a 5xx)")
    return Finding(id="backup.exposure.guessable_path", title="No backup file at guessable URLs",
                   severity=Severity.critical, status=Status.passed, indicator=INDICATOR,
                   evidence=[Evidence(observed=f"{len(paths)} paths tried anonymously, none served a backup",
                                      details={"paths": paths})])
