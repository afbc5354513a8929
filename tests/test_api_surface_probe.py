"""api_surface probe: all checks pass on the demo CRM; a bare API without paging or OpenAPI fails them."""

from __future__ import annotations

from local_http import LocalServer, json_route

from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.profile import parse_profile
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile


def test_demo_offers_every_module_and_a_good_api() -> None:
    with DemoServer() as server:
        res = run_audit(demo_profile(server), make_plugin_manager(), RunOptions(only=["api_surface"]))
    probe = res.probe("api_surface")
    assert probe.status == "ok", probe.reason
    assert [f.id for f in probe.findings if f.status.value != "pass"] == []
    assert {m.indicator: m.value for m in probe.measurements} == {"func.modules": 1.0, "func.api_surface": 1.0}


def test_bare_api_is_judged_on_what_it_lacks() -> None:
    rows = [{"id": i, "name": f"c{i}"} for i in range(1, 6)]
    routes = {"/": json_route({}), "/contacts": json_route({"items": rows}),  # ignores limit/offset
              "/contacts/crm-audit-no-such-path": lambda h: (404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>")}
    with LocalServer(routes) as srv:
        profile = parse_profile(f"""
target: {{base_url: '{srv.base_url}'}}
adapter: {{type: rest, openapi: /openapi.json, resources: {{contacts: {{path: /contacts}}, leads: {{path: /leads}}}}}}
hierarchy: none
""")
        res = run_audit(profile, make_plugin_manager(), RunOptions(only=["api_surface"]))
    probe = res.probe("api_surface")
    failed = {f.id for f in probe.findings if f.status.value == "fail"}
    assert failed == {"api_surface.modules", "api_surface.openapi", "api_surface.pagination_limit",
                      "api_surface.pagination_offset", "api_surface.json_errors"}
    values = {m.indicator: m for m in probe.measurements}
    assert values["func.modules"].value == 0.2 and values["func.modules"].details["present"] == ["contacts"]
    assert values["func.api_surface"].value == 0.0


def test_server_errors_are_not_assessed_never_passed() -> None:
    """A module that answers 500 is neither present nor missing, and no check resting on it passes."""
    down = json_route({"detail": "boom"}, status=500)
    routes = {"/": json_route({}), "/contacts": down, "/contacts/crm-audit-no-such-path": down}
    with LocalServer(routes) as srv:
        profile = parse_profile(f"""
target: {{base_url: '{srv.base_url}'}}
adapter: {{type: rest, resources: {{contacts: {{path: /contacts}}}}}}
hierarchy: none
plugins: {{api_surface: {{required_modules: [contacts], missing_path: /contacts/crm-audit-no-such-path}}}}
""")
        res = run_audit(profile, make_plugin_manager(), RunOptions(only=["api_surface"]))
        hits = list(srv.hits)
    probe = res.probe("api_surface")
    assert any(h.startswith("GET /contacts") for h in hits)
    found = {f.id: f for f in probe.findings}
    assert found["api_surface.modules"].status.value == "error"
    assert found["api_surface.modules"].not_assessed.value == "request_failed" and found["api_surface.modules"].hint
    assert found["api_surface.json_errors"].status.value == "error"
    assert not [f.id for f in probe.findings if f.status.value == "pass" and f.id != "api_surface.openapi"]
    assert "func.modules" not in {m.indicator for m in probe.measurements}
