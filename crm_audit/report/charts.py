"""Geometry of the HTML report's inline SVG charts, computed from the data.

Functions here return plain dicts of numbers and label strings; the templates turn them
into SVG elements, so every label still goes through Jinja's autoescaping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from crm_audit.report.view import as_float, fmt_num


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high], about ``count`` of them."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks: list[float] = []
    value = start
    while value <= high + step * 1e-9 and len(ticks) < 50:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _scale(value: float, lo: float, hi: float, a: float, b: float) -> float:
    if hi == lo:
        return a
    return a + (value - lo) * (b - a) / (hi - lo)


LABEL_CHARS = 46


def bars(rows: Sequence[dict[str, Any]], maximum: float = 100.0, width: float = 480.0) -> dict[str, Any]:
    """Horizontal bars, label above each: rows have label, value (None = not assessed), cls."""
    row_h, bar_h, left, right = 46.0, 16.0, 4.0, 104.0
    span = width - left - right
    out = []
    for i, row in enumerate(rows):
        y = i * row_h
        value = as_float(row.get("value"))
        frac = 0.0 if value is None or maximum <= 0 else max(0.0, min(1.0, value / maximum))
        label = str(row.get("label", ""))
        out.append({
            "label": label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…",
            "full_label": label,
            "note": row.get("note", ""),
            "cls": row.get("cls", ""),
            "text_y": round(y + 15, 1),
            "bar_y": round(y + 21, 1),
            "bar_h": bar_h,
            "x": left,
            "w": round(span * frac, 1),
            "track_w": round(span, 1),
            "value_x": round(left + span + 8, 1),
            "value": "not assessed" if value is None else fmt_num(value),
            "missing": value is None,
        })
    grid = [{"x": round(left + span * t / maximum, 1), "label": fmt_num(t)} for t in nice_ticks(0, maximum, 4)
            if t <= maximum] if maximum > 0 else []
    return {"width": width, "height": round(len(rows) * row_h + 6, 1), "rows": out, "grid": grid}


def histogram(
    edges: Sequence[Any], counts: Sequence[Any], markers: Sequence[tuple[str, Any, str]] = ()
) -> dict[str, Any] | None:
    """Vertical bars of a latency histogram; markers are (label, x value, css class) lines."""
    pairs = []
    for i, count in enumerate(counts):
        if i + 1 >= len(edges):
            break
        lo, hi, n = as_float(edges[i]), as_float(edges[i + 1]), as_float(count)
        if lo is None or hi is None or n is None:
            return None
        pairs.append((lo, hi, max(n, 0.0)))
    if not pairs:
        return None
    width, height, ml, mr, mt, mb = 600.0, 220.0, 48.0, 12.0, 14.0, 34.0
    x_lo, x_hi = pairs[0][0], pairs[-1][1]
    for _, value, _ in markers:  # widen the axis a little so a nearby SLO line stays visible
        v = as_float(value)
        if v is not None and x_hi < v <= x_hi + (x_hi - x_lo) * 0.5:
            x_hi = v * 1.03
    top = max(n for _, _, n in pairs) or 1.0
    y_ticks = nice_ticks(0, top, 4)
    y_max = max(y_ticks[-1], top)
    bars_out = []
    for lo, hi, n in pairs:
        x0 = _scale(lo, x_lo, x_hi, ml, width - mr)
        x1 = _scale(hi, x_lo, x_hi, ml, width - mr)
        y = _scale(n, 0, y_max, height - mb, mt)
        bars_out.append({"x": round(x0, 1), "w": round(max(x1 - x0 - 1, 0.5), 1), "y": round(y, 1),
                         "h": round(height - mb - y, 1), "tip": f"{fmt_num(lo)}–{fmt_num(hi)} ms: {fmt_num(n)}"})
    x_ticks = [{"x": round(_scale(t, x_lo, x_hi, ml, width - mr), 1), "label": fmt_num(t)}
               for t in nice_ticks(x_lo, x_hi, 6) if x_lo <= t <= x_hi]
    marks = []
    for label, value, cls in markers:
        v = as_float(value)
        if v is not None and x_lo <= v <= x_hi:
            marks.append({"x": round(_scale(v, x_lo, x_hi, ml, width - mr), 1), "label": label, "cls": cls})
    return {
        "width": width, "height": height, "left": ml, "right": width - mr, "top": mt, "bottom": height - mb,
        "bars": bars_out, "x_ticks": x_ticks, "markers": marks,
        "y_ticks": [{"y": round(_scale(t, 0, y_max, height - mb, mt), 1), "label": fmt_num(t)} for t in y_ticks],
    }


def load_curve(steps: Sequence[dict[str, Any]], slo_ms: Any, max_users: Any) -> dict[str, Any] | None:
    """p95 latency and throughput against concurrent users, with the SLO and the knee."""
    points = []
    for step in steps:
        users, p95, rps = as_float(step.get("users")), as_float(step.get("p95_ms")), as_float(step.get("rps"))
        if users is not None:
            points.append((users, p95, rps, bool(step.get("within_slo"))))
    if not points:
        return None
    width, height, ml, mr, mt, mb = 600.0, 260.0, 56.0, 56.0, 16.0, 36.0
    xs = [p[0] for p in points]
    x_ticks_v = nice_ticks(0, max(xs), 6)
    x_hi = max(x_ticks_v[-1], max(xs))
    slo = as_float(slo_ms)
    lat_top = max([p[1] for p in points if p[1] is not None] + ([slo] if slo else []) + [1.0])
    lat_ticks = nice_ticks(0, lat_top, 4)
    lat_hi = max(lat_ticks[-1], lat_top)
    rps_top = max([p[2] for p in points if p[2] is not None] + [1.0])
    rps_ticks = nice_ticks(0, rps_top, 4)
    rps_hi = max(rps_ticks[-1], rps_top)

    def sx(v: float) -> float:
        return round(_scale(v, 0, x_hi, ml, width - mr), 1)

    def sy(v: float, hi: float) -> float:
        return round(_scale(v, 0, hi, height - mb, mt), 1)

    lat_pts = [{"x": sx(u), "y": sy(p, lat_hi), "ok": ok, "tip": f"{fmt_num(u)} users: p95 {fmt_num(p)} ms"}
               for u, p, _, ok in points if p is not None]
    rps_pts = [{"x": sx(u), "y": sy(r, rps_hi), "tip": f"{fmt_num(u)} users: {fmt_num(r)} req/s"}
               for u, _, r, _ in points if r is not None]
    knee = as_float(max_users)
    return {
        "width": width, "height": height, "left": ml, "right": width - mr, "top": mt, "bottom": height - mb,
        "latency": lat_pts, "latency_path": " ".join(f"{p['x']},{p['y']}" for p in lat_pts),
        "rps": rps_pts, "rps_path": " ".join(f"{p['x']},{p['y']}" for p in rps_pts),
        "x_ticks": [{"x": sx(t), "label": fmt_num(t)} for t in x_ticks_v if t <= x_hi],
        "lat_ticks": [{"y": sy(t, lat_hi), "label": fmt_num(t)} for t in lat_ticks],
        "rps_ticks": [{"y": sy(t, rps_hi), "label": fmt_num(t)} for t in rps_ticks],
        "slo_y": sy(slo, lat_hi) if slo is not None else None,
        "slo_label": f"SLO p95 {fmt_num(slo)} ms" if slo is not None else "",
        "knee_x": sx(knee) if knee is not None and 0 <= knee <= x_hi else None,
        "knee_label": f"max sustainable {fmt_num(knee)} users" if knee is not None else "",
    }


def timeline(events: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Backup / restore events placed on a time axis in seconds."""
    items: list[tuple[float, str]] = []
    for event in events:
        t = as_float(event.get("t_s"))
        if t is not None:
            items.append((t, str(event.get("event", ""))))
    items.sort()
    if not items:
        return None
    width, ml, mr = 600.0, 20.0, 20.0
    lanes = 3
    height = 60.0 + lanes * 18.0
    t_lo, t_hi = min(0.0, items[0][0]), max(items[-1][0], 1.0)
    axis_y = 30.0
    points = []
    for i, (t, name) in enumerate(items):
        x = round(_scale(t, t_lo, t_hi, ml, width - mr), 1)
        lane = i % lanes
        anchor = "start" if x < width * 0.25 else "end" if x > width * 0.75 else "middle"
        points.append({"x": x, "label": name, "t": fmt_num(t), "label_y": round(axis_y + 26 + lane * 18, 1),
                       "anchor": anchor})
    ticks = [{"x": round(_scale(t, t_lo, t_hi, ml, width - mr), 1), "label": f"{fmt_num(t)} s"}
             for t in nice_ticks(t_lo, t_hi, 5) if t_lo <= t <= t_hi]
    return {"width": width, "height": height, "left": ml, "right": width - mr, "axis_y": axis_y,
            "points": points, "ticks": ticks}


def gauge(score: Any) -> dict[str, Any]:
    """A ring showing a 0–100 score: circumference and the dash length of the filled part."""
    radius = 52.0
    circumference = 2 * math.pi * radius
    value = as_float(score)
    frac = 0.0 if value is None else max(0.0, min(1.0, value / 100.0))
    return {"r": radius, "c": round(circumference, 2), "dash": round(circumference * frac, 2),
            "text": "—" if value is None else fmt_num(value)}
