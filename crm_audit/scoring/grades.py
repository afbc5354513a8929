"""The grade set shared by crisp and fuzzy evaluation: Excellent ≥ 90, Good 70–89, Pass 50–69, Fail < 50.

The bands follow the satisfaction scale of the source documents (very satisfied 90–100,
satisfied 70–89, average 50–69, dissatisfied 0–49).
"""

from __future__ import annotations

GRADES: tuple[str, ...] = ("Excellent", "Good", "Pass", "Fail")
#: lowest score of each grade, in the order of GRADES
GRADE_FLOORS: tuple[float, ...] = (90.0, 70.0, 50.0, 0.0)


def grade_of(score: float | None) -> str | None:
    """The crisp grade of a 0–100 score (None stays None)."""
    if score is None:
        return None
    for grade, floor in zip(GRADES, GRADE_FLOORS):
        if score >= floor:
            return grade
    return GRADES[-1]
