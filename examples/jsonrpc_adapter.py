"""Example third-party adapter: a JSON-RPC CRM whose errors carry only numeric codes.

The built-in ``jsonrpc`` adapter (``crm_audit/protocols/jsonrpc.py``) speaks JSON-RPC 2.0 and reads
an error by its name. This plugin extends it for a CRM that answers errors with a bare code
(``{"error": {"code": -32003, "message": "forbidden"}}``). Register it like any plugin:

    [project.entry-points.crm_audit]
    jsonrpc_coded = "jsonrpc_adapter"

and select it in the profile (every key of the built-in ``jsonrpc`` adapter works):

    adapter:
      type: jsonrpc_coded
      endpoint: /rpc
      models: {contacts: res.partner, leads: crm.lead}
      records_path: ""
"""

from __future__ import annotations

from typing import Literal

from crm_audit.core.adapter import Adapter, Outcome, dig
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.target import Exchange
from crm_audit.protocols.jsonrpc import JsonRpcAdapter, JsonRpcConfig

#: error code -> what it means
CODES: dict[int, Outcome] = {-32001: "denied", -32003: "denied", -32004: "not_found"}


class CodedConfig(JsonRpcConfig):
    type: Literal["jsonrpc_coded"] = "jsonrpc_coded"  # type: ignore[assignment]


class CodedJsonRpcAdapter(JsonRpcAdapter):
    type = "jsonrpc_coded"
    version = "1.0.0"
    description = "Example: a JSON-RPC 2.0 CRM whose errors carry only numeric codes"
    config_model = CodedConfig

    def classify(self, ex: Exchange) -> Outcome:
        outcome = super().classify(ex)
        code = dig(ex.json_or_none(), "error.code")
        return CODES.get(code, outcome) if outcome == "unknown" else outcome


@hookimpl
def crm_audit_register_adapters() -> list[type[Adapter]]:
    return [CodedJsonRpcAdapter]
