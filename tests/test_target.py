"""The Target client: scope, redirects, budget, rate, timing, auth and redaction, on a real local server."""

from __future__ import annotations

import json
import time

import pytest

from crm_audit.profile import parse_profile
from crm_audit.target import BudgetExceeded, OutOfScope, Target, TargetError

from local_http import LocalServer, json_route, redirect_route

SECRET = "pw-Zq9-very-secret"
TOKEN = "tok-ABCDEFGH12345678"


def make_profile(base: str, extra: str = "", env: dict | None = None):
    text = f"""
target:
  base_url: {base}
  rate_limit_rps: 1000
  request_budget: 50
accounts:
  - name: user
    role: sales
    auth: {{method: login, url: /login, username: u@example.test, password: "${{PW}}"}}
  - name: keyed
    role: readonly
    auth: {{method: api_key, header: X-API-Key, api_key: "${{KEY}}"}}
  - name: basic
    role: readonly
    auth: {{method: basic, username: bob, password: "${{PW}}"}}
{extra}
"""
    return parse_profile(text, env={"PW": SECRET, "KEY": "key-1234567890", **(env or {})})


def login_route(h):
    length = int(h.headers.get("Content-Length", 0))
    body = json.loads(h.rfile.read(length) or b"{}")
    if body.get("password") == SECRET:
        return 200, {"Content-Type": "application/json"}, json.dumps({"access_token": TOKEN}).encode()
    return 401, {"Content-Type": "application/json"}, b'{"detail":"bad"}'


def echo_auth(h):
    payload = {"auth": h.headers.get("Authorization"), "key": h.headers.get("X-API-Key"),
               "leak": f"password={SECRET} token {TOKEN}"}
    return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()


@pytest.fixture()
def server():
    with LocalServer({
        "/login": login_route,
        "/echo": echo_auth,
        "/ok": json_route({"ok": True}),
        "/html": lambda h: (200, {"Content-Type": "text/html"}, b"<html>hi</html>"),
        "/away": redirect_route("http://example.invalid/steal"),
        "/hop": redirect_route("/ok"),
        "/slow": lambda h: (time.sleep(0.05), (200, {}, b"x"))[1],
    }) as srv:
        yield srv


def test_login_flow_and_auth_headers(server) -> None:
    t = Target(make_profile(server.base_url))
    ex = t.request("GET", "/echo", account="user")
    assert ex.status == 200
    assert ex.json()["auth"] == f"Bearer {TOKEN}"
    assert t.request("GET", "/echo", account="keyed").json()["key"] == "key-1234567890"
    assert t.request("GET", "/echo", account="basic").json()["auth"].startswith("Basic ")
    assert t.request("GET", "/echo").json()["auth"] is None


def test_evidence_is_redacted(server) -> None:
    t = Target(make_profile(server.base_url))
    ex = t.request("GET", "/echo", account="user", params={"api_key": "qs-secret-999"})
    ev = ex.evidence(excerpt_chars=2000)
    dumped = ev.model_dump_json()
    for secret in (SECRET, TOKEN, "qs-secret-999", "key-1234567890"):
        assert secret not in dumped
    assert "[REDACTED]" in dumped
    assert "as user" in ev.request


def test_off_scope_url_is_refused_before_sending(server) -> None:
    t = Target(make_profile(server.base_url))
    with pytest.raises(OutOfScope, match="outside the audit's scope"):
        t.request("GET", "http://example.invalid/x")
    assert t.requests_made == 0


def test_off_scope_redirect_is_not_followed(server) -> None:
    t = Target(make_profile(server.base_url))
    ex = t.request("GET", "/away", allow_redirects=True)
    assert ex.status == 302
    assert ex.blocked_redirect == "http://example.invalid/steal"
    assert t.requests_made == 1


def test_in_scope_redirect_is_followed(server) -> None:
    t = Target(make_profile(server.base_url))
    ex = t.request("GET", "/hop", allow_redirects=True)
    assert ex.status == 200 and ex.redirects == [server.base_url + "/hop"]


def test_budget_is_enforced(server) -> None:
    t = Target(make_profile(server.base_url))
    for _ in range(50):
        t.request("GET", "/ok")
    with pytest.raises(BudgetExceeded, match="request budget of 50"):
        t.request("GET", "/ok")
    assert server.hits.count("GET /ok") == 50


def test_rate_limit_is_enforced(server) -> None:
    profile = make_profile(server.base_url)
    profile = profile.model_copy(update={"target": profile.target.model_copy(update={"rate_limit_rps": 20.0})})
    t = Target(profile)
    t0 = time.perf_counter()
    for _ in range(6):
        t.request("GET", "/ok")
    assert time.perf_counter() - t0 >= 5 / 20 * 0.95


def test_timing_keeps_ttfb_apart(server) -> None:
    t = Target(make_profile(server.base_url))
    ex = t.request("GET", "/slow")
    assert ex.elapsed_s >= 0.05
    assert ex.ttfb_s is not None and 0 < ex.ttfb_s <= ex.elapsed_s


def test_html_where_json_expected_is_one_clear_line(server) -> None:
    t = Target(make_profile(server.base_url))
    with pytest.raises(TargetError, match=r"answered text/html where JSON was expected \(status 200\)"):
        t.request("GET", "/html").json()


def test_unreachable_target_is_a_clear_error() -> None:
    t = Target(make_profile("http://127.0.0.1:9"))
    with pytest.raises(TargetError, match="unreachable: connection failed"):
        t.check_reachable()


def test_failed_login_is_clear_and_secret_free(server) -> None:
    t = Target(make_profile(server.base_url, env={"PW": "wrong-password-xyz"}))
    with pytest.raises(TargetError) as info:
        t.request("GET", "/echo", account="user")
    assert "login for account 'user' failed: HTTP 401" in str(info.value)
    assert "wrong-password-xyz" not in str(info.value)


@pytest.mark.parametrize("location", [
    "http://localhost:{port}\\@127.0.0.1/x",     # urlsplit and urllib3 disagree on the host
    "HTTP://localhost:{port}/x",                  # upper-case scheme must not pass as a relative path
    "http://user:pw@localhost:{port}/x",          # userinfo is refused outright
])
def test_tricky_off_scope_redirects_never_reach_the_other_host(server, location: str) -> None:
    with LocalServer({"/x": json_route({"stolen": True})}) as other:
        server.routes["/tricky"] = redirect_route(location.format(port=other.port))
        t = Target(make_profile(server.base_url))
        ex = t.request("GET", "/tricky", account="user", allow_redirects=True)
        assert ex.status == 302 and ex.blocked_redirect
        assert other.hits == [], "an off-scope host was contacted"
        with pytest.raises(OutOfScope):
            t.request("GET", location.format(port=other.port))
        assert other.hits == []


def test_evidence_is_redacted_before_it_is_cut(server) -> None:
    server.routes["/long"] = lambda h: (200, {}, ("x" * 290 + SECRET).encode())
    t = Target(make_profile(server.base_url))
    ev = t.request("GET", "/long").evidence(excerpt_chars=300)
    assert SECRET[:8] not in (ev.excerpt or "")
