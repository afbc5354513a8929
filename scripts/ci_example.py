#!/usr/bin/env python3
"""The gate example of docs/ci.md, run for real: a baseline of the demo, then the demo slowed down.

    scripts/ci_example.py [--update-doc]

Prints the two commands and the second one's gate lines; --update-doc rewrites the block
between <!-- ci-example:start --> and <!-- ci-example:end --> in docs/ci.md, with the date
and the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ci.md"
START, END = "<!-- ci-example:start -->", "<!-- ci-example:end -->"
SLOW = ["--delay-ms", "60", "--fail-on-regression", "--fail-under", "70", "--min-coverage", "5",
        "--threshold", "perf.response_time_p95<=50"]


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crm_audit", "demo", "--only", "latency", *args],
                          capture_output=True, text=True, env={**os.environ, "CI": "true"}, timeout=300)


def example() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        base = demo("--out", f"{tmp}/base", "-q")
        if base.returncode != 0:
            raise SystemExit(f"baseline run failed: {base.stderr.strip()}")
        result = next(Path(tmp, "base").glob("*/result.json"))
        slow = demo("--out", f"{tmp}/slow", "-q", "--baseline", str(result), *SLOW)
    shown = [ln for ln in slow.stdout.splitlines() if not ln.startswith("wrote ")]
    load = os.getloadavg()
    return ["```", "$ crm-audit demo --only latency --out base",
            "$ crm-audit demo --only latency --out slow --baseline base/<run>/result.json " + " ".join(
                f"'{a}'" if "<" in a else a for a in SLOW), *shown, "```", "",
            f"(exit code {slow.returncode}; run by `scripts/ci_example.py` on {time.strftime('%Y-%m-%d')}, "
            f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f})"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-doc", action="store_true", help=f"rewrite the generated block in {DOC.name}")
    update = parser.parse_args().update_doc
    lines = example()
    print("\n".join(lines))
    if update:
        text = DOC.read_text(encoding="utf-8")
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(head + START + "\n" + "\n".join(lines) + "\n" + END + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
