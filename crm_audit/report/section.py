"""A probe's section of the HTML report: the contract a plugin fills, and helpers for its view model.

A plugin draws its probe's results through the ``crm_audit_register_report_sections`` hook: a
:class:`ReportSection` names the probe, a Jinja template and a ``view`` function that turns
the probe's :class:`~crm_audit.core.model.ProbeResult` into what the template draws. The
reporter reads nothing of a plugin's artifacts itself; a view that fails, or a probe without a
section, falls back to the generic section (measurements, findings, artifacts as data), so one
odd plugin never breaks a report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from crm_audit.core.model import ProbeResult
from crm_audit.report.view import clip

#: characters of one artifact value shown at most (``show``)
VALUE_LIMIT = 300


@dataclass(frozen=True)
class ReportSection:
    """How the HTML report draws one probe's results.

    The template is rendered inside the report (autoescaped, with the report's filters
    ``num``, ``val``, ``diff``, ``pct``, ``show``) and sees ``s.view`` (the view model),
    ``s.probe`` (the ProbeResult) and ``by_probe`` (the findings' views by probe id); it may
    ``{% import "_macros.j2" as m %}`` for ``m.kvlist``, ``m.measurements`` and ``m.metrics``.
    """

    #: the id of the probe whose results it draws
    probe: str
    #: the Jinja template: its source text, or a file (``importlib.resources.files(__package__) / "x.j2"``) read when a report is rendered
    template: str | Traversable | Path
    #: the probe's result → the view model the template draws, or None when there is nothing to draw (no section at all)
    view: Callable[[ProbeResult], Any]

    def source(self) -> str:
        """The template's source text."""
        return self.template if isinstance(self.template, str) else self.template.read_text(encoding="utf-8")


def show(value: Any) -> str:
    """A short display string for any artifact value (nested data as compact JSON, cut at VALUE_LIMIT)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    else:
        text = str(value)
    shown, cut = clip(text, VALUE_LIMIT)
    return shown + (f"… (+{cut})" if cut else "")


def kv(data: Any) -> list[tuple[str, str]]:
    """Key / display-value pairs of a dict, for ``m.kvlist`` (anything else: none)."""
    if not isinstance(data, dict):
        return []
    return [(str(k), show(v)) for k, v in data.items()]


def as_list(value: Any) -> list[Any]:
    """The value when it is a list, else an empty list (artifacts are read defensively)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """The value when it is a dict, else an empty dict (artifacts are read defensively)."""
    return value if isinstance(value, dict) else {}


def metrics_view(result: ProbeResult) -> dict[str, Any] | None:
    """Named metrics with value, expected, formula, numerator and denominator (``artifacts["metrics"]``),
    and the other artifacts as data: the view ``m.metrics`` draws; None without metrics."""
    art = result.artifacts
    metrics = [as_dict(m) for m in as_list(art.get("metrics"))]
    extra = [(k, show(v)) for k, v in art.items() if k != "metrics" and v not in (None, [], {})]
    return {"metrics": metrics, "extra": extra} if metrics else None


def probe_sections(result_probes: list[ProbeResult], sections: dict[str, ReportSection]) -> list[dict[str, Any]]:
    """What to draw for each probe: its plugin's section, the generic one, or nothing.

    A probe with a section is drawn by it when its view gives something; a view that raises
    falls back to the generic section with the error shown. A probe without a section gets the
    generic one when it has measurements, findings or artifacts.
    """
    out = []
    for probe in result_probes:
        section = sections.get(probe.probe)
        drawn = _section(probe, section) if section is not None else _generic(probe)
        if drawn is not None:
            out.append(drawn)
    return out


def _section(probe: ProbeResult, section: ReportSection) -> dict[str, Any] | None:
    try:
        view = section.view(probe)
    except Exception as exc:  # noqa: BLE001 - a malformed artifact must not break the report
        return {"section": None, "probe": probe, "view": None, "extra": kv(probe.artifacts),
                "error": f"{type(exc).__name__}: {exc}"}
    if view is None:
        return None
    return {"section": section, "probe": probe, "view": view, "extra": [], "error": None}


def _generic(probe: ProbeResult) -> dict[str, Any] | None:
    if not probe.measurements and not probe.findings and not probe.artifacts:
        return None
    return {"section": None, "probe": probe, "view": None, "extra": kv(probe.artifacts), "error": None}
