"""Token lifecycle and password storage (access probe, issue 15 item 9) against the demo CRM.

Each flaw switch must fail exactly its check, the clean demo must pass all four, a run without
``allow.disruptive`` must leave them not assessed with what runs them, and a missing operation or
account must be named. After every audit the server itself is asked (never the probe's notes):
the disposable account logs in with its original password and is active, and no user the audit
created is left.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from crm_audit.core.model import AuditResult, NotAssessed, ProbeResult, Status
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.profile import Profile
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile
from crm_audit_plugins.access.common import AccessRun
from crm_audit_plugins.access.lifecycle import DEACTIVATION, PW_CHANGE, operation_args
from crm_audit_plugins.access.options import AccessOptions
from crm_audit_plugins.access.passwords import ECHOED, STORAGE

CHECKS = (PW_CHANGE, DEACTIVATION, STORAGE, ECHOED)
FLAWS: dict[str, tuple[str, ...]] = {
    "token-after-password-change": (PW_CHANGE,),
    "token-after-deactivation": (DEACTIVATION,),
    "plaintext-password": (STORAGE, ECHOED),
}
LIFECYCLE_OPS = ("change_password", "users.create", "users.delete", "users.deactivate", "users.activate")


# --------------------------------------------------------------------------- pure rules


def test_operation_args_fill_templates_and_keep_types() -> None:
    run = AccessRun(ctx=type("Ctx", (), {"tag": "crm-audit-x"})(),  # type: ignore[arg-type]
                    opts=AccessOptions(lifecycle_args={"users.deactivate": {"id": "{id}", "status": "Inactive"},
                                                       "users.create": {"email": "{email}", "username": "{local}",
                                                                        "first_name": "A {tag}"}}))
    assert operation_args(run, "users.deactivate", id=7) == {"id": 7, "status": "Inactive"}
    assert operation_args(run, "users.activate", id=7) == {"id": 7}  # the default template
    assert operation_args(run, "change_password", old="o", new="n") == {"old_password": "o", "new_password": "n"}
    assert operation_args(run, "users.create", email="a@b.example", local="a", password="p") == {
        "email": "a@b.example", "username": "a", "first_name": "A crm-audit-x"}


# --------------------------------------------------------------------------- end to end


def _http(server: DemoServer) -> requests.Session:
    s = requests.Session()
    s.verify = str(server.ca_path) if server.ca_path else True
    s.trust_env = False
    return s


def _server_state(server: DemoServer) -> dict[str, Any]:
    """What the demo itself says: the disposable account's login and active flag, the acme users."""
    s = _http(server)
    login = s.post(f"{server.base_url}/api/auth/login", timeout=10, json={
        "username": "disposable@acme.example", "password": server.env["DEMO_DISPOSABLE_PASSWORD"]})
    admin = s.post(f"{server.base_url}/api/auth/login", timeout=10, json={
        "username": "admin@acme.example", "password": server.env["DEMO_ADMIN_PASSWORD"]}).json()["access_token"]
    users = s.get(f"{server.base_url}/api/users", params={"limit": 200}, timeout=10,
                  headers={"Authorization": f"Bearer {admin}"}).json()
    me = next(u for u in users["items"] if u["username"] == "disposable@acme.example")
    return {"disposable_login": login.status_code, "disposable_active": me["active"], "total": users["total"],
            "users": sorted(u["username"] for u in users["items"])}


def _profile(server: DemoServer, checks: tuple[str, ...] = ("lifecycle", "passwords"),
             operations: dict[str, str] | None = None, accounts: Any = None) -> Profile:
    prof = demo_profile(server)
    access = {**(prof.plugins.get("access") or {}), "checks": list(checks)}
    update: dict[str, Any] = {"plugins": {**prof.plugins, "access": access}, "hierarchy": "none"}
    if operations is not None:
        update["adapter"] = {**prof.adapter, "operations": operations}
    if accounts is not None:
        update["accounts"] = accounts
    return prof.model_copy(update=update)


def _audit(server: DemoServer, prof: Profile, disruptive: bool = True) -> tuple[ProbeResult, AuditResult]:
    result = run_audit(prof, make_plugin_manager(), RunOptions(only=["access"], allow_writes=True,
                                                               allow_disruptive=disruptive))
    probe = result.probe("access")
    assert probe is not None
    return probe, result


def _by_id(probe: ProbeResult) -> dict[str, Any]:
    return {f.id: f for f in probe.findings}


def _assert_restored(server: DemoServer, before: dict[str, Any], result: AuditResult) -> None:
    after = _server_state(server)
    assert after["disposable_login"] == 200, "the disposable account no longer logs in with its own password"
    assert after["disposable_active"] is True, "the disposable account was left deactivated"
    assert after["users"] == before["users"] and after["total"] == before["total"], "a created user was left"
    text = json.dumps(result.model_dump(mode="json"))
    for name, value in server.env.items():
        assert value not in text, f"{name} leaked into the result"
    assert "eyJ" not in text, "a token leaked into the result"


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["rest", "jsonrpc"])
def test_clean_demo_passes_and_is_left_as_it_was(protocol: str) -> None:
    with DemoServer(protocol=protocol) as server:
        before = _server_state(server)
        probe, result = _audit(server, _profile(server))
        found = _by_id(probe)
        assert {fid: found[fid].status for fid in CHECKS} == {fid: Status.passed for fid in CHECKS}, \
            [f"{f.id}: {f.title}" for f in probe.findings]
        assert probe.reason is None and "left_behind" not in probe.artifacts
        assert all(found[fid].evidence for fid in CHECKS)
        _assert_restored(server, before, result)


@pytest.mark.integration
@pytest.mark.parametrize("flaw", sorted(FLAWS))
def test_each_flaw_fails_exactly_its_check(flaw: str) -> None:
    with DemoServer(flaws=(flaw,)) as server:
        before = _server_state(server)
        probe, result = _audit(server, _profile(server))
        found = _by_id(probe)
        failed = sorted(fid for fid in CHECKS if found[fid].status == Status.failed)
        assert failed == sorted(FLAWS[flaw]), [f"{f.id} ({f.status.value}): {f.title}" for f in probe.findings]
        for fid in CHECKS:
            if fid not in FLAWS[flaw]:
                assert found[fid].status == Status.passed, f"{fid}: {found[fid].title}"
        for fid in FLAWS[flaw]:
            f = found[fid]
            assert f.evidence and any(r.startswith("OWASP API") for r in f.references)
        assert probe.reason is None
        _assert_restored(server, before, result)


@pytest.mark.integration
def test_every_flaw_fires_over_jsonrpc() -> None:
    with DemoServer(flaws=tuple(FLAWS), protocol="jsonrpc") as server:
        before = _server_state(server)
        probe, result = _audit(server, _profile(server))
        found = _by_id(probe)
        assert {fid: found[fid].status for fid in CHECKS} == {fid: Status.failed for fid in CHECKS}
        _assert_restored(server, before, result)


@pytest.mark.integration
def test_without_permission_nothing_changes_and_the_flag_is_named() -> None:
    with DemoServer(flaws=tuple(FLAWS)) as server:
        before = _server_state(server)
        probe, result = _audit(server, _profile(server), disruptive=False)
        found = _by_id(probe)
        for fid in CHECKS:
            assert found[fid].status == Status.skipped and found[fid].not_assessed is NotAssessed.safety, fid
            assert found[fid].hint and "--allow-disruptive" in found[fid].hint
        _assert_restored(server, before, result)


@pytest.mark.integration
def test_missing_operations_and_account_are_named() -> None:
    with DemoServer(flaws=tuple(FLAWS)) as server:
        before = _server_state(server)
        prof = demo_profile(server)
        ops = {k: v for k, v in prof.adapter["operations"].items() if k not in LIFECYCLE_OPS}
        probe, _ = _audit(server, _profile(server, operations=ops))
        found = _by_id(probe)
        hints = {fid: found[fid].hint or "" for fid in CHECKS}
        assert all(found[fid].not_assessed is NotAssessed.not_configured for fid in CHECKS)
        assert "'change_password'" in hints[PW_CHANGE]
        assert "'users.deactivate'" in hints[DEACTIVATION] and "'users.activate'" in hints[DEACTIVATION]
        assert "'users.create'" in hints[STORAGE] and "'users.delete'" in hints[STORAGE]
        # the hint teaches the mapping: its example value is not mistaken for a secret and hidden
        assert "adapter.operations.change_password to 'METHOD /path'" in hints[PW_CHANGE], hints[PW_CHANGE]
        assert not any("REDACTED" in h for h in hints.values()), hints

        general = [a for a in prof.accounts if a.purpose != "disposable"]
        probe, result = _audit(server, _profile(server, checks=("lifecycle",), accounts=general))
        found = _by_id(probe)
        for fid in (PW_CHANGE, DEACTIVATION):
            assert found[fid].not_assessed is NotAssessed.needs_account and "purpose: disposable" in found[fid].hint
        _assert_restored(server, before, result)


@pytest.mark.integration
def test_a_change_that_did_not_take_effect_is_not_assessed_never_judged() -> None:
    """An operation that answers 200 but changes nothing (here: mapped to the wrong request) proves nothing:
    both checks are not assessed with the reason, and the account is as it was."""
    with DemoServer(flaws=tuple(FLAWS)) as server:
        before = _server_state(server)
        ops = {**demo_profile(server).adapter["operations"], "change_password": "GET /api/me",
               "users.deactivate": "POST /api/users/{id}/activate"}
        probe, result = _audit(server, _profile(server, checks=("lifecycle",), operations=ops))
        found = _by_id(probe)
        for fid in (PW_CHANGE, DEACTIVATION):
            f = found[fid]
            assert f.status == Status.error and f.not_assessed is NotAssessed.request_failed, (fid, f.title)
            assert "did not take effect" in f.title and f.evidence
        assert "left_behind" not in probe.artifacts
        _assert_restored(server, before, result)


def test_a_crm_without_passwords_leaves_both_not_assessed_with_the_reason(tmp_path: Any) -> None:
    """Like django-crm 1.x (bearer tokens and one-time codes): nothing is sent, both say why."""
    from crm_audit.core.probe import ProbeContext
    from crm_audit.core.profile import parse_profile
    from crm_audit.core.target import Target
    from crm_audit_plugins.access.lifecycle import check_lifecycle
    from crm_audit_plugins.access.passwords import check_passwords

    prof = parse_profile(
        "name: passwordless\ntarget: {base_url: 'http://127.0.0.1:9'}\n"
        "accounts:\n  - {name: admin, role: admin, auth: {method: bearer, token: '${PAT}'}}\n"
        "adapter: {type: rest, operations: {users.create: POST /api/users, users.delete: 'DELETE /api/users/{id}'}}\n",
        source="inline", env={"PAT": "t0k3n-value-123"})
    target = Target(prof)
    try:
        ctx = ProbeContext(run_id="r1", profile=prof, target=target, adapter=None, options=AccessOptions(),
                           allow_writes=True, allow_disruptive=True, workdir=tmp_path)
        run = AccessRun(ctx=ctx, opts=AccessOptions())
        check_lifecycle(run)
        check_passwords(run)
        assert target.requests_made == 0
    finally:
        target.close()
    found = {f.id: f for f in run.findings}
    assert set(found) == set(CHECKS)
    for f in found.values():
        assert f.status == Status.skipped and f.not_assessed is NotAssessed.needs_account, f.id
        assert "password" in f.title and f.hint
