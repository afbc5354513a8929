"""Per-probe views of ProbeResult.artifacts for the HTML report.

Each known probe (latency, load, tls, access, backup, data_quality, kpi) gets a function
that reads its artifact dict defensively and returns what its template draws; an artifact
that cannot be read falls back to the generic view, so one odd plugin never breaks a report.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from crm_audit.core.model import ProbeResult
from crm_audit.report import charts
from crm_audit.report.view import as_float, clip

VALUE_LIMIT = 300


def show(value: Any) -> str:
    """A short display string for any artifact value (nested data as compact JSON)."""
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
    """Key / display-value pairs of a dict, for definition lists."""
    if not isinstance(data, dict):
        return []
    return [(str(k), show(v)) for k, v in data.items()]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def latency_view(art: dict[str, Any]) -> dict[str, Any] | None:
    endpoints = []
    for ep in _list(art.get("endpoints")):
        ep = _dict(ep)
        summary = _dict(ep.get("summary"))
        slo = as_float(ep.get("slo_p95_ms"))
        p95 = as_float(summary.get("p95"))
        hist = _dict(ep.get("histogram"))
        markers = [("p50", summary.get("p50"), "mark-p50"), ("p95", p95, "mark-p95")]
        if slo is not None:
            markers.append(("SLO", slo, "mark-slo"))
        endpoints.append({
            "name": str(ep.get("name") or ep.get("path") or "endpoint"),
            "method": str(ep.get("method") or ""),
            "path": str(ep.get("path") or ""),
            "summary": summary,
            "ttfb": _dict(ep.get("ttfb")) or None,
            "slo": slo,
            "errors": ep.get("errors"),
            "over_slo": slo is not None and p95 is not None and p95 > slo,
            "chart": charts.histogram(_list(hist.get("edges")), _list(hist.get("counts")), markers),
        })
    return {"endpoints": endpoints} if endpoints else None


def load_view(art: dict[str, Any]) -> dict[str, Any] | None:
    steps = [_dict(s) for s in _list(art.get("steps"))]
    if not steps and not art.get("sustained") and not art.get("recovery"):
        return None
    return {
        "steps": steps,
        "max_users": art.get("max_sustainable_users"),
        "target_users": art.get("target_users"),
        "slo": art.get("slo_p95_ms"),
        "sustained": kv(art.get("sustained")),
        "recovery": kv(art.get("recovery")),
        "chart": charts.load_curve(steps, art.get("slo_p95_ms"), art.get("max_sustainable_users")),
    }


OLD_PROTOCOLS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1")


def _cipher(entry: Any) -> str:
    """A weak cipher as text: a plain name, or name (protocol, bits: reasons) from a dict."""
    if not isinstance(entry, dict):
        return str(entry)
    facts = [str(entry[k]) for k in ("protocol",) if entry.get(k)]
    if entry.get("bits"):
        facts.append(f"{entry['bits']} bits")
    reasons = ", ".join(str(r) for r in _list(entry.get("reasons")))
    text = str(entry.get("name") or show(entry))
    if facts or reasons:
        text += f" ({', '.join(facts)}{': ' + reasons if reasons else ''})"
    return text


def tls_view(art: dict[str, Any]) -> dict[str, Any] | None:
    servers = []
    for srv in _list(art.get("servers")):
        srv = _dict(srv)
        protocols = [
            {"name": str(name), "enabled": bool(on), "bad": bool(on) and str(name) in OLD_PROTOCOLS}
            for name, on in _dict(srv.get("protocols")).items()
        ]
        cert = _dict(srv.get("certificate"))
        days = as_float(cert.get("days_left"))
        mozilla = srv.get("mozilla")
        servers.append({
            "host": str(srv.get("host") or "?"),
            "port": srv.get("port"),
            "grade": srv.get("grade"),
            "error": srv.get("error"),
            "protocols": protocols,
            "weak_ciphers": [_cipher(c) for c in _list(srv.get("weak_ciphers"))],
            "certificate": kv(cert),
            "cert_problem": cert.get("trusted") is False or cert.get("hostname_match") is False
            or (days is not None and days < 30),
            "hsts": kv(srv.get("hsts")) if srv.get("hsts") is not None else None,
            "mozilla": {
                "profile": _dict(mozilla).get("profile"),
                "compliant": _dict(mozilla).get("compliant"),
                "issues": [str(i) for i in _list(_dict(mozilla).get("issues"))],
            } if isinstance(mozilla, dict) else None,
            "vulnerabilities": kv(srv.get("vulnerabilities")),
            "caps": [str(c) for c in _list(srv.get("caps"))],
        })
    return {"servers": servers} if servers else None


def access_view(art: dict[str, Any]) -> dict[str, Any] | None:
    matrix = _dict(art.get("matrix"))
    cells = [_dict(c) for c in _list(matrix.get("cells"))]
    if not cells:
        return None
    roles = [str(r) for r in _list(matrix.get("roles"))] or sorted({str(c.get("role")) for c in cells})
    resources = [str(r) for r in _list(matrix.get("resources"))] or sorted({str(c.get("resource")) for c in cells})
    actions = [str(a) for a in _list(matrix.get("actions"))] or sorted({str(c.get("action")) for c in cells})
    index = {(str(c.get("role")), str(c.get("resource")), str(c.get("action"))): c for c in cells}
    tables = []
    for resource in resources:
        used = [a for a in actions if any((r, resource, a) in index for r in roles)]
        if not used:
            continue
        rows = []
        for role in roles:
            row: list[dict[str, Any] | None] = []
            for action in used:
                cell = index.get((role, resource, action))
                if cell is None:
                    row.append(None)
                    continue
                expected = str(cell.get("expected") or "—")
                observed = str(cell.get("observed") or "—")
                mismatch = bool(cell.get("mismatch", expected != observed))
                status = cell.get("status")  # an HTTP status; some probes put a verdict word here
                row.append({"expected": expected, "observed": observed, "mismatch": mismatch,
                            "status": status if isinstance(status, int) and not isinstance(status, bool) else None,
                            "error": observed in ("error", "unknown")})
            rows.append({"role": role, "cells": row})
        tables.append({"resource": resource, "actions": used, "rows": rows})
    mismatches = sum(1 for c in cells if c.get("mismatch"))
    return {"tables": tables, "mismatches": mismatches, "cells": len(cells)}


BACKUP_KEYS = ("timeline", "rto_s", "rpo_s", "canaries")


def backup_view(art: dict[str, Any]) -> dict[str, Any] | None:
    if "timeline" not in art and isinstance(art.get("backup"), dict):  # the drill nests its record
        art = {**art["backup"], **{k: v for k, v in art.items() if k != "backup"}}
    events = [_dict(e) for e in _list(art.get("timeline"))]
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


def metrics_view(art: dict[str, Any]) -> dict[str, Any] | None:
    metrics = [_dict(m) for m in _list(art.get("metrics"))]
    extra = [(k, show(v)) for k, v in art.items() if k != "metrics" and v not in (None, [], {})]
    return {"metrics": metrics, "extra": extra} if metrics else None


VIEWS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any] | None]]] = {
    "latency": ("latency", latency_view),
    "load": ("load", load_view),
    "tls": ("tls", tls_view),
    "access": ("access", access_view),
    "backup": ("backup", backup_view),
    "data_quality": ("metrics", metrics_view),
    "kpi": ("metrics", metrics_view),
}


def probe_section(probe: ProbeResult) -> dict[str, Any] | None:
    """What to draw for one probe: its kind of template and view, or None when nothing to draw."""
    known = VIEWS.get(probe.probe)
    if known is not None and probe.artifacts:
        kind, build = known
        try:
            view = build(probe.artifacts)
        except Exception as exc:  # noqa: BLE001 - a malformed artifact must not break the report
            return {"kind": "generic", "probe": probe, "view": None, "extra": kv(probe.artifacts),
                    "error": f"{type(exc).__name__}: {exc}"}
        if view is not None:
            return {"kind": kind, "probe": probe, "view": view, "extra": [], "error": None}
    if known is not None:
        return None
    if not probe.measurements and not probe.findings and not probe.artifacts:
        return None
    return {"kind": "generic", "probe": probe, "view": None, "extra": kv(probe.artifacts), "error": None}
