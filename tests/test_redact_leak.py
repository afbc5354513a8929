"""A careless CRM echoes every secret, plain and encoded, in headers, bodies and 503 pages:
`crm-audit audit --format all` must keep none of them, in any output format or on the console."""

from __future__ import annotations

import base64
import html
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

from local_http import LocalServer

from crm_audit.core.net import free_port
from crm_audit.core.redact import MASK

TOKEN = "tok-Lk9/Qz+7=wX4-leak"
API_KEY = "key_R2d2&C3po-9xq"
PASSWORD = "pw S3cr3t!Leak%42"
USER = "leak-user"
SECRETS = {"LEAK_TOKEN": TOKEN, "LEAK_API_KEY": API_KEY, "LEAK_PASSWORD": PASSWORD}


def _b64(raw: str, url: bool = False, pad: bool = True) -> str:
    enc = (base64.urlsafe_b64encode if url else base64.b64encode)(raw.encode()).decode()
    return enc if pad else enc.rstrip("=")


def forms(secret: str) -> dict[str, str]:
    """The forms the server echoes (and the scanner looks for)."""
    payload = _b64(json.dumps({"sub": USER, "secret": secret}), url=True, pad=False)
    return {
        "plain": secret,
        "base64": _b64(secret),
        "base64 no padding": _b64(secret, pad=False),
        "base64url": _b64(secret, url=True, pad=False),
        "basic user:secret": _b64(f"{USER}:{secret}"),
        "basic inside longer": _b64(f"x{USER}:{secret}:trailer"),
        "quote": quote(secret, safe=""),
        "quote_plus": quote_plus(secret),
        "json-escaped": json.dumps(secret)[1:-1],
        "hex": secret.encode().hex(),
        "jwt payload": payload,
        "cookie": f"sid={_b64(secret)}",
    }


SEEDS = [(name, form, text) for name, secret in SECRETS.items() for form, text in forms(secret).items()]


def _route(text: str, status: int):
    def handle(_h: object) -> tuple[int, dict[str, str], bytes]:
        body = f"<html><h1>{status} Service Unavailable</h1><p>debug: {text}</p></html>".encode()
        headers = {"Content-Type": "text/html", "X-Debug-Echo": quote(text, safe="=:/+"),
                   "Set-Cookie": f"sid={_b64(TOKEN)}; HttpOnly"}
        return status, headers, body
    return handle


def test_no_form_of_any_secret_reaches_any_output(tmp_path: Path) -> None:
    routes = {f"/leak/{i}": _route(text, 503 if i % 2 else 500) for i, (_, _, text) in enumerate(SEEDS)}
    routes["/ok"] = lambda h: (200, {"Content-Type": "application/json"},
                               json.dumps({"echo_auth": h.headers.get("Authorization"),
                                           "token": TOKEN, "cookie": f"sid={_b64(TOKEN)}"}).encode())
    accounts = ["bearer", "key", "basic"]
    with LocalServer(routes) as srv:
        closed_port = free_port()  # a port nothing listens on: the request fails with the URL in the error
        endpoints = [f"  - {{name: leak{i}, path: /leak/{i}, account: {accounts[i % 3]}, slo_p95_ms: 5000}}"
                     for i in range(len(SEEDS))]
        endpoints += [
            "  - {name: ok, path: /ok, account: bearer}",
            f"  - {{name: in path, path: '/ok/{_b64(TOKEN, url=True)}?api_key={quote(API_KEY, safe='')}', account: key}}",
            f"  - {{name: closed, path: 'http://127.0.0.1:{closed_port}/x/{_b64(TOKEN)}', account: basic}}",
        ]
        profile = tmp_path / "leak.yaml"
        profile.write_text("\n".join([
            "name: leaky CRM",
            f"target: {{base_url: '{srv.base_url}', rate_limit_rps: 1000, timeout_s: 5}}",
            "accounts:",
            "  - {name: bearer, role: admin, auth: {method: bearer, token: '${LEAK_TOKEN}'}}",
            "  - {name: key, role: admin, auth: {method: api_key, api_key: '${LEAK_API_KEY}'}}",
            f"  - {{name: basic, role: admin, auth: {{method: basic, username: {USER}, password: '${{LEAK_PASSWORD}}'}}}}",
            "endpoints:", *endpoints,
            "plugins:", "  latency: {samples: 1, warmup: 0}",
            "hierarchy: default", "",
        ]), encoding="utf-8")
        out = tmp_path / "out"
        env = {**os.environ, **SECRETS}
        env.pop("CRM_AUDIT_DEBUG", None)
        proc = subprocess.run([sys.executable, "-m", "crm_audit", "audit", str(profile), "--only", "latency",
                               "--format", "all", "--out", str(out)], capture_output=True, text=True, env=env,
                              timeout=300)
        hits = list(srv.hits)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert all(any(h.startswith(f"GET /leak/{i}") for h in hits) for i in range(len(SEEDS))), hits

    files = sorted(p for p in out.rglob("*") if p.is_file())
    kinds = {p.suffix for p in files}
    assert {".json", ".html", ".xml", ".md", ".sarif", ".csv"} <= kinds, kinds
    outputs = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in files}
    outputs.update(stdout=proc.stdout, stderr=proc.stderr)
    leaks = []
    for name, text in outputs.items():
        for var, secret in SECRETS.items():
            for form, value in forms(secret).items():
                for shown in {value, html.escape(value), json.dumps(value)[1:-1], html.escape(json.dumps(value)[1:-1])}:
                    if shown in text:
                        leaks.append(f"{var} as {form} in {name}")
    assert not leaks, sorted(set(leaks))
    result = json.loads(next(out.glob("*/result.json")).read_text(encoding="utf-8"))
    excerpts = [ev.get("excerpt") or "" for p in result["probes"] for f in p["findings"] for ev in f["evidence"]]
    assert sum(MASK in e for e in excerpts) >= len(SEEDS), "the echoed secrets did not reach the evidence"
