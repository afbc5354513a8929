"""The backup probe's section of the HTML report: measured RTO and RPO, the drill's timeline, canaries."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from crm_audit.core.model import ProbeResult
from crm_audit.report import charts
from crm_audit.report.section import ReportSection, as_dict, as_list, kv, show
from crm_audit.report.view import as_float

BACKUP_KEYS = ("timeline", "rto_s", "rpo_s", "canaries")


def backup_view(result: ProbeResult) -> dict[str, Any] | None:
    """The timeline (with its chart), RTO, RPO, canaries and other data; None when the drill recorded none."""
    art = result.artifacts
    if "timeline" not in art and isinstance(art.get("backup"), dict):  # the drill nests its record
        art = {**art["backup"], **{k: v for k, v in art.items() if k != "backup"}}
    events = [as_dict(e) for e in as_list(art.get("timeline"))]
    if not events and art.get("rto_s") is None and art.get("rpo_s") is None and not art.get("canaries"):
        return None
    return {
        "events": [
            {"t_s": e.get("t_s"), "event": e.get("event"),
             "details": ", ".join(f"{k}: {show(v)}" for k, v in e.items() if k not in ("t_s", "event"))}
            for e in sorted(events, key=lambda e: as_float(e.get("t_s")) or 0.0)
        ],
        "rto": art.get("rto_s"),
        "rpo": art.get("rpo_s"),
        "canaries": kv(art.get("canaries")),
        "extra": [(k, show(v)) for k, v in art.items() if k not in BACKUP_KEYS and v not in (None, [], {})],
        "chart": charts.timeline(events),
    }


SECTION = ReportSection(probe="backup", template=files(__package__) / "report.html.j2", view=backup_view)
