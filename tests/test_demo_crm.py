"""Integration tests of the embedded demo CRM, against real server processes (DemoServer).

Four servers run for the module: a normal one and three whose flaws do not interfere with
each other. Every flaw check runs against every server, so each switch is shown to change
exactly its own behaviour and nothing else the checks can see.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import socket
import sqlite3
import ssl
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_audit_demo import DEMO_USERS, FLAWS, SEEDED_DEFECTS, DemoServer

pytestmark = pytest.mark.integration

GROUPS: dict[str, tuple[str, ...]] = {
    "normal": (),
    "access": ("bola", "tenant-leak", "no-role-check", "mass-assignment", "leak-hashes", "no-hsts"),
    "tokens": ("unsigned-token", "default-secret", "no-expiry", "token-after-logout", "no-lockout",
               "user-enum", "open-registration", "token-after-password-change", "token-after-deactivation",
               "plaintext-password"),
    "http": ("cors", "stack-traces", "no-security-headers", "verbose-banner", "weak-tls", "backup-public",
             "restore-loses-table", "stale-backups", "plain-backup"),
    "robustness": ("missing-id-500", "body-shape-500", "existence-oracle", "cors-any-origin", "insecure-cookies",
                   "hard-lockout"),
    "surface": ("settings-leak", "no-pagination", "public-metadata", "hidden-privilege"),
    "escalation": ("self-escalation", "tenant-header", "tenant-context", "persist-on-deny"),
}
IMPLIED = {"no-security-headers": {"no-hsts"}}  # no security headers at all includes no HSTS
USERS = {(u.username.split("@")[0] + ("" if u.tenant == "acme" else "_globex")): u for u in DEMO_USERS}
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "content-security-policy",
                    "referrer-policy", "cache-control")


class Api:
    """A small client for one DemoServer: logins cached per user, helpers for records."""

    def __init__(self, server: DemoServer) -> None:
        self.server = server
        self.http = requests.Session()
        # Per request, not session.verify: REQUESTS_CA_BUNDLE in the env would override the session.
        self.verify: str | bool = str(server.ca_path) if server.ca_path else True
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}

    def password(self, user: str) -> str:
        return self.server.env[USERS[user].password_env]

    def login(self, user: str, fresh: bool = False) -> str:
        if fresh or user not in self.tokens:
            r = self.http.post(self.server.base_url + "/api/auth/login", verify=self.verify,
                               json={"username": USERS[user].username, "password": self.password(user)})
            assert r.status_code == 200, r.text
            if fresh:
                return r.json()["access_token"]
            self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    def user_id(self, user: str) -> int:
        if user not in self.ids:
            self.ids[user] = self.req("GET", "/api/me", user).json()["id"]
        return self.ids[user]

    def req(self, method: str, path: str, user: str | None = None, token: str | None = None,
            **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if user == "apikey":
            headers["X-API-Key"] = self.server.env["DEMO_API_KEY"]
        elif user is not None or token is not None:
            headers["Authorization"] = f"Bearer {token or self.login(user)}"  # type: ignore[arg-type]
        return self.http.request(method, self.server.base_url + path, headers=headers, timeout=30,
                                 verify=self.verify, **kwargs)

    def create(self, user: str, resource: str = "contacts", **fields: Any) -> dict[str, Any]:
        body = {"first_name": "Test", "last_name": "Probe", "tags": ["crm-demo-test"], **fields}
        r = self.req("POST", f"/api/{resource}", user, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def drop(self, record: dict[str, Any], resource: str = "contacts") -> None:
        admin = "admin" if record["tenant_id"] == "acme" else "admin_globex"
        self.req("DELETE", f"/api/{resource}/{record['id']}", admin)

    def list_all(self, user: str, resource: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.req("GET", f"/api/{resource}?limit=200&offset={len(items)}", user).json()
            items += page["items"]
            if len(items) >= page["total"] or not page["items"]:
                return items

    def claims(self, user: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        return {"sub": str(self.user_id(user)), "tenant": USERS[user].tenant, "role": USERS[user].role,
                "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, **overrides}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, DemoServer]]:
    """The four module servers, started in parallel."""
    started: dict[str, DemoServer] = {}

    def start(name: str) -> None:
        started[name] = DemoServer(flaws=GROUPS[name]).start()

    try:
        with ThreadPoolExecutor(len(GROUPS)) as pool:
            list(pool.map(start, GROUPS))
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def apis(servers: dict[str, DemoServer]) -> dict[str, Api]:
    return {name: Api(server) for name, server in servers.items()}


@pytest.fixture(scope="module")
def api(apis: dict[str, Api]) -> Api:
    return apis["normal"]


def _same(*observations: bool) -> bool:
    """All observations of one check must agree (flawed everywhere or nowhere)."""
    assert len(set(observations)) == 1, f"inconsistent flaw observations: {observations}"
    return observations[0]


def _forge_none(claims: dict[str, Any]) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}."


def _forge_hs256(claims: dict[str, Any], key: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(claims, key, algorithm="HS256")


def _tls10_handshake(server: DemoServer) -> bool:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(server.ca_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock, \
                ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.version() == "TLSv1"
    except (ssl.SSLError, OSError):
        return False


# -- flaw checks: True when the flawed behaviour is observed ---------------------------------

def check_bola(api: Api) -> bool:
    theirs, foreign = api.create("sales2"), api.create("sales_globex")
    try:
        update = api.req("PATCH", f"/api/contacts/{theirs['id']}", "sales", json={"last_name": "Changed"})
        read = api.req("GET", f"/api/contacts/{foreign['id']}", "sales")
        if update.status_code != 200:
            assert update.status_code == 403
        if read.status_code != 200:
            # another tenant's record answers like an absent one (404) — unless the server runs the separate
            # existence-oracle flaw (the robustness group does), which answers it 403 "not yours" on purpose
            assert read.status_code == (403 if "existence-oracle" in api.server.flaws else 404)
        return _same(update.status_code == 200, read.status_code == 200)
    finally:
        api.drop(theirs), api.drop(foreign)


def check_tenant_leak(api: Api) -> bool:
    tag = f"leak-{uuid.uuid4().hex[:8]}"
    foreign = api.create("sales_globex", tags=[tag])
    try:
        page = api.req("GET", f"/api/contacts?tag={tag}", "admin").json()
        return page["total"] == 1
    finally:
        api.drop(foreign)


def check_no_role_check(api: Api) -> bool:
    record = api.create("sales2")
    r = api.req("DELETE", f"/api/contacts/{record['id']}", "readonly")
    if r.status_code != 204:
        assert r.status_code == 403
        api.drop(record)
    return r.status_code == 204


def check_mass_assignment(api: Api) -> bool:
    record = api.create("sales", owner_id=api.user_id("sales2"), tenant_id="acme")
    api.drop(record)
    me = api.req("PATCH", "/api/me", "sales2", json={"role": "manager", "first_name": "Sara"}).json()
    api.req("PATCH", "/api/me", "sales2", json={"role": "sales"})
    assert me["first_name"] == "Sara"
    return _same(record["owner_id"] == api.user_id("sales2"), me["role"] == "manager")


def check_leak_hashes(api: Api) -> bool:
    me = api.req("GET", "/api/me", "sales").json()
    users = api.req("GET", "/api/users", "admin").json()["items"]
    return _same("password_hash" in me, all("password_hash" in u for u in users))


def check_unsigned_token(api: Api) -> bool:
    r = api.req("GET", "/api/me", token=_forge_none(api.claims("sales")))
    return r.status_code == 200


def check_default_secret(api: Api) -> bool:
    r = api.req("GET", "/api/me", token=_forge_hs256(api.claims("sales"), "secret"))
    return r.status_code == 200


def check_no_expiry(api: Api) -> bool:
    claims = jwt.decode(api.login("readonly", fresh=True), options={"verify_signature": False})
    key = "secret" if "default-secret" in api.server.flaws else api.server.env["DEMO_JWT_SECRET"]
    expired = _forge_hs256(api.claims("readonly", iat=int(time.time()) - 3600, exp=int(time.time()) - 60), key)
    r = api.req("GET", "/api/me", token=expired)
    if r.status_code != 200:
        assert r.status_code == 401 and r.json()["detail"] == "token expired"
    return _same("exp" not in claims, r.status_code == 200)


def check_token_after_logout(api: Api) -> bool:
    token = api.login("readonly", fresh=True)
    assert api.req("POST", "/api/auth/logout", token=token).status_code == 204
    r = api.req("GET", "/api/me", token=token)
    return r.status_code == 200


def check_token_after_password_change(api: Api) -> bool:
    token = api.login("disposable", fresh=True)
    old = api.password("disposable")
    new = old + "-changed"
    assert api.req("POST", "/api/me/password", token=token,
                   json={"old_password": old, "new_password": new}).status_code == 200
    still = api.req("GET", "/api/me", token=token).status_code
    fresh = api.http.post(api.server.base_url + "/api/auth/login", verify=api.verify, timeout=30,
                          json={"username": USERS["disposable"].username, "password": new}).json()["access_token"]
    assert api.req("POST", "/api/me/password", token=fresh,
                   json={"old_password": new, "new_password": old}).status_code == 200  # restored
    return still == 200


def check_token_after_deactivation(api: Api) -> bool:
    token = api.login("disposable", fresh=True)
    uid = api.req("GET", "/api/me", token=token).json()["id"]
    assert api.req("POST", f"/api/users/{uid}/deactivate", "admin").status_code == 200
    still = api.req("GET", "/api/me", token=token).status_code
    assert api.req("POST", f"/api/users/{uid}/activate", "admin").status_code == 200
    return still == 200


def check_plaintext_password(api: Api) -> bool:
    name, password = f"probe-{uuid.uuid4().hex[:8]}@acme.example", "Pw-" + uuid.uuid4().hex
    r = api.req("POST", "/api/users", "admin", json={"username": name, "password": password})
    assert r.status_code == 201, r.text
    login = api.req("POST", "/api/auth/login", json={"username": name, "password": password}).status_code
    assert api.req("DELETE", f"/api/users/{r.json()['id']}", "admin").status_code == 204
    return _same(password in r.text, login == 401)


def check_no_lockout(api: Api) -> bool:
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@acme.example"
    statuses = [api.req("POST", "/api/auth/login", json={"username": ghost, "password": "x"}).status_code
                for _ in range(6)]
    return 429 not in statuses


def check_user_enum(api: Api) -> bool:
    unknown = api.req("POST", "/api/auth/login", json={"username": "nobody@acme.example", "password": "x"})
    wrong = api.req("POST", "/api/auth/login", json={"username": USERS["manager"].username, "password": "x"})
    api.login("manager", fresh=True)  # resets manager's failure count
    return (unknown.status_code, unknown.text) != (wrong.status_code, wrong.text)


def check_open_registration(api: Api) -> bool:
    username, password = f"intruder-{uuid.uuid4().hex[:8]}@evil.example", "Sup3r-secret!"
    r = api.req("POST", "/api/auth/register", json={"username": username, "password": password})
    if r.status_code != 201:
        assert r.status_code == 403 and r.json() == {"detail": "registration disabled"}
        return False
    token = api.req("POST", "/api/auth/login", json={"username": username, "password": password}).json()
    me = api.req("GET", "/api/me", token=token["access_token"]).json()
    assert (me["role"], me["tenant_id"]) == ("admin", "acme")
    return True


def check_cors(api: Api) -> bool:
    origin = "https://evil.example"
    simple = api.req("GET", "/api/health", headers={"Origin": origin})
    preflight = api.req("OPTIONS", "/api/contacts", headers={
        "Origin": origin, "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "authorization"})
    reflected = [r.headers.get("access-control-allow-origin") == origin
                 and r.headers.get("access-control-allow-credentials") == "true" for r in (simple, preflight)]
    if not reflected[0]:  # no CORS at all; a server with the cors-any-origin switch answers the wildcard instead
        wildcard = "*" if "cors-any-origin" in api.server.flaws else None
        assert simple.headers.get("access-control-allow-origin") == wildcard
        assert preflight.headers.get("access-control-allow-origin") == wildcard
    return _same(*reflected)


def check_stack_traces(api: Api) -> bool:
    r = api.req("GET", "/api/contacts/not-a-number", "admin")
    if r.status_code == 500 and "Traceback (most recent call last)" in r.text:
        return True
    assert r.status_code in (404, 422) and "Traceback" not in r.text and r.json()["detail"]
    return False


def check_no_security_headers(api: Api) -> bool:
    headers = api.req("GET", "/api/health").headers
    return _same(*(name not in headers for name in SECURITY_HEADERS))


def check_verbose_banner(api: Api) -> bool:
    headers = api.req("GET", "/api/health").headers
    flawed = _same("server" in headers, "x-powered-by" in headers)
    if flawed:
        assert headers["server"] == "uvicorn" and headers["x-powered-by"].startswith("FastAPI/")
    return flawed


def check_backup_public(api: Api) -> bool:
    listing = api.req("GET", "/api/admin/backups")
    latest = api.req("GET", "/backups/latest.db")
    if listing.status_code != 200:
        assert listing.status_code == 401 and latest.status_code == 404
    return _same(listing.status_code == 200, latest.status_code == 200)


def check_restore_loses_table(api: Api) -> bool:
    before = api.req("GET", "/api/cases?limit=1", "admin").json()["total"]
    backup = api.req("POST", "/api/admin/backups", "admin").json()
    r = api.req("POST", f"/api/admin/backups/{backup['id']}/restore", "admin")
    assert r.status_code == 200 and r.json()["restored"] == backup["id"]
    after = api.req("GET", "/api/cases?limit=1", "admin").json()["total"]
    assert before > 0 and after in (0, before)
    return after == 0


def check_stale_backups(api: Api) -> bool:
    items = api.req("GET", "/api/admin/backups", "admin").json()["items"]
    nightly = next(b for b in items if b["kind"] == "nightly")
    age = datetime.now(UTC) - datetime.fromisoformat(nightly["created_at"].replace("Z", "+00:00"))
    assert age > timedelta(hours=1, minutes=55)
    return age > timedelta(days=1)


def check_plain_backup(api: Api) -> bool:
    meta = api.req("POST", "/api/admin/backups", "admin").json()
    data = api.req("GET", f"/api/admin/backups/{meta['id']}/download", "admin").content
    plain = data.startswith(b"SQLite format 3\x00")
    assert plain or data.startswith(b"CRMAENC1")
    return _same(plain, meta["encrypted"] is False)


def check_weak_tls(api: Api) -> bool:
    return _tls10_handshake(api.server)


def check_no_hsts(api: Api) -> bool:
    return "strict-transport-security" not in api.req("GET", "/api/health").headers


def check_missing_id_500(api: Api) -> bool:
    status = api.req("GET", "/api/cases/999999937", "admin").status_code
    assert status in (404, 500)
    return status == 500


def check_body_shape_500(api: Api) -> bool:
    wrong = [api.req("POST", "/api/contacts", "admin", json=[{"first_name": "A", "last_name": "B"}]).status_code,
             api.req("PATCH", "/api/contacts/1", "admin", json={"first_name": ["not", "text"]}).status_code]
    assert set(wrong) <= {404, 422, 500}, wrong
    return _same(*(s == 500 for s in wrong if s != 404))


def check_existence_oracle(api: Api) -> bool:
    acme_id = api.req("GET", "/api/contacts?limit=1", "admin").json()["items"][0]["id"]
    hidden = api.req("GET", f"/api/contacts/{acme_id}", "admin_globex").status_code
    missing = api.req("GET", "/api/contacts/999999937", "admin_globex").status_code
    return hidden != missing and hidden == 403


def check_cors_any_origin(api: Api) -> bool:
    r = api.req("OPTIONS", "/api/contacts", headers={"Origin": "https://evil.example",
                                                     "Access-Control-Request-Method": "GET",
                                                     "Access-Control-Request-Headers": "authorization"})
    allowed = r.headers.get("access-control-allow-headers", "").lower()
    return r.headers.get("access-control-allow-origin") == "*" and "authorization" in allowed


def check_insecure_cookies(api: Api) -> bool:
    r = api.http.post(api.server.base_url + "/api/auth/login", verify=api.verify, timeout=30,
                      json={"username": USERS["manager"].username, "password": api.password("manager")})
    cookie = r.headers.get("set-cookie", "").lower()
    assert cookie.startswith("sessionid="), cookie[:20]
    return "httponly" not in cookie and "samesite" not in cookie


def check_hard_lockout(api: Api) -> bool:
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@acme.example"  # unknown names are counted like known ones
    answers = [api.req("POST", "/api/auth/login", json={"username": ghost, "password": "x"}) for _ in range(6)]
    locked = [r for r in answers if r.status_code == 429]
    return bool(locked) and int(locked[-1].headers["retry-after"]) > 60


def check_settings_leak(api: Api) -> bool:
    r = api.req("GET", "/api/settings/integrations", "sales")
    assert r.status_code in (200, 403)
    return r.status_code == 200 and "api_key" in r.json()["items"][0] and len(r.json()["users"]) > 1


def check_no_pagination(api: Api) -> bool:
    page = api.req("GET", "/api/dashboard?limit=1", "admin").json()
    return len(page["items"]) > 1 and len(page["items"]) == page["total"]


def check_public_metadata(api: Api) -> bool:
    status = api.req("GET", "/api/status").json()
    assert status["status"] == "ok"
    return "version" in status and status.get("tenants") == ["acme", "globex"]


def check_self_escalation(api: Api) -> bool:
    # judged by the tenant move, this switch's alone (hidden-privilege honours the own role too)
    uid = api.user_id("readonly")
    r = api.req("PUT", f"/api/users/{uid}", "readonly", json={"first_name": "Rita", "role": "admin",
                                                               "tenant_id": "globex"})
    assert r.status_code == 200, r.text
    api.req("PATCH", f"/api/users/{uid}", "readonly", json={"role": "readonly", "tenant_id": "acme"})
    back = api.req("GET", f"/api/users/{uid}", "admin").json()
    assert (back["role"], back["tenant_id"]) == ("readonly", "acme"), back
    return r.json()["tenant_id"] == "globex"


def check_hidden_privilege(api: Api) -> bool:
    uid = api.user_id("readonly")
    shown = "role" in api.req("GET", "/api/me", "readonly").json()
    r = api.req("PATCH", f"/api/users/{uid}", "readonly", json={"role": "manager"})
    assert r.status_code == 200, r.text
    taken = api.req("GET", f"/api/users/{uid}", "admin").json()["role"] == "manager"
    assert api.req("PATCH", f"/api/users/{uid}", "admin", json={"role": "readonly"}).status_code == 200
    return not shown and taken  # self-escalation takes the role too, but the own record shows it


def check_tenant_header(api: Api) -> bool:
    r = api.req("POST", "/api/contacts", "sales", headers={"X-Tenant-ID": "globex"},
                json={"first_name": "Test", "last_name": "Header", "tags": ["crm-demo-test"]})
    assert r.status_code == 201, r.text
    api.drop(r.json())
    return r.json()["tenant_id"] == "globex"


#: one JSON-RPC server with and one without the tenant-context flaw (the switch lives only on that face)
_RPC: dict[bool, DemoServer] = {}


def check_tenant_context(api: Api) -> bool:
    flawed = "tenant-context" in api.server.flaws
    if flawed not in _RPC:
        _RPC[flawed] = DemoServer(protocol="jsonrpc", flaws=("tenant-context",) if flawed else ()).start()
    rpc = Api(_RPC[flawed])

    def call(method: str, params: dict[str, Any], session: str | None = None) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return rpc.http.post(rpc.server.base_url + "/api/jsonrpc", json=body, timeout=30, verify=rpc.verify,
                             headers={"X-Session": session} if session else {}).json()

    login = call("auth.login", {"login": USERS["sales"].username, "password": rpc.password("sales")})["result"]
    session = f"{login['uid']}:{login['session_id']}"
    context = {"company": "acme", "_tenant": "globex"}
    made = call("contacts.create", {"context": context, "values": {"first_name": "Test", "last_name": "Context",
                                                                   "tags": ["crm-demo-test"]}}, session)
    record = made.get("result")
    if record is None:
        assert made["error"]["data"]["name"] == "AccessError", made  # company acme, yet the caller is asked for globex
        return False
    call("contacts.unlink", {"context": context, "id": record["id"]}, session)
    return record["tenant_id"] == "globex"


def check_persist_on_deny(api: Api) -> bool:
    marker = f"crm-demo-test-{uuid.uuid4().hex[:8]}"
    r = api.req("POST", "/api/contacts", "readonly", json={"first_name": "Test", "last_name": "Denied",
                                                            "tags": [marker]})
    assert r.status_code == 403, r.text
    stored = api.req("GET", f"/api/contacts?tag={marker}", "admin").json()["items"]
    for record in stored:
        api.drop(record)
    return bool(stored)


CHECKS: dict[str, Callable[[Api], bool]] = {
    name: globals()[f"check_{name.replace('-', '_')}"] for name in FLAWS
}


def test_groups_cover_every_flaw_once() -> None:
    flat = [f for flaws in GROUPS.values() for f in flaws]
    assert sorted(flat) == sorted(FLAWS) and len(flat) == len(set(flat))


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("flaw", list(FLAWS))
def test_flaw_switch_changes_exactly_its_behaviour(apis: dict[str, Api], group: str, flaw: str) -> None:
    enabled = set(GROUPS[group])
    expected = flaw in enabled or any(flaw in IMPLIED.get(f, ()) for f in enabled)
    assert CHECKS[flaw](apis[group]) is expected


# -- normal behaviour --------------------------------------------------------------------------

def _defects(contacts: list[dict[str, Any]], account_ids: set[int]) -> dict[str, int]:
    import phonenumbers
    from email_validator import EmailNotValidError, validate_email

    def bad_email(text: str) -> bool:  # the libraries themselves, as the defect definitions name them
        try:
            validate_email(text.strip().lower(), check_deliverability=False)
        except EmailNotValidError:
            return True
        return False

    def bad_phone(text: str | None) -> bool:
        try:
            return not phonenumbers.is_valid_number(phonenumbers.parse(text or "", None))
        except phonenumbers.NumberParseException:
            return True

    now = datetime.now(UTC)
    seen = Counter((c["email"] or "").strip().lower() for c in contacts if c["email"])
    return {
        "duplicate": sum(n - 1 for n in seen.values()),
        "missing_email": sum(1 for c in contacts if not c["email"]),
        "malformed_email": sum(1 for c in contacts if c["email"] and bad_email(c["email"])),
        "malformed_phone": sum(1 for c in contacts if bad_phone(c["phone"])),
        "stale": sum(1 for c in contacts
                     if now - datetime.fromisoformat(c["updated_at"].replace("Z", "+00:00")) > timedelta(days=365)),
        "dangling_account": sum(1 for c in contacts if c["account_id"] is not None and c["account_id"] not in account_ids),
    }


@pytest.mark.parametrize("tenant,admin", [("acme", "admin"), ("globex", "admin_globex")])
def test_seeded_defects_match_api(api: Api, tenant: str, admin: str) -> None:
    contacts = api.list_all(admin, "contacts")
    accounts = api.list_all(admin, "accounts")
    assert {c["tenant_id"] for c in contacts} == {tenant}
    assert _defects(contacts, {a["id"] for a in accounts}) == SEEDED_DEFECTS[tenant]


def test_seeded_volumes_and_shapes(api: Api) -> None:
    totals = {r: api.req("GET", f"/api/{r}?limit=1", "admin").json()["total"]
              for r in ("contacts", "accounts", "leads", "opportunities", "cases")}
    assert totals == {"contacts": 2000, "accounts": 300, "leads": 600, "opportunities": 300, "cases": 600}
    cases = api.list_all("admin", "cases")
    assert {c["status"] for c in cases} == {"new", "open", "resolved", "closed"}
    assert any(c["repeat_of"] for c in cases) and any(c["type"] == "complaint" for c in cases)
    assert all(c["resolved_at"] is None for c in cases if c["status"] in ("new", "open"))
    leads = api.list_all("admin", "leads")
    assert all(lead["converted_opportunity_id"] for lead in leads if lead["status"] == "converted")
    page = api.req("GET", "/api/contacts?limit=500&offset=10", "admin").json()
    assert (page["limit"], page["offset"], len(page["items"])) == (200, 10, 200)
    assert [c["id"] for c in page["items"]] == sorted(c["id"] for c in page["items"])
    record = page["items"][0]
    assert {"id", "tenant_id", "owner_id", "created_at", "updated_at", "tags"} <= record.keys()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", record["created_at"])


def test_login_and_token_shape(api: Api) -> None:
    r = api.req("POST", "/api/auth/login", json={"username": USERS["sales"].username, "password": api.password("sales")})
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "bearer" and body["expires_in"] == 900
    claims = jwt.decode(body["access_token"], api.server.env["DEMO_JWT_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == str(api.user_id("sales")) and (claims["tenant"], claims["role"]) == ("acme", "sales")
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    wrong = api.req("POST", "/api/auth/login", json={"username": USERS["sales2"].username, "password": "nope"})
    unknown = api.req("POST", "/api/auth/login", json={"username": "who@acme.example", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid username or password"}
    api.login("sales2", fresh=True)
    assert api.req("POST", "/api/auth/register", json={"username": "x@y.z", "password": "p" * 12}).status_code == 403


def test_unauthenticated_and_bad_tokens_are_401(api: Api) -> None:
    expired = _forge_hs256(api.claims("sales", exp=int(time.time()) - 5), api.server.env["DEMO_JWT_SECRET"])
    for kwargs in ({}, {"token": "garbage"}, {"token": expired}, {"token": _forge_none(api.claims("admin"))},
                   {"headers": {"X-API-Key": "wrong"}}):
        r = api.req("GET", "/api/contacts", **kwargs)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), kwargs
        assert r.json()["detail"]
    assert api.req("GET", "/api/health").json() == {"status": "ok"}
    assert api.req("GET", "/openapi.json").status_code == 200


def test_role_matrix(api: Api) -> None:
    for user in ("admin", "manager", "sales", "readonly", "apikey"):
        assert api.req("GET", "/api/contacts?limit=1", user).status_code == 200, user
    for user in ("readonly", "apikey"):
        assert api.req("POST", "/api/contacts", user, json={"first_name": "a", "last_name": "b"}).status_code == 403
    own, theirs = api.create("sales"), api.create("sales2")
    try:
        assert api.req("PATCH", f"/api/contacts/{own['id']}", "sales", json={"phone": "+1 555 0100"}).status_code == 200
        assert api.req("PUT", f"/api/contacts/{theirs['id']}", "sales",
                       json={"first_name": "x", "last_name": "y"}).status_code == 403
        assert api.req("DELETE", f"/api/contacts/{theirs['id']}", "sales").status_code == 403
        assert api.req("GET", f"/api/contacts/{theirs['id']}", "sales").status_code == 200
        assert api.req("PATCH", f"/api/contacts/{theirs['id']}", "readonly", json={"phone": "1"}).status_code == 403
        assert api.req("DELETE", f"/api/contacts/{theirs['id']}", "readonly").status_code == 403
        changed = api.req("PATCH", f"/api/contacts/{theirs['id']}", "manager",
                          json={"last_name": "Mgr", "owner_id": 1, "tenant_id": "globex", "id": 1}).json()
        assert (changed["last_name"], changed["owner_id"], changed["tenant_id"], changed["id"]) == \
            ("Mgr", api.user_id("sales2"), "acme", theirs["id"])
        assert api.req("DELETE", f"/api/contacts/{own['id']}", "sales").status_code == 204
        assert api.req("GET", f"/api/contacts/{own['id']}", "sales").status_code == 404
    finally:
        api.drop(theirs)
    assert api.req("GET", "/api/users", "admin").status_code == 200
    for user, path in (("manager", "/api/users"), ("sales", "/api/users"), ("manager", "/api/admin/backups"),
                       ("manager", "/api/admin/audit-log"), ("admin_globex", "/api/admin/backups")):
        assert api.req("GET", path, user).status_code == 403, (user, path)
    users = api.req("GET", "/api/users", "admin").json()["items"]
    assert {u["tenant_id"] for u in users} == {"acme"} and not any("password_hash" in u for u in users)
    me = api.req("PATCH", "/api/me", "readonly", json={"last_name": "Reader", "role": "admin", "tenant_id": "globex"})
    assert (me.json()["last_name"], me.json()["role"], me.json()["tenant_id"]) == ("Reader", "readonly", "acme")


def test_validation_errors_are_422_json(api: Api) -> None:
    r = api.req("POST", "/api/cases", "admin", json={"subject": "x", "priority": "whenever"})
    assert r.status_code == 422 and r.json()["detail"]
    r = api.req("POST", "/api/contacts", "admin", json={"first_name": "a", "last_name": "b", "account_id": 999999})
    assert r.status_code == 422


def test_tenant_isolation(api: Api) -> None:
    globex = api.list_all("admin_globex", "contacts")
    assert len(globex) == 400 and {c["tenant_id"] for c in globex} == {"globex"}
    acme_id = api.req("GET", "/api/contacts?limit=1", "admin").json()["items"][0]["id"]
    unknown = api.req("GET", "/api/contacts/987654321", "admin_globex")
    for method in ("GET", "PATCH", "DELETE"):
        r = api.req(method, f"/api/contacts/{acme_id}", "admin_globex", json={"phone": "1"})
        assert r.status_code == 404 and r.json() == unknown.json(), method
    assert api.req("GET", f"/api/users/{api.user_id('admin')}", "admin_globex").status_code == 404


def test_bad_ids_never_leak_tracebacks(api: Api) -> None:
    for raw in ("abc", "1.5", "-1", "0", "99999999999999999999999", "%27%20OR%201=1"):
        r = api.req("GET", f"/api/contacts/{raw}", "admin")
        assert r.status_code in (404, 422) and "Traceback" not in r.text and r.json()["detail"], raw


def test_security_headers(api: Api) -> None:
    for path in ("/api/health", "/api/contacts?limit=1"):
        headers = api.req("GET", path, "admin").headers
        assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
        assert "server" not in headers and "x-powered-by" not in headers


def test_lockout_after_five_failures(api: Api) -> None:
    creds = {"username": USERS["lockout"].username}
    for _ in range(5):
        assert api.req("POST", "/api/auth/login", json={**creds, "password": "wrong"}).status_code == 401
    r = api.req("POST", "/api/auth/login", json={**creds, "password": api.password("lockout")})
    assert r.status_code == 429 and r.json() == {"detail": "too many failed attempts"}
    assert 1 <= int(r.headers["retry-after"]) <= 60
    actions = [e["action"] for e in api.req("GET", "/api/admin/audit-log?limit=50", "admin").json()["items"]]
    assert "login_failed" in actions and "login_locked" in actions


def test_logout_revokes_token(api: Api) -> None:
    token = api.login("manager", fresh=True)
    assert api.req("GET", "/api/me", token=token).status_code == 200
    assert api.req("POST", "/api/auth/logout", token=token).status_code == 204
    r = api.req("GET", "/api/me", token=token)
    assert r.status_code == 401 and r.json()["detail"] == "token revoked"


def test_backup_change_restore_round_trip(api: Api) -> None:
    keep = api.create("admin")
    meta = api.req("POST", "/api/admin/backups", "admin").json()
    assert meta["encrypted"] is True and meta["size"] > 0
    original = api.req("GET", "/api/contacts/1", "admin").json()
    api.req("DELETE", f"/api/contacts/{keep['id']}", "admin")
    api.req("PATCH", "/api/contacts/1", "admin", json={"first_name": "Overwritten"})
    later = api.create("admin")
    r = api.req("POST", f"/api/admin/backups/{meta['id']}/restore", "admin")
    assert r.status_code == 200 and r.json()["restored"] == meta["id"] and r.json()["duration_s"] >= 0
    assert api.req("GET", f"/api/contacts/{keep['id']}", "admin").status_code == 200
    assert api.req("GET", f"/api/contacts/{later['id']}", "admin").status_code == 404
    assert api.req("GET", "/api/contacts/1", "admin").json() == original
    api.drop(keep)
    listing = api.req("GET", "/api/admin/backups", "admin").json()["items"]
    assert [b["created_at"] for b in listing] == sorted((b["created_at"] for b in listing), reverse=True)
    assert any(b["kind"] == "nightly" for b in listing)
    actions = {e["action"] for e in api.req("GET", "/api/admin/audit-log", "admin").json()["items"]}
    assert {"login", "create", "update", "delete", "backup", "restore"} <= actions


def test_backup_bytes_are_encrypted_and_checksummed(api: Api) -> None:
    meta = api.req("POST", "/api/admin/backups", "admin").json()
    r = api.req("GET", f"/api/admin/backups/{meta['id']}/download", "admin")
    data = r.content
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-checksum-sha256"] == meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert data[:8] == b"CRMAENC1" and b"SQLite format 3" not in data[:64]
    plain = AESGCM(bytes.fromhex(api.server.env["DEMO_BACKUP_KEY"])).decrypt(data[8:20], data[20:], None)
    assert plain.startswith(b"SQLite format 3\x00")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "restored.db")
        path.write_bytes(plain)
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("SELECT COUNT(*) FROM contacts WHERE tenant_id = 'acme'").fetchone()[0] == 2000
        finally:
            conn.close()


def test_unhandled_errors_answer_json_or_traceback() -> None:
    from crm_audit_demo.middleware import Errors

    async def boom(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("kaboom")

    async def call(traces: bool) -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        scope = {"type": "http", "method": "GET", "path": "/api/x", "headers": []}
        await Errors(boom, traces=traces)(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]

    assert asyncio.run(call(False)) == (500, b'{"detail": "internal error"}')
    status, body = asyncio.run(call(True))
    assert status == 500 and b"Traceback" in body and b"kaboom" in body


def test_normal_tls_refuses_tls10(api: Api) -> None:
    assert api.server.ca_path and api.server.base_url.startswith("https://127.0.0.1:")
    assert not _tls10_handshake(api.server)


def _listen_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_delay_capacity_loopback_and_stop() -> None:
    with pytest.raises(ValueError, match="bola"):
        DemoServer(flaws=["no-such-flaw"])
    server = DemoServer(delay_ms=300, capacity=2, tls=False)
    started = time.perf_counter()
    server.start()
    startup = time.perf_counter() - started
    try:
        # Wall time depends on what else runs on the machine; the CPU the child needed to get
        # ready does not, and equals the wall time on an idle machine (one busy thread).
        fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        startup_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        assert startup_cpu < 3.0 and startup < 20.0, (startup_cpu, startup)
        assert server.base_url.startswith("http://127.0.0.1:") and server.ca_path is None
        assert _listen_addresses(server.port) == {"0100007F"}  # 127.0.0.1 only
        key = {"X-API-Key": server.env["DEMO_API_KEY"]}

        def timed(_: int) -> float:
            t0 = time.perf_counter()
            r = requests.get(server.base_url + "/api/contacts?limit=1", headers=key, timeout=10)
            assert r.status_code == 200
            return time.perf_counter() - t0

        def health_while_busy() -> float:
            time.sleep(0.1)  # the 4 API requests now hold both slots, 2 more are queued
            t0 = time.perf_counter()
            assert requests.get(server.base_url + "/api/health", timeout=5).status_code == 200
            return time.perf_counter() - t0

        t0 = time.perf_counter()
        with ThreadPoolExecutor(5) as pool:
            health = pool.submit(health_while_busy)
            latencies = list(pool.map(timed, range(4)))
        wall = time.perf_counter() - t0
        assert min(latencies) >= 0.29 and max(latencies) >= 0.58 and wall >= 0.58, (latencies, wall)
        assert health.result() < 0.45  # not queued behind the slots (that would take >= 0.5 s)
        pid, port, data_dir = server.pid, server.port, server.data_dir
    finally:
        server.stop()
    server.stop()  # idempotent
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert data_dir is not None and not data_dir.exists()
