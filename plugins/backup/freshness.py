"""How old the newest backup is, compared with the RPO target and the expected schedule.

Read from ``list_backups`` before the probe triggers anything, so the audit's own backup
never makes a stale schedule look fresh.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

FREQUENCY_H = {"hourly": 1.0, "daily": 24.0, "weekly": 168.0}
SCHEDULE_GRACE = 1.25  # a daily backup may be up to 30 h old before the schedule counts as missed


def parse_time(value: Any) -> dt.datetime | None:
    """An aware UTC datetime from ISO 8601 text or epoch seconds/milliseconds; None if unusable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    if isinstance(value, str) and value.strip():
        text = value.strip().replace("Z", "+00:00").replace(" ", "T", 1)
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
    return None


@dataclass
class Freshness:
    """Newest backup's age and whether it meets the RPO target and the schedule."""

    count: int
    newest_id: Any = None
    newest_at: str | None = None
    age_h: float | None = None
    rpo_target_h: float = 24.0
    frequency: str = "daily"
    gaps_h: list[float] = field(default_factory=list)
    unparsable: int = 0

    @property
    def frequency_h(self) -> float:
        return FREQUENCY_H[self.frequency]

    @property
    def limit_h(self) -> float:
        """The age beyond which the newest backup is stale: the RPO target or a missed schedule."""
        return min(self.rpo_target_h, self.frequency_h * SCHEDULE_GRACE)

    @property
    def stale(self) -> bool:
        return self.age_h is None or self.age_h > self.limit_h

    def details(self) -> dict[str, Any]:
        return {"backups": self.count, "newest_id": self.newest_id, "newest_at": self.newest_at,
                "age_h": None if self.age_h is None else round(self.age_h, 3), "rpo_target_h": self.rpo_target_h,
                "expected_frequency": self.frequency, "limit_h": self.limit_h,
                "largest_gap_h": max(self.gaps_h) if self.gaps_h else None, "unparsable_dates": self.unparsable}


def evaluate(items: list[dict[str, Any]], created_at_field: str, id_field: str, rpo_target_h: float, frequency: str,
             now: dt.datetime | None = None) -> Freshness:
    """Freshness of a backup catalogue (any order); gaps are between consecutive backups, hours."""
    now = now or dt.datetime.now(dt.UTC)
    dated: list[tuple[dt.datetime, Any]] = []
    unparsable = 0
    for item in items:
        moment = parse_time(item.get(created_at_field))
        if moment is None:
            unparsable += 1
        else:
            dated.append((moment, item.get(id_field)))
    report = Freshness(count=len(items), rpo_target_h=rpo_target_h, frequency=frequency, unparsable=unparsable)
    if not dated:
        return report
    dated.sort(key=lambda pair: pair[0])
    newest, newest_id = dated[-1]
    report.newest_id = newest_id
    report.newest_at = newest.isoformat()
    report.age_h = max(0.0, (now - newest).total_seconds() / 3600.0)
    report.gaps_h = [round((b[0] - a[0]).total_seconds() / 3600.0, 3) for a, b in zip(dated, dated[1:])]
    return report
