"""django-crm 1.x (BottleCRM) audited with profiles/django-crm-1x.yaml: the figures of docs/targets.md, section 3.

Starts PostgreSQL + django-crm 1.35 (tests/targets/django_crm_1x.py: two orgs, seeded, one PAT per
account), counts the rows of the tables an audit could leave something in (psql, as superuser),
runs ``crm-audit audit profiles/django-crm-1x.yaml`` as a whole process, counts again, and prints
(or, with ``--update-doc``, writes into docs/targets.md block ``django-crm-1x-result``) the
harness timings, the result and the machine's load average. Needs root, Debian's postgresql and
Python 3.12; the first run builds the venv and migrates (about 5 minutes), later runs reuse both.

Run: python bench/django_crm_1x_audit.py [--update-doc]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import ROOT, machine_line, update_block, utc_now
from audit_wall import breakdown, cli, timed

BLOCK = "django-crm-1x-result"
PROFILE = ROOT / "profiles" / "django-crm-1x.yaml"
ARGS = ["--format", "json,markdown"]


def run() -> dict[str, Any]:
    """Start the target, audit it once, and return the breakdown plus harness figures and row counts."""
    sys.path.insert(0, str(ROOT / "tests"))
    from targets.django_crm_1x import LOGIN_SCRIPT, DjangoCrm1xServer
    from targets.postgres import PostgresServer

    with PostgresServer() as pg, DjangoCrm1xServer(pg) as crm, tempfile.TemporaryDirectory(prefix="bench-1x-") as tmp:
        env = {**os.environ, **crm.env, **crm.login_env(), "CI": "1", "DJANGO_CRM_1X_URL": crm.base_url,
               "DJANGO_CRM_1X_LOGIN_SCRIPT": str(LOGIN_SCRIPT)}
        before = crm.row_counts()
        load_before = os.getloadavg()[0]
        wall, cpu, _ = timed(cli() + ["audit", str(PROFILE), *ARGS, "--out", tmp], env=env)
        load_after = os.getloadavg()[0]
        after = crm.row_counts()
        [path] = Path(tmp).glob("*/result.json")
        out = breakdown(path, wall)
        out.update(cpu_s=cpu, load_before=load_before, load_after=load_after, harness=dict(crm.timings),
                   leftovers={k: after[k] - before[k] for k in before if after[k] != before[k]})
    print(f"django-crm 1.x audit: {wall:.1f} s whole process, audit {out['audit_s']:.1f} s", flush=True)
    return out


def _status_counts(r: dict[str, Any], probe: str) -> str:
    n: dict[str, int] = {}
    for p in r["probes"]:
        if p["probe"] == probe:
            for f in p["findings"]:
                n[f["status"]] = n.get(f["status"], 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(n.items()))


def _ids(r: dict[str, Any], prefixes: tuple[str, ...]) -> str:
    """``id`` status pairs of the access findings whose id starts with one of ``prefixes``."""
    return ", ".join(f"`{f['id']}` {f['status']}" for p in r["probes"] if p["probe"] == "access"
                     for f in p["findings"] if f["id"].startswith(prefixes))


def section(b: dict[str, Any]) -> str:
    """The Markdown written between the block markers."""
    r = b["result"]
    sc = (r.get("scoring") or {}).get("overall") or {}
    cov = (r.get("scoring") or {}).get("coverage") or 0
    failed = sorted({(f["severity"], f["id"], f["title"]) for p in r["probes"] for f in p["findings"]
                     if f["status"] in ("fail", "failed")}, key=lambda t: ("critical", "high", "medium", "low",
                                                                            "info").index(t[0]) if t[0] in (
        "critical", "high", "medium", "low", "info") else 9)
    h = b["harness"]
    machine = machine_line(b["load_before"], b["load_after"])
    lines = [
        f"Run `{r['run_id']}`, measured {utc_now()} by `python bench/django_crm_1x_audit.py --update-doc`; "
        f"{machine}.", "",
        f"Harness (warm cache): venv {h.get('venv', 0):.1f} s, schema restore "
        f"{h.get('restore_schema_cache', h.get('migrate', 0)):.1f} s"
        + (" (no cache: full migrate)" if "migrate" in h else "")
        + f", seeding {h.get('seed', 0):.1f} s, gunicorn ready {h.get('serve', 0):.1f} s; "
        f"start total {h.get('start_total', 0):.1f} s.", "",
        f"`crm-audit audit profiles/django-crm-1x.yaml {' '.join(ARGS)}`: **{b['whole_s']:.1f} s** whole process, "
        f"{sum(p['requests'] for p in b['probes'].values())} requests. "
        f"**Score {sc.get('score')} / 100, coverage {cov * 100:.1f} %, verdict "
        f"{(r.get('verdict') or {}).get('verdict')}.** Access checks: {_status_counts(r, 'access')}. "
        f"Rows left behind (row counts before/after, psql): "
        + (json.dumps(b["leftovers"]) if b["leftovers"] else "**none**") + ".", "",
        "Tenant isolation and tokens: " + _ids(r, ("access.bola.", "access.tenant_leak.", "access.token.")) + ".", "",
        "| probe | s | requests | status |", "|---|---:|---:|---|",
        *[f"| {k} | {v['s']:.2f} | {v['requests']} | {v['status']} |" for k, v in b["probes"].items()], "",
        "Failed findings (each verified by hand below):", "", "| severity | id | finding |", "|---|---|---|",
        *[f"| {s} | `{i}` | {t.replace('|', '/')[:140]} |" for s, i, t in failed],
    ]
    lat = [m for p in r["probes"] if p["probe"] == "latency" for m in p["measurements"]
           if m["indicator"] == "perf.response_time_p95"]
    if lat:
        lines += ["", "Latency (the latency probe's samples after warm-up, one client, same box):", "",
                  "| endpoint | samples | p50 ms | p95 ms | SLO p95 ms |", "|---|---:|---:|---:|---:|"]
        for m in lat:
            xs = sorted(m.get("raw_samples") or [])
            p50 = f"{statistics.median(xs):.1f}" if xs else "—"
            lines.append(f"| {m.get('label')} | {len(xs)} | {p50} | {m['value']:.1f} | {m.get('expected'):g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update-doc", action="store_true", help=f"write docs/targets.md block {BLOCK}")
    args = ap.parse_args(argv)
    text = section(run())
    print(text)
    if args.update_doc:
        update_block(ROOT / "docs" / "targets.md", BLOCK, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
