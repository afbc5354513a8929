"""Attack-surface discovery, excessive data exposure, unbounded collections, unauthenticated metadata.

Pure rules first; then the access probe's surface checks against the demo CRM over both faces
(REST and JSON-RPC): clean, every one of these checks passes; with the ``settings-leak``,
``no-pagination`` and ``public-metadata`` switches (they touch different checks, so one server
holds all three) each fires by its check id, on both faces alike, nothing else fails, and no
secret the server handed out reaches the result. What the server does is confirmed with
requests of the test's own, not from the probe's counters.
"""

from __future__ import annotations

from typing import Any

import pytest

from crm_audit.core.adapter import Operation
from crm_audit.core.model import AuditResult, ProbeResult, Severity, Status
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.runner import RunOptions, make_adapter, run_audit
from crm_audit.core.target import Target
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile
from crm_audit_plugins.access.answers import collection_stem, main_records, records_of
from crm_audit_plugins.access.collections import arrays, main_arrays, paged
from crm_audit_plugins.access.data_exposure import leaks, mask, mask_email, secret_of
from crm_audit_plugins.access.metadata import internals, tenant_lists, versions

FLAWS = ("settings-leak", "no-pagination", "public-metadata")
#: flaw -> the check ids (as finding-id prefixes) it must fail
EXPECTED: dict[str, tuple[str, ...]] = {
    "settings-leak": ("access.data_exposure.secrets.", "access.data_exposure.user_emails"),
    "no-pagination": ("access.collections.page_size_ignored.",),
    "public-metadata": ("access.metadata.version.", "access.metadata.tenants."),
}
OURS = ("access.surface.", "access.data_exposure.", "access.collections.", "access.metadata.")
CHECKS = ["surface", "properties", "data_exposure", "collections", "metadata"]
FAILING = (Status.failed, Status.warn, Status.error)
PROFILE = {"rest": "demo.yaml", "jsonrpc": "demo-jsonrpc.yaml"}

# --------------------------------------------------------------------------- pure rules


def test_secrets_by_name_and_by_value_shape() -> None:
    assert secret_of("api_key", "ck_live_0123456789abcdef") == "credential"
    assert secret_of("apikey", "a8f5f167f44f4964e6c998dee827110c") == "credential"
    assert secret_of("note", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop") == "token"
    assert secret_of("whatever", "pbkdf2_sha256$600000$abc$def") == "password_hash"
    assert secret_of("x", "$2b$12$abcdefghijklmnopqrstuv") == "password_hash"
    assert secret_of("sessionid", "q8w7e6r5t4y3") == "session"
    assert secret_of("signing_key", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo") == "credential"
    # ordinary fields, masked values and checksums under neutral names stay quiet
    for key, value in (("token_type", "bearer"), ("api_key_hint", "…abcd"), ("api_key", "********"),
                       ("sha256", "a" * 64), ("email", "someone@example.com"), ("title", "password reset"),
                       ("token_expires_at", "2024-01-01T00:00:00Z"), ("has_api_key", True),
                       ("token", "%customer_name%"), ("token", "{{contact.first_name}}")):
        assert secret_of(key, value) is None, key


def test_leaks_report_paths_and_never_the_value() -> None:
    others = {"boss@acme.example", "cfo@acme.example"}
    data = {"items": [{"id": 1, "api_key": "ck_live_0123456789abcdef", "created_by": {"email": "boss@acme.example"}}],
            "users": [{"email": "Boss@acme.example"}, {"email": "cfo@acme.example"}, {"email": "me@acme.example"}]}
    found = leaks(data, other_emails=others, reported=set())
    # the user list is a leak; the creator nested in a shared record is not
    assert {(f.path, f.kind) for f in found} == {("items[].api_key", "credential"), ("users[].email", "email")}
    assert all("0123456789abcdef" not in f.shown and "boss@" not in f.shown for f in found)
    assert mask("ck_live_0123456789abcdef") == "ck_l… (24 chars)" and mask_email("boss@acme.example") == "b***@acme.example"
    # one other user's address is not a list of users; a field already reported elsewhere is left to that check
    assert leaks({"users": [{"email": "boss@acme.example"}]}, other_emails=others, reported=set()) == []
    assert [f.kind for f in leaks(data, other_emails=set(), reported={"api_key"})] == []


def test_records_and_arrays_of_list_answers() -> None:
    assert [r["id"] for r in main_records({"total": 2, "results": [{"id": 1}, {"id": 2}]})] == [1, 2]
    assert [r["id"] for r in main_records({"contact_obj_list": [{"id": 3}], "countries": [["US", "USA"]]})] == [3]
    assert arrays({"contacts": [{"id": 1}, {"id": 2}], "leads": [], "meta": {"teams": [{"id": 3}]}, "tags": ["a", "b"],
                   "series": [{"bucket": "2024-01-01", "count": 0}] * 31}) == {"contacts": 2, "leads": 0, "meta.teams": 1}


def test_a_collections_own_records_are_told_from_lists_of_choices() -> None:
    tasks = Operation(name="GET /api/tasks/", method="GET", path="/api/tasks/", safe=True)
    answer = {"tasks": [], "users": [{"id": 1}, {"id": 2}], "contacts_list": [{"id": 7}]}
    assert collection_stem(tasks) == "task" and records_of(tasks, answer) == []  # no tasks: no ids to fill
    settings = Operation(name="settings.search_read", safe=True)
    assert records_of(settings, {"records": [{"id": 1}], "users": [{"id": 5}, {"id": 6}]}) == [{"id": 1}]
    leads = Operation(name="leads.list", resource="leads", action="list", safe=True)
    assert records_of(leads, {"open_leads": {"open_leads": [{"id": 3}]}, "users": [{}, {}]}) == [{"id": 3}]
    assert main_arrays(tasks, {"tasks": 0, "users": 2}) == {"tasks": 0}
    dashboard = Operation(name="GET /api/dashboard/", method="GET", path="/api/dashboard/", safe=True)
    assert main_arrays(dashboard, {"contacts": 7, "leads": 5}) == {"contacts": 7, "leads": 5}


def test_an_answer_says_whether_it_is_a_page() -> None:
    assert paged({"items": [], "total": 0, "limit": 1}) and paged({"documents_active": {"next": None, "x": []}})
    assert not paged({"contacts_count": 7, "contacts": [{}, {}]}) and not paged([{"id": 1}])
    assert not paged({"count": 0, "series": [], "unanswered_leads": {"count": 3, "oldest_since": "…"}})


def test_metadata_rules() -> None:
    assert versions({"status": "ok", "version": "crm 1.2.3", "db": {"engine": "PostgreSQL 15.4"}}) == ["version", "db.engine"]
    assert versions({"status": "ok", "api_version": "v1"}) == []
    assert tenant_lists({"tenants": ["acme", "globex"], "companies": []}) == ["tenants"]
    assert internals('{"detail": "relation \\"crm_contact\\" does not exist"}')
    assert internals("AccessError: ir.rule 'own leads' forbids this") is not None
    assert internals('{"detail": "Authentication credentials were not provided."}') is None


# --------------------------------------------------------------------------- against the demo


def _audit(server: DemoServer, face: str) -> AuditResult:
    profile = demo_profile(server, PROFILE[face])
    access = {**(profile.plugins.get("access") or {}), "checks": CHECKS}
    profile = profile.model_copy(update={"plugins": {**profile.plugins, "access": access}, "hierarchy": "none"})
    return run_audit(profile, make_plugin_manager(), RunOptions(only=["access"], allow_writes=True))


def _probe(result: AuditResult) -> ProbeResult:
    probe = result.probe("access")
    assert probe is not None and probe.status == "ok", probe and probe.reason
    return probe


def _ours(probe: ProbeResult) -> dict[str, Any]:
    return {f.id: f for f in probe.findings if f.id.startswith(OURS)}


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], tuple[AuditResult, dict[str, Any]]]:
    """(face, clean|flawed) -> (result, what the test saw on the server itself)."""
    out: dict[tuple[str, str], tuple[AuditResult, dict[str, Any]]] = {}
    for face in ("rest", "jsonrpc"):
        for kind, flaws in (("clean", ()), ("flawed", FLAWS)):
            with DemoServer(protocol=face, flaws=flaws) as server:
                result = _audit(server, face)
                out[(face, kind)] = (result, _observe(server, face))
    return out


def _observe(server: DemoServer, face: str) -> dict[str, Any]:
    """What the server hands out, read by the test through the profile's own adapter (not the probe)."""
    profile = demo_profile(server, PROFILE[face])
    target = Target(profile)
    try:
        adapter = make_adapter(make_plugin_manager(), profile, target)
        assert adapter is not None
        settings, dashboard, status = (("settings.search_read", "dashboard.search_read", "system.status")
                                       if face == "jsonrpc" else
                                       ("GET /api/settings/integrations", "GET /api/dashboard", "GET /api/status"))
        as_sales, ex = adapter.call(settings, {}, "sales")
        keys = [i["api_key"] for i in main_records(as_sales)] if adapter.classify(ex) == "allowed" else []
        one, _ = adapter.call(dashboard, {"limit": 1}, "admin")
        public, pex = adapter.call(status, None, None)
        return {"sales_settings": adapter.classify(ex), "keys": keys, "dashboard_one": len(main_records(one)),
                "status": public if adapter.classify(pex) == "allowed" else None}
    finally:
        target.close()


@pytest.mark.integration
def test_clean_demo_passes_every_surface_check(runs) -> None:
    for face in ("rest", "jsonrpc"):
        result, seen = runs[(face, "clean")]
        assert seen["sales_settings"] == "denied" and seen["dashboard_one"] == 1 and seen["status"] == {"status": "ok"}
        ours = _ours(_probe(result))
        assert [fid for fid, f in ours.items() if f.status in FAILING] == [], face
        for fid in ("access.surface.discovered", "access.data_exposure.secrets", "access.data_exposure.user_emails",
                    "access.collections.page_size_ignored", "access.metadata.version", "access.metadata.tenants",
                    "access.metadata.errors", "access.metadata.api_description"):
            assert ours[fid].status == Status.passed, (face, fid, ours[fid].title)


@pytest.mark.integration
def test_discovery_finds_what_the_profile_does_not_name(runs) -> None:
    for face in ("rest", "jsonrpc"):
        result, _ = runs[(face, "clean")]
        surface = _probe(result).artifacts["surface"]
        names = " ".join(surface["collections"])
        assert "settings" in names and "dashboard" in names, (face, names)  # admin-only in the clean demo
        settings = next(n for n in surface["collections"] if "settings" in n)
        assert surface["reach"]["admin"][settings] == "allowed" and surface["reach"]["sales"][settings] == "denied"
        assert surface["reach"]["(anonymous)"][settings] == "denied"
        assert any(surface["sample_ids"].get(i) for i in surface["items"] if "settings" in i), face
        assert not any(o["name"].startswith(("POST", "PUT", "PATCH", "DELETE")) for o in surface["operations"]
                       if o["name"] in surface["collections"] + surface["items"])


@pytest.mark.integration
def test_each_flaw_fires_its_check_on_both_faces(runs) -> None:
    fired: dict[str, set[str]] = {}
    for face in ("rest", "jsonrpc"):
        result, seen = runs[(face, "flawed")]
        probe = _probe(result)
        assert seen["sales_settings"] == "allowed" and seen["keys"] and seen["dashboard_one"] > 1
        assert "tenants" in (seen["status"] or {})
        failing = {f.id: f for f in probe.findings if f.status in FAILING}
        prefixes = tuple(p for flaw in FLAWS for p in EXPECTED[flaw])
        for flaw in FLAWS:
            for prefix in EXPECTED[flaw]:
                assert any(fid.startswith(prefix) for fid in failing), (face, flaw, prefix, sorted(failing))
        assert [fid for fid in failing if not fid.startswith(prefixes)] == [], face
        secrets = [f for fid, f in failing.items() if fid.startswith("access.data_exposure.secrets.")]
        assert all(f.severity == Severity.critical and f.evidence for f in secrets)
        text = result.model_dump_json()
        for key in seen["keys"]:  # the leaked keys themselves never reach the result
            assert key not in text and key[8:24] not in text
        fired[face] = {p for p in prefixes if any(fid.startswith(p) for fid in failing)}
    assert fired["rest"] == fired["jsonrpc"]
