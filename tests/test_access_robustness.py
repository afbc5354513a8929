"""Robust error handling, CORS for any origin, cookie flags and the lockout judged both ways.

Pure rules first (cookie parsing, the lock's poll schedule, what counts as a server error, the
replayable request), then the access probe end to end against the demo CRM with one flaw
switch at a time: each switch fails exactly its own check, the clean demo stays silent, the
evidence replays to the same answer on the server, and no record of the run tag is left.
The same switches are found over the JSON-RPC face.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict
from test_access_probe import DEMO_OPTIONS, _assert_no_leftovers, _assert_secrets_absent

from crm_audit.core.model import AuditResult, Finding, ProbeResult, Status
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit.core.target import Exchange, Target
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile
from crm_audit_plugins.access.hardening import set_cookies
from crm_audit_plugins.access.login import _poll_times
from crm_audit_plugins.access.robustness import replay

FAILING = (Status.failed, Status.warn, Status.error)

#: demo flaw switch -> the check ids (prefixes) it must fail
EXPECTED: dict[str, tuple[str, ...]] = {
    "missing-id-500": ("access.errors.server_error_on_missing_id.",),
    "body-shape-500": ("access.errors.server_error_on_malformed_body.",),
    "existence-oracle": ("access.errors.existence_oracle.",),
    "cors-any-origin": ("access.cors.any_origin",),
    "insecure-cookies": ("access.cookies.flags",),
    "hard-lockout": ("access.login.lockout_denies_owner",),
}
#: what else a switch may leave failing or not assessed, and why
MAY_ALSO: dict[str, tuple[str, ...]] = {
    # a missing id answers 500: the oracle cannot compare a hidden record with a 500 (not assessed), and
    # the checks that read records the audit has just deleted see 500 where a denial belongs
    "missing-id-500": ("access.errors.existence_oracle", "access.errors.server_error_on_deny"),
    # a described PUT/PATCH sent with an id probe carries an empty object, itself a body of the wrong shape
    "body-shape-500": ("access.errors.server_error_on_malformed_id", "access.errors.server_error_on_missing_id"),
}
#: the lockout check waits at most this long for a lock to lift (the clean demo's lock lasts 3 s)
OPTIONS: dict[str, Any] = {"lockout_max_s": 5}


# --------------------------------------------------------------------------- pure rules


def _ex(status: int | None = 200, headers: dict[str, str] | None = None, **kw: Any) -> Exchange:
    return Exchange(method=kw.pop("method", "GET"), url=kw.pop("url", "https://crm.example/api/x"), status=status,
                    headers=CaseInsensitiveDict(headers or {}), **kw)


def test_set_cookies_splits_a_folded_header_without_splitting_dates() -> None:
    folded = ("csrftoken=abc; expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/; SameSite=Lax, "
              "sessionid=s3cr3t; HttpOnly; Secure; Path=/")
    got = dict(set_cookies(_ex(headers={"Set-Cookie": folded})))
    assert set(got) == {"csrftoken", "sessionid"}
    assert got["csrftoken"] == {"expires": "Wed, 21 Oct 2026 07:28:00 GMT", "path": "/", "samesite": "Lax"}
    assert set(got["sessionid"]) == {"httponly", "secure", "path"}
    assert "s3cr3t" not in repr(got), "cookie values are never kept"
    assert set_cookies(_ex(None, error="timed out")) == []


def test_poll_times_are_bounded_and_end_past_the_limit() -> None:
    assert _poll_times(60, 3) == [3.5, 60.5]                  # announced end, then once past the limit
    assert _poll_times(60, 900) == [60.5]                    # announced beyond the limit: only past it
    unannounced = _poll_times(60, None)
    assert unannounced[0] == 1.0 and unannounced[-1] == 60.5 and len(unannounced) <= 8
    assert all(a < b for a, b in zip(unannounced, unannounced[1:]))


def test_replay_names_the_account_never_its_credentials() -> None:
    ex = _ex(500, method="PUT", url="https://crm.example/api/cases/999999937/", account="user1",
             request_headers={"Content-Type": "application/json", "Authorization": "JWT eyJhbGciOi.x.y"},
             request_body=b'{"name": "x"}')
    cmd = replay(ex)
    assert shlex.split(cmd)[:4] == ["curl", "-X", "PUT", "https://crm.example/api/cases/999999937/"]
    assert "<credentials of account user1>" in cmd and "eyJ" not in cmd and "--data" in cmd


# --------------------------------------------------------------------------- end to end


def _audit(flaws: tuple[str, ...], protocol: str = "rest",
           checks: list[str] | None = None) -> tuple[ProbeResult, AuditResult, dict[str, str], DemoServer]:
    """The access probe against a fresh demo; the server stays up (stopped by the caller) so tests can
    re-send the evidence."""
    server = DemoServer(flaws=flaws, protocol=protocol).start()
    try:
        profile = demo_profile(server)
        options = {**DEMO_OPTIONS, **(profile.plugins.get("access") or {}), **OPTIONS,
                   **({"checks": checks} if checks else {})}
        profile = profile.model_copy(update={"plugins": {**profile.plugins, "access": options}, "hierarchy": "none"})
        result = run_audit(profile, make_plugin_manager(), RunOptions(only=["access"], allow_disruptive=True))
        probe = result.probe("access")
        assert probe is not None and probe.status == "ok", probe and probe.reason
        if protocol == "rest":
            _assert_no_leftovers(profile, result.run_id)
        return probe, result, dict(server.env), server
    except BaseException:
        server.stop()
        raise


def _failing(probe: ProbeResult) -> dict[str, Finding]:
    return {f.id: f for f in probe.findings if f.status in FAILING}


def _resend(server: DemoServer, f: Finding, account: str = "admin") -> Exchange:
    """The first evidence request of a finding, sent again as ``account`` (method and URL from the evidence)."""
    method, url = (f.evidence[0].request or "").split("  (as ")[0].split(" ", 1)
    target = Target(demo_profile(server))
    try:
        return target.request(method, url, account=account)
    finally:
        target.close()


def profile_login(server: DemoServer, account: str) -> Exchange:
    """The account's own login request with its correct password, as a person would send it."""
    profile = demo_profile(server)
    acct = profile.account(account)
    target = Target(profile)
    try:
        return target.request("POST", "/api/auth/login", auth=False, retry=False, json={
            "username": acct.auth.username, "password": acct.auth.password.get_secret_value()})
    finally:
        target.close()


@pytest.mark.integration
def test_clean_demo_is_silent_and_every_new_check_ran() -> None:
    probe, result, env, server = _audit(())
    try:
        assert _failing(probe) == {}
        got = {f.id: f for f in probe.findings}
        for fid in ("access.errors.server_error_on_missing_id", "access.errors.server_error_on_malformed_id",
                    "access.errors.server_error_on_malformed_body", "access.errors.existence_oracle.contacts",
                    "access.cors.any_origin", "access.cookies.flags", "access.login.lockout_denies_owner"):
            assert got[fid].status == Status.passed, (fid, got[fid].status, got[fid].title)
        # the lock lasted the demo's 3 s and no longer: the owner logs in again right after the audit
        lock = profile_login(server, "lockout")
        assert lock.status == 200, lock.text
        _assert_secrets_absent(result, env)
    finally:
        server.stop()


@pytest.mark.integration
@pytest.mark.parametrize("flaw", sorted(EXPECTED))
def test_each_flaw_fails_exactly_its_check(flaw: str) -> None:
    probe, result, env, server = _audit((flaw,))
    try:
        failing = _failing(probe)
        for prefix in EXPECTED[flaw]:
            assert any(fid.startswith(prefix) and f.status == Status.failed for fid, f in failing.items()), \
                f"{flaw}: nothing failed under {prefix}: {sorted(failing)}"
        allowed = EXPECTED[flaw] + MAY_ALSO.get(flaw, ())
        assert [fid for fid in failing if not fid.startswith(allowed)] == [], f"{flaw}: unrelated findings failed"
        for f in failing.values():
            assert f.evidence and f.references, f.id
        hit = next(f for fid, f in failing.items() if fid.startswith(EXPECTED[flaw][0]))
        if flaw == "missing-id-500":  # the evidence replays to the same 500 on the server
            assert "999999937" in (hit.evidence[0].request or "") and "replay" in hit.evidence[0].details
            if hit.evidence[0].request.startswith("GET"):
                assert _resend(server, hit).status == 500
        if flaw == "existence-oracle":  # globex sees 403 for acme's record, 404 for an absent one
            assert hit.severity.value == "medium" and "another tenant" in hit.title
        if flaw == "hard-lockout":  # the lock is real on the server: the owner is still refused after the audit
            assert profile_login(server, "lockout").status == 429
            assert "announced 900 s" in hit.title
        if flaw == "cors-any-origin":
            assert "'*'" in hit.title and "Authorization" in (hit.evidence[0].observed or "")
        _assert_secrets_absent(result, env)
    finally:
        server.stop()


@pytest.mark.integration
@pytest.mark.parametrize("flaws", [("body-shape-500", "existence-oracle", "insecure-cookies", "cors-any-origin",
                                    "hard-lockout"), ("missing-id-500",)], ids=lambda g: "+".join(g))
def test_the_flaws_are_found_over_json_rpc(flaws: tuple[str, ...]) -> None:
    probe, result, env, server = _audit(flaws, protocol="jsonrpc",
                                        checks=["robustness", "hardening", "login", "lockout"])
    try:
        failing = _failing(probe)
        for flaw in flaws:
            for prefix in EXPECTED[flaw]:
                assert any(fid.startswith(prefix) and f.status == Status.failed for fid, f in failing.items()), \
                    f"{flaw}: nothing failed under {prefix} over JSON-RPC: {sorted(failing)}"
        allowed = tuple(p for fl in flaws for p in EXPECTED[fl] + MAY_ALSO.get(fl, ()))
        assert [fid for fid in failing if not fid.startswith(allowed)] == []
        # no record of the run tag left, through the JSON-RPC face itself
        target = Target(demo_profile(server))
        try:
            for acct in ("admin", "globex_admin"):
                for model in ("contacts", "accounts", "leads", "opportunities", "cases"):
                    company = "acme" if acct == "admin" else "globex"
                    ex = target.request("POST", "/api/jsonrpc", account=acct, json={
                        "jsonrpc": "2.0", "id": 1, "method": f"{model}.search_read",
                        "params": {"tag": f"crm-audit-{result.run_id}", "limit": 200,
                                   "context": {"company": company}}})
                    assert ex.ok and ex.json()["result"]["total"] == 0, (acct, model, ex.text[:300])
        finally:
            target.close()
        _assert_secrets_absent(result, env)
    finally:
        server.stop()
