"""Routes for a user's credentials and an admin's user management: password change, create, delete,
deactivate/activate — over REST and, through ``RPC_METHODS``, the JSON-RPC face.

Clean behaviour: a password change ends every earlier session of the user; a deactivated user's
tokens are refused (deps.authenticate) and it cannot log in; created users get a hashed password
and the answer never carries it. The flaw switches ``token-after-password-change``,
``token-after-deactivation`` and ``plaintext-password`` bend exactly one rule each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from crm_audit_demo.auth import Principal, verify_password
from crm_audit_demo.config import ROLES
from crm_audit_demo.deps import (
    authenticate,
    client_ip,
    forbidden,
    get_state,
    not_found,
    parse_id,
    require_admin,
)
from crm_audit_demo.users import public_user

router = APIRouter(prefix="/api")

MIN_PASSWORD = 8


def _text(body: Any, name: str, required: bool = True, most: int = 1024) -> str | None:
    value = body.get(name) if isinstance(body, dict) else None
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > most:
        raise HTTPException(status_code=422, detail=f"{name} (text, at most {most} characters) is required")
    return value


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise HTTPException(status_code=422, detail="the body must be a JSON object") from None


def change_password(request: Request, body: Any, principal: Principal) -> dict[str, Any]:
    """The caller's own password: the old one must match; earlier sessions end (unless the flaw)."""
    state = get_state(request)
    old, new = _text(body, "old_password"), _text(body, "new_password")
    assert old is not None and new is not None
    if len(new) < MIN_PASSWORD:
        raise HTTPException(status_code=422, detail=f"new_password needs {MIN_PASSWORD}+ characters")
    user = state.users.by_id(principal.user_id)
    if user is None or user["kind"] != "person":
        raise forbidden("this user has no password")
    if not verify_password(old, user["password_hash"]):
        raise HTTPException(status_code=400, detail="old_password is wrong")
    state.users.set_password(principal.user_id, new)
    if not state.config.has("token-after-password-change"):
        state.tokens.end_sessions(principal.user_id)
    state.audit.add(principal.username, "password_change", f"user/{principal.user_id}", client_ip(request),
                    principal.tenant)
    return {"detail": "password changed"}


def create_user(request: Request, body: Any, principal: Principal) -> dict[str, Any]:
    """A new active person user of the admin's tenant (409 when the username is taken)."""
    state = get_state(request)
    require_admin(principal)
    username = (_text(body, "username", most=254) or "").strip().lower()
    password = _text(body, "password") or ""
    if "@" not in username or len(password) < MIN_PASSWORD:
        raise HTTPException(status_code=422, detail=f"username (an e-mail) and password ({MIN_PASSWORD}+ "
                                                    "characters) required")
    role = body.get("role", "sales")
    if role not in ROLES:
        raise HTTPException(status_code=422, detail=f"role must be one of {', '.join(ROLES)}")
    plain = state.config.has("plaintext-password")
    try:
        user = state.users.create(username, password, role, principal.tenant, plain=plain,
                                  first_name=_text(body, "first_name", False, 200),
                                  last_name=_text(body, "last_name", False, 200))
    except ValueError:
        raise HTTPException(status_code=409, detail="username already exists") from None
    state.audit.add(principal.username, "user_create", f"user/{user['id']}", client_ip(request), principal.tenant)
    answer = public_user(user, include_hash=state.config.has("leak-hashes"))
    if plain:
        answer["password"] = password  # the flaw: the stored value comes back as it was sent
    return answer


def _other_user(request: Request, raw_id: Any, principal: Principal) -> dict[str, Any]:
    """A person user of the admin's tenant other than the admin itself (403 / 404 otherwise)."""
    state = get_state(request)
    require_admin(principal)
    user = state.users.by_id(parse_id(str(raw_id), state), principal.tenant)
    if user is None or user["kind"] != "person":
        raise not_found()
    if user["id"] == principal.user_id:
        raise forbidden("admins cannot do this to themselves")
    return user


def set_active(request: Request, raw_id: Any, principal: Principal, active: bool) -> dict[str, Any]:
    """Deactivate or activate another user of the tenant."""
    state = get_state(request)
    user = _other_user(request, raw_id, principal)
    row = state.users.set_active(user["id"], active)
    assert row is not None
    state.audit.add(principal.username, "user_activate" if active else "user_deactivate", f"user/{user['id']}",
                    client_ip(request), principal.tenant)
    return public_user(row, include_hash=state.config.has("leak-hashes"))


def delete_user(request: Request, raw_id: Any, principal: Principal) -> None:
    """Remove another user of the tenant."""
    state = get_state(request)
    user = _other_user(request, raw_id, principal)
    state.users.delete(user["id"])
    state.audit.add(principal.username, "user_delete", f"user/{user['id']}", client_ip(request), principal.tenant)


@router.post("/me/password", tags=["me"], responses={400: {}, 422: {}})
async def post_password(request: Request, principal: Principal = Depends(authenticate)) -> Any:
    """Change the caller's password ``{old_password, new_password}``; earlier tokens stop working."""
    body = await _json(request)
    return await run_in_threadpool(change_password, request, body, principal)


@router.post("/users", status_code=201, tags=["users"], responses={403: {}, 409: {}, 422: {}})
async def post_user(request: Request, principal: Principal = Depends(authenticate)) -> Any:
    """Create a user ``{username, password, role?, first_name?, last_name?}`` (admin only)."""
    body = await _json(request)
    return await run_in_threadpool(create_user, request, body, principal)


@router.delete("/users/{user_id}", status_code=204, tags=["users"], response_class=Response)
def remove_user(user_id: str, request: Request, principal: Principal = Depends(authenticate)) -> Response:
    """Delete a user of the tenant (admin only; not oneself)."""
    delete_user(request, user_id, principal)
    return Response(status_code=204)


@router.post("/users/{user_id}/deactivate", tags=["users"])
def deactivate(user_id: str, request: Request, principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """Deactivate a user of the tenant: it can no longer log in, its tokens are refused (admin only)."""
    return set_active(request, user_id, principal, False)


@router.post("/users/{user_id}/activate", tags=["users"])
def activate(user_id: str, request: Request, principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """Activate a deactivated user of the tenant again (admin only)."""
    return set_active(request, user_id, principal, True)


def _rpc_id(params: dict[str, Any]) -> Any:
    value = params.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise HTTPException(status_code=422, detail="params.id must be a user id")
    return value


def _rpc_delete(request: Request, params: dict[str, Any], principal: Principal) -> bool:
    delete_user(request, _rpc_id(params), principal)
    return True


#: JSON-RPC methods (request, params, caller) -> result; errors are HTTPExceptions the face translates
RPC_METHODS: dict[str, Callable[[Request, dict[str, Any], Principal], Any]] = {
    "users.change_password": change_password,
    "users.create": create_user,
    "users.unlink": lambda request, params, principal: _rpc_delete(request, params, principal),
    "users.deactivate": lambda request, params, principal: set_active(request, _rpc_id(params), principal, False),
    "users.activate": lambda request, params, principal: set_active(request, _rpc_id(params), principal, True),
}
