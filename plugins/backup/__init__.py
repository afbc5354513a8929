"""Built-in ``backup`` probe: backup exposure, freshness, content protection, integrity, and a
canary-verified restore drill measuring RTO and RPO.

Registered through the ``crm_audit`` entry-point group exactly like a third-party plugin.
The restore drill is disruptive (it rolls the whole CRM back to the backup) and runs only
with ``allow_disruptive``; canaries need ``allow_writes``. See docs/backup.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.core.catalogue import CheckSpec, load_checks
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import ProbeResult
from crm_audit.core.options import AccountName
from crm_audit.core.probe import Probe, ProbeContext
from crm_audit.report.section import ReportSection

from .artifacts import BackupArtifacts
from .drill import BackupAudit
from .operations import Operations

__version__ = "0.1.0"

DEFAULT_GUESSABLE = [
    "/backup.sql", "/backup.sql.gz", "/backup.zip", "/backup.tar.gz", "/backup.db", "/dump.sql", "/db.sql",
    "/database.sql", "/db.sqlite3", "/db.sqlite", "/database.sqlite", "/crm.db", "/data.json", "/export.csv",
    "/backups/latest.db", "/backups/latest.sql", "/backups/backup.sql", "/backup/latest.db", "/backup/db.sql",
]


class BackupOptions(BaseModel):
    """Options under ``plugins.backup`` in the profile."""

    model_config = ConfigDict(extra="forbid")
    operations: Operations = Field(default_factory=Operations)
    account: AccountName | None = Field(None, description="operator account for backup operations and canaries "
                                                           "(default: the admin, accounts.admin)")
    low_privilege_account: AccountName | None = Field(
        None, description="account that must NOT reach backups (default: accounts.least_privileged of another role)")
    rpo_target_h: float = Field(24.0, gt=0)
    rto_target_s: float = Field(900.0, gt=0)
    expected_frequency: Literal["hourly", "daily", "weekly"] = "daily"
    canary_resource: str = "contacts"
    canaries: int = Field(5, ge=3, le=50, description="canaries written before the backup")
    canary_update: dict[str, Any] | None = Field(None, description="body that changes a canary after the backup; "
                                                       "{field.path} placeholders come from the record "
                                                       "(default: the adapter's update body)")
    volatile_fields: list[str] = Field(default_factory=lambda: ["updated_at"],
                                       description="fields a restore may legitimately change")
    count_resources: list[str] | None = Field(None, description="resources whose record count is compared "
                                                                "before backup and after restore (default: all)")
    count_cap: int = Field(1000, ge=1, le=100_000, description="count at most this many records per resource "
                                                             "when the CRM gives no total")
    guessable_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_GUESSABLE))
    restore_timeout_s: float = Field(900.0, gt=0, le=86_400, description="wait this long for health after restore")
    health_interval_s: float = Field(0.5, gt=0, le=60)
    max_backup_mb: float = Field(512.0, gt=0, description="largest backup file read for the content check")
    verify_restore: bool = Field(True, description="run the restore drill when disruptive checks are allowed")


class BackupProbe(Probe):
    id = "backup"
    title = "Backup and recovery"
    version = __version__
    category = "recoverability"
    indicators = ("bak.freshness", "bak.restore_verified", "bak.rto", "bak.rpo", "bak.protection")
    writes = True
    disruptive = True
    options_model = BackupOptions
    artifacts_model = BackupArtifacts
    timeout_s = 3600.0
    #: the class that carries out the steps; a subclass may replace it (tests inject faults so)
    audit_class: type[BackupAudit] = BackupAudit

    def run(self, ctx: ProbeContext) -> ProbeResult:
        return self.audit_class(ctx, ctx.options).run()


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [BackupProbe]


@hookimpl
def crm_audit_register_report_sections() -> list[ReportSection]:
    """The backup section of the HTML report (its view and template in ``report.py``, read when a report is drawn)."""
    from .report import SECTION

    return [SECTION]


@hookimpl
def crm_audit_register_checks() -> list[CheckSpec]:
    """This probe's check catalogue: every ``checks/*.yaml`` beside this module."""
    return load_checks(__file__)
