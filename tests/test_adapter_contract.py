"""The adapter contract holds: probes use only Adapter methods, and the REST adapter implements them from the profile."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from crm_audit.core.adapter import Adapter, RawCredentials, classify_http
from crm_audit.core.profile import parse_profile
from crm_audit.core.target import Exchange, Target
from crm_audit.protocols.rest import DenialRule, Pagination, ResourceConfig, RestAdapter, RestConfig

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"


def rest_only_names() -> set[str]:
    """Attributes only the REST adapter (and its config models) has: probes must never use them."""
    names = {n for n, _ in inspect.getmembers(RestAdapter)} | {"config", "resource", "item_path", "openapi_paths",
                                                               "update_body", "_created"}
    for model in (RestConfig, ResourceConfig, Pagination, DenialRule):
        names |= set(model.model_fields)
    contract = {n for n, _ in inspect.getmembers(Adapter)} | {"raw_config", "target"}
    # names that are also ordinary words of other objects the probes use (profile, options, exchanges)
    common = {"type", "path", "create", "update", "resources", "status", "match", "style", "openapi",
              "denials", "outcome"}
    return names - contract - common


def adapter_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, attribute) of every ``<…adapter…>.<name>`` access and every ``list(…, params=…)`` call."""
    hits: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = ast.unparse(node.value)
            if "adapter" in base.split(".")[-1] or base.endswith("adapter"):
                hits.append((node.lineno, node.attr))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "list":
            if "adapter" in ast.unparse(node.func.value) and any(k.arg == "params" for k in node.keywords):
                hits.append((node.lineno, "list(params=)"))
    return hits


def test_no_probe_uses_rest_adapter_internals() -> None:
    """Every attribute a built-in plugin reads off an adapter is part of the Adapter contract."""
    contract = {n for n, _ in inspect.getmembers(Adapter)} | {"raw_config", "target"}
    bad = []
    files = sorted(PLUGINS.rglob("*.py"))
    assert len(files) > 20
    for f in files:
        tree = ast.parse(f.read_text(), filename=str(f))
        for line, attr in adapter_uses(tree):
            if attr not in contract:
                bad.append(f"{f.relative_to(ROOT)}:{line}: adapter.{attr}")
        text = f.read_text()
        for name in ("RestAdapter", "rest_adapter", "openapi_paths", "tag_filter_param", "item_path("):
            if re.search(rf"(?<![A-Za-z_]){re.escape(name)}", text):
                bad.append(f"{f.relative_to(ROOT)}: mentions {name}")
    assert not bad, "probes reach around the Adapter contract:\n" + "\n".join(bad)


def test_the_scanner_sees_a_rest_only_use() -> None:
    """The check above fails on the kind of code it forbids (so it cannot pass by seeing nothing)."""
    code = ("def f(run):\n    rc = run.ctx.adapter.resource('contacts')\n"
            "    run.ctx.adapter.list('c', None, params={'tag': 1})\n    return adapter.config.tag_field\n")
    found = {attr for _, attr in adapter_uses(ast.parse(code))}
    assert {"resource", "list(params=)", "config"} <= found
    assert {"resource", "config"} <= rest_only_names()


def test_every_contract_method_is_typed_and_documented() -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text()
    for name, fn in inspect.getmembers(Adapter, inspect.isfunction):
        if name.startswith("_"):
            continue
        assert inspect.getdoc(fn), f"Adapter.{name} has no docstring"
        assert "return" in fn.__annotations__, f"Adapter.{name} has no return type"
        assert f"`{name}(" in doc, f"Adapter.{name} is not documented in docs/plugins.md"


def _ex(status: int | None, body: bytes = b"", error: str | None = None) -> Exchange:
    return Exchange(method="GET", url="http://crm.test/x", status=status, body=body, error=error)


def _rest(**adapter: object) -> RestAdapter:
    profile = parse_profile("target: {base_url: 'http://crm.test'}\nhierarchy: none\n")
    return RestAdapter({"type": "rest", **adapter}, Target(profile))


def test_http_outcomes() -> None:
    assert classify_http(_ex(200, b"{}")) == "allowed"
    assert [classify_http(_ex(s)) for s in (401, 403, 405)] == ["denied"] * 3
    assert [classify_http(_ex(s)) for s in (404, 410)] == ["not_found"] * 2
    assert [classify_http(_ex(s)) for s in (400, 409, 422, 302)] == ["unknown"] * 4
    assert classify_http(_ex(500)) == "error" and classify_http(_ex(None, error="connection failed")) == "error"


def test_denial_rules_read_200_bodies_and_400_texts() -> None:
    rest = _rest(denials=[{"status": [200], "path": "error", "match": "UserError|AccessError"},
                          {"status": [400], "match": "(?i)not allowed"}])
    assert rest.classify(_ex(200, b'{"error": ["UserError", "You are not allowed"]}')) == "denied"
    assert rest.classify(_ex(200, b'{"error": false, "items": []}')) == "allowed"  # an empty error is no denial
    assert rest.classify(_ex(400, b'{"detail": "Action not allowed for this role"}')) == "denied"
    assert rest.classify(_ex(400, b'{"detail": "email: invalid"}')) == "unknown"
    assert rest.classify(_ex(503, b'{"error": ["UserError"]}')) == "error"  # no rule turns a 5xx into a decision


def test_dotted_field_paths_and_writes() -> None:
    rest = _rest(id_field="id", resources={"contacts": {"path": "/c", "tenant_field": "org.id",
                                                        "owner_field": "created_by.id", "tenant_write_field": "org"}})
    rec = {"id": 7, "org": {"id": 3, "name": "acme"}, "created_by": {"id": 11}, "tags": ["crm-audit-x"]}
    assert rest.field_value("contacts", rec, "tenant") == 3
    assert rest.field_value("contacts", rec, "owner") == 11
    assert rest.field_change("contacts", "tenant", 4) == {"org": 4}
    assert rest.field_change("contacts", "owner", 12) == {"created_by.id": 12}
    assert rest.has_tag("contacts", rec, "crm-audit-x") and not rest.has_tag("contacts", rec, "crm-audit-y")
    assert rest.record_id(rec) == 7


def test_credentials_are_sent_without_account_auth() -> None:
    sent: list[dict] = []

    class T:
        def request(self, method, path, **kw):
            sent.append(kw)
            return _ex(401)

    rest = _rest(resources={"contacts": {"path": "/c"}})
    rest.target = T()  # type: ignore[assignment]
    rest.list("contacts", RawCredentials(headers={"Authorization": "Bearer forged"}))
    rest.list("contacts", None)
    assert sent[0]["auth"] is False and sent[0]["headers"] == {"Authorization": "Bearer forged"}
    assert sent[1]["auth"] is False and "headers" not in sent[1]
