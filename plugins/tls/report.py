"""The TLS probe's section of the HTML report: per server, protocols, weak ciphers, certificate, HSTS."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from crm_audit.core.model import ProbeResult
from crm_audit.report.section import ReportSection, as_dict, as_list, kv, show
from crm_audit.report.view import as_float

OLD_PROTOCOLS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1")


def _cipher(entry: Any) -> str:
    """A weak cipher as text: a plain name, or name (protocol, bits: reasons) from a dict."""
    if not isinstance(entry, dict):
        return str(entry)
    facts = [str(entry[k]) for k in ("protocol",) if entry.get(k)]
    if entry.get("bits"):
        facts.append(f"{entry['bits']} bits")
    reasons = ", ".join(str(r) for r in as_list(entry.get("reasons")))
    text = str(entry.get("name") or show(entry))
    if facts or reasons:
        text += f" ({', '.join(facts)}{': ' + reasons if reasons else ''})"
    return text


def tls_view(result: ProbeResult) -> dict[str, Any] | None:
    """Each scanned server as the template draws it; None without servers."""
    servers = []
    for srv in as_list(result.artifacts.get("servers")):
        srv = as_dict(srv)
        protocols = [
            {"name": str(name), "enabled": bool(on), "bad": bool(on) and str(name) in OLD_PROTOCOLS}
            for name, on in as_dict(srv.get("protocols")).items()
        ]
        cert = as_dict(srv.get("certificate"))
        days = as_float(cert.get("days_left"))
        mozilla = srv.get("mozilla")
        servers.append({
            "host": str(srv.get("host") or "?"),
            "port": srv.get("port"),
            "grade": srv.get("grade"),
            "error": srv.get("error"),
            "protocols": protocols,
            "weak_ciphers": [_cipher(c) for c in as_list(srv.get("weak_ciphers"))],
            "certificate": kv(cert),
            "cert_problem": cert.get("trusted") is False or cert.get("hostname_match") is False
            or (days is not None and days < 30),
            "hsts": kv(srv.get("hsts")) if srv.get("hsts") is not None else None,
            "mozilla": {
                "profile": as_dict(mozilla).get("profile"),
                "compliant": as_dict(mozilla).get("compliant"),
                "issues": [str(i) for i in as_list(as_dict(mozilla).get("issues"))],
            } if isinstance(mozilla, dict) else None,
            "vulnerabilities": kv(srv.get("vulnerabilities")),
            "caps": [str(c) for c in as_list(srv.get("caps"))],
        })
    return {"servers": servers} if servers else None


SECTION = ReportSection(probe="tls", template=files(__package__) / "report.html.j2", view=tls_view)
