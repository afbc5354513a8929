"""A third-party adapter package, built and installed in a temporary folder, drives the access probe
against the demo's JSON-RPC face through the Adapter contract alone (no REST internals): every
access check runs — logins, tokens and logout through the auth plugin point, the own-user, user,
registration and log checks through the adapter's named operations — and none is skipped for
want of a REST path (disruptive checks allowed, so only a check that cannot apply may be skipped)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_package import install, pyproject

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "rpc_partner_adapter.py"

RUN = textwrap.dedent("""
    import json, sys
    from crm_audit_demo import DemoServer
    from crm_audit_demo.profile import demo_profile
    from crm_audit.core.plugins import make_plugin_manager
    from crm_audit.core.runner import RunOptions, run_audit

    reg = make_plugin_manager()
    cls = reg.adapters["rpc_partner"]
    with DemoServer(protocol="jsonrpc", flaws=tuple(sys.argv[1:])) as server:
        profile = demo_profile(server)
        old = profile.adapter
        adapter = {"type": "rpc_partner", "endpoint": old["endpoint"], "models": old["models"],
                   "create": old["create"], "update": old["update"]}
        profile = profile.model_copy(update={"adapter": adapter, "hierarchy": "none"})
        result = run_audit(profile, reg, RunOptions(only=["access"], allow_writes=True, allow_disruptive=True))
        hits = [h for h in getattr(server, "hits", [])]
    probe = result.probe("access")
    print(json.dumps({"module": cls.__module__, "bases": [b.__name__ for b in cls.__mro__],
                      "status": probe.status, "reason": probe.reason,
                      "findings": [[f.id, f.status.value, f.hint] for f in probe.findings]}))
""")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The adapter as its own distribution (entry point ``rpc_partner``), pip-installed into a --target folder."""
    base = tmp_path_factory.mktemp("adapter_pkg")
    pkg = base / "pkg"
    pkg.mkdir()
    shutil.copy(SOURCE, pkg / "rpc_partner_adapter.py")
    toml = pyproject("crm-audit-rpc-partner", "1.0.0", entry_point="rpc_partner", module="rpc_partner_adapter")
    (pkg / "pyproject.toml").write_text(toml)
    return install(pkg, base / "site")


def _audit(env: dict[str, str], *flaws: str) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, *flaws], env=env, capture_output=True, text=True, timeout=600,
                         cwd=str(ROOT.parent))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_package_uses_only_the_contract() -> None:
    text = SOURCE.read_text()
    assert "RestAdapter" not in text and "rest_adapter" not in text and "jsonrpc_adapter" not in text
    tree = ast.parse(text)
    # every crm_audit import is from the public contract modules (whatever the import formatting), Adapter among them
    sources = {n.module: {a.name for a in n.names} for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               and (n.module or "").startswith("crm_audit")}
    assert set(sources) <= {"crm_audit.core.adapter", "crm_audit.core.hookspecs", "crm_audit.core.target"}, sources
    assert "Adapter" in sources["crm_audit.core.adapter"]
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import) and any(a.name.startswith("crm_audit")
                                                                             for a in n.names)]


@pytest.mark.integration
def test_access_probe_runs_whole_through_a_third_party_adapter(installed: dict[str, str]) -> None:
    clean = _audit(installed)
    assert clean["module"] == "rpc_partner_adapter" and "RestAdapter" not in clean["bases"]
    assert clean["status"] == "ok", clean["reason"]
    ids = {fid: (status, hint) for fid, status, hint in clean["findings"]}
    # every object-level check ran over JSON-RPC: none skipped for want of an adapter feature or a REST path
    for res in ("contacts", "leads", "accounts", "opportunities", "cases"):
        for fid in (f"access.bola.{res}", f"access.tenant_leak.{res}", f"access.mass_assignment.{res}",
                    f"access.anonymous.{res}"):
            assert ids[fid][0] == "pass", (fid, ids[fid])
        for action in ("list", "read", "create", "update", "delete"):
            assert ids[f"access.vertical.sales.{res}.{action}"][0] == "pass"
    # the checks that once needed REST paths or a REST login run through the contract and the auth plugin point
    for fid in ("access.mass_assignment.me", "access.exposure.me", "access.exposure.users",
                "access.token.signature_not_verified", "access.token.alg_none", "access.token.valid_after_logout",
                "access.login.user_enumeration", "access.login.no_lockout", "access.registration.privileged",
                "access.cors.reflected_origin", "access.headers.x_content_type_options", "access.banner.version",
                "access.errors.stack_trace", "access.http.trace", "access.logging.readable",
                "access.logging.failed_login", "access.logging.create",
                # through the named operations change_password, users.create/delete/deactivate/activate
                "access.token.valid_after_password_change", "access.token.valid_after_deactivation",
                "access.password.storage", "access.password.echoed",
                # through the CRM's own methods the adapter offers by name (system.status, system.listMethods)
                "access.metadata.version", "access.metadata.tenants", "access.metadata.api_description"):
        assert ids[fid][0] == "pass", (fid, ids[fid])
    skipped = {fid: hint for fid, (status, hint) in ids.items() if status == "skipped"}
    # the only skip: expired tokens need the CRM's signing secret (it applies to any protocol)
    assert set(skipped) == {"access.token.expired_accepted"}, skipped
    assert not [fid for fid, (status, _) in ids.items() if status in ("fail", "warn", "error")], \
        "clean demo: no failed access finding"


@pytest.mark.integration
@pytest.mark.parametrize("flaw,prefix", [("bola", "access.bola."), ("tenant-leak", "access.tenant_leak."),
                                         ("mass-assignment", "access.mass_assignment.")])
def test_object_level_flaws_are_found_through_the_package(installed: dict[str, str], flaw: str, prefix: str) -> None:
    found = _audit(installed, flaw)
    failed = [fid for fid, status, _ in found["findings"] if status == "fail"]
    also = CONSEQUENCES.get(flaw, set())
    assert failed and all(f.startswith(prefix) for f in failed if f not in also), failed
    assert also <= set(failed), (also, failed)


#: failures outside a flaw's own prefix that are genuine consequences of that same demo flaw (and must show):
#: mass-assignment also makes the own-user update (users.write_me, the adapter's update_me) honour ``role``,
#: so a readonly user can make itself an admin — a self-escalation the probe confirms with an admin-only call
CONSEQUENCES: dict[str, set[str]] = {"mass-assignment": {"access.self_escalation"}}
