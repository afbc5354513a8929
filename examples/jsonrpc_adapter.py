"""Example third-party adapter: a CRM that speaks JSON-RPC 2.0 instead of REST.

Everything goes to one endpoint as ``{"jsonrpc": "2.0", "method": "<model>.<action>", "params": …, "id": n}``
(the style of Odoo's and several other CRMs' RPC APIs). Register it like any plugin:

    [project.entry-points.crm_audit]
    jsonrpc = "jsonrpc_adapter"

and select it in the profile:

    adapter:
      type: jsonrpc
      endpoint: /rpc
      models: {contacts: res.partner, leads: crm.lead}
"""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.adapter import Adapter, fill
from crm_audit.hookspecs import hookimpl
from crm_audit.target import Exchange, Target


class JsonRpcConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = "jsonrpc"
    endpoint: str = "/rpc"
    models: dict[str, str] = Field(default_factory=dict, description="generic resource -> RPC model name")
    create: dict[str, dict[str, Any]] = Field(default_factory=dict, description="body template per resource")
    update: dict[str, dict[str, Any]] = Field(default_factory=dict)


class JsonRpcAdapter(Adapter):
    """Maps list/read/create/update/delete onto ``<model>.search_read|read|create|write|unlink`` calls."""

    type = "jsonrpc"
    version = "1.0.0"
    description = "Example: a JSON-RPC 2.0 CRM (one endpoint, model.method calls)"
    _ids = itertools.count(1)

    def __init__(self, config: dict[str, Any], target: Target) -> None:
        super().__init__(config, target)
        self.config = JsonRpcConfig.model_validate(config)

    def _call(self, account: str | None, method: str, params: dict[str, Any]) -> tuple[Any, Exchange]:
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)}
        ex = self.target.request("POST", self.config.endpoint, account=account, json=body)
        data = ex.json_or_none() if ex.ok else None
        if isinstance(data, dict) and "error" in data:
            # JSON-RPC reports failures in the body with HTTP 200: surface them as a failed exchange
            ex.status = {"-32001": 401, "-32003": 403, "-32004": 404}.get(str(data["error"].get("code")), 400)
            return None, ex
        return (data or {}).get("result") if isinstance(data, dict) else None, ex

    def resources(self) -> list[str]:
        return list(self.config.models)

    def record_id(self, record: dict) -> Any:
        return record.get("id") if isinstance(record, dict) else None

    def list(self, resource: str, account: str | None, limit: int = 50, offset: int = 0) -> tuple[list[dict], Exchange]:
        result, ex = self._call(account, f"{self.config.models[resource]}.search_read", {"limit": limit, "offset": offset})
        return (result if isinstance(result, list) else []), ex

    def read(self, resource: str, record_id: Any, account: str | None) -> tuple[dict | None, Exchange]:
        result, ex = self._call(account, f"{self.config.models[resource]}.read", {"id": record_id})
        return (result if isinstance(result, dict) else None), ex

    def create(self, resource: str, account: str | None, tag: str, n: int = 0,
               overrides: dict[str, Any] | None = None) -> tuple[dict | None, Exchange]:
        values = {**fill(self.config.create.get(resource, {}), tag=tag, n=n or next(self._ids)), **(overrides or {})}
        new_id, ex = self._call(account, f"{self.config.models[resource]}.create", {"values": values})
        return ({"id": new_id, **values} if new_id is not None else None), ex

    def update(self, resource: str, record_id: Any, account: str | None,
               body: dict[str, Any] | None = None) -> tuple[dict | None, Exchange]:
        values = body if body is not None else self.config.update.get(resource, {})
        ok, ex = self._call(account, f"{self.config.models[resource]}.write", {"id": record_id, "values": values})
        return ({"id": record_id, **values} if ok else None), ex

    def delete(self, resource: str, record_id: Any, account: str | None) -> Exchange:
        return self._call(account, f"{self.config.models[resource]}.unlink", {"id": record_id})[1]


@hookimpl
def crm_audit_register_adapters() -> list[type[Adapter]]:
    return [JsonRpcAdapter]
