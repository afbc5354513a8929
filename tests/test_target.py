"""The Target client: scope, redirects, budget, rate, timing, auth and redaction, on a real local server."""

from __future__ import annotations

import json
import time

import pytest
from local_http import LocalServer, json_route, redirect_route

from crm_audit.core.profile import parse_profile
from crm_audit.core.target import BudgetExceeded, OutOfScope, Target, TargetError

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
    assert t.cleanup_reserve == 10 and t.budget_left == 40
    for _ in range(40):
        t.request("GET", "/ok")
    with pytest.raises(BudgetExceeded, match="request budget of 50"):
        t.request("GET", "/ok")
    assert server.hits.count("GET /ok") == 40
    with t.cleaning_up():  # cleanups may spend the reserve, and no more
        for _ in range(10):
            t.request("GET", "/ok")
        with pytest.raises(BudgetExceeded):
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


# --------------------------------------------------------------------------- hostile answers (issue 17)

from fault_target import FaultTarget  # noqa: E402

from crm_audit.core.bounded import retry_after_s  # noqa: E402
from crm_audit.core.model import NotAssessed  # noqa: E402
from crm_audit.core.profile import Profile  # noqa: E402


@pytest.fixture(scope="module")
def faults():
    """One fault server; every fault is at /fault/<name>."""
    with FaultTarget("none") as ft:
        yield ft


def bounded_target(base: str, **target: object) -> Target:
    cfg = {"base_url": base, "timeout_s": 1, "deadline_s": 2, "max_response_bytes": 1 << 20,
           "max_retry_after_s": 3, "rate_limit_rps": 1000, **target}
    return Target(Profile.model_validate({"target": cfg}))


def timed(t: Target, path: str, method: str = "GET"):
    t0 = time.monotonic()
    ex = t.request(method, path)
    return ex, time.monotonic() - t0


def test_a_trickled_body_ends_at_the_deadline(faults) -> None:
    ex, took = timed(bounded_target(faults.base_url, timeout_s=1, deadline_s=1.5), "/fault/trickle")
    assert 1.4 <= took < 2.0
    assert ex.failure is NotAssessed.timed_out and not ex.ok and not ex.answered
    assert "deadline of 1.5 s (target.deadline_s)" in ex.error
    assert ex.not_assessed is NotAssessed.timed_out


def test_a_stalled_body_ends_at_the_read_timeout_or_the_deadline(faults) -> None:
    ex, took = timed(bounded_target(faults.base_url, timeout_s=5, deadline_s=1), "/fault/stall")
    assert took < 1.5 and ex.failure is NotAssessed.timed_out
    ex, took = timed(bounded_target(faults.base_url, timeout_s=0.5, deadline_s=5), "/fault/stall")
    assert took < 1.0 and "no data for 0.5 s" in ex.error


def test_a_huge_answer_is_cut_at_the_byte_cap(faults) -> None:
    ex, took = timed(bounded_target(faults.base_url), "/fault/huge")
    assert ex.failure is NotAssessed.audit_limit and ex.body == b"" and not ex.ok
    assert "byte cap of 1048576 bytes (target.max_response_bytes)" in ex.error
    assert took < 1.5


def test_a_gzip_bomb_is_refused_by_its_decompressed_size(faults) -> None:
    ex, _ = timed(bounded_target(faults.base_url), "/fault/gzip_bomb")
    assert ex.failure is NotAssessed.audit_limit
    assert ex.error.startswith("decompressed answer larger than the byte cap")


def test_gzip_and_deflate_within_the_cap_are_decoded(faults) -> None:
    t = bounded_target(faults.base_url)
    assert t.request("GET", "/fault/gzip_ok").json()["total"] == 20
    assert t.request("GET", "/fault/deflate_raw").json() == {"raw": "deflate"}


def test_deeply_nested_json_is_one_line_never_recursion_error(faults) -> None:
    t = bounded_target(faults.base_url)
    ex = t.request("GET", "/fault/deep_json")
    assert ex.ok
    with pytest.raises(TargetError, match="nested too deep"):
        ex.json()
    assert ex.failure is NotAssessed.audit_limit and ex.error and not ex.ok
    assert ex.json_or_none() is None


def test_json_deeper_than_the_bound_but_parseable_is_refused() -> None:
    from crm_audit.core.bounded import MAX_JSON_DEPTH, TooDeep, parse_json

    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(TooDeep):
        parse_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert parse_json(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', max_depth=3) == {"a": "[" * 38}


def test_reset_is_retried_then_request_failed_each_attempt_counted(faults) -> None:
    t = bounded_target(faults.base_url, retries=2)
    ex = t.request("GET", "/fault/reset")
    assert ex.failure is NotAssessed.request_failed and ex.error.startswith("connection failed")
    assert ex.attempts == 3 and len(ex.retry_waits_s) == 2 and t.requests_made == 3
    ev = ex.evidence()
    assert ev.details["transport"]["attempts"] == 3 and ev.details["transport"]["deadline_s"] == 2


def test_truncated_body_is_request_failed(faults) -> None:
    ex = bounded_target(faults.base_url).request("GET", "/fault/truncated")
    assert ex.failure is NotAssessed.request_failed and "cut off" in ex.error and ex.attempts == 1


def test_5xx_storm_is_retried_for_get_but_not_for_post(faults) -> None:
    t = bounded_target(faults.base_url, retries=2)
    ex = t.request("GET", "/fault/storm")
    assert ex.status == 200 and ex.ok and ex.attempts == 3
    assert all(0 < w <= 4 for w in ex.retry_waits_s)
    post = t.request("POST", "/fault/storm/post", json={})
    assert post.status == 503 and post.attempts == 1
    assert post.not_assessed is NotAssessed.request_failed


def test_retries_stop_at_the_configured_number(faults) -> None:
    ex = bounded_target(faults.base_url, retries=0).request("GET", "/fault/storm/none")
    assert ex.status == 503 and ex.attempts == 1


def test_429_retry_after_is_honoured_up_to_its_limit(faults) -> None:
    ex, took = timed(bounded_target(faults.base_url, max_retry_after_s=3), "/fault/ratelimit/a")
    assert ex.status == 200 and ex.attempts == 2 and took >= ex.retry_waits_s[0] >= 0.4
    ex = bounded_target(faults.base_url, max_retry_after_s=0.3).request("GET", "/fault/ratelimit/b")
    assert ex.status == 429 and ex.attempts == 1


def test_retry_after_forms() -> None:
    import email.utils

    now = 1_800_000_000.0
    assert retry_after_s("7") == 7.0
    assert retry_after_s(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert retry_after_s(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_login_is_retried_through_a_5xx_storm() -> None:
    with FaultTarget("storm") as ft:
        profile = Profile.model_validate({
            "target": {"base_url": ft.base_url, "retries": 2, "deadline_s": 5},
            "accounts": [{"name": "a", "role": "admin", "auth": {
                "method": "login", "url": "/api/auth/login", "username": "u", "password": "fault-pw-Xq7-secret"}}]})
        t = Target(profile)
        assert t.token("a") == "fault-token-Zr81-abcdefgh"
        assert t.requests_made == 3


def test_deep_json_at_login_is_a_clean_target_error() -> None:
    with FaultTarget("deep_json_login") as ft:
        profile = Profile.model_validate({
            "target": {"base_url": ft.base_url},
            "accounts": [{"name": "a", "role": "admin", "auth": {
                "method": "login", "url": "/api/auth/login", "username": "u", "password": "fault-pw-Xq7-secret"}}]})
        with pytest.raises(TargetError, match=r"^login for account 'a' failed: .*nested too deep"):
            Target(profile).token("a")


def test_a_deadline_covers_retries_and_waits(faults) -> None:
    t = bounded_target(faults.base_url, retries=10, deadline_s=1.0, max_retry_after_s=5)
    ex, took = timed(t, "/fault/reset/x")
    assert took < 1.3 and ex.failure is NotAssessed.request_failed and ex.attempts < 11


def test_verify_tls_false_wins_over_ca_bundle(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    base = {"base_url": "https://localhost:1"}
    assert Target(Profile.model_validate({"target": {**base, "ca_bundle": str(ca), "verify_tls": False}})).verify is False
    assert Target(Profile.model_validate({"target": {**base, "ca_bundle": str(ca)}})).verify == str(ca)
    assert Target(Profile.model_validate({"target": base})).verify is True


def test_a_tls_handshake_failure_is_a_warning_not_a_stop() -> None:
    with FaultTarget("handshake") as ft:
        t = Target(Profile.model_validate({"target": {"base_url": ft.base_url, "retries": 2}}))
        warning = t.check_reachable()
        assert warning and "TLS error" in warning and t.warnings == [warning]
        assert t.requests_made == 1  # a TLS failure is not retried
        ex = t.request("GET", "/api/contacts")
        assert ex.failure is NotAssessed.request_failed and ex.error.startswith("TLS error")


def test_keep_alive_survives_bounded_reads(faults) -> None:
    t = bounded_target(faults.base_url)
    t.request("GET", "/fault/none")
    first = t.request("GET", "/fault/none")
    assert first.ok
    pool = next(iter(t._sessions.values())).get_adapter(faults.base_url).poolmanager
    conns = [p.num_connections for p in pool.pools._container.values()]
    assert conns == [1], conns
