"""Scoring functions, at and around their control points."""

from __future__ import annotations

import math

import pytest

from crm_audit.core.model import Finding, Severity, Status
from crm_audit.scoring.functions import FunctionSpecError, apply_caps, parse_function
from crm_audit.scoring.units import UnitError, convert, parse_quantity


def fn(spec, unit=None, better=None):
    return parse_function(spec, unit, better)


# ---------------------------------------------------------------- log-normal

def test_lognormal_lower_is_better_control_points():
    f = fn({"type": "lognormal", "p90": 200, "p50": 800}, "ms")
    assert f.better == "lower"
    assert f.score(200) == pytest.approx(90.0)
    assert f.score(800) == pytest.approx(50.0)
    assert 90 < f.score(199) < f.score(100) < 100
    assert 50 < f.score(799) < 90 and f.score(801) < 50
    assert f.score(0) == 100.0 and f.score(math.inf) == 0.0
    assert f.describe() == "log-normal: 90 at 200 ms, 50 at 800 ms"


def test_lognormal_matches_lighthouse_formula():
    """score = 1 − Φ((ln x − μ)/σ), μ = ln p50, σ from the p90 point (Lighthouse)."""
    from scipy.stats import norm

    p90, p50 = 200.0, 800.0
    sigma = (math.log(p50) - math.log(p90)) / norm.ppf(0.9)
    f = fn({"type": "lognormal", "p90": p90, "p50": p50})
    for x in (50, 350, 1500, 5000):
        assert f.score(x) == pytest.approx(100 * (1 - norm.cdf((math.log(x) - math.log(p50)) / sigma)))


def test_lognormal_higher_is_better():
    f = fn({"type": "lognormal", "p90": 50, "p50": 10}, "users")
    assert f.better == "higher"
    assert f.score(50) == pytest.approx(90.0)
    assert f.score(10) == pytest.approx(50.0)
    assert f.score(9) < 50 < f.score(11) and f.score(0) == 0.0 and f.score(math.inf) == 100.0


def test_lognormal_control_points_with_units():
    f = fn({"type": "lognormal", "p90": "5 min", "p50": "1 h"}, "h")
    assert f.score(5 / 60) == pytest.approx(90.0)
    assert f.score(1.0) == pytest.approx(50.0)
    assert f.describe() == "log-normal: 90 at 5 min, 50 at 1 h"


# ---------------------------------------------------------------- linear

def test_linear_lower_is_better():
    f = fn({"type": "linear", "good": 0, "bad": 0.1}, "ratio")
    assert f.better == "lower"
    assert f.score(0) == 100.0 and f.score(0.1) == 0.0
    assert f.score(0.01) == pytest.approx(90.0)
    assert f.score(-0.01) == 100.0 and f.score(0.11) == 0.0  # clipped


def test_linear_higher_is_better():
    f = fn({"type": "linear", "good": 1.0, "bad": 0.5})
    assert f.better == "higher"
    assert f.score(1.0) == 100.0 and f.score(0.5) == 0.0
    assert f.score(0.95) == pytest.approx(90.0) and f.score(0.75) == pytest.approx(50.0)
    assert f.score(0.49) == 0.0 and f.score(1.01) == 100.0


# ---------------------------------------------------------------- bands

def test_bands_lower_is_better_edges():
    f = fn({"type": "bands", "bands": [[24, 100], [48, 60], ["7 d", 30]], "otherwise": 0}, "h", "lower")
    assert f.score(24) == 100 and f.score(24.01) == 60
    assert f.score(48) == 60 and f.score(48.01) == 30
    assert f.score(168) == 30 and f.score(168.01) == 0
    assert f.describe() == "bands: ≤24 h → 100, ≤48 h → 60, ≤7 d → 30, otherwise 0"


def test_bands_higher_is_better_edges():
    f = fn({"type": "bands", "bands": [[0.9, 100], [0.8, 90], [0.5, 50]], "otherwise": 20}, "ratio", "higher")
    assert f.score(0.9) == 100 and f.score(0.8999) == 90
    assert f.score(0.8) == 90 and f.score(0.79) == 50
    assert f.score(0.5) == 50 and f.score(0.49) == 20


def test_bands_must_be_ordered():
    with pytest.raises(FunctionSpecError, match="ascending"):
        fn({"type": "bands", "bands": [[48, 60], [24, 100]]}, better="lower")


# ---------------------------------------------------------------- ratio

def test_ratio_higher_is_better():
    f = fn({"type": "ratio", "target": 0.8}, better="higher")
    assert f.score(0.8) == 100.0 and f.score(0.9) == 100.0
    assert f.score(0.4) == pytest.approx(50.0) and f.score(0.79) == pytest.approx(98.75)
    assert f.score(-1) == 0.0


def test_ratio_lower_is_better_uses_expected_as_target():
    f = fn({"type": "ratio"}, better="lower")
    assert f.score(0.05, expected=None) is None  # no target: not assessed
    assert f.score(0.05, expected=0.05) == 100.0
    assert f.score(0.10, expected=0.05) == pytest.approx(50.0)
    assert f.score(0.0, expected=0.05) == 100.0


# ---------------------------------------------------------------- pass / partial / fail

def test_pass_partial_fail():
    f = fn({"type": "pass_fail"})
    assert (f.score(1), f.score(0.6), f.score(0.5), f.score(0)) == (100.0, 60.0, 60.0, 0.0)
    assert f.score(5) == 100.0 and f.score(-1) == 0.0
    assert f.describe() == "pass/partial/fail: 100/60/0"


# ---------------------------------------------------------------- findings and caps

def _finding(fid, severity, status=Status.failed, waiver=None):
    return Finding(id=fid, title=fid, severity=severity, status=status, indicator="sec.transport", waiver=waiver)


def test_findings_penalties_and_floor():
    f = fn({"type": "findings"})
    found = [_finding("a", Severity.high), _finding("b", Severity.medium), _finding("c", Severity.low, Status.warn)]
    assert f.penalty(found) == 25 + 10 + 5
    assert f.score(f.penalty(found)) == 60.0
    assert f.score(f.penalty([_finding(str(i), Severity.high) for i in range(5)])) == 0.0


def test_passed_and_waived_findings_do_not_penalise():
    f = fn({"type": "findings"})
    found = [_finding("a", Severity.high, Status.passed), _finding("b", Severity.high, waiver={"justification": "accepted", "by": "ciso", "expires": "2099-01-01", "pattern": "b"}),
             _finding("c", Severity.high, Status.error)]
    assert f.penalty(found) == 0.0


def test_custom_penalties():
    f = fn({"type": "findings", "penalties": {"medium": 30}})
    assert f.penalty([_finding("a", Severity.medium)]) == 30


def test_critical_finding_caps_at_20():
    f = fn({"type": "findings"})
    found = [_finding("crit", Severity.critical)]
    score = f.score(f.penalty(found))
    assert score == 50.0
    assert apply_caps(score, found, f.caps) == (20.0, "crit")
    assert apply_caps(10.0, found, f.caps) == (10.0, "crit")  # already below the cap: still capped (issue 14)
    waived = [_finding("crit", Severity.critical, waiver={"justification": "accepted", "by": "ciso", "expires": "2099-01-01", "pattern": "crit"})]
    assert apply_caps(95.0, waived, f.caps) == (95.0, None)


def test_cap_applies_to_any_function_and_is_configurable():
    f = fn({"type": "linear", "good": 0, "bad": 1, "cap": {"high": 60, "critical": 10}})
    assert apply_caps(f.score(0), [_finding("h", Severity.high)], f.caps) == (60.0, "h")
    assert apply_caps(f.score(0), [_finding("h", Severity.high), _finding("c", Severity.critical)], f.caps) == (10.0, "c")


# ---------------------------------------------------------------- spec errors

@pytest.mark.parametrize(
    "spec, better, fragment",
    [
        ({"type": "cubic"}, None, "unknown function type"),
        ({"type": "linear", "good": 1}, None, "needs 'bad'"),
        ({"type": "linear", "good": 1, "bad": 1}, None, "good ≠ bad"),
        ({"type": "lognormal", "p90": 800, "p50": 200}, "lower", "says higher"),
        ({"type": "lognormal", "p90": 0, "p50": 200}, None, "positive"),
        ({"type": "linear", "good": 0, "bad": 1, "slope": 2}, None, "unknown key"),
        ({"type": "findings", "penalties": {"urgent": 5}}, None, "unknown severity"),
        ({"type": "linear", "good": "5 kg", "bad": 1}, None, "unknown unit"),
        ("linear", None, "mapping"),
    ],
)
def test_bad_function_specs(spec, better, fragment):
    with pytest.raises(FunctionSpecError, match=fragment):
        fn(spec, better=better)


# ---------------------------------------------------------------- units

def test_units():
    assert convert(900, "ms", "s") == pytest.approx(0.9)
    assert convert(2, "h", "s") == 7200
    assert convert(85, "%", "ratio") == pytest.approx(0.85)
    assert convert(5, "req/s", "req/s") == 5 and convert(5, "", "ms") == 5
    assert parse_quantity("15 min", "s") == 900
    assert parse_quantity("24 h", "s") == 86400
    assert parse_quantity(3, "years") == 3.0
    with pytest.raises(UnitError):
        convert(1, "s", "ratio")
    with pytest.raises(UnitError):
        parse_quantity("5 min", "users")


def test_lognormal_worked_value_of_the_docs():
    """docs/scoring.md §3: 90 at 300 ms, 50 at 1000 ms → 500 ms scores 77.0."""
    f = fn({"type": "lognormal", "p90": 300, "p50": 1000}, "ms")
    assert f.sigma == pytest.approx(-0.9395, abs=1e-4)
    assert f.score(500) == pytest.approx(76.97, abs=0.01)
