"""Access probe: pure rules, then end to end against the demo CRM — clean, and one flaw at a time.

Each demo server is started with exactly one flaw; the audit must fail exactly the findings
that flaw explains and nothing else (zero false positives), leave no tagged record behind,
and keep every secret out of the result.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from crm_audit.demo import DemoServer
from crm_audit.demo_profile import demo_profile
from crm_audit.model import AuditResult, ProbeResult, Status
from crm_audit.plugins import make_plugin_manager
from crm_audit.runner import RunOptions, run_audit
from crm_audit.target import Target
from crm_audit_plugins.access import AccessProbe
from crm_audit_plugins.access.anonymous import has_data
from crm_audit_plugins.access.properties import secret_keys
from crm_audit_plugins.access.tokens import _find_secret, _sign, _verifies

#: what profiles/demo.yaml should hold under plugins.access (used when it does not yet)
DEMO_OPTIONS: dict[str, Any] = {
    "owner_only_actions": {"sales": ["update", "delete"]},
    "register_path": "/api/auth/register",
    "logout_path": "/api/auth/logout",
    "me_path": "/api/me",
    "users_path": "/api/users",
    "audit_log_path": "/api/admin/audit-log",
}
FAILING = (Status.failed, Status.warn, Status.error)

EXPECTED: dict[str, tuple[str, ...]] = {
    "bola": ("access.bola.",),
    "tenant-leak": ("access.tenant_leak.",),
    "no-role-check": ("access.vertical.", "access.bola."),  # readonly deletes; sales deletes sales2's records
    "mass-assignment": ("access.mass_assignment.",),
    "leak-hashes": ("access.exposure.",),
    "unsigned-token": ("access.token.alg_none",),
    "default-secret": ("access.token.default_secret",),
    "no-expiry": ("access.token.no_expiry",),
    "token-after-logout": ("access.token.valid_after_logout",),
    "no-lockout": ("access.login.no_lockout",),
    "user-enum": ("access.login.user_enumeration",),
    "open-registration": ("access.registration.privileged",),
    "cors": ("access.cors.reflected_origin",),
    "stack-traces": ("access.errors.stack_trace",),
    "no-security-headers": ("access.headers.",),
    "verbose-banner": ("access.banner.version",),
}

# --------------------------------------------------------------------------- pure rules


def test_secret_keys_finds_hashes_not_ordinary_fields() -> None:
    user = {"id": 1, "username": "a@b", "password_hash": "scrypt$16384$8$1$x$y", "role": "admin"}
    assert list(secret_keys({"items": [user]})) == ["items[].password_hash"]
    assert list(secret_keys({"hash": "sha256:abc", "token_type": "bearer", "password": ""})) == []
    assert list(secret_keys({"hash": "$2b$12$abcdefghijklmnopqrstuv"})) == ["hash"]
    # the caller's own record may carry its own API key; password material still counts there
    assert list(secret_keys({"api_key": "k-123"}, own=True)) == []
    assert list(secret_keys({"api_key": "k-123"})) == ["api_key"]


def test_has_data() -> None:
    assert has_data({"items": [{"id": 1}], "total": 1})
    assert not has_data({"items": [], "total": 0})
    assert not has_data(None) and not has_data([])


def test_default_secret_found_offline_and_labelled() -> None:
    django_key = "&q1&ftrxho9lrzm$$%6!cplb5ac957-9y@t@17u(3yqqb#9xl%"
    tok = _sign({"typ": "JWT"}, {"id": 1}, django_key, "HS256")
    assert _verifies(tok, django_key, "HS256") and not _verifies(tok, "secret", "HS256")
    label, word = _find_secret(tok, "HS256", []) or ("", "")
    assert word == django_key and django_key not in label and "django-crm" in label
    custom = _sign({"typ": "JWT"}, {"sub": "1"}, "a-profile-specific-leaked-key", "HS512")
    assert _find_secret(custom, "HS512", []) is None
    assert _find_secret(custom, "HS512", ["a-profile-specific-leaked-key"])[0] == "profile wordlist entry #1"


def test_probe_declaration() -> None:
    assert AccessProbe.id == "access" and AccessProbe.writes and AccessProbe.disruptive
    assert AccessProbe.indicators == ("sec.authentication", "sec.login_limit", "sec.access_control",
                                      "sec.hardening", "sec.access_logging")
    assert "access" in make_plugin_manager().probes


# --------------------------------------------------------------------------- end to end


def _audit(flaws: tuple[str, ...], disruptive: bool = True) -> tuple[ProbeResult, AuditResult, dict[str, str]]:
    """Run only the access probe against a fresh demo server; check cleanup before stopping it."""
    with DemoServer(flaws=flaws) as server:
        profile = demo_profile(server)
        options = {**DEMO_OPTIONS, **(profile.plugins.get("access") or {})}
        profile = profile.model_copy(update={"plugins": {**profile.plugins, "access": options}, "hierarchy": "none"})
        result = run_audit(profile, make_plugin_manager(), RunOptions(only=["access"], allow_disruptive=disruptive))
        probe = result.probe("access")
        assert probe is not None
        _assert_no_leftovers(profile, result.run_id)
        return probe, result, dict(server.env)


def _assert_no_leftovers(profile: Any, run_id: str) -> None:
    """No record tagged with the run id survives in either tenant."""
    target = Target(profile)
    try:
        for acct in ("admin", "globex_admin"):
            for res in ("contacts", "accounts", "leads", "opportunities", "cases"):
                ex = target.request("GET", f"/api/{res}", account=acct, params={"tag": f"crm-audit-{run_id}"})
                assert ex.ok and ex.json()["total"] == 0, f"{res} of {acct}'s tenant: audit records left behind"
    finally:
        target.close()


def _failing(probe: ProbeResult) -> list[str]:
    return [f"{f.id} ({f.status.value}): {f.title}" for f in probe.findings if f.status in FAILING]


def _assert_secrets_absent(result: AuditResult, env: dict[str, str]) -> None:
    text = json.dumps(result.model_dump(mode="json"))
    for name, value in env.items():
        assert value not in text, f"{name} leaked into the result"
    assert "eyJ" not in text, "a JWT leaked into the result"


@pytest.mark.integration
def test_clean_demo_has_no_failed_access_finding() -> None:
    probe, result, env = _audit(())
    assert probe.status == "ok" and probe.reason is None, probe.reason
    assert _failing(probe) == []
    ids = {f.id for f in probe.findings}
    for must in ("access.anonymous.contacts", "access.bola.cases", "access.tenant_leak.leads",
                 "access.mass_assignment.contacts", "access.mass_assignment.me", "access.exposure.users",
                 "access.token.alg_none", "access.token.default_secret", "access.token.no_expiry",
                 "access.token.valid_after_logout", "access.login.user_enumeration", "access.login.no_lockout",
                 "access.registration.privileged", "access.cors.reflected_origin", "access.headers.hsts",
                 "access.errors.stack_trace", "access.errors.server_error_on_deny", "access.banner.version",
                 "access.logging.failed_login", "access.logging.create"):
        assert must in ids, must
    passed = {f.id for f in probe.findings if f.status == Status.passed}
    assert "access.login.no_lockout" in passed and "access.logging.failed_login" in passed
    matrix = probe.artifacts["matrix"]
    assert matrix["roles"] == ["admin", "manager", "sales", "readonly"]
    assert matrix["actions"] == ["list", "read", "create", "update", "delete"]
    assert len(matrix["cells"]) == 4 * 5 * 5
    assert {c["status"] for c in matrix["cells"]} == {"pass"} and not any(c["mismatch"] for c in matrix["cells"])
    ro = [c for c in matrix["cells"] if c["role"] == "readonly" and c["action"] == "delete"]
    assert all(c["expected"] == "deny" and c["observed"] == "deny" for c in ro)
    _assert_secrets_absent(result, env)


@pytest.mark.integration
@pytest.mark.parametrize("flaw", sorted(EXPECTED))
def test_each_flaw_reports_exactly_that_flaw(flaw: str) -> None:
    disruptive = flaw != "verbose-banner"  # one run shows the lockout check stays off without permission
    probe, result, env = _audit((flaw,), disruptive=disruptive)
    assert probe.status == "ok", probe.reason
    if flaw == "open-registration":  # the demo has no way to delete users: the probe must say what it left
        assert probe.reason and "left in the CRM: self-registered user crm-audit-" in probe.reason
    else:
        assert probe.reason is None, probe.reason
    prefixes = EXPECTED[flaw]
    failing = [f for f in probe.findings if f.status in FAILING]
    for prefix in prefixes:
        assert any(f.id.startswith(prefix) and f.status == Status.failed for f in failing), \
            f"{flaw}: nothing failed under {prefix}; failing: {_failing(probe)}"
    unrelated = [f"{f.id}: {f.title}" for f in failing if not f.id.startswith(prefixes)]
    assert unrelated == [], f"{flaw}: unrelated findings failed"
    for f in failing:
        assert f.evidence, f"{f.id} has no evidence"
        assert f.references and any(r.startswith("OWASP API") for r in f.references)
    if not disruptive:
        lock = next(f for f in probe.findings if f.id == "access.login.no_lockout")
        assert lock.status == Status.skipped
    _assert_secrets_absent(result, env)
