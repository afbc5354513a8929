"""The demo CRM's JSON-RPC face serves the same data, roles, tenants and flaws as its REST API.

Each server runs with ``protocol="jsonrpc"`` (REST stays beside it). The same battery of
actions runs through the built-in ``rest`` adapter (profiles/demo.yaml) and the built-in
``jsonrpc`` adapter (profiles/demo-jsonrpc.yaml) and must read the same way on both faces,
on a clean server and under each access flaw — and each flaw must change what the battery sees.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.runner import make_adapter
from crm_audit.core.target import Target
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile

pytestmark = pytest.mark.integration

ACCESS_FLAWS = ("bola", "tenant-leak", "no-role-check", "mass-assignment", "token-after-logout", "user-enum")


@pytest.fixture(scope="module")
def registry():
    return make_plugin_manager()


def faces(server: DemoServer, registry) -> dict[str, Any]:
    """face name -> (adapter, target) over the same server."""
    out = {}
    for face, name in (("rest", "demo.yaml"), ("jsonrpc", "demo-jsonrpc.yaml")):
        profile = demo_profile(server, name)
        target = Target(profile)
        out[face] = (make_adapter(registry, profile, target), target)
    return out


def battery(adapter, target: Target, tag: str) -> dict[str, Any]:
    """What a fixed set of actions reads as, on one face (records it creates are deleted after)."""
    seen: dict[str, Any] = {}
    globex, ex = adapter.list("contacts", "globex_admin", limit=1)
    assert adapter.classify(ex) == "allowed" and globex
    foreign = adapter.record_id(globex[0])
    _, ex = adapter.read("contacts", foreign, "sales")
    seen["read other tenant"] = adapter.classify(ex)
    page, ex = adapter.list("contacts", "globex_sales", limit=200)
    seen["list shows other tenant"] = any(r.get("tenant_id") != "globex" for r in page)
    _, ex = adapter.create("contacts", "readonly", tag)
    seen["readonly create"] = adapter.classify(ex)
    mine, ex = adapter.create("contacts", "manager", tag)
    assert mine is not None, ex.text
    rid = adapter.record_id(mine)
    _, ex = adapter.update("contacts", rid, "sales", {"first_name": "Changed"})
    seen["sales update other's"] = adapter.classify(ex)
    seen["readonly delete"] = adapter.classify(adapter.delete("contacts", rid, "readonly"))
    if seen["readonly delete"] != "allowed":
        adapter.delete("contacts", rid, "manager")
    moved, ex = adapter.create("contacts", "sales", tag, overrides={"tenant_id": "globex"})
    seen["create sets tenant"] = (moved or {}).get("tenant_id")
    if moved is not None:
        adapter.delete("contacts", adapter.record_id(moved), "admin")
        adapter.delete("contacts", adapter.record_id(moved), "globex_admin")
    _, ex = adapter.list("contacts", None, limit=1)
    seen["anonymous list"] = adapter.classify(ex)
    unknown = target.try_login("sales", username=f"nobody-{tag}@acme.example", password="Wrong-pass-123")
    wrong = target.try_login("sales", password="Wrong-pass-123")
    seen["unknown user answer = wrong password answer"] = (
        unknown.exchange.status == wrong.exchange.status
        and _message(unknown.exchange) == _message(wrong.exchange))
    seen["logins refused"] = (unknown.accepted, wrong.accepted)
    old = target.auth_headers("sales2")
    out = target.logout("sales2")  # both profiles name auth.logout: the auth plugin point logs out
    assert out is not None and adapter.classify(out) == "allowed", out and out.text
    if adapter.type == "rest":
        ex = target.request("GET", "/api/contacts", auth=False, headers=old, params={"limit": 1})
    else:
        ex = target.request("POST", "/api/jsonrpc", auth=False, headers=old, json={
            "jsonrpc": "2.0", "method": "contacts.search_read", "id": 1,
            "params": {"limit": 1, "context": {"company": "acme"}}})
    seen["session after logout"] = adapter.classify(ex)
    return seen


def _message(ex) -> str:
    data = ex.json_or_none() or {}
    return str(data.get("detail") or (data.get("error") or {}).get("message"))


@pytest.fixture(scope="module")
def clean(registry):
    with DemoServer(protocol="jsonrpc", tls=False) as server:
        yield {face: battery(a, t, f"clean-{face}") for face, (a, t) in faces(server, registry).items()}


def test_clean_demo_reads_the_same_over_both_faces(clean) -> None:
    assert clean["rest"] == clean["jsonrpc"]
    assert clean["jsonrpc"] == {
        "read other tenant": "not_found", "list shows other tenant": False, "readonly create": "denied",
        "sales update other's": "denied", "readonly delete": "denied", "create sets tenant": "acme",
        "anonymous list": "denied", "unknown user answer = wrong password answer": True,
        "logins refused": (False, False), "session after logout": "denied"}


@pytest.mark.parametrize("flaw", ACCESS_FLAWS)
def test_each_access_flaw_acts_the_same_over_json_rpc(flaw: str, clean, registry) -> None:
    with DemoServer(protocol="jsonrpc", tls=False, flaws=[flaw]) as server:
        seen = {face: battery(a, t, f"{flaw}-{face}") for face, (a, t) in faces(server, registry).items()}
    assert seen["jsonrpc"] == seen["rest"]
    assert seen["jsonrpc"] != clean["jsonrpc"], f"{flaw} changed nothing the battery sees"


@pytest.fixture(scope="module")
def rpc_server():
    with DemoServer(protocol="jsonrpc") as server:
        yield server


def call(server: DemoServer, method: str, params: dict, headers: dict | None = None) -> requests.Response:
    return requests.post(server.base_url + "/api/jsonrpc", json={"jsonrpc": "2.0", "method": method,
                         "params": params, "id": 7}, headers=headers or {}, verify=str(server.ca_path), timeout=10)


def session(server: DemoServer, user: str = "sales@acme.example", env: str = "DEMO_SALES_PASSWORD") -> dict:
    r = call(server, "auth.login", {"login": user, "password": server.env[env]})
    result = r.json()["result"]
    assert set(result) == {"uid", "session_id", "company", "expires_in"}
    return {"X-Session": f"{result['uid']}:{result['session_id']}"}


def test_same_records_over_rest_and_json_rpc(rpc_server) -> None:
    rest_login = requests.post(rpc_server.base_url + "/api/auth/login", verify=str(rpc_server.ca_path), json={
        "username": "sales@acme.example", "password": rpc_server.env["DEMO_SALES_PASSWORD"]}).json()
    rest = requests.get(rpc_server.base_url + "/api/leads", params={"limit": 30, "offset": 5},
                        headers={"Authorization": f"Bearer {rest_login['access_token']}"},
                        verify=str(rpc_server.ca_path)).json()
    rpc = call(rpc_server, "leads.search_read", {"limit": 30, "offset": 5, "context": {"company": "acme"}},
               session(rpc_server)).json()["result"]
    assert rpc["records"] == rest["items"] and rpc["total"] == rest["total"] and len(rpc["records"]) == 30


@pytest.mark.parametrize("method, params, headers, name", [
    ("contacts.search_read", {"context": {"company": "acme"}}, None, "AuthenticationError"),
    ("contacts.search_read", {"context": {"company": "acme"}}, {"X-Session": "3:not-a-token"}, "AuthenticationError"),
    ("contacts.search_read", {}, "sales", "UserError"),
    ("contacts.search_read", {"context": {"company": "globex"}}, "sales", "AccessError"),
    ("contacts.read", {"id": 999999, "context": {"company": "acme"}}, "sales", "MissingError"),
    ("contacts.create", {"values": {"first_name": "x"}, "context": {"company": "acme"}}, "sales", "ValidationError"),
    ("contacts.frobnicate", {"context": {"company": "acme"}}, "sales", "MethodNotFound"),
    ("users.search_read", {"context": {"company": "acme"}}, "sales", "AccessError"),
    ("auth.register", {"username": "x@y.example", "password": "long-enough-1"}, None, "AccessError"),
])
def test_errors_and_denials_come_in_a_200_body(rpc_server, method, params, headers, name) -> None:
    hdrs = session(rpc_server) if headers == "sales" else headers
    r = call(rpc_server, method, params, hdrs)
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == 7 and "result" not in body
    assert body["error"]["data"]["name"] == name and body["error"]["message"].startswith(f"{name}: ")


def test_a_session_header_needs_both_parts_to_match(rpc_server) -> None:
    hdrs = session(rpc_server)
    uid, sid = hdrs["X-Session"].split(":", 1)
    ok = call(rpc_server, "users.me", {"context": {"company": "acme"}}, hdrs).json()
    assert ok["result"]["id"] == int(uid) and "password_hash" not in ok["result"]
    other = call(rpc_server, "users.me", {"context": {"company": "acme"}}, {"X-Session": f"1:{sid}"}).json()
    assert other["error"]["data"]["name"] == "AuthenticationError"


def test_not_json_and_not_a_call_are_json_rpc_errors(rpc_server) -> None:
    r = requests.post(rpc_server.base_url + "/api/jsonrpc", data=b"{nope", verify=str(rpc_server.ca_path))
    assert r.status_code == 200 and r.json()["error"]["code"] == -32700
    r = requests.post(rpc_server.base_url + "/api/jsonrpc", json=[1, 2], verify=str(rpc_server.ca_path))
    assert r.json()["error"]["code"] == -32600


def test_lockout_answers_in_the_body_with_retry_after(rpc_server) -> None:
    for _ in range(5):
        r = call(rpc_server, "auth.login", {"login": "lockout@acme.example", "password": "Wrong-pass-123"})
        assert r.json()["error"]["data"]["name"] == "AuthenticationError"
    r = call(rpc_server, "auth.login", {"login": "lockout@acme.example",
                                        "password": rpc_server.env["DEMO_LOCKOUT_PASSWORD"]})
    error = r.json()["error"]
    assert error["data"]["name"] == "TooManyAttempts" and error["data"]["retry_after"] >= 1


def test_rest_only_servers_do_not_serve_json_rpc() -> None:
    with DemoServer(tls=False) as server:
        r = requests.post(server.base_url + "/api/jsonrpc", json={"jsonrpc": "2.0", "method": "auth.login", "id": 1})
        assert r.status_code in (404, 405)
        assert server.profile_name == "demo.yaml"
    with pytest.raises(ValueError, match="unknown demo protocol"):
        DemoServer(protocol="soap")
