#!/usr/bin/env python3
"""Worked examples of the scoring methods, computed by crm-audit's own code.

    scripts/scoring_examples.py [--update-doc]

Prints the examples as Markdown; --update-doc rewrites the block between
<!-- scoring-examples:start --> and <!-- scoring-examples:end --> in docs/scoring.md.
Every figure in that block comes from this script: control points, the five-grade fuzzy
evaluation under each operator, grey relational analysis against a target profile,
discounted payback, a multi-root IRR and a hierarchy-wide CR.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scipy.stats import norm  # noqa: E402

from crm_audit.scoring import load_hierarchy  # noqa: E402
from crm_audit.scoring.ahp import ahp_weights, hierarchy_consistency  # noqa: E402
from crm_audit.scoring.finance import NOT_RECOVERED, discounted_payback, irr, irr_roots, payback_period  # noqa: E402
from crm_audit.scoring.fuzzy import OPERATORS, compose, defuzzify, max_membership_grade  # noqa: E402
from crm_audit.scoring.grades import grade_of, parse_grade_scale, shown  # noqa: E402
from crm_audit.scoring.grey import grey_relational_grades  # noqa: E402

DOC = ROOT / "docs" / "scoring.md"
START, END = "<!-- scoring-examples:start -->", "<!-- scoring-examples:end -->"

FIVE = parse_grade_scale([
    {"name": "优", "floor": 90, "value": 95}, {"name": "良", "floor": 80, "value": 85},
    {"name": "中", "floor": 70, "value": 75}, {"name": "差", "floor": 60, "value": 65},
    {"name": "劣", "floor": 0, "value": 30},
])
W5 = [0.4, 0.3, 0.2, 0.1]
R5 = [[0.6, 0.2, 0.2, 0.0, 0.0], [0.0, 0.6, 0.3, 0.1, 0.0], [0.0, 0.5, 0.4, 0.1, 0.0], [0.1, 0.4, 0.3, 0.2, 0.0]]
RAW = [[300, 100, 80], [250, 80, 90], [400, 120, 70]]
TARGET = [200, 120, 90]
TRAVEL_A = [[1, "1/2", 4, 3, 3], [2, 1, 7, 5, 5], ["1/4", "1/7", 1, "1/2", "1/3"],
            ["1/3", "1/5", 2, 1, 1], ["1/3", "1/5", 3, 1, 1]]
TRAVEL_B = [[[1, 2, 5], ["1/2", 1, 2], ["1/5", "1/2", 1]], [[1, "1/3", "1/8"], [3, 1, "1/3"], [8, 3, 1]],
            [[1, 1, 3], [1, 1, 3], ["1/3", "1/3", 1]], [[1, 3, 4], ["1/3", 1, 1], ["1/4", 1, 1]],
            [[1, 1, "1/4"], [1, 1, "1/4"], [4, 4, 1]]]


def _vec(v) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in v) + ")"


def control_points() -> list[str]:
    fn = load_hierarchy("default").nodes["perf.response_time_p95"].function
    rows = ["**1. Exact control points.** `perf.response_time_p95` (log-normal, 90 at 300 ms, 50 at 1000 ms):", "",
            "| value | score (JSON) | grade |", "|---:|---:|---|"]
    for v in (300.0, 500.0, 1000.0, 299.5):
        s = fn.score(v)
        rows.append(f"| {v:g} ms | {shown(s)} | {grade_of(s)} |")
    raw = 100.0 * float(norm.cdf((math.log(300) - math.log(1000)) / fn.sigma))
    rows += ["", f"Unrounded, Φ at the p90 point gives {raw!r}; scores are rounded to 9 decimals, so it is {fn.score(300.0)!r}.", ""]
    return rows


def fuzzy_example() -> list[str]:
    rows = ["**2. Five-grade fuzzy evaluation, four operators.** Weights W = (0.4, 0.3, 0.2, 0.1); "
            "rows of R over 优/良/中/差/劣: " + "; ".join(_vec(r) for r in R5) + "; grade values (95, 85, 75, 65, 30).", "",
            "| operator | B (normalised) | grade | defuzzified score |", "|---|---|---|---:|"]
    for op in OPERATORS:
        b = compose(W5, R5, op)
        rows.append(f"| {op} | {_vec(b)} | {max_membership_grade(b, FIVE)} | {defuzzify(b, FIVE):.1f} |")
    return rows + [""]


def grey_example() -> list[str]:
    kinds = ["cost", "benefit", "benefit"]
    g, xi, _ = grey_relational_grades(RAW, reference=TARGET, normalisation=kinds)
    gw, _, _ = grey_relational_grades(RAW, weights=[0.5, 0.3, 0.2], reference=TARGET, normalisation=kinds)
    gi, _, _ = grey_relational_grades(RAW, normalisation=kinds)
    rows = ["**3. Grey relational analysis against a target profile.** Criteria: p95 response time (ms, cost), "
            "throughput (req/s, benefit), satisfaction (benefit); target (200, 120, 90); min–max normalisation; ρ = 0.5.", "",
            "| CRM | raw | ξ | γ (equal weights) | γ (weights .5/.3/.2) | γ against the ideal |", "|---|---|---|---:|---:|---:|"]
    for k, name in enumerate("ABC"):
        rows.append(f"| {name} | {tuple(RAW[k])} | {_vec(xi[k])} | {g[k]:.4f} | {gw[k]:.4f} | {gi[k]:.4f} |")
    return rows + [""]


def finance_example() -> list[str]:
    flows = [2800, 3700, 5100, 4300]
    rows = ["**4. Discounted payback and IRR.** Inflows 2,800, 3,700, 5,100, 4,300 discounted at 14 %:", ""]
    for cost in (5200, 5400, 10400):
        rows.append(f"- cost {cost:,}: simple payback {payback_period([-cost, *flows]):.2f} years, "
                    f"discounted payback {discounted_payback(0.14, [-cost, *flows]):.2f} years")
    never = discounted_payback(0.15, [-10000] + [2600] * 6)
    rows.append(f"- cost 10,000, 2,600 a year for six years at 15 %: discounted payback "
                f"{NOT_RECOVERED if never is None else f'{never:.2f} years'} (the function returns None)")
    for flows in ([-1600, 10000, -10000], [-200, 320, -110]):
        roots = ", ".join(f"{r:.2%}" for r in irr_roots(flows))
        rows.append(f"- IRR of {flows}: real roots {roots}; chosen (closest to zero) {irr(flows):.2%}")
    return rows + [""]


def ahp_example() -> list[str]:
    top = ahp_weights(TRAVEL_A)
    subs = [ahp_weights(b) for b in TRAVEL_B]
    c = hierarchy_consistency([("goal", 1.0, top)] + [(f"B{i + 1}", w, s) for i, (w, s) in enumerate(zip(top.weights, subs))])
    rows = ["**5. Hierarchy-wide consistency** (the travel-destination example of Chinese modelling textbooks: "
            "5 criteria, 3 destinations, Saaty 1980 RI):", "",
            "| matrix | global weight w | n | CI | RI | CR |", "|---|---:|---:|---:|---:|---:|"]
    for node, w, n, ci, ri, cr in c.matrices:
        rows.append(f"| {node} | {w:.4f} | {n} | {ci:.5f} | {ri:g} | {cr:.4f} |")
    rows += ["", f"CR_H = Σ w·CI / Σ w·RI = {c.ci:.5f} / {c.ri:.4f} = **{c.cr:.4f}** "
             f"({'consistent' if c.consistent else 'inconsistent'})."]
    return rows + [""]


def block() -> str:
    load = os.getloadavg()[0]
    body = control_points() + fuzzy_example() + grey_example() + finance_example() + ahp_example()
    return "\n".join([START, *body,
                      f"*Generated by `scripts/scoring_examples.py --update-doc` (Python {platform.python_version()}, "
                      f"load average {load:.2f}).*", END])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-doc", action="store_true", help="rewrite the examples block of docs/scoring.md")
    args = parser.parse_args(argv)
    text = block()
    print(text)
    if args.update_doc:
        doc = DOC.read_text(encoding="utf-8")
        if START not in doc or END not in doc:
            print(f"{DOC}: no {START} … {END} block to update", file=sys.stderr)
            return 2
        head, rest = doc.split(START, 1)
        DOC.write_text(head + text + rest.split(END, 1)[1], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
