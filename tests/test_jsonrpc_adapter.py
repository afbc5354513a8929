"""The documented JSON-RPC adapter example (a third-party extension of the built-in jsonrpc adapter) on a real server."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from local_http import LocalServer, json_route

from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.profile import parse_profile
from crm_audit.core.runner import RunOptions, run_audit

ROOT = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("jsonrpc_adapter", ROOT / "examples" / "jsonrpc_adapter.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["jsonrpc_adapter"] = mod  # as an installed plugin module would be
    spec.loader.exec_module(mod)
    return mod


class RpcCrm:
    """A minimal JSON-RPC CRM: res.partner records in memory, token auth."""

    def __init__(self) -> None:
        self.rows = {i: {"id": i, "name": f"P{i}", "email": f"p{i}@x.io" if i % 4 else "broken", "phone": "+1 555 0100",
                         "first_name": "P", "last_name": str(i)} for i in range(1, 41)}

    def __call__(self, h):
        if h.headers.get("Authorization") != "Bearer rpc-token-123456":
            body = {"jsonrpc": "2.0", "id": 0, "error": {"code": -32001, "message": "auth"}}
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        req = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        model, method = req["method"].rsplit(".", 1)
        p = req["params"]
        if method == "search_read":
            rows = sorted(self.rows.values(), key=lambda r: r["id"])
            result = rows[p["offset"]: p["offset"] + p["limit"]]
        elif method == "create":
            new = max(self.rows) + 1
            self.rows[new] = {"id": new, **p["values"]}
            result = new
        elif method == "unlink":
            result = self.rows.pop(p["id"], None) is not None
        else:
            result = self.rows.get(p.get("id"))
        return 200, {"Content-Type": "application/json"}, json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}).encode()


def test_jsonrpc_adapter_feeds_a_probe() -> None:
    mod = load_example()
    crm = RpcCrm()
    with LocalServer({"/rpc": crm, "/": json_route({})}) as srv:
        profile = parse_profile(f"""
target: {{base_url: '{srv.base_url}'}}
accounts: [{{name: admin, role: admin, auth: {{method: bearer, token: "${{RPC_TOKEN}}"}}}}]
adapter: {{type: jsonrpc_coded, endpoint: /rpc, models: {{contacts: res.partner}}, records_path: ''}}
plugins: {{data_quality: {{references: [], page_size: 15}}}}
hierarchy: none
""", env={"RPC_TOKEN": "rpc-token-123456"})
        reg = make_plugin_manager([mod])
        assert reg.adapters["jsonrpc_coded"] is mod.CodedJsonRpcAdapter
        res = run_audit(profile, reg, RunOptions(only=["data_quality"]))
        from crm_audit.core.runner import make_adapter
        from crm_audit.core.target import Target

        adapter = make_adapter(reg, profile, Target(profile))
        items, ex = adapter.list("contacts", None)  # no token: error -32001 in a 200 body
        assert ex.status == 200 and items == [] and adapter.classify(ex) == "denied"
    dq = res.probe("data_quality")
    assert dq.status == "ok", dq.reason
    assert dq.artifacts["records"] == 40
    assert dq.artifacts["defects"]["malformed_email"] == 10  # ids 4, 8, …, 40
    assert any(h.startswith("POST /rpc") for h in srv.hits)
