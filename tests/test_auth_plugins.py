"""Authentication as a plugin point: every built-in method against a real local server, and a
third-party method (a few lines) logging in to the demo's JSON-RPC face without touching Target."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from local_http import LocalServer

from crm_audit.core.auth import AuthMethod, Credentials
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.profile import parse_profile
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit.core.target import Target, TargetError
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile

PW = "pw-Zq9-very-secret"
TOKEN = "tok-ABCDEFGH12345678"
CODE = "code-7Hq2-one-time-55"
SESSION = "sess-Lm4-0987654321"


def _body(h) -> bytes:
    return h.rfile.read(int(h.headers.get("Content-Length", 0) or 0))


def _json(status: int, payload: object, **headers: str):
    return status, {"Content-Type": "application/json", **headers}, json.dumps(payload).encode()


class Crm:
    """One small CRM with every login style; counts logins."""

    def __init__(self) -> None:
        self.logins = 0
        self.expires_in = 900

    def echo(self, h):
        names = ("Authorization", "X-API-Key", "Cookie", "X-CSRFToken", "X-Company", "X-Signature")
        return _json(200, {n: h.headers.get(n) for n in names} | {"leak": f"{TOKEN} {SESSION} {CODE}"})

    def login(self, h):
        body = json.loads(_body(h) or b"{}")
        if body.get("auth", {}).get("secret") != PW:
            return _json(401, {"detail": "bad"})
        self.logins += 1
        return _json(200, {"data": {"token": f"{TOKEN}-{self.logins}", "ttl": self.expires_in}})

    def cookie_login(self, h):
        form = parse_qs(_body(h).decode())
        if form.get("password") != [PW]:
            return 401, {}, b"no"
        return 302, {"Location": "/home", "Set-Cookie": f"sessionid={SESSION}; Path=/; HttpOnly"}, b""

    def form(self, h):
        if h.command == "GET":
            page = '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="csrf-Form-123456">' \
                   '<input name="password" type="password"></form>'
            return 200, {"Content-Type": "text/html", "Set-Cookie": "csrftoken=csrf-Cookie-654321; Path=/"}, page.encode()
        form = parse_qs(_body(h).decode())
        ok = (form.get("csrfmiddlewaretoken") == ["csrf-Form-123456"] and "csrftoken=csrf-Cookie-654321"
              in (h.headers.get("Cookie") or "") and form.get("password") == [PW])
        if not ok:
            return 200, {"Content-Type": "text/html"}, b'<input name="csrfmiddlewaretoken" value="x"> password'
        return 302, {"Location": "/", "Set-Cookie": f"sessionid={SESSION}; Path=/"}, b""

    def oauth(self, h):
        form = {k: v[0] for k, v in parse_qs(_body(h).decode()).items()}
        client_ok = form.get("client_id") == "audit-client" and form.get("client_secret") == PW
        grant = form.get("grant_type")
        if client_ok and (grant == "client_credentials" or (grant == "password" and form.get("password") == PW)):
            return _json(200, {"access_token": f"{TOKEN}-{grant}", "token_type": "bearer", "expires_in": 3600})
        return _json(400, {"error": "invalid_grant"})

    def magic(self, h):
        body = json.loads(_body(h) or b"{}")
        if body.get("code") == CODE and body.get("email") == "u@example.test":
            return _json(200, {"access_token": f"{TOKEN}-magic"})
        return _json(401, {"error": "bad code"})


@pytest.fixture()
def crm():
    c = Crm()
    routes = {"/echo": c.echo, "/login": c.login, "/cookie-login": c.cookie_login, "/form": c.form,
              "/oauth/token": c.oauth, "/magic": c.magic, "/magic/start": lambda h: _json(200, {"sent": True}),
              "/logout": lambda h: _json(200, {"bye": h.headers.get("Authorization")})}
    with LocalServer(routes) as srv:
        c.srv = srv
        yield c


def target_for(base: str, auth: str, extra: str = "") -> Target:
    text = f"""
target: {{base_url: '{base}', rate_limit_rps: 1000}}
accounts:
  - name: a
    role: admin
    auth: {auth}
{extra}
"""
    return Target(parse_profile(text, env={"PW": PW, "TOK": TOKEN, "KEY": "key-1234567890"}))


def echo(t: Target, account: str | None = "a") -> dict:
    ex = t.request("GET", "/echo", account=account)
    assert ex.status == 200, ex.error
    return ex.json()


def test_bearer_api_key_basic_and_per_account_headers(crm) -> None:
    t = target_for(crm.srv.base_url, '{method: bearer, token: "${TOK}"}', "    headers: {X-Company: acme}")
    assert echo(t) == echo(t) and echo(t)["Authorization"] == f"Bearer {TOKEN}" and echo(t)["X-Company"] == "acme"
    assert echo(t, None)["Authorization"] is None and echo(t, None)["X-Company"] is None
    t = target_for(crm.srv.base_url, '{method: api_key, api_key: "${KEY}"}')
    assert echo(t)["X-API-Key"] == "key-1234567890"
    t = target_for(crm.srv.base_url, '{method: basic, username: bob, password: "${PW}"}')
    assert echo(t)["Authorization"].startswith("Basic ")


def test_json_login_nested_body_token_path_expiry_and_logout(crm) -> None:
    auth = ('{method: login, url: /login, username: u, password: "${PW}", body: {auth: {user: "{username}", '
            'secret: "{password}"}}, token_path: data.token, expires_in_path: data.ttl, '
            'logout: {url: /logout}}')
    crm.expires_in = 11  # renewed 10 s before expiry: after about a second
    t = target_for(crm.srv.base_url, auth)
    assert echo(t)["Authorization"] == f"Bearer {TOKEN}-1" and crm.logins == 1
    time.sleep(1.2)
    assert echo(t)["Authorization"] == f"Bearer {TOKEN}-2" and crm.logins == 2
    out = t.logout("a")
    assert out is not None and out.json()["bye"] == f"Bearer {TOKEN}-2"
    assert echo(t)["Authorization"] == f"Bearer {TOKEN}-3"  # logged out: the next request logs in again
    refused = t.try_login("a", password="Wrong-password-1")
    assert not refused.accepted and refused.refused == "HTTP 401"
    ev = t.request("GET", "/echo", account="a").evidence(excerpt_chars=2000).model_dump_json()
    assert f"{TOKEN}-3" not in ev and PW not in ev and "[REDACTED]" in ev  # the echoed header is masked


def test_cookie_session_goes_only_with_its_account(crm) -> None:
    t = target_for(crm.srv.base_url, '{method: cookie, url: /cookie-login, username: u, password: "${PW}", '
                                     'body_format: form}')
    assert echo(t)["Cookie"] == f"sessionid={SESSION}"
    assert echo(t, None)["Cookie"] is None  # the login's cookie jar is the account's own
    assert SESSION not in t.request("GET", "/echo", account="a").evidence().model_dump_json()


def test_csrf_form_login_carries_token_and_cookie(crm) -> None:
    auth = ('{method: csrf_form, url: /form, username: u, password: "${PW}", body_format: form, '
            'body: {username: "{username}", password: "{password}"}, csrf_header: X-CSRFToken}')
    t = target_for(crm.srv.base_url, auth)
    seen = echo(t)
    assert "sessionid=" + SESSION in seen["Cookie"] and "csrftoken=csrf-Cookie-654321" in seen["Cookie"]
    assert seen["X-CSRFToken"] == "csrf-Cookie-654321"
    bad = target_for(crm.srv.base_url, auth.replace('"${PW}"', '"${TOK}"'))
    with pytest.raises(TargetError, match=r"login for account 'a' failed: HTTP 200 \(the form came back\)"):
        echo(bad)


@pytest.mark.parametrize("auth, token", [
    ('{method: oauth2_client_credentials, url: /oauth/token, client_id: audit-client, client_secret: "${PW}"}',
     f"{TOKEN}-client_credentials"),
    ('{method: oauth2_password, url: /oauth/token, client_id: audit-client, client_secret: "${PW}", '
     'username: u, password: "${PW}"}', f"{TOKEN}-password"),
])
def test_oauth2_grants(crm, auth: str, token: str) -> None:
    t = target_for(crm.srv.base_url, auth)
    assert echo(t)["Authorization"] == f"Bearer {token}"
    assert t.credentials("a").expires_at is not None


def test_passwordless_command_prints_the_code(crm) -> None:
    printer = json.dumps([sys.executable, "-c", f"import sys; print('  '); print('{CODE}'); print(sys.argv[1])",
                          "{username}"])
    auth = (f'{{method: command, command: {printer}, username: u@example.test, url: /magic, '
            '"start": {url: /magic/start, body: {email: "{username}"}}, body: {email: "{username}", code: "{code}"}}')
    t = target_for(crm.srv.base_url, auth)
    assert echo(t)["Authorization"] == f"Bearer {TOKEN}-magic"
    assert CODE not in t.redactor.redact(f"x {CODE} y")
    assert not t.try_login("a", password="wrong-code-000").accepted  # a wrong one-time code is refused
    assert [h for h in crm.srv.hits if h.startswith("POST /magic/start")]


@pytest.mark.parametrize("argv, message", [
    ([sys.executable, "-c", "import time; time.sleep(5)"], "did not finish within 0.5 s"),
    ([sys.executable, "-c", f"print('{CODE}'); raise SystemExit(3)"], "exited with status 3"),
    (["/nonexistent/printer"], "could not start"),
])
def test_a_failing_command_is_one_clean_line(crm, argv, message) -> None:
    auth = f'{{method: command, command: {json.dumps(argv)}, command_timeout_s: 0.5}}'
    t = target_for(crm.srv.base_url, auth)
    with pytest.raises(TargetError, match=message) as info:
        echo(t)
    assert CODE not in str(info.value)


def test_a_signer_signs_every_request_of_its_account(crm) -> None:
    class Signed(AuthMethod):
        name = "signed"

        def login(self, target: Target) -> Credentials:
            return Credentials(signer=lambda method, url, body: {"X-Signature": f"sig-{method}-{len(body or b'')}"})

    prof = parse_profile(f"target: {{base_url: '{crm.srv.base_url}'}}\naccounts: [{{name: a, role: r, "
                         "auth: {method: signed}}]")
    t = Target(prof, auth_methods={"signed": Signed})
    assert t.request("POST", "/echo", account="a", json={"x": 1}).json()["X-Signature"] == "sig-POST-8"
    assert t.request("GET", "/echo").json()["X-Signature"] is None


def test_the_audit_finds_a_method_registered_only_in_code() -> None:
    """run_audit hands the registry's auth methods to the Target: a method no package installs is found too."""
    from crm_audit.core.hookspecs import hookimpl

    seen: list[str | None] = []

    def echo(h):
        seen.append(h.headers.get("X-API-Key"))
        return _json(200, {"ok": True})

    class InCode(AuthMethod):
        name = "in_code_only"

        def login(self, target: Target) -> Credentials:
            return Credentials(headers={"X-API-Key": "in-code-key-1234567"})

    class Plugin:
        @hookimpl
        def crm_audit_register_auth(self) -> list[type[AuthMethod]]:
            return [InCode]

    reg = make_plugin_manager([Plugin()])
    assert reg.auth_methods["in_code_only"] is InCode and "login" in reg.auth_methods
    with LocalServer({"/echo": echo, "/": lambda h: _json(200, {})}) as srv:
        prof = parse_profile(f"target: {{base_url: '{srv.base_url}'}}\n"
                             "accounts: [{name: a, role: r, auth: {method: in_code_only}}]\n"
                             "endpoints: [{name: echo, path: /echo, account: a}]\n"
                             "plugins: {latency: {samples: 3, warmup: 0}}\nhierarchy: none\n")
        result = run_audit(prof, reg, RunOptions(only=["latency"]))
    latency = result.probe("latency")
    assert latency is not None and latency.status == "ok", latency and latency.reason
    assert seen == ["in-code-key-1234567"] * 3  # on the server: every timed request carried the method's header


def test_unknown_method_is_one_line() -> None:
    t = target_for("http://127.0.0.1:9", "{method: kerberos}")
    with pytest.raises(TargetError, match=r"accounts.a.auth.method: no auth method 'kerberos' \(known: .*bearer"):
        t.request("GET", "/x", account="a")


# ---------------------------------------------------------------- a third-party method, installed

PLUGIN = '''
"""A JSON-RPC session login: X-Session is built from two fields of the login result."""
import time
from crm_audit.core.auth import AuthMethod, Credentials
from crm_audit.core.hookspecs import hookimpl


class RpcSession(AuthMethod):
    name = "rpc_session"

    def login(self, target):
        body = {"jsonrpc": "2.0", "method": "auth.login", "id": 1,
                "params": {"login": self.auth.username, "password": self.auth.password.get_secret_value()}}
        result = (target.auth_request(self.account.name, "POST", self.auth.url, json=body).json_or_none() or {}).get("result")
        if not result:
            raise self.fail("refused")
        return Credentials(headers={"X-Session": f"{result['uid']}:{result['session_id']}"},
                           token=result["session_id"], expires_at=time.time() + result["expires_in"])


@hookimpl
def crm_audit_register_auth():
    return [RpcSession]
'''


@pytest.fixture()
def installed_plugin(tmp_path: Path, monkeypatch):
    """``rpc_session_auth`` installed as a distribution with a crm_audit entry point (on sys.path)."""
    (tmp_path / "rpc_session_auth.py").write_text(textwrap.dedent(PLUGIN))
    dist = tmp_path / "rpc_session_auth-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rpc-session-auth\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[crm_audit]\nrpc_session = rpc_session_auth\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("rpc_session_auth", None)


def test_composite_session_header_from_profile_and_a_few_lines_of_plugin(installed_plugin) -> None:
    methods = {k: v for k, v in vars(Target).items() if callable(v)}
    with DemoServer(protocol="jsonrpc", tls=False) as server:
        profile = demo_profile(server)  # profiles/demo-jsonrpc.yaml
        data = profile.model_dump(mode="json", exclude={"source_path", "digest"})
        data["accounts"] = [{"name": "admin", "role": "admin", "tenant": "acme", "context": {"company": "acme"},
                             "auth": {"method": "rpc_session", "url": "/api/jsonrpc", "username": "admin@acme.example",
                                      "password": "${DEMO_ADMIN_PASSWORD}"}}]
        data.update(access_matrix={}, flows=[], endpoints=[], plugins={"data_quality": {"page_size": 200}},
                    hierarchy="none")
        prof = parse_profile(json.dumps(data), env=server.env)
        result = run_audit(prof, make_plugin_manager(), RunOptions(only=["data_quality"]))
    dq = result.probe("data_quality")
    assert dq.status == "ok", dq.reason
    assert dq.artifacts["records"] > 1000  # every resource read over JSON-RPC with the composite header
    assert {k: v for k, v in vars(Target).items() if callable(v)} == methods
    assert server.env["DEMO_ADMIN_PASSWORD"] not in result.model_dump_json()


def test_the_demo_profile_builds_the_same_header_without_plugin_code() -> None:
    with DemoServer(protocol="jsonrpc", tls=False) as server:
        t = Target(demo_profile(server))
        header = t.auth_headers("sales")["X-Session"]
        uid, sid = header.split(":", 1)
        assert uid == "3" and sid == t.token("sales")
        assert t.present_token("sales", "forged") == {"X-Session": "3:forged"}
        assert t.redactor.redact(header) == "[REDACTED]"


def test_crm_audit_plugins_lists_the_auth_methods(installed_plugin, tmp_path: Path) -> None:
    """`crm-audit plugins` lists the built-in auth methods and an installed one, with the plugin that gave each."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "crm_audit", "plugins", "--json"], env=env, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    auth = {r["id"]: r for r in json.loads(out) if r["kind"] == "auth"}
    assert auth["login"]["password_login"] is True and auth["login"]["plugin"] == "auth_builtin"
    assert auth["bearer"]["password_login"] is False
    assert auth["rpc_session"]["plugin"] == "rpc_session"
    text = subprocess.run([sys.executable, "-m", "crm_audit", "plugins"], env=env, capture_output=True, text=True,
                          check=True, timeout=120).stdout
    assert any(line.startswith("auth") and "rpc_session" in line for line in text.splitlines())
