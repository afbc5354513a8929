"""The JSON-RPC 2.0 face of the demo CRM: one endpoint, ``model.method`` calls, errors in the body.

``POST /api/jsonrpc`` takes ``{"jsonrpc": "2.0", "method": "contacts.search_read", "params": {…},
"id": n}`` and always answers HTTP 200 (500 only for an unhandled error), with ``result`` or
``error: {code, message: "<Name>: <detail>", data: {name, …}}``. It serves the same data, roles,
tenants and flaw switches as the REST API, by calling the very same handlers.

Authentication: ``auth.login {login, password}`` answers ``{uid, session_id, company, expires_in}``;
later calls carry ``X-Session: <uid>:<session_id>`` (both parts must match) or ``X-API-Key``.
Every call but ``auth.*`` names its company in ``params.context.company``; it must be the
caller's own (``AccessError`` otherwise, ``UserError`` when missing).

Methods: ``auth.login``, ``auth.logout``, ``auth.register``; ``users.me``, ``users.write_me``,
``users.search_read``, ``users.read``, ``users.write {id, values}``; ``audit_log.search_read``; and for each record model
(``contacts``, ``accounts``, ``leads``, ``opportunities``, ``cases``) ``search_read {limit, offset,
tag}`` → ``{records, total, limit, offset}``, ``read {id}``, ``create {values}``, ``write {id,
values, replace?}`` and ``unlink {id}`` → ``true``. Beyond the resources (``api_surface``):
``settings.search_read``/``settings.read``, ``dashboard.search_read``, ``system.status`` (no session
needed) and ``system.listMethods``. Credentials (``api_users``): ``users.change_password {old_password,
new_password}``, ``users.create {username, password, role?}``, ``users.unlink {id}``, ``users.deactivate {id}``,
``users.activate {id}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from crm_audit_demo import api_admin, api_auth, api_surface, api_users
from crm_audit_demo.api_records import DEFAULT_LIMIT, resource_api
from crm_audit_demo.auth import AuthError, Principal
from crm_audit_demo.config import TENANTS
from crm_audit_demo.deps import get_state, switched_tenant
from crm_audit_demo.resources import RESOURCES

PATH = "/api/jsonrpc"
SESSION_HEADER = "x-session"

#: HTTP status of the shared handlers -> (JSON-RPC error code, error name)
ERRORS: dict[int, tuple[int, str]] = {
    401: (100, "AuthenticationError"),
    403: (403, "AccessError"),
    404: (404, "MissingError"),
    409: (409, "UserError"),
    422: (-32602, "ValidationError"),
    429: (429, "TooManyAttempts"),
}

router = APIRouter()


class RpcError(Exception):
    """A JSON-RPC error answer: code, name and a client-facing detail."""

    def __init__(self, code: int, name: str, detail: str, **data: Any) -> None:
        super().__init__(detail)
        self.code, self.name, self.detail, self.data = code, name, detail, data

    def body(self, rid: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": rid, "error": {
            "code": self.code, "message": f"{self.name}: {self.detail}", "data": {"name": self.name, **self.data}}}


def _from_status(status: int, detail: Any, **data: Any) -> RpcError:
    code, name = ERRORS.get(status, (-32000, "ServerError"))
    if isinstance(detail, list):  # FastAPI-style validation details
        data["details"] = detail
        detail = "; ".join(str(d.get("msg", d)) for d in detail if isinstance(d, dict)) or "invalid values"
    return RpcError(code, name, str(detail), **data)


def _unwrap(answer: Any) -> Any:
    """A shared handler's answer as a JSON-RPC result; a JSONResponse error becomes an RpcError."""
    if isinstance(answer, JSONResponse):
        payload = json.loads(bytes(answer.body) or b"null")
        if answer.status_code >= 400:
            retry = answer.headers.get("retry-after")
            extra = {"retry_after": int(retry)} if retry and retry.isdigit() else {}
            raise _from_status(answer.status_code, (payload or {}).get("detail", "error"), **extra)
        return payload
    if isinstance(answer, Response):
        return True
    return answer


# ---------------------------------------------------------------- callers


def _principal(request: Request) -> Principal:
    """The caller from ``X-Session: <uid>:<session_id>`` (preferred) or ``X-API-Key``."""
    state = get_state(request)
    session = request.headers.get(SESSION_HEADER)
    api_key = request.headers.get("x-api-key")
    if session:
        uid, sep, token = session.partition(":")
        if not sep or not uid.isdigit() or not token:
            raise RpcError(100, "AuthenticationError", "malformed session header (X-Session: <uid>:<session_id>)")
        try:
            claims = state.tokens.decode(token)
        except AuthError as exc:
            raise RpcError(100, "SessionExpired" if exc.detail == "token expired" else "AuthenticationError",
                           exc.detail) from None
        if claims.get("sub") != uid:
            raise RpcError(100, "AuthenticationError", "session does not belong to this user")
        user = state.users.by_id(int(uid))
        if user is None or not (user["active"] or state.config.has("token-after-deactivation")):
            raise RpcError(100, "AuthenticationError", "invalid session")
        exp = claims.get("exp")
        return Principal(user_id=int(uid), username=user["username"], tenant=claims["tenant"], role=claims["role"],
                         via="token", jti=claims.get("jti"),
                         exp=int(exp) if isinstance(exp, (int, float)) else None)
    if api_key:
        user = state.users.by_api_key(api_key)
        if user is None:
            raise RpcError(100, "AuthenticationError", "invalid API key")
        return Principal(user_id=user["id"], username=user["username"], tenant=user["tenant_id"],
                         role=user["role"], via="api_key")
    raise RpcError(100, "AuthenticationError", "not authenticated (send X-Session or X-API-Key)")


def _company(params: dict[str, Any], principal: Principal) -> None:
    """The call's company context must be the caller's own."""
    context = params.get("context")
    company = context.get("company") if isinstance(context, dict) else None
    if not isinstance(company, str) or not company:
        raise RpcError(400, "UserError", "no company selected: send params.context.company")
    if company != principal.tenant:
        raise RpcError(403, "AccessError", f"company {company!r} is not allowed for this user")


# ---------------------------------------------------------------- params


def _int(params: dict[str, Any], name: str, default: int | None = None, minimum: int = 0) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RpcError(-32602, "ValidationError", f"params.{name} must be an integer >= {minimum}")
    return value


def _id(params: dict[str, Any]) -> str:
    value = params.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise RpcError(-32602, "ValidationError", "params.id must be a record id")
    return str(value)


def _values(params: dict[str, Any]) -> dict[str, Any]:
    values = params.get("values", {})
    if not isinstance(values, dict):
        raise RpcError(-32602, "ValidationError", "params.values must be an object")
    return values


def _model(model: type, values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        details = [{"type": e["type"], "loc": ["params", "values", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        raise _from_status(422, details) from None


def _shaped(request: Request, parse: Callable[[], Any]) -> Any:
    """``parse()``; under the body-shape-500 flaw a values object of the wrong shape crashes (a 500) instead."""
    try:
        return parse()
    except RpcError as exc:
        if exc.name == "ValidationError" and get_state(request).config.has("body-shape-500"):
            raise TypeError(f"unhandled: {exc.detail}") from None
        raise


# ---------------------------------------------------------------- methods


def _record_method(resource: str, action: str) -> Callable[[Request, dict[str, Any], Principal], Any]:
    handlers, full_model, patch_model = resource_api(resource)

    def call(request: Request, params: dict[str, Any], principal: Principal) -> Any:
        if action == "search_read":
            tag = params.get("tag")
            if tag is not None and (not isinstance(tag, str) or len(tag) > 64):
                raise RpcError(-32602, "ValidationError", "params.tag must be text of at most 64 characters")
            page = handlers.list(request, _int(params, "limit", DEFAULT_LIMIT, 1), _int(params, "offset", 0), tag,
                                 principal)
            return {"records": page["items"], "total": page["total"], "limit": page["limit"], "offset": page["offset"]}
        if action == "read":
            return handlers.read(request, _id(params), principal)
        if action == "create":
            return handlers.create(request, _shaped(request, lambda: _model(full_model, _values(params))), principal)
        if action == "write":
            full = params.get("replace") is True
            body = _shaped(request, lambda: _model(full_model if full else patch_model, _values(params)))
            return handlers.write(request, _id(params), body, principal, full=full)
        return _unwrap(handlers.delete(request, _id(params), principal))

    return call


def _users(action: str) -> Callable[[Request, dict[str, Any], Principal], Any]:
    def call(request: Request, params: dict[str, Any], principal: Principal) -> Any:
        if action == "me":
            return api_auth.get_me(request, principal)
        if action == "write_me":
            return api_auth.patch_me(_model(api_auth.MeUpdate, _values(params)), request, principal)
        if action == "read":
            return api_admin.get_user(_id(params), request, principal)
        if action == "write":
            return api_admin.write_user(_id(params), _values(params), request, principal)
        page = api_admin.list_users(request, _int(params, "limit", 50, 1), _int(params, "offset", 0), principal)
        return {"records": page["items"], "total": page["total"], "limit": page["limit"], "offset": page["offset"]}

    return call


def _audit_log(request: Request, params: dict[str, Any], principal: Principal) -> Any:
    return {"records": api_admin.audit_log(request, _int(params, "limit", 100, 1), principal)["items"]}


Method = Callable[[Request, dict[str, Any], Principal], Any]
METHODS: dict[str, Method] = {
    **{f"{r}.{a}": _record_method(r, a) for r in RESOURCES for a in ("search_read", "read", "create", "write", "unlink")},
    **{f"users.{a}": _users(a) for a in ("me", "write_me", "search_read", "read", "write")},
    "audit_log.search_read": _audit_log,
    **api_users.RPC_METHODS,
    **api_surface.rpc_methods(),
    "system.listMethods": lambda request, params, principal: sorted(METHODS),
}


def _login(request: Request, params: dict[str, Any]) -> Any:
    login, password = params.get("login"), params.get("password")
    if not isinstance(login, str) or not isinstance(password, str) or len(login) > 254 or len(password) > 1024:
        raise RpcError(-32602, "ValidationError", "params.login and params.password (text) are required")
    answer = _unwrap(api_auth.login(api_auth.LoginIn(username=login, password=password), request))
    state = get_state(request)
    claims = state.tokens.decode(answer["access_token"])
    return {"uid": int(claims["sub"]), "session_id": answer["access_token"], "company": claims["tenant"],
            "expires_in": answer["expires_in"]}


def _register(request: Request, params: dict[str, Any]) -> Any:
    """Self-service sign-up, as ``POST /api/auth/register`` (``params`` is its body)."""
    state = get_state(request)
    if not state.config.has("open-registration"):
        raise RpcError(403, "AccessError", "registration disabled")
    username, password = params.get("username"), params.get("password")
    if not isinstance(username, str) or "@" not in username or not isinstance(password, str) or len(password) < 8:
        raise RpcError(-32602, "ValidationError", "username (an e-mail) and password (8+ characters) required")
    return api_auth.register_user(request, username, password)


def dispatch(request: Request, method: str, params: dict[str, Any]) -> Any:
    """Run one call and return its result; raises RpcError (or HTTPException from a shared handler)."""
    if method == "auth.login":
        return _login(request, params)
    if method == "auth.register":
        return _register(request, params)
    public, result = api_surface.public_rpc(request, method, sorted(METHODS))
    if public:
        return result
    principal = _principal(request)
    if method == "auth.logout":
        return _unwrap(api_auth.logout(request, principal))
    call = METHODS.get(method)
    if call is None:
        raise RpcError(-32601, "MethodNotFound", f"no method {method[:80]!r}")
    context = params.get("context") if isinstance(params.get("context"), dict) else {}
    asked = next((context.get(k) for k in ("_tenant", "tenant_id") if context.get(k)), None)
    switched = switched_tenant(request, principal)
    if get_state(request).config.has("tenant-context") and asked in TENANTS:
        switched = replace(principal, tenant=asked)  # the flaw: the call's context picks the tenant
    if switched.tenant != principal.tenant:  # a flaw switched the tenant: it picks the company too
        principal, params = switched, {**params, "context": {**context, "company": switched.tenant}}
    _company(params, principal)
    return call(request, params, principal)


def _answer(payload: dict[str, Any]) -> JSONResponse:
    return JSONResponse(payload, status_code=200)


@router.post(PATH, include_in_schema=False)
async def jsonrpc(request: Request) -> Response:
    """The one JSON-RPC endpoint: always HTTP 200, the outcome in the body."""
    try:
        call = json.loads(await request.body() or b"null")
    except ValueError:
        return _answer(RpcError(-32700, "ParseError", "the body is not JSON").body(None))
    rid = call.get("id") if isinstance(call, dict) else None
    if not isinstance(call, dict) or call.get("jsonrpc") != "2.0" or not isinstance(call.get("method"), str):
        return _answer(RpcError(-32600, "InvalidRequest", "a JSON-RPC 2.0 call object is expected").body(rid))
    params = call.get("params", {})
    if not isinstance(params, dict):
        return _answer(RpcError(-32602, "ValidationError", "params must be an object").body(rid))
    try:
        result = await run_in_threadpool(dispatch, request, call["method"], params)
    except RpcError as exc:
        return _answer(exc.body(rid))
    except HTTPException as exc:
        return _answer(_from_status(exc.status_code, exc.detail).body(rid))
    answer = _answer({"jsonrpc": "2.0", "id": rid, "result": result})
    if call["method"] == "auth.login":  # the same browser session cookie as the REST login
        api_auth.session_cookie(answer, get_state(request), request.url.scheme == "https")
    return answer
