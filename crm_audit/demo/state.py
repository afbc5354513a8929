"""The live state of one demo CRM instance, shared by all routes via ``app.state.demo``."""

from __future__ import annotations

from dataclasses import dataclass

from .audit_log import AuditLog
from .auth import LoginGuard, TokenService
from .backup import BackupStore
from .config import DemoConfig
from .db import Database
from .records import RecordStore
from .users import UserStore


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
