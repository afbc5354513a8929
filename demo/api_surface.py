"""Endpoints beyond the five record resources, found only by discovering the API's surface.

``GET /api/status`` (anonymous liveness; under ``public-metadata`` also the version, the
database and the tenant list), ``GET /api/settings/integrations[/{id}]`` (integration keys:
admin-only and masked; under ``settings-leak`` any user reads the full keys and every user's
e-mail) and ``GET /api/dashboard`` (the tenant's recent contacts, paged by ``limit``/``offset``;
under ``no-pagination`` the page size is ignored). The JSON-RPC face serves the same as
``system.status``, ``settings.search_read``/``settings.read`` and ``dashboard.search_read``, and
lists its methods with ``system.listMethods`` (to a session; anonymously under ``public-metadata``).
"""

from __future__ import annotations

import hashlib
import platform
import sqlite3
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from crm_audit_demo.auth import Principal
from crm_audit_demo.config import TENANTS
from crm_audit_demo.deps import authenticate, get_state, not_found, parse_id, require_admin

router = APIRouter()
VERSION = "1.0.0"
#: the demo's integrations (id, name); their keys are derived from the tenant and the seed
INTEGRATIONS: tuple[tuple[int, str], ...] = ((1, "mail gateway"), (2, "telephony"), (3, "web forms"))


def status(request: Request) -> dict[str, Any]:
    """Liveness; the public-metadata flaw adds what an anonymous caller should never learn."""
    state = get_state(request)
    out: dict[str, Any] = {"status": "ok"}
    if state.config.has("public-metadata"):
        out.update({"version": f"crm-audit-demo {VERSION}", "python": platform.python_version(),
                    "database": f"sqlite {sqlite3.sqlite_version}", "tenants": list(TENANTS)})
    return out


def _key(tenant: str, iid: int, seed: int) -> str:
    return "ck_live_" + hashlib.sha256(f"{tenant}:{iid}:{seed}".encode()).hexdigest()[:40]


def _integration(request: Request, principal: Principal, iid: int, name: str) -> dict[str, Any]:
    state = get_state(request)
    key = _key(principal.tenant, iid, state.config.seed)
    leak = state.config.has("settings-leak")
    return {"id": iid, "name": name, "tenant_id": principal.tenant, "enabled": True,
            **({"api_key": key} if leak else {"api_key_hint": "…" + key[-4:]})}


def integrations(request: Request, principal: Principal, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """The tenant's integrations: admin-only, keys masked; the settings-leak flaw opens both, and adds the users."""
    state = get_state(request)
    leak = state.config.has("settings-leak")
    if not leak:
        require_admin(principal)
    items = [_integration(request, principal, iid, name) for iid, name in INTEGRATIONS][offset:offset + limit]
    out: dict[str, Any] = {"items": items, "total": len(INTEGRATIONS), "limit": limit, "offset": offset}
    if leak:
        users, _ = state.users.list(principal.tenant, 500, 0)
        out["users"] = [{"id": u["id"], "email": u["email"], "role": u["role"]} for u in users]
    return out


def integration(request: Request, principal: Principal, raw_id: str) -> dict[str, Any]:
    """One integration, under the same rules as the list."""
    state = get_state(request)
    if not state.config.has("settings-leak"):
        require_admin(principal)
    iid = parse_id(raw_id, state)
    for known, name in INTEGRATIONS:
        if known == iid:
            return _integration(request, principal, iid, name)
    raise not_found()


def dashboard(request: Request, principal: Principal, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """The tenant's contacts as a recent-activity feed; the no-pagination flaw returns all of them."""
    state = get_state(request)
    if state.config.has("no-pagination"):
        limit, offset = 1_000_000, 0
    rows, total = state.records.list("contacts", principal.tenant, min(limit, 1_000_000), offset)
    items = [{"id": r["id"], "type": "contact", "title": f"{r.get('first_name') or ''} {r.get('last_name') or ''}"
              .strip(), "updated_at": r.get("updated_at")} for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/api/status", tags=["meta"])
def get_status(request: Request) -> dict[str, Any]:
    """Liveness without authentication."""
    return status(request)


@router.get("/api/settings/integrations", tags=["settings"])
def list_integrations(request: Request, limit: int = Query(50, ge=1), offset: int = Query(0, ge=0),
                      principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """The tenant's integrations (admin only)."""
    return integrations(request, principal, limit, offset)


@router.get("/api/settings/integrations/{integration_id}", tags=["settings"])
def get_integration(integration_id: str, request: Request,
                    principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """One integration (admin only)."""
    return integration(request, principal, integration_id)


@router.get("/api/dashboard", tags=["dashboard"])
def get_dashboard(request: Request, limit: int = Query(50, ge=1), offset: int = Query(0, ge=0),
                  principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """Recent activity of the caller's tenant, paged."""
    return dashboard(request, principal, limit, offset)


# ---------------------------------------------------------------- the JSON-RPC face

def _int(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def rpc_methods() -> dict[str, Any]:
    """The JSON-RPC methods of this module: name → (request, params, principal) → result."""
    return {
        "settings.search_read": lambda rq, p, who: _records(integrations(rq, who, max(1, _int(p, "limit", 50)),
                                                                         _int(p, "offset", 0))),
        "settings.read": lambda rq, p, who: integration(rq, who, str(p.get("id"))),
        "dashboard.search_read": lambda rq, p, who: _records(dashboard(rq, who, max(1, _int(p, "limit", 50)),
                                                                       _int(p, "offset", 0))),
        "system.status": lambda rq, p, who: status(rq),
    }


def _records(page: dict[str, Any]) -> dict[str, Any]:
    """A REST page in the JSON-RPC shape (``records`` instead of ``items``)."""
    out = {("records" if k == "items" else k): v for k, v in page.items()}
    return out


def public_rpc(request: Request, method: str, methods: list[str]) -> tuple[bool, Any]:
    """Calls answered without a session: ``system.status`` always, ``system.listMethods`` under public-metadata.

    Returns (handled, result).
    """
    if method == "system.status":
        return True, status(request)
    if method == "system.listMethods" and get_state(request).config.has("public-metadata"):
        return True, methods
    return False, None
