"""``create_app(config)``: seed a fresh database and wire routes, middlewares and state."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError

from crm_audit_demo import api_admin, api_auth, api_jsonrpc, api_records, api_surface, api_users
from crm_audit_demo.audit_log import AuditLog
from crm_audit_demo.auth import HARD_LOCKOUT_S, LOCKOUT_DURATION_S, LoginGuard, TokenService
from crm_audit_demo.backup import BackupStore
from crm_audit_demo.config import BACKUP_KEY_ENV, DemoConfig
from crm_audit_demo.data import generate
from crm_audit_demo.db import Database
from crm_audit_demo.middleware import Capacity, Cors, Errors, SecurityHeaders
from crm_audit_demo.records import RecordStore
from crm_audit_demo.state import DemoState
from crm_audit_demo.timefmt import utc_now
from crm_audit_demo.users import UserStore, seed_identities

NIGHTLY_AGE = timedelta(hours=2)
STALE_NIGHTLY_AGE = timedelta(days=10)
SEED_TABLES = ("accounts", "contacts", "leads", "opportunities", "cases")


def build_state(config: DemoConfig) -> DemoState:
    """Create the data dir, seed a fresh database, and take the pre-existing nightly backup."""
    data_dir = Path(config.data_dir or tempfile.mkdtemp(prefix="crm-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    now = utc_now()
    db = Database.fresh(data_dir)
    seed_identities(db, config.secrets)
    tables = generate(config.seed, now)
    for table in SEED_TABLES:
        db.insert_rows(table, tables[table])
    backups = BackupStore(db, data_dir / "backups", bytes.fromhex(config.secrets[BACKUP_KEY_ENV]),
                          encrypted=not config.has("plain-backup"))
    age = STALE_NIGHTLY_AGE if config.has("stale-backups") else NIGHTLY_AGE
    backups.create(kind="nightly", created_at=now - age)
    return DemoState(
        config=config, db=db, records=RecordStore(db), users=UserStore(db),
        tokens=TokenService(config),
        guard=LoginGuard(enabled=not config.has("no-lockout"),
                         duration_s=HARD_LOCKOUT_S if config.has("hard-lockout") else LOCKOUT_DURATION_S),
        audit=AuditLog(data_dir / "audit.log.jsonl"), backups=backups,
    )


async def _crash_on_bad_body(request: Request, exc: Exception) -> Response:
    """The body-shape-500 flaw: a request body that fails validation escapes as an unhandled error (a 500)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    if any(e.get("loc", ("",))[0] == "body" for e in errors):
        raise TypeError("unhandled: the request body has the wrong shape")
    return await request_validation_exception_handler(request, exc)  # type: ignore[arg-type]


def create_app(config: DemoConfig) -> FastAPI:
    """The demo CRM as an ASGI app, its database freshly seeded in ``config.data_dir``."""
    state = build_state(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(40, config.capacity + 8)  # sync handlers never starve below capacity
        yield
        state.db.close()

    app = FastAPI(title="crm-audit demo CRM", version="1.0.0", docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json", lifespan=lifespan,
                  description="Embedded demo CRM used by `crm-audit demo` and the test-suite.")
    app.state.demo = state
    app.include_router(api_auth.router)
    app.include_router(api_records.build_router())
    app.include_router(api_admin.router)
    app.include_router(api_users.router)
    app.include_router(api_surface.router)
    if config.protocol == "jsonrpc":
        app.include_router(api_jsonrpc.router)
    # add_middleware prepends: the last added runs outermost.
    if config.has("body-shape-500"):
        app.add_exception_handler(RequestValidationError, _crash_on_bad_body)
    app.add_middleware(Capacity, capacity=config.capacity, delay_s=config.delay_ms / 1000)
    app.add_middleware(Errors, traces=config.has("stack-traces"))
    app.add_middleware(Cors, reflect=config.has("cors"), any_origin=config.has("cors-any-origin"))
    app.add_middleware(SecurityHeaders, enabled=not config.has("no-security-headers"),
                       hsts=not config.has("no-hsts"), banner=config.has("verbose-banner"))
    return app
