"""Where users wait: command-line start-up, `crm-audit demo` and the django-crm audit, end to end.

1. start-up: ``crm-audit --version``, ``--help`` and ``validate profiles/demo.yaml`` (whole
   processes, median of RUNS, wall and CPU seconds);
2. ``crm-audit demo`` as a user runs it (whole process), broken down per probe and per schedule
   phase from its result.json; start-up + demo server + reports = whole − audit;
3. (``--django``, needs root and Debian's postgresql) django-crm 0.9.0 as shipped (its hard-coded
   SECRET_KEY) on PostgreSQL, audited with ``profiles/django-crm.yaml --allow-disruptive --skip load``
   as docs/targets.md says: wall time, the load average around it, the scorecard of its 13 confirmed
   flaws (tests/targets/django_crm_flaws.py) and the row count of every table before and after.

``--update-doc`` writes the figures into docs/benchmarks.md (block ``audit-wall``) and into
docs/targets.md: blocks ``django-crm-flaws`` (the scorecard), ``django-crm-result``,
``demo-result`` and ``demo-flaws`` (the demo CRM's flaw switches, from demo/flaws.py).
``--django-only`` runs only part 3 (and writes only its blocks and ``demo-flaws``).
Run: python bench/audit_wall.py [--django | --django-only] [--update-doc]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, machine_line, update_block, utc_now

RUNS = 5
#: goals of issue 18
GOALS = {"version": 0.3, "validate": 0.6, "demo": 20.0, "django_quiet": 20.0, "django_loaded": 60.0}


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system of the child) of one whole process, and its stdout."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stderr[-2000:]}")
    return wall, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime), out.stdout


def cli() -> list[str]:
    return [sys.executable, "-m", "crm_audit"]


def demo_env() -> dict[str, str]:
    """What ``validate profiles/demo.yaml`` needs (dummy secrets; nothing is contacted)."""
    env = {**os.environ, "DEMO_BASE_URL": "https://127.0.0.1:8443", "DEMO_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}
    from crm_audit_demo.config import API_KEY_ENV, DEMO_USERS  # every account the demo profile names
    env.update({u.password_env: "x" for u in DEMO_USERS} | {API_KEY_ENV: "x"})
    return env


def startup() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    # as a user starts it after `pip install`: with byte-code caches (a PYTHONDONTWRITEBYTECODE shell would
    # otherwise compile every module on every start); one untimed warm-up run writes them
    env = {k: v for k, v in demo_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    for name, args in (("version", ["--version"]), ("help", ["--help"]),
                       ("validate", ["validate", str(ROOT / "profiles" / "demo.yaml")])):
        timed(cli() + args, env=env)
        runs = [timed(cli() + args, env=env) for _ in range(RUNS)]
        out[name] = {"wall_s": statistics.median(r[0] for r in runs), "cpu_s": statistics.median(r[1] for r in runs)}
        print(f"crm-audit {' '.join(args)}: median {out[name]['wall_s']:.3f} s wall, "
              f"{out[name]['cpu_s']:.3f} s CPU ({RUNS} runs)", flush=True)
    out["validate_imports"] = import_breakdown(["validate", str(ROOT / "profiles" / "demo.yaml")], env)
    return out


#: import-time groups for the validate breakdown (top-level package → group)
IMPORT_GROUPS = {"numpy": "numpy (via crm_audit.scoring)", "pydantic": "pydantic", "pydantic_core": "pydantic",
                 "annotated_types": "pydantic", "requests": "requests/urllib3", "urllib3": "requests/urllib3",
                 "charset_normalizer": "requests/urllib3", "idna": "requests/urllib3", "certifi": "requests/urllib3",
                 "cryptography": "cryptography/jwt", "jwt": "cryptography/jwt", "yaml": "yaml", "click": "click"}


def import_breakdown(args: list[str], env: dict[str, str]) -> list[tuple[str, float]]:
    """Milliseconds of import time (self times summed) per group, largest first (``python -X importtime``)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "crm_audit", *args], env=env,
                         capture_output=True, text=True, check=False).stderr
    groups: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].strip()
        top = name.split(".")[0]
        if top == "crm_audit":  # pydantic models are built while their module is imported
            sub = name.split(".")[1] if "." in name else ""
            group = f"crm_audit.{sub}" if sub in ("model", "profile", "scoring", "report", "target") else "crm_audit (other)"
        elif top == "crm_audit_plugins":
            group = "probe plugins"
        else:
            group = IMPORT_GROUPS.get(top, "stdlib and others")
        groups[group] = groups.get(group, 0.0) + int(parts[0]) / 1000
    return sorted(groups.items(), key=lambda kv: -kv[1])


def breakdown(result_path: Path, whole_s: float) -> dict[str, Any]:
    """Per-probe and per-phase times from a result.json."""
    r = json.loads(result_path.read_text(encoding="utf-8"))
    probes = {p["probe"]: {"s": p["duration_s"], "requests": p["requests"], "status": p["status"]} for p in r["probes"]}
    load = next((p for p in r["probes"] if p["probe"] == "load"), None)
    steps = [(s["users"], s["rps"], s["p95_ms"]) for s in (load or {}).get("artifacts", {}).get("steps", [])]
    limits = {}
    if load:
        m = next((m for m in load["measurements"] if m["indicator"] == "perf.max_concurrency"), None)
        limits = (m or {}).get("details", {}).get("limits", {})
    return {"whole_s": whole_s, "audit_s": r["duration_s"], "probes": probes, "schedule": r.get("schedule") or [],
            "load_steps": steps, "load_stop": limits.get("stop_reason"), "result": r}


#: whole `crm-audit demo` runs; the median run is reported (one run swings by a few seconds on 2 shared cores)
DEMO_RUNS = 3


def demo() -> dict[str, Any]:
    """The median of :data:`DEMO_RUNS` whole runs (by wall time), with every run's wall time beside it."""
    runs: list[dict[str, Any]] = []
    for _ in range(DEMO_RUNS):
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
            wall, cpu, _ = timed(cli() + ["demo", "--out", tmp, "-q"], env={**os.environ, "CI": "1"})
            [path] = Path(tmp).glob("*/result.json")
            one = breakdown(path, wall)
        one["cpu_s"] = cpu
        runs.append(one)
        print(f"crm-audit demo: {wall:.1f} s whole process, audit {one['audit_s']:.1f} s", flush=True)
    out = sorted(runs, key=lambda r: r["whole_s"])[len(runs) // 2]
    out["all_whole_s"] = [round(r["whole_s"], 1) for r in runs]
    return out


def _loadavg() -> str:
    """The 1, 5 and 15 minute load averages as /proc/loadavg gives them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def django() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from targets.django_crm import DjangoCrmServer
    from targets.postgres import PostgresServer

    with PostgresServer() as pg, DjangoCrmServer(pg, default_secret=True) as crm, \
            tempfile.TemporaryDirectory(prefix="bench-dj-") as tmp:
        db = crm.db
        env = {**os.environ, **crm.env, "CI": "1", "DJANGO_CRM_URL": crm.base_url,
               "DJANGO_CRM_DB_URL": f"postgresql://{db.user}@{db.host}:{db.port}/{db.name}"}
        args = ["audit", str(ROOT / "profiles" / "django-crm.yaml"), "--allow-disruptive", "--skip", "load",
                "--format", "json,html,markdown", "--out", tmp]
        rows_before = crm.row_counts()
        load_before, loadavg_before = os.getloadavg()[0], _loadavg()
        wall, cpu, _ = timed(cli() + args, env=env)
        load_after, loadavg_after = os.getloadavg()[0], _loadavg()
        rows_after = crm.row_counts()
        [path] = Path(tmp).glob("*/result.json")
        out = breakdown(path, wall)
        if os.environ.get("BENCH_KEEP_RESULT"):  # a copy of result.json, to look at afterwards
            Path(os.environ["BENCH_KEEP_RESULT"]).write_bytes(path.read_bytes())
    out.update(cpu_s=cpu, load_before=load_before, load_after=load_after, loadavg_before=loadavg_before,
               loadavg_after=loadavg_after, rows_changed={t: (n, rows_after.get(t)) for t, n in rows_before.items()
                                                          if rows_after.get(t) != n}, tables=len(rows_before))
    print(f"django-crm audit: {wall:.1f} s whole process, audit {out['audit_s']:.1f} s; load average "
          f"{loadavg_before} before, {loadavg_after} after; tables changed: {out['rows_changed'] or 'none'}",
          flush=True)
    return out


# --------------------------------------------------------------------------- writing


def _probe_rows(b: dict[str, Any]) -> list[str]:
    phase_of = {p: (i + 1, s["mode"]) for i, s in enumerate(b["schedule"]) for p in s["probes"]}
    rows = ["| probe | phase | s | requests | status |", "|---|---|---:|---:|---|"]
    for pid, p in sorted(b["probes"].items(), key=lambda kv: (phase_of.get(kv[0], (99, ""))[0], kv[0])):
        n, mode = phase_of.get(pid, ("-", "-"))
        rows.append(f"| {pid} | {n} ({mode}) | {p['s']:.2f} | {p['requests']} | {p['status']} |")
    return rows


def _phases(b: dict[str, Any]) -> str:
    return "; ".join(f"{i + 1}. {s['mode']} {'+'.join(s['probes'])} {s['duration_s']:.1f} s"
                     for i, s in enumerate(b["schedule"]))


def _verdict(goal: float, value: float) -> str:
    return "**met**" if value <= goal else "**missed**"


def wall_section(st: dict[str, Any], dm: dict[str, Any], dj: dict[str, Any] | None, machine: str) -> str:
    lines = [f"Measured {utc_now()} by `python bench/audit_wall.py{' --django' if dj else ''} --update-doc`; "
             f"{machine}.", "",
             "| what | wall (median of 5) | CPU | goal |", "|---|---:|---:|---|"]
    for name, label, goal in (("version", "`crm-audit --version`", GOALS["version"]),
                              ("help", "`crm-audit --help`", None),
                              ("validate", "`crm-audit validate profiles/demo.yaml`", GOALS["validate"])):
        v = st[name]
        lines.append(f"| {label} | {v['wall_s']:.3f} s | {v['cpu_s']:.3f} s | "
                     + (f"≤ {goal} s — {_verdict(goal, v['wall_s'])}" if goal else "—") + " |")
    lines += ["", "Where `validate` spends its start-up (import time, `python -X importtime`, self times summed "
              "per group): " + ", ".join(f"{g} {ms:.0f} ms" for g, ms in st["validate_imports"]) + "."]
    lines += ["", f"`crm-audit demo` (whole process, median of {len(dm['all_whole_s'])} runs: "
              f"{', '.join(f'{w:g}' for w in dm['all_whole_s'])} s): **{dm['whole_s']:.1f} s** "
              f"(goal ≤ {GOALS['demo']:g} s — {_verdict(GOALS['demo'], dm['whole_s'])}); the audit itself "
              f"{dm['audit_s']:.1f} s, start-up + demo server + reports {dm['whole_s'] - dm['audit_s']:.1f} s, "
              f"{dm['cpu_s']:.1f} CPU-seconds in the CLI process and its children. Schedule: {_phases(dm)}. "
              "Load ladder (users, req/s, p95 ms): "
              + ", ".join(f"({u}, {r:.0f}, {p})" for u, r, p in dm["load_steps"]) + f"; stopped: {dm['load_stop']}.",
              "", *_probe_rows(dm)]
    if dj:
        goal = GOALS["django_quiet"] if dj["load_before"] < 2.0 else GOALS["django_loaded"]
        lines += ["", f"django-crm 0.9.0 audit (`--allow-disruptive --skip load`, whole process, one run, load "
                  f"average {dj['loadavg_before']} → {dj['loadavg_after']} (1/5/15 min)): **{dj['whole_s']:.1f} s** "
                  f"(goal ≤ {goal:g} s at this load — {_verdict(goal, dj['whole_s'])}); audit {dj['audit_s']:.1f} s. "
                  f"Schedule: {_phases(dj)}.", "", *_probe_rows(dj)]
    return "\n".join(lines)


def _dims(result: dict[str, Any]) -> list[str]:
    nodes = (result.get("scoring") or {}).get("nodes") or []
    rows = ["| dimension | score | grade |", "|---|---|---|"]
    for n in nodes:
        if n.get("depth") == 1:
            score = "not assessed" if n.get("score") is None else f"{n['score']:g}"
            rows.append(f"| {n['title']} | {score} | {n.get('grade') or '—'} |")
    return rows


def _num(x: Any) -> str:
    return f"{x:.1f}" if isinstance(x, (int, float)) else "—"


def result_section(b: dict[str, Any], title: str, machine: str, flag: str = "") -> str:
    r = b["result"]
    sc = (r.get("scoring") or {}).get("overall") or {}
    cov = (r.get("scoring") or {}).get("coverage")
    findings = [f for p in r["probes"] for f in p["findings"]] + list(r.get("indicator_findings") or [])
    open_failed = [f for f in findings if f["status"] in ("fail", "failed") and not f.get("waiver")]
    by_sev: dict[str, int] = {}
    for f in open_failed:
        by_sev[f["severity"]] = by_sev.get(f["severity"], 0) + 1
    lat = [m for p in r["probes"] if p["probe"] == "latency" for m in p["measurements"]
           if m["indicator"] == "perf.response_time_p95"]
    verdict = (r.get("verdict") or {}).get("verdict")
    lines = [f"Run `{r['run_id']}`, measured {utc_now()} by `python bench/audit_wall.py{flag} --update-doc` ({title}); "
             f"{machine}: {b['whole_s']:.1f} s whole process, {sum(p['requests'] for p in b['probes'].values())} "
             "requests.", "",
             f"**Overall score {sc.get('score')} / 100 — grade {sc.get('grade')}** (fuzzy grade {sc.get('fuzzy_grade')}), "
             f"**coverage {cov * 100 if cov is not None else 0:.1f} %**, verdict **{verdict}**; "
             f"{len(open_failed)} failed finding(s) open ("
             + ", ".join(f"{n} {s}" for s, n in sorted(by_sev.items(), key=lambda kv: kv[0])) + ").", "",
             *_dims(r), "", "Open failed findings:", "", "| severity | id | finding |", "|---|---|---|"]
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    for f in sorted(open_failed, key=lambda f: (order.get(f["severity"], 9), f["id"]))[:15]:
        lines.append(f"| {f['severity']} | `{f['id']}` | {f['title'].replace('|', '/')[:140]} |")
    if lat:
        lines += ["", "Latency (the latency probe's samples, one client, same box):", "",
                  "| endpoint | samples | p50 ms | p95 ms | SLO p95 ms |", "|---|---|---|---|---|"]
        for m in lat:
            s = m.get("samples") or {}
            lines.append(f"| {m.get('label')} | {s.get('count', '—')} | {_num(s.get('p50'))} | {_num(m['value'])} | "
                         f"{_num(m.get('expected'))} |")
    other = [(p["probe"], m) for p in r["probes"] for m in p["measurements"] if m["indicator"] != "perf.response_time_p95"]
    if other:
        lines += ["", "Every other measured value:", "", "| probe | indicator | what | value | expected |",
                  "|---|---|---|---|---|"]
        for probe, m in other:
            value = "—" if m["value"] is None else f"{m['value']:g} {m.get('unit') or ''}".strip()
            expected = "—" if m.get("expected") is None else f"{m['expected']:g}"
            bound = f" (set by the audit's {m['bounded_by'].replace('_', ' ')})" if m.get("bounded_by") else ""
            lines.append(f"| {probe} | `{m['indicator']}` | {(m.get('label') or '').replace('|', '/')[:90]} | "
                         f"{value}{bound} | {expected} |")
    return "\n".join(lines)


def flaw_section(b: dict[str, Any], machine: str, flag: str = " --django") -> str:
    """The scorecard: each of django-crm 0.9.0's 13 confirmed flaws, its check ids and what this run said."""
    sys.path.insert(0, str(ROOT / "tests"))
    from targets.django_crm_flaws import EXTRAS, FLAWS, MEASURED, matches, scorecard

    r = b["result"]
    findings = [f for p in r["probes"] for f in p["findings"]]
    card = scorecard(findings)
    found = sum(c["status"] == "found" for c in card.values())
    lines = [f"Run `{r['run_id']}`, measured {utc_now()} by `python bench/audit_wall.py{flag} --update-doc`: "
             "django-crm 0.9.0 as shipped (hard-coded `SECRET_KEY`), seeded, audited with "
             "`crm-audit audit profiles/django-crm.yaml --allow-disruptive --skip load`; "
             f"{machine}. **{b['whole_s']:.1f} s** whole process (load average "
             f"{b['loadavg_before']} before, {b['loadavg_after']} after, 1/5/15 min), "
             f"{sum(p['requests'] for p in b['probes'].values())} requests.", "",
             f"**{found} of 13 flaws found**, "
             + ", ".join(f"flaw {n} not assessed ({', '.join(c.get('reasons') or [])})"
                         for n, c in card.items() if c["status"] == "not_assessed")
             + (", missed: " + ", ".join(str(n) for n, c in card.items() if c["status"] == "missed")
                if any(c["status"] == "missed" for c in card.values()) else "") + ".", "",
             "| # | flaw | check id(s) | result |", "|---:|---|---|---|"]
    for n, flaw in FLAWS.items():
        c = card[n]
        ids = ", ".join(f"`{x}*`" if x.endswith(".") else f"`{x}`" for x in flaw.checks)
        if c["status"] == "found":
            res = f"**found** ({len(c['ids'])} failed finding{'s' if len(c['ids']) > 1 else ''})"
        elif c["status"] == "not_assessed":
            res = f"not assessed ({', '.join(c['reasons'])}: {(c['hints'] or [''])[0]})"
        else:
            res = "**missed**"
        lines.append(f"| {n} | {flaw.title.replace('|', '/')} | {ids} | {res} |")
    failed = [f for f in findings if f["status"] in ("fail", "failed")]
    others = [f for f in failed if not any(matches(f["id"], fl.checks) for fl in FLAWS.values())]
    lines += ["", "Every other failed finding of the run, and why it is no false positive:", "",
              "| id | finding | verified |", "|---|---|---|"]
    for f in others:
        why = next((w for k, w in {**EXTRAS, **MEASURED}.items() if matches(f["id"], [k])),
                   "**not verified: check it**")
        lines.append(f"| `{f['id']}` | {f['title'].replace('|', '/')[:110]} | {why} |")
    changed = b.get("rows_changed") or {}
    lines += ["", f"Rows left behind (row count of each of the {b.get('tables', '?')} tables before and after the "
              "audit): " + ("**none**." if not changed else ", ".join(f"{t} {a} → {z}" for t, (a, z) in changed.items()))]
    return "\n".join(lines)


def demo_flaws_section() -> str:
    """The demo CRM's flaw switches with their one-line descriptions (demo/flaws.py is the contract)."""
    from crm_audit_demo.flaws import FLAWS as DEMO_FLAWS

    return "\n".join([f"{len(DEMO_FLAWS)} flaws (`crm-audit demo --flaw list` prints the same):", "",
                      "| flaw | what it switches on |", "|---|---|"]
                     + [f"| `{k}` | {v.replace('|', '/')} |" for k, v in sorted(DEMO_FLAWS.items())])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--django", action="store_true", help="also audit django-crm 0.9.0 (root, postgresql)")
    ap.add_argument("--django-only", action="store_true", help="only the django-crm 0.9.0 audit (part 3)")
    ap.add_argument("--update-doc", action="store_true")
    args = ap.parse_args(argv)
    if args.django_only:
        dj = django()
        machine = machine_line(dj["load_before"], dj["load_after"])
        flaws = flaw_section(dj, machine, " --django-only")
        print("\n".join([f"Schedule: {_phases(dj)}", "", *_probe_rows(dj), "", flaws]))
        if args.update_doc:
            update_block(ROOT / "docs" / "targets.md", "django-crm-flaws", flaws)
            update_block(ROOT / "docs" / "targets.md", "django-crm-result",
                         result_section(dj, "`crm-audit audit profiles/django-crm.yaml --allow-disruptive --skip load`",
                                        machine, " --django-only"))
            update_block(ROOT / "docs" / "targets.md", "demo-flaws", demo_flaws_section())
        return 0
    load_before = os.getloadavg()[0]
    st = startup()
    dm = demo()
    dj = django() if args.django else None
    machine = machine_line(load_before, os.getloadavg()[0])
    section = wall_section(st, dm, dj, machine)
    print(section)
    if args.update_doc:
        update_block(ROOT / "docs" / "benchmarks.md", "audit-wall", section)
        update_block(ROOT / "docs" / "targets.md", "demo-result", result_section(dm, "`crm-audit demo`", machine))
        update_block(ROOT / "docs" / "targets.md", "demo-flaws", demo_flaws_section())
        if dj:
            update_block(ROOT / "docs" / "targets.md", "django-crm-flaws",
                         flaw_section(dj, machine_line(dj["load_before"], dj["load_after"])))
            update_block(ROOT / "docs" / "targets.md", "django-crm-result",
                         result_section(dj, "`crm-audit audit profiles/django-crm.yaml --allow-disruptive --skip load`",
                                        machine_line(dj["load_before"], dj["load_after"]), " --django"))
    missed = [k for k, v in (("version", st["version"]["wall_s"]), ("validate", st["validate"]["wall_s"]),
                             ("demo", dm["whole_s"])) if v > GOALS[k]]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
