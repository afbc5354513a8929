"""Routes for administrators: users, the audit log, and backups/restore."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response

from crm_audit_demo.auth import Principal
from crm_audit_demo.config import ROLES, TENANTS
from crm_audit_demo.deps import (
    authenticate,
    client_ip,
    get_state,
    not_found,
    parse_id,
    require_admin,
    require_operator_admin,
)
from crm_audit_demo.users import public_user

router = APIRouter()

#: what PUT/PATCH /api/users/{id} describe as their body (the body itself stays a free-form object)
_USER_BODY = {"requestBody": {"content": {"application/json": {"schema": {"properties": {
    "first_name": {"type": "string", "nullable": True}, "last_name": {"type": "string", "nullable": True},
    "role": {"type": "string", "enum": list(ROLES), "description": "an admin of the user's tenant only"}}}}}}}


@router.get("/api/users", tags=["users"])
def list_users(request: Request, limit: int = Query(50, ge=1), offset: int = Query(0, ge=0),
               principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """The users of the caller's tenant (admin only)."""
    state = get_state(request)
    require_admin(principal)
    limit = min(limit, 200)
    tenant = None if state.config.has("tenant-leak") else principal.tenant
    rows, total = state.users.list(tenant, limit, offset)
    leak = state.config.has("leak-hashes")
    return {"items": [public_user(r, leak) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/api/users/{user_id}", tags=["users"])
def get_user(user_id: str, request: Request, principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """One user of the caller's tenant (admin only); other tenants' users are 404."""
    state = get_state(request)
    require_admin(principal)
    user = state.users.by_id(parse_id(user_id, state), principal.tenant)
    if user is None:
        raise not_found()
    return public_user(user, state.config.has("leak-hashes"))


def write_user(user_id: str, values: dict[str, Any], request: Request, principal: Principal) -> dict[str, Any]:
    """Change a user: its own names for anyone; role too for an admin of its tenant.

    A non-admin may change only itself, and never its role or tenant — unless the
    self-escalation flaw honours them (hidden-privilege: the role) on the caller's own record.
    """
    state = get_state(request)
    uid = parse_id(user_id, state)
    own = uid == principal.user_id
    if not own:
        require_admin(principal)
    user = state.users.by_id(uid, None if own else principal.tenant)  # one's own user, whatever its tenant
    if user is None:
        raise not_found()
    changes: dict[str, Any] = {k: v for k, v in values.items()
                               if k in ("first_name", "last_name") and (v is None or isinstance(v, str))}
    if (principal.role == "admin" and not own) or (own and (state.config.has("self-escalation")
                                                            or state.config.has("hidden-privilege"))):
        if values.get("role") in ROLES:
            changes["role"] = values["role"]
    if own and state.config.has("self-escalation") and values.get("tenant_id") in TENANTS:
        changes["tenant_id"] = values["tenant_id"]
    updated = state.users.update(uid, changes)
    if updated is None:
        raise not_found()
    _audit(request, principal, "update", f"user/{uid}")
    return public_user(updated, state.config.has("leak-hashes"))


@router.put("/api/users/{user_id}", tags=["users"], openapi_extra=_USER_BODY)
def replace_user(user_id: str, request: Request, values: dict[str, Any] = Body(...),
                 principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """Replace a user's editable fields (names; role for an admin of the tenant)."""
    return write_user(user_id, values, request, principal)


@router.patch("/api/users/{user_id}", tags=["users"], openapi_extra=_USER_BODY)
def update_user(user_id: str, request: Request, values: dict[str, Any] = Body(...),
                principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """Change some of a user's editable fields (names; role for an admin of the tenant)."""
    return write_user(user_id, values, request, principal)


@router.get("/api/admin/audit-log", tags=["admin"])
def audit_log(request: Request, limit: int = Query(100, ge=1),
              principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """Newest-first security events of the caller's tenant (admin only)."""
    state = get_state(request)
    require_admin(principal)
    return {"items": state.audit.recent(principal.tenant, min(limit, 1000))}


def backup_caller(request: Request) -> Principal | None:
    """Operator admin for backup endpoints; nobody at all needs to log in under backup-public."""
    if get_state(request).config.has("backup-public"):
        return None
    principal = authenticate(request)
    require_operator_admin(principal)
    return principal


def _audit(request: Request, principal: Principal | None, action: str, target: str) -> None:
    get_state(request).audit.add(principal.username if principal else "anonymous", action, target,
                                 client_ip(request), principal.tenant if principal else None)


@router.post("/api/admin/backups", status_code=201, tags=["backups"])
def create_backup(request: Request, principal: Principal | None = Depends(backup_caller)) -> dict[str, Any]:
    """Take a backup of the whole instance now (SQLite online backup, encrypted)."""
    meta = get_state(request).backups.create()
    _audit(request, principal, "backup", f"backup/{meta['id']}")
    return meta


@router.get("/api/admin/backups", tags=["backups"])
def list_backups(request: Request, principal: Principal | None = Depends(backup_caller)) -> dict[str, Any]:
    """All backups, newest first."""
    return {"items": get_state(request).backups.list()}


def _download(request: Request, meta: dict[str, Any], principal: Principal | None) -> Response:
    data = get_state(request).backups.read(meta["id"])
    if data is None:
        raise not_found()
    _audit(request, principal, "backup_download", f"backup/{meta['id']}")
    name = f"crm-backup-{meta['id']:04d}.db{'.enc' if meta['encrypted'] else ''}"
    return Response(content=data, media_type="application/octet-stream",
                    headers={"X-Checksum-SHA256": meta["sha256"],
                             "Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/api/admin/backups/{backup_id}/download", tags=["backups"], response_class=Response)
def download_backup(backup_id: str, request: Request,
                    principal: Principal | None = Depends(backup_caller)) -> Response:
    """The backup file's bytes, with its SHA-256 in ``X-Checksum-SHA256``."""
    state = get_state(request)
    meta = state.backups.get(parse_id(backup_id, state))
    if meta is None:
        raise not_found()
    return _download(request, meta, principal)


@router.delete("/api/admin/backups/{backup_id}", status_code=204, tags=["backups"], response_class=Response)
def delete_backup(backup_id: str, request: Request,
                  principal: Principal | None = Depends(backup_caller)) -> Response:
    """Delete one backup (file and catalogue entry)."""
    state = get_state(request)
    deleted_id = parse_id(backup_id, state)
    if not state.backups.delete(deleted_id):
        raise not_found()
    _audit(request, principal, "backup_delete", f"backup/{deleted_id}")
    return Response(status_code=204)


@router.post("/api/admin/backups/{backup_id}/restore", tags=["backups"])
def restore_backup(backup_id: str, request: Request, principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """Replace the live data with a backup, synchronously (operator admin only, always)."""
    state = get_state(request)
    require_operator_admin(principal)
    restore_id = parse_id(backup_id, state)
    try:
        duration = state.backups.restore(restore_id, drop_cases=state.config.has("restore-loses-table"))
    except KeyError as exc:
        raise not_found() from exc
    except ValueError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    _audit(request, principal, "restore", f"backup/{restore_id}")
    return {"restored": restore_id, "duration_s": round(duration, 4)}


@router.get("/backups/latest.db", include_in_schema=False, response_class=Response)
def latest_backup(request: Request) -> Response:
    """Exists only under backup-public: the newest backup file, anonymously."""
    state = get_state(request)
    meta = state.backups.latest() if state.config.has("backup-public") else None
    if meta is None:
        raise not_found("Not Found")
    return _download(request, meta, None)
