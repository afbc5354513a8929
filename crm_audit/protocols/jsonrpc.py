"""The built-in ``jsonrpc`` adapter: a JSON-RPC 2.0 CRM described in the profile's ``adapter:`` section.

One endpoint takes ``{"jsonrpc": "2.0", "method": "<model>.<action>", "params": {…}, "id": n}``
(the style of Odoo's and several other CRMs' RPC APIs). Failures come back in the body with
HTTP 200; :meth:`JsonRpcAdapter.classify` reads them by the error's name (``error.data.name``,
else the ``Name:`` prefix of ``error.message``). Each account's ``context`` from the profile is
sent in ``params.<context_param>`` (the company or tenant the call acts for). Registered through
``crm_audit_register_adapters`` exactly as a third-party adapter is (entry point ``adapter_jsonrpc``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.core.adapter import (
    NAMED_OPERATIONS,
    Adapter,
    Caller,
    Discovery,
    FieldKind,
    Operation,
    Outcome,
    RawCredentials,
    classify_http,
    dig,
    nest,
)
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.target import Exchange
from crm_audit.protocols.tagged import TaggedAdapter

_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*:")


class JsonRpcMethods(BaseModel):
    """The action names appended to a model name (``contacts`` + ``.search_read``)."""

    model_config = ConfigDict(extra="forbid")
    list: str = Field("search_read", description="lists a page: params limit, offset (and the tag)")
    read: str = Field("read", description="reads one record: params id")
    create: str = Field("create", description="creates: params values")
    update: str = Field("write", description="updates: params id, values")
    delete: str = Field("unlink", description="deletes: params id")


class JsonRpcConfig(BaseModel):
    """``adapter:`` with ``type: jsonrpc``: a JSON-RPC 2.0 CRM."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["jsonrpc"] = "jsonrpc"
    endpoint: str = Field("/jsonrpc", description="path of the one JSON-RPC endpoint")
    models: dict[str, str] = Field(default_factory=dict, description="generic resource → RPC model name")
    methods: JsonRpcMethods = Field(default_factory=JsonRpcMethods, description="action names after the model")
    id_field: str = Field("id", description="dotted path of a record's id")
    owner_field: str | None = Field(None, description="dotted path of a record's owner")
    tenant_field: str | None = Field(None, description="dotted path of a record's tenant / company")
    tag_field: str | None = Field("tags", description="list field the run tag is put in on create")
    tag_param: str | None = Field("tag", description="list parameter that filters by tag (null: none)")
    records_path: str = Field("records", description="dotted path of the records in a list result ('' = the result)")
    limit_param: str = Field("limit", description="list parameter: page size")
    offset_param: str = Field("offset", description="list parameter: offset")
    context_param: str | None = Field("context", description="params key carrying the account's context (null: none)")
    create: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                              description="create values template per resource; {tag} {n} filled in")
    update: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                              description="update values template per resource; {tag} {n} filled in")
    operations: dict[str, str] = Field(
        default_factory=dict, description="named operation → the RPC method it calls, its arguments as params "
                                          "(update_me: as params.values), e.g. {me: users.me, update_me: "
                                          "users.write_me}; names: " + ", ".join(NAMED_OPERATIONS))
    denied_errors: list[str] = Field(
        default_factory=lambda: ["AccessError", "AccessDenied", "AuthenticationError", "SessionExpired"],
        description="error names that mean a refusal")
    not_found_errors: list[str] = Field(default_factory=lambda: ["MissingError", "MethodNotFound"],
                                        description="error names that mean: no such record or method")
    failure_errors: list[str] = Field(default_factory=lambda: ["ServerError", "InternalError"],
                                      description="error names that mean the CRM failed (not a decision)")


class JsonRpcAdapter(TaggedAdapter):
    """Maps the generic actions onto ``<model>.<action>`` calls; reads denials in 200 bodies."""

    type = "jsonrpc"
    version = "1.1.0"
    description = "JSON-RPC 2.0 CRM configured in the profile (one endpoint, model.method calls, errors in the body)"
    config_model = JsonRpcConfig
    config: JsonRpcConfig  # validated from config_model by Adapter.__init__
    _ids = itertools.count(1)  # JSON-RPC request ids and the numbers {n} of new records

    # ------------------------------------------------------------------ calls
    def rpc(self, method: str, params: Mapping[str, Any], account: Caller) -> tuple[Any, Exchange]:
        """One call as ``account``; (the result when allowed, else None) and its exchange."""
        body_params = dict(params)
        headers: dict[str, str] | None = None
        context: dict[str, Any] = {}
        if isinstance(account, RawCredentials):
            headers, context = dict(account.headers), dict(account.context)
        elif account is not None:
            context = self.target.context(account)
        if self.config.context_param and context:
            body_params[self.config.context_param] = {**context, **dict(body_params.get(self.config.context_param) or {})}
        body = {"jsonrpc": "2.0", "method": method, "params": body_params, "id": next(self._ids)}
        if isinstance(account, RawCredentials) or account is None:
            ex = self.target.request("POST", self.config.endpoint, auth=False, headers=headers, json=body)
        else:
            ex = self.target.request("POST", self.config.endpoint, account=account, json=body)
        if self.classify(ex) != "allowed":
            return None, ex
        data = ex.json_or_none()
        return (data.get("result") if isinstance(data, dict) else None), ex

    def _method(self, resource: str, action: str) -> str:
        try:
            model = self.config.models[resource]
        except KeyError:
            raise KeyError(f"adapter has no resource {resource!r} (adapter.models)") from None
        return f"{model}.{getattr(self.config.methods, action)}"

    # ------------------------------------------------------------------ records
    def resources(self) -> list[str]:
        return list(self.config.models)

    def list(self, resource: str, account: Caller, limit: int = 50, offset: int = 0, *,
             tag: str | None = None, filters: Mapping[str, Any] | None = None) -> tuple[list[dict[str, Any]], Exchange]:
        if filters:
            raise ValueError("the jsonrpc adapter cannot filter lists by field")
        params: dict[str, Any] = {self.config.limit_param: limit, self.config.offset_param: offset}
        if tag is not None and self.config.tag_param:
            params[self.config.tag_param] = tag
        result, ex = self.rpc(self._method(resource, "list"), params, account)
        items = dig(result, self.config.records_path)
        return ([i for i in items if isinstance(i, dict)] if isinstance(items, list) else []), ex

    def supports_tag_filter(self, resource: str) -> bool:
        return self.config.tag_param is not None

    def read(self, resource: str, record_id: Any, account: Caller) -> tuple[dict[str, Any] | None, Exchange]:
        result, ex = self.rpc(self._method(resource, "read"), {"id": record_id}, account)
        return (result if isinstance(result, dict) else None), ex

    def create(self, resource: str, account: Caller, tag: str, n: int = 0,
               overrides: Mapping[str, Any] | None = None) -> tuple[dict[str, Any] | None, Exchange]:
        values, n = self.create_values(self.config.create.get(resource, {}), tag, n)
        values.update(nest(overrides or {}))
        result, ex = self.rpc(self._method(resource, "create"), {"values": values}, account)
        record: dict[str, Any] | None = result if isinstance(result, dict) else None
        if record is None and isinstance(result, (int, str)) and not isinstance(result, bool):
            record, _ = self.read(resource, result, account)  # a create that answers only the new id
        self.remember(resource, record, tag, n)
        return record, ex

    def update_changes(self, resource: str, record_id: Any) -> dict[str, Any]:
        return self.update_values(resource, record_id, self.config.update.get(resource, {}))

    def update(self, resource: str, record_id: Any, account: Caller,
               changes: Mapping[str, Any] | None = None) -> tuple[dict[str, Any] | None, Exchange]:
        values = nest(changes if changes is not None else self.update_changes(resource, record_id))
        result, ex = self.rpc(self._method(resource, "update"), {"id": record_id, "values": values}, account)
        return (result if isinstance(result, dict) else None), ex

    def delete(self, resource: str, record_id: Any, account: Caller) -> Exchange:
        return self.rpc(self._method(resource, "delete"), {"id": record_id}, account)[1]

    # ------------------------------------------------------------------ fields
    def field_path(self, resource: str, kind: FieldKind) -> str | None:
        return {"id": self.config.id_field, "owner": self.config.owner_field, "tenant": self.config.tenant_field,
                "tag": self.config.tag_field}[kind]

    # ------------------------------------------------------------------ operations
    def discover(self, account: Caller = None) -> Discovery:
        """The generic operations, each model's RPC methods and the mapped named operations (nothing is fetched)."""
        found = super().discover(account)
        m = self.config.methods
        for res, model in self.config.models.items():
            for action, method in (("list", m.list), ("read", m.read), ("create", m.create), ("update", m.update),
                                   ("delete", m.delete)):
                found.operations.append(Operation(name=f"{model}.{method}", resource=res, action=action,  # type: ignore[arg-type]
                                                  params=("id",) if action in ("read", "update", "delete") else (),
                                                  safe=action in ("list", "read"), method="POST",
                                                  path=self.config.endpoint))
        for name in self.config.operations:
            found.operations.append(Operation(name=name, safe=NAMED_OPERATIONS.get(name, (False, ""))[0]))
        return found

    def offers(self, name: str) -> bool:
        """The generic and named operations it maps, and any other RPC method name (``model.method``)."""
        return (name in self.config.operations or super().offers(name)
                or (name not in NAMED_OPERATIONS and " " not in name and "/" not in name))

    def call(self, operation: Operation | str, args: Mapping[str, Any] | None, account: Caller) -> tuple[Any, Exchange]:
        """A generic ``<resource>.<action>`` operation, a named one (``operations``), else the RPC method of that
        name with ``args`` as params."""
        op = operation if isinstance(operation, Operation) else Operation(name=operation)
        res, _, action = op.name.rpartition(".")
        if (op.resource or res) in self.config.models and (op.action or action) in ("list", "read", "create",
                                                                                    "update", "delete"):
            return super().call(op, args, account)
        if not self.offers(op.name):
            raise KeyError(f"{self.type} adapter: no operation {op.name!r} (adapter.operations)")
        params = dict(args or {})
        if op.name == "update_me":
            params = {"values": nest(params)}
        return self.rpc(self.config.operations.get(op.name, op.name), params, account)

    # ------------------------------------------------------------------ answers
    def error_name(self, ex: Exchange) -> str | None:
        """The name of the error in a JSON-RPC answer (``error.data.name``, else the message's prefix)."""
        data = ex.json_or_none()
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            return None
        name = dig(error, "data.name")
        if isinstance(name, str) and name:
            return name
        m = _NAME.match(str(error.get("message", "")))
        return m.group(1) if m else str(error.get("code", "error"))

    def classify(self, ex: Exchange) -> Outcome:
        """An error in the body by its name; a result is allowed; otherwise the HTTP reading."""
        outcome = classify_http(ex)
        if outcome != "allowed":
            return outcome
        data = ex.json_or_none()
        if not isinstance(data, dict):
            return "unknown"
        name = self.error_name(ex)
        if name is None:
            return "allowed" if "result" in data else "unknown"
        last = name.rsplit(".", 1)[-1]
        if last in self.config.denied_errors or name in self.config.denied_errors:
            return "denied"
        if last in self.config.not_found_errors or name in self.config.not_found_errors:
            return "not_found"
        if last in self.config.failure_errors or name in self.config.failure_errors:
            return "error"
        return "unknown"


@hookimpl
def crm_audit_register_adapters() -> list[type[Adapter]]:
    """The built-in ``jsonrpc`` adapter, registered like any plugin's (entry point ``adapter_jsonrpc``)."""
    return [JsonRpcAdapter]
