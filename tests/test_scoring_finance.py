"""NPV, IRR, payback and ROI, and evidence files (YAML and CSV) that carry them."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_audit.scoring import EvidenceError, load_evidence
from crm_audit.scoring.finance import irr, npv, payback_period, roi

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "evidence.yaml"


def test_npv_and_irr_match_the_numpy_financial_documentation():
    """numpy-financial docs: irr([-100, 39, 59, 55, 20]) = 0.28095 and
    npv(0.281, [-100, 39, 59, 55, 20]) = -0.0084785916384548798 (first flow at t = 0)."""
    flows = [-100, 39, 59, 55, 20]
    assert irr(flows) == pytest.approx(0.28095, abs=1e-5)
    assert npv(0.281, flows) == pytest.approx(-0.0084785916384548798, rel=1e-9)
    assert npv(irr(flows), flows) == pytest.approx(0.0, abs=1e-9)


def test_npv_by_hand():
    # -1000 + 500/1.1 + 500/1.21 + 500/1.331 = 243.4260…
    assert npv(0.10, [-1000, 500, 500, 500]) == pytest.approx(243.42599549211, rel=1e-9)
    assert npv(0.0, [-1000, 500, 500, 500]) == 500


def test_irr_edge_cases():
    assert irr([-100, 100]) == pytest.approx(0.0, abs=1e-9)
    assert irr([-100, 50, 50, 50]) == pytest.approx(0.2337519285, abs=1e-8)
    assert irr([100, 50]) is None  # no outflow: no rate makes NPV 0
    assert irr([-100]) is None


def test_payback_period():
    assert payback_period([-100000, 30000, 40000, 50000]) == pytest.approx(2.6)
    assert payback_period([-100, 50, 50]) == pytest.approx(2.0)
    assert payback_period([-100, 100]) == pytest.approx(1.0)
    assert payback_period([-100, 20, 20]) is None  # not recovered
    assert payback_period([0, 10]) == 0.0


def test_roi():
    assert roi([-100, 30, 40, 50]) == pytest.approx(0.2)
    assert roi([10, 20]) is None


# ---------------------------------------------------------------- evidence

def test_example_evidence_file():
    ev = load_evidence(EXAMPLE)
    assert ev.supplied_by == "J. Doe, procurement" and ev.date == "2024-05-01"
    assert ev.get("svc.vendor_sla").value == 0.5 and ev.get("svc.vendor_sla").text == "partial"
    assert ev.get("func.modules").value == pytest.approx(0.6)  # "3/5"
    access = ev.get("sec.access_logging")
    assert access.value == 1.0 and access.supplied_by == "vendor security questionnaire" and access.date == "2024-04-12"
    flows = [-100000, 30000, 40000, 50000, 40000]
    assert ev.get("cost.npv").value == pytest.approx(npv(0.08, flows))
    assert ev.get("cost.irr").value == pytest.approx(irr(flows)) and ev.get("cost.irr").expected == 0.08
    assert ev.get("cost.payback").value == pytest.approx(2.6)
    assert ev.get("cost.roi").value == pytest.approx(0.6)
    assert "computed from cash flows" in ev.get("cost.npv").note


def test_explicit_value_wins_over_computed(tmp_path):
    path = tmp_path / "ev.yaml"
    path.write_text("cash_flows: [-100, 60, 60]\ndiscount_rate: 0.1\nindicators:\n  cost.roi: 1.5\n")
    ev = load_evidence(path)
    assert ev.get("cost.roi").value == 1.5 and ev.get("cost.roi").note is None
    assert ev.get("cost.payback").value == pytest.approx(1 + 40 / 60)


def test_quantities_keep_their_unit(tmp_path):
    path = tmp_path / "ev.yaml"
    path.write_text("indicators:\n  svc.response_time: {value: '4 min'}\n  biz.churn_rate: '3 %'\n")
    ev = load_evidence(path)
    assert (ev.get("svc.response_time").value, ev.get("svc.response_time").unit) == (4.0, "min")
    assert (ev.get("biz.churn_rate").value, ev.get("biz.churn_rate").unit) == (3.0, "%")


def test_csv_evidence(tmp_path):
    path = tmp_path / "ev.csv"
    path.write_text(
        "indicator,value,unit,expected,supplied_by,date,note\n"
        "biz.satisfaction,88,,,survey team,2024-03-01,n=200\n"
        "svc.vendor_sla,fail,,,vendor,,\n"
        "cash_flow,-100,,,,,\n"
        "cash_flow,60,,,,,\n"
        "cash_flow,60,,,,,\n"
        "discount_rate,0.1,,,,,\n"
    )
    ev = load_evidence(path)
    sat = ev.get("biz.satisfaction")
    assert (sat.value, sat.supplied_by, sat.date, sat.note) == (88.0, "survey team", "2024-03-01", "n=200")
    assert ev.get("svc.vendor_sla").value == 0.0
    assert ev.cash_flows == (-100.0, 60.0, 60.0)
    assert ev.get("cost.npv").value == pytest.approx(npv(0.1, [-100, 60, 60]))


def test_none_gives_empty_evidence():
    ev = load_evidence(None)
    assert ev.items == {} and ev.get("cost.npv") is None


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("indicators:\n  biz.satisfaction: {value: lots}\n", "indicator 'biz.satisfaction': value 'lots'"),
        ("indicators:\n  biz.satisfaction: {note: x}\n", "no value"),
        ("indicators:\n  biz.satisfaction: {value: 1, colour: red}\n", "unknown key"),
        ("cash_flows: [-100, abc]\n", "numbers only"),
        ("cash_flows: [-100, 50]\ndiscount_rate: 8\n", "fraction"),
        ("vendor: acme\n", "unknown key"),
        ("indicators: [1, 2]\n", "must map"),
        ("indicators: {a: 1\n", "not valid YAML"),
    ],
)
def test_evidence_errors_are_one_line(tmp_path, text, fragment):
    path = tmp_path / "ev.yaml"
    path.write_text(text)
    with pytest.raises(EvidenceError, match=fragment) as exc:
        load_evidence(path)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)


def test_missing_evidence_file(tmp_path):
    with pytest.raises(EvidenceError, match="cannot read"):
        load_evidence(tmp_path / "nope.yaml")
