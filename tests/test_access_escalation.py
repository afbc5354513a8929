"""Self-escalation, tenant/role context injection and refused-but-persisted writes, against the demo CRM.

Each demo flaw switch must fail its check by id (over REST and, where the flaw lives there, over
JSON-RPC), the clean demo must stay silent, and after every run the demo's own database must
show what the audit did and undid: no record carrying the run tag, every user's role and tenant
as before the audit — read from the demo's SQLite file, not from the probe's counters.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from crm_audit.core.adapter import Discovery, Operation
from crm_audit.core.model import Finding, NotAssessed, ProbeResult, Status
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit.core.target import Exchange
from crm_audit_demo import DemoServer
from crm_audit_demo.db import DB_FILENAME
from crm_audit_demo.profile import demo_profile
from crm_audit_plugins.access.escalation import described_fields

pytestmark = pytest.mark.integration

CHECKS = ["vertical", "objects", "properties", "anonymous", "injection", "escalation"]
RESOURCES = ("contacts", "accounts", "leads", "opportunities", "cases")
FAILING = (Status.failed, Status.warn, Status.error)
MINE = ("access.self_escalation", "access.tenant_injection", "access.role_injection", "access.persisted_on_deny")


def _db(server: DemoServer) -> sqlite3.Connection:
    assert server.data_dir is not None
    return sqlite3.connect(f"file:{Path(server.data_dir, DB_FILENAME)}?mode=ro", uri=True)


def _users(server: DemoServer) -> dict[str, tuple[str, str]]:
    """username → (role, tenant) as the demo's database holds them."""
    with _db(server) as db:
        return {u: (r, t) for u, r, t in db.execute("SELECT username, role, tenant_id FROM users")}


def _row(server: DemoServer, username: str) -> dict[str, Any]:
    """The user's stored row, every column but ``updated_at``."""
    with _db(server) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM users WHERE username = ?", [username]).fetchone()
    return {k: row[k] for k in row.keys() if k != "updated_at"}


def _updated(server: DemoServer, username: str) -> str:
    with _db(server) as db:
        return db.execute("SELECT updated_at FROM users WHERE username = ?", [username]).fetchone()[0]


def _tagged(server: DemoServer, tag: str) -> dict[str, int]:
    """resource → rows whose tags hold ``tag`` (every tenant)."""
    out = {}
    with _db(server) as db:
        for res in RESOURCES:
            n = db.execute(f"SELECT COUNT(*) FROM {res} WHERE tags LIKE ?", [f'%"{tag}"%']).fetchone()[0]
            if n:
                out[res] = n
    return out


def _existed_and_gone(server: DemoServer, res: str, rid: int) -> bool:
    """The row ``rid`` was inserted once (the table's sequence passed it) and is no longer there."""
    with _db(server) as db:
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", [res]).fetchone()
        row = db.execute(f"SELECT id FROM {res} WHERE id = ?", [rid]).fetchone()
    return seq is not None and seq[0] >= rid and row is None


def _audit(server: DemoServer, checks: list[str] = CHECKS, disruptive: bool = True,
           accounts: Any = None) -> tuple[ProbeResult, dict[str, Finding]]:
    """Only the access probe's escalation-related steps; the database checked before and after."""
    profile = demo_profile(server)
    access = {**(profile.plugins.get("access") or {}), "checks": checks}
    update: dict[str, Any] = {"plugins": {**profile.plugins, "access": access}, "hierarchy": "none"}
    if accounts is not None:
        update["accounts"] = [a for a in profile.accounts if accounts(a)]
    profile = profile.model_copy(update=update)
    users = _users(server)
    result = run_audit(profile, make_plugin_manager(),
                       RunOptions(only=["access"], allow_writes=True, allow_disruptive=disruptive))
    probe = result.probe("access")
    assert probe is not None and probe.status == "ok", probe and probe.reason
    assert probe.reason is None, probe.reason  # nothing left behind
    assert _tagged(server, f"crm-audit-{result.run_id}") == {}, "records of the run left in the demo"
    assert _users(server) == users, "a user's role or tenant was not restored"
    return probe, {f.id: f for f in probe.findings}


def _failing(findings: dict[str, Finding]) -> list[str]:
    return [f"{fid} ({f.status.value}): {f.title}" for fid, f in findings.items() if f.status in FAILING]


@pytest.mark.parametrize("protocol", ["rest", "jsonrpc"])
def test_clean_demo_is_silent(protocol: str) -> None:
    with DemoServer(protocol=protocol) as server:
        _, found = _audit(server)
    assert _failing(found) == []
    for fid in ("access.self_escalation", "access.tenant_injection", "access.role_injection",
                *(f"access.persisted_on_deny.{r}" for r in RESOURCES)):
        assert found[fid].status == Status.passed, (fid, found[fid].title)
    assert "update_me" in found["access.self_escalation"].title
    if protocol == "rest":  # the OpenAPI document describes PUT/PATCH /api/users/{user_id}
        assert "PUT /api/users/{user_id}" in found["access.self_escalation"].title
        assert "not tried" not in found["access.self_escalation"].title  # the described role is shown
        assert "query" in found["access.tenant_injection"].title
    else:  # the JSON-RPC adapter sends each account's context: that channel is tried too
        assert "context" in found["access.tenant_injection"].title
        assert "users.update" in found["access.self_escalation"].title  # users.write on the own id


def test_self_escalation_is_found_and_undone() -> None:
    with DemoServer(flaws=("self-escalation",)) as server:
        before = _updated(server, "readonly@acme.example")
        _, found = _audit(server)
        after = _updated(server, "readonly@acme.example")
    f = found["access.self_escalation"]
    assert f.status == Status.failed and f.severity.value == "critical", f.title
    assert any("role → admin" in (e.observed or "") and "users.list now allowed" in (e.observed or "")
               for e in f.evidence), [e.observed for e in f.evidence]
    assert after != before  # the demo's own row was written (escalated, then restored: role/tenant equal)
    assert [x for x in _failing(found) if not x.startswith("access.self_escalation")] == []


@pytest.mark.parametrize("protocol", ["rest", "jsonrpc"])
def test_hidden_privilege_field_is_found_and_undone(protocol: str) -> None:
    """The own record does not show its role, yet the user update takes one: the role is found in the
    description (REST) or the admin's view of the user (JSON-RPC), judged as the admin sees it, and restored."""
    with DemoServer(protocol=protocol, flaws=("hidden-privilege",)) as server:
        before = _row(server, "readonly@acme.example")
        updated = _updated(server, "readonly@acme.example")
        _, found = _audit(server, checks=["escalation"])
        after = _row(server, "readonly@acme.example")
        assert _updated(server, "readonly@acme.example") != updated  # it was written (escalated, then restored)
    assert after == before
    f = found["access.self_escalation"]
    assert f.status == Status.failed and f.severity.value == "critical", f.title
    where = "declared by PUT /api/users/{user_id}" if protocol == "rest" else "shown to admin"
    hits = [e.observed or "" for e in f.evidence]
    assert any(f"role → admin (hidden from its own record, {where})" in o and "users.list now allowed" in o
               for o in hits), hits
    if protocol == "jsonrpc":
        assert any(o.startswith("users.update: ") for o in hits), hits
    assert _failing(found) == [f"access.self_escalation (fail): {f.title}"]


def test_described_fields_follow_refs_and_skip_read_only() -> None:
    """Request-body properties of a described user update: OpenAPI 3 ($ref, allOf, a cycle) and Swagger 2."""

    def found(doc: dict[str, Any]) -> Discovery:
        ex = Exchange(method="GET", url="http://crm.test/openapi.json", status=200,
                      body=json.dumps(doc).encode())
        return Discovery(operations=[], source="/openapi.json", exchange=ex)

    patch = Operation(name="PATCH /api/users/{id}", method="PATCH", path="/api/users/{id}", params=("id",))
    oas3 = {"paths": {"/users/{id}": {"patch": {"requestBody": {"$ref": "#/components/requestBodies/U"}}}},
            "servers": [], "basePath": "/api",
            "components": {"requestBodies": {"U": {"content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/User"}}}}},
                           "schemas": {"User": {"allOf": [{"$ref": "#/components/schemas/Base"},
                                                          {"properties": {"is_admin": {"type": "boolean"},
                                                                          "id": {"readOnly": True}}}]},
                                       "Base": {"properties": {"first_name": {"type": "string"},
                                                               "loop": {"$ref": "#/components/schemas/Loop"}}},
                                       "Loop": {"$ref": "#/components/schemas/Loop"}}}}
    assert described_fields(found(oas3), [patch]) == {"first_name": patch.name, "loop": patch.name,
                                                      "is_admin": patch.name}
    swagger2 = {"basePath": "/api", "paths": {"/users/{id}": {"patch": {"parameters": [
        {"in": "path", "name": "id"}, {"in": "body", "name": "body", "schema": {"$ref": "#/definitions/U"}}]}}},
        "definitions": {"U": {"properties": {"groups": {"type": "array"}, "tenant_id": {"type": "string"}}}}}
    assert list(described_fields(found(swagger2), [patch])) == ["groups", "tenant_id"]
    assert described_fields(Discovery(), [patch]) == {}


@pytest.mark.parametrize("protocol,flaw", [("rest", "tenant-header"), ("jsonrpc", "tenant-header"),
                                           ("jsonrpc", "tenant-context")])
def test_tenant_injection_is_found(protocol: str, flaw: str) -> None:
    with DemoServer(protocol=protocol, flaws=(flaw,)) as server:
        _, found = _audit(server)
        f = found["access.tenant_injection"]
        assert f.status == Status.failed and f.severity.value == "critical", f.title
        ids = {(m.group(1), int(m.group(2))) for e in f.evidence
               for m in [re.search(r"'s (\w+)/(\d+) \(", e.observed or "")] if m}
        assert ids and all(_existed_and_gone(server, res, rid) for res, rid in ids), ids  # a real canary, removed
    channel = "context" if flaw == "tenant-context" else "headers"
    assert any(f"with {channel}:" in (e.request or "") for e in f.evidence)
    assert [x for x in _failing(found) if not x.startswith("access.tenant_injection")] == []


@pytest.mark.parametrize("protocol", ["rest", "jsonrpc"])
def test_refused_writes_that_persist_are_found_and_cleaned(protocol: str) -> None:
    with DemoServer(protocol=protocol, flaws=("persist-on-deny",)) as server:
        _, found = _audit(server)
        stored = [(m.group(1), int(m.group(2))) for fid, f in found.items()
                  if fid.startswith("access.persisted_on_deny.") for e in f.evidence
                  for m in [re.search(r"yet (\w+)/(\d+) was stored", e.observed or "")] if m]
        assert {res for res, _ in stored} == set(RESOURCES), stored
        assert all(_existed_and_gone(server, res, rid) for res, rid in stored)  # stored by the refusal, then removed
    for res in RESOURCES:
        f = found[f"access.persisted_on_deny.{res}"]
        assert f.status == Status.failed, f.title
        assert f.severity.value == "critical"  # the refused create into another tenant was stored too
        assert any("yet the record changed" in (e.observed or "") for e in f.evidence)
    assert [x for x in _failing(found) if not x.startswith("access.persisted_on_deny.")] == []


def test_self_escalation_needs_permission_for_disruptive_checks() -> None:
    with DemoServer() as server:
        _, found = _audit(server, checks=["escalation"], disruptive=False)
    f = found["access.self_escalation"]
    assert f.status == Status.skipped and f.not_assessed is NotAssessed.safety
    assert f.hint and "--allow-disruptive" in f.hint


def test_one_tenant_leaves_tenant_injection_not_assessed() -> None:
    with DemoServer() as server:
        _, found = _audit(server, checks=["injection"], accounts=lambda a: a.tenant == "acme")
    f = found["access.tenant_injection"]
    assert f.status == Status.skipped and f.not_assessed is NotAssessed.needs_account, f.title
    assert f.hint and "second tenant" in f.hint
    assert found["access.role_injection"].status == Status.passed
