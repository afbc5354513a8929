"""Routes: list/create/read/replace/update/delete for every resource in ``RESOURCES``.

Authorization, in order: role may perform the action (403) -> record exists in the caller's
tenant (404, so other tenants' ids are indistinguishable from unknown ids) -> a sales user
owns the record it updates or deletes (403). Flaw switches bend exactly one step each.
"""

from datetime import datetime
from functools import cache
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from crm_audit_demo.auth import Principal
from crm_audit_demo.config import TENANTS
from crm_audit_demo.deps import authenticate, client_ip, forbidden, get_state, not_found, parse_id
from crm_audit_demo.resources import DEFAULTS, RESOURCES, FieldSpec
from crm_audit_demo.state import DemoState
from crm_audit_demo.timefmt import iso

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
WRITER_ROLES = frozenset({"admin", "manager", "sales"})


def _field_type(spec: FieldSpec) -> Any:
    if spec.choices:
        return Literal[spec.choices]  # type: ignore[valid-type]
    return {"str": str, "int": int, "float": float, "bool": bool, "datetime": datetime}[spec.kind]


def _constraints(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind == "str" and not spec.choices:
        return {"max_length": 1000, **({"min_length": 1} if spec.required else {})}
    if spec.kind == "float":
        return {"ge": 0}
    return {}


def _models(resource: str) -> tuple[type[BaseModel], type[BaseModel]]:
    """(full model for POST/PUT, partial model for PATCH); unknown keys are kept as extras."""
    singular = resource[:-1].capitalize()
    config = ConfigDict(extra="allow")
    tags = (list[str] | None, Field(default=None, max_length=50))
    full: dict[str, Any] = {"tags": tags}
    partial: dict[str, Any] = {"tags": tags}
    for spec in RESOURCES[resource]:
        kind, extra = _field_type(spec), _constraints(spec)
        full[spec.name] = (kind, Field(..., **extra)) if spec.required else \
            (kind | None, Field(default=None, **extra))
        partial[spec.name] = (kind | None, Field(default=None, **extra))
    return (create_model(f"{singular}In", __config__=config, **full),
            create_model(f"{singular}Patch", __config__=config, **partial))


def _clean(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


class _Handlers:
    """The six handlers of one resource, bound to it."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        self.fields = {spec.name: spec for spec in RESOURCES[resource]}

    # -- authorization helpers ----------------------------------------------------------
    def _may(self, state: DemoState, principal: Principal, action: str) -> None:
        if action == "delete" and state.config.has("no-role-check"):
            return
        if principal.role not in WRITER_ROLES:
            raise forbidden(f"role {principal.role} may not {action} {self.resource}")

    def _owned(self, state: DemoState, principal: Principal, record: dict[str, Any], action: str) -> None:
        if state.config.has("bola") or (action == "delete" and state.config.has("no-role-check")):
            return
        if principal.role == "sales" and record["owner_id"] != principal.user_id:
            raise forbidden(f"sales users may only {action} their own {self.resource}")

    def _load(self, state: DemoState, principal: Principal, raw_id: str) -> dict[str, Any]:
        record_id = parse_id(raw_id, state)
        tenant = None if state.config.has("bola") else principal.tenant
        record = state.records.get(self.resource, record_id, tenant)
        if record is None:
            anywhere = state.records.get(self.resource, record_id, None)
            if anywhere is None and state.config.has("missing-id-500"):
                raise LookupError(f"{self.resource} {record_id} does not exist")  # unhandled: a 500
            if anywhere is not None and state.config.has("existence-oracle"):
                raise forbidden(f"this {self.resource[:-1]} belongs to another tenant")
            raise not_found()
        return record

    # -- body handling -------------------------------------------------------------------
    def _values(self, state: DemoState, principal: Principal, body: BaseModel, *, full: bool,
                existing: dict[str, Any] | None) -> dict[str, Any]:
        provided = body.model_fields_set
        values: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name in provided:
                value = getattr(body, name)
                if value is None and spec.required:
                    raise HTTPException(422, detail=[{"type": "missing", "loc": ["body", name],
                                                      "msg": "Field required", "input": None}])
                values[name] = _clean(value)
            elif full:
                values[name] = DEFAULTS.get(self.resource, {}).get(name)
        if "tags" in provided and body.tags is not None:  # type: ignore[attr-defined]
            values["tags"] = body.tags  # type: ignore[attr-defined]
        elif existing is None:
            values["tags"] = []
        if state.config.has("mass-assignment"):
            extra = body.model_extra or {}
            if isinstance(extra.get("owner_id"), int):
                values["owner_id"] = extra["owner_id"]
            if isinstance(extra.get("tenant_id"), str):
                values["tenant_id"] = extra["tenant_id"]
        tenant = values.get("tenant_id") or (existing["tenant_id"] if existing else principal.tenant)
        self._check_refs(state, values, tenant)
        return values

    def _check_refs(self, state: DemoState, values: dict[str, Any], tenant: str) -> None:
        for name, spec in self.fields.items():
            value = values.get(name)
            if spec.ref and value is not None and not state.records.exists(spec.ref, value, tenant):
                raise HTTPException(422, detail=[{"type": "value_error", "loc": ["body", name],
                                                  "msg": f"no such {spec.ref[:-1]} in this tenant",
                                                  "input": value}])

    def _audit(self, state: DemoState, request: Request, principal: Principal, action: str, record_id: int) -> None:
        state.audit.add(principal.username, action, f"{self.resource}/{record_id}", client_ip(request),
                        principal.tenant)

    # -- handlers --------------------------------------------------------------------------
    def list(self, request: Request, limit: int, offset: int, tag: str | None,
             principal: Principal) -> dict[str, Any]:
        state = get_state(request)
        limit = min(limit, MAX_LIMIT)
        tenant = None if state.config.has("tenant-leak") else principal.tenant
        items, total = state.records.list(self.resource, tenant, limit, offset, tag)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    def _persisted_anyway(self, state: DemoState, check: Any, save: Any) -> None:
        """Run the authorization ``check``; under persist-on-deny a refusal still runs ``save`` first."""
        try:
            check()
        except HTTPException:
            if state.config.has("persist-on-deny"):
                save()
            raise

    def create(self, request: Request, body: BaseModel, principal: Principal) -> dict[str, Any]:
        state = get_state(request)
        new = lambda: {"tenant_id": principal.tenant, "owner_id": principal.user_id,  # noqa: E731
                       **self._values(state, principal, body, full=True, existing=None)}
        foreign = (body.model_extra or {}).get("tenant_id")
        if state.config.has("persist-on-deny") and foreign in TENANTS and foreign != principal.tenant:
            state.records.create(self.resource, {**new(), "tenant_id": foreign})
            raise forbidden(f"records of tenant {foreign!r} may not be created by this user")
        self._persisted_anyway(state, lambda: self._may(state, principal, "create"),
                               lambda: state.records.create(self.resource, new()))
        values = new()
        record = state.records.create(self.resource, values)
        self._audit(state, request, principal, "create", record["id"])
        return record

    def read(self, request: Request, item_id: str, principal: Principal) -> dict[str, Any]:
        return self._load(get_state(request), principal, item_id)

    def write(self, request: Request, item_id: str, body: BaseModel, principal: Principal,
              full: bool) -> dict[str, Any]:
        state = get_state(request)

        def save(record: dict[str, Any] | None = None) -> None:
            record = record or self._load(state, principal, item_id)
            state.records.update(self.resource, record["id"],
                                 self._values(state, principal, body, full=full, existing=record))

        self._persisted_anyway(state, lambda: self._may(state, principal, "update"), save)
        record = self._load(state, principal, item_id)
        self._persisted_anyway(state, lambda: self._owned(state, principal, record, "update"), lambda: save(record))
        values = self._values(state, principal, body, full=full, existing=record)
        updated = state.records.update(self.resource, record["id"], values)
        if updated is None:
            raise not_found()
        self._audit(state, request, principal, "update", record["id"])
        return updated

    def delete(self, request: Request, item_id: str, principal: Principal) -> Response:
        state = get_state(request)
        drop = lambda: state.records.delete(self.resource, self._load(state, principal, item_id)["id"])  # noqa: E731
        self._persisted_anyway(state, lambda: self._may(state, principal, "delete"), drop)
        record = self._load(state, principal, item_id)
        self._persisted_anyway(state, lambda: self._owned(state, principal, record, "delete"), drop)
        state.records.delete(self.resource, record["id"])
        self._audit(state, request, principal, "delete", record["id"])
        return Response(status_code=204)


def _register(router: APIRouter, resource: str) -> None:
    h, full_model, patch_model = resource_api(resource)
    base, one = f"/{resource}", f"/{resource}/{{item_id}}"
    tags = [resource]

    def list_records(request: Request, limit: int = Query(DEFAULT_LIMIT, ge=1),
                     offset: int = Query(0, ge=0), tag: str | None = Query(None, max_length=64),
                     principal: Principal = Depends(authenticate)) -> dict[str, Any]:
        return h.list(request, limit, offset, tag, principal)

    def create_record(request: Request, body: full_model,  # type: ignore[valid-type]
                      principal: Principal = Depends(authenticate)) -> dict[str, Any]:
        return h.create(request, body, principal)

    def read_record(request: Request, item_id: str,
                    principal: Principal = Depends(authenticate)) -> dict[str, Any]:
        return h.read(request, item_id, principal)

    def replace_record(request: Request, item_id: str, body: full_model,  # type: ignore[valid-type]
                       principal: Principal = Depends(authenticate)) -> dict[str, Any]:
        return h.write(request, item_id, body, principal, full=True)

    def update_record(request: Request, item_id: str, body: patch_model,  # type: ignore[valid-type]
                      principal: Principal = Depends(authenticate)) -> dict[str, Any]:
        return h.write(request, item_id, body, principal, full=False)

    def delete_record(request: Request, item_id: str,
                      principal: Principal = Depends(authenticate)) -> Response:
        return h.delete(request, item_id, principal)

    router.add_api_route(base, list_records, methods=["GET"], tags=tags, name=f"list_{resource}")
    router.add_api_route(base, create_record, methods=["POST"], status_code=201, tags=tags,
                         name=f"create_{resource}")
    router.add_api_route(one, read_record, methods=["GET"], tags=tags, name=f"read_{resource}")
    router.add_api_route(one, replace_record, methods=["PUT"], tags=tags, name=f"replace_{resource}")
    router.add_api_route(one, update_record, methods=["PATCH"], tags=tags, name=f"update_{resource}")
    router.add_api_route(one, delete_record, methods=["DELETE"], status_code=204, tags=tags,
                         name=f"delete_{resource}", response_class=Response)


@cache
def resource_api(resource: str) -> tuple[_Handlers, type[BaseModel], type[BaseModel]]:
    """(the handlers of ``resource``, its full model, its partial model): shared by REST and JSON-RPC."""
    full_model, patch_model = _models(resource)
    return _Handlers(resource), full_model, patch_model


def build_router() -> APIRouter:
    """Routes for all record resources under /api."""
    router = APIRouter(prefix="/api")
    for resource in RESOURCES:
        _register(router, resource)
    return router
