"""The ``backup`` probe against real targets: the demo CRM (HTTP backup API, each backup flaw)
and django-crm on PostgreSQL (pg_dump/pg_restore as local commands), plus its helpers on real
data (SQLite files, gzip, AES-GCM, subprocesses)."""

from __future__ import annotations

import gzip
import json
import os
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_audit.core.model import ProbeResult
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.probe import ProbeContext
from crm_audit.core.profile import Profile, parse_profile
from crm_audit.core.redact import Redactor
from crm_audit.core.runner import RunOptions, new_run_id, run_audit, run_one
from crm_audit.core.target import Target
from crm_audit.protocols.rest import RestAdapter
from crm_audit_demo import DemoServer
from crm_audit_demo.profile import demo_profile
from crm_audit_plugins.backup import DEFAULT_GUESSABLE, BackupOptions, BackupProbe
from crm_audit_plugins.backup.content import analyse, looks_like_backup, verify_checksum
from crm_audit_plugins.backup.drill import BackupAudit
from crm_audit_plugins.backup.freshness import evaluate
from crm_audit_plugins.backup.operations import OUTPUT_MAX_BYTES, OperationSpec, run_command

# The same options as `plugins.backup` in profiles/demo.yaml.
DEMO_BACKUP_YAML = """
account: admin
low_privilege_account: readonly
rpo_target_h: 24
rto_target_s: 900
expected_frequency: daily
canary_resource: contacts
canaries: 5
operations:
  list_backups: {http: {method: GET, path: /api/admin/backups, items_path: items, id_field: id,
                        created_at_field: created_at, checksum_field: sha256}}
  trigger_backup: {http: {method: POST, path: /api/admin/backups, id_field: id, checksum_field: sha256}}
  download_backup: {http: {method: GET, path: "/api/admin/backups/{id}/download", checksum_header: X-Checksum-SHA256}}
  restore: {http: {method: POST, path: "/api/admin/backups/{id}/restore", timeout_s: 300}}
  health: {http: {method: GET, path: /api/health, anonymous: true, timeout_s: 5}}
  delete_backup: {http: {method: DELETE, path: "/api/admin/backups/{id}"}}
"""
DEMO_BACKUP = yaml.safe_load(DEMO_BACKUP_YAML)


def _with_backup(profile: Profile, options: dict[str, Any], writes: bool = True, disruptive: bool = True) -> Profile:
    return profile.model_copy(update={"plugins": {**profile.plugins, "backup": options},
                                      "allow": profile.allow.model_copy(update={"writes": writes,
                                                                                "disruptive": disruptive})})


def _run(profile: Profile, tmp_path: Path, run_id: str | None = None) -> ProbeResult:
    opts = RunOptions(only=["backup"], workdir=tmp_path, run_id=run_id or new_run_id())
    res = run_audit(profile, make_plugin_manager(), opts)
    result = res.probe("backup")
    assert result is not None
    return result


def _failed(result: ProbeResult) -> set[str]:
    return {f.id for f in result.findings if f.status.value == "fail"}


def _measure(result: ProbeResult, indicator: str) -> Any:
    return next(m for m in result.measurements if m.indicator == indicator)


def _backup_ids(profile: Profile) -> set[int]:
    """The backups the demo CRM lists, asked as its operator admin (not through the probe)."""
    target = Target(profile)
    ex = target.request("GET", "/api/admin/backups", account="admin")
    target.close()
    assert ex.status == 200, ex.status
    return {b["id"] for b in ex.json()["items"]}


def _by_id(result: ProbeResult) -> dict[str, Any]:
    return {f.id: f for f in result.findings}


def _tagged_left(profile: Profile, resource: str, tag: str) -> list[Any]:
    """Records carrying the run tag that are still in the CRM (demo: list filtered by tag)."""
    target = Target(profile)
    adapter = RestAdapter(profile.adapter, target)
    items, ex = adapter.list(resource, "admin", limit=200, params={"tag": tag})
    assert ex.ok
    return [i["id"] for i in items]


# --------------------------------------------------------------------------- demo CRM


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    with DemoServer() as server:
        yield server


@pytest.mark.integration
def test_demo_restore_verified_and_clean(demo: DemoServer, tmp_path: Path) -> None:
    profile = _with_backup(demo_profile(demo), DEMO_BACKUP)
    run_id = new_run_id()
    before = _backup_ids(profile)
    result = _run(profile, tmp_path, run_id)
    assert result.status == "ok", result.reason
    assert _failed(result) == set(), [f.title for f in result.findings if f.status.value == "fail"]
    # the backup the drill took is gone from the CRM again, and nothing else was deleted
    assert _backup_ids(profile) == before
    made = result.artifacts["cleanup"]["backups"]
    assert len(made["created"]) == 1 and made["deleted"] == made["created"] and made["left"] == []
    assert made["created"][0] not in before and made["confirmed_by_list"]
    # every check of the probe is reported, and a full drill leaves none of them unassessed
    assert {f.id for f in result.findings} >= {"backup.stale", "backup.exposure.anonymous",
                                                "backup.exposure.low_privilege", "backup.exposure.guessable_path",
                                                "backup.content.plaintext", "backup.integrity.checksum_mismatch",
                                                "backup.restore.failed", "backup.restore.data_lost"}
    assert [f.id for f in result.findings if not f.assessed] == []
    statuses = {f.id: f.status.value for f in result.findings}
    assert statuses["backup.restore.failed"] == "pass" and statuses["backup.restore.data_lost"] == "pass"
    assert statuses["backup.content.plaintext"] == "pass"  # encrypted recognised
    assert statuses["backup.integrity.checksum_mismatch"] == "pass"
    assert _measure(result, "bak.restore_verified").value == 1
    rto, rpo = _measure(result, "bak.rto"), _measure(result, "bak.rpo")
    assert 0 < rto.value < 60 and rto.expected == 900 and rto.difference < 0
    assert 0 < rpo.value < 60 and rpo.expected == 24 * 3600
    assert 1.9 < _measure(result, "bak.freshness").value < 2.5  # the nightly backup is 2 h old
    art = result.artifacts["backup"]
    events = [e["event"] for e in art["timeline"]]
    for e in ("backups_listed", "canaries_created", "backup_completed", "restore_requested", "health_ok",
              "canaries_verified", "cleanup_done"):
        assert e in events
    assert events.index("backups_listed") < events.index("backup_requested")  # freshness before our backup
    assert art["rto_s"] == rto.value and art["rpo_s"] == rpo.value
    can = art["canaries"]
    assert len(can["verified"]) == 5 and can["modified"] and can["deleted"] and can["lost_after_backup"]
    assert result.artifacts["cleanup"]["state"] == "clean"
    assert _tagged_left(profile, "contacts", f"crm-audit-{run_id}") == []


@pytest.mark.integration
def test_demo_without_disruptive_skips_restore(demo: DemoServer, tmp_path: Path) -> None:
    profile = _with_backup(demo_profile(demo), DEMO_BACKUP, writes=True, disruptive=False)
    run_id = new_run_id()
    before = _backup_ids(profile)
    result = _run(profile, tmp_path, run_id)
    statuses = {f.id: f.status.value for f in result.findings}
    assert statuses["backup.restore.failed"] == "skipped"
    assert statuses["backup.content.plaintext"] == "pass"
    assert not [m for m in result.measurements if m.indicator in ("bak.rto", "bak.rpo")]
    # what was not assessed says why and how to assess it, down to RTO and RPO
    found = _by_id(result)
    for fid in ("backup.restore.failed", "backup.restore.data_lost", "backup.rto", "backup.rpo"):
        assert found[fid].status.value == "skipped" and found[fid].not_assessed.value == "safety", fid
        assert found[fid].hint == "run with --allow-disruptive", fid
    assert found["backup.rto"].indicator == "bak.rto" and found["backup.rpo"].indicator == "bak.rpo"
    assert _backup_ids(profile) == before
    assert result.artifacts["cleanup"]["state"] == "clean"
    assert _tagged_left(profile, "contacts", f"crm-audit-{run_id}") == []


@pytest.mark.integration
def test_backups_left_without_delete_operation_are_reported(demo: DemoServer, tmp_path: Path) -> None:
    options = {**DEMO_BACKUP, "operations": {k: v for k, v in DEMO_BACKUP["operations"].items()
                                             if k != "delete_backup"}}
    profile = _with_backup(demo_profile(demo), options, writes=True, disruptive=False)
    before = _backup_ids(profile)
    result = _run(profile, tmp_path)
    new = _backup_ids(profile) - before
    assert len(new) == 1  # the drill's backup really is still on the server ...
    cleanup = result.artifacts["cleanup"]
    assert cleanup["backups_left_in_crm"] == sorted(new) and cleanup["state"] == "backups left in the CRM"
    assert "left in the CRM" in result.reason and "delete_backup" in result.reason  # ... and the result says so
    target = Target(profile)  # tidy the shared demo for the other tests
    assert all(target.request("DELETE", f"/api/admin/backups/{i}", account="admin").status == 204 for i in new)


@pytest.mark.integration
def test_without_writes_everything_not_run_is_listed_with_a_hint(demo: DemoServer, tmp_path: Path) -> None:
    options = {**DEMO_BACKUP, "operations": {k: v for k, v in DEMO_BACKUP["operations"].items()
                                             if k != "download_backup"}}
    profile = _with_backup(demo_profile(demo), options, writes=False, disruptive=False)
    before = _backup_ids(profile)
    found = _by_id(_run(profile, tmp_path))
    assert _backup_ids(profile) == before  # no writes: nothing triggered
    assert found["backup.restore.failed"].not_assessed.value == "safety"
    assert "--allow-writes" in found["backup.restore.failed"].hint
    for fid in ("backup.content.plaintext", "backup.integrity.no_checksum", "backup.integrity.checksum_mismatch"):
        assert found[fid].status.value == "skipped" and found[fid].not_assessed.value == "not_configured", fid
        assert found[fid].hint == "add plugins.backup.operations.download_backup", fid
    assert found["backup.stale"].status.value == "pass"


@pytest.mark.integration
@pytest.mark.parametrize("flaw", [None, "plain-backup"])
def test_download_over_the_byte_cap(flaw: str | None, tmp_path: Path) -> None:
    """max_backup_mb bounds the read: an encrypted file over it is not assessed; plain text in its start still fails."""
    with DemoServer(flaws=[flaw] if flaw else []) as server:
        profile = _with_backup(demo_profile(server), {**DEMO_BACKUP, "max_backup_mb": 0.004}, disruptive=False)
        result = _run(profile, tmp_path)
    found = _by_id(result)
    download = next(e for e in result.artifacts["backup"]["timeline"] if e["event"] == "backup_downloaded")
    assert download["truncated"] and download["size"] == int(0.004 * 1024 * 1024)
    check = found["backup.integrity.checksum_mismatch"]
    assert check.status.value == "error" and check.not_assessed.value == "audit_limit"
    assert check.hint == "raise plugins.backup.max_backup_mb"
    content = found["backup.content.plaintext"]
    if flaw:  # the SQLite header and the canaries are in the first 4 KiB: evidence enough
        assert content.status.value == "fail"
    else:
        assert content.status.value == "error" and content.not_assessed.value == "audit_limit"


def _failing_backend(status: int) -> dict[str, Any]:
    from local_http import json_route

    fail = json_route({"detail": "backend down"}, status=status)
    routes: dict[str, Any] = {p: fail for p in ["/api/admin/backups", *DEFAULT_GUESSABLE]}
    routes["/health"] = json_route({"ok": True})
    return routes


@pytest.mark.parametrize("status", [500, 503])
def test_no_real_answer_is_never_a_pass(status: int, tmp_path: Path) -> None:
    """A backend that answers 5xx everywhere: no exposure check passes, none fails, each says why."""
    from local_http import LocalServer

    with LocalServer(_failing_backend(status)) as srv:
        profile = parse_profile(f"""
target: {{base_url: '{srv.base_url}', health_path: /health}}
accounts:
  - {{name: admin, role: admin, auth: {{method: bearer, token: "${{T_ADMIN}}"}}}}
  - {{name: viewer, role: readonly, auth: {{method: bearer, token: "${{T_VIEW}}"}}}}
adapter: {{type: rest, resources: {{contacts: {{path: /contacts}}}}}}
allow: {{writes: false}}
hierarchy: none
plugins:
  backup:
    operations:
      list_backups: {{http: {{method: GET, path: /api/admin/backups, items_path: items}}}}
""", env={"T_ADMIN": "t-admin-0000", "T_VIEW": "t-view-0000"})
        result = _run(profile, tmp_path)
        hits = list(srv.hits)
    found = _by_id(result)
    assert not [f.id for f in result.findings if f.status.value == "pass"], [f.title for f in result.findings]
    for fid in ("backup.stale", "backup.exposure.anonymous", "backup.exposure.low_privilege",
                "backup.exposure.guessable_path"):
        assert found[fid].status.value == "error" and found[fid].not_assessed.value == "request_failed", fid
        assert found[fid].hint, fid
    assert f"GET {DEFAULT_GUESSABLE[0]}" in hits  # the paths really were asked
    assert not [m for m in result.measurements if m.indicator == "bak.freshness"]


class _FailAfterChanges(BackupAudit):
    """Fault injection: the audit is cancelled and a step raises right after canaries changed."""

    def step_change_canaries(self) -> None:
        super().step_change_canaries()
        self.ctx.cancel.set()
        raise RuntimeError("simulated failure in the middle of the drill")


class _InterruptedProbe(BackupProbe):
    audit_class = _FailAfterChanges


@pytest.mark.integration
def test_interrupted_drill_cleans_up_and_reports_state(demo: DemoServer, tmp_path: Path) -> None:
    profile = _with_backup(demo_profile(demo), DEMO_BACKUP)
    target = Target(profile)
    run_id = new_run_id()
    ctx = ProbeContext(run_id=run_id, profile=profile, target=target, adapter=RestAdapter(profile.adapter, target),
                       options=BackupOptions.model_validate(DEMO_BACKUP), allow_writes=True,
                       allow_disruptive=True, workdir=tmp_path, cancel=threading.Event())
    result, _ = run_one(_InterruptedProbe, ctx)
    assert result.status == "incomplete"
    assert "canaries_changed" in result.reason and "interrupted" in result.reason
    cleanup = result.artifacts["cleanup"]
    assert cleanup["state"] == "clean" and cleanup["canaries"]["left"] == []
    assert len(cleanup["canaries"]["deleted"]) == 5  # 4 live before-backup canaries + 1 added after
    assert "restore_requested" not in [e["event"] for e in result.artifacts["backup"]["timeline"]]
    assert _tagged_left(profile, "contacts", f"crm-audit-{run_id}") == []
    assert not list(tmp_path.glob("crm-audit-backup-*"))


@pytest.mark.integration
@pytest.mark.parametrize("flaw, expected", [
    ("backup-public", {"backup.exposure.anonymous", "backup.exposure.low_privilege", "backup.exposure.guessable_path"}),
    ("restore-loses-table", {"backup.restore.data_lost"}),
    ("stale-backups", {"backup.stale"}),
    ("plain-backup", {"backup.content.plaintext"}),
])
def test_demo_flaw_found(flaw: str, expected: set[str], tmp_path: Path) -> None:
    with DemoServer(flaws=[flaw]) as server:
        profile = _with_backup(demo_profile(server), DEMO_BACKUP)
        result = _run(profile, tmp_path)
    assert _failed(result) == expected, [(f.id, f.title) for f in result.findings if f.status.value == "fail"]
    assert result.artifacts["cleanup"]["state"] == "clean"
    if flaw == "restore-loses-table":
        assert _measure(result, "bak.restore_verified").value == 0
        lost = next(f for f in result.findings if f.id == "backup.restore.data_lost")
        assert "cases" in lost.title and lost.evidence[0].details["counts_after_restore"]["cases"] == 0
    if flaw == "stale-backups":
        assert _measure(result, "bak.freshness").value > 239
    if flaw == "plain-backup":
        plain = next(f for f in result.findings if f.id == "backup.content.plaintext")
        assert plain.evidence[0].details["format"] == "sqlite" and plain.evidence[0].details["canaries_found"] >= 5


# --------------------------------------------------------------------------- django-crm on PostgreSQL


@pytest.fixture(scope="module")
def djcrm(crm: Any) -> Any:
    """django-crm on PostgreSQL (the shared `crm` fixture of tests/conftest.py)."""
    return crm


def _django_profile(crm: Any, restore_cmd: str) -> Profile:
    text = f"""
name: django-crm
target: {{base_url: "{crm.base_url}", timeout_s: 30, health_path: /api/auth/login/}}
accounts:
  - {{name: admin, role: ADMIN, auth: {{method: login, url: /api/auth/login/, username: admin1@example.com,
      password: "${{DJANGO_CRM_ADMIN1_PASSWORD}}", body: {{email: "{{username}}", password: "{{password}}"}},
      token_path: token, scheme: JWT}}}}
  - {{name: user1, role: USER, auth: {{method: login, url: /api/auth/login/, username: user1@example.com,
      password: "${{DJANGO_CRM_USER1_PASSWORD}}", body: {{email: "{{username}}", password: "{{password}}"}},
      token_path: token, scheme: JWT}}}}
adapter:
  type: rest
  id_field: id
  total_path: null
  tag_field: null
  tag_filter_param: null
  pagination: {{style: limit_offset}}
  resources:
    contacts:
      path: /api/contacts/
      item_path: "/api/contacts/{{id}}/"
      list_items_path: contact_obj_list
      create: {{first_name: "A{{n}}-{{tag}}", last_name: Canary, email: "{{tag}}-{{n}}@audit.example"}}
      update_method: PUT
    cases:
      path: /api/cases/
      item_path: "/api/cases/{{id}}/"
      list_items_path: cases
allow: {{writes: true, disruptive: true}}
hierarchy: none
plugins:
  backup:
    account: admin
    canaries: 5
    volatile_fields: [updated_at, created_on_arrow]
    canary_update: {{first_name: "Changed-{{id}}-{{tag}}", last_name: "{{contact_obj.last_name}}",
                     email: "{{contact_obj.email}}"}}
    guessable_paths: [/backup.sql, /db.sqlite3]
    operations:
      trigger_backup: {{command: "{crm.pg_dump_cmd('{backup_path}')}", timeout_s: 120,
                        env: {{PGPASSWORD: "${{DJANGO_CRM_PGPASSWORD}}"}}}}
      restore: {{command: "{restore_cmd}", timeout_s: 120, env: {{PGPASSWORD: "${{DJANGO_CRM_PGPASSWORD}}"}}}}
      health: {{http: {{method: GET, path: "/api/contacts/?limit=1", timeout_s: 10}}}}
"""
    env = {**crm.env, "DJANGO_CRM_PGPASSWORD": crm.env["PGPASSWORD"]}
    return parse_profile(text, source="test:django-crm", env=env)


def _django_contacts_with(crm: Any, profile: Profile, tag: str) -> list[Any]:
    target = Target(profile)
    adapter = RestAdapter(profile.adapter, target)
    return [adapter.record_id(i) for i in adapter.iterate("contacts", "admin", max_records=2000) if tag in json.dumps(i)]


@pytest.mark.integration
def test_django_crm_pg_restore_verified(djcrm: Any, tmp_path: Path) -> None:
    profile = _django_profile(djcrm, djcrm.pg_restore_cmd("{backup_path}"))
    run_id = new_run_id()
    result = _run(profile, tmp_path, run_id)
    assert result.status == "ok", result.reason
    statuses = {f.id: f.status.value for f in result.findings}
    assert statuses["backup.restore.failed"] == "pass", result.findings
    assert statuses["backup.restore.data_lost"] == "pass"
    assert _measure(result, "bak.restore_verified").value == 1
    assert _measure(result, "bak.rto").value > 0 and _measure(result, "bak.rpo").value > 0
    # pg_dump's custom format is readable without a key: canaries found after inflating its zlib data
    plain = next(f for f in result.findings if f.id == "backup.content.plaintext")
    assert plain.status.value == "fail" and plain.evidence[0].details["format"] == "pg_custom"
    assert plain.evidence[0].details["canaries_found"] >= 1
    # the database password reached pg_dump only through env: never in argv, evidence or artifacts
    dumped = result.model_dump_json()
    assert djcrm.env["PGPASSWORD"] not in dumped
    assert result.artifacts["cleanup"]["state"] == "clean"
    assert _django_contacts_with(djcrm, profile, f"crm-audit-{run_id}") == []


@pytest.mark.integration
@pytest.mark.parametrize("broken", ["false", "wrong-db"])
def test_django_crm_broken_restore_caught(djcrm: Any, broken: str, tmp_path: Path) -> None:
    if broken == "wrong-db":
        name = f"crm_wrong_{secrets.token_hex(3)}"
        djcrm.postgres.create_database(name, djcrm.db.user)
        cmd = djcrm.pg_restore_cmd("{backup_path}", db_name=name)
    else:
        cmd = "false"
    profile = _django_profile(djcrm, cmd)
    run_id = new_run_id()
    result = _run(profile, tmp_path, run_id)
    failed = next(f for f in result.findings if f.id == "backup.restore.failed")
    assert failed.status.value == "fail", failed
    assert _measure(result, "bak.restore_verified").value == 0
    assert _measure(result, "bak.rto").value is None  # recovery never achieved
    if broken == "false":
        assert "restore operation failed" in failed.evidence[0].observed
    else:  # the command "succeeded", but the live data was never rolled back
        details = result.artifacts["backup"]["canaries"]
        assert details["missing"] and details["mismatched"] and details["survived_after_backup"]
    assert result.artifacts["cleanup"]["state"] == "clean"
    assert _django_contacts_with(djcrm, profile, f"crm-audit-{run_id}") == []


# --------------------------------------------------------------------------- helpers on real data


def _sqlite_bytes(tmp_path: Path, marker: str) -> bytes:
    path = tmp_path / "crm.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT)")
    con.execute("INSERT INTO contacts (email) VALUES (?)", (marker,))
    con.commit()
    con.close()
    return path.read_bytes()


def test_content_classifies_real_files(tmp_path: Path) -> None:
    marker = "crm-audit-x-1@audit.example"
    db = _sqlite_bytes(tmp_path, marker)
    rep = analyse(db, [marker])
    assert rep.format == "sqlite" and rep.plaintext and rep.canaries_found == [marker]
    rep = analyse(gzip.compress(db), [marker])  # compression is not protection
    assert rep.format == "gzip" and rep.plaintext and rep.canaries_found == [marker]
    key, nonce = AESGCM.generate_key(256), os.urandom(12)
    enc = b"XYZENC01" + nonce + AESGCM(key).encrypt(nonce, db, None)
    rep = analyse(enc, [marker])
    assert rep.encrypted and not rep.plaintext and rep.entropy > 7.5
    for text, fmt in ((b"-- PostgreSQL database dump\nCREATE TABLE t (id int);\n", "sql"),
                      (json.dumps([{"email": marker}] * 30).encode(), "json"),
                      (b"id,email\n1,a@b.c\n2,d@e.f\n", "csv")):
        assert analyse(text, []).format == fmt and analyse(text, []).plaintext
    assert looks_like_backup(b"<!DOCTYPE html><html>catch-all page</html>" * 50) == (False, "html")
    assert looks_like_backup(db)[0]


def test_checksum_verification() -> None:
    import hashlib

    data = b"backup bytes"
    assert verify_checksum(data, hashlib.sha256(data).hexdigest()) == (True, "sha256")
    assert verify_checksum(data, "sha256:" + hashlib.sha256(b"other").hexdigest()) == (False, "sha256")
    assert verify_checksum(data, hashlib.md5(data).hexdigest())[0] is True
    assert verify_checksum(data, "not-a-hash")[0] is None


def test_freshness_newest_and_gaps() -> None:
    import datetime as dt

    now = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)
    items = [{"id": 1, "created_at": "2026-01-08T12:00:00Z"}, {"id": 2, "created_at": "2026-01-10T10:00:00Z"},
             {"id": 3, "created_at": "garbage"}]
    fr = evaluate(items, "created_at", "id", 24, "daily", now=now)
    assert fr.newest_id == 2 and abs(fr.age_h - 2) < 1e-9 and not fr.stale
    assert fr.gaps_h == [46.0] and fr.unparsable == 1
    assert evaluate(items, "created_at", "id", 1, "daily", now=now).stale
    assert evaluate([], "created_at", "id", 24, "daily", now=now).stale


def test_command_timeout_kills_and_secrets_stay_out(tmp_path: Path) -> None:
    secret = "pg-" + secrets.token_hex(8)
    red = Redactor([secret])
    spec = OperationSpec(command=f"{sys.executable} -c \"import os,time; print(os.environ['PGPASSWORD'], flush=True); "
                                 "time.sleep(30)\"", timeout_s=1, env={"PGPASSWORD": secret})
    t0 = time.perf_counter()
    res = run_command("trigger_backup", spec, {}, red.redact)
    assert time.perf_counter() - t0 < 10 and not res.ok and "timed out" in res.error
    assert secret not in res.evidence.model_dump_json()
    assert "[REDACTED]" in (res.evidence.excerpt or ""), res.evidence  # the output was kept, with the secret masked
    leaky = OperationSpec(command="pg_dump --password={pw}", env={"PGPASSWORD": secret})
    res = run_command("trigger_backup", leaky, {"pw": secret}, red.redact)
    assert not res.ok and "refused" in res.error and secret not in res.evidence.model_dump_json()
    ok = run_command("health", OperationSpec(command="true"), {}, red.redact)
    assert ok.ok and ok.status == 0


def test_command_output_is_read_with_a_bound() -> None:
    """A command printing far more than the cap: it still finishes, its output is counted, only the cap is kept."""
    size = 3 * OUTPUT_MAX_BYTES + 12345
    spec = OperationSpec(command=f"{sys.executable} -c \"import sys; sys.stdout.write('x' * {size}); print('END')\"",
                         timeout_s=60)
    res = run_command("list_backups", spec, {}, Redactor().redact)
    assert res.ok and res.truncated and res.data is None
    assert len(res.body) == OUTPUT_MAX_BYTES
    assert res.evidence.details["output_bytes"] == size + 4  # 'END\n'
    assert res.evidence.excerpt.endswith("END\n")  # the tail is what is kept as evidence
    small = run_command("list_backups", OperationSpec(command="echo '{\"items\": []}'"), {}, Redactor().redact)
    assert small.ok and not small.truncated and small.data == {"items": []}
