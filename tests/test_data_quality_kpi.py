"""data_quality and kpi probes against the demo CRM's seeded records (exact counts) and pure-rule checks."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.runner import RunOptions, run_audit
from crm_audit_demo import DemoServer
from crm_audit_demo.data import SEEDED_DEFECTS
from crm_audit_demo.profile import demo_profile
from crm_audit_plugins.data_quality import DataQualityOptions
from crm_audit_plugins.data_quality.checks import count_defects
from crm_audit_plugins.kpi import CaseFields
from crm_audit_plugins.kpi.formulas import case_metrics


@pytest.fixture(scope="module")
def demo_result():
    with DemoServer() as server:
        profile = demo_profile(server)
        yield run_audit(profile, make_plugin_manager(), RunOptions(only=["data_quality", "kpi"]))


def test_data_quality_finds_exactly_the_seeded_defects(demo_result) -> None:
    dq = demo_result.probe("data_quality")
    assert dq.status == "ok", dq.reason
    seeded = SEEDED_DEFECTS["acme"]
    d = dq.artifacts["defects"]
    assert d.get("missing_email", 0) == seeded["missing_email"]
    assert d.get("malformed_email", 0) == seeded["malformed_email"]
    assert d.get("malformed_phone", 0) == seeded["malformed_phone"]
    assert d.get("stale", 0) == seeded["stale"]
    assert d.get("dangling_reference", 0) == seeded["dangling_account"]
    assert d.get("duplicate", 0) == seeded["duplicate"]
    records = dq.artifacts["records"]
    by = {m.indicator: m for m in dq.measurements}
    assert by["dq.uniqueness"].value == pytest.approx(1 - seeded["duplicate"] / records, abs=1e-6)
    assert by["dq.completeness"].details["numerator"] == records - seeded["missing_email"]
    # the seeded defects push uniqueness below its 99% expectation: a finding says so
    assert any(f.id == "data_quality.uniqueness.contacts" for f in dq.findings) == (by["dq.uniqueness"].value < 0.99)


def test_kpis_are_computed_with_their_formulas(demo_result) -> None:
    kpi = demo_result.probe("kpi")
    assert kpi.status == "ok", kpi.reason
    metrics = {m["indicator"]: m for m in kpi.artifacts["metrics"]}
    for ind in ("svc.response_time", "svc.resolution_time", "svc.resolution_rate", "svc.repeat_rate",
                "biz.conversion_rate", "biz.complaint_rate", "biz.churn_rate"):
        assert metrics[ind]["value"] is not None, ind
        assert metrics[ind]["formula"]
    assert 0 < metrics["svc.resolution_rate"]["value"] <= 1
    assert metrics["biz.conversion_rate"]["numerator"] <= metrics["biz.conversion_rate"]["denominator"]
    assert kpi.artifacts["records"]["cases"] >= 500


def test_rules_on_hand_made_records() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    recent, old = "2025-12-01T00:00:00Z", "2023-01-01T00:00:00Z"
    recs = [
        {"first_name": "A", "last_name": "B", "email": "a@x.io", "phone": "+1 212 555 0100", "account_id": 1, "updated_at": recent},
        {"first_name": "A", "last_name": "B", "email": " A@X.io ", "phone": "555", "account_id": 9, "updated_at": old},
        {"first_name": "C", "last_name": "", "email": "not-an-email", "phone": None, "account_id": None, "updated_at": recent},
    ]
    c = count_defects(recs, DataQualityOptions(), {"accounts": {"1"}}, now=now)
    assert c.defects["duplicate"] == 1            # the second row repeats the first's normalized e-mail
    assert c.defects["malformed_phone"] == 1 and c.defects["malformed_email"] == 1
    assert c.defects["dangling_reference"] == 1 and c.references_checked == 2
    assert c.defects["stale"] == 1 and c.incomplete_records == 1
    assert c.ratios()["validity"] == (1, 3)


def test_kpi_not_assessed_without_data() -> None:
    ms = {m.indicator: m for m in case_metrics([], [], CaseFields())}
    assert ms["svc.response_time"].value is None and ms["svc.response_time"].note
    cases = [{"created_at": "2026-01-01T00:00:00Z", "first_response_at": "2026-01-01T02:00:00Z",
              "resolved_at": "2026-01-02T00:00:00Z", "status": "closed", "type": "complaint", "account_id": 7,
              "repeat_of": None},
             {"created_at": "2026-01-01T00:00:00Z", "first_response_at": None, "resolved_at": None,
              "status": "open", "type": "question", "account_id": 8, "repeat_of": 1}]
    ms = {m.indicator: m for m in case_metrics(cases, [{"id": 7}, {"id": 8}], CaseFields())}
    assert ms["svc.response_time"].value == pytest.approx(2.0)
    assert ms["svc.resolution_time"].value == pytest.approx(24.0)
    assert ms["svc.resolution_rate"].value == 0.5 and ms["svc.repeat_rate"].value == 0.5
    assert ms["biz.complaint_rate"].value == 0.5
