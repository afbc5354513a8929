"""FastAPI dependencies: the instance state, the authenticated caller, role gates, id parsing."""

from __future__ import annotations

from dataclasses import replace

from fastapi import HTTPException, Request

from crm_audit_demo.auth import AuthError, Principal
from crm_audit_demo.config import OPERATOR_TENANT, TENANTS
from crm_audit_demo.state import DemoState

BEARER = {"WWW-Authenticate": "Bearer"}


def get_state(request: Request) -> DemoState:
    """The DemoState of the app serving ``request``."""
    return request.app.state.demo


def client_ip(request: Request) -> str | None:
    """The peer address of the request (no proxy headers are trusted)."""
    return request.client.host if request.client else None


def unauthorized(detail: str, error: str | None = None) -> HTTPException:
    """401 with a ``WWW-Authenticate: Bearer`` challenge."""
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": challenge})


def forbidden(detail: str = "forbidden") -> HTTPException:
    """403 with a JSON detail."""
    return HTTPException(status_code=403, detail=detail)


def not_found(detail: str = "not found") -> HTTPException:
    """404 with a JSON detail."""
    return HTTPException(status_code=404, detail=detail)


def authenticate(request: Request) -> Principal:
    """The caller from ``Authorization: Bearer`` (preferred) or ``X-API-Key``; else 401.

    Under the tenant-header flaw an ``X-Tenant-ID`` header or ``?tenant_id=`` switches its tenant.
    """
    return switched_tenant(request, _authenticate(request))


def switched_tenant(request: Request, principal: Principal) -> Principal:
    """The caller as the tenant-header flaw sees it: the tenant a header or query parameter names."""
    if not get_state(request).config.has("tenant-header"):
        return principal
    asked = request.headers.get("x-tenant-id") or request.query_params.get("tenant_id")
    return replace(principal, tenant=asked) if asked in TENANTS else principal


def _authenticate(request: Request) -> Principal:
    state = get_state(request)
    header = request.headers.get("authorization", "")
    api_key = request.headers.get("x-api-key")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("invalid authorization header", "invalid_request")
        try:
            claims = state.tokens.decode(token.strip())
        except AuthError as exc:
            raise unauthorized(exc.detail, "invalid_token") from exc
        try:
            user_id = int(claims["sub"])
        except ValueError as exc:
            raise unauthorized("invalid token", "invalid_token") from exc
        user = state.users.by_id(user_id)
        if user is None or not (user["active"] or state.config.has("token-after-deactivation")):
            raise unauthorized("invalid token", "invalid_token")
        exp = claims.get("exp")
        return Principal(user_id=user_id, username=user["username"], tenant=claims["tenant"],
                         role=claims["role"], via="token", jti=claims.get("jti"),
                         exp=int(exp) if isinstance(exp, (int, float)) else None)
    if api_key:
        user = state.users.by_api_key(api_key)
        if user is None:
            raise unauthorized("invalid API key")
        return Principal(user_id=user["id"], username=user["username"], tenant=user["tenant_id"],
                         role=user["role"], via="api_key")
    raise unauthorized("not authenticated")


def require_admin(principal: Principal) -> None:
    """403 unless the caller is an admin."""
    if principal.role != "admin":
        raise forbidden("admin role required")


def require_operator_admin(principal: Principal) -> None:
    """403 unless the caller is an admin of the operator tenant (instance-wide operations)."""
    if principal.role != "admin" or principal.tenant != OPERATOR_TENANT:
        raise forbidden("operator admin role required")


def parse_id(raw: str, state: DemoState) -> int:
    """A positive integer id from a path segment; 404 otherwise (500 traceback under stack-traces)."""
    if state.config.has("stack-traces"):
        return int(raw)  # deliberately unguarded: the ValueError escapes as a traceback
    if not raw.isascii() or not raw.isdigit():
        raise not_found()
    value = int(raw)
    if not 0 < value < 2**63:
        raise not_found()
    return value
