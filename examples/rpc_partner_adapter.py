"""A third-party adapter written from scratch on the Adapter contract alone: a JSON-RPC 2.0 CRM.

docs/plugins.md ("Write an adapter") walks through it; tests/test_adapter_package.py installs it
as a package of its own (entry point ``rpc_partner``) and runs the access probe through it
against the demo's JSON-RPC face. It imports nothing but the contract: no REST internals.

    adapter:
      type: rpc_partner
      endpoint: /api/jsonrpc
      models: {contacts: contacts, leads: leads}
      create: {contacts: {first_name: Audit, last_name: "{tag}", email: "{tag}-{n}@audit.example"}}
      update: {contacts: {first_name: Audited}}
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.core.adapter import (
    NAMED_OPERATIONS,
    Adapter,
    Caller,
    FieldKind,
    Operation,
    Outcome,
    RawCredentials,
    classify_http,
    dig,
    fill,
    nest,
)
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.target import Exchange, Target

#: JSON-RPC error names -> what they mean for every probe
ERRORS: dict[str, Outcome] = {"AccessError": "denied", "AuthenticationError": "denied", "SessionExpired": "denied",
                              "MissingError": "not_found", "MethodNotFound": "not_found", "ServerError": "error"}

#: the named operations probes call (crm_audit.core.adapter.NAMED_OPERATIONS) -> this CRM's RPC methods
NAMED: dict[str, str] = {"me": "users.me", "update_me": "users.write_me", "users.list": "users.search_read",
                         "register": "auth.register", "audit_log": "audit_log.search_read",
                         "change_password": "users.change_password", "users.create": "users.create",
                         "users.delete": "users.unlink", "users.deactivate": "users.deactivate",
                         "users.activate": "users.activate"}


def own_method(name: str) -> bool:
    """True for one of the CRM's own RPC methods called by its name (``system.status``, ``system.listMethods``):
    ``model.method``, not a named operation of the contract (those it maps in NAMED, or lacks)."""
    return name not in NAMED_OPERATIONS and "." in name and not any(c in name for c in " /")


class PartnerConfig(BaseModel):
    """``adapter:`` with ``type: rpc_partner``."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["rpc_partner"] = "rpc_partner"
    endpoint: str = Field("/jsonrpc", description="path of the JSON-RPC endpoint")
    models: dict[str, str] = Field(default_factory=dict, description="generic resource -> model name")
    create: dict[str, dict[str, Any]] = Field(default_factory=dict, description="create values per resource")
    update: dict[str, dict[str, Any]] = Field(default_factory=dict, description="update values per resource")


class PartnerAdapter(Adapter):
    """``<model>.search_read | read | create | write | unlink`` calls; errors in 200 bodies."""

    type = "rpc_partner"
    version = "1.1.0"
    description = "Example: a JSON-RPC CRM on the Adapter contract alone"
    config_model = PartnerConfig
    _ids = itertools.count(1)

    def __init__(self, config: dict[str, Any], target: Target) -> None:
        super().__init__(config, target)
        self.config = PartnerConfig.model_validate(config)

    def _rpc(self, method: str, params: dict[str, Any], account: Caller) -> tuple[Any, Exchange]:
        """One call; the account's context (its company) goes into params.context."""
        if isinstance(account, RawCredentials):
            params = {**params, "context": dict(account.context)}
            kw: dict[str, Any] = {"auth": False, "headers": dict(account.headers)}
        elif account is None:
            kw = {"auth": False}
        else:
            params = {**params, "context": self.target.context(account)}
            kw = {"account": account}
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)}
        ex = self.target.request("POST", self.config.endpoint, json=body, **kw)
        data = ex.json_or_none()
        return (data.get("result") if self.classify(ex) == "allowed" and isinstance(data, dict) else None), ex

    def classify(self, ex: Exchange) -> Outcome:
        """HTTP first; a 200 is allowed only with a result, and an error in the body is read by its name."""
        outcome = classify_http(ex)
        data = ex.json_or_none()
        if outcome != "allowed" or not isinstance(data, dict):
            return outcome if outcome != "allowed" else "unknown"
        if "error" not in data:
            return "allowed" if "result" in data else "unknown"
        return ERRORS.get(str(dig(data, "error.data.name")), "unknown")

    def resources(self) -> list[str]:
        return list(self.config.models)

    def list(self, resource: str, account: Caller, limit: int = 50, offset: int = 0, *,
             tag: str | None = None, filters: Mapping[str, Any] | None = None) -> tuple[list[dict], Exchange]:
        if filters:
            raise ValueError("rpc_partner cannot filter by field")
        params: dict[str, Any] = {"limit": limit, "offset": offset, **({"tag": tag} if tag else {})}
        result, ex = self._rpc(f"{self.config.models[resource]}.search_read", params, account)
        rows = dig(result, "records")
        return ([r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []), ex

    def supports_tag_filter(self, resource: str) -> bool:
        return True

    def read(self, resource: str, record_id: Any, account: Caller) -> tuple[dict | None, Exchange]:
        result, ex = self._rpc(f"{self.config.models[resource]}.read", {"id": record_id}, account)
        return (result if isinstance(result, dict) else None), ex

    def create(self, resource: str, account: Caller, tag: str, n: int = 0,
               overrides: Mapping[str, Any] | None = None) -> tuple[dict | None, Exchange]:
        values = fill(self.config.create.get(resource, {}), tag=tag, n=n or next(self._ids))
        values = {**values, "tags": [tag], **nest(overrides or {})}
        result, ex = self._rpc(f"{self.config.models[resource]}.create", {"values": values}, account)
        if isinstance(result, (int, str)) and not isinstance(result, bool):  # only the new id: re-read it
            return self.read(resource, result, account)[0], ex
        return (result if isinstance(result, dict) else None), ex

    def update_changes(self, resource: str, record_id: Any) -> dict[str, Any]:
        return fill(self.config.update.get(resource, {}), tag="crm-audit", n=next(self._ids))

    def update(self, resource: str, record_id: Any, account: Caller,
               changes: Mapping[str, Any] | None = None) -> tuple[dict | None, Exchange]:
        values = nest(changes if changes is not None else self.update_changes(resource, record_id))
        result, ex = self._rpc(f"{self.config.models[resource]}.write", {"id": record_id, "values": values}, account)
        return (result if isinstance(result, dict) else None), ex

    def delete(self, resource: str, record_id: Any, account: Caller) -> Exchange:
        return self._rpc(f"{self.config.models[resource]}.unlink", {"id": record_id}, account)[1]

    def field_path(self, resource: str, kind: FieldKind) -> str | None:
        return {"id": "id", "owner": "owner_id", "tenant": "tenant_id", "tag": "tags"}[kind]

    def offers(self, name: str) -> bool:
        if own_method(name):
            return True  # the CRM's own methods by name: discovery lists them, the metadata checks read them
        return name in NAMED or super().offers(name)

    def call(self, operation: Operation | str, args: Mapping[str, Any] | None, account: Caller) -> tuple[Any, Exchange]:
        """The named operations on their RPC methods (update_me: the fields as params.values); the records'
        generic ones on the record methods; any other method of the CRM by its own name."""
        name = operation if isinstance(operation, str) else operation.name
        if name not in NAMED:
            if own_method(name) and not super().offers(name):
                return self._rpc(name, dict(args or {}), account)
            return super().call(operation, args, account)
        params = {"values": nest(args or {})} if name == "update_me" else dict(args or {})
        return self._rpc(NAMED[name], params, account)


@hookimpl
def crm_audit_register_adapters() -> list[type[Adapter]]:
    return [PartnerAdapter]
