"""Scoring functions: from an indicator's raw value to a 0–100 score.

Each hierarchy leaf names one, as a mapping with a ``type``:

- ``bands``: threshold bands, e.g. ``bands: [[200, 100], [500, 70]], otherwise: 0``
  (lower is better: value ≤ 200 → 100, ≤ 500 → 70, else 0; higher is better: value ≥ limit).
- ``linear``: 100 at ``good``, 0 at ``bad``, straight line between, clipped.
- ``lognormal``: Lighthouse's curve fixed by two control points, ``p90`` (the value scoring
  90) and ``p50`` (the value scoring 50): score = 100 · Φ((ln x − ln p50) / σ) with
  σ = (ln p90 − ln p50) / Φ⁻¹(0.9); for lower-is-better (p90 < p50) σ is negative, which
  is the same as Lighthouse's 100 · (1 − Φ((ln x − μ)/|σ|)).
- ``ratio``: actual against a target: 100 · min(1, x / target) when higher is better,
  100 · min(1, target / x) when lower is better; the target is ``target`` or else the
  indicator's expected value (no target → not assessed).
- ``pass_fail``: 100 / 60 / 0 for pass / partial / fail (the 5/3/0 selection scheme);
  a value ≥ 1 is pass, ≤ 0 fail, anything between partial.
- ``findings``: 100 minus a penalty per open finding by severity (default critical 50,
  high 25, medium 10, low 5, info 0), floored at 0.

Every score is rounded to ``EXACT_DECIMALS`` (9) decimals, so floating-point noise never moves
a control point off its score: the log-normal curve scores exactly 90 at ``p90`` (not
89.99999999999999) and a linear one exactly 90 at 0.99 between 1 and 0.90. Every function
lists its control points (``control_points()``: (value, score) pairs it must hit exactly).

Every type also takes ``cap`` (default ``{critical: 20}``): an open finding of that severity
on the indicator caps its score, whatever the function.
Control points may be written with a unit (``p90: "5 min"``) and are converted to the
indicator's unit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal, Protocol

from crm_audit.core.errors import InputFileError
from crm_audit.core.model import SEVERITY_ORDER, Finding
from crm_audit.scoring.units import UnitError, parse_quantity

Better = Literal["lower", "higher"]

DEFAULT_PENALTIES: dict[str, float] = {"critical": 50.0, "high": 25.0, "medium": 10.0, "low": 5.0, "info": 0.0}
DEFAULT_CAPS: dict[str, float] = {"critical": 20.0}
PASS_FAIL_SCORES = (100.0, 60.0, 0.0)
#: the standard normal distribution (stdlib: Φ via erf, Φ⁻¹ via AS241; no scipy on the scoring path)
_NORM = NormalDist()
_Z90 = _NORM.inv_cdf(0.9)
#: every function's score is rounded to this many decimals (exact at control points)
EXACT_DECIMALS = 9


class FunctionSpecError(InputFileError):
    """A scoring-function mapping that is incomplete or contradictory."""


class ScoringFunction(Protocol):
    """What every scoring function offers."""

    # read-only, so frozen dataclasses and properties satisfy the protocol
    @property
    def kind(self) -> str: ...
    @property
    def better(self) -> Better: ...
    @property
    def caps(self) -> Mapping[str, float]: ...

    def score(self, value: float, expected: float | None = None) -> float | None:
        """0–100 score of one raw value; None when it cannot be scored."""

    def describe(self) -> str:
        """Human description for the report, e.g. 'log-normal: 90 at 200 ms, 50 at 800 ms'."""

    def control_points(self) -> tuple[tuple[float, float], ...]:
        """(value, score) pairs the function passes through exactly."""


def _clip(score: float) -> float:
    """Clip to 0–100 and round to EXACT_DECIMALS, so control points score exactly."""
    return round(float(min(100.0, max(0.0, score))), EXACT_DECIMALS) + 0.0


def _label(raw: Any, value: float, unit: str | None) -> str:
    if isinstance(raw, str):
        return raw.strip()
    suffix = "" if not unit or unit in ("ratio", "findings", "pass/fail", "pass/partial/fail", "0-100", "currency") else f" {unit}"
    return f"{value:g}{suffix}"


@dataclass(frozen=True)
class Bands:
    """Threshold bands: the first limit the value meets gives the score."""

    limits: tuple[float, ...]
    scores: tuple[float, ...]
    otherwise: float
    better: Better
    labels: tuple[str, ...]
    caps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    kind: str = "bands"

    def score(self, value: float, expected: float | None = None) -> float | None:
        for limit, score in zip(self.limits, self.scores):
            if (value <= limit) if self.better == "lower" else (value >= limit):
                return float(score)
        return float(self.otherwise)

    def control_points(self) -> tuple[tuple[float, float], ...]:
        return tuple(zip(self.limits, self.scores))

    def describe(self) -> str:
        op = "≤" if self.better == "lower" else "≥"
        parts = [f"{op}{label} → {score:g}" for label, score in zip(self.labels, self.scores)]
        return f"bands: {', '.join(parts)}, otherwise {self.otherwise:g}"


@dataclass(frozen=True)
class Linear:
    """100 at ``good``, 0 at ``bad``, linear between, clipped to 0–100."""

    good: float
    bad: float
    labels: tuple[str, str]
    caps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    kind: str = "linear"

    @property
    def better(self) -> Better:
        return "lower" if self.good < self.bad else "higher"

    def score(self, value: float, expected: float | None = None) -> float | None:
        if math.isinf(value):
            return 100.0 if (value > 0) == (self.better == "higher") else 0.0
        return _clip(100.0 * (self.bad - value) / (self.bad - self.good))

    def control_points(self) -> tuple[tuple[float, float], ...]:
        return ((self.good, 100.0), (self.bad, 0.0))

    def describe(self) -> str:
        return f"linear: 100 at {self.labels[0]}, 0 at {self.labels[1]}"


@dataclass(frozen=True)
class LogNormal:
    """Lighthouse-style log-normal curve through (p90 → 90) and (p50 → 50)."""

    p90: float
    p50: float
    labels: tuple[str, str]
    caps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    kind: str = "lognormal"

    @property
    def better(self) -> Better:
        return "lower" if self.p90 < self.p50 else "higher"

    @property
    def sigma(self) -> float:
        """Signed σ of ln x (negative when lower is better)."""
        return (math.log(self.p90) - math.log(self.p50)) / _Z90

    def score(self, value: float, expected: float | None = None) -> float | None:
        if value <= 0:
            return 100.0 if self.better == "lower" else 0.0
        if math.isinf(value):
            return 0.0 if self.better == "lower" else 100.0
        return _clip(100.0 * _NORM.cdf((math.log(value) - math.log(self.p50)) / self.sigma))

    def control_points(self) -> tuple[tuple[float, float], ...]:
        return ((self.p90, 90.0), (self.p50, 50.0))

    def describe(self) -> str:
        return f"log-normal: 90 at {self.labels[0]}, 50 at {self.labels[1]}"


@dataclass(frozen=True)
class Ratio:
    """Actual against a target, capped at 100 once the target is met."""

    better: Better
    target: float | None
    label: str | None
    caps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    kind: str = "ratio"

    def score(self, value: float, expected: float | None = None) -> float | None:
        target = self.target if self.target is not None else expected
        if target is None:
            return None
        if self.better == "higher":
            if target <= 0:
                return 100.0 if value >= target else 0.0
            return _clip(100.0 * value / target)
        if value <= 0 or value <= target:
            return 100.0
        return _clip(100.0 * target / value)

    def control_points(self) -> tuple[tuple[float, float], ...]:
        return () if self.target is None else ((self.target, 100.0),)

    def describe(self) -> str:
        target = self.label if self.label is not None else "the expected value"
        form = "actual / target" if self.better == "higher" else "target / actual"
        return f"ratio: 100 × {form} (target {target}), at most 100"


@dataclass(frozen=True)
class PassFail:
    """Pass / partial / fail → 100 / 60 / 0 (the 5/3/0 scheme of the selection sheet)."""

    scores: tuple[float, float, float] = PASS_FAIL_SCORES
    caps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    better: Better = "higher"
    kind: str = "pass_fail"

    def score(self, value: float, expected: float | None = None) -> float | None:
        if value >= 1:
            return self.scores[0]
        if value <= 0:
            return self.scores[2]
        return self.scores[1]

    def control_points(self) -> tuple[tuple[float, float], ...]:
        return ((1.0, self.scores[0]), (0.5, self.scores[1]), (0.0, self.scores[2]))

    def describe(self) -> str:
        p, q, f = self.scores
        return f"pass/partial/fail: {p:g}/{q:g}/{f:g}"


@dataclass(frozen=True)
class FindingsBased:
    """100 minus severity penalties of the open findings, floored at 0, then capped."""

    penalties: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PENALTIES))
    caps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    better: Better = "lower"
    kind: str = "findings"

    def score(self, value: float, expected: float | None = None) -> float | None:
        """Score from a total penalty (``value``); use ``score_findings`` for findings."""
        return _clip(100.0 - value)

    def penalty(self, findings: Iterable[Finding]) -> float:
        """Sum of the penalties of the open findings."""
        return float(sum(self.penalties.get(f.severity.value, 0.0) for f in findings if f.is_open))

    def control_points(self) -> tuple[tuple[float, float], ...]:
        return ((0.0, 100.0),)  # no penalty: full marks

    def describe(self) -> str:
        pen = ", ".join(f"{s} −{self.penalties[s]:g}" for s in reversed(SEVERITY_ORDER) if self.penalties.get(s))
        return f"findings: 100 minus penalties ({pen})"


def describe_caps(caps: Mapping[str, float]) -> str:
    """'; a critical finding caps at 20' style suffix for a function's description."""
    if not caps:
        return ""
    parts = [f"a {s} finding caps at {c:g}" for s, c in caps.items()]
    return "; " + ", ".join(parts)


def apply_caps(score: float, findings: Iterable[Finding], caps: Mapping[str, float]) -> tuple[float, str | None]:
    """Cap ``score`` by the open findings whose severity has a cap; return the capping finding id.

    A cap applies whenever its condition holds, whatever the score was: a score already
    below the cap keeps its value but is still reported as capped (so a dimension's
    ``cap_if_capped`` follows).
    """
    capped_by: str | None = None
    for finding in sorted(findings, key=lambda f: -f.severity.rank):
        cap = caps.get(finding.severity.value)
        if finding.is_open and cap is not None:
            score = min(score, float(cap))
            capped_by = capped_by or finding.id
    return score, capped_by


# --------------------------------------------------------------------------- parsing

_FUNCTION_KEYS: dict[str, set[str]] = {
    "bands": {"bands", "otherwise"},
    "linear": {"good", "bad"},
    "lognormal": {"p90", "p50"},
    "ratio": {"target"},
    "pass_fail": {"scores"},
    "findings": {"penalties"},
}


def _number(spec: Mapping[str, Any], key: str, unit: str | None) -> tuple[float, str]:
    if key not in spec:
        raise FunctionSpecError(f"'{spec.get('type')}' function needs '{key}'")
    try:
        value = parse_quantity(spec[key], unit)
    except UnitError as exc:
        raise FunctionSpecError(f"'{key}': {exc}") from None
    return value, _label(spec[key], value, unit)


def _severity_map(raw: Any, what: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise FunctionSpecError(f"'{what}' must map severities to numbers")
    out: dict[str, float] = {}
    for severity, number in raw.items():
        if severity not in SEVERITY_ORDER:
            raise FunctionSpecError(f"'{what}': unknown severity {severity!r} (one of {', '.join(SEVERITY_ORDER)})")
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= 100:
            raise FunctionSpecError(f"'{what}.{severity}' must be a number 0–100")
        out[str(severity)] = float(number)
    return out


def parse_function(spec: Any, unit: str | None = None, better: str | None = None) -> ScoringFunction:
    """Build a scoring function from its hierarchy mapping; raise FunctionSpecError if wrong.

    ``better`` is the leaf's declared direction; it must agree with the function's own
    (linear and log-normal infer it from their control points).
    """
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise FunctionSpecError("function must be a mapping with a 'type'")
    kind = spec["type"]
    if kind not in _FUNCTION_KEYS:
        raise FunctionSpecError(f"unknown function type {kind!r} (one of {', '.join(_FUNCTION_KEYS)})")
    unknown = set(spec) - _FUNCTION_KEYS[kind] - {"type", "cap"}
    if unknown:
        raise FunctionSpecError(f"unknown key(s) for '{kind}' function: {', '.join(sorted(map(str, unknown)))}")
    if better is not None and better not in ("lower", "higher"):
        raise FunctionSpecError(f"better must be 'lower' or 'higher', got {better!r}")
    caps = _severity_map(spec["cap"], "cap") if "cap" in spec else dict(DEFAULT_CAPS)
    fn: ScoringFunction
    if kind == "bands":
        fn = _parse_bands(spec, unit, better or "lower", caps)
    elif kind == "linear":
        good, good_label = _number(spec, "good", unit)
        bad, bad_label = _number(spec, "bad", unit)
        if good == bad:
            raise FunctionSpecError("linear function needs good ≠ bad")
        fn = Linear(good, bad, (good_label, bad_label), caps)
    elif kind == "lognormal":
        p90, p90_label = _number(spec, "p90", unit)
        p50, p50_label = _number(spec, "p50", unit)
        if p90 <= 0 or p50 <= 0 or p90 == p50 or math.isinf(p90) or math.isinf(p50):
            raise FunctionSpecError("log-normal function needs positive, finite p90 ≠ p50")
        fn = LogNormal(p90, p50, (p90_label, p50_label), caps)
    elif kind == "ratio":
        target, label = _number(spec, "target", unit) if "target" in spec else (None, None)
        fn = Ratio("lower" if better == "lower" else "higher", target, label, caps)  # better checked above
    elif kind == "pass_fail":
        scores = spec.get("scores", list(PASS_FAIL_SCORES))
        if not isinstance(scores, list) or len(scores) != 3 or not all(isinstance(s, (int, float)) for s in scores):
            raise FunctionSpecError("pass_fail 'scores' must be [pass, partial, fail]")
        fn = PassFail(tuple(float(s) for s in scores), caps)  # type: ignore[arg-type]
    else:
        penalties = dict(DEFAULT_PENALTIES)
        penalties.update(_severity_map(spec.get("penalties", {}), "penalties"))
        fn = FindingsBased(penalties, caps)
    if better is not None and fn.better != better:
        raise FunctionSpecError(f"function says {fn.better} is better but the indicator says {better}")
    return fn


def _parse_bands(spec: Mapping[str, Any], unit: str | None, better: str, caps: dict[str, float]) -> Bands:
    rows = spec.get("bands")
    if not isinstance(rows, list) or not rows:
        raise FunctionSpecError("bands function needs 'bands: [[limit, score], …]'")
    limits: list[float] = []
    scores: list[float] = []
    labels: list[str] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 2 or isinstance(row[1], bool) or not isinstance(row[1], (int, float)):
            raise FunctionSpecError(f"band {row!r} must be [limit, score]")
        try:
            limit = parse_quantity(row[0], unit)
        except UnitError as exc:
            raise FunctionSpecError(f"band limit: {exc}") from None
        limits.append(limit)
        scores.append(float(row[1]))
        labels.append(_label(row[0], limit, unit))
    ordered = sorted(limits) if better == "lower" else sorted(limits, reverse=True)
    if limits != ordered or len(set(limits)) != len(limits):
        order = "ascending" if better == "lower" else "descending"
        raise FunctionSpecError(f"band limits must be strictly {order} when {better} is better")
    otherwise = spec.get("otherwise", 0)
    if isinstance(otherwise, bool) or not isinstance(otherwise, (int, float)):
        raise FunctionSpecError("bands 'otherwise' must be a number")
    return Bands(tuple(limits), tuple(scores), float(otherwise), better, tuple(labels), caps)  # type: ignore[arg-type]
