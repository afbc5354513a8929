"""Run every fault case of tests/fault_cases.py one at a time and print (or write) the measured figures.

``python scripts/reliability.py`` prints the table; ``--update-doc`` rewrites the block between
the RELIABILITY markers of docs/reliability.md with it, the load average and the core count.
``--only trickle,reset`` runs a subset (never with --update-doc: the table is always whole).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fault_cases import CASES, MARGIN_S, RSS_LIMIT_MB, Outcome, run_case  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- RELIABILITY:BEGIN (scripts/reliability.py --update-doc) -->", "<!-- RELIABILITY:END -->"


def table(outcomes: list[Outcome], load_before: float, load_after: float) -> str:
    rows = [
        f"Measured by `python scripts/reliability.py --update-doc` on {os.cpu_count()} cores, load average "
        f"{load_before:.2f} before and {load_after:.2f} after; each audit alone, in a subprocess.",
        "",
        "| fault | probes | exit | result.json | wall s | budget s | peak RSS MB | not assessed as | checks passed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        c = o.case
        passed = len([f for f in o.findings() if f["status"] == "pass"])
        rows.append(
            f"| `{c.fault}` | {', '.join(c.probes)} | {o.exit_code} | {'yes' if o.result else 'no'} | {o.wall_s:.1f} | "
            f"{c.budget_s + MARGIN_S:.0f} | {o.peak_rss_mb:.0f} | {', '.join(sorted(o.failures_seen())) or '—'} | "
            f"{passed} |")
    worst = max(o.peak_rss_mb for o in outcomes)
    rows += ["", f"Largest peak RSS {worst:.0f} MB (limit in the tests: {RSS_LIMIT_MB:.0f} MB)."]
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update-doc", action="store_true", help="rewrite the measured block of docs/reliability.md")
    ap.add_argument("--only", default="", help="comma-separated faults to run")
    args = ap.parse_args()
    only = [x for x in args.only.split(",") if x]
    if only and args.update_doc:
        ap.error("--update-doc runs every case")
    cases = [c for c in CASES if not only or c.fault in only]
    load_before = os.getloadavg()[0]
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="crm-audit-reliability-") as tmp:
        for case in cases:
            out = run_case(case, Path(tmp) / case.fault)
            print(f"{case.fault}: exit {out.exit_code}, {out.wall_s:.1f} s, {out.peak_rss_mb:.0f} MB, "
                  f"result {'written' if out.result else 'not written'}", flush=True)
            outcomes.append(out)
    block = table(outcomes, load_before, os.getloadavg()[0])
    print(block)
    if args.update_doc:
        text = DOC.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
        if not pattern.search(text):
            raise SystemExit(f"{DOC}: markers {BEGIN!r} … {END!r} not found")
        DOC.write_text(pattern.sub(lambda m: f"{BEGIN}\n{block}\n{END}", text), encoding="utf-8")
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
