#!/usr/bin/env python3
"""The demo CRM's verdicts, measured: runs `crm-audit demo` in a few set-ups and tabulates them.

    scripts/verdict_examples.py [--update-doc]

Prints a Markdown table (command, verdict, main reason, open critical/high, score, grade,
coverage, wall time); --update-doc rewrites the block between <!-- verdict-examples:start -->
and <!-- verdict-examples:end --> in docs/scoring.md. Every figure in that block comes from
this script, with the machine's load average. Takes about 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scoring.md"
START, END = "<!-- verdict-examples:start -->", "<!-- verdict-examples:end -->"

RUNS: list[list[str]] = [
    [],
    ["--flaw", "bola", "--flaw", "restore-loses-table"],
    ["--only", "latency"],
    ["--skip", "access"],
]


def run(args: list[str], out: Path) -> tuple[dict, float]:
    """One `crm-audit demo` run; its result.json and wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "crm_audit", "demo", *args, "--out", str(out), "-q"],
                          capture_output=True, text=True, env={**os.environ, "CI": "true"}, timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"crm-audit demo {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return json.loads(next(out.glob("*/result.json")).read_text()), wall


def table() -> list[str]:
    rows = ["| command | verdict | main reason | open critical / high | score | grade | coverage | wall |",
            "|---|---|---|---:|---:|---|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, args in enumerate(RUNS):
            data, wall = run(args, Path(tmp) / str(i))
            v, s = data["verdict"], data["scoring"]
            reason = (v["reasons"][0] if v["reasons"] else "").replace("|", "\\|")
            command = " ".join(["crm-audit", "demo", *args])
            rows.append(f"| `{command}` | "
                        f"**{v['verdict']}** | {reason} | {v['open_counts']['critical']} / {v['open_counts']['high']} | "
                        f"{s['overall']['score']:.1f} | {s['overall']['grade'] or '— (coverage too low)'} | "
                        f"{s['coverage']:.0%} | {wall:.0f} s |")
    load = os.getloadavg()
    return rows + ["", f"Measured by `scripts/verdict_examples.py` on {platform.node() or 'this machine'} "
                       f"({os.cpu_count()} cores), load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, "
                       f"{time.strftime('%Y-%m-%d')}."]


def update_doc(lines: list[str]) -> None:
    text = DOC.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{DOC}: markers {START} / {END} not found")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + START + "\n" + "\n".join(lines) + "\n" + END + tail, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-doc", action="store_true", help=f"rewrite the generated block in {DOC.name}")
    lines = table()
    print("\n".join(lines))
    if parser.parse_args().update_doc:
        update_doc(lines)


if __name__ == "__main__":
    main()
