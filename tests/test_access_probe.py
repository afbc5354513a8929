"""Access probe: pure rules, then end to end against the demo CRM — clean, and one flaw at a time.

Each demo server is started with exactly one flaw; the audit must fail exactly the findings
that flaw explains and nothing else (zero false positives), leave no tagged record behind,
and keep every secret out of the result. A target that stops answering after login must
leave every access check not assessed (never a pass), and a run without permission for
disruptive checks must say which checks it left out and what would run them.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
import requests

from crm_audit.core.model import AuditResult, NotAssessed, ProbeResult, Status
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit.core.target import Exchange, Target
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile
from crm_audit_plugins.access import AccessProbe
from crm_audit_plugins.access.anonymous import has_data
from crm_audit_plugins.access.common import app_silent, unjudged, verdict
from crm_audit_plugins.access.properties import secret_keys
from crm_audit_plugins.access.tokens import _find_secret, _sign, _verifies

#: what profiles/demo.yaml should hold under plugins.access (used when it does not yet); the own-user,
#: user, registration and log operations come from its adapter.operations, logout from auth.logout
DEMO_OPTIONS: dict[str, Any] = {
    "owner_only_actions": {"sales": ["update", "delete"]},
}
FAILING = (Status.failed, Status.warn, Status.error)

EXPECTED: dict[str, tuple[str, ...]] = {
    "bola": ("access.bola.",),
    "tenant-leak": ("access.tenant_leak.",),
    "no-role-check": ("access.vertical.", "access.bola."),  # readonly deletes; sales deletes sales2's records
    "mass-assignment": ("access.mass_assignment.", "access.self_escalation"),  # PATCH /api/me takes role too
    "leak-hashes": ("access.exposure.",),
    "unsigned-token": ("access.token.alg_none",),
    "default-secret": ("access.token.default_secret",),
    "no-expiry": ("access.token.no_expiry",),
    "token-after-logout": ("access.token.valid_after_logout",),
    "no-lockout": ("access.login.no_lockout",),
    "user-enum": ("access.login.user_enumeration",),
    "open-registration": ("access.registration.privileged",),
    "cors": ("access.cors.reflected_origin", "access.cors.any_origin"),  # a reflected Origin is any origin
    "stack-traces": ("access.errors.stack_trace", "access.errors.server_error_on_malformed_id"),
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


def _ex(status: int | None, error: str | None = None, failure: NotAssessed | None = None, body: bytes = b"") -> Exchange:
    return Exchange(method="GET", url="http://127.0.0.1/api/contacts", status=status, error=error, failure=failure,
                    body=body)


def test_only_real_answers_are_judged() -> None:
    """Denials are 401/403/404/405/410; no answer, 5xx and anything else is not assessed, with its reason."""
    for status in (401, 403, 404, 405, 410):
        assert verdict(_ex(status)) == "deny" and unjudged(_ex(status)) is None
    assert verdict(_ex(200)) == "allow" and unjudged(_ex(200)) is None
    assert unjudged(_ex(None, "connection failed: reset")) is NotAssessed.request_failed
    assert unjudged(_ex(None, "timed out after 1 s", NotAssessed.timed_out)) is NotAssessed.timed_out
    for status in (500, 502, 302, 400, 422, 429):
        assert unjudged(_ex(status)) is NotAssessed.request_failed, status
    assert unjudged(None) is NotAssessed.request_failed
    # checks that read error pages: the application's own 500 is evidence, a gateway's 502 is not
    assert app_silent(_ex(500)) is None and app_silent(_ex(501)) is None
    assert app_silent(_ex(502)) is NotAssessed.request_failed
    assert app_silent(_ex(None, "timed out", NotAssessed.timed_out)) is NotAssessed.timed_out


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
    assert probe.reason is None, probe.reason  # open-registration too: users.delete removes the registered user
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
        assert lock.status == Status.skipped and lock.not_assessed is NotAssessed.safety
        assert lock.hint and "--allow-disruptive" in lock.hint
    for f in probe.findings:  # nothing untested reads as a pass; everything untested says why and what runs it
        assert (f.not_assessed is None) == f.assessed, f.id
        if f.status == Status.skipped:
            assert f.hint, f"{f.id}: skipped without a hint"
    _assert_secrets_absent(result, env)


# --------------------------------------------------------------------------- evidence has three states


def test_non_disruptive_run_skips_lockout_and_registration_with_the_flag_that_runs_them() -> None:
    """Without --allow-disruptive the lockout and registration checks do not run, say so, and touch nothing."""
    with DemoServer(flaws=("open-registration",)) as server:
        profile = demo_profile(server)
        options = {**DEMO_OPTIONS, **(profile.plugins.get("access") or {}),
                   "checks": ["login", "lockout", "registration"]}
        # without users.delete a registered user could not be removed: registration then needs --allow-disruptive
        ops = {k: v for k, v in profile.adapter.get("operations", {}).items() if k != "users.delete"}
        profile = profile.model_copy(update={"plugins": {**profile.plugins, "access": options}, "hierarchy": "none",
                                             "adapter": {**profile.adapter, "operations": ops}})
        result = run_audit(profile, make_plugin_manager(),
                           RunOptions(only=["access"], allow_writes=True, allow_disruptive=False))
        probe = result.probe("access")
        assert probe is not None and probe.status == "ok", probe and probe.reason
        ids = {f.id: f for f in probe.findings}
        for fid in ("access.login.no_lockout", "access.registration.privileged"):
            f = ids[fid]
            assert f.status == Status.skipped and f.not_assessed is NotAssessed.safety, (fid, f.status, f.not_assessed)
            assert f.hint and "--allow-disruptive" in f.hint, (fid, f.hint)
            assert not f.assessed
        assert not [f.id for f in probe.findings if f.status == Status.skipped and not (f.not_assessed and f.hint)]
        # on the server: nobody registered (the flaw is on, so a registration would have worked), nobody locked
        target = Target(profile)
        try:
            users = target.request("GET", "/api/users", account="admin", params={"limit": 500}).json()
            assert not [u for u in users["items"] if "crm-audit-" in str(u.get("username") or u.get("email"))]
            lock = profile.account("lockout")
            ex = target.request("POST", "/api/auth/login", auth=False, json={
                "username": lock.auth.username, "password": lock.auth.password.get_secret_value()})
            assert ex.status == 200, "the lockout account was locked although disruptive checks were off"
        finally:
            target.close()


@pytest.mark.integration
def test_parts_that_cannot_run_are_reported_with_what_would_run_them() -> None:
    """One tenant only, and no tenant field on leads: the tenant parts say so instead of vanishing."""
    with DemoServer(flaws=()) as server:
        profile = demo_profile(server)
        adapter = dict(profile.adapter)
        adapter["resources"] = {**adapter["resources"], "leads": {**adapter["resources"]["leads"], "tenant_field": None}}
        options = {**DEMO_OPTIONS, **(profile.plugins.get("access") or {}), "checks": ["objects", "properties"],
                   "resources": ["contacts", "leads"]}
        profile = profile.model_copy(update={
            "accounts": [a for a in profile.accounts if a.tenant != "globex"], "adapter": adapter,
            "plugins": {**profile.plugins, "access": options}, "hierarchy": "none"})
        result = run_audit(profile, make_plugin_manager(), RunOptions(only=["access"], allow_writes=True))
        probe = result.probe("access")
        assert probe is not None and probe.status == "ok", probe and probe.reason
        _assert_no_leftovers(profile.model_copy(update={"accounts": demo_profile(server).accounts}), result.run_id)
    ids = {f.id: f for f in probe.findings}
    # the owner part ran and holds; the tenant part did not run, and says why
    for res in ("contacts", "leads"):
        assert ids[f"access.mass_assignment.{res}"].status == Status.passed, ids[f"access.mass_assignment.{res}"].title
        assert ids[f"access.bola.{res}"].status == Status.passed
        cross = ids[f"access.bola.{res}.cross_tenant"]
        assert cross.status == Status.skipped and cross.not_assessed is NotAssessed.needs_account
        assert "tenant other than acme" in (cross.hint or "")
    tenant = ids["access.mass_assignment.contacts.tenant"]
    assert tenant.status == Status.skipped and tenant.not_assessed is NotAssessed.needs_account
    assert "tenant other than acme" in (tenant.hint or "") and tenant.indicator == "sec.access_control"
    no_field = ids["access.mass_assignment.leads.tenant"]
    assert no_field.status == Status.skipped and no_field.not_assessed is NotAssessed.not_configured
    assert "adapter.resources.leads.tenant_field" in (no_field.hint or "")
    assert ids["access.tenant_leak.leads"].status == Status.skipped  # no tenant field, no second tenant
    assert ids["access.tenant_leak.contacts"].status == Status.passed  # own tenant_field: rows of others would show
    assert "access.mass_assignment.me.tenant" in ids and ids["access.mass_assignment.me"].status == Status.passed


class FaultTarget:
    """A CRM that lets every account log in once, then resets (or answers 502 to) every connection.

    It answers /api/health and each username's first login with the right password with a
    JWT (the audit's preflight logins); anything else
    — API calls, further logins, registrations — gets ``mode``: "reset" (TCP RST, no answer),
    "502" (a gateway error) or "stall" (no answer within the client's timeout). It counts on
    its side what it served and what it refused to answer.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.passwords: dict[str, str] = {}  # username -> password: the first right one logs in
        self.secret = secrets.token_hex(32)
        self.logged_in: set[str] = set()
        self.served: list[str] = []
        self.faulted: list[str] = []
        self.lock = threading.Lock()
        self.stop_stalls = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            reset = False

            def log_message(self, *args: object) -> None:
                pass

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except ValueError:  # the flush after a deliberately reset connection
                    if not self.reset:
                        raise

            def _any(self) -> None:
                path = self.path.split("?")[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if path == "/api/health" and self.command == "GET":
                    return self._send(200, {"status": "ok"}, path)
                if path == "/api/auth/login" and self.command == "POST":
                    sent = json.loads(body or b"{}") or {}
                    user = str(sent.get("username", ""))
                    with outer.lock:
                        first = user not in outer.logged_in
                        outer.logged_in.add(user)
                    if first and outer.passwords.get(user) == sent.get("password"):
                        now = int(time.time())
                        tok = jwt.encode({"sub": user, "iat": now, "exp": now + 3600}, outer.secret, algorithm="HS256")
                        return self._send(200, {"access_token": tok, "token_type": "bearer"}, path)
                self._fault(path)

            def _send(self, status: int, payload: object, path: str) -> None:
                data = json.dumps(payload).encode()
                with outer.lock:
                    outer.served.append(f"{self.command} {path}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _fault(self, path: str) -> None:
                with outer.lock:
                    outer.faulted.append(f"{self.command} {path}")
                if outer.mode == "502":
                    data = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                    self.send_response(502)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if outer.mode == "stall":
                    outer.stop_stalls.wait(5)
                # reset: close with SO_LINGER 0, so the client gets a TCP RST instead of an answer
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.reset = self.close_connection = True
                self.rfile.close()
                self.wfile.close()
                self.connection.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_stalls.set()
        self.httpd.shutdown()
        self.httpd.server_close()


#: checks whose deciding request the fault target never answers
UNANSWERED = ("access.anonymous.contacts", "access.vertical.sales.contacts.list", "access.vertical.readonly.contacts.list",
              "access.vertical.readonly.contacts.delete", "access.bola.contacts", "access.tenant_leak.contacts",
              "access.mass_assignment.contacts", "access.mass_assignment.me", "access.exposure.users",
              "access.exposure.me", "access.token.jwt", "access.login.user_enumeration", "access.login.no_lockout",
              "access.registration.privileged", "access.hardening", "access.logging.readable")


def _fault_audit(mode: str, timeout_s: float = 10, retries: int = 0,
                 **access_options: Any) -> tuple[ProbeResult, FaultTarget]:
    """The demo profile (every check, writes and disruptive allowed) against a FaultTarget.

    Retries are off unless asked for: a retried request that still gets no answer is judged
    the same, only later.
    """
    with FaultTarget(mode) as fault:
        # plain HTTP; a CA bundle is named only because the demo profile requires a non-empty one
        stand_in = SimpleNamespace(base_url=fault.base_url, ca_path=requests.certs.where(),
                                   env={f"DEMO_{k}": secrets.token_urlsafe(12) for k in (
                                       "ADMIN_PASSWORD", "MANAGER_PASSWORD", "SALES_PASSWORD", "SALES2_PASSWORD",
                                       "READONLY_PASSWORD", "GLOBEX_ADMIN_PASSWORD", "GLOBEX_SALES_PASSWORD",
                                       "LOCKOUT_PASSWORD", "DISPOSABLE_PASSWORD", "API_KEY")})
        profile = demo_profile(stand_in)
        options = {**DEMO_OPTIONS, **(profile.plugins.get("access") or {}), **access_options}
        adapter = dict(profile.adapter)
        adapter["operations"] = {**adapter.get("operations", {}), "users.delete": "DELETE /api/users/{id}"}
        profile = profile.model_copy(update={
            "plugins": {**profile.plugins, "access": options}, "hierarchy": "none", "adapter": adapter,
            "target": profile.target.model_copy(update={"timeout_s": timeout_s, "retries": retries})})
        fault.passwords = {a.auth.username: a.auth.password.get_secret_value() for a in profile.accounts
                           if a.auth.method == "login" and a.auth.username and a.auth.password}
        result = run_audit(profile, make_plugin_manager(),
                           RunOptions(only=["access"], allow_writes=True, allow_disruptive=True))
        probe = result.probe("access")
        assert probe is not None
        return probe, fault


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["reset", "502"])
def test_a_target_that_fails_after_login_never_yields_an_access_pass(mode: str) -> None:
    """Issue 14: a failure of the audit itself must not read as a pass (nor as a denial)."""
    probe, fault = _fault_audit(mode)
    # on the server: the probe did send its checks, and none of them got an answer
    assert fault.served and all(s in ("GET /api/health", "POST /api/auth/login") for s in fault.served), fault.served
    assert len(fault.faulted) >= 50, len(fault.faulted)
    for sent in ("GET /api/contacts", "POST /api/contacts", "GET /api/me", "GET /api/users",
                 "POST /api/auth/login", "POST /api/auth/register", "GET /api/admin/audit-log"):
        assert any(f.startswith(sent) for f in fault.faulted), sent
    assert probe.status == "ok", probe.reason
    passed = [f"{f.id}: {f.title}" for f in probe.findings if f.status == Status.passed]
    assert passed == [], f"{mode}: access checks passed without an answer"
    ids = {f.id: f for f in probe.findings}
    for fid in UNANSWERED:
        f = ids.get(fid)
        assert f is not None, f"{mode}: {fid} missing"
        assert f.status == Status.error and f.not_assessed is NotAssessed.request_failed, \
            (fid, f.status, f.not_assessed, f.title)
        assert not f.assessed and "not assessed" in f.title
    for f in probe.findings:
        if f.status == Status.error:
            assert f.not_assessed is not None and (f.evidence or f.id == "access.anonymous.openapi"), f.id
    # denials were never seen: a 502 on a deny path is still its own finding, a reset is not a denial
    deny = ids["access.errors.server_error_on_deny"]
    assert deny.status == (Status.failed if mode == "502" else Status.error), deny.status
    assert not [f.id for f in probe.findings if f.status in (Status.failed, Status.warn)
                and f.id != "access.errors.server_error_on_deny"]


@pytest.mark.integration
def test_a_target_that_stalls_after_login_is_timed_out_not_passed() -> None:
    probe, fault = _fault_audit("stall", timeout_s=0.25, checks=["anonymous", "tokens", "hardening"],
                                resources=["contacts"])
    assert fault.faulted
    assert not [f.id for f in probe.findings if f.status == Status.passed]
    ids = {f.id: f for f in probe.findings}
    for fid in ("access.anonymous.contacts", "access.token.jwt", "access.hardening"):
        assert ids[fid].status == Status.error and ids[fid].not_assessed is NotAssessed.timed_out, \
            (fid, ids[fid].status, ids[fid].not_assessed)
