"""Grade scales and the precision at which scores are shown.

The default scale is Excellent ≥ 90, Good 70–89, Pass 50–69, Fail < 50 (the satisfaction
scale of the source documents: very satisfied 90–100, satisfied 70–89, average 50–69,
dissatisfied 0–49). A hierarchy may declare its own ordered scale (``grades:``), e.g. the
five grades 优/良/中/差/劣; see ``parse_grade_scale``.

Scores are shown (JSON, terminal, HTML) rounded to ``SCORE_DECIMALS`` decimals, and a grade
is always taken from the shown value: ``grade_of(89.96)`` is Excellent because 89.96 is
shown as 90.0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crm_audit.core.errors import InputFileError

#: decimals of every score shown (JSON, terminal, HTML); grades are taken from the shown value
SCORE_DECIMALS = 1
#: half the width of the linear hand-over around each boundary when memberships are derived
HALF_WIDTH = 5.0

Trapezoid = tuple[float, float, float, float]


class GradeScaleError(InputFileError):
    """A ``grades:`` declaration that cannot be used."""


def shown(score: float | None) -> float | None:
    """``score`` as every output shows it: rounded to SCORE_DECIMALS; None or non-finite → None."""
    if score is None or not math.isfinite(score):
        return None
    return round(float(score), SCORE_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True)
class GradeScale:
    """An ordered grade scale, best grade first.

    ``floors`` are the crisp lower bounds (strictly descending, the last 0); ``shapes`` the
    trapezoidal membership function (a, b, c, d) of each grade: 0 below a, rising to 1 at b,
    1 up to c, falling to 0 at d; ``values`` the score each grade stands for when a fuzzy
    vector B is defuzzified (Σ b_j · value_j).
    """

    names: tuple[str, ...]
    floors: tuple[float, ...]
    shapes: tuple[Trapezoid, ...]
    values: tuple[float, ...]

    def grade_of(self, score: float | None) -> str | None:
        """The crisp grade of the *shown* score (None stays None)."""
        value = shown(score)
        if value is None:
            return None
        for name, floor in zip(self.names, self.floors):
            if value >= floor:
                return name
        return self.names[-1]

    def as_dict(self) -> dict[str, Any]:
        """JSON form: names, floors, membership trapezoids and values."""
        return {"names": list(self.names), "floors": list(self.floors),
                "membership": [list(s) for s in self.shapes], "values": list(self.values)}


def derived_shapes(floors: Sequence[float]) -> tuple[Trapezoid, ...]:
    """Trapezoids with a linear hand-over centred on each boundary between grades.

    The hand-over is 2·HALF_WIDTH wide, narrowed to the narrowest band where bands are
    narrower than that, so memberships always sum to 1 and a boundary score is half in
    each of its two grades.
    """
    uppers = [100.0] + [float(f) for f in floors[:-1]]
    widths = [u - f for u, f in zip(uppers, floors)]
    h = min([HALF_WIDTH] + [w / 2 for w in widths])
    shapes = []
    for k, (lo, hi) in enumerate(zip(floors, uppers)):
        a, b = (0.0, 0.0) if k == len(floors) - 1 else (lo - h, lo + h)
        c, d = (100.0, 100.0) if k == 0 else (hi - h, hi + h)
        shapes.append((a, b, c, d))
    return tuple(shapes)


def _band_midpoints(floors: Sequence[float]) -> tuple[float, ...]:
    uppers = [100.0] + list(floors[:-1])
    return tuple((u + f) / 2 for u, f in zip(uppers, floors))


_DEFAULT_FLOORS = (90.0, 70.0, 50.0, 0.0)
DEFAULT_SCALE = GradeScale(
    names=("Excellent", "Good", "Pass", "Fail"),
    floors=_DEFAULT_FLOORS,
    shapes=derived_shapes(_DEFAULT_FLOORS),
    values=_band_midpoints(_DEFAULT_FLOORS),
)
GRADES: tuple[str, ...] = DEFAULT_SCALE.names
#: lowest score of each grade, in the order of GRADES
GRADE_FLOORS: tuple[float, ...] = DEFAULT_SCALE.floors


def grade_of(score: float | None, scale: GradeScale = DEFAULT_SCALE) -> str | None:
    """The crisp grade of a 0–100 score as shown (rounded to SCORE_DECIMALS); None stays None."""
    return scale.grade_of(score)


_GRADE_KEYS = {"name", "floor", "membership", "value"}


def _number(raw: Any, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or not 0 <= raw <= 100:
        raise GradeScaleError(f"{what} must be a number from 0 to 100, got {raw!r}")
    return float(raw)


def parse_grade_scale(raw: Any) -> GradeScale:
    """Build a scale from a hierarchy's ``grades:`` list (best first); GradeScaleError if wrong.

    Each entry: ``{name, floor, value?, membership?: [a, b, c, d]}``. Floors must descend
    strictly and the last be 0; ``value`` defaults to the middle of the grade's band;
    without ``membership`` every grade gets the derived trapezoids of ``derived_shapes``.
    """
    if not isinstance(raw, list) or len(raw) < 2:
        raise GradeScaleError("must be a list of at least two grades, best first: [{name, floor, value, membership}, …]")
    names: list[str] = []
    floors: list[float] = []
    values: list[float | None] = []
    shapes: list[Trapezoid | None] = []
    for k, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict) or "name" not in entry or "floor" not in entry:
            raise GradeScaleError(f"grade #{k} must be a mapping with 'name' and 'floor'")
        unknown = set(entry) - _GRADE_KEYS
        if unknown:
            raise GradeScaleError(f"grade #{k}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: {', '.join(sorted(_GRADE_KEYS))})")
        name = str(entry["name"]).strip()
        if not name or name in names:
            raise GradeScaleError(f"grade #{k}: name {entry['name']!r} is empty or repeated")
        names.append(name)
        floors.append(_number(entry["floor"], f"grade '{name}': floor"))
        values.append(_number(entry["value"], f"grade '{name}': value") if "value" in entry else None)
        shapes.append(_trapezoid(entry["membership"], name) if "membership" in entry else None)
    if any(b >= a for a, b in zip(floors, floors[1:])) or floors[-1] != 0:
        raise GradeScaleError(f"floors {floors} must descend strictly, best grade first, the last being 0")
    if any(s is None for s in shapes) and any(s is not None for s in shapes):
        raise GradeScaleError("give 'membership' for every grade or for none (then it is derived from the floors)")
    final_shapes = derived_shapes(floors) if shapes[0] is None else tuple(s for s in shapes if s is not None)
    mids = _band_midpoints(floors)
    scale = GradeScale(tuple(names), tuple(floors), final_shapes,
                       tuple(v if v is not None else m for v, m in zip(values, mids)))
    _check_coverage(scale)
    return scale


def _trapezoid(raw: Any, name: str) -> Trapezoid:
    what = f"grade '{name}': membership"
    if not isinstance(raw, list) or len(raw) != 4:
        raise GradeScaleError(f"{what} must be a trapezoid [a, b, c, d] (a triangle is [a, b, b, d])")
    a, b, c, d = (_number(x, what) for x in raw)
    if not a <= b <= c <= d:
        raise GradeScaleError(f"{what} {raw} must satisfy a ≤ b ≤ c ≤ d")
    return (a, b, c, d)


def _check_coverage(scale: GradeScale) -> None:
    """Every score 0–100 (in steps of 0.01) must belong to some grade."""
    import numpy as np

    from crm_audit.scoring.fuzzy import membership_matrix

    grid = np.linspace(0.0, 100.0, 10001)
    total = membership_matrix(grid, scale).sum(axis=1)
    if np.any(total <= 0):
        hole = float(grid[int(np.argmax(total <= 0))])
        raise GradeScaleError(f"the membership functions leave score {hole:g} in no grade")
