"""The backup probe's steps, in order: freshness, exposure, canaries + backup, content and
integrity, then (disruptive, opt-in) change canaries, restore, wait for health, verify.

Each step is a method so a failure can be pinned to it; whatever happens, :meth:`run`
cleans up (canaries, local backup files) and returns a result saying what state was left.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_audit.core import accounts
from crm_audit.core.adapter import Adapter, IncompleteRead, dig
from crm_audit.core.model import Evidence, Finding, Measurement, NotAssessed, ProbeResult, Severity, Status
from crm_audit.core.probe import ProbeContext

from . import exposure
from .canaries import CanarySet
from .content import analyse, verify_checksum
from .freshness import evaluate
from .operations import HttpOp, OperationSpec, OpResult, run_command, run_http

if TYPE_CHECKING:  # the package's __init__ imports this module
    from . import BackupOptions

REF_DR = ["NIST SP 800-34 Rev. 1 (contingency planning)", "ISO/IEC 27001:2022 A.8.13 Information backup"]


@dataclass
class BackupRef:
    """The backup the drill took: its id, local file (command backups), metadata, start time."""

    id: Any
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    started_wall: float = 0.0
    result: OpResult | None = None


class BackupAudit:
    """Runs the probe's steps against one target and assembles the ProbeResult."""

    def __init__(self, ctx: ProbeContext, opts: BackupOptions) -> None:
        self.ctx = ctx
        self.opts = opts
        self.ops = opts.operations
        self.t0 = time.perf_counter()
        self.findings: list[Finding] = []
        self.measurements: list[Measurement] = []
        self.timeline: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.canaries: CanarySet | None = None
        self.canary_summary: dict[str, Any] = {}
        self.backup_dir: Path | None = None
        self.backups_created: list[Any] = []
        self.backup_files: dict[str, Path | None] = {}
        self.backup_cleanup: dict[str, Any] | None = None
        self.listed = False
        self.newest_listed: dict[str, Any] | None = None
        self.rto_s: float | None = None
        self.rpo_s: float | None = None
        self.operator = opts.account or accounts.name_of(accounts.admin(ctx.profile))
        for spec in self._specs():
            for value in spec.env.values():
                ctx.target.redactor.add(value)

    # ------------------------------------------------------------ plumbing
    def _specs(self) -> list[OperationSpec]:
        return [s for s in (self.ops.trigger_backup, self.ops.list_backups, self.ops.download_backup,
                            self.ops.restore, self.ops.health) if s is not None]

    def event(self, name: str, **extra: Any) -> None:
        self.timeline.append({"event": name, "t_s": round(time.perf_counter() - self.t0, 3), **extra})
        self.ctx.log(name)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding.model_copy(update={"probe": "backup"}))

    def call(self, name: str, spec: OperationSpec, backup: BackupRef | None = None,
             values: dict[str, Any] | None = None) -> OpResult:
        """Run one operation, HTTP or command, with the backup's placeholders."""
        if spec.http is not None:
            return run_http(self.ctx, name, spec.http, self.operator, backup_id=backup.id if backup else None)
        vals = {"run_id": self.ctx.run_id, "backup_dir": str(self._backup_dir())}
        if backup is not None:
            vals.update(backup_id=backup.id, backup_path=str(backup.path or ""))
        vals.update(values or {})
        return run_command(name, spec, vals, self.ctx.target.redactor.redact, self.ctx.cancel,
                           cwd=str(self._backup_dir()))

    def _backup_dir(self) -> Path:
        """Private folder for command backups (they hold customer data); removed in cleanup."""
        if self.backup_dir is None:
            self.backup_dir = Path(self.ctx.workdir) / f"crm-audit-backup-{self.ctx.run_id}"
            self.backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.ctx.defer("remove local backup files", self._remove_backup_dir)
        return self.backup_dir

    def _remove_backup_dir(self) -> None:
        if self.backup_dir is not None and self.backup_dir.exists():
            shutil.rmtree(self.backup_dir, ignore_errors=True)

    # ------------------------------------------------------------ run
    def run(self) -> ProbeResult:
        status, reason = "ok", None
        try:
            self.check_freshness()
            self.check_exposure()
            if self.ctx.allow_writes:
                self.drill()
            else:
                self.check_existing_backup()
                self._skip_restore("restore drill needs writes allowed (allow.writes / --allow-writes)",
                                   NotAssessed.safety, "run with --allow-writes --allow-disruptive")
        except BaseException as exc:  # noqa: BLE001 - always clean up and say what was left
            interrupted = isinstance(exc, KeyboardInterrupt) or self.ctx.cancel.is_set()
            status = "incomplete" if interrupted else "error"
            step = self.timeline[-1]["event"] if self.timeline else "start"
            what = "interrupted" if interrupted else f"{type(exc).__name__}: {exc}"
            reason = self.ctx.target.redactor.redact(f"{what} (after step '{step}')")
            self.event("aborted", reason=reason)
            self._not_reached(NotAssessed.interrupted if interrupted else NotAssessed.probe_error, reason)
        cleanup = self.cleanup()
        if cleanup.get("state") in ("canaries left behind", "backup files left behind") and status == "ok":
            status, reason = "error", "cleanup left audit data behind"
        left = cleanup.get("backups_left_in_crm")
        if left:
            why = cleanup["backups"].get("note") or "delete_backup failed"
            note = f"{len(left)} backup(s) the audit made are left in the CRM: {left} ({why})"
            reason = f"{reason}; {note}" if reason else note
        return ProbeResult(probe="backup", status=status, reason=reason, measurements=self.measurements,
                           findings=self.findings,
                           artifacts={"backup": self.artifact(), "cleanup": cleanup})

    def artifact(self) -> dict[str, Any]:
        if not self.canary_summary and self.canaries is not None:  # aborted before the verdict
            self.canary_summary = {"resource": self.canaries.resource,
                                   "created": [{"id": c.id, "phase": c.phase, "action": c.action}
                                               for c in self.canaries.items]}
        return {"timeline": self.timeline, "rto_s": self.rto_s, "rpo_s": self.rpo_s,
                "canaries": self.canary_summary, "backups_created": self.backups_created, "notes": self.notes}

    def cleanup(self) -> dict[str, Any]:
        """Delete canaries and local backup files now (the deferred copies then find nothing to do)."""
        report: dict[str, Any] = {"state": "clean", "canaries": None}
        if self.canaries is not None:
            try:
                report["canaries"] = self.canaries.cleanup()
            except Exception as exc:  # noqa: BLE001
                report["canaries"] = {"state": "canaries left behind", "error": type(exc).__name__,
                                      "ids": [c.id for c in self.canaries.items]}
            if report["canaries"]["state"] != "clean":
                report["state"] = "canaries left behind"
        if self.backup_dir is not None:
            self._remove_backup_dir()
            report["local_backup_files"] = "removed" if not self.backup_dir.exists() else f"left in {self.backup_dir}"
            if self.backup_dir.exists():
                report["state"] = "backup files left behind"
        if self.backups_created:
            report["backups"] = self.delete_backups()
            report["backups_left_in_crm"] = report["backups"]["left"]
            if report["backups"]["left"] and report["state"] == "clean":
                report["state"] = "backups left in the CRM"
        self.event("cleanup_done", state=report["state"])
        return report

    # ------------------------------------------------------------ the audit's own backups
    def remember_backup(self, backup_id: Any, path: Path | None = None) -> None:
        """Note a backup the audit made; it is deleted at the end (also on Ctrl-C, via ctx.defer)."""
        if backup_id in self.backups_created:
            return
        if not self.backups_created:
            self.ctx.defer("delete the audit's backups", _discarding(self.delete_backups))
        self.backups_created.append(backup_id)
        self.backup_files[str(backup_id)] = path

    def delete_backups(self) -> dict[str, Any]:
        """Delete every backup the audit made with ``delete_backup`` and confirm it is no longer listed.

        Safe to call again (the deferred copy finds nothing left to do). Without a ``delete_backup``
        operation, backups a command wrote into the private folder go with that folder; HTTP ones stay
        in the CRM and are reported as left.
        """
        if self.backup_cleanup is not None and not self.backup_cleanup["left"]:
            return self.backup_cleanup
        spec = self.ops.delete_backup
        deleted: list[Any] = []
        errors: list[str] = []
        pending = [b for b in self.backups_created if b not in (self.backup_cleanup or {}).get("deleted", [])]
        for backup_id in pending:
            if spec is None:
                continue
            ref = BackupRef(id=backup_id, path=self.backup_files.get(str(backup_id)))
            try:
                res = self.call("delete_backup", spec, ref)
            except Exception as exc:  # noqa: BLE001 - keep deleting the others
                errors.append(f"{backup_id}: {type(exc).__name__}")
                continue
            if res.ok or res.status == 404:
                deleted.append(backup_id)
            else:
                errors.append(f"{backup_id}: {res.error}")
        still_listed = self._still_listed(set(map(str, self.backups_created)))
        done = (self.backup_cleanup or {}).get("deleted", []) + deleted
        command_made = self.ops.trigger_backup is not None and self.ops.trigger_backup.command is not None
        if still_listed is None:  # no list to confirm by: trust the delete answers
            left = [b for b in self.backups_created if b not in done and not (command_made and spec is None)]
        else:
            left = [b for b in self.backups_created if str(b) in still_listed]
        self.backup_cleanup = {
            "created": list(self.backups_created), "deleted": [b for b in done if b not in left], "left": left,
            "errors": errors, "confirmed_by_list": still_listed is not None,
            **({"note": "no delete_backup operation in plugins.backup.operations"} if spec is None else {}),
        }
        return self.backup_cleanup

    def _still_listed(self, ids: set[str]) -> set[str] | None:
        """Which of ``ids`` list_backups still shows (None when it cannot be asked)."""
        spec = self.ops.list_backups
        if spec is None:
            return None
        try:
            res = self.call("list_backups", spec)
        except Exception:  # noqa: BLE001
            return None
        items = res.items(spec) if res.ok else None
        if items is None:
            return None
        return {str(i.get(spec.p_id_field)) for i in items} & ids

    # ------------------------------------------------------------ 1. freshness
    def check_freshness(self) -> None:
        spec = self.ops.list_backups
        if spec is None:
            self.add(Finding(id="backup.stale", title="Backup freshness not checked", severity=Severity.high,
                             status=Status.skipped, indicator="bak.freshness", not_assessed=NotAssessed.not_configured,
                             hint="add plugins.backup.operations.list_backups",
                             evidence=[Evidence(observed="no list_backups operation in plugins.backup.operations")]))
            return
        res = self.call("list_backups", spec)
        self.event("backups_listed", ok=res.ok)
        items = res.items(spec) if res.ok else None
        if items is None:
            why = res.not_assessed or NotAssessed.request_failed
            observed = (res.error if not res.ok else
                        "output over the audit's byte cap" if res.truncated else "no list of backups in the answer")
            self.add(Finding(id="backup.stale", title=f"Backup freshness not assessed: backups could not be listed "
                             f"({observed})", severity=Severity.high, status=Status.error, indicator="bak.freshness",
                             not_assessed=why, evidence=[_ev(res).model_copy(update={"observed": observed})],
                             hint="check that the operator account can call list_backups and that items_path "
                                  "points at the list"))
            return
        self.listed = True
        fr = evaluate(items, spec.p_created_at_field, spec.p_id_field, self.opts.rpo_target_h,
                      self.opts.expected_frequency)
        if fr.newest_id is not None:
            self.newest_listed = next((i for i in items if i.get(spec.p_id_field) == fr.newest_id), None)
        self.measurements.append(Measurement(
            indicator="bak.freshness", value=None if fr.age_h is None else round(fr.age_h, 3), unit="h",
            expected=fr.limit_h, better="lower", label="age of the newest backup", details=fr.details()))
        assert res.evidence is not None  # run_http and run_command always keep evidence
        ev = res.evidence.model_copy(update={"expected": f"newest backup at most {fr.limit_h:g} h old",
                                             "observed": "no dated backup" if fr.age_h is None
                                             else f"{fr.age_h:.1f} h old ({fr.count} backups)",
                                             "details": fr.details()})
        if fr.stale:
            title = "No backup found" if fr.age_h is None else f"Newest backup is {fr.age_h:.1f} h old"
            self.add(Finding(id="backup.stale", title=title, severity=Severity.high, status=Status.failed,
                             indicator="bak.freshness", evidence=[ev], references=REF_DR,
                             remediation=f"Run backups at least {self.opts.expected_frequency} and alert when the "
                                         f"newest is older than the {self.opts.rpo_target_h:g} h RPO target."))
        else:
            self.add(Finding(id="backup.stale", title="Newest backup is within the RPO target", severity=Severity.high,
                             status=Status.passed, indicator="bak.freshness", evidence=[ev]))

    # ------------------------------------------------------------ 2. exposure
    def check_exposure(self) -> None:
        bid = None
        if self.newest_listed and self.ops.list_backups:
            bid = self.newest_listed.get(self.ops.list_backups.p_id_field)
        exposed_backups: list[Any] = []
        self.add(exposure.endpoint_exposure(self.ctx, self.ops, self.operator, bid, None,
                                            "backup.exposure.anonymous", "without credentials", self.ctx.allow_writes,
                                            exposed_backups))
        low = self.opts.low_privilege_account or accounts.name_of(
            accounts.least_privileged(self.ctx.profile, other_role_than=self.operator))
        if low:
            self.add(exposure.endpoint_exposure(self.ctx, self.ops, self.operator, bid, low,
                                                "backup.exposure.low_privilege", f"as low-privilege account {low!r}",
                                                self.ctx.allow_writes, exposed_backups))
        else:
            self.add(Finding(id="backup.exposure.low_privilege", title="No low-privilege account to test with",
                             severity=Severity.critical, status=Status.skipped, indicator=exposure.INDICATOR,
                             not_assessed=NotAssessed.needs_account,
                             hint="add an account with a read-only role, or set plugins.backup.low_privilege_account"))
        for backup_id in exposed_backups:  # an exposed trigger made them: the audit deletes them with its own
            self.remember_backup(backup_id)
        self.add(exposure.guessable_paths(self.ctx, self.opts.guessable_paths))
        self.event("exposure_checked")

    # ------------------------------------------------------------ 3. drill
    def drill(self) -> None:
        if self.ops.trigger_backup is None:
            self.check_existing_backup()
            self._skip_restore("no trigger_backup operation: the drill needs a fresh backup",
                               NotAssessed.not_configured, "add plugins.backup.operations.trigger_backup")
            return
        opts = self.opts
        cs = self.canaries = CanarySet(self.ctx, opts.canary_resource, self.operator, opts.volatile_fields,
                                       opts.canary_update)
        self.ctx.defer("delete backup canaries", _discarding(cs.cleanup))
        self.step_create_canaries()
        counts_before = self.step_count("counted_before_backup")
        cs.snapshot()
        backup = self.step_backup()
        if backup is None:
            return
        self.step_content(backup)
        if self.ops.restore is None:
            self._skip_restore("no restore operation in plugins.backup.operations", NotAssessed.not_configured,
                               "add plugins.backup.operations.restore")
            return
        if not opts.verify_restore:
            self._skip_restore("verify_restore is off", NotAssessed.not_configured,
                               "set plugins.backup.verify_restore: true")
            return
        if not self.ctx.allow_disruptive:
            self._skip_restore("restore drill is disruptive: allow it with allow.disruptive / --allow-disruptive",
                               NotAssessed.safety, "run with --allow-disruptive")
            return
        self.step_change_canaries()
        restore_ok, restore_res, t_restore = self.step_restore(backup)
        health_ok = self.step_wait_health()
        result = cs.verify()
        t_verified = time.perf_counter()
        self.event("canaries_verified", verified=len(result["verified"]), missing=len(result["missing"]),
                   mismatched=len(result["mismatched"]))
        counts_after = self.step_count("counted_after_restore")
        self.judge(backup, restore_res, health_ok, result, counts_before, counts_after, t_restore, t_verified)

    def step_create_canaries(self) -> None:
        cs = self.canaries
        assert cs is not None
        made = cs.create(self.opts.canaries, "before_backup")
        self.event("canaries_created", count=len(made))
        if len(made) < 3:
            raise RuntimeError(f"could not create canaries in {cs.resource!r}: {'; '.join(cs.create_errors) or 'unknown'}")

    def step_count(self, event: str) -> dict[str, int | None]:
        adapter = self.ctx.adapter
        names = self.opts.count_resources or (adapter.resources() if adapter else [])
        counts = {name: _count(adapter, name, self.operator, self.opts.count_cap) for name in names}
        self.event(event, counts=counts)
        return counts

    def step_backup(self) -> BackupRef | None:
        spec = self.ops.trigger_backup
        assert spec is not None
        self.ctx.check_cancelled()
        ref = BackupRef(id=None, started_wall=time.time())
        if spec.command is not None:
            ref.id = f"audit-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}"
            ref.path = self._backup_dir() / f"{ref.id}.backup"
        self.event("backup_requested")
        res = self.call("trigger_backup", spec, ref)
        ref.result = res
        if spec.http is not None and res.ok:
            ref.id = dig(res.data, spec.p_id_field)
            ref.meta = res.data if isinstance(res.data, dict) else {}
        elif spec.command is not None and res.ok and (ref.path is None or not ref.path.exists()
                                                       or ref.path.stat().st_size == 0):
            res.ok, res.error = False, "the command exited 0 but wrote no backup at {backup_path}"
        self.event("backup_completed", ok=res.ok, backup_id=ref.id, duration_s=round(res.elapsed_s, 3))
        if res.ok and ref.id is not None:
            self.remember_backup(ref.id, ref.path)
            return ref
        # a command that exits non-zero or writes nothing is evidence the backup job fails; an HTTP
        # call without a usable answer (no answer, 5xx, a refusal of the operator, no id) is not
        judged = spec.command is not None and res.not_assessed is None
        evidence = [_ev(res)]
        if judged:
            self.add(Finding(id="backup.restore.failed", title="The backup could not be taken", severity=Severity.critical,
                             status=Status.failed, indicator="bak.restore_verified", evidence=evidence,
                             references=REF_DR, remediation="Make the backup job succeed and report its id/file."))
            self.measurements.append(Measurement(indicator="bak.restore_verified", value=0, unit="pass/fail",
                                                 expected=1, better="higher", label="backup failed"))
        else:
            why = res.not_assessed or NotAssessed.request_failed
            observed = res.error or f"no backup id at {spec.p_id_field!r} in the answer"
            self.add(Finding(id="backup.restore.failed", title=f"Restore not assessed: the backup could not be "
                             f"triggered ({observed})", severity=Severity.critical, status=Status.error,
                             indicator="bak.restore_verified", evidence=evidence, not_assessed=why,
                             hint="check trigger_backup (account, path, id_field) and re-run"))
        self.add(Finding(id="backup.restore.data_lost", title="Restore not attempted (no backup)",
                         severity=Severity.critical, status=Status.skipped, indicator="bak.restore_verified",
                         not_assessed=NotAssessed.request_failed if not judged else NotAssessed.not_applicable,
                         hint="make trigger_backup succeed, then re-run"))
        self._skip_integrity("no backup was taken", NotAssessed.not_applicable if judged else NotAssessed.request_failed,
                             "make trigger_backup succeed, then re-run", content=True)
        self._not_measured(("bak.rto", "bak.rpo"), "no backup was taken",
                           NotAssessed.not_applicable if judged else NotAssessed.request_failed,
                           "make trigger_backup succeed, then re-run")
        return None

    # ------------------------------------------------------------ content and integrity
    def check_existing_backup(self) -> None:
        """Without writes: judge the newest existing backup's content and checksum (no canaries)."""
        if self.newest_listed is None or self.ops.list_backups is None:
            if self.ops.list_backups is None:
                why, hint = NotAssessed.not_configured, "add plugins.backup.operations.list_backups"
            elif not self.listed:
                why, hint = NotAssessed.request_failed, "make list_backups answer, then re-run"
            else:
                why, hint = NotAssessed.not_applicable, "take a backup (or run with --allow-writes so the audit takes one)"
            self._skip_integrity("no listed backup to download", why, hint, content=True)
            return
        ref = BackupRef(id=self.newest_listed.get(self.ops.list_backups.p_id_field), meta=self.newest_listed)
        self.step_content(ref)

    def step_content(self, backup: BackupRef) -> None:
        got = self._backup_bytes(backup)
        if got.data is None:
            self._skip_integrity(got.why_not or "backup file not readable", got.not_assessed or NotAssessed.not_configured,
                                 got.hint or "add plugins.backup.operations.download_backup", content=True, ev=got.evidence)
            return
        data, offered, source, ev = got.data, got.offered, got.source, got.evidence
        self.ctx.check_cancelled()
        canaries = self.canaries.values() if self.canaries is not None and self.canaries.items else []
        rep = analyse(data, canaries)
        self.event("backup_analysed", format=rep.format, size=rep.size, truncated=got.truncated)
        details = {**rep.summary(), **({"read_bytes_cap": len(data)} if got.truncated else {})}
        evidence = [(ev or Evidence()).model_copy(update={
            "expected": "encrypted backup (no customer data readable without a key)",
            "observed": f"{rep.format}, {rep.size} bytes" + (" read (the file is larger than max_backup_mb)"
                                                             if got.truncated else "")
                        + f", entropy {rep.entropy:.2f} bits/byte"
                        + (f", {len(rep.canaries_found)} canary values readable in clear" if rep.canaries_found else ""),
            "details": details, "excerpt": None})]
        if got.truncated and not rep.plaintext:
            # the first max_backup_mb bytes show no customer data; the rest was not read
            self._skip_integrity(f"backup larger than max_backup_mb ({self.opts.max_backup_mb:g} MB): only its start "
                                 "was read", NotAssessed.audit_limit, "raise plugins.backup.max_backup_mb",
                                 content=True, ev=evidence[0])
            return
        if rep.plaintext:
            self.add(Finding(id="backup.content.plaintext", title=f"Backup holds customer data in plain text ({rep.format})",
                             severity=Severity.high, status=Status.failed, indicator="bak.protection",
                             evidence=evidence, references=["CWE-311", "CWE-312"],
                             remediation="Encrypt backups at rest with a key kept apart from them "
                                         "(e.g. age/GPG/KMS envelope encryption)."))
        elif rep.encrypted:
            self.add(Finding(id="backup.content.plaintext", title="Backup is encrypted", severity=Severity.high,
                             status=Status.passed, indicator="bak.protection", evidence=evidence))
        else:  # an unknown binary without canaries found: neither shown readable nor shown encrypted
            self.add(Finding(id="backup.content.plaintext",
                             title=f"Backup not evidently encrypted ({rep.format}); no customer data found in clear",
                             severity=Severity.medium, status=Status.warn, indicator="bak.protection",
                             evidence=evidence, references=["CWE-311"],
                             remediation="Encrypt backups with a recognisable, documented scheme so encryption "
                                         "can be verified."))
        if got.truncated:  # plain text proven from the start of the file; its checksum needs all of it
            self._skip_integrity(f"backup larger than max_backup_mb ({self.opts.max_backup_mb:g} MB)",
                                 NotAssessed.audit_limit, "raise plugins.backup.max_backup_mb", content=False,
                                 ev=evidence[0])
            return
        self._integrity(data, offered, source, evidence[0])

    def _backup_bytes(self, backup: BackupRef) -> BackupBytes:
        """The backup's bytes (at most max_backup_mb, ``truncated`` when there was more), its offered
        checksum and where that came from, or why the bytes could not be had."""
        limit = int(self.opts.max_backup_mb * 1024 * 1024)
        got = BackupBytes()
        field_name = next((s.p_checksum_field for s in (self.ops.trigger_backup, self.ops.list_backups)
                           if s is not None and s.p_checksum_field), None)
        if field_name and backup.meta.get(field_name):
            got.offered, got.source = str(backup.meta[field_name]), f"field {field_name}"
        spec = self.ops.download_backup
        if spec is not None and spec.http is not None:
            res = run_http(self.ctx, "download_backup", spec.http, self.operator, backup_id=backup.id, max_bytes=limit)
            self.event("backup_downloaded", ok=res.ok, size=len(res.body), truncated=res.truncated)
            got.evidence = _ev(res)
            if not res.ok:
                got.why_not = f"download failed: {res.error}"
                got.not_assessed = res.not_assessed or NotAssessed.request_failed
                got.hint = ("raise target.max_response_bytes (the backup is larger)"
                            if got.not_assessed is NotAssessed.audit_limit
                            else "check download_backup (account, path) and re-run")
                return got
            header = spec.http.checksum_header
            low = {k.lower(): v for k, v in res.headers.items()}
            if header and header.lower() in low:
                got.offered, got.source = low[header.lower()], f"header {header}"
            got.data, got.truncated = res.body, res.truncated
            return got
        if spec is not None and spec.command is not None:
            res = self.call("download_backup", spec, backup)
            self.event("backup_downloaded", ok=res.ok)
            if not res.ok:
                got.evidence = _ev(res)
                got.why_not = f"download command failed: {res.error}"
                got.not_assessed = res.not_assessed or NotAssessed.request_failed
                got.hint = "check the download_backup command and re-run"
                return got
        if backup.path is not None and backup.path.exists():
            with open(backup.path, "rb") as fh:
                got.data = fh.read(limit + 1)
            got.data, got.truncated = got.data[:limit], len(got.data) > limit
            got.evidence = Evidence(request=f"read local backup file ({backup.path.name})")
            return got
        got.why_not = "no download_backup operation to fetch the backup"
        got.not_assessed, got.hint = NotAssessed.not_configured, "add plugins.backup.operations.download_backup"
        return got

    def _integrity(self, data: bytes, offered: str | None, source: str | None, ev: Evidence) -> None:
        if offered is None:
            self.add(Finding(id="backup.integrity.no_checksum", title="No checksum offered for the backup",
                             severity=Severity.low, status=Status.warn, indicator="bak.protection",
                             evidence=[ev.model_copy(update={"expected": "a checksum (header or list field)",
                                                             "observed": "none"})],
                             remediation="Publish a SHA-256 of every backup and verify it before restoring."))
            self.add(Finding(id="backup.integrity.checksum_mismatch", title="Backup checksum not verified: none offered",
                             severity=Severity.high, status=Status.skipped, indicator="bak.protection",
                             not_assessed=NotAssessed.not_applicable, evidence=[ev],
                             hint="publish a checksum (checksum_header or checksum_field) so it can be verified"))
            return
        match, algo = verify_checksum(data, offered)
        base = ev.model_copy(update={"expected": f"{algo} from {source}", "observed": "matches" if match else
                                     ("not a usable checksum" if match is None else "differs")})
        self.add(Finding(id="backup.integrity.no_checksum", title="Checksum offered for the backup",
                         severity=Severity.low, status=Status.passed, indicator="bak.protection"))
        if match:
            self.add(Finding(id="backup.integrity.checksum_mismatch", title=f"Backup {algo} checksum matches",
                             severity=Severity.high, status=Status.passed, indicator="bak.protection", evidence=[base]))
        else:
            self.add(Finding(id="backup.integrity.checksum_mismatch",
                             title="Backup checksum does not match its content" if match is False
                             else "Backup checksum is not usable",
                             severity=Severity.high, status=Status.failed if match is False else Status.warn,
                             indicator="bak.protection", evidence=[base],
                             remediation="Compute the checksum over the exact stored bytes and re-verify "
                                         "backups regularly; a mismatch means corruption or tampering."))

    def _skip_integrity(self, why: str, reason: NotAssessed, hint: str, content: bool,
                        ev: Evidence | None = None) -> None:
        """The content (when ``content``) and checksum checks, not assessed for one reason."""
        evidence = [ev.model_copy(update={"observed": why})] if ev else [Evidence(observed=why)]
        status = Status.skipped if reason in _SKIP_REASONS else Status.error
        checks = [("backup.content.plaintext", "Backup content not checked", Severity.high)] if content else []
        checks += [("backup.integrity.no_checksum", "Backup checksum offer not checked", Severity.low),
                   ("backup.integrity.checksum_mismatch", "Backup checksum not verified", Severity.high)]
        for fid, title, severity in checks:
            self.add(Finding(id=fid, title=f"{title}: {why}", severity=severity, status=status,
                             indicator="bak.protection", evidence=evidence, not_assessed=reason, hint=hint))

    # ------------------------------------------------------------ restore
    def step_change_canaries(self) -> None:
        cs = self.canaries
        assert cs is not None
        pre = [c for c in cs.items if c.phase == "before_backup"]
        k = max(1, len(pre) // 3)
        problems = [p for c in pre[:k] if (p := cs.modify(c))]
        problems += [p for c in pre[k:2 * k] if (p := cs.delete(c))]
        added = cs.create(k, "after_backup")
        self.event("canaries_changed", modified=sum(c.action == "modify" for c in pre),
                   deleted=sum(c.action == "delete" for c in pre), added=len(added))
        self.notes.extend(problems)

    def step_restore(self, backup: BackupRef) -> tuple[bool, OpResult, float]:
        """Call the restore operation; (succeeded, its result, perf_counter when it was requested)."""
        spec = self.ops.restore
        assert spec is not None
        self.ctx.check_cancelled()
        self.rpo_s = round(time.time() - backup.started_wall, 3)
        t_restore = time.perf_counter()
        self.event("restore_requested", backup_id=backup.id)
        res = self.call("restore", spec, backup)
        self.event("restore_returned", ok=res.ok, status=res.status, duration_s=round(res.elapsed_s, 3))
        return res.ok, res, t_restore

    def step_wait_health(self) -> bool:
        spec = self.ops.health or OperationSpec(http=HttpOp(path=self.ctx.profile.target.health_path, anonymous=True,
                                                             timeout_s=10))
        deadline = time.perf_counter() + self.opts.restore_timeout_s
        while True:
            self.ctx.check_cancelled()
            res = self.call("health", spec)
            if res.ok:
                self.event("health_ok")
                return True
            if time.perf_counter() > deadline:
                self.event("health_timeout", status=res.status)
                return False
            time.sleep(self.opts.health_interval_s)

    def judge(self, backup: BackupRef, restore_res: OpResult, health_ok: bool, result: dict[str, Any],
              before: dict[str, int | None], after: dict[str, int | None], t_restore: float, t_verified: float) -> None:
        """Restore verdict from what was observed after the restore.

        Failed: a real answer shows a problem (the restore refused or exited non-zero, health never
        came back, a canary is gone (404) or differs, a resource has fewer records). Not assessed
        (error): no such problem, but something the verdict rests on got no real answer (the
        restore call, a canary read, a record count). Passed: everything answered and matched.
        """
        opts = self.opts
        cs = self.canaries
        assert cs is not None
        restore_ok = restore_res.ok
        restore_unanswered = not restore_ok and restore_res.not_assessed is not None
        canaries_ok = not result["missing"] and not result["mismatched"] and not result["unreadable"]
        shortfall = {r: {"before": b, "after": a} for r, b in before.items()
                     if isinstance(b, int) and isinstance(a := after.get(r), int) and a < b}
        uncounted = sorted(r for r in before if not isinstance(before[r], int) or not isinstance(after.get(r), int))
        emptied = [r for r, v in shortfall.items() if v["before"] > 0 and v["after"] == 0]
        if restore_ok and health_ok and canaries_ok:
            self.rto_s = round(t_verified - t_restore, 3)
        pre = [c for c in cs.items if c.phase == "before_backup"]
        self.canary_summary = {
            "resource": cs.resource, "created_before_backup": len(pre),
            "modified": [c.id for c in pre if c.action == "modify"],
            "deleted": [c.id for c in pre if c.action == "delete"],
            "added_after_backup": [c.id for c in cs.items if c.phase == "after_backup"],
            "volatile_fields": opts.volatile_fields, **result,
        }
        problems = []
        if not restore_ok and not restore_unanswered:
            problems.append(f"restore operation failed: {restore_res.error}")
        if not health_ok:
            problems.append(f"service not healthy within {opts.restore_timeout_s:g} s after restore")
        if result["missing"]:
            problems.append(f"{len(result['missing'])} canaries missing after restore")
        if result["mismatched"]:
            problems.append(f"{len(result['mismatched'])} canaries differ from the backup")
        unknown = []
        if restore_unanswered:
            unknown.append(f"restore operation gave no usable answer: {restore_res.error}")
        if result["unreadable"]:
            unknown.append(f"{len(result['unreadable'])} canaries could not be read back")
        verdict = Status.failed if problems else Status.error if unknown else Status.passed
        lost = verdict is Status.failed or bool(shortfall)
        if lost or (verdict is Status.passed and not uncounted):
            self.measurements.append(Measurement(indicator="bak.restore_verified", value=0 if lost else 1,
                                                 unit="pass/fail", expected=1, better="higher",
                                                 label="restore verified with canaries",
                                                 details={"canaries": len(pre), "verified": len(result["verified"])}))
        self.measurements.append(Measurement(
            indicator="bak.rto", value=self.rto_s, unit="s", expected=opts.rto_target_s, better="lower",
            label="restore request → healthy with canaries verified",
            details={"restore_call_s": round(restore_res.elapsed_s, 3), "achieved": self.rto_s is not None}))
        self.measurements.append(Measurement(
            indicator="bak.rpo", value=self.rpo_s if verdict is Status.passed else None, unit="s",
            expected=opts.rpo_target_h * 3600, better="lower",
            label="backup start → restore request (data written in between is lost)",
            details={"lost_records": result["lost_after_backup"], "backup_to_restore_s": self.rpo_s,
                     "kept_records_written_after_backup": result["survived_after_backup"]}))
        if result["survived_after_backup"]:
            self.notes.append("records written after the backup survived the restore (merge-style restore?)")
        rev = _ev(restore_res).model_copy(update={
            "expected": "restore succeeds, service healthy, every canary as at backup time",
            "observed": "; ".join(problems + unknown) or f"{len(result['verified'])}/{len(pre)} canaries verified",
            "details": {"missing": result["missing"], "mismatched": result["mismatched"][:5],
                        "unreadable": result["unreadable"]}})
        if verdict is Status.failed:
            self.add(Finding(id="backup.restore.failed", title="Restore could not be verified: " + problems[0],
                             severity=Severity.critical, status=Status.failed, indicator="bak.restore_verified",
                             evidence=[rev], references=REF_DR,
                             remediation="Fix the restore procedure and rehearse it regularly; a restore is only "
                                         "done when the data is back and the service is healthy."))
        elif verdict is Status.error:
            self.add(Finding(id="backup.restore.failed", title="Restore not assessed: " + unknown[0],
                             severity=Severity.critical, status=Status.error, indicator="bak.restore_verified",
                             evidence=[rev], hint="re-run the drill when the CRM answers after a restore",
                             not_assessed=restore_res.not_assessed if restore_unanswered else NotAssessed.request_failed))
        else:
            self.add(Finding(id="backup.restore.failed", title="Restore verified field by field with canaries",
                             severity=Severity.critical, status=Status.passed, indicator="bak.restore_verified",
                             evidence=[rev]))
        lost_ev = Evidence(expected="record counts after restore ≥ counts at backup; canaries all back",
                           observed=(f"emptied: {', '.join(emptied)}; " if emptied else "")
                           + (f"fewer records: {shortfall}" if shortfall else "no records missing")
                           + (f"; {len(result['missing'])} canaries missing" if result["missing"] else "")
                           + (f"; not counted: {', '.join(uncounted)}" if uncounted else ""),
                           details={"counts_at_backup": before, "counts_after_restore": after})
        if shortfall or result["missing"]:
            title = (f"Restore left {', '.join(emptied)} empty" if emptied else "Records lost in the restore")
            self.add(Finding(id="backup.restore.data_lost", title=title, severity=Severity.critical,
                             status=Status.failed, indicator="bak.restore_verified", evidence=[lost_ev],
                             references=REF_DR,
                             remediation="Make the backup cover every table and check record counts after each restore."))
        elif uncounted or result["unreadable"]:
            self.add(Finding(id="backup.restore.data_lost", title="Restore data loss not assessed: records could not "
                             "be counted or read back", severity=Severity.critical, status=Status.error,
                             indicator="bak.restore_verified", evidence=[lost_ev], not_assessed=NotAssessed.request_failed,
                             hint="check that the operator account can list every resource in count_resources"))
        else:
            self.add(Finding(id="backup.restore.data_lost", title="No records lost in the restore",
                             severity=Severity.critical, status=Status.passed, indicator="bak.restore_verified",
                             evidence=[lost_ev]))
        if self.rto_s is None:
            self._not_measured(("bak.rto",), "the restore was not verified, so the time to a verified restore is unknown",
                               NotAssessed.not_applicable if verdict is Status.failed else NotAssessed.request_failed,
                               "fix the restore (see backup.restore.failed) and re-run the drill")
        if verdict is not Status.passed:
            self._not_measured(("bak.rpo",), "the restore was not verified, so the data lost is unknown",
                               NotAssessed.not_applicable if verdict is Status.failed else NotAssessed.request_failed,
                               "fix the restore (see backup.restore.failed) and re-run the drill")

    def _not_reached(self, why: NotAssessed, reason: str) -> None:
        """Every check the probe did not get to (it stopped early) appears as not assessed."""
        seen = {f.id for f in self.findings}
        measured = {m.indicator for m in self.measurements if m.value is not None}
        for fid, (indicator, severity, title) in CHECKS.items():
            if fid in seen or (fid in ("backup.rto", "backup.rpo") and indicator in measured):
                continue
            self.add(Finding(id=fid, title=f"{title}: not reached ({reason})", severity=severity,
                             status=Status.error, indicator=indicator, not_assessed=why,
                             hint="re-run the backup probe to completion"))

    def _not_measured(self, indicators: tuple[str, ...], why: str, reason: NotAssessed, hint: str) -> None:
        """A skipped/error finding per measured indicator (RTO, RPO) that got no value, saying why."""
        for indicator in indicators:
            self.add(Finding(id=f"backup.{indicator.split('.', 1)[1]}", title=f"{indicator} not measured: {why}",
                             severity=Severity.info, indicator=indicator, evidence=[Evidence(observed=why)],
                             status=Status.skipped if reason in _SKIP_REASONS else Status.error,
                             not_assessed=reason, hint=hint))

    def _skip_restore(self, why: str, reason: NotAssessed, hint: str) -> None:
        """Restore, RTO and RPO not assessed: the two restore checks say why and what would assess them."""
        for fid, title in (("backup.restore.failed", "Restore not verified"),
                           ("backup.restore.data_lost", "Restore data loss not checked")):
            self.add(Finding(id=fid, title=title, severity=Severity.critical, status=Status.skipped,
                             indicator="bak.restore_verified", evidence=[Evidence(observed=why)],
                             not_assessed=reason, hint=hint))
        self._not_measured(("bak.rto", "bak.rpo"), why, reason, hint)
        self.notes.append(why)


#: every check of the probe: id → (indicator, severity, title); each run reports each one
CHECKS: dict[str, tuple[str, Severity, str]] = {
    "backup.stale": ("bak.freshness", Severity.high, "Backup freshness"),
    "backup.exposure.anonymous": ("bak.protection", Severity.critical, "Backup endpoints without credentials"),
    "backup.exposure.low_privilege": ("bak.protection", Severity.critical, "Backup endpoints as a low-privilege account"),
    "backup.exposure.guessable_path": ("bak.protection", Severity.critical, "Backup files at guessable URLs"),
    "backup.content.plaintext": ("bak.protection", Severity.high, "Backup content protection"),
    "backup.integrity.no_checksum": ("bak.protection", Severity.low, "Backup checksum offered"),
    "backup.integrity.checksum_mismatch": ("bak.protection", Severity.high, "Backup checksum verified"),
    "backup.restore.failed": ("bak.restore_verified", Severity.critical, "Restore verified"),
    "backup.restore.data_lost": ("bak.restore_verified", Severity.critical, "Restore data loss"),
    "backup.rto": ("bak.rto", Severity.info, "bak.rto"),
    "backup.rpo": ("bak.rpo", Severity.info, "bak.rpo"),
}

#: reasons that make a check "skipped" (it was not run); the others make it "error" (it ran, no evidence)
_SKIP_REASONS = (NotAssessed.safety, NotAssessed.needs_account, NotAssessed.not_configured, NotAssessed.not_applicable)


@dataclass
class BackupBytes:
    """A backup's bytes for the content check, or why there are none."""

    data: bytes | None = None
    truncated: bool = False
    offered: str | None = None
    source: str | None = None
    evidence: Evidence | None = None
    why_not: str | None = None
    not_assessed: NotAssessed | None = None
    hint: str | None = None


def _discarding(fn: Callable[[], object]) -> Callable[[], None]:
    """``fn`` as a ``ctx.defer`` cleanup, which returns nothing (its report is read when the probe ends)."""
    def cleanup() -> None:
        fn()
    return cleanup


def _ev(res: OpResult) -> Evidence:
    """The operation's evidence (never None)."""
    return res.evidence or Evidence(request=res.name, observed=res.error)


def _count(adapter: Adapter | None, resource: str, account: str | None, cap: int) -> int | None:
    """Records of a resource visible to the account: the list's total, else counted up to ``cap``."""
    if adapter is None:
        return None
    try:
        items, ex = adapter.list(resource, account, limit=1)
    except KeyError:
        return None
    if not ex.ok:
        return None
    total = adapter.total(resource, ex)
    if total is not None:
        return total
    try:
        return sum(1 for _ in adapter.iterate(resource, account, max_records=cap, page_size=100))
    except IncompleteRead:
        return None  # a count of part of the table would look like lost rows
