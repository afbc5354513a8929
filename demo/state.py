"""The live state of one demo CRM instance, shared by all routes via ``app.state.demo``."""

from __future__ import annotations

from dataclasses import dataclass

from crm_audit_demo.audit_log import AuditLog
from crm_audit_demo.auth import LoginGuard, TokenService
from crm_audit_demo.backup import BackupStore
from crm_audit_demo.config import DemoConfig
from crm_audit_demo.db import Database
from crm_audit_demo.records import RecordStore
from crm_audit_demo.users import UserStore


@dataclass
class DemoState:
    """Configuration plus every store and service the routes use."""

    config: DemoConfig
    db: Database
    records: RecordStore
    users: UserStore
    tokens: TokenService
    guard: LoginGuard
    audit: AuditLog
    backups: BackupStore
