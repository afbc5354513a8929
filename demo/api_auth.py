"""Routes: health, login, logout, registration and the caller's own profile (/api/me)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from crm_audit_demo.auth import TOKEN_TTL_S, Principal, verify_password
from crm_audit_demo.config import OPERATOR_TENANT, ROLES, TENANTS
from crm_audit_demo.deps import authenticate, client_ip, get_state
from crm_audit_demo.state import DemoState
from crm_audit_demo.users import public_user

router = APIRouter(prefix="/api")

INVALID_LOGIN = {"detail": "invalid username or password"}


class LoginIn(BaseModel):
    """Credentials; the username is the e-mail address."""

    username: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class TokenOut(BaseModel):
    """A bearer access token."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = TOKEN_TTL_S


class MeUpdate(BaseModel):
    """Profile fields a user may change on itself; anything else is ignored."""

    model_config = ConfigDict(extra="allow")
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)


@router.get("/health", tags=["meta"])
async def health() -> dict[str, str]:
    """Liveness: answers without authentication and outside the capacity limit."""
    return {"status": "ok"}


@router.post("/auth/login", response_model=TokenOut, tags=["auth"],
             responses={401: {}, 429: {}})
def login(body: LoginIn, request: Request) -> Any:
    """Exchange username + password for a 15-minute bearer token (lockout after 5 failures)."""
    state = get_state(request)
    username = body.username.strip().lower()
    ip = client_ip(request)
    retry = state.guard.retry_after(username)
    if retry is not None:
        state.audit.add(username, "login_locked", f"user/{username}", ip, _tenant_of(state, username))
        return JSONResponse({"detail": "too many failed attempts"}, status_code=429,
                            headers={"Retry-After": str(retry)})
    user = state.users.by_username(username)
    enumerable = state.config.has("user-enum")
    if user is None and enumerable:
        state.guard.failed(username)
        state.audit.add(username, "login_failed", f"user/{username}", ip, None)
        return JSONResponse({"detail": "unknown user"}, status_code=404)
    if not verify_password(body.password, user["password_hash"] if user else None):
        state.guard.failed(username)
        state.audit.add(username, "login_failed", f"user/{username}", ip, user["tenant_id"] if user else None)
        detail = {"detail": "wrong password"} if enumerable else INVALID_LOGIN
        return JSONResponse(detail, status_code=401)
    assert user is not None
    state.guard.succeeded(username)
    token = state.tokens.issue(user["id"], user["tenant_id"], user["role"])
    state.audit.add(username, "login", f"user/{user['id']}", ip, user["tenant_id"])
    answer = JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": TOKEN_TTL_S})
    session_cookie(answer, state, request.url.scheme == "https")
    return answer


def session_cookie(answer: Response, state: DemoState, https: bool) -> None:
    """A browser session id on login (the API itself authenticates by token); flagged unless insecure-cookies."""
    if state.config.has("insecure-cookies"):
        answer.set_cookie("sessionid", secrets.token_urlsafe(24), path="/", samesite=None)  # type: ignore[arg-type]
    else:
        answer.set_cookie("sessionid", secrets.token_urlsafe(24), path="/", secure=https, httponly=True,
                          samesite="lax")


def _tenant_of(state: DemoState, username: str) -> str | None:
    user = state.users.by_username(username)
    return user["tenant_id"] if user else None


@router.post("/auth/logout", status_code=204, tags=["auth"])
def logout(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    """Revoke the presented token (its jti) for the rest of its lifetime."""
    state = get_state(request)
    if principal.jti and not state.config.has("token-after-logout"):
        state.tokens.revoke(principal.jti, principal.exp)
    state.audit.add(principal.username, "logout", f"user/{principal.user_id}", client_ip(request),
                    principal.tenant)
    return Response(status_code=204)


@router.post("/auth/register", status_code=201, tags=["auth"], responses={403: {}, 409: {}})
async def register(request: Request) -> Any:
    """Self-service sign-up: disabled (403) on a properly configured instance."""
    state = get_state(request)
    if not state.config.has("open-registration"):
        return JSONResponse({"detail": "registration disabled"}, status_code=403)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    username = body.get("username") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(username, str) or "@" not in username or not isinstance(password, str) \
            or len(password) < 8:
        return JSONResponse({"detail": "username (an e-mail) and password (8+ characters) required"},
                            status_code=422)
    return await run_in_threadpool(register_user, request, username, password)


def register_user(request: Request, username: str, password: str) -> dict[str, Any]:
    """Create the self-registered (operator admin) user; 409 when the username is taken."""
    state = get_state(request)
    username = username.strip().lower()
    try:
        user = state.users.create(username, password, "admin", OPERATOR_TENANT)
    except ValueError:
        raise HTTPException(status_code=409, detail="username already exists") from None
    state.audit.add(username, "register", f"user/{user['id']}", client_ip(request), OPERATOR_TENANT)
    return public_user(user, include_hash=state.config.has("leak-hashes"))


@router.get("/me", tags=["me"])
def get_me(request: Request, principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """The caller's user record (never its password hash; under hidden-privilege without its role)."""
    state = get_state(request)
    user = state.users.by_id(principal.user_id)
    if user is None:
        raise HTTPException(status_code=404, detail="not found")
    answer = public_user(user, include_hash=state.config.has("leak-hashes"))
    if state.config.has("hidden-privilege"):
        answer.pop("role", None)
    return answer


@router.patch("/me", tags=["me"])
def patch_me(body: MeUpdate, request: Request, principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """Change first_name / last_name; role and tenant_id are ignored (not under mass-assignment)."""
    state = get_state(request)
    values: dict[str, Any] = {k: getattr(body, k) for k in ("first_name", "last_name") if k in body.model_fields_set}
    if state.config.has("mass-assignment"):
        extra = body.model_extra or {}
        if extra.get("role") in ROLES:
            values["role"] = extra["role"]
        if extra.get("tenant_id") in TENANTS:
            values["tenant_id"] = extra["tenant_id"]
    user = state.users.update(principal.user_id, values)
    if user is None:
        raise HTTPException(status_code=404, detail="not found")
    state.audit.add(principal.username, "update", f"user/{principal.user_id}", client_ip(request),
                    principal.tenant)
    return public_user(user, include_hash=state.config.has("leak-hashes"))
