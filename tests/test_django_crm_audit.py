"""Audit django-crm 0.9.0 as a user would: the ready profile against the real CRM.

Starts PostgreSQL + django-crm (random SECRET_KEY, seeded users and records) once per
module, loads ``profiles/django-crm.yaml`` with the env the target hands out, and runs
``run_audit`` twice: first the read-only probes (tls, latency, data_quality, kpi) on the
seeded data, then the writing ones (flows, access incl. the disruptive lockout test,
backup incl. the pg_dump/pg_restore drill). A second instance that keeps django-crm's
hard-coded SECRET_KEY is started only for the forged-token assertion.

The assertions are what a careful auditor finds on 0.9.0 (see
/work/shared/domain/django-crm-facts.md) — and no false positives where it does protect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from crm_audit.core.model import AuditResult, Finding, ProbeResult
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.profile import Profile, load_profile
from crm_audit.core.runner import RunOptions, run_audit

from targets.django_crm import DjangoCrmServer
from targets.postgres import PostgresServer

pytestmark = pytest.mark.integration

PROFILE = Path(__file__).resolve().parent.parent / "profiles" / "django-crm.yaml"
READ_ONLY = ["tls", "latency", "data_quality", "kpi"]
WRITING = ["flows", "access"]


def profile_env(crm: DjangoCrmServer) -> dict[str, str]:
    """The env the profile's ${...} references resolve from: passwords, URL, DB URI (no password)."""
    db = crm.db
    return {**crm.env, "DJANGO_CRM_URL": crm.base_url,
            "DJANGO_CRM_DB_URL": f"postgresql://{db.user}@{db.host}:{db.port}/{db.name}"}


def load(crm: DjangoCrmServer) -> Profile:
    return load_profile(PROFILE, env=profile_env(crm))


def _probes(result: AuditResult) -> dict[str, ProbeResult]:
    return {p.probe: p for p in result.probes}


def _findings(result: AuditResult) -> dict[str, Finding]:
    return {f.id: f for p in result.probes for f in p.findings}


@pytest.fixture(scope="module")
def read_only(crm: DjangoCrmServer, tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    """tls, latency, data_quality, kpi on the seeded data (before anything writes)."""
    return run_audit(load(crm), make_plugin_manager(),
                     RunOptions(only=READ_ONLY, allow_writes=False, workdir=tmp_path_factory.mktemp("ro")))


@pytest.fixture(scope="module")
def writing(crm: DjangoCrmServer, read_only: AuditResult, tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    """flows and access (with the disruptive lockout test)."""
    return run_audit(load(crm), make_plugin_manager(),
                     RunOptions(only=WRITING, allow_writes=True, allow_disruptive=True,
                                workdir=tmp_path_factory.mktemp("rw")))


@pytest.fixture(scope="module")
def backup_run(crm: DjangoCrmServer, writing: AuditResult, tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    """backup with the pg_dump/pg_restore drill, in its own run (its own tag, so leftovers are attributable)."""
    return run_audit(load(crm), make_plugin_manager(),
                     RunOptions(only=["backup"], allow_writes=True, allow_disruptive=True,
                                workdir=tmp_path_factory.mktemp("bak")))


def _leftovers(crm: DjangoCrmServer, tag: str) -> dict[str, list[Any]]:
    """Records carrying ``tag`` that are still in the CRM (seen as admin1)."""
    from crm_audit.core.adapter import RestAdapter
    from crm_audit.core.target import Target

    prof = load(crm)
    adapter = RestAdapter(prof.adapter, Target(prof))
    out: dict[str, list[Any]] = {}
    for res in adapter.resources():
        ids = [adapter.record_id(i) for i in adapter.iterate(res, "admin1", max_records=1000) if tag in str(i)]
        if ids:
            out[res] = ids
    return out


@pytest.fixture(scope="module")
def default_secret_tokens(pg: PostgresServer, crm: DjangoCrmServer) -> Iterator[dict[str, Finding]]:
    """Only the token checks, against a second instance that keeps the hard-coded SECRET_KEY."""
    with DjangoCrmServer(pg, db_name="crm_dk", default_secret=True, seed=False) as dk:
        prof = load(dk)
        prof = prof.model_copy(update={"plugins": {**prof.plugins,
                                                   "access": {**prof.plugins["access"], "checks": ["tokens"]}}})
        result = run_audit(prof, make_plugin_manager(), RunOptions(only=["access"], allow_writes=False))
        yield _findings(result)


@pytest.fixture(scope="module")
def non_disruptive(crm: DjangoCrmServer) -> AuditResult:
    """The shipped profile as it is (allow.disruptive: false): only the two disruptive access checks, scored."""
    prof = load(crm)
    prof = prof.model_copy(update={"plugins": {**prof.plugins, "access": {**prof.plugins["access"],
                                                                          "checks": ["lockout", "registration"]}}})
    return run_audit(prof, make_plugin_manager(), RunOptions(only=["access"]))


# ------------------------------------------------------------------ the profile


def test_profile_is_valid_and_uses_env_references_only(crm: DjangoCrmServer) -> None:
    prof = load(crm)
    assert prof.target.base_url == crm.base_url
    assert {a.role for a in prof.accounts} == {"ADMIN", "USER"}
    assert [a.name for a in prof.accounts if a.purpose == "lockout"] == ["lockout"]
    text = PROFILE.read_text()
    for secret in crm.env.values():
        assert secret not in text
    ops = prof.plugins["backup"]["operations"]
    assert ops["trigger_backup"]["env"] == {"PGPASSWORD": crm.env["PGPASSWORD"]}
    assert crm.env["PGPASSWORD"] not in ops["trigger_backup"]["command"]


def test_adapter_creates_reads_updates_deletes_every_resource(crm: DjangoCrmServer) -> None:
    """Each resource's bodies work on 0.9.0: create (200, no record) → found by tag → read → PUT → delete."""
    from crm_audit.core.adapter import RestAdapter
    from crm_audit.core.target import Target

    prof = load(crm)
    adapter = RestAdapter(prof.adapter, Target(prof))
    tag = "crmaudit-adaptertest"
    for res in adapter.resources():
        rec, ex = adapter.create(res, "user1", tag)
        assert ex.status == 200, (res, ex.status, ex.text[:200])
        assert rec is not None and tag in str(rec), res
        rid = adapter.record_id(rec)
        got, rex = adapter.read(res, rid, "user1")
        assert rex.status == 200 and got is not None and tag in rex.text, res
        _, uex = adapter.update(res, rid, "user1")
        assert uex.status == 200, (res, uex.text[:200])
        assert "(updated)" in adapter.read(res, rid, "user1")[1].text or res == "contacts"
        assert adapter.delete(res, rid, "user1").status == 200, res
        assert adapter.read(res, rid, "admin1")[1].status in (403, 404, 500), res


# ------------------------------------------------------------------ read-only probes


def test_plain_http_only_is_reported(read_only: AuditResult) -> None:
    f = _findings(read_only)["tls.plain_http_only"]
    assert f.status.value == "fail" and f.severity.value == "high"


def test_latency_measured_for_every_endpoint(read_only: AuditResult) -> None:
    lat = _probes(read_only)["latency"]
    p95 = {m.label: m.value for m in lat.measurements if m.indicator == "perf.response_time_p95"}
    assert set(p95) == {"api schema", "list contacts", "list leads", "list cases", "profile"}
    assert all(v is not None and 0 < v < 30_000 for v in p95.values()), p95
    errors = [m.value for m in lat.measurements if m.indicator == "perf.error_rate"]
    assert errors == [0.0]


def test_data_quality_finds_the_seeded_defects(read_only: AuditResult, crm: DjangoCrmServer) -> None:
    dq = {m.indicator: m for m in _probes(read_only)["data_quality"].measurements}
    n = len(crm.records["contacts"])  # 7 seeded contacts
    assert n == 7
    assert dq["dq.completeness"].value == pytest.approx(1.0)
    # bad phone "12345" and e-mail "frank.fox@@example": 2 of 7 invalid
    assert dq["dq.validity"].value == pytest.approx(5 / 7, abs=1e-4)
    # "alice anders" / Alice.Anders+crm@ACME.example duplicates Alice Anders: 1 of 7
    assert dq["dq.uniqueness"].value == pytest.approx(6 / 7, abs=1e-4)
    ids = _findings(read_only)
    assert ids["data_quality.validity.contacts"].status.value == "fail"
    assert ids["data_quality.uniqueness.contacts"].status.value == "fail"


def test_kpi_runs_on_the_seeded_cases_and_leads(read_only: AuditResult, crm: DjangoCrmServer) -> None:
    kpi = {m.indicator: m.value for m in _probes(read_only)["kpi"].measurements}
    cases = crm.records["cases"]
    closed = 1  # "Closed but open-dated"
    assert kpi["svc.resolution_rate"] == pytest.approx(closed / len(cases), abs=1e-4)
    assert kpi["biz.conversion_rate"] == pytest.approx(0.0)  # no lead is converted
    assert kpi["biz.complaint_rate"] == pytest.approx(0.0)  # no case of type Problem


# ------------------------------------------------------------------ access: what is broken


def test_anonymous_registration_creates_privileged_users(writing: AuditResult) -> None:
    f = _findings(writing)["access.registration.privileged"]
    assert f.status.value == "fail" and f.severity.value == "critical"
    assert "lists users" in f.title


def test_tokens_have_no_expiry(writing: AuditResult) -> None:
    f = _findings(writing)["access.token.no_expiry"]
    assert f.status.value == "fail"


def test_login_errors_enumerate_users(writing: AuditResult) -> None:
    f = _findings(writing)["access.login.user_enumeration"]
    assert f.status.value == "fail" and f.severity.value == "medium"


def test_no_login_throttling_on_the_lockout_account(writing: AuditResult) -> None:
    f = _findings(writing)["access.login.no_lockout"]
    assert f.status.value == "fail", f.title
    details = f.evidence[0].details or {}
    assert details.get("attempts") == 10 and set(details.get("statuses", [])) == {400}
    assert details.get("correct_password_after") == "accepted"  # the correct password still logs in


def test_denied_leads_read_answers_500(writing: AuditResult) -> None:
    f = _findings(writing)["access.errors.server_error_on_deny"]
    assert f.status.value == "fail"
    assert any("/api/leads/" in (e.request or "") and e.status == 500 for e in f.evidence)


def test_cors_wildcard_is_recorded(writing: AuditResult) -> None:
    """django-crm answers Access-Control-Allow-Origin: * (no credentials): recorded, not a credentialed grant."""
    f = _findings(writing)["access.cors.reflected_origin"]
    assert "Allow-Origin: *" in f.title
    assert f.status.value == "pass"


def test_non_disruptive_profile_leaves_login_limit_and_registration_not_assessed(non_disruptive: AuditResult) -> None:
    """Issue 14: skipped for safety, with the flag that runs them — not a pass, and no score for the login limit."""
    ids = _findings(non_disruptive)
    for fid in ("access.login.no_lockout", "access.registration.privileged"):
        f = ids[fid]
        assert f.status.value == "skipped" and f.not_assessed is not None and f.not_assessed.value == "safety", fid
        assert f.hint and "--allow-disruptive" in f.hint, (fid, f.hint)
    assert non_disruptive.scoring
    node = next(n for n in non_disruptive.scoring["nodes"] if n["id"] == "sec.login_limit")
    assert node["assessed"] is False and node["score"] is None, node
    assert any("--allow-disruptive" in h for h in node["not_assessed"]["hints"]), node["not_assessed"]


# ------------------------------------------------------------------ access: no false positives


def test_resource_lists_require_authentication(writing: AuditResult) -> None:
    ids = _findings(writing)
    for res in ("contacts", "leads", "accounts", "opportunities", "cases"):
        assert ids[f"access.anonymous.{res}"].status.value == "pass", res
    assert not [f.id for f in ids.values() if f.id.startswith("access.anonymous.") and f.status.value == "fail"]


def test_user_cannot_read_another_users_contact(writing: AuditResult) -> None:
    ids = _findings(writing)
    f = ids["access.bola.contacts"]
    assert f.status.value == "pass" and "same-tenant read" in f.title
    # a single-tenant CRM: the cross-tenant part is reported as not assessed, with the account it needs
    part = ids["access.bola.contacts.cross_tenant"]
    assert part.status.value == "skipped" and part.not_assessed.value == "needs_account" and "tenant" in part.hint


def test_token_signature_is_verified_and_secret_is_not_default(writing: AuditResult) -> None:
    ids = _findings(writing)
    for fid in ("access.token.signature_not_verified", "access.token.signature_stripped",
                "access.token.alg_none", "access.token.default_secret"):
        assert ids[fid].status.value == "pass", (fid, ids[fid].title)


def test_no_stack_traces_and_trace_disabled(writing: AuditResult) -> None:
    ids = _findings(writing)
    assert ids["access.errors.stack_trace"].status.value == "pass"
    assert ids["access.http.trace"].status.value == "pass"


def test_forged_token_accepted_with_default_secret(default_secret_tokens: dict[str, Finding]) -> None:
    f = default_secret_tokens["access.token.default_secret"]
    assert f.status.value == "fail" and f.severity.value == "critical"
    assert "django-crm 0.9.0 default SECRET_KEY" in f.title
    assert f.evidence and f.evidence[0].status == 200


# ------------------------------------------------------------------ flows and backup


def test_sales_pipeline_flow_completes(writing: AuditResult) -> None:
    ms = {m.indicator: m for m in _probes(writing)["flows"].measurements}
    assert ms["perf.flow_completion_rate"].value == pytest.approx(1.0)
    assert ms["perf.flow_completion_time"].value > 0


def test_backup_drill_with_pg_dump_and_pg_restore(backup_run: AuditResult) -> None:
    bak = _probes(backup_run)["backup"]
    ids = {f.id: f for f in bak.findings}
    assert ids["backup.content.plaintext"].status.value == "fail"  # an unencrypted pg_dump
    assert ids["backup.restore.failed"].status.value == "pass", ids["backup.restore.failed"].title
    assert ids["backup.restore.data_lost"].status.value == "pass"
    art = bak.artifacts["backup"]
    assert art["rto_s"] is not None and 0 < art["rto_s"] < 300
    assert art["rpo_s"] is not None and art["rpo_s"] > 0
    assert art["canaries"]["verified"] and not art["canaries"]["missing"]
    assert bak.artifacts["cleanup"]["state"] == "clean"


def test_no_secret_reaches_the_result(writing: AuditResult, read_only: AuditResult, backup_run: AuditResult,
                                      crm: DjangoCrmServer) -> None:
    dumped = writing.model_dump_json() + read_only.model_dump_json() + backup_run.model_dump_json()
    for name, secret in crm.env.items():
        assert secret not in dumped, name


def test_scored(writing: AuditResult, read_only: AuditResult) -> None:
    for result in (read_only, writing):
        assert result.scoring


def test_backup_run_leaves_nothing_behind(backup_run: AuditResult, crm: DjangoCrmServer) -> None:
    assert _leftovers(crm, f"crm-audit-{backup_run.run_id}") == {}


# ------------------------------------------------------------------ adapter behaviour on django-crm's API


def test_flows_and_access_leave_no_records_behind(writing: AuditResult, crm: DjangoCrmServer) -> None:
    assert _leftovers(crm, f"crm-audit-{writing.run_id}") == {}


def test_vertical_reads_are_judged(writing: AuditResult) -> None:
    reads = [f for f in writing.all_findings() if f.id.startswith("access.vertical.") and f.id.endswith(".read")]
    assert reads and all(f.status.value == "pass" for f in reads), [f.title for f in reads]


def test_user_can_update_another_users_lead_is_found(writing: AuditResult) -> None:
    """Facts flaw 9: lead update has no owner check; found only if the update's effect can be re-read."""
    assert _findings(writing)["access.bola.leads"].status.value == "fail"
